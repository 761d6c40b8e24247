"""The generic chain module against closed forms, high-precision references, peers and simulation."""

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.exact.markov import DENSE_EIGEN_LIMIT, ChainError, MarkovChain, gth, solve_leaving, stationary_law


def birth_death(n, escape, rng):
    """A birth–death chain on 0..n-1 with two wells: crossing the middle needs steps of probability
    ``escape``. Returns (P, exact stationary law from the product form, in log space)."""
    up = rng.uniform(0.2, 0.5, n - 1)
    down = rng.uniform(0.2, 0.5, n - 1)
    middle = slice(n // 2 - 2, n // 2 + 2)
    up[middle] = escape
    down[middle] = escape
    P = sp.diags([down, up], [-1, 1], shape=(n, n)).tolil()
    stay = 1.0 - np.asarray(P.sum(axis=1)).ravel()
    P.setdiag(stay)
    log_ratio = np.log(up) - np.log(down)  # pi_{i+1} / pi_i = up_i / down_i
    log_pi = np.concatenate([[0.0], np.cumsum(log_ratio)])
    pi = np.exp(log_pi - log_pi.max())
    return P.tocsr(), pi / pi.sum()


@pytest.mark.parametrize("n, escape", [(2000, 1e-3), (2000, 1e-10), (20_000, 1e-6), (100_000, 1e-10)])
def test_birth_death_product_form(n, escape):
    P, exact = birth_death(n, escape, np.random.default_rng(n))
    law = stationary_law(P)
    assert np.abs(law.pi - exact).sum() < 1e-8
    assert law.trusted and law.error < 1e-8


def test_kmr_chain_of_quantecon():
    """QuantEcon's own nearly decomposable fixture: the Arnoldi vector had L1 error 0.67 at N = 2000."""
    core = pytest.importorskip("quantecon.markov.tests.test_core")
    P = core.KMR_Markov_matrix_sequential(2000, 1 / 3, 1e-3)
    up, down = np.diag(P, 1), np.diag(P, -1)
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(up) - np.log(down))])
    exact = np.exp(log_pi - log_pi.max())
    exact /= exact.sum()
    pi = MarkovChain(P).stationary_distributions[0]
    assert np.abs(pi - exact).sum() < 1e-8
    assert np.isclose(pi[-1], exact[-1], rtol=1e-9) and pi[0] < 1e-300


def test_dense_gth_accurate_when_masses_span_more_than_the_float_range():
    core = pytest.importorskip("quantecon.markov.tests.test_core")
    P = core.KMR_Markov_matrix_sequential(400, 1 / 3, 1e-3)
    for order in (np.arange(401), np.arange(401)[::-1]):
        pi = np.empty(401)
        pi[order] = gth(P[np.ix_(order, order)])
        up, down = np.diag(P, 1), np.diag(P, -1)
        log_pi = np.concatenate([[0.0], np.cumsum(np.log(up) - np.log(down))])
        exact = np.exp(log_pi - log_pi.max())
        assert np.abs(pi - exact / exact.sum()).sum() < 1e-12


def test_nearly_decomposable_large_class_is_not_trusted_from_its_residual():
    """Two identical irreducible blocks coupled by 1e-9, above the dense limit and not banded: an
    Arnoldi/LU answer may be a mixture of the two near-unit eigenvectors, so whatever method is
    used must not claim accuracy it does not have (the exact answer puts 1/2 on each block)."""
    rng = np.random.default_rng(3)
    size = 1400
    block = sp.random(size, size, density=6 / size, random_state=rng, format="csr") + sp.diags(np.full(size, 0.1))
    block = block + sp.diags(np.full(size - 1, 0.2), 1) + sp.diags([0.2], [-(size - 1)], shape=(size, size))  # a cycle
    block = sp.diags(1 / np.asarray(block.sum(axis=1)).ravel()) @ block
    P = sp.block_diag([block, block]).tolil()
    P[0, size] = P[size, 0] = 1e-9
    P[0, 0] -= 1e-9
    P[size, size] -= 1e-9
    law = stationary_law(P.tocsr())
    halves = law.pi[:size].sum(), law.pi[size:].sum()
    if law.trusted:
        assert np.allclose(halves, 0.5, atol=law.error + 1e-12)
    else:
        assert law.error is None or law.error > 1e-6
    assert law.trusted  # since the sparse block GTH, this class gets an accurate law


