"""Running a scenario and what a run leaves behind: tables, ``summary.json``, plots.

A run directory holds

- ``summary.json``: scenario name, steps, replicates, seed; per absorption criterion the
  fraction of replicates absorbed, the mean and median absorption time over absorbed
  replicates and the ``curve`` (``steps + 1`` entries: fraction absorbed at or before step t,
  step 0 being the initial window); per population label the final amplitude (mean, 10% and 90%
  quantiles over replicates);
- ``steps.csv``: one row per step (the DataCollector's table);
- ``replicates.csv``: one row per replicate: absorption step per criterion (empty if never)
  and final amplitude per population;
- ``scenario.toml``: the resolved scenario (overrides applied);
- ``raster.csv``: the window of the replicate shown in the raster plot, one row per step;
- the plots of :mod:`ecology.plots`.

Directories are written under a temporary name and renamed into place when complete, so a
run directory either holds everything or does not exist; an existing directory is never
overwritten.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

from .model import RASTER_REPLICATES, EcologyModel
from . import outputs
from .outputs import write_atomically  # noqa: F401  (used by cli)
from .scenario import Scenario, to_table


@dataclass
class RunResult:
    scenario: Scenario
    tokens: list[str]
    steps: pd.DataFrame
    absorbed_at: dict[str, np.ndarray]  # criterion -> (R,) first step it held, -1 if never
    final_amplitudes: dict[str, np.ndarray]  # label -> (R,)
    raster: np.ndarray  # (steps + 1, k) windows of one replicate
    raster_replicate: int
    seconds: float


def simulate(scenario: Scenario, progress: bool = False) -> RunResult:
    """Run all replicates of a scenario for ``run.steps`` steps."""
    began = time.perf_counter()
    model = EcologyModel(scenario)
    if progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"{scenario.name}", total=model.n_steps)
            while model.running:
                model.step()
                bar.advance(task)
    else:
        while model.running:
            model.step()
    absorbed = {c.name: model.absorbed_at[i] for i, c in enumerate(model.criteria)}
    finals = {label: model.population[:, j] for j, label in enumerate(model.mixture.labels)}
    raster = np.stack(model.raster)
    chosen = pick_raster_replicate(next(iter(absorbed.values()), None))
    return RunResult(
        scenario, model.compiled.tokens, model.datacollector.get_model_vars_dataframe().rename_axis("step"),
        absorbed, finals, raster[:, chosen], chosen, time.perf_counter() - began,
    )


def pick_raster_replicate(absorbed_at: np.ndarray | None) -> int:
    """Among the recorded replicates, the one absorbed closest to their median time (else 0)."""
    if absorbed_at is None:
        return 0
    times = absorbed_at[:RASTER_REPLICATES]
    hit = np.flatnonzero(times >= 0)
    if not len(hit):
        return 0
    return int(hit[np.argmin(np.abs(times[hit] - np.median(times[hit])))])


def absorption_stats(absorbed_at: np.ndarray, steps: int) -> dict:
    """Fraction absorbed, mean/median time over absorbed replicates, and the curve."""
    hit = absorbed_at[absorbed_at >= 0]
    counts = np.bincount(hit, minlength=steps + 1)[: steps + 1]
    return {
        "fraction": float(len(hit) / len(absorbed_at)),
        "time_mean": float(hit.mean()) if len(hit) else None,
        "time_median": float(np.median(hit)) if len(hit) else None,
        "curve": (np.cumsum(counts) / len(absorbed_at)).tolist(),
    }


def summarize(result: RunResult) -> dict:
    s = result.scenario
    last = result.steps.iloc[-1]
    return {
        "scenario": s.name,
        "steps": s.run.steps,
        "replicates": s.run.replicates,
        "seed": s.run.seed,
        "seconds": round(result.seconds, 3),
        "raster_replicate": result.raster_replicate,
        "absorption": {name: absorption_stats(at, s.run.steps) for name, at in result.absorbed_at.items()},
        "populations": {
            label: {
                "amplitude_final_mean": float(a.mean()),
                "amplitude_final_q10": float(np.quantile(a, 0.1)),
                "amplitude_final_q90": float(np.quantile(a, 0.9)),
            }
            for label, a in result.final_amplitudes.items()
        },
        "final": {key: _number(last[key]) for key in ("entropy", "surprisal", "free_energy")},
    }


def _number(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def replicate_table(result: RunResult) -> pd.DataFrame:
    table = pd.DataFrame(index=pd.RangeIndex(result.scenario.run.replicates, name="replicate"))
    for name, at in result.absorbed_at.items():
        table[f"absorbed_step_{name}"] = pd.Series(at, dtype="Int64").mask(at < 0)
    for label, a in result.final_amplitudes.items():
        table[f"amplitude_{label}"] = a
    return table


def fresh_directory(out: str | Path | None, name: str, root: str | Path = "runs") -> Path:
    """The directory a run will be written to, checked (it must not exist; type, name length,
    writability of its location) and claimed for this process before anything is computed, so
    a second process aiming at it is refused at once (:mod:`ecology.outputs`)."""
    if out is not None:
        return outputs.claim(Path(out))
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = base, 1
    while True:
        if not os.path.lexists(target):
            try:
                return outputs.claim(target)
            except outputs.Busy:  # another run chose the same name this second
                pass
        n += 1
        target = base.with_name(f"{base.name}-{n}")


def write_run(result: RunResult, target: Path, summary: dict, exact_curves: dict | None = None) -> Path:
    from . import plots

    def fill(d: Path) -> None:
        (d / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        result.steps.to_csv(d / "steps.csv")
        replicate_table(result).to_csv(d / "replicates.csv")
        (d / "scenario.toml").write_text(tomli_w.dumps(to_table(result.scenario)))
        raster = pd.DataFrame(result.raster, columns=[f"pos{i}" for i in range(result.raster.shape[1])])
        raster.rename_axis("step").to_csv(d / "raster.csv")
        plots.run_plots(d, summary, result.steps, result.raster, result.tokens,
                        result.scenario.vocabulary.pad, result.raster_replicate, exact_curves)

    return write_atomically(target, fill)
