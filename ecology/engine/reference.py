"""The numpy engine, the reference: each operation of a step is one numpy call over all R replicates.

One step, for every replicate together (SCIENCE.md §1, §3):

1. print: ``t = #{u : c_u <= U c_{V-1}}``, ``c`` the cumulative sums of ``p_T(. | w)`` and ``U`` the
   step's uniform (:func:`ecology.numerics.sample`); its surprisal ``-log mu(t | w)`` and its credit
   ``sum_{s in L} alpha_s mu_s(t | w) / mu(t | w)`` to each population;
2. append ``t`` and let every premise observe it (its likelihood gains one factor);
3. delete as the rule says and let every premise forget the deleted tokens: an automaton premise
   keeps ``log mu_s(w)`` with a :class:`ecology.core.readers.SlidingReader` (O(1) per step) when the
   window slides, else re-reads it (O(k)); a model premise re-reads the visible windows with its
   model (all replicates in one batch, identical windows once);
4. the token ledger: the printed token's credit enters the ledger, the deleted tokens' credit is
   retired (:meth:`ecology.engine.base.LedgerState.step`);
5. Bayes and mixing on the new windows (:meth:`ecology.core.mixture.Mixture.combine`), then the
   reference settling and recording of :class:`ecology.engine.base.Engine`.
"""

from __future__ import annotations

import numpy as np

from ecology.core.mixture import PremiseLaws, Step
from ecology.core.readers import SlidingReader
from ecology.engine.base import Engine, ReplicateState, StepRecords
from ecology.numerics import most_responsible, sample


class ReferenceEngine(Engine):
    """The numpy engine (module docstring); any scenario, automaton or model premises."""

    name = "numpy"

    def __init__(self, compiled, context, replicates: int, raster_rows: int, measured=()):
        super().__init__(compiled, context, replicates, raster_rows, measured)
        premises = compiled.premises
        # the visible windows are materialised when some premise re-reads them every step
        self.rereads = not compiled.slides or any(p.automaton is None for p in premises)
        self.readers = [SlidingReader(p.automaton, context.window) if compiled.slides and p.automaton is not None
                        else None for p in premises]
        self.no_state = np.zeros(replicates, dtype=np.intp)  # a model premise's row of the state array
        self.states = [self.no_state] * len(premises)
        self.loglik = [None] * len(premises)
        self.laws: dict[int, np.ndarray] = {}

    def read_initial(self) -> Step:
        self.visible = self.mixture.visible(self.context.window) if self.rereads else None
        for s in range(len(self.compiled.premises)):
            self._forget(s, 0)
        return self._combine()

    def mixture_on(self, windows: np.ndarray) -> Step:
        return self.mixture.read(windows)

    def _forget(self, s: int, count: int) -> None:
        """Premise ``s``'s final state and likelihood after the window lost ``count`` oldest tokens."""
        premise, reader = self.compiled.premises[s], self.readers[s]
        if premise.automaton is None:
            self.loglik[s], self.laws[s] = premise.model.read(self.visible, likelihood=self.mixture.needs_likelihood)
        elif reader is None:
            self.states[s], self.loglik[s] = premise.automaton.read(self.visible)
        else:
            if count:
                reader.pop(count, self.context.window)
            self.states[s], self.loglik[s] = reader.read()

    def _combine(self) -> Step:
        laws = PremiseLaws(self.compiled.premises, np.stack(self.states), self.laws)
        return self.mixture.combine(laws, np.stack(self.loglik))

    def _log_emission(self, s: int, tokens: np.ndarray) -> np.ndarray:
        """(R,) ``log mu_s(t_r | w_r)`` of one token per replicate on the current windows."""
        automaton = self.compiled.premises[s].automaton
        if automaton is None:
            return self.laws[s][self.rows, tokens]
        return automaton.emit_logp[self.states[s], tokens]

    def _print(self, u: np.ndarray, records: StepRecords, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Step 1 (module docstring): the printed tokens, their surprisal and credit (R, L)."""
        step = self.current
        token = sample(step.log_p, u)
        self.token = token
        self.surprisal = -step.log_mu[self.rows, token]
        log_emit = np.stack([self._log_emission(s, token) for s in range(len(self.compiled.premises))])
        log_mu = step.log_mu[self.rows, token]
        log_responsibility = (step.log_amplitude.T + log_emit - log_mu).T  # (R, S)
        responsibility = self.mixture.population_amplitudes(log_responsibility)
        self.credit += responsibility
        n = self.raster_rows
        records.arrays.printed[b] = token[:n]
        records.arrays.speakers[b] = most_responsible(responsibility[:n])
        records.arrays.premise_speakers[b] = most_responsible(log_responsibility[:n])
        return token, responsibility

    def run(self, uniforms: np.ndarray, generated: int) -> StepRecords:
        records = self.new_records(len(uniforms), generated + 1)
        for b, u in enumerate(uniforms):
            token, credit = self._print(u, records, b)
            self.left = self.context.append(token)
            for reader in self.readers:
                if reader is not None:
                    reader.push(token)
            deleted = self.context.delete()
            if self.rereads:  # what the re-reading premises read, computed once for all of them
                self.visible = self.mixture.visible(self.context.window)
            for s in range(len(self.compiled.premises)):
                self._forget(s, deleted)
            self.deleted += self.context.deleted_tokens
            self.ledger.step(credit, self.context.deleted_tokens, generated + b + 1, self.credit)
            failure = self.settle(self._combine(), generated + b + 1)
            if failure:
                records.done, records.failure = b, failure
                return records
            self.record(records, b)
        return records

    def state(self) -> ReplicateState:
        return ReplicateState(self.current, self.amplitudes, self.population, np.stack(self.states),
                              np.stack(self.loglik), dict(self.laws), self.holding.copy(), self.reached_at.copy(),
                              self.credit.copy(), self.deleted.copy(), self.token, self.surprisal, self.ledger.copy())
