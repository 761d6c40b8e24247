"""Progress of long jobs: the callback the library takes, and the terminal bar the command line shows.

A long job (a run's steps, a sweep's points, the exact chain's enumeration and solver phases, the
EM of ``decompose``, training) takes a ``progress`` callback and calls it now and then as
``progress(task, done, total, detail)``: the task being run (``"steps"``, ``"enumerating
page-states"``, ``"EM restarts"``), how much of it is done, out of how much (None when unknown),
and one short line of detail (a rate, the current restart, the loss). The default,
:func:`silent`, does nothing, so the library API stays silent and its cost is one call of an
empty function per report. Callers report at most about every :data:`INTERVAL` seconds (a
sweep's polls; a run's slices of steps, every half second:
:data:`ecology.results.SLICE_SECONDS`), or once per unit of work that costs far more than a
report (a chunk of the enumeration, a solver phase, an EM iteration, a training step).

:class:`TerminalProgress` is the one display (rich, imported only when it is made, so the lower
layers never load it): a bar on stderr, never stdout, with the task, done of total, the detail,
the elapsed time and the time remaining (the task's average rate since its first report,
extrapolated to the total: :func:`remaining_seconds`), redrawn at most every :data:`REDRAW`
seconds. It appears only once a job has run :data:`START_DELAY` seconds (a job finishing sooner
shows nothing) and is erased when the job ends (transient), so stderr keeps only the command's
own lines. :func:`terminal_progress` gives it only when stderr is a terminal and the command was
not told ``--quiet`` (or ``--json``), else :func:`silent`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Protocol

START_DELAY = 1.0  # seconds a job runs before its bar appears
INTERVAL = 0.1  # seconds between a caller's reports, about (they may come less often, never much more)
REDRAW = 0.2  # seconds between two redraws of the bar (a redraw costs a few milliseconds of rich's rendering)
STALE = 1.0  # seconds without a report after which the thread redraws (the elapsed time moves on)


class Progress(Protocol):
    def __call__(self, task: str, done: float, total: float | None = None, detail: str = "") -> None: ...


def silent(task: str, done: float, total: float | None = None, detail: str = "") -> None:
    """The default progress callback: reports nothing (library calls stay silent)."""


class TerminalProgress:
    """A rich progress bar on ``console`` (default: stderr) fed by progress reports (module docstring).

    A report updates rich's task (done, total, detail, its samples of the rate) and redraws the bar
    when the last drawing is :data:`REDRAW` seconds old, in the caller's thread. With ``thread=True``
    a daemon thread also redraws it when no report came for :data:`STALE` seconds (one long phase
    of an analysis: the elapsed time moves on, and the bar appears after :data:`START_DELAY` even
    before the first report after it); a sweep, which forks workers while its bar is shown (forking
    beside a thread is unsafe), has none and reports at every poll. A new task name starts the
    bar afresh. Use it as a context manager: leaving it erases the bar."""

    def __init__(self, console=None, delay: float | None = None, thread: bool = True):
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(*_columns(), console=console or Console(stderr=True), transient=True, auto_refresh=False,
                            redirect_stdout=False)  # stdout is the command's own; lines on stderr print above the bar
        self.began = time.monotonic()
        self.delay = START_DELAY if delay is None else delay
        self.shown = False
        self.task = self.task_id = None
        self.drawn_at = -float("inf")
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._redraw_loop, daemon=True, name="progress") if thread else None
        if self.thread:
            self.thread.start()

    def __call__(self, task: str, done: float, total: float | None = None, detail: str = "") -> None:
        if task != self.task:  # a new phase: a fresh bar (its own elapsed time, rate and estimate)
            if self.task_id is not None:
                self.bar.remove_task(self.task_id)
            self.task_id, self.task = self.bar.add_task(task, total=total, completed=done, detail=detail, first=done), task
        self.bar.update(self.task_id, completed=done, total=total, detail=detail)
        if time.monotonic() - self.drawn_at >= REDRAW:
            self._draw()

    def _redraw_loop(self) -> None:
        while not self.stopped.wait(REDRAW):
            if time.monotonic() - self.drawn_at >= STALE:
                self._draw()

    def _draw(self) -> None:
        with self.lock:
            now = time.monotonic()
            if self.stopped.is_set() or now - self.began < self.delay or self.task_id is None:
                return
            if not self.shown:
                self.bar.start()
                self.shown = True
            self.bar.refresh()
            self.drawn_at = now

    def close(self) -> None:
        """Stop drawing and erase the bar (idempotent)."""
        self.stopped.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()
        with self.lock:
            if self.shown:
                self.bar.stop()
                self.shown = False

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def remaining_seconds(gained: float, elapsed: float | None, left: float) -> float | None:
    """The time left at the task's average rate since its first report: ``left * elapsed / gained``
    (None until something was gained). Not rich's default, the rate over the last samples, which
    a sweep's points finishing together (one per worker) make arbitrarily fast."""
    if not elapsed or gained <= 0:
        return None
    return max(left, 0) * elapsed / gained


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a number of seconds (rounded up: an estimate of 0.4 s is ``0:00:01``)."""
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _columns() -> tuple:
    """The bar's columns: task, bar, ``done/total`` (thousands separated, ``?`` when the total is
    unknown, nothing when neither is known: a phase), detail, elapsed time, and ``eta H:MM:SS``
    (:func:`remaining_seconds`; ``--:--`` until some progress is made, nothing when the total is
    unknown)."""
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task) -> Text:
            if task.total is None and not task.completed:  # a phase with nothing to count
                return Text("")
            total = "?" if task.total is None else f"{task.total:,.0f}"
            return Text(f"{task.completed:,.0f}/{total}", style="progress.download")

    class Remaining(ProgressColumn):
        def render(self, task) -> Text:
            if task.total is None:
                return Text("")
            seconds = remaining_seconds(task.completed - task.fields["first"], task.elapsed, task.total - task.completed)
            return Text("eta " + ("--:--" if seconds is None else clock(seconds)), style="progress.remaining")

    return (TextColumn("{task.description}"), BarColumn(), Count(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
            Remaining())


class _Silent:
    """:func:`silent` as a context manager, so callers write one ``with`` either way."""

    def __enter__(self):
        return silent

    def __exit__(self, *exc) -> None:
        return None


def terminal_progress(quiet: bool, thread: bool = True):
    """A context manager giving the progress callback of a command: a :class:`TerminalProgress`
    when stderr is a terminal and not ``quiet``, else :func:`silent`."""
    if quiet or not sys.stderr.isatty():
        return _Silent()
    return TerminalProgress(thread=thread)
