"""The ``ngram`` kind: an order-``n`` model over characters or words, trained from a token stream
(:class:`NgramModel`), and how a text becomes that stream (:class:`Reduction`, :func:`load_stream`:
the character classes, the map to the vocabulary, the shipped corpus ``pydoc``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from ecology.errors import ScenarioError, UnreadableInput
from ecology.fields import MAX_COUNT, Strict, pydantic_error, toml_repr
from ecology.io import safe
from ecology.lm.base import CODE_BITS, ContextModel, resolve
from ecology.lm.files import check_same_tokens, load_npz_model, write_npz
from ecology.lm.registry import register

CLASSES = ("space", "vowel", "consonant", "letter", "digit", "punctuation", "other")
CLASS_PATTERN = re.compile(r"<(" + "|".join(CLASSES) + r")>")
SHIPPED_TEXTS = ("pydoc",)  # corpora named in `text` that are not files (see shipped_text)
MAX_TEXT_BYTES = 16 * 2**20  # a `text` file is read whole (about 3 s of encoding per 16 MiB); larger: refused
MAX_ORDER = 12


def shipped_text(name: str) -> str:
    """A corpus every Python has: ``pydoc`` = the standard library's ``pydoc_data.topics``
    texts, joined in sorted topic order with newlines (about 490,000 characters)."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def char_class(c: str) -> str:
    if c.isspace():
        return "space"
    if c in "aeiouAEIOU":
        return "vowel"
    if c.isascii() and c.isalpha():
        return "consonant"
    if c.isdigit():
        return "digit"
    if not c.isalnum():
        return "punctuation"
    return "letter"  # a non-ASCII letter


@dataclass(frozen=True)
class Reduction:
    """How raw text becomes tokens.

    ``unit``: ``"char"`` (each character is a symbol) or ``"word"`` (whitespace-separated words).
    ``map``: token -> what it stands for: literal characters (char unit) or space-separated words
    (word unit), and/or classes in angle brackets: ``<space>``, ``<vowel>`` (aeiouAEIOU),
    ``<consonant>`` (other ASCII letters), ``<letter>`` (any letter), ``<digit>``,
    ``<punctuation>``, ``<other>`` (whatever nothing else maps). Without a map each token stands
    for itself. Symbols that map to no token are dropped. ``lowercase`` lowers the text first;
    ``collapse``: tokens whose runs are squeezed to one occurrence (e.g. the space token).
    """

    unit: str = "char"
    mapping: tuple = ()
    lowercase: bool = False
    collapse: tuple = ()

    def encode(self, text: str, tokens: list[str]) -> np.ndarray:
        """The token stream (ints) of ``text``."""
        if self.lowercase:
            text = text.lower()
        symbols = list(text) if self.unit == "char" else text.split()
        mapping = dict(self.mapping) or {t: t for t in tokens}
        literal, classes = {}, {}
        for token, spec in mapping.items():
            for name in CLASS_PATTERN.findall(spec):
                classes[name] = token
            rest = CLASS_PATTERN.sub("", spec)
            for symbol in (rest if self.unit == "char" else rest.split()):
                literal[symbol] = token
        index = {t: i for i, t in enumerate(tokens)}
        collapse = {index[t] for t in self.collapse}
        table: dict[str, int] = {}
        out = []
        for symbol in symbols:
            if symbol not in table:
                token = literal.get(symbol)
                if token is None and self.unit == "char":
                    kind = char_class(symbol)
                    token = classes.get(kind) or (classes.get("letter") if kind in ("vowel", "consonant") else None)
                if token is None:
                    token = classes.get("other")
                table[symbol] = -1 if token is None else index[token]
            t = table[symbol]
            if t >= 0 and not (t in collapse and out and out[-1] == t):
                out.append(t)
        return np.array(out, dtype=np.int64)


