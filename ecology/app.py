"""The interactive page: Mesa's SolaraViz over the simulator's own :class:`EcologyModel`.

``ecology app FILE`` (or ``solara run app.py``) shows one scenario. The controls are generated
from the scenario (:func:`controls`) and are dotted-path overrides (``context__length`` is
``context.length``), applied when Reset rebuilds the model; Step / Play call the model's own
``step()``. What the page draws, per step ``t`` (notation of SCIENCE.md):

- population dynamics: over the R replicates, the mean amplitude of each population label and
  the fractions of replicates where it holds more than 1/2 and more than 0.99, with the 95%
  Wilson band of the 1/2 fraction;
- the per-premise amplitudes ``alpha_s(w_t)`` of one chosen replicate;
- that replicate's window, each token drawn in its token's colour over a bar in the colour of
  the premise most responsible for printing it: ``argmax_s alpha_s(w) mu_s(t | w) / mu(t | w)``,
  evaluated on the window ``w`` the token was printed from (the responsibilities sum to 1);
- the fraction of replicates for which each absorption criterion has held at some step
  ``<= t`` ("reached") and holds at ``t`` ("holding");
- for chains of at most :data:`EXACT_BUDGET` page-states, the exact curves from the initial
  page-state ``x``: ``E[amplitude] = (e_x P^t) a``, ``P(amplitude > c) = (e_x P^t) 1[a > c]``,
  holding ``(e_x P^t) h`` and reached (the hitting curve of ``h``), overlaid dashed in black;
  and the page-state network with the chosen replicate's page-state circled.

The per-step records the model does not keep (threshold fractions, the tracked replicates'
amplitudes and speakers) are kept by :class:`PageModel`, a subclass that only records: its
``advance(n)`` (hence ``step()``) takes the model's steps one at a time, bookkeeping after each. Each figure is a :class:`Plot`
whose fixed part is rendered once per model and whose moving artists are redrawn over it after
each step (:class:`LivePlot`); ``population_figure(model)`` and its siblings draw the same
figures from scratch, for a notebook or a file.
"""

from __future__ import annotations

import html
import io
import os
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import PIL.Image
import reacton.ipywidgets as widgets
import solara
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz, solara_viz
from mesa.visualization.utils import force_update
from scipy.sparse.csgraph import shortest_path

from ecology import plots
from ecology.core.compile import compile_scenario
from ecology.errors import TooManyStates, UserError
from ecology.exact.chain import build_chain, criterion_curves
from ecology.kinds.deletion import RULES
from ecology.kinds.observables import Criteria
from ecology.model import RASTER_REPLICATES, EcologyModel, resolve
from ecology.numerics import above
from ecology.scenario import PARAMETERISED_KINDS, Scenario
from ecology.statistics import wilson

TRACKED = RASTER_REPLICATES  # replicates whose amplitudes and speakers are recorded (the model's own record)
EXACT_BUDGET = 64  # page-states: the exact overlay and the network are drawn up to this size
THRESHOLDS = (0.5, 0.99)  # amplitude levels whose fraction of replicates is plotted
SCENARIO_ENV = "ECOLOGY_SCENARIO"
TOKEN_PALETTE = ["#a6cee3", "#fdbf6f", "#b2df8a", "#fb9a99", "#cab2d6", "#ffff99", "#8dd3c7", "#d9d9d9"]
FIGSIZE = (10.0, 3.8)  # inches: a plot spans the page's width (see page_layout)
DPI = 100
# ms between Play's steps: the click that pauses re-renders the page while the play thread keeps
# stepping; at 50 ms reacton gave up ("Too many renders triggered") in one browser run of four
PLAY_INTERVAL_MS = 150
LAYERED_ABOVE = 12  # page-states: a larger network is drawn in layers (steps from the initial page), not sprung

chosen_replicate = solara.reactive(0)


# ---------------------------------------------------------------------------------------------
# Reading the model: the one place that knows the model's attribute names for criterion records


def criterion_history(model: EcologyModel) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per criterion name: (reached fraction, holding fraction) at steps 0 .. t."""
    records = model.datacollector.model_vars
    return {c.name: (np.asarray(records[Criteria.column("reached", c.name)]),
                     np.asarray(records[Criteria.column("holding", c.name)])) for c in model.criteria}


def wilson_band(fraction: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of binomial proportions ``fraction`` out of ``n``, elementwise."""
    return wilson(np.asarray(fraction) * n, n)


