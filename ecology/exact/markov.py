"""Finite discrete-time Markov chains: classes, stationary laws, spectra and hitting analysis.

Generic: this module imports only numpy and scipy. Notation: a chain on states ``0 .. n-1`` with
row-stochastic transition matrix ``P`` (``P[i, j]`` = probability of moving from ``i`` to ``j``).

Structure
    ``i`` *communicates* with ``j`` when each is reachable from the other; the *communication
    classes* are the strongly connected components of ``{i -> j : P[i, j] > 0}``. A class is
    *closed* (recurrent) when no edge leaves it, otherwise its states are *transient*. The
    *period* of a closed class is the gcd of ``level(i) + 1 - level(j)`` over its edges, with
    ``level`` the breadth-first distance from one of its states; its *cyclic classes* are the
    sets ``{level = r mod period}``. The chain is *irreducible* when it is one class.

Stationary laws
    Each closed class ``C`` has one stationary law ``pi = pi P_CC``, ``sum pi = 1``. It is computed
    by the Grassmann–Taksar–Heyman (GTH) elimination: states are censored one by one, and the
    diagonal ``1 - P[k, k]`` of the censored chain is never formed by a subtraction but as the sum
    of the off-diagonal entries of row ``k``. Every operation then adds, multiplies or divides
    non-negative numbers, so each component is computed to a small relative error whatever the
    escape probabilities (O'Cinneide 1993), in any elimination order; the back-substitutions hold
    masses as mantissa and binary exponent (exact rescaling, any range), and a censored escape
    below the float range sends a small class to the same elimination in log space. A birth–death
    class (its graph a path) by detailed balance, the ratios multiplied in double-double
    (:func:`birth_death_law`: 3 ulps per component, any size). Dense for classes up to
    ``DENSE_LIMIT`` states; on a band (reverse Cuthill–McKee order) when the band is narrow
    (the work is ``n * bandwidth^2``); otherwise by sparse block elimination
    (:func:`gth_blocks`): metastable sets (components once transitions below
    ``METASTABLE_THRESHOLD`` are dropped) censored block by block, ``P_IO += P_IS N_S P_SO`` touching
    only the states ``I`` entering and ``O`` left to by the block ``S``, within fill and work budgets.
    Over budget, the dominant left eigenvector by implicitly restarted Arnoldi from a seeded random
    start, checked against a sparse LU solve pinned at the heaviest state.
    *Error estimate* (reported per law): for a birth–death class, a rounding bound; for GTH, the
    L1 distance between two eliminations in opposite orders, at least ``n u`` (:func:`_gth_estimate`);
    for the last path, the bound
    ``||pi - pi~||_1 <= ||r||_1 (M + M (M + 1) / 2)`` with ``r = pi~ - pi~ P`` and
    ``M = max_i E_i[time to hit j]`` for the heaviest state ``j`` (derived in docs/exact.md from
    ``pi~_j - pi_j = -pi_j r h_j``). A tiny residual with a huge ``M`` (a nearly decomposable
    class) gives a poor bound, and the report says so instead of printing digits.

Hitting analysis
    For a target set ``A``: ``u(i) = P_i(ever enter A)`` solves ``u = 1`` on ``A``, ``u = 0`` where
    ``A`` is unreachable, ``u = P_SA 1 + P_SS u`` on the rest ``S``. The expected hitting time
    ``h(i) = E_i[min{t >= 0 : X_t in A}]`` is ``0`` on ``A``, ``inf`` where ``A`` is missed with
    positive probability, ``h = 1 + P_SS h`` on the others. The committor ``q(i) = P_i(A before
    B)`` is the hitting probability of ``A`` in the chain where ``B`` is absorbing. Every such
    system ``x = b + Q x`` with ``b, Q >= 0`` and ``Q`` substochastic is solved by the same
    subtraction-free elimination (the diagonal ``1 - Q[k, k]`` is the sum of what leaves ``k``),
    accurate to a few ulps per component even when times reach 1e45. Systems are solved class
    by class over the condensation of ``Q`` (one-state classes level by level, vectorised); each
    larger class dense up to ``DENSE_LIMIT`` unknowns, banded when narrow, else by the sparse block
    elimination (:func:`solve_blocks`, any size within its budgets), else by sparse LU with
    iterative refinement (``LU_LIMIT``) or LGMRES (``KRYLOV_LIMIT``), checked by their residual;
    beyond, a :class:`ChainError` names the exceeded budget rather than returning a number, except
    for the expected hitting times, which go on to the survival series ``h = sum_t Q^t 1`` with
    two-sided Collatz–Wielandt bounds (:meth:`MarkovChain.hitting_times`) within a work budget.
    ``P_i(hit A by t) = 1 - (Q^t 1)(i)``. The mean first passage matrix ``M[i, j] = E_i[time to
    hit j]`` (``M[i, i] = 0``) has one such solve per column; *Kemeny's constant*
    ``K = sum_j pi_j M[i, j]`` does not depend on ``i``. The *fundamental matrix* of the transient
    part is ``N = (I - Q)^{-1}`` (expected visits), ``Q`` the transient-to-transient block.

Loops
    The *most likely successor* map ``f(i) = argmax_j P[i, j]`` (ties to the lowest ``j``) sends
    every state, followed repeatedly, onto one of its cycles ``c_0 -> .. -> c_{L-1} -> c_0``; for
    each, ``rho = prod_i P[c_i, c_{i+1}]`` is the probability of one lap, ``1 - rho^(1/L)`` the leak
    per step, ``rho / (1 - rho)`` the expected number of complete laps before leaving; it is closed
    (a closed class of period ``L``) when no other transition leaves its states.

Spectrum
    The ``count`` leading eigenvalues of a class (:func:`leading_eigenvalues`): the dense spectrum
    up to ``ARPACK_EIGEN_MIN`` states, else two ARPACK runs (left and right) whose leading moduli
    must agree, else the dense spectrum up to ``DENSE_EIGEN_LIMIT`` states, else refused.

Mixing
    The *relaxation time* of an irreducible aperiodic chain is ``1 / (1 - |lambda_2|)``; the
    *mixing time* ``t_mix(eps) = min{t : max_i ||P^t(i, .) - pi||_TV <= eps}`` (computed exactly
    by squaring for small chains; ``d(t)`` is non-increasing, so a bisection over the stored
    powers finds it); the *entropy rate* is ``-sum_i pi_i sum_j P[i, j] log P[i, j]``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse import linalg as spla

DENSE_LIMIT = 2500  # dense (blocked) GTH / elimination up to this many states (about 2 s at 2500)


DENSE_EIGEN_LIMIT = 1500  # dense spectrum of a class up to this size when ARPACK fails (never above)


ARPACK_EIGEN_MIN = 300  # a few leading eigenvalues of a class above this size by ARPACK (docs/exact.md, "Spectrum")


EIGEN_AGREEMENT = 1e-11  # the two ARPACK runs' leading moduli agree to this (absolute) or the dense spectrum is taken


EIGEN_RESIDUAL = 1e-12  # ||B^T v - lambda v|| / ||v|| of every eigenpair ARPACK returns, else a larger Krylov space


BAND_WORK_LIMIT = 3e8  # banded elimination when n * bandwidth^2 is below this


LU_LIMIT = 8_000  # sparse LU above the band limit up to this size (page-state graphs fill in fast); GMRES above


MFPT_LIMIT = 300  # mean first passage matrix (one elimination per column: n^4 / 3 flops)


KRYLOV_WORK = 4e9  # flops allowed to one iterative solve


KRYLOV_LIMIT = 20_000  # unknowns of an iterative solve (LGMRES slows down sharply above on page chains)


SERIES_WORK = 2 * 10**10  # multiply-adds of the survival series behind refused hitting times (the CLI's --max-work)


SERIES_PRODUCT_FLOOR = 10**4  # a sparse product costs at least this many multiply-adds (ecology.exact.chain.PER_CALL)


SERIES_RTOL = 1e-10  # the survival series stops when its two-sided bounds are this close, relatively


TRUSTED_ERROR = 1e-6  # an L1 error estimate above this is reported as unreliable


SEED = 20251123  # start vectors of ARPACK are random, but reproducible


class ChainError(ValueError):
    """A matrix that is not a finite stochastic matrix, or a question it cannot answer."""


SINGULAR = ("the system is singular: a set of states is never left, or the probabilities of leaving it "
            "multiply below the float range (about 1e-308)")


BLOCK = 96  # states eliminated per block in the dense eliminations (matrix products do the rest)


def gth(P: np.ndarray) -> np.ndarray:
    """Stationary law of an irreducible dense stochastic matrix by GTH elimination (module docstring).

    Blocked: censoring a block ``S`` of states from the remaining ones ``R`` replaces ``P_RR`` by
    ``P_RR + P_RS N_S P_SR`` with ``N_S = (I - P_SS)^{-1}`` from the subtraction-free solve (its
    pivots are sums of what leaves each state), so every operation stays on non-negative numbers;
    then ``pi_S = pi_R P_RS N_S``. Masses are held as ``m 2^e`` (a mantissa and an integer binary
    exponent, :func:`_scaled`) through the back-substitution, so they may span more than the float
    range and are rescaled exactly (by powers of 2). When a censored escape probability leaves the
    float range (a pivot below 1e-308, or visits above 1e308), the blocks give way to one state at a
    time, and that to the same elimination in log space (:func:`_gth_log`, up to
    ``LOG_SOLVE_LIMIT`` states; a ChainError beyond)."""
    A = np.array(P, dtype=float)
    n = len(A)
    np.fill_diagonal(A, 0.0)
    if n <= BLOCK:
        return _normalise_scaled(*_gth_small(A))
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scaled = _gth_blocked(A)
    except ChainError:  # a block's pivot underflowed
        scaled = None
    if scaled is None:  # a block's censored masses left the float range: one state at a time
        A = np.array(P, dtype=float)
        np.fill_diagonal(A, 0.0)
        scaled = _gth_small(A)
    return _normalise_scaled(*scaled)


def _gth_blocked(A: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The blocked elimination of :func:`gth` in place on ``A`` (zero diagonal), as ``(m, e)``; None on overflow."""
    n = len(A)
    blocks = []
    for k in range(0, n - BLOCK, BLOCK):
        S, R = slice(k, k + BLOCK), slice(k + BLOCK, n)
        N = _solve_dense(A[S, S], A[S, R].sum(axis=1), np.eye(BLOCK))
        Y = A[R, S] @ N  # pi_S = pi_R Y
        if not np.all(np.isfinite(Y)):
            return None
        A[R, R] += Y @ A[S, R]
        A[R, R][np.diag_indices(n - k - BLOCK)] = 0.0
        blocks.append((S, Y))
    if not np.all(np.isfinite(A)):
        return None
    last = slice(blocks[-1][0].stop, n)
    mantissa, exponent = np.zeros(n), np.full(n, ZERO_EXPONENT)
    mantissa[last], exponent[last] = _gth_small(A[last, last])
    for S, Y in reversed(blocks):
        R = slice(S.stop, n)
        mantissa[S], exponent[S] = _scaled_product(mantissa[R], exponent[R], Y)
    if not np.all(np.isfinite(mantissa)):
        return None
    return mantissa, exponent


ZERO_EXPONENT = -(2**40)  # the binary exponent given to 0 in the (mantissa, exponent) form of :func:`_scaled`


