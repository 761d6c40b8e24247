"""The mixture that is the static language model: likelihoods -> amplitudes -> next-token law.

For a batch of windows ``w`` (rows) and premises ``s`` with priors ``prior_s`` (normalised to
sum to one), everything here is computed in log space:

    log alpha_s(w) = log prior_s + log mu_s(w) - log Z(w),   log Z(w) = logsumexp_s(log prior_s + log mu_s(w))
    log mu(t | w)  = logsumexp_s(log alpha_s(w) + log mu_s(t | w))
    p_T(t | w)     = mu(t | w)^(1/T) / sum_u mu(u | w)^(1/T)      (T = 0: greedy, ties to the first token)
    free energy F(w) = -log Z(w)

:meth:`Mixture.combine` is the one place this is computed. The simulator feeds it the
likelihoods kept up to date by :class:`SlidingReader`; the exact analyser feeds it likelihoods
read from scratch by :meth:`Mixture.read`. Both readers compute the same sum
``log mu_s(w) = sum_i log emit_s[q_i, w_i]`` (see :mod:`ecology.simulacra`) for an automaton
premise; a model premise (``automaton is None``) has ``log mu_s(w) = sum_i log mu_s(w_i | w_<i)``
and ``log mu_s(. | w)`` from its model's batched ``read`` (:mod:`ecology.lm`), which both the
simulator and the analyser call on the visible windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .absorption import build_criteria
from .budget import check_compile
from .context import DeletionRule, after_reset, deletion_rule
from .scenario import Scenario, ScenarioError
from .simulacra import Automaton, Premise, build_premises

GREEDY_TIE = 1e-12  # log-probabilities within this of the maximum count as ties at T = 0


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """``log sum exp x`` along ``axis``; all ``-inf`` gives ``-inf`` (no warning, no NaN).

    The reduced axes here are short (premises, tokens) and the others long (replicates), so the
    reduction runs as a loop of element-wise operations over the short axis.
    """
    slices = np.moveaxis(x, axis, 0)
    top = slices[0].copy()
    for part in slices[1:]:
        np.maximum(top, part, out=top)
    safe = np.where(np.isfinite(top), top, 0.0)
    total = np.zeros(top.shape)
    for part in slices:
        total += np.exp(part - safe)
    with np.errstate(divide="ignore"):
        return np.log(total) + safe


def tempered(log_mu: np.ndarray, temperature: float) -> np.ndarray:
    """Log of the sampling law ``p_T`` from ``log mu`` (rows are windows).

    Computed as ``z = (log mu - max log mu) / T``, ``log p_T = z - logsumexp(z)``: the largest
    entry of ``z`` is exactly 0, so no temperature down to the smallest positive float overflows
    to NaN; as ``T -> 0`` the law tends to the uniform law on the exact maximisers (greedy). At
    ``T = 0`` exactly it is greedy with ties to the first token (within ``GREEDY_TIE``).
    """
    if temperature == 1.0:
        return log_mu
    top = log_mu.max(axis=1, keepdims=True)
    if temperature == 0.0:
        best = np.argmax(log_mu >= top - GREEDY_TIE, axis=1)
        out = np.full_like(log_mu, -np.inf)
        out[np.arange(len(out)), best] = 0.0
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.where(log_mu == top, 0.0, (log_mu - np.where(np.isfinite(top), top, 0.0)) / temperature)
    return z - logsumexp(z, axis=1)[:, None]


def entropy(log_p: np.ndarray) -> np.ndarray:
    """``-sum_t p log p`` per row, in nats (``0 log 0 = 0``)."""
    p = np.exp(log_p)
    return -np.sum(p * np.where(p > 0, log_p, 0.0), axis=1)


def sample(log_p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one token per row from ``exp(log_p)`` with uniforms ``u`` in [0, 1).

    A token of probability zero is never returned.
    """
    cum = np.cumsum(np.exp(log_p), axis=1)
    return np.sum(cum <= (u * cum[:, -1])[:, None], axis=1)


