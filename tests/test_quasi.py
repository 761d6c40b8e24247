"""Quasi-stationary laws, implied timescales and conductance (ecology.exact.quasi) against closed
forms, dense linear algebra, mpmath at 60 digits, enumeration of cuts and simulation."""

import itertools
import math

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp

from ecology.exact.markov import ChainError, MarkovChain
from ecology.exact.quasi import (
    DENSE_QSD_LIMIT,
    cheeger_bounds,
    class_conductance,
    class_decay_rates,
    conditioned_laws,
    conductance,
    implied_timescale,
    implied_timescales,
    quasi_stationary,
    spectral_ratio,
)


def with_exit(Q, exits):
    """A chain on the states of ``Q`` plus one absorbing state, the exits given per state; the
    diagonal completes each row (what the solvers never read: they sum what leaves)."""
    n = len(Q)
    P = np.zeros((n + 1, n + 1))
    P[:n, :n] = Q
    P[:n, n] = exits
    P[n, n] = 1.0
    np.fill_diagonal(P[:n, :n], 0.0)
    P[np.arange(n), np.arange(n)] = 1.0 - P[:n].sum(axis=1)
    return P


def mp_qsd(P, S):
    """The QSD and decay rate in 60 digits: Q = P_SS with the diagonal completing each row of P
    (the chain the float solvers see), left Perron vector by mpmath's eig."""
    mpmath.mp.dps = 60
    S = list(S)
    n = len(S)
    Q = mpmath.matrix(n, n)
    exits = []
    for a, i in enumerate(S):
        out = mpmath.fsum(mpmath.mpf(P[i, j]) for j in range(len(P)) if j not in S)
        exits.append(out)
        for b, j in enumerate(S):
            if a != b:
                Q[a, b] = mpmath.mpf(P[i, j])
        Q[a, a] = 1 - out - mpmath.fsum(Q[a, b] for b in range(n) if b != a)
    values, vectors = mpmath.eig(Q.T)
    top = max(range(n), key=lambda k: mpmath.re(values[k]))
    nu = [abs(mpmath.re(vectors[a, top])) for a in range(n)]
    total = mpmath.fsum(nu)
    nu = [x / total for x in nu]
    decay = mpmath.fsum(x * e for x, e in zip(nu, exits))
    return np.array([float(x) for x in nu]), float(decay)


def test_two_state_transient_set_closed_form():
    a, b, c, d = 0.5, 0.3, 0.2, 0.6
    P = with_exit(np.array([[a, b], [c, d]]), [1 - a - b, 1 - c - d])
    law = quasi_stationary(P, [0, 1])
    lam = ((a + d) + math.sqrt((a - d) ** 2 + 4 * b * c)) / 2  # the Perron root of [[a, b], [c, d]]
    nu = np.array([c, lam - a]) / (c + lam - a)  # nu Q = lam nu
    assert np.allclose(law.nu[:2], nu, rtol=1e-14) and law.nu[2] == 0
    assert math.isclose(law.eigenvalue, lam, rel_tol=1e-14) and math.isclose(law.decay_rate, 1 - lam, rel_tol=1e-13)
    assert math.isclose(law.expected_exit_time, 1 / (1 - lam), rel_tol=1e-13) and law.trusted and not law.tie


@pytest.mark.parametrize("N, p", [(12, 0.5), (12, 0.8), (16, 0.95)])
def test_birth_death_killed_at_both_ends_closed_form(N, p):
    """Walk on 1..N, up p, down q = 1 - p, killed at 0 and N + 1: nu_j ~ (p/q)^(j/2) sin(j pi/(N+1)),
    lambda = 2 sqrt(pq) cos(pi/(N+1)); at p = 0.95 the components span 10 decades."""
    q = 1 - p
    n = N + 2
    P = np.zeros((n, n))
    P[0, 0] = P[-1, -1] = 1.0
    for i in range(1, N + 1):
        P[i, i + 1], P[i, i - 1] = p, q
    law = quasi_stationary(P, np.arange(1, N + 1), start=1)
    mpmath.mp.dps = 40
    theta = mpmath.pi / (N + 1)
    exact = [mpmath.sqrt(mpmath.mpf(p) / mpmath.mpf(q)) ** j * mpmath.sin(j * theta) for j in range(1, N + 1)]
    total = mpmath.fsum(exact)
    exact = np.array([float(x / total) for x in exact])
    decay = float(1 - 2 * mpmath.sqrt(mpmath.mpf(p) * mpmath.mpf(q)) * mpmath.cos(theta))
    assert np.max(np.abs(law.nu[1:-1] / exact - 1)) < 1e-11
    assert math.isclose(law.decay_rate, decay, rel_tol=1e-12)
    assert law.error < 1e-10
    assert spectral_ratio(P, np.arange(1, N + 1), law, start=1) == pytest.approx(1.0)  # bipartite: -lambda is an eigenvalue


