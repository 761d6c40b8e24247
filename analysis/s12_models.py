"""Study 12 — Trained models as premises (issue 12): the chain of a model that was trained on
data, built exactly and checked by simulation.

(a) babyGPT: a tiny transformer trained on the bit string 111101111011110 with context 3
    (scenarios/babygpt.toml); its 8-state chain, drawn, with the transitions of the contexts seen
    in training and of those never seen, beside the published figures of the original experiment.
(b) A character transformer trained on the pydoc text reduced to 3 symbols (_, v, c), k = 4
    (scenarios/pydoc_chars.toml), and a Kneser-Ney 5-gram on the same text in its place:
    expected hitting times of 'c c c c' and 'v v v v' against the
    sampling temperature from 1 down to 0.1 (exact, tempered in log space; the T = 0.1 figure
    checked against a 50-digit solve), simulation beside the exact P(reached by N), and the
    loop the greedy model (T = 0) falls into.
(c) A trained luigi (an add-k trigram on a text of F's with rare U's) beside a hand-written
    waluigi (scenarios/trained_luigi.toml), against the hand-written luigi of
    scenarios/waluigi.toml: the waluigi effect on a trained model, exact and simulated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import Study, chain, figure, fmt, markdown_table, proportion, scenario, simulate

PUBLISHED = {("1 0 1", "0 1 1"): 0.79, ("1 1 1", "1 1 1"): 0.45, ("1 1 1", "1 1 0"): 0.55, ("0 0 0", "0 0 1"): 0.73}
TRAINING = "111101111011110"
HIT = "E[steps to 'c c c c'] (exact)"
NGRAM = {"premises.transformer.model.kind": "ngram",  # the pydoc 5-gram on the same reduced text, in place of the transformer
         "premises.transformer.model.file": str(Path(__file__).resolve().parent.parent / "scenarios/models/pydoc3_ngram.npz")}


def babygpt(out, quick: bool) -> tuple[list[dict], str, str]:
    compiled, pc = chain(scenario("babygpt"))
    P, labels = pc.chain.P.toarray(), pc.labels()
    seen = {}
    for i in range(len(TRAINING) - 3):
        context = " ".join(TRAINING[i : i + 3])
        seen.setdefault(context, []).append(TRAINING[i + 3])
    rows = []
    for i, a in enumerate(labels):
        for j in np.flatnonzero(P[i] > 0):
            b = labels[j]
            nexts = seen.get(a, [])
            empirical = f"{nexts.count(b[-1])}/{len(nexts)}" if nexts else "never seen"
            rows.append({"transition": f"{a} -> {b}", "trained model (exact)": fmt(float(P[i, j]), 4),
                         "published": fmt(PUBLISHED.get((a, b)), 2) if (a, b) in PUBLISHED else "",
                         "in the training string": empirical})
    law = pc.chain.stationary_laws[0].pi
    model, _ = simulate(scenario("babygpt", run__steps=50 if quick else 2000, run__replicates=200 if quick else 4000))
    final = [" ".join(compiled.tokens[t] for t in w) for w in model.context.window]
    occupancy = {a: np.mean([f == a for f in final]) for a in labels}
    n = model.replicates

    def draw(fig, ax):
        angle = np.pi / 2 - 2 * np.pi * np.arange(len(labels)) / len(labels)
        xy = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        for i in range(len(labels)):
            for j in np.flatnonzero(P[i] > 0):
                if i == j:
                    ax.annotate(f"loop {P[i, j]:.2f}", xy[i] * 1.22, ha="center", fontsize=7)
                    continue
                ax.annotate("", xy[j] * 0.93, xy[i] * 0.93, arrowprops={"arrowstyle": "->", "lw": 0.5 + 2.5 * P[i, j],
                                                                         "color": str(0.75 - 0.75 * P[i, j])})
                mid = 0.6 * xy[i] * 0.93 + 0.4 * xy[j] * 0.93
                ax.text(*mid, f"{P[i, j]:.2f}", fontsize=6, ha="center", color="#1f4e99")
        ax.scatter(*xy.T, s=900, c="#eeeeee", edgecolors="#444444", zorder=3)
        for (x, y), a in zip(xy, labels):
            ax.text(x, y, a.replace(" ", ""), ha="center", va="center", fontsize=9, zorder=4)
        ax.set_xlim(-1.45, 1.45)
        ax.set_ylim(-1.35, 1.45)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title("babyGPT page-state chain (k = 3): P(abc -> bcd) = mu(d | abc); darker arrow = likelier", fontsize=9)

    name = figure(out, "s12_babygpt.png", draw, size=(6.5, 6))
    top = max(range(len(labels)), key=lambda i: law[i])
    note = (f"Stationary law (exact): {', '.join(f'{a} {law[i]:.4f}' for i, a in enumerate(labels))}. "
            f"Simulated share of {n} replicates in each page-state at step {model.generated}: "
            f"{', '.join(f'{a} {proportion(occupancy[a], n)}' for a in labels)}.")
    return rows, name, note + f" Most likely page-state: {labels[top]}."


def hitting_times(pc, states: list[str]) -> dict[str, float]:
    """``E_x[steps to reach the page-state]`` from the initial page-state, for each state label."""
    labels = pc.labels()
    out = {}
    for state in states:
        mask = np.array([label == state for label in labels])
        out[state] = float(pc.chain.expected_hitting_times(mask)[pc.initial])
    return out


def high_precision_hitting_time(pc, state: str) -> float:
    """``E_x[time to hit state]`` from a 50-digit LU solve of ``(I - Q) h = 1`` (mpmath), with the
    diagonal of ``I - Q`` written as each state's probability of leaving itself,
    ``sum_{j != i} P[i, j]``, rather than ``1 - P[i, i]``: at T = 0.1 leaving some states has
    probability far below 1e-16, which ``1 - P[i, i]`` in float64 entries cannot hold."""
    import mpmath

    mpmath.mp.dps = 50
    labels = pc.labels()
    target = labels.index(state)
    keep = [i for i in range(len(labels)) if i != target]
    P = pc.chain.P.toarray()
    A = mpmath.matrix(len(keep), len(keep))
    for a, i in enumerate(keep):
        A[a, a] = mpmath.fsum(mpmath.mpf(float(P[i, j])) for j in range(len(labels)) if j != i)
        for b, j in enumerate(keep):
            if a != b:
                A[a, b] = -mpmath.mpf(float(P[i, j]))
    h = mpmath.lu_solve(A, mpmath.matrix([1] * len(keep)))
    return float(h[keep.index(pc.initial)])


def pydoc(out, quick: bool) -> tuple[list[dict], str, str]:
    temps = [1.0, 0.1] if quick else [1.0, 0.7, 0.5, 0.3, 0.2, 0.15, 0.1]
    steps, reps = (60, 200) if quick else (300, 10000)
    targets = ["c c c c", "v v v v"]
    rows, curves, ngram_curve = [], {t: [] for t in targets}, []
    for T in temps:
        s = scenario("pydoc_chars", sampling__temperature=T, run__steps=steps, run__replicates=reps)
        compiled, pc = chain(s)
        times = hitting_times(pc, targets)
        for t in targets:
            curves[t].append(times[t])
        mask = pc.holds(compiled.criteria[0])
        exact_by = float(pc.chain.hitting_curve(pc.initial, mask, steps)[-1])
        model, _ = simulate(s)
        simulated = float((model.reached_at[0] >= 0).mean())
        sigma = np.sqrt(exact_by * (1 - exact_by) / reps)
        ngram = scenario("pydoc_chars", sampling__temperature=T, **NGRAM)
        _, npc = chain(ngram)
        ngram_times = hitting_times(npc, targets)
        ngram_curve.append(ngram_times["c c c c"])
        rows.append({"T": T, HIT: fmt(times["c c c c"], 5),
                     "5-gram: E[steps to 'c c c c'] (exact)": fmt(ngram_times["c c c c"], 5),
                     "E[steps to 'v v v v'] (exact)": fmt(times["v v v v"], 5),
                     f"P('c c c c' by {steps}), exact": fmt(exact_by, 4),
                     f"simulated, {reps} replicates (95% interval)": proportion(simulated, reps),
                     "(simulated - exact) / sigma": fmt(float((simulated - exact_by) / sigma), 2) if sigma > 0 else "—"})
    cold = scenario("pydoc_chars", sampling__temperature=temps[-1])
    _, pc_cold = chain(cold)
    check = {t: high_precision_hitting_time(pc_cold, t) for t in targets}

    def draw(fig, ax):
        for t, marker in zip(targets, "os"):
            ax.semilogy(temps, curves[t], marker=marker, label=f"transformer: E[steps to '{t}'] from '_ c v c' (exact)")
        ax.semilogy(temps, ngram_curve, "k--", marker="^", label="5-gram (Kneser-Ney): E[steps to 'c c c c'] (exact)")
        ax.set_xlabel("sampling temperature T")
        ax.set_ylabel("expected hitting time (steps, log scale)")
        ax.invert_xaxis()
        ax.legend(fontsize=8)

    name = figure(out, "s12_pydoc_temperature.png", draw)
    greedy = scenario("pydoc_chars", sampling__temperature=0.0)
    _, gpc = chain(greedy)
    loops = [" -> ".join(gpc.label(i) for i in members) for members in gpc.chain.recurrent_classes]
    _, pc1 = chain(scenario("pydoc_chars"))
    meta = pc1.chain.metastable(0.05)
    likely = [pc1.label(m["likely_state"]) for m in meta]
    agree = "; ".join(f"'{t}': {curves[t][-1]:.10g} steps, 50-digit solve {check[t]:.10g} (relative difference "
                      f"{abs(check[t] - curves[t][-1]) / check[t]:.1e})" for t in targets)
    note = (f"Every temperature is simulated with the scenario's seed (common random numbers), so the deviations "
            f"from the exact figure are correlated down the column; sigma = sqrt(p (1 - p) / R) with the exact p. "
            f"At T = {temps[-1]} the exact hitting times (float64, the tool's subtraction-free solver) and a 50-digit "
            f"LU solve of (I - Q) h = 1 on the same transition matrix (diagonal: each state's probability of leaving "
            f"itself): {agree}. Greedy decoding (T = 0) falls into the closed "
            f"class{'es' if len(loops) > 1 else ''} {'; '.join(loops)}. At T = 1 the chain has one closed class of "
            f"{pc1.chain.n_states} states; ignoring transitions below 0.05 leaves {len(meta)} metastable "
            f"class{'es' if len(meta) != 1 else ''} (most likely states: {', '.join(likely)}).")
    return rows, name, note


def luigi(out, quick: bool) -> tuple[list[dict], str]:
    steps, reps = (100, 200) if quick else (400, 4000)
    rows, curves = [], {}
    for name, title in [("trained_luigi", "trained luigi (add-k trigram) + waluigi"),
                        ("waluigi", "hand-written luigi (prints F) + waluigi")]:
        s = scenario(name, run__steps=steps, run__replicates=reps)
        compiled, pc = chain(s)
        mask = pc.holds(compiled.criteria[0])
        exact_curve = pc.chain.hitting_curve(pc.initial, mask, steps)
        expected = float(pc.chain.expected_hitting_times(mask)[pc.initial])
        model, _ = simulate(s)
        at = model.reached_at[0]
        simulated = np.array([(at >= 0) & (at <= t) for t in range(steps + 1)]).mean(axis=1)
        curves[title] = (exact_curve, simulated)
        waluigi = compiled.mixture.labels.index("waluigi")
        rows.append({"mixture": title, "E[steps to U^8] (exact)": fmt(expected, 5),
                     f"P(U^8 by {steps}), exact": fmt(float(exact_curve[-1]), 4),
                     f"simulated, {reps} replicates (95% interval)": proportion(float(simulated[-1]), reps),
                     "mean waluigi amplitude at the end (simulated)": fmt(float(model.population[:, waluigi].mean()), 4)})

    def draw(fig, ax):
        for (title, (exact_curve, simulated)), colour in zip(curves.items(), ["#d62728", "#1f77b4"]):
            ax.plot(exact_curve, color=colour, lw=1.5, label=f"{title}: exact")
            ax.plot(simulated, color=colour, lw=1, ls="--", label=f"{title}: simulated")
        ax.set_xlabel("step t")
        ax.set_ylabel("P(window U^8 reached by t)")
        ax.legend(fontsize=7)

    return rows, figure(out, "s12_trained_luigi.png", draw)


def run(out, quick: bool) -> Study:
    bg_rows, bg_fig, bg_note = babygpt(out, quick)
    pd_rows, pd_fig, pd_note = pydoc(out, quick)
    lu_rows, lu_fig = luigi(out, quick)
    first, last = pd_rows[0]["T"], pd_rows[-1]["T"]
    p = {r["transition"]: r["trained model (exact)"] for r in bg_rows}
    finding = (f"A trained model is a premise like any other: babyGPT's exact chain has P(101 -> 011) = {p['1 0 1 -> 0 1 1']}, "
               f"P(111 -> 111) = {p['1 1 1 -> 1 1 1']} and, for the never-seen context 000, P(000 -> 001) = "
               f"{p['0 0 0 -> 0 0 1']} (published: 0.79, 0.45, 0.73); cooling the pydoc character transformer from "
               f"T = {first} to {last} lengthens the exact expected time to 'c c c c' from "
               f"{pd_rows[0][HIT]} to {pd_rows[-1][HIT]} steps; and a trained luigi that "
               f"prints U now and then reveals the waluigi sooner than a hand-written one (exact E[T] "
               f"{lu_rows[0]['E[steps to U^8] (exact)']} vs {lu_rows[1]['E[steps to U^8] (exact)']} steps).")
    notes = "\n\n".join([
        "**(a) babyGPT.** " + bg_note + " Ours differ from the published figures because this model also learns the "
        "law after every shorter prefix (with a start token) and trains 200 full-batch steps instead of 50 on the "
        "3-token contexts only, from another initialisation (docs/models.md): it is closer to the training string's "
        "own conditionals (111 -> 1 in 3 of 6, 101 -> 1 in 2 of 2) and extrapolates the unseen 000 towards the "
        "marginal P(1) = 0.8.",
        "**(b) pydoc characters.**\n\n" + markdown_table(pd_rows) + "\n" + pd_note,
        "**(c) A trained luigi beside a hand-written waluigi.**\n\n" + markdown_table(lu_rows),
    ])
    return Study(12, "Trained models as premises", finding,
                 [(bg_fig, "babyGPT (scenarios/babygpt.toml): the exact 8-state chain of the trained transformer."),
                  (pd_fig, "Character transformer on pydoc text (3 symbols, k = 4): exact expected hitting times against "
                           "the sampling temperature."),
                  (lu_fig, "Reaching U^8 with a trained luigi (n-gram) and with a hand-written luigi, each beside the "
                           "same waluigi: exact curves and simulation.")],
                 bg_rows, notes)
