"""The compiled engine: the numpy engine's steps, and everything they record, in numba passes.

The numpy engine (:mod:`ecology.engine.reference`) runs each operation as one numpy call over all
R replicates: a step is a few dozen passes over memory, plus the per-step reductions of
``steps.csv``. This module runs the *same* algorithm (:meth:`CompiledEngine.run`, a block of
steps in one call) as a few compiled passes per step over the replicates, every loop over
replicates innermost, keeping only the per-step sums, counts and quantiles the outputs need (the
block's :class:`ecology.engine.base.StepRecords`). Per replicate ``r`` and premise ``s`` (notation
of SCIENCE.md and :mod:`ecology.core.mixture`):

1. print (:func:`_print_pass`): ``t = #{u : c_u <= U * c_{V-1}}`` with ``c`` the cumulative sums
   of ``p_T(. | w)`` and ``U`` the step's uniform (row ``b`` of the block's ``rng.random((B, R))``,
   the stream both engines draw); surprisal and credit;
2. read the new window:

   - sliding rules (``fifo`` without a pinned prefix, ``none``, no reset token): the
     two-stack queue of transfers of :class:`ecology.core.readers.SlidingReader` (:func:`slide_read_jit`):
     the back stack ``(back_state[q], back_logw[q])`` composes the appended token, the front
     stack ``front_state[j], front_logw[j]`` holds the composition of tokens ``j ..`` at the start
     state, deletion advances ``head`` and a head past the front rebuilds it from the window;
     ``log mu_s(w) = front_logw[head] + back_logw[front_state[head]]``, the same additions in
     the same order as the numpy reader, so the likelihoods are bit for bit the same;
   - the other rules (``block``, ``message``, ``pinned``, a ``reset`` token): the deletion rule
     rewrites the canonical windows (:func:`delete_canonical_jit`) and every premise re-reads the
     visible window, ``log mu_s(w) = sum_i step_logp_s[q_i, w_i]`` (:func:`read_visible_jit`, O(k));

3. settle (:func:`_settle_pass`): Bayes, mixing (in linear space; in log space as
   :func:`combine_jit` for the raster replicates and below ``LOG_SPACE_BELOW``), tempering as
   :func:`ecology.numerics.tempered`, then every per-step sum and count of ``steps.csv``;
   quantiles (:func:`quantiles_jit`) as ``np.quantile``.

What is guaranteed against the numpy engine (``tests/test_kernel.py``,
``tests/test_kernel_adversarial.py``, docs/engine.md): identical likelihood sums, tokens,
rasters, hitting times and criteria (unless a uniform falls within a few ulps of a boundary of
the cumulative law, or an amplitude within an ulp of a threshold plus its tie tolerance); every
recorded float within 1e-12; blocks and single steps bit for bit. Drift
(:meth:`ecology.core.mixture.Mixture.drift`) re-reads its successor windows with :meth:`Engine.mixture_on`.
Compilation is cached on disk (``cache=True``, in ``ecology/__pycache__``): the first run on a
machine pays it (:func:`warm_up` measures it), later runs and a sweep's workers load it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ecology.core.mixture import Step, combine_jit
from ecology.core.readers import read_visible_jit, rebuild_jit, slide_read_jit
from ecology.core.windows import SlidingWindows
from ecology.engine.base import Engine, ReplicateState, StepRecords
from ecology.interrupts import deferred
from ecology.kinds import observables
from ecology.kinds.criteria import (
    COMBINED,
    PATTERNS,
    PERIODIC,
    POPULATION,
    REPEATS,
    WINDOW_ONLY,
    combined_jit,
    patterns_read_jit,
    patterns_slide_jit,
    periodic_read_jit,
    periodic_slide_jit,
    population_above_jit,
    repeats_read_jit,
    repeats_slide_jit,
    window_only_read_jit,
    window_only_slide_jit,
)
from ecology.kinds.deletion import delete_canonical_jit
from ecology.kinds.observables import CERTAIN, MAJORITY, QUANTILES
from ecology.numerics import (
    GREEDY_TIE,
    TIE_TOLERANCE,
    exp_jit,
    inline,
    jit,
    log_jit,
    logsumexp_jit,
    most_responsible_jit,
    numba,
    quantiles_jit,
    sketch_jit,
    tempered_jit,
)


@jit
def _read_windows(windows, reset, pad, laws, states, loglik, log_amp, log_mu, log_p, free_energy):
    """Every premise reads each window from scratch after its last reset token
    (:func:`ecology.core.readers.read_visible_jit`), then mix in log space
    (:func:`ecology.core.mixture.combine_jit`): the initial step and drift's successor windows."""
    read_visible_jit(windows, reset, pad, laws.next_at, laws.logp_at, laws.start, states, loglik)
    n_premises = len(laws.start)
    joint = np.empty(n_premises)
    terms = np.empty(n_premises)
    z = np.empty(log_mu.shape[1])
    for r in range(windows.shape[0]):
        combine_jit(r, states[:, r], loglik[:, r], laws.step_logp, laws.log_prior, laws.temperature, laws.greedy_tie,
                    log_amp, log_mu, log_p, free_energy, joint, terms, z)


TINY = 1e-200  # below this a linear-space probability is recomputed in log space (no underflow)
LOG_SPACE_BELOW = 1e-3  # temperatures (above 0) below which every replicate is mixed in log space
CHUNK = 256  # replicates summed in plain order before the partial sum is added to the step's total
RING_CHUNK = 64  # slots of the ledger's ring summed together (the held credit: a sum of the chunks' sums)


