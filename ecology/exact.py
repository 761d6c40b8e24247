"""Exact analysis of the page-state Markov chain of a scenario (Remarks 4–6).

With a finite window the dynamic model is a finite chain over page-states (SCIENCE.md §1). This
module enumerates the page-states reachable from the initial window, breadth-first, with the
simulator's own next-token law (:meth:`ecology.dynamics.Mixture.read`), so chain and simulation
share one source of truth, and writes the scenario report. The mathematics of the chain (classes,
stationary laws with error estimates, spectrum, hitting times, committors) lives in
:mod:`ecology.markov`; docs/exact.md states it.

Report items, for the initial page-state ``x``:

- closed classes, their periods, the probability of ending in each, their stationary laws (with
  the per-law L1 error estimate) and the expected time to enter a closed class;
- for each criterion with holding set ``H``: the expected hitting time ``E_x[min{t : X_t in H}]``
  (``inf`` when ``H`` is missed with positive probability) and ``P_x(H entered by the horizon)``
  (the horizon is ``--horizon``, else the scenario's ``run.steps``);
- metastable classes at tolerance ``D`` (closed classes once transitions below ``D`` are
  ignored): escape per step, expected exit time from the most likely state, and where the chain
  goes when it leaves (the exit law);
- optional: a hitting query ``--hit A [--before B]`` (expected hitting time of ``A`` and
  ``P(A before B)`` from the initial state), exact criterion curves up to ``--horizon`` and the
  row of ``T^n`` (``--power``).

Every computation whose size grows with a flag is estimated first (work ``steps x transitions``
for curves and powers) and refused with one line naming the flag when over budget.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .absorption import Periodic
from .budget import TooManyStates, check_exact, check_model_reads
from .dynamics import Compiled
from .markov import DENSE_LIMIT, ChainError, MarkovChain, StationaryLaw, times_power
from .markov import gth, stationary  # noqa: F401  (re-exported: the chain's API used to live here)
from .scenario import ScenarioError, UserError

DEFAULT_MAX_STATES = 2_500_000  # the one state budget of every exact computation (run, sweep, analyze)
DEFAULT_MAX_WORK = 2 * 10**10  # sparse multiply-adds allowed for curves and powers (about a minute)
MAX_TRANSITIONS_PER_STATE = 24  # transition budget: max_states x this (memory of the enumeration)


class TooMuchWork(UserError):
    """A curve or power would exceed the work budget."""


# ---------------------------------------------------------------------------------------------
# Page-state enumeration


def _keys(windows: np.ndarray, base: int) -> np.ndarray:
    """Keys of window rows that are equal exactly when the windows are: int64 codes when
    ``base^width < 2^62``, else the rows' raw bytes in an integer type wide enough for ``base``."""
    width = windows.shape[1]
    if width * math.log2(base) < 62:
        powers = base ** np.arange(width - 1, -1, -1, dtype=np.int64)
        return windows.astype(np.int64) @ powers
    dtype = np.uint8 if base <= 2**8 else np.uint16 if base <= 2**16 else np.uint32
    rows = np.ascontiguousarray(windows.astype(dtype))
    return rows.view(np.dtype((np.void, width * rows.itemsize))).ravel()


@dataclass
class PageChain:
    """The page-state chain of a compiled scenario."""

    compiled: Compiled
    windows: np.ndarray  # (n, memory + k) page-states (with ``memory`` deleted tokens first)
    chain: MarkovChain
    memory: int = 0
    depth: int = 0  # the largest number of steps needed to reach a page-state from the initial one
    initial: int = 0  # states are numbered in breadth-first order from the initial window

    def label(self, i: int) -> str:
        return self.compiled.label(self.windows[i, self.memory :])

    def labels(self) -> list[str]:
        return [self.label(i) for i in range(self.chain.n_states)]

    @cached_property
    def population_amplitudes(self) -> np.ndarray:
        """(n, labels) amplitude of each population label on each page-state."""
        mixture, windows = self.compiled.mixture, self.windows[:, self.memory :]
        return np.concatenate([mixture.population_amplitudes(mixture.read(windows[i : i + CHUNK]).log_amplitude)
                               for i in range(0, len(windows), CHUNK)])

    def holds(self, criterion) -> np.ndarray:
        return criterion.holds(self.windows, self.population_amplitudes)

    def extended(self, max_states: int) -> PageChain:
        """The chain whose states also carry the deleted tokens the criteria need (``periodic``)."""
        if self.memory == self.compiled.memory:
            return self
        if "_extended" not in self.__dict__:
            self.__dict__["_extended"] = build_chain(self.compiled, max_states, self.compiled.memory)
        return self.__dict__["_extended"]


