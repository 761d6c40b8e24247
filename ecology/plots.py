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

Sweep figures (:func:`sweep_plots`) draw the metrics of :data:`METRICS` (:func:`sweep_metrics`:
with ``--exact`` the exact ``E[T]`` on a log axis, P(reached by N) simulated beside exact, the
restricted mean ``E[min(T, N)]`` titled with its censored counts; no panel that repeats another)
laid out by :func:`sweep_layout` (lines, lines per hue, heatmaps, facets), each parameter's axis
scale from :func:`grid_kind` unless a :class:`FigureChoice` forces it.

Analysis figures: :func:`eigenvalue_plane` (``1 - |lambda|`` on a log axis, multiplicities, the
unit eigenvalues listed), :func:`stationary_mass` (where the chain ends), :func:`exact_curves`,
:func:`transition_network`. The rasters of a run show a window of steps (:func:`raster_window`).

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
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from ecology.errors import UsageError
from ecology.io import safe
from ecology.kinds.observables import Certain, Majority

PAPER = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8,
         "text.usetex": False}  # user text is escaped for mathtext, not for LaTeX
paper_style = matplotlib.rc_context(PAPER)  # decorates every figure drawn at a paper's size; nothing global changes
SHOWN_TRAJECTORIES = 4  # individual replicates drawn under the population dynamics
SHOWN_SPEAKERS = 16  # replicates in the speakers raster
MAX_TICKS = 8
DPI = 150  # resolution of a raster figure (png) unless --dpi says otherwise


def esc(text) -> str:
    """User text made literal for matplotlib: ``$`` escaped, so mathtext never parses it."""
    return str(text).replace("$", r"\$")


def _save(fig, path: Path, dpi: int = DPI, bbox_inches: str | None = "tight") -> None:
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
                        trajectories: pd.DataFrame | None = None, dpi: int = DPI) -> None:
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
    _save(fig, path, dpi)


PLOTTED_CRITERIA = 12  # curves of at most this many criteria in reaching.png (every one is in the tables)


@paper_style
def reaching_curves(criteria: dict, title: str, path: Path, dpi: int = DPI) -> None:
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
    _save(fig, path, dpi)


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


RASTER_STEPS = 400  # a longer run's rasters show this many steps by default (raster_window)


def raster_window(raster: np.ndarray) -> tuple[int, int]:
    """The steps ``START <= t < END`` a run's rasters show unless ``--window`` says otherwise: every
    step of a run of at most :data:`RASTER_STEPS` steps (rows ``t = 0 .. N``); of a longer one, the
    :data:`RASTER_STEPS` consecutive steps in which the raster replicate's window changes most often
    (a step counts when its window differs from the step before), the earliest on a tie: where the
    window stops changing (absorbed in a fixed page) the figure would be uniform colour."""
    rows = len(raster)
    if rows <= RASTER_STEPS:
        return 0, rows
    changed = np.concatenate([[0], np.cumsum(np.any(raster[1:] != raster[:-1], axis=1))])
    counts = changed[RASTER_STEPS - 1:] - changed[:rows - RASTER_STEPS + 1]  # changes at steps s+1 .. s+W-1
    start = int(np.argmax(counts))
    return start, start + RASTER_STEPS


def _window_text(window: tuple[int, int], rows: int) -> str:
    """``steps 0-399 of 0-6000`` (every step: ``steps 0-40``)."""
    start, end = window
    return f"steps {start}-{end - 1}" + ("" if (start, end) == (0, rows) else f" of 0-{rows - 1}")


@paper_style
def window_raster(raster: np.ndarray, tokens: list[str], pad: str, title: str, path: Path,
                  window: tuple[int, int] | None = None, dpi: int = DPI) -> None:
    """One replicate's window over the steps ``START <= t < END`` of ``window`` (default
    :func:`raster_window`): x = step, y = position in the window, colour = token (for a large
    vocabulary, the tokens that occur; the most frequent named)."""
    start, end = window or raster_window(raster)
    names, cmap = _token_map(tokens, pad)
    shown, names, counts = _compact(raster[start:end], names)
    if counts is not None:
        cmap = ListedColormap(_colours(len(names)))
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    ax.imshow(shown.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
              origin="lower", extent=(start - 0.5, end - 0.5, -0.5, shown.shape[1] - 0.5))
    _legend(ax, cmap, names, counts, "token")
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("position in window (0 = oldest)")
    ax.set_title(f"{esc(title)}, {_window_text((start, end), len(raster))}")
    _save(fig, path, dpi)


