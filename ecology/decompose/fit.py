"""Fitting a mixture of ``K`` premises by EM from seeded random starts (E-step: the
responsibilities; M-step: the priors, and per premise the best candidate structure of the chosen
families with its closed-form parameters, :mod:`ecology.decompose.families`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ecology.decompose.data import Storylines
from ecology.decompose.families import TIE, Candidates, Component, emission_counts, family
from ecology.errors import DecomposeError
from ecology.numerics import logsumexp
from ecology.progress import Progress, silent

MAX_ITERATIONS = 2000


TOLERANCE = 1e-11  # EM stops when the log-likelihood per unit weight gains less than this


@dataclass
class Fit:
    """A fitted mixture of ``K`` premises."""

    components: list[Component]
    prior: np.ndarray
    log_likelihood: float  # sum_n omega_n log sum_j pi_j q_j(y_n) on the training data
    iterations: int
    restart: int
    converged: bool
    restarts: list[float]  # final log-likelihood of every restart

    @property
    def n_params(self) -> int:
        return sum(c.structure.n_params for c in self.components) + len(self.components) - 1


def prepare(families: list[str], tokens: list[str], k: int, data: Storylines) -> list[Candidates]:
    """Every candidate structure of the chosen families, with its emission counts on ``data``,
    grouped by family, fewest parameters first (stable in the order the families were given):
    the M-step keeps the first of candidates that tie."""
    out = []
    for name in families:
        found = family(name).structures(tokens, k)
        for structure in found:
            structure.counts = emission_counts(structure.machine, data.tokens, len(tokens))
            structure.counts_t = structure.counts.T.tocsr()
        if found:
            out.append(Candidates.of(name, found))
    return sorted(out, key=lambda group: group.n_params)


def best_component(candidates: list[Candidates], resp: np.ndarray, data: Storylines) -> Component:
    """The M-step of one premise: the best candidate structure with its best parameters."""
    weight = data.weight * resp
    best, best_value = None, -math.inf
    for group in candidates:
        component, value = group.solve(weight)
        if best is None or value > best_value + TIE * max(1.0, abs(best_value)):
            best, best_value = component, value
    return best


def em(candidates: list[Candidates], K: int, data: Storylines, rng: np.random.Generator,
       report=lambda iteration: None) -> tuple[list[Component], np.ndarray, float, int, bool]:
    """One EM run from responsibilities drawn from a flat Dirichlet; ``report(iteration)`` after
    every iteration."""
    resp = rng.dirichlet(np.ones(K), size=len(data.weight))
    previous = -math.inf
    total = data.total
    converged = False
    for iteration in range(1, MAX_ITERATIONS + 1):
        components = [best_component(candidates, resp[:, j], data) for j in range(K)]
        mass = data.weight @ resp
        prior = mass / mass.sum()
        with np.errstate(divide="ignore"):
            joint = np.log(prior)[None, :] + np.stack([c.log_likelihood(c.structure.counts) for c in components], axis=1)
        norm = logsumexp(joint, axis=1)
        value = float(data.weight @ np.where(data.weight > 0, norm, 0.0))
        safe = np.isfinite(norm)
        resp = np.full(joint.shape, 1.0 / K)
        resp[safe] = np.exp(joint[safe] - norm[safe, None])
        report(iteration)
        if np.isfinite(value) and value - previous <= TOLERANCE * total:
            converged = True
            break
        previous = value
    return components, prior, value, iteration, converged


def fit_mixture(families: list[str], K: int, data: Storylines, tokens: list[str], k: int, seed: int,
                restarts: int, progress: Progress = silent, done: int = 0, total: int | None = None) -> Fit:
    """The best of ``restarts`` EM runs (seeded: restart ``r`` uses ``SeedSequence([seed, K, r])``).
    ``progress`` (:mod:`ecology.progress`) hears ``("EM restarts", done + r, total, "K = K, restart
    r + 1 of restarts, iteration i (at most M)")`` at every iteration of restart ``r``: ``done`` restarts were
    run before this call (of other K), out of ``total`` (default: this call's ``restarts``)."""
    candidates = prepare(families, tokens, k, data)
    runs = []
    for r in range(restarts):
        rng = np.random.default_rng(np.random.SeedSequence([seed, K, r]))

        def report(iteration: int, r: int = r) -> None:
            progress("EM restarts", done + r, total or restarts,
                     f"K = {K}, restart {r + 1} of {restarts}, iteration {iteration} (at most {MAX_ITERATIONS})")

        runs.append((*em(candidates, K, data, rng, report), r))
    finals = [run[2] for run in runs]
    components, prior, value, iterations, converged, r = max(runs, key=lambda run: run[2])
    if not np.isfinite(value):
        raise DecomposeError(
            f"no mixture of {K} premises from the families {', '.join(families)} gives every storyline a positive "
            "probability; add a family with a floor (constant, cycle, iid, markov1, markov2)")
    order = sorted(range(K), key=lambda j: (-prior[j], j))
    return Fit([components[j] for j in order], prior[order], value, iterations, r, converged, finals)
