"""The interactive page without a browser: controls, records, exact overlay, rendered components.

The page is rendered with solara's test renderer (``solara.render``) inside an ``AppLayout``
(which is where SolaraViz's sidebar of controls lives, as in the served page).
"""

import itertools

import numpy as np
import pytest

solara = pytest.importorskip("solara")
import ipyvuetify as v  # noqa: E402

from ecology import app  # noqa: E402
from ecology.cli import main  # noqa: E402
from ecology.scenario import load  # noqa: E402

from .conftest import SCENARIOS  # noqa: E402

TOY = str(SCENARIOS / "waluigi.toml")


def test_controls_are_generated_from_the_scenario():
    soft = str(SCENARIOS / "waluigi_soft.toml")
    params = app.controls(load(soft), soft)
    for key in ("context__length", "context__deletion", "sampling__temperature", "premises__luigi__prior",
                "premises__waluigi__prior", "simulacra__luigi__eps", "simulacra__waluigi__p",
                "simulacra__waluigi__eps", "prompt", "run__replicates", "seed"):
        assert key in params
    assert params["simulacra__waluigi__p"]["value"] == 0.9 and params["context__length"]["value"] == 8
    assert params["source"] == soft
    dog = str(SCENARIOS / "dog.toml")
    assert any(key.endswith("__slip") for key in app.controls(load(dog), dog))
    coins = str(SCENARIOS / "coins.toml")
    assert any(key.startswith("populations__") and key.endswith("__prior") for key in app.controls(load(coins), coins))


def test_controls_map_to_overrides_of_the_model():
    model = app.PageModel(TOY, context__length=5, premises__waluigi__prior=0.3, prompt="F U", seed="11",
                          run__replicates=10, steps=20)
    cfg = model.config
    assert (cfg.context.length, cfg.premises["waluigi"].prior, cfg.context.prompt, cfg.run.seed) == (5, 0.3, ["F", "U"], 11)
    assert model.input_error is None and model.replicates == 10 and model.n_steps == 20


def test_invalid_controls_fall_back_to_the_scenario_and_say_why():
    model = app.PageModel(TOY, prompt="F X", run__replicates=10)
    assert "context.prompt[1]" in model.input_error and model.config.context.prompt == []
    assert model.replicates == 2000  # the scenario as loaded: none of the controls applied
    assert "seed" in app.PageModel(TOY, seed="abc").input_error


def test_responsibility_is_a_distribution_over_premises_and_speakers_follow_the_window():
    model = app.PageModel(str(SCENARIOS / "waluigi_soft.toml"), context__length=4, run__replicates=200)
    for _ in range(12):
        r = model.responsibility()
        np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)  # sum_s alpha_s mu_s(t|w) / mu(t|w) = 1
        model.step()
    assert len(model.premise_speakers) == 12 and len(model.tracked_amplitudes) == 13
    html = app.window_html(model, 3)
    assert f'data-window="{model.compiled.label(model.context.window[3])}"' in html
    assert html.count('class="ecology-token"') == 4 == html.count('title="printed at step')  # all generated
    assert 'title="printed at step 12, most responsible premise:' in html
    fractions = model.above[0.5][-1]
    np.testing.assert_allclose(fractions, (model.population > 0.5).mean(axis=0))


def test_exact_overlay_agrees_with_the_simulation():
    """k = 3: the simulated fraction that reached U^k by t = 30 lies within 5 sigma of the exact one."""
    model = app.PageModel(TOY, context__length=3, run__replicates=4000, steps=30)
    assert model.exact is not None and model.exact.chain.chain.n_states == 10
    np.testing.assert_allclose(model.exact.mean[0], model.population.mean(axis=0))  # step 0 is deterministic
    while model.running:
        model.step()
    reached, _ = app.criterion_history(model)["revealed"]
    exact = model.exact.criteria["revealed"][0][30]
    sigma = np.sqrt(exact * (1 - exact) / model.replicates)
    assert abs(reached[-1] - exact) < 5 * sigma
    waluigi = model.mixture.labels.index("waluigi")  # and P(alpha_waluigi > 1/2) at t = 30, likewise
    exact = model.exact.above[0.5][30, waluigi]
    assert abs(model.above[0.5][30][waluigi] - exact) < 5 * np.sqrt(exact * (1 - exact) / model.replicates)
    assert model.exact.state_of(model.context.window[0]) is not None


