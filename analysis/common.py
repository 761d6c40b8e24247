"""Shared helpers of the studies: scenarios from `scenarios/` with overrides, runs through the
Python API, figures with labelled axes, and the record each study returns to the report.

Every simulated headline figure is printed with its 95% interval (:func:`proportion`,
:func:`interval`, from :mod:`ecology.statistics`); exact figures are printed as they are."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain
from ecology.exact.report import analyze
from ecology.model import EcologyModel
from ecology.plots import PAPER
from ecology.scenario import apply_overrides, read_scenario_table, validate
from ecology.statistics import time_to_event, wilson  # noqa: F401

# Every study's figures in the paper style, however the study is run (before the layers, importing
# ecology.plots set it for the whole process, so it depended on which study had imported it first).
plt.rcParams.update(PAPER)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass
class Study:
    """What a study hands to the report: a finding in one sentence, figures, a table."""

    number: int
    title: str
    finding: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file name, caption)
    table: list[dict] = field(default_factory=list)
    notes: str = ""


def scenario(name: str, **overrides):
    """A shipped scenario with dotted-path overrides (``context__length=4`` or a dict)."""
    table = read_scenario_table(SCENARIOS / f"{name}.toml")
    return validate(apply_overrides(table, {k.replace("__", "."): v for k, v in overrides.items()}))


def from_table(table: dict):
    return validate(copy.deepcopy(table))


def simulate(s):
    """Run a scenario; returns the model (agents, reached_at) and its per-step table."""
    model = EcologyModel(s)
    model.run_model()
    return model, model.datacollector.get_model_vars_dataframe()


def chain(s, max_states: int = 400_000):
    compiled = compile_scenario(s)
    return compiled, build_chain(compiled, max_states)


def report(s, **kwargs) -> dict:
    compiled, pc = chain(s)
    return analyze(compiled, chain=pc, **kwargs)


def figure(out: Path, name: str, draw, size=(7, 4.2)) -> str:
    fig, ax = plt.subplots(figsize=size)
    draw(fig, ax)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "∞" if x is not None and np.isinf(x) else "—"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def interval(value, lo, hi, digits: int = 3) -> str:
    """``value [lo, hi]``: a figure with its 95% interval."""
    return f"{fmt(value, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def proportion(fraction: float, n: int, digits: int = 3) -> str:
    """A sample fraction over ``n`` replicates with its 95% Wilson interval."""
    lo, hi = wilson(round(fraction * n), n)
    return interval(float(fraction), lo, hi, digits)


def markdown_table(rows: list[dict]) -> str:
    """A markdown table whose columns are the union of every row's keys (in first-seen order)."""
    if not rows:
        return ""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"
