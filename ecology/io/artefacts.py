"""Run and analysis directories: what they hold, written and read back through :mod:`ecology.io.safe`.

A run directory (:func:`write_run`) holds ``summary.json``, ``steps.csv``, ``replicates.csv``,
``premises.csv``, ``scenario.toml``, ``raster.csv``, ``trajectories.csv``, ``speakers.csv`` and the
figures of :mod:`ecology.plots`; an analysis directory (:func:`write_analysis`) holds the report's
JSON and, for chains of at most ``NETWORK_LIMIT`` states, the transition network. Both are
written under a temporary name and renamed into place when complete; ``ecology plot DIR``
redraws the figures from the files alone (:func:`read_run`, :func:`read_analysis`). Every file is
documented in ``docs/outputs.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
from ecology.errors import UnreadableDirectory, UsageError
from ecology.io.safe import write_atomically

NETWORK_LIMIT = 64  # an analysis keeps (and draws) the transition network of chains up to this size


@dataclass
class RunFiles:
    """What a run directory holds that its plots are drawn from."""

    summary: dict
    steps: pd.DataFrame
    raster: np.ndarray
    trajectories: pd.DataFrame
    speakers: pd.DataFrame
    tokens: list[str]
    pad: str


def write_run(result, target: Path, summary: dict) -> Path:
    """A run directory (:class:`ecology.results.RunResult`): ``summary.json``, ``steps.csv``,
    ``replicates.csv``, ``premises.csv``, the resolved ``scenario.toml``, ``raster.csv``,
    ``trajectories.csv``, ``speakers.csv``, ``transcripts.txt`` (a model with a tokenizer) and the
    plots; written atomically."""
    import pandas as pd

    from ecology import plots
    from ecology.results import premise_table, replicate_table, resolved_toml, speaker_table, trajectory_table, transcripts

    def fill(d: Path) -> None:
        (d / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        result.steps.to_csv(d / "steps.csv")
        replicate_table(result).to_csv(d / "replicates.csv")
        premise_table(result).to_csv(d / "premises.csv", index=False)
        (d / "scenario.toml").write_text(resolved_toml(result.scenario, result.premises, result.priors))
        raster = pd.DataFrame(result.raster, columns=[f"pos{i}" for i in range(result.raster.shape[1])])
        raster.rename_axis("step").to_csv(d / "raster.csv")
        trajectory_table(result).to_csv(d / "trajectories.csv", index=False)
        speaker_table(result).to_csv(d / "speakers.csv", index=False)
        text = transcripts(result)
        if text is not None:
            (d / "transcripts.txt").write_text(text, encoding="utf-8")
        plots.run_plots(d, summary, result.steps, result.raster, result.tokens, result.scenario.vocabulary.pad,
                        result.raster_replicate, trajectory_table(result), speaker_table(result))

    return write_atomically(target, fill)


def read_run(directory: Path) -> RunFiles:
    """Read back a run directory (``summary.json``, ``scenario.toml`` and the tables)."""
    import pandas as pd

    from ecology.scenario import read_toml

    try:
        summary = json.loads((directory / "summary.json").read_bytes())
        if "criteria" not in summary:
            raise UnreadableDirectory(f"{directory}: written by an older version (no 'criteria' in summary.json); "
                                      "run it again")
        vocabulary = read_toml(directory / "scenario.toml")["vocabulary"]
        return RunFiles(summary, pd.read_csv(directory / "steps.csv", index_col="step"),
                        pd.read_csv(directory / "raster.csv", index_col="step").to_numpy(),
                        pd.read_csv(directory / "trajectories.csv"),
                        pd.read_csv(directory / "speakers.csv", keep_default_na=False),
                        vocabulary["tokens"], vocabulary.get("pad", "N"))
    except (ValueError, KeyError, TypeError, AttributeError, OSError, pd.errors.ParserError) as err:
        raise UnreadableDirectory(f"{directory}: not a readable run directory ({type(err).__name__}: {err})") from None


def check_window(run: RunFiles, window: tuple[int | None, int | None] | None) -> tuple[int, int] | None:
    """``--window START:END`` of ``ecology plot`` against the run's steps ``0 .. N``: the steps
    ``START <= t < END`` (a missing START is 0, a missing END is N + 1), or None when not given;
    a window outside the run is a :class:`ecology.errors.UsageError`."""
    if window is None:
        return None
    steps = len(run.raster) - 1
    start, end = window[0] or 0, steps + 1 if window[1] is None else window[1]
    if start > steps or end > steps + 1 or start >= end:
        raise UsageError(f"--window {'' if window[0] is None else window[0]}:{'' if window[1] is None else window[1]}: "
                         f"the run has steps 0 .. {steps}; give 0 <= START < END <= {steps + 1}")
    return start, end


def draw_run(directory: Path, run: RunFiles, window: tuple[int, int] | None = None, ext: str = "png",
             dpi: int | None = None) -> list[Path]:
    """The plots of a run (:func:`ecology.plots.run_plots`) from what its directory holds, the
    rasters over ``window`` (steps ``START <= t < END``; default :func:`ecology.plots.raster_window`)."""
    from ecology import plots

    return plots.run_plots(directory, run.summary, run.steps, run.raster, run.tokens, run.pad,
                           run.summary.get("raster_replicate", 0), run.trajectories, run.speakers, window, ext,
                           dpi or plots.DPI)


def write_analysis(target: Path, report, chain) -> Path:
    """An ``analyze --out`` directory: ``report.json`` (:meth:`ecology.exact.report.Report.to_json`),
    ``network.npz`` (the transition matrix ``P`` and the state labels, for chains of at most
    :data:`NETWORK_LIMIT` states) and the plots of :func:`draw_analysis`; written atomically."""

    def fill(d: Path) -> None:
        (d / "report.json").write_text(report.to_json(indent=2) + "\n")
        network = None
        if chain.chain.n_states <= NETWORK_LIMIT:
            network = (chain.chain.P.toarray(), np.array(chain.labels(), dtype=str))
            with (d / "network.npz").open("wb") as handle:
                np.savez(handle, P=network[0], labels=network[1])
        draw_analysis(d, report.to_dict(), network)

    return write_atomically(target, fill)


def read_analysis(directory: Path) -> tuple[dict, tuple[np.ndarray, np.ndarray] | None]:
    """Read back an analysis directory: the report and, if kept, the network ``(P, labels)``."""
    try:
        report = json.loads((directory / "report.json").read_bytes())
        for key in ("scenario", "eigenvalues_complex", "closed_classes"):
            if key not in report:
                raise KeyError(key)
        network = None
        if (directory / "network.npz").is_file():
            with np.load(directory / "network.npz", allow_pickle=False) as data:
                network = (data["P"], data["labels"])
        return report, network
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise UnreadableDirectory(f"{directory}: not a readable analysis directory ({type(err).__name__}: {err})") \
            from None


def draw_analysis(directory: Path, report: dict, network: tuple[np.ndarray, np.ndarray] | None, ext: str = "png",
                  dpi: int | None = None) -> list[Path]:
    """``eigenvalues``, ``stationary``, ``curves`` (with a horizon) and ``network`` (small chains)
    of an analysis report, in format ``ext`` (``.png`` unless told)."""
    import scipy.sparse as sp

    from ecology import plots

    name = report["scenario"]
    written = [directory / f"eigenvalues.{ext}", directory / f"stationary.{ext}"]
    plots.eigenvalue_plane(report["eigenvalues_complex"], name, written[0], dpi or plots.DPI)
    plots.stationary_mass(report["closed_classes"], name, written[1], dpi or plots.DPI)
    if report.get("curves") is not None:
        written.append(directory / f"curves.{ext}")
        plots.exact_curves(report["curves"], name, written[-1], dpi or plots.DPI)
    if network is not None:
        written.append(directory / f"network.{ext}")
        plots.transition_network(sp.csr_matrix(network[0]), [str(x) for x in network[1]], name, written[-1],
                                 *([dpi] if dpi else []))
    return written
