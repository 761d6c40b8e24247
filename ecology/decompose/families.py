"""Decomposition families: each a registered class owning its candidate structures (automata
whose state path on a sequence does not depend on the continuous parameters) and its
closed-form M-step (the mathematics is in the package docstring, :mod:`ecology.decompose`).

- free tables (:class:`TableFamily`: ``iid``, ``markov1``, ``markov2``): one automaton, every
  state's emission law free, ``E[q, t] = S[q, t] / sum_u S[q, u]``;
- one-parameter-per-cell families (:class:`ParameterFamily`: ``constant``, ``cycle``,
  ``waluigi``): one candidate per discrete structure, each parameter entering its cells as ``x``
  or ``1 - x``, so ``x = B / (A + B)``; the candidate with the largest ``sum S log E`` wins, ties
  (within ``TIE``) going to the first.

Adding a family is adding one registered class here.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ecology.errors import DecomposeError
from ecology.kinds.simulacra import ConstantSpec, CycleSpec, Machine, WaluigiSpec

CYCLE_CANDIDATES = 2000  # cycles of period 1, 2, ... are tried while their number stays below this


TIE = 1e-9  # M-step candidates within this relative gap tie (the one with fewer parameters is kept)


@dataclass
class Structure:
    """A family's discrete structure: an automaton whose emissions the M-step fits."""

    family: str
    machine: Machine  # emit is the current/default law; next and start are fixed
    tokens: list[str]
    spec: object | None = None  # the parameterised spec (constant, cycle, waluigi); None for free tables
    params: tuple[str, ...] = ()
    counts: sp.csr_matrix | None = None  # (N, Q * V) emission counts on the training data
    counts_t: sp.csr_matrix | None = None  # its transpose, for the statistics S
    cells: dict = field(default_factory=dict)  # param -> (mask, E at 0, E at 1) on the cells it moves

    def __post_init__(self):
        """Each parameter moves its own cells linearly: ``E = E(0) + x (E(1) - E(0))`` there."""
        if self.spec is None:
            return
        for name in self.params:
            low = self.spec.model_copy(update={name: 0.0}).machine(self.tokens).emit
            high = self.spec.model_copy(update={name: 1.0}).machine(self.tokens).emit
            mask = low != high
            self.cells[name] = (mask, low[mask], high[mask])

    @property
    def n_params(self) -> int:
        """Free continuous parameters (what BIC counts)."""
        if self.spec is not None:
            return len(self.params)
        Q, V = self.machine.emit.shape
        return Q * (V - 1)


def emission_counts(machine: Machine, tokens: np.ndarray, pad: int) -> sp.csr_matrix:
    """``C[n, q * V + t]``: how often the automaton, reading row ``n`` from its start, is in
    state ``q`` when token ``t`` comes (pads skipped)."""
    rows = tokens.shape[0]
    V = machine.emit.shape[1]
    state = np.full(rows, machine.start, dtype=np.intp)
    r, c = [], []
    for column in tokens.T:
        real = column != pad
        r.append(np.flatnonzero(real))
        c.append(state[real] * V + column[real])
        state = np.where(real, machine.next[state, np.minimum(column, V - 1)], state)
    data = np.ones(sum(len(x) for x in r))
    return sp.csr_matrix((data, (np.concatenate(r), np.concatenate(c))), shape=(rows, machine.emit.size))


def markov_machine(order: int, V: int) -> Machine:
    """Order-``m`` Markov automaton (m = 0, 1, 2): the state is the last ``m`` tokens read (fewer
    at the start of a window), each state with its own next-token law."""
    names = ["start"]
    index = {(): 0}
    for length in range(1, order + 1):
        for context in itertools.product(range(V), repeat=length):
            index[context] = len(names)
            names.append("after_" + "_".join(map(str, context)))
    nxt = np.zeros((len(names), V), dtype=np.intp)
    for context, q in index.items():
        for t in range(V):
            longer = (context + (t,))[-order:] if order else ()
            nxt[q, t] = index[longer]
    return Machine(tuple(names), np.full((len(names), V), 1.0 / V), nxt, 0)


def canonical_cycles(V: int, max_period: int) -> list[tuple[int, ...]]:
    """Primitive sequences up to rotation (smallest rotation), periods 1 .. ``max_period``,
    stopping before their number would exceed ``CYCLE_CANDIDATES``."""
    out: list[tuple[int, ...]] = []
    for n in range(1, max_period + 1):
        batch = []
        for seq in itertools.product(range(V), repeat=n):
            rotations = [seq[i:] + seq[:i] for i in range(n)]
            if seq == min(rotations) and len(set(rotations)) == n:
                batch.append(seq)
                if len(out) + len(batch) > CYCLE_CANDIDATES:  # this period is not taken: stop looking
                    return out
        out += batch
    return out


def weighted_log(S: np.ndarray, E: np.ndarray) -> float:
    """``sum S log E`` with ``0 log 0 = 0`` (``-inf`` when positive weight meets a zero)."""
    used = S > 0
    if np.any(E[used] <= 0):
        return -math.inf
    return float(np.sum(S[used] * np.log(E[used])))


