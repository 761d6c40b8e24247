"""Quasi-stationary laws of a transient set, implied timescales and conductance.

Generic: imports only numpy, scipy and :mod:`ecology.exact.markov`. A chain is given as a
:class:`~ecology.exact.markov.MarkovChain` or a sparse row-stochastic ``P``; a set of states as a
bool mask or an index array.

Quasi-stationary law
    For a set ``S`` with ``Q = P_SS``, the law of ``X_t`` *conditioned on not having left S by t*
    is ``e_x Q^t / (e_x Q^t 1)``. A *quasi-stationary distribution* (QSD) is a law ``nu`` on ``S``
    that this conditioning leaves fixed: ``nu Q = lambda nu``, the left Perron vector of ``Q`` with
    ``lambda`` its spectral radius. From ``nu`` the time to leave ``S`` is geometric: leaving per
    step ``1 - lambda``, the *decay rate*, mean ``1 / (1 - lambda)``. The decay rate is never formed
    as ``1 - lambda`` (a metastable set has ``1 - lambda ~ 1e-12``) but as
    ``sum_i nu_i e_i`` with ``e_i = sum_{j not in S} P[i, j]`` the exit probability of ``i``, a sum
    of what leaves: subtraction-free.

    *Computation.* The *resurrected* chain ``R(mu) = Q + e mu^T`` (leave ``S``, restart from
    ``mu``) is stochastic on ``S``, and its stationary law is ``mu N / (mu N 1)`` with
    ``N = (I - Q)^{-1}`` (one visit of ``S`` per restart). ``nu`` is its fixed point:
    ``nu R(nu) = lambda nu + (nu e) nu = nu``. The iteration ``mu <- stationary(R(mu))`` is inverse
    iteration on ``N``, whose eigenvalues are ``1 / (1 - lambda_i)``: it converges at the ratio
    ``(1 - lambda) / |1 - lambda_2|``, a few steps for a metastable set. Each step is a GTH
    elimination (:func:`ecology.exact.markov.gth`), whose pivots are sums of off-diagonal
    entries: every component of ``nu`` has a small relative error even where it is below 1e-30
    (GTH is accurate under relative perturbations of the entries, and the rank-one resurrection
    only perturbs them). The start is the dense eigenvector (absolute values; the uniform law above
    ``EIGENVECTOR_START_LIMIT`` states, where the eigenvectors cost too much). The *error
    estimate* is the L1 distance between two eliminations in opposite orders plus the last step's
    L1 change times ``r / (1 - r)``, ``r`` the ratio of the last two changes (the geometric tail of
    the iteration). Above ``DENSE_QSD_LIMIT`` states, ARPACK's leading left eigenvector of ``Q``,
    with the estimate ``||nu Q - lambda nu||_1 / min_{i >= 2} |lambda - lambda_i|`` (first order).

    *Reducible Q.* ``Q`` is block triangular over its communication classes, and ``lambda`` is
    the largest of the classes' ``lambda_C``. From a start ``x`` the conditioned law converges (the
    *Yaglom limit*) to the QSD of the class ``C*`` with the largest ``lambda_C`` *among the classes
    reachable from x within S*, spread over ``C*`` and the states of ``S`` downstream of it (those
    ``C*`` reaches without leaving ``S``): upstream classes and classes ``x`` cannot reach get no
    mass, and downstream states get the mass the excursions from ``C*`` bring them. The rule and
    its tie case: when two reachable classes share the largest ``lambda`` (decay rates within a
    relative ``TIE``), ``Q^t`` has a Jordan block, the survival decays as ``t^m lambda^t`` and the
    conditioned law goes to the QSD of the class last on the longest chain of such classes; the
    one downstream of all the others is taken when there is one (else the first: the limit then
    mixes the tied classes in proportions that depend on the start), and ``tie`` is set. A class
    with ``lambda_C = 1`` is a closed class of ``P`` inside ``S``: its QSD is its stationary law,
    decay rate 0.

    *Convergence.* The conditioned law approaches ``nu`` as ``(|lambda_2| / lambda)^t``, with
    ``lambda_2`` the second eigenvalue (in modulus) of ``Q`` restricted to the states reachable
    from ``x``: the *spectral ratio*. :func:`conditioned_laws` propagates ``e_x Q^t`` with
    renormalisation (so survivals below 1e-308 do not underflow), giving the survival
    ``P_x(still in S at t)`` as a log10 and the total-variation distance to ``nu``.

Implied timescales
    ``t_i = -1 / ln |lambda_i|`` (steps for the mode ``i`` to shrink by ``e``): computed as
    ``-1 / log1p(|lambda_i| - 1)`` (``|lambda| - 1`` is exact for ``|lambda|`` in ``[1/2, 1]``; below
    1/2, ``-1 / ln |lambda|`` directly),
    or ``-1 / log1p(-(1 - lambda))`` where ``1 - lambda`` is known subtraction-free (a QSD's decay
    rate); 0 for ``lambda = 0``, and infinite for ``|lambda| >= 1 - UNIT`` (``UNIT = 1e-12``): an
    eigenvalue from a dense or Arnoldi solve carries an absolute error of about 1e-15, so a modulus
    that close to 1 is a unit eigenvalue (a closed class, a period) or a mode slower than 1e12 steps
    that the eigenvalue solver does not resolve (a QSD's decay rate does).

Conductance
    Within a closed class with stationary law ``pi``, the *conductance* of a set ``A`` is
    ``Phi(A) = sum_{i in A, j not in A} pi_i P[i, j] / pi(A)``, the probability per step of leaving
    ``A`` from stationarity within ``A``; the class's conductance is
    ``Phi* = min {Phi(A) : pi(A) <= 1/2}``. Since the stationary flux out of ``A`` equals the
    flux into it, ``Phi* = min_A flux(A) / min(pi(A), pi(A^c))`` over all proper subsets, so
    ``Phi*`` is found exactly by enumerating the subsets that omit the last state (classes up to
    ``ENUMERATION_LIMIT`` states); otherwise a *sweep cut* gives an upper bound: the states sorted
    by ``v_i / sqrt(pi_i)``, ``v`` the second eigenvector of the symmetrised flux
    ``Pi^{-1/2} (Pi P + P^T Pi) / 2 Pi^{-1/2}``, and the best of their prefixes. The Cheeger
    inequalities ``Phi*^2 / 2 <= 1 - lambda_2 <= 2 Phi*`` hold for a reversible ``P``
    (``pi_i P[i, j] = pi_j P[j, i]``, real spectrum). For a non-reversible ``P`` they hold for
    its additive reversibilisation ``(P + P*) / 2`` (``P*`` the time reversal), which has the same
    flux across every cut and so the same ``Phi*``; the eigenvalues of a non-reversible ``P`` itself
    may be complex and obey no such two-sided bound in general, so :func:`cheeger_bounds` reports
    the reversibilisation's ``lambda_2`` (equal to ``P``'s when ``P`` is reversible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse import linalg as spla

from ecology.exact import markov
from ecology.exact.markov import SEED, TRUSTED_ERROR, ChainError, MarkovChain, gth, leading_eigenvalues

DENSE_QSD_LIMIT = 1200  # resurrected-chain GTH iteration up to this many states; ARPACK above


QSD_WORK = 3e10  # flops of the GTH iterations of one QSD (each costs about (2/3) n^3)


QSD_TOLERANCE = 1e-14  # the iteration stops when no component's estimated remaining change exceeds this, relatively


EIGENVECTOR_START_LIMIT = 300  # the iteration starts from numpy's eigenvector up to this size, else from the uniform law


QSD_ITERATIONS = 5000  # at most this many steps of the resurrected-chain iteration


TIE = 1e-9  # two decay rates within this relative distance are one largest lambda (a tie)


UNIT = 1e-12  # an eigenvalue modulus within this of 1 counts as 1 (implied timescale infinite)


ENUMERATION_LIMIT = 20  # classes up to this size get the exact conductance by enumerating subsets


SPECTRAL_RATIO_COUNT = 3  # eigenvalues per class behind a spectral ratio (lambda, a conjugate or a tie, the next)


SWEEP_WORK = 2e9  # (cuts x transitions) of a sweep cut whose every cut flux is summed term by term


def _matrix(chain) -> sp.csr_matrix:
    if isinstance(chain, MarkovChain):
        return chain.P
    return MarkovChain(chain).P


def _set_mask(n: int, states, what: str = "the set") -> np.ndarray:
    states = np.asarray(states)
    if states.dtype == bool:
        if states.shape != (n,):
            raise ChainError(f"{what} as a mask must have shape ({n},), got {states.shape}")
        return states.copy()
    mask = np.zeros(n, dtype=bool)
    index = states.astype(np.int64).ravel()
    if len(index) and (index.min() < 0 or index.max() >= n):
        raise ChainError(f"{what} names a state outside 0..{n - 1}")
    mask[index] = True
    return mask


@dataclass(frozen=True)
class QuasiStationaryLaw:
    """The QSD reached in a set (module docstring): ``nu`` (full length, 0 outside ``support``),
    its ``decay_rate`` ``1 - lambda = sum nu_i e_i``, ``eigenvalue`` ``lambda = sum nu_i (Q 1)_i``,
    the class ``C*`` that carries it (``class_states``), the ``support`` (``C*`` and the states of
    ``S`` downstream of it), how it was computed and an L1 error estimate; ``tie`` when another
    reachable class has the same largest ``lambda``."""

    nu: np.ndarray
    decay_rate: float
    eigenvalue: float
    class_states: np.ndarray
    support: np.ndarray
    method: str
    error: float | None
    error_kind: str
    tie: bool

    @property
    def expected_exit_time(self) -> float:
        """``1 / (1 - lambda)``: the mean time to leave ``S`` from ``nu`` (``inf`` for a closed class)."""
        return math.inf if self.decay_rate == 0 else 1.0 / self.decay_rate

    @property
    def trusted(self) -> bool:
        return self.error is not None and self.error <= TRUSTED_ERROR


def _exits(P: sp.csr_matrix, states: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(P_SS, e)`` for the index array ``S = states``: ``e_i = sum_{j not in S} P[i, j]``, summed
    from the entries that leave (not ``1 - row sum``)."""
    inside = np.zeros(P.shape[0], dtype=bool)
    inside[states] = True
    rows = P[states]
    return rows[:, states].tocsr(), np.asarray(rows[:, ~inside].sum(axis=1)).ravel()


