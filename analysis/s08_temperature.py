"""Study 8 — Temperature (thermodynamic lens, seed 001): time to reveal the waluigi, entropy of
the sampling law and free energy of the window versus the sampling temperature, on the softened
toy. "Sooner" is measured by the restricted mean time to reveal, E[min(T, N)] (censoring-safe,
with its 95% interval), and by the fraction revealed by N (Wilson interval); the claim "heating
finds the waluigi sooner" is made only when the intervals at the two ends do not overlap."""

from __future__ import annotations

from common import Study, figure, fmt, interval, proportion, scenario, simulate, time_to_event

from ecology.kinds.observables import Entropy, FreeEnergy


def run(out, quick: bool) -> Study:
    temps = [0.5, 1.0, 2.0] if quick else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    steps, reps = (200, 500) if quick else (600, 2000)
    rows, fig_rows = [], []
    for T in temps:
        model, df = simulate(scenario("waluigi_soft", sampling__temperature=T, run__steps=steps, run__replicates=reps))
        t = time_to_event(model.reached_at[0], steps)
        row = {"temperature": T, **t, "entropy": float(df[Entropy.column()].mean()),
               "free_energy": float(df[FreeEnergy.column()].mean())}
        fig_rows.append(row)
        median = "not reached by half" if t["time_median"] is None else str(t["time_median"])
        rows.append({"temperature": T, "revealed by N (95% interval)": proportion(t["reached"], reps),
                     f"restricted mean time to reveal, E[min(T, {steps})] (95% interval)":
                         interval(t["restricted_mean"], t["restricted_mean_lo"], t["restricted_mean_hi"], 4),
                     "median time to reveal": median,
                     "mean entropy of p_T (nats)": fmt(row["entropy"], 4),
                     "mean free energy (nats)": fmt(row["free_energy"], 4)})

    def draw(fig, ax):
        x = temps
        mean = [r["restricted_mean"] for r in fig_rows]
        ax.errorbar(x, mean, yerr=[[m - r["restricted_mean_lo"] for m, r in zip(mean, fig_rows)],
                                   [r["restricted_mean_hi"] - m for m, r in zip(mean, fig_rows)]],
                    marker="o", capsize=3, label=f"E[min(T, {steps})], time to reveal (95% interval)")
        ax.set_xlabel("sampling temperature T")
        ax.set_ylabel(f"restricted mean time to reveal\n(steps, within N = {steps})")
        ax2 = ax.twinx()
        ax2.plot(x, [r["entropy"] for r in fig_rows], "k:", marker="s", label="mean entropy of p_T (nats)")
        ax2.set_ylabel("mean entropy of the sampling law (nats)")
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)

    name = figure(out, "s08_temperature.png", draw)
    cold, hot = fig_rows[0], fig_rows[-1]
    sooner = hot["restricted_mean_hi"] < cold["restricted_mean_lo"]
    later = hot["restricted_mean_lo"] > cold["restricted_mean_hi"]
    verdict = ("heating finds the waluigi sooner (the 95% intervals of the restricted mean do not overlap)" if sooner
               else "heating finds the waluigi later (the 95% intervals do not overlap)" if later
               else "the time to reveal does not differ beyond the 95% intervals")
    finding = (f"Heating from T = {temps[0]} to {temps[-1]} raises the entropy of the sampling law from "
               f"{fmt(cold['entropy'], 3)} to {fmt(hot['entropy'], 3)} nats; the restricted mean time to reveal the "
               f"waluigi within {steps} steps goes from "
               f"{interval(cold['restricted_mean'], cold['restricted_mean_lo'], cold['restricted_mean_hi'], 4)} to "
               f"{interval(hot['restricted_mean'], hot['restricted_mean_lo'], hot['restricted_mean_hi'], 4)} steps and "
               f"the fraction revealed by then from {proportion(cold['reached'], reps)} to {proportion(hot['reached'], reps)}: "
               f"{verdict}.")
    return Study(8, "Temperature", finding,
                 [(name, f"Softened toy (k = 8), {reps} replicates x {steps} steps per temperature: restricted mean "
                         "time until the window is all U (censoring-safe, 95% interval) and mean entropy of the "
                         "sampling law.")], rows)
