"""The page-state chain of a scenario: breadth-first enumeration and what is computed on it.

With a finite window the dynamic model is a finite chain over page-states (SCIENCE.md §1).
:func:`build_chain` enumerates the page-states reachable from the initial window, breadth-first,
with the simulator's own next-token law (:meth:`ecology.core.mixture.Mixture.read`), so chain and
simulation share one source of truth; the result is a :class:`PageChain` (sparse ``P``, the
page-states, their labels). On it: the criterion curves ``P_x(T_C <= t)`` for every criterion
(:func:`criterion_curves`, from :func:`holding_curve` and the hitting curve), the product chain on which a
``periodic`` criterion is a set of states (:func:`repetition_chain`, through :func:`criterion_chain`), hitting
probabilities within a horizon and rows of ``T^n``. Every
computation whose size grows with a flag is estimated first and refused with one line naming
the flag when over budget. The report is :mod:`ecology.exact.report`; the generic chain
mathematics is :mod:`ecology.exact.markov`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ecology.core.budget import DEFAULT_MAX_STATES, DEFAULT_MAX_WORK, check_exact, check_model_reads
from ecology.core.compile import Compiled
from ecology.errors import ScenarioError, TooManyStates, TooMuchWork, UserError
from ecology.exact.markov import DENSE_LIMIT, ChainError, MarkovChain, StationaryLaw, gth, stationary, times_power  # noqa: F401  (re-exported: the chain's API used to live here)
from ecology.kinds.criteria import Periodic
from ecology.kinds.deletion import RULES
from ecology.progress import Progress, silent

MAX_TRANSITIONS_PER_STATE = 24  # transition budget: max_states x this (memory of the enumeration)


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
    repeated: np.ndarray | None = None  # (n, P) on a repetition_chain: whether X_t = X_{t-d}, d = 1 .. P
    page_state: np.ndarray | None = None  # on a repetition_chain: each state's page-state in ``extends``
    extends: PageChain | None = None  # on a repetition_chain: the page-state chain it is the product of
    underflowed: int = 0  # transitions of positive probability below the float range (about 1e-308, 0 as a double): not in P

    def label(self, i: int) -> str:
        return self.compiled.label(self.windows[i, self.memory :])

    def labels(self) -> list[str]:
        return [self.label(i) for i in range(self.chain.n_states)]

    @cached_property
    def population_amplitudes(self) -> np.ndarray:
        """(n, labels) amplitude of each population label on each page-state."""
        if self.extends is not None:
            return self.extends.population_amplitudes[self.page_state]
        mixture, windows = self.compiled.mixture, self.windows[:, self.memory :]
        return np.concatenate([mixture.population_amplitudes(mixture.read(windows[i : i + CHUNK]).log_amplitude)
                               for i in range(0, len(windows), CHUNK)])

    def holds(self, criterion) -> np.ndarray:
        if isinstance(criterion, Periodic) and self.repeated is not None:
            return self.repeated[:, : criterion.period].any(axis=1)
        return criterion.holds(self.windows, self.population_amplitudes)

    def extended(self, max_states: int) -> PageChain:
        """The chain on which every criterion is decided: this one, or, with ``periodic`` criteria,
        the product that also carries what they need (:func:`repetition_chain`, for the longest period)."""
        if self.memory == self.compiled.memory or self.repeated is not None:
            return self
        return self.repetition(self.compiled.memory, max_states)

    def repetition(self, period: int, max_states: int) -> PageChain:
        """The :func:`repetition_chain` of ``periodic = period`` over this chain (built once per period)."""
        products = self.__dict__.setdefault("_repetition", {})
        if period not in products:
            products[period] = repetition_chain(self, period, max_states)
        return products[period]


CHUNK = 32_768  # windows per call of the mixture (bounds its temporaries)


SUCCESSOR_CHUNK = 2**20  # successor windows generated at once while enumerating (bounds memory)


def next_token_law(compiled: Compiled, windows: np.ndarray, depth: int) -> tuple[np.ndarray, int]:
    """(rows, V) sampling law on page-states reached in ``depth`` steps (impossible ones are
    errors), and how many of its positive probabilities are below the float range (``log p`` finite
    but ``exp(log p)`` 0: about ``p < 5e-324``, at a low temperature), transitions the chain lacks."""
    step = compiled.mixture.read(windows)
    if step.impossible.any():
        bad = windows[np.flatnonzero(step.impossible)[0]]
        raise ScenarioError(
            "", f"the page-state '{compiled.label(bad)}', reachable in {depth} steps, has probability 0 under "
            "every premise (deletion made the premises misread it); give some premise a softmax floor",
        )
    p = np.exp(step.log_p)
    return p, int(((p == 0) & np.isfinite(step.log_p)).sum())


def _index_keys(known_keys: np.ndarray, known_ids: np.ndarray, keys: np.ndarray, n: int, dtype
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step of a breadth-first enumeration's index of states by key: ``known_keys`` (sorted)
    and ``known_ids`` hold the ``n`` states found so far; of the batch ``keys`` (with repeats), the
    states not yet known get the ids ``n, n + 1, ..`` in order of first appearance. Returns
    ``fresh`` (the batch positions of the new states' first appearances), the updated sorted index
    and the id of every key of the batch (the transitions' columns)."""
    unique, first = np.unique(keys, return_index=True)
    pos = np.searchsorted(known_keys, unique)
    seen = pos < len(known_keys)
    seen[seen] = known_keys[pos[seen]] == unique[seen]
    fresh = first[~seen]
    merged = np.concatenate([known_keys, unique[~seen]])
    order = np.argsort(merged, kind="stable")
    known_keys = merged[order]
    known_ids = np.concatenate([known_ids, np.arange(n, n + len(fresh), dtype=dtype)])[order]
    return fresh, known_keys, known_ids, known_ids[np.searchsorted(known_keys, keys)]


