"""The scenario file format: pydantic models, loading, ``--set`` overrides, one-line errors.

A scenario is a TOML file (read with :mod:`tomllib`) that declares a vocabulary ``T`` with a pad
token ``N``, a context window of length ``k`` with its deletion rule, simulacra (automata),
premises (mixture components ``mu_s`` with priors), populations of premises drawn from a
template, and named absorption criteria. Every key is documented in ``docs/scenarios.md``;
``ecology schema`` prints the JSON Schema generated from the models below.

Validation happens in two passes: pydantic checks types and ranges, then :func:`check` checks
the cross-references (tokens, states, cast members, labels). Either pass raises
:class:`ScenarioError`, whose message is one line: ``FILE: field.path: what is wrong; fix``.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
    model_validator,
)

from ecology.errors import ScenarioError, UnreadableInput
from ecology.fields import MAX_COUNT, Name, References, Strict, Token, pydantic_error, toml_repr
from ecology.io import safe
from ecology.kinds.criteria import FORMS, SET_FORMS
from ecology.kinds.deletion import RULES
from ecology.kinds.simulacra import KINDS
from ecology.lm import KINDS as MODEL_KINDS
from ecology.lm import load_model, model_file_keys, names_file


class Vocabulary(Strict):
    """``tokens``: the tokens that can be generated, in order; ``pad``: fills short windows;
    ``from_model``: a premise whose model's own vocabulary is the vocabulary (instead of
    ``tokens``; see :func:`resolve_text`)."""

    tokens: list[Token] | None = Field(None, min_length=1)
    pad: Token = "N"
    from_model: Name | None = Field(None, description="a premise whose language model's whole vocabulary is the "
                                    "vocabulary (a GGUF model's 49,152 tokens); instead of 'tokens'")

    @model_validator(mode="after")
    def _tokens_or_model(self) -> Vocabulary:
        if (self.tokens is None) == (self.from_model is None):
            raise ValueError("give exactly one of 'tokens' (a list) or 'from_model' (a premise with a language model)")
        return self


class Context(Strict):
    """The window: length ``k``, deletion rule, and the prompt that starts it (after pads)."""

    length: int = Field(ge=1, le=MAX_COUNT, description="k, the number of tokens the window holds")
    deletion: Literal[tuple(RULES)] = Field(
        "fifo", description="; ".join(f'"{name}": {rule.summary}' for name, rule in RULES.items()),
    )
    block: int | None = Field(None, ge=1, le=MAX_COUNT, description='B, tokens deleted at once by "block"')
    delimiter: Token | None = Field(None, description='the token that ends a message, for "message"')
    pinned: int = Field(0, ge=0, le=MAX_COUNT, description="the first m prompt tokens (a system prompt) are never deleted")
    reset: Token | None = Field(None, description="an end-of-text token: premises read only what follows its last occurrence")
    prompt: list[Token] = Field(default_factory=list)
    prompt_text: str | None = Field(None, description="the prompt as text, tokenised by the vocabulary's model "
                                    "(vocabulary.from_model, else the first premise whose model has a tokenizer); "
                                    "instead of 'prompt'")


class Sampling(Strict):
    """Sampling temperature: probabilities ``p^(1/T)`` renormalised; ``T = 0`` is greedy."""

    temperature: float = Field(1.0, ge=0.0)


ENGINES = ("compiled", "numpy")  # simulation engines (ecology.engine.compiled; numpy is the reference)


class RunSettings(Strict):
    steps: int = Field(200, ge=0, le=MAX_COUNT)
    replicates: int = Field(1000, ge=1, le=MAX_COUNT)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    engine: Literal[ENGINES] = Field(
        "compiled", description="simulation engine: 'compiled' (numba kernel; falls back to numpy where it cannot run "
        "the scenario) or 'numpy' (the reference); both give the same trajectories (flag --engine)")
    drift: bool = Field(False, description="record the exact expected one-step amplitude change (costs V re-reads per step)")
    max_memory_gib: float = Field(
        8.0, gt=0.0, description="refuse a simulation whose estimated memory exceeds this (GiB; flag --max-memory)")


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind", "automaton")
    return getattr(value, "kind", "automaton")


# The simulacrum kinds registered in ecology/kinds/simulacra.py, as one tagged union keyed by ``kind``.
SimulacrumSpec = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in KINDS.items())],  # noqa: UP007 (a union built at run time)
    Discriminator(_kind_of),
]

SIMULACRUM_KINDS = tuple(KINDS)
PARAMETERISED_KINDS = {name: cls.parameters for name, cls in KINDS.items() if cls.parameters}


class Turns(Strict):
    """How several cast members take turns: ``every = n`` tokens, or ``after = "<token>"``."""

    every: int | None = Field(None, ge=1, le=MAX_COUNT)
    after: Token | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Turns:
        if (self.every is None) == (self.after is None):
            raise ValueError("give exactly one of 'every' or 'after'")
        return self


class PremiseSpec(Strict):
    """A premise: its prior and either its cast (simulacrum names; for several, their turns) or a
    language model of the whole window (``model = {kind = ..., ...}``, see docs/models.md)."""

    prior: float = Field(gt=0.0)
    cast: list[Name] | None = Field(None, min_length=1)
    model: dict[str, Any] | None = Field(
        None, description="a language model as the premise's law: {kind = " + " | ".join(f'"{kind}"' for kind in MODEL_KINDS)
        + ", file = ..., ...}; file paths are relative to the scenario file")
    turns: Turns | None = None
    population: Name | None = Field(
        None, description="label to aggregate amplitude under (default: the premise name)"
    )

    @model_validator(mode="after")
    def _cast_or_model(self) -> PremiseSpec:
        if (self.cast is None) == (self.model is None):
            raise ValueError("give exactly one of 'cast' (simulacra) or 'model' (a language model)")
        if self.model is not None and self.turns is not None:
            raise ValueError("'turns' takes turns among cast members; a model premise has no cast")
        return self


class Distribution(Strict):
    """Where a population's parameter comes from.

    ``uniform`` (low, high), ``loguniform`` (low, high > 0), ``beta`` (a, b) or explicit
    ``values`` (cycled through ``count`` members).
    """

    kind: Literal["uniform", "loguniform", "beta", "values"]
    low: float | None = None
    high: float | None = None
    a: float | None = Field(None, gt=0.0)
    b: float | None = Field(None, gt=0.0)
    values: list[float] | None = None

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        need = {
            "uniform": ("low", "high"),
            "loguniform": ("low", "high"),
            "beta": ("a", "b"),
            "values": ("values",),
        }[self.kind]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.kind} needs {', '.join(missing)}")
        if self.kind in ("uniform", "loguniform") and not self.low < self.high:
            raise ValueError("needs low < high")
        if self.kind == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        if self.kind == "values" and not self.values:
            raise ValueError("values must not be empty")
        return self


class PopulationSpec(Strict):
    """``count`` premises built from ``template`` with ``parameter`` drawn from ``distribution``.

    The members share the label (the table's name) and split ``prior`` equally, or, with
    ``weights`` (a distribution of positive numbers), in proportion to weights drawn from it:
    member ``i`` gets ``prior * w_i / sum_j w_j``. ``draw = "quantiles"`` (default) takes each
    distribution's quantiles at ``(i + 1/2) / count``, which is deterministic (member ``i`` gets
    the ``i``-th quantile of both); ``"random"`` draws with the population's own ``seed``
    (the weights from an independent stream of the same seed).
    """

    prior: float = Field(gt=0.0)
    count: int = Field(ge=1, le=MAX_COUNT)
    template: SimulacrumSpec
    parameter: str
    distribution: Distribution
    weights: Distribution | None = None
    draw: Literal["quantiles", "random"] = "quantiles"
    seed: int = Field(0, ge=0, le=2**63 - 1)


class CriterionTable(Strict):
    """An ``[absorption.NAME]`` table: exactly one of the forms registered in
    :mod:`ecology.kinds.criteria` (their keys are added by :data:`Criterion` below)."""

    @model_validator(mode="after")
    def _one_form(self) -> CriterionTable:
        chosen = [key for key in FORMS if getattr(self, key) is not None]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of {', '.join(repr(k) for k in FORMS)}")
        FORMS[chosen[0]].validate_spec(self)
        own = set(FORMS[chosen[0]].fields)
        stray = [key for cls in FORMS.values() for key in cls.fields if key not in own and getattr(self, key) is not None]
        if stray:
            raise ValueError(f"{stray[0]!r} goes with {next(k for k, c in FORMS.items() if stray[0] in c.fields)!r}")
        return self

    @property
    def form(self) -> str:
        return next(key for key in FORMS if getattr(self, key) is not None)


Criterion = create_model(
    "Criterion", __base__=CriterionTable, __doc__=CriterionTable.__doc__,
    **{name: definition for cls in FORMS.values() for name, definition in cls.fields.items()},
)


class SetTable(Strict):
    """A ``[sets.NAME]`` table: a named set of page-states, for occupation (time spent in it) and
    hitting queries. Exactly one of ``criterion = "NAME"`` (the page-states where that
    ``[absorption.NAME]`` criterion holds), ``any_of = [NAMES]`` (the union of criteria and of
    sets declared before this one), ``not = "NAME"`` (the complement of one), or one criterion
    form (``windows``, ``window_only``, ``population``/``above``, ``repeats``; not ``periodic``,
    which looks at earlier page-states)."""

    criterion: Name | None = None
    any_of: list[Name] | None = Field(None, min_length=1, max_length=MAX_COUNT)
    not_: Name | None = Field(None, alias="not")

    REFERENCES: ClassVar[dict[str, str]] = {"criterion": "criterion", "any_of": "any_of", "not": "not_"}  # key -> attribute

    def _given(self, key: str):
        return getattr(self, self.REFERENCES.get(key, key))

    @model_validator(mode="after")
    def _one_form(self) -> SetTable:
        keys = [*self.REFERENCES, *SET_FORMS]
        chosen = [key for key in keys if self._given(key) is not None]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of {', '.join(repr(k) for k in keys)}")
        own = {chosen[0]} if chosen[0] in self.REFERENCES else set(SET_FORMS[chosen[0]].fields)
        stray = [key for cls in SET_FORMS.values() for key in cls.fields if key not in own and getattr(self, key) is not None]
        if stray:
            raise ValueError(f"{stray[0]!r} goes with {next(k for k, c in SET_FORMS.items() if stray[0] in c.fields)!r}")
        if chosen[0] not in self.REFERENCES:
            SET_FORMS[chosen[0]].validate_spec(self)
        return self

    @property
    def form(self) -> str:
        return next(key for key in [*self.REFERENCES, *SET_FORMS] if self._given(key) is not None)


NamedSet = create_model(
    "NamedSet", __base__=SetTable, __doc__=SetTable.__doc__,
    **{name: definition for cls in SET_FORMS.values() for name, definition in cls.fields.items()},
)


class SweepSpec(Strict):
    """A study declared in the file: ``grid`` maps dotted paths to lists or range strings
    (see ``ecology sweep``); ``zip`` lists groups of grid paths that move together (``--zip``);
    ``replicates`` and ``steps`` override ``[run]`` for the sweep."""

    grid: dict[str, list[Any] | str] = Field(default_factory=dict)
    zip: list[list[str]] = Field(default_factory=list, description="groups of grid paths whose values move together "
                                 "(the i-th values of each make one point); the grids of a group need equal lengths")
    replicates: int | None = Field(None, ge=1, le=MAX_COUNT)
    steps: int | None = Field(None, ge=0, le=MAX_COUNT)


class Scenario(Strict):
    name: Name
    description: str = ""
    vocabulary: Vocabulary
    context: Context
    sampling: Sampling = Field(default_factory=Sampling)
    run: RunSettings = Field(default_factory=RunSettings)
    simulacra: dict[Name, SimulacrumSpec] = Field(default_factory=dict)
    premises: dict[Name, PremiseSpec] = Field(default_factory=dict)
    populations: dict[Name, PopulationSpec] = Field(default_factory=dict)
    absorption: dict[Name, Criterion] = Field(default_factory=dict)
    sets: dict[Name, NamedSet] = Field(default_factory=dict)
    sweep: SweepSpec | None = None


# ---------------------------------------------------------------------------------------------
# Loading, overrides and the cross-reference checks


def _not_a_tag(loc: list[str], i: int) -> bool:
    """Whether ``loc[i]`` is a file key: a tagged union inserts its tag after the simulacrum (or
    template) key."""
    part = loc[i]
    return not (part in SIMULACRUM_KINDS and i > 0 and (loc[i - 1] == "template" or loc[i - 2 : i - 1] == ["simulacra"]))


def _pydantic_error(err: ValidationError) -> ScenarioError:
    return pydantic_error(err, keep=_not_a_tag)


NAMED_TABLES = {"simulacra": "simulacrum", "premises": "premise", "populations": "population",
                "absorption": "criterion", "sets": "set"}


def parse_value(text: str) -> Any:
    """Read an override value as TOML (``8``, ``0.5``, ``true``, ``"fifo"``, ``["F"]``); bare
    words fall back to strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


