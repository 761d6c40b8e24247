"""Training the models of :mod:`ecology.lm` from a training spec (``ecology train SPEC.toml``).

A spec is a TOML file (paths relative to it)::

    kind = "transformer"          # or "ngram"
    tokens = ["0", "1"]           # the vocabulary, in order
    out = "babygpt.npz"           # where the trained model goes
    table = "babygpt.csv"         # optional: also write every context's law as a logits table
    [data]                        # the token stream: sequence = "...", or text = FILE | "pydoc"
    sequence = "111101111011110"  #   with unit / map / lowercase / collapse (see ecology.lm.ngram.Reduction)
    [model]                       # transformer: n_ctx, n_layer, n_head, d_model, d_mlp
    n_ctx = 3                     # n-gram: order, smoothing, discount, k
    [training]                    # transformer only: seed, steps, learning_rate, weight_decay, batch
    seed = 1337

Transformer training (needs the optional extra ``[train]``: autograd, pure numpy). The examples
are every stretch of ``n_ctx + 1`` consecutive tokens ``s_i .. s_{i+n_ctx}`` of the stream: the
input is ``[start, s_i .. s_{i+n_ctx-1}]`` and the targets ``s_i .. s_{i+n_ctx}``, so the model
learns the law after every prefix of a window, the empty one included (the start token). The
loss is the mean cross-entropy ``-(1/N) sum log mu(target | prefix)`` over all positions of the
batch, minimised with AdamW (decoupled weight decay on matrices) from a seeded initialisation
(weights ``N(0, 0.02^2)``, residual projections ``N(0, (0.02 / sqrt(2 n_layer))^2)``); minibatches,
when smaller than the example set, are drawn with the same seed. The same spec and seed give
the same weights.

N-gram training counts the stream (:meth:`ecology.lm.ngram.NgramModel.train`); it is deterministic.
Its ``table`` holds the law after every context of at most ``order - 1`` tokens: the whole model
on windows of that length (a longer window, which the n-gram truncates, is absent from the table
and named as such when a scenario reads it).

Before anything is trained (:func:`train_from_spec`): the spec is validated by the pydantic model
of its ``kind`` (:data:`SPECS`; strict types, ranges, the keys of the other kind named as such;
``[data]`` and the n-gram's settings are checked by :func:`ecology.lm.ngram.load_stream` and
:func:`ecology.lm.ngram.ngram_settings`, as for a scenario's n-gram); the output files are checked
and locked (an existing one is refused unless ``replace``); the memory and operations of training
are estimated (:func:`training_need`) and refused over the budgets. A loss, gradient or weight
that leaves a double's range stops the training (:func:`diverged`): no model is written. The
files are written whole or not at all, never through a symlink (:mod:`ecology.io.safe`).
"""

from __future__ import annotations

import math
import os
import time
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator

from ecology.errors import OutputError, ScenarioError, UnreadableInput, UserError
from ecology.fields import GIB, Strict, Token, pydantic_error, toml_repr
from ecology.io import safe
from ecology.lm.base import LanguageModel
from ecology.lm.ngram import NgramModel, load_stream, ngram_settings
from ecology.lm.transformer import TransformerConfig, TransformerModel
from ecology.progress import Progress, silent


