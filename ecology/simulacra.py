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

import numpy as np

from .scenario import (
    AutomatonSpec,
    CoinSpec,
    ConstantSpec,
    CycleSpec,
    IidSpec,
    PopulationSpec,
    PremiseSpec,
    Scenario,
    WaluigiSpec,
)


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
class Premise:
    name: str
    label: str  # population label that amplitude is aggregated under
    prior: float
    cast: tuple[str, ...]
    automaton: Automaton
    parameter: str | None = None  # for a population member: the drawn parameter's name ...
    value: float | None = None  # ... and its value


def _floor(index: int, eps: float, size: int) -> np.ndarray:
    """Put ``1 - eps`` on one token and share ``eps`` equally among the others."""
    law = np.full(size, eps / (size - 1) if size > 1 else 0.0)
    law[index] = 1.0 - eps if size > 1 else 1.0
    return law


def compile_simulacrum(spec, tokens: list[str]) -> Machine:
    """Compile any simulacrum kind to its :class:`Machine`."""
    size = len(tokens)
    index = {t: i for i, t in enumerate(tokens)}
    stay = lambda n: np.tile(np.arange(n)[:, None], (1, size))  # noqa: E731

    if isinstance(spec, AutomatonSpec):
        names = tuple(spec.states)
        where = {n: i for i, n in enumerate(names)}
        emit = np.zeros((len(names), size))
        nxt = stay(len(names))
        for q, state in enumerate(spec.states.values()):
            for t, p in state.emit.items():
                emit[q, index[t]] = p
            for t, target in state.on.items():
                nxt[q, index[t]] = where[target]
        return Machine(names, emit, nxt, where[spec.start])
    if isinstance(spec, ConstantSpec):
        return Machine(("on",), _floor(index[spec.token], spec.eps, size)[None], stay(1), 0)
    if isinstance(spec, IidSpec):
        emit = np.zeros((1, size))
        for t, p in spec.probs.items():
            emit[0, index[t]] = p
        return Machine(("on",), emit, stay(1), 0)
    if isinstance(spec, CoinSpec):
        emit = np.zeros((1, size))
        emit[0, index[spec.heads]] = spec.p
        emit[0, index[spec.tails]] = 1.0 - spec.p
        return Machine(("on",), emit, stay(1), 0)
    if isinstance(spec, CycleSpec):
        seq = [index[t] for t in spec.sequence]
        n = len(seq)
        members = sorted(set(seq))
        # state n is "not yet in phase": the first token read picks the phase
        begin = np.full(size, spec.slip / (size - len(members)) if size > len(members) else 0.0)
        begin[members] = (1.0 - spec.slip if size > len(members) else 1.0) / len(members)
        emit = np.stack([_floor(seq[q], spec.slip, size) for q in range(n)] + [begin])
        nxt = stay(n + 1)
        for q in range(n + 1):
            for t in members:
                # the position after the next occurrence of t (from the cycle's start when not in phase)
                at = 0 if q == n else q
                d = next(d for d in range(n) if seq[(at + d) % n] == t)
                nxt[q, t] = (at + d + 1) % n
        return Machine(tuple(f"at{q}" for q in range(n)) + ("begin",), emit, nxt, n)
    if isinstance(spec, WaluigiSpec):
        emit = np.zeros((2, size))
        emit[0, index[spec.mask]] = spec.p
        emit[0, index[spec.reveal]] += 1.0 - spec.p
        emit[1] = _floor(index[spec.reveal], spec.eps, size)
        nxt = stay(2)
        nxt[:, index[spec.reveal]] = 1
        return Machine(("hiding", "revealed"), emit, nxt, 0)
    raise TypeError(f"unknown simulacrum spec {type(spec).__name__}")


def compile_premise(spec: PremiseSpec, machines: list[Machine], tokens: list[str]) -> Automaton:
    """Build the reachable part of the product automaton of a premise's cast (module docstring)."""
    size = len(tokens)
    m = len(machines)
    every = spec.turns.every if spec.turns and spec.turns.every else None
    after = tokens.index(spec.turns.after) if spec.turns and spec.turns.after else None
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


def build_premises(scenario: Scenario) -> list[Premise]:
    """All premises of a scenario, populations expanded, each with its compiled automaton."""
    tokens = scenario.vocabulary.tokens
    machines = {name: compile_simulacrum(spec, tokens) for name, spec in scenario.simulacra.items()}
    premises = [
        Premise(
            name,
            spec.population or name,
            spec.prior,
            tuple(spec.cast),
            compile_premise(spec, [machines[c] for c in spec.cast], tokens),
        )
        for name, spec in scenario.premises.items()
    ]
    for label, pop in scenario.populations.items():
        weights = np.ones(pop.count) if pop.weights is None else population_values(pop, pop.weights, stream=1)
        priors = pop.prior * weights / weights.sum()
        for i, value in enumerate(population_values(pop)):
            spec = pop.template.model_copy(update={pop.parameter: float(value)})
            member = f"{label}[{i}]"
            premises.append(
                Premise(
                    member,
                    label,
                    float(priors[i]),
                    (member,),
                    compile_premise(PremiseSpec.model_construct(prior=1.0, cast=[member], turns=None), [compile_simulacrum(spec, tokens)], tokens),
                    pop.parameter,
                    float(value),
                )
            )
    return premises