PRIOR_TABLES = ("premises", "populations")  # the tables whose entries carry a prior
ACTING_KEYS = ("weight", "odds")  # virtual keys of an entry: its acting prior as a probability, or its odds


def acting_key(path: str) -> str | None:
    """``"weight"`` or ``"odds"`` when ``path`` is a virtual path ``premises.NAME.weight``,
    ``populations.NAME.odds`` ... (see :func:`set_acting_priors`), else None."""
    keys = path.split(".")
    return keys[2] if len(keys) == 3 and keys[0] in PRIOR_TABLES and keys[2] in ACTING_KEYS else None


def written_priors(data: dict) -> dict[str, Any]:
    """The prior of every entry of a raw scenario table as written, keyed ``premises.NAME`` and
    ``populations.NAME`` (premises first, each in file order); values are as the table holds them
    (not yet validated)."""
    return {f"{table}.{name}": entry.get("prior") if isinstance(entry, dict) else None
            for table in PRIOR_TABLES for name, entry in (data.get(table) or {}).items()}


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def set_acting_priors(data: dict, acting: dict[str, Any]) -> dict:
    """Set the raw priors of a table so that entries get the acting (normalised) priors asked for.

    Priors act normalised: entry ``e`` (a premise, or a whole population) acts with
    ``pi_e = prior_e / sum_r prior_r``. ``premises.NAME.weight = W`` (``0 < W < 1``) asks for
    ``pi_NAME = W``; ``premises.NAME.odds = O`` (``O > 0``) for prior odds ``pi_NAME / (1 - pi_NAME) = O``,
    i.e. ``W = O / (1 + O)``. With ``A`` the entries so fixed and ``R = sum_{r not in A} prior_r``
    the written priors of the others (kept, so they keep their ratios and share ``1 - sum_A W_a``),
    each ``a`` in ``A`` gets the written prior ``prior_a = W_a R / (1 - sum_A W_a)``: then the sum of
    all priors is ``R / (1 - sum_A W_a)`` and ``pi_a = W_a`` exactly (up to rounding). For one entry
    fixed by odds, ``prior_a = O R``. ``R`` is formed as ``m * sum_r (prior_r / m)`` with
    ``m = max_r prior_r``, so large priors do not overflow in the sum. Where another prior is not
    yet a positive number, nothing is set: the validation that follows names that prior.
    """
    priors = written_priors(data)
    fixed: dict[str, tuple[float, float]] = {}  # entry -> (W, 1 - W)
    for path, value in acting.items():
        entry, key = path.rsplit(".", 1)
        if entry in fixed:
            raise ScenarioError(path, f"sets the acting prior of {entry} twice (weight and odds); give one of them")
        if key == "weight":
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
                raise ScenarioError(path, f"{toml_repr(value)} is not an acting prior: the weight is the normalised prior, "
                                    f"a number with 0 < W < 1 (e.g. {path}=0.9)")
            fixed[entry] = (float(value), 1.0 - value)
        else:
            if not _positive_number(value):
                raise ScenarioError(path, f"{toml_repr(value)} is not prior odds: odds against all other priors are a finite "
                                    f"number > 0 (e.g. {path}=9 for an acting prior of 0.9)")
            fixed[entry] = (value / (1.0 + value), 1.0 / (1.0 + value))
    others = [prior for entry, prior in priors.items() if entry not in fixed]
    if not others:
        raise ScenarioError(next(iter(acting)), "fixes the acting prior of every premise and population; the rest keep "
                            "their ratios, so leave at least one of them free (set its 'prior' instead)")
    share = next(iter(fixed.values()))[1] if len(fixed) == 1 else 1.0 - math.fsum(w for w, _ in fixed.values())
    if share <= 0:
        raise ScenarioError(next(iter(acting)), f"the acting priors fixed by weight/odds sum to "
                            f"{math.fsum(w for w, _ in fixed.values()):.6g}; they must sum to less than 1")
    if not all(_positive_number(prior) for prior in others):
        return data
    top = max(others)
    rest = math.fsum(prior / top for prior in others)
    for path in acting:
        entry = path.rsplit(".", 1)[0]
        prior = top * (fixed[entry][0] / share * rest)
        if not 0 < prior < math.inf:
            raise ScenarioError(path, f"the written prior that gives {entry} this acting prior ({prior:.3g}) is not a "
                                "positive double; rescale the other priors")
        table, name = entry.split(".")
        data[table][name]["prior"] = prior
    return data


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """Return a copy of the raw scenario table with each dotted path set to its value.

    Paths may create keys that the file omits (``sampling.temperature``), but not a new named
    entry (``premises.typo.prior`` when there is no premise ``typo``); whether the result is
    valid is decided by the validation that follows. The virtual paths ``premises.NAME.weight``
    and ``.odds`` (also of ``populations.NAME``) set the entry's acting prior; they are applied
    after every other path (so after the other priors), by :func:`set_acting_priors`.
    """
    data = copy.deepcopy(data)
    acting = {}
    for path, value in overrides.items():
        keys = path.split(".")
        if not all(keys):
            raise ScenarioError(path, "empty key in dotted path (--set)")
        if keys[0] in NAMED_TABLES and len(keys) > 2 and keys[1] not in (data.get(keys[0]) or {}):
            known = list(data.get(keys[0]) or {})
            raise ScenarioError(path, f"there is no {NAMED_TABLES[keys[0]]} {keys[1]!r} to set (--set); "
                                      f"{keys[0]} are {known}")
        if acting_key(path):
            if f"{keys[0]}.{keys[1]}.prior" in overrides:
                raise ScenarioError(path, f"{keys[0]}.{keys[1]}.prior is set too; give either the written prior or "
                                    f"its {keys[2]}, not both")
            if not isinstance(data[keys[0]][keys[1]], dict):
                raise ScenarioError(f"{keys[0]}.{keys[1]}", f"is a value, not a table: cannot set {path} (--set)")
            acting[path] = value
            continue
        node = data
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ScenarioError(
                    ".".join(keys[: i + 1]), f"is a value, not a table: cannot set {path} (--set)"
                )
            node = child
        if isinstance(node.get(keys[-1]), dict):
            raise ScenarioError(path, "is a table; --set takes a path to a scalar or list")
        node[keys[-1]] = value
    return set_acting_priors(data, acting) if acting else data