# ---------------------------------------------------------------------------------------------
# The model the page drives


class ExactView:
    """The exact chain of a small scenario: curves over the horizon, network layout, state lookup."""

    def __init__(self, model: EcologyModel):
        compiled = model.compiled
        self.chain = build_chain(compiled, EXACT_BUDGET)
        horizon = model.n_steps
        distribution = np.empty((horizon + 1, self.chain.chain.n_states))  # e_x P^t, t = 0 .. H (n <= 64)
        distribution[0] = np.eye(self.chain.chain.n_states)[self.chain.initial]
        for t in range(horizon):
            distribution[t + 1] = distribution[t] @ self.chain.chain.P
        amplitude = self.chain.population_amplitudes  # (n, labels)
        self.mean = distribution @ amplitude
        self.above = {c: distribution @ above(amplitude, c) for c in THRESHOLDS}
        try:  # per criterion: (reached, holding) at t = 0 .. horizon
            self.criteria = {name: (np.asarray(c["reached"]), np.asarray(c["holding"]))
                             for name, c in criterion_curves(compiled, self.chain, horizon, EXACT_BUDGET).items()}
        except UserError:  # a periodic criterion whose extended chain exceeds the budget
            self.criteria = {}
        windows = self.chain.windows[:, self.chain.memory:].astype(np.int64)
        self.index = {row.tobytes(): i for i, row in enumerate(windows)}
        self.labels = self.chain.labels()
        self._layout = None

    def state_of(self, window: np.ndarray) -> int | None:
        return self.index.get(np.asarray(window, dtype=np.int64).tobytes())

    @property
    def layered(self) -> bool:
        return self.chain.chain.n_states > LAYERED_ABOVE

    def layout(self) -> np.ndarray:
        """(n, 2) node positions, computed once. Up to :data:`LAYERED_ABOVE` states a spring layout
        with a fixed seed; above, layers: x is the number of steps from the initial page-state
        (the shortest path in the transition graph), and the states of one layer are spread evenly
        over y in the order of their labels, so that arrows run left to right instead of a hairball."""
        if self._layout is None:
            n = self.chain.chain.n_states
            if self.layered:
                depth = shortest_path(self.chain.chain.P, unweighted=True, indices=self.chain.initial)
                positions = np.zeros((n, 2))
                for d in np.unique(depth[np.isfinite(depth)]):
                    layer = sorted(np.flatnonzero(depth == d), key=lambda i: self.labels[i])
                    positions[layer, 0] = d
                    positions[layer, 1] = np.linspace(-1, 1, len(layer) + 2)[1:-1] if len(layer) > 1 else 0.0
                self._layout = positions
            else:
                graph = nx.from_scipy_sparse_array(self.chain.chain.P, create_using=nx.DiGraph)
                spring = nx.spring_layout(graph, seed=0)
                self._layout = np.array([spring[i] for i in range(n)])
        return self._layout


def browser_session():
    """The solara server's virtual-kernel context the caller runs in (one per browser page), or
    None outside a solara server (a notebook, the test renderer, plain code)."""
    if "solara.server.kernel_context" not in sys.modules:
        return None
    from solara.server import kernel_context

    return kernel_context.get_current_context() if kernel_context.has_current_context() else None


def session_connected(session) -> bool:
    """Whether a browser page is connected to the session and can receive what it draws: solara
    marks each page of a virtual kernel connected, disconnected (websocket lost, may come back) or
    closed, closes the kernel after its cull timeout, and drops a websocket from the kernel's set
    when a send to it fails (then nothing the page draws reaches any browser)."""
    from solara.server.kernel_context import PageStatus

    if session.closed_event.is_set() or session.kernel is None or not session.kernel.session.websockets:
        return False
    return PageStatus.CONNECTED in tuple(session.page_status.values())