@inline
def _chunk_sum(ring, r, j, chunk, chunk_sums):
    """``chunk_sums[r, j, chunk]``: the sum, in slot order, of the ring's slots of that chunk."""
    lo = chunk * RING_CHUNK
    total = 0.0
    for m in range(lo, min(lo + RING_CHUNK, ring.shape[2])):
        total += ring[r, j, m]
    chunk_sums[r, j, chunk] = total


@jit
def _law_totals(p, total):
    """``total[r] = sum_t p[t, r]`` in token order (as the settle pass sums them)."""
    for r in range(p.shape[1]):
        total[r] = 0.0
    for t in range(p.shape[0]):
        for r in range(p.shape[1]):
            total[r] += p[t, r]


class Laws(NamedTuple):
    """The premises' compiled tables, premise-padded to ``Qmax`` states: ``step_state``/``step_logp``
    (S, Qmax, V + 1) the automaton transitions and ``log emit`` (the pad column reads as the
    identity), ``emit`` (S, Qmax, V) the linear emission laws, ``n_states`` and ``start`` (S,),
    ``log_prior`` (S,), ``member_of`` (S,) each premise's population, the temperature and the
    greedy tie, and the flat tables of the re-reading loops (entry ``q (V + 1) + t`` of premise
    ``s``: the next state's offset ``next_at`` and ``log emit`` ``logp_at``)."""

    step_state: np.ndarray
    step_logp: np.ndarray
    emit: np.ndarray
    n_states: np.ndarray
    start: np.ndarray
    log_prior: np.ndarray
    member_of: np.ndarray
    temperature: float
    greedy_tie: float
    next_at: np.ndarray
    logp_at: np.ndarray


class Replicates(NamedTuple):
    """The per-replicate state, premise- (S, R), token- (V, R) or label-major (L, R), so that every
    loop runs over replicates innermost; ``credit`` (R, L), ``deleted``, ``tokens``, ``surprisal`` (R,)."""

    alpha: np.ndarray
    log_amp: np.ndarray
    mu: np.ndarray
    log_mu: np.ndarray
    p: np.ndarray
    log_p: np.ndarray
    free_energy: np.ndarray
    states: np.ndarray
    loglik: np.ndarray
    population: np.ndarray
    credit: np.ndarray
    deleted: np.ndarray
    tokens: np.ndarray
    surprisal: np.ndarray


class CriteriaArrays(NamedTuple):
    """The criteria's compiled forms (:class:`ecology.kinds.criteria.CompiledCriterion`), one row
    per criterion (then per named set), and their state: ``outside`` (C, R) the incremental
    ``window_only`` counts, ``reached_at`` and ``holding`` (C, R); ``patterns`` (C, M, k) and
    ``pattern_count`` (C,) the window patterns; ``members`` (C, K), ``member_count`` and
    ``negate`` (C,) the combined sets; ``occupied``, ``entries``, ``last`` the
    engine's :class:`ecology.engine.base.Occupation`."""

    form: np.ndarray
    label: np.ndarray
    threshold: np.ndarray
    disallowed: np.ndarray
    period: np.ndarray
    copies: np.ndarray
    outside: np.ndarray
    reached_at: np.ndarray
    holding: np.ndarray
    patterns: np.ndarray
    pattern_count: np.ndarray
    members: np.ndarray
    member_count: np.ndarray
    negate: np.ndarray
    occupied: np.ndarray
    entries: np.ndarray
    last: np.ndarray


class Scratch(NamedTuple):
    """Work arrays reused by every step: three of length R, the quantile probabilities, the
    short ones of the log-space twins (responsibilities, joint terms, tempered exponents), and
    ``fresh`` (R, L), the credit of the token each replicate printed this step, and ``total``
    (R,), ``c_{V-1} = sum_t p_T(t | w)`` summed in token order by the settle pass (and
    :func:`_law_totals` at step 0) for the next print pass."""

    top: np.ndarray
    norm: np.ndarray
    scratch: np.ndarray
    probabilities: np.ndarray
    resp: np.ndarray
    joint: np.ndarray
    terms: np.ndarray
    z: np.ndarray
    fresh: np.ndarray
    total: np.ndarray


class LedgerArrays(NamedTuple):
    """The token ledger in the kernel: the arrays of :class:`ecology.engine.base.LedgerState`
    (updated in place; a retired slot of the ring is set to 0, so that the live slots' sum is the
    whole ring's), ``seen`` (R,) the real tokens deleted by the last ledger pass, ``chunk_sums``
    (R, L, ceil((k + 1) / RING_CHUNK)) the sums of the ring's chunks of ``RING_CHUNK`` slots,
    and the real and pinned tokens of the initial window."""

    ring: np.ndarray
    retired: np.ndarray
    held: np.ndarray
    age: np.ndarray
    oldest: np.ndarray
    prompt_left: np.ndarray
    seen: np.ndarray
    chunk_sums: np.ndarray
    initial: int
    pinned: int


class SlidingBuffer(NamedTuple):
    """Windows under a sliding rule (:class:`ecology.core.windows.SlidingWindows`): ``buf[:, start:end]``
    the page-states, ``length`` k, whether the rule deletes the oldest token, the pad and the reset
    token (-1: none)."""

    buf: np.ndarray
    length: int
    deletes: bool
    pad: int
    reset: int


