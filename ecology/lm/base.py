"""What every language model of :mod:`ecology.lm` is: the reading protocol and the shared helpers.

Tokens are integers ``0 .. V-1`` in the order of the vocabulary ``tokens``; the pad is ``V``.
Windows are canonical (pads first, then tokens, oldest first; see :mod:`ecology.core.windows`).
For a window whose non-pad tokens are ``w_1 .. w_m`` every model computes, in log space,

    log_likelihood(w) = sum_{i=1..m} log mu(w_i | w_1 .. w_{i-1})    (empty context for i = 1)
    next_log_probs(w) = log mu(. | w_1 .. w_m)

so a window is read from its first non-pad token as if the storyline began there, the same
convention as automaton premises (:mod:`ecology.kinds.simulacra`). A token of probability zero
gives ``-inf`` (the mixture handles it); no window gives NaN.

Temperature is NOT applied here: the mixture tempers the mixed law (``p^(1/T)``, i.e. logits / T
for a single model), exactly as for automaton premises.

Every model reads a batch of windows at once; identical windows are read once
(:func:`unique_rows`) and identical contexts are looked up once. Two families share the reading
loop: :class:`ContextModel` (the law is a function of an integer code of the context: table,
n-gram) and :class:`SequenceModel` (one causal pass over ``[start] + w_1 .. w_m``: transformer,
ONNX). A concrete model class is also its *kind*: it names the keys of its scenario table
``model = {kind = ..., ...}`` in a pydantic model (its ``spec_model``), which validates the table,
and builds itself from the validated table (:meth:`LanguageModel.build`);
:mod:`ecology.lm.registry` holds the registered kinds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import ValidationError

from ecology.errors import ScenarioError
from ecology.fields import Strict, pydantic_error

CODE_BITS = 62  # integer codes of token sequences stay below 2**62


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z - log sum exp z`` along the last axis; rows of ``-inf`` stay ``-inf`` (no NaN); a
    logit more than a double's range below the top one is ``-inf`` (probability 0, no warning)."""
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(over="ignore"):
        shifted = logits - top
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def unique_rows(windows: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``windows`` (digits ``< base``) and the index of each row among them.

    Rows are encoded as base-``base`` integers when they fit in 62 bits (a fast 1-d unique),
    and compared as raw rows otherwise.
    """
    length = windows.shape[1]
    if length * math.log2(base) < CODE_BITS:
        codes = windows.astype(np.int64) @ (base ** np.arange(length - 1, -1, -1, dtype=np.int64))
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return windows[first], inverse.ravel()
    distinct, inverse = np.unique(windows, axis=0, return_inverse=True)
    return distinct, inverse.ravel()


def canonical(windows: np.ndarray, pad: int) -> np.ndarray:
    """The windows with their non-pad tokens moved after the pads, order kept (stable)."""
    real = windows != pad
    if not np.any(real[:, :-1] & ~real[:, 1:]):
        return windows
    order = np.argsort(real, axis=1, kind="stable")
    return np.take_along_axis(windows, order, axis=1)


class LanguageModel:
    """A language model over the scenario's vocabulary ``tokens`` (see module docstring).

    A registered subclass (:func:`ecology.lm.registry.register`) is a model kind and sets
    ``kind`` (its name in ``model = {kind = ...}``), ``spec_model`` (the pydantic model of its
    table: the keys allowed, ``kind`` included, their types, ranges and defaults; ``keys`` is set
    from it when the kind is registered), ``file_keys`` (those of them that name files: anchored
    to the scenario's folder, and part of the load cache's key) and ``docs_row`` (its row in
    docs/models.md's table of kinds: the dict, then notes, separated by `` | ``), and implements
    :meth:`from_spec`.
    """

    kind: ClassVar[str] = ""
    spec_model: ClassVar[type[Strict]] = Strict
    keys: ClassVar[frozenset[str]] = frozenset()  # the fields of spec_model (set by register)
    file_keys: ClassVar[tuple[str, ...]] = ("file",)
    docs_row: ClassVar[str] = ""
    has_text: ClassVar[bool] = False  # the kind has a tokenizer: the three class methods below

    @classmethod
    def model_vocabulary(cls, spec: dict, base: Path, field: str) -> list[str]:
        """The model's own tokens, in its order (``vocabulary = {from_model = ...}``)."""
        raise NotImplementedError

    @classmethod
    def tokenize(cls, spec: dict, base: Path, field: str, text: str) -> list[tuple[int, str]]:
        """``text`` as the model's tokens: (model id, the token's spelling) in order."""
        raise NotImplementedError

    @classmethod
    def token_index(cls, spec: dict, base: Path, field: str, tokens: list[str]) -> dict[int, int]:
        """The index in ``tokens`` (a scenario vocabulary) of each model id it holds."""
        raise NotImplementedError

    @classmethod
    def validated(cls, spec: dict, field: str) -> Strict:
        """``spec`` validated by :attr:`spec_model`; its first error is one line naming
        ``field.<key>`` and what to write."""
        try:
            return cls.spec_model.model_validate(spec)
        except ValidationError as err:
            allowed = f"unknown key for kind '{cls.kind}'; allowed: {sorted(cls.keys)} (see docs/models.md)"
            error = pydantic_error(err, field, unknown_key=allowed)
            first = err.errors()[0]
            described = cls.spec_model.model_fields.get(str(first["loc"][-1])) if first["loc"] else None
            if first["type"] == "missing" and described is not None and described.description:
                error = ScenarioError(error.path, f"{error.message}; give {described.description}")
            raise error from None

    @classmethod
    def build(cls, spec: dict, tokens: list[str], base: Path, field: str) -> LanguageModel:
        """The model of the table ``spec`` over ``tokens``, files relative to ``base``: ``spec``
        validated (:meth:`validated`), then :meth:`from_spec`; a bad value raises a
        :class:`ScenarioError` naming ``field.<key>``."""
        return cls.from_spec(cls.validated(spec, field), tokens, base, field)

    @classmethod
    def from_spec(cls, spec, tokens: list[str], base: Path, field: str) -> LanguageModel:
        """The model of the validated table ``spec`` (an instance of :attr:`spec_model`): what the
        types cannot say (files, tokens of the vocabulary) is checked here."""
        raise NotImplementedError

    @classmethod
    def names_file(cls, key: str, value: str) -> bool:
        """Whether ``value`` under ``key`` in this kind's table names a file (not a built-in name)."""
        return key in cls.file_keys

    def __init__(self, tokens: list[str], source: str, field: str = "model"):
        self.tokens = list(tokens)
        self.source = source  # the file, as named in error messages
        self.field = field  # the scenario field path of the model table, for error messages

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def error(self, message: str, key: str = "file") -> ScenarioError:
        return ScenarioError(f"{self.field}.{key}", f"{self.source}: {message}")

    def read(self, windows: np.ndarray, likelihood: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(log_likelihood (B,), next_log_probs (B, V))`` of a batch of windows (B, L).

        ``likelihood = False`` (a single premise, whose amplitude is 1 whatever its likelihood):
        the next-token law is still required, the likelihood is computed where the model knows
        every conditional it needs and NaN (unknown) elsewhere (:meth:`read_distinct_partial`)."""
        windows = np.asarray(windows)
        if windows.ndim != 2:
            raise ValueError(f"windows must be a (B, L) array, got shape {windows.shape}")
        if windows.size and (windows.min() < 0 or windows.max() > self.n_tokens):
            raise ValueError(f"window entries must lie in 0 .. {self.n_tokens} (the pad)")
        if windows.shape[0] == 0:
            return np.zeros(0), np.zeros((0, self.n_tokens))
        distinct, inverse = unique_rows(canonical(windows, self.n_tokens), self.n_tokens + 1)
        loglik, next_logp = self.read_distinct(distinct) if likelihood else self.read_distinct_partial(distinct)
        return loglik[inverse], next_logp[inverse]

    def read_distinct(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read` on distinct canonical windows."""
        raise NotImplementedError

    def read_distinct_partial(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read` on distinct canonical windows with the likelihood optional (NaN where
        unknown); default: the whole read (a model that knows every conditional)."""
        return self.read_distinct(windows)

    @property
    def n_parameters(self) -> int | None:
        """Free parameters of the model (for model comparison); ``None`` when not knowable."""
        return None

    def max_length(self) -> int | None:
        """The longest context the model accepts (``None``: no limit)."""
        return None

    def read_cost(self, length: int) -> float:
        """Elementary operations of reading one window of ``length`` positions (an upper-bound
        estimate for the budgets of :mod:`ecology.core.budget`): a law of ``V`` entries per
        position (a context model reads one law, after the window, and one conditional per
        position: :meth:`ContextModel.read_cost`)."""
        return 64.0 * (length + 1) * (self.n_tokens + 1)

    def step_cost(self, length: int, grew: bool) -> float:
        """Elementary operations of one simulation step on one replicate's window of ``length``
        tokens; ``grew``: the window only gained a token since the last read (a model that caches
        its reads pays one token then). Default: a whole read."""
        return self.read_cost(length)

    def memory_bytes(self, replicates: int, length: int) -> float:
        """Memory the model holds to read ``replicates`` windows of ``length`` tokens, beyond the
        law arrays every premise has (weights, caches); default none."""
        return 0.0

    def context_text(self, window: np.ndarray, upto: int) -> str:
        """The non-pad tokens of ``window[:upto]`` as the table writes them (space-separated)."""
        return " ".join(self.tokens[t] for t in window[:upto] if t != self.n_tokens)


# ---------------------------------------------------------------------------------------------
# Context models: the law depends on a finite code of the context (table, n-gram)


class ContextModel(LanguageModel):
    """A model whose law ``mu(. | h)`` is a function of an integer code of the context ``h``.

    Codes are base-``(V + 1)`` numbers whose digits are ``token + 1`` (0 = no token), so contexts
    of different lengths have different codes. Reading a window computes the code before each
    token and after the last one; the law after the whole window is asked of :meth:`laws` once
    per distinct window (a (W, V) array), and the likelihood is the sum of the conditionals
    ``log mu(w_i | w_<i)`` of the window's tokens, asked of :meth:`conditionals` one per token
    (never a whole law per prefix: with a large vocabulary that would be (W L, V) numbers).
    """

    def read_cost(self, length: int) -> float:
        """A code and a search per position, and one law of ``V`` entries (class docstring)."""
        return 64.0 * (length + 1 + self.n_tokens + 1)

    def extend(self, code: np.ndarray, token: np.ndarray) -> np.ndarray:
        """The code of the context followed by ``token`` (one per row)."""
        raise NotImplementedError

    def laws(self, codes: np.ndarray, where) -> np.ndarray:
        """(C, V) log-probabilities of the next token after each context code. ``where(i)`` gives
        ``(window, position)`` of a place where the context of ``codes[i]`` occurs, to name it."""
        raise NotImplementedError

    def conditionals(self, codes: np.ndarray, tokens: np.ndarray, where) -> np.ndarray:
        """(N,) ``log mu(tokens[i] | context of codes[i])``, bit for bit the entries of
        :meth:`laws` (default: taken from them); ``where`` as for :meth:`laws`."""
        distinct, inverse = np.unique(codes, return_inverse=True)
        first = np.zeros(len(distinct), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(codes))[::-1]
        return self.laws(distinct, lambda i: where(int(first[i])))[inverse.ravel(), tokens]

    def known(self, codes: np.ndarray) -> np.ndarray:
        """Whether the model has a law after each context code (default: every context)."""
        return np.ones(len(codes), dtype=bool)

    def read_distinct(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.read_codes(windows, partial=False)

    def read_distinct_partial(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.read_codes(windows, partial=True)

    def read_codes(self, windows: np.ndarray, partial: bool) -> tuple[np.ndarray, np.ndarray]:
        """The read of the class docstring; ``partial``: the laws after the windows are required,
        the conditionals after their prefixes (the likelihood's) only where :meth:`known` (the
        likelihood is NaN elsewhere)."""
        rows, length = windows.shape
        pad = self.n_tokens
        codes = np.zeros((rows, length + 1), dtype=np.int64)
        code = np.zeros(rows, dtype=np.int64)
        for p in range(length):
            codes[:, p] = code
            token = windows[:, p].astype(np.int64)
            code = np.where(token == pad, code, self.extend(code, np.minimum(token, pad - 1)))
        codes[:, length] = code
        final, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        laws = self.laws(final, lambda i: (windows[first[i]], length))[inverse.ravel()]
        row, position = np.nonzero(windows != pad)
        contexts, tokens = codes[row, position], windows[row, position].astype(np.int64)
        usable = self.known(contexts) if partial else np.ones(len(contexts), dtype=bool)
        picked = np.flatnonzero(usable)
        per_token = np.zeros((rows, length))
        per_token[row, position] = np.nan
        per_token[row[picked], position[picked]] = self.conditionals(
            contexts[picked], tokens[picked], lambda i: (windows[row[picked[i]]], position[picked[i]]))
        return per_token.sum(axis=1), laws


def encode_contexts(contexts: list[list[int]], base: int) -> np.ndarray:
    """Codes of token lists (digits ``t + 1`` in base ``base``), see :class:`ContextModel`."""
    out = np.zeros(len(contexts), dtype=np.int64)
    for i, context in enumerate(contexts):
        for t in context:
            out[i] = out[i] * base + t + 1
    return out


# ---------------------------------------------------------------------------------------------
# Models run on whole sequences: transformer (numpy) and ONNX


class SequenceModel(LanguageModel):
    """A causal model run on ``[start] + w_1 .. w_m``: one forward pass gives the law after every
    prefix, hence the likelihood's conditionals and the next-token law at once. Windows are
    grouped by their number of non-pad tokens ``m`` so each batch is dense (no padding mask)."""

    batch = 4096  # sequences per forward call

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """(B, m + 1) start-prefixed token ids -> (B, m + 1, V) log-probabilities of the next token."""
        raise NotImplementedError

    def read_distinct(self, windows):
        rows, length = windows.shape
        pad = self.n_tokens
        limit = self.max_length()
        counts = np.sum(windows != pad, axis=1)
        if limit is not None and counts.max() > limit:
            raise self.error(f"a window holds {counts.max()} tokens but the model's context is {limit}; "
                             f"use a context length of at most {limit}")
        loglik = np.zeros(rows)
        next_logp = np.empty((rows, self.n_tokens))
        for m in np.unique(counts):
            group = np.flatnonzero(counts == m)
            tokens = windows[group, length - m :].astype(np.int64)
            for lo in range(0, len(group), self.batch):
                part = tokens[lo : lo + self.batch]
                logp = self.forward(part)
                picked = np.take_along_axis(logp[:, :m, :], part[:, :, None], axis=2)[:, :, 0]
                loglik[group[lo : lo + self.batch]] = picked.sum(axis=1)
                next_logp[group[lo : lo + self.batch]] = logp[:, m, :]
        return loglik, next_logp


# ---------------------------------------------------------------------------------------------
# Reading a kind's table


def resolve(name: str, key: str, base: Path, field: str) -> Path:
    """The existing regular file ``base / name`` (named under ``key``; a FIFO, a device or a
    folder is refused: reading one would block or never end)."""
    path = Path(base) / name
    if not path.is_file():
        where = "" if Path(name).is_absolute() else f" (looked for {path})"
        what = "not a regular file" if path.exists() else "no such file"
        raise ScenarioError(f"{field}.{key}", f"{name}: {what}{where}")
    return path