def serialise_websocket_sends() -> None:
    """Make solara's server send on each browser websocket one message at a time.

    solara's ``WebsocketWrapper.send_text`` / ``send_bytes`` hand each message from the calling
    thread to the event loop and wait for it; two threads that send at once run two sends on
    one websocket concurrently, which the websocket protocol does not allow. Mesa's Play does
    exactly that: its play thread renders the page while the thread that handled the click is
    still sending the re-rendered controls. The server then saw the connection fail, dropped the
    websocket, and the page showed nothing more until the browser reconnected (the 6-15 s
    freezes after Play). Here each websocket gets a lock held for the whole of each send.
    Applied when the module is imported inside a solara server; a no-op elsewhere, and applied once.
    """
    server = sys.modules.get("solara.server.starlette")
    wrapper = getattr(server, "WebsocketWrapper", None)
    if wrapper is None or getattr(wrapper, "_ecology_serialised", False):
        return
    locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    guard = threading.Lock()

    def lock_of(ws) -> threading.Lock:
        with guard:
            return locks.setdefault(ws, threading.Lock())

    def serialised(original):
        def send(self, data):
            with lock_of(self):
                return original(self, data)
        return send

    for name in ("send_text", "send_bytes"):
        setattr(wrapper, name, serialised(getattr(wrapper, name)))
    wrapper._ecology_serialised = True


serialise_websocket_sends()


def exact_view(model: EcologyModel) -> tuple[ExactView | None, str]:
    """The exact view, or None and the reason it is out of reach."""
    try:
        return ExactView(model), ""
    except TooManyStates:
        return None, (f"the page-state chain has more than {EXACT_BUDGET} states, the page's budget; shorten the "
                      "context length, or use `ecology analyze` for large chains")
    except UserError as err:
        return None, str(err)


class PageModel(EcologyModel):
    """:class:`EcologyModel` plus the records the page draws; built from the page's controls.

    ``source`` is the scenario file or object. ``prompt`` (tokens separated by spaces) and
    ``seed`` (text) come from text boxes; every other keyword is a dotted-path override (``__``
    for ``.``). Controls that make an invalid scenario do not crash the page: the scenario as
    loaded is used instead and :attr:`input_error` says what was wrong. ``scenario`` is Mesa's
    own experiment object (``mesa.experimental.scenarios.Scenario``), which SolaraViz's Reset
    passes to any model that accepts it; the seed control decides the random stream instead.
    """

    def __init__(self, source: Scenario | str | Path, rng=None, prompt: str | None = None,
                 seed: str | None = None, steps: int | None = None, scenario=None, **controls: Any):
        overrides = dict(controls)
        if steps is not None:
            overrides["run__steps"] = steps
        if prompt is not None:  # the text box's tokens replace the scenario's prompt, given as tokens or as text
            overrides["context__prompt"] = prompt.split()
            overrides["context__prompt_text"] = None
        self.input_error = None
        try:
            if seed is not None and str(seed).strip():
                overrides["run__seed"] = int(str(seed).strip())
            compile_scenario(resolve(source, {k.replace("__", "."): v for k, v in overrides.items()}))
        except ValueError as err:  # ScenarioError is a ValueError; so is int('x')
            self.input_error = f"seed: not an integer: {seed!r}" if not isinstance(err, UserError) else str(err)
            overrides = {}
        super().__init__(source, rng=rng, **overrides)
        self.source = source
        self.tracked = min(self.replicates, TRACKED)
        self.track_rows = np.arange(self.tracked)
        self.above = {c: [] for c in THRESHOLDS}  # per step: (labels,) fraction of replicates above c
        self.tracked_amplitudes = []  # per step: (tracked, S) premise amplitudes
        self.exact, self.exact_note = exact_view(self)
        self.live_plots = {}  # per Plot class: the LivePlot the page redraws after each step
        self.session = browser_session()
        self.stopped_note = ""  # why the model stopped before its horizon (its browser went away)
        self._record()

    def advance(self, steps: int) -> None:
        """Steps one at a time (``step()`` is ``advance(1)``), the page's records after each; none
        once the browser session that built the model is gone (:meth:`stop_if_unwatched`)."""
        for _ in range(steps):
            if self.stop_if_unwatched():
                return
            super().advance(1)
            self._record()

    def stop_if_unwatched(self) -> bool:
        """Stop for good when no browser page is connected to the session that built this model.

        Mesa's play loop runs in a thread of its own until the model stops running, whether or not
        anyone watches: a closed tab would compute to the horizon. Here the model sets ``running``
        to False (which ends that loop after the current step), drops the live plots' figures (the
        bulk of what the page adds to the model) and says so in :attr:`stopped_note`; the records
        drawn so far stay. A model built outside a solara server session (a notebook, a test,
        code) is never stopped."""
        if self.stopped_note:
            return True
        if self.session is None or session_connected(self.session):
            return False
        self.running = False
        self.live_plots.clear()
        self.stopped_note = f"stopped at step {self.generated}: the browser page disconnected (press Reset to run again)"
        print(f"ecology app: a model {self.stopped_note}", file=sys.stderr, flush=True)
        return True

    def _record(self) -> None:
        for c in THRESHOLDS:
            self.above[c].append(above(self.population, c).mean(axis=0))
        self.tracked_amplitudes.append(np.exp(self.current.log_amplitude[self.track_rows]))


