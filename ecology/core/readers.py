"""How a premise reads a window: ``log mu_s(w) = sum_i log emit_s[q_i, w_i]`` and its final state.

From scratch (:meth:`ecology.kinds.simulacra.Automaton.read`, and its compiled twin
:func:`read_visible_jit`, which also reads only what follows the last reset token), or kept up to
date as the window slides (:class:`SlidingReader`, a two-stack queue of transfers, and its compiled
twins :func:`rebuild_jit` and :func:`slide_read_jit`): the same additions in the same order, so the
likelihoods are bit for bit the same.
"""

from __future__ import annotations

import numpy as np

from ecology.kinds.simulacra import Automaton
from ecology.numerics import jit


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


@jit
def rebuild_jit(window, step_state, step_logp, n_states, start, front_state, front_logw, back_state, back_logw):
    """Front stacks from the windows (one backward pass over the positions), back stacks the
    identity. With ``F_k`` the identity map of premise ``s``'s states and ``W_k = 0``, position
    ``j`` of token ``t`` gives ``F_j(q) = F_{j+1}(step(q, t))`` and ``W_j(q) = log emit(q, t) +
    W_{j+1}(step(q, t))`` (the transfer of the window's suffix from ``j``); the front stack
    keeps ``F_j(start)`` and ``W_j(start)``. All replicates advance one position together (loops
    over replicates innermost, stores to ``front_state[s, j, :]`` contiguous)."""
    rows, length = window.shape
    n_premises, q_max = step_state.shape[0], step_state.shape[1]
    maps = np.empty((2, q_max, rows), dtype=np.int64)
    logw = np.empty((2, q_max, rows))
    for s in range(n_premises):
        q_count = n_states[s]
        for q in range(q_count):
            for r in range(rows):
                maps[0, q, r] = q
                logw[0, q, r] = 0.0
        old = 0
        for j in range(length - 1, -1, -1):
            new = 1 - old
            for q in range(q_count):
                for r in range(rows):
                    t = window[r, j]
                    x = step_state[s, q, t]
                    logw[new, q, r] = step_logp[s, q, t] + logw[old, x, r]
                    maps[new, q, r] = maps[old, x, r]
            for r in range(rows):
                front_state[s, j, r] = maps[new, start[s], r]
                front_logw[s, j, r] = logw[new, start[s], r]
            old = new
        for q in range(q_count):
            for r in range(rows):
                back_state[s, q, r] = q
                back_logw[s, q, r] = 0.0


@jit
def read_visible_jit(window, reset, pad, next_at, logp_at, start, states, loglik):
    """Every premise reads each row of ``window``, positions up to the row's last ``reset`` token
    read as pads (:func:`ecology.core.windows.after_reset`): ``log mu_s(w) = sum_j log emit_s[q_j, w_j]``
    in order. The tables are flat: entry ``i = q (V + 1) + t`` of premise ``s`` holds
    ``log emit_s[q, t]`` (``logp_at``) and the next state's offset ``q' (V + 1)`` (``next_at``), so a
    lookup is one addition; four rows are read side by side, so that four independent chains of
    lookups overlap (each waits for the state the previous one gave)."""
    rows, length = window.shape
    width = pad + 1
    last = np.full(rows, -1, dtype=np.int64)
    if reset >= 0:
        for r in range(rows):
            for j in range(length):
                if window[r, j] == reset:
                    last[r] = j
    for s in range(len(start)):
        nxt, lp = next_at[s], logp_at[s]
        r = 0
        while r + 4 <= rows:
            o0 = o1 = o2 = o3 = start[s] * width
            w0 = w1 = w2 = w3 = 0.0
            for j in range(length):
                i0 = o0 + (pad if j <= last[r] else window[r, j])
                i1 = o1 + (pad if j <= last[r + 1] else window[r + 1, j])
                i2 = o2 + (pad if j <= last[r + 2] else window[r + 2, j])
                i3 = o3 + (pad if j <= last[r + 3] else window[r + 3, j])
                w0 += lp[i0]
                w1 += lp[i1]
                w2 += lp[i2]
                w3 += lp[i3]
                o0, o1, o2, o3 = nxt[i0], nxt[i1], nxt[i2], nxt[i3]
            states[s, r], states[s, r + 1], states[s, r + 2], states[s, r + 3] = \
                o0 // width, o1 // width, o2 // width, o3 // width
            loglik[s, r], loglik[s, r + 1], loglik[s, r + 2], loglik[s, r + 3] = w0, w1, w2, w3
            r += 4
        for r in range(r, rows):
            o = start[s] * width
            weight = 0.0
            for j in range(length):
                i = o + (pad if j <= last[r] else window[r, j])
                weight += lp[i]
                o = nxt[i]
            states[s, r] = o // width
            loglik[s, r] = weight


@jit
def slide_read_jit(tokens, head, rebuild, window, step_state, step_logp, n_states, start, front_state, front_logw,
                back_state, back_logw, states, loglik):
    """The two-stack reader (module docstring): push each replicate's token on the back (or
    rebuild the front from the window when the head ran past it), then read at ``head``."""
    rows = len(tokens)
    n_premises = len(start)
    length = front_state.shape[1]
    if rebuild:
        rebuild_jit(window, step_state, step_logp, n_states, start, front_state, front_logw, back_state, back_logw)
    else:
        for s in range(n_premises):
            for q in range(n_states[s]):
                for r in range(rows):
                    t = tokens[r]
                    x = back_state[s, q, r]
                    back_logw[s, q, r] += step_logp[s, x, t]
                    back_state[s, q, r] = step_state[s, x, t]
    for s in range(n_premises):
        for r in range(rows):
            if head < length:
                entry = front_state[s, head, r]
                weight = front_logw[s, head, r]
            else:
                entry = start[s]
                weight = 0.0
            states[s, r] = back_state[s, entry, r]
            loglik[s, r] = weight + back_logw[s, entry, r]
