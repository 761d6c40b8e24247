"""The shared context: R windows side by side, and the deletion rule that keeps them finite.

Each step appends one generated token to every replicate's window, then the deletion rule
decides how many of the oldest tokens go:

- ``fifo``: once the window holds more than ``k`` tokens, delete the oldest (so a window is
  always exactly ``k`` long, its first positions padded with ``N`` until ``k`` tokens exist);
- ``none``: never delete (the unbounded window of Remark 1).

The initial window is ``k - len(prompt)`` pads followed by the prompt (under ``fifo`` a prompt
longer than ``k`` keeps its last ``k`` tokens). Tokens are integers; the pad is ``V`` and
``V + 1`` marks "before step 0" in the deleted-token memory used by the ``periodic`` criterion.
"""

from __future__ import annotations

import numpy as np

DELETIONS = ("fifo", "none")


def initial_window(prompt: list[int], length: int, pad: int, deletion: str) -> np.ndarray:
    """The page-state at step 0 (see module docstring)."""
    tokens = np.asarray(prompt, dtype=np.int64)
    if deletion == "fifo":
        tokens = tokens[-length:] if len(tokens) else tokens
    pads = max(length - len(tokens), 0)
    return np.concatenate([np.full(pads, pad, dtype=np.int64), tokens])


def token_dtype(n_tokens: int) -> np.dtype:
    return np.min_scalar_type(n_tokens + 1)


class Context:
    """The windows of all replicates in one buffer; ``buf[:, start:end]`` is the page-state.

    ``memory`` columns before ``start`` keep the most recently deleted tokens, so that the
    page-state ``d <= memory`` steps earlier is ``buf[:, start - d : end - d]``.
    """

    def __init__(self, window: np.ndarray, replicates: int, length: int, deletion: str, n_tokens: int, memory: int = 0):
        self.length = length
        self.deletion = deletion
        self.memory = memory
        self.before_start = n_tokens + 1
        width = memory + len(window)
        self.buf = np.full((replicates, 2 * width + 64), self.before_start, dtype=token_dtype(n_tokens))
        self.buf[:, memory:width] = window
        self.start, self.end = memory, width

    @property
    def window(self) -> np.ndarray:
        """(R, L) current page-states."""
        return self.buf[:, self.start : self.end]

    @property
    def extended(self) -> np.ndarray:
        """(R, memory + L): the page-state preceded by the last ``memory`` deleted tokens."""
        return self.buf[:, self.start - self.memory : self.end]

    def last(self, count: int) -> np.ndarray:
        """(R, count): the most recent ``count`` positions (pads included)."""
        return self.buf[:, self.end - count : self.end]

    def append(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per replicate; return the tokens that left the last-``k`` view."""
        if self.end == self.buf.shape[1]:
            self._make_room()
        self.buf[:, self.end] = tokens
        self.end += 1
        return self.buf[:, self.end - self.length - 1].copy()

    def delete(self) -> int:
        """Apply the deletion rule after an append; return how many tokens were deleted."""
        if self.deletion == "fifo" and self.end - self.start > self.length:
            count = self.end - self.start - self.length
            self.start += count
            return count
        return 0

    def _make_room(self) -> None:
        keep = self.buf[:, self.start - self.memory : self.end]
        if keep.shape[1] * 2 > self.buf.shape[1]:  # the window itself grows (deletion "none")
            grown = np.full((self.buf.shape[0], 2 * self.buf.shape[1]), self.before_start, dtype=self.buf.dtype)
            grown[:, : keep.shape[1]] = keep
            self.buf = grown
        else:
            self.buf[:, : keep.shape[1]] = keep.copy()
        self.start, self.end = self.memory, keep.shape[1]
