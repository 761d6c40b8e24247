"""One point of a sweep: its run, and the row of ``results.csv`` it yields (docs/outputs.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ecology import results
from ecology.core.compile import compile_scenario
from ecology.core.mixture import acting_priors
from ecology.errors import UserError
from ecology.scenario import Scenario, apply_overrides, validate


def run_point(base: dict, point: dict, exact: bool, max_states: int) -> dict:
    """Run one grid point; returns its row (parameters first, then figures).

    ``engine`` is the engine that ran the point (``compiled``, or ``numpy`` where asked for or
    where the compiled one cannot run it). Per criterion ``C`` (columns ``C_...``, see
    docs/outputs.md): :func:`ecology.results.reaching_figures`, i.e. the time-to-event figures of
    :func:`ecology.statistics.time_to_event` (reached by the horizon with its Wilson interval,
    censored count, restricted mean ``E[min(T, N)]`` with its interval, median with its interval
    when the KM curve crosses 1/2, the mean given reached), the fraction holding at the end with
    its interval and, with ``exact``, the exact chain's ``E[T]``, P(reached by N), restricted mean
    and whether the set is closed (:func:`exact_figures`). Per population the final mean amplitude.
    Per criterion and named set ``S`` the time spent in its set (``S_occupation_...``,
    :func:`occupation_columns`) and, with ``exact``, the exact chain's (``S_exact_occupation_...``)
    and its loops (``exact_loop...``, :func:`exact_figures`). Per premise and population entry ``E``
    its acting prior, ``acting_prior_E`` (the written priors normalised to sum 1,
    :func:`ecology.core.mixture.acting_priors`). A point's ``acting`` (fixed ``weight``/``odds``
    overrides) is applied after its parameters.
    """
    scenario = validate(apply_overrides(base, {**point["params"], **point.get("acting", {}), "run.seed": point["seed"]}))
    result = results.simulate(scenario)
    row: dict[str, Any] = {"point": point["index"], **point["params"], "seed": point["seed"], "engine": result.engine}
    row.update({f"acting_prior_{entry.split('.', 1)[1]}": p["acting"] for entry, p in acting_priors(scenario).items()})
    steps = scenario.run.steps
    for name, at in result.reached_at.items():
        figures = results.reaching_figures(at, result.holding_final[name], steps)
        row.update({f"{name}_{k}": v for k, v in figures.items() if k not in ("n", "horizon")})
    for label, amplitude in result.final_amplitudes.items():
        row[f"{label}_amplitude_final_mean"] = float(amplitude.mean())
    for name, counts in result.occupation.items():
        row.update(occupation_columns(name, results.occupation_summary(counts, steps)))
    if exact:
        row.update(exact_figures(scenario, max_states))
    return row


SIMULATED_OCCUPATION = ("fraction", "visits", "mean_stay", "mean_time_between_entries")


def occupation_columns(name: str, summary: dict) -> dict:
    """The simulated occupation columns of set ``name`` from :func:`ecology.results.occupation_summary`:
    ``fraction`` of the steps ``0 .. N`` in the set, ``visits``, ``mean_stay`` per visit (the
    censoring-aware ratio estimator) and ``mean_time_between_entries``, each with its 95% interval
    (``_lo``, ``_hi``; empty where the estimate is null: no visit ended, nothing entered), and
    ``open_at_horizon``, the replicates whose visit is still in progress at ``N`` (right-censored)."""
    row = {f"{name}_occupation_{key}{end}": math.nan if summary[key + end] is None else summary[key + end]
           for key in SIMULATED_OCCUPATION for end in ("", "_lo", "_hi")}
    row[f"{name}_occupation_open_at_horizon"] = summary["open_at_horizon"]
    return row


def stationary_occupation(classes: list[dict]) -> dict:
    """The long-run stay per visit and time between entries of a set, pooled over the closed classes
    ``C`` the chain may end in (``p_C = P(end in C) > 0``), from each class's stationary mass
    ``m_C = pi_C(A)`` and entry flux ``f_C`` (:func:`ecology.exact.report.occupation_report`):
    ``mean_stay = sum_C p_C m_C / sum_C p_C f_C`` and ``mean_time_between_entries = 1 / sum_C p_C f_C``,
    where no class keeps the chain in the set for ever the limits as ``N`` grows of the simulation's
    pooled estimators (steps in the set per exit, ``R N`` per entry, over all replicates); with one
    closed class, ``pi(A) / flux`` and Kac's ``1 / flux``. ``mean_stay`` is ``inf`` where a class
    that may be entered keeps the chain in the set for ever (``m_C > 0 = f_C``), NaN where the set
    is never visited in the long run (no visit to measure); ``mean_time_between_entries`` is ``inf``
    where nothing enters in the long run. Both are NaN where a class that may be entered has a
    stationary law that is not trusted, or where the ratio is beyond a double."""
    entered = [c for c in classes if c["probability"] > 0]
    if any(c["mass"] is None or c["flux"] is None for c in entered):
        return {"mean_stay": math.nan, "mean_time_between_entries": math.nan}
    mass = sum(c["probability"] * c["mass"] for c in entered)
    flux = sum(c["probability"] * c["flux"] for c in entered)
    if any(c["mass"] > 0 and c["flux"] == 0 for c in entered):
        stay = math.inf
    else:
        stay = math.nan if mass == 0 else _beyond_double_nan(mass, flux)
    return {"mean_stay": stay, "mean_time_between_entries": math.inf if flux == 0 else _beyond_double_nan(1.0, flux)}


def _beyond_double_nan(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` (``denominator > 0``); NaN where the ratio is beyond a double."""
    with np.errstate(over="ignore"):
        ratio = float(np.float64(numerator) / np.float64(denominator))
    return ratio if math.isfinite(ratio) else math.nan


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def exact_modules() -> tuple:
    """``build_chain``, ``analyze`` and ``criterion_figures``: the exact chain's modules (scipy's
    sparse matrices and graphs) are imported on first use, so that a sweep without ``--exact``
    does not load them; :func:`ecology.sweep.execute.execute` calls this before its workers fork
    when the plan is exact, so that they inherit them instead of each importing them."""
    from ecology.exact.chain import build_chain
    from ecology.exact.report import analyze, criterion_figures

    return build_chain, analyze, criterion_figures


