"""The compiled engine: the numpy engine's step, per replicate, in numba-compiled loops.

The numpy engine (:class:`ecology.dynamics.SlidingReader`, :meth:`ecology.dynamics.Mixture.combine`,
:func:`ecology.dynamics.tempered`, :func:`ecology.dynamics.sample`) runs each operation as one
numpy call over all R replicates: a step is a few dozen passes over memory. This module runs
the *same* algorithm with the loop over replicates outermost, so a replicate's state stays in
cache for the whole step. Per replicate ``r`` and premise ``s`` (notation of SCIENCE.md and
:mod:`ecology.dynamics`):

1. draw (``sample``): ``t = #{u : c_u <= U * c_{V-1}}`` with ``c`` the cumulative sums of
   ``exp log p_T(. | w)`` and ``U`` the step's uniform, drawn by the model from its numpy
   Generator exactly as the numpy engine draws it (one ``rng.random(R)`` per step);
2. read the new window (``advance``):

   - sliding rules (``fifo`` without a pinned prefix, ``none``, no reset token): the
     two-stack queue of transfers of :class:`ecology.dynamics.SlidingReader`: the back stack
     ``(back_state[q], back_logw[q])`` composes the appended token, the front stack
     ``front_state[j], front_logw[j]`` holds the composition of tokens ``j ..`` at the start
     state, deletion advances ``head`` and a head past the front rebuilds it from the window;
     ``log mu_s(w) = front_logw[head] + back_logw[front_state[head]]``, the same additions in
     the same order as the numpy reader, so the likelihoods are bit for bit the same;
   - the other rules (``block``, ``message``, ``pinned``, a ``reset`` token): every premise
     re-reads the visible window, ``log mu_s(w) = sum_i step_logp_s[q_i, w_i]`` (O(k));

3. Bayes and mixing: ``log alpha_s = log prior_s + log mu_s - log Z``,
   ``log mu(t | w) = logsumexp_s(log alpha_s + log emit_s[q_s, t])``, ``F = -log Z``, and the
   tempered law ``log p_T`` exactly as :func:`ecology.dynamics.tempered` (shift by the maximum,
   divide by ``T``, normalise; greedy with ties to the first token within ``GREEDY_TIE`` at
   ``T = 0``).

What is guaranteed against the numpy engine (``tests/test_kernel.py``): the additions of the
likelihoods are the same, hence identical; ``exp`` and ``log`` are numba's (LLVM/libm) where
numpy may use its own vectorised ones, which can differ in the last bit, so amplitudes, laws,
free energies and every observable computed from them agree to ~1e-15 relative (tested to
1e-12); the tokens, rasters, hitting times and criteria are identical unless a uniform falls
within a few ulps of a boundary of the cumulative law (probability ~1e-15 per draw).

Everything after the step (the context's append and deletion, the token ledger, criteria,
observables) is the numpy engine's own code, run on the arrays this engine produces; drift
(:meth:`ecology.dynamics.Mixture.drift`) re-reads its successor windows with this engine.
Compilation is cached on disk (``cache=True``, in ``ecology/__pycache__``): the first run on a
machine pays it (:func:`warm_up` measures it), later runs and a sweep's workers load it.
"""

from __future__ import annotations

import time

import numpy as np

from .dynamics import GREEDY_TIE, Step

try:
    import numba
except ImportError:  # numba is a core dependency; without it every run falls back to numpy
    numba = None


def unsupported(compiled) -> str | None:
    """Why the compiled engine cannot run a compiled scenario (None if it can)."""
    if numba is None:
        return "numba is not installed"
    for p in compiled.premises:
        if getattr(p, "automaton", None) is None:
            return f"premise '{p.name}' is a trained model, not an automaton"
    return None


def choose(compiled, requested: str) -> tuple[str, str | None]:
    """The engine that runs (``"compiled"`` or ``"numpy"``) and, on a fallback, why."""
    if requested == "numpy":
        return "numpy", None
    reason = unsupported(compiled)
    return ("numpy", f"the compiled engine cannot run this scenario ({reason}); running on numpy") if reason \
        else ("compiled", None)


# ---------------------------------------------------------------------------------------------
# Compiled loops (replicate-outer). Arrays are premise-padded: step_state/step_logp (S, Qmax, V+1);
# front stacks (S, L, R), back stacks (R, S, Qmax).

if numba is not None:
    jit = numba.njit(cache=True, error_model="numpy", nogil=True)
    inline = numba.njit(cache=True, error_model="numpy", nogil=True, inline="always")
else:  # pragma: no cover - only without numba, where nothing below is called
    def jit(f):
        return f

    inline = jit