@paper_style
def speakers_raster(speakers: pd.DataFrame, tokens: list[str], labels: list[str], title: str, path: Path,
                    window: tuple[int, int] | None = None, dpi: int = DPI) -> None:
    """For the first replicates, over the steps ``START <= t < END`` of ``window`` (default: every
    step): the token printed at each step (top) and the population most responsible for it,
    ``argmax_population sum_s alpha_s mu_s(t|w) / mu(t|w)`` (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 4.6), sharex=True)
    start, end = window or (1, int(speakers["step"].max()) + 1 if not speakers.empty else 1)
    sub = speakers[(speakers["step"] >= start) & (speakers["step"] < end)]
    if sub.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no steps printed in this window" if not speakers.empty else "no steps",
                    ha="center", va="center", transform=ax.transAxes)
        _save(fig, path, dpi)
        return
    shown = sorted(sub["replicate"].unique())[:SHOWN_SPEAKERS]
    sub = sub[sub["replicate"].isin(shown)]
    first, last = int(sub["step"].min()), int(sub["step"].max())
    for ax, column, names, legend in ((axes[0], "token", tokens, "token printed"),
                                      (axes[1], "speaker", labels, "most responsible")):
        index = {name: i for i, name in enumerate(names)}
        grid = np.full((len(shown), last - first + 1), np.nan)
        grid[sub["replicate"].map({r: i for i, r in enumerate(shown)}).to_numpy(), sub["step"].to_numpy() - first] = \
            sub[column].astype(str).map(index).to_numpy(dtype=float)
        grid, names, counts = _compact(grid, names) if column == "token" else (grid, names, None)
        palette = _colours(len(names)) if column == "token" else plt.get_cmap("Dark2")(np.arange(len(names)) % 8)
        cmap = ListedColormap(palette)
        ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
                  origin="lower", extent=(first - 0.5, last + 0.5, -0.5, len(shown) - 0.5))
        _legend(ax, cmap, names, counts, legend)
        ax.set_ylabel("replicate")
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    every = int(speakers["step"].max())
    steps = f"steps {first}-{last}" + ("" if (first, last) == (1, every) else f" of 1-{every}")
    axes[0].set_title(f"{esc(title)}: who is speaking (token printed, and the population most responsible), {steps}")
    axes[1].set_xlabel("step (tokens generated)")
    _save(fig, path, dpi)


def run_plots(directory: Path, summary: dict, steps: pd.DataFrame, raster: np.ndarray, tokens: list[str], pad: str,
              replicate: int, trajectories: pd.DataFrame | None = None, speakers: pd.DataFrame | None = None,
              window: tuple[int, int] | None = None, ext: str = "png", dpi: int = DPI) -> list[Path]:
    """All plots of a run directory, in format ``ext``; the rasters over ``window`` (steps
    ``START <= t < END``; default :func:`raster_window`, which the speakers raster shares)."""
    name = summary["scenario"]
    labels = list(summary["populations"])
    window = window or raster_window(raster)
    written = [directory / f"{stem}.{ext}" for stem in ("populations", "reaching", "raster")]
    population_dynamics(steps, labels, name, written[0], trajectories, dpi=dpi)
    reaching_curves(summary["criteria"], name, written[1], dpi=dpi)
    window_raster(raster, tokens, pad, f"{name}: window of replicate {replicate}", written[2], window, dpi)
    if speakers is not None:
        written.append(directory / f"speakers.{ext}")
        speakers_raster(speakers, tokens, labels, name, written[-1], window, dpi)
    return written


UNIT_TOLERANCE = 1e-9  # |lambda| within this of 1 counts as a unit eigenvalue (the solver's accuracy is ~1e-12)
SAME_EIGENVALUE = 1e-9  # eigenvalues closer than this are counted as one, with its multiplicity


def eigenvalue_groups(eigenvalues: list[list[float]]) -> list[tuple[complex, int]]:
    """The computed eigenvalues as ``(value, multiplicity)``, values closer than
    :data:`SAME_EIGENVALUE` counted as one, largest modulus first."""
    values = sorted((complex(re, im) for re, im in eigenvalues), key=lambda z: (-abs(z), -z.real, -z.imag))
    groups: list[list] = []
    for z in values:
        for group in groups:
            if abs(group[0] - z) < SAME_EIGENVALUE:
                group[1] += 1
                break
        else:
            groups.append([z, 1])
    return [(z, n) for z, n in groups]


def _complex_text(z: complex) -> str:
    """``0.9925``, ``-0.5 + 0.866i``, ``-1i``: parts below :data:`SAME_EIGENVALUE` written as 0."""
    re, im = (0.0 if abs(v) < SAME_EIGENVALUE else v for v in (z.real, z.imag))
    if im == 0:
        return f"{re:.6g}"
    return f"{im:.4g}i" if re == 0 else f"{re:.4g} {'+' if im > 0 else '-'} {abs(im):.4g}i"


@paper_style
def _ending_text(probability: float | None) -> str:
    return "not computed" if probability is None else probability_text(probability)


def eigenvalue_plane(eigenvalues: list[list[float]], title: str, path: Path, dpi: int = DPI) -> None:
    """The computed eigenvalues of T (the largest by modulus) as the distance from the unit
    circle, ``1 - |lambda|`` (log axis), against their argument ``arg(lambda) / pi``: the spectral
    gap ``1 - |lambda_2|`` is what sets the time to forget the start (about ``1 / (1 - |lambda_2|)``
    steps). Marker area and a ``xN`` label give multiplicities; the unit eigenvalues
    (``|lambda| = 1`` within :data:`UNIT_TOLERANCE`, one per closed class and period) cannot sit on
    a log axis and are listed in the figure instead."""
    groups = eigenvalue_groups(eigenvalues)
    unit = [(z, n) for z, n in groups if abs(1 - abs(z)) <= UNIT_TOLERANCE]
    inside = [(z, n) for z, n in groups if abs(1 - abs(z)) > UNIT_TOLERANCE]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if inside:
        gap = np.array([1 - abs(z) for z, _ in inside])
        angle = np.array([np.angle(z) / np.pi for z, _ in inside])
        count = np.array([n for _, n in inside])
        ax.scatter(angle, gap, s=30 * count, zorder=3, alpha=0.8)
        for a, g, n in zip(angle, gap, count):
            if n > 1:
                ax.annotate(f"x{n}", (a, g), xytext=(5, 3), textcoords="offset points", fontsize=7)
        ax.set_yscale("log")
        low, high = gap.min(), gap.max()
        ax.set_ylim(high * 3, low / 3)  # inverted: near the unit circle (the slow modes) at the top
        z, _ = inside[0]
        ax.annotate(f"$|\\lambda_2|$ = {abs(z):.6g}, $1 - |\\lambda_2|$ = {1 - abs(z):.3g}", (angle[0], gap[0]),
                    xytext=(0, 9), textcoords="offset points", fontsize=7, ha="center")
        if any(z == 0 for z, _ in inside):
            ax.annotate("$\\lambda = 0$", (0, 1), xytext=(0, -12), textcoords="offset points", fontsize=7, ha="center")
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "every computed eigenvalue has $|\\lambda| = 1$: nothing to draw on this axis" if groups else
                "the spectrum was not computed (the report's notes say why)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(-1.15, 1.15)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1], ["-1", "-1/2", "0", "1/2", "1"])
    ax.set_xlabel("argument $\\arg(\\lambda) / \\pi$ (0: real positive, $\\pm 1$: real negative)")
    ax.set_ylabel("$1 - |\\lambda|$ (log axis; marker area: multiplicity)")
    listed = ", ".join(f"{_complex_text(z)}{f' (x{n})' if n > 1 else ''}" for z, n in unit) or "none computed"
    total = sum(n for _, n in groups)
    ax.set_title(f"{esc(title)}: the {total} computed eigenvalues of T of largest modulus\n"
                 + _wrap(f"unit eigenvalues ($|\\lambda| = 1$, not on the axis): {listed}", 100), fontsize=8)
    _save(fig, path, dpi)


@paper_style
def stationary_mass(classes: list[dict], title: str, path: Path, dpi: int = DPI) -> None:
    """Where the chain ends from the initial window: left, the probability of ending in each closed
    class (the absorption probabilities; a class named by its absorbing page-state, or its size and
    period); right, the stationary law within each closed class of more than one state (its top
    page-states, as the report keeps them). A chain whose closed classes are single absorbing
    states has no law within them to draw, and the figure says so; a chain with one closed class,
    a single absorbing state, is said in words (there is nothing to draw)."""
    names = [esc(f"[{i}] " + (c["absorbing_state"] or f"{c['size']:,} states, period {c['period']}"))
             for i, c in enumerate(classes)]
    if len(classes) == 1 and classes[0]["size"] == 1:
        fig, ax = plt.subplots(figsize=(7.0, 1.8))
        ax.set_axis_off()
        ax.text(0.0, 0.5, f"one closed class, the absorbing page-state {names[0][4:]}, reached with probability "
                f"{_ending_text(classes[0]['probability'])}:\nthe stationary law is the point mass there; "
                "nothing more to draw", ha="left", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_title(f"{esc(title)}: where the chain ends (long-run behaviour from the initial window)", loc="left")
        _save(fig, path, dpi)
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, max(2.6, 0.3 * max(len(classes), 6) + 1.2)),
                                      gridspec_kw={"width_ratios": [1, 1.3], "wspace": 0.9})
    ending = [c["probability"] or 0.0 for c in classes]  # None: not computed (the report's notes say why)
    shown = sorted(range(len(classes)), key=lambda i: -ending[i])[:20][::-1]  # likeliest on top
    left.barh([names[i] for i in shown], [ending[i] for i in shown], color="C0")
    for k, i in enumerate(shown):
        left.annotate(_ending_text(classes[i]["probability"]), (ending[i], k), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=7)
    left.set_xlim(0, 1.15)
    left.set_xlabel("probability of ending in the class")
    more = f" (the 20 likeliest of {len(classes):,})" if len(classes) > 20 else ""
    left.set_title(f"closed classes reached from the initial window{more}", fontsize=8, loc="left")
    rows = [(esc(f"[{i}] {s['state']}"), s["mass"]) for i, c in enumerate(classes) if c["size"] > 1
            for s in c["stationary_top"]]
    rows = sorted(rows, key=lambda r: -r[1])[:20][::-1]
    if rows:
        right.barh([r[0] for r in rows], [r[1] for r in rows], color="C1")
        right.set_xlabel("stationary probability within its class ([i] = class i)")
        right.set_title("stationary law within each class of more than one state (top states)", fontsize=8, loc="left")
    else:
        right.set_axis_off()
        right.text(0.0, 0.5, "every closed class is a single absorbing page-state:\nits stationary law is the point "
                   "mass there,\nnothing more to draw", ha="left", va="center", transform=right.transAxes, fontsize=8)
    fig.suptitle(f"{esc(title)}: where the chain ends (long-run behaviour from the initial window)", y=1.02)
    _save(fig, path, dpi)


@paper_style
def transition_network(P, labels: list[str], title: str, path: Path, dpi: int = 110) -> None:
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
    _save(fig, path, dpi=dpi)


@paper_style
def exact_curves(curves: dict, title: str, path: Path, dpi: int = DPI) -> None:
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
    _save(fig, path, dpi)


def grid_kind(values: list) -> str:
    """How a grid's values are spaced, which decides its plot axis: ``"geometric"`` (log axis),
    ``"arithmetic"`` (other numbers: linear axis) or ``"categorical"`` (anything else: one tick
    per value, in grid order).

    The rule for numbers: a grid is drawn on a log axis when its values are all > 0, at least 3
    of them, and either in constant ratio (``START:STOP:*FACTOR``, a list such as
    ``0.001,0.01,0.1``) or spanning a decade or more (``max / min >= 10``) with log-spacing more
    even than linear spacing: the coefficient of variation (standard deviation over mean) of the
    steps ``|ln x_{i+1} - ln x_i|`` smaller than that of the steps ``|x_{i+1} - x_i|``. The list
    ``1,0.5,0.3,0.2,0.1`` is log (0.21 against 0.73), ``0.1:1:0.1`` linear (0.77 against 0)."""
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "categorical"
    x = np.array(values, dtype=float)
    if len(x) < 3 or not np.all(x > 0):
        return "arithmetic"
    ratios = x[1:] / x[:-1]
    if np.allclose(ratios, ratios[0], rtol=1e-9) and not np.isclose(ratios[0], 1.0):
        return "geometric"
    if x.max() / x.min() >= LOG_SPAN and _unevenness(np.log(x)) < _unevenness(x):
        return "geometric"
    return "arithmetic"


LOG_SPAN = 10.0  # a grid that is not in constant ratio is drawn on a log axis only if it spans this ratio


def _unevenness(x: np.ndarray) -> float:
    """The coefficient of variation of the steps ``|x_{i+1} - x_i|`` (0: evenly spaced)."""
    steps = np.abs(np.diff(x))
    return float(steps.std() / steps.mean()) if steps.mean() > 0 else 0.0


def _ticks(ax, axis: str, values: list, kind: str, labels: list[str] | None = None) -> np.ndarray:
    """Positions of a swept parameter's values on ``axis`` ('x' or 'y'), its scale from the grid
    kind (log for geometric grids, linear for arithmetic ones, one slot per value for categories)
    and at most ``MAX_TICKS`` labelled ticks, so that labels never overlap; ``labels`` (one per
    value) replace the values' own text."""
    if kind == "categorical":
        positions = np.arange(len(values), dtype=float)
    else:
        positions = np.array(values, dtype=float)
    if kind == "geometric":
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    every = max(1, math.ceil(len(values) / MAX_TICKS))
    chosen = list(range(0, len(values), every))
    labels = [esc(v) for v in labels] if labels is not None else [_value_text(v) for v in values]
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(positions[chosen], [labels[i] for i in chosen])
    if axis == "x":
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if max(len(labels[i]) for i in chosen) * len(chosen) > 48:
            plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    else:
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    return positions


