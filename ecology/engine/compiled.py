"""The compiled engine: the numpy engine's steps, and everything they record, in numba passes.

The numpy engine (:class:`ecology.dynamics.SlidingReader`, :meth:`ecology.dynamics.Mixture.combine`,
:func:`ecology.dynamics.tempered`, :func:`ecology.dynamics.sample`, and the observables'
``record``) runs each operation as one numpy call over all R replicates: a step is a few dozen
passes over memory, plus the per-step reductions of ``steps.csv``. This module runs the *same*
algorithm in **blocks of steps** (:meth:`Engine.run`): per step a few compiled passes over the
replicates, every loop over replicates innermost, keeping only the per-step sums, counts and
quantiles the outputs need (:class:`Block`). Per replicate ``r`` and premise ``s`` (notation of
SCIENCE.md and :mod:`ecology.dynamics`):

1. print (:func:`_print_pass`): ``t = #{u : c_u <= U * c_{V-1}}`` with ``c`` the cumulative sums
   of ``p_T(. | w)`` and ``U`` the step's uniform (row ``b`` of ``rng.random((B, R))``, the same
   stream as the numpy engine's ``rng.random(R)`` per step); surprisal and credit;
2. read the new window:

   - sliding rules (``fifo`` without a pinned prefix, ``none``, no reset token): the
     two-stack queue of transfers of :class:`ecology.dynamics.SlidingReader` (:func:`_slide_read`):
     the back stack ``(back_state[q], back_logw[q])`` composes the appended token, the front
     stack ``front_state[j], front_logw[j]`` holds the composition of tokens ``j ..`` at the start
     state, deletion advances ``head`` and a head past the front rebuilds it from the window;
     ``log mu_s(w) = front_logw[head] + back_logw[front_state[head]]``, the same additions in
     the same order as the numpy reader, so the likelihoods are bit for bit the same;
   - the other rules (``block``, ``message``, ``pinned``, a ``reset`` token): the deletion rule
     rewrites the canonical windows (:func:`_delete_rereading`) and every premise re-reads the
     visible window, ``log mu_s(w) = sum_i step_logp_s[q_i, w_i]`` (:func:`_read_visible`, O(k));

3. settle (:func:`_settle_pass`): Bayes, mixing (in linear space; in log space as
   :func:`_mix` for the raster replicates and below ``LOG_SPACE_BELOW``), tempering as
   :func:`ecology.dynamics.tempered`, then every per-step sum and count of ``steps.csv``;
   quantiles (:func:`_quantiles_pass`) as ``np.quantile``.

What is guaranteed against the numpy engine (``tests/test_kernel.py``,
``tests/test_kernel_adversarial.py``, docs/engine.md): identical likelihood sums, tokens,
rasters, hitting times and criteria (unless a uniform falls within a few ulps of a boundary of
the cumulative law, or an amplitude within an ulp of a threshold plus its tie tolerance); every
recorded float within 1e-12; blocks and single steps bit for bit. Drift
(:meth:`ecology.dynamics.Mixture.drift`) re-reads its successor windows with :meth:`Engine.mixture_on`.
Compilation is cached on disk (``cache=True``, in ``ecology/__pycache__``): the first run on a
machine pays it (:func:`warm_up` measures it), later runs and a sweep's workers load it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecology.core.mixture import Step
from ecology.core.windows import SlidingWindows
from ecology.interrupts import deferred
from ecology.kinds.criteria import Periodic, PopulationAbove, WindowOnly
from ecology.kinds.observables import CERTAIN, MAJORITY, OBSERVABLES, QUANTILES
from ecology.numerics import GREEDY_TIE, TIE_TOLERANCE

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
    if compiled.rule.name not in KERNEL_RULES:
        return f"deletion rule '{compiled.rule.name}' has no compiled form"
    for c in compiled.criteria:
        if not isinstance(c, (WindowOnly, PopulationAbove, Periodic)):
            return f"criterion '{c.name}' is of a form the kernel does not evaluate"
    for item in OBSERVABLES:
        if item.summarise is None:
            return f"observable {type(item).__name__} has no compiled form (summarise)"
    return None


def choose(compiled, requested: str) -> tuple[str, str | None]:
    """The engine that runs (``"compiled"`` or ``"numpy"``) and, on a fallback, why."""
    if requested == "numpy":
        return "numpy", None
    reason = unsupported(compiled)
    return ("numpy", f"the compiled engine cannot run this scenario ({reason}); running on numpy") if reason \
        else ("compiled", None)


if numba is not None:
    from llvmlite import ir
    from numba.extending import intrinsic

    jit = numba.njit(cache=True, error_model="numpy", nogil=True)
    inline = numba.njit(cache=True, error_model="numpy", nogil=True, inline="always")

    @intrinsic
    def _as_float(typingctx, bits):
        """The float64 whose IEEE 754 bits are the int64 ``bits``."""
        return numba.types.float64(numba.types.int64), lambda ctx, builder, sig, args: builder.bitcast(
            args[0], ir.DoubleType())

    @intrinsic
    def _as_int(typingctx, x):
        """The IEEE 754 bits of the float64 ``x``, as an int64."""
        return numba.types.int64(numba.types.float64), lambda ctx, builder, sig, args: builder.bitcast(
            args[0], ir.IntType(64))
else:  # pragma: no cover - only without numba, where nothing below is called
    def jit(f):
        return f

    inline = jit
    _as_float = _as_int = None


# exp and log without a library call, so that a loop over replicates vectorises (numba's np.exp
# and np.log are scalar libm calls, ~5 ns each here; these take ~1 ns). They are fdlibm's
# algorithms (e_exp.c, e_log.c): within 1 ulp of the correctly rounded value, measured equal to
# libm's in about 90% of cases (tests/test_kernel.py checks 1 ulp and every special value).
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = LN2_HI + LN2_LO


INV_LN2 = 1.44269504088896338700e00


EXP_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
         -1.65339022054652515390e-06, 4.13813679705723846039e-08)


LOG_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
          1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)


EXP_CLAMP = 1100.0  # |x| beyond which exp(x) is 0 or inf: reduced there, it under- or overflows as it should


TWO54 = 2.0**54


MIN_NORMAL = 2.2250738585072014e-308


@inline
def _exp(x):
    """``exp x`` (NaN, +-inf and subnormal results included), branch-free: ``x = k ln 2 + r`` with
    ``|r| <= ln 2 / 2`` (``ln 2`` split in two so ``k ln 2`` is exact), ``exp r = 1 + r + r c / (2 - c)``
    with ``c = r - r^2 P(r^2)`` (fdlibm's rational approximation), times ``2^k`` built from its
    bits in two halves (so ``2^k`` below the normal range still rounds once, at the product)."""
    v = min(max(x, -EXP_CLAMP), EXP_CLAMP)
    k = np.floor(v * INV_LN2 + 0.5)
    k = k if k == k else 0.0  # NaN: any k; the result is x below
    hi = v - k * LN2_HI
    lo = k * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (EXP_P[0] + t * (EXP_P[1] + t * (EXP_P[2] + t * (EXP_P[3] + t * EXP_P[4]))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    n = np.int64(k)
    half = n >> 1
    y = y * _as_float((half + 1023) << 52) * _as_float((n - half + 1023) << 52)
    return y if x == x else x


@inline
def _log(x):
    """``log x`` for every float64 (0 gives -inf, a negative number NaN, subnormals scaled by
    ``2^54`` first), branch-free: ``x = 2^k (1 + f)`` with ``sqrt(2)/2 <= 1 + f < sqrt(2)``, then
    ``log(1 + f) = f - (f^2 / 2 - s (f^2 / 2 + R(s^2)))`` with ``s = f / (2 + f)`` (fdlibm's
    polynomial ``R``), plus ``k ln 2`` in two parts."""
    tiny = x < MIN_NORMAL
    v = x * TWO54 if tiny else x
    bits = _as_int(v)
    high = bits >> 32
    k = (high >> 20) - (1023 + 54 if tiny else 1023)
    high &= 0x000FFFFF
    i = (high + 0x95F64) & 0x100000  # the mantissa above sqrt(2): halve it
    m = _as_float(((high | (i ^ 0x3FF00000)) << 32) | (bits & 0xFFFFFFFF))
    k += i >> 20
    f = m - 1.0
    s = f / (2.0 + f)
    dk = np.float64(k)
    z = s * s
    w = z * z
    big = w * (LOG_LG[1] + w * (LOG_LG[3] + w * LOG_LG[5])) + z * (
        LOG_LG[0] + w * (LOG_LG[2] + w * (LOG_LG[4] + w * LOG_LG[6])))
    half_f2 = 0.5 * f * f
    y = dk * LN2_HI - ((half_f2 - (s * (half_f2 + big) + dk * LN2_LO)) - f)
    if x > 0.0 and x < np.inf:
        return y
    return -np.inf if x == 0.0 else (x if x > 0.0 else np.nan)


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
    """Bayes, mixing and tempering for replicate ``r`` in log space, as
    :meth:`ecology.dynamics.Mixture.combine`: ``log alpha_s = log prior_s + log mu_s(w) - log Z``,
    ``log mu(t | w) = logsumexp_s(log alpha_s + log emit_s[q_s, t])``, ``F = -log Z``, then
    :func:`_temper`."""
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
    else:
        _temper(r, temperature, greedy_tie, log_mu, log_p, z)


@inline
def _temper(r, temperature, greedy_tie, log_mu, log_p, z):
    """``log p_T`` of row ``r`` from ``log mu``, as :func:`ecology.dynamics.tempered`: shift by the
    maximum, divide by ``T``, normalise (greedy, ties to the first token within ``greedy_tie``,
    at ``T = 0``)."""
    n_tokens = log_mu.shape[1]
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


@jit
def _rebuild(window, step_state, step_logp, n_states, start, front_state, front_logw, back_state, back_logw):
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
def _read_windows(windows, reset, pad, next_at, logp_at, step_logp, start, log_prior, temperature, greedy_tie,
                  states, loglik, log_amp, log_mu, log_p, free_energy):
    """Every premise reads each window from scratch after its last reset token
    (:func:`_read_visible`), then mix (the initial step and drift's successor windows)."""
    _read_visible(windows, reset, pad, next_at, logp_at, start, states, loglik)
    n_premises = len(start)
    joint = np.empty(n_premises)
    terms = np.empty(n_premises)
    z = np.empty(log_mu.shape[1])
    for r in range(windows.shape[0]):
        _mix(r, states[:, r], loglik[:, r], step_logp, log_prior, temperature, greedy_tie,
             log_amp, log_mu, log_p, free_energy, joint, terms, z)


TINY = 1e-200  # below this a linear-space probability is recomputed in log space (no underflow)


LOG_SPACE_BELOW = 1e-3  # temperatures (above 0) below which every replicate is mixed in log space


CHUNK = 256  # replicates summed in plain order before the partial sum is added to the step's total


WINDOW_ONLY, POPULATION, PERIODIC = 0, 1, 2  # criterion forms the kernel evaluates


FIFO, BLOCK, MESSAGE = 0, 1, 2  # deletion rules of re-read (canonical) windows


KERNEL_RULES = {"fifo": FIFO, "block": BLOCK, "message": MESSAGE, "none": -1}  # "none" only slides


@inline
def _most_responsible(values):
    """The first index within ``TIE_TOLERANCE`` of the largest value (as
    :func:`ecology.model.most_responsible`)."""
    top = values[0]
    for i in range(1, len(values)):
        if values[i] > top:
            top = values[i]
    for i in range(len(values)):
        if values[i] >= top - TIE_TOLERANCE:
            return i
    return 0


@jit
def _credit_exact(r, b, token, log_amp, log_mu, states, step_logp, member_of, credit, raster_rows,
                  speakers, premise_speakers, resp):
    """Credit of replicate ``r``'s token in log space exactly as numpy (``exp(log alpha_s + log
    mu_s(t | w) - log mu(t | w))`` summed per population); the raster rows also record the
    population and the premise most responsible for it."""
    n_premises = len(member_of)
    n_labels = credit.shape[1]
    for j in range(n_labels):
        resp[n_premises + j] = 0.0
    for s in range(n_premises):
        resp[s] = log_amp[r, s] + step_logp[s, states[s, r], token] - log_mu[r, token]
        resp[n_premises + member_of[s]] += np.exp(resp[s])
    for j in range(n_labels):
        credit[r, j] += resp[n_premises + j]
    if r < raster_rows:
        speakers[b, r] = _most_responsible(resp[n_premises:])
        premise_speakers[b, r] = _most_responsible(resp[:n_premises])


@jit
def _print_pass(b, u, exact_rows, p, mu, log_mu, alpha, log_amp, states, step_logp, emit, member_of,
                credit, surprisal, tokens, printed, speakers, premise_speakers, resp, norm, cum, scale):
    """Every replicate prints its token: ``t = #{u : c_u <= U c_{V-1}}`` with ``c`` the cumulative
    sums of ``p_T(. | w)`` (inverse CDF, as :func:`ecology.dynamics.sample`); its surprisal
    ``-log mu(t | w)``; its credit to each population, ``sum_{s in L} alpha_s mu_s(t | w) / mu(t | w)``
    (in linear space, or in log space as numpy for the raster rows and where ``mu(t | w) < TINY``).
    ``p``, ``mu``, ``log_mu`` are token-major, ``alpha`` and ``log_amp`` premise-major: every loop
    runs over replicates innermost, each replicate's sums in the order of the reference."""
    n_tokens, rows = p.shape
    n_premises = len(member_of)
    n_labels = credit.shape[1]
    raster_rows = printed.shape[1]
    log_amp_rows, log_mu_rows = log_amp.T, log_mu.T  # replicate-major views for _credit_exact
    for r in range(rows):
        norm[r] = 0.0
        cum[r] = 0.0
        tokens[r] = 0
    for t in range(n_tokens):
        for r in range(rows):
            norm[r] += p[t, r]
    for r in range(rows):
        norm[r] *= u[r]  # the bound U c_{V-1}
    for t in range(n_tokens):
        for r in range(rows):
            cum[r] += p[t, r]
            tokens[r] += cum[r] <= norm[r]
    for r in range(rows):
        token = tokens[r]
        surprisal[r] = -log_mu[token, r]
        exact = r < exact_rows or mu[token, r] < TINY
        scale[r] = 0.0 if exact else 1.0 / mu[token, r]
        if exact:
            _credit_exact(r, b, token, log_amp_rows, log_mu_rows, states, step_logp, member_of, credit,
                          raster_rows, speakers, premise_speakers, resp)
    for j in range(n_labels):  # exact rows add 0
        for r in range(rows):
            cum[r] = 0.0
        for s in range(n_premises):
            if member_of[s] == j:
                for r in range(rows):
                    cum[r] += alpha[s, r] * emit[s, states[s, r], tokens[r]] * scale[r]
        for r in range(rows):
            credit[r, j] += cum[r]
    for r in range(raster_rows):
        printed[b, r] = tokens[r]


@inline
def _log_mu_exact(r, t, states, log_amp, step_logp, terms):
    """``log mu(t | w) = logsumexp_s(log alpha_s + log mu_s(t | w))`` for replicate ``r``
    (``-inf`` at once when every term is: a token no premise with amplitude can print);
    ``log_amp`` premise-major."""
    top = -np.inf
    for s in range(len(terms)):
        terms[s] = log_amp[s, r] + step_logp[s, states[s, r], t]
        top = max(top, terms[s])
    if top == -np.inf:
        return -np.inf
    return _logsumexp(terms)


@inline
def _total(x):
    """``sum x`` in plain order within chunks of ``CHUNK`` values (four interleaved partial sums),
    the chunks' sums then added in order: error below ~(CHUNK + n / CHUNK) ulp of the sum of |x|."""
    n = len(x)
    out = 0.0
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        a0 = a1 = a2 = a3 = 0.0
        i = lo
        while i + 4 <= hi:
            a0 += x[i]
            a1 += x[i + 1]
            a2 += x[i + 2]
            a3 += x[i + 3]
            i += 4
        for j in range(i, hi):
            a0 += x[j]
        out += (a0 + a1) + (a2 + a3)
    return out


@jit
def _settle_pass(b, step, exact_rows, states, loglik, step_logp, emit, log_prior, temperature, greedy_tie,
                 alpha, log_amp, mu, log_mu, p, log_p, free_energy, deleted, member_of, population,
                 kind, label, threshold, holding, reached_at, sums, counts, trajectories, top, norm, joint, terms, z):
    """Bayes, mixing and tempering for every replicate (module docstring, step 3), then its figures
    in row ``b`` of the step's sums and counts. Arrays are premise-, token- or label-major
    (``alpha[s, r]``, ``mu[t, r]``, ``population[j, r]``) and every loop runs over replicates
    innermost.

    Mixing in linear space with one ``exp`` per premise (:func:`_exp` and :func:`_log`, so the
    loops over replicates vectorise): with ``e_s = exp(log prior_s + log mu_s(w)
    - m)`` (``m`` the largest exponent), ``alpha_s = e_s / sum e`` and ``mu(t | w) = sum_s alpha_s
    emit_s[q_s, t]``; a ``mu(t | w)`` below ``TINY`` is recomputed in log space (nothing
    underflows); the laws agree with numpy's to rounding (~1e-16 relative). The raster rows
    (below ``exact_rows``) are then mixed again in log space exactly as numpy (:func:`_mix`). At
    ``T = 1``, ``p`` and ``log_p`` are ``mu`` and ``log_mu`` (the same arrays).

    Recording: premise and population amplitudes, entropy ``-sum_t p_T log p_T``, free energy,
    effective premises ``exp(-sum_s alpha_s log alpha_s)``, tokens deleted (sums by
    :func:`_total`); replicates with a population above 1/2 and 0.99 (the tie rule of
    :func:`ecology.absorption.above`); population criteria; criteria reached (first step each
    holds: ``reached_at``) and holding. Returns (0, -1), or (1, r) for the first impossible
    window, else (2, r) for the first NaN (nothing is recorded then)."""
    n_premises, rows = loglik.shape
    n_tokens = mu.shape[0]
    n_labels = population.shape[0]
    for r in range(rows):
        top[r] = log_prior[0] + loglik[0, r]
    for s in range(1, n_premises):
        for r in range(rows):
            x = log_prior[s] + loglik[s, r]
            if x > top[r] or np.isnan(x):
                top[r] = x
    for r in range(rows):
        if not np.isfinite(top[r]):
            top[r] = 0.0
        norm[r] = 0.0
    for s in range(n_premises):
        for r in range(rows):
            alpha[s, r] = _exp(log_prior[s] + loglik[s, r] - top[r])
            norm[r] += alpha[s, r]
    for r in range(rows):
        top[r] += _log(norm[r])  # log Z
        free_energy[r] = -top[r]
        norm[r] = 1.0 / norm[r]
    for s in range(n_premises):
        for r in range(rows):
            log_amp[s, r] = log_prior[s] + loglik[s, r] - top[r]
            alpha[s, r] *= norm[r]
    for t in range(n_tokens):
        for r in range(rows):
            mu[t, r] = 0.0
        for s in range(n_premises):
            for r in range(rows):
                mu[t, r] += alpha[s, r] * emit[s, states[s, r], t]
        for r in range(rows):
            log_mu[t, r] = _log(mu[t, r])
        for r in range(rows):
            if mu[t, r] < TINY:
                log_mu[t, r] = _log_mu_exact(r, t, states, log_amp, step_logp, terms)
                mu[t, r] = np.exp(log_mu[t, r])
    if temperature != 1.0:
        for r in range(rows):
            _temper(r, temperature, greedy_tie, log_mu.T, log_p.T, z)
        for t in range(n_tokens):
            for r in range(rows):
                p[t, r] = _exp(log_p[t, r])
    for r in range(min(exact_rows, rows)):
        _mix(r, states[:, r], loglik[:, r], step_logp, log_prior, temperature, greedy_tie,
             log_amp.T, log_mu.T, log_p.T, free_energy, joint, terms, z)
        for s in range(n_premises):
            alpha[s, r] = np.exp(log_amp[s, r])
        for t in range(n_tokens):
            mu[t, r] = np.exp(log_mu[t, r])
            p[t, r] = np.exp(log_p[t, r])
    infinite = nan = 0  # counted first (loops that vectorise); the first replicate looked up if any
    for r in range(rows):
        infinite += not np.isfinite(free_energy[r])
    for s in range(n_premises):
        for r in range(rows):
            nan += np.isnan(log_amp[s, r])
    for t in range(n_tokens):
        for r in range(rows):
            nan += np.isnan(log_p[t, r])
    if infinite:
        for r in range(rows):
            if not np.isfinite(free_energy[r]):
                return 1, r
    if nan:
        for r in range(rows):
            for s in range(n_premises):
                if np.isnan(log_amp[s, r]):
                    return 2, r
            for t in range(n_tokens):
                if np.isnan(log_p[t, r]):
                    return 2, r
    scalars = n_premises + 2 * n_labels  # entropy, surprisal, free energy, effective premises, deleted
    for j in range(n_labels):
        for r in range(rows):
            population[j, r] = 0.0
    for s in range(n_premises):
        j = member_of[s]
        for r in range(rows):
            population[j, r] += alpha[s, r]
        sums[b, s] = _total(alpha[s])
    for j in range(n_labels):
        sums[b, n_premises + j] = _total(population[j])
        majority = certain = 0
        for r in range(rows):
            majority += population[j, r] > MAJORITY + TIE_TOLERANCE
            certain += population[j, r] > CERTAIN + TIE_TOLERANCE
        counts[b, j] = majority
        counts[b, n_labels + j] = certain
    for r in range(rows):
        top[r] = 0.0  # entropy of p_T
        norm[r] = 0.0  # entropy of the amplitudes
    for t in range(n_tokens):
        for r in range(rows):
            if p[t, r] > 0.0:
                top[r] -= p[t, r] * log_p[t, r]
    for s in range(n_premises):
        for r in range(rows):
            if alpha[s, r] > 0.0:
                norm[r] -= alpha[s, r] * log_amp[s, r]
    for r in range(rows):
        norm[r] = _exp(norm[r])
    sums[b, scalars] = _total(top)
    sums[b, scalars + 2] = _total(free_energy)
    sums[b, scalars + 3] = _total(norm)
    sums[b, scalars + 4] = _total(deleted)
    n_criteria = len(kind)
    for c in range(n_criteria):
        if kind[c] == POPULATION:
            for r in range(rows):
                holding[c, r] = population[label[c], r] > threshold[c] + TIE_TOLERANCE
        reached = held = 0
        for r in range(rows):
            if holding[c, r] and reached_at[c, r] < 0:
                reached_at[c, r] = step
            reached += reached_at[c, r] >= 0
            held += holding[c, r]
        counts[b, 2 * n_labels + c] = reached
        counts[b, 2 * n_labels + n_criteria + c] = held
    for r in range(trajectories.shape[1]):
        for j in range(n_labels):
            trajectories[b, r, j] = population[j, r]
    return 0, -1


@jit
def _select(a, lo, hi, k):
    """The ``k``-th smallest of ``a[lo:hi]`` moved to ``a[k]``, smaller ones before it and larger
    ones after (``lo <= k < hi``). Quickselect with a median-of-three pivot and a three-way
    partition in two branch-free Lomuto passes (values below the pivot, then values equal to it:
    ties, frequent among amplitudes, end a round at once); a sort if it ever stalls."""
    rounds = 0
    while hi - lo > 1:
        rounds += 1
        if rounds > 64:
            a[lo:hi] = np.sort(a[lo:hi])
            return
        mid = (lo + hi - 1) >> 1
        x, y, z = a[lo], a[mid], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))  # the median of the three
        below = lo
        for i in range(lo, hi):  # swap always, advance when smaller
            v = a[i]
            a[i] = a[below]
            a[below] = v
            below += v < pivot
        equal = below
        for i in range(below, hi):
            v = a[i]
            a[i] = a[equal]
            a[equal] = v
            equal += v == pivot
        if k < below:
            hi = below
        elif k >= equal:
            lo = equal
        else:
            return


