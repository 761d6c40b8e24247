"""Exact analysis of the page-state Markov chain of a scenario (Remarks 4–6).

Definitions, for a finite chain with row-stochastic transition matrix ``P`` (``P[i, j]`` is the
probability of moving from page-state ``i`` to ``j`` in one step):

- ``i`` *communicates* with ``j`` when each is reachable from the other; the communication
  classes are the strongly connected components of the graph ``{i -> j : P[i, j] > 0}``.
- A class is *closed* (recurrent) when no edge leaves it; the others are transient. A closed
  class of one state is an *absorbing state* (``P[i, i] = 1``).
- The *period* of a closed class is the gcd of the lengths of its cycles, computed as the gcd of
  ``level(i) + 1 - level(j)`` over its edges ``i -> j``, with ``level`` the breadth-first
  distance from any state of the class.
- Each closed class ``C`` has a unique stationary distribution ``pi_C = pi_C P_CC``,
  ``sum pi_C = 1``; every stationary distribution of the chain is a mixture of these.
  Classes up to ``DENSE_LIMIT`` states are solved by the GTH algorithm (subtraction-free,
  accurate for nearly decomposable chains). Larger ones are solved as the dominant left
  eigenvector of ``P_CC`` by the implicitly restarted Arnoldi method (ARPACK); when its residual
  ``||pi P - pi||_1`` is poor and the class is small enough for LU (page-state graphs are
  de Bruijn-like expanders, so LU fills in), also by a sparse LU solve of
  ``pi_R (I - P_RR) = pi_pin P_{pin,R}`` with one state fixed to 1 (solved twice: the second time
  pinning the heaviest state of the first solution), keeping the smaller residual.
- From a transient start ``x``, with ``Q`` the transient-to-transient block, the expected visits
  are ``v = e_x (I - Q)^{-1}``; the expected time to enter a closed class is ``sum v`` and the
  probability of ending in closed class ``C`` is ``v P_{T,C} 1``.
- *Metastability* at tolerance ``D``: the closed classes of the chain once transitions of
  probability below ``D`` are ignored; for each, the largest per-step escape probability
  ``max_i sum_{j not in C} P[i, j]`` and the expected exit time ``tau`` from its most likely
  state, where ``(I - P_CC) tau = 1``.
- Criterion curves: ``P(criterion holds at t) = e_x P^t h`` and
  ``P(it held at some s <= t)``, the latter by propagating the mass that has not yet met it.

Page-states are enumerated breadth-first from the initial window with the simulator's own
next-token law (:meth:`ecology.dynamics.Mixture.read`), so chain and simulation share one
source of truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse import linalg as spla

from .absorption import Periodic
from .dynamics import Compiled
from .scenario import ScenarioError, UserError

DEFAULT_MAX_STATES = 2_500_000
DENSE_LIMIT = 1100  # classes up to this size use dense GTH (about 0.6 s at 1024 states),
DENSE_EIGEN_LIMIT = 1500


class TooManyStates(UserError):
    """The chain would exceed the state budget."""


# ---------------------------------------------------------------------------------------------
# Generic finite-chain analysis


def gth(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of an irreducible dense stochastic matrix (Grassmann–Taksar–Heyman).

    Eliminates states one by one using only additions, multiplications and divisions of
    non-negative numbers, so it stays accurate when escape probabilities are tiny.
    """
    A = np.array(P, dtype=float)
    n = len(A)
    for k in range(n - 1):
        scale = A[k, k + 1 :].sum()
        A[k + 1 :, k] /= scale
        A[k + 1 :, k + 1 :] += np.outer(A[k + 1 :, k], A[k, k + 1 :])
    x = np.zeros(n)
    x[-1] = 1.0
    for k in range(n - 2, -1, -1):
        x[k] = x[k + 1 :] @ A[k + 1 :, k]
    return x / x.sum()


def stationary(P: sp.csr_matrix, method: str = "auto") -> np.ndarray:
    """Stationary distribution of an irreducible sparse stochastic matrix (module docstring)."""
    n = P.shape[0]
    if n == 1:
        return np.ones(1)
    if method == "dense" or (method == "auto" and n <= DENSE_LIMIT):
        return gth(P.toarray())
    if method == "sparse":
        return _lu_stationary(P)
    if method == "arnoldi":
        return _arnoldi_stationary(P)
    # auto, large class: the Arnoldi vector, unless its residual is poor; then the better of it and LU
    pi = _arnoldi_stationary(P)
    if pi is not None and (_residual(P, pi) <= RESIDUAL_OK or n > LU_LIMIT):
        return pi
    candidates = [x for x in (pi, _lu_stationary(P)) if x is not None]
    return min(candidates, key=lambda x: _residual(P, x))


