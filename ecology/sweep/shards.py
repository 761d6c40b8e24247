"""One run's replicate shards on an executor: the worker processes or the Dask cluster a sweep uses.

A run of ``R`` replicates is split into the fixed shards of :func:`ecology.results.shard_sizes`, each
seeded from the run's seed and its index (:func:`ecology.results.shard_seed`), so the merged numbers
(:func:`ecology.results.merge_shards`) are the same on one worker, on several and on a cluster: only the
wall time changes. :func:`simulate_on` submits every shard to an executor of
:mod:`ecology.sweep.executors` (at most ``capacity`` in flight) and merges them as they come back:

- a shard whose worker process died (killed, out of memory) is submitted again, up to
  :data:`RETRIES` times; one killed by SIGINT or SIGTERM stops the run like an interrupt of this process;
- a shard that raised stops the run with that error in one line (a mistake in the scenario as it is said in
  this process, naming the file and the field);
- an interrupt of this process (Ctrl-C) stops it as before: the executor is closed at once (workers
  killed, the cluster's pending work cancelled) and nothing is written.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ecology.core.budget import check_run
from ecology.errors import ScenarioError, UserError
from ecology.interrupts import Interrupted, Signals
from ecology.progress import Progress, silent
from ecology.results import RunResult, ShardMerge, shard_sizes, simulate, simulate_shard
from ecology.scenario import Scenario
from ecology.sweep.executors import POLL, Executor, WorkerDied, check_scheduler, failure_text, make_executor

RETRIES = 2  # times a shard whose worker died is run again before the run gives up
GAIN = 2_000_000  # replicate-steps from which a run of several shards uses every core by default


def default_workers(scenario: Scenario) -> int:
    """Workers for a run when ``--workers`` is not given: every core (at most one per shard) for a run of several
    shards and at least :data:`GAIN` replicate-steps, else 1 (this process: no worker start to pay)."""
    shards = len(shard_sizes(scenario.run.replicates))
    if shards == 1 or scenario.run.replicates * scenario.run.steps < GAIN:
        return 1
    return max(1, min(os.cpu_count() or 1, shards))


def workers_for(scenario: Scenario, workers: int | None) -> int:
    """The workers a run uses: ``workers`` (default :func:`default_workers`), at most one per shard."""
    return max(1, min(workers or default_workers(scenario), len(shard_sizes(scenario.run.replicates))))


def simulate_with(scenario: Scenario, workers: int | None = None, scheduler: str | None = None,
                  progress: Progress = silent) -> RunResult:
    """The run on ``workers`` processes (:func:`workers_for`), on the Dask ``scheduler`` (``tcp://HOST:PORT`` or
    ``local``), or in this process (:func:`ecology.results.simulate`): the same numbers in every case."""
    workers = workers_for(scenario, workers)
    if scheduler is None and workers == 1:
        return simulate(scenario, progress)
    if scheduler:
        check_scheduler(scheduler)
    check_run(scenario)  # the whole run's budget (each shard would pass its own), before any worker or cluster starts
    with Signals(raising=True) as signals:
        return simulate_on(scenario, make_executor(scheduler, workers, signals), progress)


def _shard(scenario: Scenario, index: int) -> tuple[str, object]:
    """Run one shard in a worker: ``("ok", shard)``, or for a mistake in the scenario ``("scenario error",
    (field path, message))`` or ``("user error", line)``, which this process raises again as they were raised
    there (a ScenarioError's constructor takes its parts, which an exception's pickling does not carry)."""
    try:
        return "ok", simulate_shard(scenario, index)
    except ScenarioError as err:
        return "scenario error", (err.path, err.message)
    except UserError as err:
        return "user error", str(err)


def simulate_on(scenario: Scenario, executor: Executor, progress: Progress = silent) -> RunResult:
    """All shards of the run on ``executor``, merged (module docstring). ``progress`` hears
    ``("replicate shards", done, shards, "R replicates on W workers")`` as shards come back. The whole run's
    memory budget is the caller's to check first (:func:`simulate_with` does, before the executor starts):
    each shard would pass its own."""
    count = len(shard_sizes(scenario.run.replicates))
    began = time.perf_counter()
    todo = list(range(count - 1, -1, -1))  # popped from the end: shard 0 first
    pending: dict = {}  # future -> shard index
    died = dict.fromkeys(range(count), 0)
    merge = ShardMerge(scenario)
    where = "a Dask cluster" if executor.capacity is None else f"{executor.capacity} workers"
    try:
        while todo or pending:
            while todo and (executor.capacity is None or len(pending) < executor.capacity):
                index = todo.pop()
                pending[executor.submit(_shard, scenario, index)] = index
            progress("replicate shards", len(merge.parts), count, f"{scenario.run.replicates:,} replicates on {where}")
            for future in executor.wait(list(pending), POLL):
                index = pending.pop(future)
                try:
                    kind, payload = future.result()
                except WorkerDied as err:
                    if err.exitcode in (-signal.SIGINT, -signal.SIGTERM):
                        raise Interrupted(f"{signal.Signals(-err.exitcode).name} (worker)") from None
                    died[index] += 1
                    if died[index] > RETRIES:
                        raise UserError(f"replicate shard {index} of {count}: its worker process died "
                                        f"{died[index]} times (exit code {err.exitcode}: killed, or out of memory); "
                                        "lower run.replicates, context.length or run.steps") from None
                    print(f"note: replicate shard {index} of {count}: its worker process died (exit code {err.exitcode}); "
                          "running it again", file=sys.stderr)
                    todo.append(index)  # recomputed, not lost: its seed is a function of the run's seed and index
                    continue
                except Exception as err:  # noqa: BLE001 ( a failure in a worker, RemoteError or Dask's own: one line)
                    raise UserError(f"replicate shard {index} of {count} failed in its worker: "
                                    f"{failure_text(err)}") from None
                if kind == "scenario error":
                    raise ScenarioError(*payload)
                if kind == "user error":
                    raise UserError(payload)
                merge.add(payload)
    except BaseException:
        executor.close(stopping=True)
        raise
    executor.close()
    progress("replicate shards", count, count, f"{scenario.run.replicates:,} replicates on {where}")
    return merge.result(time.perf_counter() - began)