def test_spectrum_of_a_token_swap_symmetric_chain_above_the_dense_limit():
    """Two copies of an irreducible block B swapped by a symmetry and coupled by c: the spectrum is
    that of (1 - c) B + c I (symmetric modes) and (1 - c) B - c I (antisymmetric ones, invisible
    from a symmetric start vector), so the dense reference needs only B's spectrum. ARPACK from a
    random start must find the antisymmetric 1 - 2c."""
    rng = np.random.default_rng(5)
    half = DENSE_EIGEN_LIMIT // 2 + 100
    block = sp.random(half, half, density=4 / half, random_state=rng, format="csr")
    block = (block + sp.diags(np.full(half, 0.2)) + sp.diags(np.full(half - 1, 0.3), 1)
             + sp.diags([0.3], [-(half - 1)], shape=(half, half)))
    block = sp.diags(1 / np.asarray(block.sum(axis=1)).ravel()) @ block
    c = 1e-9
    P = sp.bmat([[block * (1 - c), sp.identity(half) * c], [sp.identity(half) * c, block * (1 - c)]]).tocsr()
    mc = MarkovChain(P)
    assert mc.n_states > DENSE_EIGEN_LIMIT and mc.is_irreducible
    lam = np.linalg.eigvals(block.toarray()) * (1 - c)
    dense = np.concatenate([lam + c, lam - c])
    dense = dense[np.argsort(-np.abs(dense))][:6]
    ours = mc.eigenvalues(6)
    assert np.allclose(np.abs(ours), np.abs(dense), rtol=0, atol=1e-9)
    assert np.isclose(abs(ours[1]), 1 - 2 * c, rtol=0, atol=1e-12)


def low_temperature_chain(n, temperature, rng):
    """Boltzmann-like weights exp(-E / T) at T = 0.01: a well of states 1..n-1 (barriers up to 0.3,
    self-loops of weight 1) left towards state 0 only over barriers near 1, so the expected time
    to reach 0 is about e^100 = 1e43..1e45 and every diagonal entry rounds to nearly 1."""
    energy = rng.uniform(0.0, 0.3, (n, n))
    energy[:, 0] = rng.uniform(1.0, 1.05, n)
    W = np.exp(-energy / temperature) * (rng.random((n, n)) < 0.6)
    W[np.arange(n - 1), np.arange(1, n)] = np.exp(-energy[np.arange(n - 1), np.arange(1, n)] / temperature)
    W[n - 1, 0] = np.exp(-energy[n - 1, 0] / temperature)
    np.fill_diagonal(W, 1.0)
    return W / W.sum(axis=1, keepdims=True)


def test_hitting_times_at_low_temperature_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    rng = np.random.default_rng(11)
    P = low_temperature_chain(12, 0.01, rng)
    mc = MarkovChain(P)
    target = np.zeros(12, dtype=bool)
    target[0] = True
    h = mc.expected_hitting_times(target)
    assert h.max() > 1e40  # values reach the 1e45 of a small model at low temperature
    # mpmath: (I - Q) h = 1 at 60 digits, from the same float64 matrix
    Q = mpmath.matrix([[mpmath.mpf(P[i, j]) for j in range(1, 12)] for i in range(1, 12)])
    diag = [mpmath.fsum(mpmath.mpf(P[i, j]) for j in range(12) if j != i) for i in range(1, 12)]
    A = -Q
    for i in range(11):
        A[i, i] = diag[i]
    reference = mpmath.lu_solve(A, mpmath.matrix([1] * 11))
    for i in range(11):
        assert abs(h[i + 1] / float(reference[i]) - 1) < 1e-6
    # mean first passage matrix column 0 and the same through hitting probabilities of a set
    assert np.allclose(mc.mean_first_passage_times()[:, 0], h, rtol=1e-12)