# ---------------------------------------------------------------------------------------------
# Controls generated from the scenario


def _slider(label: str, value: float, low: float, high: float, step: float, integer: bool = False) -> dict:
    return {"type": "SliderInt" if integer else "SliderFloat", "label": label, "value": value,
            "min": low, "max": high, "step": step}


def offered_deletion_rules(context) -> list[str]:
    """The registered deletion rules (:data:`ecology.kinds.deletion.RULES`, in their order) that
    the scenario's ``[context]`` can run (:meth:`ecology.kinds.deletion.DeletionRule.usable`: a
    rule that needs a setting, ``block = B`` or ``delimiter``, is offered only when it is set)."""
    return [name for name, rule in RULES.items() if rule.usable(context)]


def controls(config: Scenario, scenario: Scenario | str | Path) -> dict[str, Any]:
    """Mesa ``model_params`` for a scenario: one control per numeric or categorical knob.

    Keys are :class:`PageModel` keywords: dotted scenario paths with ``__`` for ``.``, plus
    ``prompt``, ``seed`` and ``steps``. ``source`` (the file or object) is a fixed parameter.
    """
    ctx, run = config.context, config.run
    rules = offered_deletion_rules(ctx)
    params: dict[str, Any] = {"source": str(scenario) if isinstance(scenario, Path) else scenario}
    params["context__length"] = _slider("context length k", ctx.length, 1, max(64, 2 * ctx.length), 1, True)
    params["context__deletion"] = {"type": "Select", "label": "deletion rule", "value": ctx.deletion,
                                   "values": list(dict.fromkeys([ctx.deletion, *rules]))}
    temperature = config.sampling.temperature
    params["sampling__temperature"] = _slider("temperature T", temperature, 0.0, max(3.0, 2 * temperature), 0.05)
    for name, premise in config.premises.items():
        params[f"premises__{name}__prior"] = _prior_slider(f"prior of premise {name}", premise.prior)
    for name, population in config.populations.items():
        params[f"populations__{name}__prior"] = _prior_slider(f"prior of population {name}", population.prior)
    for name, spec in config.simulacra.items():
        for parameter in PARAMETERISED_KINDS.get(spec.kind, ()):
            params[f"simulacra__{name}__{parameter}"] = _slider(f"{name}: {parameter}", getattr(spec, parameter), 0.0, 1.0, 0.01)
    for name, population in config.populations.items():
        for parameter in PARAMETERISED_KINDS.get(population.template.kind, ()):
            if parameter != population.parameter:  # that one is drawn from the distribution
                params[f"populations__{name}__template__{parameter}"] = _slider(
                    f"{name} (each): {parameter}", getattr(population.template, parameter), 0.0, 1.0, 0.01)
    params["prompt"] = {"type": "InputText", "label": "prompt (tokens separated by spaces)", "value": " ".join(ctx.prompt)}
    params["run__replicates"] = _slider("replicates R", run.replicates, 1, max(5000, run.replicates), 1, True)
    params["steps"] = _slider("steps (horizon)", run.steps, 1, max(1000, run.steps), 1, True)
    params["seed"] = {"type": "InputText", "label": "seed", "value": str(run.seed)}
    return params


def _prior_slider(label: str, prior: float) -> dict:
    step = 0.01 if prior >= 0.01 else 10 ** np.floor(np.log10(prior))
    return _slider(label, prior, step, max(1.0, prior), step)


# ---------------------------------------------------------------------------------------------
# Figures. Each is a Plot: build() has ecology.plots draw what stays fixed while a model runs
# (axes, labels, legend, exact curves, the network's nodes and arrows) on the Plot's own Figure
# and keeps the moving artists it returns; data() reads the model's records (the plot's data
# preparation); show() hands them to the moving artists. The page keeps one LivePlot per figure,
# which renders the fixed part once and then, per step, only the moving artists over a copy of
# it (matplotlib's blitting).


