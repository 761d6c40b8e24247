"""Time reversal, reversibility and transition-path theory (ecology.exact.paths) against closed
forms, deeptime's fixtures, dense linear algebra, brute-force path enumeration and simulation."""

import itertools
import json
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp
import tomli_w

from ecology.cli import main, print_reversibility, print_transition_paths
from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain
from ecology.exact.markov import ChainError, MarkovChain, StationaryLaw
from ecology.exact.paths import (
    Pathway,
    dominant_pathways,
    flux_pathways,
    reactive_flux,
    reversibility,
    time_reversal,
)
from ecology.exact.report import analyze, transition_paths_report
from ecology.scenario import load

from .conftest import SCENARIOS, table

# deeptime tests/markov/test_reactive_flux.py (TestReactiveFluxFunctions.setUpClass): a 5-state
# non-reversible toy system with A = [0], B = [4] and its reference solution.
DEEPTIME_P = np.array([[0.8, 0.15, 0.05, 0.0, 0.0],
                       [0.1, 0.75, 0.05, 0.05, 0.05],
                       [0.05, 0.1, 0.8, 0.0, 0.05],
                       [0.0, 0.2, 0.0, 0.8, 0.0],
                       [0.0, 0.02, 0.02, 0.0, 0.96]])
DEEPTIME_COMMITTOR = [0., 0.35714286, 0.42857143, 0.35714286, 1.]
DEEPTIME_BACKWARD = [1., 0.65384615, 0.53125, 0.65384615, 0.]
DEEPTIME_GROSS = [[0., 0.00771792, 0.00308717, 0., 0.],
                  [0., 0., 0.00308717, 0.00257264, 0.00720339],
                  [0., 0.00257264, 0., 0., 0.00360169],
                  [0., 0.00257264, 0., 0., 0.],
                  [0., 0., 0., 0., 0.]]
DEEPTIME_NET = [[0., 7.71791768e-03, 3.08716707e-03, 0., 0.],
                [0., 0., 5.14527845e-04, 0., 7.20338983e-03],
                [0., 0., 0., 0., 3.60169492e-03],
                [0., 4.33680869e-19, 0., 0., 0.],
                [0., 0., 0., 0., 0.]]


