"""Figures of a run: population dynamics, absorption curves, and a raster of one window.

Every function takes plain tables (what a run directory holds), so plots can be redrawn from
files without re-running. Matplotlib's non-interactive Agg backend is used throughout.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402


def _save(fig, path: Path, dpi: int = 120) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def population_dynamics(steps: pd.DataFrame, labels: list[str], title: str, path: Path) -> None:
    """Mean amplitude per population label over steps, with the 10%–90% band over replicates."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label in labels:
        line = ax.plot(steps.index, steps[f"{label}_mean"], label=label)[0]
        ax.fill_between(steps.index, steps[f"{label}_q10"], steps[f"{label}_q90"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("amplitude (posterior of the premise)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title}: population dynamics (mean, band = 10%–90% of replicates)")
    ax.legend(loc="best")
    _save(fig, path)


def absorption_curves(curves: dict[str, list[float]], title: str, path: Path, exact: dict[str, list[float]] | None = None) -> None:
    """Fraction of replicates absorbed at or before each step, per criterion (exact overlaid)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, curve in curves.items():
        line = ax.step(np.arange(len(curve)), curve, where="post", label=f"{name} (simulated)")[0]
        if exact and name in exact:
            ax.plot(np.arange(len(exact[name])), exact[name], "--", color=line.get_color(), label=f"{name} (exact chain)")
    if not curves:
        ax.text(0.5, 0.5, "no absorption criteria in this scenario", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("fraction of replicates absorbed")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title}: absorption curves")
    if curves:
        ax.legend(loc="best")
    _save(fig, path)


def window_raster(raster: np.ndarray, tokens: list[str], pad: str, title: str, path: Path) -> None:
    """One replicate's window over time: x = step, y = position in the window, colour = token."""
    names = tokens + [pad]
    colours = plt.get_cmap("tab10" if len(tokens) <= 10 else "tab20")(np.arange(len(tokens)) % 20)
    cmap = ListedColormap(np.vstack([colours, [[0.85, 0.85, 0.85, 1.0]]]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.imshow(raster.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
              origin="lower", extent=(-0.5, raster.shape[0] - 0.5, -0.5, raster.shape[1] - 0.5))
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(names))]
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="token")
    ax.set_xlabel("step (tokens generated)")
    ax.set_ylabel("position in window (0 = oldest)")
    ax.set_title(title)
    _save(fig, path)


def run_plots(directory: Path, summary: dict, steps: pd.DataFrame, raster: np.ndarray, tokens: list[str], pad: str,
              replicate: int, exact_curves: dict | None = None) -> None:
    """All plots of a run directory."""
    name = summary["scenario"]
    labels = list(summary["populations"])
    population_dynamics(steps, labels, name, directory / "populations.png")
    curves = {k: v["curve"] for k, v in summary["absorption"].items()}
    absorption_curves(curves, name, directory / "absorption.png", exact_curves)
    window_raster(raster, tokens, pad, f"{name}: window of replicate {replicate} over time", directory / "raster.png")


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
    ax.set_title(f"{title}: largest eigenvalues of T")
    _save(fig, path)


def stationary_mass(classes: list[dict], title: str, path: Path) -> None:
    """Stationary mass of the top page-states of each closed class (weighted by the
    probability of ending in that class from the initial window)."""
    rows = [(f"[{i}] {s['state']}", cls["probability"] * s["mass"]) for i, cls in enumerate(classes)
            for s in cls["stationary_top"]]
    rows.sort(key=lambda r: -r[1])
    rows = rows[:20][::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1)))
    ax.barh([r[0] for r in rows], [r[1] for r in rows])
    ax.set_xlabel("long-run probability from the initial window ([i] = closed class i)")
    ax.set_title(f"{title}: stationary mass of the top page-states")
    _save(fig, path)


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
    names = {i: labels[i].replace(" ", "") if compact else labels[i].replace(" ", "\n") for i in graph}
    nx.draw_networkx_labels(graph, pos, names, ax=ax, font_size=7)
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, node_size=900, connectionstyle="arc3,rad=0.12")
    nx.draw_networkx_edge_labels(graph, pos, {(i, j): f"{d['p']:.3g}" for i, j, d in graph.edges(data=True)},
                                 ax=ax, font_size=6, connectionstyle="arc3,rad=0.12")
    ax.set_title(f"{title}: transition network ({P.shape[0]} page-states, pads shown as the pad token)")
    ax.axis("off")
    _save(fig, path, dpi=110)


