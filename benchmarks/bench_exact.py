"""Accuracy, time and memory of the exact analyser against independent references.

1. Product-form birth–death chains (two wells; crossing the middle has probability `escape`
   per step): the exact stationary law is `pi_{i+1} / pi_i = up_i / down_i`, in log space.
   L1 error of `stationary_law`, its own error estimate, time and peak traced memory.
2. QuantEcon's KMR chain (N = 2000, eps = 1e-3): product form as above.
3. Dense GTH reference (QuantEcon's `gth_solve`) on page-state classes and on random nearly
   decomposable chains: L1 distance of our answer to it.
4. Expected hitting times at low temperature (up to ~1e44): relative error of ours and of a plain
   sparse LU solve of `(I - Q) h = 1` against `mpmath` at 60 digits.
5. The softened toy (waluigi_soft.toml) for k = 12, 16, 20 (2^(k+1) - 1 states, 2M at k = 20):
   build and full-report time, each in a fresh process, and its peak RSS.
6. Sparse block GTH above the dense limit, before/after: nearly decomposable reversible chains
   (metastable blocks coupled by 1e-10, states randomly permuted; exact law by detailed balance),
   QuantEcon's KMR chain permuted (N = 5000..20000), the soft toy at eps = 1e-8 (k = 12, 13).
   "before" = what the library did without the block elimination (Arnoldi / pinned LU with the
   residual bound), "after" = the automatic choice now.
7. Expected hitting times of linked groups above 20,000 states, before/after: a lumpable
   level chain (birth–death levels of random states, not banded) with times up to ~1e47 against
   mpmath at 50 digits; "before" = the sparse LU of (I - Q) (the old solver up to 8,000 unknowns;
   above 20,000 the old code refused).
8. Accuracy per component against mpmath (issue 24): a birth–death chain of 3,000 states with
   rates spanning 6 decades (exact law by detailed balance in 40-digit mpmath) and a band of width 2
   (3,000 states, masses spanning 1e-250 and below; GTH in 50-digit mpmath on the band): largest
   relative error per component, L1 error, the reported estimate, and whether the estimate is at
   least the error, for the automatic method and for dense GTH. (Section 1's reference is the
   product form in floating log space, good to about 1e-13 only: it cannot see errors below that.)

Usage: python benchmarks/bench_exact.py [--lengths 12 16 20] [--skip-toy] [--sections 1 2 ...] (--sections 8: accuracy)
On a machine shared with other jobs, OPENBLAS_NUM_THREADS=1 gives steadier times (the block
eliminations make many small matrix products, which threads contending for cores slow down 10x).
"""

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ecology.exact.markov import MarkovChain, stationary_law  # noqa: E402

SOFT = ROOT / "scenarios" / "waluigi_soft.toml"


def timed(fn, memory=True):
    """(value, seconds, peak MiB of Python/numpy allocations): timed untraced, then traced again
    for memory (tracing slows the small-array loops down several times)."""
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    peak = float("nan")
    if memory:
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return value, seconds, peak


def birth_death(n, escape, rng):
    up, down = rng.uniform(0.2, 0.5, n - 1), rng.uniform(0.2, 0.5, n - 1)
    middle = slice(n // 2 - 2, n // 2 + 2)
    up[middle] = down[middle] = escape
    P = sp.diags([down, up], [-1, 1], shape=(n, n)).tolil()
    P.setdiag(1.0 - np.asarray(P.sum(axis=1)).ravel())
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(up) - np.log(down))])
    pi = np.exp(log_pi - log_pi.max())
    return P.tocsr(), pi / pi.sum()


