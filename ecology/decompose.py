"""``ecology decompose``: fit mixtures of premises to a static model ``mu`` and compare
decompositions side by side (Remarks 9 and 10; the mathematics is in ``docs/decompose.md``).

**What is fitted.** A premise reads a window from its first non-pad token as if the storyline
began there, so ``mu`` on *every* window ``w`` (full or not, before or after deletion) is a ratio
of the mixture's law of sequences read from the start:

    mu(t | w) = P(w t) / P(w),   P(y) = sum_s prior_s mu_s(y).

Windows hold at most ``k`` tokens, so the law ``P`` of sequences of length ``k + 1`` determines
``mu`` everywhere. Those are exactly the first ``k + 1`` tokens of the dynamic model started from
the empty window at temperature 1 (no deletion has acted yet). The data are therefore
*storylines* ``y_n`` of ``k + 1`` tokens: ``N`` sampled from the dynamic model, or, when
``V^(k+1)`` is small enough, all sequences weighted by their exact probability ``P(y)``.

**The likelihood.** A decomposition into ``K`` premises with priors ``pi_j`` and sequence laws
``q_j`` has ``log L = sum_n omega_n log sum_j pi_j q_j(y_n)`` (``omega_n`` = 1 per sample, or
``P(y_n)`` for exact data: then ``log L`` is the expected log-likelihood per storyline). EM
maximises it from several seeded random starts (responsibilities drawn from a flat Dirichlet):

- E-step: ``r_nj = pi_j q_j(y_n) / sum_i pi_i q_i(y_n)``;
- M-step: ``pi_j = sum_n omega_n r_nj / sum_n omega_n``, and each premise maximises its expected
  complete-data log-likelihood ``sum_n omega_n r_nj log q_j(y_n)``. Every family here is an
  automaton whose state path on a sequence does not depend on its continuous parameters, so
  ``log q_j(y) = sum_{q,t} C_y[q, t] log E_j[q, t]`` with ``C_y[q, t]`` the number of times the
  automaton is in state ``q`` when ``t`` is printed; the statistics are ``S[q, t] = sum_n omega_n
  r_nj C_{y_n}[q, t]`` and the M-step maximises ``sum S log E``:

  * free tables (``iid``, ``markov1``, ``markov2``): ``E[q, t] = S[q, t] / sum_u S[q, u]``;
  * one parameter ``x`` entering each emission linearly, ``E(x) = E(0) + x (E(1) - E(0))``
    (``constant``'s floor ``eps``, ``cycle``'s ``slip``, ``waluigi``'s ``p`` and ``eps``, which
    act on disjoint states): every cell it moves is proportional to ``1 - x`` or to ``x``, so
    ``x = B / (A + B)`` with ``A``, ``B`` the statistics on the ``1 - x`` and ``x`` cells
    (closed form);
  * discrete structure (``constant``'s token, ``cycle``'s sequence, ``waluigi``'s mask and
    reveal tokens, and the family itself when several are allowed): the candidate with the
    largest ``sum S log E``; candidates within a relative ``TIE = 1e-9`` of it tie, and the one
    with fewer free parameters (then the family listed first) is kept.

The columns of the comparison (``compare``) are computed for any decomposition through its
compiled scenario, i.e. through :meth:`ecology.dynamics.Mixture.read`; see ``docs/decompose.md``.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ecology.core.budget import model_premises
from ecology.core.compile import Compiled, compile_scenario
from ecology.errors import DecomposeError, UserError
from ecology.kinds.deletion import DeletionRule, Fifo
from ecology.kinds.simulacra import ConstantSpec, CycleSpec, Machine, WaluigiSpec
from ecology.numerics import logsumexp
from ecology.scenario import Scenario, apply_overrides, to_table, validate

FAMILIES = ("iid", "constant", "markov1", "markov2", "cycle", "waluigi")


EXACT_SEQUENCES = 1 << 16  # exact fitting data when V^(k+1) is at most this


TRIVIAL_SEQUENCES = 4096  # the two trivial decompositions need V^(k+1) at most this


CYCLE_CANDIDATES = 2000  # cycles of period 1, 2, ... are tried while their number stays below this


MAX_ITERATIONS = 2000


TOLERANCE = 1e-11  # EM stops when the log-likelihood per unit weight gains less than this


TIE = 1e-9  # M-step candidates within this relative gap tie (the one with fewer parameters is kept)


TOP_LABELS = 6  # amplitude stories show the largest premises, the others summed


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
    return validate(apply_overrides(to_table(scenario), {
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
    from ecology.model import EcologyModel

    width = scenario.context.length + 1
    model = EcologyModel(fitting_scenario(scenario), rng=seed, steps=width, replicates=count)
    tokens = []
    while model.running:
        model.step()
        tokens.append(model.token.copy())
    return Storylines(np.stack(tokens, axis=1).astype(np.int64), np.ones(count), False)


@dataclass
class Structure:
    """A family's discrete structure: an automaton whose emissions the M-step fits."""

    family: str
    machine: Machine  # emit is the current/default law; next and start are fixed
    tokens: list[str]
    spec: object | None = None  # the parameterised spec (constant, cycle, waluigi); None for free tables
    params: tuple[str, ...] = ()
    counts: sp.csr_matrix | None = None  # (N, Q * V) emission counts on the training data
    counts_t: sp.csr_matrix | None = None  # its transpose, for the statistics S
    cells: dict = field(default_factory=dict)  # param -> (mask, E at 0, E at 1) on the cells it moves

    def __post_init__(self):
        """Each parameter moves its own cells linearly: ``E = E(0) + x (E(1) - E(0))`` there."""
        if self.spec is None:
            return
        for name in self.params:
            low = self.spec.model_copy(update={name: 0.0}).machine(self.tokens).emit
            high = self.spec.model_copy(update={name: 1.0}).machine(self.tokens).emit
            mask = low != high
            self.cells[name] = (mask, low[mask], high[mask])

    @property
    def n_params(self) -> int:
        """Free continuous parameters (what BIC counts)."""
        if self.spec is not None:
            return len(self.params)
        Q, V = self.machine.emit.shape
        return Q * (V - 1)