class ReductionSpec(Strict):
    """The keys of a model or training table that say how text becomes tokens (:class:`Reduction`)."""

    unit: Literal["char", "word"] = Field("char", description="symbols are characters or whitespace-separated words")
    map: dict[str, str] | None = Field(None, description="token -> the characters (or words) and `<class>` names "
                                       "it stands for; default: each token stands for itself")
    lowercase: bool = Field(False, description="lower the text first")
    collapse: list[str] = Field([], description="tokens whose runs are squeezed to one occurrence")


class SourceSpec(ReductionSpec):
    """:class:`ReductionSpec` and where the token stream comes from: ``text`` or ``sequence``."""

    text: Annotated[str, Field(min_length=1)] | None = Field(
        None, description=f"a UTF-8 text file (a regular file of at most {MAX_TEXT_BYTES // 2**20} MiB, relative to "
        'the scenario) or a shipped corpus: "pydoc"')
    sequence: str | list[str] | None = Field(
        None, description="the stream inline: a list of tokens, or a string of one-character tokens "
        "(at least 2 tokens, and at least `order` for an n-gram)")

    @field_validator("sequence", mode="before")
    @classmethod
    def _string_or_list_of_tokens(cls, value):
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(t, str) for t in value)):
            return value
        raise ValueError(f"expected a string of one-character tokens or a list of tokens, got {toml_repr(value)}")


REDUCTION_KEYS = tuple(ReductionSpec.model_fields)


def _one_source(spec: SourceSpec) -> None:
    """Exactly one of ``text`` and ``sequence``; the reduction keys only with ``text`` (a
    sequence is tokens already: a map or collapse given with it would be silently ignored)."""
    reducing = [key for key in REDUCTION_KEYS if key in spec.model_fields_set]
    if spec.sequence is not None and reducing:
        raise ValueError(f"{reducing} apply to 'text' only; a 'sequence' is tokens already: remove {reducing}")
    if spec.text is not None and spec.sequence is not None:
        raise ValueError("give 'text' (a file or \"pydoc\") or 'sequence' (tokens inline), not both")
    if spec.text is None and spec.sequence is None:
        raise ValueError("give 'text' (a file or \"pydoc\") or 'sequence' (tokens inline)")


class StreamSpec(SourceSpec):
    """A token stream: exactly one of ``text`` and ``sequence``, and its reduction (``ecology
    train``'s ``[data]``)."""

    @model_validator(mode="after")
    def _text_or_sequence(self) -> StreamSpec:
        _one_source(self)
        return self


def checked(model: type[Strict], spec: dict, field: str):
    """``spec`` validated by ``model``; its first error is one line naming ``field.<key>``."""
    try:
        return model.model_validate(spec)
    except ValidationError as err:
        raise pydantic_error(err, field, unknown_key=f"unknown key; allowed: {sorted(model.model_fields)}") from None


def reduction_of(spec: dict | ReductionSpec, tokens: list[str], field: str) -> Reduction:
    """The :class:`Reduction` of a model/training table (keys ``unit``, ``map``, ``lowercase``,
    ``collapse``; a dict is validated as :class:`ReductionSpec`), checked against ``tokens``."""
    if isinstance(spec, dict):
        spec = checked(ReductionSpec, spec, field)
    mapping = spec.map or {}
    for token in mapping:
        if token not in tokens:
            raise ScenarioError(f"{field}.map", f"'{token}' is not a token of the vocabulary {tokens}")
    for token, value in mapping.items():
        unknown = set(re.findall(r"<([^<>]*)>", value)) - set(CLASSES)
        if unknown:
            classes = [f"<{c}>" for c in CLASSES]
            raise ScenarioError(f"{field}.map.{token}", f"unknown class <{min(unknown)}>; classes are {classes}")
    if not mapping and spec.unit == "char":
        long = [t for t in tokens if len(t) != 1]
        if long:
            raise ScenarioError(f"{field}.map", f"tokens {long} are not single characters: give a map token -> characters")
    for i, token in enumerate(spec.collapse):
        if token not in tokens:
            raise ScenarioError(f"{field}.collapse[{i}]", f"'{token}' is not a token of the vocabulary {tokens}")
    return Reduction(spec.unit, tuple(sorted(mapping.items())), spec.lowercase, tuple(spec.collapse))