def test_uniform_killing_gives_the_stationary_law_and_the_killing_rate():
    rng = np.random.default_rng(1)
    R = rng.random((6, 6)) * (rng.random((6, 6)) < 0.6) + np.eye(6, k=1) + np.eye(6, k=-5)
    R /= R.sum(axis=1, keepdims=True)
    kill = 1e-7
    P = with_exit((1 - kill) * R, np.full(6, kill))
    law = quasi_stationary(P, np.arange(6))
    pi = MarkovChain(R).stationary_distributions[0]
    assert np.allclose(law.nu[:6], pi, rtol=1e-12)
    assert math.isclose(law.decay_rate, kill, rel_tol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_against_dense_eigenvectors_of_random_chains(seed):
    rng = np.random.default_rng(seed)
    n = 9
    Q = rng.random((n, n)) * (rng.random((n, n)) < 0.5) + np.eye(n, k=1) + np.eye(n, k=1 - n)
    Q *= rng.uniform(0.7, 0.99, (n, 1)) / Q.sum(axis=1, keepdims=True)
    P = with_exit(Q, 1 - Q.sum(axis=1))
    law = quasi_stationary(P, np.arange(n))
    Qs = P[:n, :n]
    values, vectors = np.linalg.eig(Qs.T)
    top = int(np.argmax(values.real))
    nu = np.abs(vectors[:, top].real)
    nu /= nu.sum()
    assert np.allclose(law.nu[:n], nu, rtol=1e-11)
    assert math.isclose(law.eigenvalue, values[top].real, rel_tol=1e-13)
    assert math.isclose(law.decay_rate, 1 - values[top].real, rel_tol=1e-11)
    second = np.sort(np.abs(np.delete(values, top)))[-1]
    assert spectral_ratio(P, np.arange(n), law) == pytest.approx(second / values[top].real, rel=1e-10)


@pytest.mark.parametrize("eps", [1e-6, 1e-15, 1e-30])
def test_metastable_sets_against_mpmath(eps):
    """A well-connected set of 6 states left only through probabilities of eps from two of them:
    1 - lambda ~ eps, far below the double precision of lambda itself; every component and the
    decay rate to 1e-12 relative."""
    rng = np.random.default_rng(7)
    n = 6
    Q = rng.random((n, n)) * (rng.random((n, n)) < 0.7) + np.eye(n, k=1) + np.eye(n, k=1 - n)
    Q /= Q.sum(axis=1, keepdims=True)
    exits = np.zeros(n)
    exits[[1, 4]] = [eps, 3 * eps]
    P = with_exit(Q * (1 - exits[:, None]), exits)
    law = quasi_stationary(P, np.arange(n))
    nu, decay = mp_qsd(P, range(n))
    assert np.max(np.abs(law.nu[:n] / nu - 1)) < 1e-12
    assert math.isclose(law.decay_rate, decay, rel_tol=1e-12)
    assert law.trusted


def test_metastable_tiny_components_against_mpmath():
    """Components from 1 down to 2e-35 (a steep drift inside the set, the exit at the top): each to 1e-11 relative."""
    n = 8
    Q = np.zeros((n, n))
    for i in range(n - 1):
        Q[i, i + 1], Q[i + 1, i] = 1e-5, 0.9
    exits = np.zeros(n)
    exits[0] = 1e-20
    P = with_exit(Q, exits)
    law = quasi_stationary(P, np.arange(n))
    nu, decay = mp_qsd(P, range(n))
    assert nu[-1] < 1e-30
    assert np.max(np.abs(law.nu[:n] / nu - 1)) < 1e-11
    assert math.isclose(law.decay_rate, decay, rel_tol=1e-12)


def test_simulated_survivors_follow_the_qsd():
    rng = np.random.default_rng(11)
    n = 5
    Q = rng.random((n, n)) + np.eye(n)
    Q *= 0.97 / Q.sum(axis=1, keepdims=True)
    P = with_exit(Q, np.full(n, 0.03))
    P[:n, n] = 1 - P[:n, :n].sum(axis=1)
    law = quasi_stationary(P, np.arange(n))
    walkers = np.zeros(40_000, dtype=np.int64)  # all start in state 0
    cumulative = np.cumsum(P, axis=1)
    for _ in range(60):
        u = rng.random(len(walkers))
        walkers = (u[:, None] > cumulative[walkers]).sum(axis=1)
        walkers = walkers[walkers < n]
    counts = np.bincount(walkers, minlength=n) / len(walkers)
    tv = 0.5 * np.abs(counts - law.nu[:n]).sum()
    assert len(walkers) > 5000
    m, nu = len(walkers), law.nu[:n]
    typical = 0.5 * np.sum(np.sqrt(2 * nu * (1 - nu) / (math.pi * m)))  # E[TV] of m draws from nu, to first order
    assert tv < 4 * typical  # measured: TV 0.0086 over 6,377 survivors, typical 0.0099
    exact = conditioned_laws(P, np.arange(n), np.eye(n + 1)[0], 60, law.nu)
    assert exact["tv"][-1] < 1e-12 and exact["tv"][0] > 0.3


def test_reducible_set_takes_the_slowest_reachable_class():
    """Classes {0, 1} (leaking 0.1 per step into {2, 3}) and {2, 3} (leaking 0.01 out): from 0 the
    conditioned law goes to the QSD of {2, 3}; the law carried by {0, 1} alone decays faster."""
    P = np.zeros((5, 5))
    P[0, 1], P[0, 2], P[1, 0], P[1, 1] = 0.9, 0.1, 0.5, 0.5
    P[2, 3], P[2, 4], P[3, 2], P[3, 3] = 0.5, 0.01, 0.4, 0.6
    P[2, 2] = 1 - 0.51
    P[4, 4] = 1.0
    S = np.arange(4)
    law = quasi_stationary(P, S, start=0)
    assert sorted(law.class_states.tolist()) == [2, 3] and law.nu[:2].sum() == 0 and not law.tie
    rates = {tuple(c): r for c, r in class_decay_rates(P, S)}
    assert math.isclose(law.decay_rate, rates[(2, 3)], rel_tol=1e-14) and rates[(0, 1)] > law.decay_rate
    ratio = spectral_ratio(P, S, law, start=0)  # lambda of {0, 1} over that of {2, 3}: the upstream mode dies slowest
    assert ratio == pytest.approx((1 - rates[(0, 1)]) / law.eigenvalue, rel=1e-12)
    survivors = conditioned_laws(P, S, np.eye(5)[0], 1000, law.nu)
    assert survivors["tv"][-1] < 10 * ratio**1000 and survivors["tv"][500] > ratio**500 / 10


def test_downstream_states_get_the_mass_the_excursions_bring():
    """{0, 1} leaks slowly (1e-3) into 2, which leaks fast (0.5): the QSD from 0 lives on {0, 1, 2},
    nu_2 = nu_01 P_{01, 2} / (lambda - P_22), against numpy's eigenvector of the whole Q."""
    P = np.zeros((4, 4))
    P[0, 1], P[0, 0], P[1, 0], P[1, 2], P[1, 1] = 0.5, 0.5, 0.3, 1e-3, 0.7 - 1e-3
    P[2, 2], P[2, 3], P[3, 3] = 0.5, 0.5, 1.0
    law = quasi_stationary(P, [0, 1, 2], start=0)
    values, vectors = np.linalg.eig(P[:3, :3].T)
    nu = np.abs(vectors[:, int(np.argmax(values.real))].real)
    assert np.allclose(law.nu[:3], nu / nu.sum(), rtol=1e-12) and law.nu[2] > 0
    assert sorted(law.support.tolist()) == [0, 1, 2]


def test_tie_is_reported():
    P = np.zeros((5, 5))
    P[0, 0], P[0, 1], P[1, 1], P[1, 4] = 0.9, 0.1 * 0.5, 0.9, 0.1  # two one-state classes, both lambda = 0.9
    P[0, 4] = 0.05
    P[2, 2], P[2, 4], P[3, 3], P[3, 4] = 0.5, 0.5, 0.5, 0.5
    P[4, 4] = 1.0
    law = quasi_stationary(P, [0, 1], start=0)
    assert law.tie and law.class_states.tolist() == [1]  # the one downstream of the other


def test_survival_below_the_float_range_stays_finite():
    P = with_exit(np.array([[0.5, 0.0], [0.0, 0.5]]) + np.array([[0, 0.1], [0.1, 0]]), [0.4, 0.4])
    out = conditioned_laws(P, [0, 1], np.eye(3)[0], 2000)
    law = quasi_stationary(P, [0, 1])
    assert math.isclose(out["log10_survival"][-1], 2000 * math.log10(law.eigenvalue), rel_tol=1e-9)
    assert out["log10_survival"][-1] < -400 and np.isfinite(out["log10_survival"]).all()


def test_large_set_by_arnoldi_checked_against_the_closed_form():
    """A lazy symmetric walk on 1..N (N above the dense limit) killed at both ends: nu_j ~ sin(j pi / (N + 1))."""
    N = DENSE_QSD_LIMIT + 50
    n = N + 2
    P = sp.lil_matrix((n, n))
    P[0, 0] = P[n - 1, n - 1] = 1.0
    for i in range(1, N + 1):
        P[i, i], P[i, i - 1], P[i, i + 1] = 0.5, 0.25, 0.25
    law = quasi_stationary(P.tocsr(), np.arange(1, N + 1))
    exact = np.sin(np.arange(1, N + 1) * math.pi / (N + 1))
    exact /= exact.sum()
    assert law.method == "Arnoldi"
    assert np.abs(law.nu[1:-1] - exact).sum() < 1e-8
    assert math.isclose(law.decay_rate, math.sin(math.pi / (2 * (N + 1))) ** 2, rel_tol=1e-7)  # (1 - cos)/2


def test_a_closed_class_inside_the_set_has_decay_rate_zero():
    P = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.0, 0.7]])
    law = quasi_stationary(P, [0, 1, 2], start=2)
    assert law.decay_rate == 0.0 and math.isinf(law.expected_exit_time)
    assert np.allclose(law.nu, [2 / 7, 5 / 7, 0.0], rtol=1e-14)


