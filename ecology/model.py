"""The Mesa model: premises and simulacra as agents on one shared context, R replicates at once.

One step of the dynamic language model (SCIENCE.md §1, §3), for every replicate together:

1. the mixture samples the next token from ``p_T(. | w)`` (computed at the end of the last step);
2. the context appends it and every premise observes it (its likelihood gains one factor);
3. the context applies its deletion rule and every premise forgets the deleted tokens;
4. amplitudes update (Bayes on the new window) and the mixture forms the next-token law;
5. criteria are checked (reached: first step each holds; holding: holds now) and the
   DataCollector records the step.

Steps 1-5 run on the model's **engine** (:mod:`ecology.engine`: the numpy reference or the
compiled kernel, chosen by ``run.engine`` or ``EcologyModel(engine=...)``), in blocks of steps;
each block returns its :class:`ecology.engine.base.StepRecords` and the model turns each of its
steps into a row of the DataCollector (the observables read the records, whichever engine ran).
The same uniforms reach either engine (one row of R per step, from the model's ``rng``), so the
engines give the same trajectories. Step 0 records the initial window.

Besides the per-step table the model keeps, for the first ``RASTER_REPLICATES`` replicates, the
window, the population amplitudes, the printed token and the population most responsible for it
(largest ``alpha_s mu_s(t | w) / mu(t | w)`` summed over the population's premises) at every step.
Replicates are rows of numpy arrays; nothing loops over replicates in Python. The model is seeded
the Mesa way (``rng=``): the same scenario and seed give the same numbers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ecology.core.budget import check_run
from ecology.core.compile import Compiled, compile_scenario
from ecology.core.mixture import Step
from ecology.core.windows import windows_of
from ecology.engine import choose_engine
from ecology.engine.base import ReplicateState, StepRecords, refuse, sketch_bits_for
from ecology.kinds import observables
from ecology.kinds.simulacra import CompiledPremise
from ecology.mesa_core import mesa
from ecology.numerics import numba
from ecology.scenario import Scenario, apply_overrides, load, to_table, validate

RASTER_REPLICATES = 32  # replicates whose windows, amplitudes and speakers are kept for the plots


class Premise(mesa.Agent):
    """A premise ``s`` of the mixture: its compiled form (``spec``) and, per replicate, its
    automaton state, ``log mu_s(window)``, next-token law and amplitude on the current windows
    (read from the model's state after the last step)."""

    def __init__(self, model: EcologyModel, spec: CompiledPremise, index: int):
        super().__init__(model)
        self.spec = spec
        self.index = index

    @property
    def state(self) -> np.ndarray:
        """(R,) final automaton state on each replicate's window (0 for a model premise)."""
        return self.model.state.states[self.index]

    @property
    def log_likelihood(self) -> np.ndarray:
        """(R,) ``log mu_s(w)``."""
        return self.model.state.loglik[self.index]

    @property
    def log_amplitude(self) -> np.ndarray:
        """(R,) ``log alpha_s(w)``."""
        return self.model.current.log_amplitude[:, self.index]

    def next_log_probs(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(rows, V) ``log mu_s(. | w)`` on the current windows of the given replicates."""
        if self.spec.automaton is None:
            return self.model.state.laws[self.index][rows]
        return self.spec.automaton.emit_logp[self.state[rows]]


class Simulacrum(mesa.Agent):
    """A cast member; its automaton state in each replicate is a component of its premise's."""

    def __init__(self, model: EcologyModel, name: str, premise: Premise, member: int):
        super().__init__(model)
        self.name = name
        self.premise = premise
        self.member = member

    @property
    def state(self) -> np.ndarray:
        """(R,) index of this simulacrum's own automaton state in each replicate."""
        return self.premise.spec.automaton.members[self.member][self.premise.state]


class StepsCollector(mesa.DataCollector):
    """Mesa's DataCollector of the model's rows of ``steps.csv``: one model reporter per column
    (reading ``model.observables``, the last row), so that ``collect(model)`` records one step
    as Mesa does, and :meth:`collect_block`, which records a block's steps at once."""

    def collect_block(self, model: EcologyModel, table: dict[str, np.ndarray], count: int) -> None:
        """Record ``count`` steps whose columns are ``table`` (one array of ``count`` values per
        reporter): the same ``model_vars`` (Python floats) and collection times as ``count`` calls
        of ``collect`` at the same model time."""
        if hasattr(self, "_collection_steps"):
            self._collection_steps.extend([model.time] * count)
        for var in self.model_reporters:
            self.model_vars[var].extend(table[var].tolist())


def resolve(scenario: Scenario | str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario object from a path or an object, with dotted-path overrides applied."""
    if isinstance(scenario, (str, Path)):
        return load(scenario, overrides)
    if overrides:
        return validate(apply_overrides(to_table(scenario, text=False), overrides))
    return scenario


class EcologyModel(mesa.Model):
    """R replicates of the dynamic language model of a scenario.

    ``EcologyModel(scenario, rng=None, steps=None, replicates=None, engine=None, **overrides)``:
    ``scenario`` is a path or a :class:`Scenario`; ``engine`` is ``"compiled"`` or ``"numpy"``
    (default: the scenario's ``run.engine``; the compiled engine falls back to numpy, saying so in
    ``engine_note``, on a scenario it cannot run); other keyword arguments are dotted scenario paths
    (``**{"context.length": 16}``), which is how ``mesa.batch_run`` passes its parameters. ``rng``
    defaults to the scenario's ``run.seed``. With ``sketch`` (a shard of a run split into shards,
    :func:`ecology.results.simulate_shard`) the model also keeps, per step, the sketch counts of every premise's
    and population's amplitude (``model.sketch``, :func:`ecology.numerics.sketch_index`, with
    ``model.sketch_bits`` bits per octave, :func:`ecology.engine.base.sketch_bits_for`; and their extremes,
    ``model.extremes``). The validated scenario is ``model.config`` (Mesa's own
    ``model.scenario`` attribute is left as Mesa sets it); the steps taken are ``model.generated``
    (the model never reads Mesa's ``steps``, which Mesa 4 removes).
    """

    def __init__(self, scenario: Scenario | str | Path, rng=None, steps: int | None = None,
                 replicates: int | None = None, engine: str | None = None, sketch: bool = False, **overrides):
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
        self.criteria = self.compiled.criteria
        self.context = windows_of(self.compiled.rule, self.compiled.window, self.replicates,
                                  self.compiled.n_tokens, self.compiled.memory)
        engine_class, self.engine_note = choose_engine(self.compiled, engine or self.config.run.engine)
        measured = tuple(item for item in observables.OBSERVABLES if not item.compiled and item.applies(self))
        self.engine = engine_class(self.compiled, self.context, self.replicates,
                                   min(self.replicates, RASTER_REPLICATES), measured)
        self.sketch_bits = (sketch_bits_for(self.n_steps, len(self.compiled.premises) + len(self.mixture.labels))
                            if sketch else None)
        self.engine.sketch_bits = self.sketch_bits
        self.sketch = []  # (steps + 1) x (S + L, bins) sketch counts, with sketch_bits
        self.extremes = []  # (steps + 1) x (S + L, 2) smallest and largest amplitudes, with sketch_bits
        self.premise_agents = [Premise(self, spec, s) for s, spec in enumerate(self.compiled.premises)]
        for agent in self.premise_agents:
            for i, name in enumerate(agent.spec.cast):
                Simulacrum(self, name, agent, i)

        self.raster = []  # (steps + 1) x (RASTER_REPLICATES, k) windows
        self.trajectories = []  # (steps + 1) x (RASTER_REPLICATES, labels) population amplitudes
        self.printed = []  # steps x (RASTER_REPLICATES,) token printed at each step
        self.speakers = []  # steps x (RASTER_REPLICATES,) population most responsible for it
        self.premise_speakers = []  # steps x (RASTER_REPLICATES,) premise most responsible for it
        self.generated = 0  # steps taken (tokens printed): our own count, not Mesa's ``steps`` (gone in Mesa 4)
        self._state: ReplicateState | None = None  # engine.state(), taken when first read after a block
        records = self.engine.start()
        self._take(records, slice(0, 1))
        self.datacollector = StepsCollector(
            model_reporters={key: (lambda m, key=key: m.observables[key]) for key in self.observables}
        )
        self.datacollector.collect(self)
        self.running = self.n_steps > 0

    @property
    def state(self) -> ReplicateState:
        """The replicates' state after the last step (:meth:`ecology.engine.base.Engine.state`: copies
        no engine writes to again), taken from the engine the first time it is read after a block,
        so that a run whose state nobody reads between blocks copies nothing (the token ledger's
        ring alone is ``8 R L (k + 1)`` bytes)."""
        if self._state is None:
            self._state = self.engine.state()
        return self._state

    # the replicates' state after the last step (ReplicateState), by name
    current: Step = property(lambda self: self.state.step)
    amplitudes = property(lambda self: self.state.amplitudes)
    population = property(lambda self: self.state.population)
    holding = property(lambda self: self.state.holding)
    reached_at = property(lambda self: self.state.reached_at)
    credit = property(lambda self: self.state.credit)
    deleted = property(lambda self: self.state.deleted)
    token = property(lambda self: self.state.token)
    surprisal = property(lambda self: self.state.surprisal)

    @property
    def sliding(self) -> bool:
        """Whether premises keep their likelihoods as the window slides (:attr:`Compiled.slides`)."""
        return self.compiled.slides

    @property
    def premises(self) -> mesa.agent.AgentSet:
        return self.agents_by_type[Premise]

    def step(self) -> None:
        """One step: every replicate prints one token."""
        self.advance(1)

    def run_model(self) -> None:
        """Take the remaining ``run.steps - generated`` steps (in blocks: one engine call per
        block, the same numbers as step by step)."""
        self.advance(self.n_steps - self.generated)

    def advance(self, steps: int) -> None:
        """Take ``steps`` steps in blocks of the engine's size (one step per block with drift,
        which re-reads the successor windows of every step); the DataCollector records each step,
        a block's rows at once (:meth:`StepsCollector.collect_block`)."""
        while steps > 0:
            size = 1 if self.config.run.drift else self.engine.block_size(steps)
            records = self.engine.run(self.rng.random((size, self.replicates)), self.generated)
            self._state = None
            if records.done:
                self._take(records, slice(0, records.done))
                self.generated += records.done
                self.datacollector.collect_block(self, self.steps_table, records.done)
            if records.failure:
                refuse(self.compiled, self.context, self.generated + 1, *records.failure)
            steps -= size
        self.running = self.generated < self.n_steps

    def _take(self, records: StepRecords, steps: slice) -> None:
        """The steps ``steps`` of a block (or step 0): the raster replicates' records (windows and
        amplitudes up to step ``run.steps``) and the rows of ``steps.csv`` (``steps_table``, one
        array per column, :func:`ecology.kinds.observables.table`; ``observables``, the last row)."""
        if self.config.run.drift:  # blocks of one step
            self.drift = self.mixture.drift(self.context.window, self.current, self.compiled.rule,
                                            self.engine.mixture_on)
        arrays = records.arrays
        if records.first:  # a block of steps (step 0 prints nothing)
            self.printed.extend(arrays.printed[steps])
            self.speakers.extend(arrays.speakers[steps])
            self.premise_speakers.extend(arrays.premise_speakers[steps])
        if arrays.sketch.shape[1]:
            self.sketch.extend(arrays.sketch[steps])
            self.extremes.extend(arrays.extremes[steps])
        room = max(0, self.n_steps + 1 - len(self.raster))
        self.raster.extend(arrays.raster[steps][:room])
        self.trajectories.extend(arrays.trajectories[steps][:room])
        self.steps_table = observables.table(self, records, steps)
        self.observables = {key: float(values[-1]) for key, values in self.steps_table.items()}

    def responsibility(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(rows, S, V) responsibility ``alpha_s(w) mu_s(t | w) / mu(t | w)`` of each premise for
        each possible next token on the current windows (it sums to 1 over premises); rows default
        to the first ``RASTER_REPLICATES`` replicates."""
        rows = np.arange(min(self.replicates, RASTER_REPLICATES)) if rows is None else rows
        log_emit = np.stack([a.next_log_probs(rows) for a in self.premise_agents], axis=1)
        with np.errstate(invalid="ignore"):
            log_r = self.current.log_amplitude[rows][:, :, None] + log_emit - self.current.log_mu[rows][:, None, :]
        return np.nan_to_num(np.exp(log_r))


WARM_UP_RULES = ({}, {"deletion": "block", "block": 2}, {"deletion": "fifo", "reset": "b"})


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every loop of the compiled engine: a few steps of
    tiny models under a sliding rule, a re-reading rule and a reset token, with one-byte and
    two-byte tokens, with a periodic criterion and with drift; seconds taken."""
    began = time.perf_counter()
    if numba is None:
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
            model = EcologyModel(scenario, engine="compiled")
            model.run_model()
            assert model.engine.name == "compiled", model.engine_note
    return time.perf_counter() - began