def _resurrected_gth(Q: np.ndarray, e: np.ndarray, mu: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Stationary law of ``Q + e mu^T`` by GTH (``reverse``: eliminating in the opposite order)."""
    R = Q + np.outer(e, mu)
    if reverse:
        return gth(R[::-1, ::-1])[::-1]
    return gth(R)


def _dense_qsd(Q: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float, str]:
    """The resurrected-chain iteration (module docstring) on a dense ``Q`` whose Perron class
    reaches every state and from every state of which ``S`` is left: ``(nu, error, kind)``.

    The contraction per step is ``r = (1 - lambda) / min_{i >= 2} |1 - lambda_i|`` (from the dense
    spectrum and the current decay rate); the iteration stops when the relative change of every
    component times ``max(1, r / (1 - r))`` (the rest of the geometric tail) is below
    ``QSD_TOLERANCE``, or when nothing changes. Rounding in each step leaves the iterate in a band
    about ``n 2^-53 / (1 - r)`` wide around the fixed point, which the estimate adds."""
    n = len(Q)
    if n <= EIGENVECTOR_START_LIMIT:
        values, vectors = np.linalg.eig(Q.T)
        top = int(np.argmax(values.real))
        mu = np.abs(vectors[:, top].real)
        mu = np.where(mu > 0, mu, 1e-300)
    else:  # the eigenvalues alone cost a third as much; the iteration starts from the uniform law
        values = np.linalg.eigvals(Q)
        top = int(np.argmax(values.real))
        mu = np.ones(n)
    mu /= mu.sum()
    distances = np.sort(np.abs(1.0 - np.delete(values, top)))
    iterations = min(QSD_ITERATIONS, max(3, int(QSD_WORK / max(n, 1) ** 3)))
    change, steps, r = math.inf, 0, 0.0
    while steps < iterations:
        steps += 1
        nxt = _resurrected_gth(Q, e, mu)
        change = float(np.abs(nxt - mu).sum())
        relative = float(np.max(np.abs(nxt - mu) / np.maximum(nxt, 1e-300)))
        mu = nxt
        r = min(1.0, float(mu @ e) / distances[0]) if len(distances) and distances[0] > 0 else 0.0
        if change == 0.0 or (r < 1 and relative * max(1.0, r / (1 - r)) <= QSD_TOLERANCE):
            break
    flipped = _resurrected_gth(Q, e, mu, reverse=True)
    orders = float(np.abs(mu - flipped).sum())
    if r >= 1:
        return mu, math.inf, f"no contraction (lambda_2 as close to 1 as lambda; {steps} steps)"
    error = orders + change * max(1.0, r / (1 - r)) + n * 2.0**-53 / (1 - r)
    return mu, error, f"two GTH eliminations, the iteration's tail and its rounding band ({steps} steps, contraction {r:.2g})"


def _sparse_qsd(Q: sp.csr_matrix) -> tuple[np.ndarray, float | None, str]:
    """ARPACK's leading left eigenvector of a large ``Q``, with its first-order error estimate."""
    n = Q.shape[0]
    rng = np.random.default_rng(SEED)
    QT = Q.T.tocsr()
    try:
        values, vectors = spla.eigs(QT, k=min(3, n - 2), which="LM", v0=rng.random(n), ncv=min(n - 1, 40), tol=0,
                                    maxiter=100 * n)
    except spla.ArpackNoConvergence:
        raise ChainError(f"ARPACK did not converge on the quasi-stationary law of a set of {n:,} states") from None
    top = int(np.argmax(values.real))  # the Perron root is real and largest in real part (-lambda may tie in modulus)
    nu = np.abs(vectors[:, top].real)
    nu /= nu.sum()
    lam = float(values[top].real)
    residual = float(np.abs(QT @ nu - lam * nu).sum())
    gap = float(np.abs(np.delete(values, top) - lam).min()) if len(values) > 1 else lam
    error = residual / gap if gap > 0 else None
    return nu, error, "residual / (distance from lambda to the next eigenvalue) (an estimate, not a bound)"


def _classes_of_set(P: sp.csr_matrix, states: np.ndarray):
    """Communication classes of ``Q = P_SS`` (index arrays into ``states``), and the condensation's edges."""
    Q = P[states][:, states].tocsr()
    n_comp, labels = csgraph.connected_components(Q, directed=True, connection="strong")
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_comp + 1))
    return Q, labels, [order[bounds[c] : bounds[c + 1]] for c in range(n_comp)]