@jit
def _sample(log_p, u, tokens):
    """Inverse-CDF draw per row, as :func:`ecology.dynamics.sample`."""
    rows, n_tokens = log_p.shape
    cum = np.empty(n_tokens)
    for r in range(rows):
        total = 0.0
        for t in range(n_tokens):
            total += np.exp(log_p[r, t])
            cum[t] = total
        bound = u[r] * total
        count = 0
        for t in range(n_tokens):
            if cum[t] <= bound:
                count += 1
        tokens[r] = count


@inline
def _logsumexp(x):
    """``log sum exp x`` as :func:`ecology.dynamics.logsumexp` (max, shift, sum in order)."""
    top = x[0]
    for i in range(1, len(x)):
        if x[i] > top or np.isnan(x[i]):
            top = x[i]
    safe = top if np.isfinite(top) else 0.0
    total = 0.0
    for i in range(len(x)):
        total += np.exp(x[i] - safe)
    return np.log(total) + safe


@inline
def _mix(r, states, loglik, step_logp, log_prior, temperature, greedy_tie,
         log_amp, log_mu, log_p, free_energy, joint, terms, z):
    """Bayes, mixing and tempering for replicate ``r`` (module docstring, step 3)."""
    n_premises = len(log_prior)
    n_tokens = log_mu.shape[1]
    for s in range(n_premises):
        joint[s] = log_prior[s] + loglik[s]
    log_z = _logsumexp(joint)
    for s in range(n_premises):
        log_amp[r, s] = joint[s] - log_z
    for t in range(n_tokens):
        for s in range(n_premises):
            terms[s] = log_amp[r, s] + step_logp[s, states[s], t]
        log_mu[r, t] = _logsumexp(terms)
    free_energy[r] = -log_z
    if temperature == 1.0:
        for t in range(n_tokens):
            log_p[r, t] = log_mu[r, t]
        return
    top = log_mu[r, 0]
    for t in range(1, n_tokens):
        if log_mu[r, t] > top or np.isnan(log_mu[r, t]):
            top = log_mu[r, t]
    if temperature == 0.0:
        best = 0
        for t in range(n_tokens):
            if log_mu[r, t] >= top - greedy_tie:
                best = t
                break
        for t in range(n_tokens):
            log_p[r, t] = 0.0 if t == best else -np.inf
        return
    shift = top if np.isfinite(top) else 0.0
    for t in range(n_tokens):
        z[t] = 0.0 if log_mu[r, t] == top else (log_mu[r, t] - shift) / temperature
    norm = _logsumexp(z)
    for t in range(n_tokens):
        log_p[r, t] = z[t] - norm


@inline
def _rebuild_row(r, window, step_state, step_logp, n_states, start, front_state, front_logw,
                 back_state, back_logw, fs, fw, moved, weights):
    """Front stack of replicate ``r`` from its window (one backward pass), back = identity."""
    n_premises = len(start)
    length = window.shape[1]
    for s in range(n_premises):
        q_count = n_states[s]
        for q in range(q_count):
            fs[q] = q
            fw[q] = 0.0
        for j in range(length - 1, -1, -1):
            t = window[r, j]
            for q in range(q_count):
                moved[q] = step_state[s, q, t]
            for q in range(q_count):
                weights[q] = step_logp[s, q, t] + fw[moved[q]]
                moved[q] = fs[moved[q]]
            for q in range(q_count):
                fw[q] = weights[q]
                fs[q] = moved[q]
            front_state[s, j, r] = fs[start[s]]
            front_logw[s, j, r] = fw[start[s]]
        for q in range(q_count):
            back_state[r, s, q] = q
            back_logw[r, s, q] = 0.0


@jit
def _rebuild(window, step_state, step_logp, n_states, start, front_state, front_logw, back_state, back_logw):
    q_max = step_state.shape[1]
    fs = np.empty(q_max, dtype=np.int64)
    fw = np.empty(q_max)
    moved = np.empty(q_max, dtype=np.int64)
    weights = np.empty(q_max)
    for r in range(window.shape[0]):
        _rebuild_row(r, window, step_state, step_logp, n_states, start, front_state, front_logw,
                     back_state, back_logw, fs, fw, moved, weights)


