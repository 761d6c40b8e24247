"""The Mesa model: premises and simulacra as agents on one shared context, R replicates at once.

One step of the dynamic language model (SCIENCE.md §1, §3), for every replicate together:

1. the mixture samples the next token from ``p_T(. | w)`` (computed at the end of the last step);
2. the context appends it and every premise observes it (its likelihood gains one factor);
3. the context applies its deletion rule and every premise forgets the deleted tokens;
4. amplitudes update (Bayes on the new window) and the mixture forms the next-token law;
5. criteria are checked (reached: first step each holds; holding: holds now) and the
   DataCollector records the step.

Step 0 records the initial window. Besides the per-step table the model keeps, for the first
``RASTER_REPLICATES`` replicates, the window, the population amplitudes, the printed token and
the population most responsible for it (largest ``alpha_s mu_s(t | w) / mu(t | w)`` summed over
the population's premises) at every step. Replicates are rows of numpy arrays held by the agents;
nothing loops over replicates in Python. The model is seeded the Mesa way (``rng=``): the
same scenario and seed give the same numbers. Steps 1, 2-3 (the premises' likelihoods) and the
mixture of step 4 run on the engine of ``run.engine``: the compiled kernel of
:mod:`ecology.kernel` or numpy (the reference), with the same uniforms and the same results.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mesa
import numpy as np

from ecology.core.budget import check_run
from ecology.core.compile import Compiled, compile_scenario
from ecology.core.mixture import PremiseLaws, Step
from ecology.core.readers import SlidingReader
from ecology.core.windows import windows_of
from ecology.engine import compiled as kernel
from ecology.errors import ImpossibleWindow, NotANumber
from ecology.kinds import observables
from ecology.kinds.observables import QUANTILES
from ecology.kinds.simulacra import Premise as PremiseSpec
from ecology.numerics import TIE_TOLERANCE, sample
from ecology.scenario import Scenario, apply_overrides, load, to_table, validate

RASTER_REPLICATES = 32  # replicates whose windows, amplitudes and speakers are kept for the plots


def most_responsible(responsibility: np.ndarray) -> np.ndarray:
    """Per row, the first column within ``TIE_TOLERANCE`` of the row's largest value: exact ties
    (a population of two coins biased 0.7 and 0.3 and a fair coin are equally responsible for
    heads) go to the first, whatever the rounding of the sums that compare them."""
    return np.argmax(responsibility >= responsibility.max(axis=1, keepdims=True) - TIE_TOLERANCE, axis=1)


class Premise(mesa.Agent):
    """A premise ``s``: per replicate, ``log mu_s(window)`` and what gives its next-token law.

    An automaton premise keeps its automaton state: under ``fifo`` and ``none`` it keeps its
    likelihood with a :class:`SlidingReader` (O(1) per step); under the other deletion rules, or
    with a reset token, it re-reads the window (O(k)). A model premise (``spec.automaton is
    None``) re-reads the visible windows with its model every step (O(k) per replicate, all
    replicates in one batch, identical windows once) and keeps the law the model computed.
    Under the compiled engine (:mod:`ecology.kernel`, automaton premises only) the kernel does
    the reading and the model sets ``state`` and ``log_likelihood`` from it.
    """

    def __init__(self, model: "EcologyModel", spec: PremiseSpec):
        super().__init__(model)
        self.spec = spec
        self.state = self.law = None
        sliding = model.sliding and spec.automaton is not None and not model.kernel
        self.reader = SlidingReader(spec.automaton, model.context.window) if sliding else None
        if not model.kernel:  # under the compiled engine the model sets state and likelihood
            self.forget(0)
        self.log_amplitude = np.zeros(model.replicates)

    def observe(self, tokens: np.ndarray) -> None:
        if self.reader:
            self.reader.push(tokens)

    def forget(self, count: int) -> None:
        if self.spec.automaton is None:
            self.log_likelihood, self.law = self.spec.model.read(self.model.visible)
            return
        if not self.reader:
            self.state, self.log_likelihood = self.spec.automaton.read(self.model.visible)
            return
        if count:
            self.reader.pop(count, self.model.context.window)
        self.state, self.log_likelihood = self.reader.read()

    def next_log_probs(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(rows, V) ``log mu_s(. | w)`` on the current windows of the given replicates."""
        if self.spec.automaton is None:
            return self.law[rows]
        return self.spec.automaton.emit_logp[self.state[rows]]

    def log_prob_of(self, tokens: np.ndarray) -> np.ndarray:
        """(R,) ``log mu_s(t_r | w_r)`` of one token per replicate."""
        if self.spec.automaton is None:
            return self.law[self.model.rows, tokens]
        return self.spec.automaton.emit_logp[self.state, tokens]