def test_bad_arguments():
    P = with_exit(np.array([[0.5]]), [0.5])
    with pytest.raises(ChainError, match="empty"):
        quasi_stationary(P, np.zeros(2, dtype=bool))
    with pytest.raises(ChainError, match="start"):
        quasi_stationary(P, [0], start=1)
    with pytest.raises(ChainError, match="left in one step"):
        quasi_stationary(np.array([[0.0, 1.0], [0.0, 1.0]]), [0])
    with pytest.raises(ChainError, match="outside"):
        quasi_stationary(P, [5])
    with pytest.raises(ValueError, match="modulus"):
        implied_timescale(1.5)


def test_implied_timescales_closed_forms():
    p, q = 0.2, 0.1
    P = np.array([[1 - p, p], [q, 1 - q]])
    times = implied_timescales(P, 2)
    assert math.isinf(times["whole"][0]) and times["whole"][1] == pytest.approx(-1 / math.log(1 - p - q), rel=1e-13)
    assert implied_timescale(0.0) == 0.0 and implied_timescale(-1.0) == math.inf
    assert implied_timescale(1e-17) == pytest.approx(-1 / math.log(1e-17), rel=1e-15)  # 1e-17 - 1 rounds to -1
    assert implied_timescale(None, decay_rate=1e-30) == pytest.approx(1e30, rel=1e-15)  # 1 - 1e-30 is 1 in doubles
    cycle = np.roll(np.eye(4), 1, axis=1)  # period 4: every eigenvalue on the unit circle
    assert all(math.isinf(t) for t in implied_timescales(cycle, 4)["whole"])
    two = sp.block_diag([sp.csr_matrix(P), np.array([[0.5, 0.5], [0.5, 0.5]])]).tocsr()
    per_class = implied_timescales(two, 2)["classes"]  # [[.5, .5], [.5, .5]]: lambda_2 = 0 to rounding (1e-16: t = 0.027)
    assert per_class[1][1] < 0.03 and per_class[0][1] == pytest.approx(-1 / math.log(0.7))


