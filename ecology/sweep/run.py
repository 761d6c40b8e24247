"""Parameter sweeps: grids of scenario overrides, run on all cores or on a Dask cluster.

A sweep is the Cartesian product of one or more grids ``path = values`` over the dotted paths of
a scenario. Each grid point is a full run (all replicates) and yields one row of the results
table. Values are written as

- ``v1,v2,...``: a list (each value read as TOML: ``8``, ``0.5``, ``"fifo"``, bare words as
  strings);
- ``START:STOP:STEP``: an arithmetic range, STOP included when reached (``0.1:0.9:0.2``);
- ``START:STOP:*FACTOR``: a geometric range (``2:64:*2`` gives 2, 4, 8, 16, 32, 64).

Reproducibility: a point's seed is derived from the scenario's ``run.seed`` and the point's
parameters alone (SHA-256 of both), never from the order of the points or the worker, so
a sweep gives identical rows with any number of workers and on Dask.

Durability: the plan is written first (``sweep.json``), and each finished point at once, as
``points/INDEX.json`` (written to a temporary name, then renamed). A point that raises is
recorded in ``failed/INDEX.json`` with its error; an interrupted sweep keeps every finished
point, and ``--resume DIR`` runs only the points that have no row yet.

Interrupts and faults: SIGINT or SIGTERM stops a sweep within about a second, keeping every
point finished before and during the stop (workers are killed, not waited for); workers die
with the parent, also when it is killed outright; a point that cannot be written (disk full)
stops the sweep with what is on disk kept. The directory is locked (``.lock``) while points
run, so two ``--resume``s of one directory cannot both run (:mod:`ecology.outputs`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecology.core.budget import check_run
from ecology.errors import OutputError, ScenarioError, UserError
from ecology.interrupts import Interrupted, Signals
from ecology.io.safe import Claim, describe_os_error, lock_sweep, new_directory, remove_leftovers, write_file_atomically
from ecology.scenario import (
    Scenario,
    SweepSpec,
    apply_overrides,
    parse_value,
    to_table,
    validate,
    validate_sweep,
)
from ecology.sweep.executors import (
    SCHEDULER_TIMEOUT,
    DaskExecutor,
    Executor,
    ProcessPool,
    Serial,
    WorkerDied,
    failure_text,
)

MAX_GRID_VALUES = 10_000  # values in one grid


MAX_POINTS = 100_000  # points in a sweep (the product of its grids)


def _range_count(text: str, count: float) -> int:
    if not count <= MAX_GRID_VALUES:
        raise UserError(f"range {text!r} has {count:,.0f} values, more than {MAX_GRID_VALUES:,}; use a coarser STEP or FACTOR")
    return int(count)


def parse_values(text: str) -> list:
    """Values of one grid (module docstring for the syntax). A list is read as the items of a
    TOML array (so list values work: ``["F"],["U","F"]``), else split at commas with bare words
    kept as strings; a range is checked for finite bounds and at most ``MAX_GRID_VALUES`` values
    before any is generated."""
    text = text.strip()
    parts = text.split(":")
    if len(parts) == 3 and all(p.strip() for p in parts):
        start, stop = parse_value(parts[0]), parse_value(parts[1])
        step_text = parts[2].strip()
        geometric = step_text.startswith("*")
        step = parse_value(step_text[1:] if geometric else step_text)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, stop, step)):
            raise UserError(f"range {text!r}: START, STOP and STEP must be numbers")
        if not all(math.isfinite(x) for x in (start, stop, step)):
            raise UserError(f"range {text!r}: START, STOP and STEP must be finite numbers")
        integral = all(isinstance(x, int) for x in (start, stop, step))
        if geometric:
            if not (start > 0 and step > 1 and stop >= start):
                raise UserError(f"geometric range {text!r}: needs 0 < START <= STOP and FACTOR > 1")
            count = _range_count(text, math.floor((math.log(stop) - math.log(start)) / math.log(step) + 1e-9) + 1)
            values = [start * step**i for i in range(count)]
        else:
            if step == 0 or (stop - start) / step < 0:
                raise UserError(f"range {text!r}: STEP must be non-zero and point from START to STOP")
            count = _range_count(text, math.floor((stop - start) / step + 1e-9) + 1)
            values = [start + i * step for i in range(count)]
        return [int(v) if integral else round(float(v), 12) for v in values]
    try:
        values = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [parse_value(v) for v in text.split(",")]
    if any(isinstance(v, str) and not v.strip() for v in values) or not values:
        raise UserError(f"grid {text!r}: empty value")
    if len(values) > MAX_GRID_VALUES:
        raise UserError(f"grid {text!r} has {len(values):,} values, more than {MAX_GRID_VALUES:,}")
    return values


def parse_grid(spec: str) -> tuple[str, list]:
    """``path=values`` from ``--grid``."""
    path, sep, values = spec.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise UserError(f"--grid {spec!r}: expected dotted.path=values, e.g. --grid context.length=2:64:*2")
    return path.strip(), parse_values(values)


def grid_from_table(sweep: SweepSpec | None) -> dict[str, list]:
    """The ``[sweep]`` table of a scenario file: ``grid = { "path" = [values] or "range" }``."""
    grid = {}
    for path, values in (sweep.grid if sweep else {}).items():
        try:
            grid[path] = list(values) if isinstance(values, list) else parse_values(values)
        except UserError as err:
            raise ScenarioError(f"sweep.grid.{path}", str(err)) from None
        if not grid[path]:
            raise ScenarioError(f"sweep.grid.{path}", "no values")
        if len(grid[path]) > MAX_GRID_VALUES:
            raise ScenarioError(f"sweep.grid.{path}", f"{len(grid[path]):,} values, more than {MAX_GRID_VALUES:,}")
    return grid


def labels_of(table: dict) -> list[str]:
    """Population labels of a scenario table, in the order the mixture uses."""
    labels = [spec.get("population") or name for name, spec in table.get("premises", {}).items()]
    return list(dict.fromkeys(labels + list(table.get("populations", {}))))


def point_seed(seed: int, params: dict[str, Any]) -> int:
    """A 63-bit seed from the scenario seed and the point's parameters only."""
    text = json.dumps([seed, sorted(params.items())], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def grid_kind(values: list) -> str:
    """How a grid's values are spaced, which decides its plot axis: ``"geometric"`` (numbers > 0
    in constant ratio, at least 3 of them: ``START:STOP:*FACTOR`` or a list such as
    ``0.001,0.01,0.1``; log axis), ``"arithmetic"`` (other numbers: linear axis) or
    ``"categorical"`` (anything else: one tick per value, in grid order)."""
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "categorical"
    x = np.array(values, dtype=float)
    if len(x) >= 3 and np.all(x > 0):
        ratios = x[1:] / x[:-1]
        differences = np.diff(x)
        geometric = np.allclose(ratios, ratios[0], rtol=1e-9) and not np.isclose(ratios[0], 1.0)
        if geometric and not np.allclose(differences, differences[0], rtol=1e-9):
            return "geometric"
    return "arithmetic"


@dataclass
class Plan:
    """Everything needed to run (or resume) a sweep."""

    name: str
    base: dict  # the scenario table with fixed overrides applied (no [sweep] table)
    grid: dict[str, list]
    points: list[dict]  # {"index", "params", "seed"}
    exact: bool
    max_states: int
    kinds: dict[str, str] | None = None  # path -> grid_kind (decides the plots' axis scales)

    def __post_init__(self):
        if self.kinds is None:
            self.kinds = {path: grid_kind(values) for path, values in self.grid.items()}

    def to_json(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "kinds": self.kinds, "points": self.points,
                "exact": self.exact, "max_states": self.max_states}

    @classmethod
    def from_json(cls, data: dict) -> "Plan":
        """The plan of ``sweep.json``; raises ``ValueError`` naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("name", "base", "grid", "points", "exact", "max_states") if k not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        shapes = {"name": str, "base": dict, "grid": dict, "points": list, "exact": bool, "max_states": int}
        for key, kind in shapes.items():
            if not isinstance(data[key], kind):
                raise ValueError(f"'{key}' must be {kind.__name__}")
        for i, point in enumerate(data["points"]):
            if not (isinstance(point, dict) and point.get("index") == i and isinstance(point.get("params"), dict)
                    and isinstance(point.get("seed"), int)):
                raise ValueError(f"points[{i}] must be {{index: {i}, params: {{...}}, seed: int}}")
        return cls(data["name"], data["base"], data["grid"], data["points"], data["exact"], data["max_states"],
                   data.get("kinds"))


def make_plan(table: dict, grids: dict[str, list], overrides: dict, exact: bool, max_states: int) -> Plan:
    """Validate the base scenario and every grid point before anything runs."""
    sweep_spec = validate_sweep(table.get("sweep"))
    table = {key: value for key, value in table.items() if key != "sweep"}
    grid = grid_from_table(sweep_spec)
    grid.update(grids)
    if not grid:
        raise UserError("no grid: give --grid path=values or a [sweep] table with grid = {...}")
    size = math.prod(len(values) for values in grid.values())
    if size > MAX_POINTS:
        raise UserError(f"the grid has {size:,} points, more than {MAX_POINTS:,}; sweep fewer values")
    fixed = {f"run.{k}": getattr(sweep_spec, k) for k in ("replicates", "steps")
             if sweep_spec and getattr(sweep_spec, k) is not None}
    fixed.update(overrides)
    base = to_table(validate(apply_overrides(table, fixed)))
    seed = base["run"]["seed"]
    points = []
    for index, combo in enumerate(itertools.product(*grid.values())):
        params = dict(zip(grid, combo))
        try:
            check_run(validate(apply_overrides(base, params)))
        except ScenarioError as err:
            raise ScenarioError(err.path, f"{err.message} (grid point {params})") from None
        points.append({"index": index, "params": params, "seed": point_seed(seed, params)})
    return Plan(base["name"], base, grid, points, exact, max_states)


def run_point(base: dict, point: dict, exact: bool, max_states: int) -> dict:
    """Run one grid point; returns its row (parameters first, then figures).

    ``engine`` is the engine that ran the point (``compiled``, or ``numpy`` where asked for or
    where the compiled one cannot run it). Per criterion ``C`` (columns ``C_...``, see docs/outputs.md): the time-to-event figures of
    :func:`ecology.statistics.time_to_event` (reached by the horizon with its Wilson interval,
    censored count, restricted mean ``E[min(T, N)]`` with its interval, median with its interval
    when the KM curve crosses 1/2, the mean given reached), the fraction holding at the end with
    its interval and, with ``exact``, the exact chain's ``E[T]``, P(reached by N), restricted mean
    and whether the set is closed. Per population the final mean amplitude.
    """
    from ecology.results import simulate
    from ecology.statistics import time_to_event, wilson

    scenario = validate(apply_overrides(base, {**point["params"], "run.seed": point["seed"]}))
    result = simulate(scenario)
    row: dict[str, Any] = {"point": point["index"], **point["params"], "seed": point["seed"], "engine": result.engine}
    steps = scenario.run.steps
    for name, at in result.reached_at.items():
        figures = time_to_event(at, steps)
        row.update({f"{name}_{k}": v for k, v in figures.items() if k not in ("n", "horizon")})
        holding = int(result.holding_final[name].sum())
        row[f"{name}_holding_final"] = holding / len(at)
        row[f"{name}_holding_final_lo"], row[f"{name}_holding_final_hi"] = wilson(holding, len(at))
    for label, amplitude in result.final_amplitudes.items():
        row[f"{label}_amplitude_final_mean"] = float(amplitude.mean())
    if exact:
        row.update(exact_figures(scenario, max_states))
    return row


def exact_figures(scenario: Scenario, max_states: int) -> dict:
    """The exact chain's columns of a row (``exact_note`` says why when it is out of reach)."""
    from ecology.core.compile import compile_scenario
    from ecology.exact.report import analyze
    from ecology.results import exact_criteria

    try:
        report = analyze(compile_scenario(scenario), max_states)
        criteria = exact_criteria(scenario, max_states)
    except UserError as err:
        return {"exact_note": str(err)}
    row = {"exact_n_states": report["n_states"], "exact_expected_absorption_time": report["expected_absorption_time"]}
    for i, c in enumerate(report["closed_classes"]):
        row[f"exact_class{i}"] = c["absorbing_state"] or f"{c['size']} states, period {c['period']}"
        row[f"exact_class{i}_probability"] = c["probability"]
    for name, c in criteria.items():
        expected = c["expected_hitting_time"]
        if c.get("expected_hitting_time_note"):  # not computed: left empty, never an infinite time
            expected = math.nan
        row[f"{name}_exact_expected_hitting_time"] = math.inf if expected is None else expected
        row[f"{name}_exact_reached_by_horizon"] = c["reached_by_horizon"]
        row[f"{name}_exact_restricted_mean"] = c["restricted_mean"]
        row[f"{name}_exact_closed"] = c["closed"]
    return row


STOP_GRACE = 0.5  # seconds to collect the rows of points that finish after an interrupt


POLL = 0.1  # seconds between the parent's looks at its workers and at the interrupt flag


def write_json_atomically(path: Path, data: dict) -> None:
    write_file_atomically(path, json.dumps(data, indent=1, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def start_directory(target: Path, plan: Plan) -> Claim:
    """Create a sweep directory with its plan (the directory must not exist), whole or not at
    all; returns the directory's lock, held."""
    import tomli_w

    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    lock = None
    try:
        new_directory(tmp)
        new_directory(tmp / "points")
        new_directory(tmp / "failed")
        lock = lock_sweep(tmp)
        write_json_atomically(tmp / "sweep.json", plan.to_json())
        write_file_atomically(tmp / "scenario.toml", tomli_w.dumps(plan.base))
        os.rename(tmp, target)
    except BaseException as err:
        if lock:
            lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise OutputError(f"cannot create the sweep directory {target}: {describe_os_error(err)}") from None
        raise
    return lock


def open_directory(directory: Path) -> Claim:
    """Lock an existing sweep directory for ``--resume`` and remove the leftovers of dead processes."""
    lock = lock_sweep(directory)
    for where in (directory, directory / "points", directory / "failed"):
        remove_leftovers(where)
    return lock


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
        why = describe_os_error(err) if isinstance(err, OSError) else f"not valid JSON ({err})"
        raise UserError(f"{path}: {why}") from None


def load_plan(directory: Path) -> Plan:
    path = Path(directory) / "sweep.json"
    if not path.is_file():
        raise UserError(f"{directory}: not a sweep directory (no sweep.json)")
    try:
        return Plan.from_json(_read_json(path))
    except ValueError as err:
        raise UserError(f"{path}: not a sweep plan: {err}") from None


def _records(directory: Path, key: str, plan: Plan | None) -> list[dict]:
    """The JSON files of ``directory`` (``points/`` or ``failed/``), checked, ordered by ``key``."""
    records = []
    for path in sorted(directory.glob("*.json")):
        record = _read_json(path)
        index = record.get(key) if isinstance(record, dict) else None
        if not isinstance(index, int) or path.stem != str(index) or (plan and not 0 <= index < len(plan.points)):
            raise UserError(f"{path}: not a point of this sweep (expected '{key}' = {path.stem}); "
                            "delete the file to run that point again")
        records.append(record)
    return sorted(records, key=lambda r: r[key])


def finished_rows(directory: Path, plan: Plan | None = None) -> list[dict]:
    return _records(Path(directory) / "points", "point", plan)


def failures(directory: Path, plan: Plan | None = None) -> list[dict]:
    return _records(Path(directory) / "failed", "index", plan)


def write_table(directory: Path, plan: Plan | None = None) -> Path:
    """Assemble ``results.csv`` (one row per finished point, in grid order) atomically."""
    import pandas as pd

    path = Path(directory) / "results.csv"
    write_file_atomically(path, pd.DataFrame(finished_rows(directory, plan)).to_csv(index=False))
    return path


class WriteFailed(Exception):
    """Writing a finished point failed (disk full, ...): the sweep stops, keeping what is on disk."""


def execute(directory: Path, plan: Plan, workers: int, scheduler: str | None, progress: bool) -> dict:
    """Run the plan's missing points; finished rows go to disk as they complete.

    The points run on an executor (:mod:`ecology.executors`): a Dask client with ``scheduler``,
    else worker processes, else (one worker) this process. Stops on SIGINT or SIGTERM within
    about a second (:data:`STOP_GRACE` to collect the points finishing meanwhile), and when a
    finished point cannot be written (disk full); every point on disk is kept and ``--resume``
    runs the rest. At most one worker per point to run."""
    done = {r["point"] for r in finished_rows(directory, plan)}
    todo = [p for p in plan.points if p["index"] not in done]
    for p in todo:
        (directory / "failed" / f"{p['index']}.json").unlink(missing_ok=True)
    workers = max(1, min(workers, len(todo)))
    bar = _progress(progress, len(plan.points), len(done))
    ran = 0
    error = None

    with Signals(raising=True) as signals:  # raising while an executor starts: nothing to keep yet

        def finished(point: dict, row: dict | None, failure: str | None) -> None:
            nonlocal ran
            with signals.protect():
                try:
                    if row is not None:
                        write_json_atomically(directory / "points" / f"{point['index']}.json", row)
                        ran += 1
                    else:
                        write_json_atomically(directory / "failed" / f"{point['index']}.json",
                                              {"index": point["index"], "params": point["params"], "error": failure})
                except OSError as err:
                    raise WriteFailed(f"cannot write point {point['index']}: {describe_os_error(err)}") from None
                if bar:
                    bar[0].advance(bar[1])
                    bar[0].refresh()

        executor = None
        try:
            executor = make_executor(scheduler, workers, signals)
            # the work runs in this thread only for Serial: elsewhere signals are polled by collect()
            signals.raising = isinstance(executor, Serial)
            collect(executor, plan, todo, finished, signals)
        except Interrupted:
            pass  # recorded in signals.received
        except WriteFailed as err:
            error = str(err)
        finally:
            signals.raising = False  # from here on, signals are only recorded
            if executor is not None:
                executor.close(stopping=True)
            if bar:
                bar[0].stop()
        try:
            write_table(directory, plan)
        except OSError as err:
            error = error or f"cannot write results.csv: {describe_os_error(err)}"
    return {"output": str(directory), "points": len(plan.points), "done": len(finished_rows(directory, plan)),
            "ran": ran, "failed": failures(directory, plan),
            "interrupted": signals.received[0] if signals.received else None, "error": error}


def make_executor(scheduler: str | None, workers: int, signals: Signals) -> Executor:
    """A Dask client with ``scheduler``, else ``workers`` processes, else (one worker) this process."""
    if scheduler:
        executor = DaskExecutor(scheduler, workers)
        signals.reinstall()  # starting a cluster may reset SIGINT's handler
        if executor.dashboard:
            print(f"Dask dashboard: {executor.dashboard}", file=sys.stderr)
        return executor
    if workers == 1:
        return Serial()
    from ecology import results  # noqa: F401  (imported before forking: workers inherit it)

    return ProcessPool(workers)


def collect(executor: Executor, plan: Plan, todo: list[dict], finished, signals: Signals) -> None:
    """The one collect loop of every executor: keep at most ``executor.capacity`` points in
    flight, hand each finished one to ``finished(point, row, failure)``; on a signal, submit
    nothing more and collect for at most :data:`STOP_GRACE` seconds (a second signal: not at
    all). A point that raises is a failure and the sweep goes on; a worker process that dies
    fails its point, unless SIGINT or SIGTERM killed it, which stops the sweep like an interrupt
    of this process."""
    queue = list(reversed(todo))
    pending: dict = {}  # future -> point
    grace_ends = None
    while queue or pending:
        if signals.requested:
            if grace_ends is None:
                grace_ends = time.monotonic() + STOP_GRACE
            if not pending or len(signals.received) > 1 or time.monotonic() >= grace_ends:
                return
        else:
            while queue and (executor.capacity is None or len(pending) < executor.capacity):
                point = queue.pop()
                pending[executor.submit(run_point, plan.base, point, plan.exact, plan.max_states)] = point
        for future in executor.wait(list(pending), POLL):
            point = pending.pop(future)
            try:
                row = future.result()
            except WorkerDied as died:
                if died.exitcode in (-signal.SIGINT, -signal.SIGTERM):
                    signals.received.append(f"{signal.Signals(-died.exitcode).name} (worker)")
                elif not signals.requested:
                    finished(point, None, f"the worker process died (exit code {died.exitcode}: killed, or out of memory)")
            except Exception as err:  # a failing point is recorded, the sweep goes on
                finished(point, None, failure_text(err))
            else:
                finished(point, row, None)


def format_rate(points_per_second: float | None) -> str:
    """The progress bar's rate: points per minute to 3 significant digits, "--" until known."""
    if points_per_second is None or not math.isfinite(points_per_second):
        return "-- points/min"
    return f"{60 * points_per_second:.3g} points/min"


def _progress(enabled: bool, total: int, completed: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(format_rate(task.finished_speed or task.speed), style="progress.data.speed")

    # no refresh thread (auto_refresh=False): worker processes may be forked while it is shown
    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                   transient=True, auto_refresh=False)
    task = bar.add_task("points", total=total, completed=completed)
    bar.start()
    bar.refresh()
    return bar, task


def check_scheduler(scheduler: str) -> None:
    """Refuse a malformed or unreachable Dask scheduler address at once (one line), before any
    directory is created; ``local`` starts a cluster on this machine."""
    if scheduler == "local":
        return
    scheme, sep, rest = scheduler.partition("://")
    if not sep:
        scheme, rest = "tcp", scheduler
    host, colon, port = rest.rpartition(":")
    host = host.strip("[]")
    if scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--scheduler {scheduler!r}: expected tcp://HOST:PORT (or tls://HOST:PORT), or 'local'")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=SCHEDULER_TIMEOUT).close()
    except OSError as err:
        raise UserError(f"--scheduler {scheduler}: cannot connect ({err.strerror or err})") from None