def section_birth_death():
    print("1. birth-death chains, exact product form (L1 error of pi; estimate = our own error estimate;\n"
          "   peak MiB = traced numpy/Python allocations, measured once per size)")
    print(f"{'states':>8} {'escape':>8} {'method':>14} {'L1 error':>10} {'estimate':>10} {'time s':>7} {'peak MiB':>9}")
    for n in (2_000, 10_000, 100_000):
        for escape in (1e-3, 1e-6, 1e-10):
            P, exact = birth_death(n, escape, np.random.default_rng(n))
            law, seconds, peak = timed(lambda: stationary_law(P), memory=escape == 1e-10)
            print(f"{n:>8,} {escape:>8.0e} {law.method:>14} {np.abs(law.pi - exact).sum():>10.1e} "
                  f"{law.error:>10.1e} {seconds:>7.2f} {'-' if np.isnan(peak) else f'{peak:.1f}':>9}")


def section_kmr():
    import quantecon.markov.tests.test_core as core

    P = core.KMR_Markov_matrix_sequential(2000, 1 / 3, 1e-3)
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(np.diag(P, 1)) - np.log(np.diag(P, -1)))])
    exact = np.exp(log_pi - log_pi.max())
    exact /= exact.sum()
    law, seconds, _ = timed(lambda: MarkovChain(P).stationary_laws[0], memory=False)
    print(f"\n2. QuantEcon KMR(N = 2000, eps = 1e-3): {law.method}, L1 error {np.abs(law.pi - exact).sum():.1e} "
          f"(estimate {law.error:.1e}), pi_N = {law.pi[-1]:.6f} (exact {exact[-1]:.6f}), {seconds:.2f} s")


def section_dense_reference():
    import quantecon as qe

    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.scenario import load

    print("\n3. against QuantEcon's dense gth_solve (L1 distance)")
    print(f"{'chain':>34} {'class':>7} {'method':>14} {'L1 vs GTH':>10} {'estimate':>10} {'ours s':>7} {'qe s':>7}")
    cases = []
    for k in (10, 11):
        pc = build_chain(compile_scenario(load(str(SOFT), {"context.length": k})))
        c = pc.chain.recurrent_classes[0]
        cases.append((f"waluigi_soft k = {k}", pc.chain.P[c][:, c].tocsr()))
    swap = {"name": "swap", "vocabulary": {"tokens": ["0", "1"], "pad": "N"}, "context": {"length": 11},
            "run": {"steps": 5, "replicates": 2},
            "simulacra": {"zero": {"kind": "constant", "token": "0", "eps": 0.01},
                          "one": {"kind": "constant", "token": "1", "eps": 0.01}},
            "premises": {"zero": {"prior": 0.5, "cast": ["zero"]}, "one": {"prior": 0.5, "cast": ["one"]}}}
    from ecology.scenario import validate

    pc = build_chain(compile_scenario(validate(swap)))
    c = pc.chain.recurrent_classes[0]
    cases.append(("two constant premises, k = 11", pc.chain.P[c][:, c].tocsr()))
    rng = np.random.default_rng(1)
    for coupling in (1e-6, 1e-10):
        size, blocks = 500, 4
        M = np.zeros((size * blocks, size * blocks))
        for b in range(blocks):
            sl = slice(b * size, (b + 1) * size)
            M[sl, sl] = rng.random((size, size)) * (rng.random((size, size)) < 0.02) + np.eye(size) * 0.01
        M /= M.sum(axis=1, keepdims=True)
        for b in range(blocks):
            i = b * size
            M[i] *= 1 - coupling
            M[i, ((b + 1) % blocks) * size] += coupling
        cases.append((f"random 4 x 500 blocks, coupling {coupling:.0e}", sp.csr_matrix(M)))
    for name, P in cases:
        law, seconds, _ = timed(lambda: stationary_law(P), memory=False)
        t0 = time.perf_counter()
        reference = qe.markov.gth_solve(P.toarray())
        qe_s = time.perf_counter() - t0
        print(f"{name:>34} {P.shape[0]:>7,} {law.method:>14} {np.abs(law.pi - reference).sum():>10.1e} "
              f"{law.error:>10.1e} {seconds:>7.2f} {qe_s:>7.2f}")