def validate(data: dict) -> Scenario:
    """Validate a raw table into a :class:`Scenario` (types, ranges, the text resolved by
    :func:`resolve_text`, then cross-references)."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise _pydantic_error(err) from None
    scenario = resolve_text(scenario)
    check(scenario)
    return scenario


PADS = ("N", "<pad>", "<|pad|>", "[PAD]", "<pad_token>")  # pads tried, in order, for a model's own vocabulary


def text_model(s: Scenario) -> tuple[str, Any] | None:
    """The premise whose model reads and writes text for the scenario (``vocabulary.from_model``,
    else the first premise whose model kind has a tokenizer) and that model, or None."""
    names = [s.vocabulary.from_model] if s.vocabulary.from_model else list(s.premises)
    for name in names:
        premise = s.premises.get(name)
        spec = premise.model if premise is not None else None
        kind = MODEL_KINDS.get(spec.get("kind")) if isinstance(spec, dict) else None
        if kind is not None and kind.has_text:
            return name, kind
    return None


def resolve_text(s: Scenario) -> Scenario:
    """Fill what a scenario states as text from its model's tokenizer: the tokens of
    ``vocabulary.from_model`` (its pad, when not given, the first of :data:`PADS` outside them)
    and the prompt of ``context.prompt_text``. The resolved copy keeps the text
    (:func:`to_table`)."""
    vocabulary, ctx = s.vocabulary, s.context
    if vocabulary.from_model is None and ctx.prompt_text is None:
        return s
    found = text_model(s)
    tokens, pad = vocabulary.tokens, vocabulary.pad
    if vocabulary.from_model is not None:
        name = vocabulary.from_model
        if name not in s.premises or s.premises[name].model is None:
            raise ScenarioError("vocabulary.from_model", f"{name!r} is not a premise with a model; name a premise "
                                "whose model = {kind = \"gguf\", ...}")
        if found is None:
            kind = s.premises[name].model.get("kind")
            raise ScenarioError("vocabulary.from_model", f"the model of premises.{name} (kind {kind!r}) has no "
                                "vocabulary of its own; list vocabulary.tokens")
        tokens = found[1].model_vocabulary(s.premises[name].model, ".", f"premises.{name}.model")
        if pad in tokens:
            if "pad" in vocabulary.model_fields_set:
                raise ScenarioError("vocabulary.pad", f"pad {pad!r} is a token of the model; choose a pad "
                                    "outside its vocabulary, or leave it out")
            pad = next((p for p in PADS if p not in tokens), "<ecology-pad>")
    prompt = ctx.prompt
    if ctx.prompt_text is not None:
        if ctx.prompt:
            raise ScenarioError("context.prompt_text", "give either 'prompt' (tokens) or 'prompt_text' (text), not both")
        if found is None:
            raise ScenarioError("context.prompt_text", "no premise has a model with a tokenizer (kind \"gguf\"); "
                                "write the prompt as tokens (context.prompt)")
        name, kind = found
        spelled = kind.tokenize(s.premises[name].model, ".", f"premises.{name}.model", ctx.prompt_text)
        ids = kind.token_index(s.premises[name].model, ".", f"premises.{name}.model", tokens)
        prompt = []
        for model_id, spelling in spelled:
            if model_id not in ids:
                raise ScenarioError("context.prompt_text", f"the text's token {spelling!r} (tokenised by the model of "
                                    f"premises.{name}) is not in the vocabulary; use text made of vocabulary tokens")
            prompt.append(tokens[ids[model_id]])
    return s.model_copy(update={"vocabulary": vocabulary.model_copy(update={"tokens": tokens, "pad": pad}),
                                "context": ctx.model_copy(update={"prompt": prompt})})


MAX_FILE_BYTES = 16 * 2**20  # a scenario is a small text file; anything larger is a mistake
MAX_DEPTH = 24  # tables and lists nested deeper than this are not a scenario


def _depth(value: Any) -> int:
    """Nesting depth of a parsed TOML value (iterative: a hostile file cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def validate_sweep(data: Any) -> SweepSpec | None:
    """Validate a ``[sweep]`` table on its own (as strictly as the rest: unknown keys are errors)."""
    if data is None:
        return None
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        inner = _pydantic_error(err)
        raise ScenarioError(f"sweep.{inner.path}" if inner.path else "sweep", inner.message) from None


def read_toml(path: str | Path) -> dict:
    """Parse a scenario file: a regular UTF-8 file of at most ``MAX_FILE_BYTES`` holding TOML
    nested at most ``MAX_DEPTH`` deep. Opened without blocking, so a FIFO or a device is refused
    instead of hanging or filling memory."""
    where = str(path)
    try:
        raw = safe.read_regular_file(path, MAX_FILE_BYTES, "a scenario file")
    except UnreadableInput as err:
        raise ScenarioError("", err.reason, where) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError("", f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); save it as UTF-8",
                            where) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError("", f"not valid TOML: {err}", where) from None
    except RecursionError:
        raise ScenarioError("", f"nested more than {MAX_DEPTH} levels deep; not a scenario", where) from None
    if _depth(data) > MAX_DEPTH:
        raise ScenarioError("", f"nested more than {MAX_DEPTH} levels deep; not a scenario", where)
    return data


