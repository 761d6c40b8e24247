"""Time reversal, reversibility and transition-path theory of a closed class of a finite chain.

Generic: this module imports only numpy, scipy and :mod:`ecology.exact.markov`. Notation as there:
a chain on states ``0 .. n-1`` with row-stochastic ``P``; ``C`` a closed (recurrent) class with
stationary law ``pi`` (:attr:`~ecology.exact.markov.MarkovChain.stationary_laws`, GTH with an L1
error estimate ``e``).

Time reversal
    The chain run backwards in stationarity on ``C`` is the chain ``P^_ij = pi_j P_ji / pi_i``
    (Norris 1997, Thm 1.9.1). It is formed here as ``P^_ij = pi_j P_ji / sum_k pi_k P_ki``: the
    denominator is ``(pi P)_i``, equal to ``pi_i`` for the exact law, so every row sums to 1 exactly
    and nothing is subtracted.

Reversibility
    ``C`` is reversible when detailed balance ``pi_i P_ij = pi_j P_ji`` holds for every pair, i.e.
    ``P^ = P``; equivalently (Kolmogorov's criterion) every cycle has the same probability run
    forwards and backwards. Two things decide it. On the graph, exactly: an edge ``i -> j`` whose
    reverse ``j -> i`` is absent breaks detailed balance whatever ``pi``. Numerically: the
    unbalanced stationary flux ``D = sum_{i<j} |pi_i P_ij - pi_j P_ji|`` moves by at most
    ``||pi - pi~||_1`` when ``pi`` is replaced by an approximation ``pi~`` (each ``|delta pi_i|``
    enters through the row ``i`` of ``P``, whose mass is 1), so a class with a symmetric graph is
    called reversible when ``D <= 2 e + 1e-12`` (``e`` the law's L1 error estimate, doubled because
    it is an estimate, not a bound; ``1e-12`` for the rounding of the sums) and irreversible above.
    The defect relative to the flux is ``D / sum_{i<j} (pi_i P_ij + pi_j P_ji)``, the fraction of
    the stationary flux between distinct states that is not balanced.

Transition-path theory (stationary; Metzner, Schütte, Vanden-Eijnden 2009; discrete time as in
Noé et al. 2009 and deeptime's ``markov.tools.flux``)
    For disjoint non-empty ``A, B`` inside ``C``, the *forward committor* ``q+_i = P_i(hit B before
    A)`` (0 on A, 1 on B) and the *backward committor* ``q-_i = P^_i(hit A before B)`` (1 on A, 0
    on B): the probability that the stationary trajectory at ``i`` came from A rather than from B.
    A *reactive trajectory* is a piece of the stationary trajectory from its last visit to A to its
    next entrance into B. The *reactive flux* ``f_ij = pi_i q-_i P_ij q+_j`` (``i != j``) is the
    probability per step that the step ``i -> j`` belongs to one; the *net flux*
    ``f+_ij = max(f_ij - f_ji, 0)``; the *total flux* ``F = sum_{i in A, j} f_ij`` (no reactive
    flux enters A, so it is also the net flux out of A and into B) is the expected number of
    reactive trajectories completed per step; the *rate* ``k_AB = F / sum_i pi_i q-_i`` is per step
    spent with A visited more recently than B; the *mean duration* of a reactive trajectory,
    steps from its last state in A to its first in B, is ``1 + sum_{i not in A, B} pi_i q-_i q+_i / F``
    (Little's law: ``pi_i q-_i q+_i`` is the probability that the chain is at ``i`` inside a
    reactive trajectory). Off ``A`` and ``B`` the net flux is conserved (what enters a state
    leaves it), and what leaves A enters B. The larger of the worst defect at a state and the
    difference between the flux out of A and into B, relative to ``F``, is ``conservation_error``:
    a measured relative accuracy of the fluxes. At state ``i`` the defect is
    ``q+_i q-_i |pi_i - (pi P)_i|`` when the committors solve their systems, so it is the residual
    of the stationary law seen on the scale of ``F``: a law accurate to 1e-16 absolute leaves 1e-4
    of a flux of 1e-12. ``F``, ``sum pi q-`` and ``sum pi q- q+`` are also summed in log space
    (``log pi + log q- + log P + log q+``), so a flux below the normal doubles is given by its
    log10, and the rate and duration (ratios of such sums) keep their digits.
    *Dominant pathways*: the net flux is decomposed greedily (deeptime's ``pathways``): the path
    from A to B of largest bottleneck capacity (the largest ``c`` such that the edges with
    ``f+ >= c`` join A to B, found by bisection over the sorted capacities, the path then by
    breadth-first search on those edges), its capacity ``c`` subtracted along it, until the found
    capacities cover the asked fraction of ``F``. Each path's ``flux`` is its capacity, its
    ``share`` ``c / F``.

TPT in stationarity needs ``A`` and ``B`` in one closed class: its stationary law is the ensemble
of trajectories whose reactive pieces are counted. Where no closed class holds states of both
(an absorbing chain), only the committor ``P_x(A before B)`` from a given start is defined, and
:func:`reactive_flux` says so (:class:`~ecology.exact.markov.ChainError`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from ecology.exact.markov import ChainError, MarkovChain

REVERSIBLE_ROUNDING = 1e-12  # allowance for the rounding of the sums in D (module docstring)


CONSERVATION_TOLERANCE = 1e-3  # a net flux whose conservation defect (relative to F) is above this has no pathways


def _class_members(mc: MarkovChain, class_index: int) -> np.ndarray:
    classes = mc.recurrent_classes
    if not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < len(classes):
        raise ChainError(f"class_index must be an integer from 0 to {len(classes) - 1} (the chain has {len(classes)} "
                         f"closed classes), got {class_index!r}")
    return classes[int(class_index)]


def _trusted_law(mc: MarkovChain, class_index: int) -> np.ndarray:
    law = mc.stationary_laws[class_index]
    if not law.trusted:
        estimate = "none" if law.error is None else f"{law.error:.1e}"
        raise ChainError(f"the stationary law of closed class {class_index} is not trusted (L1 error estimate "
                         f"{estimate}), so its time reversal and reactive flux are not computed")
    return law.pi


def time_reversal(mc: MarkovChain, class_index: int = 0) -> MarkovChain:
    """The time-reversed chain of closed class ``class_index`` (module docstring):
    ``P^_ij = pi_j P_ji / sum_k pi_k P_ki`` on the class's states, in the order of
    ``mc.recurrent_classes[class_index]`` (local indices). Raises ChainError when the class's
    stationary law is not trusted."""
    members = _class_members(mc, class_index)
    pi = _trusted_law(mc, class_index)
    P = mc.P[members][:, members]
    flows = (sp.diags(pi) @ P).T.tocsr()  # row i holds pi_j P_ji
    into = np.asarray(flows.sum(axis=1)).ravel()  # (pi P)_i > 0: every state of a closed class is entered
    return MarkovChain(sp.diags(1.0 / into) @ flows)


@dataclass(frozen=True)
class Reversibility:
    """Detailed balance in one closed class (module docstring). ``reversible`` is None (with
    ``note``) when the law is not trusted; ``defect`` is ``D``, ``relative_defect`` ``D`` over the
    flux between distinct states (0 when there is none), ``largest_pair_defect`` the largest
    ``|pi_i P_ij - pi_j P_ji| / max(pi_i P_ij, pi_j P_ji)`` over pairs (1 on a one-way edge),
    ``one_way_edges`` the edges whose reverse is absent, ``tolerance`` ``2 e + 1e-12``."""

    class_index: int
    reversible: bool | None
    defect: float | None
    relative_defect: float | None
    largest_pair_defect: float | None
    one_way_edges: int
    tolerance: float | None
    note: str | None = None


def reversibility(mc: MarkovChain) -> list[Reversibility]:
    """One :class:`Reversibility` per closed class, in the order of ``mc.recurrent_classes``."""
    out = []
    for k, members in enumerate(mc.recurrent_classes):
        P = mc.P[members][:, members].tocsr()
        P.setdiag(0.0)
        P.eliminate_zeros()
        pattern = (P != 0).astype(np.int8)
        one_way = int((pattern - pattern.T).maximum(0).nnz)
        law = mc.stationary_laws[k]
        if not law.trusted:
            estimate = "none" if law.error is None else f"{law.error:.1e}"
            out.append(Reversibility(k, False if one_way else None, None, None, 1.0 if one_way else None, one_way, None,
                                     None if one_way else f"not decided: the stationary law is not trusted (L1 error "
                                     f"estimate {estimate})"))
            continue
        flux = sp.diags(law.pi) @ P
        upper, lower = sp.triu(flux, 1).tocsr(), sp.triu(flux.T, 1).tocsr()  # pi_i P_ij and pi_j P_ji for i < j
        imbalance = abs(upper - lower)
        defect = float(imbalance.sum())
        total = float(flux.sum())
        largest = upper.maximum(lower).tocsr()
        pairs = imbalance.tocoo()
        pairs_largest = np.asarray(largest[pairs.row, pairs.col]).ravel()  # >= the imbalance, so no ratio overflows
        ratio = float(np.max(pairs.data / pairs_largest)) if pairs.nnz else 0.0
        tolerance = 2 * law.error + REVERSIBLE_ROUNDING
        out.append(Reversibility(k, one_way == 0 and defect <= tolerance, defect, defect / total if total > 0 else 0.0,
                                 ratio, one_way, tolerance))
    return out


@dataclass(frozen=True)
class Pathway:
    """One pathway of the decomposition of the net flux: its states (chain indices, from a state of
    A to a state of B), its ``flux`` (bottleneck capacity) and ``share`` of the total flux."""

    states: list[int]
    flux: float
    share: float


@dataclass(frozen=True)
class ReactiveFlux:
    """Stationary transition-path theory from ``A`` to ``B`` in one closed class (module docstring).

    ``states``: the class's states (chain indices); ``pi``, ``forward_committor`` (``q+``) and
    ``backward_committor`` (``q-``) are indexed like ``states``; ``gross_flux`` (``f``) and
    ``net_flux`` (``f+``) are sparse ``n x n`` over the whole chain (zero outside the class; an
    entry below the float range is 0). ``total_flux``, ``rate`` and ``mean_duration`` are summed in
    log space (``log10_*``, always given) and are None when beyond a normal double (``note`` says
    which); ``conservation_error`` is None when the flux is."""

    class_index: int
    states: np.ndarray
    A: np.ndarray
    B: np.ndarray
    pi: np.ndarray
    forward_committor: np.ndarray
    backward_committor: np.ndarray
    gross_flux: sp.csr_matrix
    net_flux: sp.csr_matrix
    total_flux: float | None
    rate: float | None
    mean_duration: float | None
    conservation_error: float | None
    log10_total_flux: float | None
    log10_rate: float | None
    log10_mean_duration: float | None
    note: str | None = None


def _mask(mc: MarkovChain, states) -> np.ndarray:
    """A bool mask over the chain's states from a mask or an array of state indices."""
    states = np.asarray(states)
    if states.dtype == bool:
        if states.shape != (mc.n_states,):
            raise ChainError(f"a state mask must have shape ({mc.n_states},), got {states.shape}")
        return states
    if states.size and (states.min() < 0 or states.max() >= mc.n_states):
        raise ChainError(f"state indices must be in 0 .. {mc.n_states - 1}")
    mask = np.zeros(mc.n_states, dtype=bool)
    mask[states.astype(np.int64)] = True
    return mask


