"""How runs and sweeps scale, one section per question (``--sections``, default all).

- ``sweep``: a sweep of many small points against the simulations it runs. ``ecology sweep`` of
  the toy over ``context.length`` x ``run.seed`` (``--lengths`` x ``--seeds`` points, each
  ``--replicates`` x ``--steps``) on ``--workers`` worker processes, in a fresh process (start-up,
  the workers' kernel loading, the per-point files, results.csv and the plots included), against
  the sum over the same points (the plan's own scenarios and seeds) of the in-process time of
  :func:`ecology.results.simulate`, kernels already loaded. The ratio ``sweep wall / sum`` is
  what the sweep costs beyond its simulations: 1.0 with no overhead and one worker; below 1 when
  the workers run in parallel on free cores. A sweep of one point per worker, timed the same
  way, shows the part that does not grow with the points (start-up, each worker's kernel
  loading, results.csv and the figures).

- ``workers``: one run of ``--run-replicates`` (10 shards at 10^5) x ``--run-steps`` on 1 and on 2
  worker processes (``ecology run --workers``), alternately ``--repeats`` times, each in a fresh
  process: the best wall time of each, their ratio (the aim: at least 1.8x on two free cores), the
  CPU of the process and its workers, and whether the two summaries are the same (they must be).
- ``dask``: the same run on a local Dask cluster of two single-threaded worker processes
  (``--scheduler local --workers 2``; the cluster's start included) beside the run on 2 worker
  processes, with the same checks.

Each section is one function taking the parsed arguments; a new section is a function and a line
in :data:`SECTIONS`. Every timing is printed beside the load average (:func:`load`), and every
ratio compares times measured within one run of this script.

Usage: python benchmarks/bench_scale.py [--sections sweep workers dask] [--workers 2] [--lengths 10] [--seeds 10]
       [--replicates 200] [--steps 50] [--run-replicates 100000] [--run-steps 200] [--repeats 2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's ecology, in this process and (cwd) in the sweep's
TOY = ROOT / "scenarios" / "waluigi.toml"


def load() -> str:
    """The load averages (1, 5, 15 minutes), printed beside every timing."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def sweep_grid(args) -> list[str]:
    """``--grid`` flags of the sweep section: context lengths 2, 3, ... and seeds 1, 2, ...."""
    return ["--grid", f"context.length=2:{1 + args.lengths}:1", "--grid", f"run.seed=1:{args.seeds}:1"]


def simulated_seconds(args) -> list[float]:
    """In this process, :func:`ecology.results.simulate` of every point of the sweep's plan (its
    scenario as the sweep builds it: ``validate(apply_overrides(base, params + seed))``), after one
    untimed run that loads the kernels; seconds per point."""
    from ecology import results
    from ecology.cli import parse_sets
    from ecology.core.budget import DEFAULT_MAX_STATES
    from ecology.scenario import apply_overrides, read_scenario_table, validate
    from ecology.sweep.grid import make_plan, parse_grid

    grids = dict(parse_grid(spec) for spec in sweep_grid(args)[1::2])
    overrides = {**parse_sets([]), "run.replicates": args.replicates, "run.steps": args.steps}
    plan = make_plan(read_scenario_table(TOY), grids, overrides, False, DEFAULT_MAX_STATES)
    scenarios = [validate(apply_overrides(plan.base, {**p["params"], "run.seed": p["seed"]})) for p in plan.points]
    results.simulate(scenarios[0])  # loads the compiled kernels, as each worker does once
    seconds = []
    for scenario in scenarios:
        began = time.perf_counter()
        results.simulate(scenario)
        seconds.append(time.perf_counter() - began)
    return seconds