def test_deeptime_five_state_fixture():
    r = reactive_flux(MarkovChain(DEEPTIME_P), [0], [4])
    np.testing.assert_allclose(r.forward_committor, DEEPTIME_COMMITTOR, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(r.backward_committor, DEEPTIME_BACKWARD, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(r.gross_flux.toarray(), DEEPTIME_GROSS, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(r.net_flux.toarray(), DEEPTIME_NET, rtol=1e-6, atol=1e-8)
    assert r.total_flux == pytest.approx(0.0108050847458, rel=1e-10)
    assert r.rate == pytest.approx(0.0272727272727, rel=1e-10)
    assert 1 / r.rate == pytest.approx(36.6666666667, rel=1e-10)  # deeptime's mfpt
    every = dominant_pathways(r, fraction=1.0)
    assert [p.states for p in every] == [[0, 1, 4], [0, 2, 4], [0, 1, 2, 4]]
    np.testing.assert_allclose([p.flux for p in every], [0.00720338983051, 0.00308716707022, 0.000514527845036], rtol=1e-10)
    assert sum(p.share for p in every) == pytest.approx(1.0, abs=1e-12)
    major = dominant_pathways(r, fraction=0.95)
    assert [p.states for p in major] == [[0, 1, 4], [0, 2, 4]]


def test_deeptime_pathway_decomposition_fixture():
    """deeptime tests/markov/tools/flux/test_pathways.py: a small flux network, A = [0, 1], B = [6, 7]."""
    F = np.zeros((8, 8))
    F[0, 2], F[2, 6], F[1, 3], F[3, 4], F[3, 5] = 10.0, 10.0, 100.0, 30.0, 70.0
    F[4, 6], F[4, 7], F[5, 6], F[5, 7] = 5.0, 25.0, 30.0, 40.0
    total = F[[0, 1]].sum()
    for network in (F, sp.csr_matrix(F)):
        paths = flux_pathways(network, [0, 1], [6, 7], total, fraction=1.0)
        assert [p.states for p in paths] == [[1, 3, 5, 7], [1, 3, 5, 6], [1, 3, 4, 7], [0, 2, 6], [1, 3, 4, 6]]
        assert [p.flux for p in paths] == [40.0, 30.0, 25.0, 10.0, 5.0]
        half = flux_pathways(network, [0, 1], [6, 7], total, fraction=0.5)
        assert [p.flux for p in half] == [40.0, 30.0]


def deeptime_birth_death():
    """deeptime tests/markov/tools/flux/test_tpt.py: the birth–death chain with p[4] = 0.01, q[6] = 0.1,
    A = [0, 1], B = [8, 9]; returns P, up, down."""
    up, down = np.zeros(10), np.zeros(10)
    up[:-1], down[1:] = 0.5, 0.5
    up[4], down[6] = 0.01, 0.1
    P = np.diag(1 - up - down) + np.diag(up[:-1], 1) + np.diag(down[1:], -1)
    return P, up, down


def test_birth_death_closed_forms():
    """Reversible birth–death chain: pi in product form, q+ the sum of the resistances ``1 / (pi_k p_k)``
    up to each state over their total (deeptime's ``committor_forward``), q- = 1 - q+, the net flux
    the same F on every edge from a to b, and ``F = 1 / sum_{k=a}^{b-1} 1 / (pi_k p_k)``."""
    P, up, down = deeptime_birth_death()
    a, b = 1, 8
    pi = np.concatenate([[1.0], np.cumprod(up[:-1] / down[1:])])
    pi /= pi.sum()
    resistance = 1 / (pi[a:b] * up[a:b])
    q = np.zeros(10)
    q[a + 1 : b] = np.cumsum(resistance)[:-1] / resistance.sum()
    q[b:] = 1.0
    r = reactive_flux(MarkovChain(P), [0, 1], [8, 9])
    np.testing.assert_allclose(r.pi, pi, rtol=1e-13)
    np.testing.assert_allclose(r.forward_committor, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.backward_committor, 1 - q, rtol=1e-12, atol=1e-15)
    F = 1 / resistance.sum()
    assert r.total_flux == pytest.approx(F, rel=1e-12)
    net = r.net_flux.toarray()
    np.testing.assert_allclose(np.diag(net, 1)[a:b], F, rtol=1e-11)
    assert r.rate == pytest.approx(F / np.sum(pi * (1 - q)), rel=1e-12)
    middle = slice(b - 6, b)  # states 2..7
    assert r.mean_duration == pytest.approx(1 + np.sum((pi * q * (1 - q))[middle]) / F, rel=1e-12)
    [only] = dominant_pathways(r, fraction=1.0)
    assert only.states == list(range(a, b + 1)) and only.share == pytest.approx(1.0, rel=1e-10)


def test_two_state_chain():
    """A = {0}, B = {1}: F = pi_0 a = ab / (a + b), rate a, every reactive trajectory one step."""
    a, b = 0.3, 0.05
    r = reactive_flux(MarkovChain([[1 - a, a], [b, 1 - b]]), [0], [1])
    assert r.total_flux == pytest.approx(a * b / (a + b), rel=1e-14)
    assert r.rate == pytest.approx(a, rel=1e-14)
    assert r.mean_duration == 1.0
    assert dominant_pathways(r) == [Pathway([0, 1], r.total_flux, 1.0)]


def cycle_walk(n, clockwise, counter):
    P = np.zeros((n, n))
    for i in range(n):
        P[i, (i + 1) % n] += clockwise
        P[i, (i - 1) % n] += counter
        P[i, i] += 1 - clockwise - counter
    return P


def test_cycle_walk_reversal_and_defect():
    """On a cycle, pi is uniform, the reversal swaps clockwise and counter-clockwise, and
    ``D = sum over the n edges |p - q| / n = |p - q|``."""
    p, q = 0.5, 0.2
    mc = MarkovChain(cycle_walk(7, p, q))
    np.testing.assert_allclose(time_reversal(mc).P.toarray(), cycle_walk(7, q, p), atol=1e-15)
    [rev] = reversibility(mc)
    assert rev.reversible is False and rev.one_way_edges == 0
    assert rev.defect == pytest.approx(p - q, rel=1e-12)
    assert rev.relative_defect == pytest.approx((p - q) / (p + q), rel=1e-12)
    assert rev.largest_pair_defect == pytest.approx((p - q) / p, rel=1e-12)
    [symmetric] = reversibility(MarkovChain(cycle_walk(7, 0.3, 0.3)))
    assert symmetric.reversible and symmetric.defect < 1e-15


def test_cycle_walk_reactive_flux_goes_round_one_way():
    """Totally asymmetric walk on a 6-cycle (step clockwise w.p. p, else stay), A = {0}, B = {3}:
    every trajectory from 0 goes through 1, 2 before 3, so q+ = 1 on 1, 2 and 0 on 4, 5; q- = 1 on
    1, 2; F = pi_0 p = p / 6; rate F / pi(q- = 1 states: 0, 1, 2) = p / 3; duration 3 steps."""
    p = 0.4
    P = cycle_walk(6, p, 0.0)
    r = reactive_flux(MarkovChain(P), [0], [3])
    np.testing.assert_allclose(r.forward_committor, [0, 1, 1, 1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(r.backward_committor, [1, 1, 1, 0, 0, 0], atol=1e-15)
    assert r.total_flux == pytest.approx(p / 6, rel=1e-14)
    assert r.rate == pytest.approx(p / 3, rel=1e-14)
    # Little's law: the states 1, 2 are each inside a reactive trajectory w.p. 1/6; a trajectory
    # leaves 0 and waits a geometric 1/p steps in each of 1 and 2: 1 + 2 / p steps
    assert r.mean_duration == pytest.approx(1 + 2 / p, rel=1e-14)
    [rev] = reversibility(MarkovChain(P))
    assert rev.reversible is False and rev.one_way_edges == 6 and rev.largest_pair_defect == 1.0


def random_chain(rng, n, density=0.6):
    P = rng.random((n, n)) * (rng.random((n, n)) < density)
    P[np.arange(n), (np.arange(n) + 1) % n] += 0.1  # a cycle through every state: irreducible
    return P / P.sum(axis=1, keepdims=True)


def dense_tpt(P, A, B):
    """Everything by dense numpy linear algebra: pi from the left null space, the committors from
    ``(I - P) q = 0`` off A and B, the reversal ``D^-1 P^T D``."""
    n = len(P)
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    reversed_P = (P.T * pi[None, :]) / pi[:, None]

    def committor(M, to, avoid):
        x = np.zeros(n)
        x[to] = 1.0
        free = np.setdiff1d(np.arange(n), np.concatenate([to, avoid]))
        x[free] = np.linalg.solve(np.eye(len(free)) - M[np.ix_(free, free)], M[np.ix_(free, to)].sum(axis=1))
        return x

    forward, backward = committor(P, B, A), committor(reversed_P, A, B)
    flux = pi[:, None] * backward[:, None] * P * forward[None, :]
    np.fill_diagonal(flux, 0.0)
    net = np.maximum(flux - flux.T, 0.0)
    total = flux[A].sum()
    middle = np.setdiff1d(np.arange(n), np.concatenate([A, B]))
    return {"pi": pi, "reversed": reversed_P, "forward": forward, "backward": backward, "flux": flux, "net": net,
            "total": total, "rate": total / (pi @ backward),
            "duration": 1 + (pi * forward * backward)[middle].sum() / total}


@pytest.mark.parametrize("seed", range(6))
def test_random_chains_against_dense_linear_algebra(seed):
    rng = np.random.default_rng(seed)
    n = 9
    P = random_chain(rng, n)
    A, B = np.array([0, 1]), np.array([n - 2, n - 1])
    ref = dense_tpt(P, A, B)
    mc = MarkovChain(P)
    np.testing.assert_allclose(time_reversal(mc).P.toarray(), ref["reversed"], rtol=1e-11, atol=1e-15)
    r = reactive_flux(mc, A, B)
    np.testing.assert_allclose(r.forward_committor, ref["forward"], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(r.backward_committor, ref["backward"], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(r.gross_flux.toarray(), ref["flux"], rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(r.net_flux.toarray(), ref["net"], rtol=1e-8, atol=1e-14)
    assert r.total_flux == pytest.approx(ref["total"], rel=1e-11)
    assert r.rate == pytest.approx(ref["rate"], rel=1e-11)
    assert r.mean_duration == pytest.approx(ref["duration"], rel=1e-11)
    assert r.conservation_error < 1e-12
    # the first pathway's capacity is the best bottleneck over every simple path (brute force)
    paths = dominant_pathways(r, fraction=1.0, max_paths=50)
    best = max_bottleneck(ref["net"], A, B)
    assert paths[0].flux == pytest.approx(best, rel=1e-12)
    assert sum(p.share for p in paths) == pytest.approx(1.0, rel=1e-9)  # the net flux decomposes completely
    assert all(p.states[0] in A and p.states[-1] in B for p in paths)


def max_bottleneck(net, A, B):
    """The largest ``min`` of ``net`` along a simple path from A to B, over all simple paths."""
    n = len(net)
    middle = [s for s in range(n) if s not in A and s not in B]
    best = 0.0
    for length in range(len(middle) + 1):
        for inner in itertools.permutations(middle, length):
            for a in A:
                for b in B:
                    path = [a, *inner, b]
                    best = max(best, min(net[i, j] for i, j in itertools.pairwise(path)))
    return best


def cycle_products(P, cycle):
    forwards = np.prod([P[i, j] for i, j in zip(cycle, cycle[1:] + cycle[:1])])
    backwards = np.prod([P[j, i] for i, j in zip(cycle, cycle[1:] + cycle[:1])])
    return forwards, backwards


@pytest.mark.parametrize("seed", range(5))
def test_reversibility_agrees_with_kolmogorov_cycles(seed):
    """Kolmogorov's criterion: reversible iff every cycle has the same probability both ways
    (every cycle of length 3 and 4 checked by brute force on 6 states)."""
    rng = np.random.default_rng(100 + seed)
    n = 6
    W = rng.random((n, n)) * (rng.random((n, n)) < 0.7)
    W = W + W.T + np.eye(n) * 0.1
    W[np.arange(n), (np.arange(n) + 1) % n] += 0.1
    W[(np.arange(n) + 1) % n, np.arange(n)] += 0.1
    symmetric = W / W.sum(axis=1, keepdims=True)  # P_ij proportional to a symmetric weight: reversible
    general = random_chain(rng, n, density=1.0)
    for P, expected in ((symmetric, True), (general, False)):
        cycles = [list(c) for k in (3, 4) for c in itertools.permutations(range(n), k) if c[0] == min(c)]
        balanced = all(np.isclose(*cycle_products(P, c), rtol=1e-10, atol=1e-300) for c in cycles)
        assert balanced is expected
        [rev] = reversibility(MarkovChain(P))
        assert rev.reversible is expected
        if expected:
            np.testing.assert_allclose(time_reversal(MarkovChain(P)).P.toarray(), P, rtol=1e-12, atol=1e-16)
            assert rev.defect <= rev.tolerance
        else:
            assert rev.defect > 1e3 * rev.tolerance


def test_reversal_of_the_reversal_and_its_law():
    P = random_chain(np.random.default_rng(7), 12)
    mc = MarkovChain(P)
    reversed_chain = time_reversal(mc)
    np.testing.assert_allclose(reversed_chain.stationary_distributions[0], mc.stationary_distributions[0], rtol=1e-12)
    np.testing.assert_allclose(time_reversal(reversed_chain).P.toarray(), P, rtol=1e-11, atol=1e-16)


def test_reversal_of_a_class_of_a_reducible_chain_in_local_order():
    """Two closed classes and a transient state; the reversal of class 1 is on its own states."""
    P = np.zeros((5, 5))
    P[0, 0] = 1.0
    P[1, [1, 2]] = [0.5, 0.5]
    P[2, [3]] = 1.0
    P[3, [2, 4]] = [0.3, 0.7]
    P[4, [2]] = 1.0
    mc = MarkovChain(P)
    assert [c.tolist() for c in mc.recurrent_classes] == [[0], [2, 3, 4]]
    members = mc.recurrent_classes[1]
    ref = dense_tpt(P[np.ix_(members, members)], np.array([0]), np.array([2]))
    np.testing.assert_allclose(time_reversal(mc, 1).P.toarray(), ref["reversed"], rtol=1e-13)
    r = reactive_flux(mc, [2], [4, 0])  # B's state 0 lies in another class: in stationarity only 4 counts
    assert r.class_index == 1 and r.states.tolist() == [2, 3, 4]
    assert r.total_flux == pytest.approx(ref["total"], rel=1e-13)
    assert r.net_flux.shape == (5, 5) and r.net_flux[1].nnz == 0
    assert [p.states for p in dominant_pathways(r)] == [[2, 3, 4]]


def test_metastable_birth_death_flux_against_mpmath():
    """Wells joined by steps of 1e-12: the rate is about 1e-13 per step; the committors and the
    flux against the closed forms in 50-digit arithmetic."""
    n, escape = 12, 1e-12
    up, down = np.full(n, 0.4), np.full(n, 0.4)
    up[n // 2 - 1], down[n // 2] = escape, escape
    up[-1] = down[0] = 0.0
    P = np.diag(1 - up - down) + np.diag(up[:-1], 1) + np.diag(down[1:], -1)
    r = reactive_flux(MarkovChain(P), [0], [n - 1])
    mpmath.mp.dps = 50
    weights = [mpmath.mpf(1)]
    for k in range(n - 1):
        weights.append(weights[-1] * mpmath.mpf(up[k]) / mpmath.mpf(down[k + 1]))
    pi = [w / sum(weights) for w in weights]
    resistance = [1 / (pi[k] * mpmath.mpf(up[k])) for k in range(n - 1)]
    F = 1 / sum(resistance)
    q = [mpmath.mpf(0)] + [sum(resistance[:k]) / sum(resistance) for k in range(1, n)]
    rate = F / sum(p * (1 - x) for p, x in zip(pi, q))
    duration = 1 + sum(p * x * (1 - x) for p, x in zip(pi[1:-1], q[1:-1])) / F
    assert r.total_flux == pytest.approx(float(F), rel=1e-11)
    assert r.rate == pytest.approx(float(rate), rel=1e-11)
    assert r.mean_duration == pytest.approx(float(duration), rel=1e-9)
    np.testing.assert_allclose(r.forward_committor, [float(x) for x in q], rtol=1e-10, atol=1e-25)


def test_rate_against_simulation():
    """Count the reactive trajectories of a long simulated trajectory: completions per step (F),
    per step with A the last set visited (k_AB) and their mean length, each against TPT within
    five standard errors of 40 batch means."""
    rng = np.random.default_rng(2024)
    P = random_chain(rng, 7, density=0.5)
    A, B = [0], [5, 6]
    r = reactive_flux(MarkovChain(P), A, B)
    steps = 400_000
    cumulative = np.cumsum(P, axis=1)
    uniforms = rng.random(steps)
    path = np.empty(steps, dtype=np.int64)
    state = 0
    for t in range(steps):
        path[t] = state
        state = min(int(np.searchsorted(cumulative[state], uniforms[t], side="right")), 6)
    in_a, in_b = np.isin(path, A), np.isin(path, B)
    marked = np.where(in_a | in_b, np.arange(steps), -1)
    last = np.maximum.accumulate(marked)  # the last time at or before t in A or B
    last_a = np.maximum.accumulate(np.where(in_a, np.arange(steps), -1))
    came_from_a = (last >= 0) & in_a[np.maximum(last, 0)]
    arrivals = np.flatnonzero(in_b[1:] & came_from_a[:-1]) + 1  # entering B with A visited more recently
    batches = np.array_split(np.arange(steps), 40)
    per_batch = np.array([[np.isin(arrivals, b).sum(), came_from_a[b].sum()] for b in batches], dtype=float)
    F_batches = per_batch[:, 0] / np.array([len(b) for b in batches])
    k_batches = per_batch[:, 0] / per_batch[:, 1]
    lengths = arrivals - last_a[arrivals]
    for estimates, exact in ((F_batches, r.total_flux), (k_batches, r.rate)):
        assert abs(estimates.mean() - exact) < 5 * estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(lengths.mean() - r.mean_duration) < 5 * lengths.std(ddof=1) / np.sqrt(len(lengths))
    assert len(arrivals) > 2000


def test_no_closed_class_holds_both_sets():
    """The usual absorbing page chain: A and B are two absorbing states."""
    P = [[1, 0, 0], [0.5, 0, 0.5], [0, 0, 1]]
    with pytest.raises(ChainError, match="needs A and B in one closed class.*only the committor"):
        reactive_flux(MarkovChain(P), [0], [2])


def test_bad_arguments():
    mc = MarkovChain(DEEPTIME_P)
    with pytest.raises(ChainError, match="disjoint"):
        reactive_flux(mc, [0, 1], [1])
    with pytest.raises(ChainError, match="no closed class holds"):
        reactive_flux(mc, [], [4])
    with pytest.raises(ChainError, match="state indices must be in 0 .. 4"):
        reactive_flux(mc, [0], [5])
    with pytest.raises(ChainError, match="class_index must be an integer from 0 to 0"):
        time_reversal(mc, 1)
    r = reactive_flux(mc, [0], [4])
    with pytest.raises(ValueError, match="fraction must be in"):
        dominant_pathways(r, fraction=0)
    with pytest.raises(ValueError, match="max_paths must be a positive integer"):
        dominant_pathways(r, max_paths=0)
    two = MarkovChain(sp.block_diag([sp.csr_matrix(DEEPTIME_P), DEEPTIME_P]).tocsr())
    with pytest.raises(ChainError, match=r"closed classes \[0, 1\] each hold states of both A and B: give class_index"):
        reactive_flux(two, [0, 5], [4, 9])
    assert reactive_flux(two, [0, 5], [4, 9], class_index=1).total_flux == pytest.approx(0.0108050847458, rel=1e-10)


# -- the report and the command line ------------------------------------------------------------

def soft_with_sets(tmp_path):
    """waluigi_soft (floors: one closed class) at k = 6 with the luigi and waluigi sets (amplitude above 1/2)."""
    scenario = table("waluigi_soft")
    scenario["context"]["length"] = 6
    scenario["sets"] = {"luigi": {"population": "luigi", "above": 0.5}, "waluigi": {"population": "waluigi", "above": 0.5}}
    path = tmp_path / "soft.toml"
    path.write_bytes(tomli_w.dumps(scenario).encode())
    return path


def test_analyze_reports_the_transition_paths_and_reversibility(tmp_path):
    path = soft_with_sets(tmp_path)
    compiled = compile_scenario(load(path))
    pc = build_chain(compiled, 10_000)
    report = analyze(compiled, chain=pc, hit="waluigi", before="luigi")
    paths = report.hit["transition_paths"]
    amplitudes = pc.population_amplitudes  # columns in the order of the population labels
    labels = compiled.mixture.labels
    luigi = amplitudes[:, labels.index("luigi")] > 0.5
    waluigi = amplitudes[:, labels.index("waluigi")] > 0.5
    direct = reactive_flux(pc.chain, luigi, waluigi)
    assert paths["class"] == 0 and paths["note"] is None
    assert paths["flux"] == direct.total_flux and paths["rate"] == direct.rate
    assert paths["mean_duration"] == direct.mean_duration
    best = dominant_pathways(direct, 0.9, 5)
    assert [p["states"] for p in paths["pathways"]] == [[pc.label(i) for i in p.states] for p in best]
    assert sum(p["share"] for p in paths["pathways"]) >= 0.9
    [closed] = report.closed_classes
    assert closed["reversible"] is False and closed["one_way_edges"] > 0  # fifo shifts the window: one-way moves
    assert 0 < closed["detailed_balance_relative_defect"] <= 1
    json.loads(report.to_json())  # no NaN or inf: valid JSON


def test_analyze_of_an_absorbing_chain_says_why_there_are_no_transition_paths(capsys):
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--hit", "U U U",
                 "--before", "F F F"]) == 0
    out = capsys.readouterr().out
    assert "transition paths 'F F F' -> 'U U U' in stationarity: not defined: no closed class holds page-states of " \
           "both sets" in out
    assert main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--hit", "U U U",
                 "--before", "F F F", "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)["hit"]["transition_paths"]
    assert paths["flux"] is None and paths["pathways"] is None and paths["note"].startswith("not defined")


def test_analyze_prints_the_transition_paths(tmp_path, capsys):
    assert main(["analyze", str(soft_with_sets(tmp_path)), "--hit", "waluigi", "--before", "luigi"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("transition paths 'luigi' -> 'waluigi' in stationarity"))
    assert "reactive flux" in line and "rate" in line and "mean duration" in line
    assert "    share " in out
    assert "not reversible (unbalanced stationary flux" in out


def test_an_untrusted_law_decides_nothing_it_cannot_defend():
    """A law whose L1 error estimate is above 1e-6: no reversal, no flux, and reversibility only
    where the graph decides it (a one-way transition)."""
    symmetric, one_way = MarkovChain(cycle_walk(5, 0.3, 0.3)), MarkovChain(cycle_walk(5, 0.4, 0.0))
    for mc in (symmetric, one_way):
        law = mc.stationary_laws[0]
        mc.__dict__["stationary_laws"] = [StationaryLaw(law.pi, law.method, 1e-3, "made untrusted for the test")]
    with pytest.raises(ChainError, match=r"not trusted \(L1 error estimate 1.0e-03\)"):
        time_reversal(symmetric)
    with pytest.raises(ChainError, match="not trusted"):
        reactive_flux(symmetric, [0], [2])
    [undecided] = reversibility(symmetric)
    assert undecided.reversible is None and undecided.defect is None and "not decided" in undecided.note
    [decided] = reversibility(one_way)
    assert decided.reversible is False and decided.one_way_edges == 5 and decided.note is None


@pytest.mark.parametrize("entry, expected", [
    ({"reversible": True, "detailed_balance_defect": 1e-17, "detailed_balance_relative_defect": 2e-17, "one_way_edges": 0,
      "reversibility_note": None},
     "      reversible (detailed balance holds within the law's accuracy: unbalanced stationary flux 1e-17 per step, "
     "2e-17 of the flux between distinct states)"),
    ({"reversible": False, "detailed_balance_defect": None, "detailed_balance_relative_defect": None, "one_way_edges": 3,
      "reversibility_note": None},
     "      not reversible (3 transitions have no reverse)"),
    ({"reversible": None, "detailed_balance_defect": None, "detailed_balance_relative_defect": None, "one_way_edges": 0,
      "reversibility_note": "not decided: the stationary law is not trusted (L1 error estimate 1.0e-03)"},
     "      reversibility not decided: the stationary law is not trusted (L1 error estimate 1.0e-03)"),
])
def test_the_reversibility_line(entry, expected, capsys):
    print_reversibility(entry)
    assert capsys.readouterr().out == expected + "\n"


def test_a_flux_below_the_float_range_is_given_by_its_log10():
    """A birth–death chain 0 - 1 - 2 - 3 whose middle edge has probability 1e-300 both ways, its
    middle states stationary mass 1e-10: the flux (about 1e-310) and the rate are below the normal
    doubles and are given by their log10, against the closed forms in 50-digit arithmetic."""
    up, down = np.array([1e-10, 1e-300, 0.5, 0.0]), np.array([0.0, 0.5, 1e-300, 1e-10])
    P = np.diag(1 - up - down) + np.diag(up[:-1], 1) + np.diag(down[1:], -1)
    r = reactive_flux(MarkovChain(P), [0], [3])
    mpmath.mp.dps = 50
    weights = [mpmath.mpf(1)]
    for k in range(3):
        weights.append(weights[-1] * mpmath.mpf(up[k]) / mpmath.mpf(down[k + 1]))
    pi = [w / sum(weights) for w in weights]
    resistance = [1 / (pi[k] * mpmath.mpf(up[k])) for k in range(3)]
    F = 1 / sum(resistance)
    q = [sum(resistance[:k]) / sum(resistance) for k in range(4)]
    q_back = [sum(resistance[k:]) / sum(resistance) for k in range(4)]  # 1 - q, without the cancellation
    rate = F / sum(p * x for p, x in zip(pi, q_back))
    duration = 1 + sum(p * x * y for p, x, y in zip(pi[1:3], q[1:3], q_back[1:3])) / F
    assert r.total_flux is None and r.rate is None and r.conservation_error is None
    assert r.log10_total_flux == pytest.approx(float(mpmath.log10(F)), abs=1e-12)
    assert r.log10_rate == pytest.approx(float(mpmath.log10(rate)), abs=1e-12)
    assert r.mean_duration == pytest.approx(float(duration), rel=1e-12)
    assert "below the float range" in r.note and "rate is beyond the float range" in r.note
    with pytest.raises(ChainError, match="below the float range, so its pathways are not computed"):
        dominant_pathways(r)


def test_the_report_gives_the_log10_of_a_flux_below_the_float_range(capsys):
    up, down = np.array([1e-10, 1e-300, 0.5, 0.0]), np.array([0.0, 0.5, 1e-300, 1e-10])
    P = np.diag(1 - up - down) + np.diag(up[:-1], 1) + np.diag(down[1:], -1)
    pc = SimpleNamespace(chain=MarkovChain(P), initial=0, label=lambda i: f"s{i}")
    paths = transition_paths_report(pc, np.array([True, False, False, False]), np.array([False, False, False, True]))
    assert paths["flux"] is None and paths["rate"] is None and paths["pathways"] is None
    assert paths["flux_log10"] == -310.0 and paths["rate_log10"] == -309.699 and paths["mean_duration"] == pytest.approx(5.0)
    assert "mean_duration_log10" not in paths and "below the float range" in paths["note"]
    print_transition_paths(paths, "s3", "s0")
    out = capsys.readouterr().out
    assert "reactive flux 10^-310.0 (beyond a double) per step, rate 10^-309.699 (beyond a double)" in out
    assert "mean duration 5 steps" in out