def test_large_chains_get_no_exact_view_but_a_reason():
    model = app.PageModel(TOY, context__length=12, run__replicates=10)
    assert model.exact is None and "64" in model.exact_note


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.toml")))
def test_every_shipped_scenario_draws(name):
    model = app.PageModel(str(SCENARIOS / f"{name}.toml"), run__replicates=20, steps=6)
    for _ in range(3):
        model.step()
    figures = [app.population_figure(model), app.amplitude_figure(model, 1), app.criteria_figure(model)]
    if model.exact is not None:
        figures.append(app.network_figure(model, 1))
    for figure in figures:
        figure.canvas.draw()
    for kind in [app.PopulationFigure, app.AmplitudeFigure, app.CriteriaFigure] + ([app.NetworkFigure] if model.exact else []):
        assert app.live_png(model, kind, 1).startswith(b"\x89PNG")
    assert "ecology-window" in app.window_html(model, 1) and model.config.name in app.model_parameters_html(model)


@solara.component
def InLayout(scenario, overrides):
    with solara.AppLayout() as main:
        app.page(scenario, **overrides)
    return main



def test_page_renders_and_its_controls_drive_the_model():
    _, rc = solara.render(InLayout(TOY, {"run__replicates": 200}), handle_error=False)
    labels = [s.label for s in rc.find(v.Slider).widgets]
    assert {"context length k", "prior of premise luigi", "prior of premise waluigi", "temperature T",
            "replicates R"} <= set(labels)
    assert "step 0 of 400" in box_html(rc) and "k = 8 (fifo)" in box_html(rc)
    rc.find(v.Slider, label="context length k").widget.v_model = 5
    rc.find(v.Slider, label="prior of premise waluigi").widget.v_model = 0.4
    rc.find(v.Btn, children=["Reset"]).widget.click()
    for _ in range(3):
        rc.find(v.Btn, children=["Step"]).widget.click()
    text = box_html(rc)
    assert "step 3 of 400" in text and "k = 5 (fifo)" in text and "waluigi 0.4" in text
    assert 'data-step="3"' in text and text.count('class="ecology-token"') == 5


def box_html(rc) -> str:
    """Every HTML fragment the page currently shows, joined."""
    import solara.widgets

    return " ".join(w.unsafe_innerHTML for w in rc.find(solara.widgets.HTML).widgets)