def classes_holding(mc: MarkovChain, A, B) -> list[int]:
    """The closed classes that hold states of both ``A`` and ``B`` (masks or state indices)."""
    A, B = _mask(mc, A), _mask(mc, B)
    return [k for k, members in enumerate(mc.recurrent_classes) if A[members].any() and B[members].any()]


def reactive_flux(mc: MarkovChain, A, B, class_index: int | None = None) -> ReactiveFlux:
    """Stationary TPT from ``A`` to ``B`` (bool masks or state indices, disjoint) in closed class
    ``class_index`` (default: the one class holding states of both), restricted to the class:
    transient states of A and B are never visited in stationarity. Raises ChainError when no
    closed class (or more than one, without ``class_index``) holds both, or when the class's law
    is not trusted."""
    A, B = _mask(mc, A), _mask(mc, B)
    if (A & B).any():
        raise ChainError("the sets A and B of a reactive flux must be disjoint")
    holding = classes_holding(mc, A, B)
    if class_index is None:
        if not holding:
            raise ChainError("transition-path theory in stationarity needs A and B in one closed class (its stationary "
                             "law is the ensemble of trajectories), and no closed class holds states of both: only the "
                             "committor P_x(A before B) from a given start is defined")
        if len(holding) > 1:
            raise ChainError(f"closed classes {holding} each hold states of both A and B: give class_index")
        class_index = holding[0]
    members = _class_members(mc, class_index)
    if class_index not in holding:
        raise ChainError(f"closed class {class_index} does not hold states of both A and B")
    pi = _trusted_law(mc, class_index)
    inside = MarkovChain(mc.P[members][:, members])
    a, b = A[members], B[members]
    forward = inside.committor(b, a)
    backward = time_reversal(mc, class_index).committor(a, b)
    P = inside.P.tocoo()
    off = P.row != P.col
    row, col, p = P.row[off], P.col[off], P.data[off]
    data = pi[row] * backward[row] * p * forward[col]
    keep = data > 0
    n = mc.n_states
    gross = sp.csr_matrix((data[keep], (members[row[keep]], members[col[keep]])), shape=(n, n))
    net = (gross - gross.T).tocsr()
    net.data = np.maximum(net.data, 0.0)
    net.eliminate_zeros()
    middle = ~(a | b)
    with np.errstate(divide="ignore"):  # log 0 = -inf: a term that is exactly 0
        log_pi, log_back, log_forward = np.log(pi), np.log(backward), np.log(forward)
        starts = a[row]
        log_total = _logsumexp(log_pi[row[starts]] + log_back[row[starts]] + np.log(p[starts]) + log_forward[col[starts]])
    log_mass = _logsumexp(log_pi + log_back)
    log_inside = _logsumexp((log_pi + log_back + log_forward)[middle])
    with np.errstate(invalid="ignore"):  # no flux at all (-inf): the rate and duration are then undefined
        log_rate, log_duration = log_total - log_mass, np.logaddexp(0.0, log_inside - log_total)
    total = _in_range(log_total)
    if total is not None:
        total = float(gross[np.flatnonzero(A)].sum())  # the same to rounding, and the sum of the edges the pathways share
    conservation = _conservation_error(net, members[middle], members[b], total) if total is not None else None
    notes = []
    if total is None:
        notes.append("the total reactive flux is below the float range (its log10 is given), so its pathways are not "
                     "computed")
    rate, duration = _in_range(log_rate), _in_range(log_duration)
    if rate is None:
        notes.append("the rate is beyond the float range (its log10 is given)")
    if duration is None:
        notes.append("the mean duration is above 1.8e308 steps (its log10 is given)")
    return ReactiveFlux(int(class_index), members, a, b, pi, forward, backward, gross, net, total, rate, duration,
                        conservation, _log10(log_total), _log10(log_rate), _log10(log_duration), "; ".join(notes) or None)