def _value_text(value) -> str:
    return esc(f"{value:g}" if isinstance(value, float) else value)


# The metrics of a sweep figure (``--plot``): name -> what a panel of it shows. A criterion's metric
# may be qualified by the criterion (``revealed:expected_time``), ``amplitude`` by the population.
METRICS = {
    "expected_time": "exact E[T] per criterion (needs --exact), log axis; log10 E[T] where some point's E[T] "
                     "overflows a double",
    "reached": "P(reached by N) simulated, with its 95% Wilson interval, and exact (crosses, with --exact)",
    "restricted_mean": "restricted mean E[min(T, N)] simulated, with its 95% interval, and exact (crosses); the "
                       "title gives how many replicates were censored",
    "median": "median of T with its 95% interval (no value where the KM curve does not cross 1/2 by N)",
    "holding": "fraction of replicates holding the criterion at N, with its 95% Wilson interval",
    "amplitude": "final mean amplitude per population",
    "absorption_time": "exact expected time to a closed class (needs --exact)",
    "occupation": "fraction of the steps 0..N spent in a criterion's or named set's set, with its 95% interval, and "
                  "exact (crosses, with --exact)",
    "long_run_occupation": "exact long-run fraction of the steps in a criterion's or named set's set (needs --exact)",
    "stay": "mean stay per visit in a criterion's or named set's set (steps in it per exit), with its 95% interval, "
            "and exact over the same horizon (crosses); the title gives how many visits were still open at N",
    "between_entries": "mean time between entries into a criterion's or named set's set, with its 95% interval, "
                       "and exact over the same horizon (crosses)",
    "loop_lap": "exact probability of going once round the most likely loop of the chain (needs --exact)",
}
CRITERION_METRICS = ("expected_time", "reached", "restricted_mean", "median", "holding")
OCCUPATION_METRICS = ("occupation", "long_run_occupation", "stay", "between_entries")  # of a criterion or a named set
CHAIN_METRICS = ("absorption_time", "loop_lap")  # of the chain, not of a criterion
EXACT_METRICS = ("expected_time", "absorption_time", "long_run_occupation", "loop_lap")
EXACT_COLUMNS = {"expected_time": "{}_exact_expected_hitting_time", "absorption_time": "exact_expected_absorption_time",
                 "long_run_occupation": "{}_exact_occupation_long_run_fraction", "loop_lap": "exact_loop_lap_probability"}


