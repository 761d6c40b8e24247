"""The exact helpers of studies 15 (start-independence) and 16 (peakedness), against closed forms:
two-state chains, a path, the binary entropy and the toy's next-token law."""

import math
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.exact.markov import MarkovChain

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "analysis"))

import s15_start  # analysis/ is put on the path above
import s16_peakedness


def two_state(a: float, b: float) -> MarkovChain:
    return MarkovChain(sp.csr_matrix(np.array([[1 - a, a], [b, 1 - b]])))


@pytest.mark.parametrize("a, b", [(0.3, 0.1), (1e-4, 2e-4), (0.9, 0.8)])
def test_tv_between_two_starts_is_the_second_eigenvalue_to_the_t(a, b):
    # two states: P^t(0, 0) - P^t(1, 0) = (1 - a - b)^t, so TV(t) = |1 - a - b|^t
    mc = two_state(a, b)
    times = np.array([1, 2, 3, 10, 1000, 123_457, 10**7])
    tv = s15_start.tv_curve(mc, 0, 1, times, s15_start.Powers(mc.P.toarray(), doublings=24))
    expected = np.abs(1 - a - b) ** times.astype(float)
    keep = expected > 1e-12
    assert np.allclose(tv[keep], expected[keep], rtol=1e-9, atol=0)
    assert np.all(tv[~keep] < 1e-11)


def test_powers_advance_matches_repeated_multiplication():
    rng = np.random.default_rng(3)
    P = rng.random((6, 6))
    P /= P.sum(axis=1, keepdims=True)
    v = rng.random(6)
    powers = s15_start.Powers(P, doublings=8)
    direct = v.copy()
    for _ in range(37):
        direct = direct @ P
    assert np.allclose(powers.advance(v, 37), direct, rtol=1e-13, atol=0)
    assert np.array_equal(powers.advance(v, 0), v)


def test_hit_within_on_a_path_is_the_binomial_tail():
    # a walk 0 -> 1 -> 2 moving right with probability q: T_2 = time of the 2nd success, P(T <= t) = 1 - (1-q)^t - t q (1-q)^(t-1)
    q = 0.3
    P = sp.csr_matrix(np.array([[1 - q, q, 0], [0, 1 - q, q], [0, 0, 1.0]]))
    mc = MarkovChain(P)
    target = np.array([False, False, True])
    for t in (0, 1, 2, 5, 40):
        expected = 1 - (1 - q) ** t - t * q * (1 - q) ** (t - 1) if t else 0.0
        assert s15_start.hit_within(mc, target, t)[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert s15_start.hit_within(mc, target, 3)[2] == 1.0


def test_prompts_are_every_window_of_pads_then_tokens():
    prompts = s15_start.prompts(3)
    assert len(prompts) == 2**4 - 1 and len(set(prompts)) == len(prompts)
    assert s15_start.page(("F", "U"), 4) == "N N F U" and s15_start.page((), 2) == "N N"


@pytest.mark.parametrize("q, rel", [(0.25, 1e-12), (1e-3, 1e-12), (1e-9, 1e-12), (0.5, 1e-7)])
def test_binary_stay_inverts_the_binary_entropy(q, rel):
    # at q = 1/2 the entropy is flat (h'(1/2) = 0): an ulp of H moves q by about sqrt(ulp), so 1e-8 is all it can give
    H = -(q * math.log(q) + (1 - q) * math.log1p(-q))
    assert s16_peakedness.binary_stay(np.array([H]))[0] == pytest.approx(1 / q, rel=rel)


def test_dense_stationary_of_two_states():
    a, b = 0.2, 0.05
    pi = s16_peakedness.dense_stationary(np.array([[1 - a, a], [b, 1 - b]]))
    assert np.allclose(pi, [b / (a + b), a / (a + b)], rtol=1e-13)


def test_most_likely_exit_on_a_path():
    # 0 -> 1 w.p. 0.2 (else stay), 1 -> 2 w.p. 0.5, 0 -> 2 directly w.p. 0.01: fewest steps 1 (the direct edge),
    # likeliest way 0 -> 1 -> 2 with probability 0.2 * 0.5 = 0.1 > 0.01
    P = sp.csr_matrix(np.array([[0.79, 0.2, 0.01], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]))
    steps, log10 = s16_peakedness.most_likely_exit(P, 0, np.array([False, False, True]))
    assert steps == 1 and log10 == pytest.approx(-1.0, abs=1e-12)
    assert s16_peakedness.most_likely_exit(P, 2, np.array([True, False, False])) == (None, None)  # never left


@pytest.mark.parametrize("name", ["waluigi_soft", "waluigi"])
def test_luigi_page_escape_on_the_chain_is_the_closed_form(name):
    for k in (2, 5):
        row = s16_peakedness.at_k(name, k)
        expected = s16_peakedness.luigi_escape(s16_peakedness.TOY[name], k)
        assert row["escape_F"] == pytest.approx(expected, rel=1e-12)
        assert row["stay_F"] == pytest.approx(1 / expected, rel=1e-12)
        assert row["H_F"] == pytest.approx(-(expected * math.log(expected) + (1 - expected) * math.log1p(-expected)), rel=1e-12)


def test_the_two_probability_spaces_agree_until_the_first_deletion():
    # seed 6.E: the chain's law over its first t tokens is the mixture's law over sequences while nothing is deleted
    # (t <= k + 1 = 9 on the k = 8 toy), and differs once the window has forgotten a token
    rows = {r["t"]: r for r in s15_start.two_spaces((9, 10))}
    assert rows[9]["max_relative"] < 1e-12 and rows[9]["tv"] < 1e-14
    assert rows[10]["tv"] > 1e-4 and rows[10]["amplitude_gap"] > 1e-3
    assert abs(rows[10]["chain_total"] - 1) < 1e-12 and abs(rows[10]["mixture_total"] - 1) < 1e-12


@pytest.mark.parametrize("a, b, level", [(0.3, 0.1, 0.25), (1e-3, 2e-3, 0.01), (0.2, 0.2, 0.6)])
def test_first_below_is_the_first_t_of_the_closed_form(a, b, level):
    # TV(t) = |1 - a - b|^t, so the first t with TV <= level is ceil(log(level) / log|1 - a - b|)
    mc = two_state(a, b)
    expected = math.ceil(math.log(level) / math.log(abs(1 - a - b)))
    assert s15_start.first_below(mc, 0, 1, level, s15_start.Powers(mc.P.toarray(), doublings=20)) == expected
    assert s15_start.first_below(mc, 0, 0, level, s15_start.Powers(mc.P.toarray(), doublings=4)) == 0
