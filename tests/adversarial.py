"""Adversarial suite for the ``ecology`` command line (standalone; not collected by pytest).

    .venv/bin/python tests/adversarial.py [--only SUBSTRING] [--jobs N] [--timeout S] [--json FILE]

Each case runs the installed CLI in a subprocess, in a fresh temporary directory
(``ROOT/a/b/work`` is the working directory, so that a write that escapes it through ``..`` or an
absolute path lands in ``ROOT`` and is seen), under an address-space limit (RLIMIT_AS, 3 GiB) and a
wall-clock timeout, and is classified as

- ``clean``: bad input gives exit 2, exactly one stderr line starting ``error: ``, no traceback and
  nothing written; valid input gives exit 0 and passes the case's oracle;
- ``wrong``: exit 0 on bad input, an oracle that fails (a value contradicting a closed form or the
  exact chain, a file written outside the working directory, a symlink target overwritten, a typo
  or flag silently ignored), valid input refused, or files left behind by a refused input;
- ``traceback``: a Python traceback, an exit status other than 0/2/130, or more than one stderr line;
- ``oom``: MemoryError (caught or not) or killed by the memory limit;
- ``hang``: the timeout fired.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 3 * 1024**3
OUTCOMES = ("clean", "wrong", "traceback", "oom", "hang")


def ecology_command() -> list[str]:
    binary = REPO / ".venv" / "bin" / "ecology"
    if binary.exists():
        return [str(binary)]
    return [sys.executable, "-m", "ecology"]


# ----------------------------------------------------------------------------------------------
# scenario text
# ----------------------------------------------------------------------------------------------

def q(text: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes for the BMP)."""
    return json.dumps(text, ensure_ascii=False)


def toy_body(F="F", U="U", luigi="luigi", waluigi="waluigi", pl="luigi", pw="waluigi", crit="revealed",
             label=None, prior_l="0.9", prior_w="0.1", p="0.9") -> str:
    lab = f"population = {q(label)}\n" if label is not None else ""
    return f"""
[simulacra.{q(luigi)}]
start = "kind"
states.kind.emit = {{ {q(F)} = 1.0 }}

[simulacra.{q(waluigi)}]
start = "hiding"
states.hiding.emit = {{ {q(F)} = {p}, {q(U)} = {1 - float(p) if _isnum(p) else 0.1} }}
states.hiding.on = {{ {q(U)} = "revealed" }}
states.revealed.emit = {{ {q(U)} = 1.0 }}

[premises.{q(pl)}]
prior = {prior_l}
cast = [{q(luigi)}]
{lab}
[premises.{q(pw)}]
prior = {prior_w}
cast = [{q(waluigi)}]

[absorption.{q(crit)}]
window_only = [{q(U)}]
"""


def _isnum(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def scn(name='"w"', top="", vocabulary='tokens = ["F", "U"]', context="length = 3", sampling="",
        run="steps = 20\nreplicates = 20\nseed = 1", body=None, extra="") -> str:
    return (f"name = {name}\n{top}\n[vocabulary]\n{vocabulary}\n\n[context]\n{context}\n\n[sampling]\n{sampling}\n\n"
            f"[run]\n{run}\n{toy_body() if body is None else body}\n{extra}\n")


TOY = scn()


def iid_scn(probs: dict, k=3, temperature=None, steps=10, replicates=20, crit=None, extra_ctx="", name="iid") -> str:
    tokens = list(probs)
    samp = "" if temperature is None else f"temperature = {temperature!r}"
    table = ", ".join(f"{q(t)} = {p!r}" for t, p in probs.items())
    crit = crit or tokens[0]
    return scn(name=q(name), vocabulary=f"tokens = [{', '.join(q(t) for t in tokens)}]",
               context=f"length = {k}\n{extra_ctx}", sampling=samp,
               run=f"steps = {steps}\nreplicates = {replicates}\nseed = 3",
               body=f"""
[simulacra.src]
kind = "iid"
probs = {{ {table} }}

[premises.src]
prior = 1.0
cast = ["src"]

[absorption.all]
window_only = [{q(crit)}]
""")


def coin_scn(heads: str, tails: str, tokens: list[str], k: int, steps=30, replicates=400) -> str:
    return scn(name='"coinv"', vocabulary=f"tokens = [{', '.join(q(t) for t in tokens)}]", context=f"length = {k}",
               run=f"steps = {steps}\nreplicates = {replicates}\nseed = 5",
               body=f"""
[simulacra.c]
kind = "coin"
heads = {q(heads)}
tails = {q(tails)}
p = 0.5

[premises.c]
prior = 1.0
cast = ["c"]

[absorption.tails]
window_only = [{q(tails)}]
""")


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------

@dataclass
class Ctx:
    root: Path
    work: Path
    fixtures: Path


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]  # after "ecology"; {W} work dir, {R} root, {X} fixtures
    expect: str  # "error", "ok" or "either" (a clean refusal or a correct answer)
    files: dict = field(default_factory=dict)  # relative path -> str or bytes
    setup: Callable[[Ctx], None] | None = None
    oracle: Callable[[Ctx, str, str], str | None] | None = None
    err_contains: str | None = None  # a clean error must mention this
    concurrent: int = 1
    count_children: bool = False
    victims: tuple = ()  # paths (relative to work) that must be byte-identical afterwards


CASES: list[Case] = []


def add(category, name, argv, expect, **kw):
    CASES.append(Case(category, name, argv, expect, **kw))


def strict_json(text: str):
    def bad(c):
        raise ValueError(f"non-finite constant {c} in JSON")
    return json.loads(text, parse_constant=bad)


def load_summary(ctx: Ctx, out="out") -> dict:
    return strict_json((ctx.work / out / "summary.json").read_text())


def run_ok(out="out", steps=None, replicates=None, extra: Callable[[dict], str | None] | None = None):
    """Oracle of a valid run: summary.json, finite, fractions in [0, 1], the curve of steps + 1 values."""
    def check(ctx, stdout, stderr):
        try:
            s = load_summary(ctx, out)
        except Exception as err:  # noqa: BLE001 - any failure to read is a wrong result
            return f"summary.json unreadable: {err}"
        for crit, a in s["criteria"].items():
            if not 0.0 <= a["reached"] <= 1.0:
                return f"absorbed fraction of {crit} = {a['reached']}"
            if steps is not None and len(a["reached_curve"]) != steps + 1:
                return f"curve of {crit} has {len(a['reached_curve'])} values for {steps} steps"
        if replicates is not None and s["replicates"] != replicates:
            return f"summary says {s['replicates']} replicates, asked {replicates}"
        for png in ("populations.png", "reaching.png", "raster.png"):
            if not (ctx.work / out / png).is_file():
                return f"{png} missing"
        return extra(s) if extra else None
    return check