def emission_counts(machine: Machine, tokens: np.ndarray, pad: int) -> sp.csr_matrix:
    """``C[n, q * V + t]``: how often the automaton, reading row ``n`` from its start, is in
    state ``q`` when token ``t`` comes (pads skipped)."""
    rows, width = tokens.shape
    V = machine.emit.shape[1]
    state = np.full(rows, machine.start, dtype=np.intp)
    r, c = [], []
    for column in tokens.T:
        real = column != pad
        r.append(np.flatnonzero(real))
        c.append(state[real] * V + column[real])
        state = np.where(real, machine.next[state, np.minimum(column, V - 1)], state)
    data = np.ones(sum(len(x) for x in r))
    return sp.csr_matrix((data, (np.concatenate(r), np.concatenate(c))), shape=(rows, machine.emit.size))


def markov_machine(order: int, V: int) -> Machine:
    """Order-``m`` Markov automaton (m = 0, 1, 2): the state is the last ``m`` tokens read (fewer
    at the start of a window), each state with its own next-token law."""
    names = ["start"]
    index = {(): 0}
    for length in range(1, order + 1):
        for context in itertools.product(range(V), repeat=length):
            index[context] = len(names)
            names.append("after_" + "_".join(map(str, context)))
    nxt = np.zeros((len(names), V), dtype=np.intp)
    for context, q in index.items():
        for t in range(V):
            longer = (context + (t,))[-order:] if order else ()
            nxt[q, t] = index[longer]
    return Machine(tuple(names), np.full((len(names), V), 1.0 / V), nxt, 0)


def canonical_cycles(V: int, max_period: int) -> list[tuple[int, ...]]:
    """Primitive sequences up to rotation (smallest rotation), periods 1 .. ``max_period``,
    stopping before their number would exceed ``CYCLE_CANDIDATES``."""
    out: list[tuple[int, ...]] = []
    for n in range(1, max_period + 1):
        batch = []
        for seq in itertools.product(range(V), repeat=n):
            rotations = [seq[i:] + seq[:i] for i in range(n)]
            if seq == min(rotations) and len(set(rotations)) == n:
                batch.append(seq)
        if len(out) + len(batch) > CYCLE_CANDIDATES:
            break
        out += batch
    return out


def structures(family: str, tokens: list[str], k: int) -> list[Structure]:
    """The candidate structures of one family for a vocabulary and window length."""
    V = len(tokens)
    if family in ("iid", "markov1", "markov2"):
        return [Structure(family, markov_machine({"iid": 0, "markov1": 1, "markov2": 2}[family], V), tokens)]
    if family == "constant":
        specs = [ConstantSpec(kind="constant", token=t, eps=0.01 if V > 1 else 0.0) for t in tokens]
        params = ("eps",) if V > 1 else ()
    elif family == "cycle":
        specs = [CycleSpec(kind="cycle", sequence=[tokens[i] for i in seq], slip=0.01 if V > 1 else 0.0)
                 for seq in canonical_cycles(V, min(k + 1, 8))]
        params = ("slip",) if V > 1 else ()
    elif family == "waluigi":
        if V < 2:
            return []
        specs = [WaluigiSpec(kind="waluigi", mask=a, reveal=b, p=0.9, eps=0.01)
                 for a in tokens for b in tokens if a != b]
        params = ("p", "eps")
    else:
        raise DecomposeError(f"--family: unknown family {family!r}; use one or more of {', '.join(FAMILIES)}")
    return [Structure(family, spec.machine(tokens), tokens, spec, params) for spec in specs]


def weighted_log(S: np.ndarray, E: np.ndarray) -> float:
    """``sum S log E`` with ``0 log 0 = 0`` (``-inf`` when positive weight meets a zero)."""
    used = S > 0
    if np.any(E[used] <= 0):
        return -math.inf
    return float(np.sum(S[used] * np.log(E[used])))


@dataclass
class Component:
    """A fitted premise: a structure with its emission table and parameter values."""

    structure: Structure
    emit: np.ndarray  # (Q, V)
    values: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.structure.family

    def log_likelihood(self, counts: sp.csr_matrix) -> np.ndarray:
        """``log q(y_n)`` per row of the emission counts."""
        with np.errstate(divide="ignore"):
            log_emit = np.log(self.emit).ravel()
        return counts @ log_emit  # only stored (positive) counts multiply: 0 log 0 never arises


