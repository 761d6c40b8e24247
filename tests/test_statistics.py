"""Survival statistics, reached versus holding, per-premise amplitudes, ties at thresholds and
sweep axis scales: the figures a researcher publishes, checked against closed forms and the
exact chain."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError
from ecology.exact.chain import _keys, build_chain
from ecology.exact.report import criterion_figures
from ecology.model import EcologyModel
from ecology.numerics import TIE_TOLERANCE
from ecology.results import simulate, summarize
from ecology.scenario import validate
from ecology.statistics import kaplan_meier, median_time, restricted_mean, time_to_event, wilson

from .conftest import table

# ---------------------------------------------------------------------------------------------
# The statistics themselves


def test_wilson_interval_known_values():
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and math.isclose(hi, 0.16113, abs_tol=1e-4)  # textbook value for 0/20
    lo, hi = wilson(50, 100)
    assert math.isclose(lo, 0.40383, abs_tol=1e-4) and math.isclose(hi, 0.59617, abs_tol=1e-4)


def test_kaplan_meier_without_censoring_is_the_empirical_fraction_and_its_wilson_interval():
    rng = np.random.default_rng(1)
    times = rng.integers(0, 60, size=500)
    times[rng.random(500) < 0.3] = -1  # not reached by the horizon 50 (times >= 50 too)
    times[times > 50] = -1
    km = kaplan_meier(times, 50)
    for t in (0, 10, 30, 50):
        alive = np.mean((times < 0) | (times > t))
        assert math.isclose(km.survival[t], alive, abs_tol=1e-12)
        lo, hi = wilson(alive * 500, 500)
        assert math.isclose(km.lower[t], lo, abs_tol=1e-9) and math.isclose(km.upper[t], hi, abs_tol=1e-9)
    assert km.censored == int(np.sum(times < 0))
    # restricted mean = mean of min(T, N) over replicates, and its standard error = sd / sqrt(n)
    capped = np.where(times < 0, 50, times)
    mean, se = restricted_mean(km)
    assert math.isclose(mean, capped.mean(), rel_tol=1e-12)
    assert math.isclose(se, capped.std() / math.sqrt(500), rel_tol=1e-9)


def test_kaplan_meier_with_censoring_by_hand():
    # events at 1, 2, 4; censored at 2 and 3 (observed False) and at the horizon 5; 6 replicates.
    # At risk: 6 at step 1, 5 at step 2 (a censoring at t is still at risk at t), 2 at step 4.
    times = np.array([1, 2, 2, 3, 4, -1])
    observed = np.array([True, True, False, False, True, False])
    km = kaplan_meier(times, 5, observed)
    expected = [1.0, 5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 1 / 2, 5 / 6 * 4 / 5 * 1 / 2]
    assert np.allclose(km.survival, expected)
    assert list(km.at_risk[1:5]) == [6, 5, 3, 2]
    greenwood = expected[2] ** 2 * (1 / (6 * 5) + 1 / (5 * 4))
    assert math.isclose(km.variance[2], greenwood)
    assert km.censored == 3


def test_median_only_when_the_curve_crosses_one_half():
    never = time_to_event(np.array([3, -1, -1, -1, -1]), 10)
    assert never["time_median"] is None and never["time_median_lo"] is None
    times = np.arange(100)  # uniform on 0..99, horizon 200: S(t) = (99 - t) / 100
    m = median_time(kaplan_meier(times, 200))
    assert m["time_median"] == 49 and m["time_median_lo"] < 49 < m["time_median_hi"]
    figures = time_to_event(times, 200)
    assert "time_mean" not in figures and figures["time_mean_given_reached"] == 49.5


# ---------------------------------------------------------------------------------------------
# Censoring against the exact chain: the toy at k = 16 from the empty window


def closed_form_expected_hitting_time(alpha, p, k, terms=100_000):
    """E[T] for U^k in the toy: the first U is printed at step m + 1 with probability
    prod_{j < m} s_j (1 - s_m), s_n = (alpha + (1-alpha) p^(n+1)) / (alpha + (1-alpha) p^n) with
    n = min(j, k) F's in the window; from then on the waluigi alone prints U, so T = m + k."""
    n = np.minimum(np.arange(terms), k)
    stay = (alpha + (1 - alpha) * p ** (n + 1)) / (alpha + (1 - alpha) * p**n)
    alive = np.concatenate([[1.0], np.cumprod(stay)[:-1]])
    return float(np.sum(alive * (1 - stay) * (np.arange(terms) + k)))


