"""The cost of progress reporting in `ecology run`'s loop: a run with no callback (the library
default, :func:`ecology.progress.silent`: the engine's own blocks) against the same run with a
callback (steps taken in slices of about 0.1 s, one report after each), and against the same
run drawing the terminal bar (:class:`ecology.progress.TerminalProgress` on a forced terminal
writing to memory, from its thread). Each figure is the best of ``--repeats`` runs (the three
kinds interleaved) of ``ecology.results.simulate`` (model construction included, as `ecology run`
pays it), in wall-clock seconds and in CPU seconds of the process (``time.process_time``, all
threads: on a shared machine the less noisy of the two); the trajectories are the same bit for
bit (checked here on the steps table).

Usage: python benchmarks/bench_progress.py [--replicates 2000] [--steps 3000] [--repeats 3]
"""

import argparse
import io
import os
import time
from pathlib import Path

from rich.console import Console

from ecology.progress import TerminalProgress
from ecology.results import simulate
from ecology.scenario import load

TOY = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    s = load(TOY, {"run.replicates": args.replicates, "run.steps": args.steps})
    simulate(s)  # compile (or load) the kernel first
    reports = []

    def counting(task, done, total=None, detail=""):
        reports.append(done)

    def with_bar():
        with TerminalProgress(Console(file=io.StringIO(), force_terminal=True, width=120), delay=0.0) as bar:
            simulate(s, bar)

    kinds = {"no callback (silent)": lambda: simulate(s), "callback": lambda: simulate(s, counting),
             "terminal bar (thread)": with_bar}
    wall, cpu = ({name: [] for name in kinds} for _ in range(2))
    for _ in range(args.repeats):  # interleaved: a burst of load on a shared machine hits all three
        for name, run in kinds.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
    per_run = len(reports) / args.repeats
    same = simulate(s).steps.equals(simulate(s, counting).steps)
    print(f"waluigi.toml, {args.replicates} replicates x {args.steps} steps, best of {args.repeats} "
          f"(load average {os.getloadavg()[0]:.2f}):")
    base_wall, base_cpu = min(wall["no callback (silent)"]), min(cpu["no callback (silent)"])
    for name in kinds:
        w, c = min(wall[name]), min(cpu[name])
        print(f"  {name:<22} wall {w:7.3f} s ({w / base_wall - 1:+6.1%})   cpu {c:7.3f} s ({c / base_cpu - 1:+6.1%})")
    print(f"  {per_run:.0f} reports per run with a callback")
    print(f"  steps table identical with and without the callback: {same}")


if __name__ == "__main__":
    main()