def class_decay_rates(chain, S) -> list[tuple[np.ndarray, float]]:
    """``(states, 1 - lambda_C)`` for each communication class ``C`` of ``Q = P_SS``, the decay
    rate of its own QSD (leaving ``C``, into the rest of ``S`` or out of it): a one-state class
    ``sum_{j != i} P[i, j]``, a larger one ``sum_i nu_i e_i`` (:func:`quasi_stationary` of ``C``)."""
    P = _matrix(chain)
    states = np.flatnonzero(_set_mask(P.shape[0], S))
    _, _, members = _classes_of_set(P, states)
    return [(states[m], _class_rate(P, states[m])[0]) for m in members]


def _class_rate(P: sp.csr_matrix, C: np.ndarray) -> tuple[float, tuple | None]:
    """``(1 - lambda_C, the solution of _qsd_on for C or None)``: a one-state class by the sum of its
    row's other entries, a larger one by its own QSD."""
    if len(C) == 1:
        row = P[C[0]]
        return float(row.data[row.indices != C[0]].sum()), None
    solution = _qsd_on(P, C)
    return solution[1], solution


def _qsd_on(P: sp.csr_matrix, support: np.ndarray):
    """``(nu on support, decay rate, eigenvalue, error, kind, method)`` for a support one class of
    which reaches all of it (module docstring)."""
    Q, e = _exits(P, support)
    if len(support) == 1:
        q = float(Q.toarray()[0, 0])
        return np.ones(1), float(e[0]), q, 0.0, "exact", "one state"
    if e.sum() == 0:  # a closed class of P: its QSD is its stationary law
        law = MarkovChain(Q).stationary_laws[0]
        return law.pi, 0.0, 1.0, law.error, law.error_kind, f"stationary law ({law.method})"
    if len(support) <= DENSE_QSD_LIMIT:
        nu, error, kind = _dense_qsd(Q.toarray(), e)
        method = "resurrected-chain GTH iteration"
    else:
        nu, error, kind = _sparse_qsd(Q)
        method = "Arnoldi"
    decay = float(nu @ e)
    eigenvalue = float(nu @ np.asarray(Q.sum(axis=1)).ravel())
    return nu, decay, eigenvalue, error, kind, method


