"""Study 5 — Softmax floors (the critics' objection): with eps > 0 nothing is strictly absorbing.
How the stationary mass of the waluigi basin (page-states where the waluigi's amplitude exceeds
1/2) and the escape time from U^k depend on eps and k. Both premises get the same floor eps."""

from __future__ import annotations

import numpy as np
from common import Study, chain, figure, fmt, scenario

from ecology.exact.report import analyze
from ecology.numerics import TIE_TOLERANCE, above


def run(out, quick: bool) -> Study:
    epsilons = [1e-3, 1e-2, 5e-2] if quick else [1e-4, 1e-3, 1e-2, 5e-2, 1e-1]
    ks = [2, 4, 6] if quick else [2, 4, 6, 8, 10]
    rows, basin, escape = [], {}, {}
    for eps in epsilons:
        for k in ks:
            s = scenario("waluigi_soft", context__length=k, simulacra__luigi__eps=eps, simulacra__waluigi__eps=eps)
            compiled, pc = chain(s)
            r = analyze(compiled, chain=pc, tolerance=min(0.5, 20 * eps))
            pi = pc.chain.stationary_distributions[0]
            walu = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
            basin[eps, k] = float(pi[above(walu, 0.5)].sum())  # the tie rule of every threshold
            ties = int(np.sum(np.abs(walu - 0.5) <= TIE_TOLERANCE))
            u = " ".join(["U"] * k)
            escape[eps, k] = next((m["exit_time"] for m in r["metastable"]["classes"] if m["likely_state"] == u), np.nan)
            rows.append({"eps": eps, "k": k, "closed classes": len(r["closed_classes"]),
                         "stationary mass of waluigi basin": fmt(basin[eps, k], 5),
                         "page-states at amplitude 1/2 exactly (ties, outside the basin)": ties,
                         "exit time from U^k (steps)": fmt(escape[eps, k], 5)})

    def draw(fig, ax):
        for k in ks:
            ax.plot(epsilons, [basin[e, k] for e in epsilons], marker="o", label=f"k = {k}")
        ax.set_xscale("log")
        ax.set_xlabel("softmax floor eps (probability)")
        ax.set_ylabel("stationary mass of the waluigi basin")
        ax.legend(fontsize=8)

    name = figure(out, "s05_floors.png", draw)
    lo, hi = epsilons[0], epsilons[-1]
    classes = sorted({row["closed classes"] for row in rows})
    finding = (f"With floors every chain here has {' or '.join(map(str, classes))} closed class(es) (nothing is strictly "
               f"absorbing), yet the waluigi basin keeps stationary mass {fmt(basin[lo, ks[-1]], 6)} at eps = {lo:g} and "
               f"{fmt(basin[hi, ks[-1]], 4)} at eps = {hi:g} (k = {ks[-1]}); the exit time from U^k falls from "
               f"{fmt(escape[lo, ks[-1]], 4)} to {fmt(escape[hi, ks[-1]], 4)} steps.")
    return Study(5, "Softmax floors", finding,
                 [(name, "Exact stationary probability of page-states where the waluigi's amplitude exceeds 1/2, "
                         "versus the floor eps given to both premises, for several window lengths k.")], rows)