def anchor_model_files(data: dict, base: Path) -> dict:
    """The raw table with the file names of premises' models (the values of the registered
    kinds' file keys that name files, :func:`ecology.lm.names_file`: not ``text = "pydoc"``) made absolute
    relative to ``base`` (the scenario file's folder), so the scenario means the same from any working directory and
    in the resolved copy written with results."""
    premises = data.get("premises")
    if not isinstance(premises, dict):
        return data
    data = copy.deepcopy(data)
    for premise in data["premises"].values():
        model = premise.get("model") if isinstance(premise, dict) else None
        if not isinstance(model, dict):
            continue
        kind = MODEL_KINDS.get(model.get("kind")) if isinstance(model.get("kind"), str) else None
        for key in kind.file_keys if kind is not None else model_file_keys():
            name = model.get(key)
            if isinstance(name, str) and name and (kind.names_file(key, name) if kind is not None else names_file(key, name)):
                model[key] = str((base / name).resolve()) if not Path(name).is_absolute() else name
    return data


def read_scenario_table(path: str | Path) -> dict:
    """A scenario file's raw table (:func:`read_toml`) with its model file names anchored to the
    file's folder (:func:`anchor_model_files`)."""
    return anchor_model_files(read_toml(path), Path(path).parent)


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file; errors name the file. Model file names in
    the file are relative to it (:func:`anchor_model_files`); those given in ``overrides`` are
    relative to the working directory."""
    data = read_scenario_table(path)
    try:
        return validate(apply_overrides(data, overrides or {}))
    except ScenarioError as err:
        raise err.located(str(path)) from None


def to_table(scenario: Scenario, text: bool = True) -> dict:
    """The scenario as a plain table. ``text``: as written (the resolved copy written next to
    results): what :func:`resolve_text` derived from ``vocabulary.from_model`` and
    ``context.prompt_text`` is left out, the text kept; else the derived tokens are kept and the
    text left out (for a table whose premises or prompt are then replaced)."""
    table = scenario.model_dump(mode="json", exclude_none=True, by_alias=True)
    derived = (("vocabulary", "tokens", "from_model", scenario.vocabulary.from_model),
               ("context", "prompt", "prompt_text", scenario.context.prompt_text))
    for section, tokens, source, value in derived:
        if value is not None:
            del table[section][tokens if text else source]
    return table


def schema() -> dict:
    return Scenario.model_json_schema()


def check(s: Scenario) -> None:
    """Cross-reference checks that pydantic's per-field validation cannot express."""
    tokens = s.vocabulary.tokens
    pad = s.vocabulary.pad
    if len(set(tokens)) != len(tokens):
        dup = next(t for t in tokens if tokens.count(t) > 1)
        raise ScenarioError("vocabulary.tokens", f"token {dup!r} is listed twice")
    if pad in tokens:
        raise ScenarioError("vocabulary.pad", f"pad {pad!r} is also a token; choose a pad outside the vocabulary")
    refs = References(tokens, pad)
    token = refs.token

    ctx = s.context
    for i, t in enumerate(ctx.prompt):
        token(f"context.prompt[{i}]", t)
    RULES[ctx.deletion].check(ctx)
    for key in ("delimiter", "reset"):
        if getattr(ctx, key) is not None:
            token(f"context.{key}", getattr(ctx, key))
    if ctx.pinned > len(ctx.prompt) or (ctx.pinned and ctx.pinned >= ctx.length):
        raise ScenarioError("context.pinned", f"pins {ctx.pinned} tokens: needs a prompt at least that long and a longer window")

    for name, spec in s.simulacra.items():
        spec.check(f"simulacra.{name}", refs)

    if not s.premises and not s.populations:
        raise ScenarioError("premises", "no premises: declare at least one [premises.NAME] or [populations.NAME]")
    labels: set[str] = set()
    for name, premise in s.premises.items():
        if premise.model is not None:
            check_model(f"premises.{name}.model", premise.model, s)
        for i, member in enumerate(premise.cast or ()):
            if member not in s.simulacra:
                raise ScenarioError(
                    f"premises.{name}.cast[{i}]",
                    f"unknown simulacrum {member!r}; declared simulacra are {list(s.simulacra)}",
                )
        if premise.turns is not None and premise.turns.after is not None:
            token(f"premises.{name}.turns.after", premise.turns.after)
        labels.add(premise.population or name)
    for name, premise in s.premises.items():
        label = premise.population or name
        if label != name and label in s.premises and (s.premises[label].population or label) == label:
            raise ScenarioError(f"premises.{name}.population", f"label {label!r} is also a premise's own name; a label "
                                "equal to a premise name must hold that premise alone (columns are named after both)")
    for name, pop in s.populations.items():
        path = f"populations.{name}"
        pop.template.check(f"{path}.template", refs)
        kind = _kind_of(pop.template)
        allowed = PARAMETERISED_KINDS.get(kind, ())
        if pop.parameter not in allowed:
            raise ScenarioError(
                f"{path}.parameter",
                f"{pop.parameter!r} is not a numeric parameter of kind {kind!r}; use one of {list(allowed)}",
            )
        d = pop.distribution
        bounds = d.values if d.kind == "values" else [d.low, d.high] if d.kind != "beta" else []
        if any(not 0.0 <= v <= 1.0 for v in bounds):
            raise ScenarioError(f"{path}.distribution", f"{pop.parameter!r} is a probability: its values must lie in [0, 1]")
        w = pop.weights
        if w is not None:
            if (w.kind == "values" and min(w.values) <= 0) or (w.kind == "uniform" and w.low < 0):
                raise ScenarioError(f"{path}.weights", "weights are relative priors: values must be > 0 (uniform: low >= 0)")
        if name in s.premises:
            raise ScenarioError(path, f"a premise is also named {name!r}; population names must differ from premise names")
        labels.add(name)
    for name, crit in s.absorption.items():
        FORMS[crit.form].check(f"absorption.{name}", crit, refs, labels, ctx.length)
    for name, spec in s.sets.items():
        check_set(f"sets.{name}", name, spec, s, refs, labels)
    if not math.isfinite(s.sampling.temperature):
        raise ScenarioError("sampling.temperature", "must be finite")


