"""Study 5 — Softmax floors (the critics' objection): with eps > 0 nothing is strictly absorbing.
How the stationary mass of the waluigi basin (page-states where the waluigi's amplitude exceeds
1/2) and the escape time from U^k depend on eps and k. Both premises get the same floor eps.

The tie convention (:func:`ecology.numerics.above`, the rule of every threshold in the package):
an amplitude within ``TIE_TOLERANCE`` = 1e-12 of the threshold is a tie and is *not* above it.
The basin is counted both ways: strictly above 1/2 (the package's rule) and at least 1/2 (ties
included). Ties are exact only at eps = 0.1 = 1 - p: there the luigi (F with 1 - eps, U with eps)
and the hiding waluigi (F with p, U with 1 - p) give every token up to and including the first U
the same probability, and after it each U multiplies the waluigi's odds by (1 - eps)/eps = 9 and
each F divides them by 9, while the prior odds are 0.1/0.9 = 1/9. So the odds are 9^(u - f - 1),
u and f the U's and F's after the first U (none without a U: the prior odds), and the amplitude is
exactly 1/2 where u - f = 1; the study checks every page-state's amplitude against 9^m / (1 + 9^m), m = u - f - 1."""

from __future__ import annotations

import numpy as np
from common import Study, chain, figure, fmt, scenario

from ecology.exact.report import analyze
from ecology.numerics import TIE_TOLERANCE, above


def tie_odds_exponent(label: str) -> float:
    """m = u - f - 1 over the tokens after the window's first U (pads dropped; none without a U, m = -1,
    the prior odds): at eps = 1 - p the waluigi's odds are 9^m (the module docstring)."""
    tokens = [t for t in label.split() if t != "N"]
    after = tokens[tokens.index("U") + 1 :] if "U" in tokens else []
    return after.count("U") - after.count("F") - 1.0


def run(out, quick: bool) -> Study:
    epsilons = [1e-3, 1e-2, 5e-2, 1e-1] if quick else [1e-4, 1e-3, 1e-2, 5e-2, 1e-1]
    ks = [2, 4, 6] if quick else [2, 4, 6, 8, 10]
    rows, basin, basin_ties, escape = [], {}, {}, {}
    worst_tie_form = 0.0  # at eps = 0.1: the largest |amplitude - 9^m / (1 + 9^m)| over page-states
    for eps in epsilons:
        for k in ks:
            s = scenario("waluigi_soft", context__length=k, simulacra__luigi__eps=eps, simulacra__waluigi__eps=eps)
            compiled, pc = chain(s)
            r = analyze(compiled, chain=pc, tolerance=min(0.5, 20 * eps))
            pi = pc.chain.stationary_distributions[0]
            walu = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
            tie = np.abs(walu - 0.5) <= TIE_TOLERANCE
            basin[eps, k] = float(pi[above(walu, 0.5)].sum())  # the tie rule of every threshold: strictly above
            basin_ties[eps, k] = float(pi[above(walu, 0.5) | tie].sum())  # at least 1/2: ties counted in
            if eps == 0.1:
                odds = 9.0 ** np.array([tie_odds_exponent(x) for x in pc.labels()])
                worst_tie_form = max(worst_tie_form, float(np.abs(walu - odds / (1 + odds)).max()))
            u = " ".join(["U"] * k)
            escape[eps, k] = next((m["exit_time"] for m in r["metastable"]["classes"] if m["likely_state"] == u), np.nan)
            rows.append({"eps": eps, "k": k, "closed classes": len(r["closed_classes"]),
                         "stationary mass of waluigi basin (amplitude > 1/2)": fmt(basin[eps, k], 5),
                         "page-states at amplitude 1/2 (ties)": int(tie.sum()),
                         "their stationary mass": fmt(float(pi[tie].sum()), 5),
                         "mass at amplitude >= 1/2": fmt(basin_ties[eps, k], 5),
                         "exit time from U^k (steps)": fmt(escape[eps, k], 5)})

    def draw(fig, ax):
        for i, k in enumerate(ks):
            line, = ax.plot(epsilons, [basin[e, k] for e in epsilons], marker="o", label=f"k = {k}")
            ax.plot(epsilons, [basin_ties[e, k] for e in epsilons], ls=":", marker="x", color=line.get_color(),
                    label="dotted, each k: amplitude >= 1/2" if i == len(ks) - 1 else None)
        ax.set_xscale("log")
        ax.set_xlabel("softmax floor eps (probability)")
        ax.set_ylabel("stationary mass of the waluigi basin")
        ax.legend(fontsize=7, title="solid: amplitude > 1/2", title_fontsize=7)

    name = figure(out, "s05_floors.png", draw)
    lo, hi = epsilons[0], epsilons[-1]
    classes = sorted({row["closed classes"] for row in rows})
    tie_rows = [row for row in rows if row["page-states at amplitude 1/2 (ties)"]]
    tie_eps = sorted({row["eps"] for row in tie_rows})
    tie_mass = basin_ties[hi, ks[-1]] - basin[hi, ks[-1]]
    finding = (f"With floors every chain here has {' or '.join(map(str, classes))} closed class(es) (nothing is strictly "
               f"absorbing), yet the waluigi basin keeps stationary mass {fmt(basin[lo, ks[-1]], 6)} at eps = {lo:g} and "
               f"{fmt(basin[hi, ks[-1]], 4)} at eps = {hi:g} (k = {ks[-1]}; amplitude strictly above 1/2, the package's "
               f"tie rule), or {fmt(basin_ties[hi, ks[-1]], 4)} counting the page-states at amplitude exactly 1/2 "
               f"(mass {fmt(tie_mass, 3)}; ties occur only at eps = {' and '.join(f'{e:g}' for e in tie_eps) or 'none'}, "
               f"where the floor equals 1 - p = 0.1); the exit time from U^k falls from {fmt(escape[lo, ks[-1]], 4)} to "
               f"{fmt(escape[hi, ks[-1]], 4)} steps.")
    notes = ("**Ties.** A page-state whose waluigi amplitude is within TIE_TOLERANCE = 1e-12 of 1/2 is a tie; the "
             "package's rule for every threshold (`ecology.numerics.above`: amplitude > threshold + TIE_TOLERANCE) puts "
             "it outside the basin, so the basin column counts amplitudes strictly above 1/2 and the column "
             "'mass at amplitude >= 1/2' adds the ties. Ties are exact, not rounding, and occur only at eps = 0.1, where "
             "the floor equals 1 - p: the luigi and the hiding waluigi then give every token up to and including the "
             "first U the same probability (0.9 for F, 0.1 for U), and after it each U multiplies the waluigi's odds by "
             "(1 - eps)/eps = 9 and each F divides them by 9, against prior odds 0.1/0.9 = 1/9; the odds are 9^(u - f - 1) "
             "(u, f: the U's and F's after the first U) and the amplitude is exactly 1/2 where u - f = 1. The chain's "
             f"amplitudes at eps = 0.1 agree with 9^m / (1 + 9^m) on every page-state to {worst_tie_form:.1e}.\n")
    return Study(5, "Softmax floors", finding,
                 [(name, "Exact stationary probability of the waluigi basin versus the floor eps given to both premises, "
                         "for several window lengths k: page-states where the waluigi's amplitude is strictly above 1/2 "
                         "(solid, the package's tie rule) and at least 1/2 (dotted, ties at eps = 0.1 included).")],
                 rows, notes)
