"""The fixed cost of a small command: where a fresh process spends its CPU before and after the
work itself.

Four parts, each in fresh processes (this one imports nothing of ``ecology`` itself):

1. **imports**: ``python -X importtime -m ecology run TOY --steps 1 --replicates 10 --json``,
   the self time of every module summed by top-level package (``ecology``'s by subpackage);
   these are wall-clock microseconds as ``-X importtime`` reports them (its own overhead
   included), the largest ``--top`` printed;
2. **stages** of that run, CPU seconds (user + system, ``getrusage``) in one process: the
   imports of the ``run`` command, parsing the command line, scenario validation, compiling the
   scenario, building the model (which loads the compiled kernels its engine calls from numba's
   on-disk cache), the run itself, the summary and its JSON, writing a run directory (``--out``:
   tables, the TOML and the figures), and the interpreter's tear-down, which the command line
   skips (``ecology.cli.main``); each kernel numba loaded is listed with its seconds;
3. **mesa**: ``import mesa`` against ``import ecology.mesa_core`` (Mesa's core only), CPU after
   numpy and pandas;
4. **commands**: the whole process's CPU (user + system of the child, ``RUSAGE_CHILDREN``) and
   wall time of ``run --json``, ``run --out DIR``, ``validate`` and ``analyze --json``, the best
   and the median of ``--repeats``.

The load average is printed beside every timing; on a shared machine compare figures of one run.

Usage: python benchmarks/bench_startup.py [--repeats 5] [--top 15] [--parts imports stages mesa commands]
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOY = "scenarios/waluigi.toml"
SMALL = ["--steps", "1", "--replicates", "10"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "ecology" else parts[0]


def imports(args) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ecology", "run", TOY, *SMALL, "--json"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    own = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            own[package_of(match[2])] += int(match[1])
    total = sum(own.values())
    print(f"== imports of `ecology run {TOY} {' '.join(SMALL)} --json` (-X importtime, self time by package, "
          f"wall ms): {total / 1e3:.0f} ms in all; {load()}")
    for package, micro in own.most_common(args.top):
        print(f"  {micro / 1e3:7.1f} ms  {100 * micro / total:4.1f}%  {package}")


STAGES = r'''
import json, os, resource, sys, tempfile, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
marks = [("python itself", cpu())]
def mark(name):
    marks.append((name, cpu()))
from ecology import cli
from ecology.io.artefacts import write_run
from ecology.results import simulate, summarize
mark("imports of the run command")
import numba.core.caching as caching
kernels = []
original = caching.Cache.load_overload
def load_overload(self, sig, target_context):
    began = cpu()
    out = original(self, sig, target_context)
    kernels.append((self._py_func.__qualname__, cpu() - began))
    return out
caching.Cache.load_overload = load_overload
args = cli.build_parser().parse_args(["run", sys.argv[1], *sys.argv[2:], "--json"])
mark("parsing the command line")
scenario = cli.scn.load(args.file, cli.run_overrides(args))
mark("scenario validation")
from ecology.core.compile import compile_scenario
compile_scenario(scenario)
mark("compiling the scenario")
from ecology.model import EcologyModel
model = EcologyModel(scenario)
mark("building the model (loads its kernels)")
model.run_model()
mark("the run (its first block loads the loop kernel)")
result = simulate(scenario)
summary = summarize(result)
mark("simulate() again, warm")
json.dumps(summary)
mark("the summary as JSON")
with tempfile.TemporaryDirectory() as tmp:
    write_run(result, os.path.join(tmp, "run"), summary)
    mark("writing a run directory (--out: tables, figures)")
print("STAGES " + json.dumps({"marks": marks, "kernels": kernels}))
sys.stdout.flush()
'''


def stages(args) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", STAGES, TOY, *SMALL], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    whole = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = json.loads(done.stdout.rpartition("STAGES ")[2])
    print(f"== stages of a small run ({TOY} {' '.join(SMALL)}), CPU s in one fresh process; {load()}")
    previous = 0.0
    for name, at in data["marks"]:
        print(f"  {at - previous:6.3f} s  {name}")
        previous = at
    print(f"  {whole - previous:6.3f} s  the interpreter's tear-down (the command line skips it)")
    print(f"  {whole:6.3f} s  the whole process")
    for name, seconds in data["kernels"]:
        print(f"    {seconds:6.3f} s  kernel {name} loaded from numba's on-disk cache")
    print("    (the first kernel's time includes numba's own set-up: its target context and lowering registries, "
          "which import scipy.linalg)")


def timed(command: list[str]) -> tuple[float, float]:
    """(CPU s of the child process, user + system; wall s) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def commands(args) -> None:
    print(f"== whole commands in fresh processes, CPU (user + system) and wall s, best and median of "
          f"{args.repeats}; {load()}")
    ecology = [sys.executable, "-m", "ecology"]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            f"run {TOY} {' '.join(SMALL)} --json": lambda i: [*ecology, "run", TOY, *SMALL, "--json"],
            f"run {TOY} {' '.join(SMALL)} --out DIR": lambda i: [*ecology, "run", TOY, *SMALL, "--out", f"{tmp}/run{i}"],
            f"validate {TOY}": lambda i: [*ecology, "validate", TOY],
            f"analyze {TOY} --json": lambda i: [*ecology, "analyze", TOY, "--json"],
        }
        for name, command in cases.items():
            runs = [timed(command(i)) for i in range(args.repeats)]
            cpu, wall = [r[0] for r in runs], [r[1] for r in runs]
            print(f"  {name:48s} CPU {min(cpu):5.2f} s (median {statistics.median(cpu):5.2f}), "
                  f"wall {min(wall):5.2f} s (median {statistics.median(wall):5.2f}); {load()}")


MESA = r'''
import resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import numpy, pandas
began = cpu()
if sys.argv[1] == "mesa":
    import mesa
else:
    import ecology.mesa_core
print("CPU", cpu() - began)
'''


def mesa(args) -> None:
    """CPU of ``import mesa`` and of ``import ecology.mesa_core`` (Mesa's core, the rest deferred)
    in fresh processes that have imported numpy and pandas (which ``mesa.agent`` needs either way)."""
    print(f"== Mesa after numpy and pandas, CPU s in fresh processes, best and median of {args.repeats}; {load()}")
    for what in ("mesa", "ecology.mesa_core"):
        seconds = [float(subprocess.run([sys.executable, "-c", MESA, what], cwd=ROOT, env=ENV, capture_output=True,
                                        text=True, check=True).stdout.split()[-1]) for _ in range(args.repeats)]
        print(f"  import {what:18s} {min(seconds):.3f} s (median {statistics.median(seconds):.3f}); {load()}")


PARTS = {"imports": imports, "stages": stages, "mesa": mesa, "commands": commands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args()
    for name in args.parts:
        PARTS[name](args)


if __name__ == "__main__":
    main()
