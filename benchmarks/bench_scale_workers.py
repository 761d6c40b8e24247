"""Sections ``workers`` and ``dask`` of bench_scale.py (merged into it)."""

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
TOY = str(HERE / "scenarios" / "waluigi.toml")


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def timed_run(extra: list[str], replicates: int, steps: int) -> tuple[float, float, dict]:
    """Wall seconds and CPU seconds (this process's children: the run and its workers) of one `ecology run --json`
    in a fresh process (from this checkout), and its summary."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ecology", "run", TOY, "--replicates", str(replicates), "--steps",
                          str(steps), "--json", *extra], cwd=HERE, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out)


def section_workers(args) -> None:
    """One run of ``--replicates`` (10 shards at 10^5) on 1 and on 2 worker processes, alternately ``--repeats``
    times; the best wall time of each, their ratio (the aim: >= 1.8x), and whether the summaries agree."""
    print(f"\n## workers: one run of {args.replicates:,} replicates x {args.steps} steps of the toy, 1 vs 2 workers")
    best = {1: (float("inf"), 0.0), 2: (float("inf"), 0.0)}
    summaries = {}
    for _ in range(args.repeats):
        for workers in (1, 2):
            wall, cpu, summary = timed_run(["--workers", str(workers)], args.replicates, args.steps)
            print(f"  {workers} worker(s): {wall:6.2f} s wall, {cpu:6.2f} s CPU  ({load()})")
            best[workers] = min(best[workers], (wall, cpu))
            summaries[workers] = {k: v for k, v in summary.items() if k != "seconds"}
    print(f"  best: 1 worker {best[1][0]:.2f} s, 2 workers {best[2][0]:.2f} s: speed-up {best[1][0] / best[2][0]:.2f}x; "
          f"same summary: {summaries[1] == summaries[2]}")


def section_dask(args) -> None:
    """The same run on a local Dask cluster of two single-threaded worker processes (cluster start included),
    beside the run on 2 worker processes."""
    print(f"\n## dask: one run of {args.replicates:,} replicates x {args.steps} steps on a local Dask cluster of 2 workers")
    best = {}
    summaries = {}
    for _ in range(args.repeats):
        for name, extra in (("2 processes", ["--workers", "2"]), ("dask local, 2", ["--scheduler", "local", "--workers", "2"])):
            wall, cpu, summary = timed_run(extra, args.replicates, args.steps)
            print(f"  {name}: {wall:6.2f} s wall, {cpu:6.2f} s CPU  ({load()})")
            best[name] = min(best.get(name, float("inf")), wall)
            summaries[name] = {k: v for k, v in summary.items() if k != "seconds"}
    a, b = best
    print(f"  best: {a} {best[a]:.2f} s, {b} {best[b]:.2f} s (ratio {best[b] / best[a]:.2f}); "
          f"same summary: {summaries[a] == summaries[b]}")
