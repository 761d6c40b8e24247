"""Bad input: scenario files that are not TOML or not a scenario, wrong types and values (NaN,
infinities, typos), ``--set`` and flags, hostile names and tokens, sizes beyond every budget.
Each must be refused in one line (exit 2) with nothing written; an ``either`` case may instead
run and pass its oracle.
"""

from __future__ import annotations

import os

from .case import add
from .oracles import analyze_json, run_ok, text_no_nan
from .texts import TOY, iid_scn, q, scn, toy_body

# ---- bad scenario files ------------------------------------------------------------------------

def file_cases():
    V = "validate"
    add("file", "missing file", [V, "nope.toml"], "error")
    add("file", "directory as scenario", [V, "d"], "error", setup=lambda c: (c.work / "d").mkdir())
    add("file", "fifo as scenario", [V, "fifo.toml"], "error", setup=lambda c: os.mkfifo(c.work / "fifo.toml"))
    add("file", "fifo as run scenario", ["run", "fifo.toml", "--out", "out"], "error",
        setup=lambda c: os.mkfifo(c.work / "fifo.toml"))
    add("file", "/dev/zero as scenario", [V, "/dev/zero"], "error")
    add("file", "/dev/zero as run scenario", ["run", "/dev/zero", "--out", "out"], "error")
    add("file", "/dev/null as scenario", [V, "/dev/null"], "error")
    add("file", "symlink to /dev/zero", [V, "z.toml"], "error", setup=lambda c: os.symlink("/dev/zero",
                                                                                           c.work / "z.toml"))
    add("file", "/dev/zero as sweep scenario", ["sweep", "/dev/zero", "--out", "out"], "error")
    add("file", "/dev/zero as analyze scenario", ["analyze", "/dev/zero"], "error")
    add("file", "empty file", [V, "s.toml"], "error", files={"s.toml": ""})
    add("file", "non-UTF-8 bytes", [V, "s.toml"], "error", files={"s.toml": TOY.encode() + b"\n# \xff\xfe\xc3\x28\n"})
    add("file", "non-UTF-8 in a string", [V, "s.toml"], "error",
        files={"s.toml": TOY.replace('"w"', '"w\xe9"').encode("latin-1")})
    add("file", "UTF-16 file", [V, "s.toml"], "error", files={"s.toml": TOY.encode("utf-16")})
    add("file", "NUL bytes", [V, "s.toml"], "error", files={"s.toml": TOY.encode() + b"\x00\x00"})
    add("file", "binary garbage", [V, "s.toml"], "error", files={"s.toml": bytes(range(256)) * 64})
    add("file", "TOML syntax error", [V, "s.toml"], "error", files={"s.toml": TOY + "\n[[[\n"})
    add("file", "duplicate key", [V, "s.toml"], "error", files={"s.toml": TOY + '\nname = "again"\n'})
    add("file", "UTF-8 BOM", [V, "s.toml"], "either", files={"s.toml": "\ufeff" + TOY})
    for depth in (30, 1000, 100_000):
        add("file", f"nested arrays depth {depth}", [V, "s.toml"], "error",
            files={"s.toml": TOY + "\n[extra]\nx = " + "[" * depth + "]" * depth + "\n"})
        add("file", f"nested inline tables depth {depth}", [V, "s.toml"], "error",
            files={"s.toml": TOY + "\n[extra]\nx = " + "{a = " * depth + "1" + "}" * depth + "\n"})
    add("file", "nested dotted table 200 levels", [V, "s.toml"], "error",
        files={"s.toml": TOY + "\n[" + ".".join(["t"] * 200) + "]\nx = 1\n"})
    add("file", "huge file (17 MiB of comments)", [V, "s.toml"], "error",
        setup=lambda c: (c.work / "s.toml").write_text(TOY + ("# " + "x" * 1022 + "\n") * (17 * 1024)))
    add("file", "huge description string 20 MiB", [V, "s.toml"], "error",
        setup=lambda c: (c.work / "s.toml").write_text(TOY.replace("name =",
                                                                   f'description = "{"x" * (20 << 20)}"\nname =', 1)))
    add("file", "huge file, run", ["run", "s.toml", "--out", "out"], "error",
        setup=lambda c: (c.work / "s.toml").write_text(TOY + ("# " + "x" * 1022 + "\n") * (17 * 1024)))
    add("file", "100k tokens", [V, "s.toml"], "either",
        files={"s.toml": scn(vocabulary="tokens = [" + ", ".join(f'"t{i}"' for i in range(100_000)) + ', "F", "U"]')})