class Stacks(NamedTuple):
    """The two-stack reader's arrays (:func:`ecology.core.readers.slide_read_jit`): front stacks
    (S, L, R), back stacks (S, Qmax, R)."""

    front_state: np.ndarray
    front_logw: np.ndarray
    back_state: np.ndarray
    back_logw: np.ndarray


class CanonicalWindows(NamedTuple):
    """Windows rewritten by the rule's :class:`ecology.kinds.deletion.DeletionProgram` (``oldest``,
    ``delimiter``) after the ``pinned`` prefix: ``window`` (R, k), a row of scratch ``grown`` (k + 1),
    the pad, the reset token and the ring ``history`` (memory, R, k) of earlier page-states."""

    window: np.ndarray
    grown: np.ndarray
    oldest: int
    delimiter: int
    pinned: int
    pad: int
    reset: int
    history: np.ndarray


@jit
def _credit_exact(r, b, token, log_amp, log_mu, states, step_logp, member_of, credit, raster_rows,
                  speakers, premise_speakers, resp):
    """Credit of replicate ``r``'s token in log space exactly as numpy (``exp(log alpha_s + log
    mu_s(t | w) - log mu(t | w))`` summed per population, into ``credit``, the row of the step's
    fresh credit); the raster rows also record the population and the premise most responsible for it."""
    n_premises = len(member_of)
    n_labels = credit.shape[1]
    for j in range(n_labels):
        resp[n_premises + j] = 0.0
    for s in range(n_premises):
        resp[s] = log_amp[r, s] + step_logp[s, states[s, r], token] - log_mu[r, token]
        resp[n_premises + member_of[s]] += np.exp(resp[s])
    for j in range(n_labels):
        credit[r, j] = resp[n_premises + j]
    if r < raster_rows:
        speakers[b, r] = most_responsible_jit(resp[n_premises:])
        premise_speakers[b, r] = most_responsible_jit(resp[:n_premises])


