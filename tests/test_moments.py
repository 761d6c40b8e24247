"""ecology.exact.moments against closed forms, dense linear algebra, brute force, mpmath, simulation
and PyDTMC's own fixtures; and the report's standard deviations and entropy rates."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.exact import moments as mo
from ecology.exact.markov import ChainError, MarkovChain, OutOfRange
from tests.test_markov import low_temperature_chain

PYDTMC = json.loads((Path(__file__).resolve().parent / "fixtures" / "pydtmc_moments.json").read_text())


def random_chain(n, rng, density=0.5):
    """A random irreducible chain: a random pattern plus a cycle through every state."""
    W = rng.random((n, n)) * (rng.random((n, n)) < density)
    W[np.arange(n), (np.arange(n) + 1) % n] += rng.uniform(0.1, 1.0, n)
    return W / W.sum(axis=1, keepdims=True)


def gamblers_ruin(N, p):
    P = np.zeros((N + 1, N + 1))
    P[0, 0] = P[N, N] = 1.0
    for i in range(1, N):
        P[i, i + 1], P[i, i - 1] = p, 1 - p
    return P


# -- hitting-time moments --------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.3, 1e-3, 0.97])
def test_geometric_hitting_time_of_a_two_state_chain(p):
    m = mo.hitting_time_moments(MarkovChain([[1 - p, p], [0.0, 1.0]]), [1], 4)
    assert np.isclose(m.mean()[0], 1 / p, rtol=1e-14)
    assert np.isclose(m.variance()[0], (1 - p) / p**2, rtol=1e-13)
    assert np.isclose(m.sd()[0], math.sqrt(1 - p) / p, rtol=1e-13) and np.isclose(m.cv()[0], math.sqrt(1 - p), rtol=1e-13)
    # raw moments of the geometric law on {1, 2, ...}: E[T^2] = (2 - p) / p^2, E[T^3] = (6 - 6p + p^2) / p^3
    assert np.isclose(m.raw(2)[0], (2 - p) / p**2, rtol=1e-13)
    assert np.isclose(m.raw(3)[0], (6 - 6 * p + p**2) / p**3, rtol=1e-13)
    assert m.mean()[1] == m.variance()[1] == m.sd()[1] == 0.0 and m.cv()[1] == 0.0


def test_gamblers_ruin_duration_variance_closed_form():
    """Symmetric ruin on 0..N: Var_k(T) = k (N - k) (k^2 + (N - k)^2 - 2) / 3 (Feller XIV.3)."""
    N = 40
    m = mo.hitting_time_moments(MarkovChain(gamblers_ruin(N, 0.5)), [0, N], 3)
    k = np.arange(N + 1)
    assert np.allclose(m.mean(), k * (N - k), rtol=1e-12)
    assert np.allclose(m.variance(), k * (N - k) * (k**2 + (N - k) ** 2 - 2) / 3, rtol=1e-11)
    assert m.variance_error().max() < 1e-10


@pytest.mark.parametrize("seed", range(5))
def test_moments_against_dense_powers_of_the_fundamental_matrix(seed):
    """phi_1 = N 1, phi_m = m N Q phi_{m-1} (numpy's inverse), Var = phi_2 + h - h^2, and the
    martingale form N sigma2 built independently."""
    rng = np.random.default_rng(seed)
    n = 12
    P = random_chain(n, rng)
    target = np.zeros(n, dtype=bool)
    target[:2] = True
    m = mo.hitting_time_moments(MarkovChain(P), target, 4)
    Q = P[2:, 2:]
    N = np.linalg.inv(np.eye(n - 2) - Q)
    phi = [np.ones(n - 2), N @ np.ones(n - 2)]
    for order in range(2, 5):
        phi.append(order * N @ Q @ phi[-1])
    h = phi[1]
    for order in range(1, 5):
        assert np.allclose(10.0 ** m.log10_factorial(order)[2:], phi[order], rtol=1e-11)
    assert np.allclose(m.raw(3)[2:], phi[3] + 3 * phi[2] + phi[1], rtol=1e-11)  # S(3, k) = 1, 3, 1
    assert np.allclose(m.variance()[2:], phi[2] + h - h * h, rtol=1e-10)
    full_h = np.concatenate([[0.0, 0.0], h])
    sigma2 = (P[2:] * (full_h[None, :] - full_h[2:, None] + 1.0) ** 2).sum(axis=1)
    assert np.allclose(m.variance()[2:], N @ sigma2, rtol=1e-10)


def test_moments_against_the_hitting_curve():
    """sum_t t^m P(T = t) from the propagated hitting curve (brute force), m = 1 .. 4."""
    rng = np.random.default_rng(7)
    mc = MarkovChain(random_chain(8, rng))
    curve = mc.hitting_curve(3, [0], 4000)
    assert 1 - curve[-1] < 1e-15
    law = np.diff(curve)
    t = np.arange(1, len(curve))
    m = mo.hitting_time_moments(mc, [0], 4)
    for order in range(1, 5):
        assert np.isclose(m.raw(order)[3], (t.astype(float) ** order * law).sum(), rtol=1e-10)


def test_variance_at_low_temperature_against_mpmath():
    """Times of 8e43: both forms of the variance against 80-digit mpmath; the returned error bound
    covers the error actually made."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 80
    n = 12
    P = low_temperature_chain(n, 0.01, np.random.default_rng(11))
    m = mo.hitting_time_moments(MarkovChain(P), [0], 3)
    assert m.mean().max() > 1e43
    Q = mpmath.matrix([[mpmath.mpf(P[i, j]) for j in range(1, n)] for i in range(1, n)])
    A = -Q
    for i in range(n - 1):
        A[i, i] = mpmath.fsum(mpmath.mpf(P[i + 1, j]) for j in range(n) if j != i + 1)
    h = mpmath.lu_solve(A, mpmath.matrix([1] * (n - 1)))
    phi2 = mpmath.lu_solve(A, 2 * (Q * h))
    phi3 = mpmath.lu_solve(A, 3 * (Q * phi2))
    for i in range(n - 1):
        exact = phi2[i] + h[i] - h[i] ** 2
        error = abs(m.variance()[i + 1] / float(exact) - 1)
        assert error < 1e-13 and error <= m.variance_error()[i + 1]
        assert abs(m.log10_factorial(3)[i + 1] - float(mpmath.log10(phi3[i]))) < 1e-13


def test_nearly_deterministic_time_keeps_its_variance():
    """A drift down a path with hesitation eps = 1e-12: Var = n eps / (1 - eps)^2, which
    ``E[T^2] - h^2`` would lose entirely (h^2 = 1e4 against Var = 1e-10); the martingale form keeps it."""
    n, eps = 100, 1e-12
    P = np.zeros((n + 1, n + 1))
    P[0, 0] = 1.0
    for i in range(1, n + 1):
        P[i, i - 1], P[i, i] = 1 - eps, eps
    m = mo.hitting_time_moments(MarkovChain(P), [0], 2)
    assert np.isclose(m.variance()[n], n * eps / (1 - eps) ** 2, rtol=1e-12)  # the moment form is 2% off here
    assert m.variance_error()[n] < 1e-9


def test_simulated_hitting_times_fall_in_the_intervals():
    rng = np.random.default_rng(3)
    P = random_chain(6, rng)
    m = mo.hitting_time_moments(MarkovChain(P), [0], 4)
    cumulative = P.cumsum(axis=1)
    runs = 20_000
    state = np.full(runs, 5)
    times = np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    while alive.any():
        u = rng.random(alive.sum())
        state[alive] = (u[:, None] > cumulative[state[alive]]).sum(axis=1)
        times[alive] += 1
        alive &= state != 0
    mean, var = m.mean()[5], m.variance()[5]
    raw = [m.raw(k)[5] for k in range(1, 5)]
    mu4 = raw[3] - 4 * raw[2] * raw[0] + 6 * raw[1] * raw[0] ** 2 - 3 * raw[0] ** 4
    assert abs(times.mean() - mean) < 4 * math.sqrt(var / runs)
    assert abs(times.var(ddof=1) - var) < 4 * math.sqrt((mu4 - var**2) / runs)


@pytest.mark.parametrize("seed", range(3))
def test_variance_by_series_brackets_the_solver(seed):
    mc = MarkovChain(random_chain(10, np.random.default_rng(seed)))
    exact = mo.hitting_time_moments(mc, [0], 2).variance()[5]
    lo, hi = mo.hitting_time_variance_by_series(mc, 5, [0], 100_000)
    assert lo <= exact <= hi and hi - lo <= 1e-10 * lo
    assert mo.hitting_time_variance_by_series(mc, 0, [0], 10) == (0.0, 0.0)
    assert mo.hitting_time_variance_by_series(mc, 5, [0], 3) is None  # the budget does not close it
    # a deterministic time of 4 steps: the sums are exact, the interval is [0, rounding]
    P = np.eye(5, k=-1)
    P[0, 0] = 1.0
    lo, hi = mo.hitting_time_variance_by_series(MarkovChain(P), 4, [0], 100)
    assert lo == 0.0 and hi < 1e-13
    # the target may be missed
    P = np.array([[0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert mo.hitting_time_variance_by_series(MarkovChain(P), 0, [2], 100) == (math.inf, math.inf)


def test_report_sd_from_the_series_when_the_mean_is():
    """The report's path for chains beyond the linear solvers: the mean with series bounds gets an
    sd with series bounds (here on a small chain, against the solver's)."""
    from ecology.exact.report import hitting_time_sd

    mc = MarkovChain(random_chain(10, np.random.default_rng(1)))
    A = np.arange(10) == 0
    time = {"value": 1.0, "bounds": [1.0, 1.0], "overflow": None, "log10": None, "note": None}
    out = hitting_time_sd(mc, 5, A, time, 10**9)
    lo, hi = out["hitting_time_sd_bounds"]
    assert lo <= mo.hitting_time_moments(mc, A, 2).sd()[5] <= hi and np.isclose(out["hitting_time_sd"], (lo + hi) / 2)
    out = hitting_time_sd(mc, 5, A, time, 10)
    assert out["hitting_time_sd"] is None and "did not close within the work budget (--max-work)" in out["hitting_time_sd_note"]
    # a deterministic time by the series: [0, rounding] defends no digit, so "at most"
    P = np.eye(5, k=-1)
    P[0, 0] = 1.0
    out = hitting_time_sd(MarkovChain(P), 4, np.arange(5) == 0, time, 10**9)
    assert out["hitting_time_sd"] is None and out["hitting_time_sd_note"].startswith("at most ")


def test_missed_targets_and_overflow_are_reported_not_nan():
    # from 0 the target 2 is missed with probability 1/2: every moment infinite, no NaN
    P = np.array([[0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    m = mo.hitting_time_moments(MarkovChain(P), [2], 3)
    assert np.isinf(m.mean()[0]) and np.isinf(m.variance()[0]) and np.isinf(m.sd()[0]) and np.isinf(m.raw(3)[0])
    assert not m.overflow(2).any() and not np.isnan(m.cv()).any()
    # mean 1e200 is a double, the variance 1e400 is not: known by its log10
    p = 1e-200
    m = mo.hitting_time_moments(MarkovChain([[1 - p, p], [0.0, 1.0]]), [1], 2)
    assert np.isclose(m.mean()[0], 1e200, rtol=1e-14) and np.isclose(m.sd()[0], 1e200, rtol=1e-14)
    assert np.isinf(m.variance()[0]) and m.overflow(2)[0] and not m.overflow(2)[1]
    assert np.isclose(m.log10_raw(2)[0], 400 + math.log10(2), rtol=1e-14)
    assert np.isclose(m.log10_sd()[0], 200, rtol=1e-14)
    # a mean of 1e320, beyond a double: refused (its log10 is MarkovChain.log10_expected_hitting_time's)
    P = np.array([[1.0, 1e-160, 0], [1.0, 0, 1e-160], [0, 0, 1.0]])
    with pytest.raises(OutOfRange, match="beyond the range of a double"):
        mo.hitting_time_moments(MarkovChain(P), [2], 2)


def test_bad_arguments_are_one_clear_error():
    mc = MarkovChain([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="order must be an integer from 2 to 20"):
        mo.hitting_time_moments(mc, [1], 1)
    with pytest.raises(ValueError, match="moment order 3 is not computed"):
        mo.hitting_time_moments(mc, [1], 2).raw(3)
    with pytest.raises(ValueError, match="a state must be an integer from 0 to 1"):
        mo.mean_return_time(mc, 2)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        mo.first_return_distribution(mc, 0, 0)
    with pytest.raises(ChainError, match="a state mask must have shape"):
        mo.hitting_time_moments(mc, np.array([True]), 2)


def test_stirling_numbers():
    assert mo.stirling2(4) == [0, 1, 7, 6, 1]
    assert sum(mo.stirling2(6)) == 203  # the Bell number B_6


# -- first returns ---------------------------------------------------------------------------


def test_random_walk_on_a_cycle_returns_in_n_steps():
    n = 7
    P = np.zeros((n, n))
    for i in range(n):
        P[i, (i + 1) % n] = P[i, (i - 1) % n] = 0.5
    mc = MarkovChain(P)
    r = mo.return_time_moments(mc, 0, 2)
    assert np.isclose(mo.mean_return_time(mc, 0), n, rtol=1e-14) and np.isclose(r.mean()[n], n, rtol=1e-14)
    # tau^+ = 1 + the ruin time from 1 on 0..n: Var = (n - 1)(1 + (n - 1)^2 - 2) / 3
    assert np.isclose(r.variance()[n], (n - 1) * (1 + (n - 1) ** 2 - 2) / 3, rtol=1e-12)
    assert mo.return_probability(mc, 0) == 1.0
    f = mo.first_return_distribution(mc, 0, 3000)
    t = np.arange(1, 3001)
    assert np.isclose(f.sum(), 1.0, atol=1e-14) and np.isclose((t * f).sum(), n, rtol=1e-12)
    assert np.isclose((t * t * f).sum() - n**2, r.variance()[n], rtol=1e-10)
    assert f[0] == 0 and f[1] == 0.5  # back and forth


@pytest.mark.parametrize("seed", range(4))
def test_mean_return_time_is_kac(seed):
    mc = MarkovChain(random_chain(9, np.random.default_rng(seed)))
    pi = mc.stationary_distributions[0]
    for i in range(9):
        assert np.isclose(mo.mean_return_time(mc, i), 1 / pi[i], rtol=1e-12)
        assert np.isclose(mo.return_time_moments(mc, i).mean()[9], 1 / pi[i], rtol=1e-12)


def test_kac_at_low_temperature():
    """Return times up to 1e43 (pi_0 = 9e-44): 1 + sum_j P_0j h_j and the copy's mean both equal
    1 / pi_i from GTH to 1e-14."""
    mc = MarkovChain(low_temperature_chain(12, 0.01, np.random.default_rng(11)))
    pi = mc.stationary_distributions[0]
    assert pi[0] < 1e-43
    for i in range(12):
        assert abs(mo.mean_return_time(mc, i) * pi[i] - 1) < 1e-14
        assert abs(mo.return_time_moments(mc, i).mean()[12] * pi[i] - 1) < 1e-14


def test_transient_state_returns_with_probability_below_one():
    P = np.array([[0.2, 0.5, 0.3], [0.4, 0.6, 0.0], [0.0, 0.0, 1.0]])
    mc = MarkovChain(P)
    # P_0(return) = 0.2 + 0.5 P_1(hit 0) = 0.2 + 0.5 = 0.7 (from 1, 0 is entered surely)
    assert np.isclose(mo.return_probability(mc, 0), 0.7, rtol=1e-14)
    assert np.isclose(mo.first_return_distribution(mc, 0, 2000).sum(), 0.7, rtol=1e-12)
    assert math.isinf(mo.mean_return_time(mc, 0)) and np.isinf(mo.return_time_moments(mc, 0).variance()[3])
    assert mo.return_probability(mc, 2) == 1.0 and mo.mean_return_time(mc, 2) == 1.0


@pytest.mark.parametrize("case", PYDTMC["mean_recurrence_times"], ids=lambda c: c["id"])
def test_pydtmc_mean_recurrence_times(case):
    mc = MarkovChain(case["p"])
    for i, value in enumerate(case["mean_recurrence_times"]):
        assert np.isclose(mo.mean_return_time(mc, i), value, rtol=1e-7)


@pytest.mark.parametrize("case", PYDTMC["first_return"], ids=lambda c: f"{c['id']}-{c['initial_state']}")
def test_pydtmc_first_passage_probabilities_are_first_returns(case):
    f = mo.first_return_distribution(MarkovChain(case["p"]), case["initial_state"], len(case["value"]))
    assert np.allclose(f, case["value"], rtol=1e-7, atol=1e-12)


# -- expected visits -------------------------------------------------------------------------


@pytest.mark.parametrize("case", PYDTMC["mean_number_visits"], ids=lambda c: c["id"])
def test_pydtmc_mean_number_visits(case):
    """PyDTMC counts the visits at t >= 1, so its matrix is ours (t >= 0, no target) less the identity."""
    mc = MarkovChain(case["p"])
    expected = np.array([[math.inf if v == "Infinity" else v for v in row] for row in case["mean_number_visits"]])
    for i in range(mc.n_states):
        ours = mo.expected_visits(mc, i, []) - (np.arange(mc.n_states) == i)
        assert np.array_equal(np.isinf(ours), np.isinf(expected[i]))
        assert np.allclose(ours[~np.isinf(ours)], expected[i][~np.isinf(ours)], rtol=1e-7, atol=5e-8)  # 7 decimals there


@pytest.mark.parametrize("case", PYDTMC["fundamental_matrix"], ids=lambda c: c["id"])
def test_pydtmc_fundamental_matrix_rows_are_visits_before_absorption(case):
    mc = MarkovChain(case["p"])
    t = mc.transient_states
    recurrent = np.setdiff1d(np.arange(mc.n_states), t)
    for row, i in zip(case["fundamental_matrix"], t):
        assert np.allclose(mo.expected_visits(mc, int(i), recurrent)[t], row, rtol=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_visits_before_a_target_against_dense_inverse_and_horizon_sums(seed):
    rng = np.random.default_rng(seed)
    n = 10
    P = random_chain(n, rng)
    mc = MarkovChain(P)
    N = np.linalg.inv(np.eye(n - 1) - P[1:, 1:])
    visits = mo.expected_visits(mc, 4, [0])
    assert visits[0] == 0 and np.allclose(visits[1:], N[3], rtol=1e-12)
    # within a horizon: sum_t e_s K^t by dense powers, and the limit for a long horizon
    K = P.copy()
    K[:, 0] = 0.0
    power, total = np.eye(n)[4], np.eye(n)[4].copy()
    for _ in range(25):
        power = power @ K
        total += power
    assert np.allclose(mo.expected_visits_within(mc, 4, 25, [0]), total, rtol=1e-12)
    assert np.allclose(mo.expected_visits_within(mc, 4, 20_000, [0]), visits, rtol=1e-10)
    assert np.isclose(mo.expected_visits_within(mc, 4, 25).sum(), 26.0, rtol=1e-14)  # no target: H + 1 steps


def test_visits_are_infinite_in_a_closed_class_the_target_misses():
    P = np.array([[0.5, 0.25, 0.25, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])
    v = mo.expected_visits(MarkovChain(P), 0, [1])
    assert v[0] == 2.0 and v[1] == 0.0 and np.isinf(v[2:]).all()


# -- group inverse ---------------------------------------------------------------------------


def test_group_inverse_of_a_two_state_chain():
    """A# = [[a, -a], [-b, b]] / (a + b)^2 for P = [[1 - a, a], [b, 1 - b]]."""
    a, b = 0.3, 0.05
    G = mo.group_inverse(MarkovChain([[1 - a, a], [b, 1 - b]]))
    assert np.allclose(G, np.array([[a, -a], [-b, b]]) / (a + b) ** 2, rtol=1e-13)


@pytest.mark.parametrize("seed", range(4))
def test_group_inverse_is_kemeny_snell_and_gives_the_passage_times(seed):
    mc = MarkovChain(random_chain(15, np.random.default_rng(seed)))
    pi = mc.stationary_distributions[0]
    Z = np.linalg.inv(np.eye(15) - mc.P.toarray() + np.outer(np.ones(15), pi))
    G = mo.group_inverse(mc)
    assert np.allclose(G, Z - np.outer(np.ones(15), pi), atol=1e-12)
    assert np.allclose(mo.mean_first_passage_from_group_inverse(mc, G), mc.mean_first_passage_times(), rtol=1e-12)


@pytest.mark.parametrize("case", PYDTMC["mean_first_passage_times"], ids=lambda c: c["id"])
def test_pydtmc_mean_first_passage_times_from_the_group_inverse(case):
    M = mo.mean_first_passage_from_group_inverse(MarkovChain(case["p"]))
    assert np.allclose(M, case["value"], rtol=1e-7, atol=5e-8)  # 8 decimals there


@pytest.mark.parametrize("case", ["irreducible", "periodic", "reducible"])
def test_group_inverse_equations(case):
    """A A# A = A, A# A A# = A#, A A# = A# A (the three that define it) on any chain."""
    rng = np.random.default_rng(5)
    if case == "irreducible":
        P = random_chain(10, rng)
    elif case == "periodic":
        P = np.roll(np.eye(6), 1, axis=1)
    else:
        P = sp.block_diag([sp.csr_matrix(random_chain(4, rng)), random_chain(3, rng)]).toarray()
        P = np.vstack([P, rng.dirichlet(np.ones(7))])
        P = np.hstack([P, np.zeros((8, 1))])
    G = mo.group_inverse(MarkovChain(P))
    A = np.eye(len(P)) - P
    assert np.allclose(A @ G @ A, A, atol=1e-12)
    assert np.allclose(G @ A @ G, G, atol=1e-12)
    assert np.allclose(A @ G, G @ A, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_condition_number_bounds_random_perturbations(seed):
    rng = np.random.default_rng(seed)
    P = random_chain(8, rng)
    mc = MarkovChain(P)
    kappa = mo.condition_number(mc)
    pi = mc.stationary_distributions[0]
    for scale in (1e-2, 1e-4):
        for _ in range(10):
            Pt = np.abs(P + scale * rng.standard_normal(P.shape) * (P > 0))
            Pt /= Pt.sum(axis=1, keepdims=True)
            E = Pt - P
            change = np.abs(MarkovChain(Pt).stationary_distributions[0] - pi).max()
            assert change <= kappa * np.abs(E).sum(axis=1).max() * (1 + 1e-9)


def test_group_inverse_refusals():
    reducible = MarkovChain([[1.0, 0.0], [0.5, 0.5]])
    with pytest.raises(ChainError, match="needs an irreducible chain"):
        mo.condition_number(reducible)
    with pytest.raises(ChainError, match="needs an irreducible chain"):
        mo.mean_first_passage_from_group_inverse(reducible)


# -- entropy rates ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", PYDTMC["entropy_rate"], ids=lambda c: c["id"])
def test_pydtmc_entropy_rates(case):
    """PyDTMC gives one rate where there is one stationary law (chains 5, 10 and 20 are reducible
    with one closed class: ``MarkovChain.entropy_rate`` used to raise there), None otherwise."""
    mc = MarkovChain(case["p"])
    rates = mo.entropy_rates(mc)
    if case["entropy_rate"] is None:
        assert not rates.unique
        with pytest.raises(ChainError, match="one closed class"):
            mc.entropy_rate()
    else:
        assert rates.unique
        assert np.isclose(mc.entropy_rate(), case["entropy_rate"], rtol=1e-7, atol=1e-9)
        assert np.isclose(rates.rates[0], case["entropy_rate"], rtol=1e-7, atol=1e-9)


def test_entropy_rate_with_two_closed_classes_is_a_law():
    """From 0 the run ends in {1, 2} (a two-state chain, h = (b H(a) + a H(b)) / (a + b)) with
    probability 0.3, else in {3} (h = 0): the rate is that random variable, mean 0.3 h."""
    a, b = 0.2, 0.6

    def H(x):
        return -x * math.log(x) - (1 - x) * math.log(1 - x)

    P = np.array([[0.0, 0.3, 0.0, 0.7], [0.0, 1 - a, a, 0.0], [0.0, b, 1 - b, 0.0], [0.0, 0.0, 0.0, 1.0]])
    mc = MarkovChain(P)
    two_state = (b * H(a) + a * H(b)) / (a + b)
    rates = mo.entropy_rates(mc)
    assert np.allclose(rates.rates, [two_state, 0.0], rtol=1e-14) and rates.errors[0] < 1e-15
    start = mo.entropy_rate_from(mc, 0)
    assert np.isclose(start["mean"], 0.3 * two_state, rtol=1e-14) and not start["single"]
    assert mo.entropy_rate_from(mc, 1)["single"]


def test_entropy_rate_is_the_limit_of_the_path_surprisal():
    """-(1/t) log P(X_0 .. X_t) along one long simulated run (Shannon–McMillan–Breiman)."""
    rng = np.random.default_rng(2)
    P = random_chain(5, rng)
    cumulative = P.cumsum(axis=1)
    x, total, steps = 0, 0.0, 200_000
    for u in rng.random(steps):
        y = min(int((u > cumulative[x]).sum()), 4)
        total -= math.log(P[x, y])
        x = y
    assert abs(total / steps - MarkovChain(P).entropy_rate()) < 0.02


def test_row_entropies_keep_the_leading_entry_against_mpmath():
    """A row stored (1.0, 1e-110) has entropy -p log p - (1 - p) log(1 - p) with p = 1e-110 (250 digits)."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(4)
    rows = [[1.0, 1e-110], [0.5, 0.5], [1.0], *[rng.dirichlet(np.ones(4)) for _ in range(3)]]
    rows.append([1 - 3e-9, 1e-9, 2e-9])
    P = sp.lil_matrix((len(rows), 4))
    for i, row in enumerate(rows):
        P[i, : len(row)] = row
    ours = mo.row_entropies(P.tocsr())
    with mpmath.workdps(250):
        for i, row in enumerate(rows):
            x = [mpmath.mpf(float(v)) for v in row]
            x[int(np.argmax(row))] = 1 - mpmath.fsum(v for j, v in enumerate(x) if j != int(np.argmax(row)))
            exact = -mpmath.fsum(v * mpmath.log(v) for v in x if v > 0)
            assert abs(ours[i] - float(exact)) <= 1e-14 * float(exact) + 1e-300


def test_the_chains_entropy_rate_and_the_per_class_rates_agree_on_a_leading_entry_near_1():
    """``MarkovChain.entropy_rate`` sums the same row entropies as ``entropy_rates``: a row stored
    (1.0, 1e-110) keeps its ``-(1 - p) log(1 - p) ~ p`` term in both (one closed class)."""
    P = sp.csr_matrix(np.array([[1.0, 1e-110], [0.5, 0.5]]))
    mc = MarkovChain(P)
    assert mc.entropy_rate() == mo.entropy_rates(mc).rates[0]
    pi = mc.stationary_distributions[0]
    p = 1e-110
    closed_form = pi[0] * (-p * np.log(p) + p) + pi[1] * np.log(2)  # -(1 - p) log(1 - p) = p to first order
    assert mc.entropy_rate() == pytest.approx(closed_form, rel=1e-14)


# -- the report ------------------------------------------------------------------------------


def run_of_heads_variance(p, r):
    """Var of the waiting time for r heads in a row, P(H) = p: (1 - (2r + 1) q p^r - p^(2r+1)) / (q^2 p^(2r))."""
    q = 1 - p
    return (1 - (2 * r + 1) * q * p**r - p ** (2 * r + 1)) / (q**2 * p ** (2 * r))


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_report_sd_and_entropy_rate_of_the_coin_against_closed_forms(tmp_path, capsys, p):
    from ecology.cli import main
    from tests.test_numeric_edges import coin_table, strict_json, write

    path = write(tmp_path, coin_table(p, 3))
    assert main(["analyze", str(path), "--hit", "H H H", "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    sd = math.sqrt(run_of_heads_variance(p, 3))  # 142 at p = 1/2
    assert np.isclose(report["criteria"]["all_h"]["hitting_time_sd"], sd, rtol=1e-12)
    assert np.isclose(report["hit"]["hitting_time_sd"], sd, rtol=1e-12)
    entropy = -p * math.log(p) - (1 - p) * math.log(1 - p)  # every row is the coin
    assert np.isclose(report["closed_classes"][0]["entropy_rate"], entropy, rtol=1e-14)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"sd {sd:.6g}, P(ever) 1" in out and f"entropy rate {entropy:.6g} nats per step" in out


def test_report_sd_beyond_a_double_and_the_rate_of_a_1e_110_coin(tmp_path, capsys):
    from ecology.cli import main
    from tests.test_numeric_edges import coin_table, strict_json, write

    path = write(tmp_path, coin_table(1e-110, 3))
    assert main(["analyze", str(path), "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    c = report["criteria"]["all_h"]
    assert c["hitting_time_sd"] is None
    assert c["hitting_time_sd_note"] == "not computed: the expected hitting time is above 1.8e308"
    # -p log p - (1 - p) log(1 - p) at p = 1e-110, by mpmath at 250 digits (the naive sum gives 2.533e-108)
    assert np.isclose(report["closed_classes"][0]["entropy_rate"], 2.542843602293450382e-108, rtol=1e-13)


def test_report_sd_of_the_toy_against_the_module_and_simulation(capsys):
    """The toy at k = 4: the report's sd is the module's on the page-state chain, and 20,000
    simulated hitting times of that chain have a sample sd within 4 standard errors of it."""
    from ecology.cli import main
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain, target_mask
    from ecology.scenario import load

    assert main(["analyze", "scenarios/waluigi.toml", "--set", "context.length=4", "--hit", "U U U U", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    compiled = compile_scenario(load("scenarios/waluigi.toml", {"context.length": 4}))
    pc = build_chain(compiled, 10_000)
    _, A = target_mask(compiled, pc, "U U U U", 10_000, "--hit")
    m = mo.hitting_time_moments(pc.chain, A, 4)
    sd = report["hit"]["hitting_time_sd"]
    assert sd == m.sd()[pc.initial] and report["criteria"]["revealed"]["hitting_time_sd"] == sd
    assert report["closed_classes"][0]["entropy_rate"] == 0.0  # one absorbing page-state
    rng = np.random.default_rng(8)
    P = pc.chain.P.toarray()
    cumulative = P.cumsum(axis=1)
    runs = 20_000
    state, times, alive = np.full(runs, pc.initial), np.zeros(runs), np.ones(runs, dtype=bool)
    while alive.any():
        u = rng.random(alive.sum())
        state[alive] = np.minimum((u[:, None] > cumulative[state[alive]]).sum(axis=1), len(P) - 1)
        times[alive] += 1
        alive &= ~A[state]
    x = pc.initial
    raw = [m.raw(k)[x] for k in range(1, 5)]
    var = sd**2
    mu4 = raw[3] - 4 * raw[2] * raw[0] + 6 * raw[1] * raw[0] ** 2 - 3 * raw[0] ** 4
    assert abs(times.var(ddof=1) - var) < 4 * math.sqrt((mu4 - var**2) / runs)


def test_report_withholds_an_sd_its_bound_does_not_defend():
    """A deterministic time (3 steps down a path): the variance computed is 0, its bound is not, so
    the report says "at most" instead of printing 0 as if proven."""
    from ecology.exact.report import expected_entrance_time, hitting_time_sd

    P = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    mc = MarkovChain(P)
    A = np.array([True, False, False, False])
    out = hitting_time_sd(mc, 3, A, expected_entrance_time(mc, 3, A, 10**9), 10**9)
    assert out["hitting_time_sd"] is None and out["hitting_time_sd_note"].startswith("at most ")
    assert float(out["hitting_time_sd_note"].split()[2].rstrip(",")) < 1e-12


def test_the_entropy_rate_of_a_run_is_printed_as_a_law(capsys):
    from ecology.cli import print_entropy_rate_of_a_run

    classes = [{"probability": 0.25, "entropy_rate": 0.5}, {"probability": 0.75, "entropy_rate": 0.0},
               {"probability": 0.0, "entropy_rate": 2.0}]
    print_entropy_rate_of_a_run(classes)
    assert capsys.readouterr().out == ("entropy rate of a run from the initial window: that of the class it ends in "
                                       "(0, 0.5 nats per step), not one number; mean 0.125\n")
    print_entropy_rate_of_a_run([{"probability": 0.5, "entropy_rate": 0.0}, {"probability": 0.5, "entropy_rate": 0.0}])
    print_entropy_rate_of_a_run([{"probability": 0.5, "entropy_rate": 0.1}, {"probability": 0.5, "entropy_rate": None}])
    assert capsys.readouterr().out == ""  # one rate whatever the class; a rate not computed