@dataclass(frozen=True)
class FigureChoice:
    """What the sweep figures show, as ``--plot``, ``--x``, ``--hue``, ``--log`` and ``--linear``
    ask: ``metrics`` are ``METRIC`` or ``NAME:METRIC`` (empty: the default panels); ``log`` and
    ``linear`` hold axes forced to that scale: ``x``, ``y`` (the metric's values; a heatmap's
    colour scale) or a grid parameter (its axis, where it is drawn on one)."""

    metrics: tuple[str, ...] = ()
    x: str | None = None
    hue: str | None = None
    log: frozenset[str] = frozenset()
    linear: frozenset[str] = frozenset()

    @property
    def any(self) -> bool:
        return bool(self.metrics or self.x or self.hue or self.log or self.linear)


def check_choice(choice: FigureChoice, grid: dict[str, list], kinds: dict[str, str], criteria: list[str],
                 labels: list[str], exact: bool, sets: list[str] = ()) -> None:
    """Refuse, in one line (:class:`ecology.errors.UsageError`), a choice that cannot apply to the
    sweep: an unknown metric, criterion or set, an exact metric without ``--exact``, ``--x``/``--hue``
    not grid parameters, a hue with one parameter, a log scale for categories or values <= 0."""
    for spec in choice.metrics:
        name, _, metric = spec.rpartition(":")
        if metric not in METRICS:
            raise UsageError(f"--plot {spec}: unknown metric {metric!r}; the metrics are {', '.join(METRICS)} "
                             "(optionally NAME:METRIC, NAME a criterion, for an occupation metric a criterion or "
                             "named set, for amplitude a population)")
        if name and metric in OCCUPATION_METRICS and name not in [*criteria, *sets]:
            raise UsageError(f"--plot {spec}: no criterion or named set {name!r}; they are "
                             f"{', '.join([*criteria, *sets]) or 'none ([absorption] and [sets] declare none)'}")
        if metric in EXACT_METRICS and not exact:
            raise UsageError(f"--plot {spec}: {metric} is the exact chain's; run the sweep with --exact")
        if name and metric == "amplitude" and name not in labels:
            raise UsageError(f"--plot {spec}: no population {name!r}; the populations are {', '.join(labels)}")
        if name and metric in CRITERION_METRICS and name in sets:
            raise UsageError(f"--plot {spec}: {name!r} is a named set, not a criterion: it has no time to reach; its "
                             f"metrics are {', '.join(OCCUPATION_METRICS)}")
        if name and metric in CRITERION_METRICS and name not in criteria:
            raise UsageError(f"--plot {spec}: no criterion {name!r}; the criteria are "
                             f"{', '.join(criteria) or 'none ([absorption] declares none)'}")
        if name and metric in CHAIN_METRICS:
            raise UsageError(f"--plot {spec}: {metric} belongs to the chain, not to a criterion: "
                             f"--plot {metric}")
    for flag, param in (("--x", choice.x), ("--hue", choice.hue)):
        if param is not None and param not in grid:
            raise UsageError(f"{flag} {param}: not a grid parameter; the grid parameters are {', '.join(grid)}")
    if choice.hue is not None and len(grid) < 2:
        raise UsageError(f"--hue {choice.hue}: the sweep has one grid parameter; --hue needs a second one")
    if choice.hue is not None and choice.hue == choice.x:
        raise UsageError(f"--hue {choice.hue}: the same parameter as --x; give --hue another grid parameter")
    both = sorted(choice.log & choice.linear)
    if both:
        raise UsageError(f"--log {both[0]} and --linear {both[0]}: choose one scale for {both[0]}")
    layout = sweep_layout(grid, kinds, choice)
    for flag, axes in (("--log", choice.log), ("--linear", choice.linear)):
        for axis in sorted(axes):
            param = layout.x if axis == "x" else axis
            if axis != "y" and param not in grid:
                raise UsageError(f"{flag} {axis}: AXIS is x, y or a grid parameter ({', '.join(grid)})")
            if axis == "y":
                continue
            if layout.heatmap:
                raise UsageError(f"{flag} {axis}: a heatmap's axes are one cell per grid value; give --hue PARAM "
                                 "to draw lines (their x axis has a scale), or scale y (the heatmap's colours)")
            if param != layout.x:
                raise UsageError(f"{flag} {axis}: {param} is drawn as {'lines' if param == layout.hue else 'facets'}, "
                                 f"not on an axis; scale x (the parameter {layout.x}) or y (the values)")
            if kinds[param] == "categorical":
                raise UsageError(f"{flag} {axis}: {param} takes values that are not numbers; it has no scale")
            if flag == "--log" and min(float(v) for v in grid[param]) <= 0:
                raise UsageError(f"--log {axis}: {param} takes values <= 0, which a log axis cannot show; "
                                 f"use --linear {axis}")


@dataclass(frozen=True)
class Layout:
    """How a sweep is drawn: ``x`` on the horizontal axis, a line per value of ``hue``, a facet per
    combination of ``facets``; ``heatmap`` (two numeric parameters and no hue): ``x`` across, ``hue``
    up the cells."""

    x: str
    hue: str | None
    facets: tuple[str, ...]
    heatmap: bool


def sweep_layout(grid: dict[str, list], kinds: dict[str, str], choice: FigureChoice) -> Layout:
    """The rule: ``x`` is ``--x``, else the first numeric parameter other than ``--hue`` (else the
    first other than it); with two or
    more parameters the second is ``--hue``, else the first other numeric one (else the first other);
    two numeric parameters and no ``--hue`` are a heatmap; the remaining parameters are facets."""
    params = list(grid)
    numeric = [p for p in params if kinds.get(p) != "categorical"]
    free = [p for p in params if p != choice.hue]
    x = choice.x or ([p for p in numeric if p in free] or free)[0]
    others = [p for p in params if p != x]
    if not others:
        return Layout(x, None, (), False)
    hue = choice.hue or ([p for p in numeric if p != x] or others)[0]
    heatmap = len(params) == 2 and choice.hue is None and kinds.get(x) != "categorical" and kinds.get(hue) != "categorical"
    return Layout(x, hue, tuple(p for p in others if p != hue), heatmap)


@dataclass(frozen=True)
class Panel:
    """One plotted figure: ``column`` of the rows (also the figure's file-name part), its title and
    unit, the columns of its 95% band (``lo``, ``hi``) and of the exact chain's value drawn as crosses
    beside it (``exact``), and whether its values go on a log axis unless told otherwise."""

    column: str
    title: str
    unit: str
    lo: str | None = None
    hi: str | None = None
    exact: str | None = None
    log: bool = False


