"""Study 3 — The toy and its exercises (Remark 6.B/6.C), answered by the exact chain.

Closed forms (SCIENCE.md §4), alpha = 0.9, p = 0.9: a page of n F's stays all-F with
probability s_n = (alpha + (1-alpha) p^(n+1)) / (alpha + (1-alpha) p^n) for n < k; for n >= k the
window holds k F's whatever n is, so the probability is the constant s_k.
"""

from __future__ import annotations

import numpy as np
from common import Study, chain, fmt, markdown_table, report, scenario

from ecology import plots


def stay(n, alpha=0.9, p=0.9):
    return (alpha + (1 - alpha) * p ** (n + 1)) / (alpha + (1 - alpha) * p**n)


def padded(pc) -> np.ndarray:
    """Whether each page-state's window still holds a pad (pads fill the start, are never generated)."""
    return np.array(["N" in label.split() for label in pc.labels()])


def support_fractions(pc, powers: int) -> list[dict]:
    """For j = 1 .. powers, the fraction of nonzero entries of T^j over all page-states and over the
    pad-free block (windows of k generated tokens): exact, from the boolean powers of T's support (the
    entries are nonnegative, so T^j[a, b] > 0 iff some path of j steps leads from a to b), with the
    count of positive entries of the floating-point power T^j beside it as a check."""
    support = (pc.chain.P.toarray() > 0).astype(np.int64)
    full = ~padded(pc)
    reach, out = np.eye(len(support), dtype=np.int64), []
    for j in range(1, powers + 1):
        reach = ((reach @ support) > 0).astype(np.int64)
        numeric = int((pc.chain.power(j).toarray() > 0).sum())
        out.append({"j": j, "nonzero": int(reach.sum()), "numeric": numeric, "all": float(reach.mean()),
                    "pad-free": float(reach[np.ix_(full, full)].mean()), "pad columns": int(reach[:, ~full].sum()),
                    "rows reaching every pad-free window": int(reach[:, full].all(axis=1).sum())})
    return out


def full_support(pc) -> np.ndarray:
    """Whether each page-state's next-token law gives every token positive probability (fifo: the
    successors of a window are its V continuations, so this is its number of successors = V)."""
    return np.diff(pc.chain.P.tocsr().indptr) == pc.compiled.n_tokens


def matrix_md(title, M, labels):
    head = "| from \\ to | " + " | ".join(f"`{x}`" for x in labels) + " |"
    rule = "|---" * (len(labels) + 1) + "|"
    body = ["| `" + a + "` | " + " | ".join(f"{v:.4f}" if v else "·" for v in row) + " |" for a, row in zip(labels, M)]
    return f"**{title}**\n\n" + "\n".join([head, rule, *body]) + "\n"