class Simulacrum(mesa.Agent):
    """A cast member; its automaton state in each replicate is a component of its premise's."""

    def __init__(self, model: "EcologyModel", name: str, premise: Premise, member: int):
        super().__init__(model)
        self.name = name
        self.premise = premise
        self.member = member

    @property
    def state(self) -> np.ndarray:
        """(R,) index of this simulacrum's own automaton state in each replicate."""
        return self.premise.spec.automaton.members[self.member][self.premise.state]


def resolve(scenario: Scenario | str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario object from a path or an object, with dotted-path overrides applied."""
    if isinstance(scenario, (str, Path)):
        return load(scenario, overrides)
    if overrides:
        return validate(apply_overrides(to_table(scenario), overrides))
    return scenario


class EcologyModel(mesa.Model):
    """R replicates of the dynamic language model of a scenario.

    ``EcologyModel(scenario, rng=None, steps=None, replicates=None, **overrides)``: ``scenario``
    is a path or a :class:`Scenario`; other keyword arguments are dotted scenario paths
    (``**{"context.length": 16}``), which is how ``mesa.batch_run`` passes its parameters.
    ``rng`` defaults to the scenario's ``run.seed``. The validated scenario is ``model.config``
    (Mesa's own ``model.scenario`` attribute is left as Mesa sets it); the steps taken are
    ``model.generated`` (the model never reads Mesa's ``steps``, which Mesa 4 removes).
    """

    def __init__(self, scenario: Scenario | str | Path, rng=None, steps: int | None = None,
                 replicates: int | None = None, **overrides):
        extra = {key.replace("__", "."): value for key, value in overrides.items()}
        if steps is not None:
            extra["run.steps"] = steps
        if replicates is not None:
            extra["run.replicates"] = replicates
        self.config = resolve(scenario, extra)
        check_run(self.config)
        super().__init__(rng=self.config.run.seed if rng is None else rng)
        self.compiled: Compiled = compile_scenario(self.config)
        self.n_steps = self.config.run.steps
        self.replicates = self.config.run.replicates
        self.mixture = self.compiled.mixture
        self.context = windows_of(self.compiled.rule, self.compiled.window, self.replicates, self.compiled.n_tokens,
                                                  self.compiled.memory)
        self.sliding = self.compiled.rule.sliding and self.mixture.reset is None
        # the visible windows are materialised when some premise re-reads them every step
        self.rereads = not self.sliding or any(p.automaton is None for p in self.compiled.premises)
        self.visible = self.mixture.visible(self.context.window) if self.rereads else None
        # the engine that runs the steps: the compiled kernel (ecology.kernel) or numpy (the reference)
        self.engine, self.engine_note = kernel.choose(self.compiled, self.config.run.engine)
        self.kernel = kernel.Engine(self.compiled, self.context, self.replicates,
                                    min(self.replicates, RASTER_REPLICATES)) if self.engine == "compiled" else None

        self.no_state = np.zeros(self.replicates, dtype=np.intp)  # a model premise's row of the state array
        self.premise_agents = [Premise(self, spec) for spec in self.compiled.premises]
        for agent in self.premise_agents:
            for i, name in enumerate(agent.spec.cast):
                Simulacrum(self, name, agent, i)

        self.criteria = self.compiled.criteria
        for c in self.criteria:
            c.start(self)
        self.reached_at = np.full((len(self.criteria), self.replicates), -1)
        self.raster = []
        self.trajectories = []  # (steps + 1) x (RASTER_REPLICATES, labels) population amplitudes
        self.printed = []  # steps x (RASTER_REPLICATES,) token printed at each step
        self.speakers = []  # steps x (RASTER_REPLICATES,) population most responsible for it
        self.premise_speakers = []  # steps x (RASTER_REPLICATES,) premise most responsible for it
        self.rows = np.arange(self.replicates)
        self.credit = np.zeros((self.replicates, len(self.mixture.labels)))
        self.deleted = np.zeros(self.replicates)
        self.token = self.left = self.surprisal = None
        self.generated = 0  # steps taken (tokens printed): our own count, not Mesa's ``steps`` (gone in Mesa 4)
        self._update(self.kernel.read(self.context.window) if self.kernel else None)
        self.datacollector = mesa.DataCollector(
            model_reporters={key: (lambda m, key=key: m.observables[key]) for key in self.observables}
        )
        self.datacollector.collect(self)
        if self.kernel:
            self.kernel.start(self.current, self.criteria, self.credit, self.deleted, self.reached_at)
        self.running = self.n_steps > 0

    @property
    def premises(self) -> mesa.agent.AgentSet:
        return self.agents_by_type[Premise]

    def step(self) -> None:
        """One step: every replicate prints one token (the engine's)."""
        self.advance(1)

    def run_model(self) -> None:
        """Take the remaining ``run.steps - generated`` steps (the compiled engine runs them in
        blocks: one kernel call per block, the same numbers as step by step)."""
        self.advance(self.n_steps - self.generated)

    def advance(self, steps: int) -> None:
        """Take ``steps`` steps; the DataCollector records each."""
        if self.kernel:
            self._advance_compiled(steps)
        else:
            for _ in range(steps):
                self._advance_numpy()
        self.running = self.generated < self.n_steps

    def _advance_numpy(self) -> None:
        self.generated += 1
        uniforms = self.rng.random(self.replicates)
        token = sample(self.current.log_p, uniforms)
        self.token = token
        self.surprisal = -self.current.log_mu[self.rows, token]
        self.credit_token(token)
        self.left = self.context.append(token)
        self.premises.do("observe", token)
        deleted = self.context.delete()
        if self.rereads:  # what the re-reading premises read, computed once for all of them
            self.visible = self.mixture.visible(self.context.window)
        self.premises.do("forget", deleted)
        self.deleted += self.context.deleted_tokens
        self._update()
        self.datacollector.collect(self)

    def _advance_compiled(self, steps: int) -> None:
        """Blocks of steps in the kernel (the uniforms drawn as the numpy engine draws them, one
        row of R per step); each step's row of ``steps.csv`` comes from the block's sums, counts
        and quantiles (:func:`ecology.observables.summarise`). With drift, one step per block:
        drift re-reads the successor windows of every step."""
        engine = self.kernel
        while steps > 0:
            size = 1 if self.config.run.drift else engine.block_size(steps)
            block = engine.run(self.rng.random((size, self.replicates)), self.generated)
            self._take_state()
            for b in range(block.done):
                self.generated += 1
                if self.config.run.drift:
                    self.drift = self.mixture.drift(self.context.window, self.current, self.compiled.rule,
                                                    engine.mixture_on)
                self.printed.append(block.printed[b])
                self.speakers.append(block.speakers[b])
                self.premise_speakers.append(block.premise_speakers[b])
                if len(self.raster) <= self.n_steps:
                    self.raster.append(block.raster[b])
                    self.trajectories.append(block.trajectories[b])
                self.observables = observables.summarise(self, block, b)
                self.datacollector.collect(self)
            if block.failure:
                self.generated += 1
                self._refuse(*block.failure)
            steps -= size

    def _take_state(self) -> None:
        """The model's view of the replicates after a block (copies: the engine reuses its arrays)."""
        engine = self.kernel
        self.current = Step(engine.log_amp.T.copy(), engine.log_mu.T.copy(), engine.log_p.T.copy(),
                            engine.free_energy.copy())
        self.amplitudes = engine.alpha.T.copy()
        self.population = engine.population.T.copy()
        self.holding = engine.holding.copy()
        self.token, self.surprisal = engine.tokens.copy(), engine.surprisal.copy()
        for s, agent in enumerate(self.premise_agents):
            agent.state, agent.log_likelihood = engine.states[s].copy(), engine.loglik[s].copy()
            agent.log_amplitude = self.current.log_amplitude[:, s]

    def _refuse(self, failure: int, r: int) -> None:
        """Raise on replicate ``r``'s window: 1 impossible under every premise, 2 NaN."""
        window = self.compiled.label(self.context.window[r])
        if failure == 1:
            raise ImpossibleWindow(
                "", f"step {self.generated}, replicate {r}: the window '{window}' "
                "has probability 0 under every premise (deletion made the premises misread it); "
                "give some premise a softmax floor (eps/slip) or change the deletion rule",
            )
        raise NotANumber(
            "", f"step {self.generated}, replicate {r}: the mixture on window '{window}' "
            "is not a number (NaN); nothing was written. Please report this scenario as a bug",
        )

    def _update(self, step=None) -> None:
        """Bayes on the current windows (numpy, or ``step`` from the kernel at step 0), the
        next-token law, criteria and observables."""
        agents = self.premise_agents
        if step is not None:
            for agent, state, log_likelihood in zip(agents, self.kernel.states, self.kernel.loglik):
                agent.state, agent.log_likelihood = state, log_likelihood
        else:
            states = np.stack([self.no_state if a.state is None else a.state for a in agents])
            laws = PremiseLaws(self.compiled.premises, states,
                               {s: a.law for s, a in enumerate(agents) if a.law is not None})
            loglik = np.stack([a.log_likelihood for a in agents])
            step = self.mixture.combine(laws, loglik)
        if step.impossible.any():
            self._refuse(1, int(np.flatnonzero(step.impossible)[0]))
        broken = np.isnan(step.log_p).any(axis=1) | np.isnan(step.log_amplitude).any(axis=1)
        if broken.any():
            self._refuse(2, int(np.flatnonzero(broken)[0]))
        for s, agent in enumerate(self.premise_agents):
            agent.log_amplitude = step.log_amplitude[:, s]
        self.current = step
        self.population = self.mixture.population_amplitudes(step.log_amplitude)
        self.holding = self._criteria_hold()
        if self.config.run.drift:
            self.drift = self.mixture.drift(self.context.window, step, self.compiled.rule,
                                            self.kernel.mixture_on if self.kernel else None)
        first = self.holding & (self.reached_at < 0)
        self.reached_at[first] = self.generated
        if len(self.raster) <= self.n_steps:
            self.raster.append(self.context.last(self.config.context.length)[:RASTER_REPLICATES].copy())
            self.trajectories.append(self.population[:RASTER_REPLICATES].copy())
        self.amplitudes = np.exp(step.log_amplitude)  # (R, S) alpha_s(w) on the current windows
        self.premise_quantiles = np.quantile(self.amplitudes, QUANTILES, axis=0)
        self.observables = observables.record(self)

    def responsibility(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(rows, S, V) responsibility ``alpha_s(w) mu_s(t | w) / mu(t | w)`` of each premise for
        each possible next token on the current windows (it sums to 1 over premises); rows default
        to the first ``RASTER_REPLICATES`` replicates."""
        rows = np.arange(min(self.replicates, RASTER_REPLICATES)) if rows is None else rows
        log_emit = np.stack([a.next_log_probs(rows) for a in self.premise_agents], axis=1)
        with np.errstate(invalid="ignore"):
            log_r = self.current.log_amplitude[rows][:, :, None] + log_emit - self.current.log_mu[rows][:, None, :]
        return np.nan_to_num(np.exp(log_r))

    def credit_token(self, token: np.ndarray) -> None:
        """Token ledger: credit the printed token to premises by their responsibility
        ``alpha_s mu_s(t | w) / mu(t | w)`` (it sums to 1 over premises), summed per population."""
        log_emit = np.stack([a.log_prob_of(token) for a in self.premise_agents])
        log_mu = self.current.log_mu[self.rows, token]
        log_responsibility = (self.current.log_amplitude.T + log_emit - log_mu).T  # (R, S)
        responsibility = self.mixture.population_amplitudes(log_responsibility)
        self.credit += responsibility
        self.printed.append(token[:RASTER_REPLICATES].copy())
        self.speakers.append(most_responsible(responsibility[:RASTER_REPLICATES]))
        self.premise_speakers.append(most_responsible(log_responsibility[:RASTER_REPLICATES]))

    def _criteria_hold(self) -> np.ndarray:
        out = np.zeros((len(self.criteria), self.replicates), dtype=bool)
        for i, c in enumerate(self.criteria):
            out[i] = c.observe(self)
        return out


WARM_UP_RULES = ({}, {"deletion": "block", "block": 2}, {"deletion": "fifo", "reset": "b"})


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every loop: a few steps of tiny models under a
    sliding rule, a re-reading rule and a reset token, with one-byte and two-byte tokens, with
    a periodic criterion and with drift; seconds taken."""
    began = time.perf_counter()
    if kernel.numba is None:
        return 0.0

    for n_tokens in (2, 300):
        tokens = ["a", "b"] + [f"t{i}" for i in range(n_tokens - 2)]
        for rule in WARM_UP_RULES:
            scenario = validate({
                "name": "warm-up", "vocabulary": {"tokens": tokens}, "context": {"length": 3, **rule},
                "run": {"steps": 3, "replicates": 2, "drift": True},
                "simulacra": {"x": {"start": "q", "states": {"q": {"emit": {"a": 0.5, "b": 0.5}}}}},
                "premises": {"x": {"prior": 1.0, "cast": ["x"]}},
                "absorption": {"only_a": {"window_only": ["a"]}, "loop": {"periodic": 2},
                               "sure": {"population": "x", "above": 0.5}},
            })
            model = EcologyModel(scenario)
            model.run_model()
            assert model.engine == "compiled"
    return time.perf_counter() - began