def test_committor_gamblers_ruin_closed_form():
    N, p = 60, 0.55
    q = 1 - p
    P = sp.diags([np.full(N, q), np.full(N, p)], [-1, 1], shape=(N + 1, N + 1)).tolil()
    P[0, 1] = P[N, N - 1] = 0.0
    P[0, 0] = P[N, N] = 1.0
    mc = MarkovChain(P.tocsr())
    A, B = np.zeros(N + 1, dtype=bool), np.zeros(N + 1, dtype=bool)
    A[N], B[0] = True, True
    i = np.arange(N + 1)
    exact = (1 - (q / p) ** i) / (1 - (q / p) ** N)
    assert np.allclose(mc.committor(A, B), exact, rtol=1e-12, atol=1e-15)
    assert np.allclose(mc.hitting_probabilities(A), exact, rtol=1e-12, atol=1e-15)  # 0 and N absorb
    # expected duration of the game: the time to hit {0, N}
    duration = i / (q - p) - N / (q - p) * exact
    assert np.allclose(mc.expected_hitting_times(A | B), duration, rtol=1e-10)


def test_committor_against_simulation():
    """20,000 paths from one state; P(A before B) within 5 binomial standard deviations."""
    rng = np.random.default_rng(2)
    n = 8
    P = rng.random((n, n)) * (rng.random((n, n)) < 0.6) + np.eye(n) * 0.1
    P /= P.sum(axis=1, keepdims=True)
    A, B = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    A[0], B[1] = True, True
    q = MarkovChain(P).committor(A, B)
    paths = 20_000
    state = np.full(paths, n - 1)
    done = np.zeros(paths, dtype=bool)
    won = np.zeros(paths, dtype=bool)
    cumulative = np.cumsum(P, axis=1)
    for _ in range(10_000):
        live = ~done
        if not live.any():
            break
        u = rng.random(live.sum())
        state[live] = np.minimum((u[:, None] > cumulative[state[live]]).sum(axis=1), n - 1)
        won |= live & A[state]
        done |= A[state] | B[state]
    assert done.all()
    sd = np.sqrt(q[n - 1] * (1 - q[n - 1]) / paths)
    assert abs(won.mean() - q[n - 1]) < 5 * sd


def irreducible(rng, n):
    P = rng.random((n, n)) * (rng.random((n, n)) < 0.4) + np.eye(n) * 0.05
    P[np.arange(n), (np.arange(n) + 1) % n] += 0.1
    return P / P.sum(axis=1, keepdims=True)


