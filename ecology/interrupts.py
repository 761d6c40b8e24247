"""Interrupts (SIGINT, SIGTERM) and the lifetime of worker processes.

- The command line treats SIGTERM like Ctrl-C: the first SIGINT or SIGTERM raises
  :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so every ``finally`` and
  every temporary directory is cleaned up; further signals while stopping are only recorded,
  so a second Ctrl-C cannot break the clean-up half-way (stopping is bounded: nothing waits
  without a time limit).
- Code that must not be interrupted half-way (writing one finished point) runs inside
  :meth:`Signals.protect`: a signal arriving there is raised when the block ends.
- Calls of compiled code run inside :func:`deferred`: no Python handler runs inside numba's
  compiler or cache loader, whatever handler is installed (ours, Python's default, Jupyter's).
- A worker process dies with its parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, plus a
  watchdog thread that exits when the parent pid changes (other platforms, and the moment
  between ``fork`` and ``prctl``). Workers ignore SIGINT: the parent decides when they stop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``str()`` is the signal's name."""


class Signals:
    """SIGINT and SIGTERM handlers for the duration of a ``with`` block.

    ``raising``: the first signal raises :class:`Interrupted` (outside :meth:`protect`); later
    signals, and all signals when ``raising`` is false, are only recorded in ``received`` (the
    caller polls :attr:`requested`). A signal the process ignores at start (SIG_IGN, e.g. SIGINT
    for a background job of a non-interactive shell) stays ignored."""

    def __init__(self, raising: bool):
        self.raising = raising
        self.received: list[str] = []
        self._protected = 0
        self._raised = False
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def _handle(self, signum, frame) -> None:
        self.received.append(signal.Signals(signum).name)
        if self.raising and not self._raised and not self._protected:
            self._raised = True
            raise Interrupted(self.received[0])

    @contextmanager
    def protect(self):
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1
        if self.raising and self.received and not self._raised and not self._protected:
            self._raised = True
            raise Interrupted(self.received[0])

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def reinstall(self) -> None:
        """Install the handlers again (after a library such as Dask replaced them)."""
        for signum in self._previous:
            signal.signal(signum, self._handle)

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


@contextmanager
def deferred():
    """Hold back the Python handlers of SIGINT and SIGTERM until the block ends.

    A Python signal handler runs between two bytecodes of whatever Python code the main thread
    executes next, including code that C calls back into. Numba's first call of a compiled loop
    (compiling it, or loading it from the disk cache) is such code: LLVM calls back into
    llvmlite through ctypes. An exception raised there is swallowed by ctypes (the interrupt is
    lost and the run goes on) or leaves LLVM half-built (a segmentation fault). Inside this
    block a signal is only recorded; when the block ends, the handler that was installed gets
    it, in ordinary Python code. Compiled code cannot run a Python handler anyway, so holding
    signals back around a call of compiled code delays nothing except a first compile (once per
    machine: the install compiles everything). Signals left to their default action or ignored
    are left alone, as is every thread but the main one (where Python handlers never run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    handlers = {}
    for signum in HANDLED:
        handler = signal.getsignal(signum)
        if callable(handler):
            handlers[signum] = handler
            signal.signal(signum, lambda number, frame: held.append(number))
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in held:
            handlers[signum](signum, None)


def exit_status(name: str) -> int:
    """The shell's convention for a process stopped by a signal: 128 + its number."""
    try:
        return 128 + int(signal.Signals[name])
    except KeyError:
        return 130


PR_SET_PDEATHSIG = 1
WATCHDOG_PERIOD = 0.5  # seconds between the watchdog's looks at the parent pid


def die_with_parent(parent: int) -> None:
    """In a worker: be killed when the parent process dies, however it dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still applies
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_PERIOD)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def become_worker(parent: int) -> None:
    """Signal dispositions of a worker process: SIGINT ignored, SIGTERM kills; dies with ``parent``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)
