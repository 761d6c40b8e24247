"""Executors: what runs a sweep's points, behind one protocol.

An executor is anything with ``submit(fn, *args) -> future`` and ``map(fn, *iterables)`` in the
sense of :mod:`concurrent.futures` (a future has ``done()`` and ``result()``), plus the two
things a sweep needs to stop at once: ``wait(futures, timeout)`` (the futures among them that
are done, waiting at most ``timeout`` seconds) and ``close(stopping)`` (``stopping``: give up
on running work instead of waiting for it). ``capacity`` is how many futures are worth having in
flight (``None``: no limit); the sweep's one collect loop (:func:`ecology.sweep.execute.collect`)
submits no more than that, so an interrupted sweep leaves unsubmitted points to ``--resume``.

- :class:`Serial`: in this process's main thread (``submit`` runs the call at once).
- :class:`ProcessPool`: worker processes, each fed one call at a time through its own pipe;
  forked where the platform allows and no other thread runs (they inherit the imported
  modules, which saves seconds of start-up per worker), spawned elsewhere. Each worker runs
  call after call (a sweep's points), loading the compiled kernels once; its capacity is two
  calls per worker, so that the next call waits in the pool and is sent the moment a worker
  answers, not after the sweep has written the last result. A worker that dies
  (killed, out of memory) fails its call with :class:`WorkerDied` and is replaced. Workers
  ignore SIGINT and die with the parent, also when it is killed outright
  (:func:`ecology.interrupts.become_worker`).
- :class:`DaskExecutor`: a Dask ``Client``'s futures, on a scheduler at ``tcp://HOST:PORT`` or
  on a local cluster started here (``local``), whose worker processes also die with this one.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from multiprocessing.connection import wait as wait_any
from typing import Any

from ecology.errors import UserError
from ecology.interrupts import Signals, become_worker
from ecology.io.safe import close_inherited_locks

POLL = 0.1  # seconds between looks at pending work in map()


DASK_POLL = 0.02  # seconds between looks at a Dask future's status


SCHEDULER_TIMEOUT = 10  # seconds to reach a Dask scheduler


CLOSE_GRACE = 1.0  # seconds an idle worker gets to exit before it is killed


DASK_STOP_GRACE = 0.5  # seconds a stopping sweep gives the Dask client and local cluster to close


class WorkerDied(Exception):
    """The process running a call died (killed, out of memory); ``exitcode`` as multiprocessing gives it."""

    def __init__(self, exitcode: int | None):
        super().__init__(f"the worker process died (exit code {exitcode})")
        self.exitcode = exitcode


class RemoteError(Exception):
    """A call raised in a worker process; ``str()`` is ``"Type: message"`` as raised there."""


def failure_text(err: BaseException) -> str:
    """``"Type: message"`` of an exception, wherever it was raised."""
    return str(err) if isinstance(err, RemoteError) else f"{type(err).__name__}: {err}"


class Executor:
    """The protocol (module docstring); ``map`` is built on ``submit`` and ``wait``."""

    capacity: int | None = None

    def submit(self, fn: Callable, /, *args) -> Any:
        raise NotImplementedError

    def wait(self, futures: list, timeout: float) -> set:
        raise NotImplementedError

    def close(self, stopping: bool = False) -> None:
        pass

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        """``fn`` over the zipped iterables, results in order (the first failure is raised)."""
        futures = [self.submit(fn, *args) for args in zip(*iterables)]
        for future in futures:
            while not future.done():
                self.wait([future], POLL)
            yield future.result()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(stopping=kind is not None)


class Serial(Executor):
    """Each call runs at once in this thread; an interrupt raised in it propagates."""

    capacity = 1

    def submit(self, fn: Callable, /, *args) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:  # noqa: BLE001 ( a failing call is its future's result; interrupts propagate)
            future.set_exception(err)
        return future

    def wait(self, futures: list, timeout: float) -> set:
        return {f for f in futures if f.done()}


def _worker(conn, parent: int) -> None:
    """A worker process: run the calls it is sent, one at a time, and send back each result."""
    become_worker(parent)
    close_inherited_locks()
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return
        if call is None:
            return
        fn, args = call
        try:
            reply = ("ok", fn(*args))
        except Exception as err:  # noqa: BLE001 ( a failing call is recorded, the worker goes on)
            reply = ("error", failure_text(err))
        conn.send(reply)


class ProcessPool(Executor):
    """``count`` worker processes (module docstring)."""

    def __init__(self, count: int):
        forkable = "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
        self.context = multiprocessing.get_context("fork" if forkable else "spawn")
        self.capacity = 2 * count  # a call waiting per worker: it starts the moment the worker answers
        self.idle: list = []
        self.busy: dict = {}  # (process, conn) -> future
        self.queue: list = []  # (future, fn, args) waiting for an idle worker
        try:
            for _ in range(count):
                self.idle.append(self._start())
        except BaseException:
            self.close(stopping=True)
            raise

    def _start(self):
        """One worker, forked with every object of this process in the collector's permanent
        generation (``gc.freeze``): the worker's collections then never walk, and so never
        copy on write, the imported modules it inherits (measured on a sweep of 2 small points:
        its two workers took 0.53 s of CPU instead of 0.77 s)."""
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(theirs, os.getpid()), daemon=True)
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
        theirs.close()
        return process, ours

    def submit(self, fn: Callable, /, *args) -> Future:
        future = Future()
        self.queue.append((future, fn, args))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        while self.idle and self.queue:
            worker = self.idle.pop()
            try:
                worker[1].send((self.queue[0][1], self.queue[0][2]))
            except OSError:  # an idle worker that died (killed while waiting): replaced, the call goes to another
                worker[0].join(CLOSE_GRACE)
                worker[1].close()
                self.idle.append(self._start())
                continue
            future, _, _ = self.queue.pop(0)
            self.busy[worker] = future

    def wait(self, futures: list, timeout: float) -> set:
        """Collect what the busy workers answered within ``timeout`` (a worker that died fails its
        future with :class:`WorkerDied` and is replaced); the given futures that are done. When some
        of them are done already it only collects what has answered, without waiting."""
        if self.busy and not all(f.done() for f in futures):
            handles = [conn for _, conn in self.busy] + [process.sentinel for process, _ in self.busy]
            ready = set(wait_any(handles, timeout=0 if any(f.done() for f in futures) else timeout))
            for worker in list(self.busy):
                process, conn = worker
                if conn not in ready and process.sentinel not in ready:
                    continue
                try:
                    kind, payload = conn.recv() if conn.poll() else ("died", None)
                except (EOFError, OSError):
                    kind, payload = "died", None
                future = self.busy.pop(worker)
                if kind == "died":
                    process.join(CLOSE_GRACE)
                    conn.close()
                    future.set_exception(WorkerDied(process.exitcode))
                    self.idle.append(self._start())
                else:
                    self.idle.append(worker)
                    if kind == "ok":
                        future.set_result(payload)
                    else:
                        future.set_exception(RemoteError(payload))
            self._dispatch()
        return {f for f in futures if f.done()}

    def close(self, stopping: bool = False) -> None:
        """Stop every worker now: busy ones are killed (their calls are cancelled), idle ones are
        told to exit; nothing waits more than about a second. Without ``stopping``, work still
        pending is waited for first."""
        while not stopping and (self.busy or self.queue):
            self.wait(list(self.busy.values()), POLL)
        for future, _, _ in self.queue:
            future.cancel()
        self.queue.clear()
        for (process, _), future in self.busy.items():
            process.kill()
            future.cancel()
        for process, conn in self.idle:
            try:
                conn.send(None)
            except OSError:
                process.kill()
        deadline = time.monotonic() + CLOSE_GRACE
        for process, conn in list(self.busy) + self.idle:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(CLOSE_GRACE)
            conn.close()
        self.busy.clear()
        self.idle.clear()


class DaskExecutor(Executor):
    """A Dask client: on ``scheduler`` (``tcp://HOST:PORT``), or on a local cluster of ``workers``
    single-threaded processes (``local``) that die with this process."""

    def __init__(self, scheduler: str, workers: int):
        try:  # imported here: Dask is an optional extra
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--scheduler needs Dask: pip install 'simulacra-ecology[distributed]'") from None
        self.cluster = (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
                        if scheduler == "local" else None)
        try:
            self.client = Client(self.cluster if self.cluster else scheduler, timeout=SCHEDULER_TIMEOUT)
        except OSError as err:
            if self.cluster:
                self.cluster.close()
            raise UserError(f"--scheduler {scheduler}: cannot connect ({err})") from None
        self.futures: set = set()

    @property
    def dashboard(self) -> str | None:
        return self.client.dashboard_link

    def submit(self, fn: Callable, /, *args):
        future = self.client.submit(fn, *args, pure=False)
        self.futures.add(future)
        return future

    def wait(self, futures: list, timeout: float) -> set:
        deadline = time.monotonic() + timeout
        while True:
            done = {f for f in futures if f.done()}
            if done or time.monotonic() >= deadline:
                self.futures -= done
                return done
            time.sleep(DASK_POLL)

    def close(self, stopping: bool = False) -> None:
        """Cancel what is still pending and close the client (and the local cluster); stopping:
        give up on a clean close after a moment (the local workers die with this process)."""
        pending = [f for f in self.futures if not f.done()]
        if pending:
            self.client.cancel(pending)
        self.futures.clear()
        timeout = DASK_STOP_GRACE if stopping else None
        try:
            self.client.close(timeout=timeout)
            if self.cluster:
                self.cluster.close(timeout=timeout)
        except TimeoutError:
            pass


def make_executor(scheduler: str | None, workers: int, signals: Signals) -> Executor:
    """A Dask client with ``scheduler``, else ``workers`` processes, else (one worker) this process
    (``signals``: the caller's handlers, installed again after a cluster starts)."""
    if scheduler:
        executor = DaskExecutor(scheduler, workers)
        signals.reinstall()  # starting a cluster may reset SIGINT's handler
        if executor.dashboard:
            print(f"Dask dashboard: {executor.dashboard}", file=sys.stderr)
        return executor
    if workers == 1:
        return Serial()
    return ProcessPool(workers)  # forked workers inherit what the caller imported (the simulator)


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
    try:
        socket.create_connection((host, int(port)), timeout=SCHEDULER_TIMEOUT).close()
    except OSError as err:
        raise UserError(f"--scheduler {scheduler}: cannot connect ({err.strerror or err})") from None