def autograd_forward(params: dict, ids: np.ndarray, config: TransformerConfig):
    """The transformer of :class:`ecology.lm.transformer.TransformerModel` written with ``autograd.numpy``:
    (B, n) ids (start token included) -> (B, n, V) log-probabilities. Written separately from
    the numpy inference so the two cross-check each other."""
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    def norm(x, g, b):
        mean = anp.mean(x, axis=-1, keepdims=True)
        var = anp.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / anp.sqrt(var + 1e-5) * g + b

    batch, n = ids.shape
    d, heads = config.d_model, config.n_head
    d_head = d // heads
    mask = np.triu(np.full((n, n), -1e30), k=1)
    x = params["wte"][ids] + params["wpe"][:n]
    for i in range(config.n_layer):
        def p(name, i=i):  # the weight ``name`` of layer i
            return params[f"l{i}.{name}"]

        h = norm(x, p("ln1.g"), p("ln1.b"))
        qkv = anp.dot(h, p("qkv.w")) + p("qkv.b")
        q, k, v = (anp.transpose(anp.reshape(qkv[:, :, j * d : (j + 1) * d], (batch, n, heads, d_head)), (0, 2, 1, 3))
                   for j in range(3))
        scores = anp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d_head) + mask
        attention = anp.exp(scores - logsumexp(scores, axis=-1, keepdims=True))
        mixed = anp.reshape(anp.transpose(anp.einsum("bhqk,bhkd->bhqd", attention, v), (0, 2, 1, 3)), (batch, n, d))
        x = x + anp.dot(mixed, p("out.w")) + p("out.b")
        h = norm(x, p("ln2.g"), p("ln2.b"))
        f = anp.dot(h, p("fc.w")) + p("fc.b")
        f = 0.5 * f * (1.0 + anp.tanh(math.sqrt(2.0 / math.pi) * (f + 0.044715 * f**3)))
        x = x + anp.dot(f, p("proj.w")) + p("proj.b")
    logits = anp.dot(norm(x, params["lnf.g"], params["lnf.b"]), params["unembed.w"]) + params["unembed.b"]
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def initial_weights(config: TransformerConfig, n_tokens: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded initialisation (module docstring)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in config.parameter_shapes(n_tokens).items():
        if name.endswith(".g"):
            weights[name] = np.ones(shape)
        elif name.endswith(".b"):
            weights[name] = np.zeros(shape)
        else:
            scale = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith(("out.w", "proj.w")) else 0.02
            weights[name] = rng.normal(0.0, scale, shape)
    return weights


def examples(stream: np.ndarray, n_ctx: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """(E, n_ctx + 1) inputs ``[start, s_i .. s_{i+n_ctx-1}]`` and targets ``s_i .. s_{i+n_ctx}``."""
    count = len(stream) - n_ctx
    if count < 1:
        raise ScenarioError("model.n_ctx", f"the training stream has {len(stream)} tokens; it needs more than n_ctx = {n_ctx}")
    index = np.arange(count)[:, None] + np.arange(n_ctx + 1)[None, :]
    targets = stream[index]
    inputs = np.concatenate([np.full((count, 1), start), targets[:, :-1]], axis=1)
    return inputs, targets


def train_transformer(stream: np.ndarray, tokens: list[str], config: TransformerConfig, seed: int, steps: int,
                      learning_rate: float, weight_decay: float, batch: int, log=print,
                      progress: Progress = silent) -> tuple[TransformerModel, list[float]]:
    """AdamW on the mean cross-entropy (module docstring); returns the model and the loss per step.
    ``progress`` (:mod:`ecology.progress`) hears ``("training steps", step, steps, "loss L nats/token")``
    after every step (a step's gradient costs far more than the call)."""
    try:
        from autograd import value_and_grad
    except ImportError:
        raise UserError("training a transformer needs autograd: pip install 'simulacra-ecology[train]'") from None
    inputs, targets = examples(stream, config.n_ctx, len(tokens))
    params = initial_weights(config, len(tokens), seed)
    rng = np.random.default_rng([seed, 1])

    def loss(p, x, y):
        return -_picked_mean(autograd_forward(p, x, config), y)

    step_grad = value_and_grad(loss)
    first, second = ({n: np.zeros_like(w) for n, w in params.items()} for _ in range(2))
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    losses = []
    full = batch <= 0 or batch >= len(inputs)
    for step in range(1, steps + 1):
        chosen = slice(None) if full else rng.integers(0, len(inputs), batch)
        with np.errstate(all="ignore"):  # an overflow shows as a non-finite loss or gradient, refused below
            value, grads = step_grad(params, inputs[chosen], targets[chosen])
            if not (math.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads.values())):
                raise diverged(step, f"loss {float(value):g}" if not math.isfinite(value)
                               else "a gradient is infinite or NaN", learning_rate)
            losses.append(float(value))
            for name, g in grads.items():
                first[name] = beta1 * first[name] + (1 - beta1) * g
                second[name] = beta2 * second[name] + (1 - beta2) * g * g
                update = (first[name] / (1 - beta1**step)) / (np.sqrt(second[name] / (1 - beta2**step)) + eps)
                decay = weight_decay * params[name] if params[name].ndim == 2 else 0.0
                params[name] = params[name] - learning_rate * (update + decay)
        progress("training steps", step, steps, f"loss {value:.4f} nats/token")
        if log and (step == 1 or step == steps or step % max(steps // 10, 1) == 0):
            log(f"step {step:>6}/{steps}: loss {value:.6f} nats/token")
    if not all(np.all(np.isfinite(w)) for w in params.values()):
        raise diverged(steps, "a weight is infinite or NaN after the last update", learning_rate)
    return TransformerModel(tokens, "trained", config, params), losses


def diverged(step: int, what: str, learning_rate: float) -> ScenarioError:
    """Training that left a double's range (a non-finite loss, gradient or weight): stopped, never saved."""
    return ScenarioError("training.learning_rate", f"training diverged at step {step} ({what}); nothing was written: "
                         f"lower training.learning_rate (now {learning_rate:g})")


def _picked_mean(logp, targets: np.ndarray):
    """Mean of ``logp[b, j, targets[b, j]]`` (autograd-friendly: a one-hot product)."""
    import autograd.numpy as anp

    onehot = np.eye(logp.shape[-1])[targets]
    return anp.sum(logp * onehot) / targets.size


def contexts_upto(n_tokens: int, length: int) -> np.ndarray:
    """Canonical windows (pad = V) of every context of 0 .. ``length`` tokens, shortest first."""
    out = []
    for m in range(length + 1):
        grid = np.indices((n_tokens,) * m).reshape(m, -1).T if m else np.zeros((1, 0), dtype=np.int64)
        out.append(np.concatenate([np.full((len(grid), length - m), n_tokens), grid], axis=1))
    return np.concatenate(out).astype(np.int64)


def write_table(model: LanguageModel, length: int, path: Path) -> int:
    """Write the law after every context of at most ``length`` tokens as a ``values = "logits"``
    table (the log-probabilities, full precision); returns the number of rows."""
    windows = contexts_upto(model.n_tokens, length)
    _, next_logp = model.read(windows)
    lines = ["context," + ",".join(model.tokens)]
    for window, row in zip(windows, next_logp):
        lines.append(model.context_text(window, len(window)) + "," + ",".join(repr(float(x)) for x in row))
    safe.write_file_atomically(path, "\n".join(lines) + "\n")  # whole or not at all, never through a symlink
    return len(windows)


def full_context_laws(model: LanguageModel, length: int) -> list[tuple[str, np.ndarray]]:
    """``(context, mu(. | context))`` for every context of exactly ``length`` tokens."""
    windows = contexts_upto(model.n_tokens, length)
    windows = windows[np.all(windows != model.n_tokens, axis=1)]
    _, next_logp = model.read(windows)
    return [(model.context_text(w, length), np.exp(row)) for w, row in zip(windows, next_logp)]


MAX_SPEC_BYTES = 2**20  # a training spec is a few lines of TOML (its data lives in `text` files)


def load_spec(path: Path) -> dict:
    """The TOML table of a spec: a regular UTF-8 file of at most :data:`MAX_SPEC_BYTES` (a FIFO or
    a device is refused, not read)."""
    try:
        text = safe.read_regular_file(path, MAX_SPEC_BYTES, "a training spec (TOML)").decode("utf-8")
        return tomllib.loads(text)
    except UnreadableInput as err:
        raise UserError(f"{path}: {err.reason}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start} is not valid UTF-8); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None


# ---------------------------------------------------------------------------------------------
# The spec, validated (pydantic, strict: no value is converted)


def _no_comma(token: str) -> str:
    if "," in token:
        raise ValueError(f"token {token!r} is not allowed: the table is comma-separated, so tokens have no commas")
    return token


class TransformerShape(Strict):
    """``[model]`` of a transformer spec: :class:`ecology.lm.transformer.TransformerConfig`."""

    n_ctx: int = Field(ge=1, description="a whole number >= 1: the context length")
    n_layer: int = Field(2, ge=1, description="a whole number >= 1")
    d_model: int = Field(16, ge=1, description="a whole number >= 1, a multiple of n_head")
    n_head: int = Field(2, ge=1, description="a whole number >= 1 that divides d_model")
    d_mlp: int = Field(64, ge=1, description="a whole number >= 1")

    @field_validator("n_head")
    @classmethod
    def _divides_width(cls, n_head: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")
        if d_model is not None and d_model % n_head:
            raise ValueError(f"n_head = {n_head} does not divide d_model = {d_model}; choose a divisor of d_model")
        return n_head


class TrainingSettings(Strict):
    """``[training]`` of a transformer spec (module docstring)."""

    seed: int = Field(0, ge=0, lt=2**63, description="a whole number, 0 <= seed < 2^63")
    steps: int = Field(1000, ge=1, description="a whole number >= 1")
    learning_rate: float = Field(1e-2, gt=0.0, description="a finite number > 0")
    weight_decay: float = Field(0.0, ge=0.0, description="a finite number >= 0")
    batch: int = Field(0, ge=0, description="a whole number >= 0: examples per step (0, or more than there are: all of them)")


class NgramShape(Strict):
    """``[model]`` of an n-gram spec: the types here; the ranges and defaults are those of a
    scenario's n-gram (:func:`ecology.lm.ngram.ngram_settings`, which reads the same table)."""

    order: int | None = Field(None, description="a whole number (range and default: the `ngram` kind above)")
    smoothing: str | None = Field(None, description="a string, \"kneser-ney\" or \"add-k\" (as above)")
    discount: float | None = Field(None, description="a number (as above)")
    k: float | None = Field(None, description="a number (as above)")


class SpecCommon(Strict):
    """The keys of both kinds; ``[data]`` is read by :func:`ecology.lm.ngram.load_stream`."""

    kind: str = Field(description="\"transformer\" or \"ngram\"")
    tokens: list[Annotated[Token, AfterValidator(_no_comma)]] = Field(
        min_length=1, description="the vocabulary: a list of distinct tokens (no commas), in order")
    out: str | None = Field(
        None, min_length=1, description="the model file (.npz), relative to the spec (or `--out`); required by one of them")
    table: str | None = Field(None, min_length=1, description="also write the law after every context of at most n_ctx "
                              "(transformer) or order - 1 (n-gram) tokens as a logits CSV (or `--table`)")
    data: dict = Field(description="a table: `sequence = \"...\"` (inline tokens) or `text = FILE \\| \"pydoc\"` "
                       "with `unit`, `map`, `lowercase`, `collapse`, as the `ngram` kind above")

    @field_validator("tokens")
    @classmethod
    def _distinct(cls, tokens: list[str]) -> list[str]:
        twice = next((t for i, t in enumerate(tokens) if t in tokens[:i]), None)
        if twice is not None:
            raise ValueError(f"token {twice!r} is listed twice; the vocabulary lists distinct tokens")
        return tokens


class TransformerSpec(SpecCommon):
    kind: Literal["transformer"]
    model: TransformerShape
    training: TrainingSettings = TrainingSettings()


class NgramSpec(SpecCommon):
    kind: Literal["ngram"]
    model: NgramShape = NgramShape()


SPECS = {"transformer": TransformerSpec, "ngram": NgramSpec}  # the spec's model, by its `kind`


def spec_keys_table() -> str:
    """The markdown table of a spec's keys, their kinds, rules and defaults (docs/models.md)."""
    sections = [("", SpecCommon, "both"), ("model.", TransformerShape, "transformer"),
                ("model.", NgramShape, "ngram"), ("training.", TrainingSettings, "transformer")]
    rows = ["| key | kind | value | default |", "|---|---|---|---|"]
    for prefix, model, kind in sections:
        for name, field in model.model_fields.items():
            default = "required" if field.is_required() else "" if field.default is None else f"`{field.default!r}`"
            rows.append(f"| `{prefix}{name}` | {kind} | {field.description} | {default} |")
    return "\n".join(rows)


def _keys(spec_type: type[Strict], section: str) -> list[str]:
    """The keys a spec of this type allows at the top (``section = ""``) or in a table."""
    if not section:
        return list(spec_type.model_fields)
    field = spec_type.model_fields.get(section)
    sub = getattr(field, "annotation", None) if field else None
    return list(sub.model_fields) if isinstance(sub, type) and issubclass(sub, Strict) else []


def spec_error(err: ValidationError, kind: str, overridden: dict) -> ScenarioError:
    """The first validation error as one line naming the dotted key: an unknown key with the
    keys allowed there (or the kind it belongs to), a bad value with the rule it breaks (the
    field's description); anything else as scenarios report it (:func:`ecology.fields.pydantic_error`)."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misplaced key explains the rest
    loc = [str(part) for part in first["loc"]]
    where = ".".join(loc)
    if first["type"] == "extra_forbidden":
        section, key = ".".join(loc[:-1]), loc[-1]
        allowed = _keys(SPECS[kind], section)
        other = next(k for k in SPECS if k != kind)
        message = f"unknown key; the keys allowed here are {', '.join(allowed)}"
        if key in _keys(SPECS[other], section):
            message = f"belongs to {other} specs, not {kind} ones; the keys allowed here are {', '.join(allowed)}"
        return ScenarioError(where, message)
    spec_type = SPECS[kind]
    if len(loc) == 2 and loc[0] in ("model", "training"):
        section_type = spec_type.model_fields[loc[0]].annotation
        described = section_type.model_fields[loc[1]].description if loc[1] in section_type.model_fields else None
        rule = described and described.split(" (")[0].split(":")[0]  # the rule, without its gloss
        if rule and first["type"] not in ("value_error", "missing"):
            flag = f" (from --{loc[1]})" if loc[0] == "training" and loc[1] in overridden else ""
            never = "; values are never converted" if first["type"].endswith("_type") else ""
            return ScenarioError(where, f"expected {rule}, got {toml_repr(first.get('input'))}{flag}{never}")
    return pydantic_error(err)


def parse_spec(raw: dict, overrides: dict) -> TransformerSpec | NgramSpec:
    """The validated spec of the kind ``raw["kind"]`` names, with the command line's
    ``overrides`` of ``[training]`` (``--seed``, ``--steps``) validated as if written there."""
    kind = raw.get("kind")
    if kind not in SPECS:
        raise ScenarioError("kind", f"{toml_repr(kind) if 'kind' in raw else 'missing'}: "
                            "write kind = \"transformer\" or kind = \"ngram\"")
    if overrides:
        if kind == "ngram":
            raise ScenarioError("", f"{', '.join('--' + k for k in overrides)}: an n-gram is counted, not trained by "
                                "steps; these flags apply to transformer specs")
        training = raw.get("training", {})
        if isinstance(training, dict):
            raw = raw | {"training": training | overrides}
    try:
        return SPECS[kind].model_validate(raw)
    except ValidationError as err:
        raise spec_error(err, kind, overrides) from None


# ---------------------------------------------------------------------------------------------
# The budget, checked before training


DEFAULT_MAX_MEMORY_GIB = 8.0  # the --max-memory default, as for runs
DEFAULT_MAX_WORK = 2 * 10**11  # the --max-work default of training (calibration in docs/models.md)
DISPATCH_WORK = 10**7  # per layer and step: autograd's Python dispatch, counted as multiply-adds
ACTIVATION_FACTOR = 1.5  # above the fitted floats (ecology.core.budget.SAFETY)


def parameter_count(shape: TransformerShape, n_tokens: int) -> int:
    """Weights of :meth:`TransformerConfig.parameter_shapes`, in closed form: per layer
    ``4 d^2 + 2 d d_mlp + 9 d + d_mlp``, plus ``(V + 1) d + (n_ctx + 1) d + 2 d + d V + V``."""
    d, m, V = shape.d_model, shape.d_mlp, n_tokens
    return shape.n_layer * (4 * d * d + 2 * d * m + 9 * d + m) + (V + 1) * d + (shape.n_ctx + 1) * d + 2 * d + d * V + V


def forward_work(shape: TransformerShape, n_tokens: int) -> int:
    """Multiply-adds of one forward pass over ``n = n_ctx + 1`` positions, as
    :meth:`TransformerModel.read_cost`: per layer ``n (4 d^2 + 2 d d_mlp) + 2 n^2 d``, then ``n d V``."""
    n, d = shape.n_ctx + 1, shape.d_model
    return shape.n_layer * (n * (4 * d * d + 2 * d * shape.d_mlp) + 2 * n * n * d) + n * d * n_tokens


def activation_floats(shape: TransformerShape, n_tokens: int) -> int:
    """Floats autograd keeps per example for the backward pass (fitted, see :func:`training_need`):
    ``n (n_layer (8 d + 10 d_mlp + 8 n_head n) + 8 V)``."""
    n = shape.n_ctx + 1
    per_layer = 8 * shape.d_model + 10 * shape.d_mlp + 8 * shape.n_head * n
    return n * (shape.n_layer * per_layer + 8 * n_tokens)


def table_floats(shape: TransformerShape, n_tokens: int) -> int:
    """Floats the numpy forward pass holds per window while the table is read, all windows at
    once (fitted, rounded up, on ``tracemalloc``'s peak of :func:`write_table` over 5 shapes,
    which it bounds by factors 1.2-2.5): ``n (n_layer (2 d + d_mlp + 2 n_head n) + 2 V + 48)``."""
    n = shape.n_ctx + 1
    return n * (shape.n_layer * (2 * shape.d_model + shape.d_mlp + 2 * shape.n_head * n) + 2 * n_tokens + 48)


def table_rows(n_tokens: int, length: int) -> float:
    """Contexts of 0 .. ``length`` tokens: ``sum_m V^m = (V^(length+1) - 1) / (V - 1)``, in floats
    (infinite beyond a double's range: a huge ``length`` costs nothing to estimate)."""
    if n_tokens == 1:
        return float(length + 1)
    log_rows = (length + 1) * math.log(n_tokens) - math.log(n_tokens - 1)
    if log_rows < 40:  # exact
        return float((n_tokens ** (length + 1) - 1) // (n_tokens - 1))
    return math.exp(log_rows) if log_rows < 700 else math.inf


def training_need(shape: TransformerShape, n_tokens: int, n_examples: int, settings: TrainingSettings,
                  table: bool) -> tuple[dict[str, float], float]:
    """Bytes (by part) and operations of training, from the spec and the number of examples E.

    With P weights (:func:`parameter_count`), B = ``batch`` (E when 0 or larger), n = n_ctx + 1:

    - weights, AdamW's two moments, the gradients and the update's temporaries: ``6 P`` floats;
    - one batch's activations kept by autograd: ``B`` x :func:`activation_floats`; the
      coefficients are a least-squares fit, rounded up, of ``tracemalloc``'s peak over one step
      on 13 shapes (B 8-64, n 5-129, d 8-256, d_mlp 8-1024, heads 1-16, V 3-1000: fitted
      ``4.5 d + 5.2 d_mlp + 8.0 n_head n`` per layer and position, ``7.4 V``, ``6.0 P``), times
      ``ACTIVATION_FACTOR``;
    - the examples: ``5 E n`` int64 (:func:`examples` holds the index, the targets, a shifted copy
      and the inputs at once);
    - with a table, every context of at most n_ctx tokens read at once: rows x
      :func:`table_floats`, times ``ACTIVATION_FACTOR``, plus 40 bytes per printed law entry.

    Operations: ``steps x (3 B F + 20 P + DISPATCH_WORK (n_layer + 1))``, F = :func:`forward_work`
    (the backward pass costs about twice the forward; AdamW is about 20 operations per weight;
    autograd's Python dispatch dominates small models: measured about 10 ms per layer and step,
    which is ``DISPATCH_WORK`` multiply-adds at the measured 1 G multiply-adds/s), plus a table's
    rows x F."""
    params = parameter_count(shape, n_tokens)
    batch = n_examples if settings.batch <= 0 or settings.batch >= n_examples else settings.batch
    per_example = activation_floats(shape, n_tokens)
    need = {"weights, AdamW moments and gradients": 8.0 * 6 * params,
            "one batch's activations": 8.0 * ACTIVATION_FACTOR * batch * per_example,
            "the examples": 8.0 * 5 * n_examples * (shape.n_ctx + 1)}
    work = settings.steps * (3.0 * batch * forward_work(shape, n_tokens) + 20.0 * params
                             + DISPATCH_WORK * (shape.n_layer + 1))
    if table:
        rows = table_rows(n_tokens, shape.n_ctx)
        need["the table"] = rows * (8.0 * ACTIVATION_FACTOR * table_floats(shape, n_tokens) + 40.0 * n_tokens)
        work += rows * forward_work(shape, n_tokens)
    return need, work


def check_budget(need: dict[str, float], work: float, max_memory_gib: float, max_work: float, lower: dict[str, str]) -> None:
    """Refuse (one line) a training whose memory or operations exceed the budgets; ``lower``
    names, per part of ``need``, the keys to lower."""
    total = sum(need.values())
    if total > max_memory_gib * GIB:
        parts = ", ".join(f"{what} {gib(size)}" for what, size in need.items() if size >= 0.01 * total)
        largest = max(need, key=need.get)
        raise ScenarioError("", f"training would need about {gib(total)} ({parts}); the budget is "
                            f"{max_memory_gib:g} GiB: lower {lower[largest]}, or raise --max-memory")
    if work > max_work:
        raise ScenarioError("", f"training would take about {work:.3g} operations; the budget is {max_work:.3g}: "
                            "lower training.steps, training.batch or the model's size, or raise --max-work")


def gib(size: float) -> str:
    """A size in GiB as the messages print it (thousands separated, exponents beyond a million)."""
    if not math.isfinite(size):
        return "more than 1e290 GiB"
    return f"{size / GIB:,.0f} GiB" if 100 * GIB <= size < 1e6 * GIB else f"{size / GIB:.3g} GiB"


def table_need(n_tokens: int, length: int) -> tuple[dict[str, float], float]:
    """An n-gram's table: rows of ``length + 1`` codes read through the count lookups, and
    40 bytes per printed law entry; about ``V x length`` operations a row."""
    rows = table_rows(n_tokens, length)
    return {"the table": rows * (8.0 * 8 * (length + 1) + 40.0 * n_tokens)}, rows * n_tokens * max(length, 1)


# ---------------------------------------------------------------------------------------------
# Training, outputs claimed first


def train_from_spec(path: Path, out: Path | None = None, table: Path | None = None, overrides: dict | None = None,
                    log=print, replace: bool = False, max_memory_gib: float = DEFAULT_MAX_MEMORY_GIB,
                    max_work: float = DEFAULT_MAX_WORK, progress: Progress = silent) -> dict:
    """Train the model a spec describes, save it (and its table), return a summary (a transformer's
    steps reported to ``progress``, :func:`train_transformer`).

    Before any training: the spec is validated, ``out`` (and ``table``) checked and locked
    (:func:`ecology.io.safe.claim_new_file`: an existing file is refused unless ``replace``),
    and the memory and operations estimated (:func:`training_need`) against the budgets. The
    files are written whole or not at all, never through a symlink."""
    path = Path(path)
    raw = load_spec(path)
    try:
        spec = parse_spec(raw, overrides or {})
        out, table = output_paths(spec, path.parent, out, table)
    except ScenarioError as err:
        raise err.located(str(path)) from None
    with ExitStack() as claims:
        for target in (out, table) if table is not None else (out,):
            claims.enter_context(safe.claim_new_file(target, replace))
        try:
            return _train(spec, path.parent, out, table, replace, log, max_memory_gib, max_work, progress)
        except ScenarioError as err:
            raise err.located(str(path)) from None


def output_paths(spec, base: Path, out: Path | None, table: Path | None) -> tuple[Path, Path | None]:
    """``out`` and ``table`` from the command line, else from the spec (relative to it)."""
    for flag, given in (("--out", out), ("--table", table)):
        if given is not None and not str(given):
            raise UserError(f"{flag}: an empty path; give a file name")
    out = Path(out) if out is not None else (base / spec.out if spec.out else None)
    if out is None:
        raise ScenarioError("out", "give the output file here or with --out")
    table = Path(table) if table is not None else (base / spec.table if spec.table else None)
    if table is not None and os.path.abspath(table) == os.path.abspath(out):
        raise ScenarioError("table", f"{table} is also the model's file (out); choose another file")
    return out, table


def _train(spec, base: Path, out: Path, table: Path | None, replace: bool, log, max_memory_gib: float,
           max_work: float, progress: Progress = silent) -> dict:
    tokens = list(spec.tokens)
    stream, source = load_stream(spec.data, tokens, base, "data")
    began = time.perf_counter()
    if spec.kind == "ngram":
        order, smoothing, discount, k = ngram_settings(spec.model.model_dump(exclude_none=True), "model")
        context = order - 1
        if table is not None:
            check_budget(*table_need(len(tokens), context), max_memory_gib, max_work,
                         {"the table": "model.order, or drop the table"})
        model = NgramModel.train(stream, tokens, order, smoothing, discount, k, str(out))
        write_output(out, replace, lambda: model.save(out))
        summary = {"kind": spec.kind, "out": str(out), "tokens": len(stream), "order": order, "smoothing": smoothing}
    else:
        shape, settings = spec.model, spec.training
        n_examples = len(stream) - shape.n_ctx
        if n_examples < 1:
            raise ScenarioError("model.n_ctx", f"the training stream has {len(stream)} tokens; it needs more than "
                                f"n_ctx = {shape.n_ctx}")
        batch = "training.batch" if settings.batch else f"training.batch (0: all {n_examples} examples at once)"
        check_budget(*training_need(shape, len(tokens), n_examples, settings, table is not None), max_memory_gib,
                     max_work, {"weights, AdamW moments and gradients": "model.d_model, model.d_mlp or model.n_layer",
                                "one batch's activations": f"{batch}, model.n_ctx or model.d_mlp",
                                "the examples": "model.n_ctx or the data", "the table": "model.n_ctx, or drop the table"})
        config = TransformerConfig(**shape.model_dump())
        model, losses = train_transformer(stream, tokens, config, settings.seed, settings.steps, settings.learning_rate,
                                          settings.weight_decay, settings.batch, log, progress)
        training = settings.model_dump()
        write_output(out, replace, lambda: model.save(out, {"training": training, "data": source,
                                                            "final_loss": losses[-1]}))
        summary = {"kind": spec.kind, "out": str(out), "tokens": len(stream), "examples": n_examples,
                   "first_loss": losses[0], "final_loss": losses[-1], **training}
        context = shape.n_ctx
    summary["seconds"] = round(time.perf_counter() - began, 2)
    if table is not None:
        try:
            summary["table_rows"] = write_output(table, replace, lambda: write_table(model, context, table))
        except OutputError as err:
            raise OutputError(f"wrote {out}, but {err}") from None
        summary["table"] = str(table)
    return summary | {"model": model, "context": context}


def write_output(path: Path, replace: bool, write):
    """Run ``write()`` (an atomic write of ``path``); a failure (disk full, read-only) is one
    line naming ``path``, with nothing written there."""
    if not replace and os.path.lexists(path):
        raise OutputError(f"{path}: appeared while training; nothing was written there")
    try:
        return write()
    except OSError as err:
        raise OutputError(f"writing {path} failed, nothing was written there: {err.strerror or err}") from None