CHUNK = 32_768  # windows per call of the mixture (bounds its temporaries)
SUCCESSOR_CHUNK = 2**20  # successor windows generated at once while enumerating (bounds memory)


def next_token_law(compiled: Compiled, windows: np.ndarray, depth: int) -> np.ndarray:
    """(rows, V) sampling law on page-states reached in ``depth`` steps; impossible ones are errors."""
    step = compiled.mixture.read(windows)
    if step.impossible.any():
        bad = windows[np.flatnonzero(step.impossible)[0]]
        raise ScenarioError(
            "", f"the page-state '{compiled.label(bad)}', reachable in {depth} steps, has probability 0 under "
            "every premise (deletion made the premises misread it); give some premise a softmax floor",
        )
    return np.exp(step.log_p)


def build_chain(compiled: Compiled, max_states: int = DEFAULT_MAX_STATES, memory: int = 0,
                max_work: int = DEFAULT_MAX_WORK) -> PageChain:
    """Enumerate the page-states reachable from the initial window and their transitions.

    With ``memory = m`` a state also carries the ``m`` most recently deleted tokens (needed by
    the ``periodic`` criterion); the next-token law reads only the page-state. Before anything is
    enumerated, the worst case the state budget admits is checked against the memory budget
    (:func:`ecology.budget.check_exact`), and the work of model premises, which read each
    page-state once, against ``max_work``. The transition matrix is assembled row by row in CSR
    form (states are numbered breadth-first, so the rows of each chunk are consecutive): 12 bytes
    per transition, with no coordinate list.
    """
    check_model_reads(compiled.scenario, max_states, max_work)
    ctx = compiled.scenario.context
    if ctx.deletion == "none":
        raise ScenarioError(
            "context.deletion",
            "'none' never deletes, so every step makes a new, longer page-state and the chain is "
            "infinite; analyze a finite window (deletion = \"fifo\", \"block\" or \"message\")",
        )
    if memory and not compiled.rule.sliding:
        raise ScenarioError(
            "absorption", "exact curves of a 'periodic' criterion need deletion = \"fifo\" without a pinned prefix "
            "(under other rules the page-state d steps earlier is not a function of the deleted tokens)",
        )
    width = len(compiled.window)
    extended = [width + compiled.memory] if compiled.memory and compiled.rule.sliding else []
    emitted = np.zeros(compiled.n_tokens, dtype=bool)
    for premise in compiled.mixture.premises:  # a model premise may print any token
        emitted |= True if premise.automaton is None else np.isfinite(premise.automaton.emit_logp).any(axis=0)
    symbols = int((emitted | np.isin(np.arange(compiled.n_tokens), compiled.window)).sum()) + 2
    check_exact(compiled.scenario, max_states, MAX_TRANSITIONS_PER_STATE, [width] + extended, int(emitted.sum()), symbols)
    V = compiled.n_tokens
    base = V + 2
    start = np.concatenate([np.full(memory, V + 1), compiled.window]).astype(np.uint8 if base <= 256 else np.int32)
    max_transitions = max_states * MAX_TRANSITIONS_PER_STATE
    index_type = np.int32 if max_transitions < 2**31 else np.int64  # state ids and row pointers

    known_keys = _keys(start[None], base)
    known_ids = np.array([0], dtype=index_type)
    windows = [start[None]]
    frontier = start[None]
    n = 1
    n_transitions = 0
    row_counts, columns, probs = [], [], []  # per chunk: transitions of each row, their targets and probabilities
    depth = 0
    rows_per_chunk = max(1, min(CHUNK, SUCCESSOR_CHUNK // V))
    while len(frontier):
        fresh_windows = []
        for lo in range(0, len(frontier), rows_per_chunk):
            rows = frontier[lo : lo + rows_per_chunk]
            p = next_token_law(compiled, rows[:, memory:], depth)
            src, tok = np.nonzero(p > 0)
            n_transitions += len(src)
            if n_transitions > max_transitions:
                raise TooManyStates(
                    f"the chain has more than {max_transitions:,} transitions ({max_states:,} states x "
                    f"{MAX_TRANSITIONS_PER_STATE}) after {n:,} page-states; raise --max-states if memory allows, "
                    "or shorten context.length"
                )
            succ = compiled.rule.successor(rows[src], tok)
            keys = _keys(succ, base)
            row_counts.append(np.bincount(src, minlength=len(rows)).astype(index_type))
            probs.append(p[src, tok])
            del p, src, tok
            unique, first = np.unique(keys, return_index=True)
            pos = np.searchsorted(known_keys, unique)
            seen = pos < len(known_keys)
            seen[seen] = known_keys[pos[seen]] == unique[seen]
            fresh = first[~seen]
            if n + len(fresh) > max_states:
                raise TooManyStates(
                    f"the chain has more than {max_states:,} page-states ({n + len(fresh):,} found after {depth + 1} "
                    "breadth-first steps); raise --max-states if memory allows, or shorten context.length"
                )
            fresh_windows.append(succ[fresh])
            del succ
            merged = np.concatenate([known_keys, unique[~seen]])
            order = np.argsort(merged, kind="stable")
            known_keys = merged[order]
            known_ids = np.concatenate([known_ids, np.arange(n, n + len(fresh), dtype=index_type)])[order]
            del merged, order
            n += len(fresh)
            columns.append(known_ids[np.searchsorted(known_keys, keys)])
        frontier = np.concatenate(fresh_windows)
        windows.append(frontier)
        depth += 1 if len(frontier) else 0
    del known_keys, known_ids

    indptr = np.zeros(n + 1, dtype=index_type)
    np.cumsum(np.concatenate(row_counts), out=indptr[1:])
    P = sp.csr_matrix((_drain(probs), _drain(columns), indptr), shape=(n, n))
    P.sum_duplicates()  # sorts each row's columns (no two tokens lead to one page-state, so nothing is summed)
    return PageChain(compiled, np.concatenate(windows), MarkovChain(P), memory, depth)


def _drain(parts: list[np.ndarray]) -> np.ndarray:
    """The concatenation of (non-empty) ``parts``, emptying the list as it goes: each part is freed
    once copied, so the resident peak is the result plus one part."""
    out = np.empty(sum(len(a) for a in parts), dtype=parts[0].dtype)
    at = 0
    for i in range(len(parts)):
        part = parts[i]
        parts[i] = None
        out[at : at + len(part)] = part
        at += len(part)
    parts.clear()
    return out


# ---------------------------------------------------------------------------------------------
# The report


TOP_STATES = 20
FEW_STATES = 20
TOP_EXITS = 5


PER_CALL = 10**4  # a sparse product's fixed cost, in multiply-adds: a step of a small chain is not free


def _steps_cost(steps: int, nnz: int) -> int:
    """Multiply-adds of ``steps`` one-step propagations over ``nnz`` transitions."""
    return steps * max(nnz, PER_CALL)


def _work_check(what: str, steps: int, nnz: int, max_work: int, flag: str) -> None:
    if _steps_cost(steps, nnz) > max_work:
        raise TooMuchWork(
            f"{what} needs {steps:,} steps over {nnz:,} transitions, about {_steps_cost(steps, nnz):.3g} operations, "
            f"over the budget of {max_work:.3g}; lower {flag} or raise --max-work"
        )


def criterion_curves(compiled: Compiled, chain: PageChain, horizon: int, max_states: int,
                     max_work: int = DEFAULT_MAX_WORK) -> dict:
    """Exact ``holding`` (``P(X_t in H)``) and ``reached`` (``H`` entered at some ``s <= t``)
    curves for every criterion, t = 0 .. horizon, propagating two vectors (memory O(n + horizon))."""
    curves = {}
    for c in compiled.criteria:
        pc, h = criterion_chain(compiled, chain, c, max_states)
        _work_check("the exact curves", horizon, 2 * pc.chain.P.nnz, max_work, "--horizon (or run.steps)")
        PT = pc.chain.P.T.tocsr()
        dist = np.zeros(pc.chain.n_states)
        dist[pc.initial] = 1.0
        holding = np.empty(horizon + 1)
        holding[0] = dist[h].sum()
        for t in range(horizon):
            dist = PT @ dist
            holding[t + 1] = dist[h].sum()
        curves[c.name] = {"holding": np.clip(holding, 0.0, 1.0).tolist(),
                          "reached": pc.chain.hitting_curve(pc.initial, h, horizon).tolist()}
    return curves


def criterion_chain(compiled: Compiled, chain: PageChain, criterion, max_states: int) -> tuple[PageChain, np.ndarray]:
    """The chain a criterion is decided on (the extended one for ``periodic``) and its holding mask."""
    pc = chain
    if isinstance(criterion, Periodic):
        pc = chain.extended(max_states)
    return pc, pc.holds(criterion)


def hit_by(mc: MarkovChain, start: int, target: np.ndarray, steps: int, max_work: int, flag: str) -> float:
    """``P_start(target entered at some t <= steps)``: by propagation when ``steps x transitions``
    fits the work budget, else ``1 - e_start Q^steps 1`` by squaring the dense not-yet-entered block
    ``Q`` (small chains), else refused naming ``flag``."""
    if target[start]:
        return 1.0
    if _steps_cost(steps, mc.P.nnz) <= max_work:
        return float(mc.hitting_curve(start, target, steps)[-1])
    n = mc.n_states
    if n <= DENSE_LIMIT and math.log2(max(steps, 2)) * n**3 <= max_work:
        Q = mc.P.toarray()
        Q[:, target] = 0.0
        row = np.zeros(n)
        row[start] = 1.0
        return float(np.clip(1.0 - times_power(row, Q, steps).sum(), 0.0, 1.0))
    _work_check("P(hit by horizon)", steps, mc.P.nnz, max_work, flag)
    raise AssertionError("unreachable")


def distribution_after(mc: MarkovChain, start: int, steps: int, max_work: int) -> np.ndarray:
    """``e_start T^steps`` by propagation, or by squaring a dense ``T`` for small chains; refused
    over the work budget naming ``--power``."""
    if _steps_cost(steps, mc.P.nnz) <= max_work:
        return mc.distribution_after(start, steps)
    n = mc.n_states
    if n <= DENSE_LIMIT and math.log2(max(steps, 2)) * n**3 <= max_work:
        row = np.zeros(n)
        row[start] = 1.0
        return times_power(row, mc.P.toarray(), steps)
    _work_check("T^n", steps, mc.P.nnz, max_work, "--power")
    raise AssertionError("unreachable")


def target_mask(compiled: Compiled, pc: PageChain, spec: str, max_states: int, flag: str) -> tuple[PageChain, np.ndarray]:
    """A target set from its description: a criterion name, ``class:I`` (closed class I), or
    page-state labels separated by commas (``"U U U, F U U"``)."""
    for c in compiled.criteria:
        if c.name == spec:
            return criterion_chain(compiled, pc, c, max_states)
    if spec.startswith("class:"):
        index = spec[len("class:"):]
        classes = pc.chain.recurrent_classes
        if not index.isdigit() or int(index) >= len(classes):
            raise UserError(f"{flag} {spec!r}: there are {len(classes)} closed classes, numbered from 0")
        mask = np.zeros(pc.chain.n_states, dtype=bool)
        mask[classes[int(index)]] = True
        return pc, mask
    labels = np.array(pc.labels())
    mask = np.zeros(pc.chain.n_states, dtype=bool)
    for label in spec.split(","):
        label = " ".join(label.split())
        found = labels == label
        mask |= found
        if not found.any():
            names = ", ".join(c.name for c in compiled.criteria) or "none"
            raise UserError(f"{flag} {spec!r}: '{label}' is neither a criterion ({names}), 'class:I', nor a reachable "
                            f"page-state (tokens separated by spaces, e.g. '{pc.label(pc.initial)}')")
    return pc, mask


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


PASSAGE_REPORT_LIMIT = 64  # classes up to this size get Kemeny's constant and the longest mean first passage


def _passage_report(mc: MarkovChain, members: np.ndarray) -> dict:
    """Kemeny's constant and ``max_{i, j} E_i[time to hit j]`` of a small closed class."""
    if not 2 <= len(members) <= PASSAGE_REPORT_LIMIT:
        return {}
    inside = MarkovChain(mc.P[members][:, members])
    return {"kemeny_constant": inside.kemeny_constant(),
            "max_mean_first_passage": float(inside.mean_first_passage_times().max())}


def _law_report(law: StationaryLaw) -> dict:
    return {"method": law.method, "error_estimate": law.error, "error_kind": law.error_kind, "trusted": law.trusted}


@dataclass
class Report:
    """The exact analysis of a scenario (module docstring), as ``ecology analyze`` prints and writes it.

    ``to_dict()`` / ``to_json()`` give the JSON report, whose keys are the field names in this
    order (docs/outputs.md); the optional parts (``hit``, ``metastable``, ``horizon``, ``curves``,
    ``power``, and ``export``/``output`` set by the CLI) are left out when absent. Read-only item
    access (``report["n_states"]``, ``"curves" in report``) reads the same keys."""

    scenario: str
    n_states: int
    n_transitions: int
    initial_state: str
    depth: int
    closed_classes: list[dict]
    expected_absorption_time: float
    initial_in_closed_class: bool
    stationary: list[dict] | None  # the top of the stationary law when there is one closed class
    eigenvalues: list[float]
    eigenvalues_complex: list[list[float]]
    criteria: dict[str, dict]
    hit: dict | None = None
    metastable: dict | None = None
    horizon: int | None = None
    curves: dict | None = None
    power: dict | None = None
    export: str | None = None
    output: str | None = None

    OPTIONAL = ("hit", "metastable", "horizon", "curves", "power", "export", "output")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name in self.OPTIONAL and getattr(self, f.name) is None)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __contains__(self, key: str) -> bool:
        return key in {f.name for f in fields(self)} and not (key in self.OPTIONAL and getattr(self, key) is None)

    def __getitem__(self, key: str):
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return self[key] if key in self else default


def analyze(compiled: Compiled, max_states: int = DEFAULT_MAX_STATES, tolerance: float | None = None,
            horizon: int | None = None, power: int | None = None, chain: PageChain | None = None,
            hit: str | None = None, before: str | None = None, max_work: int = DEFAULT_MAX_WORK) -> Report:
    """The full :class:`Report` (see ``ecology analyze --help`` and the module docstring); a
    question the numerics cannot answer is one :class:`UserError` line, never a wrong number."""
    try:
        return _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work)
    except ChainError as err:
        raise UserError(f"exact analysis: {err}") from None


