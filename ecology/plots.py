"""Figures of a run and of a sweep: what a researcher needs to see, at the size a paper prints.

Run figures (:func:`run_plots`):

- ``populations.png``: winner-take-all dynamics as the *distribution* over replicates: per
  step, the fraction of replicates in which each population holds more than 1/2 of the
  amplitude (stacked: at most one population can) and more than 0.99 (lines), and below it the
  amplitude trajectories of a few individual replicates;
- ``reaching.png``: per criterion, P(reached by step t) (Kaplan–Meier, with its 95% band) and
  the fraction holding at step t, with the exact chain's curves overlaid when known;
- ``raster.png``: one replicate's window over time (colour = token);
- ``speakers.png``: for the first replicates, the token printed at each step and the population
  most responsible for it (largest ``alpha_s mu_s(t|w) / mu(t|w)`` summed over its premises).

Sweep figures (:func:`sweep_plots`) follow the grid's shape and its kind (log axis for
geometric grids, linear for arithmetic ones); time figures are the censoring-safe restricted
mean ``E[min(T, N)]``, labelled as such.

Decomposition figures (:func:`amplitude_stories`, :func:`decomposition_comparison`) are those of
``ecology decompose``. The interactive page's figures (``page_*`` and :class:`PageNetwork`) draw on
an Axes the page gives them and return the artists that move from step to step
(:mod:`ecology.app` redraws only those). Run, analysis and sweep figures are drawn in the
:data:`PAPER` style (:data:`paper_style`); the others in matplotlib's current style.

Every function takes plain tables (what a run directory holds), so plots can be redrawn from
files without re-running. User text (names, tokens, labels) goes through :func:`esc`, so that a
``$`` in it is printed, never parsed as mathtext. Matplotlib's non-interactive Agg backend is
used throughout.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from ecology.io import safe
from ecology.kinds.observables import Certain, Majority

PAPER = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8,
         "text.usetex": False}  # user text is escaped for mathtext, not for LaTeX
paper_style = matplotlib.rc_context(PAPER)  # decorates every figure drawn at a paper's size; nothing global changes
SHOWN_TRAJECTORIES = 4  # individual replicates drawn under the population dynamics
SHOWN_SPEAKERS = 16  # replicates in the speakers raster
MAX_TICKS = 8


def esc(text) -> str:
    """User text made literal for matplotlib: ``$`` escaped, so mathtext never parses it."""
    return str(text).replace("$", r"\$")


def _save(fig, path: Path, dpi: int = 150, bbox_inches: str | None = "tight") -> None:
    """Write the figure to ``path`` and close it (also when writing fails); an ``OSError`` that
    names no file (a full disk found by ``write``) names ``path``."""
    try:
        fig.savefig(path, dpi=dpi, bbox_inches=bbox_inches)
    except OSError as err:
        raise safe.naming(err, path) from None
    finally:
        plt.close(fig)


def _colours(n: int) -> np.ndarray:
    return plt.get_cmap("tab10" if n <= 10 else "tab20")(np.arange(n) % 20)


@paper_style
def population_dynamics(steps: pd.DataFrame, labels: list[str], title: str, path: Path,
                        trajectories: pd.DataFrame | None = None) -> None:
    """Stacked fraction of replicates in which each population holds > 1/2 of the amplitude
    (the rest: no majority), lines for > 0.99, and a few replicates' trajectories below."""
    colours = _colours(len(labels))
    shown = [] if trajectories is None else sorted(trajectories["replicate"].unique())[:SHOWN_TRAJECTORIES]
    fig = plt.figure(figsize=(7.0, 4.8 if shown else 3.2))
    grid = fig.add_gridspec(2 if shown else 1, max(len(shown), 1), height_ratios=[2.2, 1] if shown else [1],
                            hspace=0.45, wspace=0.08)
    ax = fig.add_subplot(grid[0, :])
    x = steps.index.to_numpy()
    majority = np.array([steps[Majority.column(label)].to_numpy() for label in labels])
    none = np.clip(1.0 - majority.sum(axis=0), 0.0, 1.0)
    ax.stackplot(x, *majority, none, colors=[*colours, (0.88, 0.88, 0.88, 1.0)], step="post", alpha=0.55,
                 labels=[f"{esc(label)} > 1/2" for label in labels] + ["no majority"])
    for label, colour in zip(labels, colours):
        ax.step(x, steps[Certain.column(label)], where="post", color=colour, lw=1.4, label=f"{esc(label)} > 0.99")
    ax.set_xlim(x[0], x[-1] if len(x) > 1 else 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("fraction of replicates")
    ax.set_title(f"{esc(title)}: which population holds the amplitude (share of replicates)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="population amplitude", frameon=False)
    for i, replicate in enumerate(shown):
        sub = fig.add_subplot(grid[1, i])
        one = trajectories[trajectories["replicate"] == replicate]
        for label, colour in zip(labels, colours):
            sub.plot(one["step"], one[label], color=colour, lw=1.0)
        sub.set_ylim(-0.03, 1.03)
        sub.set_title(f"replicate {replicate}", fontsize=8)
        sub.set_xlabel("step", fontsize=8)
        sub.locator_params(axis="x", nbins=3)
        if i:
            sub.set_yticklabels([])
        else:
            sub.set_ylabel("amplitude")
    _save(fig, path)


PLOTTED_CRITERIA = 12  # curves of at most this many criteria in reaching.png (every one is in the tables)


@paper_style
def reaching_curves(criteria: dict, title: str, path: Path) -> None:
    """Per criterion: P(reached by t) (Kaplan–Meier, 95% band), fraction holding at t, and the
    exact chain's two curves where the summary has them; the first :data:`PLOTTED_CRITERIA`
    criteria only (beyond, the curves and their legend cannot be told apart, and drawing them costs
    0.1 s each), the title saying how many are shown."""
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    shown = dict(list(criteria.items())[:PLOTTED_CRITERIA])
    colours = _colours(max(len(shown), 1))
    for (name, c), colour in zip(shown.items(), colours):
        t = np.arange(len(c["reached_curve"]))
        ax.fill_between(t, c["reached_curve_lo"], c["reached_curve_hi"], step="post", color=colour, alpha=0.25, lw=0)
        ax.step(t, c["reached_curve"], where="post", color=colour, lw=1.4,
                label=f"'{esc(name)}' reached by t (simulated, 95% band)")
        ax.step(t, c["holding_curve"], where="post", color=colour, lw=1.0, ls=":",
                label=f"'{esc(name)}' holding at t (simulated)")
        exact = c.get("exact")
        if exact:
            dark = tuple(0.55 * np.asarray(colour[:3]))  # the criterion's colour, darkened
            ax.plot(t, exact["reached_curve"], color=dark, lw=1.0, ls="--", label=f"'{esc(name)}' reached by t (exact chain)")
            ax.plot(t, exact["holding_curve"], color=dark, lw=1.0, ls="-.", label=f"'{esc(name)}' holding at t (exact chain)")
    if not criteria:
        ax.text(0.5, 0.5, "no criteria in this scenario", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step t (tokens generated)")
    ax.set_ylabel("fraction of replicates")
    ax.set_ylim(-0.02, 1.02)
    some = "" if len(shown) == len(criteria) else f" (the first {len(shown)} of {len(criteria):,})"
    ax.set_title(f"{esc(title)}: criteria reached (first hit) and holding{some}")
    if criteria:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)


def _token_map(tokens: list[str], pad: str | None):
    names = tokens + ([pad] if pad is not None else [])
    colours = _colours(len(tokens))
    if pad is not None:
        colours = np.vstack([colours, [[0.85, 0.85, 0.85, 1.0]]])
    return names, ListedColormap(colours)


LEGEND_TOKENS = 24  # a vocabulary larger than this is drawn with the tokens that occur, the most frequent named


def _legend(ax, cmap, names: list[str], counts: np.ndarray | None, title: str) -> None:
    """A legend of the token colours: every token, or (``counts`` given) the most frequent
    :data:`LEGEND_TOKENS` of those shown and a line saying how many more there are."""
    order = np.arange(len(names)) if counts is None else np.argsort(-counts, kind="stable")[:LEGEND_TOKENS]
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in order]
    texts = [esc(names[i]) for i in order]
    if counts is not None and len(names) > len(order):
        handles.append(plt.Rectangle((0, 0), 1, 1, color="white"))
        texts.append(f"... {len(names) - len(order)} more tokens")
    ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=title, frameon=False)


