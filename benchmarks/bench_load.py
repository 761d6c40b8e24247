"""The exact analyser on a shared machine (issue 25, item 7): BLAS threads pinned or not, and a few
leading eigenvalues by ARPACK against the full dense spectrum, at idle and under an artificial load.

1. `ecology analyze scenarios/waluigi_soft.toml --set context.length=K` (K = 10, 14 by default),
   each in a fresh process, with one BLAS thread (the default now, ECOLOGY_BLAS_THREADS=1) and with
   one per core (OpenBLAS's own default, ECOLOGY_BLAS_THREADS=<cores>); the user's
   OPENBLAS/OMP_NUM_THREADS are removed from the child's environment.
2. The six leading eigenvalues of the closed class of waluigi_soft at each K (2^K states): the full
   dense spectrum (`np.linalg.eigvals`) against `leading_eigenvalues` (two ARPACK runs), each with
   one BLAS thread and with one per core (threadpoolctl), and the largest difference of the moduli.
3. The crossover behind ARPACK_EIGEN_MIN: dense spectrum against `leading_eigenvalues` on random
   sparse irreducible classes of 100 to 1,500 states (one BLAS thread).

Each timing is printed with the 1-minute load average beside it; compare ratios within one run.
`--load N` starts N busy processes (`while True: pass`) for the measurements and kills them after
(by their ids). Usage:

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_load.py [--lengths 10 14] [--load 2] [--sections 1 2 3]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from ecology.exact.markov import leading_eigenvalues  # noqa: E402

SOFT = ROOT / "scenarios" / "waluigi_soft.toml"
CORES = os.cpu_count() or 1
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def analyze_seconds(k: int, threads: int) -> float:
    """Wall seconds of one `ecology analyze` in a fresh process with ECOLOGY_BLAS_THREADS=threads."""
    env = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    env.update(ECOLOGY_BLAS_THREADS=str(threads), PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ecology", "analyze", str(SOFT), "--set", f"context.length={k}", "--quiet"],
                   check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def section_analyze(lengths):
    print(f"\n1. ecology analyze waluigi_soft, fresh process each ({CORES} cores)")
    print(f"{'k':>3} {'1 thread s':>11} {'load':>6} {f'{CORES} threads s':>12} {'load':>6} {'ratio':>6}")
    for k in lengths:
        pinned, pinned_load = analyze_seconds(k, 1), load_average()
        default, default_load = analyze_seconds(k, CORES), load_average()
        print(f"{k:>3} {pinned:>11.2f} {pinned_load:>6} {default:>12.2f} {default_load:>6} {default / pinned:>6.1f}")


def soft_class(k: int) -> sp.csr_matrix:
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.scenario import load

    mc = build_chain(compile_scenario(load(SOFT, {"context.length": k}))).chain
    (members,) = mc.recurrent_classes
    return mc.P[members][:, members].tocsr()


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def section_eigenvalues(lengths):
    print("\n2. six leading eigenvalues of waluigi_soft's closed class: dense spectrum vs two ARPACK runs")
    print(f"{'k':>3} {'states':>7} {'threads':>7} {'dense s':>8} {'ARPACK s':>9} {'load':>6} {'max |diff| of moduli':>21}")
    for k in lengths:
        B = soft_class(k)
        for threads in (1, CORES):
            with threadpool_limits(limits=threads, user_api="blas"):
                ours, arpack_s = timed(lambda: leading_eigenvalues(B, 6))
                if B.shape[0] <= 4096:
                    dense, dense_s = timed(lambda: np.linalg.eigvals(B.toarray()))
                    dense = np.sort(np.abs(dense))[::-1][:6]
                    diff = f"{np.max(np.abs(np.abs(ours) - dense)):.1e}"
                else:
                    dense_s, diff = float("nan"), "(dense not run)"
            print(f"{k:>3} {B.shape[0]:>7,} {threads:>7} {dense_s:>8.3f} {arpack_s:>9.3f} {load_average():>6} {diff:>21}")


def random_class(n: int, rng) -> sp.csr_matrix:
    rows = np.repeat(np.arange(n), 5)
    cols = np.stack([(np.arange(n) + 1) % n, *rng.integers(0, n, (4, n))]).T.ravel()
    P = sp.csr_matrix((rng.random(len(rows)) + 0.05, (rows, cols)), shape=(n, n))
    return (sp.diags(1 / np.asarray(P.sum(axis=1)).ravel()) @ P).tocsr()


def section_crossover():
    from ecology.exact import markov

    print("\n3. dense spectrum vs leading_eigenvalues (6 values, two ARPACK runs), random sparse classes, 1 thread")
    print(f"{'states':>7} {'dense s':>8} {'ARPACK s':>9} {'ratio':>6} {'load':>6}")
    rng = np.random.default_rng(1)
    saved = markov.ARPACK_EIGEN_MIN
    markov.ARPACK_EIGEN_MIN = 0  # ARPACK at every size, to see where it starts to win
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for n in (100, 200, 300, 400, 600, 1000, 1500):
                B = random_class(n, rng)
                _, dense_s = timed(lambda: np.linalg.eigvals(B.toarray()))
                _, arpack_s = timed(lambda: leading_eigenvalues(B, 6))
                print(f"{n:>7,} {dense_s:>8.3f} {arpack_s:>9.3f} {dense_s / arpack_s:>6.1f} {load_average():>6}")
    finally:
        markov.ARPACK_EIGEN_MIN = saved


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 14])
    parser.add_argument("--load", type=int, default=0, help="busy processes to run beside the measurements")
    parser.add_argument("--sections", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        if busy:
            time.sleep(5)  # let the load average see them
        print(f"{args.load} busy processes beside; load average {load_average()} at the start")
        sections = {1: lambda: section_analyze(args.lengths), 2: lambda: section_eigenvalues(args.lengths),
                    3: section_crossover}
        for number in args.sections:
            sections[number]()
    finally:
        for process in busy:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
