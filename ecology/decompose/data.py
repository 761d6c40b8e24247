"""The data of a decomposition: storylines to fit (sampled, or all of them with their exact
probability) and the windows the dynamic model visits, on which decompositions are compared."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ecology.core.compile import Compiled
from ecology.exact.chain import build_chain
from ecology.model import EcologyModel
from ecology.scenario import Scenario, apply_overrides, to_table, validate


@dataclass
class Storylines:
    """Sequences ``y_n`` (rows, tokens ``0 .. V-1``) with weights ``omega_n``."""

    tokens: np.ndarray  # (N, k + 1)
    weight: np.ndarray  # (N,)
    exact: bool  # True: all sequences, weights = P(y); False: samples, weights = 1

    @property
    def total(self) -> float:
        return float(self.weight.sum())

    def distinct(self) -> int:
        """Number of distinct sequences with positive weight."""
        kept = self.tokens[self.weight > 0]
        return len(np.unique(kept, axis=0)) if len(kept) else 0


def fitting_scenario(scenario: Scenario) -> Scenario:
    """The scenario started from the empty window at temperature 1: its first ``k + 1`` tokens
    are distributed as ``P`` (module docstring)."""
    return validate(apply_overrides(to_table(scenario, text=False), {
        "context.prompt": [], "context.pinned": 0, "sampling.temperature": 1.0}))


def exact_storylines(compiled: Compiled) -> Storylines:
    """All ``V^(k+1)`` sequences with ``P(y) = exp(-F(y))`` from the mixture; zero-weight rows dropped."""
    V, width = compiled.n_tokens, compiled.scenario.context.length + 1
    grid = np.array(list(itertools.product(range(V), repeat=width)), dtype=np.int64)
    log_p = np.concatenate([compiled.mixture.sequence_log_prob(grid[i : i + 32768])
                            for i in range(0, len(grid), 32768)])
    keep = np.isfinite(log_p)
    return Storylines(grid[keep], np.exp(log_p[keep]), True)


def sample_storylines(scenario: Scenario, count: int, seed: int) -> Storylines:
    """``count`` storylines of ``k + 1`` tokens from the dynamic model (empty window, T = 1)."""
    width = scenario.context.length + 1
    model = EcologyModel(fitting_scenario(scenario), rng=seed, steps=width, replicates=count)
    tokens = []
    while model.running:
        model.step()
        tokens.append(model.token.copy())
    return Storylines(np.stack(tokens, axis=1).astype(np.int64), np.ones(count), False)


@dataclass
class Visits:
    """Windows the dynamic model visits at steps 0 .. L-1, with weights summing to one."""

    windows: np.ndarray  # (n, width), pads first
    weight: np.ndarray
    exact: bool
    count: int  # storylines (sampled) or page-states (exact)


def exact_visits(compiled: Compiled, length: int, max_states: int) -> Visits:
    """The exact chain's law averaged over steps 0 .. L-1 from the initial window."""
    chain = build_chain(compiled, max_states)
    PT = chain.chain.P.T.tocsr()
    law = np.zeros(chain.chain.n_states)
    law[chain.initial] = 1.0
    weight = law.copy()
    for _ in range(length - 1):  # sum of e_x P^t, t = 0 .. L-1, one vector at a time
        law = PT @ law
        weight += law
    weight /= length
    keep = weight > 0
    return Visits(chain.windows[keep, chain.memory:].astype(np.int64), weight[keep] / weight[keep].sum(), True,
                  chain.chain.n_states)


def storyline_windows(scenario: Scenario, count: int, length: int, seed: int) -> np.ndarray:
    """(L, R, width) windows along ``count`` storylines of the dynamic model (scenario as given),
    at steps 0 .. L-1 (where each token is generated); pads first, right-aligned."""
    model = EcologyModel(scenario, rng=seed, steps=length - 1, replicates=count)
    steps = [model.context.window.astype(np.int64).copy()]
    while model.running:
        model.step()
        steps.append(model.context.window.astype(np.int64).copy())
    width = max(w.shape[1] for w in steps)
    pad = len(scenario.vocabulary.tokens)
    out = np.full((len(steps), count, width), pad, dtype=np.int64)
    for t, w in enumerate(steps):
        out[t, :, width - w.shape[1]:] = w
    return out


def sampled_visits(windows: np.ndarray) -> Visits:
    flat = windows.reshape(-1, windows.shape[2])
    unique, counts = np.unique(flat, axis=0, return_counts=True)
    return Visits(unique, counts / counts.sum(), False, windows.shape[1])