def section_low_temperature():
    import mpmath
    from scipy.sparse import linalg as spla

    mpmath.mp.dps = 60
    rng = np.random.default_rng(11)
    n, T = 12, 0.01
    energy = rng.uniform(0.0, 0.3, (n, n))
    energy[:, 0] = rng.uniform(1.0, 1.05, n)
    W = np.exp(-energy / T) * (rng.random((n, n)) < 0.6)
    W[np.arange(n - 1), np.arange(1, n)] = np.exp(-energy[np.arange(n - 1), np.arange(1, n)] / T)
    W[n - 1, 0] = np.exp(-energy[n - 1, 0] / T)
    np.fill_diagonal(W, 1.0)
    P = W / W.sum(axis=1, keepdims=True)
    target = np.zeros(n, dtype=bool)
    target[0] = True
    ours = MarkovChain(P).expected_hitting_times(target)[1:]
    plain = spla.splu(sp.csc_matrix(np.eye(n - 1) - P[1:, 1:])).solve(np.ones(n - 1))
    A = mpmath.matrix(n - 1, n - 1)
    for i in range(1, n):
        for j in range(1, n):
            A[i - 1, j - 1] = -mpmath.mpf(P[i, j]) if i != j else mpmath.fsum(mpmath.mpf(P[i, m]) for m in range(n) if m != i)
    reference = np.array([float(v) for v in mpmath.lu_solve(A, mpmath.matrix([1] * (n - 1)))])
    print(f"\n4. expected hitting times at low temperature (T = {T}, n = {n}; max {reference.max():.2e} steps)")
    print(f"   max relative error vs mpmath: subtraction-free {np.max(np.abs(ours / reference - 1)):.1e}, "
          f"plain sparse LU of (I - Q) {np.max(np.abs(plain / reference - 1)):.1e}")


CHILD = r"""
import json, resource, sys, time
from ecology.scenario import load
from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain
from ecology.exact.report import analyze
k = int(sys.argv[1])
compiled = compile_scenario(load(sys.argv[2], {"context.length": k}))
t0 = time.perf_counter()
chain = build_chain(compiled, max_states=5_000_000)
t1 = time.perf_counter()
report = analyze(compiled, chain=chain)
out = {"k": k, "states": chain.chain.n_states, "build_s": t1 - t0, "report_s": time.perf_counter() - t1,
       "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
       "eigenvalues": report["eigenvalues"][:3], "accuracy": report["closed_classes"][0]["stationary_accuracy"],
       "revealed": report["criteria"]["revealed"]}
print(json.dumps(out))
"""


def section_toy(lengths):
    print("\n5. softened toy (waluigi_soft.toml): full report, fresh process each; memory = peak RSS")
    print(f"{'k':>3} {'states':>10} {'build s':>8} {'report s':>9} {'peak GiB':>9} {'pi method':>10} {'pi error est.':>13} "
          f"{'E[T] to U^k':>12} {'|lambda_2|':>12}")
    for k in lengths:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(k), str(SOFT)], capture_output=True, text=True,
                              check=True, cwd=ROOT)
        r = json.loads(proc.stdout)
        est = r["accuracy"]["error_estimate"]
        hit = r["revealed"]["expected_hitting_time"]
        print(f"{k:>3} {r['states']:>10,} {r['build_s']:>8.2f} {r['report_s']:>9.2f} {r['peak_gib']:>9.2f} "
              f"{r['accuracy']['method']:>10} {'none' if est is None else f'{est:.1e}':>13} "
              f"{'-' if hit is None else f'{hit:.6g}':>12} {r['eigenvalues'][1]:>12.10f}")


