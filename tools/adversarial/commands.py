"""``decompose`` (budgets, outputs), ``analyze --export``, the app's start (host and port checked before
"serving"), a full disk under every writer (root only: a small tmpfs), times beyond a double's
range, sizes whose cost is in the output stage or the criteria, and the Python API's argument types.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys

from .case import REPO, Ctx, add
from .models import GPT_SPEC
from .oracles import analyze_json, load_summary, run_ok, strict_json
from .texts import TOY, iid_scn, scn, toy_body
from .training import PROGRESS, VICTIM

SMALL = TOY.replace("length = 3", "length = 2")
DEC = ["decompose", "s.toml", "--family", "iid", "--components", "1", "--length", "4", "--restarts", "1"]


def decompose_cases():
    budget = {"timeout": 60, "refuse_within": 20}
    flags = {
        "--components 1:100000": ["--components", "1:100000"], "--components 1000000000": ["--components", str(10**9)],
        "--components 0": ["--components", "0"], "--components 3:1": ["--components", "3:1"],
        "--components -1": ["--components", "-1"], "--components abc": ["--components", "abc"],
        "--components 1:2:3": ["--components", "1:2:3"], "--length 1000000000": ["--length", str(10**9)],
        "--length 0": ["--length", "0"], "--length -4": ["--length", "-4"],
        "--restarts 1000000000": ["--restarts", str(10**9)], "--restarts 0": ["--restarts", "0"],
        "--storylines 10^12": ["--storylines", str(10**12), "--data", "samples"],
        "--storylines 0": ["--storylines", "0", "--data", "samples"], "--family bogus": ["--family", "bogus"],
        "--family empty": ["--family", ""], "--max-states 0": ["--max-states", "0"],
        "--compare missing": ["--compare", "nope.json"], "--compare garbage": ["--compare", "/dev/urandom"],
        "--set unknown path": ["--set", "context.lenght=3"],
    }
    for label, extra in flags.items():
        argv = list(DEC)
        for flag, value in zip(extra[::2], extra[1::2], strict=True):
            if flag in argv:
                argv[argv.index(flag) + 1] = value
            else:
                argv += [flag, value]
        add("decompose", f"decompose {label}", argv + ["--out", "o"], "error", files={"s.toml": SMALL}, **budget)
    add("decompose", "decompose, every family x 1:6 x 50 restarts at k=6: refused or done in a minute",
        ["decompose", "s.toml", "--family", "iid,constant,markov1,markov2,cycle,waluigi", "--components", "1:6",
         "--restarts", "50", "--set", "context.length=6", "--out", "o"], "either", files={"s.toml": TOY},
        timeout=60, oracle=lambda c, o, e: None if (c.work / "o" / "report.json").is_file() else "no report.json")

    def victim(c):
        (c.work / "victim.txt").write_text(VICTIM)
    for label, (target, fn) in {
        "an existing directory": ("d", lambda c: (c.work / "d").mkdir()),
        "an existing file": ("victim.txt", None),
        "a symlink to a file": ("o", lambda c: os.symlink(c.work / "victim.txt", c.work / "o")),
        "a symlink to a directory": ("o", lambda c: (c.work / "real").mkdir() or os.symlink(c.work / "real",
                                                                                           c.work / "o")),
        "inside a file": ("victim.txt/o", None), "/proc": ("/proc/adversarial-decompose", None),
        "an over-long name": ("x" * 300, None),
    }.items():
        add("decompose", f"decompose --out {label}", DEC + ["--out", target], "error", files={"s.toml": SMALL},
            setup=(lambda c, fn=fn: (victim(c), fn(c))) if fn else victim, victims=("victim.txt",),
            refuse_within=20, timeout=60)
    add("decompose", "decompose --out into missing parents", DEC + ["--out", "p/q/o"], "either", files={"s.toml": SMALL},
        oracle=lambda c, o, e: None if (c.work / "p/q/o/report.json").is_file() else "report.json missing", timeout=60)
    add("decompose", "decompose valid: report.json", DEC + ["--out", "o", "--json"], "ok", files={"s.toml": SMALL},
        oracle=lambda c, o, e: None if "fits" in strict_json(o) else "no fits", timeout=60)


def export_cases():
    A = ["analyze", "s.toml"]

    def victim(c):
        (c.work / "victim.txt").write_text(VICTIM)
    for label, (target, fn) in {
        "a symlink to a file": ("ex", lambda c: os.symlink(c.work / "victim.txt", c.work / "ex")),
        "a symlinked parent directory": ("link/ex", lambda c: (c.work / "real").mkdir() or os.symlink(
            c.work / "real", c.work / "link")),
        "a missing directory two levels up": ("no/such/ex", None),
        "a planted transition.npz symlink in an existing dir": ("ex", lambda c: (c.work / "ex").mkdir() or os.symlink(
            c.work / "victim.txt", c.work / "ex" / "transition.npz")),
    }.items():
        expect = "either" if label.startswith(("a missing", "a symlinked parent")) else "error"
        add("export", f"analyze --export {label}", A + ["--export", target], expect, files={"s.toml": TOY},
            setup=(lambda c, fn=fn: (victim(c), fn(c))) if fn else victim, victims=("victim.txt",),
            oracle=lambda c, o, e, t=target: None if (c.work / t / "transition.npz").is_file()
            else "transition.npz missing")
    add("export", "analyze --export and --out the same directory", A + ["--export", "o", "--out", "o"], "error",
        files={"s.toml": TOY})


# ---- the app -----------------------------------------------------------------------------------

_held: dict[str, socket.socket] = {}


def hold_port(port: int):
    def setup(c: Ctx):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            pass  # taken by someone else: in use all the same
        _held[str(c.root)] = s
    return setup


def release_port(c: Ctx):
    s = _held.pop(str(c.root), None)
    if s:
        s.close()


def still_serving(c, stdout, stderr):
    """Answer at the timeout of an app that should be serving: it said so, on a real port."""
    said = [x for x in (stdout + stderr).splitlines() if x.startswith("serving")]
    if not said:
        return f"no 'serving' line at the timeout: {(stdout + stderr).strip()[-120:]!r}"
    return None if ":0 " not in said[0] else f"serving on port 0: {said[0][:120]}"


def app_cases():
    common = {"files": {"s.toml": TOY}, "timeout": 40, "forbid_output": "serving"}
    for label, flags in {"port 70000": ["--port", "70000"], "port -1": ["--port", "-1"],
                         "port abc": ["--port", "abc"], "port 1e3": ["--port", "1e3"],
                         "unresolvable host": ["--host", "no-such-host.invalid", "--port", "18771"],
                         "foreign host 8.8.8.8": ["--host", "8.8.8.8", "--port", "18772"],
                         "host empty": ["--host", "", "--port", "18773"],
                         "host with a port": ["--host", "127.0.0.1:80", "--port", "18774"]}.items():
        add("app", f"app {label}", ["app", "s.toml", *flags], "error", **common)
    add("app", "app on a port in use", ["app", "s.toml", "--port", "18775"], "error", setup=hold_port(18775),
        teardown=release_port, **common)
    add("app", "app of a bad scenario", ["app", "s.toml", "--port", "18776"], "error", timeout=40,
        forbid_output="serving", files={"s.toml": TOY + "\n[[[\n"})
    add("app", "app of a missing file", ["app", "nope.toml", "--port", "18777"], "error", timeout=40,
        forbid_output="serving")
    add("app", "app of a model file that is damaged", ["app", "s.toml", "--port", "18778"], "error", timeout=40,
        forbid_output="serving", files={"s.toml": scn(body='\n[premises.m]\nprior = 1.0\nmodel = { kind = "ngram", '
                                                      'file = "m.npz" }\n[absorption.hit]\nwindow_only = ["U"]\n'),
                                        "m.npz": b"PK\x03\x04garbage"})
    add("app", "app port 0: refused, or serving on a real port", ["app", "s.toml", "--port", "0"], "either",
        files={"s.toml": TOY}, timeout=40, hang_ok=still_serving)
    add("app", "app valid: serving until stopped", ["app", "s.toml", "--port", "18779"], "either",
        files={"s.toml": TOY}, timeout=40, hang_ok=still_serving)


# ---- a full disk (root only: a tmpfs of a few pages) --------------------------------------------

def tmpfs(size: str, rel="full"):
    def setup(c: Ctx):
        (c.work / rel).mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(c.work / rel)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cannot mount a tmpfs: {done.stderr.strip()}")
    return setup


def untmpfs(rel="full"):
    def teardown(c: Ctx):
        subprocess.run(["umount", "-l", str(c.work / rel)], capture_output=True)
    return teardown


def nothing_half_written(c: Ctx) -> str | None:
    """Oracle: no temporary or partial file and no failed-point record left on the full disk (a kept
    sweep directory has its ``failed/`` folder, empty when no point failed)."""
    left = [str(p.relative_to(c.work)) for p in (c.work / "full").rglob("*")
            if ".partial" in p.name or ".tmp" in p.name or (p.parent.name == "failed" and p.suffix == ".json")]
    return f"left {left[0]}" if left else None


def sweep_kept(c, stdout, stderr):
    """Oracle of a sweep stopped by a full disk: the path and the resume command said, its points kept."""
    if "full/" not in stderr:
        return "the error does not name the path on the full disk"
    if "--resume" not in stderr:
        return "no 'ecology sweep --resume DIR' line"
    points = list((c.work / "full" / "out" / "points").glob("*.json"))
    if not points:
        return "no finished point kept"
    return nothing_half_written(c)


def diskfull_cases():
    def full(category_name, argv, size, files, **kw):
        kw.setdefault("err_contains", "full/")
        add("diskfull", category_name, argv, "error", files=files, setup=tmpfs(size), teardown=untmpfs(),
            needs_root=True, timeout=90, **kw)
    full("run filling the disk", ["run", "s.toml", "--out", "full/out"], "64k", {"s.toml": TOY})
    full("run filling the disk at once (8k)", ["run", "s.toml", "--out", "full/out"], "8k", {"s.toml": TOY})
    full("analyze --out filling the disk", ["analyze", "s.toml", "--out", "full/o", "--set", "context.length=8"], "4k",
         {"s.toml": TOY})
    full("analyze --export filling the disk", ["analyze", "s.toml", "--export", "full/ex", "--set",
                                               "context.length=8"], "8k", {"s.toml": TOY})
    full("train filling the disk", ["train", "t.toml", "--out", "full/m.npz"], "8k", {"t.toml": GPT_SPEC},
         stderr_ignore=PROGRESS)
    full("train --table filling the disk (the model beside it may stay)",
         ["train", "t.toml", "--out", "m.npz", "--table", "full/t.csv"], "4k",
         {"t.toml": GPT_SPEC.replace("n_ctx = 3", "n_ctx = 8")}, stderr_ignore=PROGRESS, may_leave=("m.npz",))
    full("decompose filling the disk", DEC + ["--out", "full/o"], "64k", {"s.toml": SMALL})
    add("diskfull", "sweep whose plots fill the disk: exit 1, the path, the resume line, points kept",
        ["sweep", "s.toml", "--grid", "context.length=2,3", "--replicates", "4", "--steps", "4", "--workers", "1",
         "--out", "full/out"], "error", files={"s.toml": TOY}, setup=tmpfs("48k"), teardown=untmpfs(),
        needs_root=True, timeout=90, expect_rc=1, stderr_lines=2, oracle=sweep_kept)
    add("diskfull", "run on a full disk leaves nothing: a second run into the same disk works",
        ["run", "s.toml", "--out", "full/second", "--steps", "2", "--replicates", "2"], "either", files={"s.toml": TOY},
        setup=lambda c: (tmpfs("256k")(c), subprocess.run(
            ["dd", "if=/dev/zero", f"of={c.work / 'full' / 'filler'}", "bs=4k", "count=40"], capture_output=True)),
        teardown=untmpfs(), needs_root=True, timeout=90,
        oracle=lambda c, o, e: None if (c.work / "full/second/summary.json").is_file() else "summary.json missing")


# ---- times beyond a double's range, priors at its edges -----------------------------------------

def no_contradiction(ctx, stdout, stderr):
    """Oracle of a text report: no NaN, and never "infinite ... P(ever) 1" on one line."""
    for line in stdout.splitlines():
        low = line.lower()
        if "nan" in low.replace("nans", "").split() or " nan" in low or "nan," in low:
            return f"printed NaN: {line.strip()[:120]}"
        if "infinite" in low and "p(ever) 1" in low:
            return f"contradiction: {line.strip()[:140]}"
    return None


def said_above_range(ctx, stdout, stderr):
    """Oracle: no contradiction, and the criterion's time said to be above the double range: "above
    1.8e308", or printed with a log10 beyond 308.25 (docs/exact.md, When a quantity cannot be computed)."""
    problem = no_contradiction(ctx, stdout, stderr)
    if problem:
        return problem
    lines = [x for x in stdout.splitlines() if x.startswith("criterion")]
    # either "above 1.8e308" or the time itself with its log10 beyond a double's: "1e330 (log10 330.0, ..."
    beyond = [float(m) for x in lines for m in re.findall(r"\(log10 (\d+(?:\.\d+)?)", x)]
    if any("1.8e308" in x for x in lines) or any(v > math.log10(sys.float_info.max) for v in beyond):
        return None
    return f"criterion line {(lines or [''])[0][:140]!r}"


