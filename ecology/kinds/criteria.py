"""Criteria: which page-states count as "absorbed" (the user's choice, Remark 5).

Each criterion is a predicate on a batch of page-states, shared by the simulator and by the
exact analyser. Two different things are reported for each: the criterion is *reached* at the
first step at which it holds (the first hitting time ``T``; "reached by t" means ``T <= t``),
and it is *holding* at step ``t`` when it holds on the page-state of step ``t``. The two agree
only when the criterion's set of page-states is closed (never left once entered); the exact
analyser says whether it is.

- ``window_only = [tokens]``: the last ``k`` positions hold only those tokens (so no pad: the
  window is full). Under ``deletion = "none"`` this looks at the most recent ``k`` tokens.
- ``population = "label"``, ``above = x``: the label's total amplitude is greater than ``x``
  by more than ``TIE_TOLERANCE`` (see :func:`above`): amplitudes within ``1e-12`` of the
  threshold count as *at* it, so an exact tie (e.g. amplitude 1/2 computed as 0.5000000000000001
  by one reader and 0.4999999999999999 by another) is decided the same way by the simulator,
  the exact analyser and the studies, whatever the rounding.
- ``periodic = P``: the page-state equals the page-state ``d`` steps earlier for some
  ``1 <= d <= P``; this needs the ``P`` most recently deleted tokens (the *extended* window,
  ``memory = P`` columns before the page-state). A window that never deletes never repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
from pydantic import Field

from ecology.errors import ScenarioError
from ecology.fields import MAX_COUNT, Name, Probability, References, Token
from ecology.numerics import above, inline


def equals_earlier(extended: np.ndarray, period: int, memory: int) -> np.ndarray:
    """Whether the page-state equals the one ``d`` steps earlier for some ``1 <= d <= period``,
    under ``fifo`` (``extended`` holds ``memory >= period`` deleted tokens before the page-state)."""
    width = extended.shape[1]
    now = extended[:, memory:]
    out = np.zeros(len(extended), dtype=bool)
    for d in range(1, period + 1):
        out |= np.all(now == extended[:, memory - d : width - d], axis=1)
    return out


if TYPE_CHECKING:  # the scenario's [absorption.NAME] table is built from the forms below
    from ecology.scenario import Criterion


WINDOW_ONLY, POPULATION, PERIODIC = 0, 1, 2  # the compiled predicates (CompiledCriterion.form)


class CompiledCriterion(NamedTuple):
    """A criterion as the compiled engine evaluates it: which compiled predicate (``form``, one of
    the evaluators below each form's class) and its parameters."""

    form: int
    label: int = 0  # POPULATION: the population label's index ...
    threshold: float = 0.0  # ... and the amplitude it must exceed (tie rule of ``above``)
    disallowed: np.ndarray | None = None  # WINDOW_ONLY: (V + 2,) 1 for each token outside the set
    period: int = 0  # PERIODIC: P


class CriterionForm:
    """A named predicate on page-states; one registered class per form of ``[absorption.NAME]``.

    ``fields`` are the keys the form adds to ``[absorption.NAME]`` (pydantic definitions; the
    first is the key that selects the form), ``validate_spec`` and ``check`` its own validation
    (alone, then against the vocabulary and labels), ``from_spec`` builds it from the validated
    table. ``holds(extended, amplitudes)`` evaluates it on a batch of page-states (what the exact
    analyser calls); the numpy engine calls ``start(engine)`` once and ``observe(engine)`` after every
    step (the compiled engine at step 0 only, then its compiled form), which default to ``holds`` on
    the engine's current windows and may keep an incremental
    form instead. Adding a form is adding one class here (and its documentation).
    """

    key: ClassVar[str]
    fields: ClassVar[dict[str, Any]]

    @classmethod
    def validate_spec(cls, spec: Criterion) -> None:
        """Checks of the form's own keys; raise ValueError."""

    @classmethod
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str]) -> None:
        """Cross-reference checks; raise :class:`ScenarioError`."""

    def __init__(self, name: str):
        self.name = name

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def start(self, engine) -> None:
        """Prepare the simulator's form on the initial windows."""

    def observe(self, engine) -> np.ndarray:
        """(R,) whether the criterion holds on each replicate's current window."""
        return self.holds(engine.context.window, engine.population)

    def compiled_form(self) -> CompiledCriterion | None:
        """What the compiled engine evaluates (None: the criterion runs on numpy only)."""
        return None


FORMS: dict[str, type[CriterionForm]] = {}


def form(cls: type[CriterionForm]) -> type[CriterionForm]:
    """Class decorator: register a criterion form under its ``key``."""
    FORMS[cls.key] = cls
    return cls


@form
class WindowOnly(CriterionForm):
    """The last ``k`` positions hold only the listed tokens (so the window is full)."""

    key = "window_only"
    fields = {"window_only": (list[Token] | None, Field(None, min_length=1))}

    @classmethod
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str]) -> None:
        for i, t in enumerate(spec.window_only):
            refs.token(f"{path}.window_only[{i}]", t)

    def __init__(self, name: str, tokens: list[int], length: int, n_tokens: int):
        super().__init__(name)
        self.length = length
        self.allowed = np.zeros(n_tokens + 2, dtype=bool)
        self.allowed[tokens] = True

    @classmethod
    def from_spec(cls, name: str, spec: Criterion, setting: Setting) -> WindowOnly:
        return cls(name, [setting.token_index[t] for t in spec.window_only], setting.length, len(setting.token_index))

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        return np.all(self.allowed[extended[:, -self.length :]], axis=1)

    # Incremental form for the sliding simulator: count the disallowed tokens among the last k.
    def start(self, engine) -> None:
        self.outside = np.sum(~self.allowed[engine.context.last(self.length)], axis=1)

    def observe(self, engine) -> np.ndarray:
        if not engine.compiled.rule.sliding:
            return self.holds(engine.context.window, engine.population)
        if engine.token is not None:
            self.outside += ~self.allowed[engine.token]
            self.outside -= ~self.allowed[engine.left]
        return self.outside == 0

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(WINDOW_ONLY, disallowed=(~self.allowed).astype(np.int64))