def _compact(indices: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """For a large vocabulary, ``indices`` renumbered over the values that occur (their names and
    counts); a small one is kept as it is (counts None)."""
    if len(names) <= LEGEND_TOKENS + 1:
        return indices, names, None
    finite = indices[np.isfinite(indices)].astype(np.int64) if indices.dtype.kind == "f" else indices.ravel()
    used, counts = np.unique(finite, return_counts=True)
    out = np.full(indices.shape, np.nan) if indices.dtype.kind == "f" else np.empty(indices.shape, dtype=np.int64)
    inside = np.isfinite(indices) if indices.dtype.kind == "f" else np.ones(indices.shape, dtype=bool)
    out[inside] = np.searchsorted(used, indices[inside].astype(np.int64))
    return out, [names[u] for u in used], counts


@paper_style
def window_raster(raster: np.ndarray, tokens: list[str], pad: str, title: str, path: Path) -> None:
    """One replicate's window over time: x = step, y = position in the window, colour = token
    (for a large vocabulary, the tokens that occur; the most frequent named)."""
    names, cmap = _token_map(tokens, pad)
    raster, names, counts = _compact(raster, names)
    if counts is not None:
        cmap = ListedColormap(_colours(len(names)))
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    ax.imshow(raster.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
              origin="lower", extent=(-0.5, raster.shape[0] - 0.5, -0.5, raster.shape[1] - 0.5))
    _legend(ax, cmap, names, counts, "token")
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("position in window (0 = oldest)")
    ax.set_title(esc(title))
    _save(fig, path)


@paper_style
def speakers_raster(speakers: pd.DataFrame, tokens: list[str], labels: list[str], title: str, path: Path) -> None:
    """For the first replicates: the token printed at each step (top) and the population most
    responsible for it, ``argmax_population sum_s alpha_s mu_s(t|w) / mu(t|w)`` (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 4.6), sharex=True)
    if speakers.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no steps", ha="center", va="center", transform=ax.transAxes)
        _save(fig, path)
        return
    shown = sorted(speakers["replicate"].unique())[:SHOWN_SPEAKERS]
    sub = speakers[speakers["replicate"].isin(shown)]
    steps = int(sub["step"].max())
    for ax, column, names, legend in ((axes[0], "token", tokens, "token printed"),
                                      (axes[1], "speaker", labels, "most responsible")):
        index = {name: i for i, name in enumerate(names)}
        grid = np.full((len(shown), steps), np.nan)
        grid[sub["replicate"].map({r: i for i, r in enumerate(shown)}).to_numpy(), sub["step"].to_numpy() - 1] = \
            sub[column].astype(str).map(index).to_numpy(dtype=float)
        grid, names, counts = _compact(grid, names) if column == "token" else (grid, names, None)
        palette = _colours(len(names)) if column == "token" else plt.get_cmap("Dark2")(np.arange(len(names)) % 8)
        cmap = ListedColormap(palette)
        ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
                  origin="lower", extent=(0.5, steps + 0.5, -0.5, len(shown) - 0.5))
        _legend(ax, cmap, names, counts, legend)
        ax.set_ylabel("replicate")
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].set_title(f"{esc(title)}: who is speaking (token printed, and the population most responsible)")
    axes[1].set_xlabel("step (tokens generated)")
    _save(fig, path)


def run_plots(directory: Path, summary: dict, steps: pd.DataFrame, raster: np.ndarray, tokens: list[str], pad: str,
              replicate: int, trajectories: pd.DataFrame | None = None, speakers: pd.DataFrame | None = None) -> None:
    """All plots of a run directory."""
    name = summary["scenario"]
    labels = list(summary["populations"])
    population_dynamics(steps, labels, name, directory / "populations.png", trajectories)
    reaching_curves(summary["criteria"], name, directory / "reaching.png")
    window_raster(raster, tokens, pad, f"{name}: window of replicate {replicate} over time", directory / "raster.png")
    if speakers is not None:
        speakers_raster(speakers, tokens, labels, name, directory / "speakers.png")


@paper_style
def eigenvalue_plane(eigenvalues: list[list[float]], title: str, path: Path) -> None:
    """The computed eigenvalues of T in the complex plane, with the unit circle."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    theta = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), color="0.7", lw=1)
    values = np.array(eigenvalues).reshape(-1, 2)
    ax.scatter(values[:, 0], values[:, 1], zorder=3)
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    ax.set_aspect("equal")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_title(f"{esc(title)}: largest eigenvalues of T")
    _save(fig, path)


@paper_style
def stationary_mass(classes: list[dict], title: str, path: Path) -> None:
    """Stationary mass of the top page-states of each closed class (weighted by the
    probability of ending in that class from the initial window)."""
    rows = [(esc(f"[{i}] {s['state']}"), cls["probability"] * s["mass"]) for i, cls in enumerate(classes)
            for s in cls["stationary_top"]]
    rows.sort(key=lambda r: -r[1])
    rows = rows[:20][::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1)))
    ax.barh([r[0] for r in rows], [r[1] for r in rows])
    ax.set_xlabel("long-run probability from the initial window ([i] = closed class i)")
    ax.set_title(f"{esc(title)}: stationary mass of the top page-states")
    _save(fig, path)