def json_time_defended(r):
    """Oracle of a JSON report: every hitting time finite, or null with a note or with the documented
    overflow form (``expected_hitting_time_overflow`` "above 1.8e308", its log10 above 308 when given;
    docs/outputs.md); strict JSON: no NaN."""
    for name, c in r.get("criteria", {}).items():
        t = c.get("expected_hitting_time")
        overflow, log10 = c.get("expected_hitting_time_overflow"), c.get("expected_hitting_time_log10")
        if t is None and overflow is not None:
            if overflow != "above 1.8e308" or (log10 is not None and not log10 > 308):
                return f"criterion {name}: overflow {overflow!r} with log10 {log10}"
            continue
        if t is None and c.get("probability", 0) >= 1 - 1e-12 and not c.get("note"):
            return f"criterion {name}: time null beside P(ever) {c.get('probability')} and no note"
        if t is not None and not math.isfinite(t):
            return f"criterion {name}: time {t}"
    return None


def reference_time(scenario_text: str):
    """Oracle: criterion times equal those of ``scenario_text`` (an equivalent scenario), analysed here."""
    def oracle(ctx, stdout, stderr):
        (ctx.work / "ref.toml").write_text(scenario_text)
        from .harness import ecology_command
        done = subprocess.run(ecology_command() + ["analyze", "ref.toml", "--json"], cwd=ctx.work, capture_output=True,
                              text=True, timeout=60, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        want = strict_json(done.stdout)["criteria"]
        got = strict_json(stdout)["criteria"]
        for name, c in want.items():
            a, b = got[name]["expected_hitting_time"], c["expected_hitting_time"]
            if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-9 * abs(b)):
                return f"criterion {name}: E[T] {a}, the equivalent scenario's {b}"
        return None
    return oracle


