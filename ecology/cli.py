"""The ``ecology`` command line: ``run``, ``validate``, ``schema``.

Every user error (bad scenario, bad flag, existing output directory) is one line on stderr and
exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import scenario as scn


class UsageError(scn.UserError):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit status 2
        raise UsageError(f"{self.prog}: {message}")


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        path, sep, value = pair.partition("=")
        if not sep or not path.strip():
            raise UsageError(f"--set {pair!r}: expected dotted.path=value, e.g. --set context.length=16")
        out[path.strip()] = scn.parse_value(value.strip())
    return out


def run_overrides(args) -> dict:
    out = parse_sets(args.set)
    for flag, path in (("steps", "run.steps"), ("replicates", "run.replicates"), ("seed", "run.seed")):
        if getattr(args, flag, None) is not None:
            out[path] = getattr(args, flag)
    return out


def cmd_validate(args) -> int:
    from .dynamics import compile_scenario

    s = scn.load(args.file, parse_sets(args.set))
    try:
        compiled = compile_scenario(s)
    except scn.ScenarioError as err:
        raise err.located(args.file) from None
    print(f"{args.file}: ok: {s.name}: {len(compiled.tokens)} tokens, k = {s.context.length} ({s.context.deletion}), "
          f"{len(compiled.premises)} premises in {len(compiled.mixture.labels)} populations, "
          f"{len(compiled.criteria)} absorption criteria")
    return 0


def cmd_schema(args) -> int:
    print(json.dumps(scn.schema(), indent=2))
    return 0


def cmd_run(args) -> int:
    from .results import fresh_directory, simulate, summarize, write_run

    s = scn.load(args.file, run_overrides(args))
    target = fresh_directory(args.out, s.name)
    try:
        result = simulate(s, progress=sys.stderr.isatty() and not args.json)
    except scn.ScenarioError as err:
        raise err.located(args.file) from None
    summary = summarize(result)
    summary["output"] = str(target)
    write_run(result, target, summary)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{s.name}: {s.run.replicates} replicates x {s.run.steps} steps in {result.seconds:.2f} s -> {target}")
    for name, a in summary["absorption"].items():
        times = "" if a["time_mean"] is None else f", time mean {a['time_mean']:.1f}, median {a['time_median']:.1f}"
        print(f"  absorbed '{name}': {a['fraction']:.4f}{times}")
    for label, p in summary["populations"].items():
        print(f"  amplitude '{label}' at the end: mean {p['amplitude_final_mean']:.4f} "
              f"(10%-90%: {p['amplitude_final_q10']:.4f}-{p['amplitude_final_q90']:.4f})")
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="ecology", description="Premises and simulacra competing for amplitude on a finite context window.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("run", help="simulate many replicates of a scenario")
    p.add_argument("file")
    p.add_argument("--steps", type=int)
    p.add_argument("--replicates", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override any scalar of the scenario")
    p.add_argument("--out", help="output directory (must not exist); default runs/NAME-TIMESTAMP")
    p.add_argument("--json", action="store_true", help="print only the summary JSON")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a scenario file")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except scn.UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