def build_chain(compiled: Compiled, max_states: int = DEFAULT_MAX_STATES, memory: int = 0,
                max_work: int = DEFAULT_MAX_WORK, progress: Progress = silent) -> PageChain:
    """Enumerate the page-states reachable from the initial window and their transitions.

    With ``memory = m`` a state also carries the ``m`` most recently deleted tokens (needed by
    the ``periodic`` criterion); the next-token law reads only the page-state. Before anything is
    enumerated, the worst case the state budget admits is checked against the memory budget
    (:func:`ecology.core.budget.check_exact`), and the work of model premises, which read each
    page-state once, against ``max_work``. The transition matrix is assembled row by row in CSR
    form (states are numbered breadth-first, so the rows of each chunk are consecutive): 12 bytes
    per transition, with no coordinate list. ``progress`` (:mod:`ecology.progress`) hears
    ``("enumerating page-states", found, None, "depth D, N left to expand")`` after every chunk of
    the frontier (the total is unknown until the last breadth-first step).
    """
    check_model_reads(compiled.scenario, max_states, max_work)
    rule = compiled.rule
    if not rule.deletes_oldest:
        finite = [f'"{name}"' for name, kind in RULES.items() if kind.deletes_oldest]
        raise ScenarioError(
            "context.deletion",
            f"'{rule.name}' never deletes, so every step makes a new, longer page-state and the chain is "
            f"infinite; analyze a finite window (deletion = {', '.join(finite[:-1])} or {finite[-1]})",
        )
    if memory and not compiled.rule.sliding:
        raise ScenarioError(
            "absorption", "exact curves of a 'periodic' criterion need deletion = \"fifo\" without a pinned prefix "
            "(under other rules the page-state d steps earlier is not a function of the deleted tokens)",
        )
    width = len(compiled.window)
    # the product of a periodic criterion (repetition_chain) holds at most the window and P - k deleted tokens
    extended = [width + max(0, compiled.memory - width)] if compiled.memory and compiled.rule.sliding else []
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
    underflowed = 0
    rows_per_chunk = max(1, min(CHUNK, SUCCESSOR_CHUNK // V))
    while len(frontier):
        fresh_windows = []
        for lo in range(0, len(frontier), rows_per_chunk):
            rows = frontier[lo : lo + rows_per_chunk]
            p, lost = next_token_law(compiled, rows[:, memory:], depth)
            underflowed += lost
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
            fresh, known_keys, known_ids, targets = _index_keys(known_keys, known_ids, keys, n, index_type)
            if n + len(fresh) > max_states:
                raise TooManyStates(
                    f"the chain has more than {max_states:,} page-states ({n + len(fresh):,} found after {depth + 1} "
                    "breadth-first steps); raise --max-states if memory allows, or shorten context.length"
                )
            fresh_windows.append(succ[fresh])
            del succ
            n += len(fresh)
            columns.append(targets)
            progress("enumerating page-states", n, None, f"depth {depth}, {len(frontier) - lo - len(rows):,} left to expand")
        frontier = np.concatenate(fresh_windows)
        windows.append(frontier)
        depth += 1 if len(frontier) else 0
    del known_keys, known_ids

    indptr = np.zeros(n + 1, dtype=index_type)
    np.cumsum(np.concatenate(row_counts), out=indptr[1:])
    P = sp.csr_matrix((_drain(probs), _drain(columns), indptr), shape=(n, n))
    P.sum_duplicates()  # sorts each row's columns (no two tokens lead to one page-state, so nothing is summed)
    return PageChain(compiled, np.concatenate(windows), MarkovChain(P), memory, depth, underflowed=underflowed)


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


def repetition_chain(chain: PageChain, period: int, max_states: int = DEFAULT_MAX_STATES) -> PageChain:
    """The chain on which ``X_t = X_{t-d}`` (``1 <= d <= period``, the ``periodic`` criterion) is a
    set of states: the product of the page-state chain with a deterministic automaton reading its
    transitions, never the page-state extended by ``period`` deleted tokens.

    *Which rules decide it without memory.* ``d = 1`` under every deleting rule: ``X_t = X_{t-1}``
    exactly when the transition just taken is a self-loop ``i -> i``, an event on the chain's edges;
    its product redirects those transitions to a copy ``(i, 1)`` of ``i`` (one more state per
    page-state with a self-loop). Under ``fifo`` without a pinned prefix (the window holds the
    last ``k`` tokens ``x``): ``X_t = X_{t-d}`` if and only if ``x_i = x_{i-d}`` for the ``k``
    positions ``t - k < i <= t``, all of them real tokens (a window holding pads has more pads ``d``
    steps earlier; before step 0 nothing matches). With ``r_d`` the length of the current run of
    such matches, capped at ``k``, the criterion is ``r_d = k``, and ``r_d`` is updated from the token
    ``x_{t+1-d}``, which the window holds for ``d <= k``: the product is (page-state, ``r_1 .. r_P``),
    and it differs from the page-state chain only on windows that are themselves ``d``-periodic
    (``r_d`` is visible in the window up to ``k - d``). For ``d <= k - 1`` this is the statement
    that ``X_{t-d}, .., X_t`` were all full ``d``-periodic windows: the chain went ``d`` steps round the
    rotation of one of them. Only ``d > k`` needs tokens that left the window: the product then
    carries the last ``P - k`` deleted tokens (not ``P``). Under ``block``, ``message`` and a pinned
    ``fifo`` the page-state ``d >= 2`` steps earlier is a function neither of the window nor of
    the deleted tokens (the deleted count varies), so ``periodic >= 2`` is refused there, up front;
    under ``none`` the window only grows, it never repeats, and the chain is infinite (refused by
    :func:`build_chain`).
    """
    compiled = chain.compiled
    if chain.memory:
        raise ValueError("repetition_chain extends the plain page-state chain (memory 0)")
    name = next((c.name for c in compiled.criteria if isinstance(c, Periodic) and c.period == period), None)
    _refuse_undecidable(compiled.rule, period, f"absorption.{name}.periodic" if name else "absorption")
    automaton = _TokenRuns(chain.windows, period, compiled.n_tokens) if compiled.rule.sliding else _SelfLoops()
    k = compiled.scenario.context.length
    what = (f"absorption.{name}: " if name else "") + f"the exact chain of periodic = {period} (page-states with their runs " \
        f"of repeated tokens{f' and {period - k} deleted tokens' if period > k else ''})"
    advice = "raise --max-states if memory allows" + (f", or use periodic <= {k} (context.length: no deleted token kept)"
                                                       if period > k else "")
    rows, P, depth = _product(chain.chain.P, np.concatenate([[chain.initial], automaton.start(chain.windows[chain.initial])]),
                              automaton, max_states, what, advice)
    page_state = rows[:, 0]
    return PageChain(compiled, chain.windows[page_state], MarkovChain(P), 0, depth, 0,
                     automaton.repeated(rows[:, 1:]), page_state, chain)


def check_periodic(compiled: Compiled) -> None:
    """Refuse, before any chain is built, a ``periodic`` criterion the exact chain cannot decide
    (``P >= 2`` under a rule that re-writes the window, :func:`repetition_chain`), in one line
    naming the criterion and what to do."""
    for c in compiled.criteria:
        if isinstance(c, Periodic):
            _refuse_undecidable(compiled.rule, c.period, f"absorption.{c.name}.periodic")


def _refuse_undecidable(rule, period: int, path: str) -> None:
    if period >= 2 and not rule.sliding:
        raise ScenarioError(
            path, f"exact analysis of periodic = {period} under deletion = \"{rule.name}\""
            f"{' with a pinned prefix' if rule.pinned else ''} is not available: the exact chain decides X_t = X_(t-d) for "
            "d >= 2 only when the window slides (fifo without a pinned prefix); use periodic = 1 (a self-loop: exact "
            "under every rule), deletion = \"fifo\" without pinned, or the simulation",
        )


class _SelfLoops:
    """The automaton of ``periodic = 1`` under any rule: one flag, whether the last transition was a self-loop."""

    radices = (2,)

    def start(self, window: np.ndarray) -> np.ndarray:
        return np.zeros(1, dtype=np.int64)

    def step(self, src: np.ndarray, dst: np.ndarray, state: np.ndarray) -> np.ndarray:
        return (src == dst).astype(np.int64)[:, None]

    def repeated(self, state: np.ndarray) -> np.ndarray:
        return state.astype(bool)


class _TokenRuns:
    """The automaton of ``periodic = P`` under ``fifo`` (:func:`repetition_chain`): the last
    ``m = max(0, P - k)`` deleted tokens (oldest first; pads and "before step 0" as the pad, which
    matches nothing), then ``r_d`` for ``d = 1 .. P``, the current run of ``x_i = x_{i-d}`` capped at ``k``."""

    def __init__(self, windows: np.ndarray, period: int, n_tokens: int):
        self.windows = windows.astype(np.int64)
        self.k = windows.shape[1]
        self.period = period
        self.m = max(0, period - self.k)
        self.pad = n_tokens
        self.radices = (n_tokens + 1,) * self.m + (self.k + 1,) * period

    def start(self, window: np.ndarray) -> np.ndarray:
        """Before step 0 nothing matches: each ``r_d`` counts the matches at the end of the initial window."""
        seq = np.concatenate([np.full(self.m, self.pad), window.astype(np.int64)])
        runs = np.zeros(self.period, dtype=np.int64)
        for d in range(1, self.period + 1):
            i = len(seq) - 1
            while i - d >= 0 and seq[i] < self.pad and seq[i] == seq[i - d] and runs[d - 1] < self.k:
                runs[d - 1] += 1
                i -= 1
        return np.concatenate([np.full(self.m, self.pad, dtype=np.int64), runs])

    def step(self, src: np.ndarray, dst: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Along ``src -> dst``: the token ``x = dst[-1]`` is appended, ``src[0]`` deleted; ``r_d``
        grows by one where ``x`` equals the token ``d`` back (``seq[m + k - d]`` of the deleted
        tokens and the window before the step), else restarts at 0."""
        memory, runs = state[:, : self.m], state[:, self.m :]
        seq = np.concatenate([memory, self.windows[src]], axis=1)
        token = self.windows[dst, -1][:, None]
        back = seq[:, self.m + self.k - np.arange(1, self.period + 1)]
        runs = np.where(back == token, np.minimum(runs + 1, self.k), 0)
        if self.m:
            memory = np.concatenate([memory[:, 1:], np.minimum(self.windows[src, :1], self.pad)], axis=1)
        return np.concatenate([memory, runs], axis=1)

    def repeated(self, state: np.ndarray) -> np.ndarray:
        return state[:, self.m :] == self.k


def _product(P: sp.csr_matrix, start: np.ndarray, automaton, max_states: int, what: str, advice: str):
    """Breadth-first enumeration of the product of the chain ``P`` with a deterministic automaton
    on its transitions: states are rows ``(page-state, automaton state)``, reachable from ``start``;
    each transition ``i -> j`` of ``P`` moves ``(i, a)`` to ``(j, step(i, j, a))`` with ``P[i, j]``.
    Returns the rows (breadth-first order, ``start`` first), the product's CSR matrix and the
    number of breadth-first levels after the first; over ``max_states``, one line saying ``what``
    is too large and the ``advice``."""
    radices = (P.shape[0],) + tuple(automaton.radices)
    packed = math.prod(radices) < 2**62  # mixed-radix int64 codes (exact integers), else raw bytes
    weights = np.array([math.prod(radices[i + 1 :]) for i in range(len(radices))], dtype=np.int64) if packed else None

    def keys(rows: np.ndarray) -> np.ndarray:
        if packed:
            return rows @ weights
        rows = np.ascontiguousarray(rows)
        return rows.view(np.dtype((np.void, rows.shape[1] * 8))).ravel()

    start = start.astype(np.int64)[None]
    known_keys, known_ids = keys(start), np.array([0], dtype=np.int64)
    found, frontier, n, depth = [start], start, 1, 0
    row_counts, columns, probs = [], [], []
    degree = np.diff(P.indptr)
    while len(frontier):
        fresh_rows = []
        for lo in range(0, len(frontier), CHUNK):
            rows = frontier[lo : lo + CHUNK]
            counts = degree[rows[:, 0]]
            src = np.repeat(np.arange(len(rows)), counts)
            edge = P.indptr[rows[src, 0]] + np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
            dst = P.indices[edge].astype(np.int64)
            succ = np.concatenate([dst[:, None], automaton.step(rows[src, 0], dst, rows[src, 1:])], axis=1)
            row_counts.append(counts)
            probs.append(P.data[edge])
            fresh, known_keys, known_ids, targets = _index_keys(known_keys, known_ids, keys(succ), n, np.int64)
            if n + len(fresh) > max_states:
                raise TooManyStates(f"{what} has more than {max_states:,} states ({n + len(fresh):,} found); {advice}")
            fresh_rows.append(succ[fresh])
            n += len(fresh)
            columns.append(targets)
        frontier = np.concatenate(fresh_rows)
        found.append(frontier)
        depth += 1 if len(frontier) else 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(row_counts), out=indptr[1:])
    product = sp.csr_matrix((np.concatenate(probs), np.concatenate(columns), indptr), shape=(n, n))
    product.sum_duplicates()
    return np.concatenate(found), product, depth


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
        curves[c.name] = {"holding": np.clip(holding_curve(pc, h, horizon), 0.0, 1.0).tolist(),
                          "reached": pc.chain.hitting_curve(pc.initial, h, horizon).tolist()}
    return curves


def holding_curve(pc: PageChain, h: np.ndarray, horizon: int) -> np.ndarray:
    """``P_x(X_t in H) = e_x P^t h`` for t = 0 .. horizon from the initial state ``x``, propagating
    one vector (memory O(n + horizon)); not clipped to [0, 1]."""
    PT = pc.chain.P.T.tocsr()
    dist = np.zeros(pc.chain.n_states)
    dist[pc.initial] = 1.0
    holding = np.empty(horizon + 1)
    holding[0] = dist[h].sum()
    for t in range(horizon):
        dist = PT @ dist
        holding[t + 1] = dist[h].sum()
    return holding


def criterion_chain(compiled: Compiled, chain: PageChain, criterion, max_states: int) -> tuple[PageChain, np.ndarray]:
    """The chain a criterion is decided on (the extended one for ``periodic``) and its holding mask."""
    pc = chain
    if isinstance(criterion, Periodic) and chain.repeated is None and chain.memory < criterion.period:
        pc = chain.repetition(criterion.period, max_states)
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
    """A target set from its description: a criterion or named set (``[sets.NAME]``), ``class:I``
    (closed class I), or page-state labels separated by commas (``"U U U, F U U"``)."""
    for c in compiled.tracked:
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
            names = ", ".join(c.name for c in compiled.tracked) or "none"
            raise UserError(f"{flag} {spec!r}: '{label}' is neither a criterion or set ({names}), 'class:I', nor a reachable "
                            f"page-state (tokens separated by spaces, e.g. '{pc.label(pc.initial)}')")
    return pc, mask