LN10 = float(np.log(10.0))


def _logsumexp(v: np.ndarray) -> float:
    """``log sum exp(v)`` (``-inf`` for no terms or only ``-inf`` ones)."""
    if not len(v) or not np.isfinite(v).any():
        return -np.inf
    top = float(np.max(v))
    return top + float(np.log(np.sum(np.exp(v - top))))


def _log10(log_value: float) -> float | None:
    """``log_value / ln 10``, None when not finite (a flux that is exactly 0: nothing to give)."""
    return float(log_value / LN10) if np.isfinite(log_value) else None


def _in_range(log_value: float) -> float | None:
    """``exp(log_value)`` when it is a normal double, else None (below 2.2e-308 or above 1.8e308)."""
    if not np.log(np.finfo(float).tiny) <= log_value <= np.log(np.finfo(float).max):
        return None
    return float(np.exp(log_value))


def _conservation_error(net: sp.csr_matrix, middle: np.ndarray, sinks: np.ndarray, total: float) -> float:
    """``max(max_i |sum_j f+_ij - sum_j f+_ji|, |F - sum_{j in B} sum_i f+_ij|) / F`` with ``i`` over
    the states ``middle`` (off A and B)."""
    out, into = np.asarray(net.sum(axis=1)).ravel(), np.asarray(net.sum(axis=0)).ravel()
    local = float(np.max(np.abs(out[middle] - into[middle]))) if len(middle) else 0.0
    return max(local, abs(total - float(into[sinks].sum()))) / total


