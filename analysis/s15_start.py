"""Study 15 — Start-independence (seed 6.B), prompt engineering as the choice of the initial
page-state (seed 11) and the two probability spaces (seed 6.E), exactly, on the toy at k = 8.

A prompt of ``n <= k`` tokens is the initial page-state "pads, then the prompt"; there are
``2^0 + .. + 2^8 = 511`` of them over {F, U}. On the softened toy (``waluigi_soft``) every one of
them is reachable from the empty window, so the rows of the one chain built from the empty window
are the chains from every prompt (checked against chains built with ``context.prompt`` set); on
the seed's toy (``waluigi``) and at temperature 0 (greedy) a chain is built from each prompt.

- *Absorption law*: the probability of ending in each closed class from each prompt
  (:meth:`ecology.exact.markov.MarkovChain.absorption_probabilities`); with one closed class it is
  1 from every start, and the long-run law is that class's stationary law, whatever the start.
- *What the prompt still decides*: ``E_x[T]`` (T the first step with the window all U, the
  subtraction-free hitting-time solve) and ``P_x(T <= N)`` (the backward recursion
  ``u_{t+1} = 1_A + 1_{A^c} P u_t``) from every prompt ``x``: the best and worst prompt.
- *Forgetting the prompt*: ``TV(t) = ||P^t(x, .) - P^t(y, .)||_TV`` between the best and the worst
  prompt, exactly, from the dyadic powers ``P^(2^b)`` (dense, 511 states) applied to the two rows;
  checked against step-by-step propagation, against the decay ``|lambda_2|^t`` of the second
  eigenvalue, and the mixing time ``t_mix(1/4)`` of the closed class re-verified at ``t_mix`` and
  ``t_mix - 1``. Distances below :data:`TV_FLOOR` are not drawn (rounding in the powers).
- *Greedy (T = 0)*: every page-state has one successor, so each prompt ends on one loop; which
  one is the prompt's doing (checked against following ``argmax_t p_1(t | w)`` on the T = 1 chain,
  ties to the vocabulary order as the greedy sampler breaks them).
- *The two probability spaces (seed 6.E)*: the chain's law over its first ``t`` tokens against the
  mixture's law over sequences, equal while nothing is deleted (:func:`two_spaces`).
"""

from __future__ import annotations

import itertools

import numpy as np
from common import Study, chain, figure, fmt, scenario

from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError
from ecology.exact.markov import MarkovChain

K = 8
HORIZON = 400  # the scenario's run.steps
TV, GAP = "tv", "amplitude_gap"  # keys of two_spaces' rows, named for use inside f-strings
TV_FLOOR = 1e-9  # rounding in 40 dense squarings of a 511-state matrix is below 1e-12; drawn only above this
MAX_DOUBLINGS = 44  # P^(2^b) for b < this: t up to 1.8e13


def prompts(k: int) -> list[tuple[str, ...]]:
    """Every prompt over {F, U} of 0 .. k tokens, shortest first."""
    return [p for n in range(k + 1) for p in itertools.product("FU", repeat=n)]


def page(prompt: tuple[str, ...], k: int) -> str:
    return " ".join(["N"] * (k - len(prompt)) + list(prompt))


def hit_within(mc: MarkovChain, target: np.ndarray, steps: int) -> np.ndarray:
    """``P_x(T_A <= steps)`` for every start ``x``: ``u_0 = 1_A``, ``u_{t+1} = 1_A + 1_{A^c} P u_t``."""
    u = target.astype(float)
    for _ in range(steps):
        u = np.where(target, 1.0, mc.P @ u)
    return u


class Powers:
    """The dyadic powers ``P^(2^b)`` of a dense chain, and ``v P^t`` for any ``t`` from them."""

    def __init__(self, P: np.ndarray, doublings: int = MAX_DOUBLINGS):
        self.powers = [P]
        for _ in range(doublings - 1):
            self.powers.append(self.powers[-1] @ self.powers[-1])

    def advance(self, v: np.ndarray, t: int) -> np.ndarray:
        for b in range(len(self.powers)):
            if t >> b & 1:
                v = v @ self.powers[b]
        return v


def tv_curve(mc: MarkovChain, x: int, y: int, times: np.ndarray, powers: Powers) -> np.ndarray:
    """``||P^t(x, .) - P^t(y, .)||_TV`` at the increasing ``times``."""
    v = np.zeros((2, mc.n_states))
    v[0, x] = v[1, y] = 1.0
    out, at = [], 0
    for t in times:
        v = powers.advance(v, int(t) - at)
        at = int(t)
        out.append(0.5 * np.abs(v[0] - v[1]).sum())
    return np.array(out)


