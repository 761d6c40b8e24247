"""One point of a sweep: its run, and the row of ``results.csv`` it yields (docs/outputs.md)."""

from __future__ import annotations

import math
from typing import Any

from ecology import results
from ecology.core.compile import compile_scenario
from ecology.core.mixture import acting_priors
from ecology.errors import UserError
from ecology.exact.chain import build_chain
from ecology.exact.report import analyze, criterion_figures
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
    Per premise and population entry ``E`` its acting prior, ``acting_prior_E`` (the written priors
    normalised to sum 1, :func:`ecology.core.mixture.acting_priors`). A point's ``acting`` (fixed
    ``weight``/``odds`` overrides) is applied after its parameters.
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
    if exact:
        row.update(exact_figures(scenario, max_states))
    return row


def exact_figures(scenario: Scenario, max_states: int) -> dict:
    """The exact chain's columns of a row (``exact_note`` says why when it is out of reach): the
    chain's size, expected time to a closed class and closed classes (:func:`ecology.exact.report.analyze`),
    and per criterion :func:`ecology.exact.report.criterion_figures` over ``run.steps``, both
    computed on one page-state chain."""
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
        row[f"exact_class{i}_probability"] = c["probability"]
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
    return row