def test_cli_app_rejects_a_bad_scenario_in_one_line(tmp_path, capsys):
    assert main(["app", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err


def test_page_of_a_model_shows_that_model_and_takes_no_overrides():
    model = app.PageModel(TOY, run__replicates=20, context__length=4)
    _, rc = solara.render(InLayout(model, {}), handle_error=False)
    for _ in range(2):
        model.step()
    app.redraw()
    assert "step 2 of 400" in box_html(rc) and "k = 4 (fifo)" in box_html(rc)
    with pytest.raises(TypeError):
        app.page(model, context__length=5)


def test_live_plots_draw_what_a_fresh_figure_draws():
    """The page's blitted PNG of each plot matches the same figure drawn from scratch: pixels that
    differ (stacking order of the lines over the axes frame) are far fewer than those that 30
    steps change; the fixed part is rebuilt when the x range doubles (20 -> 40 steps here)."""
    import io

    import PIL.Image

    def pixels(png: bytes) -> np.ndarray:
        return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGBA"))

    def fresh(figure) -> np.ndarray:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return pixels(buffer.getvalue())

    model = app.PageModel(TOY, run__replicates=300, context__length=12)
    kinds = {app.PopulationFigure: lambda: app.population_figure(model),
             app.AmplitudeFigure: lambda: app.amplitude_figure(model, 0), app.CriteriaFigure: lambda: app.criteria_figure(model)}
    at_start = {kind: pixels(app.live_png(model, kind)) for kind in kinds}
    fixed_parts = {kind: model.live_plots[kind] for kind in kinds}
    for _ in range(30):
        model.step()
    for kind, figure in kinds.items():
        live = pixels(app.live_png(model, kind))
        assert model.live_plots[kind] is not fixed_parts[kind]  # the x range went from 20 to 40 steps
        differ = (live != fresh(figure())).any(axis=2).mean()
        changed = (live != at_start[kind]).any(axis=2).mean()
        assert differ < 0.25 * changed and changed > 0.001
    before = model.live_plots[app.PopulationFigure]
    model.step()
    app.live_png(model, app.PopulationFigure)
    assert model.live_plots[app.PopulationFigure] is before  # within a range: redrawn over the kept fixed part


def test_live_network_marks_the_replicate_state():
    model = app.PageModel(TOY, run__replicates=50, context__length=3)
    for _ in range(5):
        model.step()
        app.live_png(model, app.NetworkFigure, 2)
        plot = model.live_plots[app.NetworkFigure].plot
        np.testing.assert_array_equal(plot.current.get_offsets()[0], plot.xy[model.exact.state_of(model.context.window[2])])


def test_a_redraw_during_a_step_draws_the_steps_recorded_by_both_records():
    """With SolaraViz's Use Threads a redraw can land between the model's own step (collector
    written) and the page's records: the plots then draw the steps that both hold."""
    model = app.PageModel(TOY, run__replicates=20, context__length=4)
    model.step()
    app.EcologyModel.advance(model, 1)  # the model's step, without the page's bookkeeping yet
    t, mean, fractions, _ = app.PopulationFigure(model).data(model)
    assert len(t) == len(mean) == len(fractions[0.5]) == 2
    t, curves = app.CriteriaFigure(model).data(model)
    assert len(t) == 2 and all(len(reached) == len(holding) == 2 for reached, holding, _ in curves)
    for kind in (app.PopulationFigure, app.CriteriaFigure, app.AmplitudeFigure):
        assert app.live_png(model, kind).startswith(b"\x89PNG")


class FakeSession:
    """What PageModel reads of a solara virtual-kernel context: closed?, its pages, its websockets."""

    def __init__(self):
        import threading
        import types

        from solara.server.kernel_context import PageStatus

        self.closed_event = threading.Event()
        self.page_status = {"page": PageStatus.CONNECTED}
        self.kernel = types.SimpleNamespace(session=types.SimpleNamespace(websockets={"ws"}))


@pytest.mark.parametrize("gone", ["closed", "disconnected", "websocket dropped"])
def test_a_model_whose_page_is_gone_stops_computing(gone):
    from solara.server.kernel_context import PageStatus

    model = app.PageModel(TOY, run__replicates=20, context__length=4)
    assert model.session is None  # built outside a solara server: never stopped
    model.session = FakeSession()
    model.step()
    app.live_png(model, app.PopulationFigure)
    assert model.generated == 1 and model.running and model.live_plots
    if gone == "closed":
        model.session.closed_event.set()
    elif gone == "disconnected":
        model.session.page_status["page"] = PageStatus.DISCONNECTED
    else:
        model.session.kernel.session.websockets.clear()
    model.step()
    model.step()
    assert model.generated == 1 and not model.running and not model.live_plots
    assert "stopped at step 1: the browser page disconnected" in app.model_parameters_html(model)


def test_large_networks_are_drawn_in_layers_of_steps_from_the_initial_page():
    """Above LAYERED_ABOVE page-states, a node's x is its shortest-path distance from the initial
    page-state: on the toy at k = 8 (45 states), a window that has printed d tokens is d steps away."""
    model = app.PageModel(TOY, run__replicates=10, context__length=8)
    view = model.exact
    assert view.layered and view.chain.chain.n_states == 45
    xy = view.layout()
    for i, label in enumerate(view.labels):  # pads (N) are the tokens not printed yet
        assert xy[i, 0] == 8 - label.split().count("N")
    assert xy[view.chain.initial, 0] == 0
    for d in range(9):  # each layer spread over y without two nodes on one spot
        layer = xy[xy[:, 0] == d, 1]
        assert len(np.unique(layer)) == len(layer)
    small = app.PageModel(TOY, run__replicates=10, context__length=3).exact
    assert not small.layered and small.layout().shape == (10, 2)


def test_page_layout_puts_the_cards_side_by_side_and_each_plot_across_the_page():
    layout = app.page_layout(len(app.COMPONENTS))
    assert [(b["x"], b["w"]) for b in layout] == [(0, 6), (6, 6)] + [(0, 12)] * 4
    tops = [b["y"] for b in layout[2:]]
    assert tops == sorted(tops) and all(b - a == app.PLOT_ROWS for a, b in itertools.pairwise(tops))
