"""The Mesa model against closed forms, and its seeding, agents and batch_run."""

import copy

import mesa
import numpy as np
import pytest

from ecology.errors import ImpossibleWindow
from ecology.model import EcologyModel, Premise, Simulacrum
from ecology.scenario import validate

from .conftest import SCENARIOS, misread, table


def stay_all_f(n, alpha, p):
    """P(next token F | window of n F's) for the seed's toy (SCIENCE.md §4), n <= k."""
    return (alpha + (1 - alpha) * p ** (n + 1)) / (alpha + (1 - alpha) * p**n)


def test_all_f_survival_matches_closed_form(toy):
    """P(all F through step m) = prod of stay probabilities: alpha + (1-alpha) p^m for m <= k,
    then a constant factor per step once the window holds k F's and deletes an F each step."""
    alpha, p, k, steps, reps = 0.9, 0.9, 8, 40, 20000
    toy["run"].update(steps=steps, replicates=reps, seed=123)
    model = EcologyModel(validate(toy))
    alive = np.ones(reps, dtype=bool)
    observed = [1.0]
    while model.running:
        model.step()
        alive &= model.token == 0
        observed.append(alive.mean())
    expect = [1.0]
    for m in range(steps):
        expect.append(expect[-1] * stay_all_f(min(m, k), alpha, p))
    observed, expect = np.array(observed), np.array(expect)
    assert np.isclose(expect[k], alpha + (1 - alpha) * p**k)
    # binomial standard error of a proportion over 20000 replicates is at most 0.0036; 5 sigma
    sigma = np.sqrt(expect * (1 - expect) / reps)
    assert np.all(np.abs(observed - expect) <= 5 * sigma + 1e-12)


def test_same_seed_same_numbers_other_seed_other_numbers(toy):
    toy["run"].update(steps=60, replicates=500)
    def run(seed):
        m = EcologyModel(validate(toy), rng=seed)
        while m.running:
            m.step()
        return m.datacollector.get_model_vars_dataframe(), m.reached_at.copy()
    a, b, c = run(1), run(1), run(2)
    assert a[0].equals(b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_temperature_zero_is_deterministic(toy):
    toy["sampling"] = {"temperature": 0.0}
    toy["run"].update(steps=30, replicates=50)
    m = EcologyModel(validate(toy))
    while m.running:
        m.step()
        assert np.all(m.token == 0)  # mu(F | all-F) = 0.9 + 0.1 * 0.9 > 1/2 always
    assert np.all(np.isfinite(m.datacollector.get_model_vars_dataframe().iloc[1:].to_numpy()))


def test_unbounded_window_long_run_has_no_nan(toy):
    toy["context"]["deletion"] = "none"
    toy["run"].update(steps=3000, replicates=200)
    m = EcologyModel(validate(toy))
    while m.running:
        m.step()
    df = m.datacollector.get_model_vars_dataframe()
    assert not df.drop(columns="surprisal").isna().any().any()
    assert m.context.window.shape[1] == 8 + 3000


def test_agents_hold_per_replicate_state(toy):
    toy["run"].update(steps=20, replicates=300)
    m = EcologyModel(validate(toy))
    premises = list(m.agents_by_type[Premise])
    simulacra = list(m.agents_by_type[Simulacrum])
    assert [p.spec.name for p in premises] == ["luigi", "waluigi"]
    while m.running:
        m.step()
    walu = next(s for s in simulacra if s.name == "waluigi")
    revealed = walu.state == 1
    has_u = (m.context.window == 1).any(axis=1)
    assert np.array_equal(revealed, has_u)  # the waluigi is revealed iff a U is in the window
    amps = np.exp(np.stack([p.log_amplitude for p in premises], axis=1))
    assert np.allclose(amps.sum(axis=1), 1.0)
    assert np.all(amps[has_u, 0] == 0.0)


def test_datacollector_columns_and_absorption(toy):
    toy["run"].update(steps=50, replicates=400)
    m = EcologyModel(validate(toy))
    while m.running:
        m.step()
    df = m.datacollector.get_model_vars_dataframe()
    assert len(df) == 51
    for col in ("luigi_mean", "luigi_q10", "luigi_q90", "waluigi_mean", "entropy", "surprisal",
                "free_energy", "reached_revealed", "holding_revealed"):
        assert col in df
    assert np.all(np.diff(df["reached_revealed"]) >= 0)
    assert df["reached_revealed"].iloc[-1] == np.mean(m.reached_at[0] >= 0)
    # the toy's U^k is absorbing: once revealed, always holding
    assert np.allclose(df["reached_revealed"], df["holding_revealed"])


def test_runtime_impossible_window_names_window_step_and_replicate():
    bad = misread()
    m = EcologyModel(validate(bad))
    with pytest.raises(ImpossibleWindow, match=r"step 4, replicate 0: the window 'b a b'"):
        while m.running:
            m.step()


def test_batch_run_with_scenario_overrides():
    results = mesa.batch_run(
        EcologyModel,
        parameters={"scenario": str(SCENARIOS / "waluigi.toml"), "context.length": [2, 6],
                    "replicates": 200, "steps": 30},
        rng=[7],
        max_steps=1000,
        number_processes=1,
        data_collection_period=-1,
        display_progress=False,
    )
    assert len(results) == 2
    assert sorted(r["context.length"] for r in results) == [2, 6]
    for r in results:
        assert r["Step"] == 30
        assert 0.0 <= r["reached_revealed"] <= 1.0
    short = next(r for r in results if r["context.length"] == 2)
    long = next(r for r in results if r["context.length"] == 6)
    assert short["reached_revealed"] > long["reached_revealed"]  # a shorter window reveals sooner


class WithoutMesaStepCounter(EcologyModel):
    """Mesa 4 drops ``Model.steps``: here it reads as a constant and ignores Mesa's increments."""

    steps = property(lambda self: -12345, lambda self, value: None)


def test_the_model_keeps_its_own_step_count(toy):
    """Mesa 4 readiness: nothing in the model reads Mesa's ``steps`` (stopping, first-hit times,
    the ledger): a model without it records exactly the same table."""
    toy["run"].update(steps=40, replicates=200)

    def table_of(cls):
        model = cls(validate(copy.deepcopy(toy)))
        while model.running:
            model.step()
        return model.generated, model.reached_at, model.datacollector.get_model_vars_dataframe()

    n, reached, df = table_of(EcologyModel)
    n_free, reached_free, df_free = table_of(WithoutMesaStepCounter)
    assert n == n_free == 40 and np.array_equal(reached, reached_free)
    assert df.equals(df_free) and df["ledger_generated"].iloc[-1] == 40


def test_population_labels_aggregate_members():
    coins = copy.deepcopy(table("coins"))
    coins["run"].update(steps=10, replicates=100)
    m = EcologyModel(validate(coins))
    assert m.mixture.labels == ["fair", "biased"]
    assert len(m.premise_agents) == 9
    members = [a.spec.prior for a in m.premise_agents if a.spec.label == "biased"]
    assert np.isclose(sum(members), 0.5) and len(set(members)) == 1
    ps = sorted(float(np.exp(a.spec.automaton.emit_logp[0, 0])) for a in m.premise_agents if a.spec.label == "biased")
    assert np.allclose(ps, 0.02 + 0.96 * (np.arange(8) + 0.5) / 8)  # quantile midpoints of uniform
    while m.running:
        m.step()
    assert np.allclose(m.population.sum(axis=1), 1.0)