def test_censored_times_agree_with_the_exact_chain(toy):
    toy["context"]["length"] = 16
    toy["run"].update(steps=300, replicates=4000, seed=11)
    s = validate(toy)
    exact = criterion_figures(compile_scenario(s), 100_000)["revealed"]
    assert math.isclose(exact["expected_hitting_time"], closed_form_expected_hitting_time(0.9, 0.9, 16), rel_tol=1e-9)
    assert math.isclose(exact["expected_hitting_time"], 485.524, abs_tol=1e-3) and exact["closed"]
    # the README's settings (luigi prior 0.99 beside the waluigi's 0.1: alpha = 0.99 / 1.09) give 533.86
    readme = copy.deepcopy(toy)
    readme["premises"]["luigi"]["prior"] = 0.99
    other = criterion_figures(compile_scenario(validate(readme)), 100_000)["revealed"]["expected_hitting_time"]
    assert math.isclose(other, closed_form_expected_hitting_time(0.99 / 1.09, 0.9, 16), rel_tol=1e-9)
    assert math.isclose(other, 533.863, abs_tol=1e-3)
    summary = summarize(simulate(s))
    c = summary["criteria"]["revealed"]
    # the restricted mean estimates E[min(T, N)]; its standard error comes from the 4000 replicates
    assert abs(c["restricted_mean"] - exact["restricted_mean"]) <= 5 * c["restricted_mean_se"]
    # the KM curve: binomial standard error of each point over 4000 replicates, 5 sigma
    curve = np.array(exact["reached_curve"])
    sd = np.sqrt(curve * (1 - curve) / 4000)
    assert np.all(np.abs(np.array(c["reached_curve"]) - curve) <= 5 * sd + 1e-12)
    assert np.all(np.array(c["reached_curve_lo"]) <= np.array(c["reached_curve"]))
    # censoring is visible, and no field calls the conditional mean a mean time
    assert c["censored"] > 1000 and c["time_median"] is None
    assert c["time_mean_given_reached"] < c["restricted_mean"] < exact["expected_hitting_time"]
    text = json.dumps(summary)
    assert '"time_mean"' not in text and "absorbed" not in text


# ---------------------------------------------------------------------------------------------
# Reached versus holding


def test_reached_and_holding_differ_on_a_periodic_criterion_that_is_left():
    """With softmax floors the window U^k repeats (period 1) but is left again: reached by t and
    holding at t are different numbers, and the exact chain says the set is not closed."""
    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = 4
    data["simulacra"]["luigi"]["eps"] = data["simulacra"]["waluigi"]["eps"] = 0.3
    data["run"].update(steps=150, replicates=2000)
    data["absorption"] = {"repeating": {"periodic": 1}}
    s = validate(data)
    result = simulate(s)
    summary = summarize(result)
    c = summary["criteria"]["repeating"]
    assert c["reached"] > c["holding_final"] + 0.2
    df = result.steps
    assert np.all(df["reached_repeating"] >= df["holding_repeating"])
    assert np.all(np.diff(df["reached_repeating"]) >= 0)
    exact = criterion_figures(compile_scenario(s), 100_000)["repeating"]
    assert not exact["closed"]
    sd = math.sqrt(exact["holding_curve"][-1] * (1 - exact["holding_curve"][-1]) / 2000)
    assert abs(c["holding_final"] - exact["holding_curve"][-1]) <= 5 * sd


def test_two_exclusive_outcomes_of_a_chat_are_reached_by_many_but_never_held_together():
    data = copy.deepcopy(table("chat"))
    data["context"]["length"] = 6
    data["run"].update(steps=300, replicates=1000)
    data["absorption"] = {"helpful_certain": {"population": "helpful", "above": 0.99},
                          "waluigi_certain": {"population": "waluigi", "above": 0.99}}
    result = simulate(validate(data))
    summary = summarize(result)
    helpful, waluigi = (summary["criteria"][n] for n in ("helpful_certain", "waluigi_certain"))
    assert helpful["reached"] + waluigi["reached"] > 1.2  # both reached by most replicates
    assert helpful["holding_final"] + waluigi["holding_final"] <= 1.0  # they exclude each other
    assert not np.any(result.holding_final["helpful_certain"] & result.holding_final["waluigi_certain"])


