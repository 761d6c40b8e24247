"""Command line of the adversarial suite: ``python -m tools.adversarial [--only SUBSTRING] [--jobs N]
[--timeout S] [--json FILE] [--list]``; prints a table of outcomes per category and every
non-clean case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import answers, commands, inputs, models, outputs, training
from .case import CASES, Case
from .harness import OUTCOMES, ecology_command, make_fixtures, run_case, short


def build_cases() -> list[Case]:
    """Every case of every family, in the order of the report."""
    CASES.clear()
    for family in (inputs.file_cases, inputs.value_cases, inputs.name_cases, inputs.size_cases, outputs.sweep_cases,
                   outputs.output_cases, answers.numeric_cases, answers.valid_cases,
                   # issue 22: models, training, decompose, export, the app, a full disk, edges, the API
                   models.ngram_file_cases, models.transformer_file_cases, models.table_cases, models.onnx_cases,
                   models.gguf_cases, models.inline_cases, training.train_cases, training.train_output_cases,
                   commands.decompose_cases, commands.export_cases, commands.app_cases, commands.diskfull_cases,
                   commands.edge_cases, commands.budget_cases, commands.api_cases):
        family()
    return list(CASES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.adversarial",
                                     description="Adversarial suite for the ecology command line.")
    parser.add_argument("--only", help="run the cases whose category or name contains this substring "
                        "(or any of several, comma-separated)")
    parser.add_argument("--category", help="run only these categories (exact names, comma-separated)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="wall-clock limit per case, seconds")
    parser.add_argument("--json", metavar="FILE", help="write the per-case results here")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    args = parser.parse_args(argv)

    cases = build_cases()
    if args.only:
        wanted = args.only.split(",")
        cases = [c for c in cases if any(w in c.name or w in c.category for w in wanted)]
    if args.category:
        cases = [c for c in cases if c.category in args.category.split(",")]
    if os.geteuid() != 0 and not args.list:
        skipped = [c for c in cases if c.needs_root]
        cases = [c for c in cases if not c.needs_root]
        if skipped:
            print(f"note: {len(skipped)} root-only cases skipped (they mount a small tmpfs to fill the disk; "
                  f"run as root to include them): {', '.join(c.name for c in skipped[:5])}...", file=sys.stderr)
    if args.list:
        for c in cases:
            print(f"{c.category:10} {c.name}")
        print(f"{len(cases)} cases")
        return 0
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONHASHSEED", None)
    shared = Path(tempfile.mkdtemp(prefix="eco-adv-shared-"))
    env["MPLCONFIGDIR"] = str(shared / "mpl")
    fixtures = shared / "fixtures"
    fixtures.mkdir()
    started = time.monotonic()
    try:
        make_fixtures(fixtures, env, args.timeout)
        models.make_model_fixtures(fixtures, env, ecology_command())
        results = [None] * len(cases)
        done = 0
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_case, c, fixtures, args.timeout, env): i for i, c in enumerate(cases)}
            for fut in futures:
                results[futures[fut]] = fut.result()
                done += 1
                r = results[futures[fut]]
                print(f"[{done}/{len(cases)}] {r['outcome']:9} {r['category']}: {r['name']}", file=sys.stderr,
                      flush=True)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    report(results, time.monotonic() - started)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def report(results: list[dict], seconds: float) -> None:
    categories = sorted({r["category"] for r in results}, key=lambda c: [r["category"] for r in results].index(c))
    print(f"{'category':12} " + " ".join(f"{o:>9}" for o in ("tried",) + OUTCOMES))
    for cat in categories + ["TOTAL"]:
        rows = [r for r in results if cat in ("TOTAL", r["category"])]
        print(f"{cat:12} {len(rows):>9} " + " ".join(f"{sum(r['outcome'] == o for r in rows):>9}" for o in OUTCOMES))
    total = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    counts = " / ".join(str(total[o]) for o in OUTCOMES)
    print(f"\ntried / clean / wrong / traceback / oom / hang = {len(results)} / {counts}   ({seconds:.0f} s)")
    bad = [r for r in results if r["outcome"] != "clean"]
    if bad:
        print("\nnon-clean cases:")
        for r in bad:
            print(f"  [{r['outcome']}] {r['category']}: {r['name']}: {r['command']}\n"
                  f"      -> {short(r['detail'], 200)}")


if __name__ == "__main__":
    sys.exit(main())
