"""Before/after: the same workloads timed on this checkout and on an older one, alternately.

For a refactor that must not slow anything down: the numpy engine's step loop and the compiled
engine's ``run_model()`` on the toy (waluigi.toml, 10,000 replicates x 300 steps; construction not
timed) at each k of ``--lengths``, and the full exact report of the softened toy
(waluigi_soft.toml, horizon 200) at each k of ``--exact-lengths``. Every measurement runs in a
fresh process that imports ``ecology`` from the checkout being measured (ahead of an editable
install's finder, which would otherwise win over ``PYTHONPATH``); the two checkouts alternate
``--repeats`` times and the best of each is printed with the ratio (on a shared machine the best
of several is the figure least disturbed by load; the load average is printed).

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
import os, sys, time
from pathlib import Path
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, os.environ["CHECKOUT"])
import ecology
from ecology.scenario import load
root = Path(list(ecology.__path__)[0]).resolve().parent
assert root == Path(os.environ["CHECKOUT"]).resolve(), root
what, k = sys.argv[1], int(sys.argv[2])
if what in ("numpy", "compiled"):
    from ecology.model import EcologyModel
    over = {"context.length": k, "run.replicates": 10000, "run.steps": 300, "run.engine": what}
    model = EcologyModel(load(root / "scenarios/waluigi.toml", over))
    assert getattr(model.engine, "name", model.engine) == what
    began = time.perf_counter()
    if what == "numpy":  # the step loop
        while model.running:
            model.step()
    else:  # blocks of steps, as ecology run runs them
        model.run_model()
    print(10000 * 300 / (time.perf_counter() - began))
else:
    try:
        from ecology.core.compile import compile_scenario
        from ecology.exact.report import analyze
    except ImportError:  # a checkout from before the layers
        from ecology.dynamics import compile_scenario
        from ecology.exact import analyze
    compiled = compile_scenario(load(root / "scenarios/waluigi_soft.toml", {"context.length": k}))
    began = time.perf_counter()
    analyze(compiled, horizon=200)
    print(time.perf_counter() - began)
"""


def measure(tree: Path, what: str, k: int) -> float:
    env = {**os.environ, "CHECKOUT": str(tree), "OPENBLAS_NUM_THREADS": "1"}
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
    rows = [(engine, k, "replicate-steps/s", max) for engine in ("numpy", "compiled") for k in args.lengths]
    rows += [("exact", k, "report seconds", min) for k in args.exact_lengths]
    for what, k, unit, best in rows:
        before, after = [], []
        for _ in range(args.repeats):
            before.append(measure(args.before.resolve(), what, k))
            after.append(measure(HERE, what, k))
        b, a = best(before), best(after)
        print(f"{what:8s} k = {k:3d}  {unit:18s}  before {b:12.4g}  after {a:12.4g}  after/before {a / b:.3f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