@paper_style
def transition_network(P, labels: list[str], title: str, path: Path) -> None:
    """The chain drawn as a directed graph with labelled states and edge probabilities."""
    import networkx as nx

    coo = P.tocoo()
    graph = nx.DiGraph()
    graph.add_nodes_from(range(P.shape[0]))
    for i, j, p in zip(coo.row, coo.col, coo.data):
        graph.add_edge(int(i), int(j), p=float(p))
    size = max(6.0, 1.1 * np.sqrt(P.shape[0]) * 2)
    fig, ax = plt.subplots(figsize=(size, size))
    pos = nx.kamada_kawai_layout(graph) if P.shape[0] > 1 else {0: (0, 0)}
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color="#cfe2f3", node_size=900)
    compact = all(len(token) == 1 for label in labels for token in label.split())
    names = {i: esc(labels[i].replace(" ", "") if compact else labels[i].replace(" ", "\n")) for i in graph}
    nx.draw_networkx_labels(graph, pos, names, ax=ax, font_size=7)
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, node_size=900, connectionstyle="arc3,rad=0.12")
    nx.draw_networkx_edge_labels(graph, pos, {(i, j): f"{d['p']:.3g}" for i, j, d in graph.edges(data=True)},
                                 ax=ax, font_size=6, connectionstyle="arc3,rad=0.12")
    ax.set_title(f"{esc(title)}: transition network ({P.shape[0]} page-states, pads shown as the pad token)")
    ax.axis("off")
    _save(fig, path, dpi=110)