def test_console_prints_reached_and_holding(tmp_path, capsys):
    from ecology.cli import main

    from .conftest import SCENARIOS

    assert main(["run", str(SCENARIOS / "waluigi.toml"), "--steps", "30", "--replicates", "200", "--set",
                 "context.length=3", "--exact", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "reached by step 30" in out and "holding at step 30" in out and "restricted mean" in out
    assert "exact chain: E[T]" in out and "P(holding at 30)" in out and "set closed" in out
    assert "mean time given reached by step 30" in out


# ---------------------------------------------------------------------------------------------
# Per-premise amplitudes and population members


def test_premise_amplitudes_sum_to_population_amplitudes_and_members_are_listed(tmp_path):
    from ecology.cli import main

    data = copy.deepcopy(table("coins"))
    data["run"].update(steps=40, replicates=300)
    result = simulate(validate(data))
    members = [f"premise_biased[{i}]_mean" for i in range(8)]
    assert np.allclose(result.steps[members].sum(axis=1), result.steps["biased_mean"])
    assert np.allclose(result.steps["premise_fair_mean"], result.steps["fair_mean"])
    from ecology.results import premise_table, replicate_table

    reps = replicate_table(result)
    assert np.allclose(reps[[f"premise_amplitude_biased[{i}]" for i in range(8)]].sum(axis=1), reps["amplitude_biased"])
    premises = premise_table(result)
    biased = premises[premises["population"] == "biased"]
    assert np.allclose(biased["value"], 0.02 + 0.96 * (np.arange(8) + 0.5) / 8)
    assert np.allclose(biased["prior"], 0.5 / 8) and set(biased["parameter"]) == {"p"}
    assert math.isclose(premises["largest_final"].sum(), 1.0)
    path = tmp_path / "coins.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--json"]) == 0
    written = pd.read_csv(tmp_path / "run" / "premises.csv")
    assert list(written["premise"])[:2] == ["fair", "biased[0]"]
    resolved = (tmp_path / "run" / "scenario.toml").read_text()
    assert "biased[7]: p = 0.92" in resolved
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert math.isclose(summary["premises"]["biased[3]"]["value"], 0.02 + 0.96 * 3.5 / 8)
    assert summary["premises"]["fair"]["value"] is None
    json.dumps(summary, allow_nan=False)  # valid JSON: no NaN anywhere


def test_population_members_may_draw_their_prior():
    data = copy.deepcopy(table("coins"))
    data["populations"]["biased"]["weights"] = {"kind": "values", "values": [1, 2, 3, 4, 5, 6, 7, 8]}
    data["run"].update(steps=2, replicates=10)
    model = EcologyModel(validate(data))
    priors = np.exp(model.mixture.log_prior)
    assert np.allclose(priors[1:], 0.5 * np.arange(1, 9) / 36) and math.isclose(priors[0], 0.5)
    data["populations"]["biased"]["weights"] = {"kind": "values", "values": [1, 0]}
    with pytest.raises(ScenarioError, match=r"populations\.biased\.weights"):
        validate(data)
    data["populations"]["biased"]["weights"] = {"kind": "beta", "a": 2, "b": 2}
    data["populations"]["biased"]["draw"] = "random"
    a = np.exp(EcologyModel(validate(data)).mixture.log_prior)
    assert math.isclose(a[1:].sum(), 0.5) and len(set(np.round(a[1:], 12))) == 8


# ---------------------------------------------------------------------------------------------
# Ties at a threshold


def test_ties_at_the_threshold_are_decided_alike_by_simulation_and_exact_chain():
    """eps = 0.1 = 1 - p with priors 0.9 / 0.1: many windows give the waluigi amplitude exactly
    1/2; the simulator (sliding likelihoods) and the exact chain (read from scratch) round it
    differently, and the tie rule makes both say "not above"."""
    data = copy.deepcopy(table("waluigi_soft"))
    data["simulacra"]["luigi"]["eps"] = data["simulacra"]["waluigi"]["eps"] = 0.1
    data["context"]["length"] = 6
    data["run"].update(steps=120, replicates=400, seed=3)
    data["absorption"] = {"waluigi_half": {"population": "waluigi", "above": 0.5}}
    s = validate(data)
    compiled = compile_scenario(s)
    pc = build_chain(compiled)
    amplitude = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
    assert np.sum(np.abs(amplitude - 0.5) <= TIE_TOLERANCE) >= 10  # exact ties exist
    mask = pc.holds(compiled.criteria[0])
    base = compiled.n_tokens + 2
    keys = _keys(pc.windows, base)
    order = np.argsort(keys)
    model = EcologyModel(s)
    compared = ties_seen = 0
    while True:
        windows = model.context.last(6).astype(pc.windows.dtype)
        state = order[np.searchsorted(keys[order], _keys(windows, base))]
        assert np.array_equal(model.holding[0], mask[state])
        compared += len(state)
        ties_seen += int(np.sum(np.abs(amplitude[state] - 0.5) <= TIE_TOLERANCE))
        if not model.running:
            break
        model.step()
    assert ties_seen > 1000 and compared == 400 * 121


