"""Study 16 — Peakedness grows with k (seed 6.D): the mechanism behind "longer windows are
stickier" (study 4), exactly, for k = 1 .. 10.

The next-token law of a page-state ``w`` is its row of the chain, ``p(. | w)`` (each token leads
to its own successor); its entropy ``H(w) = -sum_t p(t | w) log p(t | w)`` (nats) and its largest
probability ``max_t p(t | w)`` are read on the two pages study 4 times, the luigi page F^k and the
waluigi page U^k, and averaged over the stationary law of the closed class (``sum_w pi(w) H(w)``,
which is the chain's entropy rate, checked against :meth:`ecology.exact.markov.MarkovChain.entropy_rate`
of the class). Stickiness beside them: the expected stay at a page, ``1 / (1 - P(w -> w))``
(geometric: the page is left at the first token that is not its own), and the expected time from
U^k until the waluigi's amplitude first drops to 1/2 or below (the waluigi basin, as in study 4),
by the subtraction-free hitting-time solve.

On a two-token vocabulary ``H(w) = h(1 - P(w -> w))`` with ``h`` the binary entropy, so at a page
whose likeliest token keeps it, entropy and expected stay are one function of each other:
``stay = 1 / h^{-1}(H)``; every page point of the figure lies on that curve. The luigi page's law
is also checked against its closed form: with luigi ``F`` w.p. ``1 - eps_L`` and the waluigi hiding
with ``F`` w.p. ``p``, ``P(U | F^k) = (a_L eps_L + a_W (1 - p)) / (a_L + a_W)``,
``a_L = prior_L (1 - eps_L)^k``, ``a_W = prior_W p^k``.

Scenarios: the softened toy (``waluigi_soft``), the seed's toy (``waluigi``, no floors: U^k is
absorbing, its stay infinite) and a trained luigi (``trained_luigi``: an add-k trigram beside the
hand-written waluigi)."""

from __future__ import annotations

import itertools

import numpy as np
from common import Study, chain, figure, fmt, scenario
from scipy.sparse import csgraph

from ecology.exact.markov import MarkovChain
from ecology.numerics import above

KS = list(range(1, 11))
DENSE_CHECK = 256  # the stationary law is recomputed by dense eig for classes up to this size (k <= 8)
SCENARIOS = {"waluigi_soft": "softened toy", "waluigi": "seed's toy", "trained_luigi": "trained luigi"}
TOY = {"waluigi_soft": {"prior": 0.9, "eps": 0.01, "p": 0.9}, "waluigi": {"prior": 0.9, "eps": 0.0, "p": 0.9}}


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return max(0.0, float(-(p * np.log(p)).sum()))  # a point mass: 0, not -0


def luigi_escape(toy: dict, k: int) -> float:
    """Closed form of ``P(U | F^k)`` on the toy (module docstring)."""
    a_l, a_w = toy["prior"] * (1 - toy["eps"]) ** k, (1 - toy["prior"]) * toy["p"] ** k
    return (a_l * toy["eps"] + a_w * (1 - toy["p"])) / (a_l + a_w)


def at_k(name: str, k: int) -> dict:
    compiled, pc = chain(scenario(name, context__length=k))
    mc = pc.chain
    P = mc.P.toarray()
    labels = pc.labels()
    f, u = labels.index(" ".join(["F"] * k)), labels.index(" ".join(["U"] * k))
    (C,) = mc.recurrent_classes
    (law,) = mc.stationary_laws
    row_entropy = np.array([entropy(P[i]) for i in C])
    inside = MarkovChain(mc.P[C][:, C])
    waluigi = pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")]
    basin = above(waluigi, 0.5)
    # None where U^k itself is outside the basin (the waluigi amplitude there is <= 1/2)
    basin_exit = None if not basin[u] else float(mc.expected_hitting_times(~basin)[u]) if (~basin).any() else np.inf
    exit_steps, exit_log10 = most_likely_exit(mc.P, u, ~basin) if basin[u] and (~basin).any() else (None, None)
    pi_dense = dense_stationary(inside.P.toarray()) if len(C) <= DENSE_CHECK else None
    read = np.exp(compiled.mixture.read(pc.windows[[f, u]]).log_p)  # the mixture read afresh on the two pages
    loop = greedy_loop(P, pc.initial)
    return {"k": k, "H_F": entropy(P[f]), "max_F": float(P[f].max()), "stay_F": 1.0 / (1.0 - P[f, f]),
            "H_U": entropy(P[u]), "max_U": float(P[u].max()),
            "stay_U": np.inf if P[u, u] == 1.0 else 1.0 / (1.0 - P[u, u]),
            "H_pi": float(law.pi @ row_entropy), "max_pi": float(law.pi @ P[C].max(axis=1)),
            "rate": inside.entropy_rate() if len(C) > 1 else 0.0,
            "H_pi_dense": None if pi_dense is None else float(pi_dense @ row_entropy), "trusted": law.trusted,
            "basin_exit": basin_exit, "exit_steps": exit_steps, "exit_log10": exit_log10,
            "escape_F": 1.0 - P[f, f], "read_gap": float(np.abs(read - successor_law(P, pc, [f, u])).max()),
            "loop": " -> ".join(labels[i] for i in loop), "H_loop": float(np.mean([entropy(P[i]) for i in loop]))}


