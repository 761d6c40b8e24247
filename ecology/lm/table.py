"""The ``table`` kind: ``mu(. | h)`` read from a CSV with one row per context (:class:`TableModel`)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ecology.errors import ScenarioError
from ecology.fields import Strict
from ecology.lm.base import CODE_BITS, ContextModel, encode_contexts, log_softmax, resolve
from ecology.lm.registry import register

PROBABILITY_TOLERANCE = 1e-9  # a "probs" table row must sum to 1 within this


class TableSpec(Strict):
    """A table premise's keys."""

    kind: Literal["table"] = Field(description="the kind")
    file: Annotated[str, Field(min_length=1)] = Field(description="the CSV table, relative to the scenario")
    values: Literal["logits", "probs"] = Field("logits", description="what the rows hold: logits (softmaxed) or "
                                               "probabilities (summing to 1 within 1e-9)")


@register
class TableModel(ContextModel):
    """``mu(. | h)`` read from a table with one row per context ``h`` (no truncation: every
    context a window asks for must be in the table).

    CSV format: header ``context,<token>,<token>,...`` naming every vocabulary token once (any
    order); each row gives a context (its tokens separated by single spaces, empty for the empty
    window) and one value per token: ``values = "logits"`` (the law is ``softmax(row)``; ``-inf``
    allowed) or ``"probs"`` (non-negative, summing to 1 within 1e-9).
    """

    kind = "table"
    spec_model = TableSpec
    docs_row = (r'`{kind = "table", file = "m.csv", values = "logits" \| "probs"}` | one row per context; no '
                'truncation: a context asked for but absent is an error naming it; a single premise needs only the '
                "rows of the windows (no likelihood)")

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        return cls.from_csv(resolve(spec.file, "file", base, field), tokens, spec.values, spec.file, field)

    def __init__(self, tokens, source, log_probs: np.ndarray, codes: np.ndarray, longest: int, field="model"):
        super().__init__(tokens, source, field)
        order = np.argsort(codes)
        self.codes = codes[order]
        self.log_probs = log_probs[order]
        self.longest = longest  # the longest context in the table
        self.limit = (self.n_tokens + 1) ** (longest - 1) if longest >= 1 else 0

    @classmethod
    def from_csv(cls, path: Path, tokens: list[str], values: str, source: str, field: str = "model") -> TableModel:
        def fail(message: str) -> ScenarioError:
            return ScenarioError(f"{field}.file", f"{source}: {message}")

        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except OSError as err:
            raise fail(f"cannot read the table: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise fail("not UTF-8 text; save it as UTF-8") from None
        except csv.Error as err:
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

    def search(self, codes) -> tuple[np.ndarray, np.ndarray]:
        """The row of each context code in the table, and whether it is there."""
        at = np.clip(np.searchsorted(self.codes, codes), 0, len(self.codes) - 1)
        return at, self.codes[at] == codes

    def known(self, codes):
        return self.search(codes)[1]

    def rows(self, codes, where, prefix: bool) -> np.ndarray:
        """The table's row of each context code; a context not in the table is an error naming
        it: the context of a window's law, or (``prefix``) one the likelihood needs (a mixture of
        two or more premises reads it; a single premise does not, see :meth:`LanguageModel.read`)."""
        at, found = self.search(codes)
        if not found.all():
            window, position = where(int(np.argmin(found)))
            context = self.context_text(window, position)
            shown = f"'{context}'" if context else "'' (the empty window)"
            if prefix:
                whole = self.context_text(window, len(window))
                raise self.error(f"context {shown} is not in the table: the mixture's likelihood of the window "
                                 f"'{whole}' needs the law after each of its prefixes; add the row of context {shown}, or "
                                 "make the table the scenario's single premise (whose amplitude is 1: no likelihood)")
            raise self.error(f"context {shown} is not in the table; add a row for it")
        return at

    def laws(self, codes, where):
        return self.log_probs[self.rows(codes, where, prefix=False)]

    def conditionals(self, codes, tokens, where):
        return self.log_probs[self.rows(codes, where, prefix=True), tokens]