@jit
def _print_pass(b, u, exact_rows, laws, st, out, work):
    """Every replicate prints its token: ``t = #{u : c_u <= U c_{V-1}}`` with ``c`` the cumulative
    sums of ``p_T(. | w)`` (inverse CDF, as :func:`ecology.numerics.sample`; ``c_{V-1}``, summed in
    token order by the last settle pass, is ``work.total``); its surprisal
    ``-log mu(t | w)``; its credit to each population, ``sum_{s in L} alpha_s mu_s(t | w) / mu(t | w)``
    (in linear space, or in log space as numpy for the raster rows and where ``mu(t | w) < TINY``).
    ``p``, ``mu``, ``log_mu`` are token-major, ``alpha`` and ``log_amp`` premise-major: every loop
    runs over replicates innermost, each replicate's sums in the order of the reference."""
    p, mu, log_mu, alpha, log_amp, states = st.p, st.mu, st.log_mu, st.alpha, st.log_amp, st.states
    credit, surprisal, tokens, fresh = st.credit, st.surprisal, st.tokens, work.fresh
    step_logp, emit, member_of = laws.step_logp, laws.emit, laws.member_of
    printed, speakers, premise_speakers = out.printed, out.speakers, out.premise_speakers
    resp, norm, cum, scale = work.resp, work.top, work.norm, work.scratch
    n_tokens, rows = p.shape
    n_premises = len(member_of)
    n_labels = credit.shape[1]
    raster_rows = printed.shape[1]
    log_amp_rows, log_mu_rows = log_amp.T, log_mu.T  # replicate-major views for _credit_exact
    for r in range(rows):
        norm[r] = work.total[r] * u[r]  # the bound U c_{V-1} (c_{V-1} summed by the last settle pass)
        cum[r] = 0.0
        tokens[r] = 0
        for j in range(n_labels):
            fresh[r, j] = 0.0
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
            _credit_exact(r, b, token, log_amp_rows, log_mu_rows, states, step_logp, member_of, fresh,
                          raster_rows, speakers, premise_speakers, resp)
    for j in range(n_labels):  # exact rows add 0
        for r in range(rows):
            cum[r] = 0.0
        for s in range(n_premises):
            if member_of[s] == j:
                for r in range(rows):
                    cum[r] += alpha[s, r] * emit[s, states[s, r], tokens[r]] * scale[r]
        for r in range(rows):
            fresh[r, j] += cum[r]
            credit[r, j] += fresh[r, j]
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
    return logsumexp_jit(terms)


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
def _ledger_pass(b, step, ledger, st, work, sums):
    """The token ledger after step ``step``'s deletion, as :meth:`ecology.engine.base.LedgerState.step`
    (retired credit and age: the same additions in the same order): the printed token's credit
    (``work.fresh``) enters ring slot ``step mod (k + 1)``; the real tokens the rule deleted this
    step (the growth of ``deleted`` since the last pass) are the oldest, prompt tokens first, then
    printed tokens from ``oldest`` on, whose credit is retired (and, times their age ``step - u``,
    added to ``age``) and whose slot is set to 0; the held credit, the sum over the live slots, is
    then the sum of the chunks' sums (``chunk_sums``, each chunk of ``RING_CHUNK`` slots re-summed
    when one of its slots changes): ``O(RING_CHUNK + k / RING_CHUNK)`` per replicate and label
    instead of ``O(k)``, within a few ulps of numpy's sum over the ring (under ``none``, no ring:
    the credit issued). Then the step's sums of the real and prompt tokens in the window and of each
    population's retired, held and age figures."""
    ring, retired, held, age, oldest, prompt_left, seen = (ledger.ring, ledger.retired, ledger.held, ledger.age,
                                                           ledger.oldest, ledger.prompt_left, ledger.seen)
    chunk_sums = ledger.chunk_sums
    credit, deleted, fresh, tmp = st.credit, st.deleted, work.fresh, work.top
    rows, n_labels, slots = ring.shape
    for r in range(rows):
        if slots == 0:
            for j in range(n_labels):
                held[r, j] = credit[r, j]
            continue
        slot = step % slots  # a dead slot (a window holds at most k printed tokens): 0 until now
        for j in range(n_labels):
            ring[r, j, slot] = fresh[r, j]
            _chunk_sum(ring, r, j, slot // RING_CHUNK, chunk_sums)
        gone = int(deleted[r] - seen[r])
        seen[r] = deleted[r]
        from_prompt = min(gone, prompt_left[r])
        prompt_left[r] -= from_prompt
        gone -= from_prompt
        for i in range(gone):
            birth = oldest[r] + i
            for j in range(n_labels):
                c = ring[r, j, birth % slots]
                retired[r, j] += c
                age[r, j] += c * (step - birth)
                ring[r, j, birth % slots] = 0.0
                _chunk_sum(ring, r, j, (birth % slots) // RING_CHUNK, chunk_sums)
        oldest[r] += gone
        for j in range(n_labels):  # the live slots' sum: every slot but those live is 0
            total = 0.0
            for m in range(chunk_sums.shape[2]):
                total += chunk_sums[r, j, m]
            held[r, j] = total
    scalars = sums.shape[1] - 3 * n_labels - 2  # the columns of "window" and "prompt" (engine.base.SCALARS)
    for r in range(rows):
        tmp[r] = ledger.initial + step - deleted[r]
    sums[b, scalars] = _total(tmp)
    for r in range(rows):
        tmp[r] = ledger.pinned + prompt_left[r]
    sums[b, scalars + 1] = _total(tmp)
    at = scalars + 2
    for j in range(n_labels):
        sums[b, at + j] = _total(retired[:, j])
        sums[b, at + n_labels + j] = _total(held[:, j])
        sums[b, at + 2 * n_labels + j] = _total(age[:, j])


@jit
def _settle_pass(b, step, exact_rows, laws, st, crit, out, work):
    """Bayes, mixing and tempering for every replicate (module docstring, step 3), then its figures
    in row ``b`` of the step's sums and counts. Arrays are premise-, token- or label-major
    (``alpha[s, r]``, ``mu[t, r]``, ``population[j, r]``) and every loop runs over replicates
    innermost.

    Mixing in linear space with one ``exp`` per premise (:func:`exp_jit` and :func:`log_jit`, so the
    loops over replicates vectorise): with ``e_s = exp(log prior_s + log mu_s(w)
    - m)`` (``m`` the largest exponent), ``alpha_s = e_s / sum e`` and ``mu(t | w) = sum_s alpha_s
    emit_s[q_s, t]``; a ``mu(t | w)`` below ``TINY`` is recomputed in log space (nothing
    underflows); the laws agree with numpy's to rounding (~1e-16 relative). The raster rows
    (below ``exact_rows``) are then mixed again in log space exactly as numpy (:func:`combine_jit`). At
    ``T = 1``, ``p`` and ``log_p`` are ``mu`` and ``log_mu`` (the same arrays).

    Recording: premise and population amplitudes, entropy ``-sum_t p_T log p_T`` (in one pass over
    the tokens with the NaN count of ``log p_T`` and ``c_{V-1} = sum_t p_T``, the next print
    pass's bound, into ``work.total``), free energy,
    effective premises ``exp(-sum_s alpha_s log alpha_s)``, tokens deleted (sums by
    :func:`_total`); replicates with a population above 1/2 and 0.99 (the tie rule of
    :func:`ecology.numerics.above`); population criteria; criteria reached (first step each
    holds: ``reached_at``) and holding. Returns (0, -1), or (1, r) for the first impossible
    window, else (2, r) for the first NaN (nothing is recorded then)."""
    states, loglik, alpha, log_amp, mu, log_mu = st.states, st.loglik, st.alpha, st.log_amp, st.mu, st.log_mu
    p, log_p, free_energy, deleted, population = st.p, st.log_p, st.free_energy, st.deleted, st.population
    step_logp, emit, log_prior, member_of = laws.step_logp, laws.emit, laws.log_prior, laws.member_of
    temperature, greedy_tie = laws.temperature, laws.greedy_tie
    form, label, threshold, holding, reached_at = crit.form, crit.label, crit.threshold, crit.holding, crit.reached_at
    sums, counts, trajectories = out.sums, out.counts, out.trajectories
    top, norm, joint, terms, z, total = work.top, work.norm, work.joint, work.terms, work.z, work.total
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
            alpha[s, r] = exp_jit(log_prior[s] + loglik[s, r] - top[r])
            norm[r] += alpha[s, r]
    for r in range(rows):
        top[r] += log_jit(norm[r])  # log Z
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
            log_mu[t, r] = log_jit(mu[t, r])
        for r in range(rows):
            if mu[t, r] < TINY:
                log_mu[t, r] = _log_mu_exact(r, t, states, log_amp, step_logp, terms)
                mu[t, r] = np.exp(log_mu[t, r])
    if temperature != 1.0:
        for r in range(rows):
            tempered_jit(r, temperature, greedy_tie, log_mu.T, log_p.T, z)
        for t in range(n_tokens):
            for r in range(rows):
                p[t, r] = exp_jit(log_p[t, r])
    for r in range(min(exact_rows, rows)):
        combine_jit(r, states[:, r], loglik[:, r], step_logp, log_prior, temperature, greedy_tie,
             log_amp.T, log_mu.T, log_p.T, free_energy, joint, terms, z)
        for s in range(n_premises):
            alpha[s, r] = np.exp(log_amp[s, r])
        for t in range(n_tokens):
            mu[t, r] = np.exp(log_mu[t, r])
            p[t, r] = np.exp(log_p[t, r])
    nan = 0
    for r in range(rows):
        top[r] = 0.0  # entropy of p_T
        total[r] = 0.0  # c_{V-1}, the bound of the next print pass
    for t in range(n_tokens):  # NaNs, totals and entropy in one pass over the tokens, three loops that vectorise
        for r in range(rows):
            nan += np.isnan(log_p[t, r])
        for r in range(rows):
            total[r] += p[t, r]
        for r in range(rows):
            if p[t, r] > 0.0:
                top[r] -= p[t, r] * log_p[t, r]
    infinite = 0  # counted first (loops that vectorise); the first replicate looked up if any
    for r in range(rows):
        infinite += not np.isfinite(free_energy[r])
    for s in range(n_premises):
        for r in range(rows):
            nan += np.isnan(log_amp[s, r])
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
        norm[r] = 0.0  # entropy of the amplitudes (top holds the entropy of p_T)
    for s in range(n_premises):
        for r in range(rows):
            if alpha[s, r] > 0.0:
                norm[r] -= alpha[s, r] * log_amp[s, r]
    for r in range(rows):
        norm[r] = exp_jit(norm[r])
    sums[b, scalars] = _total(top)
    sums[b, scalars + 2] = _total(free_energy)
    sums[b, scalars + 3] = _total(norm)
    sums[b, scalars + 4] = _total(deleted)
    n_criteria = len(form)
    for c in range(n_criteria):
        if form[c] == POPULATION:
            population_above_jit(c, population, label[c], threshold[c], TIE_TOLERANCE, holding)
        elif form[c] == COMBINED:  # its members are earlier rows, settled already
            combined_jit(c, crit.members[c], crit.member_count[c], crit.negate[c], holding)
        reached = held = 0
        for r in range(rows):
            if holding[c, r] and reached_at[c, r] < 0:
                reached_at[c, r] = step
            if holding[c, r]:  # occupation (Occupation.update)
                crit.occupied[c, r] += 1
                if crit.last[c, r] != step - 1:
                    crit.entries[c, r] += 1
                crit.last[c, r] = step
            reached += reached_at[c, r] >= 0
            held += holding[c, r]
        counts[b, 2 * n_labels + c] = reached
        counts[b, 2 * n_labels + n_criteria + c] = held
    for r in range(trajectories.shape[1]):
        for j in range(n_labels):
            trajectories[b, r, j] = population[j, r]
    return 0, -1


@jit
def _begin_step(b, u, exact_rows, laws, st, out, work):
    """Print pass of step ``b`` (:func:`_print_pass`); the sums of the surprisals and of each
    population's credit into the step's sums."""
    n_premises, n_labels = len(laws.log_prior), st.population.shape[0]
    _print_pass(b, u, exact_rows, laws, st, out, work)
    out.sums[b, n_premises + 2 * n_labels + 1] = _total(st.surprisal)
    for j in range(n_labels):
        out.sums[b, n_premises + n_labels + j] = _total(st.credit[:, j])


@jit
def _end_step(b, step, exact_rows, laws, st, crit, out, work):
    """Settle (mix and record) and quantile passes of step ``b`` once every window has been read;
    returns :func:`_settle_pass`'s (failure, replicate)."""
    failure, replicate = _settle_pass(b, step, exact_rows, laws, st, crit, out, work)
    if failure:
        return failure, replicate
    n_premises = len(laws.log_prior)
    quantiles_jit(b, st.alpha, 0, work.probabilities, work.scratch, out.quantiles)
    if out.quantiles.shape[2] > n_premises:  # populations of several premises: their own quantiles
        quantiles_jit(b, st.population, n_premises, work.probabilities, work.scratch, out.quantiles)
    if out.sketch.shape[1]:  # a shard of a split run: the amplitudes' sketch too
        sketch_jit(b, st.alpha, 0, out.sketch, out.extremes)
        if out.quantiles.shape[2] > n_premises:
            sketch_jit(b, st.population, n_premises, out.sketch, out.extremes)
    return 0, -1


@jit
def _run_sliding(uniforms, generated, exact_rows, win, start, end, stacks, head, laws, st, ledger, crit, out, work):
    """``B = len(uniforms)`` steps of every replicate whose windows slide in one buffer
    (:class:`SlidingBuffer`: ``buf[:, start:end]``, the last ``memory`` deleted tokens before
    ``start``): print, append, delete the oldest when full (``fifo``), read with the two-stack
    queue (or re-read after the last reset token), keep the ledger, evaluate the criteria, mix, record.
    Returns (steps done, failure (0 none, 1 impossible, 2 NaN), failing replicate, start, end, head)."""
    buf, length, deletes, pad = win.buf, win.length, win.deletes, win.pad
    states, loglik, deleted, tokens = st.states, st.loglik, st.deleted, st.tokens
    form, holding = crit.form, crit.holding
    rows = uniforms.shape[1]
    front_len = stacks.front_state.shape[1]
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
        if win.reset >= 0:
            read_visible_jit(buf[:, start:end], win.reset, pad, laws.next_at, laws.logp_at, laws.start, states, loglik)
        else:
            head += count
            rebuild = head > front_len
            if rebuild:
                head = 0
            slide_read_jit(tokens, head, rebuild, buf[:, start:end], laws.step_state, laws.step_logp, laws.n_states,
                           laws.start, stacks.front_state, stacks.front_logw, stacks.back_state, stacks.back_logw,
                           states, loglik)
        _ledger_pass(b, step, ledger, st, work, out.sums)
        for c in range(len(form)):
            if form[c] == WINDOW_ONLY:
                window_only_slide_jit(c, tokens, buf, end, length, crit.disallowed[c], crit.outside, holding)
            elif form[c] == PERIODIC:
                periodic_slide_jit(c, buf, start, end, crit.period[c], deletes, holding)
            elif form[c] == REPEATS:
                repeats_slide_jit(c, buf, end, length, pad, crit.period[c], crit.copies[c], holding)
            elif form[c] == PATTERNS:
                patterns_slide_jit(c, buf, end, length, crit.patterns[c], crit.pattern_count[c], holding)
        failure, replicate = _end_step(b, step, exact_rows, laws, st, crit, out, work)
        if failure:
            return b, failure, replicate, start, end, head
        for r in range(out.raster.shape[1]):
            for j in range(length):
                out.raster[b, r, j] = buf[r, end - length + j]
    return uniforms.shape[0], 0, -1, start, end, head


@jit
def _run_rereading(uniforms, generated, exact_rows, win, position, filled, laws, st, ledger, crit, out, work):
    """``B`` steps of every replicate whose windows are canonical rows ``window[r]`` rewritten by the
    rule's program (:func:`ecology.kinds.deletion.delete_canonical_jit`); every premise re-reads the
    window after its last reset token. ``history`` keeps the last ``memory`` page-states
    (``periodic``). Returns (steps done, failure, failing replicate, history position, history count)."""
    window, history = win.window, win.history
    states, loglik, deleted, tokens = st.states, st.loglik, st.deleted, st.tokens
    form, holding = crit.form, crit.holding
    length = window.shape[1]
    memory = history.shape[0]
    for b in range(uniforms.shape[0]):
        step = generated + b + 1
        _begin_step(b, uniforms[b], exact_rows, laws, st, out, work)
        delete_canonical_jit(tokens, window, win.grown, win.oldest, win.delimiter, win.pinned, win.pad, history,
                             position, deleted)
        _ledger_pass(b, step, ledger, st, work, out.sums)
        if memory:
            filled = min(filled + 1, memory)
        read_visible_jit(window, win.reset, win.pad, laws.next_at, laws.logp_at, laws.start, states, loglik)
        for c in range(len(form)):
            if form[c] == WINDOW_ONLY:
                window_only_read_jit(c, window, crit.disallowed[c], holding)
            elif form[c] == PERIODIC:
                periodic_read_jit(c, window, history, position, filled, crit.period[c], holding)
            elif form[c] == REPEATS:
                repeats_read_jit(c, window, win.pad, crit.period[c], crit.copies[c], holding)
            elif form[c] == PATTERNS:
                patterns_read_jit(c, window, crit.patterns[c], crit.pattern_count[c], holding)
        if memory:
            position = (position + 1) % memory
        failure, replicate = _end_step(b, step, exact_rows, laws, st, crit, out, work)
        if failure:
            return b, failure, replicate, position, filled
        for r in range(out.raster.shape[1]):
            for j in range(length):
                out.raster[b, r, j] = window[r, j]
    return uniforms.shape[0], 0, -1, position, filled


def as_tokens(tokens: np.ndarray) -> np.ndarray:
    """Token arrays as contiguous int64, the one type the loops are compiled for."""
    return np.ascontiguousarray(tokens, dtype=np.int64)


class CompiledEngine(Engine):
    """The compiled engine (module docstring) for the R replicates of a model: automaton premises,
    and rules, criteria and observables that have a compiled form (:meth:`unsupported`).

    Step 0 is read by :func:`_read_windows` and settled and recorded by the reference code
    (:meth:`ecology.engine.base.Engine.start`); the state it settles is then copied into the
    kernel's premise-, token- and label-major arrays (``st``, a :class:`Replicates`). The
    engine's ``credit``, ``deleted``, ``reached_at`` and ``holding`` and the context's windows are
    updated in place by every block."""

    name = "compiled"

    @staticmethod
    def unsupported(compiled) -> str | None:
        if numba is None:
            return "numba is not installed"
        for p in compiled.premises:
            if getattr(p, "automaton", None) is None:
                return f"premise '{p.name}' is a trained model, not an automaton"
        if compiled.rule.compiled_form() is None:
            return f"deletion rule '{compiled.rule.name}' has no compiled form"
        for c in compiled.tracked:
            if c.compiled_form() is None:
                return f"criterion '{c.name}' is of a form without a compiled form"
        for item in observables.OBSERVABLES:
            if not item.compiled:
                return f"observable {type(item).__name__} has no compiled form"
        return None

    def __init__(self, compiled, context, replicates: int, raster_rows: int, measured=()):
        super().__init__(compiled, context, replicates, raster_rows, measured)
        premises, mixture = compiled.premises, self.mixture
        V, R = compiled.n_tokens, replicates
        self.n_tokens = V
        self.rule = compiled.rule
        temperature = float(mixture.temperature)
        self.reset = -1 if mixture.reset is None else int(mixture.reset)
        q_max = max(p.automaton.n_states for p in premises)
        S, L = len(premises), len(mixture.labels)
        step_state = np.zeros((S, q_max, V + 1), dtype=np.int64)
        step_logp = np.zeros((S, q_max, V + 1))
        for s, p in enumerate(premises):
            q = p.automaton.n_states
            step_state[s, :q] = p.automaton.step_state
            step_logp[s, :q] = p.automaton.step_logp
        member_of = np.empty(S, dtype=np.int64)
        for j, members in enumerate(mixture.members):
            member_of[members] = j
        self.laws = Laws(step_state, step_logp, np.exp(step_logp[:, :, :V]),
                         np.array([p.automaton.n_states for p in premises], dtype=np.int64),
                         np.array([p.automaton.start for p in premises], dtype=np.int64),
                         np.ascontiguousarray(mixture.log_prior, dtype=float), member_of, temperature, GREEDY_TIE,
                         (step_state * (V + 1)).reshape(S, -1), step_logp.reshape(S, -1).copy())
        self.singletons = all(len(m) == 1 for m in mixture.members)
        self.sole_premise = np.array([m[0] for m in mixture.members]) if self.singletons else None
        mu, log_mu = np.empty((V, R)), np.empty((V, R))
        # the sampling law: at T = 1 the model's law itself (the same arrays)
        p, log_p = (mu, log_mu) if temperature == 1.0 else (np.empty((V, R)), np.empty((V, R)))
        self.st = Replicates(np.empty((S, R)), np.empty((S, R)), mu, log_mu, p, log_p, np.empty(R),
                             np.empty((S, R), dtype=np.intp), np.empty((S, R)), np.empty((L, R)), self.credit,
                             self.deleted, np.zeros(R, dtype=np.intp), np.zeros(R))
        forms = [c.compiled_form() for c in compiled.tracked]
        C = len(forms)
        disallowed = np.zeros((C, V + 2), dtype=np.int64)
        pattern_count = np.array([0 if f.patterns is None else len(f.patterns) for f in forms], dtype=np.int64)
        patterns = np.zeros((C, max(pattern_count, default=0), self.length), dtype=np.int64)
        for c, form in enumerate(forms):
            if form.disallowed is not None:
                disallowed[c] = form.disallowed
            if form.patterns is not None:
                patterns[c, : len(form.patterns)] = form.patterns
        member_count = np.array([0 if f.members is None else len(f.members) for f in forms], dtype=np.int64)
        members = np.zeros((C, max(member_count, default=0)), dtype=np.int64)
        for c, form in enumerate(forms):
            if form.members is not None:
                members[c, : len(form.members)] = form.members
        self.crit = CriteriaArrays(np.array([f.form for f in forms], dtype=np.int64),
                                   np.array([f.label for f in forms], dtype=np.int64),
                                   np.array([f.threshold for f in forms], dtype=float), disallowed,
                                   np.array([f.period for f in forms], dtype=np.int64),
                                   np.array([f.copies for f in forms], dtype=np.int64),
                                   np.zeros((C, R), dtype=np.int64), self.reached_at, self.holding, patterns,
                                   pattern_count, members, member_count, np.array([f.negate for f in forms], dtype=np.bool_),
                                   self.occupation.occupied, self.occupation.entries, self.occupation.last)
        self.work = Scratch(np.empty(R), np.empty(R), np.empty(R), np.array(QUANTILES, dtype=float),
                            np.empty(S + L), np.empty(S), np.empty(S), np.empty(V), np.empty((R, L)), np.empty(R))
        book = self.ledger
        self.ledger_arrays = LedgerArrays(book.ring, book.retired, book.held, book.age, book.oldest, book.prompt_left,
                                          self.deleted.copy(),
                                          np.zeros(book.ring.shape[:2] + (-(-book.ring.shape[2] // RING_CHUNK),)),
                                          self.initial_tokens, self.pinned_tokens)
        self.sliding_windows = isinstance(context, SlidingWindows)
        if compiled.slides:
            length = context.window.shape[1]
            # front stacks premise- and position-major, back stacks premise- and state-major, so
            # that reading position ``head`` and pushing a token walk contiguous memory
            self.stacks = Stacks(np.empty((S, length, R), dtype=np.int64), np.empty((S, length, R)),
                                 np.empty((S, q_max, R), dtype=np.int64), np.empty((S, q_max, R)))
            with deferred():
                rebuild_jit(as_tokens(context.window), step_state, step_logp, self.laws.n_states, self.laws.start,
                            *self.stacks)
        else:
            self.stacks = Stacks(np.zeros((S, 0, 0), dtype=np.int64), np.zeros((S, 0, 0)),
                                 np.zeros((S, q_max, 0), dtype=np.int64), np.zeros((S, q_max, 0)))
        self.head = 0
        if not self.sliding_windows:
            k = context.window.shape[1]
            program = self.rule.compiled_form()
            self.canonical = CanonicalWindows(context.array, np.empty(k + 1, dtype=context.window.dtype),
                                              program.oldest, program.delimiter, self.rule.pinned, V, self.reset,
                                              np.zeros((compiled.memory, R, k), dtype=context.window.dtype))
            self.position = self.filled = 0

    def _read(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, Step]:
        """Premises' final states and likelihoods (premise-major) and the mixture on ``windows``,
        every premise reading from scratch after the last reset token."""
        rows, S, V = windows.shape[0], len(self.laws.start), self.n_tokens
        states, loglik = np.empty((S, rows), dtype=np.intp), np.empty((S, rows))
        log_amp, log_mu, log_p = np.empty((rows, S)), np.empty((rows, V)), np.empty((rows, V))
        free_energy = np.empty(rows)
        with deferred():
            _read_windows(as_tokens(windows), self.reset, self.n_tokens, self.laws, states, loglik, log_amp, log_mu,
                          log_p, free_energy)
        return states, loglik, Step(log_amp, log_mu, log_mu if self.laws.temperature == 1.0 else log_p, free_energy)

    def mixture_on(self, windows: np.ndarray) -> Step:
        return self._read(windows)[2]

    def read_initial(self) -> Step:
        states, loglik, step = self._read(self.context.window)
        self.st.states[:], self.st.loglik[:] = states, loglik
        return step

    def start(self) -> StepRecords:
        """Step 0 as the reference engine settles it, then its state in the kernel's arrays: the
        mixture, and the ``window_only`` counts of disallowed tokens in the last ``k`` positions."""
        records = super().start()
        st, step = self.st, self.current
        st.log_amp[:], st.log_mu[:], st.log_p[:] = step.log_amplitude.T, step.log_mu.T, step.log_p.T
        st.free_energy[:] = step.free_energy
        st.alpha[:], st.mu[:], st.p[:] = np.exp(st.log_amp), np.exp(st.log_mu), np.exp(st.log_p)
        st.population[:] = self.population.T
        _law_totals(st.p, self.work.total)
        last = self.context.last(self.length)
        for c in np.flatnonzero(self.crit.form == WINDOW_ONLY):
            self.crit.outside[c] = self.crit.disallowed[c][last].sum(axis=1)
        return records

    def run(self, uniforms: np.ndarray, generated: int) -> StepRecords:
        B, R = uniforms.shape
        # below LOG_SPACE_BELOW the tempered law magnifies the mixture's last-bit roundings by 1 / T:
        # every row is then mixed in log space exactly as numpy
        exact = R if 0.0 < self.laws.temperature < LOG_SPACE_BELOW else self.raster_rows
        records = self.new_records(B, generated + 1)
        out = records.arrays
        if self.singletons:  # the kernel computes the premises' quantiles only (populations are premises)
            out = out._replace(quantiles=np.empty((B, len(QUANTILES), len(self.laws.start))))
        if self.sliding_windows:
            ctx = self.context
            ctx.reserve(B)
            win = SlidingBuffer(ctx.buf, self.length, self.rule.deletes_oldest, self.n_tokens, self.reset)
            with deferred():
                done, failure, replicate, ctx.start, ctx.end, self.head = _run_sliding(
                    uniforms, generated, exact, win, ctx.start, ctx.end, self.stacks, self.head, self.laws, self.st,
                    self.ledger_arrays, self.crit, out, self.work)
        else:
            win = self.canonical._replace(window=self.context.array)  # the context's windows, rewritten in place
            with deferred():
                done, failure, replicate, self.position, self.filled = _run_rereading(
                    uniforms, generated, exact, win, self.position, self.filled, self.laws, self.st, self.ledger_arrays,
                    self.crit, out, self.work)
        if self.singletons:  # each population is one premise: its quantiles are that premise's
            records.arrays.quantiles[:] = np.concatenate([out.quantiles, out.quantiles[:, :, self.sole_premise]], axis=2)
            if records.arrays.sketch.shape[1]:
                S = len(self.laws.start)
                records.arrays.sketch[:, S:] = records.arrays.sketch[:, self.sole_premise]
                records.arrays.extremes[:, S:] = records.arrays.extremes[:, self.sole_premise]
        records.done, records.failure = done, ((failure, replicate) if failure else None)
        # the engine's view of its state (replicate-major views of the kernel's arrays, which the next
        # block overwrites: state() copies them)
        st = self.st
        self.current = Step(st.log_amp.T, st.log_mu.T, st.log_p.T, st.free_energy)
        self.amplitudes, self.population = st.alpha.T, st.population.T
        self.token, self.surprisal = st.tokens, st.surprisal
        return records

    def state(self) -> ReplicateState:
        st = self.st
        step = Step(st.log_amp.T.copy(), st.log_mu.T.copy(), st.log_p.T.copy(), st.free_energy.copy())
        return ReplicateState(step, st.alpha.T.copy(), st.population.T.copy(), st.states.copy(), st.loglik.copy(), {},
                              self.holding.copy(), self.reached_at.copy(), self.credit.copy(), self.deleted.copy(),
                              None if self.token is None else st.tokens.copy(),
                              None if self.surprisal is None else st.surprisal.copy(), self.ledger.copy())
