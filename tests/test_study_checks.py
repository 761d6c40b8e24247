"""The checks behind four studies' referee fixes (analysis/s03, s05, s06, s11), each against a
closed form or a second method on small chains: the sparsity of T^j (boolean powers against the
closed forms of the toy and of a full-support chain), the exact ties of s05 at eps = 1 - p, the
exact expected drift of s06 (chain T alpha - alpha against the simulator's own drift), and the
BIC winner against n of s11 (crossovers against the closed form of BIC differences)."""

import sys

import numpy as np
import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "analysis"))

import s03_toy  # analysis/ is put on the path above
import s05_floors
import s06_martingale
import s11_decompose
from common import chain, scenario

from ecology.numerics import TIE_TOLERANCE


@pytest.mark.parametrize("k", [2, 3, 4])
def test_sparsity_of_powers_matches_the_closed_forms(k):
    """Pad-free block of T^j: (min(j, k) + 1 + k)/(k + 1)^2 on the toy (windows F^a U^(k-a)),
    2^(min(j, k) - k) with full support (waluigi_soft); padded columns vanish from j = k on; the
    boolean count equals the positive entries of the floating-point power."""
    for name in ("waluigi", "waluigi_soft"):
        _, pc = chain(scenario(name, context__length=k))
        fractions = s03_toy.support_fractions(pc, k + 2)
        for f in fractions:
            j = f["j"]
            closed = (min(j, k) + 1 + k) / (k + 1) ** 2 if name == "waluigi" else 2.0 ** (min(j, k) - k)
            assert f["pad-free"] == pytest.approx(closed, abs=1e-15)
            assert f["numeric"] == f["nonzero"]
            assert (f["pad columns"] == 0) == (j >= k)
        # T^k reaches every pad-free window from every page-state iff every law has full support
        everywhere = fractions[k - 1]["rows reaching every pad-free window"] == pc.chain.n_states
        assert everywhere == bool(s03_toy.full_support(pc).all()) == (name == "waluigi_soft")


def test_support_fractions_against_dense_matrix_powers():
    """A second method: nonzeros of numpy's matrix_power of T, entry by entry."""
    _, pc = chain(scenario("waluigi_soft", context__length=3, simulacra__luigi__eps=0.0))
    dense = pc.chain.P.toarray()
    for f in s03_toy.support_fractions(pc, 4):
        assert f["nonzero"] == int((np.linalg.matrix_power(dense, f["j"]) > 0).sum())


def test_ties_at_eps_equal_to_one_minus_p_are_exact():
    """At eps = 1 - p = 0.1 the waluigi's amplitude is 9^m / (1 + 9^m), m = u - f - 1 after the first
    U: exactly 1/2 where m = 0, and those are the page-states the tie rule sees."""
    s = scenario("waluigi_soft", context__length=5, simulacra__luigi__eps=0.1, simulacra__waluigi__eps=0.1)
    compiled, pc = chain(s)
    walu = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
    m = np.array([s05_floors.tie_odds_exponent(label) for label in pc.labels()])
    np.testing.assert_allclose(walu, 9.0**m / (1 + 9.0**m), rtol=0, atol=1e-15)
    assert np.array_equal(np.abs(walu - 0.5) <= TIE_TOLERANCE, m == 0)
    assert s05_floors.tie_odds_exponent("N N F F F") == -1  # no U: the prior odds 1/9
    assert s05_floors.tie_odds_exponent("F U U U F") == 0


def test_no_ties_away_from_eps_equal_to_one_minus_p():
    s = scenario("waluigi_soft", context__length=5, simulacra__luigi__eps=0.05, simulacra__waluigi__eps=0.05)
    compiled, pc = chain(s)
    walu = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
    assert not np.any(np.abs(walu - 0.5) <= TIE_TOLERANCE)


def test_exact_drift_is_the_simulators_drift_averaged_under_the_chains_law():
    """T alpha - alpha on each page-state equals the simulator's exact drift (Mixture.drift) on its
    window; E[drift(W_t)] is then that drift averaged under e_0 T^t (dense powers, a second method)."""
    s = scenario("waluigi", context__length=4, run__drift=True)
    compiled, pc = chain(s)
    windows = pc.windows[:, pc.memory :]
    simulator = compiled.mixture.drift(windows, compiled.mixture.read(windows), compiled.rule)
    label = compiled.mixture.labels.index("waluigi")
    per_state = simulator[:, compiled.mixture.members[label]].sum(axis=1)
    alpha = pc.population_amplitudes[:, label]
    np.testing.assert_allclose(pc.chain.P @ alpha - alpha, per_state, rtol=0, atol=1e-15)
    exact, n_states = s06_martingale.exact_drifts(s, "waluigi", 12)
    assert n_states == pc.chain.n_states
    dense = pc.chain.P.toarray()
    for t in (0, 1, 4, 5, 12):
        law = np.linalg.matrix_power(dense, t)[pc.initial]
        assert exact[t] == pytest.approx(float(law @ per_state), abs=1e-15)
    assert np.all(np.abs(exact[:4]) < 1e-15) and exact[4] > 1e-3  # nothing is deleted before the window is full


def test_sampled_drift_interval_covers_the_exact_expectation():
    s = scenario("waluigi", context__length=4, run__drift=True, run__steps=12, run__replicates=400, run__seed=3)
    sampled = s06_martingale.replicate_drifts(s, "waluigi")
    exact, _ = s06_martingale.exact_drifts(s, "waluigi", 12)
    assert sampled.shape == (13, 400)
    se = sampled.std(axis=1, ddof=1) / np.sqrt(400)
    assert np.all(np.abs(sampled.mean(axis=1) - exact) <= 4 * se + 1e-15)


def test_bic_winner_against_n_switches_at_the_closed_form_crossover():
    """Two fits with l_3 - l_2 = delta and d_3 - d_2 = 2: K = 3 wins once 2 n delta > 2 ln n."""
    delta = 0.00779
    loglik, params = {2: -4.63375, 3: -4.63375 + delta}, {2: 3, 3: 5}
    n = np.arange(2, 5000)
    winners = s11_decompose.exact_winners(loglik, params, n)
    first = int(n[np.argmax(winners == 3)])
    assert n[winners == 3].min() == first and np.all(winners[n >= first] == 3)
    assert first * delta > np.log(first) and (first - 1) * delta <= np.log(first - 1)


def test_settles_at():
    sizes = [100, 200, 400, 800]
    assert s11_decompose.settles_at(np.array([2, 3, 3, 3]), sizes, 3) == 200
    assert s11_decompose.settles_at(np.array([3, 2, 3, 3]), sizes, 3) == 400
    assert s11_decompose.settles_at(np.array([3, 3, 3, 2]), sizes, 3) is None
