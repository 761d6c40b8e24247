"""The ``ecology`` command line: ``run``, ``analyze``, ``sweep``, ``plot``, ``validate``, ``schema``.

Every user error (bad scenario, bad flag, existing output directory) is one line on stderr and
exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path

from ecology import scenario as scn
from ecology.errors import OutputError, ScenarioError, UsageError, UserError
from ecology.threads import blas_threads

ENGINES = scn.ENGINES
SIGPIPE_STATUS = 128 + 13  # the status of a process ended by SIGPIPE, as `cmd | head` expects


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
    for flag, path in (("steps", "run.steps"), ("replicates", "run.replicates"), ("seed", "run.seed"),
                       ("max_memory", "run.max_memory_gib"), ("engine", "run.engine")):
        if getattr(args, flag, None) is not None:
            out[path] = getattr(args, flag)
    return out


def print_priors(priors: dict[str, dict[str, float]]) -> None:
    """Each premise's and population's prior as written and as it acts (normalised to sum 1;
    :func:`ecology.core.mixture.acting_priors`)."""
    try:
        written = math.fsum(p["raw"] for p in priors.values())
    except OverflowError:  # written priors near the largest double: their ratios still act (normalised_log_prior)
        written = math.inf
    total = f", the written ones sum to {written:.6g}" if math.isfinite(written) else ", the written ones sum beyond a double"
    print(f"  priors as written -> as they act (normalised to sum 1 over all premises and populations{total}):")
    for entry, p in priors.items():
        table, name = entry.split(".", 1)
        print(f"    {scn.NAMED_TABLES[table]} '{name}': {p['raw']:.6g} -> {p['acting']:.6g}")


def cmd_validate(args) -> int:
    from ecology.core.budget import GIB, check_run, stage_bytes
    from ecology.core.compile import compile_scenario
    from ecology.core.mixture import acting_priors

    s = scn.load(args.file, run_overrides(args))
    try:
        memory = check_run(s)
        compiled = compile_scenario(s)
    except ScenarioError as err:
        raise err.located(args.file) from None
    sets = f", {counted(len(compiled.sets), 'named set')}" if compiled.sets else ""
    print(f"{args.file}: ok: {s.name}: {len(compiled.tokens)} tokens, k = {s.context.length} ({s.context.deletion}), "
          f"{counted(len(compiled.premises), 'premise')} in {counted(len(compiled.mixture.labels), 'population')}, "
          f"{counted(len(compiled.criteria), 'absorption criterion', 'absorption criteria')}{sets}; "
          f"a run needs about {memory / GIB:.2g} GiB "
          f"({', '.join(f'{size / GIB:.2g} {stage}' for stage, size in stage_bytes(s).items())})")
    print_priors(acting_priors(s))
    return 0


def cmd_train(args) -> int:
    """Train the model of a training spec (see ``docs/models.md``) and save it."""
    from ecology.lm.train import full_context_laws, train_from_spec
    from ecology.progress import terminal_progress

    overrides = {key: value for key, value in (("seed", args.seed), ("steps", args.steps)) if value is not None}
    log = None if args.json or args.quiet else (lambda line: print(line, file=sys.stderr))
    with terminal_progress(args.quiet or args.json) as progress:
        summary = train_from_spec(Path(args.spec), args.out, args.table, overrides, log,
                                  args.replace, args.max_memory, args.max_work, progress)
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


def _interval(lo, hi, digits: int = 4) -> str:
    return f"95% {lo:.{digits}f}-{hi:.{digits}f}"


def print_criterion(name: str, c: dict, exact: dict | None, steps: int, replicates: int) -> None:
    """Reached and holding, separately, with intervals (and the exact chain beside them)."""
    print(f"  criterion '{name}':")
    print(f"    reached by step {steps}: {c['reached']:.4f} ({_interval(c['reached_lo'], c['reached_hi'])}), "
          f"not reached (censored) {c['censored']} of {replicates}")
    print(f"    holding at step {steps}: {c['holding_final']:.4f} ({_interval(c['holding_final_lo'], c['holding_final_hi'])})")
    print(f"    restricted mean time to reach, E[min(T, {steps})]: {c['restricted_mean']:.2f} "
          f"({_interval(c['restricted_mean_lo'], c['restricted_mean_hi'], 2)})")
    if c["time_median"] is None:
        print(f"    median time to reach: not estimable (fewer than half reached it by step {steps})")
    else:
        hi = "beyond the horizon" if c["time_median_hi"] is None else str(c["time_median_hi"])
        print(f"    median time to reach: {c['time_median']} (95% {c['time_median_lo']}-{hi})")
    if c["time_mean_given_reached"] is not None:
        print(f"    mean time given reached by step {steps}: {c['time_mean_given_reached']:.2f} "
              "(conditional on reaching; not the expected time)")
    if exact:
        expected = expected_time(exact, "expected_hitting_time", "infinite (may never be reached)")
        if exact.get("expected_hitting_time_note"):
            expected = f"not computed ({exact['expected_hitting_time_note']})"
        elif exact.get("expected_hitting_time_bounds"):
            lo, hi = exact["expected_hitting_time_bounds"]
            expected += f" (within [{lo:.10g}, {hi:.10g}], survival series)"
        print(f"    exact chain: E[T] = {expected}; P(reached by {steps}) = {exact['reached_by_horizon']:.6g}; "
              f"P(holding at {steps}) = {exact['holding_curve'][-1]:.6g}; E[min(T, {steps})] = {exact['restricted_mean']:.6g}; "
              f"set closed (holding once reached): {'yes' if exact['closed'] else 'no'}")


def _estimate(o: dict, key: str, unit: str = "", digits: int = 4) -> str:
    """A simulated figure with its unit and 95% interval, or why there is none (``KEY_note``)."""
    if o[key] is None:
        return f"none ({o[f'{key}_note']})"
    return f"{o[key]:.{digits}g}{unit} (95% {o[f'{key}_lo']:.{digits}g}-{o[f'{key}_hi']:.{digits}g})"


def _exact_value(x: float | None, missing: str) -> str:
    return missing if x is None else f"{x:.6g}"


def print_occupation(name: str, o: dict, exact: dict | None, steps: int) -> None:
    """The simulated time in a criterion's or set's page-states (``summary.json``'s ``occupation``),
    and the exact chain's values beside them (``run --exact``)."""
    print(f"  occupation '{name}' over steps 0-{steps}: fraction of steps {_estimate(o, 'fraction')}, "
          f"visits {_estimate(o, 'visits')}")
    print(f"    mean stay per visit {_estimate(o, 'mean_stay', ' steps')} ({counted(o['exits'], 'exit')}; "
          f"{counted(o['open_at_horizon'], 'visit')} open at step {steps} count their steps, not an exit); "
          f"mean time between entries {_estimate(o, 'mean_time_between_entries', ' steps')}")
    if exact:
        print(f"    exact chain: fraction {probability_text(exact['fraction'])}, visits {probability_text(exact['visits'])}, "
              "exposure/exits "
              f"{_exact_value(exact['mean_stay_within'], 'none (no exit)')}, {steps}/entries "
              f"{_exact_value(exact['mean_time_between_entries_within'], 'none (no entry)')}; "
              f"long-run fraction {_exact_value(exact['long_run_fraction'], 'not computed (a stationary law is not trusted)')}")


def print_stationary_occupation(o: dict) -> None:
    """Per closed class: the stationary time in the set (:func:`ecology.exact.report.occupation_report`)."""
    for c in o["classes"]:
        head = f"    class [{c['class']}] (probability {c['probability']:.6g})"
        if c["mass"] is not None:
            head += f": pi(set) {probability_text(c['mass'])}"
        if c["note"]:
            print(f"{head}; {c['note']}")
            continue
        print(f"{head}, mean stay per visit {c['mean_stay']:.6g} steps, mean time between entries "
              f"{c['mean_time_between_entries']:.6g}, mean excursion outside {c['mean_excursion']:.6g}, "
              f"mean return time from the set (Kac, 1/pi) {c['mean_return_time']:.6g}")


def cmd_run(args) -> int:
    from ecology.io.artefacts import write_run
    from ecology.io.safe import fresh_directory
    from ecology.progress import terminal_progress
    from ecology.results import summarize
    from ecology.sweep.executors import check_scheduler
    from ecology.sweep.shards import simulate_with, workers_for

    s = scn.load(args.file, run_overrides(args))
    if args.scheduler:
        check_scheduler(args.scheduler)  # before the directory is claimed
    target = None if args.json and args.out is None else fresh_directory(args.out, s.name)  # --json alone: no directory
    pinned = blas_threads() if args.exact else contextlib.nullcontext()  # one BLAS thread for the exact chain
    workers = workers_for(s, args.workers)
    with pinned, terminal_progress(args.quiet or args.json, thread=workers == 1 and not args.scheduler) as progress:
        try:  # forked workers: no bar thread (a fork with another thread running would have to spawn)
            result = simulate_with(s, workers, args.scheduler, progress)
        except ScenarioError as err:
            raise err.located(args.file) from None
        summary = summarize(result)
        summary["output"] = None if target is None else str(target)
        if args.exact:  # the exact chain's modules (scipy) are loaded only here
            from ecology.core.compile import compile_scenario
            from ecology.exact.ledger import attach_exact_ledger
            from ecology.exact.report import criterion_figures, occupation_figures

            try:
                compiled = compile_scenario(s)
                exact = criterion_figures(compiled, args.max_states, progress=progress)
                progress("exact figures: occupation", 0, None)
                exact_occupation = occupation_figures(compiled, args.max_states)
            except UserError as err:
                print(f"note: no exact figures: {err}", file=sys.stderr)
                exact, exact_occupation, unreachable = {}, {}, str(err)
            else:
                unreachable = None
            for name, figures in exact.items():
                summary["criteria"][name]["exact"] = figures
            for name, figures in exact_occupation.items():
                summary["occupation"][name]["exact"] = figures
            progress("exact figures: token ledger", 0, None)
            note = attach_exact_ledger(summary["ledger"], compile_scenario(s), args.max_states)
            if note and note != unreachable:  # the same reason (a chain out of reach) is said once
                print(f"note: no exact ledger: {note}", file=sys.stderr)
        if target is not None:
            progress("writing the run directory", 0, None, str(target))
            write_run(result, target, summary)
    if result.engine_note:
        print(f"note: {result.engine_note}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    where = "" if result.shards == 1 else (
        f", {result.shards} shards on " + ("a Dask cluster" if args.scheduler else
                                           "this process" if workers == 1 else f"{workers} workers"))
    print(f"{s.name}: {s.run.replicates} replicates x {s.run.steps} steps in {result.seconds:.2f} s "
          f"({result.engine} engine{where}) -> {target}")
    print_priors(summary["priors"])
    for name, c in summary["criteria"].items():
        print_criterion(name, c, c.get("exact"), s.run.steps, s.run.replicates)
    for name, o in summary["occupation"].items():
        print_occupation(name, o, o.get("exact"), s.run.steps)
    for label, p in summary["populations"].items():
        print(f"  amplitude '{label}' at the end: mean {p['amplitude_final_mean']:.4f} "
              f"(10%-50%-90%: {p['amplitude_final_q10']:.4f}-{p['amplitude_final_q50']:.4f}-{p['amplitude_final_q90']:.4f})")
    for label, row in summary["ledger"].items():
        print_ledger(label, row, s.run.steps)
    return 0


def print_ledger(label: str, row: dict, steps: int) -> None:
    """One population's token ledger at the last step, with intervals (and the exact chain's figures)."""
    def est(name):
        return f"{row[name]:.4g} [{row[name + '_lo']:.4g}, {row[name + '_hi']:.4g}]"
    turnover = "none retired" if row["turnover"] is None else f"{est('turnover')} steps"
    print(f"  ledger '{label}' at step {steps} (95% intervals): issued {est('issued')}, retired {est('retired')}, "
          f"held {est('held')} tokens; turnover (mean age at deletion) {turnover}")
    exact = row.get("exact")
    if exact:
        turnover = "infinite (nothing deleted)" if exact["turnover"] is None else f"{exact['turnover']:.6g}"
        line = (f"    exact: issued {exact['issued']:.6g}, retired {exact['retired']:.6g}, held {exact['held']:.6g}, "
                f"turnover {turnover}")
        if exact["stationary"]:
            st = exact["stationary"]
            line += (f"; stationary: held {st['held']:.6g}, issued {st['issued_per_step']:.6g}/step, turnover "
                     + ("none retired" if st["turnover"] is None else f"{st['turnover']:.6g}"))
        print(line)


def cmd_analyze(args) -> int:
    from ecology.core.compile import compile_scenario
    from ecology.exact.chain import build_chain
    from ecology.exact.report import analyze
    from ecology.io import artefacts
    from ecology.io.safe import fresh_directory
    from ecology.progress import terminal_progress

    if args.before is not None and args.hit is None:
        raise UsageError("analyze: --before needs --hit (the committor P(hit before other))")
    if args.lump_rtol is not None and args.lump is None:
        raise UsageError("analyze: --lump-rtol needs --lump (the tolerance of the lumping's comparisons)")
    if args.export_format is not None and args.export is None:
        raise UsageError("analyze: --export-format needs --export (the new directory the export is written to)")
    if args.out is not None and args.export is not None and os.path.abspath(args.out) == os.path.abspath(args.export):
        raise UsageError(f"analyze: --out and --export both name {args.out}; each needs a new directory of its own")
    s = scn.load(args.file, run_overrides(args))
    out = fresh_directory(args.out, s.name) if args.out is not None else None
    export = fresh_directory(args.export, s.name) if args.export is not None else None
    occupation = None if args.occupation is None else [n.strip() for n in args.occupation.split(",") if n.strip()]
    with blas_threads(), terminal_progress(args.quiet or args.json) as progress:  # one BLAS thread: docs/exact.md
        try:
            compiled = compile_scenario(s)
            chain = build_chain(compiled, args.max_states, max_work=args.max_work, progress=progress)
            report = analyze(compiled, args.max_states, args.tolerance, args.horizon, args.power, chain=chain,
                             hit=args.hit, before=args.before, max_work=args.max_work, occupation=occupation,
                             progress=progress, quasi_stationary=args.quasi_stationary, lump=args.lump,
                             **({} if args.lump_rtol is None else {"lump_rtol": args.lump_rtol}))
        except ScenarioError as err:
            raise err.located(args.file) from None
        if export:
            progress("writing the export", 0, None, str(export))
            write_export(export, chain, compiled, args.power, args.max_states, args.export_format or DEFAULT_EXPORT_FORMATS)
            report.export = str(export)
        if out:
            progress("writing the report and figures", 0, None, str(out))
            try:
                artefacts.write_analysis(out, report, chain)
            except OutputError as err:
                raise OutputError(f"{err}; the export {export} was written" if export else str(err)) from None
            report.output = str(out)
    if args.json:
        print(report.to_json())
    else:
        print_report(report, chain)
    return 0


EXPORT_FORMATS = ("prism", "storm", "drn")  # the model checkers' files that --export-format may ask for
DEFAULT_EXPORT_FORMATS = ("prism",)


def export_formats(text: str) -> tuple[str, ...]:
    """``--export-format``: one or more of :data:`EXPORT_FORMATS`, separated by commas (each once)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in EXPORT_FORMATS for name in names):
        raise argparse.ArgumentTypeError(f"{text!r}: choose one or more of {', '.join(EXPORT_FORMATS)}, separated by "
                                         "commas (e.g. prism,drn)")
    return tuple(dict.fromkeys(names))


def write_export(target: Path, chain, compiled, power: int | None, max_states: int,
                 formats: tuple[str, ...] = DEFAULT_EXPORT_FORMATS) -> None:
    """``transition.npz``, ``states.txt``, for small chains ``power_N.npz``, and per format, each
    with one label per criterion and named set decided on the chain and ``init`` on the initial state: ``prism``,
    PRISM's explicit files (``chain.tra``, ``chain.lab``, ``chain.sta``); ``storm``, Storm's explicit
    files (``storm.tra`` with its ``dtmc`` line, ``storm.lab``, ``storm.rew``: a state reward of 1);
    ``drn``, Storm's DRN file ``chain.drn`` (the same reward as the model ``steps``)."""
    import scipy.sparse as sp

    from ecology.exact.chain import criterion_chain
    from ecology.exact.markov import DENSE_LIMIT
    from ecology.exact.prism import write_prism
    from ecology.exact.storm import write_drn, write_storm_explicit
    from ecology.io.safe import write_atomically

    labels = {}
    for c in compiled.tracked:  # a periodic criterion lives on the extended chain: not labelled here
        decided_on, mask = criterion_chain(compiled, chain, c, max_states)
        if decided_on is chain:
            labels[c.name] = mask

    def fill(d: Path) -> None:
        sp.save_npz(d / "transition.npz", chain.chain.P)
        (d / "states.txt").write_text("\n".join(chain.labels()) + "\n")
        if "prism" in formats:
            write_prism(d / "chain", chain, labels)
        if "storm" in formats:
            write_storm_explicit(d / "storm", chain, labels)
        if "drn" in formats:
            write_drn(d / "chain.drn", chain, labels)
        if power is not None and chain.chain.n_states <= DENSE_LIMIT:
            sp.save_npz(d / f"power_{power}.npz", chain.chain.power(power))

    write_atomically(target, fill)


MATRIX_PRINT_LIMIT = 16


def print_matrix(title: str, M, labels: list[str]) -> None:
    width = max(len(x) for x in labels)
    print(f"{title} (row = from, column = to; columns in row order)")
    for label, row in zip(labels, M.toarray()):
        print(f"  {label:>{width}}  " + " ".join(f"{x:7.4f}" if x else "      ." for x in row))


def expected_time(record: dict, key: str, infinite: str = "infinite (the set may never be entered)") -> str:
    """The expected time ``record[key]`` as printed: its value; beyond a double (``KEY_overflow``),
    ``10^log10`` (:func:`power_of_ten_text`) and its log10 when known (``KEY_log10``: log-space
    elimination, docs/exact.md; already rounded to the decimals it defends,
    :func:`ecology.exact.report.defended_log10`), else ``above 1.8e308``; ``KEY_note`` when it was not
    computed; None otherwise means infinite."""
    value, overflow, log10 = record[key], record.get(f"{key}_overflow"), record.get(f"{key}_log10")
    if value is not None:
        return f"{value:.6g}"
    if overflow is not None:
        return overflow if log10 is None else f"{power_of_ten_text(log10)} (log10 {log10}, by the log-space elimination)"
    if record.get(f"{key}_note"):
        return record[f"{key}_note"]
    return infinite


def power_of_ten_text(log10: float) -> str:
    """``10^log10`` as ``M.MeE``, with one significant digit fewer than the decimals of ``log10``
    (already rounded to what its error bound defends), at least one: ``451.797`` -> ``6.3e451``,
    ``330.0`` -> ``1e330``. A half unit in the last decimal ``d`` of the log moves the value by a factor
    ``10^(5 10^-(d+1))``, about ``1.15 10^-d`` relative: ``d - 1`` significant digits are defended."""
    decimals = len(repr(float(log10)).partition(".")[2].rstrip("0")) if "e" not in repr(float(log10)) else 0
    exponent = math.floor(log10)
    mantissa = 10 ** (log10 - exponent)
    digits = max(1, decimals - 1)
    text = f"{mantissa:.{digits - 1}f}"
    if float(text) >= 10:  # 9.96 rounded to 2 digits
        exponent, text = exponent + 1, f"{mantissa / 10:.{digits - 1}f}"
    return f"{text}e{exponent}"


def probability_text(p: float) -> str:
    """``p`` to 6 significant digits, fewer for a subnormal double (below 2.2e-308 the spacing is
    4.9e-324, so 1.02766e-320 holds 4 digits, not 6)."""
    if 0 < p < sys.float_info.min:
        return f"{p:.{max(1, min(6, math.floor(math.log10(p / 5e-324))))}g}"
    return f"{p:.6g}"


def _ever(name: str, probability: float, infinite: bool) -> str:
    """``P(ever) p``; an infinite time means the set is missed with positive probability (a finite
    chain), so a probability that rounds to 1 is then printed as below 1."""
    if infinite and f"{probability:.6g}" == "1":
        return f"{name} below 1 (1 to double precision)"
    return f"{name} {probability_text(probability)}"


def print_hitting(what: str, h: dict, name: str, probability: float | None) -> None:
    if h["probability_within"] is None:  # nothing could be computed (the report's notes say why)
        print(f"{what} ({h['size']:,} page-states): {h['note']}")
        return
    within = f"P(within {h['within']:,} steps) " + ("below 1e-308 (reachable within the horizon; below the float range)"
                                                    if h.get("probability_within_note") else
                                                    probability_text(h['probability_within']))
    size = f"{h['size']:,} page-states" if "n_states" not in h else \
        f"{h['size']:,} of the {h['n_states']:,} states of its product with the repetition counts"  # a periodic criterion
    if h["note"]:
        known = "" if probability is None else f"{name} {probability:.6g}, "
        print(f"{what} ({size}): {known}{within}; expected time not computed: {h['note']}")
        return
    bounds = h.get("expected_hitting_time_bounds")
    how = "" if bounds is None else f" (within [{bounds[0]:.10g}, {bounds[1]:.10g}], by the survival series)"
    infinite = h["expected_hitting_time"] is None and h.get("expected_hitting_time_overflow") is None
    print(f"{what} ({size}): expected steps to reach it {expected_time(h, 'expected_hitting_time')}{how}"
          f"{_sd_text(h)}, {_ever(name, probability, infinite)}, {within}")


def _sd_text(h: dict) -> str:
    """``, sd S`` for the standard deviation of a hitting time (docs/exact.md), or why it is not
    given; nothing when the expected time itself is not a number (infinite, beyond a double, not
    computed), which the line says already."""
    if h.get("expected_hitting_time") is None:
        return ""
    if h["hitting_time_sd"] is None:
        return f", sd {h['hitting_time_sd_note']}"
    bounds = h.get("hitting_time_sd_bounds")
    how = "" if bounds is None else f" (within [{bounds[0]:.10g}, {bounds[1]:.10g}], by the survival series)"
    return f", sd {h['hitting_time_sd']:.6g}{how}"


def print_entropy_rate_of_a_run(classes: list[dict]) -> None:
    """With closed classes of different entropy rates that the initial window may end in, the
    entropy rate of a run is the rate of the class it ends in, a random variable: its values and
    mean (docs/exact.md)."""
    if any(c["probability"] is None for c in classes):  # the absorption law was not computed (see the notes)
        return
    entered = [c for c in classes if c["probability"] > 0]
    if len(entered) < 2 or any(c.get("entropy_rate") is None for c in entered):
        return
    values = sorted({f"{c['entropy_rate']:.6g}" for c in entered}, key=float)
    if len(values) < 2:  # one rate whatever the class: each class's line says it
        return
    mean = sum(c["probability"] * c["entropy_rate"] for c in entered)
    print(f"entropy rate of a run from the initial window: that of the class it ends in ({', '.join(values)} nats per "
          f"step), not one number; mean {mean:.6g}")


def print_report(r, chain) -> None:
    """The text form of an :class:`ecology.exact.report.Report`."""
    print(f"{r.scenario}: {r.n_states:,} page-states, {r.n_transitions:,} transitions, "
          f"initial window '{r.initial_state}'")
    print(f"closed classes ({len(r.closed_classes)}):")
    for i, c in enumerate(r.closed_classes):
        what = f"absorbing state '{c['absorbing_state']}'" if c["absorbing_state"] else f"{c['size']:,} states"
        ending = "not computed (see the notes)" if c["probability"] is None else f"{c['probability']:.6g}"
        print(f"  [{i}] {what}, period {c['period']}, probability of ending here {ending}")
        if c["states"] and not c["absorbing_state"]:
            print("      " + " | ".join(c["states"]))
        acc = c["stationary_accuracy"]
        if c["absorbing_state"]:
            continue
        if c.get("entropy_rate") is not None:
            print(f"      entropy rate {c['entropy_rate']:.6g} nats per step")
        elif "entropy_rate_note" in c:
            print(f"      entropy rate {c['entropy_rate_note']}")
        if "kemeny_constant" in c:
            kemeny = c.get("kemeny_constant_note") or expected_time(c, "kemeny_constant") + (
                f" ({c['kemeny_constant_method']})" if c.get("kemeny_constant_method") else "")
            longest = expected_time(c, "max_mean_first_passage")
            print(f"      Kemeny's constant {kemeny}; longest mean first passage between two of its states {longest} steps")
        if acc["method"] is None:
            print("      stationary law not computed (see the notes)")
        elif acc["trusted"]:
            top = ", ".join(f"'{s['state']}' {s['mass']:.4g}" if s["mass"] > 0 else f"'{s['state']}' below 1e-308"
                            for s in c["stationary_top"][:5])  # a closed class's states all have mass > 0
            print(f"      stationary (top): {top}  [{acc['method']}; L1 error estimate {acc['error_estimate']:.1e}]")
        else:
            estimate = "none" if acc["error_estimate"] is None else f"{acc['error_estimate']:.1e}"
            print(f"      stationary law not printed: its L1 error estimate ({acc['method']}, {acc['error_kind']}) "
                  f"is {estimate} (nearly decomposable class); see the metastable classes (--tolerance)")
        print_reversibility(c)
    print_entropy_rate_of_a_run(r.closed_classes)
    absorption = expected_time(vars(r), "expected_absorption_time")
    if r.initial_in_closed_class:
        print("expected steps until a closed class is entered: 0 (the initial window is already in one; "
              "the hitting times below are the informative ones)")
    elif r.expected_absorption_time_note:
        print(f"expected steps until a closed class is entered: not computed ({r.expected_absorption_time_note})")
    elif len(r.closed_classes) == 1 and r.closed_classes[0]["size"] > 1:
        print(f"expected steps until the closed class is entered: {absorption} (trivial here: "
              f"one closed class of {r.closed_classes[0]['size']:,} states, so nothing is absorbing; the hitting "
              "times of the criteria below say where the chain goes)")
    else:
        print(f"expected steps until a closed class is entered: {absorption}")
    print("largest eigenvalue moduli: " + (", ".join(f"{x:.10g}" for x in r.eigenvalues) if r.eigenvalues
                                            else "not computed (see the notes)"))
    print_timescales_and_conductance(r)
    for name, c in r.criteria.items():
        print_hitting(f"criterion '{name}'", c, "P(ever)", c.get("probability"))
    print_loops(r.loops)
    for name, o in (r.occupation or {}).items():
        if o is None:  # not computed: the notes say why
            continue
        print(f"occupation '{name}' ({o['size']:,} page-states) over t = 0-{o['horizon']}: expected steps in it "
              f"{probability_text(o['occupation'])} (fraction {probability_text(o['fraction'])}), visits "
              f"{probability_text(o['visits'])}, mean stay per visit "
              f"(exposure/exits) {_exact_value(o['mean_stay_within'], 'none (no visit ends)')}; long-run fraction "
              f"{_exact_value(o['long_run_fraction'], 'not computed (a stationary law is not trusted or a mass underflows)')}")
        print_stationary_occupation(o)
    if r.hit is not None:
        h = r.hit
        if h["before"]:
            print_hitting(f"hit '{h['target']}'", h, f"P(before '{h['before']}')", h.get("probability_before"))
        else:
            print_hitting(f"hit '{h['target']}'", h, "P(ever)", h.get("probability"))
        if h.get("transition_paths") is not None:
            print_transition_paths(h["transition_paths"], h["target"], h["before"])
    if r.metastable is not None:
        m = r.metastable
        print(f"metastable classes (transitions below {m['tolerance']:g} ignored): {len(m['classes'])}")
        for i, c in enumerate(m["classes"]):
            exit_time = "never (closed)" if c["max_escape"] == 0 else \
                expected_time(c, "exit_time")
            print(f"  <{i}> {c['size']:,} states, most likely '{c['likely_state']}', max escape per step "
                  f"{c['max_escape']:.3g}, expected exit time from there {exit_time}")
            if c["exits_to"]:
                into = ", ".join(f"{'no metastable class' if k == '-1' else f'<{k}>'} {p:.3g}"
                                 for k, p in c["exit_class_probabilities"].items())
                first = ", ".join(f"'{e['state']}' {e['probability']:.3g}" for e in c["exits_to"][:3])
                print(f"      exits to: {into}; first states outside: {first}")
    if r.quasi_stationary is not None:
        print_quasi_stationary(r.quasi_stationary)
    if r.lumping is not None:
        print_lumping(r.lumping)
    if r.curves is not None:
        h = r.horizon
        for name, c in (r.curves or {}).items():
            print(f"criterion '{name}' at t = {h}: holds {c['holding'][-1]:.6g}, reached by t {c['reached'][-1]:.6g}")
    if chain.chain.n_states <= MATRIX_PRINT_LIMIT:
        labels = chain.labels()
        print_matrix("T", chain.chain.P, labels)
        if r.power is not None:
            print_matrix(f"T^{r.power['n']}", chain.chain.power(r.power["n"]), labels)
    elif r.power is not None:
        top = ", ".join(f"'{s['state']}' {s['probability']:.4g}" for s in r.power["from_initial"][:8])
        print(f"T^{r.power['n']} from the initial window (top): {top or 'not computed (see the notes)'}")
    for quantity, note in (r.notes or {}).items():
        print(f"note: {quantity}: {note}")


def print_timescales_and_conductance(r) -> None:
    """The implied timescales beside the eigenvalues, and the conductances of the report."""
    if r.implied_timescales is not None:
        times = ", ".join(">1e12" if t is None else f"{t:.6g}" for t in r.implied_timescales["whole"])
        print(f"implied timescales -1/ln|lambda| (steps; >1e12: |lambda| within 1e-12 of 1, a stationary mode or one "
              f"the eigenvalues do not resolve): {times}")
    if r.conductance is None:
        return
    for c in r.conductance["classes"]:
        if "note" in c:
            print(f"  class [{c['class']}] conductance not computed: {c['note']}")
            continue
        kind = "exact" if c["exact"] else "sweep-cut upper bound"
        gap = "below 1e-12 (not resolved)" if c["gap"] is None else f"{c['gap']:.4g}"
        bounds = (f"within the Cheeger bounds [{c['cheeger_lower']:.3g}, {c['cheeger_upper']:.3g}]" if c["exact"] else
                  f"at most 2 Phi = {c['cheeger_upper']:.3g} (Cheeger; a sweep cut gives no lower bound)")
        print(f"  class [{c['class']}] conductance {c['conductance']:.4g} ({kind}); gap 1 - lambda_2 of its "
              f"reversibilisation {gap} {bounds}{'' if c['reversible'] else ' (not reversible)'}")
    for name, entry in r.conductance["criteria"].items():
        for c in entry.get("classes", []):
            value = c.get("note") if c["conductance"] is None else \
                f"pi(set) {c['mass']:.4g}, conductance {c['conductance']:.4g} (per step, leaving it in stationarity)"
            print(f"  criterion '{name}' in class [{c['class']}] ({c['size']:,} page-states): {value}")


def print_quasi_stationary(q: dict) -> None:
    """The ``--quasi-stationary`` block of the report."""
    print(f"quasi-stationary law conditioned on {q['conditioned_on']} ({q['size']:,} page-states; the slowest class "
          f"reached has {q['class_size']:,}, with {q['support_size']:,} carrying mass) [{q['method']}]")
    if q["trusted"]:
        exit_time = "never (a closed class)" if q["expected_exit_time_from_qsd"] is None else \
            f"{q['expected_exit_time_from_qsd']:.6g}"
        ratio = "none" if q["spectral_ratio"] is None else f"{q['spectral_ratio']:.6g}"
        print(f"  decay rate 1 - lambda {q['decay_rate']:.6g} per step; expected steps to leave from the QSD {exit_time}; "
              f"spectral ratio |lambda_2|/lambda {ratio}  [L1 error estimate {q['error_estimate']:.1e}]")
        print("  QSD (top): " + ", ".join(f"'{s['state']}' {s['mass']:.4g}" for s in q["top"][:5]))
    f = q["from_initial"]
    if f is not None:
        time = expected_time(f, "expected_exit_time")
        ratio = "" if f["ratio_to_qsd"] is None else f" ({f['ratio_to_qsd']:.4g} times the QSD's)"
        tv = "not given" if f["tv_to_qsd"] is None else f"{f['tv_to_qsd']:.3g}"
        close = "not within the horizon" if f["steps_to_tv"] is None else f"after {f['steps_to_tv']} steps"
        print(f"  from the initial window: expected steps to enter it {time}{ratio}; at t = {f['horizon']} "
              f"log10 P(not yet) {f['log10_survival']:.6g}, TV distance of the conditioned law to the QSD {tv} "
              f"(within 0.01 {close})")
    if q["note"]:
        print(f"  note: {q['note']}")
def print_lumping(lump: dict) -> None:
    """``--lump``: the partition, its lumpability and the lumped chain's check (:func:`ecology.exact.report.lumping_report`)."""
    by = "premise amplitudes" if lump["by"] == "amplitudes" else "the truth values of " + ", ".join(lump["coordinates"])
    verdict = "yes" if lump["lumpable"] else "no"
    print(f"lumping by {by} (compared at relative {lump['rtol']:g}): {lump['n_blocks']:,} blocks of "
          f"{lump['n_states']:,} page-states; ordinarily lumpable: {verdict} (defect {lump['defect']:.3g}); coarsest "
          f"lumpable refinement: {lump['coarsest_n_blocks']:,} blocks (defect {lump['coarsest_defect']:.3g})")
    for i, b in enumerate(lump["blocks"] or []):
        shown = b["values"] if lump["by"] != "amplitudes" else \
            [f"{v:.6g}" if v > 0 or log10 is None else f"10^{log10:.2f} (below the float range)"
             for v, log10 in zip(b["values"], b["log10_values"])]
        values = ", ".join(f"{name} {v}" for name, v in zip(lump["coordinates"], shown))
        print(f"  block {i}: {b['size']:,} page-states (e.g. '{b['example']}'): {values}")
    lumped = lump["lumped_chain"]
    if lumped is not None:
        ending = ", ".join(f"[{i}] {c['blocks']:,} blocks ({c['page_states']:,} page-states) "
                           f"{probability_text(c['probability'])} (full chain {probability_text(c['full_chain_probability'])})"
                           for i, c in enumerate(lumped["closed_classes"]))
        print(f"  lumped chain ({lump['lumped']}): {lumped['n_states']:,} states, {lumped['n_transitions']:,} transitions, "
              f"initial block of {lumped['initial_block_size']:,} page-states; P(end in closed class): {ending}; "
              f"largest difference {lumped['absorption_agreement']:.1e}")
        for name, c in lumped["criteria"].items():
            text = []
            for key in ("lumped", "full_chain"):
                h = c[key]
                if h["probability"] is None:
                    text.append(f"not computed ({h['note']})")
                    continue
                time = f"not computed ({h['note']})" if h["note"] else expected_time(h, "expected_hitting_time", "infinite")
                if h.get("expected_hitting_time_bounds"):
                    time += " (within [{:.10g}, {:.10g}], by the survival series)".format(*h["expected_hitting_time_bounds"])
                text.append(f"P(ever) {probability_text(h['probability'])}, expected steps {time}")
            print(f"    '{name}' (a union of blocks): lumped chain {text[0]}; full chain {text[1]}")
    if lump["note"]:
        print(f"  note: {lump['note']}")


def print_reversibility(c: dict) -> None:
    """One line: whether a closed class is reversible (detailed balance), with the measured defect."""
    if "reversible" not in c:
        return
    if c["reversible"] is None:
        print(f"      reversibility {c['reversibility_note']}")
        return
    parts = [] if c["detailed_balance_defect"] is None else [
        f"unbalanced stationary flux {c['detailed_balance_defect']:.3g} per step, "
        f"{c['detailed_balance_relative_defect']:.3g} of the flux between distinct states"]
    if c["one_way_edges"]:
        parts.append(f"{c['one_way_edges']:,} transitions have no reverse")
    verdict = "reversible (detailed balance holds within the law's accuracy: " if c["reversible"] else "not reversible ("
    print(f"      {verdict}{'; '.join(parts)})")


def print_transition_paths(t: dict, target: str, before: str) -> None:
    """The stationary transition paths from the --before set to the --hit set (the TPT block of the
    hit report): flux, rate, mean duration and the dominant pathways."""
    what = f"transition paths '{before}' -> '{target}' in stationarity"
    if t["class"] is None:
        print(f"{what}: {t['note']}")
        return

    error = t["conservation_error"]  # the measured relative accuracy of the fluxes: no more digits than it defends
    digits = 6 if not error else max(2, min(6, math.floor(-math.log10(error))))

    def figure(key: str) -> str:
        if t[key] is not None:
            return f"{t[key]:.{digits}g}"
        return f"10^{t[key + '_log10']} (beyond a double)" if key + "_log10" in t else "not given"

    conserved = "" if t["conservation_error"] is None else \
        f" (net flux conserved to {t['conservation_error']:.1e} of the flux)"
    print(f"{what} (closed class [{t['class']}], {t['A_size']:,} and {t['B_size']:,} of its page-states): reactive "
          f"flux {figure('flux')} per step, rate {figure('rate')} per step with '{before}' the last visited, mean "
          f"duration {figure('mean_duration')} steps{conserved}")
    for p in t["pathways"] or []:
        print(f"    share {p['share']:.{min(digits, 4)}g} (flux {p['flux']:.{min(digits, 4)}g}): "
              + " -> ".join(f"'{s}'" for s in p["states"]))
    if t["note"]:
        print(f"    ({t['note']})")


LOOPS_PRINTED = 5


def print_loops(loops: dict) -> None:
    """The first loops of the report (cycles of the most likely successor map), one line each."""
    shown = loops["cycles"][:LOOPS_PRINTED]
    if loops["count"] is None:
        print("loops: not computed (see the notes)")
        return
    print(f"loops (cycles of the most likely successor; {loops['count']:,} in all, most likely lap first):")
    for i, c in enumerate(shown):
        states = " -> ".join(f"'{s}'" for s in c["states"][:6]) + (" -> ..." if c["length"] > 6 else "")
        expected = ("more laps expected than a double holds (the leak is below double precision)"
                    if c["expected_laps"] is None else f"{c['expected_laps']:.4g} laps expected")
        laps = "closed (never left)" if c["closed"] else (f"once round {c['lap_probability']:.4g}, leak per step "
                                                         f"{c['leak_per_step']:.4g}, {expected}")
        where = "transient" if c["closed_class"] is None else \
            f"stationary mass {'not trusted' if c['stationary_mass'] is None else format(c['stationary_mass'], '.4g')}"
        print(f"  ({i}) length {c['length']}: {states}; {laps}; {where}")


RESUME_FIXED = (("FILE", "file"), ("--grid", "grid"), ("--zip", "zip"), ("--set", "set"), ("--replicates", "replicates"),
                ("--steps", "steps"), ("--exact", "exact"), ("--max-states", "max_states"), ("--max-memory", "max_memory"),
                ("--engine", "engine"), ("--out", "out"))


def cmd_sweep(args) -> int:
    import shutil

    from ecology.core.budget import DEFAULT_MAX_STATES
    from ecology.io import safe
    from ecology.io.safe import fresh_directory
    from ecology.progress import terminal_progress
    from ecology.sweep import directory as sweep_directory
    from ecology.sweep import execute as sweep_execute
    from ecology.sweep import grid as sweep_grid

    if args.scheduler:
        sweep_execute.check_scheduler(args.scheduler)
    if args.resume:
        given = [flag for flag, attr in RESUME_FIXED if getattr(args, attr) is not None and getattr(args, attr) is not False]
        if given:
            raise UsageError(f"--resume DIR runs the plan in DIR/sweep.json unchanged; {', '.join(given)} cannot "
                             "apply (start a new sweep to change the plan)")
        target = Path(args.resume)
        plan = sweep_directory.load_plan(target)
        check_figures(plan, figure_choice(args))
        lock = sweep_directory.open_directory(target)
    else:
        if not args.file:
            raise UsageError("sweep: give a scenario FILE (or --resume DIR)")
        grids = dict(sweep_grid.parse_grid(g) for g in args.grid or [])
        overrides = parse_sets(args.set)
        overrides.update({path: value for path, value in (("run.replicates", args.replicates), ("run.steps", args.steps),
                                                                ("run.max_memory_gib", args.max_memory),
                                                                ("run.engine", args.engine))
                          if value is not None})
        max_states = args.max_states or DEFAULT_MAX_STATES
        try:
            plan = sweep_grid.make_plan(scn.read_scenario_table(args.file), grids, overrides, args.exact, max_states,
                                        [sweep_grid.parse_zip(z) for z in args.zip or []])
        except ScenarioError as err:
            raise err.located(args.file) from None
        check_figures(plan, figure_choice(args))
        target = fresh_directory(args.out, f"sweep-{plan.name}")
        try:
            lock = sweep_directory.start_directory(target, plan)
        finally:
            safe.release(target)
    with lock:
        try:
            workers = args.workers or os.cpu_count() or 1
            serial = workers == 1 and not args.scheduler  # points run here: a redraw thread keeps the bar alive
            with terminal_progress(args.quiet or args.json, thread=serial) as progress:  # workers fork: no thread
                outcome = sweep_execute.execute(target, plan, workers, args.scheduler, progress)
        except UserError:  # refused before any point ran (no Dask, a scheduler that is not one)
            if not args.resume:  # a new directory holding only its plan: removed, nothing is left behind
                shutil.rmtree(target, ignore_errors=True)
            raise
        stopped = outcome["interrupted"] or outcome["error"]
        if not stopped:
            try:
                draw_sweep(target, plan, figure_choice(args))
            except OSError as err:  # a full disk: the points are on disk, --resume redraws the plots
                outcome["error"] = f"cannot write the plots: {safe.describe_os_error(err)}"
                stopped = True
    if args.json:
        print(json.dumps(outcome))
    else:
        print(f"sweep of {plan.name}: {outcome['done']}/{outcome['points']} points done "
              f"({outcome['ran']} run now) -> {target}/results.csv")
        for f in outcome["failed"]:
            print(f"  failed point {f['index']} {f['params']}: {f['error']}")
    if stopped:
        why = f"interrupted by {outcome['interrupted']}" if outcome["interrupted"] else f"error: {outcome['error']}"
        print(f"{why}; {outcome['done']}/{outcome['points']} points kept; resume with: "
              f"ecology sweep --resume {target}", file=sys.stderr)
    if outcome["interrupted"]:
        from ecology.interrupts import exit_status

        return exit_status(outcome["interrupted"].split()[0])
    return 1 if outcome["failed"] or outcome["error"] else 0




def figure_choice(args):
    """The sweep figures that ``--plot``, ``--x``, ``--hue``, ``--log`` and ``--linear`` ask for
    (:class:`ecology.plots.FigureChoice`; comma-separated lists, the flags repeatable)."""
    from ecology.plots import FigureChoice

    def listed(values: list[str] | None) -> list[str]:
        return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]

    return FigureChoice(tuple(dict.fromkeys(listed(args.plot))), args.x, args.hue, frozenset(listed(args.log)),
                        frozenset(listed(args.linear)))


