"""Building blocks shared by the scenario format and its extension points: the one-line user
errors, the strict pydantic base, the name, token and probability types, and the checker of
references to the vocabulary that every kind uses in its own validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ecology.errors import ScenarioError

PROBABILITY_TOLERANCE = 1e-9  # a declared law must sum to 1 within this


GIB = 2**30  # bytes in a gibibyte, the unit of every memory budget
MAX_COUNT = 2**53  # every count stays an exact int64 (the budgets bound memory far below it)


class Strict(BaseModel):
    """Strict validation: no coercion (``true`` is not 1, ``"4"`` is not 4), no NaN or infinity,
    no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def toml_repr(value: Any) -> str:
    """A value as it would be written in TOML (for error messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return "a table" if isinstance(value, dict) else "a list"
    return repr(value)


UNKNOWN_KEY = "unknown key; see docs/scenarios.md or `ecology schema` for the keys allowed here"


def pydantic_error(err: ValidationError, prefix: str = "", unknown_key: str = UNKNOWN_KEY,
                   keep: Callable[[list[str], int], bool] | None = None) -> ScenarioError:
    """The first error of ``err`` as one :class:`ScenarioError`: the dotted path of the field
    (``prefix`` first, then pydantic's location, without the parts ``keep(location, i)`` refuses,
    e.g. a tagged union's tag) and a message that says what to write: ``unknown_key`` for a key
    the model forbids, the value as TOML writes it for a wrong type or a non-finite number."""
    first = err.errors()[0]
    loc = [str(x) for x in first["loc"]]
    parts = [part for i, part in enumerate(loc) if keep is None or keep(loc, i)]
    is_key = parts[-1:] == ["[key]"]
    path = ".".join(parts[:-2] if is_key else parts)
    kind = first["type"]
    msg = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if kind == "extra_forbidden":
        msg = unknown_key
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "union_tag_invalid":
        tags = str(first.get("ctx", {}).get("expected_tags", "")).replace("'", "")
        msg = f"unknown kind {value.get('kind')!r}; use one of {tags}"
    elif kind == "string_pattern_mismatch" and "A-Za-z0-9_" in str(first.get("ctx", {}).get("pattern")):
        msg = f"name {value!r} is not allowed: names use {NAME_RULE}"
    elif kind == "string_pattern_mismatch" or (kind == "string_too_long" and "64" in msg):
        msg = f"token {value!r} is not allowed: {TOKEN_RULE}"
    elif kind == "finite_number":
        msg = f"must be a finite number, got {toml_repr(value)}"
    elif kind == "literal_error" or kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        msg = f"{msg}, got {toml_repr(value)}"
    elif kind.endswith("_type") or kind == "int_from_float":
        hint = {"bool_type": "true or false", "int_type": "a whole number", "int_from_float": "a whole number",
                "float_type": "a number", "string_type": "a quoted string"}.get(kind)
        msg = f"{msg}, got {toml_repr(value)}" + (f"; write {hint} (values are never converted)" if hint else "")
    if is_key:
        key = parts[-2] if parts[-2].isprintable() else repr(parts[-2])
        path = f"{path}.{key}" if path else key
    path = ".".join(part for part in (prefix, path) if part)
    return ScenarioError(path, msg)


NAME_RULE = "letters, digits, '_' and '-', starting with a letter, digit or '_', at most 64 characters"


# Names become file names (runs/NAME-..., plot files named after criteria and labels) and the
# segments of dotted --set paths, so they are one safe path component without dots.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]


TOKEN_RULE = "tokens are 1 to 64 printable characters without whitespace"


def _printable(token: str) -> str:
    """Refuse invisible or layout characters (zero-width spaces, direction overrides, ...),
    which ``str.isprintable`` rejects along with control characters."""
    if not token.isprintable() or any(c.isspace() for c in token):
        raise ValueError(f"token {token!r} is not allowed: {TOKEN_RULE}")
    return token


# Tokens: printable, no whitespace (page-state labels separate tokens by spaces).
Token = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$"),
                  AfterValidator(_printable)]


Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class References:
    """Checks a scenario's references to its vocabulary (tokens, laws over tokens)."""

    def __init__(self, tokens: list[str], pad: str):
        self.tokens = tokens
        self.pad = pad
        self.known = set(tokens)

    def token(self, path: str, t: str, what: str = "token") -> None:
        if t == self.pad:
            raise ScenarioError(path, f"the pad {self.pad!r} is never generated or observed; use a vocabulary token")
        if t not in self.known:
            raise ScenarioError(path, f"unknown {what} {t!r}; the vocabulary is {self.tokens}")

    def law(self, path: str, probs: dict[str, float]) -> None:
        for t in probs:
            self.token(f"{path}.{t}", t)
        total = sum(probs.values())
        if abs(total - 1.0) > PROBABILITY_TOLERANCE:
            raise ScenarioError(path, f"probabilities sum to {total:.12g}, not 1")
