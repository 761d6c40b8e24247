"""Running a sweep's plan: the points on an executor, finished rows to disk as they complete.

Interrupts and faults: SIGINT or SIGTERM stops a sweep within about a second, keeping every
point finished before and during the stop (workers are killed, not waited for); workers die
with the parent, also when it is killed outright; a point that cannot be written (disk full)
stops the sweep with what is on disk kept (:mod:`ecology.sweep.directory`).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

from ecology.interrupts import Interrupted, Signals
from ecology.io.safe import describe_os_error
from ecology.progress import Progress, silent
from ecology.sweep.directory import failures, finished_rows, write_json_atomically, write_table
from ecology.sweep.executors import (  # check_scheduler: the command line's sweep calls it from here
    Executor,
    Serial,
    WorkerDied,
    check_scheduler,  # noqa: F401
    failure_text,
    make_executor,
)
from ecology.sweep.grid import Plan
from ecology.sweep.points import exact_modules, run_point

STOP_GRACE = 0.5  # seconds to collect the rows of points that finish after an interrupt


POLL = 0.1  # seconds between the parent's looks at its workers and at the interrupt flag


class WriteFailed(Exception):
    """Writing a finished point failed (disk full, ...): the sweep stops, keeping what is on disk."""


def execute(directory: Path, plan: Plan, workers: int, scheduler: str | None, progress: Progress = silent) -> dict:
    """Run the plan's missing points; finished rows go to disk as they complete.

    The points run on an executor (:mod:`ecology.sweep.executors`): a Dask client with ``scheduler``,
    else worker processes, else (one worker) this process. Stops on SIGINT or SIGTERM within
    about a second (:data:`STOP_GRACE` to collect the points finishing meanwhile), and when a
    finished point cannot be written (disk full); every point on disk is kept and ``--resume``
    runs the rest. At most one worker per point to run. ``progress`` (:mod:`ecology.progress`)
    hears ``("sweep points", done, points, "RATE points/min")`` at every poll of the collect loop
    (about every :data:`POLL` seconds): points on disk (finished before, and now), the rate of
    the points run now."""
    done = {r["point"] for r in finished_rows(directory, plan)}
    todo = [p for p in plan.points if p["index"] not in done]
    for p in todo:
        (directory / "failed" / f"{p['index']}.json").unlink(missing_ok=True)
    workers = max(1, min(workers, len(todo)))
    ran = 0
    error = None
    began = time.monotonic()

    def report() -> None:
        elapsed = time.monotonic() - began
        progress("sweep points", len(done) + ran, len(plan.points), format_rate(ran / elapsed if ran and elapsed > 0 else None))

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

        executor = None
        if plan.exact:
            exact_modules()  # imported before the workers fork, which then inherit them
        try:
            executor = make_executor(scheduler, workers, signals)
            # the work runs in this thread only for Serial: elsewhere signals are polled by collect()
            signals.raising = isinstance(executor, Serial)
            collect(executor, plan, todo, finished, signals, report)
        except Interrupted:
            pass  # recorded in signals.received
        except WriteFailed as err:
            error = str(err)
        finally:
            signals.raising = False  # from here on, signals are only recorded
            if executor is not None:
                executor.close(stopping=True)
        try:
            write_table(directory, plan)
        except OSError as err:
            error = error or f"cannot write results.csv: {describe_os_error(err)}"
    return {"output": str(directory), "points": len(plan.points), "done": len(finished_rows(directory, plan)),
            "ran": ran, "failed": failures(directory, plan),
            "interrupted": signals.received[0] if signals.received else None, "error": error}


def collect(executor: Executor, plan: Plan, todo: list[dict], finished, signals: Signals, report=lambda: None) -> None:
    """The one collect loop of every executor: keep at most ``executor.capacity`` points in
    flight, hand each finished one to ``finished(point, row, failure)``; on a signal, submit
    nothing more and collect for at most :data:`STOP_GRACE` seconds (a second signal: not at
    all). A point that raises is a failure and the sweep goes on; a worker process that dies
    fails its point, unless SIGINT or SIGTERM killed it, which stops the sweep like an interrupt
    of this process. ``report()`` is called at every poll (progress)."""
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
        report()
        for future in executor.wait(list(pending), POLL):
            point = pending.pop(future)
            try:
                row = future.result()
            except WorkerDied as died:
                if died.exitcode in (-signal.SIGINT, -signal.SIGTERM):
                    signals.received.append(f"{signal.Signals(-died.exitcode).name} (worker)")
                elif not signals.requested:
                    finished(point, None, f"the worker process died (exit code {died.exitcode}: killed, or out of memory)")
            except Exception as err:  # noqa: BLE001 ( a failing point is recorded, the sweep goes on)
                finished(point, None, failure_text(err))
            else:
                finished(point, row, None)


def format_rate(points_per_second: float | None) -> str:
    """The progress bar's rate: points per minute to 3 significant digits, "--" until known."""
    if points_per_second is None or not math.isfinite(points_per_second):
        return "-- points/min"
    return f"{60 * points_per_second:.3g} points/min"