@paper_style
def exact_curves(curves: dict, title: str, path: Path) -> None:
    """Exact probability that each criterion holds at step t, and has held at or before t."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, c in curves.items():
        line = ax.plot(c["reached"], label=f"{esc(name)}: reached by t (held at some s <= t)")[0]
        ax.plot(c["holding"], ":", color=line.get_color(), label=f"{esc(name)}: holds at t")
    ax.set_xlabel("step t")
    ax.set_ylabel("probability (exact chain)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{esc(title)}: exact reaching and holding curves")
    if curves:
        ax.legend(loc="best")
    _save(fig, path)


def grid_kind(values: list) -> str:
    """How a grid's values are spaced, which decides its plot axis: ``"geometric"`` (numbers > 0
    in constant ratio, at least 3 of them: ``START:STOP:*FACTOR`` or a list such as
    ``0.001,0.01,0.1``; log axis), ``"arithmetic"`` (other numbers: linear axis) or
    ``"categorical"`` (anything else: one tick per value, in grid order)."""
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "categorical"
    x = np.array(values, dtype=float)
    if len(x) >= 3 and np.all(x > 0):
        ratios = x[1:] / x[:-1]
        differences = np.diff(x)
        geometric = np.allclose(ratios, ratios[0], rtol=1e-9) and not np.isclose(ratios[0], 1.0)
        if geometric and not np.allclose(differences, differences[0], rtol=1e-9):
            return "geometric"
    return "arithmetic"


def _ticks(ax, axis: str, values: list, kind: str) -> np.ndarray:
    """Positions of a swept parameter's values on ``axis`` ('x' or 'y'), its scale from the grid
    kind (log for geometric grids, linear for arithmetic ones, one slot per value for categories)
    and at most ``MAX_TICKS`` labelled ticks, so that labels never overlap."""
    if kind == "categorical":
        positions = np.arange(len(values), dtype=float)
    else:
        positions = np.array(values, dtype=float)
    if kind == "geometric":
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    every = max(1, math.ceil(len(values) / MAX_TICKS))
    chosen = list(range(0, len(values), every))
    labels = [esc(f"{v:g}" if isinstance(v, float) else v) for v in values]
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(positions[chosen], [labels[i] for i in chosen])
    if axis == "x":
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if max(len(labels[i]) for i in chosen) * len(chosen) > 48:
            plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    else:
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    return positions


def sweep_metrics(rows: pd.DataFrame, criteria: list[str], labels: list[str], steps: int | None = None
                  ) -> list[tuple[str, str, str | None, str | None, str | None]]:
    """(column, axis label, band low column, band high column, exact column) per plotted metric.
    Time is the restricted mean ``E[min(T, N)]`` (censoring-safe), never a mean over the
    replicates that happened to reach the criterion."""
    horizon = f"N = {steps}" if steps is not None else "N"
    metrics = []
    for c in criteria:
        c_ = esc(c)
        metrics.append((f"{c}_reached", f"'{c_}': P(reached by {horizon})", f"{c}_reached_lo", f"{c}_reached_hi",
                        f"{c}_exact_reached_by_horizon"))
        metrics.append((f"{c}_restricted_mean", f"'{c_}': restricted mean time\nto reach, E[min(T, {horizon})]",
                        f"{c}_restricted_mean_lo", f"{c}_restricted_mean_hi", f"{c}_exact_restricted_mean"))
        metrics.append((f"{c}_holding_final", f"'{c_}': holding at {horizon}", f"{c}_holding_final_lo",
                        f"{c}_holding_final_hi", None))
    for label in labels:
        metrics.append((f"{label}_amplitude_final_mean", f"'{esc(label)}': final mean amplitude", None, None, None))
    return [(col, name, lo, hi, exact if exact in rows else None) for col, name, lo, hi, exact in metrics if col in rows]


def _unit(column: str) -> str:
    return "steps" if "restricted_mean" in column else "amplitude" if "amplitude" in column else "fraction"


def _annotate(ax, values: np.ndarray, image) -> None:
    """Write each heatmap cell's value in it, dark on light cells and light on dark ones."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return
    middle = (np.nanmin(finite) + np.nanmax(finite)) / 2
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                    color="white" if v < middle else "black")