def check_figures(plan, choice) -> None:
    """Refuse, before anything runs or is drawn, figure options that cannot apply to the sweep."""
    from ecology import plots
    from ecology.sweep.grid import labels_of

    plots.check_choice(choice, plan.grid, {p: plan.kinds.get(p) or plots.grid_kind(v) for p, v in plan.grid.items()},
                       list(plan.base.get("absorption", {})), labels_of(plan.base), plan.exact, list(plan.base.get("sets", {})))


def draw_sweep(directory: Path, plan, choice=None, ext: str = "png", dpi: int | None = None) -> list[Path]:
    """The sweep's figures (:func:`ecology.plots.sweep_plots`) from its ``results.csv``, as
    ``choice`` (a :class:`ecology.plots.FigureChoice`) asks, in format ``ext`` at ``dpi``."""
    import pandas as pd

    from ecology import plots
    from ecology.io import safe
    from ecology.sweep.grid import labels_of, plot_axes

    try:  # results.csv is current: execute() wrote it, cmd_plot rewrites it from the points
        rows = pd.read_csv(directory / "results.csv")
    except pd.errors.EmptyDataError:  # no finished point
        rows = pd.DataFrame()
    grid, axis_labels, tick_labels = plot_axes(plan)
    return safe.replace_files_from(directory, lambda tmp: plots.sweep_plots(
        tmp, rows, grid, list(plan.base.get("absorption", {})), labels_of(plan.base), plan.name, plan.kinds,
        plan.base["run"]["steps"], choice=choice or plots.FigureChoice(), replicates=plan.base["run"]["replicates"],
        axis_labels=axis_labels, tick_labels=tick_labels, ext=ext, dpi=dpi or plots.DPI, sets=list(plan.base.get("sets", {}))))


