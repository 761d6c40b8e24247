"""Time and size of each export format, and how closely Storm agrees with the report on them.

For `scenarios/waluigi_soft.toml` at each `--lengths k` (2^(k+1) - 1 page-states): the time to
write PRISM's files, Storm's explicit files and the DRN file (the best of `--repeat` runs, in one
process, so the ratios between formats are within one run) and their sizes. With stormpy
installed, for each of Storm's two formats: the time stormpy takes to read it, and the relative
difference between Storm's `R=? [F "revealed"]` and `LRA=? ["revealed"]` (elimination solver) and
the report's expected hitting time and long-run fraction, and the largest absolute difference
between Storm's steady-state distribution and the report's stationary law. Storm's elimination
solver is direct but its fill grows fast: at k = 12 (8,191 states) one R=? took 13 s and 26 s
(load 2.9 to 5.7), at k = 13 (16,383) it did not finish in 60 s; the writers alone go much further.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_export.py [--lengths 6 10 12] [--repeat 3]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import best_time

from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain, criterion_chain
from ecology.exact.prism import write_prism
from ecology.exact.report import analyze
from ecology.exact.storm import write_drn, write_storm_explicit
from ecology.scenario import load

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi_soft.toml"


def storm_agreement(directory: Path, report, pi: np.ndarray) -> None:
    """stormpy's read time and its differences from the report, per Storm format."""
    import stormpy
    import stormpy.analysis
    import stormpy.environments as environments

    env = environments.Environment()
    env.solver().set_linear_equation_solver_type(environments.EquationSolverType.ELIMINATION)
    readers = {"storm": lambda: stormpy.build_model_from_explicit(str(directory / "storm.tra"), str(directory / "storm.lab"),
                                                                   state_rewards=str(directory / "storm.rew")),
               "drn": lambda: stormpy.build_model_from_drn(str(directory / "chain.drn"))}
    time_ = report.criteria["revealed"]["expected_hitting_time"]
    fraction = report.occupation["revealed"]["long_run_fraction"]
    for form, read in readers.items():
        began = time.perf_counter()
        model = read()
        took = time.perf_counter() - began

        def value(prop, model=model):
            return stormpy.model_checking(model, stormpy.parse_properties(prop)[0], environment=env).get_value(0)

        began = time.perf_counter()
        hitting = value('R=? [F "revealed"]')
        solved = time.perf_counter() - began
        long_run = value('LRA=? ["revealed"]')
        steady = np.array(stormpy.analysis.compute_steady_state_distribution(model, environment=env).get_value_vector())
        print(f"    {form}: stormpy reads it in {took:.3f} s and solves R=? in {solved:.3f} s; R=? [F revealed] rel. diff "
              f"{abs(hitting / time_ - 1):.1e}, LRA rel. diff {abs(long_run / fraction - 1):.1e}, steady state max abs diff "
              f"{np.max(np.abs(steady - pi)):.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[6, 10, 12])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    try:
        import stormpy  # noqa: F401
        with_storm = True
    except ImportError:
        with_storm = False
        print("stormpy is not installed: times and sizes only", file=sys.stderr)
    for k in args.lengths:
        compiled = compile_scenario(load(SCENARIO, {"context.length": k}))
        pc = build_chain(compiled)
        labels = {}
        for c in compiled.tracked:
            decided_on, mask = criterion_chain(compiled, pc, c, 10**7)
            if decided_on is pc:
                labels[c.name] = mask
        print(f"k = {k}: {pc.chain.n_states} page-states, {pc.chain.P.nnz} transitions")
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            writers = {"prism": (lambda: write_prism(d / "chain", pc, labels), ["chain.tra", "chain.lab", "chain.sta"]),
                       "storm": (lambda: write_storm_explicit(d / "storm", pc, labels), ["storm.tra", "storm.lab", "storm.rew"]),
                       "drn": (lambda: write_drn(d / "chain.drn", pc, labels), ["chain.drn"])}
            for form, (write, files) in writers.items():
                seconds = best_time(write, args.repeat)
                size = sum((d / f).stat().st_size for f in files)
                print(f"  {form:5s} {seconds:.3f} s, {size / 1e6:.2f} MB ({', '.join(files)})", flush=True)
            if with_storm:
                report = analyze(compiled, chain=pc)
                law = pc.chain.stationary_distributions
                pi = sum(a * p for a, p in zip(pc.chain.absorption_probabilities(pc.initial), law))
                storm_agreement(d, report, pi)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