def _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work) -> Report:
    pc = chain or build_chain(compiled, max_states)
    mc = pc.chain
    x = pc.initial
    absorb = mc.absorption_probabilities(x)
    classes = []
    for members, period, law, prob in zip(mc.recurrent_classes, mc.periods, mc.stationary_laws, absorb):
        top = np.argsort(-law.pi, kind="stable")[:TOP_STATES]
        classes.append({
            "size": int(len(members)),
            "period": period,
            "absorbing_state": pc.label(members[0]) if len(members) == 1 else None,
            "states": [pc.label(i) for i in members] if len(members) <= FEW_STATES else None,
            "probability": float(prob),
            "stationary_top": [{"state": pc.label(members[i]), "mass": float(law.pi[i])} for i in top],
            "stationary_accuracy": _law_report(law),
            **_passage_report(mc, members),
        })
    eig = mc.eigenvalues(6)
    within = horizon if horizon is not None else compiled.scenario.run.steps
    flag = "--horizon" if horizon is not None else "--horizon (default run.steps)"
    criteria = {}
    for c in compiled.criteria:
        cpc, mask = criterion_chain(compiled, pc, c, max_states)
        criteria[c.name] = hitting_report(cpc, mask, None, within, max_work, flag)
    report = Report(
        scenario=compiled.scenario.name,
        n_states=mc.n_states,
        n_transitions=int(mc.P.nnz),
        initial_state=pc.label(x),
        depth=pc.depth,
        closed_classes=classes,
        expected_absorption_time=mc.expected_absorption_time(x),
        initial_in_closed_class=bool(x not in set(mc.transient_states.tolist())),
        stationary=classes[0]["stationary_top"] if len(classes) == 1 else None,
        eigenvalues=np.abs(eig).tolist(),
        eigenvalues_complex=[[float(v.real), float(v.imag)] for v in eig],
        criteria=criteria,
    )
    if hit is not None:
        hpc, A = target_mask(compiled, pc, hit, max_states, "--hit")
        B = None
        if before is not None:
            bpc, B = target_mask(compiled, pc, before, max_states, "--before")
            if bpc is not hpc:
                hpc = pc.extended(max_states)
                A = target_mask(compiled, hpc, hit, max_states, "--hit")[1]
                B = target_mask(compiled, hpc, before, max_states, "--before")[1]
            if (A & B).any():
                raise UserError(f"--hit {hit!r} and --before {before!r} share page-states; give disjoint sets")
        report.hit = {"target": hit, "before": before, **hitting_report(hpc, A, B, within, max_work, flag)}
    if tolerance is not None:
        report.metastable = metastable_report(pc, tolerance)
    if horizon is not None:
        report.horizon = horizon
        report.curves = criterion_curves(compiled, pc, horizon, max_states, max_work)
    if power is not None:
        row = distribution_after(mc, x, power, max_work)
        top = np.argsort(-row, kind="stable")[:TOP_STATES]
        report.power = {
            "n": power,
            "from_initial": [{"state": pc.label(i), "probability": float(row[i])} for i in top if row[i] > 0],
        }
    return report