def _reachable(Q: sp.csr_matrix, sources: np.ndarray) -> np.ndarray:
    """Mask of the states ``Q``'s graph reaches from ``sources`` (a mask), sources included."""
    order = csgraph.breadth_first_order
    seen = np.zeros(Q.shape[0], dtype=bool)
    for s in np.flatnonzero(sources):
        if not seen[s]:
            seen[order(Q, int(s), directed=True, return_predecessors=False)] = True
    return seen


def quasi_stationary(chain, S, start=None) -> QuasiStationaryLaw:
    """The QSD of the set ``S`` (mask or indices) reached from ``start`` (a state in ``S``; None:
    from anywhere in ``S``, i.e. the class with the largest ``lambda`` of all), by the rule of the
    module docstring (reducible ``Q``: the class ``C*`` with the largest ``lambda`` among those
    reachable, ties to the one downstream of the others, ``tie`` set)."""
    P = _matrix(chain)
    n = P.shape[0]
    mask = _set_mask(n, S)
    states = np.flatnonzero(mask)
    if not len(states):
        raise ChainError("the set of a quasi-stationary law is empty")
    if start is not None and not (0 <= int(start) < n and mask[int(start)]):
        raise ChainError(f"the start {start} of a quasi-stationary law must be a state of the set")
    Q, labels, members = _classes_of_set(P, states)
    reach = np.ones(len(states), dtype=bool) if start is None else \
        _reachable(Q, np.asarray(states == int(start)))
    candidates = [c for c, m in enumerate(members) if reach[m[0]]]
    rates, solved = {}, {}  # the QSD of each multi-state candidate class is kept for when it is also the answer
    for c in candidates:
        rates[c], solved[c] = _class_rate(P, states[members[c]])
    if all(len(members[c]) == 1 and rates[c] == 1.0 for c in candidates):
        raise ChainError("every state of the set is left in one step (no transition stays in it): it has no "
                         "quasi-stationary law")
    best = min(rates.values())
    tied = [c for c in candidates if rates[c] <= best * (1 + TIE) or (best == 0 and rates[c] == 0)]
    chosen = tied[0]
    if len(tied) > 1:  # the one every other tied class reaches, when there is one
        for c in tied:
            if all(_reachable(Q, labels == d)[members[c][0]] for d in tied):
                chosen = c
                break
    top = np.zeros(len(states), dtype=bool)
    top[members[chosen]] = True
    down = _reachable(Q, top)
    support = states[down]
    if solved[chosen] is not None and len(support) == len(members[chosen]):
        nu_support, decay, eigenvalue, error, kind, method = solved[chosen]
    else:
        nu_support, decay, eigenvalue, error, kind, method = _qsd_on(P, support)
    nu = np.zeros(n)
    nu[support] = nu_support
    return QuasiStationaryLaw(nu=nu, decay_rate=decay, eigenvalue=eigenvalue, class_states=states[members[chosen]],
                              support=support, method=method, error=None if error is None else float(error),
                              error_kind=kind, tie=len(tied) > 1)


