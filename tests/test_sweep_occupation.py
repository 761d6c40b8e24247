"""Occupation and loops in sweeps: the rows' occupation columns against the simulation's intervals
and a dense solve of the page-state chain, the pooled long-run stay of several closed classes
against a long horizon, the loop columns against the transition matrix, the plot metrics that draw
them (and the one-line refusals), and the shipped scenarios/pydoc_loops.toml end to end."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tomli_w

from ecology import plots
from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.errors import UsageError
from ecology.exact.chain import DEFAULT_MAX_STATES, build_chain
from ecology.exact.markov import MarkovChain
from ecology.exact.report import DEFAULT_MAX_WORK, occupation_report
from ecology.scenario import apply_overrides, read_scenario_table, validate
from ecology.sweep.points import run_point, stationary_occupation

from .conftest import SCENARIOS

LOOPS = SCENARIOS / "pydoc_loops.toml"
CYCLE = ["_ c v c", "c v c c", "v c c _", "c c _ c", "c _ c v"]  # the loop's page-states, in the order run round


@pytest.fixture(scope="module")
def light_base():
    """pydoc_loops without its periodic = 2 and 8 criteria (their products cost seconds), 60 steps."""
    table = read_scenario_table(LOOPS)
    table["absorption"] = {name: spec for name, spec in table["absorption"].items() if name in ("consonants", "loop1")}
    return apply_overrides(table, {"run.steps": 60, "run.replicates": 2000})


@pytest.fixture(scope="module")
def row(light_base):
    return run_point(light_base, {"index": 0, "params": {"sampling.temperature": 0.3}, "seed": 5}, True, DEFAULT_MAX_STATES)


def dense_chain(base: dict, temperature: float):
    compiled = compile_scenario(validate(apply_overrides(base, {"sampling.temperature": temperature})))
    pc = build_chain(compiled, DEFAULT_MAX_STATES)
    labels = [pc.label(i) for i in range(pc.chain.n_states)]
    return pc.chain.P.toarray(), labels, pc.initial


def test_the_simulated_occupation_columns_cover_the_exact_ones(row):
    for name in ("loop", "consonants"):
        for key, exact in (("fraction", "fraction"), ("visits", "visits"), ("mean_stay", "mean_stay_within"),
                           ("mean_time_between_entries", "mean_time_between_entries_within")):
            value, lo, hi = (row[f"{name}_occupation_{key}{end}"] for end in ("", "_lo", "_hi"))
            assert lo <= value <= hi
            # within twice the 95% half-width (about 3.9 standard errors): 8 comparisons, none left to chance
            assert abs(row[f"{name}_exact_occupation_{exact}"] - value) <= hi - lo, (name, key)
    assert 0 < row["loop_occupation_open_at_horizon"] < 2000  # the prompt is in the loop: some still in it at N


def test_the_exact_occupation_columns_match_a_dense_solve(row, light_base):
    P, labels, x = dense_chain(light_base, 0.3)
    A = np.isin(labels, CYCLE)
    assert A.sum() == 5
    d = np.zeros(len(P))
    d[x] = 1.0
    laws = [d]
    for _ in range(60):
        laws.append(laws[-1] @ P)
    laws = np.array(laws)
    assert row["loop_exact_occupation_fraction"] == pytest.approx(laws[:, A].sum(axis=1).mean(), rel=1e-12)
    exits = sum(law[A] @ P[np.ix_(A, ~A)].sum(axis=1) for law in laws[:-1])
    assert row["loop_exact_occupation_mean_stay_within"] == pytest.approx(laws[:-1, A].sum() / exits, rel=1e-12)
    w, v = np.linalg.eig(P.T)  # one closed class: the eigenvector of eigenvalue 1
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    flux = pi[~A] @ P[np.ix_(~A, A)].sum(axis=1)
    assert row["loop_exact_occupation_long_run_fraction"] == pytest.approx(pi[A].sum(), rel=1e-10)
    assert row["loop_exact_occupation_mean_stay"] == pytest.approx(pi[A].sum() / flux, rel=1e-10)
    assert row["loop_exact_occupation_mean_time_between_entries"] == pytest.approx(1 / flux, rel=1e-10)


def test_the_loop_columns_are_the_likeliest_successor_cycle(row, light_base):
    P, labels, _ = dense_chain(light_base, 0.3)
    successor = P.argmax(axis=1)
    i = labels.index(CYCLE[0])
    lap, walked = 1.0, []
    for _ in range(5):
        walked.append(labels[i])
        lap *= P[i, successor[i]]
        i = successor[i]
    assert walked == CYCLE and labels[i] == CYCLE[0]
    assert row["exact_loop_states"] == " -> ".join(CYCLE)
    assert row["exact_loops"] == 1 and row["exact_loop_length"] == 5
    assert row["exact_loop_lap_probability"] == pytest.approx(lap, rel=1e-12)
    assert row["exact_loop_leak_per_step"] == pytest.approx(1 - lap ** (1 / 5), rel=1e-12)


def two_classes() -> SimpleNamespace:
    """State 0 transient, going to the class {1, 2} with 0.3 and to {3, 4} with 0.7; A = {1, 3}."""
    P = np.array([[0.0, 0.3, 0.0, 0.7, 0.0],
                  [0.0, 0.6, 0.4, 0.0, 0.0],
                  [0.0, 0.5, 0.5, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 0.9, 0.1],
                  [0.0, 0.0, 0.0, 0.2, 0.8]])
    return SimpleNamespace(chain=MarkovChain(P), initial=0)


def test_the_pooled_long_run_stay_is_the_limit_of_the_pooled_ratio():
    pc, A = two_classes(), np.array([False, True, False, True, False])
    report = occupation_report(pc, A, 10, DEFAULT_MAX_WORK, "--horizon")
    pooled = stationary_occupation(report["classes"])
    # class {1, 2}: pi = (5/9, 4/9), flux = 4/9 * 0.5 = 2/9; class {3, 4}: pi = (2/3, 1/3), flux = 1/3 * 0.2 = 1/15
    mass, flux = 0.3 * 5 / 9 + 0.7 * 2 / 3, 0.3 * 2 / 9 + 0.7 / 15
    assert pooled["mean_stay"] == pytest.approx(mass / flux, rel=1e-12)
    assert pooled["mean_time_between_entries"] == pytest.approx(1 / flux, rel=1e-12)
    H = 20_000  # exposure / exits and H / entries over a long horizon tend to the pooled ratios (error O(1/H))
    long = pc.chain.occupation_over_horizon(np.eye(5)[0], A, H)
    assert long["exposure"] / long["exits"] == pytest.approx(pooled["mean_stay"], rel=1e-4)  # 1.3e-5 off at this H
    assert H / long["entries"] == pytest.approx(pooled["mean_time_between_entries"], rel=1e-3)  # 2.9e-4 off
    assert not np.isclose(pooled["mean_stay"], report["classes"][0]["mean_stay"])  # neither class's own stay


def test_a_set_kept_for_ever_or_never_visited():
    pc = two_classes()
    kept = np.array([False, True, True, False, False])
    kept = stationary_occupation(occupation_report(pc, kept, 5, DEFAULT_MAX_WORK, "h")["classes"])
    assert kept["mean_stay"] == math.inf  # the class {1, 2} never leaves it
    assert kept["mean_time_between_entries"] == math.inf  # nothing enters in the long run: {1, 2} is in it, {3, 4} never
    never = stationary_occupation(occupation_report(pc, np.eye(5, dtype=bool)[0], 5, DEFAULT_MAX_WORK, "h")["classes"])
    assert math.isnan(never["mean_stay"]) and never["mean_time_between_entries"] == math.inf
    untrusted = stationary_occupation([{"probability": 1.0, "mass": None, "flux": None}])
    assert math.isnan(untrusted["mean_stay"]) and math.isnan(untrusted["mean_time_between_entries"])
    beyond = stationary_occupation([{"probability": 1.0, "mass": 0.5, "flux": 1e-320}])
    assert math.isnan(beyond["mean_stay"]) and math.isnan(beyond["mean_time_between_entries"])


ROWS = pd.DataFrame({
    "sampling.temperature": [0.5, 1.0],
    "c_reached": [0.2, 0.4], "c_reached_lo": [0.1, 0.3], "c_reached_hi": [0.3, 0.5],
    **{f"{s}_occupation_{k}{e}": [0.3, 0.2] for s in ("c", "loop") for k in ("fraction", "mean_stay")
       for e in ("", "_lo", "_hi")},
    "loop_occupation_open_at_horizon": [37, 149], "loop_exact_occupation_mean_stay_within": [0.31, 0.19],
    "loop_exact_occupation_fraction": [0.29, 0.21], "c_exact_occupation_long_run_fraction": [0.3, 0.2],
    "loop_exact_occupation_long_run_fraction": [0.3, 0.2],
    "exact_loop_lap_probability": [0.12, 0.06], "exact_loop_states": ["a -> b", "a -> b"],
})


def test_the_default_panels_draw_a_named_sets_occupation_only():
    _, panels = plots.sweep_metrics(ROWS, ["c"], [], 300, sets=["loop"])
    columns = [p.column for p in panels]
    assert "loop_occupation_fraction" in columns
    assert not any("mean_stay" in c or "long_run" in c or "loop_lap" in c or c.startswith("c_occupation") for c in columns)
    assert [p.column for p in plots.sweep_metrics(ROWS, ["c"], [], 300)[1]] == ["c_reached"]  # no set: as before


def test_asked_occupation_metrics():
    _, panels = plots.sweep_metrics(ROWS, ["c"], [], 300, ("loop:occupation", "stay", "long_run_occupation", "loop_lap"),
                                    200, sets=["loop"])
    by = {p.column: p for p in panels}
    assert list(by) == ["loop_occupation_fraction", "c_occupation_mean_stay", "loop_occupation_mean_stay",
                        "c_exact_occupation_long_run_fraction", "loop_exact_occupation_long_run_fraction",
                        "exact_loop_lap_probability"]
    assert by["loop_occupation_fraction"].exact == "loop_exact_occupation_fraction"
    assert by["loop_occupation_fraction"].lo == "loop_occupation_fraction_lo"
    assert by["loop_occupation_mean_stay"].exact == "loop_exact_occupation_mean_stay_within"
    assert "still in it at N: 37-149 of 200 replicates per point" in by["loop_occupation_mean_stay"].title
    assert "the same loop at every point" in by["exact_loop_lap_probability"].title
    changed = ROWS.assign(exact_loop_states=["a -> b", "c -> d"])
    _, (lap,) = plots.sweep_metrics(changed, ["c"], [], 300, ("loop_lap",), sets=["loop"])
    assert "2 different loops over the points" in lap.title
    swept = ROWS.assign(**{"run.steps": [30, 60]})  # a horizon that moves: no one N in the titles
    _, (stay,) = plots.sweep_metrics(swept, ["c"], [], 300, ("loop:stay",), sets=["loop"])
    assert "per exit by N)" in stay.title
    closed = ROWS.assign(loop_occupation_mean_stay=[np.nan, np.nan])  # a set never left: no stay ended
    _, (stay,) = plots.sweep_metrics(closed, ["c"], [], 300, ("loop:stay",), sets=["loop"])
    assert stay.title.endswith("; no visit ended by N at any point")


@pytest.mark.parametrize("spec, exact, message", [
    ("nope:stay", True, "no criterion or named set 'nope'; they are c, loop"),
    ("loop:reached", True, "'loop' is a named set, not a criterion"),
    ("c:loop_lap", True, "loop_lap belongs to the chain, not to a criterion: --plot loop_lap"),
    ("loop_lap", False, "loop_lap is the exact chain's; run the sweep with --exact"),
    ("loop:long_run_occupation", False, "long_run_occupation is the exact chain's"),
])
def test_occupation_metrics_refused_in_one_line(spec, exact, message):
    with pytest.raises(UsageError, match=message):
        plots.check_choice(plots.FigureChoice((spec,)), {"t": [0.5, 1.0]}, {}, ["c"], [], exact, ["loop"])


def test_the_loop_scenario_end_to_end(tmp_path, light_base, capsys):
    """The shipped scenarios/pydoc_loops.toml validates; its light copy (:func:`light_base`, the
    periodic = 2 and 8 products left out for time) sweeps with --exact and the loop metrics, and
    its plots redraw with another."""
    assert main(["validate", str(LOOPS)]) == 0
    scenario = tmp_path / "loops.toml"
    scenario.write_bytes(tomli_w.dumps(light_base).encode())
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario), "--grid", "sampling.temperature=0.2,1", "--exact", "--workers", "1",
                 "--set", "run.replicates=100", "--plot", "loop:occupation,loop:stay,loop_lap", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "results.csv").sort_values("point")
    assert (rows["exact_loop_states"] == " -> ".join(CYCLE)).all()
    assert rows["loop_exact_occupation_long_run_fraction"].is_monotonic_decreasing  # colder: more time in the loop
    assert rows["exact_loop_lap_probability"].is_monotonic_decreasing
    assert (out / "sweep.png").is_file()
    assert main(["plot", str(out), "--plot", "between_entries,long_run_occupation"]) == 0
    assert main(["plot", str(out), "--plot", "loop:median"]) == 2
    assert "error: --plot loop:median: 'loop' is a named set, not a criterion" in capsys.readouterr().err