def test_textbook_quantities_against_dense_formulas():
    rng = np.random.default_rng(7)
    n = 30
    P = irreducible(rng, n)
    mc = MarkovChain(P)
    pi = mc.stationary_distributions[0]
    Z = np.linalg.inv(np.eye(n) - P + np.outer(np.ones(n), pi))  # fundamental matrix of Kemeny–Snell
    M = (np.diag(Z)[None, :] - Z) / pi[None, :]
    assert np.allclose(mc.mean_first_passage_times(), M, rtol=1e-9)
    eig = np.linalg.eigvals(P)
    eig = eig[np.argsort(-np.abs(eig))]
    assert np.isclose(mc.kemeny_constant(), np.trace(Z) - 1, rtol=1e-9)
    assert np.isclose(mc.kemeny_constant(), np.sum(1 / (1 - eig[1:])).real, rtol=1e-9)
    assert np.isclose(mc.relaxation_time(), 1 / (1 - abs(eig[1])), rtol=1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = -np.nansum(pi[:, None] * P * np.where(P > 0, np.log(P), 0.0))
    assert np.isclose(mc.entropy_rate(), rate, rtol=1e-12)
    for eps in (0.25, 0.01, 1e-6):
        brute, Pt = 0, np.eye(n)
        while 0.5 * np.abs(Pt - pi).sum(axis=1).max() > eps:
            Pt, brute = Pt @ P, brute + 1
        assert mc.mixing_time(eps) == brute
    assert mc.is_irreducible and mc.is_aperiodic and mc.transient_states.size == 0


def test_classes_fundamental_matrix_and_cycles_against_quantecon():
    qe = pytest.importorskip("quantecon")
    # transient 0, 1 -> closed 2-cycle {2, 3} and absorbing 4; plus a 3-cycle {5, 6, 7} entered from 1
    P = np.zeros((8, 8))
    P[0, [0, 1, 4]] = [0.5, 0.25, 0.25]
    P[1, [0, 2, 5]] = [0.5, 0.25, 0.25]
    P[2, 3] = P[3, 2] = P[4, 4] = 1.0
    P[5, 6] = P[6, 7] = 1.0
    P[7, [5, 6]] = [0.5, 0.5]  # cycles of lengths 3 and 2: aperiodic
    mc, theirs = MarkovChain(P), qe.MarkovChain(P)
    assert sorted(map(tuple, mc.communication_classes)) == sorted(tuple(sorted(c)) for c in theirs.communication_classes)
    assert sorted(map(tuple, mc.recurrent_classes)) == sorted(tuple(sorted(c)) for c in theirs.recurrent_classes)
    assert mc.transient_states.tolist() == [0, 1]
    assert mc.periods == [2, 1, 1] and not mc.is_irreducible
    cyc = qe.MarkovChain(P[np.ix_([2, 3], [2, 3])]).cyclic_classes
    assert sorted(map(tuple, mc.cyclic_classes[0])) == sorted(tuple(np.array([2, 3])[c]) for c in cyc)
    N = mc.fundamental_matrix()
    Q = P[np.ix_([0, 1], [0, 1])]
    assert np.allclose(N, np.linalg.inv(np.eye(2) - Q), rtol=1e-14)
    into = np.stack([P[np.ix_([0, 1], c)].sum(axis=1) for c in mc.recurrent_classes], axis=1)
    assert np.allclose(mc.absorption_probabilities(0), (np.linalg.inv(np.eye(2) - Q) @ into)[0], rtol=1e-14)


def test_transient_self_loop_that_rounds_to_one():
    """P[0, 0] = 1 - 1e-300 is 1.0 in floating point: the state is still transient (it leaves with
    1e-300). Times and probabilities stay finite, in range and exact to rounding, never NaN."""
    P = sp.lil_matrix((3, 3))
    P[0, 0], P[0, 1], P[0, 2] = 1.0, 1e-300, 2e-300
    P[1, 1] = P[2, 2] = 1.0
    mc = MarkovChain(P.tocsr())
    assert mc.transient_states.tolist() == [0]
    probs = mc.absorption_probabilities(0)
    assert np.allclose(probs, [1 / 3, 2 / 3], rtol=1e-12)
    assert np.isclose(mc.expected_absorption_time(0), 1 / 3e-300, rtol=1e-12)
    assert np.isclose(mc.fundamental_matrix()[0, 0], 1 / 3e-300, rtol=1e-12)


def test_solve_leaving_refuses_a_closed_set():
    P = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.5]]))
    with pytest.raises(ChainError, match="never left"):
        solve_leaving(P, np.array([0]), np.ones(1))


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.5, 0.6], [0.5, 0.5]]), "row 0"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), "non-negative"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), "finite"),
    (np.ones((2, 3)) / 3, "square"),
])
def test_validation_at_the_door(bad, message):
    with pytest.raises(ChainError, match=message):
        MarkovChain(bad)


def test_class_by_class_solve_of_a_reducible_chain():
    """Transient DAG parts, transient cycles and several closed classes: hitting times, committors
    and hitting probabilities against dense numpy solves of the same systems."""
    rng = np.random.default_rng(13)
    n = 60
    P = np.zeros((n, n))
    for i in range(n):  # mostly forward moves (a DAG), with some cycles among 20..39, closed 50..59
        targets = rng.choice(np.arange(min(i + 1, n - 1), n), size=3) if i < 20 else rng.choice(np.arange(20, n), size=3)
        if i >= 50:
            targets = rng.choice(np.arange(50, n), size=3)
        if 40 <= i < 45:  # a second closed class, from which A is never entered
            targets = rng.choice(np.arange(40, 45), size=3)
        P[i, targets] += rng.random(3)
        P[i, i] += 0.1
    P /= P.sum(axis=1, keepdims=True)
    mc = MarkovChain(P)
    A = np.zeros(n, dtype=bool)
    A[[45, 52]] = True  # a transient state and a state of the closed class 50..59
    h = mc.expected_hitting_times(A)
    finite = np.isfinite(h) & ~A
    S = np.flatnonzero(finite)
    assert len(S) >= 5 and np.isinf(h[40:45]).all()
    assert np.allclose(h[S], np.linalg.solve(np.eye(len(S)) - P[np.ix_(S, S)], np.ones(len(S))), rtol=1e-10)
    u = mc.hitting_probabilities(A)
    absorbing = P.copy()
    absorbing[A] = 0.0
    absorbing[A, np.flatnonzero(A)] = 1.0
    for _ in range(40):  # P_A^(2^40): the mass that will ever enter A has entered it
        absorbing = absorbing @ absorbing
    assert np.allclose(u, absorbing[:, A].sum(axis=1), atol=1e-10)
    assert ((u > 0) & (u < 1)).sum() > 10 and np.all((u >= 0) & (u <= 1)) and np.all(u[40:45] == 0)