def steps_extent(model: PageModel) -> int:
    """The x range of the plots: the whole horizon when exact curves are drawn over it; else the
    first of 20, 40, 80, ... that leaves a tenth of room past the current step (capped at the
    horizon), so that the axes, and the rendered fixed part of a live plot, change only at doublings."""
    if model.exact is not None:
        return max(model.n_steps, 1)
    extent = 20
    while extent < 1.1 * model.generated:
        extent *= 2
    return max(min(extent, model.n_steps), 1)


class Plot:
    """A figure of the page for one model (and one chosen replicate, for the per-replicate ones)."""

    def __init__(self, model: PageModel, replicate: int = 0):
        self.replicate = replicate
        self.key = self.key_of(model, replicate)
        self.figure = Figure(figsize=FIGSIZE, dpi=DPI)
        self.moving: list = []
        self.build(model)

    @staticmethod
    def key_of(model: PageModel, replicate: int) -> tuple:
        """What the fixed part depends on besides the model: a live plot is rebuilt when it changes."""
        return replicate, steps_extent(model)

    def axes(self, model: PageModel, ylabel: str, title: str, fontsize: int):
        return plots.page_axes(self.figure, steps_extent(model), ylabel, title, fontsize)

    def draw(self, model: PageModel) -> Figure:
        self.show(self.data(model))
        return self.figure


def recorded_steps(model: PageModel) -> int:
    """How many steps (0 .. t) both the model's collector and the page's records hold. They differ
    only while a step is under way, when SolaraViz's *Use Threads* redraws in parallel with it."""
    return min(*(len(column) for column in model.datacollector.model_vars.values()),
               *(len(model.above[c]) for c in THRESHOLDS))


class PopulationFigure(Plot):
    """Mean amplitude and fractions of replicates above 1/2 and 0.99, per population label."""

    @staticmethod
    def key_of(model: PageModel, replicate: int) -> tuple:
        return (steps_extent(model),)  # the same whatever replicate is chosen

    def build(self, model: PageModel) -> None:
        ax = self.axes(model, "amplitude / fraction", f"Populations over {model.replicates} replicates "
                       "(band: 95% interval)", 9)
        exact = model.exact
        self.moving, self.means, self.fractions, self.bands = plots.page_populations(
            ax, model.mixture.labels, THRESHOLDS, None if exact is None else exact.mean,
            None if exact is None else exact.above[0.5])

    def data(self, model: PageModel):
        """Steps 0 .. t; (t + 1, labels) means and fractions above each threshold; the Wilson band of the 1/2 one."""
        records = model.datacollector.model_vars
        steps = recorded_steps(model)
        mean = np.column_stack([records[f"{label}_mean"][:steps] for label in model.mixture.labels])
        fractions = {c: np.asarray(model.above[c][:steps]) for c in THRESHOLDS}
        return np.arange(steps), mean, fractions, wilson_band(fractions[0.5], model.replicates)

    def show(self, data) -> None:
        t, mean, fractions, (low, high) = data
        for j, line in enumerate(self.means):
            line.set_data(t, mean[:, j])
            for c, fraction in zip(THRESHOLDS, self.fractions[j]):
                fraction.set_data(t, fractions[c][:, j])
            plots.set_band(self.bands[j], t, low[:, j], high[:, j])


class AmplitudeFigure(Plot):
    """``alpha_s(w_t)`` of every premise in one replicate."""

    def build(self, model: PageModel) -> None:
        ax = self.axes(model, "amplitude alpha_s", f"Premise amplitudes in replicate {self.replicate}", 10)
        self.moving, self.lines = plots.page_amplitudes(ax, [agent.spec.name for agent in model.premise_agents])

    def data(self, model: PageModel):
        """Steps 0 .. t and the (t + 1, S) amplitudes of the chosen replicate."""
        amplitudes = np.array([row[self.replicate] for row in model.tracked_amplitudes])
        return np.arange(len(amplitudes)), amplitudes

    def show(self, data) -> None:
        t, amplitudes = data
        for s, line in enumerate(self.lines):
            line.set_data(t, amplitudes[:, s])


