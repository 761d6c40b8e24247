"""Study 10 — Semiotic coin flip: a mixture of fair coins and repeaters latches onto a run after
a few identical tokens. A repeater prints the token it last saw with probability q (its first
token is fair). Latching probability = P(next token continues the run | a run of n identical
tokens), read exactly from the mixture of scenarios/semiotic.toml, and checked by simulation."""

from __future__ import annotations

import numpy as np
from common import Study, figure, fmt, proportion, scenario, simulate

from ecology.kinds.observables import Criteria


def run(out, quick: bool) -> Study:
    from ecology.core.compile import compile_scenario

    s = scenario("semiotic")
    k = s.context.length
    q = s.simulacra["repeater"].states["sawH"].emit["H"]
    compiled = compile_scenario(s)
    ns = np.arange(0, k + 1)
    windows = np.array([[2] * (k - n) + [0] * n for n in ns])  # pads then a run of n H's
    step = compiled.mixture.read(windows)
    latch = np.exp(step.log_p[:, 0])
    latch[0] = np.nan  # no run yet
    _, df = simulate(s)
    rows = [{"run length n": int(n), "P(continue | run of n)": fmt(float(latch[n]), 5),
             "repeater amplitude": fmt(float(np.exp(step.log_amplitude[n, 1])), 5)} for n in ns[1:]]
    n_half = int(ns[1:][np.argmax(latch[1:] > 0.75)])

    def draw(fig, ax):
        ax.plot(ns[1:], latch[1:], marker="o", label="P(next token continues the run)")
        ax.plot(ns, np.exp(step.log_amplitude[:, 1]), marker="s", label="repeater amplitude")
        ax.set_xlabel("run length n (identical tokens at the end of the window)")
        ax.set_ylabel("probability")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)

    name = figure(out, "s10_coinflip.png", draw)
    finding = (f"With 90% fair coins and 10% repeaters (q = {q}), a run of 1 continues with probability "
               f"{fmt(float(latch[1]), 3)}, a run of {n_half} already with {fmt(float(latch[n_half]), 3)} and a run of {k} with "
               f"{fmt(float(latch[k]), 4)}: the mixture latches; "
               f"{proportion(float(df[Criteria.column('reached', 'latched')].iloc[-1]), s.run.replicates)} "
               f"(95% interval) of {s.run.replicates} replicates made the repeater certain (> 0.99) within {s.run.steps} steps.")
    return Study(10, "Semiotic coin flip", finding,
                 [(name, "Exact probability that a run of n identical tokens continues, and the repeater's amplitude "
                         "on such a window (k = 12).")], rows)