def most_likely_exit(P, start: int, outside: np.ndarray) -> tuple[int | None, float | None]:
    """The fewest steps from ``start`` into ``outside`` (breadth-first) and ``log10`` of the
    probability of the most likely path into it (Dijkstra on the weights ``-log P[i, j]``)."""
    steps = csgraph.shortest_path(P, indices=start, unweighted=True)
    weights = P.tocsr(copy=True)
    weights.data = -np.log(weights.data) + 1e-300  # a probability-1 step keeps its edge (weight > 0)
    cost = csgraph.dijkstra(weights, indices=start)
    if not np.isfinite(steps[outside]).any():
        return None, None  # never left (an absorbing basin)
    return int(steps[outside].min()), float(-cost[outside].min() / np.log(10))


def dense_stationary(P: np.ndarray) -> np.ndarray:
    """The left eigenvector of eigenvalue 1 by dense LAPACK (numpy.linalg.eig), normalised: a second method beside GTH."""
    values, vectors = np.linalg.eig(P.T)
    v = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return v / v.sum()


def successor_law(P: np.ndarray, pc, states: list[int]) -> np.ndarray:
    """(len(states), V) the chain's rows as next-token laws: ``P[w, successor of w by t]``."""
    out = np.zeros((len(states), pc.compiled.n_tokens))
    for r, i in enumerate(states):
        for j in np.flatnonzero(P[i] > 0):
            out[r, pc.windows[j, -1]] += P[i, j]
    return out


def greedy_loop(P: np.ndarray, start: int) -> list[int]:
    """The loop the most likely successor map reaches from ``start`` (ties to the lowest state)."""
    seen, i = [], start
    while i not in seen:
        seen.append(i)
        i = int(np.argmax(P[i]))
    return seen[seen.index(i):]


def binary_stay(H: np.ndarray) -> np.ndarray:
    """``1 / q`` with ``h(q) = H``, ``q <= 1/2`` (bisection on the increasing binary entropy); near
    ``q = 1/2``, where ``h`` is flat, an ulp of ``H`` moves ``q`` by about ``sqrt(ulp)`` (1e-8)."""
    lo, hi = np.full_like(H, 1e-300), np.full_like(H, 0.5)
    for _ in range(200):
        mid = (lo + hi) / 2
        h = -(mid * np.log(mid) + (1 - mid) * np.log1p(-mid))
        lo, hi = np.where(h < H, mid, lo), np.where(h < H, hi, mid)
    return 1.0 / ((lo + hi) / 2)


def monotone(values: list[float], rising: bool) -> bool:
    return all((b > a) if rising else (b < a) for a, b in itertools.pairwise(values))


