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
``log mu_s(w) = sum_i log emit_s[q_i, w_i]`` (see :mod:`ecology.kinds.simulacra`) for an automaton
premise; a model premise (``automaton is None``) has ``log mu_s(w) = sum_i log mu_s(w_i | w_<i)``
and ``log mu_s(. | w)`` from its model's batched ``read`` (:mod:`ecology.lm`), which both the
simulator and the analyser call on the visible windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ecology.core.windows import after_reset
from ecology.kinds.deletion import DeletionRule
from ecology.kinds.simulacra import CompiledPremise
from ecology.numerics import inline, logsumexp, logsumexp_jit, tempered, tempered_jit

if TYPE_CHECKING:
    from ecology.scenario import Scenario


class PremiseLaws:
    """``log mu_s(. | w)`` of every premise on a batch of R windows, indexable by premise (R, V).

    An automaton premise's law is its emission row in its final state ``states[s]``, gathered
    only when asked for (an (S, R, V) array is never held); a model premise's law is the (R, V)
    array its model computed (``model_laws[s]``).
    """

    def __init__(self, premises: list[CompiledPremise], states: np.ndarray, model_laws: dict[int, np.ndarray]):
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
        """Rows whose window has probability zero under every premise (``F = +inf``; a single
        premise's ``F`` may be unknown, NaN: see :meth:`Mixture.combine`)."""
        return np.isposinf(self.free_energy)


def normalised_log_prior(priors) -> np.ndarray:
    """``log(prior_s / sum_r prior_r)`` computed without forming the sum of the priors: with
    ``m = max_r prior_r`` and ``rho_s = prior_s / m`` (in ``(0, 1]``, one rounding each),
    ``log rho_s - log sum_r rho_r``, the sum lying in ``[1, S]``. So priors whose sum overflows
    (two of 1e308: 1/2 each, exactly) and subnormal priors (1e-320 beside 1: its logarithm, to
    the few digits a subnormal holds) give their ratios to a few ulps; a ratio below the double
    range (1e-320 beside 1e10) is ``log prior_s - log m``. The priors are positive and finite
    (validated by the scenario)."""
    prior = np.asarray(priors, dtype=float)
    top = prior.max()
    with np.errstate(under="ignore"):
        ratio = prior / top
    normal = ratio >= np.finfo(float).tiny
    log_ratio = np.where(normal, np.log(np.where(normal, ratio, 1.0)), np.log(prior) - np.log(top))
    return log_ratio - np.log(ratio.sum())


def acting_priors(scenario: Scenario) -> dict[str, dict[str, float]]:
    """The prior of every ``[premises.NAME]`` and ``[populations.NAME]`` entry as written (``raw``)
    and as it acts (``acting``): priors are normalised to sum 1 over all entries, ``acting_e =
    raw_e / sum_r raw_r`` (by :func:`normalised_log_prior`, the normalisation the mixture uses).
    A population's members split its prior, so their acting priors sum to the population's.
    Keyed ``premises.NAME`` and ``populations.NAME`` (premises first, in file order)."""
    raw = {f"premises.{name}": spec.prior for name, spec in scenario.premises.items()}
    raw.update({f"populations.{name}": spec.prior for name, spec in scenario.populations.items()})
    acting = np.exp(normalised_log_prior(list(raw.values())))
    return {entry: {"raw": prior, "acting": float(a)} for (entry, prior), a in zip(raw.items(), acting)}


