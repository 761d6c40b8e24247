"""Study 6 — Amplitudes are approximately martingale (Remark 9). The exact expected one-step
change of an amplitude (the drift) is zero without deletion and non-zero with it; in the window
311101011 the leading 3 that will be deleted next makes the bitstring premise expected to rise."""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, scenario, simulate

from ecology.kinds.observables import Drift


def run(out, quick: bool) -> Study:
    steps, reps = (150, 300) if quick else (400, 1000)
    rows, series = [], {}
    for deletion in ("none", "fifo"):
        s = scenario("waluigi", context__deletion=deletion, run__steps=steps, run__replicates=reps, run__drift=True)
        _, df = simulate(s)
        series[deletion] = df[Drift.column("waluigi")].to_numpy()
        rows.append({"window": f"toy, deletion = {deletion}", "max |mean drift of waluigi| over steps":
                     fmt(float(np.abs(series[deletion]).max()), 3)})
    remark = {}
    for deletion in ("fifo", "none"):
        s = scenario("bitstrings", context__length=9, context__deletion=deletion, run__steps=1, run__replicates=10,
                     run__drift=True)
        _, df = simulate(s)
        remark[deletion] = df.iloc[0]
        rows.append({"window": f"'3 1 1 1 0 1 0 1 1', deletion = {deletion}",
                     "max |mean drift of waluigi| over steps":
                         f"bitstrings amplitude {fmt(remark[deletion]['bitstrings_mean'], 3)}, "
                                                               f"drift {fmt(remark[deletion]['drift_bitstrings'], 4)}"})

    def draw(fig, ax):
        for deletion, d in series.items():
            ax.plot(d, label=f"deletion = {deletion}")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("mean drift of the waluigi's amplitude (per step)")
        ax.legend(fontsize=8)

    name = figure(out, "s06_martingale.png", draw)
    finding = (f"Without deletion the waluigi's amplitude drift is at most {fmt(float(np.abs(series['none']).max()), 2)} "
               f"(rounding), with fifo its mean over {reps} replicates reaches {fmt(float(np.abs(series['fifo']).max()), 3)} "
               f"per step (a sample mean of exact per-window drifts); in the full window "
               f"311101011 (k = 9) the bitstring premise has amplitude {fmt(remark['fifo']['bitstrings_mean'], 3)} but drift "
               f"+{fmt(remark['fifo']['drift_bitstrings'], 4)}, because the 3 is deleted next (no deletion: "
               f"{fmt(remark['none']['drift_bitstrings'], 2)}).")
    return Study(6, "Amplitudes are approximately martingale (Remark 9)", finding,
                 [(name, f"Mean over {reps} replicates of the exact expected one-step change of the waluigi's "
                         "amplitude, toy, with and without deletion.")], rows)
