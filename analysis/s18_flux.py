"""Study 18 — The reactive flux from the luigi to the waluigi (transition-path theory in stationarity).

With softmax floors (the toy `waluigi_soft`) or a trained luigi (`trained_luigi`, whose add-k
trigram always keeps some probability of every token) the page-state chain has one closed class
holding both the luigi set (page-states where the luigi's amplitude exceeds a threshold) and the
waluigi set (the waluigi's above it), so the stationary chain goes back and forth between them and
transition-path theory (ecology.exact.paths; docs/exact.md, "Transition paths and reversibility")
answers: how many luigi-to-waluigi transitions per step (the reactive flux F), at what rate per
step spent in the luigi phase (k = F / sum pi q-), how long a transition takes, and through which
page-states it goes (the dominant pathways of the net flux). The rate is checked against the
simulator: the population amplitudes of its 32 raster replicates, after a burn-in, give the
transitions counted along simulated trajectories."""

from __future__ import annotations

import numpy as np
from common import Study, chain, figure, fmt, interval, scenario, simulate

from ecology.exact.paths import dominant_pathways, reactive_flux, reversibility
from ecology.numerics import above

SOFT_EPS = {"simulacra__luigi__eps": 0.05, "simulacra__waluigi__eps": 0.05}

# (case, scenario, overrides, threshold, simulation: (runs of 32 raster replicates, steps per run) in full and quick mode)
CASES = [
    ("toy, eps = 0.01", "waluigi_soft", {}, 0.5, None),
    ("toy, eps = 0.01, threshold 0.99", "waluigi_soft", {}, 0.99, None),
    ("toy, eps = 0.05", "waluigi_soft", SOFT_EPS, 0.5, ((32, 12_000), (2, 6000))),
    ("trained luigi", "trained_luigi", {}, 0.5, ((4, 16_000), (1, 6000))),  # the numpy engine (a trained premise)
    ("trained luigi, threshold 0.99", "trained_luigi", {}, 0.99, None),
]

BURN_IN = 2000  # steps discarded before counting (relaxation times here are at most about 200 steps)


def sets(compiled, pc, threshold):
    """Bool masks of the luigi and waluigi sets, and the waluigi's amplitude per page-state."""
    labels = compiled.mixture.labels
    amplitude = pc.population_amplitudes
    luigi, waluigi = amplitude[:, labels.index("luigi")], amplitude[:, labels.index("waluigi")]
    return above(luigi, threshold), above(waluigi, threshold), waluigi


def simulated_transitions(name, overrides, threshold, steps, seeds):
    """Luigi-to-waluigi transitions along the simulator's 32 raster replicates of each run (one run
    per seed), after ``BURN_IN``: per replicate, the completed transitions (entering the waluigi set
    with the luigi set the more recently visited) and the steps spent with the luigi set the more
    recently visited. Returns the flux per step and the rate, each with its delta-method 95%
    interval over the independent replicates, the mean duration (steps from the last luigi
    page-state to the first waluigi one) with its normal interval, as (value, lo, hi) triples, and
    the transitions counted."""
    completions, exposure, durations = [], [], []
    for seed in seeds:
        model, _ = simulate(scenario(name, run__steps=steps, run__replicates=32, run__seed=seed, **overrides))
        labels = model.compiled.mixture.labels
        amplitude = np.stack(model.trajectories)  # (steps + 1, replicates, labels)
        in_a = above(amplitude[:, :, labels.index("luigi")], threshold)
        in_b = above(amplitude[:, :, labels.index("waluigi")], threshold)
        time = np.arange(len(amplitude))[:, None] * np.ones(in_a.shape[1], dtype=np.int64)
        last = np.maximum.accumulate(np.where(in_a | in_b, time, -1), axis=0)
        last_a = np.maximum.accumulate(np.where(in_a, time, -1), axis=0)
        came_from_a = (last >= 0) & np.take_along_axis(in_a, np.maximum(last, 0), axis=0)
        arrivals = np.zeros(in_a.shape, dtype=bool)
        arrivals[1:] = in_b[1:] & came_from_a[:-1]
        arrivals[: BURN_IN + 1] = False
        completions.append(arrivals.sum(axis=0))
        exposure.append(came_from_a[BURN_IN:-1].sum(axis=0))  # the steps t -> t + 1 after the burn-in, A last at t
        durations.append((time - last_a)[arrivals])
    completions, exposure = np.concatenate(completions).astype(float), np.concatenate(exposure).astype(float)
    durations = np.concatenate(durations)
    n = len(completions)

    def ratio(numerator, denominator):
        value = numerator.sum() / denominator.sum()
        se = np.sqrt(np.sum((numerator - value * denominator) ** 2) / (n * (n - 1))) / denominator.mean()
        return value, value - 1.96 * se, value + 1.96 * se

    flux = ratio(completions, np.full(n, float(steps - BURN_IN)))
    rate = ratio(completions, exposure)
    spread = 1.96 * durations.std(ddof=1) / np.sqrt(len(durations)) if len(durations) > 1 else np.nan
    duration = (durations.mean(), durations.mean() - spread, durations.mean() + spread)
    return flux, rate, duration, int(completions.sum())


