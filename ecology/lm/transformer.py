"""The ``transformer`` kind: a small decoder-only transformer saved as ``.npz``, its forward pass in
numpy (:class:`TransformerModel`); trained by :mod:`ecology.lm.train`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, ValidationError, model_validator

from ecology.errors import ScenarioError
from ecology.fields import Strict
from ecology.lm.base import SequenceModel, log_softmax, resolve
from ecology.lm.files import check_same_tokens, load_npz_model, write_npz
from ecology.lm.registry import register


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
    """``(x - mean) / sqrt(var + eps) * gain + bias`` over the last axis; a variance beyond a
    double's range raises :class:`FloatingPointError` (it would silently flatten the row)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / x.shape[-1]
    if not np.all(np.isfinite(var)):  # einsum's sum of squares overflows without a floating-point flag
        raise FloatingPointError("overflow in the layer norm's variance")
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


def _positive_integer(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a positive integer")
    return value


Size = Annotated[int, BeforeValidator(_positive_integer)]


class ConfigMeta(Strict):
    """The ``config`` of a saved transformer (the fields of :class:`TransformerConfig`)."""

    n_ctx: Size
    n_layer: Size
    n_head: Size
    d_model: Size
    d_mlp: Size

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ConfigMeta:
        if self.d_model % self.n_head:
            raise ValueError(f"n_head = {self.n_head} does not divide d_model = {self.d_model}")
        return self


class TransformerMeta(Strict):
    """The ``__meta__`` of a saved transformer (:meth:`TransformerModel.save`; ``ecology train``
    adds its ``training`` settings, ``data`` source and ``final_loss``)."""

    kind: Literal["transformer"]
    tokens: list[str]
    config: ConfigMeta
    training: dict[str, Any] | None = None
    data: str | None = None
    final_loss: float | None = None


class TransformerSpec(Strict):
    """A transformer premise's keys."""

    kind: Literal["transformer"] = Field(description="the kind")
    file: Annotated[str, Field(min_length=1)] = Field(description="the saved model (.npz, written by `ecology train`)")


@register
class TransformerModel(SequenceModel):
    """A small decoder-only transformer, forward pass in numpy (float64).

    ``x_0 = wte[ids] + wpe[0 .. m]`` for ids ``[start, w_1 .. w_m]``; each layer ``i`` (pre-norm):
    ``x += Attn(LN1(x))`` with causal multi-head softmax attention
    ``softmax(q k^T / sqrt(d_head) + causal mask) v`` projected by ``out``, then
    ``x += proj(GELU(fc(LN2(x))))``; finally ``logits = LN_f(x) unembed.w + unembed.b`` and the
    law after prefix ``j`` is ``log_softmax(logits[j])``.
    """

    kind = "transformer"
    spec_model = TransformerSpec
    docs_row = '`{kind = "transformer", file = "m.npz"}` | numpy forward; the window may hold at most `n_ctx` tokens'

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        model = load_npz_model(resolve(spec.file, "file", base, field), tokens, spec.file, field)
        if model.kind != "transformer":
            raise ScenarioError(f"{field}.file", f"{spec.file}: holds a {model.kind} model, not a transformer")
        return model

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
        """Log-probabilities after every prefix; a forward pass that overflowed (non-finite
        logits, from weights too large for a double's range) is an error, never a law."""
        start = np.full((len(ids), 1), self.n_tokens, dtype=np.int64)
        try:  # an overflow inside (a squared activation in the norms or GELU) may leave finite, wrong logits
            with np.errstate(over="raise", invalid="raise"):
                logits = self.logits(np.concatenate([start, ids], axis=1))
        except FloatingPointError:
            logits = np.full(1, np.inf)
        if not np.all(np.isfinite(logits)):
            raise self.error("the forward pass overflowed (non-finite logits): the weights are too large for a "
                             "double's range; retrain or rescale the model")
        return log_softmax(logits)

    def save(self, path: Path, extra: dict | None = None) -> None:
        meta = {"kind": "transformer", "tokens": self.tokens, "config": self.config.__dict__} | (extra or {})
        write_npz(path, meta, self.weights)

    @classmethod
    def from_npz(cls, meta: dict, data, tokens, source, field="model") -> TransformerModel:
        def fail(message):
            return ScenarioError(f"{field}.file", f"{source}: {message}")

        try:
            checked = TransformerMeta.model_validate(meta)
        except ValidationError as err:
            first = err.errors()[0]
            key = next((str(part) for part in reversed(first["loc"]) if isinstance(part, str)), "")
            if first["type"] == "missing":
                reason = f"'{key}' is missing"
            else:
                found = "" if isinstance(first.get("input"), dict) else f"{key} = {first.get('input')!r}; "
                reason = found + first["msg"].removeprefix("Value error, ")
            raise fail(f"bad transformer config in the file: {reason}") from None
        config = TransformerConfig(**checked.config.model_dump())
        own = list(meta["tokens"])
        check_same_tokens(own, tokens, source, field)
        layers = {name.split(".")[0] for name in data if name[:1] == "l" and name.split(".")[0][1:].isdigit()}
        if len(layers) != config.n_layer:  # checked before the weights' names are listed (n_layer may be huge)
            raise fail(f"the config says n_layer = {config.n_layer} but the file holds the weights of {len(layers)} "
                       "layers; the file was altered")
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
