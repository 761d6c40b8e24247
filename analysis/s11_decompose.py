"""Study 11 — The preferred-decomposition problem as a tool (Remarks 9 and 10): `ecology decompose`
fits mixtures of K premises to a static model by EM and compares decompositions of the same mu.

Alice's coins (scenarios/alice_coins.toml: a fair coin, prior 1/2, and coins of bias 0.8 and 0.2,
prior 1/4 each): with exact data (all 2^7 storylines of k + 1 = 7 tokens weighted by their
probability) EM with i.i.d. premises recovers the three coins; with sampled storylines it
recovers them within sampling error (several independent sample sets). The table compares
K = 1..5 with the input file and the two trivial decompositions of Remark 10. Then
scenarios/waluigi_soft.toml with constant and waluigi premises: does EM find a luigi and a waluigi?
And the seed's hard toy (scenarios/waluigi.toml), where a luigi is a waluigi that never reveals.
Last, a trained model (scenarios/babygpt.toml, a transformer premise) decomposed into Markov premises.
"""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, markdown_table, scenario

from ecology.core.compile import compile_scenario
from ecology.decompose import Request, decompose, summary
from ecology.decompose.compare import amplitude_story
from ecology.decompose.data import Storylines, exact_storylines, fitting_scenario, sample_storylines
from ecology.decompose.fit import fit_mixture
from ecology.plots import amplitude_stories

TRUE_HEADS = np.array([0.2, 0.5, 0.8])
TRUE_PRIOR = np.array([0.25, 0.5, 0.25])


def coins(fit) -> tuple[np.ndarray, np.ndarray]:
    """(biases, priors) of a fitted i.i.d. mixture, sorted by bias (the permutation is free)."""
    heads = np.array([c.emit[0, 0] for c in fit.components])
    order = np.argsort(heads)
    return heads[order], fit.prior[order]


def exact_winners(loglik: dict[int, float], params: dict[int, int], n: np.ndarray) -> np.ndarray:
    """The K of smallest BIC_K(n) = -2 n l_K + d_K ln n at each notional size n, l_K the exact expected
    log-likelihood per storyline of the fit with K premises (first of ties: the fewest premises)."""
    Ks = sorted(loglik)
    bic = np.array([-2.0 * n * loglik[K] + params[K] * np.log(n) for K in Ks])
    return np.array(Ks)[np.argmin(bic, axis=0)]


def first_rows(data: Storylines, n: int) -> Storylines:
    """The first ``n`` sampled storylines, as distinct storylines weighted by their counts (the same
    log-likelihood, one row per distinct storyline)."""
    rows, counts = np.unique(data.tokens[:n], axis=0, return_counts=True)
    return Storylines(rows, counts.astype(float), False)


def sampled_bic(scenario, sizes: list[int], Ks: list[int], sets: int, restarts: int) -> np.ndarray:
    """(sets, len(sizes), len(Ks)) BIC_K = -2 log L_K + d_K ln n of EM fits (best of ``restarts``) to the
    first n storylines of ``sets`` independent samples of max(sizes) storylines each (nested: n grows as
    data arrive)."""
    tokens, k = list(scenario.vocabulary.tokens), scenario.context.length
    out = np.zeros((sets, len(sizes), len(Ks)))
    for i in range(sets):
        data = sample_storylines(scenario, max(sizes), 500 + i)
        for a, n in enumerate(sizes):
            for b, K in enumerate(Ks):
                fit = fit_mixture(["iid"], K, first_rows(data, n), tokens, k, i, restarts)
                out[i, a, b] = -2.0 * fit.log_likelihood + fit.n_params * np.log(n)
    return out


def settles_at(winners: np.ndarray, sizes: list[int], K: int) -> int | None:
    """The smallest size from which ``K`` wins at every larger size of the grid (None if it does not win at the last)."""
    at = None
    for n, w in zip(sizes[::-1], winners[::-1]):
        if w != K:
            break
        at = n
    return at


def component_summary(component: dict) -> str:
    sim = component["simulacrum"]
    if component["family"] == "constant":
        return f"{sim['token']}, eps = {fmt(sim['eps'], 4)}"
    return f"p = {fmt(sim['p'], 4)}, eps = {fmt(sim['eps'], 4)}"


