"""Lumping (ecology.exact.lumping) against closed forms, brute force over all partitions, path
enumeration, dense linear algebra and PyDTMC's own fixtures."""

import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.errors import UserError
from ecology.exact.chain import build_chain
from ecology.exact.lumping import (
    _Partition,
    aggregated_chain,
    block_labels,
    coarsest_lumping,
    lift_uniform,
    lumpability,
    lumped_chain,
    partition_by_values,
)
from ecology.exact.markov import ChainError, MarkovChain
from ecology.exact.report import analyze, log_population_amplitudes
from ecology.scenario import load

from .conftest import SCENARIOS


def cycle_walk(n: int) -> sp.csr_matrix:
    i = np.arange(n)
    return sp.csr_matrix((np.full(2 * n, 0.5), (np.r_[i, i], np.r_[(i + 1) % n, (i - 1) % n])), shape=(n, n))


def reflecting_walk(top: int, even: bool) -> np.ndarray:
    """The distance from 0 of the symmetric walk on a cycle: 0 -> 1 surely, d -> d +- 1 with 1/2, and
    at the far end d = top -> top - 1 surely (even cycle) or stay/back with 1/2 (odd cycle)."""
    Q = np.zeros((top + 1, top + 1))
    Q[0, 1] = 1.0
    for d in range(1, top):
        Q[d, d - 1] = Q[d, d + 1] = 0.5
    Q[top, top - 1] = 1.0 if even else 0.5
    Q[top, top] = 0.0 if even else 0.5
    return Q


