"""Study 8 — Temperature (thermodynamic lens, seed 001): time to reveal the waluigi, entropy of
the sampling law and free energy of the window versus the sampling temperature, on the softened
toy (k = 8), exactly and by simulation.

Exact (the page-state chain of each temperature, 511 states, :mod:`ecology.exact`): with ``T`` the
first step at which the window is all U (criterion ``revealed``), ``E[T]`` (the subtraction-free
hitting-time solve), ``P(T <= N)`` and the restricted mean ``E[min(T, N)] = sum_{t<N} P(T > t)``
from the hitting curve; ``T`` is split at ``T_1``, the first step at which the window holds a U:
``E[T] = E[T_1] + E[T - T_1]``. Simulated (2000 replicates x N = 600 steps): the restricted mean
(censoring-safe, 95% interval) and the fraction revealed by N (Wilson interval), each checked to
cover the exact value. The mechanism is read off the two one-step escape probabilities that
tempering moves in opposite directions, ``P_T(U | F^8)`` (leaving the luigi page) and
``P_T(F | U^8)`` (a U-run broken before it fills the window), and the stationary law's mean
waluigi amplitude and mass on U^8 (GTH, withheld where its error estimate does not trust it)."""

from __future__ import annotations

import itertools

import numpy as np
from common import Study, chain, figure, fmt, interval, proportion, scenario, simulate, time_to_event
from scipy.optimize import minimize_scalar

from ecology.exact.report import expected_entrance_time
from ecology.kinds.observables import Entropy, FreeEnergy

MAX_WORK = 10**9


def exact_at(T: float, steps: int) -> dict:
    """Exact figures of the softened toy at temperature ``T`` (module docstring)."""
    compiled, pc = chain(scenario("waluigi_soft", sampling__temperature=T, run__steps=steps))
    mc, x = pc.chain, pc.initial
    revealed = pc.holds(compiled.criteria[0])
    has_u = (pc.windows == compiled.tokens.index("U")).any(axis=1)
    curve = mc.hitting_curve(x, revealed, steps)
    total = expected_entrance_time(mc, x, revealed, MAX_WORK)
    first = expected_entrance_time(mc, x, has_u, MAX_WORK)
    labels = pc.labels()
    P = mc.P.tocsr()
    f8, u8 = labels.index(" ".join(["F"] * 8)), labels.index(" ".join(["U"] * 8))
    (C,) = mc.recurrent_classes
    (law,) = mc.stationary_laws
    waluigi = pc.population_amplitudes[C, compiled.mixture.labels.index("waluigi")]
    return {"temperature": T, "reached": float(curve[-1]), "restricted_mean": float((1.0 - curve[:steps]).sum()),
            "mean": total["value"], "overflow": total["overflow"], "first_u": first["value"],
            "escape_luigi": 1.0 - float(P[f8, f8]), "break_run": 1.0 - float(P[u8, u8]),
            "pi_revealed": float(law.pi[list(C).index(u8)]) if law.trusted else None,
            "waluigi_amplitude": float(law.pi @ waluigi) if law.trusted else None}


