"""Study 4 — Longer windows are stickier (Remark 6.D): expected exit time from the all-F
(luigi) page and from the all-U (waluigi) page as k grows, with and without softmax floors.
Exit times are exact: tau = (I - P_CC)^-1 1 on the metastable class of the page."""

from __future__ import annotations

import numpy as np

from common import Study, figure, fmt, report, scenario


def exit_time(r, state):
    for m in r["metastable"]["classes"]:
        if m["likely_state"] == state:
            return m["exit_time"] if m["exit_time"] is not None else float("inf")
    return float("nan")


def run(out, quick: bool) -> Study:
    ks = list(range(2, 9 if quick else 13))
    rows, series = [], {"hard: all-F": [], "soft: all-F": [], "soft: all-U": []}
    for k in ks:
        hard = report(scenario("waluigi", context__length=k), tolerance=0.2)
        soft = report(scenario("waluigi_soft", context__length=k), tolerance=0.2)
        f, u = " ".join(["F"] * k), " ".join(["U"] * k)
        row = {"k": k, "hard all-F": exit_time(hard, f), "hard all-U": exit_time(hard, u),
               "soft all-F": exit_time(soft, f), "soft all-U": exit_time(soft, u)}
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
        ax.legend(fontsize=8)

    name = figure(out, "s04_sticky.png", draw)
    finding = (f"Without floors the all-F page is left after {fmt(series['hard: all-F'][0], 3)} → "
               f"{fmt(series['hard: all-F'][-1], 3)} steps (k = {ks[0]} → {ks[-1]}) and all-U never; with floors "
               f"(eps = 0.01) all-F is left after {fmt(series['soft: all-F'][0], 3)} → {fmt(series['soft: all-F'][-1], 3)} "
               f"steps and all-U after {fmt(series['soft: all-U'][0], 3)} → {fmt(series['soft: all-U'][-1], 3)}, "
               "bounded by 1/eps = 100: the revealed waluigi's own floor, which no amount of evidence removes.")
    return Study(4, "Longer windows are stickier (Remark 6.D)", finding,
                 [(name, "Exact expected steps to leave the all-F and all-U page-states versus k, toy without "
                         "floors (all-U is absorbing: infinite) and with floors eps = 0.01 (waluigi_soft).")], rows)
