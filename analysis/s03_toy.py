"""Study 3 — The toy and its exercises (Remark 6.B/6.C), answered by the exact chain.

Closed forms (SCIENCE.md §4), alpha = 0.9, p = 0.9: a page of n F's stays all-F with
probability s_n = (alpha + (1-alpha) p^(n+1)) / (alpha + (1-alpha) p^n) for n < k; for n >= k the
window holds k F's whatever n is, so the probability is the constant s_k.
"""

from __future__ import annotations

from common import Study, chain, fmt, report, scenario

from ecology import plots


def stay(n, alpha=0.9, p=0.9):
    return (alpha + (1 - alpha) * p ** (n + 1)) / (alpha + (1 - alpha) * p**n)


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
    notes += matrix_md("T^k = T^2 for k = 2 (after k steps every original token is gone)",
                       small.chain.power(2).toarray(), small_labels) + "\n"
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
    finding = (f"For k = {k} the chain gives the closed-form stay probabilities to {worst:.1e} (n >= {k}: s_k = "
               f"{fmt(stay(k), 8)}); the second eigenvalue is s_k to {abs(lam2 - stay(k)):.1e} ({fmt(lam2, 8)}), and the unique "
               f"stationary distribution puts mass {fmt(pi[0]['mass'])} on U^{k}.")
    return Study(3, "The toy and its exercises (Remark 6.B/6.C)", finding,
                 [("s03_network_k2.png", "Transition network of the toy for k = 2: page-states with their edge "
                                         "probabilities (pads drawn as N).")], rows, notes)