def _scaled(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x = m 2^e`` with ``m`` in ``[1/2, 1)`` (``frexp``; exact) and ``e`` an int64 array (0 gets
    :data:`ZERO_EXPONENT`, below any true exponent)."""
    m, e = np.frexp(x)
    e = e.astype(np.int64)
    e[m == 0] = ZERO_EXPONENT
    return m, e


def _unscaled(m: np.ndarray, e: np.ndarray, top: int) -> np.ndarray:
    """``m 2^(e - top)`` (exact but for underflow below 2^-1074; ``top >= e``)."""
    return np.ldexp(m, np.maximum(e - top, -2200).astype(np.int32))


def _scaled_product(m: np.ndarray, e: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x Y`` for ``x = m 2^e`` (non-negative), scaled: ``x`` is brought to the scale of its largest
    entry by a power of 2 (exact: a term below 2^-1074 of the largest underflows to 0, a relative
    change of the sum below 2^-1074 n), multiplied, and the result's exponent restored."""
    top = int(e.max())
    if top == ZERO_EXPONENT:
        return np.zeros(Y.shape[-1]), np.full(Y.shape[-1], ZERO_EXPONENT)
    m2, e2 = _scaled(_unscaled(m, e, top) @ Y)
    e2[m2 != 0] += top
    return m2, e2


def _normalise_scaled(m: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``x / sum x`` for ``x = m 2^e`` (the largest entry brought to ``[1/2, 1)`` exactly first)."""
    x = _unscaled(m, e, int(e.max()))
    return x / x.sum()


def _gth_small(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GTH one state at a time on a matrix with zero diagonal, the unnormalised masses as ``(m, e)``
    (:func:`_scaled`): the back-substitution ``x_k = sum_{j > k} x_j A[j, k]`` is done with the
    later masses brought to a common binary scale, so no rounding comes from the scaling. A pivot
    (what leaves a censored state) that underflows to 0, or a factor that overflows, hands the
    matrix to :func:`_gth_log`."""
    A0, A = A, A.copy()
    n = len(A)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # looked at just below
        for k in range(n - 1):
            A[k + 1 :, k] /= A[k, k + 1 :].sum()
            A[k + 1 :, k + 1 :] += np.outer(A[k + 1 :, k], A[k, k + 1 :])
    if not np.all(np.isfinite(A)):  # a pivot below the float range
        return _gth_log(A0)
    mantissa, exponent = np.zeros(n), np.full(n, ZERO_EXPONENT)
    mantissa[-1], exponent[-1] = 0.5, 1
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n - 2, -1, -1):
            m, e = _scaled_product(mantissa[k + 1 :], exponent[k + 1 :], A[k + 1 :, k, None])
            mantissa[k], exponent[k] = m[0], e[0]
    if not np.all(np.isfinite(mantissa)):
        return _gth_log(A0)
    return mantissa, exponent


def _gth_log(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_gth_small` with every entry held as its natural logarithm (a sum is a ``logaddexp``,
    a product a sum, a quotient a difference), for censored chains whose escape probabilities
    multiply below the float range: nothing under- or overflows, at a relative error of a few ulps of
    ``ln x`` per step. Up to ``LOG_SOLVE_LIMIT`` states (a ChainError beyond). Returns ``(m, e)``."""
    n = len(A)
    if n > LOG_SOLVE_LIMIT:
        raise ChainError(f"the censored escape probabilities of a class of {n:,} states leave the float range, and the "
                         f"log-space GTH elimination is done for up to {LOG_SOLVE_LIMIT:,} states")
    with np.errstate(divide="ignore"):
        log_A = np.log(A)
    np.fill_diagonal(log_A, -np.inf)
    for k in range(n - 1):
        pivot = _logsumexp(log_A[k, k + 1 :])
        if pivot == -np.inf:
            raise ChainError("GTH elimination: a state leads nowhere but to eliminated states (the class is not irreducible)")
        log_A[k + 1 :, k] -= pivot
        log_A[k + 1 :, k + 1 :] = np.logaddexp(log_A[k + 1 :, k + 1 :], log_A[k + 1 :, k, None] + log_A[k, None, k + 1 :])
        log_A[np.arange(k + 1, n), np.arange(k + 1, n)] = -np.inf
    y = np.full(n, -np.inf)
    y[-1] = 0.0
    for k in range(n - 2, -1, -1):
        y[k] = _logsumexp(y[k + 1 :] + log_A[k + 1 :, k])
    finite = np.isfinite(y)
    binary = np.where(finite, y / math.log(2), 0.0)  # x = 2^binary: a mantissa in [1/2, 1) and an integer exponent
    exponent = np.where(finite, np.floor(binary) + 1, ZERO_EXPONENT).astype(np.int64)
    mantissa = np.where(finite, np.exp2(binary - np.floor(binary) - 1), 0.0)
    return mantissa, exponent


def _logsumexp(v: np.ndarray) -> float:
    top = v.max()
    return top if not np.isfinite(top) else top + math.log(np.exp(v - top).sum())


def _solve_dense(Q: np.ndarray, out: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x = b + Q x`` (``Q, b, out >= 0``; ``out[i]`` = mass leaving the unknowns from ``i``), by
    Gaussian elimination whose pivots are sums of what leaves a state: subtraction-free. Blocked as
    in :func:`gth`: ``x_S = N_S (b_S + Q_SR x_R)`` after ``Q_RR += Q_RS N_S Q_SR``."""
    A = np.array(Q, dtype=float)
    out = np.array(out, dtype=float)
    b = np.array(b, dtype=float).reshape(len(A), -1)
    n = len(A)
    np.fill_diagonal(A, 0.0)
    if n <= BLOCK:
        return _solve_small(A, out, b)
    steps = []
    for k in range(0, n, BLOCK):
        S, R = slice(k, min(k + BLOCK, n)), slice(min(k + BLOCK, n), n)
        leave = out[S] + A[S, R].sum(axis=1)
        X = _solve_small(A[S, S], leave, np.hstack([A[S, R], out[S, None], b[S]]))
        XR, Xout, Xb = X[:, : n - S.stop], X[:, n - S.stop], X[:, n - S.stop + 1 :]
        A[R, R] += A[R, S] @ XR
        A[R, R][np.diag_indices(n - S.stop)] = 0.0
        out[R] += A[R, S] @ Xout
        b[R] += A[R, S] @ Xb
        steps.append((S, XR, Xb))
    x = np.zeros_like(b)
    for S, XR, Xb in reversed(steps):
        x[S] = Xb + XR @ x[S.stop :]
    return x


def _solve_small(A: np.ndarray, out: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_solve_dense` one state at a time (``A`` has zero diagonal; inputs not modified)."""
    A, out, b = A.copy(), out.copy(), b.copy()
    n = len(A)
    s = np.empty(n)
    for k in range(n):
        s[k] = A[k, k + 1 :].sum() + out[k]
        if s[k] <= 0:
            raise ChainError(SINGULAR)
        f = A[k + 1 :, k] / s[k]
        A[k + 1 :, k + 1 :] += np.outer(f, A[k, k + 1 :])
        out[k + 1 :] += f * out[k]
        b[k + 1 :] += np.outer(f, b[k])
        A[np.arange(k + 1, n), np.arange(k + 1, n)] = 0.0
    x = np.zeros_like(b)
    for k in range(n - 1, -1, -1):
        x[k] = (b[k] + A[k, k + 1 :] @ x[k + 1 :]) / s[k]
    return x


LOG_SOLVE_LIMIT = 400  # unknowns of the log-space elimination (n^3 / 3 logaddexp: about a second at 400)


DOUBLE_MAX_LOG10 = math.log10(np.finfo(float).max)  # 308.2547...: a time above 10^this is not a double


def log_solve_leaving(P: sp.csr_matrix, unknown: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """``ln x`` for ``x = b + P_SS x`` on the states ``S = unknown`` (as :func:`solve_leaving`),
    with ``b = exp(log_b) >= 0`` given by its logarithm (``-inf`` for 0).

    The same subtraction-free elimination as :func:`_solve_small`, every entry held as its
    natural logarithm: a sum of non-negative terms is a ``logaddexp``, a product a sum, a quotient
    a difference. No intermediate over- or underflows (a pivot ``1e-330`` is ``-759.8``), so it
    answers the systems whose solution or pivots leave the range of a double (an expected time of
    ``1e330``) to a relative error of a few ulps of ``ln x`` per elimination step. Dense, up to
    ``LOG_SOLVE_LIMIT`` unknowns (a ChainError beyond)."""
    n = len(unknown)
    if n > LOG_SOLVE_LIMIT:
        raise ChainError(f"the log-space elimination is done for up to {LOG_SOLVE_LIMIT:,} unknowns, not {n:,}")
    P = sp.csr_matrix(P)
    inside = np.zeros(P.shape[0], dtype=bool)
    inside[unknown] = True
    rows = P[unknown]
    with np.errstate(divide="ignore"):
        log_A = np.log(rows[:, unknown].toarray())
        log_out = np.log(np.asarray(rows[:, ~inside].sum(axis=1)).ravel())
    log_b = np.array(log_b, dtype=float)
    np.fill_diagonal(log_A, -np.inf)
    pivots = np.empty(n)
    for k in range(n):
        pivots[k] = _logsumexp(np.append(log_A[k, k + 1 :], log_out[k]))
        if pivots[k] == -np.inf:
            raise ChainError("the system is singular: a set of states is never left")
        f = log_A[k + 1 :, k] - pivots[k]
        log_A[k + 1 :, k + 1 :] = np.logaddexp(log_A[k + 1 :, k + 1 :], f[:, None] + log_A[k, None, k + 1 :])
        log_out[k + 1 :] = np.logaddexp(log_out[k + 1 :], f + log_out[k])
        log_b[k + 1 :] = np.logaddexp(log_b[k + 1 :], f + log_b[k])
        log_A[np.arange(k + 1, n), np.arange(k + 1, n)] = -np.inf
    log_x = np.empty(n)
    for k in range(n - 1, -1, -1):
        log_x[k] = _logsumexp(np.append(log_A[k, k + 1 :] + log_x[k + 1 :], log_b[k])) - pivots[k]
    return log_x


def _bandwidth_order(Q: sp.csr_matrix) -> tuple[np.ndarray, int]:
    """Reverse Cuthill–McKee order of the symmetrised pattern, and the bandwidth in that order."""
    pattern = (abs(Q) + abs(Q.T)).tocsr()
    order = csgraph.reverse_cuthill_mckee(pattern, symmetric_mode=True)
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    coo = pattern.tocoo()
    width = int(np.abs(where[coo.row] - where[coo.col]).max()) if coo.nnz else 0
    return order, width


def _to_band(Q: sp.csr_matrix, width: int) -> np.ndarray:
    """``B[i, width + j - i] = Q[i, j]`` (off-diagonal entries only), with ``width + 1`` zero rows
    of padding below so that every step of the elimination sees a full ``width x width`` block."""
    coo = Q.tocoo()
    off = coo.row != coo.col
    B = np.zeros((Q.shape[0] + width + 1, 2 * width + 1))
    np.add.at(B, (coo.row[off], width + coo.col[off] - coo.row[off]), coo.data[off])
    return B


def _band_eliminate(B: np.ndarray, width: int, out: np.ndarray, b: np.ndarray | None, stop: int):
    """Forward GTH-style elimination of states ``0 .. stop-1`` on padded band storage, in place.

    Returns the pivots ``s``; afterwards ``B[k + t, width - t]`` holds ``Q[k + t, k] / s[k]``. In
    the flat buffer ``B[k + t, w + u - t]`` sits at ``k (2w + 1) + w + 2 w t + u``, so the column
    below pivot ``k``, the block it updates and that block's diagonal are the ``k``-th entries of
    three strided views made once (``out`` and ``b`` carry ``width + 1`` padding rows too)."""
    w = width
    n = len(B) - w - 1
    flat = B.reshape(-1)
    item, stride = flat.itemsize, (2 * w + 1) * flat.itemsize
    count = n
    strided = np.lib.stride_tricks.as_strided
    rows = strided(flat[w + 1 :], (count, w), (stride, item))
    columns = strided(flat[3 * w :], (count, w), (stride, 2 * w * item))
    blocks = strided(flat[3 * w + 1 :], (count, w, w), (stride, 2 * w * item, item))
    diagonals = strided(flat[3 * w + 1 :], (count, w), (stride, stride))
    s = np.zeros(n)
    for k in range(stop):
        row = rows[k]
        s[k] = row.sum() + out[k]
        if s[k] <= 0:
            raise ChainError(SINGULAR)
        column = columns[k]
        column /= s[k]
        if column.any():
            blocks[k] += np.multiply.outer(column, row)
            diagonals[k] = 0.0
            out[k + 1 : k + 1 + w] += column * out[k]
            if b is not None:
                b[k + 1 : k + 1 + w] += np.multiply.outer(column, b[k])
    return s


def _solve_band(Q: sp.csr_matrix, out: np.ndarray, b: np.ndarray, order: np.ndarray, width: int) -> np.ndarray:
    """``x = b + Q x`` by the subtraction-free elimination on a band (``order`` from RCM)."""
    n, w = len(order), width
    B = _to_band(Q[order][:, order].tocsr(), w)
    outp = np.zeros(n + w + 1)
    outp[:n] = np.asarray(out, dtype=float)[order]
    rhs = np.asarray(b, dtype=float).reshape(n, -1)
    bp = np.zeros((n + w + 1, rhs.shape[1]))
    bp[:n] = rhs[order]
    s = _band_eliminate(B, w, outp, bp, n)
    x = np.zeros_like(bp)
    for k in range(n - 1, -1, -1):
        x[k] = (bp[k] + B[k, w + 1 :] @ x[k + 1 : k + 1 + w]) / s[k]
    result = np.empty((n, rhs.shape[1]))
    result[order] = x[:n]
    return result


def _gth_band(P: sp.csr_matrix, order: np.ndarray, width: int) -> np.ndarray:
    """GTH stationary law of an irreducible chain on a band (``order`` from RCM).

    Back-substitution ``x_k = sum_t x_{k+t} B[k+t, w-t]`` keeps the last ``width`` masses in one
    floating scale ``2^shift``, rescaled by powers of 2 (exactly) when it drifts beyond 1e+-100, and
    records ``x_k`` as a mantissa and that binary exponent, so masses may span more than the float
    range and no rounding comes from the scaling."""
    n, w = len(order), width
    B = _to_band(P[order][:, order].tocsr(), w)
    _band_eliminate(B, w, np.zeros(n + w + 1), None, n - 1)
    flat = B.reshape(-1)
    factors = np.lib.stride_tricks.as_strided(flat[3 * w :], (n, w), ((2 * w + 1) * flat.itemsize, 2 * w * flat.itemsize))
    window = np.zeros(w)  # x_{k+1} .. x_{k+w} in the current scale 2^shift
    window[0] = 1.0
    shift = 0
    mantissa, exponent = np.zeros(n), np.zeros(n, dtype=np.int64)  # x_k = mantissa[k] 2^exponent[k]
    mantissa[n - 1] = 1.0
    for k in range(n - 2, -1, -1):
        value = float(factors[k] @ window)
        window[1:] = window[:-1]
        window[0] = value
        mantissa[k], exponent[k] = value, shift
        if value > 0 and not 1e-100 < value < 1e100:  # rescaled by a power of 2: exactly
            binary = math.frexp(value)[1]
            window = np.ldexp(window, -binary)
            shift += binary
    if not np.all(np.isfinite(mantissa)):
        raise ChainError("the banded GTH elimination left the float range")
    m, e = _scaled(mantissa)
    e[m != 0] += exponent[m != 0]
    pi = np.empty(n)
    pi[order] = _normalise_scaled(m, e)
    return pi


def _path_order(P: sp.csr_matrix) -> np.ndarray | None:
    """The states in order along the path when the transition graph (directions and self-loops
    ignored) of an irreducible chain is a path, i.e. a birth–death chain: connected, ``n - 1``
    edges, no state with more than two neighbours; else None. Breadth-first from an end."""
    n = P.shape[0]
    coo = P.tocoo()
    off = coo.row != coo.col
    pattern = sp.csr_matrix((np.ones(off.sum()), (coo.row[off], coo.col[off])), shape=(n, n))
    pattern = ((pattern + pattern.T) > 0).astype(np.int8).tocsr()
    degree = np.diff(pattern.indptr)
    if n < 2 or degree.max() > 2 or pattern.nnz != 2 * (n - 1):
        return None
    return csgraph.breadth_first_order(pattern, int(np.flatnonzero(degree == 1)[0]), directed=False,
                                       return_predecessors=False)


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a b = p + e`` exactly (Dekker's splitting: no fused multiply-add in numpy), for ``|a|, |b| <= 2^996``."""
    p = a * b
    split = 134217729.0  # 2^27 + 1
    ca, cb = split * a, split * b
    a_hi, b_hi = ca - (ca - a), cb - (cb - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _dd_times(x, y):
    """The product of two double-doubles ``(hi, lo, e)`` = ``(hi + lo) 2^e``, ``hi`` in ``[1/2, 1)``,
    to a relative ``2^-104``, renormalised so (the binary rescaling is exact)."""
    (xh, xl, xe), (yh, yl, ye) = x, y
    p, err = _two_product(xh, yh)
    err += xh * yl + xl * yh
    hi = p + err
    lo = err - (hi - p)
    m, shift = np.frexp(hi)
    return m, np.ldexp(lo, -shift), xe + ye + shift


def birth_death_law(up: np.ndarray, down: np.ndarray) -> tuple[np.ndarray, float]:
    """Stationary law of an irreducible birth–death chain (states ``0 .. n-1``, ``up[i] = P[i, i+1] > 0``,
    ``down[i] = P[i+1, i] > 0``), with a bound on its L1 error.

    Detailed balance gives ``pi_{i+1} / pi_i = up[i] / down[i]``, so ``pi_i`` is proportional to
    ``w_i = prod_{j < i} up[j] / down[j]``: no subtraction anywhere. The ratios are formed in
    double-double (``q = a / b`` and its remainder ``(a - q b) / b`` with ``q b`` split exactly by
    :func:`_two_product`), their prefix products by a doubling scan (``log2 n`` vectorised passes of
    :func:`_dd_times`, each a relative ``2^-104``), every value held as ``(hi + lo) 2^e`` with an
    integer binary exponent, so products far beyond the float range lose nothing. Rounded to double
    (a relative ``u = 2^-53`` at most), brought to the scale of the largest by a power of 2 (exact, a
    term below ``2^-1074`` of it vanishing), summed by ``math.fsum`` (correctly rounded) and divided:
    each component is within ``3 u (1 + n 2^-50)`` relative of the exact stationary law of the given
    matrix (plus ``2^-1074`` absolute for underflowed ones), and that bound summed over the law is the
    returned error, ``3 u (1 + n 2^-50) + n 2^-1074``."""
    up, down = np.asarray(up, dtype=float), np.asarray(down, dtype=float)
    n = len(up) + 1
    if (up <= 0).any() or (down <= 0).any():
        raise ChainError("a birth–death chain needs every up and down probability positive (irreducible)")
    up_m, up_e = np.frexp(up)  # mantissas in [1/2, 1): their ratio cannot overflow, whatever the rates
    down_m, down_e = np.frexp(down)
    q = up_m / down_m
    p, e = _two_product(q, down_m)
    remainder = ((up_m - p) - e) / down_m  # up_m - p is exact (Sterbenz): q + remainder = up_m / down_m to 2^-104
    m, shift = np.frexp(q)
    hi, lo, ex = np.ones(n) * 0.5, np.zeros(n), np.ones(n, dtype=np.int64)  # w_0 = 1 = 0.5 2^1
    hi[1:], lo[1:], ex[1:] = m, np.ldexp(remainder, -shift), shift + up_e.astype(np.int64) - down_e
    step = 1
    while step < n:  # Hillis–Steele inclusive scan: w_i <- w_i w_{i - step}
        head = (hi[step:], lo[step:], ex[step:])
        tail = (hi[:-step], lo[:-step], ex[:-step])
        hi[step:], lo[step:], ex[step:] = _dd_times(head, tail)
        step *= 2
    m, e = _scaled(hi + lo)
    e += ex
    top = int(e.max())
    x = _unscaled(m, e, top)
    pi = x / math.fsum(x)
    u = 2.0**-53
    return pi, 3 * u * (1 + n * 2.0**-50) + n * 2.0**-1074


ELIMINATION_BLOCK = 256  # states censored at once by the sparse block elimination


METASTABLE_THRESHOLD = 1e-4  # transitions below this separate the metastable blocks of the elimination order


FILL_LIMIT = 2 * 10**7  # entries (8 bytes each) the sparse block elimination may hold at once: about 160 MB


FRONT_LIMIT = 6 * 10**6  # entries of one block's dense working matrices


ELIMINATION_WORK = 6 * 10**10  # flops of one sparse block elimination (about a minute on one core)


class TooMuchFill(ChainError):
    """The sparse block elimination would exceed its memory or work budget."""


class OutOfRange(ChainError):
    """A block's expected visits exceed the float range (smaller blocks may not)."""


def has_small_transitions(Q: sp.csr_matrix) -> bool:
    """Whether some off-diagonal transition is below ``METASTABLE_THRESHOLD``: then the class may
    be nearly decomposable, and the subtraction-free block elimination is tried first (a residual
    says little there); otherwise the residual-checked solvers are tried first, being faster on
    well connected classes."""
    coo = Q.tocoo()
    return bool(((coo.data < METASTABLE_THRESHOLD) & (coo.row != coo.col) & (coo.data > 0)).any())


def elimination_blocks(Q: sp.csr_matrix, max_block: int = ELIMINATION_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """A fill-reducing elimination order, cut into blocks: ``(order, bounds)`` with block ``b`` the
    states ``order[bounds[b] : bounds[b + 1]]``.

    The metastable sets (strongly connected components once transitions below
    ``METASTABLE_THRESHOLD`` are dropped) are kept together, taken in reverse Cuthill–McKee order
    of their first state, and states inside a set in RCM order; sets larger than ``max_block``
    are cut into consecutive RCM pieces, smaller consecutive ones merged up to ``max_block``.
    Censoring a block only couples the states that enter it to the states it leaves to, so few
    transitions between the blocks mean little fill. The order affects only the cost: every
    elimination order of GTH is subtraction-free."""
    n = Q.shape[0]
    rcm, _ = _bandwidth_order(Q)
    rank = np.empty(n, dtype=np.int64)
    rank[rcm] = np.arange(n)
    kept = Q.multiply(Q >= METASTABLE_THRESHOLD).tocsr()
    _, labels = csgraph.connected_components(kept, directed=True, connection="strong")
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, rank)
    order = np.lexsort((rank, first[labels]))
    grouped = labels[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]).tolist() + [n]
    bounds = [0]
    for lo, hi in itertools.pairwise(starts):
        if hi - lo > max_block:
            if lo > bounds[-1]:
                bounds.append(lo)
            bounds.extend(range(lo + max_block, hi, max_block))
            bounds.append(hi)
        elif hi - bounds[-1] > max_block:
            bounds.append(lo)
    if bounds[-1] != n:
        bounds.append(n)
    return order, np.array(sorted(set(bounds)))


class _BlockElimination:
    """Censoring of consecutive blocks of a matrix with zero diagonal (states already in
    elimination order), keeping the fill they create between later states.

    Censoring block ``S`` from the later states ``R``: ``A_RR += A_RS N_S A_SR`` with
    ``N_S = (I - A_SS)^{-1}`` from :func:`_solve_dense` (pivots are what leaves each state), and
    diagonal entries dropped (a censored self-loop only shortens the pivot, which is formed as a
    sum). Only the rows ``I`` of ``R`` that enter ``S`` and the columns ``O`` that ``S`` leaves to
    are touched; each update is stored once as a dense ``|I| x |O|`` matrix and read back by the
    blocks its rows and columns belong to. ``fill``, ``front`` and ``work`` budgets are checked
    before each block's dense matrices are allocated (:class:`TooMuchFill`)."""

    def __init__(self, A: sp.csr_matrix, bounds: np.ndarray, what: str):
        self.A, self.AC, self.bounds, self.what = A, A.tocsc(), bounds, what
        n = A.shape[0]
        self.block_of = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        self.updates: list = []
        self.by_row: list[list[int]] = [[] for _ in range(len(bounds) - 1)]
        self.by_col: list[list[int]] = [[] for _ in range(len(bounds) - 1)]
        self.expire: list[list[int]] = [[] for _ in range(len(bounds) - 1)]
        self.held = 0
        self.work = 0.0
        self.n = n

    def _refuse(self, reason: str):
        raise TooMuchFill(f"{self.what} of {self.n:,} states by sparse GTH elimination {reason}; the class is too "
                          "well connected for an exact elimination")

    def gather(self, b: int, symbolic: bool = False):
        """Dense ``A_SS``, ``A_SO`` with columns ``O``, ``A_IS`` with rows ``I`` (current values);
        ``symbolic``: only ``I`` and ``O`` (the budgets are checked either way)."""
        lo, hi = self.bounds[b], self.bounds[b + 1]
        s = hi - lo
        rows = self.A[lo:hi].tocoo()
        r, c, v = [rows.row], [rows.col], [rows.data]
        for u in self.by_row[b]:
            I, O, U = self.updates[u]
            mine = (lo <= I) & (hi > I)
            sub = U[mine]
            rr, cc = np.nonzero(sub)
            r.append((I[mine] - lo)[rr])
            c.append(O[cc])
            v.append(sub[rr, cc])
        r, c, v = np.concatenate(r), np.concatenate(c), np.concatenate(v)
        live = c >= lo
        r, c, v = r[live], c[live], v[live]
        inside = c < hi
        A_SS = np.zeros((s, s))
        np.add.at(A_SS, (r[inside], c[inside] - lo), v[inside])
        O, o_index = np.unique(c[~inside], return_inverse=True)
        cols = self.AC[:, lo:hi].tocoo()
        r2, c2, v2 = [cols.row], [cols.col], [cols.data]
        for u in self.by_col[b]:
            I, O_u, U = self.updates[u]
            mine = (O_u >= lo) & (O_u < hi)
            later = hi <= I
            sub = U[np.ix_(later, mine)]
            rr, cc = np.nonzero(sub)
            r2.append(I[later][rr])
            c2.append((O_u[mine] - lo)[cc])
            v2.append(sub[rr, cc])
        r2, c2, v2 = np.concatenate(r2), np.concatenate(c2), np.concatenate(v2)
        later = r2 >= hi
        r2, c2, v2 = r2[later], c2[later], v2[later]
        I, i_index = np.unique(r2, return_inverse=True)
        front = s * s + len(I) * s + s * len(O) + len(I) * len(O)
        if front > FRONT_LIMIT:
            self._refuse(f"needs a dense block of {front:,} entries (limit {FRONT_LIMIT:,})")
        self.work += 4 / 3 * s**3 + 2.0 * s * len(O) * (s + len(I))
        if self.work > ELIMINATION_WORK:
            self._refuse(f"needs more than {ELIMINATION_WORK:.0e} flops")
        if symbolic:
            return lo, hi, None, O, None, I, None
        A_SO = np.zeros((s, len(O)))
        np.add.at(A_SO, (r[~inside], o_index), v[~inside])
        A_IS = np.zeros((len(I), s))
        np.add.at(A_IS, (i_index, c2), v2)
        return lo, hi, A_SS, O, A_SO, I, A_IS

    def keep(self, size: int) -> None:
        """Count ``size`` more entries held (fill, or what the back-substitution keeps)."""
        self.held += size
        if self.held > FILL_LIMIT:
            self._refuse(f"fills in more than {FILL_LIMIT:,} entries")

    def push(self, b: int, I: np.ndarray, O: np.ndarray, U: np.ndarray) -> None:
        """Store the update ``A[I, O] += U`` (diagonal dropped) for the blocks of ``I`` and ``O``."""
        U[I[:, None] == O[None, :]] = 0
        if not U.any():
            return
        self.keep(U.size)
        u = len(self.updates)
        self.updates.append((I, O, U))
        for k in np.unique(self.block_of[I]):
            self.by_row[k].append(u)
        for k in np.unique(self.block_of[O]):
            self.by_col[k].append(u)
        self.expire[max(self.block_of[I].max(), self.block_of[O].max())].append(u)

    def release(self, b: int) -> None:
        for u in self.expire[b]:
            self.held -= self.updates[u][2].size
            self.updates[u] = None


def _symbolic_pass(A: sp.csr_matrix, bounds: np.ndarray, what: str, kept_per_block) -> None:
    """The block elimination on patterns only (every state of ``I`` joined to every state of
    ``O``, a superset of the true fill), raising :class:`TooMuchFill` before any numerical work
    when the numerical elimination would be over budget; ``kept_per_block(s, |I|, |O|)`` is what
    its back-substitution keeps per block. Costs about the fill it counts, without the dense
    algebra, so a hopeless (expander-like) class is refused in a fraction of the time."""
    state = _BlockElimination(A, bounds, what)
    for k in range(len(bounds) - 1):
        lo, hi, _, O, _, I, _ = state.gather(k, symbolic=True)
        state.keep(kept_per_block(hi - lo, len(I), len(O)))
        if len(I) and len(O):
            state.push(k, I, O, np.ones((len(I), len(O)), dtype=bool))
        state.release(k)


def solve_blocks(Q: sp.csr_matrix, out: np.ndarray, b: np.ndarray, order: np.ndarray | None = None,
                 bounds: np.ndarray | None = None) -> np.ndarray:
    """``x = b + Q x`` (``Q`` zero diagonal, ``out`` = mass leaving the unknowns) by the
    subtraction-free elimination censoring blocks of :func:`elimination_blocks` in turn:
    ``X = N_S [A_SO, out_S, b_S]``, then ``A_IO += A_IS X_O``, ``out_I += A_IS X_out``,
    ``b_I += A_IS X_b``; back-substitution ``x_S = X_b + X_O x_O``. :class:`TooMuchFill` when over
    the budgets."""
    if order is None:
        order, bounds = elimination_blocks(Q)
    n = Q.shape[0]
    rhs = np.asarray(b, dtype=float).reshape(n, -1)[order].copy()
    outp = np.asarray(out, dtype=float)[order].copy()
    A = Q[order][:, order].tocsr()
    A.setdiag(0.0)
    A.eliminate_zeros()
    _symbolic_pass(A, bounds, "a linear system", lambda size, entering, leaving: size * (leaving + rhs.shape[1]))
    state = _BlockElimination(A, bounds, "a linear system")
    steps = []
    for k in range(len(bounds) - 1):
        lo, hi, A_SS, O, A_SO, I, A_IS = state.gather(k)
        leave = outp[lo:hi] + A_SO.sum(axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            X = _solve_dense(A_SS, leave, np.hstack([A_SO, outp[lo:hi, None], rhs[lo:hi]]))
        if not np.all(np.isfinite(X)):
            raise OutOfRange("expected visits or times inside a block exceed the float range (about 1e308)")
        XO, Xout, Xb = X[:, : len(O)], X[:, len(O)], X[:, len(O) + 1 :]
        if len(I):
            outp[I] += A_IS @ Xout
            rhs[I] += A_IS @ Xb
            state.push(k, I, O, A_IS @ XO)
        state.keep(XO.size + Xb.size)
        state.release(k)
        steps.append((lo, hi, O, XO, Xb))
    x = np.zeros_like(rhs)
    for lo, hi, O, XO, Xb in reversed(steps):
        x[lo:hi] = Xb + XO @ x[O]
    result = np.empty_like(x)
    result[order] = x
    return result.reshape(np.shape(b))


def gth_blocks(P: sp.csr_matrix, order: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Stationary law of an irreducible sparse chain by GTH censoring of consecutive blocks
    (:class:`_BlockElimination`): after censoring ``S``, ``pi_S = pi_I A_IS N_S`` is stored as
    ``Y = A_IS N_S``; the last block's censored chain is solved by dense GTH, and the
    back-substitution holds masses as mantissas and binary exponents (:func:`_scaled_product`:
    they may span more than the float range, rescaled exactly by powers of 2)."""
    n = P.shape[0]
    A = P[order][:, order].tocsr()
    A.setdiag(0.0)
    A.eliminate_zeros()
    _symbolic_pass(A, bounds, "a stationary law", lambda size, entering, leaving: entering * size)
    state = _BlockElimination(A, bounds, "a stationary law")
    steps = []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(len(bounds) - 2):
            lo, hi, A_SS, O, A_SO, I, A_IS = state.gather(k)
            N = _solve_dense(A_SS, A_SO.sum(axis=1), np.eye(hi - lo))
            Y = A_IS @ N
            if not np.all(np.isfinite(Y)):
                raise OutOfRange("a censored block's expected visits exceed the float range")
            if len(I):
                state.push(k, I, O, Y @ A_SO)
            state.keep(Y.size)
            state.release(k)
            steps.append((lo, hi, I, Y))
        lo, hi, A_LL, *_ = state.gather(len(bounds) - 2)
    mantissa, exponent = np.zeros(n), np.full(n, ZERO_EXPONENT)
    mantissa[lo:hi], exponent[lo:hi] = _scaled(gth(A_LL))
    with np.errstate(over="ignore", invalid="ignore"):
        for lo, hi, I, Y in reversed(steps):
            if len(I):
                mantissa[lo:hi], exponent[lo:hi] = _scaled_product(mantissa[I], exponent[I], Y)
    if not np.all(np.isfinite(mantissa)) or not mantissa.any():
        raise ChainError("the block GTH elimination left the float range")
    pi = np.empty(n)
    pi[order] = _normalise_scaled(mantissa, exponent)
    return pi


def times_power(x, M, n: int):
    """``x M^n`` by repeated squaring: writing ``n = sum_i 2^{b_i}``, ``x`` is multiplied by
    ``M^(2^i)`` for each set bit ``i``, lowest first, while ``M`` is squared (``log2 n`` squarings
    and at most as many products with ``x``; powers of one matrix commute, so the order of the
    factors does not matter in exact arithmetic). ``x`` a row vector or a matrix (the identity gives
    ``M^n``); ``M`` dense or sparse. The one implementation behind :meth:`MarkovChain.power`,
    :func:`ecology.exact.hit_by` and :func:`ecology.exact.distribution_after`."""
    while n:
        if n & 1:
            x = x @ M
        n >>= 1
        if n:
            M = M @ M
    return x


def solve_leaving(P: sp.csr_matrix, unknown: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x = b + P_SS x`` on the states ``S = unknown`` (index array), every one of which leaves
    ``S`` with positive probability eventually; ``b >= 0`` of shape (|S|,) or (|S|, m).

    Subtraction-free elimination (dense or banded) where it fits, else sparse LU of the matrix
    ``diag(leave) - offdiag(P_SS)`` (its diagonal formed without subtraction) with one step of
    iterative refinement."""
    P = sp.csr_matrix(P)
    inside = np.zeros(P.shape[0], dtype=bool)
    inside[unknown] = True
    rows = P[unknown]
    Q = rows[:, unknown].tocsr()
    Q.setdiag(0.0)
    Q.eliminate_zeros()
    out = np.asarray(rows[:, ~inside].sum(axis=1)).ravel()
    return _solve_system(Q, out, np.asarray(b, dtype=float))


def _solve_system(Q: sp.csr_matrix, out: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x = b + Q x`` (``Q`` with zero diagonal, ``out`` = mass leaving the unknowns), class by
    class: the strongly connected components of ``Q`` are solved after every component they can
    move to, a one-state component by ``x_i = (b_i + sum_j Q[i, j] x_j) / (out_i + sum_j Q[i, j])``
    (all of them at once, level by level), a larger one by :func:`_solve_irreducible` with what
    it sends to solved components moved into its right-hand side."""
    n = Q.shape[0]
    n_comp, labels = csgraph.connected_components(Q, directed=True, connection="strong")
    if n_comp == 1:
        return _solve_irreducible(Q, out, b)
    leave = np.asarray(Q.sum(axis=1)).ravel() + out
    if (leave <= 0).any():
        raise ChainError(SINGULAR)
    coo = Q.tocoo()
    cross = labels[coo.row] != labels[coo.col]
    source, target = labels[coo.row[cross]], labels[coo.col[cross]]
    pending = np.bincount(source, minlength=n_comp)  # edges to components not yet solved
    by_target = np.argsort(target, kind="stable")
    edge_bounds = np.searchsorted(target[by_target], np.arange(n_comp + 1))
    members = np.argsort(labels, kind="stable")
    member_bounds = np.searchsorted(labels[members], np.arange(n_comp + 1))
    sizes = np.diff(member_bounds)
    x = np.zeros(b.shape)
    column = (lambda v: v) if b.ndim == 1 else (lambda v: v[:, None])
    ready = np.flatnonzero(pending == 0)
    while len(ready):
        single = members[member_bounds[ready[sizes[ready] == 1]]]
        x[single] = (b[single] + Q[single] @ x) / column(leave[single])
        for c in ready[sizes[ready] > 1]:
            m = members[member_bounds[c] : member_bounds[c + 1]]
            outside = np.ones(n)
            outside[m] = 0.0
            rows = Q[m]
            x[m] = _solve_irreducible(rows[:, m].tocsr(), out[m] + rows @ outside, b[m] + rows @ x)
        starts, lengths = edge_bounds[ready], np.diff(edge_bounds)[ready]
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
        parents = source[by_target[offsets]]
        np.subtract.at(pending, parents, 1)
        ready = np.unique(parents[pending[parents] == 0])
    return x


def _solve_irreducible(Q: sp.csr_matrix, out: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x = b + Q x`` on one strongly connected set: dense, banded or sparse block subtraction-free
    elimination where it fits, else sparse LU of ``diag(leave) - Q`` (the diagonal summed, not
    subtracted) with one step of iterative refinement, else LGMRES."""
    n = Q.shape[0]
    order, width = _bandwidth_order(Q)
    narrow = n * max(width, 1) ** 2 <= min(BAND_WORK_LIMIT, n**3 / 50)
    if n <= DENSE_LIMIT and not narrow:
        return _solve_dense(Q.toarray(), out, b).reshape(np.shape(b))
    if n * width**2 <= BAND_WORK_LIMIT:
        return _solve_band(Q, out, b, order, width).reshape(np.shape(b))
    if has_small_transitions(Q) or n > KRYLOV_LIMIT:
        try:
            return solve_blocks(Q, out, b)
        except TooMuchFill as err:
            too_much = str(err)
    else:
        too_much = None
    A = (sp.diags(np.asarray(Q.sum(axis=1)).ravel() + out) - Q).tocsc()
    try:
        if n <= LU_LIMIT:
            lu = _splu(A)
            x = lu.solve(b)
            return x + lu.solve(b - A @ x)
        if n > KRYLOV_LIMIT:
            raise ChainError(f"{too_much}; sparse LU is used up to {LU_LIMIT:,} and LGMRES up to {KRYLOV_LIMIT:,} "
                             "unknowns, so this system is not solved")
        return _krylov(A.tocsr(), b)
    except ChainError:
        if too_much is not None:
            raise
        return solve_blocks(Q, out, b)  # a well connected system the residual-checked solvers could not do


def _krylov(A: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
    """LGMRES with a Jacobi preconditioner for systems too large for LU (page-state graphs fill
    in), to a residual of 1e-11 relative to the right-hand side per column, within a work budget
    of ``KRYLOV_WORK`` flops; refused (ChainError) when it does not get there."""
    n = A.shape[0]
    inverse_diagonal = 1.0 / A.diagonal()
    M = spla.LinearOperator(A.shape, matvec=lambda v: inverse_diagonal * np.ravel(v), dtype=float)
    iterations = max(20, int(KRYLOV_WORK // (2 * A.nnz + 60 * n)))
    columns = rhs.reshape(n, -1)
    out = np.empty_like(columns)
    for j in range(columns.shape[1]):
        x, _ = spla.lgmres(A, columns[:, j], rtol=1e-13, atol=0.0, maxiter=iterations, M=M)
        if np.abs(columns[:, j] - A @ x).sum() > 1e-11 * max(np.abs(columns[:, j]).sum(), 1e-300):
            raise ChainError(f"LGMRES did not solve a system of {n:,} unknowns within its work budget (a nearly "
                             "closed set, or hitting times too long for an iterative solve)")
        out[:, j] = x
    return out.reshape(rhs.shape)


@dataclass(frozen=True)
class HittingTimes:
    """``E_i[steps until the target is entered]`` for every state (:meth:`MarkovChain.hitting_times`):
    ``value`` (0 on the target, ``inf`` where it may be missed); ``lower``/``upper`` the survival
    series' two-sided bounds when it came from there (``value`` their midpoint), else None;
    ``method``; ``note``, why the eliminations were not used (None when they were)."""

    value: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    method: str
    note: str | None


@dataclass(frozen=True)
class StationaryLaw:
    """A stationary law of one closed class, with how it was computed and an L1 error estimate.

    ``error`` is ``None`` when no estimate could be formed; ``trusted`` is ``error <= TRUSTED_ERROR``."""

    pi: np.ndarray
    method: str
    error: float | None
    error_kind: str

    @property
    def trusted(self) -> bool:
        return self.error is not None and self.error <= TRUSTED_ERROR


def _residual(P: sp.csr_matrix, pi: np.ndarray) -> float:
    """``|| pi P - pi ||_1``."""
    return float(np.abs(P.T @ pi - pi).sum())


def stationary_law(P: sp.csr_matrix, method: str = "auto") -> StationaryLaw:
    """Stationary law of an irreducible sparse stochastic matrix, with its error estimate.

    ``method``: ``auto``, ``dense`` (GTH), ``band`` (GTH on an RCM band), ``blocks`` (sparse block
    GTH), ``arnoldi``, ``sparse`` (pinned LU), ``residual`` (the better of the last two); see the
    module docstring. ``auto`` and ``band`` solve a class whose graph is a path (a birth–death
    chain, :func:`_path_order`) by :func:`birth_death_law`. ``auto`` tries the block elimination
    first when some transition is below ``METASTABLE_THRESHOLD`` (see :func:`has_small_transitions`),
    else after an untrusted residual-checked law."""
    P = sp.csr_matrix(P, dtype=float)
    n = P.shape[0]
    if n == 1:
        return StationaryLaw(np.ones(1), "trivial", 0.0, "exact")
    order, width = _bandwidth_order(P)
    narrow = n * width**2 <= min(BAND_WORK_LIMIT, n**3 / 50)
    if method == "dense" or (method == "auto" and n <= DENSE_LIMIT and not narrow):
        dense = P.toarray()
        pi = gth(dense)
        flipped = gth(dense[::-1, ::-1])[::-1]
        return StationaryLaw(pi, "GTH (dense)", _gth_estimate(pi, flipped), GTH_ESTIMATE)
    path = _path_order(P) if method in ("auto", "band") else None
    if path is not None:  # a birth–death chain, its states in path order
        ranked = P[path][:, path].tocsr()
        pi, error = birth_death_law(ranked.diagonal(1), ranked.diagonal(-1))
        law = np.empty(n)
        law[path] = pi
        return StationaryLaw(law, "birth–death ratios (compensated)", error, "rounding bound")
    if method in ("auto", "band"):
        if method == "band" or n * width**2 <= BAND_WORK_LIMIT:
            pi = _gth_band(P, order, width)
            flipped = _gth_band(P, order[::-1], width)
            return StationaryLaw(pi, f"GTH (band {width})", _gth_estimate(pi, flipped), GTH_ESTIMATE)
    if method == "blocks" or (method == "auto" and has_small_transitions(P)):
        try:
            return _block_law(P)
        except ChainError:  # over budget, or visits beyond the float range even one state at a time
            if method == "blocks":
                raise
    elif method == "auto":  # well connected: the residual bound is good unless proven otherwise
        law = stationary_law(P, "residual")
        if law.trusted:
            return law
        try:
            return _block_law(P)
        except ChainError:
            return law
    if method == "sparse":
        pi = _lu_stationary(P)
        return StationaryLaw(pi, "pinned LU", _residual_bound(P, pi), "residual bound")
    pi = _arnoldi_stationary(P)  # method "residual": the better of Arnoldi and pinned LU
    if method == "arnoldi":
        if pi is None:
            raise ChainError("ARPACK did not converge")
        return StationaryLaw(pi, "Arnoldi", _residual_bound(P, pi), "residual bound")
    candidates = [(x, name) for x, name in ((pi, "Arnoldi"),) if x is not None]
    if n <= LU_LIMIT:
        with contextlib.suppress(ChainError):
            candidates.append((_lu_stationary(P), "pinned LU"))
    if not candidates:
        raise ChainError("ARPACK did not converge and the class is too large for LU")
    pi, name = min(candidates, key=lambda c: _residual(P, c[0]))
    bound = _residual_bound(P, pi)
    if bound is not None:
        return StationaryLaw(pi, name, bound, "residual bound")
    return StationaryLaw(pi, name, _gap_estimate(P, pi), "residual / spectral gap (an estimate, not a bound)")


GTH_ESTIMATE = "two GTH eliminations agree, and at least n u (rounding)"


def _gth_estimate(pi: np.ndarray, flipped: np.ndarray) -> float:
    """The L1 error estimate of a GTH law: the L1 distance between two eliminations in opposite
    orders (their roundings differ), but at least ``n u`` (``u = 2^-53``). The distance alone can
    fall below the true error when both orders round the same way (the heaviest component's last
    bit, 1.1e-16, is then missed); every operation of GTH is on non-negative numbers, so each
    component's relative error grows at most with the number of steps that produce it, and the
    floor ``n u`` (1e-15 at 10 states, 3.3e-13 at 3000) has stayed above the true error against
    mpmath on every chain of the tests (tests/test_robust_report.py). An estimate, not a bound:
    O'Cinneide's worst-case bound is of order ``n^3 u``."""
    return max(float(np.abs(pi - flipped).sum()), len(pi) * 2.0**-53)


def _block_law(P: sp.csr_matrix) -> StationaryLaw:
    """GTH by sparse block elimination (:func:`gth_blocks`) in the order of
    :func:`elimination_blocks` and in the reverse order (blocks reversed, states inside each block
    reversed): two eliminations with different roundings, whose L1 distance is the estimate."""
    Q = P.copy()
    Q.setdiag(0.0)
    Q.eliminate_zeros()
    for size in (ELIMINATION_BLOCK, 16, 1):  # smaller blocks when a block's visits leave the float range
        order, bounds = elimination_blocks(Q, size)
        try:
            pi = gth_blocks(P, order, bounds)
            pieces = [order[bounds[k] : bounds[k + 1]][::-1] for k in range(len(bounds) - 2, -1, -1)]
            flipped = gth_blocks(P, np.concatenate(pieces), np.r_[0, np.cumsum([len(p) for p in pieces])])
        except OutOfRange:
            if size == 1:
                raise
            continue
        return StationaryLaw(pi, f"GTH (sparse, {len(bounds) - 1} blocks)", _gth_estimate(pi, flipped), GTH_ESTIMATE)


def _gap_estimate(P: sp.csr_matrix, pi: np.ndarray) -> float | None:
    """``||r||_1 / (1 - |lambda_2|)``: the first-order size of the error of an eigenvector whose
    eigenvalue is separated from the rest of the spectrum by ``1 - |lambda_2|``."""
    try:
        second = float(np.sort(np.abs(_verified_eigs(P, 2, np.random.default_rng(SEED))))[0])
    except ChainError:
        return None
    return _residual(P, pi) / (1.0 - second) if second < 1.0 else None


def stationary(P: sp.csr_matrix, method: str = "auto") -> np.ndarray:
    """Stationary law of an irreducible sparse stochastic matrix (see :func:`stationary_law`)."""
    return stationary_law(P, method).pi


def _residual_bound(P: sp.csr_matrix, pi: np.ndarray) -> float | None:
    """``||r||_1 (M + M (M + 1) / 2)`` (module docstring), or None when ``M`` cannot be computed."""
    j = int(np.argmax(pi))
    rest = np.delete(np.arange(P.shape[0]), j)
    try:
        h = solve_leaving(P, rest, np.ones(len(rest)))
    except ChainError:
        return None
    M = float(h.max())
    if not np.isfinite(M) or M < 0:
        return None
    return _residual(P, pi) * (M + M * (M + 1) / 2)


def _arnoldi_stationary(P: sp.csr_matrix) -> np.ndarray | None:
    n = P.shape[0]
    v0 = np.random.default_rng(SEED).random(n)
    try:
        _, vectors = spla.eigs(P.T.tocsr(), k=1, which="LM", v0=v0, ncv=min(n - 1, 40), tol=0, maxiter=100 * n)
    except spla.ArpackNoConvergence:
        return None
    pi = np.clip(np.real(vectors[:, 0]) * np.sign(np.real(vectors[:, 0]).sum()), 0.0, None)
    return pi / pi.sum()


def _lu_stationary(P: sp.csr_matrix) -> np.ndarray:
    """``pi_R = pi_j P_jR (I - P_RR)^{-1}`` pinned at ``j`` (first at state 0, then at the heaviest
    state of that solution), with the diagonal of ``I - P_RR`` formed without subtraction."""
    pi = _pinned_solve(P, 0)
    heaviest = int(np.argmax(pi))
    return pi if heaviest == 0 else _pinned_solve(P, heaviest)


def _pinned_solve(P: sp.csr_matrix, pin: int) -> np.ndarray:
    n = P.shape[0]
    rest = np.delete(np.arange(n), pin)
    pi = np.zeros(n)
    pi[pin] = 1.0
    pi[rest] = np.clip(_left_solve(P, rest, P[pin][:, rest].toarray().ravel()), 0.0, None)
    return pi / pi.sum()


def _splu(A: sp.csc_matrix):
    try:
        return spla.splu(A)
    except RuntimeError as err:
        raise ChainError(f"a linear system of {A.shape[0]:,} unknowns is numerically singular ({err}): "
                         "a nearly closed set too large for the subtraction-free elimination") from None


def _offdiagonal_row_sums(rows: sp.csr_matrix, states: np.ndarray) -> np.ndarray:
    """``1 - P[i, i]`` for ``i`` in ``states``, summed from the other entries of row ``i`` (``rows = P[states]``)."""
    coo = rows.tocoo()
    off = coo.col != states[coo.row]
    return np.bincount(coo.row[off], weights=coo.data[off], minlength=len(states))


def _left_solve(P: sp.csr_matrix, states: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row vector ``x = b + x P_SS`` (``S = states``, left of every state eventually), by sparse LU
    of ``(I - P_SS)^T`` whose diagonal ``1 - P[i, i]`` is the off-diagonal row sum of ``P``,
    with one step of iterative refinement."""
    rows = P[states].tocsr()
    Q = rows[:, states].tocsr()
    Q.setdiag(0.0)
    Q.eliminate_zeros()
    A = (sp.diags(_offdiagonal_row_sums(rows, states)) - Q).T.tocsc()
    lu = _splu(A)
    x = lu.solve(b)
    x += lu.solve(b - A @ x)
    return x


def _gcd_period(P: sp.csr_matrix) -> tuple[int, np.ndarray]:
    """Period of an irreducible chain and the breadth-first level of each state."""
    level = csgraph.shortest_path(P, unweighted=True, indices=0)
    coo = P.tocoo()
    diffs = np.abs(level[coo.row] + 1 - level[coo.col]).astype(np.int64)
    return (int(np.gcd.reduce(diffs)) if len(diffs) else 1), level.astype(np.int64)


def classes_of(P: sp.csr_matrix) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(class label of each state, member lists by label, closed flag by label)."""
    n_classes, labels = csgraph.connected_components(P, directed=True, connection="strong")
    coo = P.tocoo()
    leaving = labels[coo.row] != labels[coo.col]
    closed = np.ones(n_classes, dtype=bool)
    closed[labels[coo.row[leaving]]] = False
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_classes + 1))
    return labels, [order[bounds[c] : bounds[c + 1]] for c in range(n_classes)], closed


def closed_classes_of(P: sp.csr_matrix) -> tuple[np.ndarray, list[np.ndarray]]:
    """(class label of each state, list of the closed classes' state indices, by first state)."""
    labels, members, closed = classes_of(P)
    out = [members[c] for c in np.flatnonzero(closed)]
    out.sort(key=lambda m: m[0])
    return labels, out


def _verified_eigs(block: sp.csr_matrix, count: int, rng: np.random.Generator,
                   residual: float = 1e-8) -> np.ndarray:
    """Top ``count`` eigenvalues of a sparse block by ARPACK from random starts, each returned
    pair checked (``||B^T v - lambda v|| <= residual ||v||``); the Krylov space grows until they are."""
    n = block.shape[0]
    k = min(count, n - 2)
    BT = block.T.tocsr()
    ncv = min(n - 1, max(2 * k + 1, 40))
    while True:
        try:
            values, vectors = spla.eigs(BT, k=k, which="LM", ncv=ncv, tol=1e-12, v0=rng.random(n) - 0.5,
                                        maxiter=max(1000, n))
            residuals = np.linalg.norm(BT @ vectors - vectors * values, axis=0) / np.linalg.norm(vectors, axis=0)
            if np.all(residuals <= residual):
                return values
        except spla.ArpackNoConvergence:
            pass
        if ncv >= n - 1 or ncv >= 1000:
            raise ChainError(f"ARPACK could not verify the top {k} eigenvalues of a class of {n} states")
        ncv = min(n - 1, 2 * ncv)


def by_modulus(values: np.ndarray) -> np.ndarray:
    """``values`` by decreasing modulus; equal moduli (a conjugate pair) with the positive imaginary
    part first."""
    values = np.asarray(values, dtype=complex)
    return values[np.lexsort((-values.imag, -np.abs(values)))]


def leading_eigenvalues(block, count: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The ``count`` eigenvalues of largest modulus of a square non-negative ``block`` (a class of a
    stochastic ``P``, or of a substochastic ``Q``), by decreasing modulus (:func:`by_modulus`).

    Up to ``ARPACK_EIGEN_MIN`` states (or when ``count`` is within 3 of the size) the dense
    spectrum (LAPACK's QR algorithm: backward stable, ``O(n^3)``). Above, implicitly restarted
    Arnoldi (ARPACK) twice, on ``B^T`` and on ``B`` (the left and the right eigenvalue problems,
    the same spectrum) from independent seeded random starts, each asked for ``count + 2`` values
    (a conjugate pair cut at the boundary stays whole) and every returned pair checked,
    ``||M v - lambda v|| <= EIGEN_RESIDUAL ||v||`` (:func:`_verified_eigs`). Two Krylov spaces
    that each missed one of the leading eigenvalues would have to miss the same one: the leading
    ``count`` moduli of the two runs must agree within ``EIGEN_AGREEMENT``, else (or when ARPACK
    does not converge) the dense spectrum is computed, up to ``DENSE_EIGEN_LIMIT`` states; above
    that a ChainError says so (no eigenvalue printed that two runs did not agree on). Ties in
    modulus at the boundary (a period's roots of unity, a near-tie) may be cut differently from
    the dense spectrum's order: the moduli are the same."""
    B = sp.csr_matrix(block, dtype=float)
    n = B.shape[0]
    if n <= ARPACK_EIGEN_MIN or count + 3 >= n:
        return by_modulus(np.linalg.eigvals(B.toarray()))[:count]
    rng = np.random.default_rng(SEED) if rng is None else rng
    try:
        left = by_modulus(_verified_eigs(B, count + 2, rng, EIGEN_RESIDUAL))[:count]
        right = by_modulus(_verified_eigs(B.T.tocsr(), count + 2, rng, EIGEN_RESIDUAL))[:count]
        if np.max(np.abs(np.abs(left) - np.abs(right))) <= EIGEN_AGREEMENT:
            return left
        failure = (f"two ARPACK runs disagree on the leading eigenvalue moduli of a class of {n:,} states "
                   f"(by {np.max(np.abs(np.abs(left) - np.abs(right))):.1e})")
    except ChainError as err:
        failure = str(err)
    if n > DENSE_EIGEN_LIMIT:
        raise ChainError(f"{failure}; the dense spectrum is computed up to {DENSE_EIGEN_LIMIT:,} states")
    return by_modulus(np.linalg.eigvals(B.toarray()))[:count]


def row_entropies(P: sp.csr_matrix) -> np.ndarray:
    """``H(P_i.) = -sum_j P_ij log P_ij`` per row (nats; the terms with ``P_ij = 0`` are 0). The
    largest entry of a row is held as ``1 - r``, ``r`` the sum of the others, and its logarithm
    taken as ``log1p(-r)``: a row ``(1 - 1e-110, 1e-110)`` is stored ``(1.0, 1e-110)``, whose
    naive entropy ``2.533e-108`` misses the ``-(1 - r) log(1 - r) ~ r`` of the leading entry
    (true ``2.543e-108``)."""
    P = sp.csr_matrix(P)
    P.sum_duplicates()
    P.eliminate_zeros()
    terms = -P.data * np.log(P.data)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    if P.nnz:
        starts = P.indptr[:-1][np.diff(P.indptr) > 0]  # of the non-empty rows, in order
        ends = np.append(starts[1:], P.nnz)
        lead = np.array([a + np.argmax(P.data[a:b]) for a, b in zip(starts, ends)], dtype=np.int64)
        others = P.data.copy()
        others[lead] = 0.0
        rest = np.bincount(rows, weights=others, minlength=P.shape[0])[rows[lead]]  # a sum, not 1 - P_lead
        terms[lead] = -(1.0 - rest) * np.log1p(-rest)
    return np.bincount(rows, weights=terms, minlength=P.shape[0])


class MarkovChain:
    """A finite Markov chain given by a row-stochastic matrix, with lazily computed results.

    Validated at the door (square, finite, non-negative, rows summing to 1 within 1e-9). Textbook
    names: ``communication_classes``, ``recurrent_classes``, ``transient_states``, ``periods``,
    ``cyclic_classes``, ``is_irreducible``, ``stationary_distributions`` (with
    ``stationary_laws`` carrying error estimates), ``eigenvalues(k)``, ``hitting_probabilities``,
    ``expected_hitting_times`` (``hitting_times`` with the survival series' bounds where the
    eliminations refuse), ``hitting_curve``, ``committor``, ``fundamental_matrix``,
    ``mean_first_passage_times``, ``kemeny_constant``, ``relaxation_time``, ``mixing_time(eps)``,
    ``entropy_rate``.
    """

    def __init__(self, P):
        P = sp.csr_matrix(P, dtype=float)
        if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
            raise ChainError(f"P must be a non-empty square matrix, got shape {P.shape}")
        if not np.all(np.isfinite(P.data)) or (P.data < 0).any():
            raise ChainError("P must have finite, non-negative entries")
        P.eliminate_zeros()
        rows = np.asarray(P.sum(axis=1)).ravel()
        bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-9)
        if len(bad):
            raise ChainError(f"row {bad[0]} of P sums to {rows[bad[0]]!r}, not 1")
        self.P = P

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    # -- structure ---------------------------------------------------------------------------

    @cached_property
    def _classes(self):
        return closed_classes_of(self.P)

    @cached_property
    def communication_classes(self) -> list[np.ndarray]:
        """All communication classes (state indices, ascending), ordered by first state."""
        return sorted(classes_of(self.P)[1], key=lambda m: m[0])

    @property
    def recurrent_classes(self) -> list[np.ndarray]:
        """Closed communication classes (state indices, ascending), ordered by first state."""
        return self._classes[1]

    @cached_property
    def transient_states(self) -> np.ndarray:
        recurrent = np.zeros(self.n_states, dtype=bool)
        for c in self.recurrent_classes:
            recurrent[c] = True
        return np.flatnonzero(~recurrent)

    @property
    def is_irreducible(self) -> bool:
        return len(self.recurrent_classes) == 1 and len(self.recurrent_classes[0]) == self.n_states

    @cached_property
    def _periods_levels(self):
        return [_gcd_period(self.P[c][:, c]) for c in self.recurrent_classes]

    @property
    def periods(self) -> list[int]:
        return [d for d, _ in self._periods_levels]

    @property
    def period(self) -> int:
        """Period of the chain when irreducible (lcm of the closed classes' periods otherwise)."""
        return math.lcm(*self.periods)

    @property
    def is_aperiodic(self) -> bool:
        return all(d == 1 for d in self.periods)

    @cached_property
    def cyclic_classes(self) -> list[list[np.ndarray]]:
        """For each closed class, its ``period`` cyclic classes (state indices)."""
        return [[c[level % d == r] for r in range(d)] for c, (d, level) in zip(self.recurrent_classes, self._periods_levels)]

    # -- stationary laws ---------------------------------------------------------------------

    @cached_property
    def stationary_laws(self) -> list[StationaryLaw]:
        """One :class:`StationaryLaw` per closed class (``pi`` restricted to the class)."""
        return [stationary_law(self.P[c][:, c]) for c in self.recurrent_classes]

    @cached_property
    def stationary_distributions(self) -> list[np.ndarray]:
        """One per closed class, each a full-length vector supported on its class."""
        out = []
        for c, law in zip(self.recurrent_classes, self.stationary_laws):
            pi = np.zeros(self.n_states)
            pi[c] = law.pi
            out.append(pi)
        return out

    # -- absorption into closed classes -----------------------------------------------------

    def _class_mask(self, index: int) -> np.ndarray:
        mask = np.zeros(self.n_states, dtype=bool)
        mask[self.recurrent_classes[index]] = True
        return mask

    def absorption_probabilities(self, start: int) -> np.ndarray:
        """Probability of ending in each closed class, from state ``start``."""
        probs = np.array([self.hitting_probabilities(self._class_mask(c))[start] for c in range(len(self.recurrent_classes))])
        return probs

    def expected_absorption_time(self, start: int) -> float:
        """Expected number of steps from ``start`` until a closed class is entered."""
        recurrent = np.ones(self.n_states, dtype=bool)
        recurrent[self.transient_states] = False
        return float(self.expected_hitting_times(recurrent)[start])

    # -- hitting -----------------------------------------------------------------------------

    def _reach(self, sources: np.ndarray, within: np.ndarray | None = None, forward: bool = False) -> np.ndarray:
        """Bool mask of the states that can reach ``sources`` (mask) along edges of ``P`` (with
        ``forward``: that ``sources`` can reach), moving only through states of ``within`` (mask;
        all states when None)."""
        edges = self.P if forward else self.P.T.tocsr()
        seen = sources.copy()
        frontier = np.flatnonzero(sources)
        while len(frontier):
            nxt = np.zeros(self.n_states, dtype=bool)
            nxt[edges[frontier].indices] = True
            if within is not None:
                nxt &= within
            nxt &= ~seen
            seen |= nxt
            frontier = np.flatnonzero(nxt)
        return seen

    def _mask(self, target) -> np.ndarray:
        target = np.asarray(target)
        if target.dtype != bool:
            mask = np.zeros(self.n_states, dtype=bool)
            mask[target.astype(np.int64)] = True
            return mask
        if target.shape != (self.n_states,):
            raise ChainError(f"a state mask must have shape ({self.n_states},), got {target.shape}")
        return target

    def hitting_probabilities(self, target) -> np.ndarray:
        """``u(i) = P_i(the chain ever enters target)`` (bool mask or state indices)."""
        return self.committor(target, np.zeros(self.n_states, dtype=bool))

    def committor(self, A, B) -> np.ndarray:
        """``q(i) = P_i(enter A before B)`` for disjoint sets ``A``, ``B`` (1 on A, 0 on B).

        States from which no path avoiding ``A`` reaches ``B`` or a state that cannot reach ``A``
        have ``q = 1`` exactly (found on the graph); the linear system covers only the others. When
        its subtraction-free elimination meets a pivot below the float range (the probabilities of
        leaving a set multiply below 1e-308), it is solved again in log space
        (:func:`log_solve_leaving`, up to ``LOG_SOLVE_LIMIT`` unknowns), where no pivot underflows."""
        A, B = self._mask(A), self._mask(B)
        if (A & B).any():
            raise ChainError("the two sets of a committor must be disjoint")
        q = A.astype(float)
        reach_A = self._reach(A, within=~B)
        doubtful = self._reach(B | ~reach_A, within=~A) & ~A
        q[~doubtful & ~A] = 1.0
        rest = reach_A & doubtful & ~B
        if rest.any():
            r = np.flatnonzero(rest)
            b = np.asarray(self.P[r][:, q == 1.0].sum(axis=1)).ravel()
            try:
                q[r] = np.clip(solve_leaving(self.P, r, b), 0.0, 1.0)
            except ChainError:  # a pivot (what leaves a censored state) below the float range: in log space
                if len(r) > LOG_SOLVE_LIMIT:
                    raise
                with np.errstate(divide="ignore"):
                    q[r] = np.clip(np.exp(log_solve_leaving(self.P, r, np.log(b))), 0.0, 1.0)
        return q

    def _surely_entered(self, target: np.ndarray) -> np.ndarray:
        """Bool mask of the states from which ``target`` (mask) is entered with probability 1:
        those that cannot reach, avoiding the target, a state from which it is unreachable (on
        the graph, so exactly)."""
        lost = self._reach(~self._reach(target), within=~target)
        return ~lost

    def expected_hitting_times(self, target, max_products: int | None = None) -> np.ndarray:
        """``h(i) = E_i[steps until target is entered]`` (bool mask or state indices): 0 on the
        target, ``inf`` where the target is missed with positive probability. By the eliminations
        (module docstring); where they refuse (a system over their budgets), the midpoints of the
        survival series' bounds (:meth:`hitting_times`, which returns the bounds too)."""
        return self.hitting_times(target, max_products).value

    def hitting_times(self, target, max_products: int | None = None) -> HittingTimes:
        """``E_i[steps until target is entered]`` for every state, with how it was found.

        The subtraction-free eliminations first (:func:`solve_leaving`: exact but for rounding,
        ``lower = upper = None``). Where they refuse with a ChainError (the linear system over
        their size or fill budgets, e.g. a well-connected system above ``KRYLOV_LIMIT`` unknowns),
        the survival series (:meth:`expected_hitting_time_bounds`) within ``max_products`` sparse
        products (default ``SERIES_WORK`` multiply-adds: ``SERIES_WORK // max(nnz, 10^4)``; 0: the
        eliminations only), closed to ``SERIES_RTOL`` relative for every state: ``value`` is the
        midpoint of ``[lower, upper]`` and ``note`` the eliminations' reason. When the series does
        not close either, the ChainError names both."""
        target = self._mask(target)
        try:
            return HittingTimes(self._eliminated_hitting_times(target), None, None, "elimination", None)
        except ChainError as err:
            refused = str(err)
        if max_products is None:
            max_products = SERIES_WORK // max(self.P.nnz, SERIES_PRODUCT_FLOOR)
        bounds = self.expected_hitting_time_bounds(target, max_products) if max_products > 0 else None
        if bounds is None:
            if max_products <= 0:
                raise ChainError(refused)
            raise ChainError(f"{refused}; the survival series did not close to {SERIES_RTOL:g} within {max_products:,} "
                             "sparse products")
        lower, upper, products = bounds
        with np.errstate(invalid="ignore"):  # inf + inf where the target may be missed is inf, not a warning
            value = np.where(np.isinf(upper), upper, lower + (upper - lower) / 2)
        return HittingTimes(value, lower, upper, f"survival series ({products:,} sparse products)", refused)

    def _eliminated_hitting_times(self, target: np.ndarray) -> np.ndarray:
        h = np.where(target, 0.0, np.inf)
        sure = self._surely_entered(target) & ~target
        if sure.any():
            s = np.flatnonzero(sure)
            h[s] = solve_leaving(self.P, s, np.ones(len(s)))
        return h

    def expected_hitting_time_bounds(self, target, max_products: int, rtol: float = SERIES_RTOL,
                                     starts=None) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Two-sided bounds ``(lower, upper, products)`` on ``h(i) = E_i[T]`` for every state, by
        the backward survival series; None when ``max_products`` sparse products do not bring the
        relative width ``(upper - lower) / lower`` of every state of ``starts`` (mask or indices;
        default every state) within ``rtol``.

        With ``Q`` the transitions among the unknowns ``S`` (the states outside the target that
        enter it surely, and, given ``starts``, that those reach avoiding it: ``Q 1 <= 1`` and no
        transition from ``S`` to a state outside it and the target), ``v_t = Q^t 1`` holds
        ``P_i(T > t)``, so ``h = sum_{t>=0} v_t`` (non-negative terms, summed forwards: no
        cancellation), all states at once, one product per term. For the tail, Collatz–Wielandt
        (as :meth:`expected_hitting_time_by_series`, on the other side): if
        ``r_lo v_N <= v_{N+1} <= r_hi v_N`` componentwise over the support of ``v_N``, then
        ``r_lo^j v_N <= v_{N+j} <= r_hi^j v_N`` (``Q >= 0``), so the tail ``sum_{t>=N} v_t`` lies
        in ``[v_N / (1 - r_lo), v_N / (1 - r_hi)]`` componentwise (for ``r_hi < 1``). ``v`` is
        rescaled against underflow (its scale kept apart), and the ratios are taken only when no
        state outside the support gained mass. 0 on the target, ``inf`` where it may be missed;
        with ``starts``, ``nan`` on the states not solved for."""
        target = self._mask(target)
        sure = self._surely_entered(target) & ~target
        if starts is None:
            unknown, closing = sure, sure
        else:
            closing = self._mask(starts) & sure
            unknown = self._reach(closing, within=~target, forward=True) & sure if closing.any() else closing
        lower = np.where(target, 0.0, np.inf)
        if starts is not None:
            lower[~target & sure & ~unknown] = np.nan
        upper = lower.copy()
        if not unknown.any():
            return lower, upper, 0
        s = np.flatnonzero(unknown)
        Q = self.P[s][:, s].tocsr()
        watched = closing[s]
        v = np.ones(len(s))
        total = np.zeros(len(s))
        scale = 1.0  # the true v_t is scale * v
        for t in range(max(1, max_products)):
            nxt = Q @ v
            support = v > 0
            if t % 8 == 7 and not np.any(nxt[~support] > 0):
                ratio = nxt[support] / v[support]
                r_lo, r_hi = float(ratio.min()), float(ratio.max())
                if r_hi < 1.0:
                    lo = total + scale * v / (1.0 - r_lo)
                    hi = total + scale * v / (1.0 - r_hi)
                    if np.all(hi[watched] - lo[watched] <= rtol * lo[watched]):
                        lower[s], upper[s] = lo, hi
                        return lower, upper, t + 1
            total += scale * v
            v = nxt
            top = v.max()
            if top == 0.0:  # the target is entered surely within t + 1 steps from everywhere: exact
                lower[s] = upper[s] = total
                return lower, upper, t + 1
            if top < 1e-200:
                v /= top
                scale *= top
        return None

    def surely_entered(self, target) -> np.ndarray:
        """Bool mask of the states from which ``target`` (mask or indices) is entered with
        probability 1 (decided on the graph: exactly); elsewhere ``E[time to enter]`` is infinite."""
        return self._surely_entered(self._mask(target))

    def log10_expected_hitting_time(self, start: int, target) -> tuple[float, float]:
        """``(log10 E_start[steps until target is entered], its error bound)`` by the log-space
        elimination (:func:`log_solve_leaving`), for times beyond the range of a double; ``inf``
        where the target may be missed, ``-inf`` on it (error 0). Only the states that ``start``
        can reach avoiding the target are unknowns (at most ``LOG_SOLVE_LIMIT`` of them, else a
        ChainError).

        The error is that of the matrix, not of the elimination (a few ulps of ``ln x`` per step):
        an entry ``p`` of ``P`` is held to a relative ``delta(p) = max(2^-53, 2^-1075 / p)`` (a
        subnormal probability, 1e-321, keeps only 3 digits), and a subtraction-free system whose
        entries move by a relative ``delta`` moves its solution by at most about ``2 n delta``
        relative (first order; ``n`` unknowns), so the bound is
        ``log10(1 + 2 n delta_max) + n 1e-15 |log10 x|`` (``inf`` when ``2 n delta_max >= 1``)."""
        target = self._mask(target)
        if target[start]:
            return -math.inf, 0.0
        if not self._surely_entered(target)[start]:
            return math.inf, 0.0
        unknown = np.flatnonzero(self._reach(self._mask([start]), within=~target, forward=True))
        log_x = log_solve_leaving(self.P, unknown, np.zeros(len(unknown)))
        log10 = float(log_x[np.searchsorted(unknown, start)] / math.log(10))
        entries = self.P[unknown].data
        delta = max(2.0**-53, float(np.max(2.0**-1074 / entries[entries > 0], initial=0.0)) / 2)  # 2^-1075 underflows
        n = len(unknown)
        spread = math.inf if 2 * n * delta >= 1 else math.log10(1 + 2 * n * delta)
        return log10, spread + n * 1e-15 * abs(log10)

    def hitting_curve(self, start: int, target, steps: int) -> np.ndarray:
        """``P_start(target entered at some s <= t)`` for t = 0 .. steps (mass that has not yet
        entered is propagated; one vector, so memory is O(n + steps))."""
        target = self._mask(target)
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

    def expected_hitting_time_by_series(self, start: int, target, max_products: int,
                                        rtol: float = 1e-10) -> tuple[float, float] | None:
        """Two-sided bounds ``(lo, hi)`` on ``E_start[T]``, ``T`` the entrance time of ``target``,
        from the survival series (``(inf, inf)`` when the target may be missed), or None when
        ``max_products`` sparse products do not reach relative width ``rtol``.

        With ``Q`` the transitions among the states outside the target and ``u_t = e_start Q^t``
        (the mass not yet entered), ``E[T] = sum_{t>=0} u_t 1`` when the target is entered
        surely. The partial sum to ``N`` is propagated forwards (non-negative terms only: no
        cancellation). For the tail, Collatz–Wielandt: if ``r_lo u_N <= u_{N+1} <= r_hi u_N``
        componentwise then, ``Q`` being non-negative, ``r_lo^j u_N <= u_{N+j} <= r_hi^j u_N``, so
        ``sum_{t>=N} u_t 1`` lies in ``[u_N 1 / (1 - r_lo), u_N 1 / (1 - r_hi)]`` (for
        ``r_hi < 1``). The ratios converge to the spectral radius of ``Q`` at the rate of its
        second eigenvalue, so this suits well-connected chains of any size; a slowly mixing one
        (times of 1e45) is left to the eliminations.
        """
        target = self._mask(target)
        if target[start]:
            return 0.0, 0.0
        if not self._surely_entered(target)[start]:
            return math.inf, math.inf
        PT = self.P.T.tocsr()
        keep = (~target).astype(float)
        u = np.zeros(self.n_states)
        u[start] = 1.0
        total, scale = 0.0, 1.0  # the true u_t is scale * u (u renormalised against underflow)
        for t in range(max(1, max_products)):
            mass = u.sum()
            nxt = (PT @ u) * keep
            support = u > 0
            if t % 8 == 7 and not np.any(nxt[~support] > 0):
                ratio = nxt[support] / u[support]
                r_lo, r_hi = float(ratio.min()), float(ratio.max())
                if r_hi < 1.0:
                    lo = total + scale * mass / (1.0 - r_lo)
                    hi = total + scale * mass / (1.0 - r_hi)
                    if hi - lo <= rtol * lo:
                        return lo, hi
            total += scale * mass
            u = nxt
            top = u.max()
            if top == 0.0:  # entered surely within t + 1 steps: the sum is exact
                return total, total
            if top < 1e-200:
                u /= top
                scale *= top
        return None

    def fundamental_matrix(self) -> np.ndarray:
        """``N = (I - Q)^{-1}`` over the transient states (``N[i, j]`` = expected visits to
        ``transient_states[j]`` from ``transient_states[i]``), subtraction-free."""
        t = self.transient_states
        if len(t) > DENSE_LIMIT:
            raise ChainError(f"the fundamental matrix is computed for up to {DENSE_LIMIT} transient states, not {len(t)}")
        if not len(t):
            return np.zeros((0, 0))
        return solve_leaving(self.P, t, np.eye(len(t)))

    def mean_first_passage_times(self) -> np.ndarray:
        """``M[i, j] = E_i[time to hit j]`` for an irreducible chain, ``M[i, i] = 0``."""
        if not self.is_irreducible:
            raise ChainError("mean first passage times need an irreducible chain")
        n = self.n_states
        if n > MFPT_LIMIT:
            raise ChainError(f"the mean first passage matrix is computed for up to {MFPT_LIMIT} states, not {n}")
        M = np.zeros((n, n))
        for j in range(n):
            rest = np.delete(np.arange(n), j)
            M[rest, j] = solve_leaving(self.P, rest, np.ones(n - 1))
        return M

    def kemeny_constant(self) -> float:
        """``K = sum_j pi_j M[i, j]`` (the same for every start ``i``)."""
        return float(self.mean_first_passage_times()[0] @ self.stationary_distributions[0])

    # -- spectrum and mixing -----------------------------------------------------------------

    def eigenvalues(self, count: int = 6) -> np.ndarray:
        """The ``count`` eigenvalues of largest modulus (complex), by decreasing modulus.

        Ordered by communication class, ``P`` is block triangular, so its spectrum is the union of
        the spectra of the classes' diagonal blocks: a one-state class gives ``P[i, i]``, a larger
        one its ``count`` largest (:func:`leading_eigenvalues`: dense for a small class, two
        ARPACK runs that must agree for a large one).
        """
        rng = np.random.default_rng(SEED)
        singles = [m[0] for m in self.communication_classes if len(m) == 1]
        values = [self.P.diagonal()[np.array(singles, dtype=np.int64)].astype(complex)]
        for members in self.communication_classes:
            if len(members) > 1:
                values.append(leading_eigenvalues(self.P[members][:, members], count, rng))
        return by_modulus(np.concatenate(values))[:count]

    def relaxation_time(self) -> float:
        """``1 / (1 - |lambda_2|)`` of an irreducible chain (``inf`` when periodic)."""
        if not self.is_irreducible:
            raise ChainError("the relaxation time needs an irreducible chain")
        if self.n_states == 1:
            return 0.0
        second = float(np.abs(self.eigenvalues(2))[1])
        return math.inf if second >= 1.0 else 1.0 / (1.0 - second)

    def mixing_time(self, eps: float = 0.25, max_steps: int = 2**40) -> int:
        """``min{t : max_i ||P^t(i, .) - pi||_TV <= eps}`` of an irreducible aperiodic chain."""
        if not self.is_irreducible or not self.is_aperiodic:
            raise ChainError("the mixing time needs an irreducible aperiodic chain")
        if self.n_states > DENSE_LIMIT:
            raise ChainError(f"the mixing time is computed exactly for up to {DENSE_LIMIT} states, not {self.n_states}")
        pi = self.stationary_distributions[0]

        def distance(M):
            return 0.5 * np.abs(M - pi).sum(axis=1).max()

        powers = [self.P.toarray()]  # P^(2^i)
        if distance(np.eye(self.n_states)) <= eps:
            return 0
        while distance(powers[-1]) > eps:
            if 2 ** len(powers) > max_steps:
                raise ChainError(f"the mixing time exceeds {max_steps} steps")
            powers.append(powers[-1] @ powers[-1])
        # d(2^(m-1)) > eps >= d(2^m): bisect t in (2^(m-1), 2^m] with the binary expansion
        t, current = 2 ** (len(powers) - 2), powers[-2] if len(powers) > 1 else np.eye(self.n_states)
        if len(powers) == 1:
            return 1
        for i in range(len(powers) - 3, -1, -1):
            candidate = current @ powers[i]
            if distance(candidate) > eps:
                t, current = t + 2**i, candidate
        return t + 1

    def entropy_rate(self) -> float:
        """``-sum_i pi_i sum_j P[i, j] log P[i, j]`` (nats per step) of a chain with one closed class
        (reducible or not: ``pi`` is its unique stationary law, and the rate is the same from every
        start; the row entropies by :func:`row_entropies`). With several closed classes the rate
        depends on the class a run ends in: :func:`ecology.exact.moments.entropy_rates` gives one
        per class."""
        if len(self.recurrent_classes) != 1:
            raise ChainError(f"the entropy rate is one number only for a chain with one closed class, not "
                             f"{len(self.recurrent_classes)}: ecology.exact.moments.entropy_rates gives one per class")
        return float(self.stationary_distributions[0] @ row_entropies(self.P))

    # -- occupation of a set ----------------------------------------------------------------

    def occupation_over_horizon(self, initial: np.ndarray, target, horizon: int) -> dict[str, float]:
        """Expected time in the set ``A = target`` over ``t = 0 .. H`` from the law ``initial`` of
        ``X_0``, with ``d_t = initial P^t`` propagated one vector at a time (memory O(n)):

        - ``occupation = E #{0 <= t <= H : X_t in A} = sum_{t=0}^{H} d_t(A)`` (``fraction``: over ``H + 1``);
        - ``entries = E #{1 <= t <= H : X_{t-1} notin A, X_t in A} = sum_{t=0}^{H-1} sum_{x notin A} d_t(x) P(x, A)``;
        - ``visits = d_0(A) + entries`` (maximal runs of steps in A, the one in progress at 0 included);
        - ``exits = E #{1 <= t <= H : X_{t-1} in A, X_t notin A} = sum_{t=0}^{H-1} sum_{x in A} d_t(x) P(x, not A)``
          (the visits that end by ``H``; ``visits - d_H(A)``, summed without that subtraction);
        - ``exposure = sum_{t=0}^{H-1} d_t(A)`` (steps in A whose successor is within the horizon).

        ``exposure / exits`` and ``H / entries`` are the finite-horizon counterparts of the mean
        stay and of the mean time between entries: a simulation's ratio estimators converge to
        them as replicates grow, whatever the law of the stays."""
        A = self._mask(target)
        PT = self.P.T.tocsr()
        into = np.asarray(self.P[:, np.flatnonzero(A)].sum(axis=1)).ravel()  # P(x, A)
        out_of = np.asarray(self.P[:, np.flatnonzero(~A)].sum(axis=1)).ravel()  # P(x, not A)
        into[A] = 0.0  # only steps from outside A enter it ...
        out_of[~A] = 0.0  # ... and only steps from inside leave it
        d = np.asarray(initial, dtype=float).copy()
        entries, exits, exposure = 0.0, 0.0, 0.0
        first = float(d[A].sum())
        for _ in range(horizon):
            exposure += float(d[A].sum())
            entries += float(d @ into)
            exits += float(d @ out_of)
            d = PT @ d
        occupation = exposure + float(d[A].sum())
        return {"occupation": occupation, "fraction": occupation / (horizon + 1), "entries": entries,
                "visits": first + entries, "exits": exits, "exposure": exposure}

    def occupation_in_stationarity(self, target) -> list[dict[str, float | None]]:
        """Per closed class ``C`` with stationary law ``pi`` (in :attr:`recurrent_classes` order),
        the stationary time in ``A = target``: ``mass = pi(A)``; ``flux = sum_{x in C - A, y in A}
        pi_x P(x, y)`` the probability per step of an entry (equal, in stationarity, to the flux
        out of ``A``, ``flux_out``, given as a check); ``mean_stay = pi(A) / flux``, the mean number
        of consecutive steps in A per visit; ``mean_time_between_entries = 1 / flux`` (Kac's formula
        for the set: the mean time from one entry to the next); ``mean_excursion = (1 - pi(A)) /
        flux``, the mean time outside between visits; ``mean_return_time = 1 / pi(A)`` (Kac),
        ``E[min{t >= 1 : X_t in A}]`` started from ``pi`` restricted to A (a step that stays in A
        is a return at ``t = 1``). A class that never leaves A once in it (``flux = 0 < mass``)
        has ``mean_stay = mean_time_between_entries = inf`` and ``mean_excursion = 0``; a class that
        never visits A (``mass = 0``) has ``mean_time_between_entries = inf`` and ``mean_stay``,
        ``mean_excursion``, ``mean_return_time`` None (undefined: there is no visit)."""
        A = self._mask(target)
        out = []
        for members, law in zip(self.recurrent_classes, self.stationary_laws):
            a = A[members]
            block = self.P[members][:, members]
            mass = float(law.pi[a].sum())
            flux = float(law.pi[~a] @ np.asarray(block[~a][:, a].sum(axis=1)).ravel()) if a.any() and (~a).any() else 0.0
            flux_out = float(law.pi[a] @ np.asarray(block[a][:, ~a].sum(axis=1)).ravel()) if a.any() and (~a).any() else 0.0
            visited = mass > 0
            out.append({
                "mass": mass, "flux": flux, "flux_out": flux_out,
                "mean_stay": (mass / flux if flux > 0 else math.inf) if visited else None,
                "mean_time_between_entries": 1.0 / flux if flux > 0 else math.inf,
                "mean_excursion": ((1.0 - mass) / flux if flux > 0 else 0.0) if visited else None,
                "mean_return_time": 1.0 / mass if visited else None,
            })
        return out

    def long_run_fraction(self, initial: np.ndarray, target) -> float:
        """The Cesàro limit ``lim_H E #{0 <= t <= H : X_t in A} / (H + 1)`` from the law ``initial``:
        ``sum_C P(end in C) pi_C(A)`` over the closed classes (``pi(A)`` for an irreducible chain;
        it exists whatever the periods)."""
        initial = np.asarray(initial, dtype=float)
        total = 0.0
        for c, stay in enumerate(self.occupation_in_stationarity(target)):
            if stay["mass"] > 0:
                total += float(initial @ self.hitting_probabilities(self._class_mask(c))) * stay["mass"]
        return total

    # -- powers ------------------------------------------------------------------------------

    def distribution_after(self, start: int, steps: int) -> np.ndarray:
        """``e_start P^steps``, one vector at a time (memory O(n))."""
        x = np.zeros(self.n_states)
        x[start] = 1.0
        PT = self.P.T.tocsr()
        for _ in range(steps):
            x = PT @ x
        return x

    def power(self, n: int) -> sp.csr_matrix:
        """``P^n`` by repeated squaring (dense for chains up to ``DENSE_LIMIT`` states, where powers fill in)."""
        dense = self.n_states <= DENSE_LIMIT
        identity = np.eye(self.n_states) if dense else sp.identity(self.n_states, format="csr")
        return sp.csr_matrix(times_power(identity, self.P.toarray() if dense else self.P, n))

    # -- metastability -----------------------------------------------------------------------

    def metastable(self, tolerance: float) -> list[dict]:
        """Closed classes once transitions below ``tolerance`` are ignored: for each, its states,
        the largest per-step escape probability, the most likely state (stationary law of the kept
        transitions), the expected exit time from it (``(I - P_CC) tau = 1``, subtraction-free) and
        the exit law ``P(first state outside C = j)`` from it. An exit time beyond a double is
        ``inf`` with ``exit_time_log10`` = ``(log10, error bound)`` of
        :meth:`log10_expected_hitting_time` (None otherwise); a class that is left has
        ``max_escape > 0``, so ``inf`` with ``max_escape = 0`` alone means closed."""
        kept = self.P.multiply(tolerance <= self.P).tocsr()
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
                likely_at = int(np.argmax(stationary(restricted.tocsr())))
            else:  # a single state whose every kept transition leaves it
                likely_at = 0
            exits, beyond = {}, None
            if escape.max() > 0:
                with np.errstate(over="ignore", invalid="ignore"):  # overflows are looked at below
                    try:
                        tau = float(solve_leaving(self.P, c, np.ones(len(c)))[likely_at])
                    except ChainError:
                        tau = math.inf
                    start = np.zeros(len(c))
                    start[likely_at] = 1.0
                    try:
                        visits = np.clip(_left_solve(self.P, c, start), 0.0, None)  # e_x (I - P_CC)^{-1}
                        law = block[:, ~inside].T @ visits
                        law /= law.sum()
                    except ChainError:
                        law = np.array([math.nan])
                if not math.isfinite(tau):  # beyond a double: its log10 (and error bound) in log space
                    with contextlib.suppress(ChainError):
                        beyond = self.log10_expected_hitting_time(int(c[likely_at]), ~inside)
                if np.all(np.isfinite(law)):  # else the visits overflowed: no exit law is given
                    outside = np.flatnonzero(~inside)
                    exits = {int(outside[j]): float(law[j]) for j in np.flatnonzero(law > 0)}
            else:
                tau = math.inf
            out.append({"states": c, "max_escape": float(escape.max()), "likely_state": int(c[likely_at]),
                        "exit_time": tau, "exit_time_log10": beyond, "exit_law": exits})
        return out


# -- loops -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """A cycle ``c_0 -> c_1 -> ... -> c_{L-1} -> c_0`` of the most likely successor map (see
    :func:`most_likely_cycles`): its ``states`` in the order the chain runs round them (from the
    lowest index), ``log_lap`` = ``log rho``, ``rho = prod_i P[c_i, c_{i+1}]`` the probability of
    going once round, and ``closed``: no transition leaves any of its states."""

    states: np.ndarray
    log_lap: float
    closed: bool

    @property
    def length(self) -> int:
        return len(self.states)

    @property
    def lap(self) -> float:
        return math.exp(self.log_lap)

    @property
    def leak(self) -> float:
        """Leak per step ``1 - rho^(1/L)``: the constant per-step escape that loses the same mass per lap."""
        return -math.expm1(self.log_lap / self.length)

    @property
    def expected_laps(self) -> float:
        """Expected number of complete laps before the chain leaves, from any of its states:
        ``sum_{m >= 1} rho^m = rho / (1 - rho) = 1 / (1 / rho - 1)`` (``inf`` when closed)."""
        if self.closed:
            return math.inf
        with np.errstate(over="ignore"):
            return 1.0 / math.expm1(-self.log_lap) if self.log_lap < 0 else math.inf


def most_likely_successors(P: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of a stochastic CSR matrix: ``f(i) = argmax_j P[i, j]`` (ties to the lowest
    ``j``), ``log P[i, f(i)]`` and whether ``f(i)`` is the row's only transition. The logarithm is
    ``log1p(-e)`` with ``e`` the sum of the row's other entries when ``P[i, f(i)] >= 1/2``, so a
    probability within rounding of 1 keeps its escape (``log(P[i, f(i)])`` otherwise)."""
    P = sp.csr_matrix(P)
    P.sort_indices()
    counts = np.diff(P.indptr)
    if (counts == 0).any():
        raise ChainError(f"row {int(np.flatnonzero(counts == 0)[0])} has no transition")
    rows = np.repeat(np.arange(P.shape[0]), counts)
    top = np.maximum.reduceat(P.data, P.indptr[:-1])
    at_top = np.flatnonzero(P.data == top[rows])
    chosen = at_top[np.unique(rows[at_top], return_index=True)[1]]  # entries are sorted by row, then column
    others = P.data.copy()
    others[chosen] = 0.0
    escape = np.add.reduceat(others, P.indptr[:-1])
    with np.errstate(divide="ignore"):
        log_p = np.where(top >= 0.5, np.log1p(-np.minimum(escape, 1.0)), np.log(top))
    return P.indices[chosen].astype(np.int64), log_p, counts == 1


def most_likely_cycles(P: sp.csr_matrix) -> list[Cycle]:
    """The cycles of the most likely successor map ``f(i) = argmax_j P[i, j]`` (ties to the lowest
    ``j``), most likely lap first.

    ``f`` maps the finite state set into itself, so its graph is a union of components each holding
    exactly one cycle ``c_0 -> f(c_0) -> ... -> f^L(c_0) = c_0``, the rest of the component being
    trees that flow into it: every state, following its most likely successor, ends on one of these
    cycles. They are the loops the chain runs round when it follows its likeliest transitions;
    ``rho = prod_i P[c_i, f(c_i)]`` is the probability of going once round from any of its states,
    ``1 - rho^(1/L)`` the leak per step, ``rho / (1 - rho)`` the expected number of complete laps
    before leaving (:class:`Cycle`). A cycle is *closed* when each of its states has ``f(c_i)`` as
    its only transition (then ``rho = 1`` and the cycle is a closed class of period ``L``; a
    closed class is a closed cycle exactly when each of its states has a single successor). The
    cycle states are what is left after peeling, repeatedly, the states no remaining state maps to;
    the work is ``O(nnz)`` for the row maxima and ``O(n)`` vectorised passes for the rest, plus one
    Python step per cycle state (0.4 s of CPU for 10^5 one-state cycles)."""
    f, log_p, single = most_likely_successors(P)
    n = len(f)
    indegree = np.bincount(f, minlength=n)
    on_cycle = np.ones(n, dtype=bool)
    leaves = np.flatnonzero(indegree == 0)
    while len(leaves):
        on_cycle[leaves] = False
        targets, hits = np.unique(f[leaves], return_counts=True)
        indegree[targets] -= hits
        leaves = targets[(indegree[targets] == 0) & on_cycle[targets]]
    successor, seen = f.tolist(), (~on_cycle).tolist()
    order, bounds = [], [0]  # the cycle states, cycle after cycle, each from its lowest state
    for start in np.flatnonzero(on_cycle).tolist():
        if seen[start]:
            continue
        at = start
        while not seen[at]:
            seen[at] = True
            order.append(at)
            at = successor[at]
        bounds.append(len(order))
    order, bounds = np.array(order, dtype=np.int64), np.array(bounds)
    which = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    log_lap = np.bincount(which, weights=log_p[order], minlength=len(bounds) - 1)
    leaves_cycle = np.bincount(which, weights=~single[order], minlength=len(bounds) - 1) > 0
    ranked = np.lexsort((order[bounds[:-1]], -log_lap))  # most likely lap first, then the lowest state
    return [Cycle(order[bounds[c] : bounds[c + 1]], float(log_lap[c]), not leaves_cycle[c]) for c in ranked.tolist()]