def cmd_plot(args) -> int:
    """Redraw the plots of a run, analysis or sweep directory: drawn into a temporary directory
    inside it, then moved over the old plots (a symlink planted in the directory is replaced, not
    followed)."""
    from ecology.io import artefacts, safe
    from ecology.sweep import directory as sweep_directory

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory")
    choice = figure_choice(args)
    dpi = args.dpi
    if (directory / "sweep.json").is_file():
        if args.window is not None:
            raise UsageError(f"--window: {directory} is a sweep directory; --window chooses the steps of a run's rasters")
        plan = sweep_directory.load_plan(directory)
        check_figures(plan, choice)
        safe.remove_leftovers(directory)
        sweep_directory.write_table(directory, plan)
        written = draw_sweep(directory, plan, choice, args.format, dpi)
        print(f"{directory}: redrew {len(written)} sweep plots ({', '.join(p.name for p in written)})")
        return 0
    if choice.any:
        given = [flag for flag, on in (("--plot", choice.metrics), ("--x", choice.x), ("--hue", choice.hue),
                                        ("--log", choice.log), ("--linear", choice.linear)) if on]
        raise UsageError(f"{', '.join(given)}: {directory} is not a sweep directory; these choose a sweep's figures")
    if (directory / "summary.json").is_file():
        run = artefacts.read_run(directory)
        window = artefacts.check_window(run, args.window)
        safe.remove_leftovers(directory)

        def render(tmp: Path) -> list[Path]:
            return artefacts.draw_run(tmp, run, window, args.format, dpi)

        what = "run"
    elif (directory / "report.json").is_file():
        if args.window is not None:
            raise UsageError(f"--window: {directory} is an analysis directory; --window chooses the steps of a run's "
                             "rasters")
        report, network = artefacts.read_analysis(directory)
        safe.remove_leftovers(directory)

        def render(tmp: Path) -> list[Path]:
            return artefacts.draw_analysis(tmp, report, network, args.format, dpi)

        what = "analysis"
    else:
        raise UsageError(f"{directory}: neither a run (summary.json), an analysis (report.json) nor a sweep "
                         "directory (sweep.json)")
    safe.replace_files_from(directory, render)
    print(f"{directory}: redrew the {what} plots")
    return 0