def edge_cases():
    A = ["analyze", "s.toml"]
    # the expected time is 1/P^k (or about 1/prior): beyond a double, to be reported as "above 1.8e308"
    for p, k in (("1e-110", 3), ("1e-200", 2), ("1e-160", 2)):
        coin = iid_scn({"H": float(p), "T": 1.0}, k=k, crit="H")
        add("edge", f"iid P(H) = {p}, k = {k}: E[T] above 1.8e308, text", A, "ok", files={"s.toml": coin},
            oracle=said_above_range)
        add("edge", f"iid P(H) = {p}, k = {k}: E[T] above 1.8e308, JSON", A + ["--json"], "ok",
            files={"s.toml": coin}, oracle=analyze_json(json_time_defended))
    for prior, expect in (("1e-320", "ok"), ("5e-324", "either")):
        s = scn(body=toy_body(prior_l="1.0", prior_w=prior))
        add("edge", f"waluigi prior {prior}: text without contradiction", A, expect, files={"s.toml": s},
            oracle=said_above_range if expect == "ok" else no_contradiction)
        add("edge", f"waluigi prior {prior}: JSON defended", A + ["--json"], expect, files={"s.toml": s},
            oracle=analyze_json(json_time_defended))
    equal = scn(body=toy_body(prior_l="1.0", prior_w="1.0"))
    for label, (pl, pw) in {"1e308 + 1e308": ("1e308", "1e308"), "1.7e308 + 1.7e308": ("1.7e308", "1.7e308")}.items():
        s = scn(body=toy_body(prior_l=pl, prior_w=pw))
        add("edge", f"priors {label}: analyze = priors 1 + 1", A + ["--json"], "ok", files={"s.toml": s},
            oracle=reference_time(equal))
        add("edge", f"priors {label}: run", ["run", "s.toml", "--out", "out"], "ok", files={"s.toml": s},
            oracle=run_ok(steps=20))
    three = scn(body=toy_body(prior_l="1e308", prior_w="1e308") + '\n[premises.third]\nprior = 1e308\ncast = ["luigi"]\n')
    add("edge", "three priors of 1e308: run", ["run", "s.toml", "--out", "out"], "ok", files={"s.toml": three},
        oracle=run_ok(steps=20))
    add("edge", "prior 1e308 beside 1e-308: analyze = priors 1 + 1e-616 (luigi alone)", A + ["--json"], "either",
        files={"s.toml": scn(body=toy_body(prior_l="1e308", prior_w="1e-308"))}, oracle=analyze_json(lambda r: None))
    add("edge", "run --exact with P = 1e-110: summary JSON strict", ["run", "s.toml", "--exact", "--out", "out"],
        "either", files={"s.toml": iid_scn({"H": 1e-110, "T": 1.0}, k=3, crit="H")},
        oracle=lambda c, o, e: (load_summary(c) and None))