@jit
def _advance_sliding(tokens, head, rebuild, window, step_state, step_logp, n_states, start,
                     front_state, front_logw, back_state, back_logw, log_prior, temperature, greedy_tie,
                     states, loglik, log_amp, log_mu, log_p, free_energy):
    """Push each replicate's token, rebuild its front if the head ran past it, read, mix."""
    n_premises = len(start)
    q_max = step_state.shape[1]
    length = front_state.shape[1]
    fs = np.empty(q_max, dtype=np.int64)
    fw = np.empty(q_max)
    moved = np.empty(q_max, dtype=np.int64)
    weights = np.empty(q_max)
    joint = np.empty(n_premises)
    terms = np.empty(n_premises)
    z = np.empty(log_mu.shape[1])
    row_states = np.empty(n_premises, dtype=np.int64)
    row_loglik = np.empty(n_premises)
    for r in range(len(tokens)):
        t = tokens[r]
        if rebuild:  # the rebuilt front holds the appended token; the back restarts empty
            _rebuild_row(r, window, step_state, step_logp, n_states, start, front_state, front_logw,
                         back_state, back_logw, fs, fw, moved, weights)
        else:
            for s in range(n_premises):
                for q in range(n_states[s]):
                    b = back_state[r, s, q]
                    back_logw[r, s, q] += step_logp[s, b, t]
                    back_state[r, s, q] = step_state[s, b, t]
        for s in range(n_premises):
            if head < length:
                entry = front_state[s, head, r]
                weight = front_logw[s, head, r]
            else:
                entry = start[s]
                weight = 0.0
            row_states[s] = back_state[r, s, entry]
            row_loglik[s] = weight + back_logw[r, s, entry]
            states[s, r] = row_states[s]
            loglik[s, r] = row_loglik[s]
        _mix(r, row_states, row_loglik, step_logp, log_prior, temperature, greedy_tie,
             log_amp, log_mu, log_p, free_energy, joint, terms, z)


@jit
def _advance_rereading(visible, step_state, step_logp, start, log_prior, temperature, greedy_tie,
                       states, loglik, log_amp, log_mu, log_p, free_energy):
    """Every premise re-reads each replicate's visible window, then mix."""
    n_premises = len(start)
    joint = np.empty(n_premises)
    terms = np.empty(n_premises)
    z = np.empty(log_mu.shape[1])
    row_states = np.empty(n_premises, dtype=np.int64)
    row_loglik = np.empty(n_premises)
    for r in range(visible.shape[0]):
        for s in range(n_premises):
            q = start[s]
            weight = 0.0
            for j in range(visible.shape[1]):
                t = visible[r, j]
                weight += step_logp[s, q, t]
                q = step_state[s, q, t]
            row_states[s] = q
            row_loglik[s] = weight
            states[s, r] = q
            loglik[s, r] = weight
        _mix(r, row_states, row_loglik, step_logp, log_prior, temperature, greedy_tie,
             log_amp, log_mu, log_p, free_energy, joint, terms, z)


# ---------------------------------------------------------------------------------------------


def as_tokens(tokens: np.ndarray) -> np.ndarray:
    """Token arrays as contiguous int64, the one type the loops are compiled for."""
    return np.ascontiguousarray(tokens, dtype=np.int64)