# ---- types, values, NaN/inf -------------------------------------------------------------------

def value_cases():
    bad_context = {
        "length true": "length = true", "length string": 'length = "4"', "length float": "length = 4.0",
        "length 4.5": "length = 4.5", "length 0": "length = 0", "length -1": "length = -1",
        "length nan": "length = nan", "length inf": "length = inf", "length array": "length = [3]",
        "length table": "length = {a = 1}", "length date": "length = 1979-05-27",
        "deletion typo": 'length = 3\ndeletion = "fifi"', "deletion int": "length = 3\ndeletion = 1",
        "block without size": 'length = 3\ndeletion = "block"',
                   "block > k": 'length = 3\ndeletion = "block"\nblock = 4',
        "block 0": 'length = 3\ndeletion = "block"\nblock = 0',
                   "message no delimiter": 'length = 3\ndeletion = "message"',
        "delimiter not a token": 'length = 3\ndeletion = "message"\ndelimiter = "Z"',
        "pinned > k": 'length = 3\npinned = 4\nprompt = ["F","F","F","F"]', "pinned -1": "length = 3\npinned = -1",
        "pinned > prompt": "length = 3\npinned = 2", "reset not a token": 'length = 3\nreset = "Z"',
        "prompt unknown token": 'length = 3\nprompt = ["Z"]', "prompt pad": 'length = 3\nprompt = ["N"]',
        "prompt impossible": 'length = 3\nprompt = ["U", "F"]', "prompt not a list": 'length = 3\nprompt = "F"',
        "context unknown key": "length = 3\nlenght = 4",
    }
    for label, ctx in bad_context.items():
        add("types", f"context: {label}", ["validate", "s.toml"], "error", files={"s.toml": scn(context=ctx)})
    bad_run = {
        "replicates true": "replicates = true", "replicates string": 'replicates = "20"',
               "replicates 0": "replicates = 0",
        "replicates float": "replicates = 20.0", "steps -1": "steps = -1", "steps nan": "steps = nan",
        "seed -1": "seed = -1", "seed float": "seed = 1.5", "drift yes": 'drift = "yes"', "drift 1": "drift = 1",
        "max_memory 0": "max_memory_gib = 0", "max_memory nan": "max_memory_gib = nan",
        "max_memory inf": "max_memory_gib = inf", "max_memory -1": "max_memory_gib = -1",
        "run typo replicate": "replicate = 5", "run typo step": "step = 5",
    }
    for label, r in bad_run.items():
        add("types", f"run: {label}", ["validate", "s.toml"], "error", files={"s.toml": scn(run=r)})
    bad_samp = {"temperature -1": "temperature = -1.0", "temperature nan": "temperature = nan",
                "temperature inf": "temperature = inf", "temperature string": 'temperature = "0.5"',
                "temperature true": "temperature = true", "sampling typo": "temprature = 1.0"}
    for label, s in bad_samp.items():
        add("types", f"sampling: {label}", ["validate", "s.toml"], "error", files={"s.toml": scn(sampling=s)})
    bad_body = {
        "prior nan": dict(prior_l="nan"), "prior inf": dict(prior_l="inf"), "prior 0": dict(prior_l="0.0"),
        "prior -1": dict(prior_l="-1.0"), "prior true": dict(prior_l="true"), "prior string": dict(prior_l='"0.9"'),
        "emit p nan": dict(p="nan"), "emit p 1.5": dict(p="1.5"), "emit p -0.1": dict(p="-0.1"),
        "emit p inf": dict(p="inf"), "emit token unknown": dict(F="Z"),
    }
    for label, kw in bad_body.items():
        add("types", f"body: {label}", ["validate", "s.toml"], "error", files={"s.toml": scn(body=toy_body(**kw))})
    add("types", "emit sums to 0.9", ["validate", "s.toml"], "error",
        files={"s.toml": TOY.replace("emit = { \"F\" = 1.0 }", "emit = { \"F\" = 0.9 }")})
    add("types", "emit pad", ["validate", "s.toml"], "error",
        files={"s.toml": TOY.replace("emit = { \"F\" = 1.0 }", "emit = { \"N\" = 1.0 }")})
    add("types", "premise cast unknown", ["validate", "s.toml"], "error",
        files={"s.toml": TOY.replace('cast = ["luigi"]', 'cast = ["nobody"]')})
    add("types", "premise cast empty", ["validate", "s.toml"], "error",
        files={"s.toml": TOY.replace('cast = ["luigi"]', 'cast = []')})
    add("types", "no premises", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "constant"\ntoken = "F"\n')})
    add("types", "top-level typo nmae", ["validate", "s.toml"], "error", files={"s.toml": TOY.replace("name =",
                                                                                                      "nmae =")})
    add("types", "unknown top-level table", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + "\n[extras]\na = 1\n"})
    add("types", "criterion with two forms", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.both]\nwindow_only = ["U"]\nperiodic = 2\n'})
    add("types", "criterion periodic 0", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + "\n[absorption.p]\nperiodic = 0\n"})
    add("types", "criterion above nan", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.a]\npopulation = "luigi"\nabove = nan\n'})
    add("types", "criterion unknown population", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.a]\npopulation = "nobody"\nabove = 0.5\n'})
    add("types", "eps nan in constant", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "constant"\ntoken = "F"\neps = nan\n'
                                  '[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "cycle slip 2", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "cycle"\nsequence = ["F","U"]\nslip = 2.0\n'
                                  '[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "cycle empty sequence", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "cycle"\nsequence = []\n'
                                  '[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "unknown kind", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "oracle"\n[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "population distribution out of [0,1]", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[populations.b]\nprior = 0.5\ncount = 4\n'
               'template = { kind = "coin", heads = "F", tails = "U" }\n'
               'parameter = "p"\ndistribution = { kind = "uniform", low = -1.0, high = 2.0 }\n'})
    add("types", "population parameter wrong", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[populations.b]\nprior = 0.5\ncount = 4\n'
               'template = { kind = "coin", heads = "F", tails = "U" }\n'
               'parameter = "slip"\ndistribution = { kind = "uniform", low = 0.1, high = 0.9 }\n'})
    # --set
    for label, s in {"no =": "context.length", "empty path": "=3", "nan": "context.length=nan",
                     "inf": "context.length=inf",
                     "list": "context.length=[1,2]", "1e400": "context.length=1e400", "true": "context.length=true",
                     "unknown path": "context.lenght=3", "nested unknown": "run.seed.x=1",
                     "emit nan": "simulacra.luigi.states.kind.emit.F=nan",
                     "temperature -0.0": "sampling.temperature=-1e-300"}.items():
        add("set", f"--set {label}", ["validate", "s.toml", "--set", s], "error", files={"s.toml": TOY})
    add("set", "--set premise typo names it", ["validate", "s.toml", "--set", "premises.typo.prior=1"], "error",
        files={"s.toml": TOY}, err_contains="typo")
    add("set", "--set premise typo: no mention of cast", ["validate", "s.toml", "--set", "premises.typo.prior=1"],
        "error",
        files={"s.toml": TOY}, oracle=None, err_contains="premise")
    for label, argv in {"--seed -1": ["--seed", "-1"], "--seed 2^64": ["--seed", str(2**64)],
                        "--replicates 0": ["--replicates", "0"], "--replicates -5": ["--replicates", "-5"],
                        "--steps -1": ["--steps", "-1"], "--steps abc": ["--steps", "abc"],
                        "--max-memory nan": ["--max-memory", "nan"], "--max-memory -1": ["--max-memory", "-1"],
                        "unknown flag": ["--repliactes", "5"]}.items():
        add("flags", f"run {label}", ["run", "s.toml", "--out", "out", *argv], "error", files={"s.toml": TOY})
    for label, argv in {"--tolerance 0": ["--tolerance", "0"], "--tolerance nan": ["--tolerance", "nan"],
                        "--horizon -1": ["--horizon", "-1"], "--power -2": ["--power", "-2"],
                        "--max-states 0": ["--max-states", "0"]}.items():
        add("flags", f"analyze {label}", ["analyze", "s.toml", *argv], "error", files={"s.toml": TOY})
    for label, argv in {"--workers 0": ["--workers", "0"], "--workers -1": ["--workers", "-1"]}.items():
        add("flags", f"sweep {label}", ["sweep", "s.toml", "--grid", "context.length=2,3", "--out", "out", *argv],
            "error", files={"s.toml": TOY})
    add("flags", "no command", [], "error")
    add("flags", "unknown command", ["frobnicate"], "error")


