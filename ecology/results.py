"""Simulating a scenario and the tables and summary a run leaves behind.

A run directory holds (every column and key is documented in ``docs/outputs.md``)

- ``summary.json``: scenario name, steps, replicates, seed; the prior of every premise and
  population as written and as it acts (``priors``, :func:`ecology.core.mixture.acting_priors`); per criterion (``criteria``) the
  time-to-event figures of :func:`ecology.statistics.time_to_event` for *reached* (Kaplan–Meier
  curve of P(reached by t) with its 95% band, censored count, restricted mean time within the
  horizon, median only when the curve crosses 1/2) and the fraction *holding* at the last step
  with its Wilson interval; per criterion and named set (``occupation``) the time spent in its set
  (:func:`occupation_summary`); with ``--exact``, the exact chain's figures beside them (``exact``,
  :func:`ecology.exact.report.criterion_figures`: expected hitting time, P(reached by N),
  restricted mean, whether the set is closed); per
  population label and per premise the final amplitude (mean and quantiles over replicates),
  and for population members their drawn parameter and prior;
- ``steps.csv``: one row per step (the DataCollector's table);
- ``replicates.csv``: one row per replicate: first step each criterion held (empty if never),
  whether it holds at the end, the steps in each criterion's and set's set and its entries,
  final amplitude per population and per premise;
- ``premises.csv``: one row per premise: population, prior (acting) and as written, drawn parameter, final amplitude
  and the fraction of replicates in which it ends with the largest amplitude;
- ``scenario.toml``: the resolved scenario (overrides applied; population members listed in a
  comment);
- ``raster.csv`` (the window of the replicate shown in the raster plot, one row per step),
  ``trajectories.csv`` (population amplitudes of the first replicates per step) and
  ``speakers.csv`` (token printed and population most responsible, first replicates per step);
- the plots of :mod:`ecology.plots` (written by :mod:`ecology.io.artefacts`).

Directories are written under a temporary name and renamed into place when complete, so a
run directory either holds everything or does not exist; an existing directory is never
overwritten.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import tomli_w

from ecology.core.budget import check_run
from ecology.core.compile import compile_scenario
from ecology.core.mixture import acting_priors
from ecology.engine.base import LedgerState
from ecology.kinds import observables
from ecology.kinds.observables import FRACTION, MEAN, QUANTILES, SAME, Criteria
from ecology.model import RASTER_REPLICATES, EcologyModel
from ecology.numerics import SKETCH_LOWEST, sketch_error, sketch_quantiles
from ecology.progress import Progress, silent
from ecology.scenario import Scenario, to_table
from ecology.statistics import kaplan_meier, mean_interval, ratio_of_sums, time_to_event, wilson

SLICE_SECONDS = 0.5  # seconds of steps between two progress reports of a run


@dataclass
class RunResult:
    scenario: Scenario
    tokens: list[str]
    steps: pd.DataFrame
    reached_at: dict[str, np.ndarray]  # criterion -> (R,) first step it held, -1 if never
    holding_final: dict[str, np.ndarray]  # criterion -> (R,) whether it holds at the last step
    final_amplitudes: dict[str, np.ndarray]  # label -> (R,)
    premise_amplitudes: np.ndarray  # (R, S) final amplitude of every premise
    premises: list  # ecology.kinds.simulacra.Premise, in the mixture's order
    priors: np.ndarray  # (S,) normalised priors
    raster: np.ndarray  # (steps + 1, k) windows of one replicate
    raster_replicate: int
    trajectories: np.ndarray  # (steps + 1, RASTER_REPLICATES, labels) population amplitudes
    printed: np.ndarray  # (steps, RASTER_REPLICATES) token printed at each step
    speakers: np.ndarray  # (steps, RASTER_REPLICATES) population index most responsible for it
    premise_speakers: np.ndarray  # (steps, RASTER_REPLICATES) premise index most responsible for it
    seconds: float
    engine: str = "numpy"  # the engine that ran: "compiled" or "numpy" (ecology.engine.compiled)
    engine_note: str | None = None  # why the compiled engine was not used, when it was asked for
    # criterion or named set -> (R,) per replicate: "occupied" steps, "entries", "initial" and "final" holding
    occupation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    issued: np.ndarray | None = None  # (R, L) credit issued per population (the engines' credit)
    ledger: LedgerState | None = None  # each replicate's token ledger at the end
    shards: int = 1  # replicate shards the run was split into (shard_sizes)
    sketch_bits: int | None = None  # with several shards: bits per octave of the sketch its quantiles come from

    @property
    def labels(self) -> list[str]:
        return list(self.final_amplitudes)


SHARD_REPLICATES = 10_000  # replicates per shard at most: a run of R splits into ceil(R / 10,000) shards


def shard_sizes(replicates: int) -> list[int]:
    """The replicates of each shard of a run: ``n = ceil(R / SHARD_REPLICATES)`` shards, sizes as equal as
    possible (the first ``R mod n`` one larger). Fixed by ``R`` alone, so a run's numbers do not depend on how
    many workers or machines run its shards."""
    count = max(1, -(-replicates // SHARD_REPLICATES))
    base, extra = divmod(replicates, count)
    return [base + (i < extra) for i in range(count)]


def shard_seed(seed: int, index: int):
    """The seed of shard ``index``: shard 0 is seeded by ``run.seed`` itself (a run of one shard draws what it
    drew before shards existed), shard ``i >= 1`` by ``SeedSequence(seed, spawn_key=(i,))``, the ``i``-th child
    of ``SeedSequence(seed).spawn``: independent streams, each a function of the seed and the index alone."""
    return seed if index == 0 else np.random.SeedSequence(seed, spawn_key=(index,))


@dataclass
class Shard:
    """What one shard of a split run sends back to be merged (:func:`merge_shards`): its per-replicate arrays, its
    ``steps.csv`` with each column's merge rule (:func:`ecology.kinds.observables.merge_rules`), the amplitude
    sketch of every step (``(steps + 1, S + L, bins)`` uint16), and, from shard 0 only, the raster replicates'
    records (shard 0 holds replicates ``0 .. RASTER_REPLICATES - 1``)."""

    index: int
    result: RunResult  # scenario, premises and tokens left out (the merge has its own); the ledger without its ring
    rules: dict[str, tuple]
    sketch: np.ndarray
    extremes: np.ndarray  # (steps + 1, S + L, 2) smallest and largest amplitude of the shard's replicates


def simulate(scenario: Scenario, progress: Progress = silent) -> RunResult:
    """Run all replicates of a scenario for ``run.steps`` steps, in this process.

    The replicates are split into the shards of :func:`shard_sizes`; a run of one shard (up to
    :data:`SHARD_REPLICATES` replicates) is one model (:func:`run_model`), a larger one runs its shards one after
    the other (:func:`simulate_shard`) and merges them (:func:`merge_shards`): the same numbers as on any number of
    workers (:func:`ecology.sweep.shards.simulate_on`)."""
    sizes = shard_sizes(scenario.run.replicates)
    if len(sizes) == 1:
        return run_model(EcologyModel(scenario), progress)
    check_run(scenario)  # the whole run's budget, before any shard (each shard would pass its own)
    began = time.perf_counter()
    merge = ShardMerge(scenario)
    for index in range(len(sizes)):
        progress("replicate shards", index, len(sizes), f"{scenario.run.replicates:,} replicates in this process")
        merge.add(simulate_shard(scenario, index))
    progress("replicate shards", len(sizes), len(sizes), f"{scenario.run.replicates:,} replicates in this process")
    return merge.result(time.perf_counter() - began)


def run_model(model: EcologyModel, progress: Progress = silent) -> RunResult:
    """Run a model's remaining steps and gather its :class:`RunResult`.

    With a ``progress`` callback (:mod:`ecology.progress`) the steps are taken in slices sized to
    last about :data:`SLICE_SECONDS` each (from the last slice's time per step; each engine call
    costs milliseconds of set-up, so slices of 0.1 s would cost a run 10-20%), reporting
    ``("steps", done, run.steps, "R replicates, RATE replicate-steps/s")`` after each (RATE: the
    last slice's replicates times steps over its seconds); the trajectories are the same bit for
    bit (the engines' blocks are independent of their sizes). Without one (the default) the steps
    run in the engine's own blocks."""
    began = time.perf_counter()
    scenario = model.config
    if progress is silent:
        model.run_model()
    else:
        slice_ = 1
        progress("steps", 0, model.n_steps, f"{model.replicates:,} replicates")
        while model.running:
            before, started = model.generated, time.perf_counter()
            model.advance(min(slice_, model.n_steps - before))
            seconds = time.perf_counter() - started
            per_step = seconds / (model.generated - before)
            slice_ = max(1, int(SLICE_SECONDS / per_step)) if per_step > 0 else 2 * slice_
            rate = f"{model.replicates * (model.generated - before) / seconds:.3g}" if seconds > 0 else "--"
            progress("steps", model.generated, model.n_steps, f"{model.replicates:,} replicates, {rate} replicate-steps/s")
    reached = {c.name: model.reached_at[i] for i, c in enumerate(model.criteria)}
    holding = {c.name: model.holding[i].copy() for i, c in enumerate(model.criteria)}
    finals = {label: model.population[:, j] for j, label in enumerate(model.mixture.labels)}
    occ = model.engine.occupation
    occupation = {c.name: {"occupied": occ.occupied[i].copy(), "entries": occ.entries[i].copy(),
                           "initial": occ.initial[i].copy(), "final": model.holding[i].copy()}
                  for i, c in enumerate(model.compiled.tracked)}
    chosen = pick_raster_replicate(next(iter(reached.values()), None))
    raster = np.stack([windows[chosen] for windows in model.raster])  # the one replicate shown, not a copy of all
    shown = min(RASTER_REPLICATES, model.replicates)
    empty = np.zeros((0, shown), dtype=int)
    return RunResult(
        scenario, model.compiled.tokens, model.datacollector.get_model_vars_dataframe().rename_axis("step"),
        reached, holding, finals, model.amplitudes, model.compiled.premises, np.exp(model.mixture.log_prior),
        raster, chosen, np.stack(model.trajectories),
        np.stack(model.printed) if model.printed else empty, np.stack(model.speakers) if model.speakers else empty,
        np.stack(model.premise_speakers) if model.premise_speakers else empty, time.perf_counter() - began,
        model.engine.name, model.engine_note, occupation, model.credit, model.state.ledger,
    )


def simulate_shard(scenario: Scenario, index: int) -> Shard:
    """Shard ``index`` of the run (:func:`shard_sizes`, :func:`shard_seed`), with its amplitude sketch, as a
    worker sends it back: a module-level function of picklable arguments, so any executor can run it."""
    size = shard_sizes(scenario.run.replicates)[index]
    model = EcologyModel(scenario, rng=shard_seed(scenario.run.seed, index), replicates=size, sketch=True)
    result = run_model(model)
    rules = observables.merge_rules(model)
    sketch, extremes = np.stack(model.sketch), np.stack(model.extremes)
    result.scenario, result.premises, result.tokens = None, None, None  # the merge compiles its own
    result.ledger = result.ledger._replace(ring=result.ledger.ring[:, :, :0])  # only its sums are summarised
    result.sketch_bits = model.sketch_bits
    if index:  # only shard 0's raster replicates are shown
        result.raster, result.trajectories = result.raster[:0], result.trajectories[:0]
        result.printed, result.speakers, result.premise_speakers = (a[:0] for a in (result.printed, result.speakers,
                                                                                    result.premise_speakers))
    return Shard(index, result, rules, sketch, extremes)


def merge_shards(scenario: Scenario, parts: list[Shard], seconds: float) -> RunResult:
    """The run of all shards as one (:class:`ShardMerge`)."""
    merge = ShardMerge(scenario)
    for part in parts:
        merge.add(part)
    return merge.result(seconds)


class ShardMerge:
    """A split run's shards merged as they come back, in any order: each shard's sketch is added at once (a run of
    many shards holds one sketch, not one per shard) and the rest kept until :meth:`result`."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.count = len(shard_sizes(scenario.run.replicates))
        self.parts: dict[int, Shard] = {}
        self.counts = self.lowest = self.highest = None

    def add(self, part: Shard) -> None:
        if part.index in self.parts or not 0 <= part.index < self.count:
            raise ValueError(f"ShardMerge: shard {part.index} is not a missing shard of a run of {self.count}")
        counts = part.sketch.astype(np.int64)
        if self.counts is None:
            self.counts, self.lowest, self.highest = counts, part.extremes[..., 0].copy(), part.extremes[..., 1].copy()
        else:
            self.counts += counts
            np.minimum(self.lowest, part.extremes[..., 0], out=self.lowest)
            np.maximum(self.highest, part.extremes[..., 1], out=self.highest)
        self.parts[part.index] = replace(part, sketch=None, extremes=None)

    def result(self, seconds: float) -> RunResult:
        """The run of all shards as one: per-replicate arrays (first hitting times, holding, final amplitudes,
        occupation counts, credit, ledger) concatenated in shard order, so every statistic of them (Kaplan–Meier
        curves from the pooled event times, Wilson intervals from the pooled counts, quantiles of the final
        amplitudes) is exactly the one of the whole run; ``steps.csv`` merged column by column
        (:data:`ecology.kinds.observables.MEAN` ...: means weighted by replicates, fractions from the exact
        counts, per-step quantiles from the summed sketches, :func:`ecology.numerics.sketch_quantiles`); the
        raster replicates' records from shard 0. The order the shards came back in does not matter."""
        if len(self.parts) != self.count:
            raise ValueError(f"ShardMerge: {self.count - len(self.parts)} of {self.count} shards are missing")
        scenario = self.scenario
        parts = [self.parts[i] for i in range(self.count)]
        results = [part.result for part in parts]
        first = results[0]
        sizes = np.array(shard_sizes(scenario.run.replicates), dtype=float)  # replicates of each shard
        total = sizes.sum()
        quantiles = sketch_quantiles(self.counts, QUANTILES, first.sketch_bits, self.lowest, self.highest)  # (N+1, S+L, 3)
        columns = {}
        for column, rule in parts[0].rules.items():
            values = np.stack([r.steps[column].to_numpy(dtype=float) for r in results])
            if rule[0] == MEAN:
                columns[column] = (sizes[:, None] * values).sum(axis=0) / total
            elif rule[0] == FRACTION:
                columns[column] = np.round(sizes[:, None] * values).sum(axis=0) / total
            elif rule[0] == SAME:
                columns[column] = values[0]
            else:
                _, at, q = rule
                columns[column] = quantiles[:, at, q]
        steps = pd.DataFrame({c: columns[c] for c in first.steps.columns}, index=first.steps.index)

        def joined(get):
            return np.concatenate([get(r) for r in results])

        compiled = compile_scenario(scenario)
        ledger = LedgerState(*(joined(lambda r, f=f: getattr(r.ledger, f)) for f in LedgerState._fields))
        occupation = {name: {key: joined(lambda r, n=name, k=key: r.occupation[n][k]) for key in first.occupation[name]}
                      for name in first.occupation}
        reached = {name: joined(lambda r, n=name: r.reached_at[n]) for name in first.reached_at}
        return RunResult(
            scenario, compiled.tokens, steps, reached, {name: joined(lambda r, n=name: r.holding_final[n])
                                                        for name in first.holding_final},
            {label: joined(lambda r, lb=label: r.final_amplitudes[lb]) for label in first.final_amplitudes},
            joined(lambda r: r.premise_amplitudes), compiled.premises, np.exp(compiled.mixture.log_prior),
            first.raster, first.raster_replicate, first.trajectories, first.printed, first.speakers, first.premise_speakers,
            seconds, first.engine, first.engine_note, occupation, joined(lambda r: r.issued), ledger,
            shards=len(parts), sketch_bits=first.sketch_bits,
        )


def quantile_method(result: RunResult) -> dict:
    """How the per-step quantiles of ``steps.csv`` were computed: ``exact`` (one shard: ``np.quantile`` over the
    replicates) or from the merged amplitude sketch of several shards, with its bins per octave and the largest
    relative error of each order statistic in ``min(a, 1 - a)``."""
    if result.shards == 1:
        return {"method": "exact", "shards": 1}
    return {"method": "sketch", "shards": result.shards, "bins_per_octave": 2**result.sketch_bits,
            "relative_error": sketch_error(result.sketch_bits), "below": 2.0**-SKETCH_LOWEST,
            "note": "each order statistic within the relative error in min(a, 1 - a), or within 'below' of 0 or 1"}


def pick_raster_replicate(reached_at: np.ndarray | None) -> int:
    """Among the recorded replicates, the one that reached the first criterion closest to their
    median time (else 0)."""
    if reached_at is None:
        return 0
    times = reached_at[:RASTER_REPLICATES]
    hit = np.flatnonzero(times >= 0)
    if not len(hit):
        return 0
    return int(hit[np.argmin(np.abs(times[hit] - np.median(times[hit])))])


def reaching_figures(reached_at: np.ndarray, holding_final: np.ndarray, steps: int) -> dict:
    """One criterion over the replicates: the time-to-event figures of reaching it
    (:func:`ecology.statistics.time_to_event`, horizon ``steps``) and the fraction holding at the
    end, ``holding_final``, with its 95% Wilson interval (``holding_final_lo``, ``_hi``)."""
    out = time_to_event(reached_at, steps)
    holding = int(np.sum(holding_final))
    out["holding_final"] = holding / len(holding_final)
    out["holding_final_lo"], out["holding_final_hi"] = wilson(holding, len(holding_final))
    return out


def criterion_summary(reached_at: np.ndarray, holding_final: np.ndarray, steps: int) -> dict:
    """:func:`reaching_figures` and the Kaplan–Meier curve of P(reached by t) with its 95% band
    (``reached_curve``, ``reached_curve_lo``, ``reached_curve_hi``), t = 0 .. steps."""
    out = reaching_figures(reached_at, holding_final, steps)
    km = kaplan_meier(reached_at, steps)
    out["reached_curve"] = km.reached.tolist()
    out["reached_curve_lo"] = (1.0 - km.upper).tolist()
    out["reached_curve_hi"] = (1.0 - km.lower).tolist()
    return out


def occupation_summary(counts: dict[str, np.ndarray], steps: int) -> dict:
    """The time ``R`` replicates spent in a set over steps ``0 .. N`` (``N = steps``), from each
    replicate's ``occupied`` steps ``O``, ``entries`` ``E`` (steps ``t >= 1`` entering the set),
    ``initial`` and ``final`` holding ``I``, ``F``:

    - ``occupation`` = mean of ``O`` and ``fraction`` = mean of ``O / (N + 1)``, each with the 95%
      normal interval over replicates (:func:`ecology.statistics.mean_interval`);
    - ``visits`` = mean of ``I + E`` (maximal runs of steps in the set), with its interval;
      ``entries`` and ``exits`` = totals of ``E`` and of ``I + E - F``; ``open_at_horizon`` = the
      replicates whose visit is still in progress at ``N`` (right-censored) and ``open_at_start``
      those in the set at step 0 (left-censored: not an entry);
    - ``mean_stay`` = ``sum (O - F) / sum exits``, the steps in the set that could have been
      followed by an exit within the horizon per exit (a ratio estimator, delta-method interval,
      :func:`ecology.statistics.ratio_of_sums`). A censored visit counts the steps it was seen to
      stay and no exit; for stays of constant exit probability this is the maximum-likelihood
      estimate, and whatever the law of the stays it estimates the exact ``exposure / exits`` over the
      horizon (``mean_stay_within`` of the exact occupation), which tends to ``pi(A) / flux`` in
      stationarity. Null with ``mean_stay_note`` when no visit ended;
    - ``mean_time_between_entries`` = ``R N / sum E`` (the same estimator; null when nothing entered)."""
    occupied, entries = counts["occupied"].astype(float), counts["entries"].astype(float)
    initial, final = counts["initial"].astype(float), counts["final"].astype(float)
    n = len(occupied)
    exits = initial + entries - final
    out = {}
    for key, values, bounds in (("occupation", occupied, (0, steps + 1)), ("fraction", occupied / (steps + 1), (0, 1)),
                                ("visits", initial + entries, (0, steps + 1))):
        out[key], out[f"{key}_lo"], out[f"{key}_hi"] = mean_interval(values, bounds=bounds)
    out.update({"entries": int(entries.sum()), "exits": int(exits.sum()), "open_at_start": int(initial.sum()),
                "open_at_horizon": int(final.sum())})
    stay = ratio_of_sums(occupied - final, exits, bounds=(1, steps + 1))  # a visit lasts at least one step
    between = ratio_of_sums(np.full(n, float(steps)), entries, bounds=(1, math.inf))
    for key, ratio, missing in (("mean_stay", stay, "no visit ended within the horizon"),
                                ("mean_time_between_entries", between, "the set was never entered after step 0")):
        out[key], out[f"{key}_lo"], out[f"{key}_hi"] = ratio if ratio is not None else (None, None, None)
        if ratio is None:
            out[f"{key}_note"] = missing
    return out


def quantiles(a: np.ndarray) -> dict:
    q10, q50, q90 = np.quantile(a, [0.1, 0.5, 0.9])
    return {"amplitude_final_mean": float(a.mean()), "amplitude_final_q10": float(q10),
            "amplitude_final_q50": float(q50), "amplitude_final_q90": float(q90)}


def summarize(result: RunResult) -> dict:
    s = result.scenario
    last = result.steps.iloc[-1]
    # the holding columns taken at once (one lookup per column of a wide frame costs ~1 ms)
    holding_curves = result.steps[[Criteria.column("holding", name) for name in result.reached_at]].to_numpy().T
    criteria = {}
    for (name, at), holding in zip(result.reached_at.items(), holding_curves):
        criteria[name] = criterion_summary(at, result.holding_final[name], s.run.steps)
        criteria[name]["holding_curve"] = holding.tolist()
    return {
        "scenario": s.name,
        "steps": s.run.steps,
        "replicates": s.run.replicates,
        "seed": s.run.seed,
        "seconds": round(result.seconds, 3),
        "engine": result.engine,
        "shards": result.shards,
        "quantiles": quantile_method(result),
        "raster_replicate": result.raster_replicate,
        "priors": acting_priors(s),
        "criteria": criteria,
        "occupation": {name: occupation_summary(counts, s.run.steps) for name, counts in result.occupation.items()},
        "populations": {label: quantiles(a) for label, a in result.final_amplitudes.items()},
        "premises": {row.pop("premise"): row for row in premise_rows(result)},
        "final": {key: _number(last[key]) for key in ("entropy", "surprisal", "free_energy")},
        "ledger": ledger_summary(result),
    }


def ledger_summary(result: RunResult) -> dict:
    """The token ledger at the last step ``N`` (docs/outputs.md): per population label, the credit
    ``issued``, ``retired`` and ``held`` (means over replicates with their 95% normal intervals,
    ``_lo``/``_hi``), ``held_share`` (``held_L / sum of held``: the share of the window's printed
    tokens credited to ``L``; None when none are in the window) and ``turnover``, the credit-weighted
    mean age at deletion of the tokens deleted by ``N`` (``sum age / sum retired`` over replicates,
    with its delta-method interval; None when nothing was deleted, as under ``none``, where no credit
    is ever retired and held credit grows without bound). Ages are at most ``k``, so only tokens
    printed in the last ``k`` steps are still waiting to be counted."""
    held_total = result.ledger.held.sum()
    out = {}
    for j, label in enumerate(result.labels):
        row = {}
        for name, values in (("issued", result.issued[:, j]), ("retired", result.ledger.retired[:, j]),
                             ("held", result.ledger.held[:, j])):
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean_interval(values, bounds=(0, math.inf))  # credit >= 0
        row["held_share"] = float(result.ledger.held[:, j].sum() / held_total) if held_total > 0 else None
        turnover = ratio_of_sums(result.ledger.age[:, j], result.ledger.retired[:, j], bounds=(0, math.inf))
        row["turnover"], row["turnover_lo"], row["turnover_hi"] = turnover if turnover else (None, None, None)
        out[label] = row
    return out


def _number(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def replicate_table(result: RunResult) -> pd.DataFrame:
    """``replicates.csv``: its columns gathered in a dict and made into a DataFrame at once (a
    column inserted at a time copies the frame's blocks: quadratic in the number of criteria)."""
    columns = {}
    for name, at in result.reached_at.items():
        columns[f"reached_step_{name}"] = pd.Series(at, dtype="Int64").mask(at < 0).array  # empty if never
        columns[f"holding_end_{name}"] = result.holding_final[name].astype(int)
    for name, counts in result.occupation.items():
        columns[f"occupied_steps_{name}"] = counts["occupied"]
        columns[f"entries_{name}"] = counts["entries"]
    for label, a in result.final_amplitudes.items():
        columns[f"amplitude_{label}"] = a
    for s, premise in enumerate(result.premises):
        columns[f"premise_amplitude_{premise.name}"] = result.premise_amplitudes[:, s]
    return pd.DataFrame(columns, index=pd.RangeIndex(result.scenario.run.replicates, name="replicate"))


def premise_table(result: RunResult) -> pd.DataFrame:
    """:func:`premise_rows` as a DataFrame (``premises.csv``)."""
    return pd.DataFrame(premise_rows(result))


def premise_rows(result: RunResult) -> list[dict]:
    """One row per premise: population, normalised (acting) prior and the prior as written (a
    population member's share of its population's prior), drawn parameter (population members),
    final amplitude (mean and quantiles over replicates) and the fraction of replicates in which
    it ends with the largest amplitude of all premises (with its Wilson interval)."""
    amplitudes = result.premise_amplitudes
    top = np.bincount(np.argmax(amplitudes, axis=1), minlength=amplitudes.shape[1])
    n = amplitudes.shape[0]
    rows = []
    for s, p in enumerate(result.premises):
        lo, hi = wilson(int(top[s]), n)
        rows.append({"premise": p.name, "population": p.label, "prior": float(result.priors[s]), "prior_written": p.prior,
                     "parameter": p.parameter, "value": p.value, **quantiles(amplitudes[:, s]),
                     "largest_final": float(top[s] / n), "largest_final_lo": lo, "largest_final_hi": hi})
    return rows


def resolved_toml(scenario: Scenario, premises: list, priors: np.ndarray) -> str:
    """The resolved scenario as TOML, population members (drawn parameter, prior) in a comment."""
    lines = []
    for s, p in enumerate(premises):
        if p.parameter is not None:
            lines.append(f"#   {p.name}: {p.parameter} = {p.value:.12g}, prior = {priors[s]:.12g}")
    head = "# population members as drawn (normalised priors):\n" + "\n".join(lines) + "\n\n" if lines else ""
    return head + tomli_w.dumps(to_table(scenario))


TRANSCRIBED = 8  # replicates written out as text in transcripts.txt


def text_reader(result: RunResult):
    """The model that turns the vocabulary's tokens into text (the first premise whose model has
    a tokenizer, :attr:`ecology.lm.LanguageModel.has_text`), or None."""
    return next((p.model for p in result.premises if p.model is not None and p.model.has_text), None)


def transcripts(result: RunResult) -> str | None:
    """``transcripts.txt``: the prompt and what the first :data:`TRANSCRIBED` replicates printed,
    as text, then the window of the raster replicate at every step; None without a text model."""
    model = text_reader(result)
    if model is None:
        return None
    index = {t: i for i, t in enumerate(result.tokens)}
    prompt = np.array([index[t] for t in result.scenario.context.prompt], dtype=np.int64)
    speaker = next(p.name for p in result.premises if p.model is model)
    lines = [f"# {result.scenario.name}: text as the model of premise {speaker!r} decodes it; a replicate's line is its "
             "prompt, then '|', then the tokens it printed", ""]
    for r in range(min(TRANSCRIBED, result.printed.shape[1])):
        lines.append(f"replicate {r}: {model.text(prompt)!r} | {model.text(result.printed[:, r])!r}")
    lines += ["", f"# the window of replicate {result.raster_replicate} at each step (steps.csv's step)"]
    lines += [f"step {t}: {model.text(window)!r}" for t, window in enumerate(result.raster)]
    return "\n".join(lines) + "\n"


def trajectory_table(result: RunResult) -> pd.DataFrame:
    """Long table (step, replicate, one column per population) of the first replicates."""
    steps, reps, _ = result.trajectories.shape
    table = pd.DataFrame({"step": np.repeat(np.arange(steps), reps), "replicate": np.tile(np.arange(reps), steps)})
    for j, label in enumerate(result.labels):
        table[label] = result.trajectories[:, :, j].ravel()
    return table


def speaker_table(result: RunResult) -> pd.DataFrame:
    """Long table (step, replicate, token, speaker, speaker_premise) for the first replicates: the
    token printed at each step (1 ..), the population most responsible for it and the premise
    most responsible for it (largest ``alpha_s mu_s(t|w) / mu(t|w)``)."""
    steps, reps = result.printed.shape
    labels = np.array(result.labels, dtype=object)
    names = np.array([p.name for p in result.premises], dtype=object)
    tokens = np.array(result.tokens, dtype=object)
    table = pd.DataFrame({"step": np.repeat(np.arange(1, steps + 1), reps), "replicate": np.tile(np.arange(reps), steps),
                          "token": tokens[result.printed.ravel()] if steps else [],
                          "speaker": labels[result.speakers.ravel()] if steps else [],
                          "speaker_premise": names[result.premise_speakers.ravel()] if steps else []})
    model = text_reader(result)
    if model is not None:  # the text each token stands for (a leading space, a newline ...)
        table["text"] = [model.text(np.array([t])) for t in result.printed.ravel()] if steps else []
    return table