def reversible_blocks(sizes, coupling, rng, spread=8.0):
    """A Metropolis chain with a known stationary law: random sparse blocks (each state proposes 3
    partners in its block with probability 0.1 each, and the blocks are joined in a ring by 3 edges
    of proposal probability ``coupling``), masses ``pi`` spread over ``e^-spread .. 1``, states
    randomly permuted (no band). Detailed balance makes ``pi`` exact."""
    n = sum(sizes)
    log_pi = rng.uniform(-spread, 0.0, n)
    starts = np.cumsum([0] + list(sizes))
    rows, cols, prop = [], [], []
    for b, size in enumerate(sizes):
        members = np.arange(starts[b], starts[b + 1])
        for _ in range(3):
            rows.append(members), cols.append(rng.permutation(members)), prop.append(np.full(size, 0.1))
        nxt = (b + 1) % len(sizes)
        rows.append(rng.integers(starts[b], starts[b + 1], 3))
        cols.append(rng.integers(starts[nxt], starts[nxt + 1], 3))
        prop.append(np.full(3, coupling))
    r, c, q = np.concatenate(rows), np.concatenate(cols), np.concatenate(prop)
    keep = r != c
    proposal = sp.csr_matrix((np.r_[q[keep], q[keep]], (np.r_[r[keep], c[keep]], np.r_[c[keep], r[keep]])), shape=(n, n))
    coo = proposal.tocoo()
    accept = np.minimum(1.0, np.exp(log_pi[coo.col] - log_pi[coo.row]))
    P = sp.csr_matrix((coo.data * accept, (coo.row, coo.col)), shape=(n, n))
    P = P + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())
    pi = np.exp(log_pi - log_pi.max())
    perm = rng.permutation(n)
    return P.tocsr()[perm][:, perm].tocsr(), (pi / pi.sum())[perm]


def test_block_gth_on_a_nearly_decomposable_class_above_the_dense_limit():
    """Three metastable blocks coupled by 1e-10, 2,600 states in random order: the residual-based
    paths could not certify this law; the sparse block GTH gets the known law to 1e-8 and says so."""
    P, exact = reversible_blocks([1000, 800, 800], 1e-10, np.random.default_rng(21))
    law = stationary_law(P)
    assert law.method.startswith("GTH (sparse")
    assert np.abs(law.pi - exact).sum() < 1e-8
    assert law.trusted and law.error < 1e-8


def kmr_sequential(N, p, epsilon):
    """QuantEcon's ``KMR_Markov_matrix_sequential`` built sparse (theirs is dense: 3 GB at N = 20000)."""
    n = np.arange(1, N)
    down = (n / N) * (epsilon / 2 + (1 - epsilon) * (((n - 1) / (N - 1) < p) + ((n - 1) / (N - 1) == p) / 2))
    up = ((N - n) / N) * (epsilon / 2 + (1 - epsilon) * ((n / (N - 1) > p) + (n / (N - 1) == p) / 2))
    lower = np.r_[down, epsilon / 2]
    upper = np.r_[epsilon / 2, up]
    stay = np.r_[1 - epsilon / 2, 1 - down - up, 1 - epsilon / 2]
    return sp.diags([lower, stay, upper], [-1, 0, 1], format="csr")


def test_sparse_kmr_is_quantecons():
    core = pytest.importorskip("quantecon.markov.tests.test_core")
    assert np.array_equal(kmr_sequential(300, 1 / 3, 1e-3).toarray(), core.KMR_Markov_matrix_sequential(300, 1 / 3, 1e-3))