def spectral_ratio(chain, S, law: QuasiStationaryLaw, start=None) -> float | None:
    """``|lambda_2| / lambda`` of ``Q`` restricted to the states of ``S`` reachable from ``start``
    (all of ``S`` when None): the conditioned law approaches ``nu`` as ``ratio^t``. ``lambda_2``
    is the largest modulus once ``lambda`` is removed from the spectrum (the union of the
    classes' spectra, of which the ``SPECTRAL_RATIO_COUNT`` largest moduli of each class are
    enough: :func:`ecology.exact.markov.leading_eigenvalues`, dense for a small class, two agreeing
    ARPACK runs for a large one); 1 on a tie. None when ``lambda = 0`` or the eigenvalues are refused."""
    P = _matrix(chain)
    states = np.flatnonzero(_set_mask(P.shape[0], S))
    Q, _, members = _classes_of_set(P, states)
    reach = np.ones(len(states), dtype=bool) if start is None else _reachable(Q, np.asarray(states == int(start)))
    values = []
    rng = np.random.default_rng(SEED)
    for m in members:
        if not reach[m[0]]:
            continue
        try:  # the largest moduli of each class suffice: lambda and the next one are among them
            values.append(leading_eigenvalues(Q[m][:, m], SPECTRAL_RATIO_COUNT, rng))
        except ChainError:
            return None
    values = np.concatenate(values)
    if law.eigenvalue <= 0:
        return None
    drop = int(np.argmin(np.abs(values - law.eigenvalue)))
    rest = np.delete(values, drop)
    if not len(rest):
        return 0.0
    return min(1.0, float(np.abs(rest).max()) / law.eigenvalue) if not law.tie else 1.0