class PremiseLaws:
    """``log mu_s(. | w)`` of every premise on a batch of R windows, indexable by premise (R, V).

    An automaton premise's law is its emission row in its final state ``states[s]``, gathered
    only when asked for (an (S, R, V) array is never held); a model premise's law is the (R, V)
    array its model computed (``model_laws[s]``).
    """

    def __init__(self, premises: list[Premise], states: np.ndarray, model_laws: dict[int, np.ndarray]):
        self.premises = premises
        self.states = states  # (S, R) final automaton states (ignored for model premises)
        self.model_laws = model_laws

    def __len__(self) -> int:
        return len(self.premises)

    def __getitem__(self, s: int) -> np.ndarray:
        automaton = self.premises[s].automaton
        return self.model_laws[s] if automaton is None else automaton.emit_logp[self.states[s]]


@dataclass
class Step:
    """The mixture on a batch of windows: everything one step of the dynamics needs."""

    log_amplitude: np.ndarray  # (R, S)
    log_mu: np.ndarray  # (R, V) model's next-token law
    log_p: np.ndarray  # (R, V) sampling law at the temperature
    free_energy: np.ndarray  # (R,)

    @property
    def impossible(self) -> np.ndarray:
        """Rows whose window has probability zero under every premise."""
        return ~np.isfinite(self.free_energy)


class Mixture:
    """Priors, emission tables and temperature of a scenario's premises."""

    def __init__(self, premises: list[Premise], n_tokens: int, temperature: float, reset: int | None = None):
        self.premises = premises
        self.n_tokens = n_tokens
        self.temperature = temperature
        self.reset = reset  # premises read only what follows the last reset token
        prior = np.array([p.prior for p in premises], dtype=float)
        self.log_prior = np.log(prior / prior.sum())
        self.labels = list(dict.fromkeys(p.label for p in premises))
        self.members = [np.array([s for s, p in enumerate(premises) if p.label == label]) for label in self.labels]

    def combine(self, log_next, loglik: np.ndarray) -> Step:
        """Bayes and mixing (module docstring) from each premise's next-token law and likelihood.

        ``log_next[s]`` is premise ``s``'s ``log mu_s(. | w)``, shape (R, V) (a sequence over
        premises, or an (S, R, V) array); ``loglik`` is ``log mu_s(w)``, premise-major (S, R).
        Automaton and model premises enter the same way: the automaton's law is its emission row
        in its final state, the model's is what it computed from the window.
        """
        log_joint = self.log_prior[:, None] + loglik
        log_z = logsumexp(log_joint, axis=0)
        with np.errstate(invalid="ignore"):
            log_amp = log_joint - log_z
        terms = np.stack([log_amp[s][:, None] + log_next[s] for s in range(len(self.premises))])
        log_mu = logsumexp(terms, axis=0)
        return Step(log_amp.T, log_mu, tempered(log_mu, self.temperature), -log_z)

    def read(self, windows: np.ndarray) -> Step:
        """The mixture on arbitrary windows, each premise reading from scratch: O(L) per window
        (a model premise runs its model on the batch; identical windows are read once)."""
        log_next, loglik = self.likelihoods(windows)
        return self.combine(log_next, loglik)

    def sequence_log_prob(self, sequences: np.ndarray) -> np.ndarray:
        """``log P(y) = log sum_s prior_s mu_s(y_1 .. y_n)`` of each row of ``n`` tokens (a storyline
        one token longer than the window, as :mod:`ecology.decompose` needs). Automaton premises
        read the whole row (``-F(y)``); with model premises, whose context may hold only ``n - 1``
        tokens, each premise reads ``y_1 .. y_{n-1}`` and adds ``log mu_s(y_n | y_1 .. y_{n-1})``."""
        if all(p.automaton is not None for p in self.premises):
            return -self.read(sequences).free_energy
        laws, loglik = self.likelihoods(sequences[:, :-1])
        rows, last = np.arange(len(sequences)), sequences[:, -1]
        joint = np.stack([self.log_prior[s] + loglik[s] + laws[s][rows, last] for s in range(len(self.premises))])
        return logsumexp(joint, axis=0)

    def visible(self, windows: np.ndarray) -> np.ndarray:
        """What the premises read: the windows after their last reset token (if any)."""
        return windows if self.reset is None else after_reset(windows, self.reset, self.n_tokens)

    def likelihoods(self, windows: np.ndarray) -> tuple[PremiseLaws, np.ndarray]:
        """Each premise's ``log mu_s(. | w)`` (:class:`PremiseLaws`) and ``log mu_s(w)`` (S, R),
        reading after the last reset token if any."""
        windows = self.visible(windows)
        states = np.zeros((len(self.premises), len(windows)), dtype=np.intp)
        loglik = np.empty((len(self.premises), len(windows)))
        model_laws = {}
        for s, p in enumerate(self.premises):
            if p.automaton is None:
                loglik[s], model_laws[s] = p.model.read(windows)
            else:
                states[s], loglik[s] = p.automaton.read(windows)
        return PremiseLaws(self.premises, states, model_laws), loglik

    def drift(self, windows: np.ndarray, step: Step, rule: DeletionRule, read=None) -> np.ndarray:
        """(R, S) exact expected one-step change of each premise's amplitude (Remark 9):

            drift_s(w) = sum_t p_T(t | w) alpha_s(w') - alpha_s(w),   w' = delete(append(w, t)).

        With no deletion and T = 1 this is zero (conservation of expected evidence: amplitudes
        are martingales); deletion removes evidence and makes it non-zero. ``read`` computes the
        mixture on windows (default :meth:`read`; the compiled engine passes its own).
        """
        read = read or self.read
        rows = len(windows)
        expected = np.zeros((rows, len(self.premises)))
        p = np.exp(step.log_p)
        for t in range(self.n_tokens):
            after = read(rule.successor(windows, np.full(rows, t)))
            expected += p[:, t : t + 1] * np.nan_to_num(np.exp(after.log_amplitude))
        return expected - np.exp(step.log_amplitude)

    def population_amplitudes(self, log_amplitude: np.ndarray) -> np.ndarray:
        """(R, labels): amplitude summed over the premises of each population label."""
        amplitude = np.exp(log_amplitude.T)  # premise-major: each premise's row is contiguous
        return np.stack([amplitude[members].sum(axis=0) for members in self.members], axis=1)


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