def row_of(row: dict) -> dict:
    held = fmt(row["heldout_loglik"], 7) + (f" ± {fmt(1.96 * row['heldout_se'], 2)}" if row["heldout_se"] else "")
    return {"decomposition": row["decomposition"], "premises": row["premises"], "E[KL] (nats)": fmt(row["kl_mean"], 3),
            "log-lik. per storyline": held, "params": row["params"], "BIC (n = 2000)": fmt(row["bic"], 6),
            "defect mean": fmt(row["defect_mean"], 3), "defect max": fmt(row["defect_max"], 3),
            "amplitude entropy": fmt(row["amplitude_entropy"], 3)}


def run(out, quick: bool) -> Study:
    restarts = 2 if quick else 5
    alice = scenario("alice_coins")
    tokens, k = list(alice.vocabulary.tokens), alice.context.length

    # 1. recovery, exact data and sampled data
    exact = exact_storylines(compile_scenario(fitting_scenario(alice)))
    heads, prior = coins(fit_mixture(["iid"], 3, exact, tokens, k, 0, restarts))
    exact_error = max(np.abs(heads - TRUE_HEADS).max(), np.abs(prior - TRUE_PRIOR).max())
    sets = 2 if quick else 6
    errors_heads, errors_prior = [], []
    for i in range(sets):
        data = sample_storylines(alice, 2000, 100 + i)
        h, p = coins(fit_mixture(["iid"], 3, data, tokens, k, i, restarts))
        errors_heads.append(np.abs(h - TRUE_HEADS).max())
        errors_prior.append(np.abs(p - TRUE_PRIOR).max())

    # 2. the comparison table, K = 1..5
    result = decompose(alice, Request(["iid"], [1, 2, 3, 4, 5], storylines=2000, restarts=restarts, seed=4))
    report = summary(result)
    rows = {row["decomposition"]: row for row in report["table"]}
    bics = {K: rows[f"fit K={K}"]["bic"] for K in range(1, 6)}
    best_k = min(bics, key=bics.get)
    trivial_kl = max(abs(rows[n]["kl_mean"]) for n in ("single premise mu", "one premise per storyline"))

    # 2b. the BIC winner against the number of storylines n: exact expected log-likelihoods at a notional n,
    # and EM fits to the first n of several independent samples (the spread of the crossover)
    loglik = {K: rows[f"fit K={K}"]["train_loglik"] for K in range(1, 6)}
    params = {K: rows[f"fit K={K}"]["params"] for K in range(1, 6)}
    bic_gap = max(abs(-2.0 * 2000 * loglik[K] + params[K] * np.log(2000) - bics[K]) for K in loglik)  # the table's BIC
    notional = np.arange(2, 100_001)
    winners = exact_winners(loglik, params, notional)
    changes = [(int(notional[i]), int(winners[i])) for i in np.flatnonzero(np.diff(winners)) + 1]
    exact_from = {K: n for n, K in changes}  # K wins from this n on (up to 100,000)
    curve_sets = 2 if quick else 6
    sizes = [200, 1000, 2000] if quick else [100, 200, 300, 400, 500, 600, 800, 1000, 1300, 1600, 2000, 3000, 4000]
    curve_Ks = [1, 2, 3] if quick else [1, 2, 3, 4]
    sampled = sampled_bic(alice, sizes, curve_Ks, curve_sets, 3)
    sampled_winners = np.array(curve_Ks)[np.argmin(sampled, axis=2)]  # (sets, sizes)
    settle = [settles_at(w, sizes, 3) for w in sampled_winners]
    settled = sorted(n for n in settle if n is not None)
    three = curve_Ks.index(3)
    bic_rows = [{"storylines n": n, "exact-data winner": int(exact_winners(loglik, params, np.array([n]))[0]),
                 "exact BIC(2) - BIC(3)": fmt(-2.0 * n * (loglik[2] - loglik[3]) + (params[2] - params[3]) * np.log(n), 4),
                 f"sampled BIC(2) - BIC(3): median [min, max] over {curve_sets} sets":
                     f"{fmt(float(np.median(sampled[:, a, 1] - sampled[:, a, three])), 3)} "
                     f"[{fmt(float((sampled[:, a, 1] - sampled[:, a, three]).min()), 3)}, "
                     f"{fmt(float((sampled[:, a, 1] - sampled[:, a, three]).max()), 3)}]",
                 "sampled winners (K: sets)": ", ".join(f"{K}: {int(np.sum(sampled_winners[:, a] == K))}" for K in curve_Ks
                                                       if np.any(sampled_winners[:, a] == K))}
                for a, n in enumerate(sizes)]

    def draw_bic(fig, ax):
        n = np.geomspace(sizes[0], sizes[-1], 200)
        for K, style in ((2, "-"), (4, "--")):
            ax.plot(n, -2.0 * n * (loglik[K] - loglik[3]) + (params[K] - params[3]) * np.log(n), "k" + style, lw=1.4,
                    label=f"BIC({K}) - BIC(3), exact expected log-likelihood")
        for i in range(curve_sets):
            ax.plot(sizes, sampled[i, :, 1] - sampled[i, :, three], color="C0", marker="o", ms=3, lw=0.8, alpha=0.7,
                    label=f"BIC(2) - BIC(3), first n of one sample ({curve_sets} samples)" if i == 0 else None)
        ax.axhline(0, color="0.6", lw=0.8)
        if 3 in exact_from:
            ax.axvline(exact_from[3], color="C3", lw=0.8, ls=":", label=f"K = 3 wins from n = {exact_from[3]} (exact)")
        ax.set_xscale("log")
        ax.set_xlabel("storylines n (of k + 1 = 7 tokens)")
        ax.set_ylabel("BIC difference (> 0: K = 3 preferred)")
        ax.legend(fontsize=7)

    bic_name = figure(out, "s11_bic_n.png", draw_bic)

    stories = [(d["name"], *amplitude_story(d["compiled"], result["story_windows"]))
               for d in result["decompositions"] if d["kind"] in ("input", "single", "storylines")]
    stories_name = "s11_stories.png"
    amplitude_stories(stories, "alice_coins", out / stories_name)

    def draw(fig, ax):
        K = list(range(1, 6))
        ax.plot(K, [rows[f"fit K={j}"]["defect_mean"] for j in K], marker="o", label="defect mean")
        ax.plot(K, [rows[f"fit K={j}"]["defect_max"] for j in K], marker="s", label="defect max")
        ax.set_xlabel("K (i.i.d. premises fitted)")
        ax.set_xticks(K)
        ax.set_ylabel("martingale defect under fifo (TV per step)")
        twin = ax.twinx()
        twin.plot(K, [bics[j] for j in K], "k--", marker="^", label="BIC")
        twin.set_ylabel("BIC (n = 2000)")
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="upper right", fontsize=8)

    columns_name = figure(out, "s11_columns.png", draw)

    # cross-check: the held-out log-likelihood from sampled storylines against the exact expectation
    sampled = summary(decompose(alice, Request(["iid"], [3], storylines=2000, restarts=restarts, seed=4,
                                               data="samples")))
    held = next(row for row in sampled["table"] if row["decomposition"] == "input")

    # 3. waluigi: constant and waluigi premises
    wal = scenario("waluigi_soft")
    wresult = decompose(wal, Request(["constant", "waluigi"], [1, 2, 3], storylines=2000, restarts=restarts))
    wreport = summary(wresult)
    two = wreport["fits"]["2"]["components"]
    luigi = next((c for c in two if c["family"] == "constant"), None)
    waluigi = next((c for c in two if c["family"] == "waluigi"), None)
    wrows = {row["decomposition"]: row for row in wreport["table"]}
    wbics = {K: wrows[f"fit K={K}"]["bic"] for K in (1, 2, 3)}
    found = luigi is not None and waluigi is not None
    if found:
        w = waluigi["simulacrum"]
        wal_text = (f"at K = 2 EM finds a luigi (constant {luigi['simulacrum']['token']}, eps = "
                    f"{fmt(luigi['simulacrum']['eps'], 4)}, prior {fmt(luigi['prior'], 4)}) and a waluigi (mask {w['mask']}, "
                    f"reveal {w['reveal']}, p = {fmt(w['p'], 4)}, eps = {fmt(w['eps'], 4)}, prior {fmt(waluigi['prior'], 4)}); "
                    "the file has luigi eps 0.01, prior 0.9 and waluigi p 0.9, eps 0.01, prior 0.1")
    else:
        wal_text = "at K = 2 EM does not find a constant plus a waluigi: " + ", ".join(c["family"] for c in two)
    # 4. the seed's hard toy: luigi prints only F, so a luigi is a waluigi that never reveals (p = 1)
    hard = summary(decompose(scenario("waluigi"), Request(["constant", "waluigi"], [2], storylines=2000,
                                                          restarts=restarts)))
    hard_two = hard["fits"]["2"]["components"]
    hard_kl = next(row["kl_mean"] for row in hard["table"] if row["decomposition"] == "fit K=2")
    hard_text = ", ".join(f"{c['family']} ({component_summary(c)}, prior {fmt(c['prior'], 4)})" for c in hard_two)

    # 5. a trained model: babyGPT (scenarios/babygpt.toml, one transformer premise) decomposed
    gpt = summary(decompose(scenario("babygpt"), Request(["markov1", "markov2"], [1, 2], storylines=2000,
                                                         restarts=restarts)))
    grows = {row["decomposition"]: row for row in gpt["table"]}
    gpt_text = (f"Decomposing the trained babyGPT transformer (scenarios/babygpt.toml, {grows['input']['params']:,} weights) "
                f"into Markov premises: one order-2 premise has E[KL] {fmt(grows['fit K=1']['kl_mean'], 3)} nats from mu, two "
                f"{fmt(grows['fit K=2']['kl_mean'], 3)}; Remark 10's single premise mu is exact with "
                f"{grows['single premise mu']['params']} parameters (BIC {fmt(grows['single premise mu']['bic'], 6)} against "
                f"{fmt(grows['input']['bic'], 6)} for the transformer as given): on windows of 3 bits the trained network is "
                f"a 15-entry table, and one premise per storyline ({grows['one premise per storyline']['premises']} premises) "
                f"has the same law with martingale defect max {fmt(grows['one premise per storyline']['defect_max'], 3)}: "
                "the law does not determine the premises.")

    regimes = [f"K = {int(winners[0])} wins from n = 2"] + [f"K = {K} from n = {n}" for n, K in changes]
    unsettled = sum(n is None for n in settle)
    spread = (f"from the first n of {curve_sets} independent samples K = 3 wins at every larger grid size from n = "
              f"{fmt(float(np.median(settled)), 4)} (median; range {settled[0]} to {settled[-1]})" if settled
              else f"from the first n of {curve_sets} independent samples K = 3 never wins at every size up to {sizes[-1]}")
    if settled and unsettled:
        spread += f", and not by n = {sizes[-1]} in {unsettled} of them"
    bic_text = (f"with the exact expected log-likelihoods {', '.join(regimes)} on (n up to 100,000; BIC_K(n) = "
                f"-2 n l_K + d_K ln n), and {spread}")
    finding = (
        f"With exact data EM recovers Alice's three coins (biases 0.2, 0.5, 0.8; priors 1/4, 1/2, 1/4) to "
        f"{exact_error:.1e}; from 2000 sampled storylines, over {sets} independent sample sets the largest bias error "
        f"was {max(errors_heads):.3f} and the largest prior error {max(errors_prior):.3f}. "
        f"The single-premise and per-storyline decompositions have the same token law as the three coins "
        f"(|E[KL]| at most {trivial_kl:.0e}, rounding; "
        f"log-likelihood per storyline {fmt(rows['input']['heldout_loglik'], 7)} for all three, exact; from "
        f"{sampled['data']['held_out']} held-out sampled storylines {fmt(held['heldout_loglik'], 4)} ± "
        f"{fmt(1.96 * held['heldout_se'], 2)}, 95%) but different amplitude "
        f"stories (mean amplitude entropy {fmt(rows['single premise mu']['amplitude_entropy'], 3)}, "
        f"{fmt(rows['input']['amplitude_entropy'], 3)} and "
        f"{fmt(rows['one premise per storyline']['amplitude_entropy'], 3)} nats; "
        f"martingale defect max {fmt(rows['single premise mu']['defect_max'], 2)}, {fmt(rows['input']['defect_max'], 3)} "
        f"and {fmt(rows['one premise per storyline']['defect_max'], 3)}). BIC at the notional n = 2000 is smallest at "
        f"K = {best_k}, but the winner depends on n: {bic_text}; the mean "
        f"defect for K = 1..5 is {', '.join(fmt(rows[f'fit K={K}']['defect_mean'], 3) for K in range(1, 6))}. "
        f"On the soft waluigi, {wal_text}; BIC for K = 1, 2, 3: "
        f"{', '.join(fmt(wbics[K], 6) for K in (1, 2, 3))}. On the seed's hard toy (scenarios/waluigi.toml, luigi "
        f"prints only F) EM's K = 2 is {hard_text}, with E[KL] {fmt(hard_kl, 2)} from mu: a waluigi with p = 1 and "
        f"eps = 0 prints exactly luigi's law, and EM moves toward that boundary instead of choosing the constant. "
        + gpt_text)
    table = [row_of(rows[name]) for name in rows]
    table += [row_of({**row, "decomposition": f"waluigi_soft: {row['decomposition']}"}) for row in wreport["table"]]
    table += [row_of({**row, "decomposition": f"babygpt: {row['decomposition']}"}) for row in gpt["table"]]
    notes = ("Log-likelihood per storyline is the exact expected log-likelihood of a storyline of k + 1 = 7 tokens "
             "(exact data, no sampling error); BIC uses the notional sample size n = 2000 (the table's BIC is "
             f"-2 n l_K + d_K ln n at n = 2000 {'exactly' if bic_gap == 0 else f'to {bic_gap:.1e}'}). E[KL], the defect and the "
             "amplitude entropy are averaged under the exact chain's law over steps 0..23 (waluigi_soft: 0..31). "
             "The defect of a window is the total variation ½ Σ_s |E[α_s(w')] − α_s(w)| of the expected one-step "
             "amplitude change under fifo deletion.\n\n"
             "**The BIC winner against n** (alice_coins, i.i.d. premises). Exact: BIC_K(n) = -2 n l_K + d_K ln n with "
             "l_K the exact expected log-likelihood per storyline of the K-premise fit above (best of the EM restarts), at "
             f"every integer n from 2 to 100,000: {', '.join(regimes)}. Sampled: {curve_sets} independent samples of "
             f"{sizes[-1]} storylines (seeds 500 on); for each n of the grid, EM (best of 3 restarts) for K = "
             f"{', '.join(map(str, curve_Ks))} on the first n storylines of a sample, BIC = -2 log L + d ln n; a sample's "
             "crossover is the smallest grid size from which K = 3 wins at every larger grid size. The sampled "
             "difference scatters around the exact curve by the sampling error of the log-likelihood ratio, which "
             "grows like sqrt(n) while the exact difference grows like n, and it tends to lie above it: each fit is "
             "scored on its own training storylines, which favours the larger K (by about d_3 - d_2 = 2 in -2 log L, "
             "asymptotically), so the sampled crossovers come earlier than the exact one.\n\n" + markdown_table(bic_rows))
    return Study(11, "Decompositions compared: `ecology decompose` (Remarks 9 and 10)", finding,
                 [(stories_name, "The same 500 sampled storylines of alice_coins told by three decompositions with the "
                                 "same token law: the three coins, the single premise mu (amplitude 1 throughout) and one "
                                 "premise per storyline (the 5 largest shown, the others summed)."),
                  (columns_name, "Fitted i.i.d. decompositions of alice_coins, K = 1..5: martingale defect under fifo "
                                 "(mean and max over visited windows) and BIC."),
                  (bic_name, "BIC of the 2- and 4-premise i.i.d. fits of alice_coins minus that of the 3-premise fit, "
                             "against the number of storylines n: exact (expected log-likelihood at a notional n, black) "
                             f"and from the first n storylines of {curve_sets} independent samples (blue); above zero "
                             "K = 3 is preferred.")],
                 table, notes)