@inline
def window_only_slide_jit(c, tokens, buf, end, length, disallowed, outside, holding):
    """The compiled incremental form under a sliding rule: ``outside`` counts the disallowed
    tokens among the last ``k`` (the appended token enters, ``buf[r, end - k - 1]`` leaves)."""
    for r in range(len(tokens)):
        outside[c, r] += disallowed[tokens[r]] - disallowed[buf[r, end - length - 1]]
        holding[c, r] = outside[c, r] == 0


@inline
def window_only_read_jit(c, window, disallowed, holding):
    """The compiled form on canonical windows: no position holds a disallowed token."""
    rows, length = window.shape
    for r in range(rows):
        inside = True
        for j in range(length):
            if disallowed[window[r, j]]:
                inside = False
                break
        holding[c, r] = inside


@form
class PopulationAbove(CriterionForm):
    """A population label's amplitude is above a threshold (the tie rule of :func:`above`)."""

    key = "population"
    fields = {"population": (Name | None, None), "above": (Probability | None, None)}

    @classmethod
    def validate_spec(cls, spec: Criterion) -> None:
        if spec.above is None:
            raise ValueError("'population' needs 'above' (an amplitude threshold)")

    @classmethod
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str]) -> None:
        if spec.population not in labels:
            raise ScenarioError(f"{path}.population", f"unknown population label {spec.population!r}; "
                                f"labels are {sorted(labels)}")

    def __init__(self, name: str, label: int, above: float):
        super().__init__(name)
        self.label = label
        self.above = above

    @classmethod
    def from_spec(cls, name: str, spec: Criterion, setting: Setting) -> PopulationAbove:
        return cls(name, setting.labels.index(spec.population), spec.above)

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        return above(amplitudes[:, self.label], self.above)

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(POPULATION, label=self.label, threshold=self.above)


@inline
def population_above_jit(c, population, label, threshold, tie, holding):
    """The compiled form on the label-major amplitudes ``population[j, r]`` (tie rule of ``above``)."""
    for r in range(population.shape[1]):
        holding[c, r] = population[label, r] > threshold + tie


@form
class Periodic(CriterionForm):
    """The page-state equals the one ``d`` steps earlier for some ``1 <= d <= P``."""

    key = "periodic"
    fields = {"periodic": (int | None, Field(None, ge=1, le=MAX_COUNT))}

    def __init__(self, name: str, period: int, memory: int):
        super().__init__(name)
        self.period = period
        self.memory = memory  # deleted-token columns before the page-state in ``extended``

    @classmethod
    def from_spec(cls, name: str, spec: Criterion, setting: Setting) -> Periodic:
        return cls(name, spec.periodic, setting.memory)

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        """On extended page-states of a ``fifo`` window (the exact analyser's extended chain)."""
        return equals_earlier(extended, self.period, self.memory)

    def observe(self, engine) -> np.ndarray:
        """The simulator asks its context, which remembers earlier page-states under any rule."""
        return engine.context.equals_earlier(self.period)

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(PERIODIC, period=self.period)


@inline
def same_window_jit(x, y):
    """Whether two page-states are equal."""
    for j in range(len(x)):
        if x[j] != y[j]:
            return False
    return True


@inline
def periodic_slide_jit(c, buf, start, end, period, deletes, holding):
    """The compiled form on a sliding buffer: ``buf[r, start:end]`` equals ``buf[r, start - d : end - d]``
    for some ``1 <= d <= P`` (a window that never deletes never repeats)."""
    for r in range(buf.shape[0]):
        found = False
        if deletes:
            for d in range(1, period + 1):
                if same_window_jit(buf[r, start:end], buf[r, start - d : end - d]):
                    found = True
                    break
        holding[c, r] = found


@inline
def periodic_read_jit(c, window, history, position, filled, period, holding):
    """The compiled form on canonical windows: the window equals one of the last ``min(P, filled)``
    page-states kept in the ring ``history`` (the newest at ``position``)."""
    memory = history.shape[0]
    for r in range(window.shape[0]):
        found = False
        for d in range(1, min(period, filled) + 1):
            if same_window_jit(window[r], history[(position - d + 1) % memory, r]):
                found = True
                break
        holding[c, r] = found


@dataclass(frozen=True)
class Setting:
    """What criteria are compiled against: token indices, population labels, window length and
    the deleted-token memory the ``periodic`` criteria need."""

    token_index: dict[str, int]
    labels: list[str]
    length: int
    memory: int


def build_criteria(criteria: dict[str, Criterion], token_index: dict[str, int], labels: list[str], length: int):
    """Compile the scenario's named criteria; returns (criteria, memory needed)."""
    memory = max([c.periodic for c in criteria.values() if c.periodic is not None], default=0)
    setting = Setting(token_index, labels, length, memory)
    return [FORMS[c.form].from_spec(name, c, setting) for name, c in criteria.items()], memory
