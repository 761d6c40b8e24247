"""TODO docstring (dynamics)."""

from __future__ import annotations

import numpy as np

from ecology.kinds.simulacra import Automaton


class SlidingReader:
    """``log mu_s(w)`` and the final state of one premise, kept up to date as the window slides.

    Reading token ``t`` in state ``q`` is the transfer ``q -> (next[q, t], log emit[q, t])``;
    transfers compose associatively, so a two-stack queue keeps the composition of the window's
    transfers with amortised O(1) compositions per appended or deleted token (instead of
    re-reading all ``L`` tokens):

    - the *back* stack is the composition of the tokens appended since the last rebuild, kept
      as a whole function of the entry state: ``back_state[r, q]``, ``back_logw[r, q]``;
    - the *front* stack holds, for each remaining old token ``j``, the composition of tokens
      ``j ..`` (up to the rebuild point) evaluated at the start state: ``front_state[j, r]``,
      ``front_logw[j, r]``;
    - a read composes the two: ``q = back_state[front_state[head]]``, weights added;
    - deleting advances ``head``; when it runs past the front, the front is rebuilt from the
      current window in one backward pass and the back is reset to the identity.

    Every replicate deletes the same number of tokens at the same step, so the stacks flip
    together and all operations stay vectorised over replicates.
    """

    def __init__(self, automaton: Automaton, window: np.ndarray):
        self.automaton = automaton
        self.rows = np.arange(window.shape[0])
        self.rebuild(window)

    def rebuild(self, window: np.ndarray) -> None:
        a = self.automaton
        n_rows, length = window.shape
        identity = np.tile(np.arange(a.n_states), (n_rows, 1))
        fs, fw = identity, np.zeros(identity.shape)
        self.front_state = np.empty((length, n_rows), dtype=np.intp)
        self.front_logw = np.empty((length, n_rows))
        for j in range(length - 1, -1, -1):
            t = window[:, j]
            moved = a.step_state[:, t].T  # (R, Q): state after token j from each entry state
            fw = a.step_logp[:, t].T + np.take_along_axis(fw, moved, axis=1)
            fs = np.take_along_axis(fs, moved, axis=1)
            self.front_state[j] = fs[:, a.start]
            self.front_logw[j] = fw[:, a.start]
        self.head = 0
        self.back_state = identity.copy()
        self.back_logw = np.zeros(identity.shape)

    def push(self, tokens: np.ndarray) -> None:
        """Compose the transfer of the appended token (one per replicate) onto the back."""
        column = tokens[:, None]
        self.back_logw += self.automaton.step_logp[self.back_state, column]
        self.back_state = self.automaton.step_state[self.back_state, column]

    def pop(self, count: int, window: np.ndarray) -> None:
        """Forget the ``count`` oldest tokens; ``window`` is the window after the deletion."""
        self.head += count
        if self.head > len(self.front_state):
            self.rebuild(window)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(final state, log-likelihood) of each replicate's current window."""
        if self.head < len(self.front_state):
            entry, weight = self.front_state[self.head], self.front_logw[self.head]
        else:
            entry, weight = np.full(len(self.rows), self.automaton.start), 0.0
        return self.back_state[self.rows, entry], weight + self.back_logw[self.rows, entry]