# ---- names, tokens ----------------------------------------------------------------------------

HOSTILE_NAMES = {
    "dotdot": "../../esc", "slash": "a/b", "absolute": "{R}/abs", "dot": ".", "dotdot-only": "..",
    "space": "a b", "empty": "", "mathtext": "$\\frac$", "mathtext2": "$x^{$", "newline": "a\nb", "bell": "a\u0007b",
    "nul": "a\u0000b", "unicode-rtl": "a\u202eb", "65 chars": "x" * 65, "leading dash": "-x", "backslash": "a\\b",
    "tilde": "~", "percent": "%s%n", "emoji": "a\U0001F600",
}

PATH_LIKE = {"dotdot", "slash", "absolute", "dot", "empty", "mathtext", "newline", "65 chars"}


def name_cases():
    for label, raw in HOSTILE_NAMES.items():
        def files_for(where, raw=raw):
            def setup(ctx):
                value = raw.replace("{R}", str(ctx.root))
                if where == "scenario name":
                    text = scn(name=q(value))
                elif where == "premise":
                    text = scn(body=toy_body(pl=value))
                elif where == "simulacrum":
                    text = scn(body=toy_body(luigi=value))
                elif where == "criterion":
                    text = scn(body=toy_body(crit=value))
                else:
                    text = scn(body=toy_body(label=value))
                (ctx.work / "s.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
            return setup
        for where in ("scenario name", "premise", "simulacrum", "criterion", "population label"):
            if where != "scenario name" and label not in PATH_LIKE:
                continue
            cmd = ["run", "s.toml", "--replicates", "4", "--steps", "4"]  # default output location: names are used
            add("names", f"{where} {label}", cmd, "error", setup=files_for(where))
    # names via --set and sweep grids, default output location
    add("names", "--set name=../../esc", ["run", "s.toml", "--set", 'name="../../esc"', "--replicates", "4", "--steps",
                                          "4"],
        "error", files={"s.toml": TOY})
    add("names", "--set name absolute", ["run", "s.toml", "--set", 'name="{R}/abs"', "--replicates", "4", "--steps",
                                         "4"],
        "error", files={"s.toml": TOY})
    add("names", "sweep grid over name ../../esc",
        ["sweep", "s.toml", "--grid", 'name="../../esc","ok"', "--replicates", "4", "--steps", "4", "--workers", "1"],
        "error", files={"s.toml": TOY})
    add("names", "analyze name ../../esc default out", ["analyze", "s.toml", "--out", "out"], "error",
        files={"s.toml": scn(name=q("../../esc"))})
    hostile_tokens = {"mathtext": "$\\frac$", "mathtext-open": "$", "space": "a b", "empty": "", "newline": "a\nb",
                      "tab": "\t", "bell": "\u0007", "nul": "\u0000", "65 chars": "t" * 65, "zero-width": "\u200b",
                      "rtl override": "\u202e"}
    for label, tok in hostile_tokens.items():
        expect = "either" if label.startswith("mathtext") else "error"
        add("tokens", f"token {label} (run)", ["run", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4"],
            expect,
            files={"s.toml": scn(vocabulary=f'tokens = ["F", {q(tok)}]', body=toy_body(U=tok))},
            oracle=run_ok(steps=4, replicates=4))
    add("tokens", "pad is a token", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", "U"]\npad = "F"')})
    add("tokens", "duplicate tokens", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", "U", "F"]')})
    add("tokens", "empty vocabulary", ["validate", "s.toml"], "error", files={"s.toml": scn(vocabulary="tokens = []")})
    add("tokens", "token not a string", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", 1]')})
    add("tokens", "pad with whitespace", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", "U"]\npad = " "')})
    add("tokens", "unicode token é (run)", ["run", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4"],
        "either",
        files={"s.toml": scn(vocabulary='tokens = ["F", "é"]', body=toy_body(U="é"))}, oracle=run_ok(steps=4))
    add("tokens", "mathtext name in plot title (analyze --out)", ["analyze", "s.toml", "--out", "out"], "either",
        files={"s.toml": scn(vocabulary='tokens = ["F", "$\\\\frac$"]', body=toy_body(U="$\\frac$"))},
        oracle=lambda c, o, e: None if (c.work / "out" / "report.json").is_file() else "report.json missing")


# ---- sizes ------------------------------------------------------------------------------------

def size_cases():
    big = {"1e8": 10**8, "1e9": 10**9, "1e18": 10**18, "2^63-1": 2**63 - 1}
    for label, n in big.items():
        add("sizes", f"run --replicates {label}", ["run", "s.toml", "--out", "out", "--replicates", str(n), "--steps",
                                                   "5"],
            "error", files={"s.toml": TOY})
        add("sizes", f"run --steps {label}", ["run", "s.toml", "--out", "out", "--steps", str(n), "--replicates", "10"],
            "error", files={"s.toml": TOY})
        add("sizes", f"context.length {label}", ["run", "s.toml", "--out", "out", "--steps", "5", "--replicates", "10",
                                                 "--set", f"context.length={n}"], "error", files={"s.toml": TOY})
        add("sizes", f"periodic {label}", ["run", "s.toml", "--out", "out", "--steps", "5", "--replicates", "10"],
            "error", files={"s.toml": TOY + f"\n[absorption.orbit]\nperiodic = {n}\n"})
        add("sizes", f"population count {label}", ["validate", "s.toml"], "error",
            files={"s.toml": TOY + f'\n[populations.b]\nprior = 0.5\ncount = {n}\n'
                   'template = { kind = "coin", heads = "F", tails = "U" }\n'
                   'parameter = "p"\ndistribution = { kind = "uniform", low = 0.1, high = 0.9 }\n'})
    add("sizes", "run --steps 1e20", ["run", "s.toml", "--out", "out", "--steps", str(10**20)], "error",
        files={"s.toml": TOY})
    add("sizes", "run --replicates 1e20", ["run", "s.toml", "--out", "out", "--replicates", str(10**20)], "error",
        files={"s.toml": TOY})
    add("sizes", "run --seed 1e20", ["run", "s.toml", "--out", "out", "--seed", str(10**20)], "error",
        files={"s.toml": TOY})
    add("sizes", "replicates 1e20 float in file", ["validate", "s.toml"], "error",
        files={"s.toml": scn(run="replicates = 1e20")})
    cast = ", ".join(f'"m{i}"' for i in range(8))
    sims = "".join(f'\n[simulacra.m{i}]\nkind = "coin"\nheads = "F"\ntails = "U"\n' for i in range(8))
    for every in (10**3, 10**9):  # 8 x 1000 product states is within the budget; 8 x 10^9 is not
        add("sizes", f"8 cast members turns.every {every}", ["validate", "s.toml"],
            "either" if every == 10**3 else "error",
            files={"s.toml": scn(body=sims + f"\n[premises.many]\nprior = 1.0\ncast = [{cast}]\n"
                                 f"turns.every = {every}\n")})
    add("sizes", "analyze softened toy k=40", ["analyze", "s.toml", "--set", "context.length=40"], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }',
                                                     'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze softened toy k=40 --max-states 1e12",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**12)], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }',
                                                     'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze toy k=40 (41 states is fine)", ["analyze", "s.toml", "--set", "context.length=40", "--json"],
        "either",
        files={"s.toml": TOY},
        oracle=analyze_json(lambda r: None if r["closed_classes"][0]["probability"] > 1 - 1e-9 else "not absorbed"))
    for flag in ("--horizon", "--power"):
        for n in (10**9, 10**18):
            add("sizes", f"analyze {flag} {n:.0e}", ["analyze", "s.toml", flag, str(n)], "either",
                files={"s.toml": TOY},
                oracle=text_no_nan)
    add("sizes", "analyze --power 1e9 (squaring stays cheap)", ["analyze", "s.toml", "--power", str(10**9), "--json"],
        "either", files={"s.toml": TOY},
        oracle=analyze_json(lambda r: None))
    add("sizes", "run --exact --max-states 1e15 softened k=40",
        ["run", "s.toml", "--exact", "--max-states", str(10**15), "--set", "context.length=40", "--out", "out"],
        "either",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }',
                                                     'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))},
        oracle=run_ok())
    add("sizes", "analyze softened toy k=40 --max-states 1e15",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**15)], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }',
                                                     'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze toy k=40 --max-states 1e7 (fits the memory budget)",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**7), "--json"], "either",
        files={"s.toml": TOY},
        oracle=analyze_json(lambda r: None if r["n_states"] < 10**4 and r["closed_classes"][0]["probability"] > 1 - 1e-9
                            else f"{r['n_states']} states, or not absorbed"))
    iid300 = iid_scn({f"t{i}": 1 / 300 for i in range(300)}, k=2)
    add("sizes", "analyze iid over 300 tokens k=2 --max-memory 2", ["analyze", "s.toml", "--max-memory", "2"], "error",
        files={"s.toml": iid300})
    add("sizes", "deletion none steps 1e6 replicates 1e4", ["run", "s.toml", "--out", "out", "--steps", str(10**6),
                                                           "--replicates", str(10**4), "--set",
                                                            'context.deletion="none"'],
        "error", files={"s.toml": TOY})
    add("sizes", "drift with 3000 tokens", ["run", "s.toml", "--out", "out", "--steps", "1000", "--replicates", "10000",
                                           "--set", "run.drift=true"], "error",
        files={"s.toml": iid_scn({f"t{i}": 1 / 3000 for i in range(3000)}, k=64)})