@jit
def _quantiles_pass(b, cols, offset, probabilities, scratch, quantiles):
    """``np.quantile(cols[c], probabilities)`` of each row of ``cols`` (method "linear", increasing
    probabilities) into row ``b``, columns from ``offset``: with ``v = (n - 1) q``, ``i = floor(v)`` and
    ``g = v - i``, the value ``x_(i) + (x_(i+1) - x_(i)) g`` (``x_(i+1) - (x_(i+1) - x_(i)) (1 - g)``
    for ``g >= 1/2``, as numpy's ``_lerp``). The order statistics ``x_(i)`` are placed on a copy
    by a multiple quickselect (the middle rank first, then each side's ranks within that side:
    about ``2 n`` comparisons plus ``n`` per halving, against ``2 n`` per quantile one after the
    other); ``x_(i+1)`` is then the smallest value between rank ``i`` and the next placed rank."""
    n = cols.shape[1]
    n_ranks = len(probabilities)
    ranks = np.empty(n_ranks, dtype=np.int64)
    stack = np.empty((n_ranks + 2, 4), dtype=np.int64)  # depth-first: never more than n_ranks + 1 pending
    for j in range(n_ranks):
        virtual = (n - 1) * probabilities[j]
        ranks[j] = n - 1 if virtual >= n - 1 else (0 if virtual < 0 else int(np.floor(virtual)))
    for c in range(cols.shape[0]):
        for i in range(n):
            scratch[i] = cols[c, i]
        stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = 0, n, 0, n_ranks  # a[lo:hi], ranks[first:last]
        depth = 1
        while depth:
            depth -= 1
            lo, hi, first, last = stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3]
            if first >= last:
                continue
            middle = (first + last) >> 1
            k = ranks[middle]
            if lo <= k < hi:  # else a duplicate of a rank already placed
                _select(scratch, lo, hi, k)
            stack[depth, 1], stack[depth, 3] = k, middle  # left: a[lo:k], ranks[first:middle]
            stack[depth + 1, 0], stack[depth + 1, 1] = k + 1, hi  # right: a[k + 1:hi], ranks[middle + 1:last]
            stack[depth + 1, 2], stack[depth + 1, 3] = middle + 1, last
            depth += 2
        for j in range(n_ranks):
            virtual = (n - 1) * probabilities[j]
            i = ranks[j]
            below = scratch[i]
            if virtual >= n - 1 or virtual < 0:
                quantiles[b, j, offset + c] = below
                continue
            bound = n - 1  # x_(i+1): the smallest of scratch[i+1 : next placed rank + 1]
            for m in range(j + 1, n_ranks):
                if ranks[m] > i:
                    bound = ranks[m]
                    break
            above = scratch[i + 1]
            for m in range(i + 2, bound + 1):
                if scratch[m] < above:
                    above = scratch[m]
            gamma = virtual - i
            diff = above - below
            quantiles[b, j, offset + c] = above - diff * (1.0 - gamma) if gamma >= 0.5 else below + diff * gamma


