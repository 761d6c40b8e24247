"""Building blocks shared by the scenario format and its extension points: the one-line user
errors, the strict pydantic base, the name, token and probability types, and the checker of
references to the vocabulary that every kind uses in its own validation."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ecology.errors import ScenarioError

PROBABILITY_TOLERANCE = 1e-9  # a declared law must sum to 1 within this


MAX_COUNT = 2**53  # every count stays an exact int64 (the budgets bound memory far below it)


class Strict(BaseModel):
    """Strict validation: no coercion (``true`` is not 1, ``"4"`` is not 4), no NaN or infinity,
    no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


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
