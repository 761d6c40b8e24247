"""Replicate-steps per second of `ecology run`'s two engines side by side, and the compile cost.

For the toy (waluigi.toml) at k = 8, 64, 512, 4096, for chat.toml (two premises of two cast
members each, k = 12), and for the toy under block deletion (B = 2, a re-reading rule: O(k) per
step) at k = 16 and 128, with 10,000 replicates, it times the whole run as `ecology run` runs it
(``model.run_model()``: sampling, likelihoods,
Bayes, mixture, ledger, criteria and every observable recorded by the DataCollector; the
compiled engine runs blocks of steps) under ``run.engine = "numpy"`` (the reference) and
``"compiled"`` (the numba kernel of ecology/engine/compiled.py), and prints their ratio. Model construction (the initial
two-stack build) is not timed. Both engines produce the same trajectories (tests/test_kernel.py).

It also reports which share of the compiled engine's step time is spent in the kernel, and
the kernel's one-time compile cost: ``ecology.model.warm_up()`` in a fresh process with
an empty numba cache (cold), then again in a fresh process reading that cache (what every later
run and every sweep worker pays).

On a shared machine each figure is the best of ``--repeats`` runs, the two engines interleaved
(the load average is printed).

Usage: python benchmarks/bench_run.py [--replicates 10000] [--steps 600] [--lengths 8 64 512 4096] [--repeats 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecology.model import EcologyModel
from ecology.scenario import load

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "scenarios" / "waluigi.toml"
CHAT = ROOT / "scenarios" / "chat.toml"


def rate(path, engine, replicates, steps, **overrides):
    """Replicate-steps per second of the model's step loop (construction not timed)."""
    model = EcologyModel(load(path, {**overrides, "run.replicates": replicates, "run.steps": steps,
                                     "run.engine": engine}))
    began = time.perf_counter()
    model.run_model()
    assert model.engine.name == engine
    return replicates * steps / (time.perf_counter() - began)


def engine_share(path, replicates, steps, **overrides) -> tuple[float, float]:
    """Fraction of the compiled model's step time spent in the kernel (blocks of steps: draw,
    likelihoods, mixture, ledger, criteria, per-step sums and quantiles), and the kernel's own
    replicate-steps per second; the rest is Python: the rows of steps.csv built from the block's
    sums, the DataCollector, the raster lists."""
    model = EcologyModel(load(path, {**overrides, "run.replicates": replicates, "run.steps": steps}))
    spent = 0.0
    run = model.engine.run

    def timed(*args):
        nonlocal spent
        began = time.perf_counter()
        out = run(*args)
        spent += time.perf_counter() - began
        return out

    model.engine.run = timed
    began = time.perf_counter()
    model.run_model()
    return spent / (time.perf_counter() - began), replicates * steps / spent


def compile_cost() -> tuple[float, float]:
    """Seconds of ecology.model.warm_up() in a fresh process: with an empty cache, then with it filled."""
    code = "from ecology.model import warm_up; print(warm_up())"
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold, warm = (float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                           text=True).stdout) for _ in range(2))
    return cold, warm


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 64, 512, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cold, warm = compile_cost()
    print(f"kernel compile: {cold:.2f} s cold (empty cache), {warm:.2f} s loading the on-disk cache")
    rate(TOY, "compiled", 16, 4)  # load the cache in this process before timing
    print(f"{args.replicates} replicates x {args.steps} steps, one process, best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'scenario':<14} {'deletion':<8} {'k':>5} {'numpy rs/s':>14} {'compiled rs/s':>14} {'ratio':>7}")
    block = {"context.deletion": "block", "context.block": 2}
    cases = [(TOY, k, {}) for k in args.lengths] + [(CHAT, None, {})] + [(TOY, k, block) for k in (16, 128)]
    for path, k, rule in cases:
        extra = {**rule, **({} if k is None else {"context.length": k})}
        best = {"numpy": 0.0, "compiled": 0.0}
        for _ in range(args.repeats):
            for engine in best:
                best[engine] = max(best[engine], rate(path, engine, args.replicates, args.steps, **extra))
        slow, fast = best["numpy"], best["compiled"]
        shown = k if k is not None else load(path).context.length
        deletion = rule.get("context.deletion", "fifo")
        print(f"{path.name:<14} {deletion:<8} {shown:>5} {slow:>14,.0f} {fast:>14,.0f} {fast / slow:>6.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f}")
    for path in (TOY, CHAT):
        share, kernel_rate = engine_share(path, args.replicates, args.steps // 2)
        print(f"compiled engine, {path.name}: {100 * share:.0f}% of the time in the kernel "
              f"({kernel_rate:,.0f} rs/s alone), {100 * (1 - share):.0f}% in Python (rows of steps.csv, "
              "DataCollector, raster lists)")


if __name__ == "__main__":
    main()
