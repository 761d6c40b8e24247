"""Deletion rules: how the shared context stays finite; one registered class per rule.

Each step appends one generated token to every replicate's window, then the deletion rule
decides which tokens go once the window holds more than ``k``:

- ``fifo``: the oldest token;
- ``block``: the oldest ``B`` tokens at once;
- ``message``: the oldest whole message, i.e. every token up to and including the first
  ``delimiter`` (the oldest token alone if no message has ended yet);
- ``none``: nothing, ever (the unbounded window of Remark 1).

With ``pinned = m`` the first ``m`` prompt tokens (a system prompt) are never deleted: the rule
applies to what follows them. With a ``reset`` token, premises read only what follows its last
occurrence in the window (:func:`ecology.core.windows.after_reset`); the tokens before it still occupy the window
until they are deleted.

Page-states are in canonical form (:mod:`ecology.core.windows`): exactly ``k`` positions (longer
under ``none``), pads ``N`` first, then the tokens, oldest first. The initial window is
``k - len(prompt)`` pads followed by the prompt (under ``fifo`` a longer prompt keeps its last ``k``
tokens).

Each rule owns its scenario keys' checks (:meth:`DeletionRule.check`), how it is built from the
``[context]`` table (:meth:`DeletionRule.from_context`), its numpy form (:meth:`DeletionRule.count`,
:meth:`DeletionRule.apply`) and its optional compiled form (:meth:`DeletionRule.compiled_form`: a
:class:`DeletionProgram` that :func:`delete_canonical_jit`, the compiled twin of ``apply``, runs).
The scenario's ``context.deletion`` values, their documentation and the app's choices come from
:data:`RULES`. A rule without a compiled form runs on the numpy engine, which says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

from ecology.errors import ScenarioError
from ecology.numerics import jit

if TYPE_CHECKING:  # the scenario's [context] table
    from ecology.scenario import Context


class DeletionProgram(NamedTuple):
    """A deletion rule as the compiled engine runs it on a full window (after the pinned prefix):
    delete the ``oldest`` tokens, or, when ``delimiter >= 0`` and the window holds it, every token
    up to and including its first occurrence. ``fifo`` is ``(1, -1)``, ``block`` ``(B, -1)``,
    ``message`` ``(1, delimiter)``; under a sliding rule only ``oldest`` (1, or 0 for ``none``) counts."""

    oldest: int
    delimiter: int = -1


class DeletionRule:
    """How a window of length ``k`` deletes after each append; one registered class per rule.

    A rule *slides* when every replicate deletes the same number of oldest tokens at every step
    (what the simulator's O(1) sliding reader needs); the others rewrite canonical windows with
    :meth:`apply`, which shifts out ``count`` tokens after the pinned prefix, ``count`` being what
    :meth:`count` says for each row. Adding a rule is adding one class here.
    """

    name: ClassVar[str]
    deletes_oldest: ClassVar[bool] = True  # False only for the unbounded window
    summary: ClassVar[str]  # one line for the scenario schema and the docs

    @classmethod
    def check(cls, ctx: Context) -> None:
        """Checks of the rule's own keys of ``[context]``; raise :class:`ScenarioError`."""

    @classmethod
    def slides_with(cls, pinned: int) -> bool:
        """Whether the rule slides with a pinned prefix of ``pinned`` tokens (:attr:`sliding`; the
        budget asks this of a ``[context]`` before the rule is built)."""
        return False

    @classmethod
    def usable(cls, ctx: Context) -> bool:
        """Whether ``[context]`` holds what the rule needs (the app offers only those)."""
        return True

    @classmethod
    def deletion_rate(cls, ctx: Context) -> float:
        """An upper bound on the fraction of steps, once the window is full, at which the rule
        deletes (a model that caches its reads must then read the window again; the budget's
        work estimate). Default: every step."""
        return 1.0

    @classmethod
    def from_context(cls, ctx: Context, index: dict[str, int], pad: int) -> DeletionRule:
        """The rule of a scenario's ``[context]`` table (tokens by ``index``, the pad's index ``pad``)."""
        return cls(ctx.length, pad, ctx.pinned)

    def compiled_form(self) -> DeletionProgram | None:
        """What the compiled engine runs (None: the rule runs on numpy only)."""
        return None

    def __init__(self, length: int, pad: int, pinned: int = 0):
        self.length = length
        self.pad = pad
        self.pinned = pinned

    @property
    def sliding(self) -> bool:
        return self.slides_with(self.pinned)

    def initial_window(self, prompt: list[int]) -> np.ndarray:
        """The page-state at step 0: pads, then the prompt."""
        tokens = np.asarray(prompt, dtype=np.int64)
        pads = max(self.length - len(tokens), 0)
        return np.concatenate([np.full(pads, self.pad, dtype=np.int64), tokens])

    def successor(self, windows: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The page-states after appending ``tokens`` (one per row) and deleting."""
        grown = np.concatenate([windows, tokens[:, None].astype(windows.dtype)], axis=1)
        if not self.deletes_oldest:
            return grown
        return grown[:, 1:] if self.sliding else self.apply(grown)

    def count(self, grown: np.ndarray) -> np.ndarray:
        """(R,) tokens each full row deletes after an append (rows not yet full delete none)."""
        raise NotImplementedError

    def apply(self, grown: np.ndarray) -> np.ndarray:
        """(R, k + 1) windows after an append -> (R, k) canonical windows after deletion."""
        width = grown.shape[1]
        k, m = self.length, self.pinned
        full = grown[:, 0] != self.pad  # the window held k tokens before the append
        count = np.where(full, self.count(grown), 0)
        # output position i takes: a pad (i < count - 1), a pinned token, or a token after the gap
        i = np.arange(k)[None, :]
        lead = np.maximum(count - 1, 0)[:, None]
        source = np.where(i - lead < m, i - lead + 1 - full[:, None], i - lead + count[:, None] + 1 - full[:, None])
        shifted = np.take_along_axis(grown, np.clip(source, 0, width - 1), axis=1)
        shifted[i < lead] = self.pad
        return shifted


@jit
def delete_canonical_jit(tokens, window, grown, oldest, delimiter, pinned, pad, history, position, deleted):
    """The compiled twin of :meth:`DeletionRule.apply` with the rule's :class:`DeletionProgram`
    ``(oldest, delimiter)``: append each replicate's token; a window that was full (no pad first)
    loses the ``count`` tokens after the ``pinned`` prefix (``oldest``, or up to and including the
    first ``delimiter`` when there is one) and gets ``count - 1`` pads first; one that was not full
    loses its first pad. ``deleted`` counts the real tokens that went. The window before
    the step is kept in ``history[position]``."""
    rows, length = window.shape
    memory = history.shape[0]
    for r in range(rows):
        if memory:
            for j in range(length):
                history[position, r, j] = window[r, j]
        if window[r, 0] == pad:  # not full: shift left by one, the token last
            for j in range(length - 1):
                window[r, j] = window[r, j + 1]
            window[r, length - 1] = tokens[r]
            continue
        for j in range(length):
            grown[j] = window[r, j]
        grown[length] = tokens[r]
        count = oldest
        if delimiter >= 0:
            for j in range(pinned, length):
                if grown[j] == delimiter:
                    count = j - pinned + 1
                    break
        for j in range(pinned, pinned + count):
            if grown[j] < pad:
                deleted[r] += 1.0
        lead = count - 1
        for i in range(lead):
            window[r, i] = pad
        for i in range(pinned):
            window[r, lead + i] = grown[i]
        for i in range(length - lead - pinned):
            window[r, lead + pinned + i] = grown[pinned + count + i]


RULES: dict[str, type[DeletionRule]] = {}


def rule(cls: type[DeletionRule]) -> type[DeletionRule]:
    """Class decorator: register a deletion rule under its ``name``."""
    RULES[cls.name] = cls
    return cls


@rule
class Fifo(DeletionRule):
    """Once full, each step deletes the oldest token (after the pinned prefix)."""

    name = "fifo"
    summary = "once full, each step deletes the oldest token"

    @classmethod
    def slides_with(cls, pinned: int) -> bool:
        return pinned == 0

    def compiled_form(self) -> DeletionProgram:
        return DeletionProgram(1)

    def initial_window(self, prompt: list[int]) -> np.ndarray:
        """A prompt longer than the window keeps its last ``k`` tokens."""
        return super().initial_window(prompt[-self.length :] if prompt else prompt)

    def count(self, grown: np.ndarray) -> np.ndarray:
        return np.ones(len(grown), dtype=np.int64)


@rule
class NoDeletion(DeletionRule):
    """Nothing is ever deleted: the unbounded window of Remark 1."""

    name = "none"
    summary = "nothing is ever deleted (unbounded window)"
    deletes_oldest = False

    @classmethod
    def deletion_rate(cls, ctx: Context) -> float:
        return 0.0

    @classmethod
    def slides_with(cls, pinned: int) -> bool:
        return True

    def compiled_form(self) -> DeletionProgram:
        return DeletionProgram(0)


@rule
class Block(DeletionRule):
    """Once full, delete the oldest ``block`` tokens at once."""

    name = "block"
    summary = "once full, delete the oldest `block` tokens at once"

    @classmethod
    def check(cls, ctx: Context) -> None:
        if ctx.block is None:
            raise ScenarioError("context.block", 'deletion = "block" needs block = B (tokens deleted at once)')
        if ctx.block > ctx.length - ctx.pinned:
            raise ScenarioError("context.block", f"deletes more than the {ctx.length - ctx.pinned} deletable positions")

    @classmethod
    def usable(cls, ctx: Context) -> bool:
        return bool(ctx.block)

    @classmethod
    def deletion_rate(cls, ctx: Context) -> float:
        return 1.0 / ctx.block

    @classmethod
    def from_context(cls, ctx: Context, index: dict[str, int], pad: int) -> Block:
        return cls(ctx.length, pad, ctx.pinned, ctx.block)

    def __init__(self, length: int, pad: int, pinned: int = 0, block: int = 1):
        super().__init__(length, pad, pinned)
        self.block = block

    def count(self, grown: np.ndarray) -> np.ndarray:
        return np.full(len(grown), self.block, dtype=np.int64)

    def compiled_form(self) -> DeletionProgram:
        return DeletionProgram(self.block)


@rule
class Message(DeletionRule):
    """Once full, delete the oldest whole message: every token up to and including the first
    ``delimiter`` after the pinned prefix (the oldest token alone if no message has ended)."""

    name = "message"
    summary = "once full, delete the oldest whole message (up to and including `delimiter`)"

    @classmethod
    def check(cls, ctx: Context) -> None:
        if ctx.delimiter is None:
            raise ScenarioError("context.delimiter", 'deletion = "message" needs delimiter = "<token that ends a message>"')

    @classmethod
    def usable(cls, ctx: Context) -> bool:
        return bool(ctx.delimiter)

    @classmethod
    def from_context(cls, ctx: Context, index: dict[str, int], pad: int) -> Message:
        return cls(ctx.length, pad, ctx.pinned, index[ctx.delimiter])

    def __init__(self, length: int, pad: int, pinned: int = 0, delimiter: int = -1):
        super().__init__(length, pad, pinned)
        self.delimiter = delimiter

    def count(self, grown: np.ndarray) -> np.ndarray:
        ends = grown[:, self.pinned : self.length] == self.delimiter
        return np.where(ends.any(axis=1), np.argmax(ends, axis=1) + 1, 1)

    def compiled_form(self) -> DeletionProgram:
        return DeletionProgram(1, self.delimiter)


def deletion_rule(context: Context, index: dict[str, int], pad: int) -> DeletionRule:
    """The rule of a scenario's ``[context]`` table (tokens by ``index``)."""
    return RULES[context.deletion].from_context(context, index, pad)