@dataclass
class Compiled:
    """A validated scenario turned into arrays: what both the simulator and the analyser run."""

    scenario: Scenario
    tokens: list[str]
    premises: list[Premise]
    mixture: Mixture
    criteria: list
    memory: int  # deleted tokens that the criteria need to see (``periodic``)
    window: np.ndarray  # the initial page-state
    rule: DeletionRule

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def label(self, window: np.ndarray) -> str:
        """A page-state as text: tokens joined by single spaces, pads included (``"N N F U"``)."""
        names = self.tokens + [self.scenario.vocabulary.pad, "<start>"]
        return " ".join(names[t] for t in window)


def compile_scenario(scenario: Scenario) -> Compiled:
    """Compile premises, mixture and criteria; reject a prompt impossible under every premise."""
    check_compile(scenario)
    tokens = list(scenario.vocabulary.tokens)
    index = {t: i for i, t in enumerate(tokens)}
    premises = build_premises(scenario)
    ctx = scenario.context
    mixture = Mixture(premises, len(tokens), scenario.sampling.temperature, index.get(ctx.reset))
    criteria, memory = build_criteria(scenario.absorption, index, mixture.labels, ctx.length)
    rule = deletion_rule(ctx, index, len(tokens))
    window = rule.initial_window([index[t] for t in ctx.prompt])
    compiled = Compiled(scenario, tokens, premises, mixture, criteria, memory, window, rule)
    if mixture.read(window[None]).impossible[0]:
        raise ScenarioError(
            "context.prompt",
            f"the initial window '{compiled.label(window)}' has probability 0 under every premise; "
            "change the prompt or give some premise a law that can print it",
        )
    return compiled