def soft_chain(T: float):
    compiled, pc = chain(scenario("waluigi_soft", sampling__temperature=T))
    return compiled, pc, pc.holds(compiled.criteria[0])


def prompt_landscape(compiled, pc, revealed) -> dict:
    """Every prompt's exact E[T] and P(T <= HORIZON) on the soft toy's chain (its rows)."""
    mc = pc.chain
    times = mc.expected_hitting_times(revealed)
    within = hit_within(mc, revealed, HORIZON)
    index = {label: i for i, label in enumerate(pc.labels())}
    rows = np.array([index[page(p, K)] for p in prompts(K)])
    outside = rows[~revealed[rows]]
    best, worst = outside[np.argmax(times[outside])], outside[np.argmin(times[outside])]
    amplitudes = pc.population_amplitudes
    log_odds = np.log10(amplitudes[:, compiled.mixture.labels.index("waluigi")]) - \
        np.log10(amplitudes[:, compiled.mixture.labels.index("luigi")])
    return {"rows": rows, "times": times, "within": within, "best": int(best), "worst": int(worst), "log_odds": log_odds,
            "absorbed": np.array([mc.absorption_probabilities(i) for i in rows])}


def checked_by_prompt(pc, state: int, T: float) -> float:
    """E[T] from a chain built with ``context.prompt`` set to the page-state's tokens (a second build)."""
    tokens = [t for t in pc.label(state).split() if t != "N"]
    compiled, other = chain(scenario("waluigi_soft", sampling__temperature=T, context__prompt=tokens))
    revealed = other.holds(compiled.criteria[0])
    return float(other.chain.expected_hitting_times(revealed)[other.initial])


def greedy_outcomes(name: str) -> dict:
    """At T = 0, the loop each prompt ends on (its closed class), from a chain built per prompt;
    prompts with probability 0 under every premise are counted apart."""
    ends, impossible = {}, 0
    for p in prompts(K):
        try:
            _, pc = chain(scenario(name, sampling__temperature=0.0, context__prompt=list(p)))
        except ScenarioError:
            impossible += 1
            continue
        mc = pc.chain
        absorbed = mc.absorption_probabilities(pc.initial)
        (c,) = np.flatnonzero(absorbed == 1.0)  # greedy: one successor per page-state, so one class surely
        ends[p] = " -> ".join(pc.label(i) for i in mc.recurrent_classes[c])
    return {"ends": ends, "impossible": impossible}


def greedy_by_argmax(compiled, pc) -> dict:
    """The loop each prompt ends on when following ``argmax_t p(t | w)`` of the T = 1 chain (ties
    to the first token of the vocabulary), the greedy sampler's rule, without building a T = 0 chain."""
    P = pc.chain.P.tocsr()
    windows = pc.windows
    index = {tuple(w): i for i, w in enumerate(windows.tolist())}
    successor = np.empty(len(windows), dtype=np.int64)
    for i in range(len(windows)):
        cols, probs = P.indices[P.indptr[i]:P.indptr[i + 1]], P.data[P.indptr[i]:P.indptr[i + 1]]
        tokens = windows[cols, -1]
        best = tokens[probs == probs.max()].min()  # ties to the vocabulary order
        successor[i] = cols[tokens == best][0]
    labels = pc.labels()
    out = {}
    for p in prompts(K):
        i, seen = index[tuple(compiled.tokens.index(t) if t != "N" else compiled.n_tokens for t in page(p, K).split())], []
        while i not in seen:
            seen.append(i)
            i = int(successor[i])
        loop = seen[seen.index(i):]
        first = loop.index(min(loop))
        out[p] = " -> ".join(labels[j] for j in loop[first:] + loop[:first])
    return out


def first_below(mc: MarkovChain, x: int, y: int, level: float, powers: Powers) -> int | None:
    """``min{t : ||P^t(x, .) - P^t(y, .)||_TV <= level}``, exactly: the distance never grows with
    ``t`` (a stochastic matrix contracts total variation), so the binary expansion of the last
    ``t`` above ``level`` is found from the largest dyadic power down. None beyond the powers."""
    v = np.zeros((2, mc.n_states))
    v[0, x] = v[1, y] = 1.0
    if 0.5 * np.abs(v[0] - v[1]).sum() <= level:
        return 0
    t = 0
    for b in range(len(powers.powers) - 1, -1, -1):
        candidate = v @ powers.powers[b]
        if 0.5 * np.abs(candidate[0] - candidate[1]).sum() > level:
            v, t = candidate, t + 2**b
    return None if t == 2 ** len(powers.powers) - 1 else t + 1


