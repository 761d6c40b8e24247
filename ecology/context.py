"""The shared context: R windows side by side, and the deletion rule that keeps them finite.

Each step appends one generated token to every replicate's window, then the deletion rule
decides which tokens go once the window holds more than ``k``:

- ``fifo``: the oldest token;
- ``block``: the oldest ``B`` tokens at once;
- ``message``: the oldest whole message, i.e. every token up to and including the first
  ``delimiter`` (the oldest token alone if no message has ended yet);
- ``none``: nothing, ever (the unbounded window of Remark 1).

With ``pinned = m`` the first ``m`` prompt tokens (a system prompt) are never deleted: the rule
applies to what follows them. With a ``reset`` token, premises read only what follows its last
occurrence in the window (:func:`after_reset`); the tokens before it still occupy the window
until they are deleted.

Page-states are stored in canonical form: exactly ``k`` positions (longer under ``none``), pads
``N`` first, then the tokens, oldest first. The initial window is ``k - len(prompt)`` pads
followed by the prompt (under ``fifo`` a longer prompt keeps its last ``k`` tokens). Tokens are
integers; the pad is ``V`` and ``V + 1`` marks "before step 0" in the deleted-token memory used
by the ``periodic`` criterion.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


def token_dtype(n_tokens: int) -> np.dtype:
    return np.min_scalar_type(n_tokens + 1)


class DeletionRule:
    """How a window of length ``k`` deletes after each append; one registered class per rule.

    A rule *slides* when every replicate deletes the same number of oldest tokens at every step
    (what the simulator's O(1) sliding reader needs); the others rewrite canonical windows with
    :meth:`apply`, which shifts out ``count`` tokens after the pinned prefix, ``count`` being what
    :meth:`count` says for each row. Adding a rule is adding one class here.
    """

    name: ClassVar[str]
    deletes_oldest: ClassVar[bool] = True  # False only for the unbounded window

    def __init__(self, length: int, pad: int, pinned: int = 0):
        self.length = length
        self.pad = pad
        self.pinned = pinned

    @property
    def sliding(self) -> bool:
        return False

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
        rows, width = grown.shape
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

    def windows(self, initial: np.ndarray, replicates: int, n_tokens: int, memory: int = 0) -> "Windows":
        """The windows of ``replicates`` replicates starting from ``initial``."""
        kind = SlidingWindows if self.sliding else RereadingWindows
        return kind(initial, replicates, self, n_tokens, memory)


RULES: dict[str, type[DeletionRule]] = {}


def rule(cls: type[DeletionRule]) -> type[DeletionRule]:
    """Class decorator: register a deletion rule under its ``name``."""
    RULES[cls.name] = cls
    return cls


@rule
class Fifo(DeletionRule):
    """Once full, each step deletes the oldest token (after the pinned prefix)."""

    name = "fifo"

    @property
    def sliding(self) -> bool:
        return self.pinned == 0

    def initial_window(self, prompt: list[int]) -> np.ndarray:
        """A prompt longer than the window keeps its last ``k`` tokens."""
        return super().initial_window(prompt[-self.length :] if prompt else prompt)

    def count(self, grown: np.ndarray) -> np.ndarray:
        return np.ones(len(grown), dtype=np.int64)


@rule
class NoDeletion(DeletionRule):
    """Nothing is ever deleted: the unbounded window of Remark 1."""

    name = "none"
    deletes_oldest = False

    @property
    def sliding(self) -> bool:
        return True


@rule
class Block(DeletionRule):
    """Once full, delete the oldest ``block`` tokens at once."""

    name = "block"

    def __init__(self, length: int, pad: int, pinned: int = 0, block: int = 1):
        super().__init__(length, pad, pinned)
        self.block = block

    def count(self, grown: np.ndarray) -> np.ndarray:
        return np.full(len(grown), self.block, dtype=np.int64)


@rule
class Message(DeletionRule):
    """Once full, delete the oldest whole message: every token up to and including the first
    ``delimiter`` after the pinned prefix (the oldest token alone if no message has ended)."""

    name = "message"

    def __init__(self, length: int, pad: int, pinned: int = 0, delimiter: int = -1):
        super().__init__(length, pad, pinned)
        self.delimiter = delimiter

    def count(self, grown: np.ndarray) -> np.ndarray:
        ends = grown[:, self.pinned : self.length] == self.delimiter
        return np.where(ends.any(axis=1), np.argmax(ends, axis=1) + 1, 1)


def deletion_rule(context, index: dict[str, int], pad: int) -> DeletionRule:
    """The rule of a scenario's ``[context]`` table (tokens by ``index``)."""
    extra = {}
    if context.deletion == "block":
        extra["block"] = context.block
    if context.deletion == "message":
        extra["delimiter"] = index[context.delimiter]
    return RULES[context.deletion](context.length, pad, context.pinned, **extra)


def after_reset(windows: np.ndarray, reset: int, pad: int) -> np.ndarray:
    """What premises read: every position up to the last ``reset`` token becomes a pad."""
    hits = windows == reset
    if not hits.any():
        return windows
    width = windows.shape[1]
    last = np.where(hits.any(axis=1), width - 1 - np.argmax(hits[:, ::-1], axis=1), -1)
    return np.where(np.arange(width)[None, :] <= last[:, None], pad, windows)


def repeats(extended: np.ndarray, period: int, memory: int) -> np.ndarray:
    """Whether the page-state equals the one ``d`` steps earlier for some ``1 <= d <= period``,
    under ``fifo`` (``extended`` holds ``memory >= period`` deleted tokens before the page-state)."""
    width = extended.shape[1]
    now = extended[:, memory:]
    out = np.zeros(len(extended), dtype=bool)
    for d in range(1, period + 1):
        out |= np.all(now == extended[:, memory - d : width - d], axis=1)
    return out


class Windows:
    """The windows of all replicates (``window``, ``last``, ``append``, ``delete``, ``repeats``);
    :class:`SlidingWindows` or :class:`RereadingWindows`, as the rule decides."""

    def __init__(self, rule: DeletionRule, n_tokens: int, memory: int):
        self.rule = rule
        self.length = rule.length
        self.memory = memory
        self.before_start = n_tokens + 1

    def last(self, count: int) -> np.ndarray:
        """(R, count): the most recent ``count`` positions (pads included)."""
        return self.window[:, -count:]


class SlidingWindows(Windows):
    """Windows under a sliding rule (``fifo`` without a pinned prefix, ``none``): one buffer,
    ``buf[:, start:end]`` being the page-states; ``memory`` columns before ``start`` keep the most
    recently deleted tokens, so the page-state ``d <= memory`` steps earlier is
    ``buf[:, start - d : end - d]``."""

    def __init__(self, window: np.ndarray, replicates: int, rule: DeletionRule, n_tokens: int, memory: int = 0):
        super().__init__(rule, n_tokens, memory)
        width = memory + len(window)
        self.buf = np.full((replicates, 2 * width + 64), self.before_start, dtype=token_dtype(n_tokens))
        self.buf[:, memory:width] = window
        self.start, self.end = memory, width

    @property
    def window(self) -> np.ndarray:
        """(R, L) current page-states."""
        return self.buf[:, self.start : self.end]

    def append(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per replicate; return the tokens that left the last-``k`` view."""
        self.reserve(1)
        self.buf[:, self.end] = tokens
        self.end += 1
        return self.buf[:, self.end - self.length - 1].copy()

    def delete(self) -> int:
        """Apply the rule after an append; return how many oldest positions every replicate
        dropped. Sets ``deleted_tokens``, the (R,) number of real tokens (not pads) deleted."""
        pad = self.before_start - 1
        count = 0
        if self.rule.deletes_oldest and self.end - self.start > self.length:
            count = self.end - self.start - self.length
            self.start += count
        self.deleted_tokens = np.sum(self.buf[:, self.start - count : self.start] < pad, axis=1)
        return count

    def repeats(self, period: int) -> np.ndarray:
        """Whether each page-state equals the one ``d`` steps earlier for some ``d <= period``
        (a window that never deletes never repeats)."""
        if not self.rule.deletes_oldest:
            return np.zeros(self.window.shape[0], dtype=bool)
        return repeats(self.buf[:, self.start - self.memory : self.end], period, self.memory)

    def reserve(self, columns: int) -> None:
        """Make room for ``columns`` more appended tokens: shift the kept part (page-states and
        ``memory`` columns) to the front, or grow the buffer when that is not enough."""
        if self.end + columns <= self.buf.shape[1]:
            return
        keep = self.buf[:, self.start - self.memory : self.end]
        if keep.shape[1] + columns > self.buf.shape[1] or keep.shape[1] * 2 > self.buf.shape[1]:
            width = max(2 * self.buf.shape[1], keep.shape[1] + columns)
            grown = np.full((self.buf.shape[0], width), self.before_start, dtype=self.buf.dtype)
            grown[:, : keep.shape[1]] = keep
            self.buf = grown
        else:
            self.buf[:, : keep.shape[1]] = keep.copy()
        self.start, self.end = self.memory, keep.shape[1]


class RereadingWindows(Windows):
    """Windows under a rule where replicates may delete different numbers of tokens: a canonical
    (R, k) array rewritten by :meth:`DeletionRule.apply` each step, with the last ``memory``
    page-states kept for the ``periodic`` criterion."""

    def __init__(self, window: np.ndarray, replicates: int, rule: DeletionRule, n_tokens: int, memory: int = 0):
        super().__init__(rule, n_tokens, memory)
        self.array = np.tile(window.astype(token_dtype(n_tokens)), (replicates, 1))
        self.grown = None
        self.history: list[np.ndarray] = []

    @property
    def window(self) -> np.ndarray:
        """(R, k) current page-states ((R, k + 1) between an append and the deletion)."""
        return self.array if self.grown is None else self.grown

    def append(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per replicate; return the tokens that left the last-``k`` view."""
        self.grown = np.concatenate([self.array, tokens[:, None].astype(self.array.dtype)], axis=1)
        return self.grown[:, 0].copy()

    def delete(self) -> int:
        """Apply the rule after an append; return -1 (replicates may differ: readers re-read).
        Sets ``deleted_tokens``, the (R,) number of real tokens (not pads) deleted."""
        pad = self.before_start - 1
        if self.memory:
            self.history = ([self.array] + self.history)[: self.memory]
        held = np.sum(self.grown < pad, axis=1)
        self.array, self.grown = self.rule.apply(self.grown), None
        self.deleted_tokens = held - np.sum(self.array < pad, axis=1)
        return -1

    def repeats(self, period: int) -> np.ndarray:
        """Whether each page-state equals the one ``d`` steps earlier for some ``d <= period``."""
        out = np.zeros(self.array.shape[0], dtype=bool)
        for earlier in self.history[:period]:
            out |= np.all(self.array == earlier, axis=1)
        return out
