"""Figures: what the sweep, run and analysis figures show, and the options that choose them
(``--plot``, ``--x``, ``--hue``, ``--log``, ``--linear``, ``--format``, ``--dpi``, ``--window``)."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ecology import plots
from ecology.cli import main
from ecology.errors import UsageError
from ecology.io import artefacts

from .conftest import SCENARIOS

TOY = str(SCENARIOS / "waluigi.toml")
TINY = ["--set", "run.replicates=50", "--set", "run.steps=40"]
GRID = ["--grid", "context.length=2,3", "--grid", "premises.luigi.prior=0.5,0.9"]
NOWHERE = Path("nowhere")  # the directory of figures drawn only to be read (never written)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2 x 2 sweep with --exact, drawn as asked: lines of E[T] and reached per context length."""
    out = tmp_path_factory.mktemp("figures") / "sweep"
    assert main(["sweep", TOY, *GRID, *TINY, "--workers", "1", "--exact", "--out", str(out), "--json",
                 "--plot", "reached,revealed:expected_time", "--hue", "context.length"]) == 0
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures") / "run"
    assert main(["run", TOY, *TINY, "--out", str(out), "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures") / "analysis"
    assert main(["analyze", TOY, "--set", "context.length=3", "--horizon", "20", "--out", str(out), "--json"]) == 0
    return out


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn while the test runs (``plots._save`` keeps them to be read, then closes them)."""
    figures = []

    def keep(fig, path, dpi=plots.DPI, bbox_inches="tight"):
        if path is not None and path.parent.is_dir():
            fig.savefig(path, dpi=dpi, bbox_inches=bbox_inches)
        figures.append((fig, path))

    monkeypatch.setattr(plots, "_save", keep)
    yield figures
    for fig, _ in figures:
        plt.close(fig)


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2, argv
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    for needle in needles:
        assert needle in out.err, (needle, out.err)
    return out.err


# ---------------------------------------------------------------------------------------------
# The scale rule


def test_scale_rule_on_the_issues_lists():
    assert plots.grid_kind([1, 0.5, 0.3, 0.2, 0.1]) == "geometric"  # the issue's list, titled "arithmetic" before
    assert plots._unevenness(np.log([1, 0.5, 0.3, 0.2, 0.1])) == pytest.approx(0.2141, abs=1e-4)
    assert plots._unevenness(np.array([1, 0.5, 0.3, 0.2, 0.1])) == pytest.approx(0.7286, abs=1e-4)
    assert plots.grid_kind([2, 4, 8, 16]) == "geometric"  # constant ratio, whatever the span
    assert plots.grid_kind([0.001, 0.01, 0.1]) == "geometric"
    assert plots.grid_kind([1, 2, 5, 10, 20, 50, 100]) == "geometric"  # 1-2-5 steps: log-even
    assert plots.grid_kind([0.1 * i for i in range(1, 11)]) == "arithmetic"  # evenly spaced
    assert plots.grid_kind([1, 2, 3, 5, 8]) == "arithmetic"  # spans less than a decade
    assert plots.grid_kind([0.01, 1]) == "arithmetic"  # two values: nothing to judge the spacing by
    assert plots.grid_kind([0, 0.1, 1, 10]) == "arithmetic"  # a zero has no logarithm
    assert plots.grid_kind(["fifo", "block"]) == "categorical"


def test_a_swept_list_is_drawn_on_a_log_axis(drawn):
    rows = pd.DataFrame({"sampling.temperature": [1, 0.5, 0.3, 0.2, 0.1], "r_reached": [0.1, 0.2, 0.3, 0.4, 0.5],
                         "r_reached_lo": 0.0, "r_reached_hi": 1.0})
    grid = {"sampling.temperature": [1, 0.5, 0.3, 0.2, 0.1]}
    plots.sweep_plots(NOWHERE, rows, grid, ["r"], [], "t")
    (fig, _), = drawn
    assert fig.axes[0].get_xscale() == "log" and "(log axis)" in fig._suptitle.get_text()
    plots.sweep_plots(NOWHERE, rows, grid, ["r"], [], "t", choice=plots.FigureChoice(linear=frozenset({"x"})))
    assert drawn[-1][0].axes[0].get_xscale() == "linear" and "(linear axis)" in drawn[-1][0]._suptitle.get_text()


# ---------------------------------------------------------------------------------------------
# Sweep figures: what they show


def test_a_sweep_draws_what_was_asked(swept, drawn):
    assert [p.name for p in sorted(swept.glob("*.png"))] == ["sweep.png"]  # lines per hue: no heatmaps
    rows = pd.read_csv(swept / "results.csv")
    assert main(["plot", str(swept), "--plot", "reached,revealed:expected_time,restricted_mean",
                 "--hue", "context.length"]) == 0
    (fig, path), = drawn
    reached, expected, restricted = fig.axes[:3]
    assert path.name == "sweep.png"
    assert "P(reached by N = 40)" in reached.get_title(loc="left") and expected.get_yscale() == "log"
    # the exact E[T] drawn is the column's, per prior, one line per context length
    for line, length in zip(expected.get_lines(), (2, 3)):
        sub = rows[rows["context.length"] == length].set_index("premises.luigi.prior").reindex([0.5, 0.9])
        assert np.allclose(line.get_ydata(), sub["revealed_exact_expected_hitting_time"])
        assert list(line.get_xdata()) == [0.5, 0.9]
    # the restricted mean says how many of the 50 replicates were censored, the column's range
    low, high = rows["revealed_censored"].min(), rows["revealed_censored"].max()
    assert f"censored: {low}-{high} of 50 replicates per point" in restricted.get_title(loc="left").replace("\n", " ")
    assert (rows["revealed_censored"] > 0).all()


def test_default_panels_show_the_exact_time_and_drop_what_repeats(swept, drawn, capsys):
    assert main(["plot", str(swept)]) == 0
    names = sorted(path.name for _, path in drawn)
    # two numeric parameters, no --hue: heatmaps; the set is closed (holding = reached), the two
    # populations' amplitudes sum to 1 (one panel), the absorption time is the criterion's E[T]
    assert names == ["heatmap_luigi_amplitude_final_mean.png", "heatmap_revealed_exact_expected_hitting_time.png",
                     "heatmap_revealed_reached.png", "heatmap_revealed_restricted_mean.png"]
    assert "redrew 4 sweep plots" in capsys.readouterr().out
    rows = pd.read_csv(swept / "results.csv")
    assert rows["revealed_exact_closed"].all()
    assert np.allclose(rows["luigi_amplitude_final_mean"] + rows["waluigi_amplitude_final_mean"], 1.0)
    assert np.allclose(rows["exact_expected_absorption_time"], rows["revealed_exact_expected_hitting_time"])
    figures = {path.name: fig for fig, path in drawn}
    heat = figures["heatmap_revealed_reached.png"]
    cells = [t.get_text() for t in heat.axes[0].texts]
    first = rows.sort_values(["premises.luigi.prior", "context.length"]).iloc[0]  # the lower left cell
    assert cells[0] == f"{first['revealed_reached']:.3g}\n({first['revealed_exact_reached_by_horizon']:.3g})"
    expected = figures["heatmap_revealed_exact_expected_hitting_time.png"]
    assert "log scale" in expected.axes[1].get_ylabel()  # the colour bar of E[T]


def test_an_overflowing_expected_time_is_drawn_as_its_log10(drawn):
    rows = pd.DataFrame({"k": [4, 8, 16], "c_exact_expected_hitting_time": [1e3, 1e300, np.nan],
                         "c_exact_expected_hitting_time_log10": [np.nan, np.nan, 400.5]})
    plots.sweep_plots(NOWHERE, rows, {"k": [4, 8, 16]}, ["c"], [], "t", choice=plots.FigureChoice(("expected_time",)))
    (fig, _), = drawn
    ax = fig.axes[0]
    assert "log10 of the exact E[T]" in ax.get_title(loc="left") and ax.get_yscale() == "linear"
    assert np.allclose(ax.get_lines()[0].get_ydata(), [3, 300, 400.5])


def test_axis_and_tick_labels_replace_the_path_on_every_figure_kind(drawn):
    """The priors helper's contract: ``axis_labels`` and ``tick_labels`` on lines, heatmaps, facets."""
    grid = {"a": [1, 2], "b": [0.5, 0.9], "c": ["x", "y"]}
    rows = pd.DataFrame([{"a": a, "b": b, "c": c, "r_reached": 0.5, "r_reached_lo": 0.4, "r_reached_hi": 0.6}
                         for a in grid["a"] for b in grid["b"] for c in grid["c"]])
    axis = {"a": "length k", "b": "prior (normalised)", "c": "rule"}
    ticks = {"a": ["k=1", "k=2"], "b": ["0.53", "0.91"], "c": ["X", "Y"]}
    plots.sweep_plots(NOWHERE, rows, grid, ["r"], [], "t", axis_labels=axis, tick_labels=ticks)  # facets
    two = {p: grid[p] for p in ("a", "b")}
    pair = rows[rows["c"] == "x"]
    plots.sweep_plots(NOWHERE, pair, two, ["r"], [], "t", axis_labels=axis, tick_labels=ticks)  # heatmap
    plots.sweep_plots(NOWHERE, pair, two, ["r"], [], "t", axis_labels=axis, tick_labels=ticks,
                      choice=plots.FigureChoice(hue="b"))  # lines
    (facets, _), (heat, _), (lines, _) = drawn
    ax = facets.axes[0]
    assert ax.get_xlabel() == "length k" and [t.get_text() for t in ax.get_xticklabels()] == ["k=1", "k=2"]
    assert ax.get_title() == "rule = X" and ax.get_legend() is None
    assert facets.axes[-1].get_legend().get_title().get_text() == "prior (normalised)"
    assert [t.get_text() for t in facets.axes[-1].get_legend().get_texts()][:2] == ["0.53", "0.91"]
    ax = heat.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("length k", "prior (normalised)")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.53", "0.91"]
    ax = lines.axes[0]
    assert ax.get_xlabel() == "length k" and [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["0.53", "0.91"]


def test_layout_rule():
    kinds = {"a": "arithmetic", "b": "geometric", "c": "categorical"}
    grid = {"a": [1, 2], "b": [1, 10, 100], "c": ["x", "y"]}
    layout = plots.sweep_layout
    assert layout({"a": grid["a"], "b": grid["b"]}, kinds, plots.FigureChoice()) == plots.Layout("a", "b", (), True)
    assert layout({"a": grid["a"], "b": grid["b"]}, kinds, plots.FigureChoice(x="b")) == plots.Layout("b", "a", (), True)
    assert layout({"a": grid["a"], "b": grid["b"]}, kinds, plots.FigureChoice(hue="a")) == \
        plots.Layout("b", "a", (), False)
    assert layout({"c": grid["c"], "b": grid["b"]}, kinds, plots.FigureChoice()) == plots.Layout("b", "c", (), False)
    assert layout(grid, kinds, plots.FigureChoice()) == plots.Layout("a", "b", ("c",), False)


# ---------------------------------------------------------------------------------------------
# Options: formats, dpi, windows, and one line for what cannot apply


def test_formats_and_dpi(swept, run_dir, analysis_dir, capsys):
    assert main(["plot", str(swept), "--plot", "reached", "--hue", "context.length", "--format", "pdf"]) == 0
    assert (swept / "sweep.pdf").read_bytes().startswith(b"%PDF-")
    assert main(["plot", str(run_dir), "--format", "svg"]) == 0
    for stem in ("populations", "reaching", "raster", "speakers"):
        text = (run_dir / f"{stem}.svg").read_text()
        assert text.startswith("<?xml") and "<svg" in text[:400]
    assert main(["plot", str(analysis_dir), "--format", "pdf"]) == 0
    for stem in ("eigenvalues", "stationary", "curves", "network"):
        assert (analysis_dir / f"{stem}.pdf").read_bytes().startswith(b"%PDF-")
    sizes = {}
    for dpi in (50, 100):
        assert main(["plot", str(analysis_dir), "--dpi", str(dpi)]) == 0
        sizes[dpi] = plt.imread(analysis_dir / "eigenvalues.png").shape[:2]
    assert all(abs(2 * a - b) <= 0.02 * b for a, b in zip(sizes[50], sizes[100]))  # twice the dots per inch, twice the pixels
    capsys.readouterr()


def test_raster_windows(run_dir, drawn, capsys):
    raster = pd.read_csv(run_dir / "raster.csv", index_col="step")
    assert main(["plot", str(run_dir), "--window", "10:20"]) == 0
    figures = {path.stem: fig for fig, path in drawn}
    image = figures["raster"].axes[0].images[0]
    assert image.get_array().shape == (raster.shape[1], 10)
    assert list(image.get_extent()[:2]) == [9.5, 19.5] and "steps 10-19 of 0-40" in figures["raster"].axes[0].get_title()
    assert "steps 10-19 of 1-40" in figures["speakers"].axes[0].get_title()
    capsys.readouterr()
    run = artefacts.read_run(run_dir)
    assert artefacts.check_window(run, (35, None)) == (35, 41) and artefacts.check_window(run, (None, 5)) == (0, 5)
    assert artefacts.check_window(run, None) is None
    one_line_error(capsys, ["plot", str(run_dir), "--window", "0:42"], "steps 0 .. 40", "END <= 41")
    one_line_error(capsys, ["plot", str(run_dir), "--window", "41:"], "START < END <= 41")
    one_line_error(capsys, ["plot", str(run_dir), "--window", "20:10"], "START must be below END")
    one_line_error(capsys, ["plot", str(run_dir), "--window", "ten"], "START:END")


def test_default_window_shows_where_the_window_changes():
    steps = np.zeros((3000, 4), dtype=int)
    steps[1200:1300] = np.arange(100)[:, None] % 3  # the only steps where anything happens
    start, end = plots.raster_window(steps)
    assert end - start == plots.RASTER_STEPS and start <= 1200 and end >= 1300
    assert start == 1200 - (plots.RASTER_STEPS - 1) + 99  # the earliest window holding all 100 changes
    assert plots.raster_window(steps[:300]) == (0, 300)  # a short run: every step
    assert plots.raster_window(np.zeros((5000, 2))) == (0, plots.RASTER_STEPS)  # nothing changes: the start


def test_bad_options_are_one_line(swept, run_dir, analysis_dir, tmp_path, capsys):
    s = str(swept)
    one_line_error(capsys, ["plot", s, "--plot", "speed"], "unknown metric 'speed'",
                   "expected_time, reached, restricted_mean, median, holding, amplitude, absorption_time")
    one_line_error(capsys, ["plot", s, "--plot", "luigi:reached"], "no criterion 'luigi'", "revealed")
    one_line_error(capsys, ["plot", s, "--plot", "revealed:amplitude"], "no population 'revealed'", "luigi, waluigi")
    one_line_error(capsys, ["plot", s, "--x", "context.width"], "not a grid parameter", "context.length")
    one_line_error(capsys, ["plot", s, "--x", "context.length", "--hue", "context.length"], "same parameter as --x")
    one_line_error(capsys, ["plot", s, "--log", "x"], "heatmap", "--hue")
    one_line_error(capsys, ["plot", s, "--log", "y", "--linear", "y"], "choose one scale")
    one_line_error(capsys, ["plot", s, "--log", "z"], "AXIS is x, y or a grid parameter")
    one_line_error(capsys, ["plot", s, "--hue", "context.length", "--log", "context.length"], "drawn as lines")
    one_line_error(capsys, ["plot", s, "--window", "0:10"], "sweep directory")
    one_line_error(capsys, ["plot", s, "--format", "gif"], "invalid choice")
    one_line_error(capsys, ["plot", s, "--dpi", "0"], "--dpi")
    one_line_error(capsys, ["plot", str(run_dir), "--plot", "reached", "--hue", "a"], "--plot, --hue",
                   "not a sweep directory")
    one_line_error(capsys, ["plot", str(analysis_dir), "--window", "0:5"], "analysis directory")
    # refused before anything runs: no directory is made
    out = tmp_path / "never"
    one_line_error(capsys, ["sweep", TOY, *GRID, *TINY, "--plot", "expected_time", "--out", str(out)],
                   "expected_time is the exact chain's", "--exact")
    one_line_error(capsys, ["sweep", TOY, "--grid", "context.length=2,3", *TINY, "--hue", "context.length",
                            "--out", str(out)], "one grid parameter")
    one_line_error(capsys, ["sweep", TOY, "--grid", "context.deletion=fifo,block", "--set", "context.block=2", *TINY,
                            "--log", "x", "--out", str(out)], "not numbers")
    one_line_error(capsys, ["sweep", TOY, "--grid", "sampling.temperature=0,1,2", *TINY, "--log", "x", "--out", str(out)],
                   "values <= 0")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Analysis figures


def test_eigenvalues_as_distance_from_the_unit_circle(analysis_dir, drawn):
    report = json.loads((analysis_dir / "report.json").read_text())
    with np.load(analysis_dir / "network.npz") as data:
        dense = np.linalg.eigvals(data["P"])  # the whole spectrum, by dense linear algebra
    second = sorted(np.abs(dense))[-2]
    plots.eigenvalue_plane(report["eigenvalues_complex"], "w", None)
    (fig, _), = drawn
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "unit eigenvalues" in ax.get_title() and ": 1" in ax.get_title()
    gaps = ax.collections[0].get_offsets()[:, 1]
    assert gaps.min() == pytest.approx(1 - second, rel=1e-9)  # 1 - |lambda_2|, from the report and from eigvals
    assert any(f"$1 - |\\lambda_2|$ = {1 - second:.3g}" in text.get_text() for text in ax.texts)
    assert "x4" in [text.get_text() for text in ax.texts]  # lambda = 0, four times
    groups = plots.eigenvalue_groups([[1, 0], [0.5, 0.5], [0.5, 0.5 + 1e-12], [0, 0], [0, 0], [0, 0], [-1, 0]])
    assert [n for _, n in groups] == [1, 1, 2, 3]
    assert np.allclose([z for z, _ in groups], [1, -1, complex(0.5, 0.5), 0], atol=1e-11)
    plots.eigenvalue_plane([[1, 0], [-1, 0], [0, 1], [0, -1]], "periodic", None)
    ax = drawn[-1][0].axes[0]
    assert "nothing to draw" in ax.texts[0].get_text() and "1, 1i, -1i, -1" in ax.get_title()


def test_stationary_figure_of_absorbing_and_periodic_chains(tmp_path, drawn, capsys):
    classes = [{"size": 1, "period": 1, "absorbing_state": "U U", "probability": 1.0,
                "stationary_top": [{"state": "U U", "mass": 1.0}]}]
    plots.stationary_mass(classes, "absorbed", None)
    assert "nothing more to draw" in drawn[-1][0].axes[0].texts[0].get_text()
    out = tmp_path / "dog"
    assert main(["analyze", str(SCENARIOS / "dog.toml"), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    fig = next(fig for fig, path in drawn if path is not None and path.name == "stationary.png")
    left, right = fig.axes
    probabilities = [bar.get_width() for bar in left.patches]
    assert sorted(probabilities) == sorted(c["probability"] for c in report["closed_classes"])
    assert sum(probabilities) == pytest.approx(1.0)
    masses = sorted(bar.get_width() for bar in right.patches)  # the law within each periodic class: uniform
    assert masses == pytest.approx([1 / 4] * 4 + [1 / 3] * 3)


def test_check_choice_names_the_exact_metrics():
    with pytest.raises(UsageError, match="absorption_time is the exact chain's"):
        plots.check_choice(plots.FigureChoice(("absorption_time",)), {"a": [1, 2]}, {"a": "arithmetic"}, ["r"], [], False)


def test_x_chooses_the_heatmap_axis(swept, drawn, capsys):
    assert main(["plot", str(swept), "--plot", "revealed:reached", "--x", "premises.luigi.prior"]) == 0
    (fig, path), = drawn
    ax = fig.axes[0]
    assert path.name == "heatmap_revealed_reached.png"
    # a swept written prior is titled by the prior it acts as (tests/test_priors.py)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("acting prior of luigi\n(raw premises.luigi.prior)", "context.length")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5→0.833", "0.9→0.9"]
    capsys.readouterr()


def test_an_exact_metric_out_of_reach_is_said(drawn):
    rows = pd.DataFrame({"k": [4, 8], "c_reached": [0.1, 0.2], "exact_note": ["too many states"] * 2})
    plots.sweep_plots(NOWHERE, rows, {"k": [4, 8]}, ["c"], [], "t", choice=plots.FigureChoice(("expected_time",)))
    (fig, _), = drawn
    assert "no value at any point" in fig.axes[0].texts[0].get_text()
    assert fig.axes[0].get_xlim()[0] < 4 < 8 < fig.axes[0].get_xlim()[1]


def test_the_help_lists_every_metric():
    from ecology.cli import build_parser

    for command in ("sweep", "plot"):
        text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
        for metric in plots.METRICS:
            assert metric in text, (command, metric)