def forgetting(T: float) -> dict:
    """TV(t) between the best and worst prompts of the soft toy at temperature T, with its checks."""
    compiled, pc, revealed = soft_chain(T)
    land = prompt_landscape(compiled, pc, revealed)
    mc = pc.chain
    powers = Powers(mc.P.toarray())
    times = np.unique(np.round(np.geomspace(1, 2.0 ** (MAX_DOUBLINGS - 1), 400)).astype(np.int64))
    tv = tv_curve(mc, land["best"], land["worst"], times, powers)
    lam2 = float(np.abs(mc.eigenvalues(2))[1])
    (C,) = mc.recurrent_classes
    inside = MarkovChain(mc.P[C][:, C])
    t_mix = inside.mixing_time(0.25)
    pi = inside.stationary_distributions[0]
    full = Powers(inside.P.toarray(), doublings=int(t_mix).bit_length() + 1)

    def distance(t):  # max over full-window starts of ||P^t(x, .) - pi||_TV
        return 0.5 * np.abs(full.advance(np.eye(len(C)), t) - pi).sum(axis=1).max()

    usable = (tv > 1e-7) & (tv < 1e-2)  # the tail, well above the rounding floor
    rate = None
    if usable.sum() >= 2:
        i, j = np.flatnonzero(usable)[[0, -1]]
        rate = (np.log(tv[j]) - np.log(tv[i])) / (times[j] - times[i])
    quarter = first_below(mc, land["best"], land["worst"], 0.25, powers)
    u8 = pc.labels().index(page(("U",) * K, K))
    pi_u = float(inside.stationary_laws[0].pi[list(C).index(u8)])
    return {"T": T, "pc": pc, "land": land, "pi_u": pi_u, "times": times, "tv": tv, "lambda2": lam2, "t_mix": t_mix,
            "d_at_mix": distance(t_mix), "d_before_mix": distance(t_mix - 1), "rate": rate, "quarter": quarter}


