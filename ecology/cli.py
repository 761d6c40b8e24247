"""The ``ecology`` command line: ``run``, ``analyze``, ``sweep``, ``plot``, ``validate``, ``schema``.

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


def cmd_train(args) -> int:
    """Train the model of a training spec (see ``docs/models.md``) and save it."""
    from .train import full_context_laws, train_from_spec

    overrides = {key: value for key, value in (("seed", args.seed), ("steps", args.steps)) if value is not None}
    log = None if args.json else (lambda line: print(line, file=sys.stderr))
    summary = train_from_spec(Path(args.spec), args.out and Path(args.out), args.table and Path(args.table), overrides, log)
    model, context = summary.pop("model"), summary.pop("context")
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"wrote {summary['out']} ({summary['kind']}, {summary['tokens']} training tokens, {summary['seconds']} s)")
    if "table" in summary:
        print(f"wrote {summary['table']} ({summary['table_rows']} contexts of at most {context} tokens)")
    if model.n_tokens**context <= 81:
        print(f"next-token law after each context of {context} tokens:")
        for text, probs in full_context_laws(model, context):
            print(f"  {text:>{2 * context}} -> " + "  ".join(f"{t}: {p:.4f}" for t, p in zip(model.tokens, probs)))
    return 0


def cmd_schema(args) -> int:
    print(json.dumps(scn.schema(), indent=2))
    return 0


def exact_overlay(s: scn.Scenario, max_states: int) -> dict | None:
    """Exact absorption curves for ``run --exact``, or None (with a note) when out of reach."""
    from .dynamics import compile_scenario
    from .exact import build_chain, criterion_curves

    try:
        compiled = compile_scenario(s)
        chain = build_chain(compiled, max_states)
        curves = criterion_curves(compiled, chain, s.run.steps, max_states)
    except scn.UserError as err:
        print(f"note: no exact overlay: {err}", file=sys.stderr)
        return None
    return {name: c["absorbed"] for name, c in curves.items()}


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
    exact = exact_overlay(s, args.max_states) if args.exact else None
    if exact is not None:
        summary["exact"] = {name: {"curve": curve, "fraction": curve[-1]} for name, curve in exact.items()}
    write_run(result, target, summary, exact)
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


def cmd_analyze(args) -> int:
    from .dynamics import compile_scenario
    from .exact import analyze, build_chain
    from .results import fresh_directory

    s = scn.load(args.file, parse_sets(args.set))
    out = fresh_directory(args.out, s.name) if args.out else None
    export = fresh_directory(args.export, s.name) if args.export else None
    try:
        compiled = compile_scenario(s)
        chain = build_chain(compiled, args.max_states)
        report = analyze(compiled, args.max_states, args.tolerance, args.horizon, args.power, chain=chain)
    except scn.ScenarioError as err:
        raise err.located(args.file) from None
    if export:
        write_export(export, chain, args.power)
        report["export"] = str(export)
    if out:
        write_analysis(out, report, chain)
        report["output"] = str(out)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report, chain)
    return 0


POWER_EXPORT_LIMIT = 5000  # T^n is exported whole only for chains up to this many states


def write_export(target: Path, chain, power: int | None) -> None:
    import scipy.sparse as sp

    from .results import write_atomically

    def fill(d: Path) -> None:
        sp.save_npz(d / "transition.npz", chain.chain.P)
        (d / "states.txt").write_text("\n".join(chain.labels()) + "\n")
        if power is not None and chain.chain.n_states <= POWER_EXPORT_LIMIT:
            sp.save_npz(d / f"power_{power}.npz", chain.chain.power(power))

    write_atomically(target, fill)


NETWORK_LIMIT = 64  # the transition network is drawn for chains up to this many states


def write_analysis(target: Path, report: dict, chain) -> None:
    from . import plots
    from .results import write_atomically

    def fill(d: Path) -> None:
        (d / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        name = report["scenario"]
        plots.eigenvalue_plane(report["eigenvalues_complex"], name, d / "eigenvalues.png")
        plots.stationary_mass(report["closed_classes"], name, d / "stationary.png")
        if "curves" in report:
            plots.exact_curves(report["curves"], name, d / "curves.png")
        if chain.chain.n_states <= NETWORK_LIMIT:
            plots.transition_network(chain.chain.P, chain.labels(), name, d / "network.png")

    write_atomically(target, fill)


MATRIX_PRINT_LIMIT = 16


def print_matrix(title: str, M, labels: list[str]) -> None:
    width = max(len(x) for x in labels)
    print(f"{title} (row = from, column = to; columns in row order)")
    for label, row in zip(labels, M.toarray()):
        print(f"  {label:>{width}}  " + " ".join(f"{x:7.4f}" if x else "      ." for x in row))


def print_report(r: dict, chain) -> None:
    print(f"{r['scenario']}: {r['n_states']:,} page-states, {r['n_transitions']:,} transitions, "
          f"initial window '{r['initial_state']}'")
    print(f"closed classes ({len(r['closed_classes'])}):")
    for i, c in enumerate(r["closed_classes"]):
        what = f"absorbing state '{c['absorbing_state']}'" if c["absorbing_state"] else f"{c['size']:,} states"
        print(f"  [{i}] {what}, period {c['period']}, probability of ending here {c['probability']:.6g}")
        if c["states"] and not c["absorbing_state"]:
            print("      " + " | ".join(c["states"]))
        top = ", ".join(f"'{s['state']}' {s['mass']:.4g}" for s in c["stationary_top"][:5])
        print(f"      stationary (top): {top}")
    print(f"expected steps until a closed class is entered: {r['expected_absorption_time']:.6g}")
    print("largest eigenvalue moduli: " + ", ".join(f"{x:.6g}" for x in r["eigenvalues"]))
    if "metastable" in r:
        m = r["metastable"]
        print(f"metastable classes (transitions below {m['tolerance']:g} ignored): {len(m['classes'])}")
        for c in m["classes"]:
            exit_time = "never (closed)" if c["exit_time"] is None else f"{c['exit_time']:.6g}"
            print(f"  {c['size']:,} states, most likely '{c['likely_state']}', max escape per step "
                  f"{c['max_escape']:.3g}, expected exit time from there {exit_time}")
    if "curves" in r:
        h = r["horizon"]
        for name, c in r["curves"].items():
            print(f"criterion '{name}' at t = {h}: holds {c['holding'][-1]:.6g}, held at or before {c['absorbed'][-1]:.6g}")
    if chain.chain.n_states <= MATRIX_PRINT_LIMIT:
        labels = chain.labels()
        print_matrix("T", chain.chain.P, labels)
        if "power" in r:
            print_matrix(f"T^{r['power']['n']}", chain.chain.power(r["power"]["n"]), labels)
    elif "power" in r:
        top = ", ".join(f"'{s['state']}' {s['probability']:.4g}" for s in r["power"]["from_initial"][:8])
        print(f"T^{r['power']['n']} from the initial window (top): {top}")


def cmd_sweep(args) -> int:
    import os

    from . import sweep
    from .results import fresh_directory

    workers = args.workers or os.cpu_count() or 1
    if args.resume:
        if args.grid or args.file or args.set:
            raise UsageError("--resume DIR takes the plan from DIR: give no FILE, --grid or --set")
        target = Path(args.resume)
        plan = sweep.load_plan(target)
    else:
        if not args.file:
            raise UsageError("sweep: give a scenario FILE (or --resume DIR)")
        grids = dict(sweep.parse_grid(g) for g in args.grid or [])
        overrides = parse_sets(args.set)
        overrides.update({path: value for path, value in (("run.replicates", args.replicates), ("run.steps", args.steps))
                          if value is not None})
        try:
            plan = sweep.make_plan(scn.read_toml(args.file), grids, overrides, args.exact, args.max_states)
        except scn.ScenarioError as err:
            raise err.located(args.file) from None
        target = fresh_directory(args.out, f"sweep-{plan.name}")
        sweep.start_directory(target, plan)
    outcome = sweep.execute(target, plan, workers, args.scheduler, sys.stderr.isatty() and not args.json)
    draw_sweep(target, plan)
    if args.json:
        print(json.dumps(outcome))
    else:
        print(f"sweep of {plan.name}: {outcome['done']}/{outcome['points']} points done "
              f"({outcome['ran']} run now) -> {target}/results.csv")
        for f in outcome["failed"]:
            print(f"  failed point {f['index']} {f['params']}: {f['error']}")
        if outcome["interrupted"]:
            print(f"  interrupted ({outcome['interrupted']}): resume with  ecology sweep --resume {target}")
    if outcome["interrupted"]:
        return 130
    return 1 if outcome["failed"] else 0


def draw_sweep(directory: Path, plan) -> list[Path]:
    import pandas as pd

    from . import plots, sweep

    try:  # results.csv is current: execute() wrote it, cmd_plot rewrites it from the points
        rows = pd.read_csv(directory / "results.csv")
    except pd.errors.EmptyDataError:  # no finished point
        rows = pd.DataFrame()
    return plots.sweep_plots(directory, rows, plan.grid, list(plan.base.get("absorption", {})),
                             sweep.labels_of(plan.base), plan.name)


def cmd_plot(args) -> int:
    import pandas as pd

    from . import plots, sweep

    directory = Path(args.directory)
    if (directory / "sweep.json").is_file():
        plan = sweep.load_plan(directory)
        sweep.write_table(directory)
        written = draw_sweep(directory, plan)
        print(f"{directory}: redrew {len(written)} sweep plots")
        return 0
    if not (directory / "summary.json").is_file():
        raise UsageError(f"{directory}: neither a run directory (summary.json) nor a sweep directory (sweep.json)")
    summary = json.loads((directory / "summary.json").read_text())
    table = scn.read_toml(directory / "scenario.toml")
    steps = pd.read_csv(directory / "steps.csv", index_col="step")
    raster = pd.read_csv(directory / "raster.csv", index_col="step").to_numpy()
    exact = {k: v["curve"] for k, v in summary.get("exact", {}).items()} or None
    plots.run_plots(directory, summary, steps, raster, table["vocabulary"]["tokens"],
                    table["vocabulary"].get("pad", "N"), summary.get("raster_replicate", 0), exact)
    print(f"{directory}: redrew the run plots")
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


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
    p.add_argument("--exact", action="store_true", help="overlay the exact chain's absorption curves")
    p.add_argument("--max-states", type=positive_int, default=200_000, help="state budget of --exact")
    p.set_defaults(func=cmd_run)

    from .exact import DEFAULT_MAX_STATES

    p = sub.add_parser("analyze", help="build the exact page-state Markov chain and analyse it")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.add_argument("--max-states", type=positive_int, default=DEFAULT_MAX_STATES)
    p.add_argument("--tolerance", type=probability, help="metastable classes: ignore transitions below this")
    p.add_argument("--horizon", type=natural, help="exact criterion curves for t = 0 .. H")
    p.add_argument("--power", type=natural, help="report (and export) T^n")
    p.add_argument("--export", help="write transition.npz and states.txt to this new directory")
    p.add_argument("--out", help="write report.json and plots to this new directory")
    p.add_argument("--json", action="store_true", help="print only the report JSON")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("sweep", help="run a grid of scenario variants on all cores or a Dask cluster")
    p.add_argument("file", nargs="?")
    p.add_argument("--grid", action="append", metavar="PATH=VALUES",
                   help="v1,v2,... or START:STOP:STEP or START:STOP:*FACTOR; several --grid form a product")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="a fixed override for every point")
    p.add_argument("--replicates", type=positive_int)
    p.add_argument("--steps", type=natural)
    p.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask scheduler, or 'local' to start one")
    p.add_argument("--exact", action="store_true", help="add the exact chain's figures where it is small enough")
    p.add_argument("--max-states", type=positive_int, default=200_000, help="state budget of --exact")
    p.add_argument("--out", help="output directory (must not exist); default runs/sweep-NAME-TIMESTAMP")
    p.add_argument("--resume", metavar="DIR", help="run only the missing points of an earlier sweep")
    p.add_argument("--json", action="store_true", help="print only a JSON summary")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="redraw the plots of a run or sweep directory")
    p.add_argument("directory")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("validate", help="check a scenario file")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="train a transformer or n-gram model from a training spec (TOML)")
    p.add_argument("spec", help="training spec, e.g. scenarios/models/babygpt.train.toml")
    p.add_argument("--out", help="model file to write (.npz); default: the spec's 'out'")
    p.add_argument("--table", help="also write every context's law as a CSV table; default: the spec's 'table'")
    p.add_argument("--seed", type=int, help="override training.seed")
    p.add_argument("--steps", type=positive_int, help="override training.steps")
    p.add_argument("--json", action="store_true", help="print only a JSON summary")
    p.set_defaults(func=cmd_train)

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