RESIDUAL_OK = 1e-10
LU_LIMIT = 20_000  # classes up to this size may fall back to sparse LU (fill-in grows fast above)


def _residual(P: sp.csr_matrix, pi: np.ndarray) -> float:
    """``|| pi P - pi ||_1``."""
    return float(np.abs(P.T @ pi - pi).sum())


def _arnoldi_stationary(P: sp.csr_matrix) -> np.ndarray | None:
    n = P.shape[0]
    try:
        _, vectors = spla.eigs(P.T.tocsr(), k=1, which="LM", v0=np.full(n, 1.0 / n), tol=0, maxiter=100 * n)
    except spla.ArpackNoConvergence:
        return None
    pi = np.clip(np.real(vectors[:, 0]) * np.sign(np.real(vectors[:, 0]).sum()), 0.0, None)
    return pi / pi.sum()


def _lu_stationary(P: sp.csr_matrix) -> np.ndarray:
    # Pinning a state of tiny mass makes the solve ill-conditioned in nearly decomposable
    # chains; pin again at the heaviest state of the first solution.
    pi = _pinned_solve(P, 0)
    heaviest = int(np.argmax(pi))
    return pi if heaviest == 0 else _pinned_solve(P, heaviest)


def _pinned_solve(P: sp.csr_matrix, pin: int) -> np.ndarray:
    """``pi_R (I - P_RR) = pi_pin P_{pin,R}`` with ``pi_pin = 1`` (R: the other states), normalised."""
    n = P.shape[0]
    rest = np.delete(np.arange(n), pin)
    A = (sp.identity(n - 1, format="csc") - P[rest][:, rest]).T.tocsc()
    rhs = P[pin][:, rest].toarray().ravel()
    solve = spla.splu(A)
    x = solve.solve(rhs)
    x += solve.solve(rhs - A @ x)  # one step of iterative refinement
    pi = np.zeros(n)
    pi[pin] = 1.0
    pi[rest] = np.clip(x, 0.0, None)
    return pi / pi.sum()


def _gcd_period(P: sp.csr_matrix) -> int:
    """Period of an irreducible chain: gcd of level(i) + 1 - level(j) over its edges."""
    level = csgraph.shortest_path(P, unweighted=True, indices=0)
    coo = P.tocoo()
    diffs = np.abs(level[coo.row] + 1 - level[coo.col]).astype(np.int64)
    return int(np.gcd.reduce(diffs)) if len(diffs) else 1


def closed_classes_of(P: sp.csr_matrix) -> tuple[np.ndarray, list[np.ndarray]]:
    """(class label of each state, list of the closed classes' state indices)."""
    n_classes, labels = csgraph.connected_components(P, directed=True, connection="strong")
    coo = P.tocoo()
    leaving = labels[coo.row] != labels[coo.col]
    open_ = np.zeros(n_classes, dtype=bool)
    open_[labels[coo.row[leaving]]] = True
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_classes + 1))
    closed = [order[bounds[c] : bounds[c + 1]] for c in range(n_classes) if not open_[c]]
    closed.sort(key=lambda members: members[0])
    return labels, closed


