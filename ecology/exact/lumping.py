"""Lumping a finite Markov chain: lumpability tests, lumped chains and the coarsest lumping.

Generic: this module imports only numpy, scipy and :mod:`ecology.exact.markov`. A *partition* of
the states ``0 .. n-1`` is an integer label per state; its *blocks* are the sets of equal labels,
numbered ``0 .. m-1`` in order of first appearance (:func:`block_labels`). ``V`` is the ``n x m``
indicator matrix, ``V[i, K] = 1`` when ``i`` is in block ``K``, and ``P(i, L) = (P V)[i, L]`` is the
probability of moving from ``i`` into block ``L``.

Ordinary (strong) lumpability (Kemeny–Snell 1960, §6.3)
    For every pair of blocks ``(K, L)``, ``P(i, L)`` is the same for every ``i`` in ``K``. Then the
    block process ``b(X_t)`` is a Markov chain *from every initial law*, with ``P^_KL = P(i, L)`` for
    any ``i`` in ``K``. Its *defect* is ``max_K max_L (max_{i in K} P(i, L) - min_{i in K} P(i, L))``.

Exact lumpability (Schweitzer 1984; Buchholz 1994)
    For every pair ``(K, L)``, the column sum ``sum_{i in K} P(i, j)`` is the same for every ``j`` in
    ``L``; its defect is ``max_K max_L`` of the spread of those column sums over ``j`` in ``L``. Then a
    law that is uniform within every block stays uniform within every block, and the block process
    started from such a law is a Markov chain with ``P^_KL = sum_{i in K} sum_{j in L} P(i, j) / |K|``.
    Equivalently, for an irreducible ``P`` with stationary law ``pi`` and time reversal
    ``P~(i, j) = pi_j P(j, i) / pi_i``: ``P`` is exactly lumpable if and only if ``pi`` is constant
    on every block and ``P~`` is ordinarily lumpable (for ``i`` in ``K``, ``j`` in ``L`` with ``pi``
    constant on blocks, ``sum_{i in K} P(i, j) = (pi_K / pi_L) P~(j, K)``; and exact lumpability
    makes the uniform-within-blocks lift of the lumped chain's stationary law stationary for ``P``,
    so by uniqueness ``pi`` is constant on blocks). Neither kind implies the other.

    Both lumped chains are the uniform aggregation ``P^ = D^{-1} V^T P V`` with ``D = diag(|K|)``: for
    an ordinarily lumpable partition each row of ``P V`` within ``K`` equals the average. For any
    partition and any positive weights ``w`` (:func:`aggregated_chain`), ``P^_w = diag(V^T w)^{-1}
    V^T diag(w) P V`` is stochastic; with ``w = pi`` the stationary law of an irreducible ``P`` it
    is the *pi-weighted aggregation*, whose stationary law is ``pi V`` (``pi V P^_w = pi P V = pi V``)
    but whose block process is not Markov unless the partition is ordinarily lumpable.

The coarsest lumping refining a partition
    Both conditions read "``(M V)[i, L]`` is constant over ``i`` in each block", with ``M = P``
    (ordinary) or ``M = P^T`` (exact: ``(P^T V)[j, K] = sum_{i in K} P(i, j)``). The coarsest
    partition refining a given one with this property exists (it is the coarsest probabilistic
    bisimulation) and is found by partition refinement with splitters (Paige–Tarjan 1987, in the
    weighted form of Valmari–Franceschinis 2010 and Derisavi–Hermanns–Sanders 2003): a *splitter*
    ``L`` splits every block ``K`` by the values ``M(i, L)``; when a block splits, all its pieces
    but the largest become splitters (stability with respect to the largest follows from the
    parent's and the other pieces' by subtraction), so a state is in a splitter at most
    ``log2 n + 1`` times and the work is ``O(m log n)`` entries (``m`` transitions), each round
    sorting only the entries it touches. Rounds process every pending splitter at once; the
    partition is kept as one array of states, contiguous per block, so that a split moves only the
    states it touches. Sparse throughout. Each round also costs about a millisecond of numpy
    overhead, and there are at most as many rounds as blocks made: 16 rounds for the 131,071
    page-states of coins, 100,000 (85 s) for a path split one state per round.

How values are compared
    The values compared are probabilities (or sums of them) computed in double precision by
    adding non-negative terms, so two that are equal in exact arithmetic differ by a relative
    ``(number of terms) x 1.1e-16``. Two sorted neighbours ``a <= b`` are *separated* when
    ``a < (1 - rtol) b``, i.e. ``log b - log a > -log(1 - rtol)`` (a relative gap, whatever the
    magnitude: ``1e-45`` and ``2e-45`` are separated, ``0`` and any positive value always are). Being
    within ``rtol`` is not transitive, so the rule is: sort the values of one block towards one
    splitter and split at every separated pair of neighbours (single linkage, which is an
    equivalence and does not depend on the order of the states). The default ``rtol = 1e-12`` lies
    above rounding (equal quantities of the shipped scenarios' chains differ by up to 1.4e-15;
    ``rtol = 0`` splits them: 65,536 blocks become 131,071 on coins) and below the smallest
    genuine difference seen there (9.5e-12 on waluigi_soft, which ``rtol = 1e-9`` would merge).
    A partition *is lumpable* when, for every ``(K, L)``, the smallest value is at least
    ``(1 - rtol)`` times the largest (range, not single linkage); the *defect* returned is the
    largest absolute spread ``max - min`` of the exact definition above, so whatever ``rtol`` did,
    every row of ``P V`` within a block is within ``defect`` (entry by entry) of the lumped chain's
    row. The refinement ends with a full check of every block against every block; in exact
    arithmetic the smaller-half shortcut is exact, and where the tolerance made it miss a split
    (differences accumulating over pieces) the check finds it and refinement resumes with every
    block as a splitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ecology.exact.markov import ChainError, MarkovChain

RTOL = 1e-12  # relative gap separating two probabilities (module docstring)


KINDS = ("ordinary", "exact")


@dataclass(frozen=True)
class Lumpability:
    """The test of one partition: ``kind`` (``"ordinary"`` or ``"exact"``), ``lumpable`` (every
    block's values towards every block within ``rtol`` of their largest), ``defect`` (the largest
    absolute spread, module docstring), ``n_blocks`` and the ``rtol`` used."""

    kind: str
    lumpable: bool
    defect: float
    n_blocks: int
    rtol: float


def _matrix(chain) -> sp.csr_matrix:
    """The transition matrix of a :class:`MarkovChain` or of a sparse/dense ``P`` (validated as one)."""
    return chain.P if isinstance(chain, MarkovChain) else MarkovChain(chain).P


def _check_rtol(rtol: float) -> float:
    if not 0 <= rtol < 1:
        raise ValueError(f"rtol must be in [0, 1), got {rtol!r}")
    return float(rtol)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'ordinary' or 'exact', got {kind!r}")
    return kind


def block_labels(labels, n: int | None = None) -> np.ndarray:
    """The partition ``labels`` (one integer per state) renumbered ``0 .. m-1`` in order of first
    appearance; ``n`` checks the length."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (n is not None and len(labels) != n):
        raise ValueError(f"the partition must give one label per state ({n} states), got shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"the partition's labels must be integers, got dtype {labels.dtype}")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


def _weights(M: sp.csr_matrix, blocks: np.ndarray, m: int) -> sp.coo_matrix:
    """``M V``: row ``i``, column ``L``, the sum of ``M[i, j]`` over ``j`` in block ``L``."""
    V = sp.csr_matrix((np.ones(len(blocks)), (np.arange(len(blocks)), blocks)), shape=(len(blocks), m))
    W = (M @ V).tocoo()
    W.sum_duplicates()
    return W


def _spreads(M: sp.csr_matrix, blocks: np.ndarray, rtol: float) -> tuple[float, bool]:
    """The defect (largest ``max - min`` of ``(M V)[i, L]`` over ``i`` in ``K``, every ``(K, L)``) and
    whether every group is within ``rtol`` of its largest; an absent entry is a 0."""
    m = int(blocks.max()) + 1
    size = np.bincount(blocks, minlength=m)
    W = _weights(M, blocks, m)
    if W.nnz == 0:
        return 0.0, True
    key = blocks[W.row].astype(np.int64) * m + W.col
    order = np.argsort(key, kind="stable")
    key, value = key[order], W.data[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    high = np.maximum.reduceat(value, starts)
    low = np.minimum.reduceat(value, starts)
    count = np.diff(np.r_[starts, len(key)])
    low = np.where(count < size[key[starts] // m], 0.0, low)  # a state of K with no entry towards L: a 0
    return float((high - low).max()), bool((low >= (1.0 - rtol) * high).all())


def lumpability(chain, labels, kind: str = "ordinary", rtol: float = RTOL) -> Lumpability:
    """Test whether the partition ``labels`` of the chain's states is ordinarily (``kind =
    "ordinary"``) or exactly (``"exact"``) lumpable, with its defect (module docstring)."""
    P = _matrix(chain)
    blocks = block_labels(labels, P.shape[0])
    M = P if _check_kind(kind) == "ordinary" else P.T.tocsr()
    defect, within = _spreads(M, blocks, _check_rtol(rtol))
    return Lumpability(kind, within, defect, int(blocks.max()) + 1, rtol)


def aggregated_chain(chain, labels, weights=None) -> MarkovChain:
    """The chain on the blocks ``P^_w = diag(V^T w)^{-1} V^T diag(w) P V`` (module docstring): with
    ``weights`` None, uniform (``w = 1``), which is *the lumped chain* of an ordinarily or exactly
    lumpable partition; with ``weights`` the stationary law of an irreducible chain, the
    pi-weighted aggregation (its stationary law is the aggregated one; its block process is
    Markov only for an ordinarily lumpable partition). Block ``K`` is the ``K``-th label in
    order of first appearance (:func:`block_labels`). Every block needs positive total weight."""
    P = _matrix(chain)
    n = P.shape[0]
    blocks = block_labels(labels, n)
    m = int(blocks.max()) + 1
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"weights must be {n} finite non-negative numbers, one per state")
    total = np.bincount(blocks, weights=w, minlength=m)
    if (total <= 0).any():
        raise ValueError(f"block {int(np.flatnonzero(total <= 0)[0])} has no positive weight; "
                         "give every block a state of positive weight")
    U = sp.csr_matrix((w / total[blocks], (blocks, np.arange(n))), shape=(m, n))
    V = sp.csr_matrix((np.ones(n), (np.arange(n), blocks)), shape=(n, m))
    lumped = (U @ P @ V).tocsr()
    rows = np.asarray(lumped.sum(axis=1)).ravel()
    lumped = sp.diags(1.0 / rows) @ lumped  # averages of stochastic rows: 1 up to rounding, renormalised
    return MarkovChain(lumped)


def lumped_chain(chain, labels, kind: str = "ordinary", rtol: float = RTOL) -> MarkovChain:
    """The lumped chain ``P^_KL`` of a partition that is ``kind``-lumpable within ``rtol``
    (:func:`lumpability`); a partition that is not is one :class:`ChainError` naming its defect
    (its uniform or pi-weighted aggregation is :func:`aggregated_chain`)."""
    test = lumpability(chain, labels, kind, rtol)
    if not test.lumpable:
        raise ChainError(f"the partition is not {kind}ly lumpable within rtol {rtol:g} (defect {test.defect:.3g}); "
                         "refine it (coarsest_lumping) or aggregate it with weights (aggregated_chain)")
    return aggregated_chain(chain, labels)


def lift_uniform(lumped_law, labels) -> np.ndarray:
    """The law on the states that is uniform within each block and gives block ``K`` the mass
    ``lumped_law[K]`` (for an exactly lumpable partition, ``mu P`` of such a law ``mu`` is again one)."""
    blocks = block_labels(labels)
    size = np.bincount(blocks)
    law = np.asarray(lumped_law, dtype=float)
    if law.shape != (len(size),):
        raise ValueError(f"the lumped law must have one mass per block ({len(size)}), got shape {law.shape}")
    return law[blocks] / size[blocks]


def _separated(value: np.ndarray, rtol: float) -> np.ndarray:
    """For sorted ``value``: whether each neighbour pair ``(a, b)`` is separated, ``a < (1 - rtol) b``."""
    return value[:-1] < (1.0 - rtol) * value[1:]


class _Partition:
    """Blocks as contiguous runs of ``order`` (``first[K] .. first[K] + count[K]``), ``where`` the
    position of each state in ``order``: a split moves only the states it touches."""

    def __init__(self, blocks: np.ndarray):
        n = len(blocks)
        m = int(blocks.max()) + 1
        self.block = blocks.astype(np.int64).copy()
        self.order = np.argsort(self.block, kind="stable")
        self.where = np.empty(n, dtype=np.int64)
        self.where[self.order] = np.arange(n)
        self.count = np.zeros(n, dtype=np.int64)
        self.count[:m] = np.bincount(self.block, minlength=m)
        self.first = np.zeros(n, dtype=np.int64)
        self.first[:m] = np.r_[0, np.cumsum(self.count[: m - 1])]
        self.m = m
        self.marked = np.zeros(n, dtype=bool)  # scratch of split(), all False between calls

    def members(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The states of the blocks ``ids`` and the index in ``ids`` of each one's block."""
        counts = self.count[ids]
        owner = np.repeat(np.arange(len(ids)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return self.order[self.first[ids][owner] + offset], owner

    def split(self, states: np.ndarray, group: np.ndarray) -> np.ndarray:
        """Split off the ``states`` (distinct, each with its ``group``, equal groups only within one
        block) from the rest of their blocks: the untouched rest keeps the block's number (or, when
        none is left, the first group does), each other group becomes a new block. Returns the
        numbers of the blocks that become splitters: every piece of a split block but its largest."""
        old = self.block[states]
        o = np.lexsort((group, old))
        states, group, old = states[o], group[o], old[o]
        by_block = np.flatnonzero(np.r_[True, old[1:] != old[:-1]])
        touched = old[by_block]
        t = np.diff(np.r_[by_block, len(states)])
        rest = self.count[touched] - t
        # the touched states go to the tail of their block's run, the untouched rest to its head
        head_end = self.first[touched] + rest
        pos = self.where[states]
        hole = pos < np.repeat(head_end, t)  # a touched state in the head: its place goes to a rest state
        tail_pos = np.repeat(head_end - by_block, t) + np.arange(len(states))  # the last t places of each run
        self.marked[states] = True
        movers_at = tail_pos[~self.marked[self.order[tail_pos]]]  # rest states in the tail, by block (ascending), then place
        self.marked[states] = False
        o = np.lexsort((pos[hole], old[hole]))
        holes = pos[hole][o]  # the same, block by block: paired one to one
        movers = self.order[movers_at]
        self.order[holes] = movers
        self.where[movers] = holes
        self.order[tail_pos] = states  # in (block, group) order
        self.where[states] = tail_pos
        # pieces: runs of equal (block, group), laid out in this order after the rest of their block
        piece_start = np.flatnonzero(np.r_[True, (old[1:] != old[:-1]) | (group[1:] != group[:-1])])
        piece_size = np.diff(np.r_[piece_start, len(states)])
        piece_of_block = np.cumsum(np.r_[True, old[piece_start[1:]] != old[piece_start[:-1]]]) - 1  # index in touched
        first_piece = np.r_[True, piece_of_block[1:] != piece_of_block[:-1]]
        keeps = first_piece & (rest[piece_of_block] == 0)  # no rest: the first piece keeps the block's number
        ids = np.empty(len(piece_start), dtype=np.int64)
        ids[keeps] = touched[piece_of_block[keeps]]
        n_new = int((~keeps).sum())
        ids[~keeps] = np.arange(self.m, self.m + n_new)
        self.m += n_new
        self.block[states] = np.repeat(ids, piece_size)
        self.first[ids] = head_end[piece_of_block] + piece_start - by_block[piece_of_block]
        self.count[ids] = piece_size
        has_rest = rest > 0
        self.count[touched[has_rest]] = rest[has_rest]
        # splitters: of each block that split (its rest and pieces), every piece but the largest
        owner = np.concatenate([piece_of_block, np.flatnonzero(has_rest)])
        sizes = np.concatenate([piece_size, rest[has_rest]])
        number = np.concatenate([ids, touched[has_rest]])
        split = np.bincount(owner, minlength=len(touched)) > 1
        keep = split[owner]
        sizes, owner, number = sizes[keep], owner[keep], number[keep]
        if len(owner) == 0:
            return owner
        o = np.lexsort((-sizes, owner))
        largest = np.r_[True, owner[o][1:] != owner[o][:-1]]
        return number[o][~largest]


def _group_sets(item: np.ndarray, element: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``item`` values and a group number for each, equal exactly when the sets of
    ``element`` values paired with them are equal (exact: sets are numbered prefix by prefix)."""
    o = np.lexsort((element, item))
    item, element = item[o], element[o]
    start = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    length = np.diff(np.r_[start, len(item)])
    prefix = np.zeros(len(start), dtype=np.int64)
    base = int(element.max()) + 1
    for p in range(int(length.max())):
        active = np.flatnonzero(length > p)
        prefix[active] = np.unique(prefix[active] * base + element[start[active] + p], return_inverse=True)[1].ravel()
    group = np.unique(length * (len(start) + 1) + prefix, return_inverse=True)[1].ravel()
    return item[start], group


def _stable(M: sp.csr_matrix, blocks: np.ndarray, rtol: float) -> bool:
    """Whether no block is split by any block: for every ``(K, L)`` the values ``(M V)[i, L]`` over
    ``i`` in ``K`` (a 0 where there is no entry) have no separated neighbours."""
    m = int(blocks.max()) + 1
    size = np.bincount(blocks, minlength=m)
    W = _weights(M, blocks, m)
    if W.nnz == 0:
        return True
    key = blocks[W.row].astype(np.int64) * m + W.col
    o = np.lexsort((W.data, key))
    key, value = key[o], W.data[o]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if (np.diff(np.r_[starts, len(key)]) < size[key[starts] // m]).any():
        return False  # a 0 beside a positive value
    same = key[1:] == key[:-1]
    return not (same & _separated(value, rtol)).any()


def coarsest_lumping(chain, labels, kind: str = "ordinary", rtol: float = RTOL) -> np.ndarray:
    """The coarsest partition refining ``labels`` that is ``kind``-lumpable (``"ordinary"`` or
    ``"exact"``), by partition refinement with splitters in ``O(m log n)`` (module docstring), with
    values compared by the relative-gap rule at ``rtol``. Returns the labels of its blocks,
    numbered in order of first appearance; :func:`lumpability` of the result gives its defect."""
    P = _matrix(chain)
    n = P.shape[0]
    rtol = _check_rtol(rtol)
    M = P if _check_kind(kind) == "ordinary" else P.T.tocsr()
    columns = M.tocsc()
    part = _Partition(block_labels(labels, n))
    pending = np.arange(part.m)
    while True:
        while len(pending):
            targets, owner = part.members(pending)
            lo, count = columns.indptr[targets], np.diff(columns.indptr)[targets]
            entry = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(count.sum())
            if len(entry) == 0:
                break
            key = columns.indices[entry].astype(np.int64) * n + pending[np.repeat(owner, count)]
            pair, inverse = np.unique(key, return_inverse=True)
            value = np.bincount(inverse.ravel(), weights=columns.data[entry])  # M(i, L) for each (i, splitter L)
            source, splitter = pair // n, pair % n
            block = part.block[source]
            o = np.lexsort((value, splitter, block))
            source, splitter, block, value = source[o], splitter[o], block[o], value[o]
            fresh = np.r_[True, (block[1:] != block[:-1]) | (splitter[1:] != splitter[:-1]) | _separated(value, rtol)]
            states, group = _group_sets(source, np.cumsum(fresh) - 1)
            pending = part.split(states, group)
        if _stable(M, part.block, rtol):
            return block_labels(part.block)
        pending = np.unique(part.block)  # the tolerance hid a split from the shortcut: every block splits again


def partition_by_values(values, rtol: float = RTOL, log: bool = False) -> np.ndarray:
    """The partition of the rows of ``values`` (n x d, or n) into rows equal within ``rtol`` in every
    column, by the relative-gap rule of the module docstring applied column by column (sort, split
    at every separated neighbour pair; ``0`` is separated from every positive value). With ``log``
    the values are logarithms (``-inf`` for 0), compared by ``log b - log a > -log(1 - rtol)``, so
    magnitudes below the float range are told apart too. Returns labels in order of first appearance."""
    X = np.asarray(values, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    rtol = _check_rtol(rtol)
    if X.ndim != 2 or np.isnan(X).any() or (not log and (X < 0).any()) or (log and np.isposinf(X).any()):
        raise ValueError("values must be an (n, d) array of " + ("logarithms (finite or -inf)" if log else
                                                                  "non-negative numbers") + ", without NaN")
    codes = np.zeros((len(X), X.shape[1]), dtype=np.int64)
    for c in range(X.shape[1]):
        order = np.argsort(X[:, c], kind="stable")
        v = X[order, c]
        if log:
            with np.errstate(invalid="ignore"):  # -inf - (-inf) is NaN: two zeros, not separated
                gap = np.diff(v) > -np.log1p(-rtol)
        else:
            gap = _separated(v, rtol)
        codes[order, c] = np.r_[0, np.cumsum(gap)]
    return block_labels(np.unique(codes, axis=0, return_inverse=True)[1].ravel())
