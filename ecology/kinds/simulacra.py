"""Simulacra and premises compiled to automata, and populations of premises.

Tokens are integers ``0 .. V-1`` in vocabulary order; the pad is ``V``.

A simulacrum is an automaton with states ``q``: ``emit[q]`` is its next-token law when it speaks
and ``next[q, t]`` the state after it observes token ``t`` (it observes every token, whoever
printed it). Every parameterised kind (constant with floor, i.i.d., coin, cycle with slip,
waluigi) compiles to the same arrays.

A premise casts one or more simulacra. It compiles to the product automaton whose states are
``(speaker, turn counter, q_1, ..., q_m)``: the speaker's ``emit`` is the premise's law, every
member advances on every token, and the speaker changes after every ``n`` tokens
(``turns.every``) or after each occurrence of a token (``turns.after``). Only the product states
reachable from the start are kept. The premise's likelihood of a window ``w_1 .. w_L`` (pads are
skipped, so it reads from the first non-pad token as if the storyline began there) is

    log mu_s(w) = sum_i log emit_s[q_i, w_i],   q_{i+1} = next_s[q_i, w_i],   q_1 = start_s.

For that sum the automaton carries ``step_logp[q, t]`` and ``step_state[q, t]`` for
``t = 0 .. V``, where the pad column is the identity (weight 0, same state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from ecology.errors import ScenarioError
from ecology.fields import Probability, References, Strict, Token
from ecology.lm import LanguageModel, load_model

if TYPE_CHECKING:  # the scenario format is built on the kinds below, not the other way round
    from ecology.scenario import PopulationSpec, Scenario, Turns


@dataclass(frozen=True)
class Machine:
    """One simulacrum's automaton: ``emit`` (Q, V) probabilities, ``next`` (Q, V) states."""

    states: tuple[str, ...]
    emit: np.ndarray
    next: np.ndarray
    start: int


