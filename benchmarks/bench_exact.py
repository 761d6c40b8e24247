"""Time and peak memory of the exact analyser on the softened toy (every page-state reachable).

For k = 12, 16, 20 (2^(k+1) - 1 states: about 8k, 131k and 2M) it times building the chain and
the full report (closed classes, periods, stationary distribution, absorption, top eigenvalues),
each in a fresh process so that peak memory (ru_maxrss) is that stage's own. QuantEcon's
MarkovChain (dense: recurrent classes and GTH stationary distributions) is timed on the sizes
it can handle, for the ratio against our full report; numpy's dense eigvals (the spectrum our
report includes, which QuantEcon does not compute) is timed beside it.

Usage: python benchmarks/bench_exact.py [--lengths 10 12 16 20] [--quantecon-max 8191]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SOFT = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi_soft.toml"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from ecology.scenario import load
from ecology.dynamics import compile_scenario
from ecology.exact import analyze, build_chain
k, quantecon = int(sys.argv[1]), sys.argv[2] == "1"
compiled = compile_scenario(load(sys.argv[3], {"context.length": k}))
t0 = time.perf_counter()
chain = build_chain(compiled, max_states=5_000_000)
t1 = time.perf_counter()
mem_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
out = {"k": k, "states": chain.chain.n_states, "transitions": int(chain.chain.P.nnz),
       "build_s": t1 - t0, "build_peak_gib": mem_build}
if not quantecon:
    report = analyze(compiled, chain=chain)
    out["report_s"] = time.perf_counter() - t1
    out["eigenvalues"] = report["eigenvalues"][:3]
    out["closed_classes"] = len(report["closed_classes"])
else:
    import quantecon as qe
    dense = chain.chain.P.toarray()
    t2 = time.perf_counter()
    mc = qe.MarkovChain(dense)
    mc.recurrent_classes, mc.stationary_distributions
    out["quantecon_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    np.linalg.eigvals(dense)
    out["dense_eig_s"] = time.perf_counter() - t3
out["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


def child(k, quantecon):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(k), "1" if quantecon else "0", str(SOFT)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 12, 16, 20])
    parser.add_argument("--quantecon-max", type=int, default=8191, help="largest chain given to QuantEcon (dense)")
    args = parser.parse_args()
    print("softened toy (waluigi_soft.toml); times in seconds, memory = peak RSS of the process")
    print(f"{'k':>3} {'states':>10} {'build s':>8} {'report s':>9} {'total s':>8} {'peak GiB':>9} "
          f"{'quantecon s':>12} {'ratio':>7} {'dense eig s':>12}")
    for k in args.lengths:
        ours = child(k, False)
        total = ours["build_s"] + ours["report_s"]
        qe_s, ratio, eig_s = "-", "-", "-"
        if ours["states"] <= args.quantecon_max:
            theirs = child(k, True)
            qe_s = f"{theirs['quantecon_s']:.2f}"
            ratio = f"{theirs['quantecon_s'] / total:.1f}x"
            eig_s = f"{theirs['dense_eig_s']:.2f}"
        print(f"{k:>3} {ours['states']:>10,} {ours['build_s']:>8.2f} {ours['report_s']:>9.2f} {total:>8.2f} "
              f"{ours['peak_gib']:>9.2f} {qe_s:>12} {ratio:>7} {eig_s:>12}")


if __name__ == "__main__":
    main()
