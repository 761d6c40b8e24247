"""Martingale drift of amplitudes (Remark 9) and the token ledger."""

import copy

import numpy as np
import pytest

from ecology.core.compile import compile_scenario
from ecology.model import EcologyModel
from ecology.scenario import validate

from .conftest import table
from .engines import random_chat_scenario


@pytest.mark.parametrize("seed", range(8))
def test_no_deletion_means_zero_drift_for_random_scenarios(seed):
    """Conservation of expected evidence: with an unbounded window and T = 1, every premise's
    expected amplitude change is zero, whatever the premises (random automata, turns, windows)."""
    rng = np.random.default_rng(100 + seed)
    c = random_chat_scenario(rng)
    table_ = c.scenario.model_dump(exclude_none=True)
    table_["context"]["deletion"] = "none"
    c = compile_scenario(validate(table_))
    windows = rng.integers(3, size=(200, int(rng.integers(1, 12))))
    step = c.mixture.read(windows)
    drift = c.mixture.drift(windows, step, c.rule)
    assert drift.shape == (200, 3) and np.abs(drift).max() < 1e-12
    # the same windows under fifo lose evidence: the drift is not zero
    table_["context"]["deletion"] = "fifo"
    table_["context"]["length"] = windows.shape[1]
    f = compile_scenario(validate(table_))
    assert np.abs(f.mixture.drift(windows, step, f.rule)).max() > 1e-6


def test_leading_three_is_expected_to_help_bitstrings():
    """Remark 9: in the full window 311101011 the leading 3 (impossible for 'bitstrings') will be
    deleted next, so the bitstring premise's amplitude is expected to rise; without deletion, not."""
    data = copy.deepcopy(table("bitstrings"))
    data["context"]["length"] = 9
    data["run"].update(steps=3, replicates=50, drift=True)
    model = EcologyModel(validate(data))
    first = model.datacollector.get_model_vars_dataframe().iloc[0]
    assert first["bitstrings_mean"] == 0.0 and first["drift_bitstrings"] > 0.1
    assert np.isclose(first["drift_bitstrings"], -first["drift_digits"])
    data["context"]["deletion"] = "none"
    model = EcologyModel(validate(data))
    assert abs(model.datacollector.get_model_vars_dataframe().iloc[0]["drift_bitstrings"]) < 1e-12


def test_drift_per_premise_and_per_population():
    data = copy.deepcopy(table("coins"))
    data["run"].update(steps=5, replicates=100, drift=True)
    df = EcologyModel(validate(data)).datacollector.get_model_vars_dataframe()
    members = [f"drift_biased[{i}]" for i in range(8)]
    assert np.allclose(df[members].sum(axis=1), df["drift_biased"])
    assert np.allclose(df["drift_biased"], -df["drift_fair"], atol=1e-12)  # amplitudes sum to one


def test_token_ledger_balances(toy):
    toy["run"].update(steps=50, replicates=300)
    model = EcologyModel(validate(toy))
    while model.running:
        model.step()
    df = model.datacollector.get_model_vars_dataframe()
    assert df["ledger_generated"].iloc[-1] == 50
    # responsibilities sum to one per printed token: credits add up to the tokens printed
    assert np.allclose(df["credit_luigi"] + df["credit_waluigi"], df["ledger_generated"])
    # the window starts with k = 8 pads: the first 8 deletions remove pads, not tokens
    assert df["ledger_deleted"].iloc[8] == 0 and df["ledger_deleted"].iloc[-1] == 50 - 8
    # a U is always credited to the waluigi (luigi never prints it)
    assert np.all(np.diff(df["credit_waluigi"]) >= -1e-12)


def test_effective_number_of_premises():
    """exp(entropy of the amplitudes): S at an even spread (the toy's priors are not even, so
    compute it from them at step 0), 1 when one premise holds everything (the waluigi after a U
    under a luigi that cannot print U)."""
    data = copy.deepcopy(table("coins"))
    data["run"].update(steps=3, replicates=40)
    model = EcologyModel(validate(data))
    a = np.exp(model.mixture.log_prior)
    first = model.datacollector.get_model_vars_dataframe().iloc[0]
    assert np.isclose(first["effective_premises"], np.exp(-np.sum(a * np.log(a))), rtol=1e-12)
    toy = copy.deepcopy(table("waluigi"))
    toy["context"]["prompt"] = ["U"]
    toy["run"].update(steps=2, replicates=10)
    df = EcologyModel(validate(toy)).datacollector.get_model_vars_dataframe()
    assert np.allclose(df["effective_premises"], 1.0, atol=1e-12)