class Mixture:
    """Priors, emission tables and temperature of a scenario's premises."""

    def __init__(self, premises: list[CompiledPremise], n_tokens: int, temperature: float, reset: int | None = None):
        self.premises = premises
        self.n_tokens = n_tokens
        self.temperature = temperature
        self.reset = reset  # premises read only what follows the last reset token
        self.log_prior = normalised_log_prior([p.prior for p in premises])
        self.labels = list(dict.fromkeys(p.label for p in premises))
        self.members = [np.array([s for s, p in enumerate(premises) if p.label == label]) for label in self.labels]

    @property
    def needs_likelihood(self) -> bool:
        """Whether the amplitudes depend on the likelihoods: with a single premise ``alpha = 1``,
        so a model premise reads only the laws after the windows (:meth:`ecology.lm.base.LanguageModel.read`
        with ``likelihood = False``): a table of full windows needs no row for their prefixes."""
        return len(self.premises) > 1

    def combine(self, log_next, loglik: np.ndarray) -> Step:
        """Bayes and mixing (module docstring) from each premise's next-token law and likelihood.

        ``log_next[s]`` is premise ``s``'s ``log mu_s(. | w)``, shape (R, V) (a sequence over
        premises, or an (S, R, V) array); ``loglik`` is ``log mu_s(w)``, premise-major (S, R).
        Automaton and model premises enter the same way: the automaton's law is its emission row
        in its final state, the model's is what it computed from the window. A single premise has
        ``alpha = 1`` and ``mu = mu_s`` exactly (what the formulas give for a finite likelihood),
        and ``F = -log mu_s(w)``, NaN where its model does not know the likelihood (a table of
        full windows, without the rows of their prefixes).
        """
        if not self.needs_likelihood:  # alpha = 1 whatever the likelihood (which may be unknown: NaN)
            log_mu = np.array(log_next[0], dtype=float)
            return Step(np.zeros((loglik.shape[1], 1)), log_mu, tempered(log_mu, self.temperature), -loglik[0])
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
        laws, loglik = self.likelihoods(sequences[:, :-1], likelihood=True)  # log P(y) needs it, even for one premise
        rows, last = np.arange(len(sequences)), sequences[:, -1]
        joint = np.stack([self.log_prior[s] + loglik[s] + laws[s][rows, last] for s in range(len(self.premises))])
        return logsumexp(joint, axis=0)

    def visible(self, windows: np.ndarray) -> np.ndarray:
        """What the premises read: the windows after their last reset token (if any)."""
        return windows if self.reset is None else after_reset(windows, self.reset, self.n_tokens)

    def likelihoods(self, windows: np.ndarray, likelihood: bool | None = None) -> tuple[PremiseLaws, np.ndarray]:
        """Each premise's ``log mu_s(. | w)`` (:class:`PremiseLaws`) and ``log mu_s(w)`` (S, R),
        reading after the last reset token if any; model premises' likelihoods are required when
        ``likelihood`` (default: :attr:`needs_likelihood`), else NaN where unknown."""
        likelihood = self.needs_likelihood if likelihood is None else likelihood
        windows = self.visible(windows)
        states = np.zeros((len(self.premises), len(windows)), dtype=np.intp)
        loglik = np.empty((len(self.premises), len(windows)))
        model_laws = {}
        for s, p in enumerate(self.premises):
            if p.automaton is None:
                loglik[s], model_laws[s] = p.model.read(windows, likelihood=likelihood)
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


@inline
def combine_jit(r, states, loglik, step_logp, log_prior, temperature, greedy_tie,
         log_amp, log_mu, log_p, free_energy, joint, terms, z):
    """Bayes, mixing and tempering for replicate ``r`` in log space, as
    :meth:`ecology.core.mixture.Mixture.combine`: ``log alpha_s = log prior_s + log mu_s(w) - log Z``,
    ``log mu(t | w) = logsumexp_s(log alpha_s + log emit_s[q_s, t])``, ``F = -log Z``, then
    :func:`tempered_jit`."""
    n_premises = len(log_prior)
    n_tokens = log_mu.shape[1]
    for s in range(n_premises):
        joint[s] = log_prior[s] + loglik[s]
    log_z = logsumexp_jit(joint)
    for s in range(n_premises):
        log_amp[r, s] = joint[s] - log_z
    for t in range(n_tokens):
        for s in range(n_premises):
            terms[s] = log_amp[r, s] + step_logp[s, states[s], t]
        log_mu[r, t] = logsumexp_jit(terms)
    free_energy[r] = -log_z
    if temperature == 1.0:
        for t in range(n_tokens):
            log_p[r, t] = log_mu[r, t]
    else:
        tempered_jit(r, temperature, greedy_tie, log_mu, log_p, z)
