"""Every error the user can cause, in one module: each is reported as one line (exit status 2).

:class:`UserError` is the base (a mistake in the input or the command line); :class:`ScenarioError`
names the file and the dotted field path; the others say which budget, output location or
computation refused, and how to fix it. Errors of the generic Markov-chain code
(:class:`ecology.exact.markov.ChainError`) stay there: that module imports nothing of ours.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input: reported as one line, exit status 2."""


class ScenarioError(UserError, ValueError):
    """A scenario problem, reported to the user as one line naming the file and the field."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.source}: " if self.source else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"

    def located(self, source: str) -> ScenarioError:
        """The same error tagged with the file it came from (done once, where the file is known)."""
        return self if self.source else type(self)(self.path, self.message, source)


class ImpossibleWindow(ScenarioError):
    """A window reached at run time has probability zero under every premise."""


class NotANumber(ScenarioError):
    """A computed law or amplitude is NaN: stop rather than write it."""


class UnreadableInput(UserError):
    """An input file that cannot be read as one: ``reason`` completes ``PATH: ...`` (the caller
    names the field)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class OutputError(UserError):
    """An output location that cannot be used or written (one line, exit status 2)."""


class Busy(OutputError):
    """Another process holds the lock of this output."""


class UnreadableDirectory(UserError):
    """A directory given to ``ecology plot`` that is not a readable run, analysis or sweep."""


class TooManyStates(UserError):
    """The exact chain would exceed the state budget, or the memory budget at that many states."""


class DecomposeError(UserError):
    """A bad request to ``ecology decompose`` (one line, exit status 2)."""


class TooMuchWork(UserError):
    """A curve or power would exceed the work budget."""


class UsageError(UserError):
    """A command line the parser refuses (argparse's message, as one line)."""