@dataclass
class Component:
    """A fitted premise: a structure with its emission table and parameter values."""

    structure: Structure
    emit: np.ndarray  # (Q, V)
    values: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.structure.family

    def log_likelihood(self, counts: sp.csr_matrix) -> np.ndarray:
        """``log q(y_n)`` per row of the emission counts."""
        with np.errstate(divide="ignore"):
            log_emit = np.log(self.emit).ravel()
        return counts @ log_emit  # only stored (positive) counts multiply: 0 log 0 never arises


def m_step(structure: Structure, S: np.ndarray) -> tuple[Component, float]:
    """A free table's M-step: ``E[q, t] = S[q, t] / sum_u S[q, u]`` (uniform where ``S[q]`` is 0),
    and the maximum ``sum S log E``."""
    Q, V = structure.machine.emit.shape
    S = S.reshape(Q, V)
    totals = S.sum(axis=1, keepdims=True)
    emit = np.where(totals > 0, S / np.where(totals > 0, totals, 1.0), 1.0 / V)
    return Component(structure, emit), weighted_log(S, emit)


@dataclass
class Candidates:
    """The candidate structures of one family, whose M-steps are solved together: their
    emission counts are stacked into one matrix, so the statistics ``S`` of every candidate come
    from one product, and the closed-form parameters from sums over each candidate's cells."""

    family: str
    structures: list[Structure]
    counts_t: sp.csr_matrix  # (all cells, N): the candidates' transposed counts, stacked
    offsets: np.ndarray  # candidate i owns cells offsets[i] .. offsets[i + 1]
    owner: np.ndarray  # (all cells,) the candidate owning each cell
    base: np.ndarray  # (all cells,) default emissions (cells no parameter moves keep them)
    moved: dict  # parameter -> (cells, E at 0, E at 1)

    @classmethod
    def of(cls, family: str, structures: list[Structure]) -> Candidates:
        sizes = np.array([st.machine.emit.size for st in structures])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        moved = {}
        for name in structures[0].params:
            cells, low, high = [], [], []
            for i, st in enumerate(structures):
                mask, lo, hi = st.cells[name]
                if not np.all((lo == 0) | (hi == 0)):
                    raise ValueError(f"{family}: {name} enters an emission cell other than as x or 1 - x")
                cells.append(offsets[i] + np.flatnonzero(mask.ravel()))
                low.append(lo)
                high.append(hi)
            moved[name] = (np.concatenate(cells), np.concatenate(low), np.concatenate(high))
        return cls(family, structures, sp.vstack([st.counts_t for st in structures]).tocsr(), offsets,
                   np.repeat(np.arange(len(structures)), sizes),
                   np.concatenate([st.machine.emit.ravel() for st in structures]), moved)

    @property
    def n_params(self) -> int:
        return self.structures[0].n_params

    def solve(self, weight: np.ndarray) -> tuple[Component, float]:
        """The best candidate of this family for the weights ``omega_n r_nj``, and its value
        (the family's M-step on the statistics ``S`` of every candidate)."""
        return family(self.family).m_step(self, self.counts_t @ weight)


class Family(ABC):
    """A decomposition family: its candidate structures for a vocabulary and window length, the
    fewest free parameters one of its premises has, and its M-step over a :class:`Candidates`."""

    name: str

    @abstractmethod
    def structures(self, tokens: list[str], k: int) -> list[Structure]:
        """The candidate structures for the vocabulary ``tokens`` and window length ``k``."""

    @abstractmethod
    def min_params(self, V: int) -> int:
        """The fewest free parameters a premise of this family has over ``V`` tokens."""

    @abstractmethod
    def m_step(self, group: Candidates, S: np.ndarray) -> tuple[Component, float]:
        """The best candidate of ``group`` (this family's) for the statistics ``S`` (one entry per
        stacked cell), and its ``sum S log E``."""

    @abstractmethod
    def size(self, V: int, k: int) -> tuple[int, int]:
        """(candidate structures, emission cells in all) over ``V`` tokens and window ``k``,
        computed without building them (the budget of :mod:`ecology.decompose.budget`)."""