@pytest.mark.parametrize("N", [5000, 20_000])
def test_kmr_chain_permuted_at_large_sizes(N):
    """QuantEcon's KMR chain with its states randomly permuted: the reverse Cuthill–McKee order
    finds the band again; at N = 5000 the sparse block elimination is checked against it too."""
    P = kmr_sequential(N, 1 / 3, 1e-3)
    up, down = P.diagonal(1), P.diagonal(-1)
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(up) - np.log(down))])
    exact = np.exp(log_pi - log_pi.max())
    exact /= exact.sum()
    perm = np.random.default_rng(N).permutation(N + 1)
    Pp = P[perm][:, perm].tocsr()
    law = stationary_law(Pp)
    assert np.abs(law.pi - exact[perm]).sum() < 1e-8 and law.trusted
    if N == 5000:
        blocks = stationary_law(Pp, "blocks")
        assert blocks.method.startswith("GTH (sparse")
        assert np.abs(blocks.pi - exact[perm]).sum() < 1e-8 and blocks.trusted


def lumpable_levels(levels, width, up, down, rng):
    """States (level, slot), randomly permuted. From every state of level ``l``: ``up[l]`` spread
    over 3 random states of level ``l + 1``, ``down[l]`` over 3 of level ``l - 1``, 0.3 over 3 of
    its own level, the rest stays. The level sums do not depend on the state, so the levels are
    exactly lumpable: hitting times of level 0 are those of the birth–death chain (up, down)."""
    n = levels * width
    state = np.arange(n)
    level = state // width
    rows, cols, vals = [], [], []
    for target, prob in ((level + 1, up[level]), (level - 1, down[level]), (level, np.full(n, 0.3))):
        ok = (target >= 0) & (target < levels) & (prob > 0)
        for _ in range(3):
            rows.append(state[ok]), cols.append(target[ok] * width + rng.integers(0, width, ok.sum()))
            vals.append(prob[ok] / 3)
    P = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    P = P + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())
    perm = rng.permutation(n)
    return P.tocsr()[perm][:, perm].tocsr(), level[perm]


def birth_death_hitting_times(up: np.ndarray, down: np.ndarray, mpmath) -> np.ndarray:
    """Expected time to reach level 0 from each level of a birth–death chain (rates ``up[l]``,
    ``down[l]``), at 50 digits: ``h(l) = sum_{m <= l} sum_{j >= m} pi_j / (pi_m down_m)`` with
    ``pi_{j+1} = pi_j up_j / down_{j+1}``."""
    levels = len(up)
    mpmath.mp.dps = 50
    pi = [mpmath.mpf(1)]
    for j in range(levels - 1):
        pi.append(pi[-1] * mpmath.mpf(up[j]) / mpmath.mpf(down[j + 1]))
    tail = [mpmath.mpf(0)] * (levels + 1)
    for j in range(levels - 1, -1, -1):
        tail[j] = tail[j + 1] + pi[j]
    by_level = [mpmath.mpf(0)]
    for m in range(1, levels):
        by_level.append(by_level[-1] + tail[m] / (pi[m] * mpmath.mpf(down[m])))
    return np.array([float(x) for x in by_level])


def test_hitting_times_above_20000_states_reaching_1e47_against_mpmath():
    """20,400 states, not banded: the linked group goes to the sparse block elimination. Crossing
    ten levels against a drift of 3e4 makes the times ~1e47; mpmath evaluates the birth–death
    formula h(l) = sum_{m <= l} sum_{j >= m} pi_j / (pi_m down_m) at 50 digits."""
    mpmath = pytest.importorskip("mpmath")
    levels, width = 340, 60
    up, down = np.full(levels, 0.3), np.full(levels, 0.3)
    up[-1], down[0] = 0.0, 0.0
    down[1:11] = 1e-5
    P, level = lumpable_levels(levels, width, up, down, np.random.default_rng(1))
    h = MarkovChain(P).expected_hitting_times(level == 0)
    reference = birth_death_hitting_times(up, down, mpmath)[level]
    assert h.max() > 1e45
    assert np.max(np.abs(h[level > 0] / reference[level > 0] - 1)) < 1e-6
    assert np.all(h[level == 0] == 0)