@jit
def _read_visible(window, reset, pad, next_at, logp_at, start, states, loglik):
    """Every premise reads each row of ``window``, positions up to the row's last ``reset`` token
    read as pads (:func:`ecology.context.after_reset`): ``log mu_s(w) = sum_j log emit_s[q_j, w_j]``
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
def _slide_read(tokens, head, rebuild, window, step_state, step_logp, n_states, start, front_state, front_logw,
                back_state, back_logw, states, loglik):
    """The two-stack reader (module docstring): push each replicate's token on the back (or
    rebuild the front from the window when the head ran past it), then read at ``head``."""
    rows = len(tokens)
    n_premises = len(start)
    length = front_state.shape[1]
    if rebuild:
        _rebuild(window, step_state, step_logp, n_states, start, front_state, front_logw, back_state, back_logw)
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


@inline
def _same(x, y):
    """Whether two page-states are equal (the ``periodic`` criterion)."""
    for j in range(len(x)):
        if x[j] != y[j]:
            return False
    return True


@jit
def _begin_step(b, u, exact_rows, laws, st, out, work):
    """Print pass of step ``b`` (:func:`_print_pass`); the
    sums of the surprisals and of each population's credit into the step's sums."""
    step_state, step_logp, emit, n_states, start_state, log_prior, member_of, temperature, greedy_tie = laws[:9]
    alpha, log_amp, mu, log_mu, p, log_p, free_energy, states, loglik, population, credit, deleted, tokens, \
        surprisal = st
    sums, counts, quantiles, raster, printed, speakers, premise_speakers, trajectories = out
    n_premises, n_labels = len(log_prior), population.shape[0]
    _print_pass(b, u, exact_rows, p, mu, log_mu, alpha, log_amp, states, step_logp, emit, member_of,
                credit, surprisal, tokens, printed, speakers, premise_speakers, work[4], work[0], work[1], work[2])
    sums[b, n_premises + 2 * n_labels + 1] = _total(surprisal)
    for j in range(n_labels):
        sums[b, n_premises + n_labels + j] = _total(credit[:, j])


@jit
def _end_step(b, step, exact_rows, laws, st, crit, out, work):
    """Settle (mix and record) and quantile passes of step ``b`` once every window has been read;
    returns :func:`_settle_pass`'s (failure, replicate)."""
    step_state, step_logp, emit, n_states, start_state, log_prior, member_of, temperature, greedy_tie = laws[:9]
    alpha, log_amp, mu, log_mu, p, log_p, free_energy, states, loglik, population, credit, deleted, tokens, \
        surprisal = st
    kind, label, threshold, bad, period, outside, reached_at, holding = crit
    sums, counts, quantiles, raster, printed, speakers, premise_speakers, trajectories = out
    top, norm, scratch, probabilities, resp, joint, terms, z = work
    failure, replicate = _settle_pass(b, step, exact_rows, states, loglik, step_logp, emit, log_prior, temperature,
                                      greedy_tie, alpha, log_amp, mu, log_mu, p, log_p, free_energy, deleted,
                                      member_of, population, kind, label, threshold, holding, reached_at, sums,
                                      counts, trajectories, top, norm, joint, terms, z)
    if failure:
        return failure, replicate
    _quantiles_pass(b, alpha, 0, probabilities, scratch, quantiles)
    if quantiles.shape[2] > len(log_prior):  # populations of several premises: their own quantiles
        _quantiles_pass(b, population, len(log_prior), probabilities, scratch, quantiles)
    return 0, -1