@paper_style
def sweep_plots(directory: Path, rows: pd.DataFrame, grid: dict[str, list], criteria: list[str], labels: list[str],
                title: str, kinds: dict[str, str] | None = None, steps: int | None = None) -> list[Path]:
    """Plots chosen by the grid's shape: lines with 95% bands (one parameter), annotated
    heatmaps (two), faceted lines (more); exact values drawn as black crosses where known."""
    kinds = {p: (kinds or {}).get(p) or grid_kind(values) for p, values in grid.items()}
    # list values (a swept prompt) are drawn by their text, as results.csv holds them
    listed = [p for p, values in grid.items() if any(isinstance(v, (list, dict)) for v in values)]
    if listed:
        grid = {p: [str(v) for v in values] if p in listed else values for p, values in grid.items()}
        rows = rows.assign(**{p: rows[p].astype(str) for p in listed if p in rows})
    metrics = sweep_metrics(rows, criteria, labels, steps)
    params = list(grid)
    written = []
    if rows.empty or not metrics:
        return written
    if len(params) == 1:
        p = params[0]
        values = [v for v in grid[p] if v in set(rows[p])]
        fig, axes = plt.subplots(len(metrics), 1, figsize=(6.0, 1.7 * len(metrics) + 0.6), squeeze=False, sharex=True,
                                 gridspec_kw={"hspace": 0.45})
        table = rows.set_index(p).reindex(values)
        for ax, (col, name, lo, hi, exact) in zip(axes[:, 0], metrics):
            x = _ticks(ax, "x", values, kinds[p])
            ax.plot(x, table[col], marker="o", ms=3, label="simulated")
            if lo:
                ax.fill_between(x, table[lo], table[hi], alpha=0.25, label="95% interval")
            if exact:
                ax.plot(x, table[exact], "kx", ms=5, label="exact chain")
            ax.set_title(name.replace("\n", " "), fontsize=8, loc="left")
            ax.set_ylabel(_unit(col))
        axes[-1, 0].set_xlabel(esc(p))
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        height = fig.get_size_inches()[1]
        fig.subplots_adjust(top=1 - 0.55 / height)
        fig.suptitle(f"{esc(title)}: sweep over {esc(p)} ({kinds[p]} grid)", y=1 - 0.12 / height)
        written.append(directory / "sweep.png")
        _save(fig, written[-1])
    elif len(params) == 2:
        p, q = params
        for col, name, _, _, _ in metrics:
            table = rows.pivot_table(index=q, columns=p, values=col, aggfunc="first").reindex(index=grid[q], columns=grid[p])
            values = table.to_numpy(dtype=float)
            fig, ax = plt.subplots(figsize=(1.6 + 0.75 * len(grid[p]), 1.4 + 0.45 * len(grid[q])))
            image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
            _annotate(ax, values, image)
            _ticks(ax, "x", grid[p], "categorical")
            _ticks(ax, "y", grid[q], "categorical")
            ax.set_xlabel(esc(p))
            ax.set_ylabel(esc(q))
            fig.colorbar(image, ax=ax, label=name)
            note = " (censoring-safe)" if "restricted_mean" in col else ""
            ax.set_title(f"{esc(title)}: {name.replace(chr(10), ' ')}{note}", fontsize=8)
            written.append(directory / f"heatmap_{col}.png")
            _save(fig, written[-1])
    else:
        p, q, rest = params[0], params[1], params[2:]
        facets = list(itertools.product(*(grid[r] for r in rest)))
        for col, name, lo, hi, exact in metrics:
            fig, axes = plt.subplots(1, len(facets), figsize=(2.8 * len(facets) + 1.5, 2.8), squeeze=False, sharey=True)
            for ax, facet in zip(axes[0], facets):
                sub = rows
                for r, v in zip(rest, facet):
                    sub = sub[sub[r] == v]
                x = _ticks(ax, "x", grid[p], kinds[p])
                for v in grid[q]:
                    line = sub[sub[q] == v].set_index(p).reindex(grid[p])
                    ax.plot(x, line[col], marker="o", ms=3, label=f"{esc(q)} = {esc(v)}")
                    if lo:
                        ax.fill_between(x, line[lo], line[hi], alpha=0.15)
                    if exact:
                        ax.plot(x, line[exact], "kx", ms=4)
                ax.set_title(", ".join(f"{esc(r)} = {esc(v)}" for r, v in zip(rest, facet)), fontsize=8)
                ax.set_xlabel(esc(p))
            axes[0, 0].set_ylabel(_unit(col))
            axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
            fig.suptitle(f"{esc(title)}: {name.replace(chr(10), ' ')}" + (" (crosses: exact chain)" if exact else ""),
                         y=1.04)
            written.append(directory / f"facets_{col}.png")
            _save(fig, written[-1])
    return written