class Engine:
    """The compiled engine's state for R replicates of a compiled scenario.

    ``Engine(compiled, window, sliding)``; :meth:`sample` draws the tokens of a step from the
    current law and uniforms, :meth:`advance` reads the windows after the context's append and
    deletion and returns the new :class:`ecology.dynamics.Step` (with the premises' final
    states and likelihoods in ``states``, ``loglik``, premise-major (S, R)).
    """

    def __init__(self, compiled, window: np.ndarray, sliding: bool):
        premises = compiled.premises
        mixture = compiled.mixture
        self.n_tokens = compiled.n_tokens
        self.temperature = float(mixture.temperature)
        self.log_prior = np.ascontiguousarray(mixture.log_prior, dtype=float)
        self.visible = mixture.visible
        q_max = max(p.automaton.n_states for p in premises)
        width = self.n_tokens + 1
        self.step_state = np.zeros((len(premises), q_max, width), dtype=np.int64)
        self.step_logp = np.zeros((len(premises), q_max, width))
        for s, p in enumerate(premises):
            q = p.automaton.n_states
            self.step_state[s, :q] = p.automaton.step_state
            self.step_logp[s, :q] = p.automaton.step_logp
        self.n_states = np.array([p.automaton.n_states for p in premises], dtype=np.int64)
        self.start = np.array([p.automaton.start for p in premises], dtype=np.int64)
        self.sliding = sliding
        rows = window.shape[0]
        if sliding:
            length = window.shape[1]
            # front stacks premise- and position-major, so that reading position ``head`` of every
            # replicate walks contiguous memory
            self.front_state = np.empty((len(premises), length, rows), dtype=np.int64)
            self.front_logw = np.empty((len(premises), length, rows))
            self.back_state = np.empty((rows, len(premises), q_max), dtype=np.int64)
            self.back_logw = np.empty((rows, len(premises), q_max))
            _rebuild(as_tokens(window), self.step_state, self.step_logp, self.n_states, self.start,
                     self.front_state, self.front_logw, self.back_state, self.back_logw)
            self.head = 0
            self.no_window = np.zeros((0, length), dtype=np.int64)

    def _outputs(self, rows: int):
        S = len(self.start)
        return (np.empty((S, rows), dtype=np.intp), np.empty((S, rows)), np.empty((rows, S)),
                np.empty((rows, self.n_tokens)), np.empty((rows, self.n_tokens)), np.empty(rows))

    def _step(self, out) -> Step:
        states, loglik, log_amp, log_mu, log_p, free_energy = out
        self.states, self.loglik = states, loglik
        return Step(log_amp, log_mu, log_mu if self.temperature == 1.0 else log_p, free_energy)

    def mixture_on(self, windows: np.ndarray) -> Step:
        """The mixture on arbitrary windows, as :meth:`ecology.dynamics.Mixture.read` (premises
        read after the last reset token); the engine's own state is left alone."""
        out = self._outputs(windows.shape[0])
        _advance_rereading(as_tokens(self.visible(windows)), self.step_state, self.step_logp, self.start,
                           self.log_prior, self.temperature, GREEDY_TIE, *out)
        return Step(out[2], out[3], out[3] if self.temperature == 1.0 else out[4], out[5])

    def sample(self, log_p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One token per replicate by inverse CDF from ``exp(log_p)`` with the uniforms ``u``."""
        tokens = np.empty(len(u), dtype=np.intp)
        _sample(log_p, u, tokens)
        return tokens

    def read(self, visible: np.ndarray) -> Step:
        """The mixture on the visible windows, every premise reading them from scratch (the
        initial step, and every step of a re-reading rule)."""
        out = self._outputs(visible.shape[0])
        _advance_rereading(as_tokens(visible), self.step_state, self.step_logp, self.start,
                           self.log_prior, self.temperature, GREEDY_TIE, *out)
        return self._step(out)

    def advance(self, tokens: np.ndarray, deleted: int, window: np.ndarray, visible: np.ndarray | None) -> Step:
        """The mixture after the context appended ``tokens`` and deleted: under a sliding rule
        ``deleted`` oldest tokens of every replicate (``window`` the windows after deletion),
        otherwise re-reading ``visible``."""
        if not self.sliding:
            return self.read(visible)
        self.head += deleted
        rebuild = self.head > self.front_state.shape[1]
        if rebuild:  # only fifo deletes while sliding: its windows keep the length k of the front
            self.head = 0
        out = self._outputs(len(tokens))
        read_from = as_tokens(window) if rebuild else self.no_window  # read only to rebuild
        _advance_sliding(as_tokens(tokens), self.head, rebuild, read_from,
                         self.step_state, self.step_logp, self.n_states, self.start, self.front_state,
                         self.front_logw, self.back_state, self.back_logw, self.log_prior, self.temperature,
                         GREEDY_TIE, *out)
        return self._step(out)


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every loop on a tiny problem; seconds taken."""
    began = time.perf_counter()
    if numba is None:
        return 0.0
    step_state = np.zeros((1, 1, 2), dtype=np.int64)
    step_logp = np.zeros((1, 1, 2))
    one = np.ones(1, dtype=np.int64)
    zero = np.zeros(1, dtype=np.int64)
    window = np.zeros((1, 2), dtype=np.int64)
    front_state = np.zeros((1, 2, 1), dtype=np.int64)
    front_logw = np.zeros((1, 2, 1))
    back_state = np.zeros((1, 1, 1), dtype=np.int64)
    back_logw = np.zeros((1, 1, 1))
    _rebuild(window, step_state, step_logp, one, zero, front_state, front_logw, back_state, back_logw)
    out = (np.empty((1, 1), dtype=np.intp), np.empty((1, 1)), np.empty((1, 1)), np.empty((1, 1)),
           np.empty((1, 1)), np.empty(1))
    _advance_sliding(zero, 0, True, window, step_state, step_logp, one, zero, front_state, front_logw,
                     back_state, back_logw, np.zeros(1), 1.0, GREEDY_TIE, *out)
    _advance_rereading(window, step_state, step_logp, zero, np.zeros(1), 1.0, GREEDY_TIE, *out)
    _sample(np.zeros((1, 1)), np.zeros(1), np.empty(1, dtype=np.intp))
    return time.perf_counter() - began