def test_conductance_two_state_and_cycle_closed_forms():
    p, q = 0.3, 0.1
    P = np.array([[1 - p, p], [q, 1 - q]])
    assert class_conductance(P, [0, 1])["value"] == pytest.approx(max(p, q), rel=1e-14)
    bounds = cheeger_bounds(P, [0, 1])
    assert bounds["lower"] <= p + q <= bounds["upper"] and bounds["gap"] == pytest.approx(p + q)
    for n in (8, 40):  # lazy walk on a cycle: the best cut is a half arc, Phi* = 1/n
        C = 0.5 * np.eye(n) + 0.25 * np.roll(np.eye(n), 1, axis=1) + 0.25 * np.roll(np.eye(n), -1, axis=1)
        phi = class_conductance(sp.csr_matrix(C), np.arange(n))
        assert phi["value"] == pytest.approx(1 / n, rel=1e-12) and phi["exact"] == (n <= 20)
        assert phi["set"].sum() == n // 2
    assert conductance(C, np.arange(40), np.arange(10)) == pytest.approx(2 * 0.25 / 10)


def brute_force_conductance(P, pi):
    n = len(pi)
    best = math.inf
    for size in range(1, n):
        for A in itertools.combinations(range(n), size):
            a = np.zeros(n, dtype=bool)
            a[list(A)] = True
            if pi[a].sum() <= 0.5:
                best = min(best, (pi[a, None] * P[np.ix_(a, ~a)]).sum() / pi[a].sum())
    return best