def conditioned_laws(chain, S, initial, steps: int, nu: np.ndarray | None = None) -> dict:
    """From the law ``initial`` (full length, on ``S``): for ``t = 0 .. steps``, ``log10`` of the
    survival ``P(X_s in S for s <= t)`` and, with ``nu``, the total-variation distance
    ``||u_t / |u_t| - nu||_TV`` of the conditioned law to it; and the conditioned law at ``steps``
    (``law``). ``u_t = u_0 Q^t`` is propagated renormalised each step, its log mass accumulated,
    so a survival below 1e-308 is still a finite log10 (``-inf`` once it is exactly 0)."""
    P = _matrix(chain)
    n = P.shape[0]
    mask = _set_mask(n, S)
    u = np.where(mask, np.asarray(initial, dtype=float), 0.0)
    if steps < 0:
        raise ValueError(f"steps must be a natural number, got {steps}")
    if u.sum() <= 0:
        raise ChainError("the initial law puts no mass on the set")
    PT = P.T.tocsr()
    log_survival = np.empty(steps + 1)
    tv = np.empty(steps + 1) if nu is not None else None
    log_mass = math.log10(u.sum())
    for t in range(steps + 1):
        if t:
            u = np.where(mask, PT @ u, 0.0)
            mass = u.sum()
            log_mass = log_mass + math.log10(mass) if mass > 0 else -math.inf
        log_survival[t] = log_mass
        total = u.sum()
        if total > 0:
            u = u / total
        if tv is not None:
            tv[t] = 0.5 * np.abs(u - nu).sum() if total > 0 else math.nan
        if total == 0:
            log_survival[t:] = -math.inf
            if tv is not None:
                tv[t:] = math.nan
            break
    return {"log10_survival": log_survival, "tv": tv, "law": u}


# -- implied timescales -------------------------------------------------------------------------


def implied_timescale(modulus, decay_rate: float | None = None) -> float:
    """``-1 / ln |lambda|`` (module docstring): from ``decay_rate = 1 - lambda`` when known
    (subtraction-free), else from the modulus; ``inf`` at ``|lambda| = 1``, 0 at 0."""
    if decay_rate is not None:
        if not 0 <= decay_rate <= 1:
            raise ValueError(f"a decay rate is in [0, 1], got {decay_rate}")
        return math.inf if decay_rate == 0 else 0.0 if decay_rate == 1 else -1.0 / math.log1p(-decay_rate)
    m = abs(complex(modulus))
    if m > 1 + 1e-9:
        raise ValueError(f"an eigenvalue of a stochastic matrix has modulus at most 1, got {m}")
    if m >= 1.0 - UNIT:
        return math.inf
    if m == 0.0:
        return 0.0
    return -1.0 / (math.log1p(m - 1.0) if m >= 0.5 else math.log(m))  # m - 1 rounds to -1 for a tiny m


def implied_timescales(chain, count: int = 6) -> dict:
    """``t_i`` of the ``count`` eigenvalues of largest modulus of the whole chain (``whole``) and
    of each closed class's block (``classes``, one list per closed class in the order of
    :attr:`~ecology.exact.markov.MarkovChain.recurrent_classes`), by decreasing modulus."""
    mc = chain if isinstance(chain, MarkovChain) else MarkovChain(chain)
    whole = [implied_timescale(v) for v in mc.eigenvalues(count)]
    classes = []
    for c in mc.recurrent_classes:
        classes.append([implied_timescale(v) for v in MarkovChain(mc.P[c][:, c]).eigenvalues(count)])
    return {"whole": whole, "classes": classes}


# -- conductance -----------------------------------------------------------------------------


def _class_and_law(chain, members, pi):
    P = _matrix(chain)
    members = np.asarray(members, dtype=np.int64)
    block = P[members][:, members].tocsr()
    if not np.allclose(np.asarray(block.sum(axis=1)).ravel(), 1.0, atol=1e-9):
        raise ChainError("conductance is defined within a closed class: these states are left")
    if pi is None:
        pi = MarkovChain(block).stationary_distributions[0]
    pi = np.asarray(pi, dtype=float)
    if pi.shape != (len(members),) or (pi < 0).any() or not math.isclose(pi.sum(), 1.0, rel_tol=1e-9):
        raise ChainError(f"the stationary law must be a probability vector over the {len(members)} states of the class")
    return block, pi