def exact_curves(curves: dict, title: str, path: Path) -> None:
    """Exact probability that each criterion holds at step t, and has held at or before t."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, c in curves.items():
        line = ax.plot(c["absorbed"], label=f"{name}: held at or before t")[0]
        ax.plot(c["holding"], ":", color=line.get_color(), label=f"{name}: holds at t")
    ax.set_xlabel("step t")
    ax.set_ylabel("probability (exact chain)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title}: exact absorption curves")
    if curves:
        ax.legend(loc="best")
    _save(fig, path)


def _axis_values(values: list) -> tuple[np.ndarray, list[str], bool]:
    """Positions, tick labels and whether to use a log axis for a swept parameter's values."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        x = np.array(values, dtype=float)
        log = bool(np.all(x > 0) and x.max() / x.min() >= 8)
        return x, [str(v) for v in values], log
    return np.arange(len(values), dtype=float), [str(v) for v in values], False


def sweep_metrics(rows: pd.DataFrame, criteria: list[str], labels: list[str]) -> list[tuple[str, str, str | None, str | None]]:
    """(column, axis label, band low column, band high column) for each plotted metric."""
    metrics = []
    for c in criteria:
        metrics.append((f"{c}_fraction", f"'{c}': fraction absorbed", f"{c}_fraction_lo", f"{c}_fraction_hi"))
        metrics.append((f"{c}_time_mean", f"'{c}': mean absorption time (steps)", f"{c}_time_mean_lo", f"{c}_time_mean_hi"))
    for label in labels:
        metrics.append((f"{label}_amplitude_final_mean", f"'{label}': final mean amplitude", None, None))
    return [m for m in metrics if m[0] in rows]


def sweep_plots(directory: Path, rows: pd.DataFrame, grid: dict[str, list], criteria: list[str], labels: list[str],
                title: str) -> list[Path]:
    """Plots chosen by the grid's shape: lines with 95% bands (one parameter), heatmaps (two),
    faceted lines (more)."""
    metrics = sweep_metrics(rows, criteria, labels)
    params = list(grid)
    written = []
    if rows.empty or not metrics:
        return written
    if len(params) == 1:
        p = params[0]
        values = [v for v in grid[p] if v in set(rows[p])]
        x, ticks, log = _axis_values(values)
        fig, axes = plt.subplots(len(metrics), 1, figsize=(7, 2.6 * len(metrics)), squeeze=False)
        for ax, (col, name, lo, hi) in zip(axes[:, 0], metrics):
            table = rows.set_index(p).reindex(values)
            ax.plot(x, table[col], marker="o")
            if lo:
                ax.fill_between(x, table[lo], table[hi], alpha=0.25, label="95% interval")
                ax.legend(loc="best", fontsize=8)
            ax.set_ylabel(name, fontsize=8)
            ax.set_xlabel(p)
            if log:
                ax.set_xscale("log")
            ax.set_xticks(x, ticks)
        fig.suptitle(f"{title}: sweep over {p}")
        written.append(directory / "sweep.png")
        _save(fig, written[-1], dpi=110)
    elif len(params) == 2:
        p, q = params
        for col, name, _, _ in metrics:
            table = rows.pivot_table(index=q, columns=p, values=col, aggfunc="first").reindex(index=grid[q], columns=grid[p])
            fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(grid[p]), 1.5 + 0.6 * len(grid[q])))
            image = ax.imshow(table.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(grid[p])), [str(v) for v in grid[p]])
            ax.set_yticks(range(len(grid[q])), [str(v) for v in grid[q]])
            ax.set_xlabel(p)
            ax.set_ylabel(q)
            fig.colorbar(image, ax=ax, label=name)
            ax.set_title(f"{title}: {name}", fontsize=9)
            written.append(directory / f"heatmap_{col}.png")
            _save(fig, written[-1], dpi=110)
    else:
        p, q, rest = params[0], params[1], params[2:]
        facets = list(itertools.product(*(grid[r] for r in rest)))
        x, ticks, log = _axis_values(grid[p])
        for col, name, lo, hi in metrics:
            fig, axes = plt.subplots(1, len(facets), figsize=(4 * len(facets), 3.4), squeeze=False, sharey=True)
            for ax, facet in zip(axes[0], facets):
                sub = rows
                for r, v in zip(rest, facet):
                    sub = sub[sub[r] == v]
                for v in grid[q]:
                    line = sub[sub[q] == v].set_index(p).reindex(grid[p])
                    ax.plot(x, line[col], marker="o", label=f"{q} = {v}")
                    if lo:
                        ax.fill_between(x, line[lo], line[hi], alpha=0.15)
                ax.set_title(", ".join(f"{r} = {v}" for r, v in zip(rest, facet)), fontsize=8)
                ax.set_xlabel(p)
                if log:
                    ax.set_xscale("log")
                ax.set_xticks(x, ticks)
            axes[0, 0].set_ylabel(name, fontsize=8)
            axes[0, -1].legend(fontsize=7, loc="best")
            fig.suptitle(f"{title}: {name}")
            written.append(directory / f"facets_{col}.png")
            _save(fig, written[-1], dpi=110)
    return written