def section_block_gth():
    import quantecon as qe

    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.scenario import load

    sys.path.insert(0, str(ROOT / "tests"))
    from test_markov import kmr_sequential, reversible_blocks

    print("\n6. stationary laws above the dense limit: before (Arnoldi / pinned LU, residual bound) and after "
          "(automatic: sparse block GTH, estimate = two elimination orders)")
    print(f"{'chain':>40} {'states':>7} {'':>6} {'method':>22} {'L1 error':>10} {'estimate':>10} {'time s':>7}")
    cases = []
    rng = np.random.default_rng(21)
    for sizes in ([1200, 900, 1000], [2000, 1500, 2500], [2000] * 6):
        P, exact = reversible_blocks(sizes, 1e-10, rng)
        cases.append((f"reversible {len(sizes)} blocks, coupling 1e-10", P, exact))
    for N in (5000, 20_000):
        P = kmr_sequential(N, 1 / 3, 1e-3)
        log_pi = np.concatenate([[0.0], np.cumsum(np.log(P.diagonal(1)) - np.log(P.diagonal(-1)))])
        exact = np.exp(log_pi - log_pi.max())
        perm = np.random.default_rng(N).permutation(N + 1)
        cases.append((f"KMR N = {N}, eps = 1e-3, permuted", P[perm][:, perm].tocsr(), (exact / exact.sum())[perm]))
    for k in (12, 13):
        pc = build_chain(compile_scenario(load(str(SOFT), {"context.length": k, "simulacra.luigi.eps": 1e-8,
                                                           "simulacra.waluigi.eps": 1e-8})))
        c = pc.chain.recurrent_classes[0]
        P = pc.chain.P[c][:, c].tocsr()
        exact = qe.markov.gth_solve(P.toarray()) if k == 12 else None  # dense reference: 1 min at 4,096
        cases.append((f"soft toy eps = 1e-8, k = {k}", P, exact))
    for name, P, exact in cases:
        for when, method in (("before", "old"), ("after", "auto")):
            if method == "old":
                def run():
                    try:
                        return stationary_law(P, "sparse" if P.shape[0] <= 8000 else "arnoldi")
                    except Exception as err:  # noqa: BLE001 ( the old paths could fail outright)
                        return err
            else:
                def run():
                    return stationary_law(P)
            law, seconds, _ = timed(run, memory=False)
            if isinstance(law, Exception):
                print(f"{name:>40} {P.shape[0]:>7,} {when:>6} {'failed: ' + str(law)[:40]:>22}")
                continue
            error = "-" if exact is None else f"{np.abs(law.pi - exact).sum():.1e}"
            estimate = "none" if law.error is None else f"{law.error:.1e}"
            print(f"{name:>40} {P.shape[0]:>7,} {when:>6} {law.method:>22} {error:>10} {estimate:>10} {seconds:>7.2f}")


def section_large_hitting():
    import mpmath
    from scipy.sparse import linalg as spla

    sys.path.insert(0, str(ROOT / "tests"))
    from test_markov import birth_death_hitting_times, lumpable_levels

    print("\n7. expected hitting times of a linked group above 20,000 states (not banded), against mpmath")
    print(f"{'states':>8} {'max time':>10} {'ours: rel err':>14} {'time s':>7} {'before: LU rel err':>19} {'LU s':>6}")
    for levels, width in ((340, 60), (340, 120)):
        up, down = np.full(levels, 0.3), np.full(levels, 0.3)
        up[-1], down[0] = 0.0, 0.0
        down[1:11] = 1e-5
        P, level = lumpable_levels(levels, width, up, down, np.random.default_rng(1))
        reference = birth_death_hitting_times(up, down, mpmath)[level]
        h, seconds, _ = timed(lambda: MarkovChain(P).expected_hitting_times(level == 0), memory=False)
        rest = np.flatnonzero(level > 0)
        A = (sp.identity(len(rest)) - P[rest][:, rest]).tocsc()
        t0 = time.perf_counter()
        plain = spla.splu(A).solve(np.ones(len(rest)))
        lu_s = time.perf_counter() - t0
        ours = np.max(np.abs(h[rest] / reference[rest] - 1))
        before = np.max(np.abs(plain / reference[rest] - 1))
        print(f"{P.shape[0]:>8,} {reference.max():>10.2e} {ours:>14.1e} {seconds:>7.2f} {before:>19.1e} {lu_s:>6.2f}")