FAMILIES: dict[str, Family] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: register a family under its ``name`` (the order of ``--family`` help)."""
    FAMILIES[cls.name] = cls()
    return cls


def family(name: str) -> Family:
    """The registered family ``name``; a :class:`DecomposeError` naming the others otherwise."""
    if name not in FAMILIES:
        raise DecomposeError(f"--family: unknown family {name!r}; use one or more of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def min_params(names: list[str], V: int) -> int:
    """The fewest free parameters a premise from the families ``names`` has."""
    return min(family(name).min_params(V) for name in names)


class TableFamily(Family):
    """Markov premises of ``order`` m with free emission tables (one law per state)."""

    order: int

    def structures(self, tokens: list[str], k: int) -> list[Structure]:
        return [Structure(self.name, markov_machine(self.order, len(tokens)), tokens)]

    def min_params(self, V: int) -> int:
        """States (1 + V + ... + V^m) times V - 1."""
        return (V - 1) * sum(V**i for i in range(self.order + 1))

    def m_step(self, group: Candidates, S: np.ndarray) -> tuple[Component, float]:
        return m_step(group.structures[0], S)

    def size(self, V: int, k: int) -> tuple[int, int]:
        """One automaton of ``1 + V + ... + V^m`` states."""
        return 1, V * sum(V**i for i in range(self.order + 1))


class ParameterFamily(Family):
    """Premises of a parameterised kind: one candidate per discrete structure (``specs``), the
    continuous ``params`` each moving its own cells linearly, solved in closed form."""

    params: tuple[str, ...]

    @abstractmethod
    def specs(self, tokens: list[str], k: int) -> list:
        """The parameterised specs, one per discrete structure (defaults for the parameters)."""

    def free(self, V: int) -> tuple[str, ...]:
        """The parameters free at vocabulary size ``V``."""
        return self.params

    def structures(self, tokens: list[str], k: int) -> list[Structure]:
        params = self.free(len(tokens))
        return [Structure(self.name, spec.machine(tokens), tokens, spec, params) for spec in self.specs(tokens, k)]

    def min_params(self, V: int) -> int:
        return len(self.free(V))

    def m_step(self, group: Candidates, S: np.ndarray) -> tuple[Component, float]:
        """Per candidate and parameter ``x = B / (A + B)`` (``A``, ``B``: the statistics on its
        ``1 - x`` and ``x`` cells; 1/2 when both are 0), then the best candidate."""
        n = len(group.structures)
        emit = group.base.copy()
        values = {}
        for name, (cells, low, high) in group.moved.items():
            owner, stats = group.owner[cells], S[cells]
            a = np.bincount(owner, np.where(high == 0, stats, 0.0), minlength=n)
            b = np.bincount(owner, np.where(low == 0, stats, 0.0), minlength=n)
            total = a + b
            x = np.where(total > 0, b / np.where(total > 0, total, 1.0), 0.5)
            emit[cells] = low + x[owner] * (high - low)
            values[name] = x
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(S > 0, S * np.log(emit), 0.0)
        score = np.bincount(group.owner, terms, minlength=n)
        best = float(score.max())
        i = int(np.argmax(score >= best - TIE * max(1.0, abs(best)))) if np.isfinite(best) else 0
        st = group.structures[i]
        own = emit[group.offsets[i] : group.offsets[i + 1]].reshape(st.machine.emit.shape)
        return Component(st, own, {name: float(x[i]) for name, x in values.items()}), float(score[i])


@register
class Iid(TableFamily):
    name = "iid"
    order = 0


@register
class Constant(ParameterFamily):
    """A constant token with floor ``eps`` (no floor with one token)."""

    name = "constant"
    params = ("eps",)

    def free(self, V: int) -> tuple[str, ...]:
        return self.params if V > 1 else ()

    def specs(self, tokens: list[str], k: int) -> list:
        return [ConstantSpec(kind="constant", token=t, eps=0.01 if len(tokens) > 1 else 0.0) for t in tokens]

    def size(self, V: int, k: int) -> tuple[int, int]:
        """One one-state automaton per token."""
        return V, V * V


@register
class Markov1(TableFamily):
    name = "markov1"
    order = 1


@register
class Markov2(TableFamily):
    name = "markov2"
    order = 2


@register
class Cycle(ParameterFamily):
    """A cycle through a primitive sequence (periods up to ``min(k + 1, 8)``) with ``slip``."""

    name = "cycle"
    params = ("slip",)

    def free(self, V: int) -> tuple[str, ...]:
        return self.params if V > 1 else ()

    def specs(self, tokens: list[str], k: int) -> list:
        slip = 0.01 if len(tokens) > 1 else 0.0
        return [CycleSpec(kind="cycle", sequence=[tokens[i] for i in seq], slip=slip)
                for seq in canonical_cycles(len(tokens), min(k + 1, 8))]

    def size(self, V: int, k: int) -> tuple[int, int]:
        """One automaton per cycle, with one state per position and one more (at most
        :data:`CYCLE_CANDIDATES` cycles, so this enumeration is short)."""
        cycles = canonical_cycles(V, min(k + 1, 8))
        return len(cycles), sum((len(seq) + 1) * V for seq in cycles)


@register
class Waluigi(ParameterFamily):
    """A waluigi for every ordered pair of distinct (mask, reveal) tokens; none with one token."""

    name = "waluigi"
    params = ("p", "eps")

    def specs(self, tokens: list[str], k: int) -> list:
        return [WaluigiSpec(kind="waluigi", mask=a, reveal=b, p=0.9, eps=0.01) for a in tokens for b in tokens if a != b]

    def size(self, V: int, k: int) -> tuple[int, int]:
        """One two-state automaton (hiding, revealed) per ordered pair of distinct tokens."""
        return V * (V - 1), V * (V - 1) * 2 * V