def run(out, quick: bool) -> Study:
    ks = KS[:6] if quick else KS
    data = {name: [at_k(name, k) for k in ks] for name in SCENARIOS}
    rows = []
    for name, title in SCENARIOS.items():
        for r in data[name]:
            rows.append({"scenario": title, "k": r["k"], "H(F^k) (nats)": fmt(r["H_F"], 4), "max p at F^k": fmt(r["max_F"], 5),
                         "stay at F^k": fmt(r["stay_F"], 5), "H(U^k)": fmt(r["H_U"], 4), "max p at U^k": fmt(r["max_U"], 5),
                         "stay at U^k": fmt(r["stay_U"], 5),
                         "stationary mean H": fmt(r["H_pi"], 4) if r["trusted"] else "withheld (law not trusted)",
                         "stationary mean max p": fmt(r["max_pi"], 5) if r["trusted"] else "withheld",
                         "waluigi basin exit from U^k": "— (U^k outside)" if r["basin_exit"] is None else
                         fmt(r["basin_exit"], 5),
                         "fewest steps out of the basin": "—" if r["exit_steps"] is None else r["exit_steps"],
                         "log10 P(likeliest way out)": "—" if r["exit_log10"] is None else f"{r['exit_log10']:.2f}"})
    checks = {name: {"rate": max(abs(r["rate"] - r["H_pi"]) for r in data[name]),
                     "dense": max(abs(r["H_pi_dense"] - r["H_pi"]) for r in data[name] if r["H_pi_dense"] is not None),
                     "read": max(r["read_gap"] for r in data[name])} for name in SCENARIOS}
    closed = max(abs(r["escape_F"] - luigi_escape(TOY[name], r["k"])) / luigi_escape(TOY[name], r["k"])
                 for name in TOY for r in data[name])
    loops = {name: sorted({r["loop"] == " ".join(["F"] * r["k"]) for r in data[name]}) for name in SCENARIOS}

    def series(name, key):
        return [np.nan if r[key] is None else r[key] for r in data[name]]

    def draw_k(fig, ax):
        for name, colour in zip(SCENARIOS, ["C0", "C3", "C2"]):
            ax.semilogy(ks, series(name, "H_F"), "-o", color=colour, ms=3, label=f"{SCENARIOS[name]}: H(F^k)")
            if name != "waluigi":
                ax.semilogy(ks, series(name, "H_U"), "--s", color=colour, ms=3, label=f"{SCENARIOS[name]}: H(U^k)")
                ax.semilogy(ks, series(name, "H_pi"), ":^", color=colour, ms=3, label=f"{SCENARIOS[name]}: stationary mean H")
        ax.set_xlabel("window length k (tokens)")
        ax.set_ylabel("entropy of the next-token law (nats, log scale)")
        ax.set_xticks(ks)
        ax.set_title("the seed's toy: H(U^k) = 0 (U^k absorbing), not drawn", fontsize=8)
        ax.legend(fontsize=7, ncol=2)

    def draw_stay(fig, ax):
        H = np.geomspace(1e-3, np.log(2), 200)
        ax.loglog(H, binary_stay(H), "k-", lw=0.8, label="stay = 1 / h^-1(H) (two tokens)")
        for name, colour in zip(SCENARIOS, ["C0", "C3", "C2"]):
            ax.loglog(series(name, "H_F"), series(name, "stay_F"), "o", color=colour, ms=4, label=f"{SCENARIOS[name]}: F^k")
            if name != "waluigi":
                ax.loglog(series(name, "H_U"), series(name, "stay_U"), "s", color=colour, ms=4, mfc="none",
                          label=f"{SCENARIOS[name]}: U^k")
                ax.loglog(series(name, "H_pi"), series(name, "basin_exit"), "^", color=colour, ms=4,
                          label=f"{SCENARIOS[name]}: stationary mean H, waluigi basin exit")
        ax.set_xlabel("entropy of the next-token law (nats, log scale)")
        ax.set_ylabel("expected steps before leaving (log scale)")
        ax.legend(fontsize=6.5)

    k_name = figure(out, "s16_entropy.png", draw_k)
    stay_name = figure(out, "s16_entropy_stay.png", draw_stay)
    soft, hard, trained = data["waluigi_soft"], data["waluigi"], data["trained_luigi"]
    first, last = ks[0], ks[-1]
    h_floor = -(0.01 * np.log(0.01) + 0.99 * np.log(0.99))
    floor_k = next(r["k"] for r in soft if abs(r["H_U"] - h_floor) < 1e-3 * h_floor)
    at_floor = soft[ks.index(floor_k)]
    spread = (max(r["H_F"] for r in trained) - min(r["H_F"] for r in trained)) / max(r["H_F"] for r in trained)

    def move(rs, key, digits=3):
        """``a → b`` from the first k where the figure exists (named when it is not k = 1) to the last."""
        given = [r for r in rs if r[key] is not None]
        since = "" if given[0] is rs[0] else f" (from k = {given[0]['k']}, where U^k enters the basin)"
        return f"{fmt(given[0][key], digits)} → {fmt(given[-1][key], digits)}{since}"

    def trend(rs, key, rising):
        return "at every k" if monotone([r[key] for r in rs if r[key] is not None], rising) else "overall, not at every k"

    finding = (f"From k = {first} to {last} the next-token law grows more peaked wherever the window's evidence is one-sided, "
               f"and the stickiness follows it: on the softened toy the waluigi page's entropy falls {move(soft, 'H_U')} nats "
               f"({trend(soft, 'H_U', False)}; max p {move(soft, 'max_U', 4)}) while its stay rises {move(soft, 'stay_U', 4)} "
               f"steps (bounded by the floor 1/eps = 100) and the stationary mean entropy falls {move(soft, 'H_pi')} "
               f"({trend(soft, 'H_pi', False)}) while the waluigi basin is left after {move(soft, 'basin_exit')} steps "
               f"({trend(soft, 'basin_exit', True)}); the luigi page is only mildly sharpened (H {move(soft, 'H_F')}, stay "
               f"{move(soft, 'stay_F', 4)}; seed's toy H {move(hard, 'H_F')}, stay {move(hard, 'stay_F', 4)}); the trained "
               f"luigi, which prints U at the rate its trigram learned after F F, keeps its page's entropy within "
               f"{spread:.0%} of flat (H(F^k) {move(trained, 'H_F')}, stay {move(trained, 'stay_F', 4)}) while its waluigi "
               f"page sharpens ({move(trained, 'H_U')} nats, stay {move(trained, 'stay_U', 4)}, basin exit "
               f"{move(trained, 'basin_exit')}); with two tokens a page's entropy and its stay are one function, "
               f"stay = 1/h^-1(H) (where the page's own token is the likelier), so lower entropy is exactly a longer stay; "
               f"but on the softened toy the waluigi page's entropy reaches the floor h(eps) = {fmt(h_floor, 3)} by "
               f"k = {floor_k} while the basin's exit time goes on growing ({fmt(at_floor['basin_exit'], 4)} → "
               f"{fmt(soft[-1]['basin_exit'], 4)}): "
               f"there the stickiness is the evidence the window holds, since leaving takes {at_floor['exit_steps']} → "
               f"{soft[-1]['exit_steps']} steps and the likeliest way out has probability "
               f"10^{at_floor['exit_log10']:.1f} → 10^{soft[-1]['exit_log10']:.1f}.")
    pages = [(r[h], r[stay], name, r["k"], page) for name, rs in data.items() for r in rs
             for h, stay, page in (("H_F", "stay_F", "F^k"), ("H_U", "stay_U", "U^k")) if np.isfinite(r[stay])]
    kept = [(h, stay) for h, stay, *_ in pages if stay >= 2]  # the page's own token the likelier: q = 1/stay <= 1/2
    other = [f"{SCENARIOS[name]} {page} at k = {k} (stay {fmt(stay, 4)})" for h, stay, name, k, page in pages if stay < 2]
    relation = max(abs(binary_stay(np.array([h]))[0] - stay) / stay for h, stay in kept)
    study4 = {}
    if 8 in ks:  # study 4's own solve (sparse LU) of the same basin exit time
        from s04_sticky import basin_exit_time
        study4 = {"value": basin_exit_time(scenario("waluigi_soft", context__length=8)), "ours": soft[ks.index(8)]["basin_exit"]}
    notes = ("Checks: " + (f"the softened toy's basin exit at k = 8 against study 4's sparse LU solve, {study4['ours']:.8g} "
                           f"and {study4['value']:.8g} (relative {abs(study4['ours'] - study4['value']) / study4['value']:.1e}); "
                           if study4 else "")
             + "the stationary mean entropy with the stationary law recomputed by dense eig (numpy.linalg.eig, "
             f"classes up to {DENSE_CHECK} states), largest absolute difference "
             + ", ".join(f"{SCENARIOS[n]} {c['dense']:.1e}" for n, c in checks.items())
             + "; against MarkovChain.entropy_rate of the closed class (the same law and formula, so this checks only "
             "the row bookkeeping) "
             + ", ".join(f"{SCENARIOS[n]} {c['rate']:.1e}" for n, c in checks.items())
             + "; the chain's rows at F^k and U^k against the mixture read afresh on those windows (the chain is built "
             "from the same reading: this checks the enumeration's bookkeeping) "
             + ", ".join(f"{SCENARIOS[n]} {c['read']:.1e}" for n, c in checks.items())
             + f"; the {len(kept)} finite page stays of at least 2 steps (the page's own token the likelier) against "
             f"1/h^-1(H) of their entropy, largest relative difference {relation:.1e}"
             + (f" (off the curve, on its other branch q > 1/2: {', '.join(other)}, where the page's own token is the "
                "less likely)" if other else "")
             + f"; P(U | F^k) against its closed form on both toys, largest relative difference {closed:.1e}. "
             f"The most likely successor map from the empty window ends on the loop F^k "
             + ("for every k and scenario" if all(v == [True] for v in loops.values()) else
                "not for every k and scenario: " + ", ".join(f"{SCENARIOS[n]}: {v}" for n, v in loops.items()))
             + ", so the entropy along the path of the most likely state is H(F^k) in the long run. Stays are "
             "1 / (1 - P(w -> w)); the basin exit is E[steps from U^k until the waluigi amplitude <= 1/2] "
             "(subtraction-free solve; infinite on the seed's toy, whose U^k is absorbing). Every stationary law "
             f"here is trusted by its GTH error estimate: {all(r['trusted'] for rs in data.values() for r in rs)}.")
    return Study(16, "Peakedness grows with k (seed 6.D)", finding,
                 [(k_name, "Exact entropy of the next-token law at the luigi page F^k, the waluigi page U^k and averaged "
                           "over the stationary law, against the window length k, on the two toys and the trained luigi."),
                  (stay_name, "The same entropies against the expected stay at the page (F^k, U^k) and, for the "
                              "stationary mean, the exit time of the waluigi basin from U^k (k = 1 .. 10), with the "
                              "two-token relation stay = 1 / h^-1(H).")], rows, notes)