def exact_figures(scenario: Scenario, max_states: int) -> dict:
    """The exact chain's columns of a row (``exact_note`` says why when it is out of reach): the
    chain's size, expected time to a closed class and closed classes (:func:`ecology.exact.report.analyze`),
    and per criterion :func:`ecology.exact.report.criterion_figures` over ``run.steps``, both
    computed on one page-state chain; per criterion and named set ``S`` its occupation over
    ``run.steps`` (the report's ``occupation``: ``fraction``, ``visits``, ``mean_stay_within``,
    ``mean_time_between_entries_within``, ``long_run_fraction``) and in the long run
    (:func:`stationary_occupation`); the loops: how many cycles the most likely successor map has
    (``exact_loops``) and the most likely one's page-states, length, lap probability and leak per
    step (:func:`ecology.exact.report.loops_report`)."""
    build_chain, analyze, criterion_figures = exact_modules()
    try:
        compiled = compile_scenario(scenario)
        chain = build_chain(compiled, max_states)
        report = analyze(compiled, max_states, chain=chain)
        criteria = criterion_figures(compiled, max_states, chain=chain)
    except UserError as err:
        return {"exact_note": str(err)}
    absorption = report["expected_absorption_time"]
    row = {"exact_n_states": report["n_states"],
           "exact_expected_absorption_time": math.nan if absorption is None else absorption}
    for i, c in enumerate(report["closed_classes"]):
        row[f"exact_class{i}"] = c["absorbing_state"] or f"{c['size']} states, period {c['period']}"
        row[f"exact_class{i}_probability"] = _nan(c["probability"])  # None: not computed (the report's notes)
    for name, c in criteria.items():
        expected = c["expected_hitting_time"]
        if c.get("expected_hitting_time_note"):  # not computed: left empty, never an infinite time
            expected = math.nan
        if c.get("expected_hitting_time_overflow"):  # beyond a double: left empty, its log10 beside it
            expected = math.nan
        row[f"{name}_exact_expected_hitting_time"] = math.inf if expected is None else expected
        if c.get("expected_hitting_time_overflow"):
            row[f"{name}_exact_expected_hitting_time_log10"] = c["expected_hitting_time_log10"]
        row[f"{name}_exact_reached_by_horizon"] = c["reached_by_horizon"]
        row[f"{name}_exact_restricted_mean"] = c["restricted_mean"]
        row[f"{name}_exact_closed"] = c["closed"]
    for name, o in report["occupation"].items() if report.get("occupation") else ():
        if o is None:  # not computed: the report's notes say why; its cells stay empty
            continue
        row.update({f"{name}_exact_occupation_{key}": _nan(o[key]) for key in
                    ("fraction", "visits", "mean_stay_within", "mean_time_between_entries_within", "long_run_fraction")})
        row.update({f"{name}_exact_occupation_{key}": v for key, v in stationary_occupation(o["classes"]).items()})
    loops = report["loops"]
    if not loops["cycles"]:  # not computed: the report's notes say why
        return row
    likeliest = loops["cycles"][0]
    row.update({"exact_loops": loops["count"], "exact_loop_states": " -> ".join(likeliest["states"]),
                "exact_loop_length": likeliest["length"], "exact_loop_lap_probability": likeliest["lap_probability"],
                "exact_loop_leak_per_step": likeliest["leak_per_step"] + 0.0})  # + 0.0: a closed loop's -0.0 written as 0
    return row