def m_step(structure: Structure, S: np.ndarray) -> tuple[Component, float]:
    """A free table's M-step: ``E[q, t] = S[q, t] / sum_u S[q, u]`` (uniform where ``S[q]`` is 0),
    and the maximum ``sum S log E``."""
    Q, V = structure.machine.emit.shape
    S = S.reshape(Q, V)
    totals = S.sum(axis=1, keepdims=True)
    emit = np.where(totals > 0, S / np.where(totals > 0, totals, 1.0), 1.0 / V)
    return Component(structure, emit), weighted_log(S, emit)


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


@dataclass
class Candidates:
    """The candidate structures of one family, whose M-steps are solved together: their
    emission counts are stacked into one matrix, so the statistics ``S`` of every candidate come
    from one product, and the closed-form parameters from sums over each candidate's cells."""

    family: str
    structures: list[Structure]
    counts_t: sp.csr_matrix  # (all cells, N): the candidates' transposed counts, stacked
    offsets: np.ndarray  # candidate i owns cells offsets[i] .. offsets[i + 1]
    owner: np.ndarray  # (all cells,) the candidate owning each cell
    base: np.ndarray  # (all cells,) default emissions (cells no parameter moves keep them)
    moved: dict  # parameter -> (cells, E at 0, E at 1)

    @classmethod
    def of(cls, family: str, structures: list[Structure]) -> "Candidates":
        sizes = np.array([st.machine.emit.size for st in structures])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        moved = {}
        for name in structures[0].params:
            cells, low, high = [], [], []
            for i, st in enumerate(structures):
                mask, lo, hi = st.cells[name]
                if not np.all((lo == 0) | (hi == 0)):
                    raise ValueError(f"{family}: {name} enters an emission cell other than as x or 1 - x")
                cells.append(offsets[i] + np.flatnonzero(mask.ravel()))
                low.append(lo)
                high.append(hi)
            moved[name] = (np.concatenate(cells), np.concatenate(low), np.concatenate(high))
        return cls(family, structures, sp.vstack([st.counts_t for st in structures]).tocsr(), offsets,
                   np.repeat(np.arange(len(structures)), sizes),
                   np.concatenate([st.machine.emit.ravel() for st in structures]), moved)

    @property
    def n_params(self) -> int:
        return self.structures[0].n_params

    def solve(self, weight: np.ndarray) -> tuple[Component, float]:
        """The best candidate of this family for the weights ``omega_n r_nj``, and its value."""
        S = self.counts_t @ weight
        if self.structures[0].spec is None:
            return m_step(self.structures[0], S)
        n = len(self.structures)
        emit = self.base.copy()
        values = {}
        for name, (cells, low, high) in self.moved.items():
            owner, stats = self.owner[cells], S[cells]
            a = np.bincount(owner, np.where(high == 0, stats, 0.0), minlength=n)
            b = np.bincount(owner, np.where(low == 0, stats, 0.0), minlength=n)
            total = a + b
            x = np.where(total > 0, b / np.where(total > 0, total, 1.0), 0.5)
            emit[cells] = low + x[owner] * (high - low)
            values[name] = x
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(S > 0, S * np.log(emit), 0.0)
        score = np.bincount(self.owner, terms, minlength=n)
        best = float(score.max())
        i = int(np.argmax(score >= best - TIE * max(1.0, abs(best)))) if np.isfinite(best) else 0
        st = self.structures[i]
        own = emit[self.offsets[i] : self.offsets[i + 1]].reshape(st.machine.emit.shape)
        return Component(st, own, {name: float(x[i]) for name, x in values.items()}), float(score[i])


def prepare(families: list[str], tokens: list[str], k: int, data: Storylines) -> list[Candidates]:
    """Every candidate structure of the chosen families, with its emission counts on ``data``,
    grouped by family, fewest parameters first (stable in the order the families were given):
    the M-step keeps the first of candidates that tie."""
    out = []
    for family in families:
        found = structures(family, tokens, k)
        for structure in found:
            structure.counts = emission_counts(structure.machine, data.tokens, len(tokens))
            structure.counts_t = structure.counts.T.tocsr()
        if found:
            out.append(Candidates.of(family, found))
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


def em(candidates: list[Candidates], K: int, data: Storylines,
       rng: np.random.Generator) -> tuple[list[Component], np.ndarray, float, int, bool]:
    """One EM run from responsibilities drawn from a flat Dirichlet."""
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
        if np.isfinite(value) and value - previous <= TOLERANCE * total:
            converged = True
            break
        previous = value
    return components, prior, value, iteration, converged


def fit_mixture(families: list[str], K: int, data: Storylines, tokens: list[str], k: int, seed: int,
                restarts: int) -> Fit:
    """The best of ``restarts`` EM runs (seeded: restart ``r`` uses ``SeedSequence([seed, K, r])``)."""
    candidates = prepare(families, tokens, k, data)
    runs = []
    for r in range(restarts):
        rng = np.random.default_rng(np.random.SeedSequence([seed, K, r]))
        runs.append((*em(candidates, K, data, rng), r))
    finals = [run[2] for run in runs]
    components, prior, value, iterations, converged, r = max(runs, key=lambda run: run[2])
    if not np.isfinite(value):
        raise DecomposeError(
            f"no mixture of {K} premises from the families {', '.join(families)} gives every storyline a positive "
            "probability; add a family with a floor (constant, cycle, iid, markov1, markov2)")
    order = sorted(range(K), key=lambda j: (-prior[j], j))
    return Fit([components[j] for j in order], prior[order], value, iterations, r, converged, finals)


