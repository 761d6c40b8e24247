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
"""

from __future__ import annotations

import math
import time
import tomllib
from pathlib import Path

import numpy as np

from ecology.errors import ScenarioError, UserError
from ecology.lm.base import LanguageModel
from ecology.lm.ngram import NgramModel, load_stream, ngram_settings
from ecology.lm.transformer import TransformerConfig, TransformerModel

TRANSFORMER_KEYS = {"n_ctx", "n_layer", "n_head", "d_model", "d_mlp"}
TRAINING_DEFAULTS = {"seed": 0, "steps": 1000, "learning_rate": 1e-2, "weight_decay": 0.0, "batch": 0}


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
        raise UserError(f"the training stream has {len(stream)} tokens; it needs more than n_ctx = {n_ctx}")
    index = np.arange(count)[:, None] + np.arange(n_ctx + 1)[None, :]
    targets = stream[index]
    inputs = np.concatenate([np.full((count, 1), start), targets[:, :-1]], axis=1)
    return inputs, targets


def train_transformer(stream: np.ndarray, tokens: list[str], config: TransformerConfig, seed: int, steps: int,
                      learning_rate: float, weight_decay: float, batch: int, log=print) -> tuple[TransformerModel, list[float]]:
    """AdamW on the mean cross-entropy (module docstring); returns the model and the loss per step."""
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
        value, grads = step_grad(params, inputs[chosen], targets[chosen])
        losses.append(float(value))
        for name, g in grads.items():
            first[name] = beta1 * first[name] + (1 - beta1) * g
            second[name] = beta2 * second[name] + (1 - beta2) * g * g
            update = (first[name] / (1 - beta1**step)) / (np.sqrt(second[name] / (1 - beta2**step)) + eps)
            decay = weight_decay * params[name] if params[name].ndim == 2 else 0.0
            params[name] = params[name] - learning_rate * (update + decay)
        if log and (step == 1 or step == steps or step % max(steps // 10, 1) == 0):
            log(f"step {step:>6}/{steps}: loss {value:.6f} nats/token")
    return TransformerModel(tokens, "trained", config, params), losses


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
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)
    return len(windows)


def full_context_laws(model: LanguageModel, length: int) -> list[tuple[str, np.ndarray]]:
    """``(context, mu(. | context))`` for every context of exactly ``length`` tokens."""
    windows = contexts_upto(model.n_tokens, length)
    windows = windows[np.all(windows != model.n_tokens, axis=1)]
    _, next_logp = model.read(windows)
    return [(model.context_text(w, length), np.exp(row)) for w, row in zip(windows, next_logp)]


def load_spec(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None


def section(spec: dict, name: str, allowed: set[str]) -> dict:
    table = spec.get(name, {})
    if not isinstance(table, dict):
        raise ScenarioError(name, "expected a table")
    extra = sorted(set(table) - allowed)
    if extra:
        raise ScenarioError(f"{name}.{extra[0]}", f"unknown key; allowed: {sorted(allowed)}")
    return table


def train_from_spec(path: Path, out: Path | None = None, table: Path | None = None, overrides: dict | None = None,
                    log=print) -> dict:
    """Train the model a spec describes, save it (and its table), return a summary."""
    path = Path(path)
    spec = load_spec(path)
    try:
        return _train(spec, path, out, table, overrides or {}, log)
    except ScenarioError as err:
        raise err.located(str(path)) from None


def _train(spec: dict, path: Path, out: Path | None, table: Path | None, overrides: dict, log) -> dict:
    base = path.parent
    extra = sorted(set(spec) - {"kind", "tokens", "out", "table", "data", "model", "training"})
    if extra:
        raise ScenarioError(extra[0], "unknown key; allowed: kind, tokens, out, table, data, model, training")
    kind = spec.get("kind")
    if kind not in ("transformer", "ngram"):
        raise ScenarioError("kind", f"{kind!r}: expected 'transformer' or 'ngram'")
    tokens = spec.get("tokens")
    plain = isinstance(tokens, list) and all(isinstance(t, str) and t and not set(t) & set(" \t\n,") for t in tokens)
    if not plain or not tokens or len(set(tokens)) != len(tokens):
        raise ScenarioError("tokens", "expected a list of distinct tokens without spaces or commas")
    out = Path(out) if out else (base / spec["out"] if isinstance(spec.get("out"), str) else None)
    if out is None:
        raise ScenarioError("out", "give the output file here or with --out")
    table = Path(table) if table else (base / spec["table"] if isinstance(spec.get("table"), str) else None)
    data = section(spec, "data", {"sequence", "text", "unit", "map", "lowercase", "collapse"})
    stream, source = load_stream(data, tokens, base, "data")
    began = time.perf_counter()
    if kind == "ngram":
        model_spec = section(spec, "model", {"order", "smoothing", "discount", "k"})
        order, smoothing, discount, k = ngram_settings(model_spec, "model")
        model = NgramModel.train(stream, tokens, order, smoothing, discount, k, str(out))
        model.save(out)
        summary = {"kind": kind, "out": str(out), "tokens": len(stream), "order": order, "smoothing": smoothing}
        context = order - 1
    else:
        model_spec = section(spec, "model", TRANSFORMER_KEYS)
        if "n_ctx" not in model_spec:
            raise ScenarioError("model.n_ctx", "give the context length the transformer reads")
        for key, value in model_spec.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(f"model.{key}", f"expected a positive integer, got {value!r}")
        config = TransformerConfig(**model_spec)
        if config.d_model % config.n_head:
            raise ScenarioError("model.n_head", f"d_model = {config.d_model} is not a multiple of n_head = {config.n_head}")
        training = TRAINING_DEFAULTS | section(spec, "training", set(TRAINING_DEFAULTS)) | overrides
        model, losses = train_transformer(stream, tokens, config, int(training["seed"]), int(training["steps"]),
                                          float(training["learning_rate"]), float(training["weight_decay"]),
                                          int(training["batch"]), log)
        model.save(out, {"training": training, "data": source, "final_loss": losses[-1]})
        summary = {"kind": kind, "out": str(out), "tokens": len(stream), "examples": len(stream) - config.n_ctx,
                   "first_loss": losses[0], "final_loss": losses[-1], **training}
        context = config.n_ctx
    summary["seconds"] = round(time.perf_counter() - began, 2)
    if table is not None:
        summary["table"] = str(table)
        summary["table_rows"] = write_table(model, context, table)
    return summary | {"model": model, "context": context}