def read_text(name: str, base: Path, field: str) -> str:
    """The text of the file ``base / name``: a regular file (a FIFO would block, a device never
    end) of at most :data:`MAX_TEXT_BYTES`, UTF-8; opened without blocking and checked on the
    opened descriptor, so what is read is what was checked."""
    def fail(message):
        return ScenarioError(f"{field}.text", f"{name}: {message}")

    try:
        data = safe.read_regular_file(Path(base) / name, MAX_TEXT_BYTES, "a text file")
    except UnreadableInput as err:
        raise fail(err.reason) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise fail(f"not UTF-8 text (byte {err.start} is not valid UTF-8); save it as UTF-8") from None


def stream_of(spec: SourceSpec, tokens: list[str], base: Path, field: str) -> tuple[np.ndarray, str]:
    """The token stream of a validated :class:`SourceSpec` (module docstring of :func:`load_stream`)."""
    if spec.sequence is not None:
        symbols = list(spec.sequence) if isinstance(spec.sequence, str) else spec.sequence
        index = {t: i for i, t in enumerate(tokens)}
        for i, symbol in enumerate(symbols):
            if symbol not in index:
                raise ScenarioError(f"{field}.sequence", f"'{symbol}' is not a token of the vocabulary {tokens} "
                                    f"(item {i} of the sequence)")
        if len(symbols) < 2:
            raise ScenarioError(f"{field}.sequence", f"{len(symbols)} token{'s' * (len(symbols) != 1)}; "
                                "give at least 2 (nothing to learn from fewer)")
        return np.array([index[s] for s in symbols], dtype=np.int64), "sequence"
    text = shipped_text(spec.text) if spec.text in SHIPPED_TEXTS else read_text(spec.text, base, field)
    stream = reduction_of(spec, tokens, field).encode(text, tokens)
    if len(stream) < 2:
        raise ScenarioError(f"{field}.text", f"{spec.text}: the text gives {len(stream)} tokens after the map; nothing to learn")
    return stream, spec.text


def load_stream(spec: dict, tokens: list[str], base: Path, field: str) -> tuple[np.ndarray, str]:
    """The training token stream of a table (validated as :class:`StreamSpec`) with ``text`` (a
    file, or a shipped corpus name) or ``sequence`` (tokens inline: a list, or a string of
    one-character tokens), at least 2 tokens. Returns the stream and a description of its source."""
    return stream_of(checked(StreamSpec, spec, field), tokens, base, field)


# ---------------------------------------------------------------------------------------------
# n-gram models


def ngram_codes(stream: np.ndarray, order: int, base: int) -> np.ndarray:
    """Codes (digits ``t + 1``) of every ``order``-gram of the stream, in text order."""
    n = len(stream) - order + 1
    codes = np.zeros(max(n, 0), dtype=np.int64)
    for j in range(order):
        codes = codes * base + stream[j : j + n] + 1
    return codes


class NgramSettings(Strict):
    """The settings of an n-gram model (:class:`NgramModel`)."""

    order: int = Field(3, ge=1, le=MAX_ORDER, description="the n of the n-gram: the law reads the last n - 1 tokens")
    smoothing: Literal["kneser-ney", "add-k"] = Field("kneser-ney", description="interpolated Kneser-Ney or add-k")
    discount: float = Field(0.75, gt=0.0, le=1.0, description="Kneser-Ney's discount D")
    k: float = Field(1.0, gt=0.0, le=1e12, description="add-k's pseudo-count")


