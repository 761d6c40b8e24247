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
  ``1 <= d <= P``; the simulator keeps the earlier page-states (or the ``P`` most recently deleted
  tokens of a sliding window, ``memory = P``). The exact analyser does not extend the page-state
  by them: see :class:`Periodic`. A window that never deletes never repeats.
- ``repeats = { period = P, copies = C }``: the window ends in ``C`` consecutive copies of a block
  of ``p`` tokens for some ``1 <= p <= P`` (a loop of period ``p`` repeated ``C`` times): its last
  ``C p`` positions are real tokens (no pad) and ``w[-i] == w[-i - p]`` for ``i = 1 .. (C - 1) p``.
  A predicate on the window alone (unlike ``periodic``); only blocks with ``C p <= k`` can hold.
- ``windows = ["* * U U", ...]``: the window matches one of the patterns, position by position:
  each pattern is ``k`` space-separated entries, a vocabulary token (that token), the pad (a pad
  position: the window is not full there) or ``*`` (anything, pad included). Page-states are
  canonical, pads first, so ``"N N * *"`` is "at most two tokens printed so far". Under
  ``deletion = "none"`` the patterns match the most recent ``k`` positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from ecology.errors import ScenarioError
from ecology.fields import MAX_COUNT, Name, Probability, References, Strict, Token
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


# the compiled predicates (CompiledCriterion.form)
WINDOW_ONLY, POPULATION, PERIODIC, REPEATS, PATTERNS, COMBINED = 0, 1, 2, 3, 4, 5
ANY = -1  # a ``*`` entry of a window pattern (compiled patterns: token index, V for the pad, ANY)


class CompiledCriterion(NamedTuple):
    """A criterion as the compiled engine evaluates it: which compiled predicate (``form``, one of
    the evaluators below each form's class) and its parameters."""

    form: int
    label: int = 0  # POPULATION: the population label's index ...
    threshold: float = 0.0  # ... and the amplitude it must exceed (tie rule of ``above``)
    disallowed: np.ndarray | None = None  # WINDOW_ONLY: (V + 2,) 1 for each token outside the set
    period: int = 0  # PERIODIC: P; REPEATS: the longest block that fits, min(P, k // C)
    copies: int = 0  # REPEATS: C
    patterns: np.ndarray | None = None  # PATTERNS: (M, k) token index, V for the pad, ANY for ``*``
    members: np.ndarray | None = None  # COMBINED: the rows (earlier predicates) it combines ...
    negate: bool = False  # ... by "any of" (False) or "not" (True, one member)


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
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str], length: int) -> None:
        """Cross-reference checks (``length`` is the window's ``k``); raise :class:`ScenarioError`."""

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
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str], length: int) -> None:
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
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str], length: int) -> None:
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
    """The page-state equals the one ``d`` steps earlier for some ``1 <= d <= P``: ``X_t = X_{t-d}``.

    When the window decides it (the exact analyser, :func:`ecology.exact.chain.repetition_chain`):

    - ``d = 1``, every deleting rule: ``X_t = X_{t-1}`` exactly when the transition just taken is a
      self-loop ``i -> i`` of the page-state chain (an event on its edges, not on its states).
    - ``fifo`` without a pinned prefix, where the window holds the last ``k`` tokens:
      ``X_t = X_{t-d}`` exactly when ``x_i = x_{i-d}`` for the ``k`` latest positions ``i``, all real
      tokens (a window that still holds pads had more pads ``d`` steps earlier). For ``d < k`` this
      is "the last ``d + 1`` windows were all full and ``d``-periodic": the chain went ``d`` steps round
      the rotation of a ``d``-periodic window, which the window itself shows, plus a count of the
      steps; for ``d >= k`` the comparison reaches tokens that left the window, and only the last
      ``d - k`` of them are needed.
    - ``block``, ``message`` and a pinned ``fifo``: for ``d >= 2`` the page-state ``d`` steps earlier is
      not the window shifted back by ``d`` tokens (a step deletes a varying number of them, or not
      the oldest), so the exact analysis refuses ``P >= 2`` there; ``none`` never repeats.

    The simulator's rule is the definition on every rule (it compares with the kept page-states).
    ``holds`` is the definition on the chain whose states carry ``memory >= P`` deleted tokens
    before a sliding page-state (:func:`equals_earlier`), kept as the reference the product is tested against.
    """

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


