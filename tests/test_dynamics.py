"""Likelihoods, amplitudes and the next-token law against hand computations."""

import math

import numpy as np
import pytest

from ecology.core.compile import compile_scenario
from ecology.core.mixture import Mixture
from ecology.core.readers import SlidingReader
from ecology.numerics import sample, tempered
from ecology.scenario import validate

from .engines import random_chat_scenario

F, U, N = 0, 1, 2


def toy_mixture(toy, **overrides):
    for path, value in overrides.items():
        section, key = path.split(".")
        toy[section][key] = value
    return compile_scenario(validate(toy))


def test_hand_computed_likelihoods_and_amplitudes(toy):
    c = toy_mixture(toy)
    windows = np.array([[N, N, N, N, N, N, N, N], [N, N, N, N, N, N, F, F], [N, N, N, N, N, F, F, U], [F, F, F, F, F, F, F, F]])
    step = c.mixture.read(windows)
    p, alpha = 0.9, 0.9
    # luigi: 1 on all-F, 0 once U appears; waluigi: p^n while hiding, then 1 per U.
    lik = np.array([[1.0, 1.0], [1.0, p**2], [0.0, p * p * (1 - p)], [1.0, p**8]])
    joint = lik * [alpha, 1 - alpha]
    amp = joint / joint.sum(axis=1, keepdims=True)
    assert np.allclose(np.exp(step.log_amplitude), amp, atol=1e-15)
    # next-token law: luigi prints F; waluigi hiding prints F w.p. p, revealed prints U.
    pf = amp[:, 0] + amp[:, 1] * np.array([p, p, 0.0, p])
    assert np.allclose(np.exp(step.log_mu[:, F]), pf)
    assert np.allclose(np.exp(step.log_mu).sum(axis=1), 1.0)
    assert np.allclose(step.free_energy, -np.log(joint.sum(axis=1)))


def test_temperature_rescales_and_zero_is_greedy():
    log_mu = np.log(np.array([[0.2, 0.8], [0.5, 0.5], [0.7, 0.3]]))
    hot = np.exp(tempered(log_mu, 2.0))
    expect = np.sqrt([[0.2, 0.8], [0.5, 0.5], [0.7, 0.3]])
    assert np.allclose(hot, expect / expect.sum(axis=1, keepdims=True))
    greedy = np.exp(tempered(log_mu, 0.0))
    assert greedy.tolist() == [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]  # ties go to the first token


def test_sample_never_draws_a_zero_probability_token():
    with np.errstate(divide="ignore"):
        log_p = np.log(np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]] * 500))
    u = np.random.default_rng(0).random(1000)
    u[:4] = [0.0, 0.999999999, 0.0, 0.999999999]
    tokens = sample(log_p, u)
    assert set(tokens[::2]) == {1}
    assert set(tokens[1::2]) <= {0, 2}


@pytest.mark.parametrize("seed", range(6))
def test_sliding_reader_equals_reading_from_scratch(seed):
    """The two-stack reader of the simulator and the from-scratch reader agree at every step."""
    rng = np.random.default_rng(seed)
    c = random_chat_scenario(rng)
    k = c.scenario.context.length
    rows = 64
    window = np.tile(c.window, (rows, 1))
    readers = [SlidingReader(p.automaton, window) for p in c.premises]
    for _ in range(3 * k + 5):
        tokens = rng.integers(3, size=rows)
        window = np.concatenate([window, tokens[:, None]], axis=1)
        for r in readers:
            r.push(tokens)
        if window.shape[1] > k:
            window = window[:, 1:]
            for r in readers:
                r.pop(1, window)
        for r, p in zip(readers, c.premises):
            state, loglik = r.read()
            ref_state, ref_loglik = p.automaton.read(window)
            assert np.array_equal(state, ref_state)
            assert np.allclose(loglik, ref_loglik, rtol=1e-12, atol=1e-12)


def test_long_windows_stay_finite(toy):
    """k = 20000 all-F: waluigi's likelihood 0.9^20000 = e^-2107 underflows linear space, not log space."""
    c = toy_mixture(toy, **{"context.length": 20000, "context.prompt": ["F"] * 20000})
    step = c.mixture.read(c.window[None])
    assert np.all(np.isfinite(step.log_amplitude))
    assert math.isclose(step.log_amplitude[0, 1], math.log(0.1 / 0.9) + 20000 * math.log(0.9), rel_tol=1e-9)
    assert np.allclose(np.exp(step.log_mu).sum(), 1.0)


def test_population_amplitudes_sum_by_label():
    m = Mixture.__new__(Mixture)
    m.members = [np.array([0]), np.array([1, 2])]
    amps = m.population_amplitudes(np.log(np.array([[0.2, 0.3, 0.5]])))
    assert np.allclose(amps, [[0.2, 0.8]])