def sweep_metrics(rows: pd.DataFrame, criteria: list[str], labels: list[str], steps: int | None = None,
                  metrics: tuple[str, ...] = (), replicates: int | None = None,
                  sets: list[str] = ()) -> tuple[pd.DataFrame, list[Panel]]:
    """The panels of the sweep figures and the rows they read (with the derived column of a log10
    ``E[T]``): the ``metrics`` asked for (``METRIC`` for every criterion or population, or
    ``NAME:METRIC``), in that order, else the default panels.

    The default, per criterion: the exact ``E[T]`` (with ``--exact``), P(reached by N), the restricted
    mean ``E[min(T, N)]`` (never a mean over the replicates that happened to reach it) and holding at
    N; then per named set (``sets``) the fraction of steps in it (``occupation``); then the final
    amplitude per population and the exact expected absorption time. The other occupation metrics
    (a criterion's occupation, stays, times between entries, the long-run fraction) and the loop's
    lap probability are drawn only when asked for: a criterion's time in its set is told by its
    reached and holding panels, and the others qualify an occupation already drawn. A default panel
    is left out where it carries no information: holding where the criterion's set is closed
    (``C_exact_closed``: reached = holding) or its column equals an earlier panel's at every point; a
    population's amplitude when it is the only one (identically 1) or the last one (1 minus the sum of
    the others); the absorption time where it equals a criterion's ``E[T]`` or is 0 (the initial
    window in a closed class) at every point."""
    swept = "run.steps" in rows and rows["run.steps"].nunique() > 1  # a horizon that moves is no one N
    horizon = f"N = {steps}" if steps is not None and not swept else "N"
    asked = [spec.rpartition(":")[::2] for spec in metrics]
    if not asked:
        asked = [(c, m) for c in criteria for m in ("expected_time", "reached", "restricted_mean", "holding")]
        asked += [(name, "occupation") for name in sets]
        asked += [(label, "amplitude") for label in labels[:-1]] + [("", "absorption_time")]
    panels: list[Panel] = []
    for name, metric in asked:
        for owner in ([name] if name else criteria if metric in CRITERION_METRICS else [*criteria, *sets]
                      if metric in OCCUPATION_METRICS else labels if metric == "amplitude" else [""]):
            rows, panel = _panel(rows, owner, metric, horizon, replicates, labels)
            if panel is None and metrics and metric in EXACT_METRICS:  # asked for, out of reach at every point: said
                column = EXACT_COLUMNS[metric].format(owner)
                rows, panel = _panel(rows.assign(**{column: np.nan}), owner, metric, horizon, replicates, labels)
            if panel is not None and (metrics or _informative(rows, panel, panels, labels)):
                panels.append(panel)
    return rows, panels


def _panel(rows: pd.DataFrame, owner: str, metric: str, horizon: str, replicates: int | None,
           labels: list[str]) -> tuple[pd.DataFrame, Panel | None]:
    """The panel of one metric of one criterion or population (None where the rows lack its column)."""
    c, c_ = owner, f"'{esc(owner)}'"
    if metric == "expected_time":
        column = f"{c}_exact_expected_hitting_time"
        if column not in rows:
            return rows, None
        missed = int(np.isinf(rows[column].astype(float)).sum())
        note = f"; infinite at {missed} point{'s' * (missed != 1)} (the set may be missed): not drawn" if missed else ""
        overflow = f"{column}_log10"
        if overflow in rows and rows[overflow].notna().any():
            values = rows[column].astype(float)
            logged = np.where(np.isfinite(values) & (values > 0), np.log10(values.where(values > 0, np.nan)), rows[overflow])
            derived = f"{c}_exact_log10_expected_hitting_time"
            return rows.assign(**{derived: logged}), Panel(
                derived, f"{c_}: log10 of the exact E[T] (E[T] overflows a double at some points){note}", "log10 steps")
        return rows, Panel(column, f"{c_}: exact expected time to reach, E[T]{note}", "steps", log=True)
    if metric == "reached":
        exact = f"{c}_exact_reached_by_horizon"
        return rows, _simulated(rows, f"{c}_reached", f"{c_}: P(reached by {horizon})", "fraction", exact)
    if metric == "restricted_mean":
        panel = _simulated(rows, f"{c}_restricted_mean", f"{c_}: restricted mean time to reach, E[min(T, {horizon})]",
                           "steps", f"{c}_exact_restricted_mean")
        if panel is not None and f"{c}_censored" in rows:
            panel = Panel(**{**panel.__dict__, "title": f"{panel.title}; {_censored(rows, c, replicates)}"})
        return rows, panel
    if metric == "median":
        return rows, _simulated(rows, f"{c}_time_median", f"{c_}: median time to reach (KM; none where it does not "
                                f"cross 1/2 by {horizon})", "steps")
    if metric == "holding":
        return rows, _simulated(rows, f"{c}_holding_final", f"{c_}: holding at {horizon}", "fraction")
    if metric in OCCUPATION_METRICS or metric == "loop_lap":
        return rows, _occupation_panel(rows, c, c_, metric, horizon, replicates)
    if metric == "amplitude":
        column = f"{c}_amplitude_final_mean"
        rest = "" if len(labels) != 2 else f" ('{esc(next(x for x in labels if x != c))}': 1 minus it)"
        return rows, Panel(column, f"{c_}: final mean amplitude{rest}", "amplitude") if column in rows else None
    column = "exact_expected_absorption_time"  # absorption_time
    return rows, Panel(column, "exact expected time to a closed class", "steps", log=True) if column in rows else None


def _occupation_panel(rows: pd.DataFrame, c: str, c_: str, metric: str, horizon: str,
                      replicates: int | None) -> Panel | None:
    """The panel of an occupation metric of criterion or set ``c`` (columns ``C_occupation_...``,
    ``C_exact_occupation_...``), or of the most likely loop's lap probability (``loop_lap``)."""
    if metric == "occupation":
        return _simulated(rows, f"{c}_occupation_fraction", f"{c_}: fraction of steps 0..{horizon.removeprefix('N = ')} "
                          "in the set", "fraction", f"{c}_exact_occupation_fraction")
    if metric == "stay":
        panel = _simulated(rows, f"{c}_occupation_mean_stay", f"{c_}: mean stay per visit (steps in the set per exit "
                           f"by {horizon})", "steps", f"{c}_exact_occupation_mean_stay_within")
        opened = rows.get(f"{c}_occupation_open_at_horizon")
        if panel is not None and opened is not None and opened.notna().any():
            spread = f"{opened.min():,.0f}" if opened.min() == opened.max() else f"{opened.min():,.0f}-{opened.max():,.0f}"
            of = f" of {replicates:,}" if replicates is not None and "run.replicates" not in rows else ""
            panel = Panel(**{**panel.__dict__, "title": f"{panel.title}; still in it at N: {spread}{of} replicates per point"})
        return _said_empty(rows, panel, "no visit ended by N at any point")
    if metric == "between_entries":
        return _said_empty(rows, _simulated(rows, f"{c}_occupation_mean_time_between_entries", f"{c_}: mean time between "
                                            f"entries (steps per entry by {horizon})", "steps",
                                            f"{c}_exact_occupation_mean_time_between_entries_within"),
                           "nothing entered after step 0 at any point")
    if metric == "long_run_occupation":
        column = f"{c}_exact_occupation_long_run_fraction"
        return Panel(column, f"{c_}: exact long-run fraction of steps in the set", "fraction") if column in rows else None
    column = "exact_loop_lap_probability"  # loop_lap
    if column not in rows:
        return None
    loops = rows["exact_loop_states"].dropna().nunique() if "exact_loop_states" in rows else 0
    which = {0: "", 1: " (the same loop at every point)"}.get(loops, f" ({loops} different loops over the points: "
                                                                   "see exact_loop_states)")
    return Panel(column, f"exact P(once round the most likely loop){which}", "probability")