def amplitude_stories(stories: list[tuple[str, list[str], np.ndarray]], title: str, path: Path) -> None:
    """Per decomposition: mean amplitude (band 10%–90% of storylines) per premise, and one
    storyline's amplitudes stacked; the storylines are the same for every decomposition."""
    fig, axes = plt.subplots(len(stories), 2, figsize=(11, 2.6 * len(stories)), squeeze=False)
    for (name, labels, amp), (left, right) in zip(stories, axes):
        steps = np.arange(amp.shape[0])
        for j, label in enumerate(labels):
            line = left.plot(steps, amp[:, :, j].mean(axis=1), label=label)[0]
            left.fill_between(steps, np.quantile(amp[:, :, j], 0.1, axis=1), np.quantile(amp[:, :, j], 0.9, axis=1),
                              color=line.get_color(), alpha=0.2)
        right.stackplot(steps, amp[:, 0, :].T, labels=labels)
        for ax in (left, right):
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("amplitude")
        left.set_title(f"{name}: mean over storylines (band 10%–90%)", fontsize=9)
        right.set_title(f"{name}: storyline 0", fontsize=9)
        left.legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("step (tokens generated)")
    fig.suptitle(f"{title}: the same storylines, told by each decomposition")
    fig.tight_layout()
    _save(fig, path, dpi=100, bbox_inches=None)


