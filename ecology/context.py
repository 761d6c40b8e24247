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

from dataclasses import dataclass

import numpy as np


def initial_window(prompt: list[int], length: int, pad: int, deletion: str) -> np.ndarray:
    """The page-state at step 0 (see module docstring)."""
    tokens = np.asarray(prompt, dtype=np.int64)
    if deletion == "fifo":
        tokens = tokens[-length:] if len(tokens) else tokens
    pads = max(length - len(tokens), 0)
    return np.concatenate([np.full(pads, pad, dtype=np.int64), tokens])


def token_dtype(n_tokens: int) -> np.dtype:
    return np.min_scalar_type(n_tokens + 1)


@dataclass(frozen=True)
class DeletionRule:
    """One scenario's deletion rule, applied to canonical windows of length ``k``."""

    kind: str
    length: int
    pad: int
    block: int = 1
    delimiter: int = -1
    pinned: int = 0

    @classmethod
    def of(cls, context, index: dict[str, int], pad: int) -> "DeletionRule":
        """The rule of a scenario's ``[context]`` table (tokens by ``index``)."""
        return cls(context.deletion, context.length, pad, context.block or 1,
                   index[context.delimiter] if context.delimiter else -1, context.pinned)

    @property
    def sliding(self) -> bool:
        """Whether every replicate deletes the same number of oldest tokens at every step
        (what the simulator's O(1) sliding reader needs)."""
        return self.kind == "none" or (self.kind == "fifo" and self.pinned == 0)

    def successor(self, windows: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The page-states after appending ``tokens`` (one per row) and deleting."""
        grown = np.concatenate([windows, tokens[:, None].astype(windows.dtype)], axis=1)
        if self.kind == "none":
            return grown
        return grown[:, 1:] if self.sliding else self.apply(grown)

    def apply(self, grown: np.ndarray) -> np.ndarray:
        """(R, k + 1) windows after an append -> (R, k) canonical windows after deletion."""
        rows, width = grown.shape
        k, m = self.length, self.pinned
        full = grown[:, 0] != self.pad  # the window held k tokens before the append
        count = np.where(full, 1, 0)
        if self.kind == "block":
            count = np.where(full, self.block, 0)
        elif self.kind == "message":
            ends = grown[:, m:k] == self.delimiter
            first = np.argmax(ends, axis=1)
            count = np.where(full, np.where(ends.any(axis=1), first + 1, 1), 0)
        # output position i takes: a pad (i < count - 1), a pinned token, or a token after the gap
        i = np.arange(k)[None, :]
        lead = np.maximum(count - 1, 0)[:, None]
        source = np.where(i - lead < m, i - lead + 1 - full[:, None], i - lead + count[:, None] + 1 - full[:, None])
        shifted = np.take_along_axis(grown, np.clip(source, 0, width - 1), axis=1)
        shifted[i < lead] = self.pad
        return shifted


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


class Context:
    """The windows of all replicates.

    Under ``fifo`` and ``none`` (no pinned prefix) they live in one buffer, ``buf[:, start:end]``
    being the page-states; ``memory`` columns before ``start`` keep the most recently deleted
    tokens, so the page-state ``d <= memory`` steps earlier is ``buf[:, start - d : end - d]``.
    Under the other rules every replicate may delete a different number of tokens, and the
    windows are a canonical (R, k) array rewritten by :meth:`DeletionRule.apply` each step, with
    the last ``memory`` page-states kept for the ``periodic`` criterion.
    """

    def __init__(self, window: np.ndarray, replicates: int, rule: "DeletionRule", n_tokens: int, memory: int = 0):
        self.rule = rule
        self.length = rule.length
        self.memory = memory
        self.before_start = n_tokens + 1
        if rule.sliding:
            width = memory + len(window)
            self.buf = np.full((replicates, 2 * width + 64), self.before_start, dtype=token_dtype(n_tokens))
            self.buf[:, memory:width] = window
            self.start, self.end = memory, width
        else:
            self.array = np.tile(window.astype(token_dtype(n_tokens)), (replicates, 1))
            self.grown = None
            self.history: list[np.ndarray] = []

    @property
    def window(self) -> np.ndarray:
        """(R, L) current page-states."""
        if self.rule.sliding:
            return self.buf[:, self.start : self.end]
        return self.array if self.grown is None else self.grown

    def last(self, count: int) -> np.ndarray:
        """(R, count): the most recent ``count`` positions (pads included)."""
        return self.window[:, -count:]

    def append(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per replicate; return the tokens that left the last-``k`` view."""
        if not self.rule.sliding:
            self.grown = np.concatenate([self.array, tokens[:, None].astype(self.array.dtype)], axis=1)
            return self.grown[:, 0].copy()
        if self.end == self.buf.shape[1]:
            self._make_room()
        self.buf[:, self.end] = tokens
        self.end += 1
        return self.buf[:, self.end - self.length - 1].copy()

    def delete(self) -> int:
        """Apply the deletion rule after an append; return how many oldest positions every
        replicate dropped (-1 when replicates may differ: readers must then re-read). Sets
        ``deleted_tokens``, the (R,) number of real tokens (not pads) deleted."""
        pad = self.before_start - 1
        if not self.rule.sliding:
            if self.memory:
                self.history = ([self.array] + self.history)[: self.memory]
            held = np.sum(self.grown < pad, axis=1)
            self.array, self.grown = self.rule.apply(self.grown), None
            self.deleted_tokens = held - np.sum(self.array < pad, axis=1)
            return -1
        count = 0
        if self.rule.kind == "fifo" and self.end - self.start > self.length:
            count = self.end - self.start - self.length
            self.start += count
        self.deleted_tokens = np.sum(self.buf[:, self.start - count : self.start] < pad, axis=1)
        return count

    def repeats(self, period: int) -> np.ndarray:
        """Whether each page-state equals the one ``d`` steps earlier for some ``d <= period``."""
        if self.rule.sliding:
            if self.rule.kind != "fifo":
                return np.zeros(self.window.shape[0], dtype=bool)
            return repeats(self.buf[:, self.start - self.memory : self.end], period, self.memory)
        out = np.zeros(self.array.shape[0], dtype=bool)
        for earlier in self.history[:period]:
            out |= np.all(self.array == earlier, axis=1)
        return out

    def _make_room(self) -> None:
        keep = self.buf[:, self.start - self.memory : self.end]
        if keep.shape[1] * 2 > self.buf.shape[1]:  # the window itself grows (deletion "none")
            grown = np.full((self.buf.shape[0], 2 * self.buf.shape[1]), self.before_start, dtype=self.buf.dtype)
            grown[:, : keep.shape[1]] = keep
            self.buf = grown
        else:
            self.buf[:, : keep.shape[1]] = keep.copy()
        self.start, self.end = self.memory, keep.shape[1]
