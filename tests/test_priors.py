"""Priors as they act: the normalised priors reported (validate, run, summary.json, premises.csv,
sweep rows, sweep axes), the virtual paths ``premises.NAME.weight``/``.odds`` that set a prior as
it acts, and linked grids (``--zip``)."""

import copy
import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from ecology import plots, results
from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.core.mixture import acting_priors
from ecology.errors import ScenarioError, UserError
from ecology.scenario import apply_overrides, read_scenario_table, validate
from ecology.sweep.grid import Plan, make_plan, plot_axes, point_seed
from ecology.sweep.points import run_point

from .conftest import SCENARIOS

TOY = str(SCENARIOS / "waluigi.toml")
COINS = str(SCENARIOS / "coins.toml")


def toy(**priors) -> dict:
    """The toy's table with a third premise ``bystander`` (prior 0.4) beside luigi 0.9 and waluigi 0.1."""
    table = read_scenario_table(TOY)
    table["premises"]["bystander"] = {"prior": 0.4, "cast": ["luigi"]}
    for name, prior in priors.items():
        table["premises"][name]["prior"] = prior
    return table


def exact_shares(table: dict) -> dict[str, Fraction]:
    """Acting priors in exact rational arithmetic: written prior over the sum of all of them."""
    raw = {f"{t}.{n}": Fraction(e["prior"]) for t in ("premises", "populations") for n, e in (table.get(t) or {}).items()}
    total = sum(raw.values())
    return {entry: prior / total for entry, prior in raw.items()}


def test_acting_priors_are_the_written_ones_normalised_and_the_members_sum_to_their_population():
    s = validate(apply_overrides(read_scenario_table(TOY), {"premises.luigi.prior": 0.99}))
    priors = acting_priors(s)
    assert priors["premises.luigi"]["raw"] == 0.99
    assert priors["premises.luigi"]["acting"] == pytest.approx(0.99 / 1.09, rel=1e-14, abs=0)  # the README's 0.908
    assert f"{priors['premises.luigi']['acting']:.3g}" == "0.908"
    coins = validate(apply_overrides(read_scenario_table(COINS), {"populations.biased.prior": 3.0}))
    priors = acting_priors(coins)
    for entry, share in exact_shares(coins.model_dump()).items():
        assert priors[entry]["acting"] == pytest.approx(float(share), rel=1e-14, abs=0)
    compiled = compile_scenario(coins)  # the mixture's own normalised priors, member by member
    members = np.exp(compiled.mixture.log_prior)
    biased = [s for s, p in enumerate(compiled.premises) if p.label == "biased"]
    assert members[biased].sum() == pytest.approx(priors["populations.biased"]["acting"], rel=1e-14, abs=0)
    assert priors["populations.biased"]["acting"] == pytest.approx(6 / 7, rel=1e-14, abs=0)


def test_weight_sets_the_acting_prior_and_the_others_keep_their_ratios():
    table = apply_overrides(toy(), {"premises.luigi.weight": 0.7})
    shares = exact_shares(table)
    assert float(shares["premises.luigi"]) == pytest.approx(0.7, rel=1e-14, abs=0)
    assert shares["premises.waluigi"] / shares["premises.bystander"] == pytest.approx(0.1 / 0.4, rel=1e-14, abs=0)
    assert float(shares["premises.waluigi"] + shares["premises.bystander"]) == pytest.approx(0.3, rel=1e-14, abs=0)
    # odds O: the acting prior is O / (1 + O), the written prior O times the rest's sum
    table = apply_overrides(toy(), {"premises.luigi.odds": 9})
    assert table["premises"]["luigi"]["prior"] == pytest.approx(9 * 0.5, rel=1e-14, abs=0)
    assert float(exact_shares(table)["premises.luigi"]) == pytest.approx(0.9, rel=1e-14, abs=0)
    # two fixed at once: each gets its weight, the free one the remainder; order of the paths does not matter
    both = {"premises.luigi.weight": 0.25, "premises.waluigi.odds": 1.0}
    for overrides in (both, dict(reversed(list(both.items())))):
        shares = exact_shares(apply_overrides(toy(), overrides))
        assert [float(shares[f"premises.{n}"]) for n in ("luigi", "waluigi", "bystander")] == pytest.approx(
            [0.25, 0.5, 0.25], rel=1e-14, abs=0)
    # applied after the other paths: a written prior set beside it is one of "the others"
    shares = exact_shares(apply_overrides(toy(), {"premises.luigi.weight": 0.5, "premises.waluigi.prior": 0.4}))
    assert float(shares["premises.waluigi"]) == pytest.approx(0.25, rel=1e-14, abs=0)
    # huge priors: the rest (2e308) is summed relative to its largest, so it does not overflow
    shares = exact_shares(apply_overrides(toy(waluigi=1e308, bystander=1e308), {"premises.luigi.weight": 0.25}))
    assert float(shares["premises.luigi"]) == pytest.approx(0.25, rel=1e-14, abs=0)
    with pytest.raises(ScenarioError, match="the written prior that gives premises.luigi this acting prior .inf. is not a "
                       "positive double; rescale the other priors"):
        apply_overrides(toy(waluigi=1e308, bystander=1e308), {"premises.luigi.weight": 0.5})