class NgramSpec(NgramSettings, SourceSpec):
    """An n-gram premise's table: a saved model (``file`` alone), or the settings and the
    stream it is trained on (exactly one of ``text`` and ``sequence``)."""

    kind: Literal["ngram"] = Field(description="the kind")
    file: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="a saved model (.npz, written by `ecology train`); then no other key")

    @model_validator(mode="after")
    def _saved_or_trained(self) -> NgramSpec:
        if self.file is not None:
            training = sorted(self.model_fields_set - {"kind", "file"})
            if training:
                raise ValueError(f"a saved n-gram model ('file') takes no training keys; remove {training}")
        else:
            _one_source(self)
        return self


class NgramMeta(NgramSettings):
    """The ``__meta__`` of a saved n-gram model (:meth:`NgramModel.save`): every setting is
    written, so every setting is required (a missing one is an altered file, not a default)."""

    kind: Literal["ngram"]
    tokens: list[str]

    @model_validator(mode="after")
    def _every_setting_written(self) -> NgramMeta:
        missing = [name for name in NgramSettings.model_fields if name not in self.model_fields_set]
        if missing:
            raise ValueError(f"the settings {missing} are missing (a saved model holds every one): the file was altered")
        return self


@register
class NgramModel(ContextModel):
    """An order-``n`` model: ``mu(. | h)`` depends on the last ``n - 1`` tokens of ``h`` only
    (longer contexts are truncated); a context with ``j < n - 1`` tokens (the window's first
    tokens) uses the order-``j + 1`` model.

    Counts ``c(g)`` of every ``i``-gram of the training stream, ``i = 1 .. n``, and continuation
    counts ``N1+(. g) = #{v : c(v g) > 0}``. With ``h'`` the context without its oldest token:

    - ``add-k``: ``P(w | h) = (c(h w) + k) / (c(h .) + k V)``;
    - ``kneser-ney`` (interpolated, discount ``D``):
      ``P(w | h) = max(c(h w) - D, 0) / c(h .) + D N1+(h .) / c(h .) * P_cont(w | h')``
      with raw counts at the top order, the same formula with continuation counts in place of
      ``c`` at every lower order (``P_cont``), and the uniform law ``1 / V`` below the unigram.
      A context never seen (``c(h .) = 0``) gives its lower-order law.
    """

    kind = "ngram"
    spec_model = NgramSpec
    file_keys = ("file", "text")
    docs_row = (r'`{kind = "ngram", order = 3, text = "FILE" \| "pydoc", unit, map, lowercase, collapse, '
                r'smoothing = "kneser-ney" \| "add-k", discount = 0.75, k = 1}`, or `sequence = "..."` inline, '
                r'or `{kind = "ngram", file = "m.npz"}` (saved) | trained in memory and cached')

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        """A saved model (``file``, no training keys), or one trained on ``text`` / ``sequence``."""
        if spec.file is not None:
            path = resolve(spec.file, "file", base, field)
            model = load_npz_model(path, tokens, spec.file, field)
            if model.kind != "ngram":
                raise ScenarioError(f"{field}.file", f"{spec.file}: holds a {model.kind} model, not an n-gram model")
            return model
        if spec.order * math.log2(len(tokens) + 1) >= CODE_BITS:
            raise ScenarioError(f"{field}.order", f"order {spec.order} over {len(tokens)} tokens is too large "
                                "(codes exceed 62 bits)")
        stream, source = stream_of(spec, tokens, base, field)
        return cls.train(stream, tokens, spec.order, spec.smoothing, spec.discount, spec.k, source, field)

    @classmethod
    def names_file(cls, key, value):
        """``text`` names a file unless it is a shipped corpus (:data:`SHIPPED_TEXTS`)."""
        return key in cls.file_keys and not (key == "text" and value in SHIPPED_TEXTS)

    def __init__(self, tokens, source, order: int, counts: list, smoothing: str, discount: float, k: float, field="model"):
        super().__init__(tokens, source, field)
        self.order = order
        self.counts = counts  # counts[i] = (sorted codes, counts) of i-grams, i = 1 .. n (index 0 unused)
        self.smoothing = smoothing
        self.discount = discount
        self.k = k
        self.base = len(tokens) + 1
        self.modulus = self.base ** (order - 1)
        self.continuation = [None] + [self.continuation_counts(i) for i in range(1, order)]
        self._sums: dict = {}  # context_sums of each table, by the id of its codes array

    @classmethod
    def train(cls, stream: np.ndarray, tokens, order: int, smoothing: str, discount: float, k: float, source: str, field="model"):
        """Counts of the ``i``-grams of ``stream``, ``i = 1 .. order``; a stream shorter than the
        order has no ``order``-gram to count and is refused (naming ``field.order``)."""
        if len(stream) < order:
            where = "the sequence" if source == "sequence" else f"the text {source}"
            raise ScenarioError(f"{field}.order", f"{where} gives {len(stream)} tokens, fewer than the order {order}: "
                                f"no {order}-gram to count; give at least {order} tokens or a lower order")
        base = len(tokens) + 1
        counts: list = [None]
        for i in range(1, order + 1):
            codes, n = np.unique(ngram_codes(stream, i, base), return_counts=True)
            counts.append((codes, n.astype(np.float64)))
        return cls(tokens, source, order, counts, smoothing, discount, k, field)

    @property
    def n_parameters(self) -> int:
        """The stored counts (one per distinct i-gram, i = 1 .. n) and the smoothing constant."""
        return sum(len(codes) for codes, _ in self.counts[1:]) + 1

    def continuation_counts(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``N1+(. g)`` for every ``i``-gram ``g``: distinct left extensions in the ``i+1``-grams."""
        longer, _ = self.counts[i + 1]
        codes, n = np.unique(longer % (self.base**i), return_counts=True)
        return codes, n.astype(np.float64)

    def extend(self, code, token):
        return (code * self.base + token + 1) % self.modulus if self.order > 1 else code * 0

    @staticmethod
    def lookup(table: tuple[np.ndarray, np.ndarray], codes: np.ndarray) -> np.ndarray:
        """The values of ``codes`` in the sorted table (0 for a code absent)."""
        keys, values = table
        if len(keys) == 0:
            return np.zeros(codes.shape)
        at = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
        return np.where(keys[at] == codes, values[at], 0.0)

    def context_sums(self, table) -> tuple[tuple, tuple]:
        """``(c(h .), N1+(h .))`` of the table's grams as two sorted tables by context code ``h``:
        the sum of the counts of the grams ``h w`` and their number (the grams of one context are
        consecutive in the sorted table: their codes are ``h (V + 1) + 1 .. h (V + 1) + V``).
        Cached per table."""
        key = id(table[0])
        if key not in self._sums:
            keys, values = table
            contexts, start = np.unique(keys // self.base, return_index=True)
            totals = np.add.reduceat(values, start) if len(keys) else np.zeros(0)
            types = np.diff(np.append(start, len(keys))).astype(np.float64)
            self._sums[key] = ((contexts, totals), (contexts, types))
        return self._sums[key]

    def next_counts(self, contexts: np.ndarray, table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The grams ``h w`` of the table after each context (sparse): ``(row, token, count)``,
        found as each context's range of codes (two bisections per context, not ``V``)."""
        keys, values = table
        lo = np.searchsorted(keys, contexts * self.base + 1)
        hi = np.searchsorted(keys, contexts * self.base + self.base)
        sizes = hi - lo
        row = np.repeat(np.arange(len(contexts)), sizes)
        at = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes) + np.repeat(lo, sizes)
        return row, keys[at] - contexts[row] * self.base - 1, values[at]

    def kneser_ney(self, contexts: np.ndarray, length: int, top: bool) -> np.ndarray:
        """(C, V) probabilities after contexts of ``length`` tokens (class docstring): the lower
        law times the back-off weight ``D N1+(h .) / c(h .)`` (1 for an unseen context), plus
        ``max(c(h w) - D, 0) / c(h .)`` at the grams seen (the only tokens where it is not 0)."""
        V = self.n_tokens
        if length > 0:  # the shorter contexts repeat (the empty one is every row's): each computed once
            shorter, inverse = np.unique(contexts % (self.base ** (length - 1)), return_inverse=True)
            law = self.kneser_ney(shorter, length - 1, False)[inverse.ravel()]
        else:
            law = np.full((len(contexts), V), 1.0 / V)
        table = self.counts[length + 1] if top else self.continuation[length + 1]
        totals, types = self.context_sums(table)
        total, kinds = self.lookup(totals, contexts), self.lookup(types, contexts)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        law *= np.where(seen, self.discount * kinds / safe, 1.0)[:, None]
        row, token, count = self.next_counts(contexts, table)
        law[row, token] += np.maximum(count - self.discount, 0.0) / safe[row]
        return law

    def kneser_ney_at(self, contexts: np.ndarray, tokens: np.ndarray, length: int, top: bool) -> np.ndarray:
        """(N,) the entries ``[i, tokens[i]]`` of :meth:`kneser_ney`, one gram each, in the same
        operations (so bit for bit the same numbers)."""
        if length > 0:
            lower = self.kneser_ney_at(contexts % (self.base ** (length - 1)), tokens, length - 1, False)
        else:
            lower = np.full(len(contexts), 1.0 / self.n_tokens)
        table = self.counts[length + 1] if top else self.continuation[length + 1]
        totals, types = self.context_sums(table)
        total, kinds = self.lookup(totals, contexts), self.lookup(types, contexts)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        lower *= np.where(seen, self.discount * kinds / safe, 1.0)
        count = self.lookup(table, contexts * self.base + tokens + 1)
        return np.where(count > 0, np.maximum(count - self.discount, 0.0) / safe + lower, lower)

    def probabilities(self, contexts: np.ndarray, length: int) -> np.ndarray:
        """(C, V) ``P(. | h)`` for contexts of ``length`` tokens (class docstring)."""
        if self.smoothing == "add-k":
            table = self.counts[length + 1]
            law = np.full((len(contexts), self.n_tokens), self.k)
            row, token, count = self.next_counts(contexts, table)
            law[row, token] += count
            law /= (self.lookup(self.context_sums(table)[0], contexts) + self.k * self.n_tokens)[:, None]
            return law
        return self.kneser_ney(contexts, length, True)

    def probabilities_at(self, contexts: np.ndarray, tokens: np.ndarray, length: int) -> np.ndarray:
        """(N,) the entries ``[i, tokens[i]]`` of :meth:`probabilities`, computed one by one."""
        if self.smoothing == "add-k":
            table = self.counts[length + 1]
            count = self.lookup(table, contexts * self.base + tokens + 1)
            return (self.k + count) / (self.lookup(self.context_sums(table)[0], contexts) + self.k * self.n_tokens)
        return self.kneser_ney_at(contexts, tokens, length, True)

    def lengths(self, codes: np.ndarray) -> np.ndarray:
        """The number of tokens of each context code (its base-``(V + 1)`` digits)."""
        lengths = np.zeros(len(codes), dtype=np.int64)
        rest = codes.copy()
        while np.any(rest > 0):
            lengths += rest > 0
            rest //= self.base
        return lengths

    def laws(self, codes, where):
        out = np.empty((len(codes), self.n_tokens))
        lengths = self.lengths(codes)
        for length in np.unique(lengths):
            rows = lengths == length
            with np.errstate(divide="ignore"):
                out[rows] = np.log(self.probabilities(codes[rows], int(length)))
        return out

    def conditionals(self, codes, tokens, where):
        out = np.empty(len(codes))
        lengths = self.lengths(codes)
        for length in np.unique(lengths):
            rows = lengths == length
            with np.errstate(divide="ignore"):
                out[rows] = np.log(self.probabilities_at(codes[rows], tokens[rows], int(length)))
        return out

    def save(self, path: Path) -> None:
        arrays = {f"codes{i}": self.counts[i][0] for i in range(1, self.order + 1)}
        arrays |= {f"counts{i}": self.counts[i][1] for i in range(1, self.order + 1)}
        meta = {"kind": "ngram", "tokens": self.tokens, "order": self.order, "smoothing": self.smoothing,
                "discount": self.discount, "k": self.k}
        write_npz(path, meta, arrays)

    @classmethod
    def from_npz(cls, meta: dict, data, tokens, source, field="model") -> NgramModel:
        """The saved model (:meth:`save`), its settings checked as a scenario's n-gram dict is
        (:func:`ngram_settings`) and its counts as :meth:`train` makes them: for each order ``i``,
        codes of ``i``-grams strictly increasing (the lookups bisect them), each below
        ``(V + 1)^i``, and positive whole counts whose sum is an exact double (below ``2^53``)."""

        def fail(message):
            return ScenarioError(f"{field}.file", f"{source}: {message}")

        try:
            settings = NgramMeta.model_validate(meta)
        except ValidationError as err:
            raise fail(f"bad n-gram settings: {pydantic_error(err, '__meta__').line()}") from None
        order, smoothing, discount, k = settings.order, settings.smoothing, settings.discount, settings.k
        own = list(settings.tokens)
        counts: list = [None]
        for i in range(1, order + 1):
            if f"codes{i}" not in data or f"counts{i}" not in data:
                raise fail(f"arrays 'codes{i}' and 'counts{i}' are missing (the model has order {order})")
            codes, n = data[f"codes{i}"], data[f"counts{i}"]
            if codes.ndim != 1 or codes.shape != n.shape or codes.dtype.kind not in "iu":
                raise fail(f"'codes{i}' must be integers and 'counts{i}' numbers, arrays of one length")
            if len(codes) and (np.any(np.diff(codes) <= 0) or codes[0] < 0 or codes[-1] >= (len(own) + 1) ** i):
                raise fail(f"'codes{i}' must be strictly increasing codes of {i}-grams (as saved); the file was altered")
            with np.errstate(over="ignore"):  # a sum beyond a double is inf, and refused
                total = n.sum(dtype=np.float64) if n.dtype.kind in "iuf" else 0.0
            if n.dtype.kind not in "iuf" or np.any(n <= 0) or np.any(n != np.floor(n)) or total >= MAX_COUNT:
                raise fail(f"'counts{i}' must be positive whole counts summing below 2^53 (as training makes them)")
            counts.append((codes.astype(np.int64), n))
        model = cls(own, source, order, counts, smoothing, discount, k, field)
        return model.reordered(tokens)

    def reordered(self, tokens: list[str]) -> NgramModel:
        """The same model over ``tokens`` (same set, possibly another order)."""
        if tokens == self.tokens:
            return self
        check_same_tokens(self.tokens, tokens, self.source, self.field)
        new = [tokens.index(t) for t in self.tokens]  # old index -> new index
        base = self.base
        counts: list = [None]
        for i in range(1, self.order + 1):
            codes, n = self.counts[i]
            digits, rest, recoded = [], codes.copy(), np.zeros_like(codes)
            for _ in range(i):
                digits.append(rest % base)
                rest //= base
            for d in reversed(digits):
                recoded = recoded * base + np.where(d > 0, np.take(new, d - 1) + 1, 0)
            order = np.argsort(recoded)
            counts.append((recoded[order], n[order]))
        return NgramModel(tokens, self.source, self.order, counts, self.smoothing, self.discount, self.k, self.field)



def ngram_settings(spec: dict, field: str) -> tuple[int, str, float, float]:
    """``(order, smoothing, discount, k)`` of an n-gram settings table (validated as :class:`NgramSettings`)."""
    settings = checked(NgramSettings, spec, field)
    return settings.order, settings.smoothing, settings.discount, settings.k