def base_table(scenario: Scenario, name: str, description: str) -> dict:
    """The input scenario's vocabulary, context, sampling and run, no premises; absorption
    criteria kept unless they name a population (labels differ between decompositions)."""
    table = to_table(scenario)
    keep = {key: table[key] for key in ("vocabulary", "context", "sampling", "run") if key in table}
    criteria = {n: c for n, c in table.get("absorption", {}).items() if "population" not in c}
    out = {"name": name, "description": description, **keep, "simulacra": {}, "premises": {}}
    if criteria:
        out["absorption"] = criteria
    return out


def law(row: np.ndarray, tokens: list[str]) -> dict:
    """An emission row as a token table that sums to one (float rounding put on the largest)."""
    row = np.asarray(row, dtype=float) / row.sum()
    table = {t: float(p) for t, p in zip(tokens, row) if p > 0}
    top = max(table, key=table.get)
    table[top] = 0.0
    table[top] = 1.0 - sum(table.values())
    return table


def component_table(component: Component, tokens: list[str]) -> dict:
    """A fitted component as a simulacrum table of an existing kind."""
    s = component.structure
    if s.spec is not None:
        return s.spec.model_copy(update=component.values).model_dump(mode="json")
    if s.family == "iid":
        return {"kind": "iid", "probs": law(component.emit[0], tokens)}
    names = [n if n == "start" else "after_" + "_".join(tokens[int(i)] for i in n.split("_")[1:])
             for n in s.machine.states]
    states = {}
    for q, name in enumerate(names):
        on = {tokens[t]: names[s.machine.next[q, t]] for t in range(len(tokens)) if s.machine.next[q, t] != q}
        states[name] = {"emit": law(component.emit[q], tokens), **({"on": on} if on else {})}
    return {"kind": "automaton", "start": "start", "states": states}


def fit_table(scenario: Scenario, fit: Fit, families: list[str]) -> dict:
    """The fitted decomposition as a runnable scenario table."""
    tokens = list(scenario.vocabulary.tokens)
    K = len(fit.components)
    table = base_table(scenario, f"{scenario.name}_fit_k{K}",
                       f"ecology decompose: {K} premises from {', '.join(families)} fitted by EM to the static model "
                       f"of '{scenario.name}'")
    for j, (component, prior) in enumerate(zip(fit.components, fit.prior)):
        name = f"{component.family}{j}"
        table["simulacra"][name] = component_table(component, tokens)
        table["premises"][name] = {"prior": float(prior), "cast": [name]}
    return table


def prefix_laws(compiled: Compiled) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Every sequence ``h`` of at most ``k`` tokens with ``P(h) > 0``, with ``log P(h)`` and
    ``mu(. | h)`` (each read as a window: pads, then ``h``)."""
    V, k = compiled.n_tokens, compiled.scenario.context.length
    seqs = [()]
    for length in range(1, k + 1):
        seqs += list(itertools.product(range(V), repeat=length))
    windows = np.full((len(seqs), k), V, dtype=np.int64)
    for i, h in enumerate(seqs):
        if h:
            windows[i, k - len(h):] = h
    step = compiled.mixture.read(windows)
    keep = np.flatnonzero(np.isfinite(step.free_energy))
    return [seqs[i] for i in keep], -step.free_energy[keep], np.exp(step.log_mu[keep])


def check_trivial(compiled: Compiled) -> str | None:
    """Why the trivial decompositions are out of reach, or None."""
    V, k = compiled.n_tokens, compiled.scenario.context.length
    if V ** (k + 1) > TRIVIAL_SEQUENCES:
        return f"V^(k+1) = {V}^{k + 1} sequences exceeds {TRIVIAL_SEQUENCES}"
    return None


def single_premise_table(scenario: Scenario, compiled: Compiled) -> dict:
    """Remark 10's first trivial decomposition: one premise that is ``mu`` itself, an automaton
    whose state is the sequence read so far (up to ``k`` tokens) and which prints ``mu(. | h)``."""
    tokens = list(scenario.vocabulary.tokens)
    seqs, _, laws = prefix_laws(compiled)
    name = lambda h: "h" + "".join(f"_{tokens[t]}" for t in h)  # noqa: E731
    known = set(seqs)
    states = {}
    for h, row in zip(seqs, laws):
        on = {tokens[t]: name(h + (t,)) for t in range(len(tokens)) if h + (t,) in known}
        states[name(h)] = {"emit": law(row, tokens), **({"on": on} if on else {})}
    table = base_table(scenario, f"{scenario.name}_single", f"Remark 10: the static model of '{scenario.name}' as one premise")
    table["simulacra"]["mu"] = {"kind": "automaton", "start": name(()), "states": states}
    table["premises"]["mu"] = {"prior": 1.0, "cast": ["mu"]}
    return table


def storyline_table(scenario: Scenario, compiled: Compiled) -> dict:
    """Remark 10's second trivial decomposition: one deterministic premise per sequence ``y`` of
    ``k + 1`` tokens with ``P(y) > 0``, prior ``P(y)``; it prints ``y`` and then (never read, a
    window holds at most ``k`` tokens) any token uniformly."""
    tokens = list(scenario.vocabulary.tokens)
    V, width = len(tokens), scenario.context.length + 1
    data = exact_storylines(compiled)
    table = base_table(scenario, f"{scenario.name}_storylines",
                       f"Remark 10: the static model of '{scenario.name}' as one deterministic premise per storyline")
    uniform = law(np.ones(V), tokens)
    for i, (y, p) in enumerate(zip(data.tokens, data.weight)):
        states = {f"s{j}": {"emit": {tokens[y[j]]: 1.0}, "on": {t: f"s{j + 1}" for t in tokens}} for j in range(width)}
        states[f"s{width}"] = {"emit": uniform}
        name = "story_" + "_".join(tokens[t] for t in y)
        table["simulacra"][name] = {"kind": "automaton", "start": "s0", "states": states}
        table["premises"][name] = {"prior": float(p), "cast": [name]}
    return table


def free_parameters(scenario: Scenario) -> int:
    """Free parameters of a decomposition as its file states it: per premise its simulacra's
    (automaton: states x (V - 1); iid: V - 1; coin, constant, cycle: 1; waluigi: 2) or its
    model's (``n_parameters``: table rows x (V - 1), n-gram counts, transformer weights), one per
    population member, and the priors (premises - 1). A deterministic law still counts its
    states: the count is of the table's entries, not of what the data pinned down."""
    V = len(scenario.vocabulary.tokens)

    def of(spec) -> int:
        kind = getattr(spec, "kind", "automaton")
        if kind == "automaton":
            return len(spec.states) * (V - 1)
        return {"iid": V - 1, "coin": 1, "constant": 1, "cycle": 1, "waluigi": 2}[kind]

    count = sum(of(scenario.simulacra[c]) for p in scenario.premises.values() for c in p.cast or ())
    for name, model in model_premises(scenario).items():
        if model.n_parameters is None:
            raise DecomposeError(f"premises.{name}.model: the parameters of a {model.kind} model cannot be counted, "
                                 "so its BIC is undefined; decompose a table, n-gram or transformer model")
        count += model.n_parameters
    count += sum(p.count for p in scenario.populations.values())
    members = len(scenario.premises) + sum(p.count for p in scenario.populations.values())
    return count + members - 1