@pytest.mark.parametrize("path, value, says", [
    ("premises.luigi.weight", 1, "1 is not an acting prior: the weight is the normalised prior, a number with 0 < W < 1"),
    ("premises.luigi.weight", 0.0, "0.0 is not an acting prior"),
    ("premises.luigi.weight", -0.5, "-0.5 is not an acting prior"),
    ("premises.luigi.weight", True, "true is not an acting prior"),
    ("premises.luigi.weight", "big", '"big" is not an acting prior'),
    ("premises.luigi.weight", float("nan"), "nan is not an acting prior"),
    ("premises.luigi.odds", 0, "0 is not prior odds: odds against all other priors are a finite number > 0"),
    ("premises.luigi.odds", float("inf"), "inf is not prior odds"),
    ("premises.typo.weight", 0.5, "there is no premise 'typo' to set"),
    ("populations.typo.odds", 2, "there is no population 'typo' to set"),
])
def test_bad_weights_and_odds_name_the_path_and_the_fix(path, value, says):
    with pytest.raises(ScenarioError) as err:
        apply_overrides(toy(), {path: value})
    assert err.value.path == path and says in err.value.message


def test_conflicting_or_impossible_acting_priors_are_refused():
    with pytest.raises(ScenarioError, match="premises.luigi.prior is set too; give either the written prior or its weight"):
        apply_overrides(toy(), {"premises.luigi.weight": 0.5, "premises.luigi.prior": 2})
    with pytest.raises(ScenarioError, match="twice"):
        apply_overrides(toy(), {"premises.luigi.weight": 0.5, "premises.luigi.odds": 2})
    with pytest.raises(ScenarioError, match="sum to 1.1; they must sum to less than 1"):
        apply_overrides(toy(), {"premises.luigi.weight": 0.6, "premises.waluigi.weight": 0.5})
    with pytest.raises(ScenarioError, match="fixes the acting prior of every premise and population"):
        apply_overrides(toy(), {"premises.luigi.weight": 0.2, "premises.waluigi.weight": 0.2, "premises.bystander.weight": 0.2})
    with pytest.raises(ScenarioError, match="fixes the acting prior of every premise and population"):
        apply_overrides(read_scenario_table(COINS), {"populations.biased.weight": 0.5, "premises.fair.weight": 0.4})


def test_a_weight_gives_the_same_run_as_the_written_priors_it_stands_for():
    """Same seed: ``luigi.weight = 0.9`` beside ``waluigi.prior = 0.3`` is luigi 2.7 / waluigi 0.3."""
    small = {"run.replicates": 300, "run.steps": 60, "run.engine": "numpy", "premises.waluigi.prior": 0.3}
    by_weight = results.simulate(validate(apply_overrides(read_scenario_table(TOY), {**small, "premises.luigi.weight": 0.9})))
    by_prior = results.simulate(validate(apply_overrides(read_scenario_table(TOY), {**small, "premises.luigi.prior": 2.7})))
    assert np.array_equal(by_weight.reached_at["revealed"], by_prior.reached_at["revealed"])
    assert np.allclose(by_weight.premise_amplitudes, by_prior.premise_amplitudes, rtol=1e-12, atol=0)
    assert np.allclose(by_weight.priors, [0.9, 0.1], rtol=1e-15)


def test_validate_and_run_print_and_write_the_acting_priors(tmp_path, capsys):
    assert main(["validate", TOY, "--set", "premises.luigi.prior=0.99"]) == 0
    out = capsys.readouterr().out
    assert ("  priors as written -> as they act (normalised to sum 1 over all premises and populations, "
            "the written ones sum to 1.09):\n    premise 'luigi': 0.99 -> 0.908257\n"
            "    premise 'waluigi': 0.1 -> 0.0917431\n") in out
    assert main(["validate", COINS, "--set", "populations.biased.weight=0.25"]) == 0
    assert "    population 'biased': 0.166667 -> 0.25\n" in capsys.readouterr().out
    out_dir = tmp_path / "run"
    assert main(["run", TOY, "--replicates", "50", "--steps", "20", "--engine", "numpy", "--set", "premises.luigi.odds=19",
                 "--out", str(out_dir)]) == 0
    assert "    premise 'luigi': 1.9 -> 0.95\n" in capsys.readouterr().out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["priors"]["premises.luigi"]["raw"] == pytest.approx(1.9, rel=1e-14, abs=0)
    assert summary["priors"]["premises.luigi"]["acting"] == pytest.approx(0.95, rel=1e-14, abs=0)
    premises = pd.read_csv(out_dir / "premises.csv").set_index("premise")
    assert premises.loc["luigi", "prior"] == pytest.approx(0.95) and premises.loc["luigi", "prior_written"] == pytest.approx(1.9)


