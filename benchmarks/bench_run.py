"""Replicate-steps per second of `ecology run`'s engine on the seed's toy (waluigi.toml).

For k = 8, 64, 512 with 10,000 replicates, it times:
- the model as shipped (EcologyModel: sliding-window likelihoods, DataCollector on);
- the same model re-reading every window from scratch each step (O(k) per step): what the
  two-stack reader saves;
- the naive way: one Mesa model per replicate (timed on a subset, rate extrapolated).

Usage: python benchmarks/bench_run.py [--replicates 10000] [--steps 600] [--lengths 8 64 512]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from ecology.dynamics import sample
from ecology.model import EcologyModel
from ecology.scenario import load

TOY = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi.toml"


def timed_model(k, replicates, steps):
    model = EcologyModel(load(TOY, {"context.length": k, "run.replicates": replicates, "run.steps": steps}))
    began = time.perf_counter()
    while model.running:
        model.step()
    return replicates * steps / (time.perf_counter() - began)


def timed_rereading(k, replicates, steps):
    """The same dynamics, but every step re-reads all k tokens of every window."""
    model = EcologyModel(load(TOY, {"context.length": k, "run.replicates": replicates, "run.steps": steps}))
    mixture, context, rng = model.mixture, model.context, np.random.default_rng(0)
    began = time.perf_counter()
    step = mixture.read(context.window)
    for _ in range(steps):
        context.append(sample(step.log_p, rng.random(replicates)))
        context.delete()
        step = mixture.read(context.window)
    return replicates * steps / (time.perf_counter() - began)


def timed_naive(k, replicates, steps):
    scenario = load(TOY, {"context.length": k, "run.replicates": 1, "run.steps": steps})
    began = time.perf_counter()
    for r in range(replicates):
        model = EcologyModel(scenario, rng=r)
        while model.running:
            model.step()
    return replicates * steps / (time.perf_counter() - began)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--naive-replicates", type=int, default=20)
    args = parser.parse_args()
    print(f"toy waluigi.toml, {args.replicates} replicates x {args.steps} steps (one process)")
    print(f"{'k':>5} {'model rs/s':>14} {'re-reading rs/s':>16} {'naive rs/s':>12} {'vs re-read':>11} {'vs naive':>9}")
    for k in args.lengths:
        fast = timed_model(k, args.replicates, args.steps)
        reread = timed_rereading(k, args.replicates, args.steps)
        naive = timed_naive(k, args.naive_replicates, args.steps)
        print(f"{k:>5} {fast:>14,.0f} {reread:>16,.0f} {naive:>12,.0f} {fast / reread:>10.1f}x {fast / naive:>8.0f}x")


if __name__ == "__main__":
    main()