def storyline_parameters(scenario: Scenario) -> int:
    """The per-storyline decomposition is fixed by its priors: premises - 1."""
    return len(scenario.premises) - 1


@dataclass
class Visits:
    """Windows the dynamic model visits at steps 0 .. L-1, with weights summing to one."""

    windows: np.ndarray  # (n, width), pads first
    weight: np.ndarray
    exact: bool
    count: int  # storylines (sampled) or page-states (exact)


def exact_visits(compiled: Compiled, length: int, max_states: int) -> Visits:
    """The exact chain's law averaged over steps 0 .. L-1 from the initial window."""
    from ecology.exact.chain import build_chain

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
    from ecology.model import EcologyModel

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


def fifo_rule(compiled: Compiled, width: int) -> DeletionRule:
    """Plain fifo at the window's width: the rule under which Remark 9's defect is measured."""
    return Fifo(width, compiled.n_tokens)


def columns(reference: Compiled, candidate: Compiled, visits: Visits, held_out: Storylines, train: Storylines,
            n_params: int) -> dict:
    """The comparison row of one decomposition (see ``docs/decompose.md``)."""
    ref = reference.mixture.read(visits.windows)
    got = candidate.mixture.read(visits.windows)
    mu = np.exp(ref.log_mu)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(mu > 0, mu * (ref.log_mu - got.log_mu), 0.0)
    kl = terms.sum(axis=1)
    kl = np.where(np.isnan(kl), np.inf, kl)
    kl_mean = float(visits.weight @ kl) if np.all(np.isfinite(kl[visits.weight > 0])) else math.inf

    amp = np.exp(got.log_amplitude)
    with np.errstate(invalid="ignore", divide="ignore"):
        amp_entropy = -np.sum(np.where(amp > 0, amp * got.log_amplitude, 0.0), axis=1)
    k = reference.scenario.context.length
    if visits.windows.shape[1] == k:
        drift = candidate.mixture.drift(visits.windows, got, fifo_rule(candidate, k))
    else:  # deletion "none": the defect is taken on the last k tokens, as a fifo window would hold them
        last = visits.windows[:, -k:]
        drift = candidate.mixture.drift(last, candidate.mixture.read(last), fifo_rule(candidate, k))
    defect = 0.5 * np.abs(drift).sum(axis=1)

    heldout = candidate.mixture.sequence_log_prob(held_out.tokens)
    train_ll = candidate.mixture.sequence_log_prob(train.tokens)
    if held_out.exact:
        held_mean = float(held_out.weight @ heldout) if np.all(np.isfinite(heldout)) else -math.inf
        held_se = 0.0
    else:
        held_mean = float(heldout.mean())
        held_se = float(heldout.std(ddof=1) / math.sqrt(len(heldout))) if len(heldout) > 1 else math.nan
    if train.exact:
        n = None
        train_total = float(train.weight @ train_ll) if np.all(np.isfinite(train_ll)) else -math.inf
    else:
        n = len(train.weight)
        train_total = float(train_ll.sum())
    return {
        "premises": len(candidate.premises),
        "kl_mean": kl_mean,
        "kl_max": float(np.max(kl[visits.weight > 0])),
        "heldout_loglik": held_mean,
        "heldout_se": held_se,
        "train_loglik": train_total,
        "params": n_params,
        "defect_mean": _finite(float(visits.weight @ np.nan_to_num(defect, nan=0.0))) if np.all(np.isfinite(defect)) else None,
        "defect_max": _finite(float(np.max(defect))) if np.all(np.isfinite(defect)) else None,
        "amplitude_entropy": _finite(float(visits.weight @ amp_entropy)) if np.all(np.isfinite(amp_entropy)) else None,
        "n_for_bic": n,
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def bic(row: dict, n_storylines: int) -> float | None:
    """``-2 log L + d log n``; with exact data ``log L = n E[log q(y)]`` at the notional size
    ``n = --storylines``."""
    n = row["n_for_bic"] or n_storylines
    total = row["train_loglik"] * (n if row["n_for_bic"] is None else 1)
    return _finite(-2.0 * total + row["params"] * math.log(n))


@dataclass
class Request:
    families: list[str]
    components: list[int]
    storylines: int = 2000
    length: int | None = None  # default 4k
    seed: int | None = None  # default run.seed
    restarts: int = 5
    data: str = "auto"  # "exact", "samples" or "auto"
    max_states: int = 50_000
    compare: list[tuple[str, Scenario]] = field(default_factory=list)


def parse_components(text: str) -> list[int]:
    """``K`` or ``K1:K2`` (inclusive)."""
    try:
        low, _, high = text.partition(":")
        first, last = int(low), int(high or low)
    except ValueError:
        raise DecomposeError(f"--components: {text!r} is not K or K1:K2 (integers)") from None
    if first < 1 or last < first:
        raise DecomposeError(f"--components: {text!r}: need 1 <= K1 <= K2")
    return list(range(first, last + 1))


def parse_families(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    for f in names:
        if f not in FAMILIES:
            raise DecomposeError(f"--family: unknown family {f!r}; use one or more of {', '.join(FAMILIES)}")
    if not names:
        raise DecomposeError("--family: give at least one family")
    return list(dict.fromkeys(names))


def min_params(families: list[str], V: int) -> int:
    """The fewest free parameters a premise from these families has."""
    each = {"iid": V - 1, "constant": 1 if V > 1 else 0, "cycle": 1 if V > 1 else 0, "waluigi": 2,
            "markov1": (V - 1) * (1 + V), "markov2": (V - 1) * (1 + V + V * V)}
    return min(each[f] for f in families)


def check_support(K: int, families: list[str], V: int, data: Storylines) -> None:
    """A mixture is a law on the distinct training storylines: it cannot have more free
    parameters than that law (distinct storylines - 1), nor more premises than storylines."""
    distinct = data.distinct()
    need = K * (min_params(families, V) + 1) - 1
    if K > distinct or need > distinct - 1:
        raise DecomposeError(
            f"--components: K = {K} needs at least {need} free parameters but the data ({distinct} distinct "
            f"storylines) support at most {distinct - 1}; use a smaller K (or more --storylines)")


def decompose(scenario: Scenario, request: Request) -> dict:
    """Fit, build the decompositions, compute the comparison; returns everything to write."""
    tokens = list(scenario.vocabulary.tokens)
    V, k = len(tokens), scenario.context.length
    seed = scenario.run.seed if request.seed is None else request.seed
    if seed < 0:
        raise DecomposeError(f"--seed: {seed}: must be at least 0")
    length = request.length or 4 * k
    if length < 1:
        raise DecomposeError("--length: must be at least 1")
    for f in request.families:
        if f == "waluigi" and V < 2:
            raise DecomposeError("--family: waluigi needs at least two tokens")
    compiled = compile_scenario(scenario)
    fitting = compile_scenario(fitting_scenario(scenario))
    seeds = np.random.SeedSequence(seed).generate_state(4)
    exact_possible = V ** (k + 1) <= EXACT_SEQUENCES
    if request.data == "exact" and not exact_possible:
        raise DecomposeError(f"--data exact: V^(k+1) = {V}^{k + 1} sequences exceeds {EXACT_SEQUENCES}; use --data samples")
    use_exact = request.data == "exact" or (request.data == "auto" and exact_possible)
    if use_exact:
        train = held = exact_storylines(fitting)
    else:
        train = sample_storylines(scenario, request.storylines, int(seeds[0]))
        held = sample_storylines(scenario, max(request.storylines // 4, 2), int(seeds[1]))
    for K in request.components:
        check_support(K, request.families, V, train)

    fits, decompositions = {}, []
    for K in request.components:
        fit = fit_mixture(request.families, K, train, tokens, k, int(seeds[2]), request.restarts)
        fits[K] = fit
        decompositions.append({"name": f"fit K={K}", "kind": "fitted", "K": K,
                               "table": fit_table(scenario, fit, request.families), "params": fit.n_params})
    decompositions.append({"name": "input", "kind": "input", "table": to_table(scenario),
                           "params": free_parameters(scenario)})
    trivial_note = check_trivial(compiled)
    if trivial_note is None:
        single = single_premise_table(scenario, compiled)
        stories = storyline_table(scenario, compiled)
        decompositions.append({"name": "single premise mu", "kind": "single", "table": single,
                               "params": free_parameters(validate(single))})
        decompositions.append({"name": "one premise per storyline", "kind": "storylines", "table": stories,
                               "params": storyline_parameters(validate(stories))})
    for path, other in request.compare:
        if list(other.vocabulary.tokens) != tokens:
            raise DecomposeError(f"{path}: vocabulary.tokens: {list(other.vocabulary.tokens)} differs from the input's "
                                 f"{tokens}; a decomposition of the same mu needs the same tokens in the same order")
        table = base_table(scenario, other.name, other.description)
        other_table = to_table(other)
        for key in ("simulacra", "premises", "populations"):
            if other_table.get(key):
                table[key] = other_table[key]
        decompositions.append({"name": f"compare {Path(path).name}", "kind": "compare", "table": table,
                               "params": free_parameters(other)})

    try:
        visits = exact_visits(compiled, length, request.max_states) if use_exact else None
    except UserError:
        visits = None
    story_windows = storyline_windows(scenario, min(request.storylines, 500), length, int(seeds[3]))
    if visits is None:
        visits = sampled_visits(story_windows)

    rows = []
    for d in decompositions:
        try:
            candidate = compile_scenario(validate(d["table"]))
        except UserError as err:
            raise DecomposeError(f"decomposition '{d['name']}' does not compile: {err}") from None
        row = {"decomposition": d["name"], **columns(compiled, candidate, visits, held, train, d["params"])}
        row["bic"] = bic(row, request.storylines)
        rows.append(row)
        d["compiled"] = candidate
    return {"scenario": scenario, "compiled": compiled, "fits": fits, "decompositions": decompositions,
            "rows": rows, "train": train, "held": held, "visits": visits, "story_windows": story_windows,
            "length": length, "seed": seed, "trivial_note": trivial_note, "families": request.families}


def amplitude_story(compiled: Compiled, windows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(labels, (L, R, labels) amplitudes) of a decomposition along storyline windows, the
    largest ``TOP_LABELS`` labels by mean amplitude kept and the others summed as ``other``."""
    L, R, width = windows.shape
    amp = compiled.mixture.population_amplitudes(compiled.mixture.read(windows.reshape(-1, width)).log_amplitude)
    amp = np.nan_to_num(amp).reshape(L, R, -1)
    labels = list(compiled.mixture.labels)
    if len(labels) > TOP_LABELS:
        order = np.argsort(-amp.mean(axis=(0, 1)), kind="stable")
        top = order[: TOP_LABELS - 1]
        rest = amp[:, :, order[TOP_LABELS - 1 :]].sum(axis=2, keepdims=True)
        amp = np.concatenate([amp[:, :, top], rest], axis=2)
        labels = [labels[i] for i in top] + [f"other ({len(order) - TOP_LABELS + 1})"]
    return labels, amp


def summary(result: dict) -> dict:
    """The JSON report."""
    s = result["scenario"]
    fits = {}
    for K, fit in result["fits"].items():
        fits[str(K)] = {
            "log_likelihood": fit.log_likelihood, "iterations": fit.iterations, "converged": fit.converged,
            "best_restart": fit.restart, "restart_log_likelihoods": [json_number(x) for x in fit.restarts],
            "params": fit.n_params,
            "components": [{"family": c.family, "prior": float(p),
                            "simulacrum": component_table(c, list(s.vocabulary.tokens))}
                           for c, p in zip(fit.components, fit.prior)],
        }
    train, visits = result["train"], result["visits"]
    return {
        "scenario": s.name,
        "families": result["families"],
        "seed": result["seed"],
        "data": {"kind": "exact" if train.exact else "samples", "storylines": len(train.weight) if not train.exact else None,
                 "held_out": len(result["held"].weight) if not result["held"].exact else None,
                 "distinct": train.distinct(), "length": s.context.length + 1},
        "visits": {"kind": "exact" if visits.exact else "samples", "length": result["length"],
                   "windows": len(visits.weight), "count": visits.count},
        "trivial": result["trivial_note"] or "built",
        "fits": fits,
        "table": [{key: json_number(value) for key, value in row.items() if key != "n_for_bic"} for row in result["rows"]],
    }


def json_number(x):
    """Infinite floats as the strings "inf" / "-inf" (JSON has no infinity); anything else as is."""
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def text_table(report: dict) -> str:
    """The comparison as aligned text."""
    heads = ["decomposition", "premises", "E[KL]", "held-out loglik", "params", "BIC", "defect mean", "defect max",
             "amp. entropy"]
    lines = []
    for row in report["table"]:
        held = fmt(row["heldout_loglik"], 6)
        if row["heldout_se"]:
            held += f" ± {fmt(1.96 * row['heldout_se'], 2)}"
        lines.append([row["decomposition"], str(row["premises"]), fmt(row["kl_mean"], 3), held, str(row["params"]),
                      fmt(row["bic"], 6), fmt(row["defect_mean"], 3), fmt(row["defect_max"], 3),
                      fmt(row["amplitude_entropy"], 3)])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def component_text(simulacrum: dict) -> str:
    """A fitted simulacrum in one line: its parameters, or each state's law (4 digits)."""
    def laws(table: dict) -> str:
        return "{" + ", ".join(f"{t}: {p:.4g}" for t, p in table.items()) + "}"

    if "states" in simulacrum:
        return "; ".join(f"{name} {laws(state['emit'])}" for name, state in simulacrum["states"].items())
    if "probs" in simulacrum:
        return laws(simulacrum["probs"])
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in simulacrum.items() if k != "kind")


def describe(report: dict) -> str:
    """The text report: data, fits, table, and how to read it."""
    d, v = report["data"], report["visits"]
    data = (f"exact: all storylines of {d['length']} tokens weighted by their probability ({d['distinct']} with P > 0)"
            if d["kind"] == "exact" else
            f"{d['storylines']} sampled storylines of {d['length']} tokens ({d['distinct']} distinct), "
            f"{d['held_out']} held out")
    visits = (f"exact chain law averaged over steps 0..{v['length'] - 1} ({v['windows']} page-states)"
              if v["kind"] == "exact" else f"{v['count']} sampled storylines, steps 0..{v['length'] - 1}")
    lines = [f"ecology decompose {report['scenario']}: families {', '.join(report['families'])}, seed {report['seed']}",
             f"fitting data: {data}", f"visited windows: {visits}",
             f"trivial decompositions: {report['trivial']}", ""]
    for K, fit in report["fits"].items():
        state = "converged" if fit["converged"] else "NOT converged"
        lines.append(f"K = {K}: log-likelihood {fit['log_likelihood']:.8g} ({state} in {fit['iterations']} iterations, "
                     f"best of {len(fit['restart_log_likelihoods'])} restarts)")
        for c in fit["components"]:
            lines.append(f"  prior {c['prior']:.4f}  {c['family']}: {component_text(c['simulacrum'])}")
    lines += ["", text_table(report), "",
              "No column is the answer: E[KL] and held-out log-likelihood measure the token law (every exact "
              "decomposition ties), params and BIC the description length, the defect how far amplitudes are from "
              "martingales under fifo deletion (Remark 9), the entropy how concentrated the amplitude story is."]
    return "\n".join(lines)


def write_report(target: Path, result: dict, report: dict) -> None:
    """Scenario files, report.json, report.txt, table.csv and plots, written atomically."""
    import tomli_w

    from ecology.io.safe import write_atomically

    def fill(d: Path) -> None:
        for item in result["decompositions"]:
            if item["kind"] == "fitted":
                (d / f"fitted_k{item['K']}.toml").write_text(tomli_w.dumps(item["table"]))
            elif item["kind"] in ("single", "storylines"):
                (d / f"{item['kind']}.toml").write_text(tomli_w.dumps(item["table"]))
        (d / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (d / "report.txt").write_text(describe(report) + "\n")
        import pandas as pd

        pd.DataFrame(report["table"]).to_csv(d / "table.csv", index=False)
        stories = [(item["name"], *amplitude_story(item["compiled"], result["story_windows"]))
                   for item in result["decompositions"]]
        draw_stories(stories, report["scenario"], d / "stories.png")
        fitted = [row for row in report["table"] if row["decomposition"].startswith("fit K=")]
        draw_comparison(fitted, report["scenario"], d / "comparison.png")

    write_atomically(target, fill)


def draw_stories(stories: list[tuple[str, list[str], np.ndarray]], title: str, path: Path) -> None:
    """Per decomposition: mean amplitude (band 10%–90% of storylines) per premise, and one
    storyline's amplitudes stacked; the storylines are the same for every decomposition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(stories), 2, figsize=(11, 2.6 * len(stories)), squeeze=False)
    for (name, labels, amp), (left, right) in zip(stories, axes):
        steps = np.arange(amp.shape[0])
        for j, label in enumerate(labels):
            line = left.plot(steps, amp[:, :, j].mean(axis=1), label=label)[0]
            left.fill_between(steps, np.quantile(amp[:, :, j], 0.1, axis=1), np.quantile(amp[:, :, j], 0.9, axis=1),
                              color=line.get_color(), alpha=0.2)
        right.stackplot(steps, amp[:, 0, :].T, labels=labels)
        for ax in (left, right):
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("amplitude")
        left.set_title(f"{name}: mean over storylines (band 10%–90%)", fontsize=9)
        right.set_title(f"{name}: storyline 0", fontsize=9)
        left.legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("step (tokens generated)")
    fig.suptitle(f"{title}: the same storylines, told by each decomposition")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_comparison(rows: list[dict], title: str, path: Path) -> None:
    """BIC and the martingale defect of the fitted decompositions against K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    K = [row["premises"] for row in rows]
    a.plot(K, [np.nan if row["bic"] is None else row["bic"] for row in rows], marker="o")
    a.set_xlabel("K (premises fitted)")
    a.set_ylabel("BIC")
    b.plot(K, [np.nan if row["defect_mean"] is None else row["defect_mean"] for row in rows], marker="o", label="mean")
    b.plot(K, [np.nan if row["defect_max"] is None else row["defect_max"] for row in rows], marker="s", label="max")
    b.set_xlabel("K (premises fitted)")
    b.set_ylabel("martingale defect (fifo)")
    b.legend()
    for ax in (a, b):
        ax.set_xticks(K)
    fig.suptitle(f"{title}: fitted decompositions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