@pytest.mark.parametrize("n", [7, 8, 2000])
def test_cycle_lumped_by_distance_from_zero(n):
    """Closed form: the coarsest lumping refining {0} | rest is the distance from 0, and the lumped
    chain is the reflecting walk on 0 .. floor(n / 2)."""
    labels = coarsest_lumping(cycle_walk(n), (np.arange(n) == 0).astype(int))
    distance = np.minimum(np.arange(n), n - np.arange(n))
    assert np.array_equal(labels, block_labels(distance))
    for kind in ("ordinary", "exact"):  # doubly stochastic and symmetric under reflection: both
        test = lumpability(cycle_walk(n), distance, kind)
        assert test.lumpable and test.defect == 0 and test.n_blocks == n // 2 + 1
    if n < 100:
        lumped = lumped_chain(cycle_walk(n), distance).P.toarray()
        assert np.allclose(lumped, reflecting_walk(n // 2, n % 2 == 0), atol=1e-15)


def test_product_chain_lumps_onto_its_first_coordinate():
    """``A (x) B`` lumped by the first coordinate is ``A`` (ordinary); it is exactly lumpable only when
    ``B`` is doubly stochastic (the column sums are ``A[a, a'] * colsum_B(b')``)."""
    rng = np.random.default_rng(3)
    A = rng.random((3, 3))
    A /= A.sum(axis=1, keepdims=True)
    B = rng.random((4, 4))
    B /= B.sum(axis=1, keepdims=True)
    P = np.kron(A, B)
    first = np.repeat(np.arange(3), 4)
    assert lumpability(P, first).lumpable
    assert np.allclose(lumped_chain(P, first).P.toarray(), A, rtol=1e-14, atol=0)
    exact = lumpability(P, first, "exact")
    spread = max(np.ptp(A[a, b] * B.sum(axis=0)) for a in range(3) for b in range(3))
    assert not exact.lumpable and exact.defect == pytest.approx(spread, rel=1e-12)
    doubly = np.full((4, 4), 0.25) + 0.1 * np.array([[1, -1, 0, 0], [-1, 1, 0, 0], [0, 0, 1, -1], [0, 0, -1, 1]])
    assert lumpability(np.kron(A, doubly), first, "exact").lumpable
    assert np.array_equal(coarsest_lumping(P, np.zeros(12, int)), np.zeros(12, int))  # rows sum to 1: trivially
    second = np.tile(np.arange(4), 3)
    assert lumpability(P, second).lumpable and np.allclose(lumped_chain(P, second).P.toarray(), B, rtol=1e-14)


EXACT_NOT_ORDINARY = np.array([[0.5, 0.3, 0.2], [0.2, 0.4, 0.4], [0.3, 0.3, 0.4]])
ORDINARY_NOT_EXACT = np.array([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
PAIR = np.array([0, 0, 1])


def test_exactly_but_not_ordinarily_lumpable():
    """Column sums over {0, 1} are (0.7, 0.7) and P(2, 0) = P(2, 1); but P(0, {2}) = 0.2, P(1, {2}) = 0.4."""
    P = EXACT_NOT_ORDINARY
    exact, ordinary = lumpability(P, PAIR, "exact"), lumpability(P, PAIR)
    assert exact.lumpable and exact.defect < 1e-15
    assert not ordinary.lumpable and ordinary.defect == pytest.approx(0.2, rel=1e-12)
    lumped = aggregated_chain(P, PAIR).P.toarray()
    assert np.allclose(lumped, [[0.7, 0.3], [0.6, 0.4]], rtol=1e-14)
    with pytest.raises(ChainError, match="not ordinaryly lumpable|not ordinarily lumpable"):
        lumped_chain(P, PAIR)
    assert np.allclose(lumped_chain(P, PAIR, "exact").P.toarray(), lumped, rtol=0, atol=0)
    mu = lift_uniform([0.6, 0.4], PAIR)  # uniform within blocks stays so, and follows the lumped chain
    for _ in range(5):
        nxt = mu @ P
        assert nxt[0] == pytest.approx(nxt[1], rel=1e-14)
        assert np.allclose([nxt[0] + nxt[1], nxt[2]], [mu[0] + mu[1], mu[2]] @ lumped, rtol=1e-14)
        mu = nxt
    pi = MarkovChain(P).stationary_distributions[0]  # constant on blocks
    assert pi[0] == pytest.approx(pi[1], rel=1e-13)


def test_block_process_by_path_enumeration():
    """Second method: the law of the block path (b(X_0), .., b(X_3)) by enumerating every path of
    the chain equals the product of the lumped chain's entries, from any initial law (ordinary) or
    from a uniform-within-blocks one (exact); and fails for the other kind."""
    def block_path_law(P, blocks, initial, steps=3):
        law = {}
        for path in itertools.product(range(len(P)), repeat=steps + 1):
            p = initial[path[0]] * np.prod([P[a, b] for a, b in itertools.pairwise(path)])
            key = tuple(blocks[list(path)])
            law[key] = law.get(key, 0.0) + p
        return law

    def markov_law(Q, start, steps=3):
        return {path: start[path[0]] * np.prod([Q[a, b] for a, b in itertools.pairwise(path)])
                for path in itertools.product(range(len(Q)), repeat=steps + 1)}

    for P, kind, initial in [(ORDINARY_NOT_EXACT, "ordinary", np.array([0.7, 0.1, 0.2])),
                             (EXACT_NOT_ORDINARY, "exact", lift_uniform([0.3, 0.7], PAIR))]:
        Q = lumped_chain(P, PAIR, kind).P.toarray()
        start = np.array([initial[0] + initial[1], initial[2]])
        got, expected = block_path_law(P, PAIR, initial), markov_law(Q, start)
        assert all(abs(got.get(k, 0.0) - v) < 1e-15 for k, v in expected.items())
    skewed = block_path_law(EXACT_NOT_ORDINARY, PAIR, np.array([1.0, 0.0, 0.0]), steps=1)  # not uniform within {0, 1}
    Q = aggregated_chain(EXACT_NOT_ORDINARY, PAIR).P.toarray()
    assert abs(skewed[(0, 1)] - Q[0, 1]) > 0.05  # P(0 -> {2}) = 0.2, the lumped 0.3


def planted_exact(rng, sizes, Q):
    """A chain exactly lumpable onto ``Q`` with blocks of these ``sizes``: block (K, L) is
    ``Q_KL / |L| * T`` with ``T >= 0`` of row sums ``|L|`` and column sums ``|K|`` (all ones plus a
    perturbation with zero margins)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    P = np.zeros((len(labels), len(labels)))
    for K, L in itertools.product(range(len(sizes)), repeat=2):
        X = rng.random((sizes[K], sizes[L]))
        X = X - X.mean(axis=0) - X.mean(axis=1, keepdims=True) + X.mean()
        T = 1.0 + 0.9 * X / max(1.0, np.abs(X).max())
        P[np.ix_(labels == K, labels == L)] = Q[K, L] / sizes[L] * T
    return P, labels


def planted_ordinary(rng, sizes, Q):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    P = np.zeros((len(labels), len(labels)))
    for i, L in itertools.product(range(len(labels)), range(len(sizes))):
        w = rng.random(sizes[L])
        P[i, labels == L] = Q[labels[i], L] * w / w.sum()
    return P, labels


def random_stochastic(rng, m):
    Q = rng.random((m, m)) + 0.05
    return Q / Q.sum(axis=1, keepdims=True)


def reversal(P):
    """The time reversal ``P~(i, j) = pi_j P(j, i) / pi_i`` (dense)."""
    pi = MarkovChain(P).stationary_distributions[0]
    return pi[None, :] * P.T / pi[:, None]


@pytest.mark.parametrize("seed", range(5))
def test_exact_lumpability_is_ordinary_lumpability_of_the_reversal(seed):
    """The equivalence stated in the module docstring, on planted exactly lumpable chains: pi is
    constant on blocks, the reversal is ordinarily lumpable, and the lumped chain is the planted Q."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, 3)
    Q = random_stochastic(rng, 3)
    P, labels = planted_exact(rng, sizes, Q)
    assert lumpability(P, labels, "exact").lumpable
    assert np.allclose(lumped_chain(P, labels, "exact").P.toarray(), Q, rtol=1e-13, atol=0)
    pi = MarkovChain(P).stationary_distributions[0]
    for K in range(3):
        assert np.ptp(pi[labels == K]) <= 1e-13 * pi[labels == K].max()
    assert lumpability(reversal(P), labels).lumpable
    pi_hat = MarkovChain(Q).stationary_distributions[0]
    assert np.allclose(np.bincount(labels, weights=pi), pi_hat, rtol=1e-12, atol=0)
    P2, labels2 = planted_ordinary(rng, sizes, Q)  # and the other way round
    assert lumpability(P2, labels2).lumpable and lumpability(reversal(P2), labels2, "exact").lumpable == \
        bool(np.all([np.ptp(MarkovChain(P2).stationary_distributions[0][labels2 == K]) < 1e-12 for K in range(3)]))


@pytest.mark.parametrize("seed", range(5))
def test_lumped_chain_keeps_stationary_law_and_hitting_of_block_unions(seed):
    """On ordinarily lumpable chains: the lumped stationary law is the aggregated one, and hitting
    probabilities and expected hitting times of a union of blocks (with a committor) are the same
    from every state as from its block in the lumped chain."""
    rng = np.random.default_rng(100 + seed)
    sizes = rng.integers(1, 5, 4)
    Q = random_stochastic(rng, 4)
    Q[3] = np.eye(4)[3] if seed % 2 else Q[3]  # with an absorbing block half of the time
    P, labels = planted_ordinary(rng, sizes, Q)
    full, lumped = MarkovChain(P), lumped_chain(P, labels)
    if seed % 2 == 0:
        pi, pi_hat = full.stationary_distributions[0], lumped.stationary_distributions[0]
        assert np.allclose(np.bincount(labels, weights=pi), pi_hat, rtol=1e-12, atol=0)
    A = np.isin(np.arange(4), [1, 3])
    assert np.allclose(full.hitting_probabilities(A[labels]), lumped.hitting_probabilities(A)[labels], rtol=1e-12)
    assert np.allclose(full.expected_hitting_times(A[labels]), lumped.expected_hitting_times(A)[labels], rtol=1e-12)
    B = np.arange(4) == 2
    assert np.allclose(full.committor(A[labels], B[labels]), lumped.committor(A, B)[labels], rtol=1e-12)


def test_pi_weighted_aggregation_has_the_aggregated_stationary_law():
    """Any partition, lumpable or not: the pi-weighted aggregation's stationary law is pi V; dense check."""
    rng = np.random.default_rng(7)
    P = random_stochastic(rng, 6)
    labels = np.array([0, 1, 0, 2, 1, 1])
    assert not lumpability(P, labels).lumpable
    pi = MarkovChain(P).stationary_distributions[0]
    agg = aggregated_chain(P, labels, pi).P.toarray()
    V = np.eye(3)[labels]
    assert np.allclose(agg, np.diag(1 / (V.T @ pi)) @ V.T @ np.diag(pi) @ P @ V, rtol=1e-14)
    assert np.allclose(MarkovChain(agg).stationary_distributions[0], pi @ V, rtol=1e-12)


def all_partitions(n):
    """Every set partition of 0 .. n-1 as labels (restricted growth strings): Bell(n) of them."""
    def grow(labels, m):
        if len(labels) == n:
            yield np.array(labels)
            return
        for b in range(m + 1):
            yield from grow(labels + [b], max(m, b + 1))
    yield from grow([], 0)


def refines(fine, coarse):
    return all(len(set(coarse[fine == b])) == 1 for b in set(fine.tolist()))


@pytest.mark.parametrize("kind", ["ordinary", "exact"])
def test_refinement_is_the_coarsest_by_brute_force(kind):
    """Every partition of chains with n <= 7 states: the refinement is lumpable, refines the given
    partition, and every lumpable partition refining the given one refines it (it is the coarsest)."""
    rng = np.random.default_rng(11 if kind == "ordinary" else 12)
    partitions = {n: list(all_partitions(n)) for n in range(2, 8)}
    for trial in range(16):
        n = int(rng.integers(2, 8)) if trial % 4 else 7
        m = int(rng.integers(1, n + 1))
        sizes = np.bincount(rng.integers(0, m, n), minlength=m)
        sizes = sizes[sizes > 0]
        planted = planted_ordinary if kind == "ordinary" else planted_exact
        P, _ = planted(rng, sizes, random_stochastic(rng, len(sizes)))
        perm = rng.permutation(n)
        P = P[np.ix_(perm, perm)]
        given = rng.integers(0, 2, n)
        got = coarsest_lumping(sp.csr_matrix(P), given, kind)
        assert lumpability(P, got, kind).lumpable and refines(got, given)
        for candidate in partitions[n]:
            if refines(candidate, given) and lumpability(P, candidate, kind).lumpable:
                assert refines(candidate, got), (trial, candidate, got)


def pydtmc_fixtures():
    return json.loads((Path(__file__).parent / "fixtures" / "pydtmc_lumping.json").read_text())


def exactly_lumpable(p, labels) -> bool:
    """Ordinary lumpability in rational arithmetic on the decimal entries (the reference)."""
    rows = [[Fraction(str(x)) for x in row] for row in p]
    m = max(labels) + 1
    into = [[sum(row[j] for j in range(len(row)) if labels[j] == L) for L in range(m)] for row in rows]
    return all(len({tuple(into[i]) for i in range(len(rows)) if labels[i] == K}) == 1 for K in range(m))


def test_pydtmc_lumping_partitions():
    """Ported from PyDTMC tests/fixtures/fixtures_properties.json (``lumping_partitions``, tested by
    tests/test_properties.py::test_lumping_partitions): PyDTMC lists the ordinarily lumpable
    partitions of the states into 2 .. n-1 runs of consecutive states (pydtmc/computations.py
    find_lumping_partitions). It compares floats exactly (np.array_equal), so it misses chain #11's
    [[0], [1, 2]], lumpable in exact arithmetic (0.5 + 0.4 = 0.9 but 0.2 + 0.7 = 0.8999999999999999
    in doubles): ours agree with rational arithmetic on all 30 chains, and with PyDTMC on the 29 others."""
    differ = []
    for case in pydtmc_fixtures()["lumping_partitions"]:
        P = np.array(case["p"])
        n = len(P)
        found, exact = [], []
        for cuts in itertools.product([False, True], repeat=n - 1):
            labels = np.r_[0, np.cumsum(cuts)]
            if 2 <= labels[-1] + 1 < n:
                blocks = [np.flatnonzero(labels == b).tolist() for b in range(labels[-1] + 1)]
                if lumpability(P, labels).lumpable:
                    found.append(blocks)
                if exactly_lumpable(case["p"], labels.tolist()):
                    exact.append(blocks)
        assert sorted(found) == sorted(exact), case["id"]
        if sorted(found) != sorted(case["lumping_partitions"]):
            differ.append((case["id"], [b for b in found if b not in case["lumping_partitions"]]))
    assert differ == [("#11", [[[0], [1, 2]]])]


def test_pydtmc_lump():
    """Ported from PyDTMC tests/fixtures/fixtures_generators_instance.json (``lump_data``, tested by
    tests/test_generators_instance.py::test_lump with rtol 1e-5, atol 1e-8): the lumped matrix, or
    null where the partition is not lumpable."""
    checked = 0
    for case in pydtmc_fixtures()["lump"]:
        P = np.array(case["p"])
        for item in case["lump_data"]:
            labels = np.zeros(len(P), dtype=int)
            for b, members in enumerate(item["partitions"]):
                labels[members] = b
            if item["value"] is None:
                assert not lumpability(P, labels).lumpable, case["id"]
            else:
                np.testing.assert_allclose(lumped_chain(P, labels).P.toarray(), item["value"], rtol=1e-5, atol=1e-8)
            checked += 1
    assert checked == 12


def test_how_values_are_compared():
    """Relative gaps: rounding-level differences lump, 1e-6 does not; 1e-45 and 2e-45 are told
    apart, so are 0 and 1e-300; a chain of gaps each below rtol stays one block for the refinement
    (single linkage) while the test, on the range, says not lumpable and gives the defect."""
    def chain(values):  # state i goes to the absorbing state 3 with values[i], else to 4 (absorbing)
        P = np.zeros((5, 5))
        P[:3, 3] = values
        P[:3, 4] = 1 - np.asarray(values)
        P[3, 3] = P[4, 4] = 1.0
        return P
    init = np.array([0, 0, 0, 1, 2])
    for values, blocks in [([0.3, 0.3 * (1 + 1e-13), 0.3], 3), ([0.3, 0.3 * (1 + 1e-6), 0.3], 4),
                           ([1e-45, 2e-45, 1e-45], 4), ([0.0, 1e-300, 0.0], 4)]:
        assert coarsest_lumping(chain(values), init).max() + 1 == blocks, values
    steps = [0.5, 0.5004, 0.5008]  # relative gaps 8e-4 < rtol = 1e-3, range 1.6e-3 > rtol
    assert coarsest_lumping(chain(steps), init, rtol=1e-3).max() + 1 == 3
    test = lumpability(chain(steps), init, rtol=1e-3)
    assert not test.lumpable and test.defect == pytest.approx(8e-4, rel=1e-9)


def test_partition_layout_after_random_splits():
    """The contiguous layout of _Partition stays consistent under random splits."""
    rng = np.random.default_rng(5)
    part = _Partition(rng.integers(0, 3, 200))
    for _ in range(40):
        states = rng.choice(200, size=int(rng.integers(1, 60)), replace=False)
        part.split(states, part.block[states] * 10 + rng.integers(0, 3, len(states)))
        ids = np.unique(part.block)
        assert np.array_equal(part.where[part.order], np.arange(200))
        for b in ids:
            run = part.order[part.first[b] : part.first[b] + part.count[b]]
            assert np.all(part.block[run] == b) and len(run) == (part.block == b).sum()


def test_bad_arguments():
    P = cycle_walk(4)
    for call, message in [(lambda: lumpability(P, [0, 1]), "one label per state"),
                          (lambda: lumpability(P, [0.0, 1.0, 0.0, 1.0]), "integers"),
                          (lambda: lumpability(P, [0, 1, 0, 1], "weak"), "kind"),
                          (lambda: coarsest_lumping(P, [0, 1, 0, 1], rtol=1.5), "rtol"),
                          (lambda: aggregated_chain(P, [0, 1, 0, 1], [1, 0, 1, 0]), "no positive weight"),
                          (lambda: aggregated_chain(P, [0, 1, 0, 1], [1, 1]), "weights"),
                          (lambda: lift_uniform([1.0], [0, 1]), "one mass per block")]:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ChainError, match="row 0"):
        lumpability(np.array([[0.5, 0.4], [0.5, 0.5]]), [0, 1])


def test_partition_by_values_in_log_space():
    """Rows equal within rtol in every column; in log space amplitudes far below the float range
    (e**-1000) are told apart, and two -inf (amplitude 0) are equal."""
    X = np.array([[-1000.0, 0.0], [-1000.0 - 1e-14, 0.0], [-1000.0 - 1e-6, 0.0], [-np.inf, 0.0], [-np.inf, 0.0]])
    assert partition_by_values(X, log=True).tolist() == [0, 0, 1, 2, 2]
    assert partition_by_values(np.exp(X)).tolist() == [0, 0, 0, 0, 0]  # the same amplitudes as doubles: all 0
    assert partition_by_values([[0.2, 1.0], [0.2, 0.0], [0.2 * (1 + 1e-13), 1.0]]).tolist() == [0, 1, 0]
    for bad, log in [([[np.nan]], False), ([[-1.0]], False), ([[np.inf]], True)]:
        with pytest.raises(ValueError, match="values must be"):
            partition_by_values(bad, log=log)


def waluigi_luigi_amplitude(j):
    """Closed form: after j F's (no U), the luigi's amplitude 0.9 / (0.9 + 0.1 * 0.9^j)."""
    return 0.9 / (0.9 + 0.1 * 0.9**j)


def test_waluigi_lumps_by_amplitudes_onto_a_birth_chain(capsys):
    """The toy's 45 page-states lump by premise amplitudes into 10 blocks, lumpably: the windows with
    j = 0 .. 8 F's and no U (luigi amplitude 0.9 / (0.9 + 0.1 * 0.9^j)) and the 36 with a U (luigi 0).
    The lumped chain moves from j to the revealed block with probability alpha_waluigi(j) * 0.1,
    else to j + 1 (j = 8 stays), and its hitting time of the revealed block is the full chain's."""
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--lump", "amplitudes", "--json"]) == 0
    lump = json.loads(capsys.readouterr().out)["lumping"]
    assert (lump["n_states"], lump["n_blocks"], lump["lumpable"], lump["defect"]) == (45, 10, True, 0.0)
    assert lump["coarsest_n_blocks"] == 10 and lump["lumped"] == "given"
    blocks = lump["blocks"]
    revealed = [b for b in blocks if b["values"][0] == 0.0]
    assert len(revealed) == 1 and revealed[0]["size"] == 36
    luigi = sorted(b["values"][0] for b in blocks if b["values"][0] > 0)
    assert np.allclose(luigi, [waluigi_luigi_amplitude(j) for j in range(9)], rtol=1e-14, atol=0)
    chain = lump["lumped_chain"]
    assert chain["n_states"] == 10 and chain["absorption_agreement"] == 0.0
    assert [(c["blocks"], c["page_states"]) for c in chain["closed_classes"]] == [(1, 36)]
    compiled = compile_scenario(load(SCENARIOS / "waluigi.toml"))
    pc = build_chain(compiled)
    log_amp = log_population_amplitudes(pc)
    labels = partition_by_values(log_amp, log=True)
    lumped = aggregated_chain(pc.chain, labels).P.toarray()
    n_f = np.array([label.split().count("F") for label in pc.labels()])
    has_u = np.array(["U" in label.split() for label in pc.labels()])
    U = int(labels[has_u][0])
    for j in range(9):
        K = int(labels[(n_f == j) & ~has_u][0])
        leak = (1 - waluigi_luigi_amplitude(j)) * 0.1
        assert lumped[K, U] == pytest.approx(leak, rel=1e-13)
        nxt = K if j == 8 else int(labels[(n_f == j + 1) & ~has_u][0])
        assert lumped[K, nxt] == pytest.approx(1 - leak, rel=1e-13)
    full = pc.chain.expected_hitting_times(has_u)[pc.initial]
    assert MarkovChain(lumped).expected_hitting_times(np.arange(10) == U)[labels[pc.initial]] == pytest.approx(full, rel=1e-13)


def test_lumped_page_chain_keeps_the_criteria():
    """waluigi_soft at k = 6 by criteria: not lumpable; its coarsest refinement's lumped chain gives
    every criterion's P(ever) and expected hitting time as the full chain does (API, to 1e-12)."""
    report = analyze(SCENARIOS / "waluigi_soft.toml", lump="criteria")
    lump = report["lumping"]
    assert not lump["lumpable"] and lump["defect"] > 0.5 and lump["coarsest_lumpable"]
    assert lump["lumped"] == "coarsest refinement" and lump["coarsest_defect"] < 1e-14
    criteria = lump["lumped_chain"]["criteria"]
    assert set(criteria) == {"revealed", "waluigi_certain"}
    for name, c in criteria.items():
        lumped, full = c["lumped"], c["full_chain"]
        assert lumped["probability"] == pytest.approx(full["probability"], rel=1e-12)
        assert lumped["expected_hitting_time"] == pytest.approx(full["expected_hitting_time"], rel=1e-12)
        assert full["expected_hitting_time"] == pytest.approx(report["criteria"][name]["expected_hitting_time"], rel=1e-12)
    assert "lumping" not in analyze(SCENARIOS / "waluigi_soft.toml").to_dict()


@pytest.mark.parametrize("args, expected", [
    (["--lump", "weak"], "argument --lump: invalid choice: 'weak'"),
    (["--lump-rtol", "1e-9"], "--lump-rtol needs --lump"),
    (["--lump", "amplitudes", "--lump-rtol", "1"], "argument --lump-rtol: must lie in [0, 1), got 1"),
])
def test_bad_lump_flags_fail_with_one_line(args, expected, capsys):
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err


def test_lump_criteria_without_criteria_fails_with_one_line(capsys):
    assert main(["analyze", str(SCENARIOS / "alice_coins.toml"), "--lump", "criteria"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lump criteria: the scenario has no criterion" in err, err
    with pytest.raises(UserError, match="--lump 'weak'"):
        analyze(SCENARIOS / "waluigi.toml", lump="weak")
    with pytest.raises(UserError, match="--lump-rtol"):
        analyze(SCENARIOS / "waluigi.toml", lump="amplitudes", lump_rtol=2.0)


def test_amplitudes_below_the_float_range_are_told_apart(capsys):
    """A waluigi that prints F with probability 1e-150: after j F's its amplitude is about
    1.1e-151^j, below the float range from j = 3 on; in log space the page-states with 3 and 4 F's
    stay two blocks (as doubles both amplitudes would be 0), and the text prints their log10."""
    sets = ["--set", "context.length=4", "--set", "simulacra.waluigi.states.hiding.emit.F=1e-150",
            "--set", "simulacra.waluigi.states.hiding.emit.U=1"]
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), *sets, "--lump", "amplitudes"]) == 0
    out = capsys.readouterr().out
    assert "6 blocks of 14 page-states; ordinarily lumpable: yes (defect 0)" in out
    assert "waluigi 10^-450.95 (below the float range)" in out and "waluigi 10^-600.95 (below the float range)" in out
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), *sets, "--lump", "amplitudes", "--json"]) == 0
    blocks = json.loads(capsys.readouterr().out)["lumping"]["blocks"]
    tiny = [b for b in blocks if b["values"][1] == 0.0 and b["log10_values"][1] is not None]
    assert sorted(round(b["log10_values"][1], 2) for b in tiny) == [-600.95, -450.95]
    assert [b["log10_values"][0] for b in blocks if b["values"][0] == 0.0] == [None]  # the luigi cannot print U: exactly 0