@pytest.mark.parametrize("reversible", [True, False])
def test_conductance_enumeration_and_cheeger_on_random_chains(reversible):
    rng = np.random.default_rng(5 if reversible else 6)
    for _ in range(3):
        n = 7
        W = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
        W = W + W.T + np.eye(n, k=1) + np.eye(n, k=-1) if reversible else W + np.eye(n, k=1) + np.eye(n, k=1 - n)
        P = W / W.sum(axis=1, keepdims=True)
        pi = MarkovChain(P).stationary_distributions[0]
        exact = brute_force_conductance(P, pi)
        phi = class_conductance(P, np.arange(n))
        assert phi["value"] == pytest.approx(exact, rel=1e-12) and pi[phi["set"]].sum() <= 0.5
        assert conductance(P, np.arange(n), phi["set"]) == pytest.approx(exact, rel=1e-12)
        b = cheeger_bounds(P, np.arange(n))
        assert b["reversible"] == reversible
        assert b["lower"] <= b["gap"] <= b["upper"]
        if reversible:  # the reversibilisation is P itself
            assert b["lambda_2"] == pytest.approx(np.sort(np.linalg.eigvals(P).real)[-2], abs=1e-12)


def test_sweep_cut_is_an_upper_bound_on_a_birth_death_chain():
    """Two wells joined through probabilities of 1e-4: the sweep finds the cut at the barrier (Phi =
    flux there / 1/2), and Cheeger's lower bound holds for 1 - lambda_2."""
    n = 60
    up, down = np.full(n - 1, 0.3), np.full(n - 1, 0.3)
    up[29] = down[29] = 1e-4
    P = sp.diags([down, up], [-1, 1]).tolil()
    P.setdiag(1 - np.asarray(P.sum(axis=1)).ravel())
    P = P.tocsr()
    pi = MarkovChain(P).stationary_distributions[0]
    phi = class_conductance(P, np.arange(n))
    assert not phi["exact"] and phi["value"] == pytest.approx(pi[29] * 1e-4 / 0.5, rel=1e-9)
    lam2 = np.sort(np.linalg.eigvals(P.toarray()).real)[-2]
    assert phi["value"] ** 2 / 2 <= 1 - lam2 <= 2 * phi["value"]


def test_sweep_cut_value_is_the_conductance_of_its_cut_when_masses_span_many_decades():
    """A walk drifting to one end (masses from 1 down to about 1e-57): every prefix cut's flux is
    a sum of non-negative terms, so the value returned is the conductance of the set returned, to
    rounding (a running sum of a difference array read the tiny cuts' flux as 0: on
    scenarios/pydoc_loops.toml at T = 0.1 the class conductance printed 0 beside a gap of 0.1376),
    and it bounds the gap: 1 - lambda_2 <= 2 Phi."""
    n = 40
    up, down = np.full(n - 1, 0.02), np.full(n - 1, 0.6)
    P = sp.diags([down, up], [-1, 1]).tolil()
    P.setdiag(1 - np.asarray(P.sum(axis=1)).ravel())
    P = P.tocsr()
    pi = MarkovChain(P).stationary_distributions[0]
    assert pi.min() < 1e-50
    phi = class_conductance(P, np.arange(n))
    assert not phi["exact"] and phi["value"] > 0
    assert phi["value"] == pytest.approx(conductance(P, np.arange(n), phi["set"], pi), rel=1e-12)
    bounds = cheeger_bounds(P, np.arange(n), pi)
    assert bounds["gap"] <= bounds["upper"]