@dataclass(frozen=True)
class Automaton:
    """A premise's product automaton, ready for the likelihood sum in the module docstring."""

    step_state: np.ndarray  # (Q, V + 1) int: state after observing t; pad column = identity
    step_logp: np.ndarray  # (Q, V + 1) float: log emit[q, t]; pad column = 0
    start: int
    members: tuple[np.ndarray, ...]  # per cast member: (Q,) its own state in each product state

    @property
    def n_states(self) -> int:
        return self.step_state.shape[0]

    @property
    def emit_logp(self) -> np.ndarray:
        """(Q, V) log-probabilities of the next token in each state."""
        return self.step_logp[:, :-1]

    def read(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Final state and ``log mu_s(w)`` of each window row, read from scratch: O(L)."""
        rows = windows.shape[0]
        state = np.full(rows, self.start, dtype=np.intp)
        loglik = np.zeros(rows)
        for column in windows.T:
            loglik += self.step_logp[state, column]
            state = self.step_state[state, column]
        return state, loglik


@dataclass(frozen=True)
class CompiledPremise:
    """A premise of the mixture. An automaton premise has a cast and its product ``automaton``;
    a model premise (``automaton is None``) has no cast and a language ``model`` (see
    :mod:`ecology.lm`) whose ``read(windows)`` gives ``log mu_s(w)`` and ``log mu_s(. | w)``."""

    name: str
    label: str  # population label that amplitude is aggregated under
    prior: float
    cast: tuple[str, ...]
    automaton: Automaton | None
    parameter: str | None = None  # for a population member: the drawn parameter's name ...
    value: float | None = None  # ... and its value
    model: LanguageModel | None = None  # the language model of a model premise


def _floor(index: int, eps: float, size: int) -> np.ndarray:
    """Put ``1 - eps`` on one token and share ``eps`` equally among the others."""
    law = np.full(size, eps / (size - 1) if size > 1 else 0.0)
    law[index] = 1.0 - eps if size > 1 else 1.0
    return law


def _stay(states: int, size: int) -> np.ndarray:
    """Transitions that keep every state on every token."""
    return np.tile(np.arange(states)[:, None], (1, size))


class SimulacrumKind(Strict):
    kind: str
    parameters: ClassVar[tuple[str, ...]] = ()

    def check(self, path: str, refs: References) -> None:
        """Cross-reference checks against the vocabulary; raise :class:`ScenarioError`."""

    @property
    def n_states(self) -> int:
        return 1

    def machine(self, tokens: list[str]) -> Machine:
        raise NotImplementedError


KINDS: dict[str, type[SimulacrumKind]] = {}


def register(name: str):
    """Class decorator: register a simulacrum kind under ``name``."""

    def add(cls: type[SimulacrumKind]) -> type[SimulacrumKind]:
        KINDS[name] = cls
        return cls

    return add


class State(Strict):
    """One automaton state: ``emit`` (token -> probability), ``on`` (observed token -> state)."""

    emit: dict[str, Probability]
    on: dict[str, str] = Field(default_factory=dict)


@register("automaton")
class AutomatonSpec(SimulacrumKind):
    """A general simulacrum: named states, each with an emission law and transitions."""

    kind: Literal["automaton"] = "automaton"
    start: str
    states: dict[str, State] = Field(min_length=1)

    def check(self, path: str, refs: References) -> None:
        if self.start not in self.states:
            raise ScenarioError(f"{path}.start", f"unknown state {self.start!r}; states are {list(self.states)}")
        for name, state in self.states.items():
            refs.law(f"{path}.states.{name}.emit", state.emit)
            for t, target in state.on.items():
                refs.token(f"{path}.states.{name}.on.{t}", t)
                if target not in self.states:
                    raise ScenarioError(f"{path}.states.{name}.on.{t}",
                                        f"unknown state {target!r}; states are {list(self.states)}")

    @property
    def n_states(self) -> int:
        return len(self.states)

    def machine(self, tokens: list[str]) -> Machine:
        index = {t: i for i, t in enumerate(tokens)}
        names = tuple(self.states)
        where = {n: i for i, n in enumerate(names)}
        emit = np.zeros((len(names), len(tokens)))
        nxt = _stay(len(names), len(tokens))
        for q, state in enumerate(self.states.values()):
            for t, p in state.emit.items():
                emit[q, index[t]] = p
            for t, target in state.on.items():
                nxt[q, index[t]] = where[target]
        return Machine(names, emit, nxt, where[self.start])


@register("constant")
class ConstantSpec(SimulacrumKind):
    """Prints ``token`` with probability ``1 - eps``; the other tokens share ``eps`` equally."""

    kind: Literal["constant"]
    token: Token
    eps: Probability = 0.0
    parameters: ClassVar[tuple[str, ...]] = ("eps",)

    def check(self, path: str, refs: References) -> None:
        refs.token(f"{path}.token", self.token)
        if self.eps > 0 and len(refs.tokens) == 1:
            raise ScenarioError(f"{path}.eps", "a floor needs at least two tokens in the vocabulary")

    def machine(self, tokens: list[str]) -> Machine:
        return Machine(("on",), _floor(tokens.index(self.token), self.eps, len(tokens))[None], _stay(1, len(tokens)), 0)


@register("iid")
class IidSpec(SimulacrumKind):
    """Prints tokens independently with the fixed probabilities ``probs``."""

    kind: Literal["iid"]
    probs: dict[str, Probability]

    def check(self, path: str, refs: References) -> None:
        refs.law(f"{path}.probs", self.probs)

    def machine(self, tokens: list[str]) -> Machine:
        emit = np.zeros((1, len(tokens)))
        for t, p in self.probs.items():
            emit[0, tokens.index(t)] = p
        return Machine(("on",), emit, _stay(1, len(tokens)), 0)


@register("coin")
class CoinSpec(SimulacrumKind):
    """A coin: ``heads`` with probability ``p``, ``tails`` with ``1 - p``."""

    kind: Literal["coin"]
    heads: Token
    tails: Token
    p: Probability = 0.5
    parameters: ClassVar[tuple[str, ...]] = ("p",)

    def check(self, path: str, refs: References) -> None:
        refs.token(f"{path}.heads", self.heads)
        refs.token(f"{path}.tails", self.tails)
        if self.heads == self.tails:
            raise ScenarioError(f"{path}.tails", "heads and tails must differ")

    def machine(self, tokens: list[str]) -> Machine:
        emit = np.zeros((1, len(tokens)))
        emit[0, tokens.index(self.heads)] = self.p
        emit[0, tokens.index(self.tails)] = 1.0 - self.p
        return Machine(("on",), emit, _stay(1, len(tokens)), 0)


@register("cycle")
class CycleSpec(SimulacrumKind):
    """Recites ``sequence`` in a loop; slips to any other token with probability ``slip``.

    It may be entered anywhere (a deleted window can start mid-cycle): before its first token
    it prints the cycle's distinct tokens with equal probability (other tokens share ``slip``).
    On observing a token it moves to the position after that token's next occurrence in the
    cycle (so it re-synchronises after a slip); tokens not in the cycle leave it in place.
    """

    kind: Literal["cycle"]
    sequence: list[Token] = Field(min_length=1)
    slip: Probability = 0.0
    parameters: ClassVar[tuple[str, ...]] = ("slip",)

    def check(self, path: str, refs: References) -> None:
        for i, t in enumerate(self.sequence):
            refs.token(f"{path}.sequence[{i}]", t)
        if self.slip > 0 and len(refs.tokens) == 1:
            raise ScenarioError(f"{path}.slip", "a slip needs at least two tokens in the vocabulary")

    @property
    def n_states(self) -> int:
        return len(self.sequence) + 1

    def machine(self, tokens: list[str]) -> Machine:
        size = len(tokens)
        seq = [tokens.index(t) for t in self.sequence]
        n = len(seq)
        members = sorted(set(seq))
        # state n is "not yet in phase": the first token read picks the phase
        begin = np.full(size, self.slip / (size - len(members)) if size > len(members) else 0.0)
        begin[members] = (1.0 - self.slip if size > len(members) else 1.0) / len(members)
        emit = np.stack([_floor(seq[q], self.slip, size) for q in range(n)] + [begin])
        nxt = _stay(n + 1, size)
        for q in range(n + 1):
            for t in members:
                # the position after the next occurrence of t (from the cycle's start when not in phase)
                at = 0 if q == n else q
                d = next(d for d in range(n) if seq[(at + d) % n] == t)
                nxt[q, t] = (at + d + 1) % n
        return Machine(tuple(f"at{q}" for q in range(n)) + ("begin",), emit, nxt, n)


@register("waluigi")
class WaluigiSpec(SimulacrumKind):
    """Hides behind ``mask`` (probability ``p``) until ``reveal`` appears, then prints ``reveal``.

    While hiding it prints ``mask`` with probability ``p`` and ``reveal`` with ``1 - p``. Once a
    ``reveal`` token has been observed it prints ``reveal`` with probability ``1 - eps`` and the
    other tokens share ``eps`` (a softmax floor).
    """

    kind: Literal["waluigi"]
    mask: Token
    reveal: Token
    p: Probability = 0.9
    eps: Probability = 0.0
    parameters: ClassVar[tuple[str, ...]] = ("p", "eps")

    def check(self, path: str, refs: References) -> None:
        refs.token(f"{path}.mask", self.mask)
        refs.token(f"{path}.reveal", self.reveal)
        if self.mask == self.reveal:
            raise ScenarioError(f"{path}.reveal", "mask and reveal must differ")

    @property
    def n_states(self) -> int:
        return 2

    def machine(self, tokens: list[str]) -> Machine:
        size = len(tokens)
        mask, reveal = tokens.index(self.mask), tokens.index(self.reveal)
        emit = np.zeros((2, size))
        emit[0, mask] = self.p
        emit[0, reveal] += 1.0 - self.p
        emit[1] = _floor(reveal, self.eps, size)
        nxt = _stay(2, size)
        nxt[:, reveal] = 1
        return Machine(("hiding", "revealed"), emit, nxt, 0)


def compile_premise(machines: list[Machine], tokens: list[str], turns: Turns | None = None) -> Automaton:
    """Build the reachable part of the product automaton of a premise's cast (module docstring)."""
    size = len(tokens)
    m = len(machines)
    every = turns.every if turns and turns.every else None
    after = tokens.index(turns.after) if turns and turns.after else None
    if m == 1:
        every = after = None

    def successor(state: tuple, t: int) -> tuple:
        speaker, counter, *qs = state
        qs = [mach.next[q, t] for mach, q in zip(machines, qs)]
        if every is not None:
            counter += 1
            if counter == every:
                counter, speaker = 0, (speaker + 1) % m
        elif after is not None and t == after:
            speaker = (speaker + 1) % m
        return (speaker, counter, *map(int, qs))

    start = (0, 0, *(mach.start for mach in machines))
    found = {start: 0}
    order = [start]
    transitions = []
    for state in order:  # breadth-first; ``order`` grows while we walk it
        row = []
        for t in range(size):
            nxt = successor(state, t)
            if nxt not in found:
                found[nxt] = len(order)
                order.append(nxt)
            row.append(found[nxt])
        transitions.append(row)
    n = len(order)
    step_state = np.empty((n, size + 1), dtype=np.intp)
    step_state[:, :size] = transitions
    step_state[:, size] = np.arange(n)
    emit = np.array([machines[s[0]].emit[s[2 + s[0]]] for s in order])
    with np.errstate(divide="ignore"):
        step_logp = np.concatenate([np.log(emit), np.zeros((n, 1))], axis=1)
    members = tuple(np.array([s[2 + i] for s in order]) for i in range(m))
    return Automaton(step_state, step_logp, 0, members)


def population_values(pop: PopulationSpec, d=None, stream: int = 0) -> np.ndarray:
    """The ``count`` values drawn from ``d`` (default: the population's parameter distribution)
    for its members (see :class:`PopulationSpec`); ``stream`` separates independent random draws."""
    d = pop.distribution if d is None else d
    if d.kind == "values":
        return np.resize(np.asarray(d.values, dtype=float), pop.count)
    if pop.draw == "quantiles":
        u = (np.arange(pop.count) + 0.5) / pop.count
    else:
        u = np.random.default_rng([pop.seed, stream] if stream else pop.seed).random(pop.count)
    if d.kind == "uniform":
        return d.low + (d.high - d.low) * u
    if d.kind == "loguniform":
        return np.exp(np.log(d.low) + (np.log(d.high) - np.log(d.low)) * u)
    from scipy import stats  # imported here: scipy.stats is slow to import

    return stats.beta(d.a, d.b).ppf(u)


def build_premises(scenario: Scenario) -> list[CompiledPremise]:
    """All premises of a scenario, populations expanded, each with its compiled automaton or its
    loaded language model (model files are already absolute: see ``scenario.anchor_model_files``)."""
    tokens = scenario.vocabulary.tokens
    machines = {name: spec.machine(tokens) for name, spec in scenario.simulacra.items()}
    premises = [
        CompiledPremise(name, spec.population or name, spec.prior, (), None,
                model=load_model(spec.model, list(tokens), ".", f"premises.{name}.model"))
        if spec.model is not None else
        CompiledPremise(
            name,
            spec.population or name,
            spec.prior,
            tuple(spec.cast),
            compile_premise([machines[c] for c in spec.cast], tokens, spec.turns),
        )
        for name, spec in scenario.premises.items()
    ]
    for label, pop in scenario.populations.items():
        weights = np.ones(pop.count) if pop.weights is None else population_values(pop, pop.weights, stream=1)
        weights = weights / weights.max()  # relative weights at most 1: their sum cannot overflow
        priors = pop.prior * (weights / weights.sum())
        for i, value in enumerate(population_values(pop)):
            spec = pop.template.model_copy(update={pop.parameter: float(value)})
            member = f"{label}[{i}]"
            premises.append(
                CompiledPremise(
                    member,
                    label,
                    float(priors[i]),
                    (member,),
                    compile_premise([spec.machine(tokens)], tokens),
                    pop.parameter,
                    float(value),
                )
            )
    return premises