class RepeatsTable(Strict):
    """``repeats = { period = P, copies = C }``: the longest block ``P`` and how many copies ``C``."""

    period: int = Field(ge=1, le=MAX_COUNT, description="P: blocks of p = 1 .. P tokens")
    copies: int = Field(ge=1, le=MAX_COUNT, json_schema_extra={"minimum": 2},
                        description="C >= 2: consecutive copies of the block that end the window")

    @field_validator("copies")
    @classmethod
    def _more_than_one(cls, copies: int) -> int:
        if copies == 1:
            raise ValueError("copies = 1 would hold on every window that ends in a token; use copies >= 2")
        return copies


@form
class Repeats(CriterionForm):
    """The window ends in ``C`` consecutive copies of a block of ``p`` tokens, ``1 <= p <= P``."""

    key = "repeats"
    fields = {"repeats": (RepeatsTable | None, None)}

    @classmethod
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str], length: int) -> None:
        if spec.repeats.copies > length:
            raise ScenarioError(f"{path}.repeats.copies", f"{spec.repeats.copies} copies of even one token do not fit "
                                f"in a window of context.length = {length}; use copies <= {length}, or a longer window")

    def __init__(self, name: str, period: int, copies: int, length: int, n_tokens: int):
        super().__init__(name)
        self.copies = copies
        self.length = length
        self.period = min(period, length // copies)  # longer blocks cannot fit C times in k positions
        self.pad = n_tokens  # real tokens are below it (the pad is V, "before step 0" V + 1)

    @classmethod
    def from_spec(cls, name: str, spec: Criterion, setting: Setting) -> Repeats:
        return cls(name, spec.repeats.period, spec.repeats.copies, setting.length, len(setting.token_index))

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        """On the last ``k`` columns of ``extended`` (canonical page-states, pads first, after any
        deleted-token memory; under ``none`` the most recent ``k`` positions)."""
        w = extended[:, -self.length :]
        out = np.zeros(len(w), dtype=bool)
        for p in range(1, self.period + 1):
            span = w[:, self.length - self.copies * p :]
            out |= np.all(span < self.pad, axis=1) & np.all(span[:, p:] == span[:, :-p], axis=1)
        return out

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(REPEATS, period=self.period, copies=self.copies)


@inline
def ends_in_copies_jit(w, pad, period, copies):
    """Whether the row ``w`` ends in ``copies`` copies of a block of ``p <= period`` real tokens
    (``period`` already at most ``len(w) // copies``). From the end backwards, so that a block
    that does not repeat is usually refused at its first comparison; once the copies agree, the
    span holds no pad exactly when the first block holds none."""
    n = len(w)
    for p in range(1, period + 1):
        first = n - copies * p
        found = True
        for j in range(n - 1, first + p - 1, -1):
            if w[j] != w[j - p]:
                found = False
                break
        if found:
            for j in range(first, first + p):
                if w[j] >= pad:
                    found = False
                    break
        if found:
            return True
    return False


@inline
def repeats_read_jit(c, window, pad, period, copies, holding):
    """The compiled form on canonical windows (pads first)."""
    for r in range(window.shape[0]):
        holding[c, r] = ends_in_copies_jit(window[r], pad, period, copies)


@inline
def repeats_slide_jit(c, buf, end, length, pad, period, copies, holding):
    """The compiled form on a sliding buffer: the last ``k`` positions ``buf[r, end - k : end]``."""
    for r in range(buf.shape[0]):
        holding[c, r] = ends_in_copies_jit(buf[r, end - length : end], pad, period, copies)


def parse_pattern(path: str, pattern: str, refs: References, length: int) -> list[str]:
    """A window pattern's ``k`` entries (tokens, the pad, ``*``); a wrong entry or length is a
    :class:`ScenarioError` on ``path``."""
    entries = pattern.split()
    if len(entries) != length:
        raise ScenarioError(path, f"the pattern {pattern!r} has {len(entries)} {'entry' if len(entries) == 1 else 'entries'}, "
                            f"the window context.length = "
                            f"{length}; give one entry per position (a token, the pad {refs.pad!r}, or '*')")
    for entry in entries:
        if entry != "*" and entry != refs.pad and entry not in refs.known:
            raise ScenarioError(path, f"unknown token {entry!r} in the pattern {pattern!r}; entries are vocabulary "
                                f"tokens {refs.tokens}, the pad {refs.pad!r} or '*' (any, pad included)")
    return entries


@form
class WindowPattern(CriterionForm):
    """The window matches one of the patterns (token, pad or ``*`` at each of the ``k`` positions)."""

    key = "windows"
    fields = {"windows": (list[str] | None, Field(None, min_length=1, max_length=MAX_COUNT))}

    @classmethod
    def check(cls, path: str, spec: Criterion, refs: References, labels: set[str], length: int) -> None:
        for i, pattern in enumerate(spec.windows):
            parse_pattern(f"{path}.windows[{i}]", pattern, refs, length)

    def __init__(self, name: str, patterns: np.ndarray):
        super().__init__(name)
        self.patterns = patterns
        self.length = patterns.shape[1]

    @classmethod
    def from_spec(cls, name: str, spec: Criterion, setting: Setting) -> WindowPattern:
        pad = len(setting.token_index)
        index = {**setting.token_index, "*": ANY}
        rows = [[index.get(entry, pad) for entry in pattern.split()] for pattern in spec.windows]
        return cls(name, np.unique(np.array(rows, dtype=np.int64), axis=0))

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        """On the last ``k`` columns of ``extended``: some pattern agrees at every non-``*`` position."""
        w = extended[:, -self.length :].astype(np.int64)
        out = np.zeros(len(w), dtype=bool)
        for pattern in self.patterns:
            out |= np.all((pattern == ANY) | (w == pattern), axis=1)
        return out

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(PATTERNS, patterns=self.patterns)


@inline
def matches_jit(w, patterns, count):
    """Whether the row ``w`` matches one of the first ``count`` rows of ``patterns`` (ANY matches all)."""
    for m in range(count):
        found = True
        for j in range(len(w)):
            if patterns[m, j] != ANY and patterns[m, j] != w[j]:
                found = False
                break
        if found:
            return True
    return False


@inline
def patterns_read_jit(c, window, patterns, count, holding):
    """The compiled form on canonical windows."""
    for r in range(window.shape[0]):
        holding[c, r] = matches_jit(window[r], patterns, count)


@inline
def patterns_slide_jit(c, buf, end, length, patterns, count, holding):
    """The compiled form on a sliding buffer: the last ``k`` positions ``buf[r, end - k : end]``."""
    for r in range(buf.shape[0]):
        holding[c, r] = matches_jit(buf[r, end - length : end], patterns, count)


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


SET_FORMS = {key: cls for key, cls in FORMS.items() if cls is not Periodic}  # sets are predicates on page-states


class Combined(CriterionForm):
    """A named set made of earlier predicates (criteria, or sets declared before it): ``any_of``
    (the union: some member holds) or ``not`` (the complement of its one member). ``indices``
    are the members' rows among the engines' predicates (criteria, then sets), all before its own."""

    def __init__(self, name: str, members: list[CriterionForm], indices: list[int], negate: bool):
        super().__init__(name)
        self.members = members
        self.indices = np.array(indices, dtype=np.int64)
        self.negate = negate

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        out = np.zeros(len(extended), dtype=bool)
        for member in self.members:
            out |= member.holds(extended, amplitudes)
        return ~out if self.negate else out

    def observe(self, engine) -> np.ndarray:
        """The members' rows, settled already at this step (they come first)."""
        out = np.any(engine.holding[self.indices], axis=0)
        return ~out if self.negate else out

    def compiled_form(self) -> CompiledCriterion:
        return CompiledCriterion(COMBINED, members=self.indices, negate=self.negate)


@inline
def combined_jit(c, members, count, negate, holding):
    """The compiled form: the first ``count`` member rows of ``holding`` (settled before row ``c``), or'ed, negated."""
    for r in range(holding.shape[1]):
        found = False
        for m in range(count):
            if holding[members[m], r]:
                found = True
                break
        holding[c, r] = found != negate


def build_sets(sets: dict, criteria: dict[str, Criterion], compiled: list[CriterionForm], token_index: dict[str, int],
               labels: list[str], length: int) -> list[CriterionForm]:
    """Compile the scenario's named sets (``[sets.NAME]``), after the ``compiled`` criteria: each a
    criterion form's predicate under the set's name; ``criterion = "NAME"`` takes that absorption
    criterion's form; ``any_of``/``not`` combine criteria and sets declared before it."""
    setting = Setting(token_index, labels, length, 0)
    row = {c.name: i for i, c in enumerate(compiled)}
    tracked = list(compiled)
    out = []
    for name, spec in sets.items():
        if spec.form in ("any_of", "not"):
            names = spec.any_of if spec.form == "any_of" else [spec.not_]
            built = Combined(name, [tracked[row[n]] for n in names], [row[n] for n in names], spec.form == "not")
        else:
            source = criteria[spec.criterion] if spec.criterion is not None else spec
            built = FORMS[source.form].from_spec(name, source, setting)
        row[name] = len(tracked)
        tracked.append(built)
        out.append(built)
    return out