class CriteriaFigure(Plot):
    """Reached and holding fractions per absorption criterion (exact curves in black)."""

    @staticmethod
    def key_of(model: PageModel, replicate: int) -> tuple:
        return (steps_extent(model),)

    def build(self, model: PageModel) -> None:
        ax = self.axes(model, "fraction of replicates", "Absorption: reached by t (solid), holding at t (dashed)", 9)
        self.moving, self.curves = plots.page_criteria(ax, [c.name for c in model.criteria],
                                                       model.exact.criteria if model.exact is not None else None)

    def data(self, model: PageModel):
        """Steps 0 .. t and, per criterion, the reached and holding fractions and the reached one's Wilson band."""
        steps = recorded_steps(model)
        return np.arange(steps), [(reached[:steps], holding[:steps], wilson_band(reached[:steps], model.replicates))
                                  for reached, holding in criterion_history(model).values()]

    def show(self, data) -> None:
        t, curves = data
        for (reached_line, holding_line, band), (reached, holding, (low, high)) in zip(self.curves, curves):
            reached_line.set_data(t, reached)
            holding_line.set_data(t, holding)
            plots.set_band(band, t, low, high)


class NetworkFigure(Plot):
    """The page-state network (arrow darkness ~ transition probability); the replicate's page-state in red."""

    @staticmethod
    def key_of(model: PageModel, replicate: int) -> tuple:
        return (replicate,)

    def build(self, model: PageModel) -> None:
        view = model.exact
        self.figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)
        self.network = plots.PageNetwork(self.figure.add_subplot(), view.layout(), view.chain.chain.P, view.labels,
                                         view.chain.initial, self.replicate,
                                         "layers: steps from the initial page" if view.layered else "")
        self.moving, self.current, self.xy = self.network.moving, self.network.current, self.network.xy

    def data(self, model: PageModel):
        """The index of the chosen replicate's page-state in the chain (None if it is not in it)."""
        return model.exact.state_of(model.context.window[self.replicate])

    def show(self, current: int | None) -> None:
        self.network.show(current)


class LivePlot:
    """A plot redrawn step after step: its fixed part rendered once; per step, its moving artists
    updated and drawn over a copy of that rendering, and the canvas encoded as PNG."""

    def __init__(self, plot: Plot):
        self.plot = plot
        self.canvas = FigureCanvasAgg(plot.figure)
        for artist in plot.moving:
            artist.set_animated(True)  # left out of canvas.draw(): the fixed part only
        self.canvas.draw()
        self.fixed = self.canvas.copy_from_bbox(plot.figure.bbox)

    def png(self, data) -> bytes:
        self.plot.show(data)
        self.canvas.restore_region(self.fixed)
        for artist in self.plot.moving:
            self.plot.figure.draw_artist(artist)
        buffer = io.BytesIO()
        PIL.Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba()).save(
            buffer, format="png", compress_level=1)
        return buffer.getvalue()


def live_png(model: PageModel, kind: type[Plot], replicate: int = 0) -> bytes:
    """The PNG of a page figure at the model's current step, from the model's live plot of that kind."""
    live = model.live_plots.get(kind)
    if live is None or live.plot.key != kind.key_of(model, replicate):
        live = model.live_plots[kind] = LivePlot(kind(model, replicate))
    return live.png(live.plot.data(model))


def population_figure(model: PageModel) -> Figure:
    """The population figure at the model's current step, as a matplotlib figure of its own."""
    return PopulationFigure(model).draw(model)


def amplitude_figure(model: PageModel, replicate: int) -> Figure:
    """The chosen replicate's premise amplitudes, as a matplotlib figure of its own."""
    return AmplitudeFigure(model, replicate).draw(model)


def criteria_figure(model: PageModel) -> Figure:
    """The absorption criteria's fractions, as a matplotlib figure of its own."""
    return CriteriaFigure(model).draw(model)


def network_figure(model: PageModel, replicate: int) -> Figure:
    """The page-state network with the replicate's page-state, as a matplotlib figure of its own."""
    return NetworkFigure(model, replicate).draw(model)


def _colour_legend(items: list[tuple[str, str]]) -> str:
    return " ".join(f'<span style="display:inline-block;width:12px;height:12px;background:{colour};'
                    f'border:1px solid #666;vertical-align:middle"></span> {html.escape(name)}' for name, colour in items)