def conductance(chain, members, A, pi=None) -> float:
    """``Phi(A) = sum_{i in A, j not in A} pi_i P[i, j] / pi(A)`` within the closed class
    ``members`` (index array), ``A`` a mask or index array *over the class's states*, ``pi`` the
    class's stationary law (computed when None). The flux is summed over the leaving entries."""
    block, pi = _class_and_law(chain, members, pi)
    a = _set_mask(len(pi), A, "the set of a conductance")
    if not a.any():
        raise ChainError("the conductance of an empty set is not defined")
    mass = float(pi[a].sum())
    if mass == 0:
        raise ChainError("the set has no stationary mass: its conductance is not defined")
    coo = block.tocoo()
    leaving = a[coo.row] & ~a[coo.col]
    return float((pi[coo.row[leaving]] * coo.data[leaving]).sum()) / mass


def class_conductance(chain, members, pi=None) -> dict:
    """``Phi*`` of the closed class ``members``: ``{"value", "set" (mask over the class of a
    minimising A, pi(A) <= 1/2), "exact" (True: enumeration; False: a sweep-cut upper bound),
    "method"}`` (module docstring). A one-state class has none (ChainError)."""
    block, pi = _class_and_law(chain, members, pi)
    n = len(pi)
    if n < 2:
        raise ChainError("a class of one state has no cut: its conductance is not defined")
    flow = block.multiply(pi[:, None]).tocsr()  # pi_i P[i, j]
    if n <= ENUMERATION_LIMIT:
        value, best = _enumerate_cuts(flow.toarray(), pi)
        return {"value": value, "set": best, "exact": True, "method": f"all {2 ** (n - 1) - 1:,} cuts enumerated"}
    value, best = _sweep_cut(flow, pi)
    return {"value": value, "set": best, "exact": False, "method": "sweep cut of the second eigenvector (an upper bound)"}


def _enumerate_cuts(F: np.ndarray, pi: np.ndarray) -> tuple[float, np.ndarray]:
    """``min_A flux(A) / min(pi(A), pi(A^c))`` over the subsets not holding the last state."""
    n = len(pi)
    off = F.copy()
    np.fill_diagonal(off, 0.0)
    best, best_set = math.inf, None
    width = n - 1
    chunk = 1 << min(width, 15)
    bits = 1 << np.arange(width)
    for start in range(1, 1 << width, chunk):
        codes = np.arange(start, min(start + chunk, 1 << width))
        B = np.zeros((len(codes), n))
        B[:, :width] = (codes[:, None] & bits) > 0
        flux = ((B @ off) * (1.0 - B)).sum(axis=1)  # 1 - B is exact (0 or 1)
        mass_in = B @ pi
        mass_out = (1.0 - B) @ pi
        ratio = flux / np.maximum(np.minimum(mass_in, mass_out), 1e-300)
        k = int(np.argmin(ratio))
        if ratio[k] < best:
            best = float(ratio[k])
            best_set = B[k].astype(bool) if mass_in[k] <= mass_out[k] else ~B[k].astype(bool)
    return best, best_set


def _positive(pi: np.ndarray) -> None:
    if not (pi > 0).all():
        raise ChainError("some stationary masses of the class are below the float range (about 1e-308): its "
                         "spectral quantities (sweep cut, reversibilised gap) are not computed")