# ---- sizes whose cost is in the output stage, the criteria or the vocabulary --------------------

def budget_cases():
    add("budget", "1e6 steps x 20 replicates: refused up front or done", ["run", "s.toml", "--out", "out", "--steps",
                                                                          "1000000", "--replicates", "20"],
        "either", files={"s.toml": TOY}, timeout=60, oracle=run_ok(steps=10**6))
    add("budget", "1e5 steps x 2000 replicates: refused up front or done", ["run", "s.toml", "--out", "out", "--steps",
                                                                            "100000", "--replicates", "2000"],
        "either", files={"s.toml": TOY}, timeout=60, oracle=run_ok(steps=10**5))
    crits = "".join(f'\n[absorption.c{i}]\nwindow_only = ["U"]\n' for i in range(20000))
    add("budget", "20,000 criteria: refused or done in a minute", ["run", "s.toml", "--out", "out", "--steps", "5",
                                                                   "--replicates", "5"],
        "either", files={"s.toml": TOY + crits}, timeout=60, oracle=run_ok(steps=5))
    add("budget", "20,000 criteria: analyze refused or done", ["analyze", "s.toml", "--json"], "either",
        files={"s.toml": TOY + crits}, timeout=60, oracle=analyze_json(lambda r: None))
    vocab = [f"t{i}" for i in range(20000)]
    corpus = " ".join(vocab[i * 7919 % 20000] for i in range(60000))
    big = scn(vocabulary="tokens = [" + ", ".join(f'"{t}"' for t in vocab) + "]", context="length = 3",
              run="steps = 10\nreplicates = 10\nseed = 1",
              body='\n[premises.m]\nprior = 1.0\nmodel = { kind = "ngram", order = 3, unit = "word", text = "c.txt" }\n'
                   '[absorption.hit]\nwindow_only = ["t0"]\n')
    add("budget", "20,000-token n-gram vocabulary: refused or done in 60 s", ["run", "s.toml", "--out", "out"],
        "either", files={"s.toml": big, "c.txt": corpus}, timeout=60, oracle=run_ok(steps=10))
    add("budget", "transformer of 10^4 layers in a spec: refused in seconds", ["train", "t.toml", "--out", "m.npz"],
        "error", files={"t.toml": GPT_SPEC.replace("n_layer = 1", "n_layer = 10000")}, timeout=30, refuse_within=15,
        stderr_ignore=PROGRESS)
    add("budget", "transformer d_model 4096 x 10^6 steps: refused in seconds", ["train", "t.toml", "--out", "m.npz"],
        "error", timeout=30, refuse_within=15, stderr_ignore=PROGRESS,
        files={"t.toml": GPT_SPEC.replace("d_model = 8", "d_model = 4096").replace("steps = 5", "steps = 1000000")})