def window_html(model: PageModel, replicate: int) -> str:
    """The replicate's window as boxes: token colour on top, most responsible premise below.

    The generated tokens still in the window are the last ``min(t, n - pinned)`` of its ``n``
    non-pad tokens (deletion removes the oldest unpinned tokens); the others came from the prompt.
    """
    compiled = model.compiled
    names = compiled.tokens + [compiled.scenario.vocabulary.pad]
    window = model.context.window[replicate]
    n_tokens = int((window < compiled.n_tokens).sum())
    generated = min(model.generated, n_tokens - model.config.context.pinned)
    # the model's own record of the premise most responsible for each printed token (EcologyModel.credit_token)
    recent = model.premise_speakers[len(model.premise_speakers) - generated:] if generated else []
    speakers = [int(row[replicate]) for row in recent]
    premises = [agent.spec.name for agent in model.premise_agents]
    first_generated = len(window) - generated
    boxes = []
    for i, token in enumerate(window):
        token = int(token)
        colour = TOKEN_PALETTE[token % len(TOKEN_PALETTE)] if token < compiled.n_tokens else "#ffffff"
        if i >= first_generated:
            speaker = speakers[i - first_generated]
            step = model.generated - (len(window) - 1 - i)
            bar, who = plots.page_colour(speaker), f"printed at step {step}, most responsible premise: {premises[speaker]}"
        else:
            bar, who = "#ffffff", "pad" if token >= compiled.n_tokens else "prompt token"
        boxes.append(
            f'<span class="ecology-token" title="{html.escape(who)}" style="display:inline-block;min-width:22px;'
            f'margin:1px;text-align:center;font-family:monospace;font-size:14px;background:{colour};'
            f'border:1px solid #888;border-bottom:6px solid {bar}">{html.escape(names[token])}</span>')
    # the legend names every token of a small vocabulary, and only those in the window of a large one
    shown = range(compiled.n_tokens) if compiled.n_tokens <= 64 else sorted({int(t) for t in window if t < compiled.n_tokens})
    tokens_legend = _colour_legend([(compiled.tokens[i], TOKEN_PALETTE[i % len(TOKEN_PALETTE)]) for i in shown])
    premise_legend = _colour_legend([(p, plots.page_colour(s)) for s, p in enumerate(premises)])
    text = " ".join(names[int(t)] for t in window)
    reader = next((p.model for p in compiled.premises if p.model is not None and p.model.has_text), None)
    decoded = ("" if reader is None else '<div class="ecology-text" style="font-size:13px;margin-top:4px;white-space:pre-wrap">'
               f"as text: {html.escape(repr(reader.text(window)))}</div>")
    return (f'<div class="ecology-window" data-step="{model.generated}" data-replicate="{replicate}" '
            f'data-window="{html.escape(text)}"><div style="line-height:1.9">{"".join(boxes)}</div>{decoded}'
            f'<div style="font-size:12px;margin-top:4px">box colour = token: {tokens_legend}</div>'
            f'<div style="font-size:12px">bar under a generated token = the premise most responsible for printing it '
            f'(largest alpha_s mu_s(t|w) / mu(t|w)): {premise_legend}; no bar = pad or prompt</div></div>')


def model_parameters_html(model: PageModel) -> str:
    """The parameters the running model was built with, as HTML (Markdown would fetch KaTeX from a CDN)."""
    cfg = model.config
    ctx = cfg.context
    priors = ", ".join(f"{name} {p.prior:g}" for name, p in [*cfg.premises.items(), *cfg.populations.items()])
    exact = (f"exact chain: {model.exact.chain.chain.n_states} page-states (overlaid in black)" if model.exact
             else f"no exact overlay ({model.exact_note})")
    return (f"<p><b>{html.escape(cfg.name)}</b>: {html.escape(cfg.description)}</p>"
            f"<p>Running: <b>step {model.generated} of {model.n_steps}</b>; k = {ctx.length} ({ctx.deletion}), "
            f"T = {cfg.sampling.temperature:g}, priors: {html.escape(priors)}; "
            f"prompt: {html.escape(' '.join(ctx.prompt)) or '(empty)'}; "
            f"R = {model.replicates} replicates, seed {cfg.run.seed}; {html.escape(exact)}.</p>"
            + (f"<p><b>{html.escape(model.stopped_note)}</b></p>" if model.stopped_note else "") +
            "<p>Changed a control on the left? Press <b>Reset</b> to rebuild the model with it.</p>")


PAGE_STYLE = (
    # a slider shows its value at all times, not only while dragged, in a bubble that rises into the
    # room left under its label (the label on a line of its own, above the slider)
    ".v-slider__thumb-label-container { display: block !important; }"
    ".v-input__slider .v-input__slot { flex-wrap: wrap; }"
    ".v-input__slider .v-input__slot > .v-label { flex: 1 0 100%; margin: 0 0 46px 0 !important; }"
    # the page has one tab of components: no tab bar ("Page 0")
    ".v-tabs { display: none !important; }"
    # the figures scale to their box; solara's banner ("This website runs on Solara", pinned to the
    # bottom right of the window over whatever scrolls under it) goes in the flow, after the page
    ".vue-grid-item img { max-width: 100%; height: auto; }"
    'div[style*="right: 0px; bottom: 0px"] { position: static !important; text-align: right; }'
)


