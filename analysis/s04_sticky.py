"""Study 4 — Longer windows are stickier (Remark 6.D): expected exit time from the all-F
(luigi) page, from the all-U (waluigi) page and from the waluigi basin as k grows, with and
without softmax floors. Exit times are exact: tau = (I - P_CC)^-1 1 on the set being left."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from common import Study, chain, figure, fmt, report, scenario
from scipy.sparse import linalg as spla

from ecology.numerics import above


def basin_exit_time(s) -> float:
    """Expected steps from U^k until the waluigi's amplitude first drops to 1/2 or below:
    tau = (I - P_BB)^-1 1 over the basin B = {waluigi amplitude > 1/2}."""
    compiled, pc = chain(s)
    basin = np.flatnonzero(above(pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")], 0.5))
    block = pc.chain.P[basin][:, basin]
    if np.allclose(np.asarray(block.sum(axis=1)).ravel(), 1.0):
        return float("inf")
    tau = spla.spsolve((sp.identity(len(basin), format="csc") - block).tocsc(), np.ones(len(basin)))
    k = s.context.length
    return float(tau[np.searchsorted(basin, pc.labels().index(" ".join(["U"] * k)))])


def exit_time(r, state):
    for m in r["metastable"]["classes"]:
        if m["likely_state"] == state:
            return m["exit_time"] if m["exit_time"] is not None else float("inf")
    return float("nan")


def run(out, quick: bool) -> Study:
    ks = list(range(2, 9 if quick else 13))
    rows, series = [], {"hard: all-F": [], "soft: all-F": [], "soft: all-U": [], "soft: waluigi basin": []}
    for k in ks:
        hard = report(scenario("waluigi", context__length=k), tolerance=0.2)
        soft = report(scenario("waluigi_soft", context__length=k), tolerance=0.2)
        f, u = " ".join(["F"] * k), " ".join(["U"] * k)
        row = {"k": k, "hard all-F": exit_time(hard, f), "hard all-U": exit_time(hard, u),
               "soft all-F": exit_time(soft, f), "soft all-U": exit_time(soft, u),
               "soft waluigi basin (from all-U)": basin_exit_time(scenario("waluigi_soft", context__length=k))}
        series["soft: waluigi basin"].append(row["soft waluigi basin (from all-U)"])
        series["hard: all-F"].append(row["hard all-F"])
        series["soft: all-F"].append(row["soft all-F"])
        series["soft: all-U"].append(row["soft all-U"])
        rows.append({key: fmt(v, 5) if isinstance(v, float) else v for key, v in row.items()})

    def draw(fig, ax):
        for name, values in series.items():
            ax.plot(ks, values, marker="o", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("window length k (tokens)")
        ax.set_ylabel("expected exit time (steps, log scale)")
        ax.set_title("infinite times (absorbing) are not drawn", fontsize=8)
        ax.legend(fontsize=8)

    name = figure(out, "s04_sticky.png", draw)
    finding = (f"Without floors the all-F page is left after {fmt(series['hard: all-F'][0], 3)} → "
               f"{fmt(series['hard: all-F'][-1], 3)} steps (k = {ks[0]} → {ks[-1]}) and all-U never; with floors "
               f"(eps = 0.01) all-F is left after {fmt(series['soft: all-F'][0], 3)} → {fmt(series['soft: all-F'][-1], 3)} "
               f"steps and all-U after {fmt(series['soft: all-U'][0], 3)} → {fmt(series['soft: all-U'][-1], 3)}, "
               "bounded by 1/eps = 100: the revealed waluigi's own floor, which no amount of evidence removes; "
               f"but the waluigi basin (its amplitude > 1/2) is left only after {fmt(series['soft: waluigi basin'][0], 3)} → "
               f"{fmt(series['soft: waluigi basin'][-1], 3)} steps: longer windows make it stickier.")
    return Study(4, "Longer windows are stickier (Remark 6.D)", finding,
                 [(name, "Exact expected steps to leave the all-F and all-U page-states, and the waluigi basin "
                         "(from all-U), versus k: toy without floors (all-U is absorbing: infinite) and with floors "
                         "eps = 0.01 (waluigi_soft).")], rows)
