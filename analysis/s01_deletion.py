"""Study 1 — Deletion matters (Remark 1): the toy with `none` versus `fifo`.

With an unbounded window the process is the Bayesian mixture itself: a waluigi is revealed only
if the waluigi premise was "the truth", so P(revealed by step N) = (1 - alpha)(1 - p^(N - k + 1))
(the criterion needs the last k tokens to be U) tends to the prior 1 - alpha. With a finite
window, deletion forgets the evidence for luigi and the probability tends to 1.
"""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, proportion, report, scenario, simulate

from ecology.kinds.observables import Criteria


def run(out, quick: bool) -> Study:
    steps, reps = (300, 1000) if quick else (1500, 4000)
    alpha, p, k = 0.9, 0.9, 8
    curves, rows = {}, []
    for deletion in ("none", "fifo"):
        s = scenario("waluigi", run__steps=steps, run__replicates=reps, context__deletion=deletion)
        _, df = simulate(s)
        curves[deletion] = df[Criteria.column("reached", "revealed")].to_numpy()
    n = np.arange(steps + 1)
    closed = np.where(n >= k, (1 - alpha) * (1 - p ** np.maximum(n - k + 1, 0)), 0.0)
    exact = np.array(report(scenario("waluigi", context__deletion="fifo"), horizon=steps)["curves"]["revealed"]["reached"])
    for t in sorted({10, 50, 100, steps // 2, steps}):
        rows.append({"step": t, "none (simulated, 95% interval)": proportion(curves["none"][t], reps),
                     "none (closed form)": fmt(closed[t]),
                     "fifo (simulated, 95% interval)": proportion(curves["fifo"][t], reps), "fifo (exact chain)": fmt(exact[t])})

    def draw(fig, ax):
        ax.plot(n, curves["none"], label="deletion = none (simulated)")
        ax.plot(n, closed, "--", label="none: (1-α)(1-p^(N-k+1)) → 1-α")
        ax.plot(n, curves["fifo"], label="deletion = fifo (simulated)")
        ax.plot(n, exact, ":", label="fifo: exact chain")
        ax.set_xlabel("step N (tokens generated)")
        ax.set_ylabel("P(waluigi revealed: last k tokens all U)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)

    name = figure(out, "s01_deletion.png", draw)
    finding = (f"With an unbounded window the waluigi is revealed in a fraction {proportion(curves['none'][-1], reps)} "
               f"(95% interval, {reps} replicates) of the runs after {steps} steps, its prior 1-α = {1 - alpha:g} "
               f"(closed form {fmt(closed[-1], 4)}); with a finite window (k = {k}, fifo) in "
               f"{proportion(curves['fifo'][-1], reps)}, tending to 1 (exact chain: {fmt(exact[-1], 4)}).")
    return Study(1, "Deletion matters (Remark 1)", finding,
                 [(name, f"Fraction of {reps} replicates revealed by step N, toy (α = 0.9, p = 0.9, k = 8), "
                         "under no deletion and fifo deletion, with the closed form and the exact chain.")], rows)