def timed_sweep(args, lengths: int, seeds: int) -> tuple[float, float]:
    """(wall s, CPU s of the process and its workers) of ``ecology sweep`` over ``lengths`` x
    ``seeds`` points, in a fresh process writing into a temporary directory."""
    grid = sweep_grid(argparse.Namespace(lengths=lengths, seeds=seeds))
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "ecology", "sweep", str(TOY), *grid, "--replicates", str(args.replicates),
                   "--steps", str(args.steps), "--workers", str(args.workers), "--out", f"{tmp}/sweep", "--json"]
        before, began = os.times(), time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall, after = time.perf_counter() - began, os.times()
    if done.returncode != 0:
        sys.exit(f"the sweep failed ({done.returncode}): {done.stderr.strip()}")
    assert json.loads(done.stdout)["done"] == lengths * seeds, done.stdout
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def section_sweep(args) -> None:
    points = args.lengths * args.seeds
    print(f"== sweep: {points} points of waluigi.toml (context.length 2-{1 + args.lengths} x run.seed 1-{args.seeds}), "
          f"{args.replicates} replicates x {args.steps} steps each, --workers {args.workers}; {load()}")
    wall, cpu = timed_sweep(args, args.lengths, args.seeds)
    print(f"  ecology sweep: {wall:.2f} s wall, {cpu:.2f} s CPU (the process and its workers); {load()}")
    fixed_wall, fixed_cpu = timed_sweep(args, 1, args.workers)
    print(f"  the same sweep of {args.workers} points (one a worker: what a sweep costs besides its points, plus "
          f"{args.workers} small points): {fixed_wall:.2f} s wall, {fixed_cpu:.2f} s CPU; {load()}")
    seconds = simulated_seconds(args)
    total = sum(seconds)
    print(f"  in-process simulate() of the same {points} points: {total:.2f} s in all "
          f"(median {sorted(seconds)[points // 2] * 1e3:.1f} ms a point); {load()}")
    print(f"  sweep wall / sum of simulations: {wall / total:.2f}x (aim: at most 1.5x); "
          f"sweep CPU / sum of simulations: {cpu / total:.2f}x")


def timed_run(extra: list[str], args) -> tuple[float, float, dict]:
    """(wall s, CPU s of the process and its workers, summary without its ``seconds``) of one ``ecology run
    --json`` of the toy in a fresh process of this checkout."""
    command = [sys.executable, "-m", "ecology", "run", str(TOY), "--replicates", str(args.run_replicates), "--steps",
               str(args.run_steps), "--json", *extra]
    before, began = os.times(), time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall, after = time.perf_counter() - began, os.times()
    if done.returncode != 0:
        sys.exit(f"the run failed ({done.returncode}): {done.stderr.strip()}")
    summary = json.loads(done.stdout)
    summary.pop("seconds")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system), summary


def compare_runs(args, title: str, cases: dict[str, list[str]]) -> None:
    """Each case's run ``--repeats`` times, the cases alternating; the best wall of each, the ratio of the first
    case's best to the others', and whether every summary is the same."""
    print(f"== {title}: one run of {args.run_replicates:,} replicates x {args.run_steps} steps of waluigi.toml; {load()}")
    best, summaries = {}, {}
    for _ in range(args.repeats):
        for name, extra in cases.items():
            wall, cpu, summaries[name] = timed_run(extra, args)
            print(f"  {name}: {wall:.2f} s wall, {cpu:.2f} s CPU (the process and its workers); {load()}")
            best[name] = min(best.get(name, float("inf")), wall)
    first, *others = cases
    for name in others:
        print(f"  best {first} / best {name}: {best[first]:.2f} s / {best[name]:.2f} s = {best[first] / best[name]:.2f}x")
    print(f"  the same summary in every case: {all(summaries[name] == summaries[first] for name in others)} "
          f"(shards: {summaries[first]['shards']})")


def section_workers(args) -> None:
    compare_runs(args, "workers", {"1 worker": ["--workers", "1"], "2 workers": ["--workers", "2"]})


def section_dask(args) -> None:
    compare_runs(args, "dask", {"2 worker processes": ["--workers", "2"],
                                "local Dask cluster of 2": ["--scheduler", "local", "--workers", "2"]})


SECTIONS = {"sweep": section_sweep, "workers": section_workers, "dask": section_dask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lengths", type=int, default=10, help="context lengths 2, 3, ... (sweep)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1, 2, ... (sweep)")
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--run-replicates", type=int, default=100_000, help="replicates of the run (workers, dask)")
    parser.add_argument("--run-steps", type=int, default=200, help="steps of the run (workers, dask)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each case, alternating (workers, dask)")
    args = parser.parse_args()
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