def naive_refinement(P, labels, rtol):
    """Second method for the refinement: every block a splitter in every round, signatures as
    Python sets, until the number of blocks stops growing (no smaller-half shortcut, no layout)."""
    P = sp.csr_matrix(P)
    labels = block_labels(labels)
    while True:
        m = labels.max() + 1
        W = (P @ sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), m))).tocoo()
        groups = {}
        for i, L, v in zip(W.row, W.col, W.data):
            groups.setdefault((labels[i], L), []).append((v, i))
        signature = [set() for _ in labels]
        for key, members in groups.items():
            members.sort()
            cluster = 0
            for (a, _), (b, i) in zip([members[0], *members[:-1]], members):
                cluster += a < (1 - rtol) * b
                signature[i].add((key, cluster))
        keys = {}
        refined = block_labels(np.array([keys.setdefault((labels[i], frozenset(s)), len(keys)) for i, s in enumerate(signature)]))
        if refined.max() == labels.max():
            return labels
        labels = refined


@pytest.mark.parametrize("scenario, sets", [("semiotic.toml", {"context.length": 8}), ("waluigi_soft.toml", {}),
                                            ("zeros.toml", {}), ("alice_coins.toml", {})])
def test_refinement_of_page_chains_matches_the_naive_one(scenario, sets):
    """On page chains lumped by amplitudes, the splitter refinement and the naive one give the same
    partition (up to the numbering of blocks)."""
    pc = build_chain(compile_scenario(load(SCENARIOS / scenario, sets)))
    given = partition_by_values(log_population_amplitudes(pc), log=True)
    fast = coarsest_lumping(pc.chain, given)
    slow = naive_refinement(pc.chain.P, given, 1e-12)
    assert fast.max() == slow.max() and refines(fast, slow) and refines(slow, fast)