def _sweep_cut(flow: sp.csr_matrix, pi: np.ndarray) -> tuple[float, np.ndarray]:
    """The best prefix cut of the states ordered by the second eigenvector (module docstring): the
    flux across the cut after the first ``k`` states is the sum of the symmetrised flux of the
    pairs that straddle it, summed term by term for every ``k`` (non-negative terms: a running sum
    of a difference array would cancel, and a cut of flux 1e-20 beside terms of order 1 would read
    0); ``n x transitions`` operations, within ``SWEEP_WORK``."""
    n = len(pi)
    _positive(pi)
    sym = ((flow + flow.T) / 2).tocsr()
    root = np.sqrt(pi)
    scale = sp.diags(1 / root)
    M = (scale @ sym @ scale).tocsr()
    try:
        values, vectors = spla.eigsh(M, k=2, which="LA", v0=np.random.default_rng(SEED).random(n))
    except spla.ArpackNoConvergence:
        raise ChainError(f"ARPACK did not converge on the second eigenvector of a class of {n:,} states") from None
    order = np.argsort(vectors[:, int(np.argmin(values))] / root, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    coo = sp.triu(sym, k=1).tocoo()
    if (n - 1) * coo.nnz > SWEEP_WORK:
        raise ChainError(f"the sweep cut of a class of {n:,} states and {coo.nnz:,} transitions is over its work budget "
                         f"({SWEEP_WORK:.0e} terms)")
    lo, hi = np.minimum(position[coo.row], position[coo.col]), np.maximum(position[coo.row], position[coo.col])
    flux = np.empty(n - 1)  # flux across the cut after the first k states, k = 1 .. n-1
    rows_per_chunk = max(1, int(4e6 // max(coo.nnz, 1)))
    for start in range(1, n, rows_per_chunk):
        cuts = np.arange(start, min(start + rows_per_chunk, n))
        straddles = (lo[None, :] < cuts[:, None]) & (cuts[:, None] <= hi[None, :])
        flux[cuts - 1] = straddles @ coo.data
    prefix = np.cumsum(pi[order])[:-1]
    suffix = np.cumsum(pi[order][::-1])[::-1][1:]
    ratio = flux / np.minimum(prefix, suffix)
    k = int(np.argmin(ratio))
    best = np.zeros(n, dtype=bool)
    best[order[: k + 1]] = True
    return float(ratio[k]), best if prefix[k] <= suffix[k] else ~best


def _top_two_symmetric(M: sp.csr_matrix) -> np.ndarray:
    """The two largest eigenvalues of a symmetric ``M``, largest first: LAPACK's dense ``eigvalsh``
    up to ``ARPACK_EIGEN_MIN`` states; above, Lanczos (ARPACK's ``eigsh``, largest algebraic) from
    two seeded random starts, each Ritz pair checked (``||M v - theta v|| <= EIGEN_RESIDUAL`` for a
    unit ``v``: for a symmetric ``M`` some eigenvalue lies within that of ``theta``) and the two runs'
    values agreeing within ``EIGEN_AGREEMENT`` (two Krylov spaces would have to miss the same
    eigenvalue); else the dense ``eigvalsh``."""
    n = M.shape[0]
    if n <= markov.ARPACK_EIGEN_MIN:
        return np.sort(np.linalg.eigvalsh(M.toarray()))[::-1][:2]
    rng = np.random.default_rng(SEED)
    runs = []
    for _ in range(2):
        try:
            values, vectors = spla.eigsh(M, k=3, which="LA", v0=rng.random(n) - 0.5, tol=1e-14,
                                         ncv=min(n - 1, 40), maxiter=max(1000, n))
        except spla.ArpackNoConvergence:
            break
        residuals = np.linalg.norm(M @ vectors - vectors * values, axis=0)
        if not np.all(residuals <= markov.EIGEN_RESIDUAL):
            break
        runs.append(np.sort(values)[::-1][:2])
    if len(runs) == 2 and np.max(np.abs(runs[0] - runs[1])) <= markov.EIGEN_AGREEMENT:
        return runs[0]
    return np.sort(np.linalg.eigvalsh(M.toarray()))[::-1][:2]


def cheeger_bounds(chain, members, pi=None) -> dict:
    """``{"conductance", "exact", "lambda_2", "lower" (Phi^2 / 2), "upper" (2 Phi), "reversible"}``
    for the closed class ``members``: ``lambda_2`` is the second largest eigenvalue of the additive
    reversibilisation ``(P + P*) / 2`` (equal to ``P``'s when ``P`` is reversible), and
    ``lower <= 1 - lambda_2 <= upper`` holds (with an exact ``Phi*``; with a sweep-cut upper
    bound only ``1 - lambda_2 <= upper`` is guaranteed). ``gap`` is None when ``1 - lambda_2`` is
    within ``UNIT`` of 0, below what the dense eigenvalues resolve."""
    block, pi = _class_and_law(chain, members, pi)
    _positive(pi)
    phi = class_conductance(chain, members, pi)
    flux = sp.csr_matrix(block.multiply(pi[:, None]))
    flow = flux.toarray()
    reversible = bool(np.allclose(flow, flow.T, rtol=1e-10, atol=1e-300))
    scale = sp.diags(1 / np.sqrt(pi))
    lam2 = float(_top_two_symmetric((scale @ ((flux + flux.T) / 2) @ scale).tocsr())[1])
    gap = 1 - lam2 if 1 - lam2 > UNIT else None  # eigvalsh resolves lambda_2 to about n u, not a gap of 1e-13
    return {"conductance": phi["value"], "exact": phi["exact"], "lambda_2": lam2, "gap": gap,
            "lower": phi["value"] ** 2 / 2, "upper": 2 * phi["value"], "reversible": reversible}