def cmd_decompose(args) -> int:
    from ecology.decompose import (
        Request,
        check_request,
        decompose,
        parse_components,
        parse_families,
        report_text,
        summary,
        write_report,
    )
    from ecology.io.safe import fresh_directory
    from ecology.progress import terminal_progress

    families = parse_families(args.family)
    components = parse_components(args.components)
    overrides = parse_sets(args.set)
    if args.max_memory is not None:
        overrides["run.max_memory_gib"] = args.max_memory
    s = scn.load(args.file, overrides)
    compare = [(path, scn.load(path)) for path in args.compare or []]
    request = Request(families, components, args.storylines, args.length, args.seed, args.restarts, args.data,
                      args.max_states, compare, **({} if args.max_work is None else {"max_work": args.max_work}))
    check_request(s, request)  # refused before the output directory (or its parents) is made
    # --json alone: no directory
    target = None if args.json and args.out is None else fresh_directory(args.out, f"decompose-{s.name}")
    with terminal_progress(args.quiet or args.json) as progress:
        try:
            result = decompose(s, request, progress)
        except ScenarioError as err:
            raise err.located(args.file) from None
        report = summary(result)
        report["output"] = None if target is None else str(target)
        if target is not None:
            progress("writing the report and figures", 0, None, str(target))
            write_report(target, result, report)
    if args.json:
        print(json.dumps(report))
    else:
        print(report_text(report))
        print(f"-> {target}")
    return 0


