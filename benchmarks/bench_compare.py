"""Before/after: the same workloads timed on this checkout and on an older one, alternately.

For a refactor that must not slow anything down: the numpy engine's step loop on the toy
(waluigi.toml, 10,000 replicates x 300 steps; construction not timed) at each k of ``--lengths``,
and the full exact report of the softened toy (waluigi_soft.toml, horizon 200) at each k of
``--exact-lengths``. Every measurement runs in a fresh process whose ``PYTHONPATH`` points at the
checkout being measured; the two checkouts alternate ``--repeats`` times and the best of each is
printed with the ratio (on a shared machine the best of several is the figure least disturbed by
load; the load average is printed).

Make the older checkout with ``git worktree add --detach /tmp/before COMMIT``, then:

    python benchmarks/bench_compare.py --before /tmp/before [--repeats 5]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

WORKLOAD = r"""
import sys, time
from pathlib import Path
import ecology
from ecology.scenario import load
root = Path(list(ecology.__path__)[0]).resolve().parent
what, k = sys.argv[1], int(sys.argv[2])
if what == "run":
    from ecology.model import EcologyModel
    over = {"context.length": k, "run.replicates": 10000, "run.steps": 300}
    try:  # checkouts with a compiled engine: time the numpy reference
        load(root / "scenarios/waluigi.toml", {**over, "run.engine": "numpy"})
        over["run.engine"] = "numpy"
    except Exception:
        pass
    model = EcologyModel(load(root / "scenarios/waluigi.toml", over))
    began = time.perf_counter()
    while model.running:
        model.step()
    print(10000 * 300 / (time.perf_counter() - began))
else:
    from ecology.dynamics import compile_scenario
    from ecology.exact import analyze
    compiled = compile_scenario(load(root / "scenarios/waluigi_soft.toml", {"context.length": k}))
    began = time.perf_counter()
    analyze(compiled, horizon=200)
    print(time.perf_counter() - began)
"""


def measure(tree: Path, what: str, k: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", WORKLOAD, what, str(k)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--exact-lengths", type=int, nargs="+", default=[12, 16])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; before = {args.before}, after = {HERE}")
    rows = [("run", k, "replicate-steps/s", max) for k in args.lengths]
    rows += [("exact", k, "report seconds", min) for k in args.exact_lengths]
    for what, k, unit, best in rows:
        before, after = [], []
        for _ in range(args.repeats):
            before.append(measure(args.before.resolve(), what, k))
            after.append(measure(HERE, what, k))
        b, a = best(before), best(after)
        print(f"{what:5s} k = {k:3d}  {unit:18s}  before {b:12.4g}  after {a:12.4g}  after/before {a / b:.3f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
