"""Language models as premises: ``mu(t | w)`` computed by a trained model from the whole window.

Tokens are integers ``0 .. V-1`` in the order of the vocabulary ``tokens``; the pad is ``V``.
Windows are canonical (pads first, then tokens, oldest first; see :mod:`ecology.context`). For a
window whose non-pad tokens are ``w_1 .. w_m`` every model here computes, in log space,

    log_likelihood(w) = sum_{i=1..m} log mu(w_i | w_1 .. w_{i-1})    (empty context for i = 1)
    next_log_probs(w) = log mu(. | w_1 .. w_m)

so a window is read from its first non-pad token as if the storyline began there, the same
convention as automaton premises (:mod:`ecology.simulacra`). A token of probability zero gives
``-inf`` (the mixture handles it); no window gives NaN.

Temperature is NOT applied here: the mixture tempers the mixed law (``p^(1/T)``, i.e. logits / T
for a single model), exactly as for automaton premises.

Kinds (each built by :func:`load_model` from a plain dict, paths relative to a base directory):

- ``table``: a CSV of conditionals, one row per context (:class:`TableModel`);
- ``ngram``: an order-``n`` model over characters or words with interpolated Kneser-Ney or
  add-k smoothing, trained from a text (:class:`NgramModel`);
- ``transformer``: a small decoder-only transformer whose numpy forward pass gives every prefix
  conditional at once (:class:`TransformerModel`);
- ``onnx``: any causal LM exported to ONNX, run with onnxruntime (:class:`OnnxModel`).

Every kind reads a batch of windows at once; identical windows are read once
(:func:`unique_rows`) and identical contexts are looked up once.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecology.errors import ScenarioError

KINDS = ("table", "ngram", "transformer", "onnx")
PROBABILITY_TOLERANCE = 1e-9  # a "probs" table row must sum to 1 within this
CODE_BITS = 62  # integer codes of token sequences stay below 2**62


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z - log sum exp z`` along the last axis; rows of ``-inf`` stay ``-inf`` (no NaN)."""
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = logits - top
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def unique_rows(windows: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``windows`` (digits ``< base``) and the index of each row among them.

    Rows are encoded as base-``base`` integers when they fit in 62 bits (a fast 1-d unique),
    and compared as raw rows otherwise.
    """
    rows, length = windows.shape
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
    """A language model over the scenario's vocabulary ``tokens`` (see module docstring)."""

    kind = ""

    def __init__(self, tokens: list[str], source: str, field: str = "model"):
        self.tokens = list(tokens)
        self.source = source  # the file, as named in error messages
        self.field = field  # the scenario field path of the model table, for error messages

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def error(self, message: str, key: str = "file") -> ScenarioError:
        return ScenarioError(f"{self.field}.{key}", f"{self.source}: {message}")

    def read(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(log_likelihood (B,), next_log_probs (B, V))`` of a batch of windows (B, L)."""
        windows = np.asarray(windows)
        if windows.ndim != 2:
            raise ValueError(f"windows must be a (B, L) array, got shape {windows.shape}")
        if windows.size and (windows.min() < 0 or windows.max() > self.n_tokens):
            raise ValueError(f"window entries must lie in 0 .. {self.n_tokens} (the pad)")
        if windows.shape[0] == 0:
            return np.zeros(0), np.zeros((0, self.n_tokens))
        distinct, inverse = unique_rows(canonical(windows, self.n_tokens), self.n_tokens + 1)
        loglik, next_logp = self.read_distinct(distinct)
        return loglik[inverse], next_logp[inverse]

    def read_distinct(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`read` on distinct canonical windows."""
        raise NotImplementedError

    @property
    def n_parameters(self) -> int | None:
        """Free parameters of the model (for model comparison); ``None`` when not knowable."""
        return None

    def max_length(self) -> int | None:
        """The longest context the model accepts (``None``: no limit)."""
        return None

    def read_cost(self, length: int) -> float:
        """Elementary operations of reading one window of ``length`` positions (an upper-bound
        estimate for the budgets of :mod:`ecology.budget`): a code, a search and a law of ``V``
        entries per position (context models)."""
        return 64.0 * (length + 1) * (self.n_tokens + 1)

    def context_text(self, window: np.ndarray, upto: int) -> str:
        """The non-pad tokens of ``window[:upto]`` as the table writes them (space-separated)."""
        return " ".join(self.tokens[t] for t in window[:upto] if t != self.n_tokens)


# ---------------------------------------------------------------------------------------------
# Context models: the law depends on a finite code of the context (table, n-gram)


class ContextModel(LanguageModel):
    """A model whose law ``mu(. | h)`` is a function of an integer code of the context ``h``.

    Codes are base-``(V + 1)`` numbers whose digits are ``token + 1`` (0 = no token), so contexts
    of different lengths have different codes. Reading a window computes the code before each
    token and after the last one, finds the distinct codes, asks :meth:`laws` for each once, and
    sums the conditionals of the window's tokens.
    """

    def extend(self, code: np.ndarray, token: np.ndarray) -> np.ndarray:
        """The code of the context followed by ``token`` (one per row)."""
        raise NotImplementedError

    def laws(self, codes: np.ndarray, where) -> np.ndarray:
        """(C, V) log-probabilities of the next token after each context code. ``where(i)`` gives
        ``(window, position)`` of a place where the context of ``codes[i]`` occurs, to name it."""
        raise NotImplementedError

    def read_distinct(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, length = windows.shape
        pad = self.n_tokens
        codes = np.zeros((rows, length + 1), dtype=np.int64)
        code = np.zeros(rows, dtype=np.int64)
        for p in range(length):
            codes[:, p] = code
            token = windows[:, p].astype(np.int64)
            code = np.where(token == pad, code, self.extend(code, np.minimum(token, pad - 1)))
        codes[:, length] = code
        distinct, first, inverse = np.unique(codes.ravel(), return_index=True, return_inverse=True)
        inverse = inverse.reshape(rows, length + 1)
        laws = self.laws(distinct, lambda i: (windows[first[i] // (length + 1)], first[i] % (length + 1)))
        real = windows != pad
        per_token = laws[inverse[:, :length], np.where(real, windows, 0)]
        loglik = np.where(real, per_token, 0.0).sum(axis=1)
        return loglik, laws[inverse[:, length]]


def encode_contexts(contexts: list[list[int]], base: int) -> np.ndarray:
    """Codes of token lists (digits ``t + 1`` in base ``base``), see :class:`ContextModel`."""
    out = np.zeros(len(contexts), dtype=np.int64)
    for i, context in enumerate(contexts):
        for t in context:
            out[i] = out[i] * base + t + 1
    return out


class TableModel(ContextModel):
    """``mu(. | h)`` read from a table with one row per context ``h`` (no truncation: every
    context a window asks for must be in the table).

    CSV format: header ``context,<token>,<token>,...`` naming every vocabulary token once (any
    order); each row gives a context (its tokens separated by single spaces, empty for the empty
    window) and one value per token: ``values = "logits"`` (the law is ``softmax(row)``; ``-inf``
    allowed) or ``"probs"`` (non-negative, summing to 1 within 1e-9).
    """

    kind = "table"

    def __init__(self, tokens, source, log_probs: np.ndarray, codes: np.ndarray, longest: int, field="model"):
        super().__init__(tokens, source, field)
        order = np.argsort(codes)
        self.codes = codes[order]
        self.log_probs = log_probs[order]
        self.longest = longest  # the longest context in the table
        self.limit = (self.n_tokens + 1) ** (longest - 1) if longest >= 1 else 0

    @classmethod
    def from_csv(cls, path: Path, tokens: list[str], values: str, source: str, field: str = "model") -> "TableModel":
        def fail(message: str) -> ScenarioError:
            return ScenarioError(f"{field}.file", f"{source}: {message}")

        try:
            with path.open(newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as err:
            raise fail(f"cannot read the table: {err.strerror or err}") from None
        except (UnicodeDecodeError, csv.Error) as err:
            raise fail(f"not a CSV text file: {err}") from None
        if not rows:
            raise fail("the table is empty; expected a header 'context,<token>,...'")
        header = [h.strip() for h in rows[0]]
        if not header or header[0] != "context":
            raise fail(f"the header must start with 'context', got '{','.join(header)[:60]}'")
        columns = header[1:]
        index = {t: i for i, t in enumerate(tokens)}
        for name in columns:
            if name not in index:
                raise fail(f"header: '{name}' is not a token of the vocabulary {tokens}")
        if len(set(columns)) != len(columns):
            raise fail(f"header: token '{next(c for c in columns if columns.count(c) > 1)}' appears twice")
        missing = [t for t in tokens if t not in columns]
        if missing:
            raise fail(f"header: no column for token(s) {missing}")
        permutation = [columns.index(t) for t in tokens]
        contexts, table, seen = [], [], {}
        for line, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise fail(f"line {line}: {len(row)} fields, expected {len(header)} (context + {len(tokens)} tokens)")
            text = row[0].strip()
            words = text.split(" ") if text else []
            for word in words:
                if word not in index:
                    raise fail(f"line {line}: context '{text}': '{word}' is not a token (tokens are separated by single spaces)")
            if text in seen:
                raise fail(f"line {line}: context '{text}' already given on line {seen[text]}")
            seen[text] = line
            numbers = []
            for cell in row[1:]:
                try:
                    x = float(cell)
                except ValueError:
                    raise fail(f"line {line}: '{cell.strip()}' is not a number") from None
                if math.isnan(x) or x == math.inf:
                    raise fail(f"line {line}: '{cell.strip()}' is not allowed (NaN or +inf)")
                numbers.append(x)
            numbers = np.array(numbers)[permutation]
            if values == "probs":
                if np.any(numbers < 0):
                    raise fail(f"line {line}: a probability is negative")
                if abs(numbers.sum() - 1.0) > PROBABILITY_TOLERANCE:
                    raise fail(f"line {line}: probabilities sum to {numbers.sum():.12g}, not 1 (within 1e-9)")
                with np.errstate(divide="ignore"):
                    logp = np.log(numbers / numbers.sum())
            else:
                if not np.any(np.isfinite(numbers)):
                    raise fail(f"line {line}: every logit is -inf (no token possible)")
                logp = log_softmax(numbers)
            contexts.append([index[w] for w in words])
            table.append(logp)
        if not table:
            raise fail("the table has a header but no rows")
        longest = max(len(c) for c in contexts)
        if longest * math.log2(len(tokens) + 1) >= CODE_BITS:
            raise fail(f"a context of {longest} tokens is too long for this table format")
        codes = encode_contexts(contexts, len(tokens) + 1)
        return cls(tokens, source, np.array(table), codes, longest, field)

    @property
    def n_parameters(self) -> int:
        """One law of ``V - 1`` free entries per context row."""
        return len(self.codes) * (self.n_tokens - 1)

    def extend(self, code, token):
        longer = (code < 0) | (code >= self.limit)  # already ``longest`` tokens: not in the table
        return np.where(longer, -1, code * (self.n_tokens + 1) + token + 1)

    def laws(self, codes, where):
        at = np.clip(np.searchsorted(self.codes, codes), 0, len(self.codes) - 1)
        found = self.codes[at] == codes
        if not found.all():
            window, position = where(int(np.argmin(found)))
            context = self.context_text(window, position)
            shown = f"'{context}'" if context else "'' (the empty window)"
            raise self.error(f"context {shown} is not in the table; add a row for it")
        return self.log_probs[at]


# ---------------------------------------------------------------------------------------------
# Text corpora and their reduction to the vocabulary

CLASSES = ("space", "vowel", "consonant", "letter", "digit", "punctuation", "other")
CLASS_PATTERN = re.compile(r"<(" + "|".join(CLASSES) + r")>")
SHIPPED_TEXTS = ("pydoc",)


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


def reduction_of(spec: dict, tokens: list[str], field: str) -> Reduction:
    """The :class:`Reduction` of a model/training dict (keys ``unit``, ``map``, ``lowercase``,
    ``collapse``), checked against ``tokens``."""
    unit = spec.get("unit", "char")
    if unit not in ("char", "word"):
        raise ScenarioError(f"{field}.unit", f"'{unit}' is not a unit; expected 'char' or 'word'")
    mapping = spec.get("map") or {}
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ScenarioError(f"{field}.map", "expected a table token -> string (characters, words or <class> names)")
    for token in mapping:
        if token not in tokens:
            raise ScenarioError(f"{field}.map", f"'{token}' is not a token of the vocabulary {tokens}")
    for token, value in mapping.items():
        unknown = set(re.findall(r"<([^<>]*)>", value)) - set(CLASSES)
        if unknown:
            raise ScenarioError(f"{field}.map.{token}", f"unknown class <{sorted(unknown)[0]}>; classes are {['<%s>' % c for c in CLASSES]}")
    if not mapping and unit == "char":
        long = [t for t in tokens if len(t) != 1]
        if long:
            raise ScenarioError(f"{field}.map", f"tokens {long} are not single characters: give a map token -> characters")
    collapse = spec.get("collapse", [])
    if not isinstance(collapse, list) or any(c not in tokens for c in collapse):
        raise ScenarioError(f"{field}.collapse", f"expected a list of tokens of the vocabulary {tokens}")
    lowercase = spec.get("lowercase", False)
    if not isinstance(lowercase, bool):
        raise ScenarioError(f"{field}.lowercase", "expected true or false")
    return Reduction(unit, tuple(sorted(mapping.items())), lowercase, tuple(collapse))


def load_stream(spec: dict, tokens: list[str], base: Path, field: str) -> tuple[np.ndarray, str]:
    """The training token stream of a dict with ``text`` (a file, or a shipped corpus name) or
    ``sequence`` (tokens inline: a list, or a string of one-character tokens). Returns the
    stream and a description of its source."""
    if "sequence" in spec:
        sequence = spec["sequence"]
        symbols = list(sequence) if isinstance(sequence, str) else sequence
        index = {t: i for i, t in enumerate(tokens)}
        bad = [s for s in symbols if s not in index]
        if bad or not isinstance(symbols, list):
            raise ScenarioError(f"{field}.sequence", f"'{bad[0] if bad else sequence}' is not a token of the vocabulary {tokens}")
        return np.array([index[s] for s in symbols], dtype=np.int64), "sequence"
    text_name = spec.get("text")
    if not isinstance(text_name, str):
        raise ScenarioError(f"{field}.text", "give a text file, a shipped corpus (\"pydoc\") or an inline 'sequence'")
    if text_name in SHIPPED_TEXTS:
        text = shipped_text(text_name)
    else:
        path = base / text_name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ScenarioError(f"{field}.text", f"{text_name}: cannot read: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise ScenarioError(f"{field}.text", f"{text_name}: not a UTF-8 text file") from None
    stream = reduction_of(spec, tokens, field).encode(text, tokens)
    if len(stream) < 2:
        raise ScenarioError(f"{field}.text", f"{text_name}: the text gives {len(stream)} tokens after the map; nothing to learn")
    return stream, text_name


# ---------------------------------------------------------------------------------------------
# n-gram models


def ngram_codes(stream: np.ndarray, order: int, base: int) -> np.ndarray:
    """Codes (digits ``t + 1``) of every ``order``-gram of the stream, in text order."""
    n = len(stream) - order + 1
    codes = np.zeros(max(n, 0), dtype=np.int64)
    for j in range(order):
        codes = codes * base + stream[j : j + n] + 1
    return codes


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

    @classmethod
    def train(cls, stream: np.ndarray, tokens, order: int, smoothing: str, discount: float, k: float, source: str, field="model"):
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
        keys, values = table
        if len(keys) == 0:
            return np.zeros(codes.shape)
        at = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
        return np.where(keys[at] == codes, values[at], 0.0)

    def next_counts(self, contexts: np.ndarray, table) -> np.ndarray:
        """(C, V) counts of each context followed by each token."""
        return self.lookup(table, contexts[:, None] * self.base + np.arange(1, self.base))

    def kneser_ney(self, contexts: np.ndarray, length: int, top: bool) -> np.ndarray:
        """(C, V) probabilities after contexts of ``length`` tokens (class docstring)."""
        V = self.n_tokens
        lower = np.full((len(contexts), V), 1.0 / V)
        if length > 0:
            lower = self.kneser_ney(contexts % (self.base ** (length - 1)), length - 1, False)
        table = self.counts[length + 1] if top else self.continuation[length + 1]
        c = self.next_counts(contexts, table)
        total = c.sum(axis=1, keepdims=True)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        types = np.sum(c > 0, axis=1, keepdims=True)
        smoothed = np.maximum(c - self.discount, 0.0) / safe + self.discount * types / safe * lower
        return np.where(seen, smoothed, lower)

    def probabilities(self, contexts: np.ndarray, length: int) -> np.ndarray:
        if self.smoothing == "add-k":
            c = self.next_counts(contexts, self.counts[length + 1])
            return (c + self.k) / (c.sum(axis=1, keepdims=True) + self.k * self.n_tokens)
        return self.kneser_ney(contexts, length, True)

    def laws(self, codes, where):
        out = np.empty((len(codes), self.n_tokens))
        lengths = np.zeros(len(codes), dtype=np.int64)
        rest = codes.copy()
        while np.any(rest > 0):
            lengths += rest > 0
            rest //= self.base
        for length in np.unique(lengths):
            rows = lengths == length
            with np.errstate(divide="ignore"):
                out[rows] = np.log(self.probabilities(codes[rows], int(length)))
        return out

    def save(self, path: Path) -> None:
        arrays = {f"codes{i}": self.counts[i][0] for i in range(1, self.order + 1)}
        arrays |= {f"counts{i}": self.counts[i][1] for i in range(1, self.order + 1)}
        meta = {"kind": "ngram", "tokens": self.tokens, "order": self.order, "smoothing": self.smoothing,
                "discount": self.discount, "k": self.k}
        write_npz(path, meta, arrays)

    @classmethod
    def from_npz(cls, meta: dict, data, tokens, source, field="model") -> "NgramModel":
        order = int(meta["order"])
        counts = [None] + [(data[f"codes{i}"], data[f"counts{i}"]) for i in range(1, order + 1)]
        model = cls(list(meta["tokens"]), source, order, counts, meta["smoothing"], float(meta["discount"]), float(meta["k"]), field)
        return model.reordered(tokens)

    def reordered(self, tokens: list[str]) -> "NgramModel":
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


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (as in GPT-2): ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    The cube is two products (``x**3`` calls ``pow``, about 30 times slower), in place."""
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= math.sqrt(2.0 / math.pi)
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= x
    inner *= 0.5
    return inner


def layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * gain + bias`` over the last axis."""
    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / x.shape[-1]
    centred /= np.sqrt(var + eps)
    centred *= gain
    centred += bias
    return centred


@dataclass(frozen=True)
class TransformerConfig:
    """Shape of a decoder-only transformer: ``n_ctx`` tokens of context after the start token."""

    n_ctx: int
    n_layer: int = 2
    n_head: int = 2
    d_model: int = 16
    d_mlp: int = 64

    def parameter_shapes(self, n_tokens: int) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the weights (the ``.npz`` keys). The embedding has ``V + 1`` rows,
        the last being the start token; positions ``0 .. n_ctx`` (0 = the start token)."""
        d, V = self.d_model, n_tokens
        shapes = {"wte": (V + 1, d), "wpe": (self.n_ctx + 1, d)}
        for i in range(self.n_layer):
            shapes |= {f"l{i}.ln1.g": (d,), f"l{i}.ln1.b": (d,), f"l{i}.qkv.w": (d, 3 * d), f"l{i}.qkv.b": (3 * d,),
                       f"l{i}.out.w": (d, d), f"l{i}.out.b": (d,), f"l{i}.ln2.g": (d,), f"l{i}.ln2.b": (d,),
                       f"l{i}.fc.w": (d, self.d_mlp), f"l{i}.fc.b": (self.d_mlp,),
                       f"l{i}.proj.w": (self.d_mlp, d), f"l{i}.proj.b": (d,)}
        return shapes | {"lnf.g": (d,), "lnf.b": (d,), "unembed.w": (d, V), "unembed.b": (V,)}


class TransformerModel(SequenceModel):
    """A small decoder-only transformer, forward pass in numpy (float64).

    ``x_0 = wte[ids] + wpe[0 .. m]`` for ids ``[start, w_1 .. w_m]``; each layer ``i`` (pre-norm):
    ``x += Attn(LN1(x))`` with causal multi-head softmax attention
    ``softmax(q k^T / sqrt(d_head) + causal mask) v`` projected by ``out``, then
    ``x += proj(GELU(fc(LN2(x))))``; finally ``logits = LN_f(x) unembed.w + unembed.b`` and the
    law after prefix ``j`` is ``log_softmax(logits[j])``.
    """

    kind = "transformer"

    def __init__(self, tokens, source, config: TransformerConfig, weights: dict[str, np.ndarray], field="model"):
        super().__init__(tokens, source, field)
        self.config = config
        self.weights = {name: np.asarray(w, dtype=np.float64) for name, w in weights.items()}

    def max_length(self):
        return self.config.n_ctx

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """(B, n) ids (start token = V) -> (B, n, V) logits. Linear layers run on (B n, d)
        matrices (one large matmul each, not B small ones)."""
        w, c = self.weights, self.config
        batch, n = ids.shape
        heads, d_head = c.n_head, c.d_model // c.n_head
        x = (w["wte"][ids] + w["wpe"][:n]).reshape(batch * n, c.d_model)
        causal = np.triu(np.full((n, n), -np.inf), k=1)
        for i in range(c.n_layer):
            h = layer_norm(x, w[f"l{i}.ln1.g"], w[f"l{i}.ln1.b"])
            qkv = (h @ w[f"l{i}.qkv.w"] + w[f"l{i}.qkv.b"]).reshape(batch, n, 3, heads, d_head)
            q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= 1.0 / math.sqrt(d_head)
            scores += causal
            scores -= scores.max(axis=-1, keepdims=True)  # the diagonal is never masked: finite
            attention = np.exp(scores, out=scores)
            attention /= attention.sum(axis=-1, keepdims=True)
            mixed = (attention @ v).transpose(0, 2, 1, 3).reshape(batch * n, c.d_model)
            x = x + mixed @ w[f"l{i}.out.w"] + w[f"l{i}.out.b"]
            h = layer_norm(x, w[f"l{i}.ln2.g"], w[f"l{i}.ln2.b"])
            x = x + gelu(h @ w[f"l{i}.fc.w"] + w[f"l{i}.fc.b"]) @ w[f"l{i}.proj.w"] + w[f"l{i}.proj.b"]
        logits = layer_norm(x, w["lnf.g"], w["lnf.b"]) @ w["unembed.w"] + w["unembed.b"]
        return logits.reshape(batch, n, self.n_tokens)

    @property
    def n_parameters(self) -> int:
        return sum(int(w.size) for w in self.weights.values())

    def read_cost(self, length: int) -> float:
        """Multiply-adds of one forward pass over ``n = length + 1`` positions: per layer
        ``n (3 d^2 + d^2 + 2 d d_mlp) + 2 n^2 d`` (projections, MLP, attention), then ``n d V``."""
        c, n = self.config, min(length, self.config.n_ctx) + 1
        d = c.d_model
        return float(c.n_layer * (n * (4 * d * d + 2 * d * c.d_mlp) + 2 * n * n * d) + n * d * self.n_tokens)

    def forward(self, ids):
        start = np.full((len(ids), 1), self.n_tokens, dtype=np.int64)
        return log_softmax(self.logits(np.concatenate([start, ids], axis=1)))

    def save(self, path: Path, extra: dict | None = None) -> None:
        meta = {"kind": "transformer", "tokens": self.tokens, "config": self.config.__dict__} | (extra or {})
        write_npz(path, meta, self.weights)

    @classmethod
    def from_npz(cls, meta: dict, data, tokens, source, field="model") -> "TransformerModel":
        def fail(message):
            return ScenarioError(f"{field}.file", f"{source}: {message}")

        try:
            config = TransformerConfig(**meta["config"])
        except (KeyError, TypeError) as err:
            raise fail(f"bad transformer config in the file: {err}") from None
        own = list(meta["tokens"])
        check_same_tokens(own, tokens, source, field)
        weights = {}
        for name, shape in config.parameter_shapes(len(own)).items():
            if name not in data:
                raise fail(f"weight '{name}' is missing")
            if data[name].shape != shape:
                raise fail(f"weight '{name}' has shape {data[name].shape}, expected {shape}")
            weights[name] = data[name]
        if not all(np.all(np.isfinite(w)) for w in weights.values()):
            raise fail("a weight is NaN or infinite")
        if own != tokens:  # permute the embedding rows and unembedding columns to the vocabulary order
            old = [own.index(t) for t in tokens]
            weights["wte"] = weights["wte"][old + [len(own)]]
            weights["unembed.w"] = weights["unembed.w"][:, old]
            weights["unembed.b"] = weights["unembed.b"][old]
        return cls(tokens, source, config, weights, field)


class OnnxModel(SequenceModel):
    """A causal LM exported to ONNX, run with onnxruntime (optional extra ``[onnx]``).

    The graph's first input takes token ids (batch, length) (int64 or int32); its first output
    gives logits (batch, length, V_model) (the law after every prefix) or (batch, V_model) (the
    law after the whole input only, then the model is run once per prefix length). Sequences are
    ``[bos] + ids``; ``token_ids`` maps the vocabulary to the model's ids (default ``0 .. V-1``),
    and the law is the model's restricted to those ids and renormalised:
    ``mu(t | h) = softmax(logits[token_ids])[t]``.
    """

    kind = "onnx"

    def __init__(self, tokens, source, session, bos: int, token_ids: list[int], max_length: int | None, field="model"):
        super().__init__(tokens, source, field)
        self.session = session
        self.input = session.get_inputs()[0]
        self.output = session.get_outputs()[0].name
        self.dtype = np.int32 if "int32" in self.input.type else np.int64
        self.bos = bos
        self.token_ids = np.asarray(token_ids)
        self.limit = max_length

    def max_length(self):
        return self.limit

    def run(self, ids: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run([self.output], {self.input.name: ids.astype(self.dtype)})[0]
        except Exception as err:  # onnxruntime raises its own exception types
            raise self.error(f"onnxruntime failed on input of shape {ids.shape}: {str(err).splitlines()[0][:200]}") from None
        if out.ndim not in (2, 3) or out.shape[0] != len(ids) or (out.ndim == 3 and out.shape[1] != ids.shape[1]):
            raise self.error(f"output shape {out.shape} for input {ids.shape}; expected (batch, length, V) or (batch, V)")
        if out.shape[-1] <= self.token_ids.max():
            raise self.error(f"the model has {out.shape[-1]} outputs but token_ids go up to {self.token_ids.max()}")
        return out.astype(np.float64)

    def forward(self, ids):
        start = np.full((len(ids), 1), self.bos, dtype=np.int64)
        model_ids = np.concatenate([start, self.token_ids[ids]], axis=1) if ids.shape[1] else start
        out = self.run(model_ids)
        if out.ndim == 3:
            logits = out
        else:  # last-position output only: one run per prefix
            logits = np.stack([out if j == ids.shape[1] else self.run(model_ids[:, : j + 1]) for j in range(ids.shape[1] + 1)], axis=1)
        return log_softmax(logits[..., self.token_ids])


# ---------------------------------------------------------------------------------------------
# Files, dicts and the cache


def write_npz(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (as JSON) and ``arrays`` to ``path`` atomically (temporary file, rename)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        np.savez_compressed(handle, __meta__=np.array(json.dumps(meta)), **arrays)
    partial.replace(path)


def check_same_tokens(own: list[str], tokens: list[str], source: str, field: str) -> None:
    if sorted(own) != sorted(tokens):
        raise ScenarioError(f"{field}.file", f"{source}: the model's tokens {own} differ from the vocabulary {tokens}")


def read_npz(path: Path, source: str, field: str) -> tuple[dict, dict]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except OSError as err:
        raise ScenarioError(f"{field}.file", f"{source}: cannot read: {err.strerror or err}") from None
    except ValueError as err:
        raise ScenarioError(f"{field}.file", f"{source}: not an .npz model file: {err}") from None
    if "__meta__" not in arrays:
        raise ScenarioError(f"{field}.file", f"{source}: no '__meta__' entry; not a model saved by ecology")
    return json.loads(str(arrays.pop("__meta__"))), arrays


def load_npz_model(path: Path, tokens: list[str], source: str, field: str = "model") -> LanguageModel:
    """A model saved by :meth:`NgramModel.save` or :meth:`TransformerModel.save`."""
    meta, arrays = read_npz(path, source, field)
    if meta.get("kind") == "ngram":
        return NgramModel.from_npz(meta, arrays, tokens, source, field)
    if meta.get("kind") == "transformer":
        return TransformerModel.from_npz(meta, arrays, tokens, source, field)
    raise ScenarioError(f"{field}.file", f"{source}: unknown model kind {meta.get('kind')!r} in the file")


ALLOWED_KEYS = {
    "table": {"kind", "file", "values"},
    "ngram": {"kind", "file", "order", "text", "sequence", "unit", "map", "lowercase", "collapse", "smoothing", "discount", "k"},
    "transformer": {"kind", "file"},
    "onnx": {"kind", "file", "bos", "token_ids", "max_length"},
}
_cache: dict = {}


def check_keys(spec: dict, field: str) -> str:
    if not isinstance(spec, dict):
        raise ScenarioError(field, "expected a table such as { kind = \"table\", file = \"model.csv\", values = \"logits\" }")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ScenarioError(f"{field}.kind", f"{kind!r} is not a model kind; expected one of {list(KINDS)}")
    extra = sorted(set(spec) - ALLOWED_KEYS[kind])
    if extra:
        raise ScenarioError(f"{field}.{extra[0]}", f"unknown key for kind '{kind}'; allowed: {sorted(ALLOWED_KEYS[kind])}")
    return kind


def number(spec: dict, key: str, default, field: str, low: float, high: float, integer: bool = False):
    value = spec.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not (low <= value <= high):
        kind = "an integer" if integer else "a number"
        raise ScenarioError(f"{field}.{key}", f"expected {kind} in [{low}, {high}], got {value!r}")
    return value


def ngram_settings(spec: dict, field: str) -> tuple[int, str, float, float]:
    """``(order, smoothing, discount, k)`` of an n-gram dict, checked."""
    order = number(spec, "order", 3, field, 1, 12, integer=True)
    smoothing = spec.get("smoothing", "kneser-ney")
    if smoothing not in ("kneser-ney", "add-k"):
        raise ScenarioError(f"{field}.smoothing", f"'{smoothing}' is not a smoothing; expected 'kneser-ney' or 'add-k'")
    discount = number(spec, "discount", 0.75, field, 1e-9, 1.0)
    k = number(spec, "k", 1.0, field, 1e-12, 1e12)
    return order, smoothing, float(discount), float(k)


def resolve(spec: dict, key: str, base: Path, field: str) -> Path:
    name = spec.get(key)
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{field}.{key}", "expected a file name (relative to the scenario file)")
    path = Path(base) / name
    if not path.is_file():
        where = "" if Path(name).is_absolute() else f" (looked for {path})"
        raise ScenarioError(f"{field}.{key}", f"{name}: no such file{where}")
    return path


def load_model(spec: dict, tokens: list[str], base: str | Path = ".", field: str = "model") -> LanguageModel:
    """The model described by ``spec`` (the scenario's ``model = {kind = ..., ...}``) over
    ``tokens``; files are relative to ``base``. Models are cached in memory per (spec, tokens,
    file contents' size and modification time), so re-reading a scenario does not retrain.
    Errors are :class:`ScenarioError` naming ``field.<key>`` and the file."""
    kind = check_keys(spec, field)
    base = Path(base)
    tokens = list(tokens)
    stamp = []
    for key in ("file", "text"):
        name = spec.get(key)
        if isinstance(name, str) and (base / name).is_file():
            stat = (base / name).stat()
            stamp.append((str((base / name).resolve()), stat.st_size, stat.st_mtime_ns))
    key = (json.dumps(spec, sort_keys=True, default=str), tuple(tokens), tuple(stamp))
    if key not in _cache:
        _cache[key] = build_model(kind, spec, tokens, base, field)
    return _cache[key]


def build_model(kind: str, spec: dict, tokens: list[str], base: Path, field: str) -> LanguageModel:
    if kind == "table":
        values = spec.get("values", "logits")
        if values not in ("logits", "probs"):
            raise ScenarioError(f"{field}.values", f"'{values}' is not a value kind; expected 'logits' or 'probs'")
        path = resolve(spec, "file", base, field)
        return TableModel.from_csv(path, tokens, values, spec["file"], field)
    if kind == "ngram":
        if "file" in spec:
            training = sorted(set(spec) - {"kind", "file"})
            if training:
                raise ScenarioError(f"{field}.{training[0]}", "a saved n-gram model ('file') takes no training keys")
            path = resolve(spec, "file", base, field)
            model = load_npz_model(path, tokens, spec["file"], field)
            if model.kind != "ngram":
                raise ScenarioError(f"{field}.file", f"{spec['file']}: holds a {model.kind} model, not an n-gram model")
            return model
        order, smoothing, discount, k = ngram_settings(spec, field)
        if order * math.log2(len(tokens) + 1) >= CODE_BITS:
            raise ScenarioError(f"{field}.order", f"order {order} over {len(tokens)} tokens is too large (codes exceed 62 bits)")
        stream, source = load_stream(spec, tokens, base, field)
        return NgramModel.train(stream, tokens, order, smoothing, discount, k, source, field)
    if kind == "transformer":
        path = resolve(spec, "file", base, field)
        model = load_npz_model(path, tokens, spec["file"], field)
        if model.kind != "transformer":
            raise ScenarioError(f"{field}.file", f"{spec['file']}: holds a {model.kind} model, not a transformer")
        return model
    return build_onnx(spec, tokens, base, field)


def build_onnx(spec: dict, tokens: list[str], base: Path, field: str) -> OnnxModel:
    path = resolve(spec, "file", base, field)
    try:
        import onnxruntime
    except ImportError:
        raise ScenarioError(f"{field}.kind", "onnx models need onnxruntime: pip install 'simulacra-ecology[onnx]'") from None
    bos = number(spec, "bos", None, field, 0, 2**31 - 1, integer=True) if "bos" in spec else None
    if bos is None:
        raise ScenarioError(f"{field}.bos", "give the model's start-of-text token id (the law of the empty window is the law after it)")
    token_ids = spec.get("token_ids", list(range(len(tokens))))
    if (not isinstance(token_ids, list) or len(token_ids) != len(tokens)
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in token_ids)):
        raise ScenarioError(f"{field}.token_ids", f"expected {len(tokens)} non-negative model token ids, one per vocabulary token")
    max_length = number(spec, "max_length", None, field, 1, 2**31 - 1, integer=True) if "max_length" in spec else None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ScenarioError(f"{field}.file", f"{spec['file']}: not a loadable ONNX model: {str(err).splitlines()[0][:200]}") from None
    return OnnxModel(tokens, spec["file"], session, bos, token_ids, max_length, field)