def cmd_clean(args) -> int:
    from ecology.io import safe

    root = Path(args.directory)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    removed, live = safe.clean_tree(root)
    for path in removed:
        print(f"removed {path}")
    for path in live:
        print(f"kept {path} (the process writing it still runs)")
    print(f"{root}: removed {counted(len(removed), 'leftover')} of stopped processes, kept {len(live)}")
    return 0


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in its number: "1 premise", "2 premises", "1 absorption criterion"."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


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


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def relative_tolerance(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simulacra-ecology")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown (not installed)"


def port_number(text: str) -> int:
    """A TCP port, 1 .. 65535."""
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port, 1 to 65535, got {value}")
    return value


def check_listen_address(host: str, port: int) -> None:
    """Refuse, in one line, a ``--host``/``--port`` the server could not listen on, before
    "serving" is printed: the host must resolve (``getaddrinfo``, as uvicorn's
    ``loop.create_server`` resolves it) and every address it resolves to must accept a bind on
    ``port`` with ``SO_REUSEADDR`` (the server's own options), so a port another process
    listens on, an address of another machine and a privileged port are refused here. The test
    sockets are closed just before the server starts; a process that takes the port in between
    still gets the server's own message."""
    import errno
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        why = err.strerror if isinstance(err, socket.gaierror) else str(err)
        raise UsageError(f"--host {host}: cannot be resolved ({why}); give a name or address of this machine, "
                         "e.g. 127.0.0.1 (loopback) or 0.0.0.0 (every interface)") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise UsageError(f"--port {port}: address already in use on {address[0]} (another process is "
                                     "listening there): choose another --port") from None
                if err.errno == errno.EADDRNOTAVAIL:
                    raise UsageError(f"--host {host}: {address[0]} is not an address of this machine; give one of its "
                                     "addresses, e.g. 127.0.0.1 (loopback) or 0.0.0.0 (every interface)") from None
                if err.errno == errno.EACCES:
                    raise UsageError(f"--port {port}: permission denied (ports below 1024 need privileges): "
                                     "choose a port above 1023") from None
                raise UsageError(f"--host {host} --port {port}: cannot listen on {address[0]} "
                                 f"({err.strerror or err})") from None


def cmd_app(args) -> int:
    """Serve the interactive page of a scenario with solara (``ecology.app``) until interrupted;
    the scenario, the app extra, the host and the port are checked first (one line, exit 2)."""
    import os
    import subprocess

    from ecology.core.compile import compile_scenario

    try:
        compile_scenario(scn.load(args.file))
    except ScenarioError as err:
        raise err if err.source else err.located(args.file) from None
    try:
        import solara  # noqa: F401  (the page needs the optional extra)
    except ImportError:
        raise UsageError("ecology app needs the 'app' extra: pip install 'simulacra-ecology[app]'") from None
    check_listen_address(args.host, args.port)
    # a page whose browser went away is closed (its model and figures freed) 30 s after it disconnected,
    # not after solara's default of a day; SOLARA_KERNEL_CULL_TIMEOUT in the environment overrides it
    env = {"SOLARA_KERNEL_CULL_TIMEOUT": "30s", **os.environ, "ECOLOGY_SCENARIO": str(Path(args.file).resolve())}
    command = [sys.executable, "-m", "solara", "run", "ecology.app", "--host", args.host, "--port", str(args.port),
               "--production", "--no-open", "--no-check-version"]
    print(f"serving {args.file} on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt as err:  # the way this command is meant to end: not an error (the server is stopped)
        from ecology.interrupts import exit_status

        name = str(err) or "SIGINT"
        print(f"stopped serving {args.file} ({name})", file=sys.stderr)
        return exit_status(name)


FORMATS = ("png", "pdf", "svg")


def figure_options(p) -> None:
    """The options that choose a sweep's figures (``sweep`` and ``plot``; docs/outputs.md)."""
    p.add_argument("--plot", action="append", metavar="METRIC[,METRIC]",
                   help="sweep figures to draw: expected_time, reached, restricted_mean, median, holding, amplitude, "
                   "absorption_time, occupation, long_run_occupation, stay, between_entries, loop_lap, each optionally "
                   "NAME:METRIC (a criterion; for the occupation metrics a criterion or named set; for amplitude a "
                   "population)")
    p.add_argument("--x", metavar="PARAM", help="grid parameter on the horizontal axis")
    p.add_argument("--hue", metavar="PARAM", help="grid parameter drawn as one line per value (no heatmap)")
    p.add_argument("--log", action="append", metavar="AXIS", help="force a log scale: x, y (the values) or a grid parameter")
    p.add_argument("--linear", action="append", metavar="AXIS", help="force a linear scale: x, y or a grid parameter")


def step_window(text: str) -> tuple[int | None, int | None]:
    """``START:END`` (either part may be empty): the steps ``START <= t < END`` of a run's rasters."""
    start, sep, end = text.partition(":")
    try:
        window = (int(start) if start.strip() else None, int(end) if end.strip() else None)
    except ValueError:
        window = None
    if not sep or window is None or any(v is not None and v < 0 for v in window):
        raise argparse.ArgumentTypeError(f"{text!r} is not START:END with steps >= 0, e.g. 0:500 or 1000:")
    if None not in window and window[0] >= window[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: START must be below END (the steps START <= t < END)")
    return window


def build_parser() -> Parser:
    from ecology.core.budget import DEFAULT_MAX_STATES, DEFAULT_MAX_WORK
    from ecology.lm.train import DEFAULT_MAX_MEMORY_GIB as TRAIN_MAX_MEMORY
    from ecology.lm.train import DEFAULT_MAX_WORK as TRAIN_MAX_WORK

    parser = Parser(prog="ecology", description="Premises and simulacra competing for amplitude on a finite context window.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("run", help="simulate many replicates of a scenario")
    p.add_argument("file")
    p.add_argument("--steps", type=int)
    p.add_argument("--replicates", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override any scalar of the scenario")
    p.add_argument("--out", help="output directory (must not exist); default runs/NAME-TIMESTAMP, none with --json")
    p.add_argument("--json", action="store_true", help="print only the summary JSON (no run directory unless --out is given)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr (it is shown only when stderr is a "
                   "terminal; --json implies --quiet)")
    p.add_argument("--exact", action="store_true",
                   help="add the exact chain's expected hitting time and P(reached by N) beside the simulated ones")
    p.add_argument("--max-states", type=positive_int, default=DEFAULT_MAX_STATES,
                   help=f"state budget of --exact (default {DEFAULT_MAX_STATES:,})")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB",
                   help="memory budget of the simulation and of --exact's chain (default 8)")
    p.add_argument("--engine", choices=ENGINES, help="simulation engine (default: the scenario's run.engine, 'compiled'; "
                   "'numpy' is the reference; both give the same trajectories)")
    p.add_argument("--workers", type=positive_int, help="worker processes for the run's replicate shards (default: all "
                   "cores for a run of several shards and at least 2,000,000 replicate-steps, else 1); the numbers do "
                   "not depend on it")
    p.add_argument("--scheduler", help="run the shards on Dask: tcp://HOST:PORT of a scheduler, or 'local' to start one")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("analyze", help="build the exact page-state Markov chain and analyse it")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.add_argument("--max-states", type=positive_int, default=DEFAULT_MAX_STATES, help="state budget of the chain")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB",
                   help="memory budget of the chain (default 8): the state budget's worst case must fit in it")
    p.add_argument("--max-work", type=positive_int, default=DEFAULT_MAX_WORK,
                   help="budget of sparse operations for curves, hitting-by-horizon and powers")
    p.add_argument("--tolerance", type=probability, help="metastable classes: ignore transitions below this")
    p.add_argument("--horizon", type=natural, help="exact criterion curves for t = 0 .. H")
    p.add_argument("--power", type=natural, help="report (and export) T^n")
    p.add_argument("--hit", metavar="TARGET", help="hitting analysis of a criterion or set name, 'class:I', or "
                   "page-states ('U U U' or several separated by commas)")
    p.add_argument("--occupation", metavar="NAME[,NAME]", help="time spent in each of these, over the horizon and in "
                   "stationarity: a criterion, a set ([sets.NAME]), 'class:I' or one page-state per name (name a set of "
                   "page-states in [sets.NAME] windows); default: every criterion and set")
    p.add_argument("--before", metavar="OTHER", help="with --hit: the committor P(TARGET before OTHER), and the "
                   "transition paths OTHER -> TARGET in stationarity (flux, rate, duration, dominant pathways) where one "
                   "closed class holds both")
    p.add_argument("--quasi-stationary", metavar="TARGET", help="the law conditioned on not having entered TARGET yet "
                   "(named as for --hit): its quasi-stationary law, decay rate and the approach to it from the initial "
                   "window")
    p.add_argument("--lump", choices=("amplitudes", "criteria"), help="partition the page-states by their premise "
                   "amplitude vectors (or by the truth values of the criteria and named sets), test ordinary "
                   "lumpability, find the coarsest lumpable refinement and check its lumped chain")
    p.add_argument("--lump-rtol", type=relative_tolerance, metavar="R", help="with --lump: values equal within this "
                   "relative tolerance (default 1e-12; docs/exact.md#lumping)")
    p.add_argument("--export", help="write transition.npz, states.txt and the --export-format files to this new "
                   "directory")
    p.add_argument("--export-format", type=export_formats, metavar="FORMAT[,FORMAT]", help="with --export: prism "
                   "(PRISM's chain.tra/.lab/.sta), storm (Storm's explicit storm.tra/.lab/.rew) and/or drn (Storm's "
                   "chain.drn), separated by commas (default prism; docs/exact.md#export)")
    p.add_argument("--out", help="write report.json and plots to this new directory")
    p.add_argument("--json", action="store_true", help="print only the report JSON (nothing written unless --out or --export)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr (it is shown only when stderr is a "
                   "terminal; --json implies --quiet)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("sweep", help="run a grid of scenario variants on all cores or a Dask cluster")
    p.add_argument("file", nargs="?")
    p.add_argument("--grid", action="append", metavar="PATH=VALUES",
                   help="v1,v2,... or START:STOP:STEP or START:STOP:*FACTOR; several --grid form a product; "
                   "premises.NAME.weight=W sweeps a prior as it acts (normalised), .odds=O as prior odds")
    p.add_argument("--zip", action="append", metavar="PATH,PATH,...",
                   help="grids that move together (equal lengths; their i-th values make one point), not a product")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="a fixed override for every point")
    p.add_argument("--replicates", type=positive_int)
    p.add_argument("--steps", type=natural)
    p.add_argument("--max-memory", type=positive_float, metavar="GIB", help="memory budget of each point's run (default 8)")
    p.add_argument("--engine", choices=ENGINES, help="simulation engine of every point (default compiled; see 'run --engine')")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask scheduler, or 'local' to start one")
    p.add_argument("--exact", action="store_true", help="add the exact chain's figures where it is small enough")
    p.add_argument("--max-states", type=positive_int,
                   help=f"state budget of --exact (default {DEFAULT_MAX_STATES:,})")
    p.add_argument("--out", help="output directory (must not exist); default runs/sweep-NAME-TIMESTAMP")
    p.add_argument("--resume", metavar="DIR", help="run only the missing points of an earlier sweep (its plan "
                   "unchanged: no FILE, --grid, --zip, --set, --replicates, --steps, --exact, --max-states, --out)")
    p.add_argument("--json", action="store_true", help="print only a JSON summary (the sweep still writes its directory: "
                   "its points are kept there as they finish)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr (it is shown only when stderr is a "
                   "terminal; --json implies --quiet)")
    figure_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("decompose", help="fit mixtures of premises to a scenario's static model and compare decompositions")
    p.add_argument("file")
    p.add_argument("--family", required=True, help="comma-separated: iid, constant, markov1, markov2, cycle, waluigi")
    p.add_argument("--components", required=True, metavar="K|K1:K2", help="number of premises, or an inclusive range")
    p.add_argument("--storylines", type=positive_int, default=2000, help="sampled storylines (and BIC's n)")
    p.add_argument("--length", type=positive_int, help="steps along which the columns and stories are taken (default 4k)")
    p.add_argument("--seed", type=int, help="default: the scenario's run.seed")
    p.add_argument("--restarts", type=positive_int, default=5, help="seeded EM restarts per K")
    p.add_argument("--data", choices=["auto", "exact", "samples"], default="auto",
                   help="exact: all storylines weighted by their probability (when V^(k+1) <= 65536); samples: sampled")
    p.add_argument("--max-states", type=positive_int, default=50_000, help="state budget of the exact visit law")
    p.add_argument("--max-work", type=positive_int, help="budget of operations of EM (components x restarts x "
                   "storylines, worst case) and of the columns (--length); default 10^11, about five minutes")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB",
                   help="memory budget (default: the scenario's run.max_memory_gib, 8)")
    p.add_argument("--compare", action="append", metavar="FILE", help="a decomposition of the same mu to add to the table")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override any scalar of the scenario")
    p.add_argument("--out", help="output directory (must not exist); default runs/decompose-NAME-TIMESTAMP, none with --json")
    p.add_argument("--json", action="store_true", help="print only the report JSON (no directory unless --out is given)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr (it is shown only when stderr is a "
                   "terminal; --json implies --quiet)")
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("plot", help="redraw the plots of a run, analysis or sweep directory")
    p.add_argument("directory")
    figure_options(p)
    p.add_argument("--format", choices=FORMATS, default="png", help="file format of the figures (default png)")
    p.add_argument("--dpi", type=positive_int, help="resolution of png figures (default 150)")
    p.add_argument("--window", type=step_window, metavar="START:END",
                   help="a run's rasters: steps START <= t < END (either may be left out); default: see docs/outputs.md")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("clean", help="remove what stopped processes left behind (.NAME.partial-PID "
                       "directories, .FILE.tmp-PID files, unheld lock files) under a directory")
    p.add_argument("directory")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("validate", help="check a scenario file")
    p.add_argument("file")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB", help="memory budget of a run (default 8)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("app", help="open an interactive page (Mesa SolaraViz) for a scenario")
    p.add_argument("file")
    p.add_argument("--port", type=port_number, default=8765, help="TCP port, 1 to 65535 (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("train", help="train a transformer or n-gram model from a training spec (TOML)")
    p.add_argument("spec", help="training spec, e.g. scenarios/models/babygpt.train.toml")
    p.add_argument("--out", help="model file to write (.npz); default: the spec's 'out'")
    p.add_argument("--table", help="also write every context's law as a CSV table; default: the spec's 'table'")
    p.add_argument("--seed", type=int, help="override training.seed")
    p.add_argument("--steps", type=positive_int, help="override training.steps")
    p.add_argument("--replace", action="store_true", help="replace an existing model (and table) file; without it, "
                   "an existing file is refused before training")
    p.add_argument("--max-memory", type=positive_float, metavar="GIB", default=TRAIN_MAX_MEMORY,
                   help=f"memory budget of training (default {TRAIN_MAX_MEMORY:g}): weights, AdamW moments, "
                   "one batch's activations, the table")
    p.add_argument("--max-work", type=positive_float, metavar="OPS", default=TRAIN_MAX_WORK,
                   help=f"operations budget of training (default {TRAIN_MAX_WORK:.0e}; see docs/models.md)")
    p.add_argument("--json", action="store_true", help="print only a JSON summary (the model file is still written)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no loss lines on stderr (the bar is shown "
                   "only when stderr is a terminal; --json implies --quiet)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. SIGTERM is handled like Ctrl-C (SIGINT): the command stops, removes what
    it had half-written, and exits with 128 + the signal's number.

    From the command line (``argv`` None) the process then ends at once, after flushing stdout
    and stderr and running the ``atexit`` handlers: the interpreter's tear-down (freeing every
    object of numba, pandas and the rest, one by one) costs a small run 0.2-0.4 s of CPU, a third
    of its start-up (``benchmarks/bench_startup.py``), and does nothing a finished command needs:
    every file a command writes is closed when it returns (``io.safe`` writes atomically) and its
    worker processes have been stopped. A process watched by a profiler, tracer or coverage tool
    (:func:`_watched`) ends the normal way, so that the tool writes what it measured (an
    interrupted one still ends at once)."""
    status = _main(argv)
    if argv is None and (status > 128 or not _watched()):
        import atexit

        try:
            sys.stdout.flush()
        except BrokenPipeError:  # its reader left after the last write: as in _main, stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            status = SIGPIPE_STATUS
        sys.stderr.flush()
        atexit._run_exitfuncs()  # what Python runs at exit, before the tear-down os._exit skips
        os._exit(status)
    return status


def _watched() -> bool:
    """Whether a tracer, profiler or coverage tool watches this process (``sys.settrace``,
    ``sys.setprofile`` or a ``sys.monitoring`` tool, as cProfile registers from Python 3.12)."""
    monitoring = getattr(sys, "monitoring", None)
    tools = monitoring is not None and any(monitoring.get_tool(i) is not None for i in range(6))
    return tools or sys.gettrace() is not None or sys.getprofile() is not None


def _main(argv: list[str] | None) -> int:
    from ecology.interrupts import Signals, exit_status
    from ecology.io import safe

    args = None
    try:
        with Signals(raising=True):
            args = build_parser().parse_args(argv)
            return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        name = str(err) or "SIGINT"
        print(f"error: interrupted by {name}; nothing was written half-way", file=sys.stderr)
        return exit_status(name)
    except MemoryError:
        exact = getattr(args, "func", None) is cmd_analyze or getattr(args, "exact", False)
        lower = "--max-states or context.length" if exact else "run.replicates, context.length or run.steps"
        print(f"error: out of memory (the machine has less free memory than the --max-memory budget, default 8 GiB, "
              f"assumed); lower {lower}, or --max-memory to what is free so that it is refused up front",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed by its reader (`| head`): what was computed is written; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes it
        return SIGPIPE_STATUS
    except OSError as err:  # an output that failed while writing (disk full, ...); nothing half-written stays
        print(f"error: {safe.describe_os_error(err)}", file=sys.stderr)
        return 2
    finally:
        safe.release()


if __name__ == "__main__":
    sys.exit(main())
