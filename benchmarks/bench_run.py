"""Replicate-steps per second of `ecology run`'s two engines side by side, and the compile cost.

For the toy (waluigi.toml) at k = 8, 64, 512, 4096, for chat.toml (two premises of two cast
members each, k = 12), and for the toy under block deletion (B = 2, a re-reading rule: O(k) per
step) at k = 16 and 128, with 10,000 replicates, it times the whole run as `ecology run` runs it
(``model.run_model()``: sampling, likelihoods,
Bayes, mixture, ledger, criteria and every observable recorded by the DataCollector; the
compiled engine runs blocks of steps) under ``run.engine = "numpy"`` (the reference) and
``"compiled"`` (the numba kernel of ecology/engine/compiled.py), and prints their ratio. Model construction (the initial
two-stack build) is not timed. Both engines produce the same trajectories (tests/test_kernel.py).

Beside each compiled figure it times the kernel alone: ``engine.run`` on the same uniforms, drawn
beforehand from the model's own stream in the blocks ``run_model`` takes, filling the same records
and nothing else (no rows of steps.csv, no DataCollector, no raster lists, no uniforms drawn);
``whole/kernel`` is the whole run's rate over the kernel's (1 would be a run that costs nothing
beside the kernel). Figures are CPU seconds of this process (``time.process_time``: the kernel
is single-threaded, and on a shared machine CPU time is what other jobs disturb least).

It also reports the kernel's one-time compile cost: ``ecology.model.warm_up()`` in a fresh process with
an empty numba cache (cold), then again in a fresh process reading that cache (what every later
run and every sweep worker pays).

On a shared machine each figure is the best of ``--repeats`` runs, the two engines interleaved
(the load average is printed).

Usage: python benchmarks/bench_run.py [--replicates 10000] [--steps 600] [--lengths 8 64 512 4096] [--repeats 3]
       [--no-numpy] (the compiled engine and its kernel only: the numpy engine takes minutes at k = 4096)
"""

import argparse
import gc
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


def model_of(path, engine, replicates, steps, **overrides) -> EcologyModel:
    """A fresh model, once the models of earlier figures are collected (premise agents and their
    model refer to each other, so only the garbage collector frees them: at k = 4096 each holds
    GBs, which the next figure would otherwise map afresh while they linger)."""
    gc.collect()
    return EcologyModel(load(path, {**overrides, "run.replicates": replicates, "run.steps": steps, "run.engine": engine}))


def rate(path, engine, replicates, steps, **overrides):
    """Replicate-steps per CPU second of ``model.run_model()`` (construction not timed)."""
    model = model_of(path, engine, replicates, steps, **overrides)
    began = time.process_time()
    model.run_model()
    assert model.engine.name == engine and model.generated == steps
    return replicates * steps / (time.process_time() - began)


def kernel_rate(path, replicates, steps, **overrides):
    """Replicate-steps per CPU second of the compiled engine's ``engine.run`` alone, on the uniforms
    ``run_model`` would draw (the model's stream, in its blocks), drawn before timing."""
    model = model_of(path, "compiled", replicates, steps, **overrides)
    engine, blocks, left = model.engine, [], steps
    while left > 0:
        size = engine.block_size(left)
        blocks.append(model.rng.random((size, replicates)))
        left -= size
    generated = 0
    began = time.process_time()
    for uniforms in blocks:
        generated += engine.run(uniforms, generated).done
    spent = time.process_time() - began
    assert generated == steps
    return replicates * steps / spent


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
    parser.add_argument("--no-numpy", action="store_true", help="time the compiled engine and its kernel only")
    args = parser.parse_args()
    cold, warm = compile_cost()
    print(f"kernel compile: {cold:.2f} s cold (empty cache), {warm:.2f} s loading the on-disk cache")
    rate(TOY, "compiled", 16, 4)  # load the cache in this process before timing
    print(f"{args.replicates} replicates x {args.steps} steps, one process, CPU time, best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'scenario':<14} {'deletion':<8} {'k':>5} {'numpy rs/s':>14} {'compiled rs/s':>14} {'ratio':>7} "
          f"{'kernel rs/s':>14} {'whole/kernel':>12}")
    block = {"context.deletion": "block", "context.block": 2}
    cases = [(TOY, k, {}) for k in args.lengths] + [(CHAT, None, {})] + [(TOY, k, block) for k in (16, 128)]
    for path, k, rule in cases:
        extra = {**rule, **({} if k is None else {"context.length": k})}
        best = {"compiled": 0.0, "kernel": 0.0} if args.no_numpy else {"numpy": 0.0, "compiled": 0.0, "kernel": 0.0}
        for _ in range(args.repeats):
            for engine in best:
                figure = (kernel_rate(path, args.replicates, args.steps, **extra) if engine == "kernel"
                          else rate(path, engine, args.replicates, args.steps, **extra))
                best[engine] = max(best[engine], figure)
        fast, kernel = best["compiled"], best["kernel"]
        shown = k if k is not None else load(path).context.length
        deletion = rule.get("context.deletion", "fifo")
        slow = f"{best['numpy']:>14,.0f} {fast / best['numpy']:>6.2f}x" if "numpy" in best else f"{'-':>14} {'-':>7}"
        print(f"{path.name:<14} {deletion:<8} {shown:>5} {slow} {fast:>14,.0f} {kernel:>14,.0f} {fast / kernel:>12.3f}",
              flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
