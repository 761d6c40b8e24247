"""The Python API in one call: ``run(scenario, exact=False, **overrides)`` simulates a scenario
(and, with ``exact=True``, computes the exact chain's criterion figures beside it) and returns a
:class:`RunOutcome` whose ``write(directory)`` leaves the run directory ``ecology run`` writes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ecology.core.budget import DEFAULT_MAX_STATES
from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError
from ecology.exact.ledger import attach_exact_ledger
from ecology.exact.report import criterion_figures
from ecology.io import artefacts
from ecology.io.safe import fresh_directory
from ecology.model import resolve
from ecology.results import (
    RunResult,
    premise_table,
    replicate_table,
    summarize,
)
from ecology.scenario import Scenario
from ecology.sweep.shards import simulate_with


def _type_name(value) -> str:
    return "None" if value is None else type(value).__name__


def check_path(function: str, name: str, value, optional: bool = False) -> None:
    """Refuse (TypeError naming the function and the argument) a value that is not a path."""
    if not (isinstance(value, (str, os.PathLike)) or (optional and value is None)):
        accepts = "a path (str or os.PathLike)" + (" or None" if optional else "")
        raise TypeError(f"{function}: {name} must be {accepts}, got {_type_name(value)}")


def check_scenario(function: str, scenario) -> None:
    """A scenario argument is a path to a TOML file or a :class:`Scenario`."""
    if not isinstance(scenario, (str, os.PathLike, Scenario)):
        raise TypeError(f"{function}: scenario must be a path to a scenario file (str or os.PathLike) or an "
                        f"ecology.scenario.Scenario, got {_type_name(scenario)}")


def check_flag(function: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{function}: {name} must be True or False, got {_type_name(value)}")


def check_count(function: str, name: str, value) -> None:
    """A positive integer (not a bool): TypeError for another type, ScenarioError for a value below 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{function}: {name} must be an int, got {_type_name(value)}")
    if value < 1:
        raise ScenarioError(name, f"must be a positive integer, got {value}")


@dataclass
class RunOutcome:
    """What :func:`ecology.run` returns: the summary and the run's tables as DataFrames.

    - ``summary``: the dict written to ``summary.json``;
    - ``steps``: one row per step (``steps.csv``); ``replicates``: one row per replicate;
      ``premises``: one row per premise (prior, drawn parameter, final amplitude);
    - ``criteria``: one row per criterion: reached (with interval, censored count, restricted
      mean, median) and holding at the end, and the exact figures when asked for;
    - ``result``: the :class:`RunResult` (arrays); :meth:`save` writes a run directory.
    """

    result: RunResult = field(repr=False)
    summary: dict = field(repr=False)

    REPR_CRITERIA = 4  # criteria named in the repr; the others counted

    def __repr__(self) -> str:
        """One line: the run's size and, per criterion, the fraction reached by the horizon with its
        95% Wilson interval (the numbers ``summary.json`` holds)."""
        s = self.summary
        parts = [f"'{name}' reached {c['reached']:.4f} [{c['reached_lo']:.4f}, {c['reached_hi']:.4f}] by step {c['horizon']}"
                 for name, c in list(s["criteria"].items())[: self.REPR_CRITERIA]]
        more = len(s["criteria"]) - self.REPR_CRITERIA
        if more > 0:
            parts.append(f"{more} more")
        criteria = "; ".join(parts) or "no criteria"
        return (f"<RunOutcome of '{s['scenario']}': {s['replicates']:,} replicates x {s['steps']:,} steps "
                f"({s['engine']} engine, {s['seconds']} s); {criteria}; tables: .steps .replicates .premises "
                f".criteria; .save(out)>")

    @property
    def steps(self) -> pd.DataFrame:
        return self.result.steps

    @property
    def replicates(self) -> pd.DataFrame:
        return replicate_table(self.result)

    @property
    def premises(self) -> pd.DataFrame:
        return premise_table(self.result)

    @property
    def criteria(self) -> pd.DataFrame:
        rows = {}
        for name, c in self.summary["criteria"].items():
            row = {k: v for k, v in c.items() if not isinstance(v, (list, dict))}
            row.update({f"exact_{k}": v for k, v in c.get("exact", {}).items() if not isinstance(v, list)})
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("criterion")

    def save(self, out: str | Path | None = None) -> Path:
        """Write the run directory (``out`` must not exist; default ``runs/NAME-TIMESTAMP``)."""
        check_path("RunOutcome.save", "out", out, optional=True)
        target = fresh_directory(out, self.summary["scenario"])
        return artefacts.write_run(self.result, target, {**self.summary, "output": str(target)})


def run(scenario, exact: bool = False, max_states: int = DEFAULT_MAX_STATES, workers: int | None = None,
        scheduler: str | None = None, **overrides) -> RunOutcome:
    """Simulate a scenario (a path or a :class:`Scenario`) and summarise it; see :func:`ecology.run`. The
    replicate shards run on ``workers`` processes or a Dask ``scheduler`` (:func:`ecology.sweep.shards.simulate_with`;
    default: all cores for a large run), with the same numbers whatever they are.
    Arguments of the wrong type are a TypeError naming them, before anything is read; values are
    checked by the scenario's validation (one-line :class:`ScenarioError`)."""
    check_scenario("ecology.run", scenario)
    check_flag("ecology.run", "exact", exact)
    check_count("ecology.run", "max_states", max_states)
    if workers is not None:
        check_count("ecology.run", "workers", workers)
    if not (scheduler is None or isinstance(scheduler, str)):
        raise TypeError(f"ecology.run: scheduler must be a str ('tcp://HOST:PORT' or 'local') or None, "
                        f"got {_type_name(scheduler)}")
    paths = {key.replace("__", "."): value for key, value in overrides.items()}
    for short in ("steps", "replicates", "seed"):
        if short in paths:
            paths[f"run.{short}"] = paths.pop(short)
    s = resolve(scenario, paths)
    result = simulate_with(s, workers, scheduler)
    summary = summarize(result)
    if exact:
        for name, figures in criterion_figures(compile_scenario(s), max_states).items():
            summary["criteria"][name]["exact"] = figures
        attach_exact_ledger(summary["ledger"], compile_scenario(s), max_states)
    return RunOutcome(result, summary)