def test_conductance_bad_arguments():
    P = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    with pytest.raises(ChainError, match="closed class"):
        conductance(P, [1, 2], [0])
    with pytest.raises(ChainError, match="empty"):
        conductance(P, [0, 1], np.zeros(2, dtype=bool))
    with pytest.raises(ChainError, match="one state"):
        class_conductance(np.eye(1), [0])


SCENARIOS = __import__("pathlib").Path(__file__).resolve().parent.parent / "scenarios"


def test_analyze_reports_the_luigi_phase_of_the_toy():
    """``--quasi-stationary revealed`` on the toy at k = 8: the QSD of the not-yet-revealed
    page-states against numpy's eigenvector of the whole P_SS (44 states), and the exit time from
    the initial window equal to the criterion's hitting time."""
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.exact.report import analyze
    from ecology.scenario import load

    compiled = compile_scenario(load(SCENARIOS / "waluigi.toml"))
    pc = build_chain(compiled, 10_000)
    report = analyze(compiled, chain=pc, quasi_stationary="revealed")
    q = report.quasi_stationary
    labels = pc.labels()
    S = np.array([label != "U U U U U U U U" for label in labels])
    Q = pc.chain.P[S][:, S].toarray()
    values, vectors = np.linalg.eig(Q.T)
    top = int(np.argmax(values.real))
    nu = np.abs(vectors[:, top].real)
    nu /= nu.sum()
    states = np.array(labels)[S]
    by_label = {s["state"]: s["mass"] for s in q["top"]}
    for label, mass in by_label.items():
        assert mass == pytest.approx(nu[states == label][0], rel=1e-9)
    assert q["decay_rate"] == pytest.approx(1 - values[top].real, rel=1e-9) and q["trusted"] and q["size"] == S.sum()
    assert q["from_initial"]["expected_exit_time"] == pytest.approx(report.criteria["revealed"]["expected_hitting_time"],
                                                                    rel=1e-12)
    assert q["from_initial"]["ratio_to_qsd"] == pytest.approx(q["from_initial"]["expected_exit_time"] * q["decay_rate"])
    assert report.implied_timescales["whole"][0] is None  # the absorbing state: |lambda| = 1
    assert report.implied_timescales["whole"][1] == pytest.approx(-1 / math.log(report.eigenvalues[1]), rel=1e-12)
    assert "NaN" not in report.to_json() and "Infinity" not in report.to_json()


def test_analyze_conductance_of_a_criterion_on_the_soft_toy():
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain, target_mask
    from ecology.exact.report import analyze
    from ecology.scenario import apply_overrides, read_scenario_table, validate

    s = validate(apply_overrides(read_scenario_table(SCENARIOS / "waluigi_soft.toml"), {"context.length": 4}))
    compiled = compile_scenario(s)
    pc = build_chain(compiled, 10_000)
    report = analyze(compiled, chain=pc)
    row = report.conductance["criteria"]["revealed"]["classes"][0]
    members = pc.chain.recurrent_classes[0]
    mask = target_mask(compiled, pc, "revealed", 10_000, "--hit")[1][members]
    pi = pc.chain.stationary_distributions[0][members]
    block = pc.chain.P[members][:, members].toarray()
    assert row["conductance"] == pytest.approx((pi[mask, None] * block[np.ix_(mask, ~mask)]).sum() / pi[mask].sum(), rel=1e-12)
    c = report.conductance["classes"][0]
    assert c["exact"] and c["cheeger_lower"] <= c["gap"] <= c["cheeger_upper"]  # 16 states: every cut enumerated


@pytest.mark.parametrize("target, expected", [
    ("nope", "error: --quasi-stationary 'nope': 'nope' is neither a criterion"),
    ("N,F,U", "error: --quasi-stationary 'N,F,U': the target holds every page-state"),
])
def test_cli_bad_targets_fail_with_one_line(target, expected, capsys):
    from ecology.cli import main

    args = ["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=1", "--quiet", "--quasi-stationary", target]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(expected), err