def hitting_report(pc: PageChain, A: np.ndarray, B: np.ndarray | None, within: int, max_work: int, flag: str) -> dict:
    """From the initial state: ``E[time to enter A]`` (None when A may be missed), ``P(ever enter
    A)`` or, with ``B``, ``P(A before B)``, and ``P(A entered within `within` steps)``."""
    mc, x = pc.chain, pc.initial
    out = {"size": int(A.sum()), "expected_hitting_time": None, "note": None}
    key = "probability" if B is None else "probability_before"
    out[key] = None
    try:
        out[key] = float(mc.hitting_probabilities(A)[x] if B is None else mc.committor(A, B)[x])
    except ChainError as err:  # what was computed stays; the curve below is exact anyway
        out["note"] = str(err)
    if out["note"] is None:
        time = expected_entrance_time(mc, x, A, max_work)
        out["expected_hitting_time"], out["note"] = time["value"], time["note"]
        if time["bounds"] is not None:
            out["expected_hitting_time_bounds"] = time["bounds"]
    out["within"] = within
    out["probability_within"] = hit_by(mc, x, A, within, max_work, flag)
    return out


def expected_entrance_time(mc: MarkovChain, x: int, A: np.ndarray, max_work: int) -> dict:
    """``E_x[time to enter A]``: ``value`` (None: infinite, A may be missed, or not computed),
    ``bounds`` (``[lo, hi]`` when it comes from the survival series) and ``note`` (why it was not
    computed, else None). The subtraction-free solvers first; when the system is out of their
    reach, the survival series with its two-sided tail bounds (the value is their midpoint)."""
    try:
        return {"value": _finite(mc.expected_hitting_times(A)[x]), "bounds": None, "note": None}
    except ChainError as err:
        series = _hitting_time_by_series(mc, x, A, max_work)
        if series is None:
            return {"value": None, "bounds": None, "note": str(err)}
        if math.isinf(series[0]):  # A may be missed: infinite, as the solvers say it
            return {"value": None, "bounds": None, "note": None}
        return {"value": (series[0] + series[1]) / 2, "bounds": series, "note": None}


