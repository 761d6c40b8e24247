"""Study 2 — The mode-collapse zoo (Remark 5): an absorbing state (zeros), periodic orbits
("the dog and", period 3, against a period-4 rival), and an absorbing set in which no page-state
repeats (bitstrings, metastable: the digits premise keeps a small chance of printing a 3)."""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, proportion, report, scenario, simulate, wilson

from ecology.kinds.observables import Criteria


def run(out, quick: bool) -> Study:
    reps = 500 if quick else 2000
    rows, curves = [], {}
    bits = {"context__length": 8 if quick else 10, "run__steps": 300 if quick else 2000}
    cases = [("zeros", {}, None), ("dog", {}, None), ("bitstrings", bits, 1e-2)]
    for name, overrides, tolerance in cases:
        s = scenario(name, run__replicates=reps, **overrides)
        r = report(s, tolerance=tolerance) if tolerance else report(s)
        _, df = simulate(s)
        crit = list(s.absorption)[0]
        curves[name] = df[Criteria.column("reached", crit)].to_numpy()
        holding = float(df[Criteria.column("holding", crit)].iloc[-1])
        classes = "; ".join(
            f"{(c['absorbing_state'] and 'absorbing ' + repr(c['absorbing_state'])) or str(c['size']) + ' states'} "
            f"(period {c['period']}, P = {fmt(c['probability'], 3)})" for c in r["closed_classes"])
        meta = ""
        if tolerance:
            big = max(r["metastable"]["classes"], key=lambda m: m["size"])
            meta = (f"{big['size']} states once transitions < {tolerance:g} are ignored; escape ≤ "
                    f"{fmt(big['max_escape'], 3)} per step, exit time {fmt(big['exit_time'], 4)}")
        rows.append({"scenario": name, "page-states": r["n_states"], "closed classes (exact)": classes,
                     "metastable set": meta or "—", "criterion": f"'{crit}' ({s.absorption[crit].form})",
                     "steps N": s.run.steps,
                     "reached by N (simulated, 95% interval)": proportion(curves[name][-1], reps),
                     "holding at N (simulated, 95% interval)": proportion(holding, reps)})

    def draw(fig, ax):
        for name, curve in curves.items():
            line = ax.plot(curve, label=name)[0]
            lo, hi = wilson(np.round(curve * reps), reps)
            ax.fill_between(np.arange(len(curve)), lo, hi, color=line.get_color(), alpha=0.25, lw=0)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("step (log scale beyond 10)")
        ax.set_ylabel("fraction of replicates\nthat reached the criterion")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)

    name = figure(out, "s02_zoo.png", draw)
    dog = rows[1]["closed classes (exact)"]
    finding = (f"The exact analyser finds the absorbing state of zeros, the orbits of dog.toml — {dog} — and, for "
               f"bitstrings, no small closed class but a metastable set: {rows[2]['metastable set']}; the simulator's "
               f"criteria (window_only, periodic) are reached in at least "
               f"{proportion(min(c[-1] for c in curves.values()), reps)} of the replicates (95% interval).")
    return Study(2, "The mode-collapse zoo (Remark 5)", finding,
                 [(name, "Fraction of replicates that reached (held at least once by step t) each scenario's criterion, "
                         "with 95% Wilson bands: all_zero (zeros), orbit with periodic = 4 (dog), bits_only (bitstrings).")],
                 rows)