def checked(what, flux, simulated) -> str:
    """The simulated rate and flux of ``what`` beside the exact ones, saying whether each interval covers them."""
    (f, f_lo, f_hi), (k, k_lo, k_hi), _, count = simulated

    def verdict(lo, hi, exact):
        if lo <= exact <= hi:
            return f"covers the exact {fmt(exact, 4)}"
        return f"misses the exact {fmt(exact, 4)} by {abs(exact - (lo + hi) / 2) / ((hi - lo) / 3.92):.1f} standard errors"

    return (f"on {what} k = {interval(k, k_lo, k_hi, 3)} ({count:,} transitions; it {verdict(k_lo, k_hi, flux.rate)}) "
            f"and F = {interval(f, f_lo, f_hi, 3)} ({verdict(f_lo, f_hi, flux.total_flux)})")


def run(out, quick: bool) -> Study:
    rows, exact, panels = [], {}, {}
    for case, name, overrides, threshold, simulation in CASES:
        compiled, pc = chain(scenario(name, **overrides))
        luigi, waluigi, amplitude = sets(compiled, pc, threshold)
        forward = reactive_flux(pc.chain, luigi, waluigi)
        backward = reactive_flux(pc.chain, waluigi, luigi)
        paths = dominant_pathways(forward, 0.9, 3)
        [balance] = reversibility(pc.chain)
        exact[case], exact[case + " back"] = forward, backward
        row = {"case": case, "threshold": threshold,
               "luigi / waluigi / other page-states": f"{int(forward.A.sum())} / {int(forward.B.sum())} / "
                                                      f"{len(forward.states) - int(forward.A.sum() + forward.B.sum())}",
               "flux F per step (exact)": fmt(forward.total_flux, 5), "rate k luigi→waluigi (exact)": fmt(forward.rate, 5),
               "mean duration (exact, steps)": fmt(forward.mean_duration, 5),
               "rate k waluigi→luigi (exact)": fmt(backward.rate, 5),
               "dominant pathways (share)": "; ".join(f"{' → '.join(pc.label(i) for i in p.states)} ({p.share:.3f})"
                                                      for p in paths),
               "reversible": f"no ({balance.one_way_edges} one-way transitions)" if not balance.reversible else "yes",
               "conservation error": fmt(forward.conservation_error, 2)}
        if simulation is not None:
            runs, steps = simulation[quick]
            flux, rate, duration, count = simulated_transitions(name, overrides, threshold, steps, range(1, 1 + runs))
            row |= {"replicates simulated": f"{32 * runs} x {steps - BURN_IN:,} steps", "flux F (simulated)": interval(*flux, 4),
                    "rate k (simulated)": interval(*rate, 4),
                    "mean duration (simulated)": interval(*duration, 4), "transitions counted": count}
            exact[case + " sim"] = (flux, rate, duration, count)
        rows.append(row)
        if threshold == 0.99:
            panels[case] = (amplitude[forward.states], forward.forward_committor, forward.pi, forward.A, forward.B)

    def draw(fig, ax):
        fig.clear()
        axes = fig.subplots(1, len(panels), sharey=True)
        for axis, (case, (amp, committor, pi, a, b)) in zip(np.atleast_1d(axes), panels.items()):
            size = 8 + 60 * (np.log10(np.maximum(pi, 1e-30)) + 30) / 30
            middle = ~(a | b)
            for mask, colour, label in ((a, "tab:blue", "luigi set"), (middle, "tab:grey", "neither"),
                                        (b, "tab:red", "waluigi set")):
                axis.scatter(amp[mask], committor[mask], s=size[mask], c=colour, alpha=0.6, label=label, edgecolors="none")
            axis.set_title(case, fontsize=9)
            axis.set_xlabel("waluigi's amplitude on the page-state")
            axis.legend(fontsize=7, loc="lower right")
        np.atleast_1d(axes)[0].set_ylabel("forward committor q+ = P(waluigi set before luigi set)")

    name = figure(out, "s18_flux.png", draw, size=(9, 4.2))
    toy, trained = exact["toy, eps = 0.01"], exact["trained luigi"]
    soft_sim, trained_sim = exact["toy, eps = 0.05 sim"], exact["trained luigi sim"]
    toy_path = rows[0]["dominant pathways (share)"].split("; ")[0]
    amp, committor = panels["toy, eps = 0.01, threshold 0.99"][:2]
    low = amp < 0.1
    strict = exact["toy, eps = 0.01, threshold 0.99"]
    finding = (f"From the luigi set to the waluigi set (amplitude above 1/2) the stationary reactive flux is "
               f"{fmt(toy.total_flux, 3)} transitions per step on the toy (eps = 0.01) and {fmt(trained.total_flux, 3)} on "
               f"the trained luigi, at rates k = {fmt(toy.rate, 3)} and {fmt(trained.rate, 3)} per step spent in the luigi "
               f"phase; with two premises one token carries the amplitude across 1/2, so a transition takes "
               f"{fmt(toy.mean_duration, 3)} and {fmt(trained.mean_duration, 3)} step, and the single step {toy_path} "
               f"carries the largest share of the toy's flux. Counted along the simulator's trajectories (after a burn-in of "
               f"{BURN_IN:,} steps): {checked('the trained luigi', trained, trained_sim)}; "
               f"{checked('the toy at eps = 0.05', exact['toy, eps = 0.05'], soft_sim)}. With sets at 0.99 a transition on "
               f"the toy takes {fmt(strict.mean_duration, 3)} steps, and the waluigi's amplitude is no exact reaction "
               f"coordinate: page-states where it is below 0.1 have committors up to {fmt(float(committor[low].max()), 3)}.")
    notes = ("Exact: `ecology.exact.paths.reactive_flux` in the one closed class (the luigi and waluigi sets restricted "
             "to it); the luigi set is `population luigi above` the threshold, the waluigi set likewise, with the tie "
             "rule of every threshold (amplitude exactly at the threshold is in neither). The rate k is per step with "
             "the luigi set visited more recently than the waluigi set; the waluigi→luigi rate is the reverse "
             "reaction's (the flux F is the same both ways in stationarity). Simulated: the population amplitudes "
             "of the simulator's 32 raster replicates (`EcologyModel.trajectories`) in each of several runs (seeds 1, "
             "2, ...), counted after the burn-in; intervals are 95% delta-method intervals of the ratio over the "
             "independent replicates (duration: normal interval over the transitions). A luigi phase of the toy at "
             f"eps = 0.05 lasts {1 / exact['toy, eps = 0.05'].rate:,.0f} steps on average (1 / k) and a waluigi phase "
             f"{1 / exact['toy, eps = 0.05 back'].rate:,.0f}, so the replicates' counts vary widely: the toy needs "
             "about a thousand replicates for an interval of a few percent; a miss in k with F covered is a miss in the time "
             "spent in the luigi phase, the wide-spread denominator. The toy at its shipped eps = 0.01 is not "
             "simulated: it makes "
             f"{fmt(toy.total_flux, 2)} transitions per step, too few to count. Every chain here is irreversible "
             "(fifo deletion shifts the window, so no move is undone by one step): the backward committor is the "
             "forward committor of the time-reversed chain, not 1 - q+.")
    return Study(18, "Reactive flux from the luigi to the waluigi", finding,
                 [(name, "Forward committor q+ (the probability of reaching the waluigi set before the luigi set) of "
                         "each page-state of the closed class against the waluigi's amplitude on it, sets at amplitude "
                         "above 0.99; marker area grows with log stationary mass. Left: the toy (eps = 0.01); right: "
                         "the trained luigi.")], rows, notes)