@dataclass
class MarkovChain:
    """A finite Markov chain given by a sparse row-stochastic matrix, with lazy textbook results.

    ``MarkovChain(P).recurrent_classes``, ``.periods``, ``.stationary_distributions``,
    ``.absorption_probabilities(x)``, ``.expected_absorption_time(x)``, ``.eigenvalues(k)``.
    """

    P: sp.csr_matrix

    def __post_init__(self):
        self.P = sp.csr_matrix(self.P, dtype=float)
        self.P.eliminate_zeros()
        rows = np.asarray(self.P.sum(axis=1)).ravel()
        if self.P.shape[0] != self.P.shape[1] or not np.allclose(rows, 1.0, atol=1e-9):
            raise ValueError("P must be square with rows summing to 1")
        if (self.P.data < 0).any():
            raise ValueError("P must be non-negative")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @cached_property
    def _classes(self):
        return closed_classes_of(self.P)

    @property
    def recurrent_classes(self) -> list[np.ndarray]:
        """Closed communication classes (state indices, ascending), ordered by first state."""
        return self._classes[1]

    @cached_property
    def periods(self) -> list[int]:
        return [_gcd_period(self.P[c][:, c]) for c in self.recurrent_classes]

    @property
    def period(self) -> int:
        """Period of the chain when irreducible (lcm of class periods otherwise)."""
        return math.lcm(*self.periods)

    @property
    def is_aperiodic(self) -> bool:
        return all(d == 1 for d in self.periods)

    @cached_property
    def stationary_distributions(self) -> list[np.ndarray]:
        """One per closed class, each a full-length vector supported on its class."""
        out = []
        for c in self.recurrent_classes:
            pi = np.zeros(self.n_states)
            pi[c] = stationary(self.P[c][:, c])
            out.append(pi)
        return out

    @cached_property
    def _transient(self) -> np.ndarray:
        recurrent = np.zeros(self.n_states, dtype=bool)
        for c in self.recurrent_classes:
            recurrent[c] = True
        return np.flatnonzero(~recurrent)

    @cached_property
    def _transient_solver(self):
        """LU factors of ``(I - Q)^T`` over the transient states, shared by every start."""
        t = self._transient
        return spla.splu((sp.identity(len(t), format="csc") - self.P[t][:, t]).T.tocsc())

    def _visits(self, start: int) -> np.ndarray | None:
        """Expected visits to each transient state from ``start`` (None if start is recurrent)."""
        t = self._transient
        where = np.searchsorted(t, start)
        if where >= len(t) or t[where] != start:
            return None
        e = np.zeros(len(t))
        e[where] = 1.0
        return self._transient_solver.solve(e)

    def absorption_probabilities(self, start: int) -> np.ndarray:
        """Probability of ending in each closed class, from state ``start``."""
        visits = self._visits(start)
        classes = self.recurrent_classes
        if visits is None:
            return np.array([float(start in set(c.tolist())) for c in classes])
        into = visits @ self.P[self._transient]
        return np.array([into[c].sum() for c in classes])

    def expected_absorption_time(self, start: int) -> float:
        """Expected number of steps from ``start`` until a closed class is entered."""
        visits = self._visits(start)
        return 0.0 if visits is None else float(visits.sum())

    def _reach(self, sources: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
        """Bool mask of the states that can reach ``sources`` (mask) along edges of ``P``,
        moving only through states of ``within`` (mask; all states when None)."""
        reverse = self.P.T.tocsr()
        seen = sources.copy()
        frontier = np.flatnonzero(sources)
        while len(frontier):
            nxt = np.zeros(self.n_states, dtype=bool)
            nxt[reverse[frontier].indices] = True
            if within is not None:
                nxt &= within
            nxt &= ~seen
            seen |= nxt
            frontier = np.flatnonzero(nxt)
        return seen

    def hitting_probabilities(self, target: np.ndarray) -> np.ndarray:
        """``u(i) = P(the chain started at i ever enters target)`` (bool mask), solving
        ``u = 1`` on the target, ``u = 0`` where the target is unreachable and
        ``(I - P_RR) u_R = P_{R,target} 1`` on the rest ``R``."""
        target = np.asarray(target, dtype=bool)
        u = target.astype(float)
        rest = self._reach(target) & ~target
        if rest.any():
            r = np.flatnonzero(rest)
            A = (sp.identity(len(r), format="csc") - self.P[r][:, r]).tocsc()
            b = np.asarray(self.P[r][:, target].sum(axis=1)).ravel()
            u[r] = np.clip(spla.splu(A).solve(b), 0.0, 1.0)
        return u

    def expected_hitting_times(self, target: np.ndarray) -> np.ndarray:
        """``h(i) = E[steps until the chain started at i enters target]`` (bool mask): 0 on the
        target, ``inf`` where the target is missed with positive probability (a state that can
        reach, avoiding the target, a state from which the target is unreachable), and
        ``(I - P_SS) h_S = 1`` on the other states ``S``."""
        target = np.asarray(target, dtype=bool)
        h = np.where(target, 0.0, np.inf)
        lost = ~self._reach(target)
        lost = self._reach(lost, within=~target)
        sure = ~target & ~lost
        if sure.any():
            s = np.flatnonzero(sure)
            A = (sp.identity(len(s), format="csc") - self.P[s][:, s]).tocsc()
            h[s] = spla.splu(A).solve(np.ones(len(s)))
        return h

    def eigenvalues(self, count: int = 6) -> np.ndarray:
        """The ``count`` eigenvalues of largest modulus (complex), by decreasing modulus.

        Ordered by communication class, ``P`` is block triangular, so its spectrum is the union
        of the spectra of the classes' diagonal blocks: a one-state class contributes ``P[i, i]``,
        a small class its dense spectrum, a large one its ``count`` largest by ARPACK.
        """
        labels = self._classes[0]
        sizes = np.bincount(labels)
        single = sizes[labels] == 1
        values = [self.P.diagonal()[single].astype(complex)]
        order = np.argsort(labels, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for c in np.flatnonzero(sizes > 1):
            members = order[bounds[c] : bounds[c + 1]]
            block = self.P[members][:, members]
            if len(members) <= DENSE_EIGEN_LIMIT:
                values.append(np.linalg.eigvals(block.toarray()))
                continue
            try:
                values.append(spla.eigs(block.T.tocsr(), k=min(count, len(members) - 2), which="LM",
                                        ncv=min(len(members) - 1, max(4 * count, 60)), tol=1e-10,
                                        v0=np.ones(len(members)), return_eigenvectors=False))
            except spla.ArpackNoConvergence as err:
                values.append(err.eigenvalues)
        values = np.concatenate(values)
        return values[np.argsort(-np.abs(values), kind="stable")][:count]

    def propagate(self, start: int, steps: int) -> np.ndarray:
        """(steps + 1, n) distributions ``e_start P^t`` for t = 0 .. steps."""
        out = np.zeros((steps + 1, self.n_states))
        out[0, start] = 1.0
        PT = self.P.T.tocsr()
        for t in range(steps):
            out[t + 1] = PT @ out[t]
        return out

    def hitting_curve(self, start: int, target: np.ndarray, steps: int) -> np.ndarray:
        """P(the chain has been in ``target`` (bool mask) at some s <= t), t = 0 .. steps."""
        PT = self.P.T.tocsr()
        free = np.zeros(self.n_states)
        free[start] = 1.0
        hit = np.zeros(steps + 1)
        hit[0] = free[target].sum()
        free[target] = 0.0
        for t in range(steps):
            free = PT @ free
            hit[t + 1] = hit[t] + free[target].sum()
            free[target] = 0.0
        return np.minimum(hit, 1.0)

    def power(self, n: int) -> sp.csr_matrix:
        """``P^n`` by repeated squaring."""
        result = sp.identity(self.n_states, format="csr")
        base = self.P
        while n:
            if n & 1:
                result = result @ base
            n >>= 1
            if n:
                base = base @ base
        return result.tocsr()

    def metastable(self, tolerance: float) -> list[dict]:
        """Closed classes once transitions below ``tolerance`` are ignored (module docstring)."""
        kept = self.P.multiply(self.P >= tolerance).tocsr()
        kept.eliminate_zeros()
        _, classes = closed_classes_of(kept)
        out = []
        for c in classes:
            inside = np.zeros(self.n_states, dtype=bool)
            inside[c] = True
            block = self.P[c]
            escape = np.asarray(block[:, ~inside].sum(axis=1)).ravel()
            restricted = kept[c][:, c]
            sums = np.asarray(restricted.sum(axis=1)).ravel()
            if sums.min() > 0:
                restricted = sp.diags(1.0 / sums) @ restricted
                likely = c[int(np.argmax(stationary(restricted.tocsr())))]
            else:  # a single state whose every kept transition leaves it
                likely = c[0]
            if escape.max() > 0:
                A = (sp.identity(len(c), format="csc") - block[:, c]).tocsc()
                tau = spla.splu(A).solve(np.ones(len(c)))
                exit_time = float(tau[np.searchsorted(c, likely)])
            else:
                exit_time = math.inf
            out.append({"states": c, "max_escape": float(escape.max()), "likely_state": int(likely),
                        "exit_time": exit_time})
        return out


# ---------------------------------------------------------------------------------------------
# Page-state enumeration


def _keys(windows: np.ndarray, base: int) -> np.ndarray:
    """Sortable keys of window rows: int64 codes when they fit, else raw bytes."""
    width = windows.shape[1]
    if width * math.log2(base) < 62:
        powers = base ** np.arange(width - 1, -1, -1, dtype=np.int64)
        return windows.astype(np.int64) @ powers
    rows = np.ascontiguousarray(windows.astype(np.uint8))
    return rows.view(np.dtype((np.void, width))).ravel()


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


CHUNK = 32_768  # windows per call of the mixture while enumerating (bounds its temporaries)


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


def build_chain(compiled: Compiled, max_states: int = DEFAULT_MAX_STATES, memory: int = 0) -> PageChain:
    """Enumerate the page-states reachable from the initial window and their transitions.

    With ``memory = m`` a state also carries the ``m`` most recently deleted tokens (needed by
    the ``periodic`` criterion); the next-token law reads only the page-state.
    """
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
    V = compiled.n_tokens
    base = V + 2
    start = np.concatenate([np.full(memory, V + 1), compiled.window]).astype(np.uint8 if base <= 256 else np.int32)

    known_keys = _keys(start[None], base)
    known_ids = np.array([0])
    windows = [start[None]]
    frontier, frontier_ids = start[None], np.array([0])
    n = 1
    sources, targets, probs = [], [], []
    depth = 0
    while len(frontier):
        p = np.concatenate([next_token_law(compiled, frontier[i : i + CHUNK, memory:], depth)
                            for i in range(0, len(frontier), CHUNK)])
        src, tok = np.nonzero(p > 0)
        succ = compiled.rule.successor(frontier[src], tok)
        keys = _keys(succ, base)
        sources.append(frontier_ids[src])
        targets.append(keys)
        probs.append(p[src, tok])
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
        frontier = succ[fresh]
        frontier_ids = n + np.arange(len(fresh))
        n += len(fresh)
        windows.append(frontier)
        merged = np.concatenate([known_keys, unique[~seen]])
        order = np.argsort(merged, kind="stable")
        known_keys = merged[order]
        known_ids = np.concatenate([known_ids, frontier_ids])[order]
        depth += 1 if len(fresh) else 0

    rows = np.concatenate(sources)
    cols = known_ids[np.searchsorted(known_keys, np.concatenate(targets))]
    P = sp.csr_matrix((np.concatenate(probs), (rows, cols)), shape=(n, n))
    return PageChain(compiled, np.concatenate(windows), MarkovChain(P), memory, depth)


# ---------------------------------------------------------------------------------------------
# The report


TOP_STATES = 20
FEW_STATES = 20


def criterion_curves(compiled: Compiled, chain: PageChain, horizon: int, max_states: int) -> dict:
    """Exact ``holding`` and ``absorbed`` (held at or before t) curves for every criterion."""
    curves = {}
    extended = None
    for c in compiled.criteria:
        pc = chain
        if isinstance(c, Periodic):
            if extended is None:
                extended = build_chain(compiled, max_states, compiled.memory)
            pc = extended
        h = pc.holds(c)
        dist = pc.chain.propagate(pc.initial, horizon)
        curves[c.name] = {
            "holding": (dist @ h).tolist(),
            "absorbed": pc.chain.hitting_curve(pc.initial, h, horizon).tolist(),
        }
    return curves


def analyze(compiled: Compiled, max_states: int = DEFAULT_MAX_STATES, tolerance: float | None = None,
            horizon: int | None = None, power: int | None = None, chain: PageChain | None = None) -> dict:
    """The full report as a JSON-ready dict (see ``ecology analyze --help``)."""
    pc = chain or build_chain(compiled, max_states)
    mc = pc.chain
    x = pc.initial
    absorb = mc.absorption_probabilities(x)
    classes = []
    for members, period, pi, prob in zip(mc.recurrent_classes, mc.periods, mc.stationary_distributions, absorb):
        top = members[np.argsort(-pi[members], kind="stable")][:TOP_STATES]
        classes.append({
            "size": int(len(members)),
            "period": period,
            "absorbing_state": pc.label(members[0]) if len(members) == 1 else None,
            "states": [pc.label(i) for i in members] if len(members) <= FEW_STATES else None,
            "probability": float(prob),
            "stationary_top": [{"state": pc.label(i), "mass": float(pi[i])} for i in top],
        })
    eig = mc.eigenvalues(6)
    report = {
        "scenario": compiled.scenario.name,
        "n_states": mc.n_states,
        "n_transitions": int(mc.P.nnz),
        "initial_state": pc.label(x),
        "depth": pc.depth,
        "closed_classes": classes,
        "expected_absorption_time": mc.expected_absorption_time(x),
        "stationary": None,
        "eigenvalues": np.abs(eig).tolist(),
        "eigenvalues_complex": [[float(v.real), float(v.imag)] for v in eig],
    }
    if len(classes) == 1:
        report["stationary"] = classes[0]["stationary_top"]
    if tolerance is not None:
        report["metastable"] = {
            "tolerance": tolerance,
            "classes": [
                {
                    "size": int(len(m["states"])),
                    "states": [pc.label(i) for i in m["states"]] if len(m["states"]) <= FEW_STATES else None,
                    "max_escape": m["max_escape"],
                    "likely_state": pc.label(m["likely_state"]),
                    "exit_time": None if math.isinf(m["exit_time"]) else m["exit_time"],
                }
                for m in mc.metastable(tolerance)
            ],
        }
    if horizon is not None:
        report["horizon"] = horizon
        report["curves"] = criterion_curves(compiled, pc, horizon, max_states)
    if power is not None:
        row = mc.propagate(x, power)[-1]
        top = np.argsort(-row, kind="stable")[:TOP_STATES]
        report["power"] = {
            "n": power,
            "from_initial": [{"state": pc.label(i), "probability": float(row[i])} for i in top if row[i] > 0],
        }
    return report