def run(out, quick: bool) -> Study:
    temps = [1.0] if quick else [0.5, 1.0, 2.0]
    runs = {T: forgetting(T) for T in temps}
    main = runs[1.0]
    pc, land = main["pc"], main["land"]
    mc = pc.chain
    best, worst = land["best"], land["worst"]
    # checks of the main run
    steps = 2048
    v = np.zeros((2, mc.n_states))
    v[0, best] = v[1, worst] = 1.0
    PT = mc.P.T.tocsr()
    stepwise = []
    for _ in range(steps):
        v = (PT @ v.T).T
        stepwise.append(0.5 * np.abs(v[0] - v[1]).sum())
    check_times = main["times"][main["times"] <= steps]
    q = main["quarter"]
    quarter_checked = q is not None and 2 <= q <= steps and stepwise[q - 1] <= 0.25 < stepwise[q - 2]
    propagation_gap = float(np.max(np.abs(np.array(stepwise)[check_times - 1] - main["tv"][: len(check_times)])))
    by_prompt = {i: checked_by_prompt(pc, i, 1.0) for i in (best, worst)}
    prompt_gap = max(abs(by_prompt[i] - land["times"][i]) / land["times"][i] for i in by_prompt)
    greedy = greedy_outcomes("waluigi_soft")
    argmax = greedy_by_argmax(*soft_chain(1.0)[:2])
    agree = sum(greedy["ends"][p] == argmax[p] for p in greedy["ends"])
    hard = None if quick else seed_toy()
    luigi = sum(e == page(("F",) * K, K) for e in greedy["ends"].values())
    greedy_waluigi = sum(e == page(("U",) * K, K) for e in greedy["ends"].values())
    shortest_u = min((p for p, e in greedy["ends"].items() if e == page(("U",) * K, K)), key=len)
    most_u = max((p for p, e in greedy["ends"].items() if e == page(("F",) * K, K)), key=lambda p: (p.count("U"), -len(p)))

    rows = []
    for T, r in runs.items():
        L = r["land"]
        outside = L["rows"][~r["pc"].holds(r["pc"].compiled.criteria[0])[L["rows"]]]
        rows.append({"T": T, "closed classes": len(r["pc"].chain.recurrent_classes),
                     "min over prompts of P(closed class)": fmt(float(L["absorbed"].min()), 16),
                     "best prompt (largest E[T])": r["pc"].label(L["best"]), "its E[T]": fmt(float(L["times"][L["best"]]), 6),
                     f"its P(T <= {HORIZON})": fmt(float(L["within"][L["best"]]), 4),
                     "worst prompt (smallest E[T] > 0)": r["pc"].label(L["worst"]),
                     "its E[T] ": fmt(float(L["times"][L["worst"]]), 6),
                     f"its P(T <= {HORIZON}) ": fmt(float(L["within"][L["worst"]]), 4),
                     "E[T] from the empty prompt": fmt(float(L["times"][r["pc"].initial]), 6),
                     "median E[T] over the 511 - 1 prompts": fmt(float(np.median(L["times"][outside])), 5),
                     "first t with TV <= 1/4 (best vs worst)": r["quarter"],
                     "t_mix(1/4), closed class": r["t_mix"], "stationary P(U^8)": fmt(r["pi_u"], 4),
                     "1/(1 - |lambda_2|)": fmt(1.0 / (1.0 - r["lambda2"]), 5)})

    def draw_tv(fig, ax):
        for T, r in runs.items():
            keep = r["tv"] >= TV_FLOOR
            ax.loglog(r["times"][keep], r["tv"][keep], lw=1.5, label=f"T = {T}: '{r['pc'].label(r['land']['best'])}' vs "
                      f"'{r['pc'].label(r['land']['worst'])}'")
        r = main
        t0 = r["times"][np.argmax(r["tv"] < 1e-2)]
        ref = r["times"][(r["times"] >= t0) & (r["lambda2"] ** (r["times"] - t0) * 1e-2 >= TV_FLOOR)]
        ax.loglog(ref, 1e-2 * r["lambda2"] ** (ref - t0), "k:", lw=1, label="|lambda_2|^t (T = 1), through TV = 0.01")
        ax.axhline(0.25, color="grey", lw=0.6, ls="--")
        ax.set_ylim(TV_FLOOR, 1.5)
        ax.set_xlabel("step t (log scale)")
        ax.set_ylabel("total variation between the laws at t\nfrom the two prompts (exact)")
        ax.legend(fontsize=7, loc="lower left")

    def draw_prompts(fig, ax):
        rows_ = land["rows"]
        t = land["times"][rows_]
        w = land["log_odds"][rows_]
        ends = np.array([greedy["ends"][p] == page(("U",) * K, K) for p in prompts(K)])
        keep = t > 0
        for mask, colour, label in [(~ends, "#1f77b4", "greedy (T = 0) ends at F^8"),
                                    (ends, "#d62728", "greedy (T = 0) ends at U^8")]:
            ax.scatter(w[keep & mask], t[keep & mask], s=8, color=colour, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("log10(waluigi amplitude / luigi amplitude) of the prompt's page-state")
        ax.set_ylabel("E[steps until the window is all U]\nat T = 1 (exact, log scale)")
        ax.legend(fontsize=7)

    tv_name = figure(out, "s15_forgetting.png", draw_tv)
    prompt_name = figure(out, "s15_prompts.png", draw_prompts)
    b, w = float(land["times"][best]), float(land["times"][worst])
    finding = (f"The start does not decide where the softened toy (k = 8, T = 1) ends: it has one closed class (the 256 full "
               f"windows), entered with probability {fmt(float(land['absorbed'].min()), 16)} from each of the 511 prompts, "
               f"so its long-run law is the same from all of them (though not the seed's single state U^8: it puts "
               f"{fmt(main['pi_u'], 4)} there); the prompt decides only how soon the waluigi is revealed: the best prompt "
               f"'{pc.label(best)}' keeps the luigi for E[T] = {fmt(b, 5)} steps (P(revealed by {HORIZON}) = "
               f"{fmt(float(land['within'][best]), 3)}), the worst '{pc.label(worst)}' for {fmt(w, 4)} "
               f"({fmt(float(land['within'][worst]), 4)}), against {fmt(float(land['times'][pc.initial]), 5)} from the empty "
               f"prompt and "
               f"{fmt(float(land['times'][pc.labels().index(page(('F',) * K, K))]), 5)} from F^8; "
               f"the laws from the best and the worst prompt come within TV 1/4 after {main['quarter']} steps (t_mix(1/4) = "
               f"{main['t_mix']}), their distance then decaying as |lambda_2|^t = {fmt(main['lambda2'], 6)}^t"
               + "".join(f"; at T = {T}, t_mix(1/4) = {r['t_mix']}" for T, r in runs.items() if T != 1.0)
               + f". Greedy (T = 0) the prompt is never forgotten and decides everything: {luigi} of the {len(greedy['ends'])} "
               f"prompts end on F^8 "
               f"forever and {greedy_waluigi} on U^8 (e.g. '{''.join(shortest_u)}' ends on U^8 but "
               f"'{''.join(most_u)}', with {most_u.count('U')} U's, on F^8)"
               + (f"; on the seed's toy (no floors, T = 1) the {hard['possible']} possible prompts all end in U^8 "
                  f"(E[T] from {fmt(hard['min'], 4)} to {fmt(hard['max'], 5)} steps, the largest from '{hard['best']}')."
                  if hard else "."))
    checks = (f"Checks: E[T] from the best and worst prompts by a chain built with context.prompt set agrees with the "
              f"rows of the empty prompt's chain to a relative {prompt_gap:.1e}; TV(t) from the dyadic powers agrees with "
              f"step-by-step propagation over t <= {steps} to {propagation_gap:.1e}, and the first t with TV <= 1/4 found by "
              f"bisection over the dyadic powers ({q}) {'is' if quarter_checked else 'is NOT'} the one step-by-step "
              f"propagation gives; the tail's decay per step "
              f"exp({main['rate']:.6g}) against |lambda_2| = {main['lambda2']:.6g} (log ratio "
              f"{main['rate'] / np.log(main['lambda2']):.4f}); t_mix(1/4) = {main['t_mix']} of the closed class re-verified: "
              f"d(t_mix) = {main['d_at_mix']:.4f} <= 1/4 < d(t_mix - 1) = {main['d_before_mix']:.4f}; the greedy outcome "
              f"of each prompt from its own T = 0 chain agrees with following argmax p(t | w) on the T = 1 chain for "
              f"{agree} of {len(greedy['ends'])} prompts.")
    if hard:
        checks += (f" Seed's toy: {hard['impossible']} of 511 prompts have probability 0 under both premises (a U "
                   f"followed by an F: the luigi never prints U, the revealed waluigi never prints F) and are refused; the "
                   f"{hard['possible']} others are {'exactly' if hard['monotone'] else 'NOT only'} the prompts F^a U^b and "
                   f"{'exactly' if hard['same_set'] else 'NOT'} the page-states reachable from the empty window, and every one "
                   f"ends in U^8 with "
                   f"probability {fmt(hard['absorbed_min'], 16)}.")
    f8 = pc.labels().index(page(("F",) * K, K))
    why = (f" Why the best prompt holds U's: each U followed by F's is evidence against the waluigi, which after a U prints "
           f"F only with eps = 0.01, so '{pc.label(best)}' starts at log10(waluigi : luigi) = {land['log_odds'][best]:.2f}, "
           f"against {land['log_odds'][f8]:.2f} at F^8 and {land['log_odds'][pc.initial]:.2f} at the empty prompt.")
    spaces = two_spaces((4, 8, 9, 10) if quick else (4, 8, 9, 10, 12, 16))
    agree_to = max(r["max_relative"] for r in spaces if r["t"] <= K + 1)
    after = [r for r in spaces if r["t"] > K + 1]
    six_e = (f"**The two probability spaces (seed 6.E).** From the empty prompt the chain's law over its first t tokens "
             f"(path products of the transition matrix) equals the mixture's own law over sequences, sum_s prior_s "
             f"mu_s(x_1..x_t) (exp(-F) of the whole sequence, read by a window that deletes nothing), while nothing has "
             f"been deleted: for t = {', '.join(str(r['t']) for r in spaces if r['t'] <= K + 1)} (t <= k + 1: the "
             f"(k + 1)-th token is still drawn from all k before it) the largest relative difference over all sequences "
             f"is {agree_to:.1e}. After that they part: at t = {', '.join(str(r['t']) for r in after)} "
             f"({', '.join(str(r['sequences']) for r in after)} sequences) their total variation is "
             f"{', '.join(f'{r[TV]:.4g}' for r in after)} and the waluigi's amplitude on the page differs "
             f"from its posterior given the whole sequence by {', '.join(f'{r[GAP]:.4g}' for r in after)} on average "
             "(the page forgets the evidence it deleted).")
    notes = ("A prompt of n tokens is the page-state of k - n pads then the prompt. T is the first step at which the "
             "window is all U (the criterion 'revealed'); E[T] = 0 at U^8 itself, which is left out of the best and worst. "
             f"TV below {TV_FLOOR:g} is not drawn (the dyadic powers' rounding)." + why + " " + checks + "\n\n" + six_e)
    return Study(15, "Start-independence and the prompt as the initial page-state (seed 6.B, 11)", finding,
                 [(tv_name, "Softened toy (k = 8): exact total variation between the laws at step t from the best and "
                            "the worst prompt (largest and smallest E[T] to reveal the waluigi), per temperature, with "
                            "the decay |lambda_2|^t of the second eigenvalue (T = 1)."),
                  (prompt_name, "Softened toy (k = 8, T = 1): exact E[T] to reveal the waluigi from each of the 511 "
                                "prompts (U^8 itself, E[T] = 0, left out) against the log odds waluigi : luigi the "
                                "prompt starts with, coloured by the loop the greedy chain (T = 0) ends on from it.")],
                 rows, notes)


def two_spaces(lengths: tuple[int, ...]) -> list[dict]:
    """Seed 6.E, the two probability spaces, on the softened toy from the empty prompt: the chain's
    law over its first ``t`` tokens (products of transition probabilities along every path) against
    the mixture's own law over sequences, ``sum_s prior_s mu_s(x_1 .. x_t)`` (``exp(-F)`` of the
    whole sequence read by a window of length ``t``, which deletes nothing). They must agree while
    nothing has been deleted (``t <= k``); after that the chain reads only the last ``k`` tokens.
    Also the mean gap between the waluigi's amplitude on the page and its posterior given the whole
    sequence, under the chain's law."""
    compiled, pc = chain(scenario("waluigi_soft"))
    P = pc.chain.P.tocsr()
    waluigi = compiled.mixture.labels.index("waluigi")
    states, log_p, tokens = np.array([pc.initial]), np.zeros(1), np.zeros((1, 0), dtype=np.int64)
    out = []
    for t in range(1, max(lengths) + 1):
        counts = np.diff(P.indptr)[states]
        parent = np.repeat(np.arange(len(states)), counts)
        edge = np.repeat(P.indptr[states], counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        states, log_p = P.indices[edge], log_p[parent] + np.log(P.data[edge])
        tokens = np.concatenate([tokens[parent], pc.windows[states, -1][:, None]], axis=1)
        if t not in lengths:
            continue
        unbounded = compile_scenario(scenario("waluigi_soft", context__length=t)).mixture.read(tokens)
        joint = np.exp(-unbounded.free_energy)
        law = np.exp(log_p)
        page_amplitude = pc.population_amplitudes[states, waluigi]
        history_amplitude = np.exp(unbounded.log_amplitude)[:, compiled.mixture.members[waluigi]].sum(axis=1)
        out.append({"t": t, "sequences": len(law), "chain_total": float(law.sum()), "mixture_total": float(joint.sum()),
                    "max_relative": float(np.max(np.abs(law - joint) / joint)), "tv": float(0.5 * np.abs(law - joint).sum()),
                    "amplitude_gap": float(law @ np.abs(page_amplitude - history_amplitude))})
    return out


def seed_toy() -> dict:
    """The seed's toy (no floors) at T = 1 from every prompt: possible prompts, absorption into U^8, E[T]."""
    _, base = chain(scenario("waluigi"))
    reachable = set(base.labels())
    possible, absorbed, times, labels = set(), [], [], []
    impossible = 0
    for p in prompts(K):
        try:
            compiled, pc = chain(scenario("waluigi", context__prompt=list(p)))
        except ScenarioError:
            impossible += 1
            continue
        possible.add(page(p, K))
        labels.append(page(p, K))
        mc = pc.chain
        absorbed.append(float(mc.absorption_probabilities(pc.initial)[0]) if len(mc.recurrent_classes) == 1 else np.nan)
        times.append(float(mc.expected_hitting_times(pc.holds(compiled.criteria[0]))[pc.initial]))
    times = np.array(times)
    monotone = {page(("F",) * a + ("U",) * b, K) for a in range(K + 1) for b in range(K + 1 - a)}
    return {"possible": len(possible), "impossible": impossible, "same_set": possible == reachable,
            "monotone": possible == monotone, "best": labels[int(np.argmax(times))],
            "absorbed_min": float(np.min(absorbed)), "min": float(times[times > 0].min()), "max": float(times.max())}
