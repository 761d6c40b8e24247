"""Valid input whose answer is known: page-state counts of large vocabularies, the toy's closed forms
(one absorbing ``U^k``, the ``F^k`` self-loop as an eigenvalue), the exact chain against
simulation, tiny priors, floors and temperatures, every deletion rule and the shipped scenarios.
"""

from __future__ import annotations

import json
import math

from .case import REPO, add
from .oracles import analyze_json, fraction_is, load_summary, n_states_is, run_ok, strict_json, text_no_nan
from .texts import TOY, coin_scn, iid_scn, scn, toy_body

# ---- numerics and valid edge cases -------------------------------------------------------------

def numeric_cases():
    # V >= 256 in analyze: true page-state counts
    v300 = [f"t{i}" for i in range(300)]
    add("exact", "iid over 300 tokens k=2: 1+300+300^2 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": iid_scn(dict.fromkeys(v300, 1 / 300), k=2)}, oracle=n_states_is(1 + 300 + 300**2, [300**2]))
    add("exact", "coin t0/t299 over 300 tokens k=8: 511 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": coin_scn("t0", "t299", v300, 8)}, oracle=n_states_is(511, [256]))
    add("exact", "coin t255/t256 over 300 tokens k=8: 511 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": coin_scn("t255", "t256", v300, 8)}, oracle=n_states_is(511, [256]))
    add("exact", "coin t0/t299 over 300 tokens k=8: 511 states (text)", ["analyze", "s.toml"], "either",
        files={"s.toml": coin_scn("t0", "t299", v300, 8)},
        oracle=lambda c, o, e: None if o.startswith("coinv: 511 page-states") else f"first line {o.splitlines()[0]!r}")
    v256 = [f"t{i}" for i in range(256)]
    add("exact", "coin t254/t255 over 256 tokens k=6: 127 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": coin_scn("t254", "t255", v256, 6)}, oracle=n_states_is(127, [64]))
    v70000 = [f"t{i}" for i in range(70000)]
    add("exact", "coin over 70000 tokens k=5: 63 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": coin_scn("t0", "t69999", v70000, 5)}, oracle=n_states_is(63, [32]))

    def exact_matches_sim(ctx, stdout, stderr):
        try:
            s = load_summary(ctx)
            sim = s["criteria"]["tails"]["reached"]
            ex = s["criteria"]["tails"]["exact"]["reached_by_horizon"]
        except Exception as err:  # noqa: BLE001
            return f"no exact overlay: {err}"
        n = s["replicates"]
        sd = math.sqrt(max(ex * (1 - ex), 1 / n) / n)
        if abs(sim - ex) <= 5 * sd + 1e-9:
            return None
        return f"exact {ex:.4g} vs simulated {sim:.4g} (5 sigma = {5 * sd:.3g})"
    add("exact", "run --exact V=300 coin k=8: exact agrees with simulation",
        ["run", "s.toml", "--exact", "--out", "out", "--steps", "40", "--replicates", "2000"], "ok",
        files={"s.toml": coin_scn("t0", "t299", v300, 8)}, oracle=exact_matches_sim)
    add("exact", "run --exact V=2 coin k=3: exact agrees with simulation",
        ["run", "s.toml", "--exact", "--out", "out", "--steps", "40", "--replicates", "2000"], "ok",
        files={"s.toml": coin_scn("H", "T", ["H", "T"], 3)}, oracle=exact_matches_sim)

    # closed forms of the toy
    for k in (1, 2, 3, 5):
        lam = (0.9 + 0.1 * 0.9 ** (k + 1)) / (0.9 + 0.1 * 0.9 ** k)

        def toy_check(r, lam=lam, k=k):
            if len(r["closed_classes"]) != 1 or r["closed_classes"][0]["absorbing_state"] != " ".join(["U"] * k):
                return f"closed classes {[c['absorbing_state'] for c in r['closed_classes']]}, expected U^{k}"
            if abs(r["closed_classes"][0]["probability"] - 1) > 1e-9:
                return f"P(end in U^k) = {r['closed_classes'][0]['probability']}"
            eig = sorted(r["eigenvalues"], reverse=True)
            if any(abs(e - lam) < 1e-9 for e in eig):
                return None
            return f"eigenvalues {eig[:3]} lack the F^k self-loop {lam:.10g}"
        add("exact", f"toy k={k}: one absorbing U^k, eigenvalue = F^k self-loop",
            ["analyze", "s.toml", "--json", "--set", f"context.length={k}"], "ok", files={"s.toml": TOY},
            oracle=analyze_json(toy_check))
    # tiny priors and floors
    for prior in ("1e-300", "1e-305", "5e-324"):
        add("numerics", f"waluigi prior {prior}: probabilities in [0,1]", ["analyze", "s.toml", "--json"], "either",
            files={"s.toml": scn(body=toy_body(prior_l="1.0", prior_w=prior))}, oracle=analyze_json(lambda r: None))
        add("numerics", f"waluigi prior {prior}: text has no nan", ["analyze", "s.toml", "--tolerance", "0.5",
                                                                    "--horizon", "5"],
            "either", files={"s.toml": scn(body=toy_body(prior_l="1.0", prior_w=prior))}, oracle=text_no_nan)
    for eps in ("1e-300", "1e-320"):
        soft = scn(body=f"""
[simulacra.luigi]
kind = "constant"
token = "F"
eps = {eps}
[simulacra.waluigi]
kind = "waluigi"
mask = "F"
reveal = "U"
eps = {eps}
[premises.luigi]
prior = 0.9
cast = ["luigi"]
[premises.waluigi]
prior = 0.1
cast = ["waluigi"]
[absorption.revealed]
window_only = ["U"]
""")
        add("numerics", f"floors eps {eps}: probabilities in [0,1]", ["analyze", "s.toml", "--json", "--tolerance",
                                                                      "1e-3"],
            "either", files={"s.toml": soft}, oracle=analyze_json(lambda r: None))
        add("numerics", f"floors eps {eps}: run finite", ["run", "s.toml", "--out", "out", "--steps", "30"], "ok",
            files={"s.toml": soft}, oracle=run_ok(steps=30))
    for temp in ("0", "0.0", "1e-320", "5e-324", "1e-300", "1e-12"):
        add("numerics", f"temperature {temp}: the likelier token always", ["run", "s.toml", "--out", "out"], "ok",
            files={"s.toml": iid_scn({"F": 0.6, "U": 0.4}, temperature=float(temp), steps=10, replicates=50)},
            oracle=fraction_is("all", 1.0))
    add("numerics", "temperature 1e-320 with likelier token second", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": iid_scn({"U": 0.4, "F": 0.6}, temperature=1e-320, steps=10, replicates=50, crit="F")},
        oracle=fraction_is("all", 1.0))
    add("numerics", "temperature 1e300", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": iid_scn({"F": 0.6, "U": 0.4}, temperature=1e300, steps=10, replicates=50)},
        oracle=run_ok(steps=10))
    add("numerics", "temperature 1e-320 analyze", ["analyze", "s.toml", "--json"], "ok",
        files={"s.toml": iid_scn({"F": 0.6, "U": 0.4}, temperature=1e-320, k=3)}, oracle=n_states_is(4, [1]))
    add("numerics", "probabilities 1e-300 / 1-1e-300", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": iid_scn({"F": 1.0, "U": 1e-300}, steps=10, replicates=20)}, oracle=fraction_is("all", 1.0))
    add("numerics", "prior ratio 1e300", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": scn(body=toy_body(prior_l="1e300", prior_w="1.0"))}, oracle=run_ok())


def valid_cases():
    R = ["--out", "out"]
    add("valid", "k = 1", ["run", "s.toml", *R, "--set", "context.length=1"], "ok", files={"s.toml": TOY},
        oracle=run_ok(steps=20))
    one = iid_scn({"A": 1.0}, k=3, steps=5, replicates=10)
    add("valid", "one token: absorbed by step k", ["run", "s.toml", *R], "ok", files={"s.toml": one},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["all"]["reached_curve"] == [0, 0, 0, 1, 1, 1]
                      else f"curve {s['criteria']['all']['reached_curve']}, expected [0,0,0,1,1,1]"))
    add("valid", "one token analyze: k + 1 states", ["analyze", "s.toml", "--json"], "ok", files={"s.toml": one},
        oracle=n_states_is(4, [1]))
    add("valid", "deletion none", ["run", "s.toml", *R, "--set", 'context.deletion="none"'], "ok",
        files={"s.toml": TOY},
        oracle=run_ok(steps=20))
    add("valid", "deletion none analyze refused", ["analyze", "s.toml", "--set", 'context.deletion="none"'], "error",
        files={"s.toml": TOY})
    add("valid", "block = k", ["run", "s.toml", *R, "--set", 'context.deletion="block"', "--set", "context.block=3"],
        "ok",
        files={"s.toml": TOY}, oracle=run_ok(steps=20))
    add("valid", "block = k analyze", ["analyze", "s.toml", "--json", "--set", 'context.deletion="block"', "--set",
                                       "context.block=3"], "ok", files={"s.toml": TOY},
        oracle=analyze_json(lambda r: None))
    add("valid", "pinned prompt", ["run", "s.toml", *R], "ok",
        files={"s.toml": scn(context='length = 4\npinned = 1\nprompt = ["F"]')}, oracle=run_ok(steps=20))
    add("valid", "pinned analyze", ["analyze", "s.toml", "--json"], "ok",
        files={"s.toml": scn(context='length = 4\npinned = 1\nprompt = ["F"]')}, oracle=analyze_json(lambda r: None))
    reset = iid_scn({"a": 0.5, "b": 0.3, "E": 0.2}, k=4, extra_ctx='reset = "E"', steps=20, replicates=20)
    add("valid", "reset token", ["run", "s.toml", *R], "ok", files={"s.toml": reset}, oracle=run_ok(steps=20))
    add("valid", "reset token analyze", ["analyze", "s.toml", "--json"], "ok", files={"s.toml": reset},
        oracle=analyze_json(lambda r: None))
    msg = iid_scn({"a": 0.5, "b": 0.3, "E": 0.2}, k=4, extra_ctx='deletion = "message"\ndelimiter = "E"', steps=20)
    add("valid", "message deletion", ["run", "s.toml", *R], "ok", files={"s.toml": msg}, oracle=run_ok(steps=20))
    add("valid", "empty prompt", ["run", "s.toml", *R], "ok", files={"s.toml": scn(context="length = 3\nprompt = []")},
        oracle=run_ok(steps=20))
    add("valid", "long prompt (50 > k)", ["run", "s.toml", *R], "ok",
        files={"s.toml": scn(context="length = 3\nprompt = [" + ", ".join(['"F"'] * 50) + "]")},
        oracle=run_ok(steps=20))
    add("valid", "prompt U absorbs at once", ["run", "s.toml", *R], "ok",
        files={"s.toml": scn(context='length = 2\nprompt = ["U", "U"]')},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["revealed"]["reached_curve"][0] == 1.0
                      else "U^k prompt not absorbed at step 0"))
    add("valid", "0 steps", ["run", "s.toml", *R, "--steps", "0"], "ok", files={"s.toml": TOY}, oracle=run_ok(steps=0))
    add("valid", "1 replicate", ["run", "s.toml", *R, "--replicates", "1"], "ok", files={"s.toml": TOY},
        oracle=run_ok(replicates=1))
    add("valid", "--steps flag honoured", ["run", "s.toml", *R, "--steps", "7"], "ok", files={"s.toml": TOY},
        oracle=run_ok(steps=7))
    add("valid", "drift", ["run", "s.toml", *R, "--set", "run.drift=true"], "ok", files={"s.toml": TOY},
        oracle=run_ok())
    add("valid", "seed 2^63-1", ["run", "s.toml", *R, "--seed", str(2**63 - 1)], "ok", files={"s.toml": TOY},
        oracle=run_ok())
    add("valid", "--json output", ["run", "s.toml", "--json", *R], "ok", files={"s.toml": TOY},
        oracle=lambda c, o, e: None if strict_json(o)["replicates"] == 20 else "bad JSON summary")
    add("valid", "periodic 1 under none never holds", ["run", "s.toml", *R, "--set", 'context.deletion="none"'], "ok",
        files={"s.toml": TOY + "\n[absorption.still]\nperiodic = 1\n"},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["still"]["reached"] == 0 else "periodic held under none"))
    add("valid", "analyze --export and --out", ["analyze", "s.toml", "--export", "ex", "--out", "out", "--power", "3"],
        "ok",
        files={"s.toml": TOY}, oracle=lambda c, o, e: None if (c.work / "ex" / "transition.npz").is_file()
        and (c.work / "out" / "report.json").is_file() else "export or report missing")
    add("valid", "analyze --horizon 0 --power 0", ["analyze", "s.toml", "--horizon", "0", "--power", "0"], "ok",
        files={"s.toml": TOY}, oracle=text_no_nan)
    add("valid", "schema is JSON", ["schema"], "ok", oracle=lambda c, o, e: None if isinstance(json.loads(o),
                                                                                               dict) else "not JSON")
    add("valid", "--version", ["--version"], "ok", oracle=lambda c, o, e: None if o.startswith("ecology") else f"{o!r}")
    for f in sorted((REPO / "scenarios").glob("*.toml")):
        add("valid", f"validate shipped {f.name}", ["validate", str(f)], "ok")
        add("valid", f"run shipped {f.name} small", ["run", str(f), *R, "--steps", "15", "--replicates", "30"], "ok",
            oracle=run_ok(steps=15, replicates=30))