@jit
def _run_sliding(uniforms, generated, exact_rows, win, stacks, laws, st, crit, out, work):
    """``B = len(uniforms)`` steps of every replicate whose windows slide in one buffer
    (:class:`ecology.context.SlidingWindows`: ``buf[:, start:end]``, the last ``memory`` deleted
    tokens before ``start``): print, append, delete the oldest when full (``fifo``), read with the
    two-stack queue (or re-read after the last reset token), mix, record.
    Returns (steps done, failure (0 none, 1 impossible, 2 NaN), failing replicate, start, end, head)."""
    buf, start, end, length, deletes, pad, reset = win
    front_state, front_logw, back_state, back_logw, head = stacks
    step_state, step_logp, n_states, start_state = laws[0], laws[1], laws[3], laws[4]
    next_at, logp_at = laws[9], laws[10]
    states, loglik, deleted, tokens = st[7], st[8], st[11], st[12]
    kind, bad, period, outside, holding = crit[0], crit[3], crit[4], crit[5], crit[7]
    raster = out[3]
    rows = uniforms.shape[1]
    front_len = front_state.shape[1]
    for b in range(uniforms.shape[0]):
        step = generated + b + 1
        _begin_step(b, uniforms[b], exact_rows, laws, st, out, work)
        end += 1
        count = 0
        if deletes and end - start > length:
            count = end - start - length
            start += count
        for r in range(rows):
            buf[r, end - 1] = tokens[r]
            for i in range(start - count, start):
                if buf[r, i] < pad:
                    deleted[r] += 1.0
        if reset >= 0:
            _read_visible(buf[:, start:end], reset, pad, next_at, logp_at, start_state, states, loglik)
        else:
            head += count
            rebuild = head > front_len
            if rebuild:
                head = 0
            _slide_read(tokens, head, rebuild, buf[:, start:end], step_state, step_logp, n_states, start_state,
                        front_state, front_logw, back_state, back_logw, states, loglik)
        for c in range(len(kind)):
            if kind[c] == WINDOW_ONLY:
                for r in range(rows):
                    outside[c, r] += bad[c, tokens[r]] - bad[c, buf[r, end - length - 1]]
                    holding[c, r] = outside[c, r] == 0
            elif kind[c] == PERIODIC:
                for r in range(rows):
                    found = False
                    if deletes:
                        for d in range(1, period[c] + 1):
                            if _same(buf[r, start:end], buf[r, start - d : end - d]):
                                found = True
                                break
                    holding[c, r] = found
        failure, replicate = _end_step(b, step, exact_rows, laws, st, crit, out, work)
        if failure:
            return b, failure, replicate, start, end, head
        for r in range(raster.shape[1]):
            for j in range(length):
                raster[b, r, j] = buf[r, end - length + j]
    return uniforms.shape[0], 0, -1, start, end, head