def decomposition_comparison(rows: list[dict], title: str, path: Path) -> None:
    """BIC and the martingale defect of the fitted decompositions against K."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    K = [row["premises"] for row in rows]
    a.plot(K, [np.nan if row["bic"] is None else row["bic"] for row in rows], marker="o")
    a.set_xlabel("K (premises fitted)")
    a.set_ylabel("BIC")
    b.plot(K, [np.nan if row["defect_mean"] is None else row["defect_mean"] for row in rows], marker="o", label="mean")
    b.plot(K, [np.nan if row["defect_max"] is None else row["defect_max"] for row in rows], marker="s", label="max")
    b.set_xlabel("K (premises fitted)")
    b.set_ylabel("martingale defect (fifo)")
    b.legend()
    for ax in (a, b):
        ax.set_xticks(K)
    fig.suptitle(f"{title}: fitted decompositions")
    fig.tight_layout()
    _save(fig, path, dpi=100, bbox_inches=None)


# ---------------------------------------------------------------------------------------------
# The interactive page's figures (ecology.app): each draws its fixed part on the Axes it is
# given and returns the artists that move (in the order they are drawn), which the page updates
# after each step and redraws over a copy of the fixed part.

PAGE_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f"]
PAGE_THRESHOLD_STYLES = {0.5: ("--", "> 1/2"), 0.99: (":", "> 0.99")}  # amplitude level -> line style, legend text
EXACT_STYLE = {"color": "black", "lw": 0.8, "alpha": 0.6}  # exact-chain curves over the simulated ones


def page_colour(i: int) -> str:
    """The page's colour of population, premise or criterion ``i``."""
    return PAGE_PALETTE[i % len(PAGE_PALETTE)]


def page_axes(figure, extent: int, ylabel: str, title: str, fontsize: int):
    """The Axes of a page time-series figure: steps 0 .. ``extent``, values in [0, 1]."""
    figure.subplots_adjust(left=0.07, right=0.78, bottom=0.14, top=0.9)
    ax = figure.add_subplot()
    ax.set_xlim(0, extent)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step t")
    ax.grid(alpha=0.3)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=fontsize)
    return ax