def _said_empty(rows: pd.DataFrame, panel: Panel | None, why: str) -> Panel | None:
    """``panel`` with ``why`` in its title where its column has no value at any point."""
    if panel is None or np.isfinite(rows[panel.column].to_numpy(dtype=float)).any():
        return panel
    return Panel(**{**panel.__dict__, "title": f"{panel.title}; {why}"})


def _simulated(rows: pd.DataFrame, column: str, title: str, unit: str, exact: str | None = None) -> Panel | None:
    if column not in rows:
        return None
    band = f"{column}_lo" in rows and f"{column}_hi" in rows
    return Panel(column, title, unit, f"{column}_lo" if band else None, f"{column}_hi" if band else None,
                 exact if exact in rows else None)


def _censored(rows: pd.DataFrame, c: str, replicates: int | None) -> str:
    """How many replicates were censored at the horizon, over the points: ``censored 117-171 of 200``."""
    censored = rows[f"{c}_censored"].dropna().astype(int)
    if censored.empty:
        return "censored: no point"
    spread = f"{censored.min():,}" if censored.min() == censored.max() else f"{censored.min():,}-{censored.max():,}"
    n = rows["run.replicates"] if "run.replicates" in rows else replicates
    if n is None:
        return f"censored: {spread} replicates per point"
    if not np.isscalar(n):
        share = censored / n.loc[censored.index]
        return f"censored: {spread} replicates per point ({share.min():.0%}-{share.max():.0%})"
    return f"censored: {spread} of {n:,} replicates per point"


def _informative(rows: pd.DataFrame, panel: Panel, shown: list[Panel], labels: list[str]) -> bool:
    """Whether a default panel says something the shown ones do not (the rules of :func:`sweep_metrics`)."""
    if panel.column.endswith("_holding_final"):
        closed = panel.column.removesuffix("_holding_final") + "_exact_closed"
        if closed in rows and rows[closed].astype(str).str.lower().eq("true").all():
            return False
    if panel.column.endswith("_amplitude_final_mean") and len(labels) < 2:
        return False
    values = rows[panel.column].to_numpy(dtype=float)
    if panel.column == "exact_expected_absorption_time" and np.all(values == 0):
        return False  # the initial window is in a closed class at every point
    if not np.isfinite(values).any():
        return panel.column.endswith("_expected_hitting_time")  # an exact E[T] out of reach is said, not hidden
    return not any(np.allclose(values, rows[p.column].to_numpy(dtype=float), rtol=1e-12, atol=0, equal_nan=True)
                   for p in shown)


def _annotate(ax, values: np.ndarray, image, exact: np.ndarray | None = None) -> None:
    """Write each heatmap cell's value in it (and below, in parentheses, the exact chain's), dark on
    light cells and light on dark ones."""
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            light = sum(image.cmap(image.norm(v))[:3]) > 1.5
            text = f"{v:.3g}" if exact is None or not np.isfinite(exact[i, j]) else f"{v:.3g}\n({exact[i, j]:.3g})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if exact is None else 6,
                    color="black" if light else "white")


@paper_style
def sweep_plots(directory: Path, rows: pd.DataFrame, grid: dict[str, list], criteria: list[str], labels: list[str],
                title: str, kinds: dict[str, str] | None = None, steps: int | None = None, *,
                choice: FigureChoice = FigureChoice(), replicates: int | None = None,
                axis_labels: dict[str, str] | None = None, tick_labels: dict[str, list[str]] | None = None,
                ext: str = "png", dpi: int = DPI, sets: list[str] = ()) -> list[Path]:
    """The sweep's figures (:func:`sweep_layout`): one parameter, or lines per value of a second
    (``hue``), in ``sweep.EXT``, a panel per metric with its 95% band and the exact chain's values as
    crosses; two numeric parameters and no hue, an annotated heatmap per metric
    (``heatmap_COLUMN.EXT``); more, faceted lines per metric (``facets_COLUMN.EXT``). The metrics are
    :func:`sweep_metrics`'s. ``axis_labels`` (parameter -> axis title) and ``tick_labels`` (parameter
    -> one label per grid value, in grid order) replace the raw path and values wherever a parameter
    is named: axes, ticks, legends, facet titles."""
    kinds = {p: (kinds or {}).get(p) or grid_kind(values) for p, values in grid.items()}
    # list values (a swept prompt) are drawn by their text, as results.csv holds them
    listed = [p for p, values in grid.items() if any(isinstance(v, (list, dict)) for v in values)]
    if listed:
        grid = {p: [str(v) for v in values] if p in listed else values for p, values in grid.items()}
        rows = rows.assign(**{p: rows[p].astype(str) for p in listed if p in rows})
    if rows.empty:
        return []
    rows, panels = sweep_metrics(rows, criteria, labels, steps, choice.metrics, replicates, sets)
    if not panels:
        return []
    names = Names(axis_labels or {}, tick_labels or {}, grid)
    layout = sweep_layout(grid, kinds, choice)
    x_kind = "geometric" if {"x", layout.x} & choice.log else "arithmetic" if {"x", layout.x} & choice.linear \
        else kinds[layout.x]
    draw = Drawing(rows, grid, names, layout, x_kind, choice, title)
    if layout.heatmap:
        return [draw.heatmap(panel, directory / f"heatmap_{panel.column}.{ext}", dpi) for panel in panels]
    if layout.facets:
        return [draw.facets(panel, directory / f"facets_{panel.column}.{ext}", dpi) for panel in panels]
    return [draw.lines(panels, directory / f"sweep.{ext}", dpi)]


@dataclass(frozen=True)
class Names:
    """How parameters and their values are written: the given axis titles and tick labels, else the
    path and the value."""

    axis: dict[str, str]
    ticks: dict[str, list[str]]
    grid: dict[str, list]

    def of(self, param: str) -> str:
        return esc(self.axis.get(param, param))

    def value(self, param: str, value) -> str:
        if param in self.ticks:
            return esc(self.ticks[param][self.grid[param].index(value)])
        return _value_text(value)

    def tick_labels(self, param: str) -> list[str] | None:
        return self.ticks.get(param)