def dominant_pathways(flux: ReactiveFlux, fraction: float = 0.9, max_paths: int = 10) -> list[Pathway]:
    """The bottleneck decomposition of a reactive flux's net flux (:func:`flux_pathways`), refused
    (ChainError) when its conservation defect is above ``CONSERVATION_TOLERANCE``: the capacities
    would then not be defended."""
    if flux.total_flux is None:
        raise ChainError("the total reactive flux is below the float range, so its pathways are not computed")
    if flux.conservation_error > CONSERVATION_TOLERANCE:
        raise ChainError(f"the net flux is conserved only to {flux.conservation_error:.1e} of the total flux (above "
                         f"{CONSERVATION_TOLERANCE:g}), so its pathways are not computed")
    return flux_pathways(flux.net_flux, flux.states[flux.A], flux.states[flux.B], flux.total_flux, fraction, max_paths)


def flux_pathways(net_flux, sources, sinks, total_flux: float, fraction: float = 0.9, max_paths: int = 10) -> list[Pathway]:
    """Decompose a flux network (sparse or dense, ``net_flux[i, j] >= 0``) from the states ``sources``
    to ``sinks`` (module docstring): paths of largest bottleneck capacity first, each capacity
    subtracted along its path, until the capacities cover ``fraction`` of ``total_flux`` or
    ``max_paths`` are found (fewer when no path is left)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not isinstance(max_paths, (int, np.integer)) or max_paths < 1:
        raise ValueError(f"max_paths must be a positive integer, got {max_paths!r}")
    if not total_flux > 0:
        return []
    work = sp.coo_matrix(net_flux)
    if work.nnz and work.data.min() < 0:
        raise ValueError("a flux network must have non-negative entries")
    n = work.shape[0]
    sources, sinks = np.asarray(sources, dtype=np.int64), np.asarray(sinks, dtype=np.int64)
    work.sum_duplicates()
    row, col, capacity = work.row.astype(np.int64), work.col.astype(np.int64), work.data.astype(float)
    found, covered = [], 0.0
    while len(found) < max_paths and covered < fraction * total_flux * (1 - 1e-12):
        path = _widest_path(row, col, capacity, sources, sinks, n)
        if path is None:
            break
        edges = _edge_positions(row, col, path)
        c = float(capacity[edges].min())
        capacity[edges] -= c  # c is the smallest of them, so each stays >= 0 exactly
        found.append(Pathway([int(s) for s in path], c, c / total_flux))
        covered += c
    return found


def _edge_positions(row: np.ndarray, col: np.ndarray, path: list[int]) -> np.ndarray:
    """Positions in the edge list of the edges along ``path``."""
    width = int(max(row.max(), col.max())) + 1
    order = np.lexsort((col, row))
    keys = row[order] * width + col[order]
    wanted = np.array([path[i] * width + path[i + 1] for i in range(len(path) - 1)])
    return order[np.searchsorted(keys, wanted)]


def _widest_path(row, col, capacity, sources, sinks, n) -> list[int] | None:
    """A path from ``sources`` to ``sinks`` whose smallest capacity is the largest possible, or None
    when no positive-capacity path joins them: bisection over the sorted capacities for the largest
    threshold at which the edges at or above it still join them, then a breadth-first path."""
    positive = capacity > 0
    levels = np.unique(capacity[positive])
    if not len(levels):
        return None

    def joined(threshold):
        keep = capacity >= threshold
        return _bfs_path(row[keep], col[keep], sources, sinks, n)

    if joined(levels[0]) is None:
        return None
    low, high = 0, len(levels) - 1  # joined at levels[low]; find the largest such index
    while low < high:
        middle = (low + high + 1) // 2
        if joined(levels[middle]) is not None:
            low = middle
        else:
            high = middle - 1
    return joined(levels[low])


def _bfs_path(row, col, sources, sinks, n) -> list[int] | None:
    """A shortest path (edges ``row -> col``) from a super-source joined to ``sources`` to any of
    ``sinks``, or None."""
    source = n
    graph = sp.csr_matrix((np.ones(len(row) + len(sources)),
                           (np.concatenate([row, np.full(len(sources), source)]), np.concatenate([col, sources]))),
                          shape=(n + 1, n + 1))
    order, predecessors = csgraph.breadth_first_order(graph, source, directed=True, return_predecessors=True)
    reached = sinks[predecessors[sinks] >= 0]
    if not len(reached):
        return None
    position = np.empty(n + 1, dtype=np.int64)
    position[order] = np.arange(len(order))
    state = int(reached[np.argmin(position[reached])])  # the first sink the search reached
    path = [state]
    while predecessors[state] != source:
        state = int(predecessors[state])
        path.append(state)
    return path[::-1]