def RunCard(model: PageModel):
    with solara.Column() as main:
        solara.Style(PAGE_STYLE)
        solara.HTML(unsafe_innerHTML=model_parameters_html(model))
        if model.input_error:
            solara.Error(f"Controls not applied (the scenario as loaded runs instead): {model.input_error}")
    return main


def WindowCard(model: PageModel):
    replicate = min(chosen_replicate.value, model.tracked - 1)
    with solara.Column() as main:
        solara.SliderInt(f"replicate shown (0 .. {model.tracked - 1})", value=replicate,
                         on_value=chosen_replicate.set, min=0, max=model.tracked - 1)
        solara.HTML(unsafe_innerHTML=f"<b>Window of replicate {replicate} at step {model.generated}</b> (oldest token first)")
        solara.HTML(unsafe_innerHTML=window_html(model, replicate))
    return main


def _image(png: bytes):
    return widgets.Image(value=png, format="png")


def PopulationPlot(model: PageModel):
    return _image(live_png(model, PopulationFigure))


def AmplitudePlot(model: PageModel):
    return _image(live_png(model, AmplitudeFigure, min(chosen_replicate.value, model.tracked - 1)))


def CriteriaPlot(model: PageModel):
    return _image(live_png(model, CriteriaFigure))


def NetworkPlot(model: PageModel):
    if model.exact is None:
        return solara.HTML(unsafe_innerHTML=f"<b>No page-state network</b>: {html.escape(model.exact_note)}")
    return _image(live_png(model, NetworkFigure, min(chosen_replicate.value, model.tracked - 1)))


COMPONENTS = [RunCard, WindowCard, PopulationPlot, AmplitudePlot, CriteriaPlot, NetworkPlot]
CARD_ROWS, PLOT_ROWS = 8, 11  # heights in the page grid's rows: the two cards, then each plot


def page_layout(n_components: int) -> list[dict]:
    """The page's grid (Mesa's ``make_initial_grid_layout``, which gives every component half the
    width and the same height): the run card and the window side by side, then each plot across
    the whole width, one under the other. Boxes can still be dragged and resized."""
    cards = [{"i": i, "x": 6 * i, "y": 0, "w": 6, "h": CARD_ROWS, "moved": False} for i in range(min(2, n_components))]
    rows = [{"i": i, "x": 0, "y": CARD_ROWS + PLOT_ROWS * (i - 2), "w": 12, "h": PLOT_ROWS, "moved": False}
              for i in range(2, n_components)]
    return cards + rows


solara_viz.make_initial_grid_layout = page_layout  # ComponentsView calls it by this module-level name


def page(scenario: PageModel | Scenario | str | Path, **overrides: Any):
    """The SolaraViz page of a scenario (display it in a notebook cell, or serve it with solara).

    ``scenario`` is a scenario file or object, built into a :class:`PageModel` with ``overrides``;
    or a :class:`PageModel` already built, which the page then shows and steps (in a notebook,
    ``model.step()`` followed by :func:`redraw` advances it from code, as the Step button does).
    """
    if isinstance(scenario, PageModel):
        if overrides:
            raise TypeError("page(model) takes no overrides: they were applied when the model was built")
        model, scenario = scenario, scenario.source
    else:
        if isinstance(scenario, Path):
            scenario = str(scenario)
        model = PageModel(scenario, **overrides)
    if model.input_error:
        raise UserError(model.input_error)
    return SolaraViz(model, components=[(c, 0) for c in COMPONENTS], model_params=controls(model.config, scenario),
                     name=f"simulacra-ecology: {model.config.name}", play_interval=PLAY_INTERVAL_MS)


def redraw() -> None:
    """Redraw every page on display, as SolaraViz does after its Step button (Mesa's ``force_update``)."""
    force_update()


def default_scenario() -> str:
    """The scenario named by ``$ECOLOGY_SCENARIO``, else the toy shipped with the repository."""
    return os.environ.get(SCENARIO_ENV) or str(Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml")


@solara.component
def Page():
    """Entry point of ``solara run ecology.app``: the page of :func:`default_scenario`."""
    return page(default_scenario())