def test_block_elimination_over_budget_is_refused_with_a_reason(monkeypatch):
    import ecology.exact.markov as markov

    levels, width = 340, 60
    P, level = lumpable_levels(levels, width, np.full(levels, 0.3), np.full(levels, 0.3), np.random.default_rng(2))
    monkeypatch.setattr(markov, "FRONT_LIMIT", 1000)
    with pytest.raises(ChainError, match="needs a dense block of .* entries .* not solved"):
        MarkovChain(P).expected_hitting_times(level == 0, max_products=0)  # the eliminations alone
    with pytest.raises(markov.TooMuchFill, match="stationary law of 20,400 states"):
        stationary_law(P, "blocks")


def test_times_power_against_numpy_matrix_power():
    """``x M^n`` by squaring (the one helper behind power, hit_by, distribution_after) against
    numpy's matrix_power, for dense and sparse M, a row and a matrix x, n = 0, 1, and odd/even n."""
    from ecology.exact.markov import times_power

    rng = np.random.default_rng(4)
    M = irreducible(rng, 40)
    row = rng.random(40)
    for n in (0, 1, 2, 7, 64, 1001):
        reference = np.linalg.matrix_power(M, n)
        assert np.allclose(times_power(row, M, n), row @ reference, rtol=1e-12, atol=1e-15)
        assert np.allclose(times_power(np.eye(40), sp.csr_matrix(M), n), reference, rtol=1e-12, atol=1e-15)
    assert np.allclose(MarkovChain(M).power(1001).toarray(), np.linalg.matrix_power(M, 1001), rtol=1e-12)


def walk(n: int, p: float) -> tuple[MarkovChain, np.ndarray]:
    """Random walk on 0 .. n-1, reflecting at 0 (stays w.p. 1 - p), absorbed at n - 1."""
    P = np.zeros((n, n))
    P[0, 0], P[0, 1] = 1 - p, p
    for i in range(1, n - 1):
        P[i, i + 1], P[i, i - 1] = p, 1 - p
    P[-1, -1] = 1.0
    target = np.zeros(n, bool)
    target[-1] = True
    return MarkovChain(sp.csr_matrix(P)), target


@pytest.mark.parametrize("n, p", [(30, 0.5), (40, 0.6), (25, 0.45)])
def test_survival_series_brackets_the_expected_hitting_time(n, p):
    """The survival series' two-sided Collatz–Wielandt bounds contain the solved E[T] and close to
    1e-10 relative; the symmetric walk's closed form is n^2 - n (here from the reflecting end)."""
    mc, target = walk(n, p)
    exact = mc.expected_hitting_times(target)[0]
    lo, hi = mc.expected_hitting_time_by_series(0, target, 10**6)
    assert lo <= exact * (1 + 1e-12) and exact <= hi * (1 + 1e-12)
    assert hi - lo <= 1e-10 * lo
    if p == 0.5:
        assert np.isclose(exact, n * (n - 1), rtol=1e-12)


def test_survival_series_random_chains_and_budget():
    rng = np.random.default_rng(5)
    for _ in range(5):
        P = rng.random((60, 60)) * (rng.random((60, 60)) < 0.1)
        P[np.arange(60), (np.arange(60) + 1) % 60] += 0.05  # irreducible
        P /= P.sum(axis=1, keepdims=True)
        mc = MarkovChain(sp.csr_matrix(P))
        target = np.zeros(60, bool)
        target[rng.choice(60, 3, replace=False)] = True
        start = int(np.flatnonzero(~target)[0])
        exact = mc.expected_hitting_times(target)[start]
        lo, hi = mc.expected_hitting_time_by_series(start, target, 10**6)
        assert lo * (1 - 1e-12) <= exact <= hi * (1 + 1e-12)
    # a slow walk (E[T] ~ 1e19) does not close within a small budget: None, never a wrong number
    mc, target = walk(200, 0.45)
    assert mc.expected_hitting_time_by_series(0, target, 2000) is None
    assert mc.expected_hitting_time_by_series(199, target, 10) == (0.0, 0.0)
    # a target that may be missed (state 0 is a trap) has an infinite time, decided on the graph
    trap = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    mc = MarkovChain(sp.csr_matrix(trap))
    assert mc.expected_hitting_time_by_series(1, np.array([False, False, True]), 10) == (np.inf, np.inf)
    assert mc.expected_hitting_times(np.array([False, False, True]))[1] == np.inf