# ---------------------------------------------------------------------------------------------
# Sweep axes follow the grid's kind


def test_axis_scale_follows_the_grid_kind():
    import matplotlib.pyplot as plt

    from ecology import plots
    from ecology.sweep.grid import make_plan, parse_values

    toy = table("waluigi")
    plan = make_plan(toy, {"context.length": parse_values("2:16:*2"), "sampling.temperature": parse_values("0.25:2.0:0.25")},
                     {}, False, 1000)
    assert plan.kinds == {"context.length": "geometric", "sampling.temperature": "arithmetic"}
    again = type(plan).from_json(json.loads(json.dumps(plan.to_json())))
    assert again.kinds == plan.kinds
    assert make_plan(toy, {"context.deletion": ["fifo", "block"]}, {"context.block": 2}, False, 10).kinds == \
        {"context.deletion": "categorical"}
    for values, kind, scale in ((plan.grid["context.length"], "geometric", "log"),
                                (plan.grid["sampling.temperature"], "arithmetic", "linear")):
        fig, ax = plt.subplots()
        plots._ticks(ax, "x", values, kind)
        assert ax.get_xscale() == scale
        assert len(ax.get_xticks()) <= plots.MAX_TICKS
        plt.close(fig)


def test_user_text_with_dollars_draws(tmp_path):
    """Names and tokens such as $\\frac$ are printed, never parsed as mathtext."""
    from ecology import plots
    from ecology.io.artefacts import write_run

    def rename(node):  # the token U becomes $\frac$ everywhere (names cannot hold '$': see docs)
        if isinstance(node, dict):
            return {(r"$\frac$" if k == "U" else k): rename(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rename(v) for v in node]
        return r"$\frac$" if node == "U" else node

    data = rename(copy.deepcopy(table("waluigi")))
    data["run"].update(steps=10, replicates=20)
    result = simulate(validate(data))
    write_run(result, tmp_path / "run", summarize(result))
    assert (tmp_path / "run" / "reaching.png").is_file()
    assert plots.esc("$x$") == r"\$x\$"


def test_python_entry_point_returns_dataframes(tmp_path):
    import ecology

    from .conftest import SCENARIOS

    r = ecology.run(SCENARIOS / "waluigi.toml", context__length=4, replicates=300, steps=60, exact=True)
    assert isinstance(r.steps, pd.DataFrame) and len(r.steps) == 61 and len(r.replicates) == 300
    assert list(r.premises["premise"]) == ["luigi", "waluigi"]
    row = r.criteria.loc["revealed"]
    assert row["exact_closed"] and abs(row["reached"] - row["exact_reached_by_horizon"]) < 5 * math.sqrt(0.25 / 300)
    saved = r.save(tmp_path / "run")
    assert json.loads((saved / "summary.json").read_text())["criteria"]["revealed"]["reached"] == row["reached"]
    shown = repr(r)  # one line: the size and each criterion with its interval, not a wall of fields
    assert "\n" not in shown and shown.startswith("<RunOutcome of 'waluigi': 300 replicates x 60 steps")
    assert f"'revealed' reached {row['reached']:.4f} [{row['reached_lo']:.4f}, {row['reached_hi']:.4f}] by step 60" in shown


def test_sweep_row_carries_censoring_safe_and_exact_figures():
    from ecology.scenario import to_table
    from ecology.sweep.points import run_point

    toy = table("waluigi")
    toy["run"].update(steps=80, replicates=400)
    row = run_point(to_table(validate(toy)), {"index": 0, "params": {"context.length": 3}, "seed": 5}, True, 10_000)
    assert "revealed_time_mean" not in row and "revealed_fraction" not in row
    assert row["revealed_exact_closed"] is True
    assert math.isfinite(row["revealed_exact_expected_hitting_time"])
    se = row["revealed_restricted_mean_se"]
    assert abs(row["revealed_restricted_mean"] - row["revealed_exact_restricted_mean"]) <= 5 * se
    assert row["revealed_censored"] == round((1 - row["revealed_reached"]) * 400)


def test_who_is_speaking_credits_u_to_the_waluigi(toy):
    from ecology.results import speaker_table

    toy["run"].update(steps=60, replicates=64)
    table_ = speaker_table(simulate(validate(toy)))
    assert len(table_) == 60 * 32 and set(table_.columns) >= {"token", "speaker", "speaker_premise"}
    printed_u = table_[table_["token"] == "U"]
    assert len(printed_u) and set(printed_u["speaker"]) == {"waluigi"}  # luigi never prints U
    assert (table_["speaker"] == table_["speaker_premise"]).all()  # one premise per population here