def mp_birth_death_law(P):
    """Detailed balance in 40-digit mpmath on the given float matrix (a path in natural order)."""
    import mpmath

    with mpmath.workdps(40):
        logs = [mpmath.mpf(0)]
        for i in range(P.shape[0] - 1):
            logs.append(logs[-1] + mpmath.log(mpmath.mpf(P[i, i + 1])) - mpmath.log(mpmath.mpf(P[i + 1, i])))
        top = max(logs)
        weights = [mpmath.exp(x - top) for x in logs]
        total = mpmath.fsum(weights)
        return np.array([float(w / total) for w in weights])


def mp_band_gth(P):
    """GTH in 50-digit mpmath in natural order on the nonzero pattern (a band keeps its width)."""
    import mpmath

    n = P.shape[0]
    with mpmath.workdps(50):
        rows = [{int(j): mpmath.mpf(float(v)) for j, v in zip(P[i].indices, P[i].data) if j != i} for i in range(n)]
        factors = []
        for k in range(n - 1):
            pivot = mpmath.fsum(v for j, v in rows[k].items() if j > k)
            column = {i: rows[i].pop(k) / pivot for i in range(k + 1, n) if k in rows[i]}
            for i, f in column.items():
                for j, v in rows[k].items():
                    if j > k and j != i:
                        rows[i][j] = rows[i].get(j, 0) + f * v
            factors.append(column)
        x = [mpmath.mpf(0)] * n
        x[n - 1] = mpmath.mpf(1)
        for k in range(n - 2, -1, -1):
            x[k] = mpmath.fsum(x[i] * f for i, f in factors[k].items())
        total = mpmath.fsum(x)
        return np.array([float(v / total) for v in x])


def section_accuracy():
    rng = np.random.default_rng(1)
    n = 3000
    up, down = 0.5 * 10 ** rng.uniform(-6, 0, n - 1), 0.5 * 10 ** rng.uniform(-6, 0, n - 1)
    P = sp.diags([up, down], [1, -1], shape=(n, n)).tocsr()
    birth = (P + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())).tocsr()
    rng = np.random.default_rng(5)
    offsets, scales = [1, 2, -1, -2], [0.01, 0.01, 0.25, 0.25]
    P = sp.diags([c * 10 ** rng.uniform(-2, 0, n - abs(o)) for o, c in zip(offsets, scales)], offsets, shape=(n, n))
    band = (P.tocsr() + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())).tocsr()
    print("\n8. accuracy per component against mpmath (3,000 states; relative error over components of the"
          " exact law above 1e-300)")
    print(f"{'chain':>12} {'method':>34} {'max rel':>9} {'L1 error':>9} {'estimate':>9} {'est >= err':>10} {'time s':>7}")
    for name, P, exact in (("birth-death", birth, mp_birth_death_law(birth)), ("band 2", band, mp_band_gth(band))):
        for method in ("auto", "dense"):
            law, seconds, _ = timed(lambda: stationary_law(P, method), memory=False)
            big = exact > 1e-300
            relative = float(np.max(np.abs(law.pi[big] - exact[big]) / exact[big]))
            l1 = float(np.abs(law.pi - exact).sum())
            print(f"{name:>12} {law.method:>34} {relative:>9.1e} {l1:>9.1e} {law.error:>9.1e} "
                  f"{"yes" if law.error >= l1 else "NO":>10} {seconds:>7.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--skip-toy", action="store_true")
    parser.add_argument("--sections", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    args = parser.parse_args()
    sections = {1: section_birth_death, 2: section_kmr, 3: section_dense_reference, 4: section_low_temperature,
                5: None if args.skip_toy else (lambda: section_toy(args.lengths)), 6: section_block_gth,
                7: section_large_hitting, 8: section_accuracy}
    for number in args.sections:
        if sections.get(number):
            sections[number]()


if __name__ == "__main__":
    main()