def run(out, quick: bool) -> Study:
    k = 6
    _, pc = chain(scenario("waluigi", context__length=k))
    labels = pc.labels()
    index = {x: i for i, x in enumerate(labels)}
    P = pc.chain.P
    rows, worst = [], 0.0
    for n in range(k + 3):
        m = min(n, k)
        page = " ".join(["N"] * (k - m) + ["F"] * m)
        nxt = " ".join(["N"] * max(k - m - 1, 0) + ["F"] * min(m + 1, k))
        computed = float(P[index[page], index[nxt]])
        worst = max(worst, abs(computed - stay(m)))
        rows.append({"F's printed n": n, "closed form s_min(n,k)": fmt(stay(m), 8), "chain T[page, next page]": fmt(computed, 8)})
    # k = 2: network, T and T^k; k = 1..8: how the chain grows
    _, small = chain(scenario("waluigi", context__length=2))
    small_labels = small.labels()
    plots.transition_network(small.chain.P, small_labels, "toy, k = 2", out / "s03_network_k2.png")
    notes = matrix_md("T for k = 2", small.chain.P.toarray(), small_labels) + "\n"
    small_k = small.chain.power(2).toarray()
    notes += matrix_md("T^k = T^2 for k = 2 (after k steps every original token is gone)", small_k, small_labels) + "\n"
    notes += (f"**The zeros of T^k.** The seed says every entry of T^k is nonzero; the table above has "
              f"{int((small_k == 0).sum())} zeros of {small_k.size}. "
              "Two kinds: (1) the columns of windows that still hold a pad (`N N`, `N F`, `N U`) are zero in T^k for "
              "every scenario, since pads are never generated and after k steps the window holds k generated tokens; "
              "(2) here the floors are zero: once a U is in the window the luigi's amplitude is 0 and the revealed "
              "waluigi prints U with probability 1, so from `N U`, `F U`, `U U` only `U U` is reachable and no window "
              "has an F after a U. In fewer than k steps fewer windows are reachable for any scenario: deletion "
              "shifts the window, so from w in j < k steps only the windows that begin with w's last k - j tokens "
              "are reachable. With fifo deletion T^k[w, w'] > 0 for every page-state w and every pad-free w' if and "
              "only if every page-state's next-token law has full support (the only path from w to w' in k steps "
              "prints w'; if some t has probability 0 after some w, no window beginning with t is reached from w "
              "in k steps).\n\n")
    sparsity, table_rows, worst_closed, iff = {}, [], 0.0, []
    for name in ("waluigi", "waluigi_soft"):
        _, pcs = chain(scenario(name, context__length=k))
        free = int((~padded(pcs)).sum())
        fractions, support = support_fractions(pcs, k + 1), full_support(pcs)
        sparsity[name] = (pcs, fractions, support)
        iff.append(bool(support.all()) == (fractions[k - 1]["rows reaching every pad-free window"] == pcs.chain.n_states))
        for f in fractions:
            j = f["j"]
            closed = (min(j, k) + 1 + k) / (k + 1) ** 2 if name == "waluigi" else 2.0 ** (min(j, k) - k)
            worst_closed = max(worst_closed, abs(f["pad-free"] - closed))
            table_rows.append({"scenario (k = 6)": name, "j": j,
                               "nonzero entries of T^j": f"{f['nonzero']} of {pcs.chain.n_states ** 2}",
                               "fraction, all page-states": fmt(f["all"], 4),
                               "pad-free page-states": free, "fraction, pad-free block": fmt(f["pad-free"], 4),
                               "closed form, pad-free block": fmt(closed, 4),
                               "nonzeros in padded columns": f["pad columns"],
                               "positive entries of the float T^j": f["numeric"]})
    toy_pcs, toy_frac, toy_support = sparsity["waluigi"]
    same = all(f["numeric"] == f["nonzero"] for _, fractions, _ in sparsity.values() for f in fractions)
    numeric_text = (", and equal the positive entries of the floating-point power T^j" if same else
                    "; the floating-point power T^j has a different count of positive entries (underflow), see the table")
    soft_pcs, soft_frac, _ = sparsity["waluigi_soft"]
    notes += (f"**Sparsity of T and T^j** (seed 4.B), j = 1 .. k + 1, k = {k}: the toy (zero floors; "
              f"{int(toy_support.sum())} of {toy_pcs.chain.n_states} page-states have a next-token law of full support) "
              f"and waluigi_soft (floors eps = 0.01: all {soft_pcs.chain.n_states} do). Counts are exact, from the "
              "boolean powers of T's support (entries are nonnegative: T^j[a, b] > 0 iff a path of j steps leads from a "
              f"to b){numeric_text}. Closed forms for the "
              "pad-free block: the toy's windows of k tokens are F^a U^(k-a) (k + 1 of them); from F^k, j steps reach "
              "j + 1 of them, from any other one a single one (j <= k), so the fraction is (j + 1 + k)/(k + 1)^2; "
              f"with full support j steps reach V^j of the V^k windows, 2^(j - k); the counts agree with them "
              f"{'exactly' if worst_closed == 0 else f'to {worst_closed:.1e}'}. "
              "Full support everywhere and T^k reaching every pad-free window from every page-state: "
              f"{'equivalent on both scenarios' if all(iff) else 'NOT equivalent here'}. "
              "T has at most V = 2 successors per page-state: "
              f"{toy_frac[0]['nonzero']} and {soft_frac[0]['nonzero']} nonzero entries of "
              f"{toy_pcs.chain.n_states ** 2} and {soft_pcs.chain.n_states ** 2}.\n\n" + markdown_table(table_rows) + "\n")
    growth = []
    for kk in range(1, 9 if not quick else 7):
        r = report(scenario("waluigi", context__length=kk))
        growth.append(f"k = {kk}: {r['n_states']} page-states, eigenvalue moduli "
                      + ", ".join(fmt(x, 6) for x in r["eigenvalues"][:3]) + f" (s_k = {fmt(stay(kk), 6)})")
    r = report(scenario("waluigi", context__length=k))
    pi = r["stationary"]
    notes += ("**As k grows** (one line per k):\n\n" + "\n".join(f"- {g}" for g in growth) + "\n\n"
              f"**Eigenvalue 1**: its left eigenvectors are the stationary distributions; here there is one, "
              f"all mass on `{pi[0]['state']}` (mass {fmt(pi[0]['mass'])}), so U^k is the unique stationary "
              "distribution, as the seed claims. **The second eigenvalue** is s_k, the self-loop of the all-F page: "
              "every other transient page-state is visited at most once (the rest of T is nilpotent, eigenvalue 0), "
              f"so the approach to U^k is governed by s_k^t and the all-F page is left after 1/(1-s_k) = "
              f"{fmt(1 / (1 - stay(k)), 5)} steps on average. Expected steps from the empty window to U^k: "
              f"{fmt(r['expected_absorption_time'], 6)}.\n")
    lam2 = r["eigenvalues"][1]
    toy_k, soft_k = toy_frac[k - 1], soft_frac[k - 1]
    finding = (f"For k = {k} the chain gives the closed-form stay probabilities to {worst:.1e} (n >= {k}: s_k = "
               f"{fmt(stay(k), 8)}); the second eigenvalue is s_k to {abs(lam2 - stay(k)):.1e} ({fmt(lam2, 8)}), and the unique "
               f"stationary distribution puts mass {fmt(pi[0]['mass'])} on U^{k}. The seed's 'every entry of T^k is "
               f"nonzero' fails on the toy: T^{k} has {toy_k['nonzero']} of {toy_pcs.chain.n_states ** 2} entries nonzero "
               f"({fmt(toy_k['all'], 3)}), and {fmt(toy_k['pad-free'], 3)} of the pad-free block (zero floors: after a U "
               f"only U follows); it holds, on the pad-free columns, exactly "
               f"when every next-token law has full support, as on waluigi_soft (eps = 0.01), where the pad-free block of "
               f"T^j has 2^(j - {k}) nonzero (T: {fmt(soft_frac[0]['pad-free'], 3)}) and T^{k} is positive on it "
               f"(fraction {fmt(soft_k['pad-free'], 3)}); windows holding a pad are never reached again (T^{k}: "
               f"{fmt(soft_k['all'], 3)} of all entries).")
    return Study(3, "The toy and its exercises (Remark 6.B/6.C)", finding,
                 [("s03_network_k2.png", "Transition network of the toy for k = 2: page-states with their edge "
                                         "probabilities (pads drawn as N).")], rows, notes)
