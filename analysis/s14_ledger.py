"""Study 14 — The token ledger: who owns the window, and how fast credit turns over.

Each printed token is credited to the populations by responsibility ``c_L = sum_{s in L}
alpha_s mu_s(t | w) / mu(t | w)`` on the window it was printed from; deletion retires the credit of
the tokens it deletes; what is left is the credit held in the window. Per population, on the toy
(scenarios/waluigi.toml, k = 8), the chat scenario (scenarios/chat.toml at k = 6, where its exact
chain has 4,181 page-states; at its own k = 12 it has more than 2.5 million) and a trained model
(scenarios/trained_luigi.toml: the luigi is a trigram model), under fifo, block, message (chat only:
the others have no message delimiter) and none: credit issued, held and retired by step N, held
at stationarity, and the turnover time (credit-weighted mean age at deletion). Exact values come
from the page-state chain extended by token age (ecology.exact.ledger), simulation beside them with
95% intervals over replicates."""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, interval, scenario

from ecology.core.compile import compile_scenario
from ecology.errors import UserError
from ecology.exact.chain import build_chain
from ecology.exact.ledger import ledger_curves, stationary_ledger, unbounded_ledger
from ecology.kinds.observables import Ledger
from ecology.model import EcologyModel
from ecology.statistics import mean_interval, ratio_of_sums

CASES = [  # (panel, scenario file, overrides, rules as (name, context overrides))
    ("toy (waluigi.toml, k = 8)", "waluigi", {}, [("fifo", {}), ("block", {"block": 4}), ("none", {})]),
    ("chat (chat.toml, k = 6)", "chat", {"context__length": 6},
     [("fifo", {}), ("block", {"block": 3}), ("message", {"delimiter": "/"}), ("none", {})]),
    ("trained luigi (trained_luigi.toml, k = 8)", "trained_luigi", {}, [("fifo", {}), ("block", {"block": 4}), ("none", {})]),
]
COLOURS = {"fifo": "tab:blue", "block": "tab:orange", "message": "tab:green", "none": "tab:red"}
SAMPLE_EVERY = 5  # steps between the samples of each replicate's held credit in the second half


def simulate_case(s):
    """The model after ``N`` steps, each replicate's ledger at ``N / 2`` (retired, age) and its held
    credit averaged over samples every few steps of the second half."""
    model = EcologyModel(s)
    half = s.run.steps // 2
    model.advance(half)
    at_half = (model.state.ledger.retired.copy(), model.state.ledger.age.copy())
    held, samples = np.zeros_like(model.credit), 0
    while model.running:
        model.advance(min(SAMPLE_EVERY, model.n_steps - model.generated))
        held += model.state.ledger.held
        samples += 1
    return model, at_half, held / samples


def exact_case(s):
    """(curves, stationary figures, why not) for a rule that deletes; the closed form under none."""
    compiled = compile_scenario(s)
    try:
        if not compiled.rule.deletes_oldest:
            return unbounded_ledger(compiled, s.run.steps), None, None
        pc = build_chain(compiled)
        return ledger_curves(compiled, pc, s.run.steps), stationary_ledger(compiled, pc), None
    except UserError as err:
        return None, None, str(err)