@jit
def _delete_rereading(tokens, window, grown, rule, parameter, pinned, pad, history, position, deleted):
    """Append each replicate's token and apply the deletion rule to its canonical window
    (:meth:`ecology.context.DeletionRule.apply`): a window that was full (no pad first) loses the
    ``count`` tokens after the ``pinned`` prefix (1 under ``fifo``, ``B`` under ``block``, up to
    the first delimiter under ``message``, else 1) and gets ``count - 1`` pads first; one that was
    not full loses its first pad. ``deleted`` counts the real tokens that went. The window before
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
        count = 1
        if rule == BLOCK:
            count = parameter
        elif rule == MESSAGE:
            for j in range(pinned, length):
                if grown[j] == parameter:
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


@jit
def _run_rereading(uniforms, generated, exact_rows, win, laws, st, crit, out, work):
    """``B`` steps of every replicate whose windows are canonical rows ``window[r]`` rewritten by
    the deletion rule (:func:`_delete_rereading`); every premise re-reads the window after its
    last reset token. ``history`` keeps the last ``memory`` page-states (``periodic``).
    Returns (steps done, failure, failing replicate, history position, history count)."""
    window, grown, rule, parameter, pinned, pad, reset, history, position, filled = win
    start_state, next_at, logp_at = laws[4], laws[9], laws[10]
    states, loglik, deleted, tokens = st[7], st[8], st[11], st[12]
    kind, bad, period, holding = crit[0], crit[3], crit[4], crit[7]
    raster = out[3]
    rows, length = window.shape
    memory = history.shape[0]
    for b in range(uniforms.shape[0]):
        step = generated + b + 1
        _begin_step(b, uniforms[b], exact_rows, laws, st, out, work)
        _delete_rereading(tokens, window, grown, rule, parameter, pinned, pad, history, position, deleted)
        if memory:
            filled = min(filled + 1, memory)
        _read_visible(window, reset, pad, next_at, logp_at, start_state, states, loglik)
        for c in range(len(kind)):
            if kind[c] == WINDOW_ONLY:
                for r in range(rows):
                    inside = True
                    for j in range(length):
                        if bad[c, window[r, j]]:
                            inside = False
                            break
                    holding[c, r] = inside
            elif kind[c] == PERIODIC:
                for r in range(rows):
                    found = False
                    for d in range(1, min(period[c], filled) + 1):
                        if _same(window[r], history[(position - d + 1) % memory, r]):
                            found = True
                            break
                    holding[c, r] = found
        if memory:
            position = (position + 1) % memory
        failure, replicate = _end_step(b, step, exact_rows, laws, st, crit, out, work)
        if failure:
            return b, failure, replicate, position, filled
        for r in range(raster.shape[1]):
            for j in range(length):
                raster[b, r, j] = window[r, j]
    return uniforms.shape[0], 0, -1, position, filled


def as_tokens(tokens: np.ndarray) -> np.ndarray:
    """Token arrays as contiguous int64, the one type the loops are compiled for."""
    return np.ascontiguousarray(tokens, dtype=np.int64)


@dataclass
class Block:
    """What a block of ``done`` steps recorded (rows are steps; ``R`` replicates, ``S`` premises,
    ``L`` population labels, ``C`` criteria): per-step sums over replicates of each premise's
    amplitude, each population's amplitude and credit, and of the entropy, surprisal, free energy,
    effective number of premises and tokens deleted (``sums``, (B, S + 2L + 5)); per-step counts
    of replicates with a population above 1/2 and 0.99, that have reached and that hold each
    criterion (``counts``, (B, 2L + 2C)); the 10/50/90% quantiles over replicates of each
    premise's amplitude, then (when a population has several premises) of each population's
    (``quantiles``, (B, 3, S [+ L])); and the raster replicates' windows, tokens, speakers and
    population amplitudes. ``failure`` is (1 impossible window or 2 NaN, replicate) at step
    ``done + 1`` of the block, or None."""

    done: int
    failure: tuple[int, int] | None
    sums: np.ndarray
    counts: np.ndarray
    quantiles: np.ndarray
    raster: np.ndarray
    printed: np.ndarray
    speakers: np.ndarray
    premise_speakers: np.ndarray
    trajectories: np.ndarray
    n_premises: int
    n_labels: int

    def premise_sums(self, b: int) -> np.ndarray:
        return self.sums[b, : self.n_premises]

    def population_sums(self, b: int) -> np.ndarray:
        return self.sums[b, self.n_premises : self.n_premises + self.n_labels]

    def credit_sums(self, b: int) -> np.ndarray:
        return self.sums[b, self.n_premises + self.n_labels : self.n_premises + 2 * self.n_labels]

    def scalar_sum(self, b: int, name: str) -> float:
        """Sum over replicates of ``entropy``, ``surprisal``, ``free_energy``,
        ``effective_premises`` or ``deleted`` (cumulative tokens deleted) at step ``b``."""
        return float(self.sums[b, self.n_premises + 2 * self.n_labels + SCALARS.index(name)])

    def premise_quantiles(self, b: int) -> np.ndarray:
        """(3, S) quantiles of the premises' amplitudes."""
        return self.quantiles[b, :, : self.n_premises]

    def population_quantiles(self, b: int) -> np.ndarray:
        """(3, L) quantiles of the populations' amplitudes."""
        return self.quantiles[b, :, self.n_premises :]

    def winners(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(L,) counts of replicates with each population above 1/2, and above 0.99."""
        return self.counts[b, : self.n_labels], self.counts[b, self.n_labels : 2 * self.n_labels]

    def criteria(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(C,) counts of replicates that have reached each criterion, and that hold it."""
        rest = self.counts[b, 2 * self.n_labels :]
        half = len(rest) // 2
        return rest[:half], rest[half:]


SCALARS = ("entropy", "surprisal", "free_energy", "effective_premises", "deleted")


BLOCK_BYTES = 2**25  # uniforms and raster rows of one block stay below about this many bytes


class Engine:
    """The compiled engine's state for the R replicates of a model.

    ``Engine(compiled, context, replicates, raster_rows)``: :meth:`read` computes the mixture on
    the initial windows, :meth:`start` takes the model's state after step 0, :meth:`run` takes a
    block of steps (one row of uniforms per step) and returns a :class:`Block`; the per-replicate
    state after the block is in the attributes (``alpha``, ``log_amp``, ``log_mu``, ``log_p``,
    ``free_energy``, ``population``, ``states``, ``loglik``: premise-, token- or label-major, ``holding``,
    ``tokens``, ``surprisal``); the model's ``credit``, ``deleted`` and ``reached_at`` and the
    context's windows are updated in place.
    """

    def __init__(self, compiled, context, replicates: int, raster_rows: int):
        premises = compiled.premises
        mixture = compiled.mixture
        self.context = context
        self.rule = compiled.rule
        self.n_tokens = V = compiled.n_tokens
        self.replicates = R = replicates
        self.raster_rows = raster_rows
        self.length = compiled.rule.length
        self.temperature = float(mixture.temperature)
        self.log_prior = np.ascontiguousarray(mixture.log_prior, dtype=float)
        self.reset = -1 if mixture.reset is None else int(mixture.reset)
        q_max = max(p.automaton.n_states for p in premises)
        S, L = len(premises), len(mixture.labels)
        self.step_state = np.zeros((S, q_max, V + 1), dtype=np.int64)
        self.step_logp = np.zeros((S, q_max, V + 1))
        for s, p in enumerate(premises):
            q = p.automaton.n_states
            self.step_state[s, :q] = p.automaton.step_state
            self.step_logp[s, :q] = p.automaton.step_logp
        self.emit = np.exp(self.step_logp[:, :, :V])  # linear emission laws (S, Q, V)
        self.n_states = np.array([p.automaton.n_states for p in premises], dtype=np.int64)
        self.start_state = np.array([p.automaton.start for p in premises], dtype=np.int64)
        member_of = np.empty(S, dtype=np.int64)
        for j, members in enumerate(mixture.members):
            member_of[members] = j
        # flat tables of the re-reading loops: entry q (V + 1) + t of premise s
        next_at = (self.step_state * (V + 1)).reshape(S, -1)
        logp_at = self.step_logp.reshape(S, -1).copy()
        self.laws = (self.step_state, self.step_logp, self.emit, self.n_states, self.start_state, self.log_prior,
                     member_of, self.temperature, GREEDY_TIE, next_at, logp_at)
        self.singletons = all(len(m) == 1 for m in mixture.members)
        self.sole_premise = np.array([m[0] for m in mixture.members]) if self.singletons else None
        self.n_premises, self.n_labels = S, L
        # per-replicate state
        # premise-, token- and label-major (the kernel's loops run over replicates innermost)
        self.alpha, self.log_amp = np.empty((S, R)), np.empty((S, R))
        self.mu, self.log_mu = np.empty((V, R)), np.empty((V, R))
        # the sampling law: at T = 1 the model's law itself (the same arrays)
        self.p, self.log_p = (self.mu, self.log_mu) if self.temperature == 1.0 else (np.empty((V, R)), np.empty((V, R)))
        self.free_energy = np.empty(R)
        self.population = np.empty((L, R))
        self.states = np.empty((S, R), dtype=np.intp)
        self.loglik = np.empty((S, R))
        self.tokens = np.zeros(R, dtype=np.intp)
        self.surprisal = np.zeros(R)
        # criteria
        C = len(compiled.criteria)
        self.kind = np.zeros(C, dtype=np.int64)
        self.label = np.zeros(C, dtype=np.int64)
        self.threshold = np.zeros(C)
        self.bad = np.zeros((C, V + 2), dtype=np.int64)
        self.period = np.zeros(C, dtype=np.int64)
        for c, criterion in enumerate(compiled.criteria):
            if isinstance(criterion, WindowOnly):
                self.kind[c], self.bad[c] = WINDOW_ONLY, ~criterion.allowed
            elif isinstance(criterion, PopulationAbove):
                self.kind[c], self.label[c], self.threshold[c] = POPULATION, criterion.label, criterion.above
            else:
                self.kind[c], self.period[c] = PERIODIC, criterion.period
        self.outside = np.zeros((C, R), dtype=np.int64)
        self.holding = np.zeros((C, R), dtype=bool)
        # scratch
        self.n_quantiles = S + (0 if self.singletons else L)  # premises, then populations of several
        self.work = (np.empty(R), np.empty(R), np.empty(R), np.array(QUANTILES, dtype=float), np.empty(S + L),
                     np.empty(S), np.empty(S), np.empty(V))
        self.sliding_windows = isinstance(context, SlidingWindows)
        if self.sliding_windows and self.reset < 0:
            length = context.window.shape[1]
            # front stacks premise- and position-major, back stacks premise- and state-major, so
            # that reading position ``head`` and pushing a token walk contiguous memory
            self.front_state = np.empty((S, length, R), dtype=np.int64)
            self.front_logw = np.empty((S, length, R))
            self.back_state = np.empty((S, q_max, R), dtype=np.int64)
            self.back_logw = np.empty((S, q_max, R))
            with deferred():
                _rebuild(as_tokens(context.window), self.step_state, self.step_logp, self.n_states, self.start_state,
                         self.front_state, self.front_logw, self.back_state, self.back_logw)
        else:
            self.front_state = np.zeros((S, 0, 0), dtype=np.int64)
            self.front_logw = np.zeros((S, 0, 0))
            self.back_state = np.zeros((S, q_max, 0), dtype=np.int64)
            self.back_logw = np.zeros((S, q_max, 0))
        self.head = 0
        if not self.sliding_windows:
            k = context.window.shape[1]
            self.grown = np.empty(k + 1, dtype=context.window.dtype)
            self.history = np.zeros((compiled.memory, R, k), dtype=context.window.dtype)
            self.position = self.filled = 0
            rule = compiled.rule
            self.rule_code = KERNEL_RULES[rule.name]
            self.rule_parameter = getattr(rule, "block", getattr(rule, "delimiter", 0))

    def _read(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, Step]:
        """Premises' final states and likelihoods (premise-major) and the mixture on ``windows``,
        every premise reading from scratch after the last reset token."""
        rows, S, V = windows.shape[0], self.n_premises, self.n_tokens
        states, loglik = np.empty((S, rows), dtype=np.intp), np.empty((S, rows))
        log_amp, log_mu, log_p = np.empty((rows, S)), np.empty((rows, V)), np.empty((rows, V))
        free_energy = np.empty(rows)
        with deferred():
            _read_windows(as_tokens(windows), self.reset, self.n_tokens, *self.laws[9:], self.step_logp,
                          self.start_state, self.log_prior, self.temperature, GREEDY_TIE, states, loglik, log_amp,
                          log_mu, log_p, free_energy)
        return states, loglik, Step(log_amp, log_mu, log_mu if self.temperature == 1.0 else log_p, free_energy)

    def mixture_on(self, windows: np.ndarray) -> Step:
        """The mixture on arbitrary windows, as :meth:`ecology.dynamics.Mixture.read`; the engine's
        own state is left alone."""
        return self._read(windows)[2]

    def read(self, windows: np.ndarray) -> Step:
        """The mixture on the initial windows; the premises' final states and likelihoods become
        the engine's ``states`` and ``loglik``."""
        self.states, self.loglik, step = self._read(windows)
        return step

    def start(self, step: Step, criteria: list, credit: np.ndarray, deleted: np.ndarray,
              reached_at: np.ndarray) -> None:
        """Take the state after step 0: the mixture ``step``, the criteria's incremental forms,
        and the model's ledger and first hitting times (updated in place from now on)."""
        self.log_amp[:], self.log_mu[:], self.log_p[:] = step.log_amplitude.T, step.log_mu.T, step.log_p.T
        self.free_energy[:] = step.free_energy
        self.alpha[:], self.mu[:], self.p[:] = np.exp(self.log_amp), np.exp(self.log_mu), np.exp(self.log_p)
        for c, criterion in enumerate(criteria):
            if isinstance(criterion, WindowOnly):
                self.outside[c] = criterion.outside
        self.credit, self.deleted, self.reached_at = credit, deleted, reached_at

    def block_size(self, steps: int) -> int:
        """Steps of the next block: ``steps`` at most, uniforms and raster rows within ``BLOCK_BYTES``."""
        per_step = 8 * self.replicates + 8 * self.raster_rows * (self.length + 4)
        return max(1, min(steps, BLOCK_BYTES // per_step))

    def run(self, uniforms: np.ndarray, generated: int) -> Block:
        """``len(uniforms)`` steps from step ``generated`` (row ``b`` of ``uniforms`` holds step
        ``generated + b + 1``'s uniforms, one per replicate)."""
        B, R = uniforms.shape
        S, L, C = self.n_premises, self.n_labels, len(self.kind)
        n = self.raster_rows
        # below LOG_SPACE_BELOW the tempered law magnifies the mixture's last-bit roundings by 1 / T:
        # every row is then mixed in log space exactly as numpy
        exact = R if 0.0 < self.temperature < LOG_SPACE_BELOW else n
        out = (np.zeros((B, S + 2 * L + len(SCALARS))), np.zeros((B, 2 * L + 2 * C), dtype=np.int64),
               np.empty((B, len(QUANTILES), self.n_quantiles)),
               np.empty((B, n, self.length), dtype=self.context.window.dtype), np.empty((B, n), dtype=np.intp),
               np.empty((B, n), dtype=np.intp), np.empty((B, n), dtype=np.intp), np.empty((B, n, L)))
        st = (self.alpha, self.log_amp, self.mu, self.log_mu, self.p, self.log_p, self.free_energy, self.states,
              self.loglik, self.population, self.credit, self.deleted, self.tokens, self.surprisal)
        crit = (self.kind, self.label, self.threshold, self.bad, self.period, self.outside, self.reached_at,
                self.holding)
        if self.sliding_windows:
            ctx = self.context
            ctx.reserve(B)
            win = (ctx.buf, ctx.start, ctx.end, self.length, self.rule.deletes_oldest, self.n_tokens, self.reset)
            stacks = (self.front_state, self.front_logw, self.back_state, self.back_logw, self.head)
            with deferred():
                done, failure, replicate, ctx.start, ctx.end, self.head = _run_sliding(
                    uniforms, generated, exact, win, stacks, self.laws, st, crit, out, self.work)
        else:
            win = (self.context.array, self.grown, self.rule_code, self.rule_parameter, self.rule.pinned,
                   self.n_tokens, self.reset, self.history, self.position, self.filled)
            with deferred():
                done, failure, replicate, self.position, self.filled = _run_rereading(
                    uniforms, generated, exact, win, self.laws, st, crit, out, self.work)
        quantiles = out[2]
        if self.singletons:  # each population is one premise: its quantiles are that premise's
            quantiles = np.concatenate([quantiles, quantiles[:, :, self.sole_premise]], axis=2)
        return Block(done, (failure, replicate) if failure else None, out[0], out[1], quantiles, *out[3:], S, L)