def fraction_is(crit: str, value: float):
    return run_ok(extra=lambda s: None if abs(s["criteria"][crit]["reached"] - value) < 1e-12
                  else f"absorbed fraction of {crit} = {s['criteria'][crit]['reached']}, expected {value}")


def analyze_json(check: Callable[[dict], str | None]):
    def oracle(ctx, stdout, stderr):
        try:
            r = strict_json(stdout)
        except Exception as err:  # noqa: BLE001
            return f"report JSON unreadable: {err}"
        for c in r.get("closed_classes", []):
            if not (0.0 <= c["probability"] <= 1.0 + 1e-12):
                return f"probability of ending in a closed class = {c['probability']}"
        t = r.get("expected_absorption_time")
        if t is not None and not (t >= 0 and math.isfinite(t)):
            return f"expected absorption time = {t}"
        total = sum(c["probability"] for c in r.get("closed_classes", []))
        if r.get("closed_classes") and abs(total - 1) > 1e-6:
            return f"closed-class probabilities sum to {total}"
        return check(r)
    return oracle


def n_states_is(n: int, closed_sizes: list[int] | None = None):
    def check(r):
        if r["n_states"] != n:
            return f"{r['n_states']} page-states, the truth is {n}"
        if closed_sizes is not None:
            sizes = sorted(c["size"] for c in r["closed_classes"])
            if sizes != sorted(closed_sizes):
                return f"closed classes of sizes {sizes}, the truth is {sorted(closed_sizes)}"
        return None
    return analyze_json(check)


def no_file_outside(ctx, stdout, stderr):
    return None  # the generic escape check does the work