def run(out, quick: bool) -> Study:
    temps = [0.5, 1.0, 2.0] if quick else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    steps, reps = (200, 500) if quick else (600, 2000)
    grid = sorted(set(np.round(np.geomspace(0.25, 4.0, 9 if quick else 33), 4).tolist()) | set(temps))
    exact = {T: exact_at(T, steps) for T in grid}
    rows, fig_rows, tested, covered, covered_reached = [], [], 0, 0, 0
    for T in temps:
        model, df = simulate(scenario("waluigi_soft", sampling__temperature=T, run__steps=steps, run__replicates=reps))
        t = time_to_event(model.reached_at[0], steps)
        e = exact[T]
        # with no replicate revealed the restricted mean's interval is [N, N] (no event, zero standard error): no test
        informative = t["reached"] > 0
        inside = t["restricted_mean_lo"] <= e["restricted_mean"] <= t["restricted_mean_hi"]
        inside_reached = t["reached_lo"] <= e["reached"] <= t["reached_hi"]
        tested += informative
        covered += informative and inside
        covered_reached += inside_reached
        row = {"temperature": T, **t, "entropy": float(df[Entropy.column()].mean()),
               "free_energy": float(df[FreeEnergy.column()].mean())}
        fig_rows.append(row)
        rows.append({"temperature": T,
                     "E[T] (exact)": fmt(e["mean"], 5) if e["overflow"] is None else e["overflow"],
                     "E[T_1], first U (exact)": fmt(e["first_u"], 5),
                     "E[T - T_1], U-run to U^8 (exact)": fmt(e["mean"] - e["first_u"], 5),
                     f"E[min(T, {steps})] exact": fmt(e["restricted_mean"], 5),
                     "simulated (95% interval)": interval(t["restricted_mean"], t["restricted_mean_lo"],
                                                          t["restricted_mean_hi"], 4),
                     "covers": ("yes" if inside else "no") if informative else "no test (none revealed)",
                     f"P(T <= {steps}) exact": fmt(e["reached"], 4),
                     "simulated (Wilson 95%)": proportion(t["reached"], reps),
                     "covers ": "yes" if inside_reached else "no",
                     "P_T(U | F^8)": fmt(e["escape_luigi"], 3), "P_T(F | U^8)": fmt(e["break_run"], 3),
                     "stationary P(U^8)": fmt(e["pi_revealed"], 4) if e["pi_revealed"] is not None else "withheld",
                     "stationary mean waluigi amplitude": fmt(e["waluigi_amplitude"], 4)
                     if e["waluigi_amplitude"] is not None else "withheld",
                     "mean entropy of p_T (nats, simulated)": fmt(row["entropy"], 4),
                     "mean free energy (nats, simulated)": fmt(row["free_energy"], 4)})

    def draw(fig, ax):
        x = list(exact)
        ax.semilogy(x, [exact[T]["mean"] for T in x], "k-", lw=1.5, label="E[T], time to reveal (exact)")
        ax.semilogy(x, [exact[T]["restricted_mean"] for T in x], "C0-", lw=1.2, label=f"E[min(T, {steps})] (exact)")
        ax.semilogy(x, [exact[T]["first_u"] for T in x], "C2--", lw=1, label="E[T_1], first U in the window (exact)")
        ax.semilogy(x, [exact[T]["mean"] - exact[T]["first_u"] for T in x], "C3--", lw=1,
                    label="E[T - T_1], from the first U to U^8 (exact)")
        mean = np.array([r["restricted_mean"] for r in fig_rows])
        ax.errorbar(temps, mean, yerr=[mean - [r["restricted_mean_lo"] for r in fig_rows],
                                       [r["restricted_mean_hi"] for r in fig_rows] - mean],
                    fmt="o", color="C1", capsize=3, ms=4, label=f"E[min(T, {steps})], simulated ({reps} replicates, 95%)")
        ax.set_xscale("log")
        ax.set_xticks([0.25, 0.5, 1, 2, 4], ["0.25", "0.5", "1", "2", "4"])
        ax.set_xticks([], minor=True)
        zoom = ax.inset_axes([0.5, 0.5, 0.47, 0.46])  # the minimum, on linear axes
        near = [T for T in x if T >= 1.4]
        zoom.plot(near, [exact[T]["restricted_mean"] for T in near], "C0-", lw=1.2)
        hot = [i for i, T in enumerate(temps) if T >= 1.4]
        zoom.errorbar([temps[i] for i in hot], mean[hot], yerr=[mean[hot] - [fig_rows[i]["restricted_mean_lo"] for i in hot],
                                                             [fig_rows[i]["restricted_mean_hi"] for i in hot] - mean[hot]],
                      fmt="o", color="C1", capsize=3, ms=3)
        zoom.set_title(f"E[min(T, {steps})] near its minimum (linear axes)", fontsize=7)
        zoom.tick_params(labelsize=7)
        ax.set_xlabel("sampling temperature T (log scale)")
        ax.set_ylabel("steps (log scale)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7, frameon=False)

    name = figure(out, "s08_temperature.png", draw, size=(7, 5))
    curve = [(T, exact[T]["mean"]) for T in grid if exact[T]["mean"] is not None]
    best_T, best = min(curve, key=lambda c: c[1])
    falls = [m2 < m for (_, m), (_, m2) in itertools.pairwise(curve)]
    turn = [T for T, _ in curve].index(best_T)
    unimodal = 0 < turn < len(curve) - 1 and all(falls[:turn]) and not any(falls[turn:])
    if unimodal:  # the minimum between the grid's neighbours of best_T, by a bounded Brent search on the exact E[T]
        found = minimize_scalar(lambda T: exact_at(T, steps)["mean"], bounds=(curve[turn - 1][0], curve[turn + 1][0]),
                                method="bounded", options={"xatol": 1e-4})
        best_T, best = float(found.x), float(found.fun)
    shape = ("is monotone in the temperature: E[T] falls at every step of the grid" if all(falls) else
             f"is not monotone in the temperature: E[T] falls to its minimum {fmt(best, 5)} steps at T = {best_T:.3f} "
             f"(a bounded Brent search between the grid's neighbours), then rises again (to {fmt(curve[-1][1], 4)} at "
             f"T = {curve[-1][0]})" if unimodal else "is not monotone in the temperature: E[T] rises and falls more than once "
             f"on the grid (smallest, {fmt(best, 4)} steps, at T = {fmt(best_T, 3)})")
    first_falls = all(exact[b]["first_u"] < exact[a]["first_u"] for a, b in itertools.pairwise(grid))
    e_cold = exact[temps[0]]
    run_T, run_best = min(((T, m - exact[T]["first_u"]) for T, m in curve), key=lambda c: c[1])
    e_run, e_last, e_one = exact[run_T], exact[curve[-1][0]], exact[1.0]
    simulated = {T: interval(r["restricted_mean"], r["restricted_mean_lo"], r["restricted_mean_hi"], 4)
                 for T, r in zip(temps, fig_rows)}
    finding = (f"Exactly (the k = 8 chain), the expected time to reveal the waluigi {shape}; heating from T = {temps[0]} to "
               f"{curve[-1][0]} {'always' if first_falls else 'overall'} shortens the wait for the first U "
               f"(E[T_1] {fmt(e_cold['first_u'], 4)} → "
               f"{fmt(e_last['first_u'], 4)}, as P_T(U | F^8) rises from {fmt(e_cold['escape_luigi'], 3)} to "
               f"{fmt(e_last['escape_luigi'], 3)}), but the time from there to U^8, E[T - T_1], is smallest on the grid at "
               f"T = {fmt(run_T, 3)} "
               f"({fmt(run_best, 4)} steps) and grows beyond ({fmt(e_last['mean'] - e_last['first_u'], 4)} at T = "
               f"{curve[-1][0]}) as the flattened law breaks the run of U's it needs (P_T(F | U^8) "
               f"{fmt(e_run['break_run'], 3)} → {fmt(e_last['break_run'], 3)}), and each F printed inside a run is evidence "
               f"for the luigi (the revealed waluigi prints F only with eps = 0.01), so the stationary mean waluigi "
               f"amplitude falls from {fmt(e_one['waluigi_amplitude'], 4)} at T = 1 to {fmt(e_last['waluigi_amplitude'], 3)} "
               f"at T = {curve[-1][0]} and the stationary P(U^8) from {fmt(e_one['pi_revealed'], 3)} to "
               f"{fmt(e_last['pi_revealed'], 3)}; the simulated 95% intervals cover the "
               f"exact E[min(T, {steps})] at {covered} of the {tested} temperatures where a replicate was revealed and the "
               f"exact P(T <= {steps}) at "
               f"{covered_reached} of {len(temps)} (simulated E[min(T, {steps})] {simulated[temps[-2]]} at "
               f"T = {temps[-2]} and {simulated[temps[-1]]} at T = {temps[-1]}, exact "
               f"{fmt(exact[temps[-2]]['restricted_mean'], 4)} and {fmt(exact[temps[-1]]['restricted_mean'], 4)}).")
    silent = [T for T, r in zip(temps, fig_rows) if r["reached"] == 0]
    untested = "".join(f" At T = {T} no replicate was revealed (exact P(T <= {steps}) = {fmt(exact[T]['reached'], 4)}, "
                       f"{fmt(exact[T]['reached'] * reps, 2)} expected among {reps}), so the restricted mean's interval is "
                       f"[{steps}, {steps}], of zero width: no test of it (the exact value is "
                       f"{exact[T]['restricted_mean']:.6f}); the Wilson interval of the fraction still covers the exact P."
                       for T in silent)
    notes = (f"T is the first step with the window all U; T_1 the first with a U anywhere in it (the luigi page "
             f"left). Exact figures: subtraction-free hitting-time solves and the exact hitting curve on the 511 "
             f"page-states of each temperature's chain ({len(grid)} temperatures on a log grid from 0.25 to 4 for the "
             f"curves, and the {len(temps)} simulated ones). Entropy and free energy are simulated means over all "
             f"replicates and steps. Tempering acts on the mixture's next-token law (p_T ∝ mu^(1/T)); the premises' "
             f"amplitudes are still the Bayesian posterior of the window under their own, untempered laws." + untested)
    return Study(8, "Temperature", finding,
                 [(name, f"Softened toy (k = 8): exact E[T] to reveal the waluigi (window all U), split at the first U, "
                         f"and the exact E[min(T, {steps})] with the simulated 95% intervals ({reps} replicates x {steps} "
                         "steps) on it, against the sampling temperature.")], rows, notes)
