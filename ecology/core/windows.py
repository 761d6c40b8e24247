"""The windows of R replicates side by side, as the deletion rule (:mod:`ecology.kinds.deletion`) keeps them.

Page-states are stored in canonical form: exactly ``k`` positions (longer under ``none``), pads
``N`` first, then the tokens, oldest first. Tokens are integers; the pad is ``V`` and ``V + 1``
marks "before step 0" in the deleted-token memory used by the ``periodic`` criterion. Under a
sliding rule one buffer holds the windows and the recently deleted tokens
(:class:`SlidingWindows`); under the others each step rewrites canonical windows
(:class:`RereadingWindows`). With a ``reset`` token premises read only what follows its last
occurrence (:func:`after_reset`); the tokens before it still occupy the window.
"""

from __future__ import annotations

import numpy as np

from ecology.kinds.criteria import equals_earlier
from ecology.kinds.deletion import DeletionRule


def token_dtype(n_tokens: int) -> np.dtype:
    return np.min_scalar_type(n_tokens + 1)


def after_reset(windows: np.ndarray, reset: int, pad: int) -> np.ndarray:
    """What premises read: every position up to the last ``reset`` token becomes a pad."""
    hits = windows == reset
    if not hits.any():
        return windows
    width = windows.shape[1]
    last = np.where(hits.any(axis=1), width - 1 - np.argmax(hits[:, ::-1], axis=1), -1)
    return np.where(np.arange(width)[None, :] <= last[:, None], pad, windows)


class Windows:
    """The windows of all replicates (``window``, ``last``, ``append``, ``delete``, ``equals_earlier``);
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

    def equals_earlier(self, period: int) -> np.ndarray:
        """Whether each page-state equals the one ``d`` steps earlier for some ``d <= period``
        (a window that never deletes never repeats)."""
        if not self.rule.deletes_oldest:
            return np.zeros(self.window.shape[0], dtype=bool)
        return equals_earlier(self.buf[:, self.start - self.memory : self.end], period, self.memory)

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

    def equals_earlier(self, period: int) -> np.ndarray:
        """Whether each page-state equals the one ``d`` steps earlier for some ``d <= period``."""
        out = np.zeros(self.array.shape[0], dtype=bool)
        for earlier in self.history[:period]:
            out |= np.all(self.array == earlier, axis=1)
        return out


def windows_of(rule: DeletionRule, initial: np.ndarray, replicates: int, n_tokens: int, memory: int = 0) -> Windows:
    """The windows of ``replicates`` replicates starting from ``initial`` under ``rule``: one
    sliding buffer when the rule slides, canonical re-written windows otherwise."""
    kind = SlidingWindows if rule.sliding else RereadingWindows
    return kind(initial, replicates, rule, n_tokens, memory)
