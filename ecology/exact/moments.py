"""Moments of hitting times, first returns, expected visits, the group inverse and entropy rates.

Generic: this module imports only numpy, scipy and :mod:`ecology.exact.markov`; every function
takes a :class:`~ecology.exact.markov.MarkovChain`. Notation as there: ``T = min{t >= 0 : X_t in A}``
the entrance time of a set ``A``, ``S`` the states outside ``A`` from which ``A`` is entered with
probability 1 (decided on the graph), ``Q = P_SS``, ``N = (I - Q)^{-1}`` (expected visits),
``h = E[T]``.

Moments of hitting times
    The factorial moments ``phi_m(i) = E_i[T (T - 1) ... (T - m + 1)]`` solve, from
    ``(T' + 1)_m = (T')_m + m (T')_{m-1}`` for ``T = 1 + T'`` after one step,
    ``phi_m = m P phi_{m-1} + Q phi_m`` on ``S`` (``phi_0 = 1``, ``phi_m = 0`` on ``A`` for
    ``m >= 1``): non-negative systems ``x = b + Q x``, solved by the subtraction-free elimination
    (:func:`ecology.exact.markov.solve_leaving`), each component to a few ulps. They are held scaled,
    ``psi_m = phi_m / c^m`` with ``c = max_S h``: since ``N f <= max(f) h``, induction gives
    ``phi_m <= m! c^(m-1) h``, so ``psi_m <= m!`` never overflows and ``phi_m`` beyond a double is
    known by its log10. Raw moments follow with Stirling numbers of the second kind,
    ``E[T^m] = sum_k S(m, k) phi_k`` (non-negative terms). Where ``A`` may be missed every moment
    is infinite.

The variance
    ``Var_i(T) = sum_j N_ij sigma2_j`` with ``sigma2_j = sum_k P_jk (h_k - (h_j - 1))^2``: the
    increments ``h(X_{t+1}) + 1 - h(X_t)`` of the martingale ``h(X_{t ^ T}) + t ^ T`` are orthogonal,
    so ``Var(T)`` is the expected sum of their conditional variances, the non-negative system
    ``v = sigma2 + Q v``. The squares are exact sums of non-negative terms; the deviations
    ``h_k - h_j + 1`` are differences of computed times, so ``sigma2_j`` loses accuracy when the
    states ``j`` moves to have times nearly equal relative to their size (a slow escape from a
    well-mixed set: deviations of order 1 between times of 1e30). The other form,
    ``Var = phi_2 + h - h^2``, cancels instead when the coefficient of variation is small (a
    nearly deterministic ``T``) but is accurate for a metastable escape (``Var ~ h^2``). Both are
    computed with first-order error bounds (each computed time held to a relative
    ``delta = 4 n eps``, ``n`` unknowns): the martingale one is ``N e`` with
    ``e_j = sum_k P_jk (2 |d_jk| + D_jk) D_jk``, ``D_jk = delta (h_k + h_j)``, plus ``delta Var``;
    the other is ``3 delta (phi_2 + h + h^2)``. Per state the one with the smaller bound is
    kept, and its bound is returned (:class:`HittingTimeMoments`): a caller withholds digits
    it does not defend. Beyond the linear solvers, :func:`hitting_time_variance_by_series` bounds
    the variance from both sides by the survival series.

First returns
    ``tau_i^+ = min{t >= 1 : X_t = i}`` is the entrance time of ``{i}`` from a copy ``i'`` of ``i``
    (same row, never entered), so its law, moments and variance are those of a hitting time in the
    chain with that copy added. ``P_i(tau_i^+ = t)`` for ``t = 1 .. H`` are taboo probabilities
    ``e_i P (P_{-i})^{t-1} e_i`` (``P_{-i}``: column ``i`` removed), by ``H`` sparse products.
    ``P_i(return) = P_ii + sum_{j != i} P_ij u_j`` (``u`` the hitting probability of ``i``);
    ``E_i[tau_i^+] = 1 + sum_j P_ij h_j``, which is ``1 / pi_i`` in a closed class (Kac).

Expected visits
    Before ``A`` is entered: the row ``N[s, .]`` of the fundamental matrix of the chain killed at
    ``A`` (``0`` on ``A``; ``inf`` on the states of a closed class outside ``A`` that ``s`` can
    reach; the rest from the subtraction-free solve). Within a horizon: ``sum_{t=0}^{H} e_s K^t``,
    ``K`` the chain killed at ``A`` (or ``P``), by ``H`` sparse products.

Group inverse
    ``A = I - P``; ``A#`` is the matrix with ``A A# A = A``, ``A# A A# = A#``, ``A A# = A# A``.
    With ``Pi`` the Cesàro limit of ``P^t`` (``Pi[x] = sum_C P_x(end in C) pi_C``), ``I - P + Pi``
    is invertible for every finite chain and ``A# = (I - P + Pi)^{-1} - Pi`` (the deviation matrix;
    for an irreducible chain ``Pi = 1 pi`` and this is Kemeny–Snell's ``Z - 1 pi``). Dense LU
    (not subtraction-free: accurate to about ``cond(I - P + Pi) eps``), up to
    ``GROUP_INVERSE_LIMIT`` states. For an irreducible chain, ``M_ij = (A#_jj - A#_ij) / pi_j``
    are the mean first passage times and ``kappa = max_j (A#_jj - min_i A#_ij) / 2`` is Cho and
    Meyer's condition number: a stochastic ``P~ = P + E`` has
    ``max_j |pi~_j - pi_j| <= kappa ||E||_inf``.

Entropy rates
    Each closed class ``C`` has ``h_C = -sum_{i in C} pi_i sum_j P_ij log P_ij`` (nats per step), the
    almost-sure limit of ``-(1/t) log P(X_0 .. X_t)`` for runs that end in ``C``. With one closed
    class that is the chain's entropy rate from every start; with several, the rate of a run is the
    random ``h_C`` of the class that absorbs it, with mean ``sum_C P_x(end in C) h_C``: not one
    number. Its error is at most ``||pi - pi~||_1 max_i H(P_i.)`` (the law's L1 error estimate
    times the largest row entropy). Each row's largest entry is held as ``1 - r`` (``r`` the sum
    of the others) with ``log1p(-r)``, so a leading ``1 - 1e-110`` stored as ``1.0`` keeps its
    ``-(1 - r) log(1 - r) ~ r`` (:func:`ecology.exact.markov.row_entropies`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ecology.exact.markov import ChainError, MarkovChain, OutOfRange, row_entropies, solve_leaving

EPS = float(np.finfo(float).eps)


VISITS_LIMIT = 2000  # transient unknowns of an expected-visits row (dense right-hand side: n^2 memory)


GROUP_INVERSE_LIMIT = 2000  # states of a dense group inverse (n^3 / 3 flops, n^2 memory)


MAX_ORDER = 20  # highest moment computed (m! of the scaled moments stays far inside a double)


def stirling2(m: int) -> list[int]:
    """``S(m, k)`` for ``k = 0 .. m``: the Stirling numbers of the second kind, by
    ``S(m, k) = k S(m-1, k) + S(m-1, k-1)``, so ``t^m = sum_k S(m, k) (t)_k``."""
    row = [1]
    for r in range(1, m + 1):
        row = [0] + [k * (row[k] if k < len(row) else 0) + row[k - 1] for k in range(1, r + 1)]
    return row


@dataclass(frozen=True)
class HittingTimeMoments:
    """Moments of ``T``, the entrance time of a set ``A``, from every state (module docstring).

    ``surely``: bool mask of the states from which ``A`` is entered with probability 1 (every
    moment is infinite elsewhere); ``scale``: ``c = max h`` over them (1 when none is outside
    ``A``); ``scaled[m]``: ``phi_m / c^m`` (row 0 is 1; 0 on ``A``); ``scaled_variance``:
    ``Var(T) / c^2``, and ``scaled_variance_error`` its first-order absolute error bound, also
    over ``c^2`` (0 on ``A`` and where ``A`` may be missed)."""

    surely: np.ndarray
    scale: float
    scaled: np.ndarray
    scaled_variance: np.ndarray
    scaled_variance_error: np.ndarray

    @property
    def order(self) -> int:
        return len(self.scaled) - 1

    def _check(self, m: int) -> None:
        if not 1 <= m <= self.order:
            raise ValueError(f"moment order {m} is not computed: orders 1 .. {self.order} are")

    def log10_factorial(self, m: int) -> np.ndarray:
        """``log10 E[(T)_m]`` (``-inf`` on ``A``, ``inf`` where ``A`` may be missed)."""
        self._check(m)
        with np.errstate(divide="ignore"):
            out = np.log10(self.scaled[m]) + m * math.log10(self.scale)
        return np.where(self.surely, out, np.inf)

    def log10_raw(self, m: int) -> np.ndarray:
        """``log10 E[T^m]``, from ``E[T^m] / c^m = sum_k S(m, k) psi_k c^(k - m)`` (non-negative terms)."""
        self._check(m)
        s = stirling2(m)
        total = sum(s[k] * self.scaled[k] * self.scale ** (k - m) for k in range(1, m + 1))
        with np.errstate(divide="ignore"):
            out = np.log10(total) + m * math.log10(self.scale)
        return np.where(self.surely, out, np.inf)

    def raw(self, m: int) -> np.ndarray:
        """``E[T^m]``: ``inf`` where ``A`` may be missed, and where it is beyond a double
        (:meth:`overflow` tells which)."""
        with np.errstate(over="ignore"):
            return 10.0 ** self.log10_raw(m)

    def overflow(self, m: int) -> np.ndarray:
        """Bool mask of the states where ``E[T^m]`` is finite but beyond a double."""
        return self.surely & ~np.isfinite(self.raw(m))

    def mean(self) -> np.ndarray:
        return np.where(self.surely, self.scaled[1] * self.scale, np.inf)

    def variance(self) -> np.ndarray:
        """``Var(T)`` (``inf`` where ``A`` may be missed or beyond a double)."""
        with np.errstate(over="ignore"):
            return 10.0 ** (2 * self.log10_sd())

    def log10_sd(self) -> np.ndarray:
        """``log10`` of the standard deviation (``-inf`` where it is 0, ``inf`` where ``A`` may be missed)."""
        with np.errstate(divide="ignore"):
            out = 0.5 * np.log10(self.scaled_variance) + math.log10(self.scale)
        return np.where(self.surely, out, np.inf)

    def sd(self) -> np.ndarray:
        """The standard deviation; at most ``c + 1``, so a double whenever the times are
        (``Var <= E[T^2] - h^2 <= 2 c h + h - h^2``, from ``phi_2 <= 2 c h``)."""
        return 10.0 ** self.log10_sd()

    def variance_error(self) -> np.ndarray:
        """First-order bound on the relative error of :meth:`variance` (0 where it is exact or
        infinite; ``inf`` where the variance computed is 0 but not proven so)."""
        v, e = self.scaled_variance, self.scaled_variance_error
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, e / np.where(v > 0, v, 1.0), np.where(e > 0, np.inf, 0.0))

    def sd_error(self) -> np.ndarray:
        """First-order bound on the absolute error of :meth:`sd`: ``|sqrt(a) - sqrt(b)| <=
        min(sqrt(|a - b|), |a - b| / (2 sqrt(a)))`` with ``|a - b|`` the variance's bound."""
        v, e = self.scaled_variance, self.scaled_variance_error
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.minimum(np.sqrt(e), np.where(v > 0, e / (2 * np.sqrt(np.where(v > 0, v, 1.0))), np.inf))
        return np.where(self.surely, out * self.scale, 0.0)

    def cv(self) -> np.ndarray:
        """Coefficient of variation ``sd / mean`` (``nan``-free: 0 on ``A`` where both are 0, ``inf``
        where ``A`` may be missed)."""
        mean = self.scaled[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(mean > 0, np.sqrt(self.scaled_variance) / np.where(mean > 0, mean, 1.0), 0.0)
        return np.where(self.surely, out, np.inf)


def hitting_time_moments(mc: MarkovChain, target, order: int = 2) -> HittingTimeMoments:
    """Factorial moments of orders ``1 .. order`` and the variance of the entrance time of
    ``target`` (bool mask or indices) from every state (module docstring). A mean beyond a
    double is an :class:`~ecology.exact.markov.OutOfRange` (its log10 is
    :meth:`~ecology.exact.markov.MarkovChain.log10_expected_hitting_time`)."""
    if not isinstance(order, (int, np.integer)) or not 2 <= order <= MAX_ORDER:
        raise ValueError(f"order must be an integer from 2 to {MAX_ORDER}, got {order!r}")
    A = mc._mask(target)
    n = mc.n_states
    surely = mc.surely_entered(A)
    s = np.flatnonzero(surely & ~A)
    scaled = np.zeros((order + 1, n))
    scaled[0] = 1.0
    variance, error = np.zeros(n), np.zeros(n)
    if not len(s):
        return HittingTimeMoments(surely, 1.0, scaled, variance, error)
    with np.errstate(over="ignore"):
        h = solve_leaving(mc.P, s, np.ones(len(s)))
    if not np.all(np.isfinite(h)):
        raise OutOfRange("an expected hitting time is beyond the range of a double (1.8e308): its moments are not computed")
    c = max(float(h.max()), 1.0)
    scaled[1, s] = h / c
    P_S = mc.P[s]
    Q = P_S[:, s]
    delta = 4 * len(s) * EPS
    # the martingale form: sigma2_j = sum_k P_jk (h_k - h_j + 1)^2, all scaled by c
    hs = scaled[1]
    coo = P_S.tocoo()
    j, k = s[coo.row], coo.col
    d = hs[k] - hs[j] + 1.0 / c
    D = delta * (hs[k] + hs[j])
    sigma2 = np.bincount(coo.row, weights=coo.data * d * d, minlength=len(s))
    sigma2_error = np.bincount(coo.row, weights=coo.data * (2 * np.abs(d) + D) * D, minlength=len(s))
    # one solve for phi_2 and both martingale columns (the elimination is shared), then one per higher order
    second = solve_leaving(mc.P, s, np.column_stack([(2 / c) * (Q @ hs[s]), sigma2, sigma2_error]))
    scaled[2, s] = second[:, 0]
    for m in range(3, order + 1):
        scaled[m, s] = solve_leaving(mc.P, s, (m / c) * (Q @ scaled[m - 1, s]))
    martingale, martingale_error = second[:, 1], second[:, 2] + delta * second[:, 1]
    # the moment form: phi_2 + h - h^2
    phi2, h1 = scaled[2, s], hs[s]
    moment = np.maximum(phi2 + h1 / c - h1 * h1, 0.0)
    moment_error = 3 * delta * (phi2 + h1 / c + h1 * h1)
    use_martingale = martingale_error <= moment_error
    variance[s] = np.where(use_martingale, martingale, moment)
    error[s] = np.where(use_martingale, martingale_error, moment_error)
    lost = ~surely
    scaled[1:, lost] = np.inf
    variance[lost] = np.inf
    error[lost] = 0.0
    return HittingTimeMoments(surely, c, scaled, variance, error)


def hitting_time_variance_by_series(mc: MarkovChain, start: int, target, max_products: int,
                                    rtol: float = 1e-10) -> tuple[float, float] | None:
    """Two-sided bounds ``(lo, hi)`` on ``Var_start(T)`` from the survival series, for chains beyond
    the linear solvers (``(inf, inf)`` when the target may be missed; ``(0, 0)`` on it); None when
    ``max_products`` sparse products do not close them to relative width ``rtol``.

    With ``m_t = P(T > t) = e_start Q^t 1``, ``E[T] = sum_t m_t`` and ``E[T^2] = sum_t (2t + 1) m_t``,
    both partial sums of non-negative terms. As in
    :meth:`~ecology.exact.markov.MarkovChain.expected_hitting_time_by_series`, ratios
    ``r_lo u_N <= u_{N+1} <= r_hi u_N`` bound every later ``m_{N+j}`` between ``r^j m_N`` for
    ``r = r_lo, r_hi``, so the tails lie between ``m_N / (1 - r)`` and
    ``m_N ((2N + 1) / (1 - r) + 2 r / (1 - r)^2)`` at the two ratios. Then
    ``Var = E[T^2] - E[T]^2`` lies in ``[E2_lo - h_hi^2, E2_hi - h_lo^2]``, widened by the
    rounding of the partial sums (``(t + 1) eps`` relative after ``t`` terms): a subtraction,
    so the width grows as ``1 / cv^2`` for a nearly deterministic ``T``."""
    start = _state(mc, start)
    A = mc._mask(target)
    if A[start]:
        return 0.0, 0.0
    if not mc.surely_entered(A)[start]:
        return math.inf, math.inf
    PT = mc.P.T.tocsr()
    keep = (~A).astype(float)
    u = np.zeros(mc.n_states)
    u[start] = 1.0
    first, second, scale = 0.0, 0.0, 1.0  # the true u_t is scale * u
    for t in range(max(1, max_products)):
        mass = scale * u.sum()
        nxt = (PT @ u) * keep
        support = u > 0
        if t % 8 == 7 and not np.any(nxt[~support] > 0):
            ratio = nxt[support] / u[support]
            r_lo, r_hi = float(ratio.min()), float(ratio.max())
            if r_hi < 1.0:
                h = [first + mass / (1.0 - r) for r in (r_lo, r_hi)]
                e2 = [second + mass * ((2 * t + 1) / (1.0 - r) + 2 * r / (1.0 - r) ** 2) for r in (r_lo, r_hi)]
                rounding = (t + 1) * EPS * (e2[1] + h[1] ** 2)
                lo, hi = max(e2[0] - h[1] ** 2 - rounding, 0.0), e2[1] - h[0] ** 2 + rounding
                if hi - lo <= rtol * lo:
                    return lo, hi
        first += mass
        second += (2 * t + 1) * mass
        u = nxt
        top = u.max()
        if top == 0.0:  # entered surely within t + 1 steps: the sums are exact up to rounding
            rounding = (t + 1) * EPS * (second + first**2)
            return max(second - first**2 - rounding, 0.0), second - first**2 + rounding
        if top < 1e-200:
            u /= top
            scale *= top
    return None


def _with_copy(mc: MarkovChain, i: int) -> MarkovChain:
    """The chain with a state ``n`` added whose row is ``P[i]`` and which is never entered: the
    entrance time of ``{i}`` from ``n`` is the first return time ``tau_i^+`` from ``i``."""
    n = mc.n_states
    P = sp.vstack([sp.hstack([mc.P, sp.csr_matrix((n, 1))]), sp.hstack([mc.P[i], sp.csr_matrix((1, 1))])])
    return MarkovChain(P.tocsr())


def _state(mc: MarkovChain, i) -> int:
    if not isinstance(i, (int, np.integer)) or not 0 <= i < mc.n_states:
        raise ValueError(f"a state must be an integer from 0 to {mc.n_states - 1}, got {i!r}")
    return int(i)


def first_return_distribution(mc: MarkovChain, i: int, horizon: int) -> np.ndarray:
    """``f[t - 1] = P_i(tau_i^+ = t)`` for ``t = 1 .. horizon``: the taboo probabilities
    ``e_i P (P_{-i})^(t-1) e_i``, the mass not yet returned propagated by sparse products."""
    i = _state(mc, i)
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    PT = mc.P.T.tocsr()
    free = mc.P[i].toarray().ravel()
    f = np.zeros(horizon)
    for t in range(horizon):
        if t:
            free = PT @ free
        f[t] = free[i]
        free[i] = 0.0
    return f


def return_probability(mc: MarkovChain, i: int) -> float:
    """``P_i(tau_i^+ < inf) = P_ii + sum_{j != i} P_ij P_j(enter i)`` (1 exactly in a closed class)."""
    i = _state(mc, i)
    u = mc.hitting_probabilities([i])
    row = mc.P[i]
    return float(min(1.0, row.data @ u[row.indices]))


def return_time_moments(mc: MarkovChain, i: int, order: int = 2) -> HittingTimeMoments:
    """The moments of ``tau_i^+`` as those of the entrance time of ``{i}`` from the added copy of
    ``i`` (:func:`_with_copy`): read index ``mc.n_states`` of the result (``.mean()``, ``.variance()``,
    ``.sd()``, ``.raw(m)``); infinite when the return is not sure (a transient ``i``)."""
    i = _state(mc, i)
    return hitting_time_moments(_with_copy(mc, i), [i], order)


def mean_return_time(mc: MarkovChain, i: int) -> float:
    """``E_i[tau_i^+] = 1 + sum_j P_ij h_j`` (``h`` the hitting times of ``i``; ``inf`` for a transient ``i``)."""
    i = _state(mc, i)
    h = mc.expected_hitting_times([i])
    row = mc.P[i]
    with np.errstate(over="ignore"):
        return float(1.0 + row.data @ h[row.indices])


def expected_visits(mc: MarkovChain, start: int, target) -> np.ndarray:
    """``E_start[#{t < T : X_t = j}]`` for every ``j`` (``T`` the entrance time of ``target``; the
    start counts as a visit at ``t = 0``): the row ``N[start]`` of the fundamental matrix of the
    chain killed at ``target``, 0 on it and where ``start`` cannot go without entering it, ``inf``
    on the states of a closed class outside it that ``start`` can reach (module docstring)."""
    start = _state(mc, start)
    A = mc._mask(target)
    visits = np.zeros(mc.n_states)
    if A[start]:
        return visits
    reach = mc._reach(mc._mask([start]), within=~A, forward=True)  # edges from it go to itself or to A
    recurrent = np.ones(mc.n_states, dtype=bool)
    recurrent[mc.transient_states] = False
    forever = reach & recurrent & ~mc._reach(A)  # in a closed class that A does not meet
    visits[forever] = np.inf
    unknown = np.flatnonzero(reach & ~forever)
    if len(unknown) > VISITS_LIMIT:
        raise ChainError(f"expected visits are computed for up to {VISITS_LIMIT:,} states reachable before the target, "
                         f"not {len(unknown):,}")
    if len(unknown):  # every one leaves them: towards A, or into a closed class of forever
        N = solve_leaving(mc.P, unknown, np.eye(len(unknown)))
        visits[unknown] = N[np.searchsorted(unknown, start)]
    return visits


def expected_visits_within(mc: MarkovChain, start: int, horizon: int, target=None) -> np.ndarray:
    """``E_start[#{t <= horizon : X_t = j, t < T}]`` for every ``j`` (``T`` the entrance time of
    ``target``; no killing when None): ``sum_{t=0}^{H} e_start K^t`` with ``K`` the chain killed at
    the target, by ``horizon`` sparse products of non-negative vectors."""
    start = _state(mc, start)
    if not isinstance(horizon, (int, np.integer)) or horizon < 0:
        raise ValueError(f"horizon must be a non-negative integer, got {horizon!r}")
    keep = np.ones(mc.n_states) if target is None else (~mc._mask(target)).astype(float)
    PT = mc.P.T.tocsr()
    free = np.zeros(mc.n_states)
    free[start] = keep[start]
    visits = free.copy()
    for _ in range(horizon):
        free = (PT @ free) * keep
        visits += free
    return visits


def limiting_matrix(mc: MarkovChain) -> np.ndarray:
    """``Pi = lim (1/t) sum_{s<t} P^s`` (dense): ``Pi[x] = sum_C P_x(end in C) pi_C``."""
    if mc.n_states > GROUP_INVERSE_LIMIT:
        raise ChainError(f"the limiting matrix is computed densely for up to {GROUP_INVERSE_LIMIT:,} states, "
                         f"not {mc.n_states:,}")
    Pi = np.zeros((mc.n_states, mc.n_states))
    for index, pi in enumerate(mc.stationary_distributions):
        Pi += np.outer(mc.hitting_probabilities(mc._class_mask(index)), pi)
    return Pi


def group_inverse(mc: MarkovChain) -> np.ndarray:
    """``A# = (I - P + Pi)^{-1} - Pi`` for ``A = I - P`` (module docstring), dense, for any chain of
    up to ``GROUP_INVERSE_LIMIT`` states (reducible and periodic ones included)."""
    Pi = limiting_matrix(mc)
    Z = np.linalg.solve(np.eye(mc.n_states) - mc.P.toarray() + Pi, np.eye(mc.n_states))
    return Z - Pi


def _irreducible(mc: MarkovChain, what: str) -> np.ndarray:
    if not mc.is_irreducible:
        raise ChainError(f"{what} needs an irreducible chain")
    return mc.stationary_distributions[0]


def mean_first_passage_from_group_inverse(mc: MarkovChain, G: np.ndarray | None = None) -> np.ndarray:
    """``M_ij = (A#_jj - A#_ij) / pi_j`` (``M_ii = 0``) of an irreducible chain; ``G`` is ``A#`` when
    already computed. Subtractive: prefer :meth:`~ecology.exact.markov.MarkovChain.mean_first_passage_times`
    for the numbers; this is the cross-check and the form of the perturbation theory."""
    pi = _irreducible(mc, "the mean first passage times from the group inverse")
    G = group_inverse(mc) if G is None else G
    M = (np.diag(G)[None, :] - G) / pi[None, :]
    np.fill_diagonal(M, 0.0)
    return M


def condition_number(mc: MarkovChain, G: np.ndarray | None = None) -> float:
    """Cho and Meyer's ``kappa = max_j (A#_jj - min_i A#_ij) / 2`` of an irreducible chain: for a
    stochastic ``P + E``, ``max_j |pi~_j - pi_j| <= kappa ||E||_inf`` (``||E||_inf`` the largest
    absolute row sum)."""
    _irreducible(mc, "the condition number of the stationary law")
    G = group_inverse(mc) if G is None else G
    return float(np.max(np.diag(G) - G.min(axis=0)) / 2)


@dataclass(frozen=True)
class EntropyRates:
    """Per closed class (``mc.recurrent_classes`` order): ``rates[c] = h_C`` in nats per step (None
    when the class's stationary law is not trusted, :attr:`~ecology.exact.markov.StationaryLaw.trusted`),
    and ``errors[c]``, the bound ``||pi - pi~||_1 max_{i in C} H(P_i.)`` (None without an estimate)."""

    rates: list[float | None]
    errors: list[float | None]

    @property
    def unique(self) -> bool:
        """One closed class: ``rates[0]`` is the chain's entropy rate from every start."""
        return len(self.rates) == 1


def entropy_rates(mc: MarkovChain) -> EntropyRates:
    """The entropy rate ``h_C`` of every closed class (module docstring)."""
    rows = row_entropies(mc.P)
    rates, errors = [], []
    for members, law in zip(mc.recurrent_classes, mc.stationary_laws):
        error = None if law.error is None else float(law.error * rows[members].max())
        rates.append(float(law.pi @ rows[members]) if law.trusted else None)
        errors.append(error)
    return EntropyRates(rates, errors)


def entropy_rate_from(mc: MarkovChain, start: int) -> dict:
    """The entropy rate of a run from ``start``: the random ``h_C`` of the class ``C`` that absorbs
    it. ``law``: ``[(P_start(end in C), h_C)]`` per closed class; ``mean``: ``sum_C P(end in C) h_C``
    (None when a class that may be entered has no trusted rate); ``single``: whether it is one
    number (one class is entered with probability 1, or every class entered has the same rate)."""
    start = _state(mc, start)
    rates = entropy_rates(mc).rates
    absorb = mc.absorption_probabilities(start)
    entered = [r for p, r in zip(absorb, rates) if p > 0]
    mean = None if None in entered else float(sum(p * r for p, r in zip(absorb, rates) if p > 0))
    return {"law": [(float(p), r) for p, r in zip(absorb, rates)], "mean": mean,
            "single": None not in entered and len(set(entered)) == 1}
