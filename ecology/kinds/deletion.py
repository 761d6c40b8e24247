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

Page-states are stored in canonical form: exactly ``k`` positions (longer under ``none``), pads
``N`` first, then the tokens, oldest first. The initial window is ``k - len(prompt)`` pads
followed by the prompt (under ``fifo`` a longer prompt keeps its last ``k`` tokens). Tokens are
integers; the pad is ``V`` and ``V + 1`` marks "before step 0" in the deleted-token memory used
by the ``periodic`` criterion.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


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
