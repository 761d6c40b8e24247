"""Grids and sweeps, ``--resume`` and corrupt run or sweep directories, output locations (existing,
symlinked, unwritable, over-long), plots through planted symlinks, two processes aiming at one
``--out``.
"""

from __future__ import annotations

import csv
import os
import shutil

from .case import Ctx, add
from .texts import TOY, scn

# ---- grids and sweeps -------------------------------------------------------------------------

def sweep_cases():
    base = ["sweep", "s.toml", "--out", "out", "--replicates", "4", "--steps", "4", "--workers", "1"]
    bad_grids = {
        "1e9 points": "context.length=1:1000000000:1", "infinite stop": "context.length=1:inf:1",
        "nan start": "context.length=nan:3:1", "nan step": "context.length=1:3:nan", "step 0": "context.length=1:3:0",
        "negative step": "context.length=1:3:-1", "factor 1": "context.length=2:64:*1",
                 "factor 0.5": "context.length=2:64:*0.5",
        "factor 0": "context.length=1:3:*0", "factor inf": "context.length=1:3:*inf", "empty": "context.length=",
        "no =": "context.length", "1e400": "context.length=1e400", "nan value": "premises.luigi.prior=nan,0.5",
        "inf value": "premises.luigi.prior=inf", "list-valued": "context.length=[2,3]",
"unknown path": "context.lenght=2,3",
        "lax type": 'context.length="2","3"', "huge list": "context.length=" + ",".join(["2"] * 20000),
        "float lengths": "context.length=1.5:3.5:1",
                 "prior range to 1e300": "premises.luigi.prior=1e-300:1e300:*1.0000001",
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
        try:
            rows = list(csv.DictReader((ctx.work / "out" / "results.csv").open()))
        except Exception as err:  # noqa: BLE001
            return f"results.csv unreadable: {err}"
        return None if len(rows) == 2 else f"{len(rows)} rows for 2 points"
    add("sweep", "valid 2-point sweep", base + ["--grid", "context.length=2,3"], "ok", files={"s.toml": TOY},
        oracle=two_rows)

    def workers_bounded(ctx, stdout, stderr):
        bad = two_rows(ctx, stdout, stderr)
        if bad:
            return bad
        n = ctx.max_children
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
            add("corrupt", f"{cmd}: {label}", argv, "either", setup=copy_fixture("sweep", "sw",
                                                                                 {"points/0.json": content}))
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
        "sweep": ["sweep", "s.toml", "--grid", "context.length=2,3", "--replicates", "4", "--steps", "4", "--workers",
                  "1",
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
    add("output", "default runs/ is a dangling symlink", ["run", "s.toml", "--replicates", "4", "--steps", "4"],
        "either",
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
    add("concurrent", "two runs into one --out", ["run", "s.toml", "--replicates", "3000", "--steps", "300", "--out",
                                                  "out"],
        "ok", files={"s.toml": TOY}, concurrent=2)
    add("concurrent", "two sweeps into one --out", ["sweep", "s.toml", "--grid", "context.length=2,3", "--replicates",
                                                    "500",
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