@dataclass(frozen=True)
class Drawing:
    """The figures of one sweep, drawn from its rows as :func:`sweep_plots` lays them out."""

    rows: pd.DataFrame
    grid: dict[str, list]
    names: Names
    layout: Layout
    x_kind: str
    choice: FigureChoice
    title: str

    def y_log(self, panel: Panel) -> bool:
        return "y" in self.choice.log or (panel.log and "y" not in self.choice.linear)

    def curves(self, ax, panel: Panel, rows: pd.DataFrame) -> None:
        """A panel's lines on ``ax``: one per hue value (or one), with band and exact crosses."""
        x_param, hue = self.layout.x, self.layout.hue
        x = _ticks(ax, "x", self.grid[x_param], self.x_kind, self.names.tick_labels(x_param))
        hues = self.grid[hue] if hue else [None]
        colours = _colours(len(hues))
        for value, colour in zip(hues, colours):
            line = (rows if hue is None else rows[rows[hue] == value]).drop_duplicates(x_param).set_index(x_param)
            line = line.reindex(self.grid[x_param])
            exact_only = panel.exact is None and panel.lo is None and "exact" in panel.column
            label = self.names.value(hue, value) if hue else "exact chain" if exact_only else "simulated"
            ax.plot(x, line[panel.column], marker="x" if exact_only else "o", ms=4 if exact_only else 3, color=colour,
                    label=label)
            if panel.lo:
                ax.fill_between(x, line[panel.lo], line[panel.hi], color=colour, alpha=0.2 if hue else 0.25, lw=0)
            if panel.exact:
                ax.plot(x, line[panel.exact], "x", color="black" if hue is None else colour, ms=5)
        if not np.isfinite(rows[panel.column].to_numpy(dtype=float)).any():
            ax.text(0.5, 0.5, "no value at any point (see exact_note in results.csv)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
            ax.set_yticks([])
            ax.update_datalim(np.column_stack([x, np.zeros_like(x)]))  # the grid's span, as a drawn line would set it
            ax.autoscale_view()
        elif self.y_log(panel) and (rows[panel.column].to_numpy(dtype=float) > 0).any():
            _log_axis(ax, rows[panel.column].to_numpy(dtype=float))
        ax.set_ylabel(panel.unit)

    def legend(self, ax, panels: list[Panel]) -> None:
        handles, texts = ax.get_legend_handles_labels()
        if any(p.lo for p in panels):
            handles.append(plt.Rectangle((0, 0), 1, 1, color="0.6", alpha=0.4))
            texts.append("95% interval")
        if any(p.exact for p in panels):
            hue = self.layout.hue is not None  # the crosses then take their line's colour
            handles.append(matplotlib.lines.Line2D([], [], color="0.45" if hue else "black", marker="x", ls="none"))
            texts.append("exact chain, beside simulated" + (" (in its line's colour)" if hue else ""))
        title = self.names.of(self.layout.hue) if self.layout.hue else None
        ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=title)

    def lines(self, panels: list[Panel], path: Path, dpi: int) -> Path:
        fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 1.8 * len(panels) + 0.7), squeeze=False, sharex=True,
                                 gridspec_kw={"hspace": 0.5})
        for ax, panel in zip(axes[:, 0], panels):
            self.curves(ax, panel, self.rows)
            ax.set_title(_wrap(panel.title, 80), fontsize=8, loc="left")
        axes[-1, 0].set_xlabel(self.names.of(self.layout.x))
        self.legend(axes[0, 0], panels)
        height = fig.get_size_inches()[1]
        scale = "log" if self.x_kind == "geometric" else "linear" if self.x_kind == "arithmetic" else "one slot per value"
        over = f" and {self.names.of(self.layout.hue)}" if self.layout.hue else ""
        title = f"{esc(self.title)}: sweep over {self.names.of(self.layout.x)} ({scale} axis){over}"
        # each further line of a wrapped title (an axis title on two lines) moves the panels down by one line
        fig.subplots_adjust(top=1 - (0.6 + 0.2 * title.count("\n")) / height)
        fig.suptitle(title, y=1 - 0.12 / height, va="top")
        _save(fig, path, dpi)
        return path

    def facets(self, panel: Panel, path: Path, dpi: int) -> Path:
        facets = list(itertools.product(*(self.grid[r] for r in self.layout.facets)))
        fig, axes = plt.subplots(1, len(facets), figsize=(2.8 * len(facets) + 1.5, 3.0), squeeze=False, sharey=True)
        for ax, facet in zip(axes[0], facets):
            sub = self.rows
            for r, v in zip(self.layout.facets, facet):
                sub = sub[sub[r] == v]
            self.curves(ax, panel, sub)
            ax.set_title(", ".join(f"{self.names.of(r)} = {self.names.value(r, v)}"
                                   for r, v in zip(self.layout.facets, facet)), fontsize=8)
            ax.set_xlabel(self.names.of(self.layout.x))
        for ax in axes[0, 1:]:
            ax.set_ylabel("")
        self.legend(axes[0, -1], [panel])
        fig.suptitle(f"{esc(self.title)}: {_wrap(panel.title, 110)}", y=1.06)
        _save(fig, path, dpi)
        return path

    def heatmap(self, panel: Panel, path: Path, dpi: int) -> Path:
        x, y = self.layout.x, self.layout.hue
        values, exact = (None if column is None else self.rows.pivot_table(
            index=y, columns=x, values=column, aggfunc="first", dropna=False).reindex(
            index=self.grid[y], columns=self.grid[x]).to_numpy(dtype=float) for column in (panel.column, panel.exact))
        fig, ax = plt.subplots(figsize=(2.4 + 0.75 * len(self.grid[x]), 1.6 + 0.45 * len(self.grid[y])))
        finite = values[np.isfinite(values)]
        log = self.y_log(panel) and len(finite) and finite.min() > 0 and finite.max() > finite.min()
        norm = matplotlib.colors.LogNorm(finite.min(), finite.max()) if log else None
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", norm=norm)
        _annotate(ax, values, image, exact)
        if not len(finite):
            ax.text(0.5, 0.5, "no value at any point", ha="center", va="center", transform=ax.transAxes)
        _ticks(ax, "x", self.grid[x], "categorical", self.names.tick_labels(x))
        _ticks(ax, "y", self.grid[y], "categorical", self.names.tick_labels(y))
        ax.set_xlabel(self.names.of(x))
        ax.set_ylabel(self.names.of(y))
        fig.colorbar(image, ax=ax, label=f"{panel.unit}{' (log scale)' if log else ''}")
        cells = "" if not panel.exact else " (cells: simulated, and exact chain in parentheses)"
        ax.set_title(f"{esc(self.title)}: {_wrap(panel.title + cells, 70)}", fontsize=8)
        _save(fig, path, dpi)
        return path