def _hitting_time_by_series(mc: MarkovChain, x: int, A: np.ndarray, max_work: int) -> list[float] | None:
    """``[lo, hi]`` bounds on ``E_x[time to enter A]`` by the survival series with Collatz–Wielandt
    tail bounds (:meth:`ecology.markov.MarkovChain.expected_hitting_time_by_series`) within the
    work budget, when the linear solvers are out of reach; None when the bounds do not close to
    1e-10 relative within the budget (``[inf, inf]`` when A may be missed)."""
    bounds = mc.expected_hitting_time_by_series(x, A, max_work // max(mc.P.nnz, PER_CALL))
    return None if bounds is None else [float(bounds[0]), float(bounds[1])]


def metastable_report(pc: PageChain, tolerance: float) -> dict:
    """Metastable classes at ``tolerance`` with exit times and exit laws (labelled)."""
    meta = pc.chain.metastable(tolerance)
    home = np.full(pc.chain.n_states, -1)
    for i, m in enumerate(meta):
        home[m["states"]] = i
    classes = []
    for m in meta:
        exits = sorted(m["exit_law"].items(), key=lambda kv: -kv[1])
        into = {}
        for state, p in m["exit_law"].items():
            into[int(home[state])] = into.get(int(home[state]), 0.0) + p
        classes.append({
            "size": int(len(m["states"])),
            "states": [pc.label(i) for i in m["states"]] if len(m["states"]) <= FEW_STATES else None,
            "max_escape": m["max_escape"],
            "likely_state": pc.label(m["likely_state"]),
            "exit_time": _finite(m["exit_time"]),
            "exits_to": [{"state": pc.label(s), "probability": p, "metastable_class": int(home[s])}
                         for s, p in exits[:TOP_EXITS]],
            "exit_class_probabilities": {str(k): v for k, v in sorted(into.items())},
        })
    return {"tolerance": tolerance, "classes": classes}


def prism_identifier(name: str, taken: set[str]) -> str:
    """``name`` made a PRISM identifier (``[A-Za-z_][A-Za-z0-9_]*``, not ``init``/``deadlock``), unique."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    base, i = ident, 1
    while ident in taken or ident in ("init", "deadlock"):
        ident, i = f"{base}_{i}", i + 1
    taken.add(ident)
    return ident


def write_prism(prefix, pc: PageChain, labels: dict[str, np.ndarray]) -> dict[str, str]:
    """PRISM explicit files ``PREFIX.tra`` (``n m`` then ``i j p`` rows), ``PREFIX.lab`` (label
    declarations ``0="init" 1="deadlock" 2="NAME" ...`` then ``state: label ...``) and ``PREFIX.sta``
    (``(w1,...,wk)`` then ``i:(t1,...,tk)``, tokens as indices, pad = V, deleted-token slot = V + 1).
    Load with ``prism -importtrans PREFIX.tra -importlabels PREFIX.lab -importstates PREFIX.sta -dtmc``.
    Returns the PRISM identifier of each criterion."""
    from pathlib import Path

    prefix = Path(prefix)
    P = pc.chain.P.tocoo()
    order = np.lexsort((P.col, P.row))
    with open(prefix.with_suffix(".tra"), "w") as f:
        f.write(f"{pc.chain.n_states} {P.nnz}\n")
        for lo in range(0, P.nnz, CHUNK):
            sel = order[lo : lo + CHUNK]
            f.writelines(f"{i} {j} {p!r}\n" for i, j, p in zip(P.row[sel].tolist(), P.col[sel].tolist(), P.data[sel].tolist()))
    taken: set[str] = set()
    names = {name: prism_identifier(name, taken) for name in labels}
    members: dict[int, list[int]] = {pc.initial: [0]}
    for index, mask in enumerate(labels.values(), start=2):
        for state in np.flatnonzero(mask).tolist():
            members.setdefault(state, []).append(index)
    with open(prefix.with_suffix(".lab"), "w") as f:
        f.write(" ".join(['0="init"', '1="deadlock"'] + [f'{i}="{names[n]}"' for i, n in enumerate(labels, start=2)]) + "\n")
        f.writelines(f"{state}: {' '.join(map(str, members[state]))}\n" for state in sorted(members))
    width = pc.windows.shape[1]
    with open(prefix.with_suffix(".sta"), "w") as f:
        f.write("(" + ",".join(f"w{i + 1}" for i in range(width)) + ")\n")
        for lo in range(0, pc.chain.n_states, CHUNK):
            rows = pc.windows[lo : lo + CHUNK].tolist()
            f.writelines(f"{lo + i}:({','.join(map(str, row))})\n" for i, row in enumerate(rows))
    return names