def run(out, quick: bool) -> Study:
    rows, panels, raw = [], [], {}  # raw[(scenario, rule, label)]: the figures the finding quotes
    for title, name, overrides, rules in CASES:
        lines = []
        for rule, context in rules:
            extra = {"context__deletion": rule, **{f"context__{key}": value for key, value in context.items()}}
            s = scenario(name, **overrides, **extra, run__replicates=200 if quick else 2000,
                         run__steps=100 if quick else scenario(name).run.steps)
            N = s.run.steps
            model, (retired_half, age_half), held_late = simulate_case(s)
            curves, stationary, why = exact_case(s)
            df = model.datacollector.get_model_vars_dataframe()
            labels = model.mixture.labels
            book = model.state.ledger
            for j, label in enumerate(labels):
                row = {"case": f"{title.split(' (')[0]}, {rule}" + (f" B = {context['block']}" if "block" in context else ""),
                       "population": label}
                row["issued by N (sim)"] = interval(*mean_interval(model.credit[:, j]))
                row["held at N (sim)"] = interval(*mean_interval(book.held[:, j]))
                if rule == "none":
                    row["issued by N (exact)"] = fmt(float(curves[-1, j])) if curves is not None else "—"
                    row["held at N (exact)"] = row["issued by N (exact)"]
                    row["held, stationary (sim: mean over the 2nd half)"] = "grows without bound"
                    row["held, stationary (exact)"] = "∞"
                    row["turnover (sim: tokens deleted in the 2nd half)"] = "∞ (nothing deleted)"
                    row["turnover, stationary (exact)"] = "∞"
                else:
                    row["issued by N (exact)"] = fmt(float(curves.issued[-1, j])) if curves else "—"
                    row["held at N (exact)"] = fmt(float(curves.held[-1, j])) if curves else "—"
                    row["held, stationary (sim: mean over the 2nd half)"] = interval(*mean_interval(held_late[:, j]))
                    row["held, stationary (exact)"] = fmt(stationary[label]["held"]) if stationary else "—"
                    late = ratio_of_sums(book.age[:, j] - age_half[:, j], book.retired[:, j] - retired_half[:, j])
                    row["turnover (sim: tokens deleted in the 2nd half)"] = interval(*late) if late else "none retired"
                    row["turnover, stationary (exact)"] = (
                        fmt(stationary[label]["turnover"]) if stationary and stationary[label]["turnover"] is not None
                        else "— (no credit retired)")
                raw[name, rule, label] = {"held": mean_interval(book.held[:, j]), "N": N,
                                          "late": ratio_of_sums(book.age[:, j] - age_half[:, j],
                                                                 book.retired[:, j] - retired_half[:, j]),
                                          "exact": None if curves is None or rule == "none" else float(curves.held[-1, j]),
                                          "stationary": stationary[label] if stationary else None}
                rows.append(row)
            held = np.stack([df[Ledger.column("held", label)].to_numpy() for label in labels])
            with np.errstate(invalid="ignore"):
                share = held[labels.index("waluigi")] / held.sum(axis=0)
            exact_share = None
            if rule == "none" and curves is not None:
                with np.errstate(invalid="ignore"):
                    exact_share = curves[:, labels.index("waluigi")] / curves.sum(axis=1)
            elif rule != "none" and curves is not None:
                with np.errstate(invalid="ignore"):
                    exact_share = curves.held[:, labels.index("waluigi")] / curves.held.sum(axis=1)
            late = {label: ratio_of_sums(book.age[:, j] - age_half[:, j], book.retired[:, j] - retired_half[:, j])
                    for j, label in enumerate(labels)}
            lines.append((rule, context, share, exact_share, late, stationary, labels))
            if why:
                rows[-1]["note"] = f"no exact values: {why}"
        panels.append((title, lines))

    def draw(fig, _):
        fig.clear()
        axes = fig.subplots(2, len(panels), squeeze=False)
        for col, (title, lines) in enumerate(panels):
            top, bottom = axes[0, col], axes[1, col]
            for rule, context, share, exact_share, _, _, _ in lines:
                label = rule + (f" (B = {context['block']})" if "block" in context else "")
                top.plot(np.arange(len(share)), share, color=COLOURS[rule], lw=1.2, label=f"{label}: simulated")
                if exact_share is not None:
                    top.plot(np.arange(len(exact_share)), exact_share, color="black", lw=0.8, ls="--")
            top.plot([], [], color="black", lw=0.8, ls="--", label="exact chain")
            top.set_title(title, fontsize=9)
            top.set_xlabel("step t")
            top.set_ylim(-0.02, 1.02)
            if col == 0:
                top.set_ylabel("waluigi's share of the credit\nheld in the window")
            top.legend(fontsize=6.5, loc="best")
            names = lines[0][6]
            width = 0.8 / len(names)
            for i, (_, _, _, _, late, stationary, _) in enumerate(lines):
                for j, name in enumerate(names):
                    x = i + (j - (len(names) - 1) / 2) * width
                    colour = "tab:purple" if name == "waluigi" else "tab:gray"
                    if late[name] is None:
                        bottom.text(x, 0.3, "∞", ha="center", fontsize=11)
                        continue
                    value, lo, hi = late[name]
                    bottom.bar(x, value, width, color=colour, alpha=0.7, label=name if i == 0 else None)
                    bottom.errorbar(x, value, yerr=[[value - lo], [hi - value]], color="black", lw=0.8, capsize=2)
                    if stationary and stationary[name]["turnover"] is not None:
                        bottom.plot(x, stationary[name]["turnover"], marker="_", color="black", ms=12, mew=2)
            bottom.set_xticks(range(len(lines)), [rule for rule, *_ in lines], fontsize=8)
            bottom.set_xlim(-0.6, len(lines) - 0.4)
            bottom.set_ylim(0, 1.35 * max(v[0] for line in lines for v in line[4].values() if v))
            bottom.set_xlabel("deletion rule (∞: nothing is ever deleted)")
            if col == 0:
                bottom.set_ylabel("turnover: mean age of a\ncredited token at deletion (steps)")
            bottom.plot([], [], marker="_", color="black", ls="", ms=12, mew=2, label="exact, stationary")
            bottom.legend(fontsize=6.5, loc="upper right", ncol=3)

    name = figure(out, "s14_ledger.png", draw, size=(13, 7.5))
    toy, msg = raw["waluigi", "fifo", "waluigi"], [raw["chat", "message", label] for label in ("helpful", "waluigi")]
    block = raw["waluigi", "block", "waluigi"]["stationary"]["turnover"]
    def waluigi_share(name, rule, other):
        held = [raw[name, rule, label]["stationary"]["held"] for label in (other, "waluigi")]
        return held[1] / sum(held)

    share = waluigi_share("chat", "message", "helpful")
    trained = {rule: waluigi_share("trained_luigi", rule, "luigi") for rule in ("fifo", "block")}
    finding = (f"Deletion decides who owns the window and for how long: under fifo the toy's waluigi holds "
               f"{interval(*toy['held'])} of the 8 window tokens' credit at step {toy['N']} (exact {fmt(toy['exact'])}) and "
               f"{fmt(toy['stationary']['held'])} at stationarity (the chain ends in its U-windows), under none a share "
               f"A(W_0) = 0.1 of an ever-growing window, never retired; a credited token is deleted at age exactly "
               f"k = 8 under fifo and {fmt(block)} = k - (B - 1)/2 on average under block (B = 4); under message "
               f"deletion the chat's credit turns over in {interval(*msg[0]['late'])} (helpful) and "
               f"{interval(*msg[1]['late'])} (waluigi) steps of k = 6 (exact stationary "
               f"{fmt(msg[0]['stationary']['turnover'])} and {fmt(msg[1]['stationary']['turnover'])}), the waluigi holding "
               f"{fmt(share, 3)} of the window's credit at stationarity; with the trained luigi the waluigi's stationary "
               f"share of the window is {fmt(trained['fifo'], 3)} under fifo but {fmt(trained['block'], 3)} under block "
               f"(exact).")
    notes = ("Issued = retired + held for every population and replicate, in both engines (tests/test_ledger.py). "
             "Intervals are 95% normal intervals over replicates; turnover is a ratio of sums over replicates "
             "(credit x age over credit, of the tokens deleted in the second half of the run) with its delta-method "
             "interval. \"Stationary (sim)\" is each replicate's held credit averaged over samples every "
             f"{SAMPLE_EVERY} steps of the second half: it equals the exact stationary value only once the chain has "
             "mixed (the toy absorbs into the waluigi's U-windows over hundreds of steps, so its second half is still "
             "transient). The exact stationary figures are for the long-run law from the initial window "
             "(sum over closed classes of P(end there) x their stationary law). Under none the exact value is the "
             "closed form t A_L(W_0) (the amplitudes are martingales at T = 1); the trained luigi is a model premise, "
             "for which that closed form does not hold, so its none row is simulated only.")
    return Study(14, "The token ledger: who owns the window, and how fast credit turns over", finding,
                 [(name, "Top: the waluigi's share of the credit held in the window (mean held credit of the waluigi "
                         "over the mean credit of all printed tokens in the window) per step, simulated (colour) and "
                         "from the exact chain extended by token age (dashed). Bottom: the turnover time of each "
                         "population's credit (credit-weighted mean age of a token at deletion, tokens deleted in the "
                         "second half of the run; bars with 95% intervals) and the exact stationary value (black "
                         "dash); under none nothing is deleted (∞).")], rows, notes)