def _log_axis(ax, values: np.ndarray) -> None:
    """A log value axis; over less than two decades its ticks written plainly (``150``, not
    ``1.5 x 10^2``): at round numbers (less than a decade) or at 1, 2 and 5 times the powers of
    ten."""
    ax.set_yscale("log")
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive) and positive.max() / positive.min() < 100:
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10])
                                   if positive.max() / positive.min() < 10 else
                                   matplotlib.ticker.LogLocator(subs=(1, 2, 5), numticks=30))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


STORY_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                 "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39", "#ad494a"]
# tab10 without its grey, then the dark tones of tab20b (18 colours; the second nine darker than the first)
STORY_OTHER = "#7f7f7f"  # the summed smaller premises ("other (n)") of any decomposition
SAME_STORY = 0.1  # mean |alpha difference| within which two premises tell the same story (one colour)


def story_colours(stories: list[tuple[str, list[str], np.ndarray]]) -> list[dict[str, str]]:
    """The colour of every premise of every decomposition, by the story it tells.

    Rule: decompositions are taken in the order given (:func:`amplitude_stories_figure` puts the
    input scenario's first: it is the reference); a list of identities grows as they go, one per
    colour of :data:`STORY_PALETTE` in turn. A premise of each decomposition is matched, by the optimal assignment
    (``scipy.optimize.linear_sum_assignment``), to the identity whose amplitude along the same
    storylines is closest in mean absolute difference, ``mean_{t,r} |alpha_i(t, r) - alpha_j(t, r)|``;
    a match within :data:`SAME_STORY` takes that identity's colour, any other premise becomes a new
    identity with the next colour (cycling after 18). "other (n)" is always grey. So one premise
    (the waluigi, a biased coin) has one colour in every panel, whatever its name or order."""
    from scipy.optimize import linear_sum_assignment

    identities: list[np.ndarray] = []  # (L, R) amplitude story of each identity, colour i
    out = []
    for _, labels, amp in stories:
        own = [j for j, label in enumerate(labels) if not label.startswith("other (")]
        colours = dict.fromkeys(labels, STORY_OTHER)
        matched = {}
        if identities and own:
            cost = np.array([[np.mean(np.abs(amp[:, :, j] - story)) for story in identities] for j in own])
            for row, col in zip(*linear_sum_assignment(cost)):
                if cost[row, col] <= SAME_STORY:
                    matched[own[row]] = col
        for j in own:
            if j not in matched:
                matched[j] = len(identities)
                identities.append(amp[:, :, j])
            colours[labels[j]] = STORY_PALETTE[matched[j] % len(STORY_PALETTE)]
        out.append(colours)
    return out


def _wrapped(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)) or text


@paper_style
def amplitude_stories_figure(stories: list[tuple[str, list[str], np.ndarray]], title: str):
    """The figure of :func:`amplitude_stories` (returned, for its layout to be checked)."""
    order = sorted(range(len(stories)), key=lambda i: stories[i][0] != "input")  # the input first: the reference
    colours = [None] * len(stories)
    for i, c in zip(order, story_colours([stories[i] for i in order])):
        colours[i] = c
    fig, axes = plt.subplots(len(stories), 2, figsize=(12, 2.5 * len(stories) + 0.6), squeeze=False, layout="constrained")
    for (name, labels, amp), palette, (left, right) in zip(stories, colours, axes):
        steps = np.arange(amp.shape[0])
        for j, label in enumerate(labels):
            colour = palette[label]
            left.plot(steps, amp[:, :, j].mean(axis=1), color=colour, label=esc(label))
            left.fill_between(steps, np.quantile(amp[:, :, j], 0.1, axis=1), np.quantile(amp[:, :, j], 0.9, axis=1),
                              color=colour, alpha=0.15, linewidth=0)
        right.stackplot(steps, amp[:, 0, :].T, colors=[palette[label] for label in labels])
        for ax in (left, right):
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlim(steps[0], max(steps[-1], 1))
        left.set_ylabel("amplitude")
        left.set_title(_wrapped(f"{esc(name)}: mean over storylines (band 10%–90%)", 70), fontsize=9, loc="left")
        right.set_title(_wrapped(f"{esc(name)}: storyline 0, stacked", 70), fontsize=9, loc="left")
        right.legend(*left.get_legend_handles_labels(), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("step (tokens generated)")
    fig.suptitle(_wrapped(f"{esc(title)}: the same storylines, told by each decomposition "
                          "(one colour per story: a premise whose amplitude matches another's within 0.1 shares its colour)",
                          120), fontsize=10)
    return fig


def amplitude_stories(stories: list[tuple[str, list[str], np.ndarray]], title: str, path: Path) -> None:
    """Per decomposition (a row): mean amplitude (band 10%–90% of storylines) per premise, and
    one storyline's amplitudes stacked; the storylines are the same for every decomposition, and
    a premise's colour is the story it tells (:func:`story_colours`), the same in every row."""
    _save(amplitude_stories_figure(stories, title), path, dpi=100, bbox_inches=None)


@paper_style
def decomposition_comparison_figure(rows: list[dict], title: str, reference: dict | None = None):
    """The figure of :func:`decomposition_comparison` (returned, for its layout to be checked)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    K = [row["premises"] for row in rows]

    def values(key: str) -> list[float]:
        return [np.nan if row[key] is None else row[key] for row in rows]

    a.plot(K, values("bic"), marker="o", color="#1f77b4", label="fitted")
    a.set_ylabel("BIC (lower: better)")
    b.plot(K, values("defect_mean"), marker="o", color="#1f77b4", label="mean, fitted")
    b.plot(K, values("defect_max"), marker="s", color="#ff7f0e", label="max, fitted")
    b.set_ylabel("martingale defect (fifo)")
    if reference is not None:  # the input scenario's own premises, for scale
        for ax, key, colour in ((a, "bic", "#1f77b4"), (b, "defect_mean", "#1f77b4"), (b, "defect_max", "#ff7f0e")):
            if reference.get(key) is not None:
                ax.axhline(reference[key], color=colour, ls="--", lw=0.9,
                           label=f"{'' if key == 'bic' else key.split('_')[1] + ', '}input ({reference['premises']} premises)")
    for ax in (a, b):
        ax.set_xticks(K)
        ax.set_xlabel("K (premises fitted)")
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(_wrapped(f"{esc(title)}: fitted decompositions", 110), fontsize=10)
    return fig


def decomposition_comparison(rows: list[dict], title: str, path: Path, reference: dict | None = None) -> None:
    """BIC and the martingale defect (mean and max) of the fitted decompositions against K;
    ``reference`` (the input decomposition's row), when given, as dashed lines of the same colours."""
    _save(decomposition_comparison_figure(rows, title, reference), path, dpi=100, bbox_inches=None)


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