def text_no_nan(ctx, stdout, stderr):
    low = stdout.lower()
    for bad in ("nan", "inf", "-0.000"):
        for tok in low.replace(",", " ").split():
            if tok.strip("()'") in (bad, "-" + bad):
                return f"printed {tok!r}"
    return None


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
    add("file", "symlink to /dev/zero", [V, "z.toml"], "error", setup=lambda c: os.symlink("/dev/zero", c.work / "z.toml"))
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
        setup=lambda c: (c.work / "s.toml").write_text(TOY.replace("name =", f'description = "{"x" * (20 << 20)}"\nname =', 1)))
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
        "block without size": 'length = 3\ndeletion = "block"', "block > k": 'length = 3\ndeletion = "block"\nblock = 4',
        "block 0": 'length = 3\ndeletion = "block"\nblock = 0', "message no delimiter": 'length = 3\ndeletion = "message"',
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
        "replicates true": "replicates = true", "replicates string": 'replicates = "20"', "replicates 0": "replicates = 0",
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
    add("types", "top-level typo nmae", ["validate", "s.toml"], "error", files={"s.toml": TOY.replace("name =", "nmae =")})
    add("types", "unknown top-level table", ["validate", "s.toml"], "error", files={"s.toml": TOY + "\n[extras]\na = 1\n"})
    add("types", "criterion with two forms", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.both]\nwindow_only = ["U"]\nperiodic = 2\n'})
    add("types", "criterion periodic 0", ["validate", "s.toml"], "error", files={"s.toml": TOY + "\n[absorption.p]\nperiodic = 0\n"})
    add("types", "criterion above nan", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.a]\npopulation = "luigi"\nabove = nan\n'})
    add("types", "criterion unknown population", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[absorption.a]\npopulation = "nobody"\nabove = 0.5\n'})
    add("types", "eps nan in constant", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "constant"\ntoken = "F"\neps = nan\n[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "cycle slip 2", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "cycle"\nsequence = ["F","U"]\nslip = 2.0\n[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "cycle empty sequence", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "cycle"\nsequence = []\n[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "unknown kind", ["validate", "s.toml"], "error",
        files={"s.toml": scn(body='[simulacra.a]\nkind = "oracle"\n[premises.a]\nprior = 1.0\ncast = ["a"]\n')})
    add("types", "population distribution out of [0,1]", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[populations.b]\nprior = 0.5\ncount = 4\ntemplate = { kind = "coin", heads = "F", tails = "U" }\n'
               'parameter = "p"\ndistribution = { kind = "uniform", low = -1.0, high = 2.0 }\n'})
    add("types", "population parameter wrong", ["validate", "s.toml"], "error",
        files={"s.toml": TOY + '\n[populations.b]\nprior = 0.5\ncount = 4\ntemplate = { kind = "coin", heads = "F", tails = "U" }\n'
               'parameter = "slip"\ndistribution = { kind = "uniform", low = 0.1, high = 0.9 }\n'})
    # --set
    for label, s in {"no =": "context.length", "empty path": "=3", "nan": "context.length=nan", "inf": "context.length=inf",
                     "list": "context.length=[1,2]", "1e400": "context.length=1e400", "true": "context.length=true",
                     "unknown path": "context.lenght=3", "nested unknown": "run.seed.x=1",
                     "emit nan": "simulacra.luigi.states.kind.emit.F=nan", "temperature -0.0": "sampling.temperature=-1e-300"}.items():
        add("set", f"--set {label}", ["validate", "s.toml", "--set", s], "error", files={"s.toml": TOY})
    add("set", "--set premise typo names it", ["validate", "s.toml", "--set", "premises.typo.prior=1"], "error",
        files={"s.toml": TOY}, err_contains="typo")
    add("set", "--set premise typo: no mention of cast", ["validate", "s.toml", "--set", "premises.typo.prior=1"], "error",
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
                kw = {}
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
                del kw
                (ctx.work / "s.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
            return setup
        for where in ("scenario name", "premise", "simulacrum", "criterion", "population label"):
            if where != "scenario name" and label not in PATH_LIKE:
                continue
            cmd = ["run", "s.toml", "--replicates", "4", "--steps", "4"]  # default output location: names are used
            add("names", f"{where} {label}", cmd, "error", setup=files_for(where))
    # names via --set and sweep grids, default output location
    add("names", "--set name=../../esc", ["run", "s.toml", "--set", 'name="../../esc"', "--replicates", "4", "--steps", "4"],
        "error", files={"s.toml": TOY})
    add("names", "--set name absolute", ["run", "s.toml", "--set", 'name="{R}/abs"', "--replicates", "4", "--steps", "4"],
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
        add("tokens", f"token {label} (run)", ["run", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4"], expect,
            files={"s.toml": scn(vocabulary=f'tokens = ["F", {q(tok)}]', body=toy_body(U=tok))},
            oracle=run_ok(steps=4, replicates=4))
    add("tokens", "pad is a token", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", "U"]\npad = "F"')})
    add("tokens", "duplicate tokens", ["validate", "s.toml"], "error", files={"s.toml": scn(vocabulary='tokens = ["F", "U", "F"]')})
    add("tokens", "empty vocabulary", ["validate", "s.toml"], "error", files={"s.toml": scn(vocabulary="tokens = []")})
    add("tokens", "token not a string", ["validate", "s.toml"], "error", files={"s.toml": scn(vocabulary='tokens = ["F", 1]')})
    add("tokens", "pad with whitespace", ["validate", "s.toml"], "error",
        files={"s.toml": scn(vocabulary='tokens = ["F", "U"]\npad = " "')})
    add("tokens", "unicode token é (run)", ["run", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4"], "either",
        files={"s.toml": scn(vocabulary='tokens = ["F", "é"]', body=toy_body(U="é"))}, oracle=run_ok(steps=4))
    add("tokens", "mathtext name in plot title (analyze --out)", ["analyze", "s.toml", "--out", "out"], "either",
        files={"s.toml": scn(vocabulary='tokens = ["F", "$\\\\frac$"]', body=toy_body(U="$\\frac$"))},
        oracle=lambda c, o, e: None if (c.work / "out" / "report.json").is_file() else "report.json missing")


# ---- sizes ------------------------------------------------------------------------------------

def size_cases():
    big = {"1e8": 10**8, "1e9": 10**9, "1e18": 10**18, "2^63-1": 2**63 - 1}
    for label, n in big.items():
        add("sizes", f"run --replicates {label}", ["run", "s.toml", "--out", "out", "--replicates", str(n), "--steps", "5"],
            "error", files={"s.toml": TOY})
        add("sizes", f"run --steps {label}", ["run", "s.toml", "--out", "out", "--steps", str(n), "--replicates", "10"],
            "error", files={"s.toml": TOY})
        add("sizes", f"context.length {label}", ["run", "s.toml", "--out", "out", "--steps", "5", "--replicates", "10",
                                                 "--set", f"context.length={n}"], "error", files={"s.toml": TOY})
        add("sizes", f"periodic {label}", ["run", "s.toml", "--out", "out", "--steps", "5", "--replicates", "10"], "error",
            files={"s.toml": TOY + f"\n[absorption.orbit]\nperiodic = {n}\n"})
        add("sizes", f"population count {label}", ["validate", "s.toml"], "error",
            files={"s.toml": TOY + f'\n[populations.b]\nprior = 0.5\ncount = {n}\ntemplate = {{ kind = "coin", heads = "F", '
                   'tails = "U" }\nparameter = "p"\ndistribution = { kind = "uniform", low = 0.1, high = 0.9 }\n'})
    add("sizes", "run --steps 1e20", ["run", "s.toml", "--out", "out", "--steps", str(10**20)], "error", files={"s.toml": TOY})
    add("sizes", "run --replicates 1e20", ["run", "s.toml", "--out", "out", "--replicates", str(10**20)], "error",
        files={"s.toml": TOY})
    add("sizes", "run --seed 1e20", ["run", "s.toml", "--out", "out", "--seed", str(10**20)], "error", files={"s.toml": TOY})
    add("sizes", "replicates 1e20 float in file", ["validate", "s.toml"], "error", files={"s.toml": scn(run="replicates = 1e20")})
    cast = ", ".join(f'"m{i}"' for i in range(8))
    sims = "".join(f'\n[simulacra.m{i}]\nkind = "coin"\nheads = "F"\ntails = "U"\n' for i in range(8))
    for every in (10**3, 10**9):  # 8 x 1000 product states is within the budget; 8 x 10^9 is not
        add("sizes", f"8 cast members turns.every {every}", ["validate", "s.toml"], "either" if every == 10**3 else "error",
            files={"s.toml": scn(body=sims + f"\n[premises.many]\nprior = 1.0\ncast = [{cast}]\nturns.every = {every}\n")})
    add("sizes", "analyze softened toy k=40", ["analyze", "s.toml", "--set", "context.length=40"], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }', 'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze softened toy k=40 --max-states 1e12",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**12)], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }', 'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze toy k=40 (41 states is fine)", ["analyze", "s.toml", "--set", "context.length=40", "--json"], "either",
        files={"s.toml": TOY}, oracle=analyze_json(lambda r: None if r["closed_classes"][0]["probability"] > 1 - 1e-9 else "not absorbed"))
    for flag in ("--horizon", "--power"):
        for n in (10**9, 10**18):
            add("sizes", f"analyze {flag} {n:.0e}", ["analyze", "s.toml", flag, str(n)], "either", files={"s.toml": TOY},
                oracle=text_no_nan)
    add("sizes", "analyze --power 1e9 (squaring stays cheap)", ["analyze", "s.toml", "--power", str(10**9), "--json"],
        "either", files={"s.toml": TOY},
        oracle=analyze_json(lambda r: None))
    add("sizes", "run --exact --max-states 1e15 softened k=40",
        ["run", "s.toml", "--exact", "--max-states", str(10**15), "--set", "context.length=40", "--out", "out"], "either",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }', 'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))},
        oracle=run_ok())
    add("sizes", "analyze softened toy k=40 --max-states 1e15",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**15)], "error",
        files={"s.toml": scn(body=toy_body().replace('states.kind.emit = { "F" = 1.0 }', 'states.kind.emit = { "F" = 0.99, "U" = 0.01 }'))})
    add("sizes", "analyze toy k=40 --max-states 1e7 (fits the memory budget)",
        ["analyze", "s.toml", "--set", "context.length=40", "--max-states", str(10**7), "--json"], "either",
        files={"s.toml": TOY}, oracle=analyze_json(lambda r: None if r["n_states"] < 10**4 and r["closed_classes"][0]["probability"] > 1 - 1e-9
                            else f"{r['n_states']} states, or not absorbed"))
    iid300 = iid_scn({f"t{i}": 1 / 300 for i in range(300)}, k=2)
    add("sizes", "analyze iid over 300 tokens k=2 --max-memory 2", ["analyze", "s.toml", "--max-memory", "2"], "error",
        files={"s.toml": iid300})
    add("sizes", "deletion none steps 1e6 replicates 1e4", ["run", "s.toml", "--out", "out", "--steps", str(10**6),
                                                           "--replicates", str(10**4), "--set", 'context.deletion="none"'],
        "error", files={"s.toml": TOY})
    add("sizes", "drift with 3000 tokens", ["run", "s.toml", "--out", "out", "--steps", "1000", "--replicates", "10000",
                                           "--set", "run.drift=true"], "error",
        files={"s.toml": iid_scn({f"t{i}": 1 / 3000 for i in range(3000)}, k=64)})


# ---- grids and sweeps -------------------------------------------------------------------------

def sweep_cases():
    base = ["sweep", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4", "--workers", "1"]
    bad_grids = {
        "1e9 points": "context.length=1:1000000000:1", "infinite stop": "context.length=1:inf:1",
        "nan start": "context.length=nan:3:1", "nan step": "context.length=1:3:nan", "step 0": "context.length=1:3:0",
        "negative step": "context.length=1:3:-1", "factor 1": "context.length=2:64:*1", "factor 0.5": "context.length=2:64:*0.5",
        "factor 0": "context.length=1:3:*0", "factor inf": "context.length=1:3:*inf", "empty": "context.length=",
        "no =": "context.length", "1e400": "context.length=1e400", "nan value": "premises.luigi.prior=nan,0.5",
        "inf value": "premises.luigi.prior=inf", "list-valued": "context.length=[2,3]",
"unknown path": "context.lenght=2,3",
        "lax type": 'context.length="2","3"', "huge list": "context.length=" + ",".join(["2"] * 20000),
        "float lengths": "context.length=1.5:3.5:1", "prior range to 1e300": "premises.luigi.prior=1e-300:1e300:*1.0000001",
    }
    for label, g in bad_grids.items():
        add("sweep", f"grid {label}", base + ["--grid", g], "error", files={"s.toml": TOY})
    add("sweep", "grid of token lists (list-valued values are TOML arrays)",
        base + ["--grid", 'vocabulary.tokens=["F","U"],["U","F"]'], "either", files={"s.toml": TOY},
        oracle=lambda c, o, e: None if (c.work / "out" / "results.csv").is_file()
        and len((c.work / "out" / "results.csv").read_text().splitlines()) == 3 else "not 2 rows")
    add("sweep", "product of grids 1e8 points",
        base + ["--grid", "context.length=1:10000:1", "--grid", "premises.luigi.prior=0.0001:1:0.0001"], "error",
        files={"s.toml": TOY})
    sweep_tables = {
        "typo replicate": 'grid = { "context.length" = [2, 3] }\nreplicate = 5',
        "typo step": 'grid = { "context.length" = [2, 3] }\nstep = 5',
        "typo gird": 'gird = { "context.length" = [2, 3] }',
        "grid 1e9 range": 'grid = { "context.length" = "1:1000000000:1" }',
        "grid inf range": 'grid = { "context.length" = "1:inf:1" }',
        "grid nan value": 'grid = { "premises.luigi.prior" = [nan] }',
        "grid list of lists": 'grid = { "context.length" = [[2, 3]] }',
        "grid string": 'grid = "context.length"',
        "grid scalar value": 'grid = { "context.length" = 3 }',
        "grid unknown path": 'grid = { "context.lenght" = [2, 3] }',
        "replicates true": 'grid = { "context.length" = [2, 3] }\nreplicates = true',
        "steps -1": 'grid = { "context.length" = [2, 3] }\nsteps = -1',
        "grid empty list": 'grid = { "context.length" = [] }',
    }
    for label, table in sweep_tables.items():
        add("sweep", f"[sweep] {label}", ["sweep", "s.toml", "--out", "out", "--workers", "1"], "error",
            files={"s.toml": scn(run="steps = 4\nreplicates = 4\nseed = 1") + "\n[sweep]\n" + table + "\n"})
    add("sweep", "no file no resume", ["sweep", "--out", "out"], "error")
    add("sweep", "bad Dask scheduler tcp://127.0.0.1:1",
        base + ["--grid", "context.length=2,3", "--scheduler", "tcp://127.0.0.1:1"], "error", files={"s.toml": TOY})
    add("sweep", "bad scheduler scheme", base + ["--grid", "context.length=2,3", "--scheduler", "http://x"], "error",
        files={"s.toml": TOY})

    def two_rows(ctx, stdout, stderr):
        import csv
        try:
            rows = list(csv.DictReader((ctx.work / "out" / "results.csv").open()))
        except Exception as err:  # noqa: BLE001
            return f"results.csv unreadable: {err}"
        return None if len(rows) == 2 else f"{len(rows)} rows for 2 points"
    add("sweep", "valid 2-point sweep", base + ["--grid", "context.length=2,3"], "ok", files={"s.toml": TOY}, oracle=two_rows)

    def workers_bounded(ctx, stdout, stderr):
        bad = two_rows(ctx, stdout, stderr)
        if bad:
            return bad
        n = getattr(ctx, "max_children", 0)
        return None if n <= 8 else f"{n} child processes for a 2-point sweep"
    add("sweep", "--workers 1000 for 2 points",
        ["sweep", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4", "--grid", "context.length=2,3",
         "--workers", "1000"], "either", files={"s.toml": TOY}, oracle=workers_bounded, count_children=True)
    # resume with flags that cannot apply, corrupt files
    for label, extra in {"--replicates": ["--replicates", "7"], "--steps": ["--steps", "7"], "--exact": ["--exact"],
                         "--max-memory": ["--max-memory", "1"], "--max-states": ["--max-states", "5"],
                         "--grid": ["--grid", "context.length=4"], "FILE": []}.items():
        argv = ["sweep", "--resume", "sw", "--workers", "1", *extra]
        if label == "FILE":
            argv = ["sweep", "s.toml", "--resume", "sw", "--workers", "1"]
        add("resume", f"--resume with {label}", argv, "error", setup=copy_fixture("sweep", "sw"), files={"s.toml": TOY})
    add("resume", "--resume missing dir", ["sweep", "--resume", "nope"], "error")
    add("resume", "--resume a file", ["sweep", "--resume", "s.toml"], "error", files={"s.toml": TOY})
    add("resume", "--resume a run dir", ["sweep", "--resume", "r"], "error", setup=copy_fixture("run", "r"))
    corruptions = {
        "sweep.json truncated": ("sweep.json", "{"), "sweep.json empty": ("sweep.json", ""),
        "sweep.json a list": ("sweep.json", "[]"), "sweep.json wrong types": ("sweep.json", '{"name": 3, "grid": 5}'),
        "sweep.json NaN": ("sweep.json", "NaN"), "sweep.json binary": ("sweep.json", b"\xff\xfe\x00"),
    }
    for label, (rel, content) in corruptions.items():
        for cmd in ("plot", "resume"):
            argv = ["plot", "sw"] if cmd == "plot" else ["sweep", "--resume", "sw", "--workers", "1"]
            add("corrupt", f"{cmd}: {label}", argv, "error", setup=copy_fixture("sweep", "sw", {rel: content}))
    point_corruptions = {"point truncated": "{", "point empty": "", "point a list": "[1]", "point wrong types":
                         '{"index": "x", "params": 3}', "point binary": b"\xff\x00"}
    for label, content in point_corruptions.items():
        for cmd in ("plot", "resume"):
            argv = ["plot", "sw"] if cmd == "plot" else ["sweep", "--resume", "sw", "--workers", "1"]
            add("corrupt", f"{cmd}: {label}", argv, "either", setup=copy_fixture("sweep", "sw", {"points/0.json": content}))
    run_corruptions = {"summary.json truncated": ("summary.json", "{"), "steps.csv garbage": ("steps.csv", "a,b\n1"),
                       "scenario.toml garbage": ("scenario.toml", "[[["), "raster.csv empty": ("raster.csv", ""),
                       "summary.json binary": ("summary.json", b"\xff\xfe")}
    for label, (rel, content) in run_corruptions.items():
        add("corrupt", f"plot run: {label}", ["plot", "r"], "error", setup=copy_fixture("run", "r", {rel: content}))
    add("corrupt", "plot of an empty dir", ["plot", "d"], "error", setup=lambda c: (c.work / "d").mkdir())
    add("corrupt", "plot of a missing dir", ["plot", "nope"], "error")
    add("corrupt", "plot of a file", ["plot", "s.toml"], "error", files={"s.toml": TOY})


def copy_fixture(kind: str, dest: str, replace: dict | None = None, plant: dict | None = None):
    def setup(ctx: Ctx):
        src = ctx.fixtures / kind
        if not src.is_dir():
            raise RuntimeError(f"fixture {kind} missing (its creation failed)")
        shutil.copytree(src, ctx.work / dest, symlinks=True)
        for rel, content in (replace or {}).items():
            p = ctx.work / dest / rel
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
        for rel, target in (plant or {}).items():
            p = ctx.work / dest / rel
            if p.exists() or p.is_symlink():
                p.unlink()
            os.symlink(target, p)
    return setup


# ---- output locations -------------------------------------------------------------------------

def output_cases():
    victim = "precious content\n"
    commands = {
        "run": ["run", "s.toml", "--replicates", "4", "--steps", "4", "--out"],
        "analyze --out": ["analyze", "s.toml", "--out"],
        "analyze --export": ["analyze", "s.toml", "--export"],
        "sweep": ["sweep", "s.toml", "--grid", "context.length=2,3", "--replicates", "4", "--steps", "4", "--workers", "1",
                  "--out"],
    }
    for cname, argv in commands.items():
        locations = {
            "existing dir": ("o", lambda c: (c.work / "o").mkdir()),
            "existing file": ("victim.txt", None),
            "dangling symlink": ("o", lambda c: os.symlink(c.work / "ghost", c.work / "o")),
            "symlink to a file": ("o", lambda c: os.symlink(c.work / "victim.txt", c.work / "o")),
            "symlink to a dir": ("o", lambda c: (c.work / "real").mkdir() or os.symlink(c.work / "real", c.work / "o")),
            "inside a file": ("victim.txt/sub", None),
            "over-long component": ("x" * 300, None),
            "over-long path": ("/".join(["y" * 200] * 25), None),
            "unwritable /proc": ("/proc/ecology-adversarial-out", None),
            "read-only /sys": ("/sys/ecology-adversarial-out", None),
            "empty string": ("", None),
            "/dev/null": ("/dev/null", None),
        }
        for lname, (target, setup) in locations.items():
            def full_setup(ctx, setup=setup):
                (ctx.work / "victim.txt").write_text(victim)
                if setup:
                    setup(ctx)
            add("output", f"{cname}: {lname}", argv + [target], "error", files={"s.toml": TOY}, setup=full_setup,
                victims=("victim.txt",))
        add("output", f"{cname}: missing parents", argv + ["p/q/r"], "either", files={"s.toml": TOY},
            oracle=lambda c, o, e: None if (c.work / "p" / "q" / "r").is_dir() else "output directory missing")
    add("output", "default runs/ is a file", ["run", "s.toml", "--replicates", "4", "--steps", "4"], "error",
        files={"s.toml": TOY, "runs": "not a dir"})
    add("output", "default runs/ is a dangling symlink", ["run", "s.toml", "--replicates", "4", "--steps", "4"], "either",
        files={"s.toml": TOY}, setup=lambda c: os.symlink(c.root / "elsewhere", c.work / "runs"))
    # plot with planted symlinks
    for png in ("populations.png", "reaching.png", "raster.png"):
        add("plot", f"plot run with {png} -> victim", ["plot", "r"], "either",
            setup=lambda c, png=png: (c.work.joinpath("victim.txt").write_text(victim),
                                      copy_fixture("run", "r", plant={png: str(c.work / "victim.txt")})(c)),
            victims=("victim.txt",), oracle=lambda c, o, e: None)
    add("plot", "plot sweep with a png -> victim", ["plot", "sw"], "either",
        setup=lambda c: (c.work.joinpath("victim.txt").write_text(victim), plant_in_sweep(c)),
        victims=("victim.txt",), oracle=lambda c, o, e: None)
    add("plot", "plot sweep with results.csv -> victim", ["plot", "sw"], "either",
        setup=lambda c: (c.work.joinpath("victim.txt").write_text(victim),
                         copy_fixture("sweep", "sw", plant={"results.csv": str(c.work / "victim.txt")})(c)),
        victims=("victim.txt",), oracle=lambda c, o, e: None)
    add("plot", "resume with a planted point symlink", ["sweep", "--resume", "sw", "--workers", "1"], "either",
        setup=lambda c: (c.work.joinpath("victim.txt").write_text(victim), resume_plant(c)),
        victims=("victim.txt",), oracle=lambda c, o, e: None)
    # two runs into one --out
    add("concurrent", "two runs into one --out", ["run", "s.toml", "--replicates", "3000", "--steps", "300", "--out", "out"],
        "ok", files={"s.toml": TOY}, concurrent=2)
    add("concurrent", "two sweeps into one --out", ["sweep", "s.toml", "--grid", "context.length=2,3", "--replicates", "500",
                                                    "--steps", "100", "--workers", "1", "--out", "out"],
        "ok", files={"s.toml": TOY}, concurrent=2)


def plant_in_sweep(ctx):
    copy_fixture("sweep", "sw")(ctx)
    pngs = sorted((ctx.work / "sw").glob("*.png"))
    if not pngs:
        raise RuntimeError("the sweep fixture has no png")
    pngs[0].unlink()
    os.symlink(ctx.work / "victim.txt", pngs[0])


def resume_plant(ctx):
    copy_fixture("sweep", "sw")(ctx)
    point = ctx.work / "sw" / "points" / "1.json"
    point.unlink()
    os.symlink(ctx.work / "victim.txt", point)


# ---- numerics and valid edge cases -------------------------------------------------------------

def numeric_cases():
    # V >= 256 in analyze: true page-state counts
    v300 = [f"t{i}" for i in range(300)]
    add("exact", "iid over 300 tokens k=2: 1+300+300^2 states", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": iid_scn({t: 1 / 300 for t in v300}, k=2)}, oracle=n_states_is(1 + 300 + 300**2, [300**2]))
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
        return None if abs(sim - ex) <= 5 * sd + 1e-9 else f"exact {ex:.4g} vs simulated {sim:.4g} (5 sigma = {5 * sd:.3g})"
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
            return None if any(abs(e - lam) < 1e-9 for e in eig) else f"eigenvalues {eig[:3]} lack the F^k self-loop {lam:.10g}"
        add("exact", f"toy k={k}: one absorbing U^k, eigenvalue = F^k self-loop",
            ["analyze", "s.toml", "--json", "--set", f"context.length={k}"], "ok", files={"s.toml": TOY},
            oracle=analyze_json(toy_check))
    # tiny priors and floors
    for prior in ("1e-300", "1e-305", "5e-324"):
        add("numerics", f"waluigi prior {prior}: probabilities in [0,1]", ["analyze", "s.toml", "--json"], "either",
            files={"s.toml": scn(body=toy_body(prior_l="1.0", prior_w=prior))}, oracle=analyze_json(lambda r: None))
        add("numerics", f"waluigi prior {prior}: text has no nan", ["analyze", "s.toml", "--tolerance", "0.5", "--horizon", "5"],
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
        add("numerics", f"floors eps {eps}: probabilities in [0,1]", ["analyze", "s.toml", "--json", "--tolerance", "1e-3"],
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
        files={"s.toml": iid_scn({"F": 0.6, "U": 0.4}, temperature=1e300, steps=10, replicates=50)}, oracle=run_ok(steps=10))
    add("numerics", "temperature 1e-320 analyze", ["analyze", "s.toml", "--json"], "ok",
        files={"s.toml": iid_scn({"F": 0.6, "U": 0.4}, temperature=1e-320, k=3)}, oracle=n_states_is(4, [1]))
    add("numerics", "probabilities 1e-300 / 1-1e-300", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": iid_scn({"F": 1.0, "U": 1e-300}, steps=10, replicates=20)}, oracle=fraction_is("all", 1.0))
    add("numerics", "prior ratio 1e300", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": scn(body=toy_body(prior_l="1e300", prior_w="1.0"))}, oracle=run_ok())


def valid_cases():
    R = ["--out", "out"]
    add("valid", "k = 1", ["run", "s.toml", *R, "--set", "context.length=1"], "ok", files={"s.toml": TOY}, oracle=run_ok(steps=20))
    one = iid_scn({"A": 1.0}, k=3, steps=5, replicates=10)
    add("valid", "one token: absorbed by step k", ["run", "s.toml", *R], "ok", files={"s.toml": one},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["all"]["reached_curve"] == [0, 0, 0, 1, 1, 1]
                      else f"curve {s['criteria']['all']['reached_curve']}, expected [0,0,0,1,1,1]"))
    add("valid", "one token analyze: k + 1 states", ["analyze", "s.toml", "--json"], "ok", files={"s.toml": one},
        oracle=n_states_is(4, [1]))
    add("valid", "deletion none", ["run", "s.toml", *R, "--set", 'context.deletion="none"'], "ok", files={"s.toml": TOY},
        oracle=run_ok(steps=20))
    add("valid", "deletion none analyze refused", ["analyze", "s.toml", "--set", 'context.deletion="none"'], "error",
        files={"s.toml": TOY})
    add("valid", "block = k", ["run", "s.toml", *R, "--set", 'context.deletion="block"', "--set", "context.block=3"], "ok",
        files={"s.toml": TOY}, oracle=run_ok(steps=20))
    add("valid", "block = k analyze", ["analyze", "s.toml", "--json", "--set", 'context.deletion="block"', "--set",
                                       "context.block=3"], "ok", files={"s.toml": TOY}, oracle=analyze_json(lambda r: None))
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
        files={"s.toml": scn(context="length = 3\nprompt = [" + ", ".join(['"F"'] * 50) + "]")}, oracle=run_ok(steps=20))
    add("valid", "prompt U absorbs at once", ["run", "s.toml", *R], "ok",
        files={"s.toml": scn(context='length = 2\nprompt = ["U", "U"]')},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["revealed"]["reached_curve"][0] == 1.0 else "U^k prompt not absorbed at step 0"))
    add("valid", "0 steps", ["run", "s.toml", *R, "--steps", "0"], "ok", files={"s.toml": TOY}, oracle=run_ok(steps=0))
    add("valid", "1 replicate", ["run", "s.toml", *R, "--replicates", "1"], "ok", files={"s.toml": TOY},
        oracle=run_ok(replicates=1))
    add("valid", "--steps flag honoured", ["run", "s.toml", *R, "--steps", "7"], "ok", files={"s.toml": TOY}, oracle=run_ok(steps=7))
    add("valid", "drift", ["run", "s.toml", *R, "--set", "run.drift=true"], "ok", files={"s.toml": TOY}, oracle=run_ok())
    add("valid", "seed 2^63-1", ["run", "s.toml", *R, "--seed", str(2**63 - 1)], "ok", files={"s.toml": TOY}, oracle=run_ok())
    add("valid", "--json output", ["run", "s.toml", "--json", *R], "ok", files={"s.toml": TOY},
        oracle=lambda c, o, e: None if strict_json(o)["replicates"] == 20 else "bad JSON summary")
    add("valid", "periodic 1 under none never holds", ["run", "s.toml", *R, "--set", 'context.deletion="none"'], "ok",
        files={"s.toml": TOY + "\n[absorption.still]\nperiodic = 1\n"},
        oracle=run_ok(extra=lambda s: None if s["criteria"]["still"]["reached"] == 0 else "periodic held under none"))
    add("valid", "analyze --export and --out", ["analyze", "s.toml", "--export", "ex", "--out", "out", "--power", "3"], "ok",
        files={"s.toml": TOY}, oracle=lambda c, o, e: None if (c.work / "ex" / "transition.npz").is_file()
        and (c.work / "out" / "report.json").is_file() else "export or report missing")
    add("valid", "analyze --horizon 0 --power 0", ["analyze", "s.toml", "--horizon", "0", "--power", "0"], "ok",
        files={"s.toml": TOY}, oracle=text_no_nan)
    add("valid", "schema is JSON", ["schema"], "ok", oracle=lambda c, o, e: None if isinstance(json.loads(o), dict) else "not JSON")
    add("valid", "--version", ["--version"], "ok", oracle=lambda c, o, e: None if o.startswith("ecology") else f"{o!r}")
    for f in sorted((REPO / "scenarios").glob("*.toml")):
        add("valid", f"validate shipped {f.name}", ["validate", str(f)], "ok")
        add("valid", f"run shipped {f.name} small", ["run", str(f), *R, "--steps", "15", "--replicates", "30"], "ok",
            oracle=run_ok(steps=15, replicates=30))


def build_cases() -> list[Case]:
    CASES.clear()
    file_cases()
    value_cases()
    name_cases()
    size_cases()
    sweep_cases()
    output_cases()
    numeric_cases()
    valid_cases()
    return list(CASES)


# ----------------------------------------------------------------------------------------------
# running and classifying
# ----------------------------------------------------------------------------------------------

def limits():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    os.setsid()


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def children_of(pid: int) -> int:
    """Descendants of ``pid`` (one level of /proc scan, by session: everything in its session)."""
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == pid and int(entry) != pid:  # field 6 (session id) after the name
                n += 1
        except (OSError, IndexError, ValueError):
            continue
    return n


def launch(argv, cwd, env, timeout, count_children=False):
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, preexec_fn=limits)
    result = {"max_children": 0}

    def watch():
        while proc.poll() is None:
            result["max_children"] = max(result["max_children"], children_of(proc.pid))
            time.sleep(0.2)
    watcher = threading.Thread(target=watch, daemon=True) if count_children else None
    if watcher:
        watcher.start()
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        timed_out = True
    result.update(rc=proc.returncode, stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                  timed_out=timed_out, seconds=time.monotonic() - start)
    return result


OOM_MARKS = ("MemoryError", "out of memory", "Cannot allocate memory", "std::bad_alloc", "_ArrayMemoryError",
             "Unable to allocate")


def classify_process(r: dict) -> tuple[str, str] | None:
    """hang / oom / traceback from the raw process outcome, or None when it ended in a regular way."""
    if r["timed_out"]:
        return "hang", f"no answer after {r['seconds']:.0f} s"
    err = r["stderr"]
    lines = [x for x in err.splitlines() if x.strip()]
    if r["rc"] in (-9, 137) or any(m in err for m in OOM_MARKS):
        return "oom", (lines[-1] if lines else f"killed (exit {r['rc']})")[:160]
    if "Traceback (most recent call last)" in err:
        return "traceback", (lines[-1] if lines else "traceback")[:160]
    if r["rc"] not in (0, 2, 130):
        return "traceback", f"exit {r['rc']}: {(lines[-1] if lines else '')[:140]}"
    if len(lines) > 1:
        return "traceback", f"{len(lines)} stderr lines: {lines[0][:80]} | {lines[-1][:60]}"
    if r["rc"] == 130:
        return "traceback", "exit 130 without an interrupt"
    return None


def run_case(case: Case, fixtures: Path, timeout: float, env: dict) -> dict:
    root = Path(tempfile.mkdtemp(prefix="eco-adv-"))
    work = root / "a" / "b" / "work"
    work.mkdir(parents=True)
    ctx = Ctx(root, work, fixtures)
    argv_shown = " ".join(case.argv)
    try:
        for rel, content in case.files.items():
            p = work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        if case.setup:
            case.setup(ctx)
        before = snapshot(root)
        victims = {v: digest(work / v) for v in case.victims}
        argv = ecology_command() + [a.replace("{R}", str(root)).replace("{W}", str(work)) for a in case.argv]
        if case.concurrent > 1:
            outcome, reason = run_concurrent(case, ctx, argv, env, timeout, before)
        else:
            r = launch(argv, work, env, timeout, case.count_children)
            ctx.max_children = r["max_children"]
            outcome, reason = judge(case, ctx, r, before)
        for v, d in victims.items():
            if digest(work / v) != d and outcome != "hang":
                outcome, reason = "wrong", f"{v} was modified through the output path"
        return {"category": case.category, "name": case.name, "command": "ecology " + short(argv_shown),
                "outcome": outcome, "detail": reason}
    except Exception as err:  # noqa: BLE001 - a broken case must not stop the suite
        return {"category": case.category, "name": case.name, "command": "ecology " + short(argv_shown),
                "outcome": "traceback", "detail": f"harness: {type(err).__name__}: {err}"[:200]}
    finally:
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                try:
                    os.chmod(os.path.join(dirpath, d), 0o755)
                except OSError:
                    pass
        shutil.rmtree(root, ignore_errors=True)


def short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 20] + f"...({len(text)} chars)"


def leftovers(ctx: Ctx, before: dict) -> tuple[list[str], list[str], list[str]]:
    """(new paths outside work, new paths inside work, hidden partial/temporary files anywhere)."""
    after = snapshot(ctx.root)
    new = [p for p in after if p not in before]
    work_rel = os.path.relpath(ctx.work, ctx.root)
    outside = [p for p in new if not (p == work_rel or p.startswith(work_rel + os.sep))]
    inside = [p for p in new if p not in outside]
    partial = [p for p in after if ".partial-" in os.path.basename(p) or ".tmp-" in os.path.basename(p)
               or os.path.basename(p).endswith(".tmp")]
    return outside, inside, partial


def judge(case: Case, ctx: Ctx, r: dict, before: dict) -> tuple[str, str]:
    outside, inside, partial = leftovers(ctx, before)
    if outside and not r["timed_out"]:
        return "wrong", f"wrote outside the working directory: {outside[0]}"
    bad = classify_process(r)
    if bad and bad[0] == "traceback" and "stderr lines" in bad[1] and r["rc"] == 0 and case.expect != "error":
        problem = run_oracle(case, ctx, r)  # extra stderr noise must not hide a wrong value
        if problem:
            return "wrong", f"{problem[:150]} (and {bad[1][:60]})"
    if bad:
        return bad
    lines = [x for x in r["stderr"].splitlines() if x.strip()]
    if r["rc"] == 2:
        line = lines[0] if lines else ""
        if not line.startswith("error: "):
            return "traceback", f"exit 2 with stderr {line[:120]!r}"
        if case.expect == "ok":
            return "wrong", f"valid input refused: {line[:160]}"
        if inside or partial:
            return "wrong", f"refused ({line[:80]}) but left {(inside + partial)[0]}"
        if case.err_contains and case.err_contains not in line:
            return "wrong", f"error does not mention {case.err_contains!r}: {line[:140]}"
        return "clean", line[:160]
    # exit 0
    if case.expect == "error":
        return "wrong", f"bad input accepted (exit 0): {(r['stdout'].strip().splitlines() or [''])[0][:120]}"
    if partial:
        return "wrong", f"left a temporary file {partial[0]}"
    problem = run_oracle(case, ctx, r)
    if problem:
        return "wrong", problem[:200]
    return "clean", "ok"


def run_oracle(case: Case, ctx: Ctx, r: dict) -> str | None:
    if not case.oracle:
        return None
    try:
        return case.oracle(ctx, r["stdout"], r["stderr"])
    except Exception as err:  # noqa: BLE001
        return f"oracle could not read the result: {type(err).__name__}: {err}"


def run_concurrent(case, ctx, argv, env, timeout, before):
    results = [None] * case.concurrent

    def go(i):
        results[i] = launch(argv, ctx.work, env, timeout)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(case.concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        bad = classify_process(r)
        if bad:
            return bad
    codes = sorted(r["rc"] for r in results)
    outside, _, partial = leftovers(ctx, before)
    if outside:
        return "wrong", f"wrote outside: {outside[0]}"
    if codes.count(0) != 1:
        return "wrong", f"exit statuses {codes}: {'both claimed the same --out' if codes.count(0) > 1 else 'none succeeded'}"
    loser = next(r for r in results if r["rc"] != 0)
    if not loser["stderr"].startswith("error: "):
        return "traceback", f"refusal not one clean line: {loser['stderr'][:100]!r}"
    if partial:
        return "wrong", f"left a temporary file {partial[0]}"
    out = ctx.work / "out"
    if not ((out / "summary.json").is_file() or (out / "results.csv").is_file()):
        return "wrong", "the winner's output is incomplete"
    return "clean", f"one ran, the other: {loser['stderr'].strip()[:100]}"


def make_fixtures(fixtures: Path, env: dict, timeout: float) -> None:
    scenario = fixtures / "toy.toml"
    scenario.write_text(TOY)
    eco = ecology_command()
    jobs = [
        eco + ["run", str(scenario), "--replicates", "10", "--steps", "10", "--out", str(fixtures / "run")],
        eco + ["sweep", str(scenario), "--grid", "context.length=2,3", "--replicates", "10", "--steps", "10",
               "--workers", "1", "--out", str(fixtures / "sweep")],
    ]
    procs = [subprocess.Popen(j, cwd=fixtures, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for j in jobs]
    for j, p in zip(jobs, procs):
        _, err = p.communicate(timeout=timeout * 3)
        if p.returncode != 0:
            print(f"fixture failed: {' '.join(j)}: {err.decode()[-300:]}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the cases whose category or name contains this substring")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="wall-clock limit per case, seconds")
    parser.add_argument("--json", metavar="FILE", help="write the per-case results here")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    args = parser.parse_args(argv)

    cases = build_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.name or args.only in c.category]
    if args.list:
        for c in cases:
            print(f"{c.category:10} {c.name}")
        print(f"{len(cases)} cases")
        return 0
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONHASHSEED", None)
    shared = Path(tempfile.mkdtemp(prefix="eco-adv-shared-"))
    env["MPLCONFIGDIR"] = str(shared / "mpl")
    fixtures = shared / "fixtures"
    fixtures.mkdir()
    started = time.monotonic()
    try:
        make_fixtures(fixtures, env, args.timeout)
        results = [None] * len(cases)
        done = 0
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_case, c, fixtures, args.timeout, env): i for i, c in enumerate(cases)}
            for fut in futures:
                results[futures[fut]] = fut.result()
                done += 1
                r = results[futures[fut]]
                print(f"[{done}/{len(cases)}] {r['outcome']:9} {r['category']}: {r['name']}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    report(results, time.monotonic() - started)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def report(results: list[dict], seconds: float) -> None:
    categories = sorted({r["category"] for r in results}, key=lambda c: [r["category"] for r in results].index(c))
    print(f"{'category':12} " + " ".join(f"{o:>9}" for o in ("tried",) + OUTCOMES))
    for cat in categories + ["TOTAL"]:
        rows = [r for r in results if cat in ("TOTAL", r["category"])]
        print(f"{cat:12} {len(rows):>9} " + " ".join(f"{sum(r['outcome'] == o for r in rows):>9}" for o in OUTCOMES))
    total = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    print(f"\ntried / clean / wrong / traceback / oom / hang = {len(results)} / " + " / ".join(str(total[o]) for o in OUTCOMES)
          + f"   ({seconds:.0f} s)")
    bad = [r for r in results if r["outcome"] != "clean"]
    if bad:
        print("\nnon-clean cases:")
        for r in bad:
            print(f"  [{r['outcome']}] {r['category']}: {r['name']}: {r['command']}\n      -> {short(r['detail'], 200)}")


if __name__ == "__main__":
    sys.exit(main())
