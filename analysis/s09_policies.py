"""Study 9 — Deletion policies compared on the chat scenario: fifo, block, message, a pinned
system prompt and a reset token. Which make the waluigi stickier? Measured exactly (the chain's
probability that the waluigi is certain, amplitude > 0.99, at the horizon) and by simulation.

The reset token is a degenerate case here: after a reset both premises read only the current
message, and within one message the evidence cannot make the waluigi certain. The study measures
that (the largest waluigi amplitude on any page-state of each chain, exact) instead of reading
the reset's low figure as protection."""

from __future__ import annotations

from common import Study, chain, figure, fmt, proportion, scenario, simulate

from ecology.exact.chain import criterion_curves
from ecology.kinds.observables import Criteria

POLICIES = {
    "fifo": {},
    "block (B = 4)": {"context__deletion": "block", "context__block": 4},
    "message ('/')": {"context__deletion": "message", "context__delimiter": "/"},
    "pinned prompt (2)": {"context__pinned": 2},
    "reset token ('/')": {"context__reset": "/"},
}


def run(out, quick: bool) -> Study:
    k, horizon, reps = (6, 120, 500) if quick else (8, 300, 2000)
    rows, curves, ceilings = [], {}, {}
    for name, overrides in POLICIES.items():
        s = scenario("chat", context__length=k, run__steps=horizon, run__replicates=reps, **overrides)
        compiled, pc = chain(s)
        exact = criterion_curves(compiled, pc, horizon, 400_000)["waluigi_certain"]
        _, df = simulate(s)
        curves[name] = exact["holding"]
        ceiling = float(pc.population_amplitudes[:, compiled.mixture.labels.index("waluigi")].max())
        rows.append({"policy": name, "page-states": pc.chain.n_states,
                     "P(waluigi certain at t = H), exact": fmt(exact["holding"][-1], 4),
                     "P(ever certain by H), exact": fmt(exact["reached"][-1], 4),
                     "ever certain by H, simulated (95% interval)":
                         proportion(float(df[Criteria.column("reached", "waluigi_certain")].iloc[-1]), reps),
                     "largest waluigi amplitude on any page-state, exact": fmt(ceiling, 4)})
        ceilings[name] = ceiling

    def draw(fig, ax):
        for name, c in curves.items():
            ax.plot(c, label=name)
        ax.set_xlabel("step t")
        ax.set_ylabel("P(waluigi amplitude > 0.99 at t), exact")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)

    name = figure(out, "s09_policies.png", draw)
    ranked = sorted(rows, key=lambda r: -float(r["P(waluigi certain at t = H), exact"]))
    reset = "reset token ('/')"
    degenerate = ceilings[reset] <= 0.99
    finding = (f"At k = {k}, the policy that keeps the waluigi certain most often at t = {horizon} is "
               f"{ranked[0]['policy']} ({ranked[0]['P(waluigi certain at t = H), exact']}, exact), the least "
               f"{ranked[-1]['policy']} ({ranked[-1]['P(waluigi certain at t = H), exact']})"
               + (f". The reset result is degenerate, not protective: after a reset both premises read only the current "
                  f"message, and no page-state of that chain gives the waluigi more than {fmt(ceilings[reset], 4)} "
                  "(exact), so the criterion 'amplitude > 0.99' cannot be met at all under it."
                  if degenerate else "."))
    return Study(9, "Deletion policies compared", finding,
                 [(name, f"Exact probability that the waluigi premise's amplitude exceeds 0.99, chat scenario, k = {k}, "
                         "under five deletion policies.")], rows)