def test_cli_prints_the_quasi_stationary_block(capsys):
    from ecology.cli import main

    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--quiet",
                 "--quasi-stationary", "revealed"]) == 0
    out = capsys.readouterr().out
    assert "quasi-stationary law conditioned on not yet entered 'revealed'" in out
    assert "decay rate 1 - lambda 0.00749306 per step" in out and "implied timescales" in out


def test_implied_timescales_of_the_peers_fixtures():
    """deeptime-ml/deeptime, deeptime/markov/tools/analysis/api.py (the ``timescales`` docstring):
    T below gives [inf, 9.49122158, 0.43429448]. moldyn/msmhelper, test/test_msm_timescales.py
    (``test__implied_timescales``): the first matrix at lag 2 gives ``-2 / log([4/5, 29/50])``, so
    per step of the matrix ``-1 / log`` of its eigenvalues 4/5 and 29/50; for the second msmhelper
    returns NaN (it drops the negative eigenvalue -0.7), where the modulus convention (deeptime's and
    ours) gives ``-1 / log 0.7``."""
    T = np.array([[0.9, 0.1, 0.0], [0.5, 0.0, 0.5], [0.0, 0.1, 0.9]])
    assert np.allclose(implied_timescales(T, 3)["whole"], [np.inf, 9.49122158, 0.43429448], rtol=1e-8)
    M = np.array([[0.8, 0.2, 0.0], [0.2, 0.78, 0.02], [0.0, 0.2, 0.8]])
    assert np.allclose(implied_timescales(M, 3)["whole"][1:], -1 / np.log([4 / 5, 29 / 50]), rtol=1e-12)
    negative = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert implied_timescales(negative, 2)["whole"][1] == pytest.approx(-1 / math.log(0.7), rel=1e-12)


def test_an_untrusted_law_is_withheld_with_a_note(monkeypatch, capsys):
    """With the trust threshold at 0 (every estimate above it), the decay rate, exit time and masses
    are null, the note gives the estimate, and the CLI prints no digit of them."""
    from ecology.cli import main
    from ecology.exact import quasi

    monkeypatch.setattr(quasi, "TRUSTED_ERROR", 0.0)
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--json",
                 "--quasi-stationary", "revealed"]) == 0
    q = __import__("json").loads(capsys.readouterr().out)["quasi_stationary"]
    assert not q["trusted"] and q["decay_rate"] is None and q["top"] is None and q["from_initial"]["tv_to_qsd"] is None
    assert "withheld" in q["note"] and q["from_initial"]["expected_exit_time"] == pytest.approx(134.81111111111107)
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--quiet",
                 "--quasi-stationary", "revealed"]) == 0
    out = capsys.readouterr().out
    assert "decay rate 1 - lambda" not in out and "note: the law, its decay rate and its masses are withheld" in out


def test_tie_between_parallel_classes_is_reported():
    """Two one-state classes with the same lambda, neither reaching the other: tie, the first taken."""
    P = np.zeros((4, 4))
    P[0, 1], P[0, 2] = 0.5, 0.5
    P[1, 1], P[1, 3], P[2, 2], P[2, 3] = 0.9, 0.1, 0.9, 0.1
    P[3, 3] = 1.0
    law = quasi_stationary(P, [0, 1, 2], start=0)
    assert law.tie and law.class_states.tolist() == [1] and law.decay_rate == pytest.approx(0.1)


def test_masses_below_the_float_range_refuse_the_spectral_conductance():
    """A birth–death class whose stationary masses fall below 1e-308: the conductance of a set is
    still given, the sweep cut and the Cheeger gap are refused in one sentence, and analyze's report
    turns that into a note (here on the generic function)."""
    n = 400
    up, down = np.full(n - 1, 0.01), np.full(n - 1, 0.9)
    P = sp.diags([down, up], [-1, 1]).tolil()
    P.setdiag(1 - np.asarray(P.sum(axis=1)).ravel())
    P = P.tocsr()
    pi = MarkovChain(P).stationary_distributions[0]
    assert pi[-1] == 0.0  # (1/90)^399 is below the float range
    assert conductance(P, np.arange(n), np.arange(1)) == pytest.approx(0.01, rel=1e-12)
    with pytest.raises(ChainError, match="below the float range"):
        cheeger_bounds(P, np.arange(n))
