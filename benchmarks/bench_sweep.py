"""Wall time of a 16-point sweep of the toy (2,000 replicates, 400 steps per point) under each
engine (numpy, the reference, before; compiled, the numba kernel, after) with 1 and 2 worker
processes, and the ratios. Each configuration runs `ecology sweep` in a fresh process into a
temporary directory, so process start-up, loading the kernel's on-disk cache and result writing
are included.

Usage: python benchmarks/bench_sweep.py [--workers 1 2] [--replicates 2000] [--engines numpy compiled]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOY = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml"
GRID = ["--grid", "context.length=2:16:*2", "--grid", "premises.luigi.prior=0.5,0.7,0.9,0.99"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--engines", nargs="+", default=["numpy", "compiled"], choices=["numpy", "compiled"])
    args = parser.parse_args()
    print(f"16-point sweep of waluigi.toml, {args.replicates} replicates x 400 steps per point; "
          f"load average {os.getloadavg()[0]:.2f}")
    times = {}
    for engine in args.engines:
        for w in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "ecology", "sweep", str(TOY), *GRID, "--replicates",
                                str(args.replicates), "--workers", str(w), "--engine", engine, "--out",
                                f"{tmp}/sweep", "--json"], check=True, stdout=subprocess.DEVNULL)
                times[engine, w] = time.perf_counter() - began
            print(f"{engine:>8} engine, workers {w}: {times[engine, w]:7.2f} s wall  ({16 / times[engine, w]:.2f} points/s)")
    base = min(args.workers)
    for engine in args.engines:
        for w in args.workers:
            if w != base:
                print(f"{engine} engine, speed-up {base} -> {w} workers: {times[engine, base] / times[engine, w]:.2f}x")
    if {"numpy", "compiled"} <= set(args.engines):
        for w in args.workers:
            print(f"workers {w}: compiled engine {times['numpy', w] / times['compiled', w]:.2f}x faster than numpy")


if __name__ == "__main__":
    main()
