"""Build analysis/REPORT.md: run every study (s01 ... s14) through the Python API and write
their findings, figures and tables. Every number in the report comes from this run.

Usage: python analysis/report.py [--quick] [--out DIR]

The full report goes to analysis/ (REPORT.md and figures/, committed); ``--quick`` (small
samples, for CI) goes to analysis/quick/ by default and refuses to write into analysis/ itself,
so it never overwrites the committed full report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import markdown_table  # noqa: E402 (analysis/ is put on the path above)

STUDIES = ["s01_deletion", "s02_zoo", "s03_toy", "s04_sticky", "s05_floors", "s06_martingale",
           "s07_decomposition", "s08_temperature", "s09_policies", "s10_coinflip", "s11_decompose",
           "s12_models", "s13_smollm2", "s14_ledger"]


def build(out: Path, quick: bool) -> Path:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    parts = []
    for name in STUDIES:
        t0 = time.perf_counter()
        study = importlib.import_module(name).run(figures, quick)
        seconds = time.perf_counter() - t0
        section = [f"## {study.number}. {study.title}", "", f"**Finding.** {study.finding}", "",
                   f"*Script: `analysis/{name}.py` ({seconds:.1f} s).*", ""]
        for file, caption in study.figures:
            section += [f"![{caption}](figures/{file})", "", f"*Figure {study.number}: {caption}*", ""]
        if study.table:
            section += [markdown_table(study.table)]
        if study.notes:
            section += [study.notes]
        parts.append("\n".join(section))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    mode = "quick (small samples, for CI)" if quick else "full"
    head = ["# Reproducing the seed's claims with simulacra-ecology", "",
            f"Built by `python analysis/report.py{' --quick' if quick else ''}` in {time.perf_counter() - began:.0f} s "
            f"({mode} mode). Each section states a finding in one sentence next to the numbers that support it; "
            "every number and figure below was produced by that run from the scenario files in `scenarios/` "
            "(or, where a study builds its scenario, by its script).", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(head) + "\n" + "\n\n".join(parts) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small samples: a few minutes at most")
    parser.add_argument("--out", help="directory for REPORT.md and figures/ (default: analysis/, "
                                      "or analysis/quick/ with --quick)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else HERE / "quick" if args.quick else HERE
    if args.quick and out.resolve() == HERE:
        parser.error("--quick never writes into analysis/ (the committed full report); give another --out")
    print(build(out, args.quick))


if __name__ == "__main__":
    main()