def test_bad_weight_from_the_command_line_is_one_line(capsys):
    assert main(["validate", TOY, "--set", "premises.luigi.weight=1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {TOY}: premises.luigi.weight: 1.5 is not an acting prior")


def test_zipped_grids_move_together_and_seeds_stay_functions_of_the_parameters():
    table = read_scenario_table(TOY)
    grids = {"context.length": [2, 4, 8], "premises.luigi.weight": [0.5, 0.9, 0.99], "sampling.temperature": [1.0, 0.5]}
    plan = make_plan(table, grids, {}, False, 10_000, [["context.length", "premises.luigi.weight"]])
    assert [p["params"] for p in plan.points] == [
        {"context.length": n, "premises.luigi.weight": w, "sampling.temperature": t}
        for n, w in ((2, 0.5), (4, 0.9), (8, 0.99)) for t in (1.0, 0.5)]
    product = make_plan(table, grids, {}, False, 10_000)
    assert len(product.points) == 18 and product.zip == []
    seeds = {json.dumps(p["params"]): p["seed"] for p in product.points}
    for p in plan.points:  # the zipped point's seed is the product's seed for the same parameters
        assert p["seed"] == seeds[json.dumps(p["params"])] == point_seed(table["run"]["seed"], p["params"])
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.zip == plan.zip and again.points == plan.points and again.groups == plan.groups
    old = product.to_json()
    del old["zip"]  # a sweep.json written before --zip
    assert Plan.from_json(old).groups == [["context.length"], ["premises.luigi.weight"], ["sampling.temperature"]]
    for bad, says in ((["context.length"], "'zip' must be a list of lists"), ([["context.length", "run.seed"]],
                                                                             "zip[0]: 'run.seed' is not a grid path")):
        with pytest.raises(ValueError) as err:
            Plan.from_json({**plan.to_json(), "zip": bad})
        assert says in str(err.value)


@pytest.mark.parametrize("lengths, zips, says", [
    ([2, 4, 8], [["context.length", "sampling.temperature"]], "--zip context.length,sampling.temperature: zipped grids move "
     "together, so they need the same number of values; they have context.length 3, sampling.temperature 2"),
    ([2, 4], [["context.length", "run.steps"]], "--zip context.length,run.steps: 'run.steps' is not a grid path; give it a "
     "--grid (grids are ['context.length', 'sampling.temperature'])"),
    ([2, 4], [["context.length", "sampling.temperature"], ["sampling.temperature", "context.length"]],
     "--zip sampling.temperature,context.length: 'sampling.temperature' is named twice in the zipped groups"),
])
def test_bad_zips_are_one_line(lengths, zips, says):
    grids = {"context.length": lengths, "sampling.temperature": [1.0, 0.5]}
    with pytest.raises(UserError) as err:
        make_plan(read_scenario_table(TOY), grids, {}, False, 10_000, zips)
    assert says in str(err.value)


def test_the_sweep_table_takes_weights_and_zips():
    table = read_scenario_table(TOY)
    table["sweep"] = {"grid": {"premises.luigi.weight": [0.5, 0.9], "context.length": [4, 8]},
                      "zip": [["premises.luigi.weight", "context.length"]]}
    plan = make_plan(table, {}, {}, False, 10_000)
    assert [p["params"] for p in plan.points] == [{"premises.luigi.weight": 0.5, "context.length": 4},
                                                  {"premises.luigi.weight": 0.9, "context.length": 8}]
    table["sweep"]["grid"]["context.length"] = [4, 8, 16]
    with pytest.raises(ScenarioError) as err:
        make_plan(table, {}, {}, False, 10_000)
    assert err.value.path == "sweep.zip[0]" and "same number of values" in err.value.message
    table["sweep"]["grid"]["context.length"] = [4, 8]
    table["sweep"]["grid"]["premises.luigi.weight"] = [0.5, 2]
    with pytest.raises(ScenarioError) as err:
        make_plan(table, {}, {}, False, 10_000)
    assert err.value.path == "premises.luigi.weight" and "2 is not an acting prior" in err.value.message


def test_rows_carry_the_acting_priors_and_a_fixed_weight_holds_across_a_prior_grid():
    table = read_scenario_table(TOY)
    small = {"run.replicates": 40, "run.steps": 10, "run.engine": "numpy", "premises.luigi.weight": 0.8}
    plan = make_plan(table, {"premises.waluigi.prior": [0.1, 1.0]}, small, False, 10_000)
    for point in plan.points:
        row = run_point(plan.base, point, False, 10_000)
        assert row["acting_prior_luigi"] == pytest.approx(0.8, rel=1e-14, abs=0)
        assert row["acting_prior_waluigi"] == pytest.approx(0.2, rel=1e-14, abs=0)
    with pytest.raises(ScenarioError, match="premises.luigi.prior is set too"):
        make_plan(table, {"premises.luigi.prior": [0.5, 2.0]}, small, False, 10_000)


def test_plot_axes_name_the_acting_prior():
    table = read_scenario_table(TOY)
    plan = make_plan(table, {"premises.luigi.prior": [0.5, 0.9, 0.99]}, {}, False, 10_000)
    grid, titles, ticks = plot_axes(plan)
    assert titles == {"premises.luigi.prior": "acting prior of luigi\n(raw premises.luigi.prior)"}
    assert ticks == {"premises.luigi.prior": ["0.5→0.833", "0.9→0.9", "0.99→0.908"]}
    grids = {"context.length": [2, 4], "premises.luigi.odds": [1.0, 9.0], "premises.waluigi.prior": [0.1, 0.3]}
    plan = make_plan(table, grids, {}, False, 10_000, [["context.length", "premises.luigi.odds"]])
    grid, titles, ticks = plot_axes(plan)
    assert list(grid) == ["context.length", "premises.waluigi.prior"]  # the zipped group drawn along its first path
    assert titles["context.length"] == "context.length & prior odds of luigi\n(premises.luigi.odds; acting prior O/(1+O))"
    assert ticks["context.length"] == ["2, 1→0.5", "4, 9→0.9"]
    assert titles["premises.waluigi.prior"] == "raw premises.waluigi.prior\n(its acting prior moves with the other prior grids)"
    assert ticks["premises.waluigi.prior"] == ["0.1", "0.3"]
    grid, titles, ticks = plot_axes(make_plan(table, {"premises.luigi.weight": [0.5, 0.9]}, {}, False, 10_000))
    assert titles == {"premises.luigi.weight": "acting prior of luigi\n(premises.luigi.weight)"}
    assert ticks == {"premises.luigi.weight": ["0.5", "0.9"]}


def test_sweep_plots_use_the_axis_titles_and_tick_labels(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, *_, **__: drawn.append(fig))
    rows = pd.DataFrame({"premises.luigi.prior": [0.5, 0.99], "context.length": [4, 4], "revealed_reached": [0.3, 0.2],
                         "revealed_reached_lo": [0.2, 0.1], "revealed_reached_hi": [0.4, 0.3]})
    grid = {"premises.luigi.prior": [0.5, 0.99]}
    plots.sweep_plots(tmp_path, rows, grid, ["revealed"], [], "toy", axis_labels={"premises.luigi.prior": "acting prior"},
                      tick_labels={"premises.luigi.prior": ["0.5→0.833", "0.99→0.908"]})
    ax = drawn[0].axes[-1]
    assert ax.get_xlabel() == "acting prior" and [t.get_text() for t in ax.get_xticklabels()] == ["0.5→0.833", "0.99→0.908"]
    drawn.clear()
    grid2 = {**grid, "context.length": [4]}
    plots.sweep_plots(tmp_path, rows, grid2, ["revealed"], [], "toy", tick_labels={"context.length": ["k = 4"]})
    ax = drawn[0].axes[0]
    assert ax.get_xlabel() == "premises.luigi.prior" and [t.get_text() for t in ax.get_yticklabels()] == ["k = 4"]


def test_cli_sweep_with_zip_resumes_and_redraws(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["sweep", TOY, "--grid", "context.length=4,8", "--grid", "premises.luigi.weight=0.5,0.9", "--zip",
            "context.length,premises.luigi.weight", "--replicates", "40", "--steps", "10", "--engine", "numpy",
            "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    first = pd.read_csv(out / "results.csv")
    assert list(first["context.length"]) == [4, 8] and list(first["acting_prior_luigi"]) == pytest.approx([0.5, 0.9])
    (out / "points" / "1.json").unlink()
    assert main(["sweep", "--resume", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), first)
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["zip"] == [["context.length", "premises.luigi.weight"]]
    assert main(["sweep", "--resume", str(out), "--zip", "a,b"]) == 2
    assert "--zip cannot apply" in capsys.readouterr().err
    assert main(argv[:6] + ["--zip", "context.length"]) == 2
    assert "expected two or more grid paths" in capsys.readouterr().err
    old = copy.deepcopy(plan)
    del old["zip"]  # a plan written before --zip: read as a product; here the points are kept
    (out / "sweep.json").write_text(json.dumps(old))
    assert main(["plot", str(out)]) == 0