def test_bitstrings_lump_onto_the_position_of_the_last_3():
    """bitstrings (at k = 6, prompt "3 1 1" here): the amplitudes give two blocks (a 3 in the window
    or not), not lumpable; the coarsest lumpable refinement is the position of the last 3 in the
    window (k positions, or none): k + 1 blocks whatever the number of page-states. While a 3 is in
    the window only the digits premise speaks (3 with probability 1/2), so the lumped chain is the
    run chain "r more non-3 tokens to go": ``E_r = 1 + E_{r-1} / 2 + E_k / 2`` gives ``E_r = 2^(k+1)
    (1 - 2^-r)``; from "N N N 3 1 1" (r = 4) that is 120, on the lumped and the full chain (and at
    the shipped k = 12 with its prompt, r = 4: 7680, which analyze prints)."""
    k = 6
    compiled = compile_scenario(load(SCENARIOS / "bitstrings.toml", {"context.length": k, "context.prompt": ["3", "1", "1"]}))
    pc = build_chain(compiled)
    given = partition_by_values(log_population_amplitudes(pc), log=True)
    assert given.max() + 1 == 2 and not lumpability(pc.chain, given).lumpable
    refined = coarsest_lumping(pc.chain, given)
    last_3 = np.array([max((i for i, t in enumerate(label.split()) if t == "3"), default=-1) for label in pc.labels()])
    assert refined.max() + 1 == k + 1 and refines(refined, last_3) and refines(last_3, refined)
    lump = analyze(compiled, chain=pc, lump="amplitudes")["lumping"]
    assert lump["coarsest_n_blocks"] == k + 1 and lump["lumped"] == "coarsest refinement"
    bits_only = lump["lumped_chain"]["criteria"]["bits_only"]
    assert bits_only["lumped"]["expected_hitting_time"] == pytest.approx(2 ** (k + 1) * (1 - 2**-4), rel=1e-13)
    assert bits_only["full_chain"]["expected_hitting_time"] == pytest.approx(120, rel=1e-12)