def page_legend(ax) -> None:
    """The legend beside the axes, where it hides no curve."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _moving_line(ax, moving: list, colour: str, **style):
    line = ax.plot([], [], color=colour, **style)[0]
    moving.append(line)
    return line


def _moving_band(ax, moving: list, colour: str):
    band = ax.fill_between([0.0], [0.0], [0.0], color=colour, alpha=0.15, lw=0)
    moving.append(band)
    return band


def set_band(band, t: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """Move a band of :func:`page_populations` or :func:`page_criteria` to ``low .. high`` over ``t``."""
    band.set_verts([np.column_stack([np.concatenate([t, t[::-1]]), np.concatenate([low, high[::-1]])])])


def page_populations(ax, labels: list[str], thresholds: tuple[float, ...], exact_mean: np.ndarray | None = None,
                     exact_majority: np.ndarray | None = None) -> tuple[list, list, list, list]:
    """Per population label: its mean amplitude, the fraction of replicates above each threshold
    and the band of the 1/2 fraction (moving), and, given the exact chain's ``(t, labels)`` mean
    and P(amplitude > 1/2), those two curves in black. Returns (moving, means, fractions, bands)."""
    moving, means, fractions, bands = [], [], [], []
    for j, label in enumerate(labels):
        colour = page_colour(j)
        means.append(_moving_line(ax, moving, colour, lw=2, label=f"{label}: mean"))
        fractions.append([_moving_line(ax, moving, colour, ls=PAGE_THRESHOLD_STYLES[c][0], lw=1.3,
                                       label=f"{label}: fraction {PAGE_THRESHOLD_STYLES[c][1]}") for c in thresholds])
        bands.append(_moving_band(ax, moving, colour))
        if exact_mean is not None:
            ax.plot(exact_mean[:, j], ls="-", **EXACT_STYLE)
            ax.plot(exact_majority[:, j], ls="--", **EXACT_STYLE)
    if exact_mean is not None:
        ax.plot([], [], label="exact chain", **EXACT_STYLE)
    page_legend(ax)
    return moving, means, fractions, bands


def page_amplitudes(ax, premises: list[str]) -> tuple[list, list]:
    """One moving line per premise amplitude ``alpha_s``; returns (moving, lines)."""
    moving = []
    lines = [_moving_line(ax, moving, page_colour(s), lw=1.6, label=name) for s, name in enumerate(premises)]
    page_legend(ax)
    return moving, lines


def page_criteria(ax, criteria: list[str], exact: dict | None = None) -> tuple[list, list]:
    """Per criterion: the reached and holding fractions and the reached one's band (moving) and,
    where ``exact`` has the criterion's ``(reached, holding)`` curves, those in black. Returns
    (moving, curves) with one ``(reached line, holding line, band)`` per criterion."""
    moving, curves = [], []
    for i, name in enumerate(criteria):
        colour = page_colour(i)
        curves.append((_moving_line(ax, moving, colour, lw=2, label=f"{name}: reached"),
                       _moving_line(ax, moving, colour, lw=1.2, ls="--", label=f"{name}: holding"),
                       _moving_band(ax, moving, colour)))
        known = exact.get(name) if exact is not None else None
        if known is not None:
            ax.plot(known[0], **EXACT_STYLE)
            ax.plot(known[1], ls="--", **EXACT_STYLE)
    if exact:
        ax.plot([], [], label="exact chain", **EXACT_STYLE)
    if criteria:
        page_legend(ax)
    else:
        ax.text(0.5, 0.5, "this scenario declares no [absorption] criteria", ha="center", transform=ax.transAxes)
    return moving, curves


def probability_text(p: float) -> str:
    """A probability in few digits that never rounds a near-certain one to 1 (``1 - 7.3e-04``)."""
    return "1" if p == 1.0 else f"1 - {1 - p:.2g}" if p > 0.99 else f"{p:.2g}"


class PageNetwork:
    """The page-state network on an Axes: arrows (darker = likelier) between the nodes at ``xy``,
    the initial page-state ringed in green and one replicate's page-state in red (moving), each
    state labelled with its name and self-loop probability (every state while at most ten, else
    the initial one and the replicate's)."""

    def __init__(self, ax, xy: np.ndarray, P, labels: list[str], initial: int, replicate: int, layout_note: str = ""):
        ax.set_axis_off()
        coo = P.tocoo()
        moves = coo.row != coo.col
        source, target, probability = xy[coo.row[moves]], xy[coo.col[moves]], coo.data[moves]
        shaft = (target - source) * 0.9  # stop short of the target node
        ax.quiver(source[:, 0], source[:, 1], shaft[:, 0], shaft[:, 1], probability, cmap="Greys", clim=(-0.3, 1.0),
                  angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=4, zorder=1)
        ax.scatter(xy[:, 0], xy[:, 1], s=60, c="#cccccc", edgecolors="#555555", zorder=2)
        self.few = len(xy) <= 10  # label every state only while the labels stay legible
        self.labels, self.initial, self.stay = labels, initial, P.diagonal()
        self.xy, self.middle = xy, (xy[:, 0].min() + xy[:, 0].max()) / 2
        for i in range(len(xy)) if self.few else [initial]:
            self.label(ax, i)
        ax.scatter(*xy[initial], s=90, facecolors="none", edgecolors="#2ca02c", lw=2, zorder=3, label="initial page")
        self.current = ax.scatter([xy[0, 0]], [xy[0, 1]], s=260, c="#d62728", zorder=4, label=f"replicate {replicate} now")
        self.current_label = None if self.few else self.label(ax, 0)
        self.moving = [self.current] + ([self.current_label] if self.current_label else [])
        ax.legend(fontsize=7, loc="lower left")
        ax.margins(0.15)
        note = f"; {layout_note}" if layout_note else ""
        ax.set_title(f"Page-state chain, {len(xy)} states (darker arrow = likelier{note})", fontsize=10)

    def label_text(self, i: int) -> str:
        """The name of page-state i, and its self-loop probability when it has one."""
        label = self.labels[i]
        return f"{label} (loop {probability_text(self.stay[i])})" if self.stay[i] > 0 else label

    def label(self, ax, i: int):
        """The label of page-state i, running inward from the node (never off the figure)."""
        return ax.annotate(self.label_text(i), self.xy[i], fontsize=7, ha="right" if self.xy[i, 0] > self.middle else "left",
                           va="bottom", xytext=(0, 8), textcoords="offset points")

    def show(self, current: int | None) -> None:
        """Mark page-state ``current`` (hidden when None: the replicate's window is not in the chain)."""
        self.current.set_visible(current is not None)
        if current is not None:
            self.current.set_offsets([self.xy[current]])
        if self.current_label is not None:
            visible = current is not None and current != self.initial
            self.current_label.set_visible(visible)
            if visible:
                self.current_label.set_text(self.label_text(current))
                self.current_label.xy = self.xy[current]
                self.current_label.set_ha("right" if self.xy[current, 0] > self.middle else "left")