def check_set(path: str, name: str, spec, s: Scenario, refs: References, labels: set[str]) -> None:
    """A ``[sets.NAME]`` table against the scenario: its name is not a criterion's (sets and
    criteria share the names of ``--hit``, ``--occupation`` and the output columns), its
    ``criterion`` names an absorption criterion that is a set of page-states, its form's own
    cross-references hold."""
    if name in s.absorption:
        raise ScenarioError(path, f"an absorption criterion is also named {name!r}; sets and criteria share one "
                            f"namespace: rename the set, or define it as criterion = {name!r} under another name")
    if spec.form in ("any_of", "not"):
        names = spec.any_of if spec.form == "any_of" else [spec.not_]
        earlier = list(s.sets)[: list(s.sets).index(name)]
        for i, member in enumerate(names):
            where = f"{path}.any_of[{i}]" if spec.form == "any_of" else f"{path}.not"
            if member not in s.absorption and member not in earlier:
                raise ScenarioError(where, f"unknown criterion or set {member!r}; a combination names absorption criteria "
                                    f"{list(s.absorption)} or sets declared before it {earlier}")
            if member in s.absorption and s.absorption[member].form not in SET_FORMS:
                raise ScenarioError(where, f"criterion {member!r} is 'periodic', which compares the page-state with "
                                    "earlier ones: not a set of page-states")
        return
    if spec.criterion is None:
        SET_FORMS[spec.form].check(path, spec, refs, labels, s.context.length)
        return
    if spec.criterion not in s.absorption:
        raise ScenarioError(f"{path}.criterion", f"unknown absorption criterion {spec.criterion!r}; criteria are "
                            f"{list(s.absorption)}")
    if s.absorption[spec.criterion].form not in SET_FORMS:
        raise ScenarioError(f"{path}.criterion", f"criterion {spec.criterion!r} is 'periodic', which compares the "
                            "page-state with earlier ones: not a set of page-states; use windows or repeats")


def check_model(path: str, spec: dict, s: Scenario) -> None:
    """Load a premise's model (cached; see :func:`ecology.lm.load_model`) and check that it can
    read the scenario's windows: a model with a bounded context must hold ``context.length``."""
    model = load_model(spec, list(s.vocabulary.tokens), ".", path)
    limit = model.max_length()
    if limit is not None and s.context.length > limit:
        raise ScenarioError("context.length", f"{s.context.length} is longer than the context of the model of "
                            f"{path.rsplit('.', 1)[0]} ({limit} tokens); use a context length of at most {limit}")
    if limit is not None and not RULES[s.context.deletion].deletes_oldest and len(s.context.prompt) + s.run.steps > limit:
        grown = len(s.context.prompt) + s.run.steps
        raise ScenarioError("context.deletion", f"'{s.context.deletion}' grows the window to {grown} tokens "
                            f"in {s.run.steps} steps, longer than the context of the model of {path.rsplit('.', 1)[0]} "
                            f"({limit} tokens); use a deleting rule or at most {limit - len(s.context.prompt)} steps")
