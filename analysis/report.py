"""Build analysis/REPORT.md: run every study (s01 ... s16) through the Python API and write
their findings, figures and tables. Every number in the report comes from this run.

Usage: python analysis/report.py [--quick] [--out DIR] [--only sNN_name[,sNN_name]]

The full report goes to analysis/ (REPORT.md and figures/, committed); ``--quick`` (small
samples, for CI) goes to analysis/quick/ by default and refuses to write into analysis/ itself,
so it never overwrites the committed full report. ``--only`` reruns the named studies and
replaces their sections of the existing REPORT.md (inserting a new study's section in study
order), keeping every other section as it was built; each section's script line states its own
time, and the head says which sections were rebuilt last.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import markdown_table  # noqa: E402 (analysis/ is put on the path above)

STUDIES = ["s01_deletion", "s02_zoo", "s03_toy", "s04_sticky", "s05_floors", "s06_martingale",
           "s07_decomposition", "s08_temperature", "s09_policies", "s10_coinflip", "s11_decompose",
           "s12_models", "s13_smollm2", "s14_ledger", "s15_start", "s16_peakedness",
           "s17_luigi_phase", "s18_flux"]


def build(out: Path, quick: bool, only: list[str] | None = None) -> Path:
    """Run the studies (all, or ``only`` those) and write ``out/REPORT.md``."""
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    parts = {}
    for name in only or STUDIES:
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
        parts[study.number] = "\n".join(section)
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    mode = "quick (small samples, for CI)" if quick else "full"
    path = out / "REPORT.md"
    command = f"python analysis/report.py{' --quick' if quick else ''}"
    if only:
        kept = sections_of(path)
        parts = {**kept, **parts}
        built = (f"Built by `{command}` ({mode} mode), sections rebuilt since by `{command} --only NAMES`; "
                 "each section's script line gives the time of its last build. ")
    else:
        built = f"Built by `{command}` in {time.perf_counter() - began:.0f} s ({mode} mode). "
    head = ["# Reproducing the seed's claims with simulacra-ecology", "",
            built + "Each section states a finding in one sentence next to the numbers that support it; "
            "every number and figure below was produced by that run from the scenario files in `scenarios/` "
            "(or, where a study builds its scenario, by its script).", ""]
    write = path.with_name(path.name + ".tmp")
    write.write_text("\n".join(head) + "\n" + "\n\n".join(parts[n] for n in sorted(parts)) + "\n")
    write.replace(path)
    return path


def sections_of(path: Path) -> dict[int, str]:
    """The sections of an existing report by study number (``## N. Title`` up to the next one)."""
    if not path.is_file():
        raise SystemExit(f"error: --only needs an existing {path} to update; build the whole report first")
    text = path.read_text()
    starts = list(re.finditer(r"^## (\d+)\. ", text, flags=re.M))
    ends = [m.start() - 2 for m in starts[1:]] + [len(text) - 1]  # less the "\n\n" between parts, the final "\n"
    return {int(m.group(1)): text[m.start():end] for m, end in zip(starts, ends)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small samples: a few minutes at most")
    parser.add_argument("--out", help="directory for REPORT.md and figures/ (default: analysis/, "
                                      "or analysis/quick/ with --quick)")
    parser.add_argument("--only", metavar="sNN_name[,sNN_name]",
                        help="rerun only these studies and replace their sections of the existing REPORT.md")
    args = parser.parse_args()
    out = Path(args.out) if args.out else HERE / "quick" if args.quick else HERE
    if args.quick and out.resolve() == HERE:
        parser.error("--quick never writes into analysis/ (the committed full report); give another --out")
    only = None
    if args.only is not None:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in only if name not in STUDIES]
        if unknown or not only:
            parser.error(f"--only: unknown study {', '.join(unknown) or repr(args.only)}; the studies are "
                         f"{', '.join(STUDIES)}")
    print(build(out, args.quick, only))


if __name__ == "__main__":
    main()