# ---- the Python API ----------------------------------------------------------------------------

API = """
import sys
import ecology
from ecology.errors import UserError
try:
    {call}
except (TypeError, UserError) as err:
    print(f"error: {{type(err).__name__}}: {{err}}".replace(chr(10), " "), file=sys.stderr)
    sys.exit(2)
print("ok")
"""


def api_cases():
    python = [str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else "python3",
              "-c"]
    errors = {
        "ecology.run(42)": ("ecology.run(42)", "scenario"),
        "ecology.run(None)": ("ecology.run(None)", "scenario"),
        "ecology.run([...])": ('ecology.run(["s.toml"])', "scenario"),
        "ecology.run(3.5)": ("ecology.run(3.5)", "scenario"),
        "ecology.run(b'bytes')": ("ecology.run(b's.toml')", "scenario"),
        "ecology.run({})": ("ecology.run({})", "scenario"),
        "ecology.run(missing path)": ('ecology.run("nope.toml")', "nope.toml"),
        "replicates='x'": ('ecology.run("s.toml", replicates="x")', "replicates"),
        "steps=-1": ('ecology.run("s.toml", steps=-1)', "steps"),
        "unknown override": ('ecology.run("s.toml", context__lenght=3)', "lenght"),
        "max_states='x'": ('ecology.run("s.toml", max_states="x")', "max_states"),
        "exact='yes'": ('ecology.run("s.toml", exact="yes")', "exact"),
        "steps=1e18": ('ecology.run("s.toml", steps=10**18)', "steps"),
    }
    for label, (call, named) in errors.items():
        add("api", f"python API: {label}", [API.format(call=call)], "error", program=python, files={"s.toml": TOY},
            err_contains=named, timeout=60)
    add("api", "python API: a valid run", [API.format(call='r = ecology.run("s.toml", steps=5, replicates=5)\n'
                                                         '    assert r.summary["replicates"] == 5')],
        "ok", program=python, files={"s.toml": TOY}, timeout=60, oracle=lambda c, o, e: None if "ok" in o else o[:100])
