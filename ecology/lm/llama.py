"""The llama architecture as a batched numpy forward pass with a key/value cache (:class:`Llama`).

For token ids ``x_1 .. x_n`` at positions ``0 .. n-1`` (llama.cpp's convention; the GGUF file's
weights as :mod:`ecology.lm.pretrained` dequantises them), with ``d`` the width, ``H`` query heads
and ``G`` key/value heads of ``e = d / H`` dimensions:

    h_0 = E[x]                                                   token embedding
    per block l:
      a = RMSNorm(h) * g_attn,    RMSNorm(z) = z / sqrt(mean(z^2) + eps)
      q = a Wq, k = a Wk, v = a Wv                               (H e, G e, G e columns)
      q, k = RoPE(q, pos), RoPE(k, pos)                          pairs (2i, 2i+1) of each head
      head j attends with key/value head j // (H / G):
        o_j = softmax(q_j k^T / sqrt(e) + causal mask) v
      h = h + o Wo
      f = RMSNorm(h) * g_ffn
      h = h + (silu(f Wgate) * (f Wup)) Wdown,   silu(z) = z / (1 + exp(-z))
    logits = (RMSNorm(h) * g_out) Wout^T                         (Wout = E when tied)

RoPE rotates the pair ``(z_{2i}, z_{2i+1})`` of each head by the angle ``pos * base^(-2i / r)``
(``r`` the rotated dimensions, llama.cpp's "normal" pairing; the GGUF converter permutes the
query and key rows so that this is the original model's rotation).

The keys and values of every position read are kept (:class:`KeyValueCache`), so extending a
sequence by ``n`` tokens costs ``n`` tokens of the dense layers plus attention over the cached
positions. Weights are float32 (float64 for the reference evaluation of the tests): every dense
layer is one BLAS matrix product over all rows of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of a llama network (the GGUF header's ``llama.*`` keys)."""

    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    d_ff: int
    n_vocab: int
    rope_base: float
    rope_dims: int
    rms_eps: float
    context_length: int

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def cache_bytes_per_token(self) -> int:
        """float32 keys and values of one position in every block: ``2 L G e 4`` bytes."""
        return 2 * self.n_layer * self.n_kv_head * self.d_head * 4

    def token_macs(self, context: int, vocabulary: int) -> float:
        """Multiply-adds of one token at ``context`` cached positions whose law is computed over
        ``vocabulary`` outputs: per block ``d (d + 2 G e) + d d + 3 d f`` (projections and MLP)
        and ``2 H e context`` (attention), then ``d vocabulary``."""
        d, kv = self.d_model, self.n_kv_head * self.d_head
        per_block = d * (d + 2 * kv) + d * d + 3 * d * self.d_ff + 2 * self.n_head * self.d_head * context
        return float(self.n_layer * per_block + d * vocabulary)


@dataclass
class Block:
    """One block's weights, stored as the matrices that multiply rows (``(in, out)`` views)."""

    attn_norm: np.ndarray  # (d,)
    qkv: np.ndarray  # (d, H e + 2 G e): Wq, Wk, Wv side by side
    out: np.ndarray  # (H e, d)
    ffn_norm: np.ndarray  # (d,)
    gate_up: np.ndarray  # (d, 2 f): Wgate, Wup side by side
    down: np.ndarray  # (f, d)


class KeyValueCache:
    """Keys and values of ``rows`` sequences, all ``length`` positions long so far, room for
    ``capacity``: keys (L, rows, G, e, capacity), stored transposed so that ``q k^T`` multiplies
    plain matrices, and values (L, rows, G, capacity, e)."""

    def __init__(self, config: LlamaConfig, rows: int, capacity: int, dtype=np.float32):
        self.keys = np.empty((config.n_layer, rows, config.n_kv_head, config.d_head, capacity), dtype=dtype)
        self.values = np.empty((config.n_layer, rows, config.n_kv_head, capacity, config.d_head), dtype=dtype)
        self.length = 0

    @property
    def rows(self) -> int:
        return self.keys.shape[1]

    @property
    def capacity(self) -> int:
        return self.values.shape[3]

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def gather(self, rows: np.ndarray, length: int, capacity: int) -> KeyValueCache:
        """A new cache holding the first ``length`` positions of rows ``rows`` of this one
        (repeats allowed), room for ``capacity``."""
        new = KeyValueCache.__new__(KeyValueCache)
        shape = (self.values.shape[0], len(rows), self.values.shape[2], capacity, self.values.shape[4])
        new.keys = np.empty(shape[:3] + shape[4:] + shape[3:4], dtype=self.keys.dtype)
        new.values = np.empty(shape, dtype=self.values.dtype)
        n = length
        for layer in range(shape[0]):  # layer by layer: one temporary of one layer at a time
            np.take(self.keys[layer, ..., :n], rows, axis=0, out=new.keys[layer, ..., :n])
            np.take(self.values[layer, :, :, :n], rows, axis=0, out=new.values[layer, :, :, :n])
        new.length = n
        return new


def rms_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    """``x / sqrt(mean(x^2) + eps) * gain`` over the last axis."""
    scale = np.einsum("ij,ij->i", x, x)[:, None]
    scale /= x.shape[-1]
    scale += eps
    np.sqrt(scale, out=scale)
    out = x / scale
    out *= gain
    return out


def silu(x: np.ndarray) -> np.ndarray:
    """``x / (1 + exp(-x))``, in place; overflow of ``exp`` gives 0, the limit."""
    denominator = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(denominator, out=denominator)
    denominator += 1.0
    x /= denominator
    return x


class Llama:
    """The network of the module docstring; ``output`` (V, d) rows are the unembedding."""

    def __init__(self, config: LlamaConfig, embedding: np.ndarray, blocks: list[Block], output_norm: np.ndarray,
                 output: np.ndarray):
        self.config = config
        self.embedding = embedding
        self.blocks = blocks
        self.output_norm = output_norm
        self.output = output
        self.dtype = embedding.dtype
        half = config.rope_dims // 2
        self.inverse_frequency = config.rope_base ** (-np.arange(half, dtype=np.float64) * 2.0 / config.rope_dims)

    def astype(self, dtype) -> Llama:
        """The same network with every weight cast to ``dtype`` (float64: the tests' reference)."""
        blocks = [Block(*(np.asarray(w, dtype=dtype) for w in vars(b).values())) for b in self.blocks]
        output = self.output if self.output is self.embedding else np.asarray(self.output, dtype=dtype)
        embedding = np.asarray(self.embedding, dtype=dtype)
        return Llama(self.config, embedding, blocks, np.asarray(self.output_norm, dtype=dtype),
                     embedding if self.output is self.embedding else output)

    @property
    def nbytes(self) -> int:
        arrays = [self.embedding, self.output_norm] + [w for b in self.blocks for w in vars(b).values()]
        if self.output is not self.embedding:
            arrays.append(self.output)
        return sum(a.nbytes for a in arrays)

    def new_cache(self, rows: int, capacity: int) -> KeyValueCache:
        return KeyValueCache(self.config, rows, capacity, self.dtype)

    def _rotate(self, z: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> None:
        """RoPE in place on z (B, n, heads, e), a view allowed: pairs (2i, 2i+1) of the first
        ``rope_dims``."""
        r = self.config.rope_dims
        even, odd = z[..., 0:r:2], z[..., 1:r:2]
        rotated_even = even * cos - odd * sin
        odd *= cos
        odd += even * sin
        even[...] = rotated_even

    def extend(self, tokens: np.ndarray, cache: KeyValueCache) -> np.ndarray:
        """Read ``tokens`` (B, n) after the ``cache.length`` positions each row already holds (B
        = ``cache.rows``), append their keys and values to the cache, and return the final hidden
        states (B, n, d) (after the output norm): the law after the prefix ending at new position
        ``j`` is ``log_softmax(hidden[:, j] @ output.T)``."""
        c = self.config
        rows, n = tokens.shape
        start = cache.length
        total = start + n
        if total > cache.capacity:
            raise ValueError(f"the cache holds {cache.capacity} positions; {total} asked for")
        d, heads, kv_heads, e = c.d_model, c.n_head, c.n_kv_head, c.d_head
        group = heads // kv_heads
        angles = np.arange(start, total, dtype=np.float64)[:, None] * self.inverse_frequency  # (n, r/2)
        cos = np.cos(angles).astype(self.dtype)[None, :, None, :]
        sin = np.sin(angles).astype(self.dtype)[None, :, None, :]
        # query i (absolute position start + i) sees keys 0 .. start + i; one query sees them all
        mask = None if n == 1 else np.where(np.arange(total)[None, :] > np.arange(start, total)[:, None], -np.inf,
                                            0.0).astype(self.dtype)
        scale = self.dtype.type(1.0 / math.sqrt(e))  # applied to the queries (exact when e is a power of 4)
        x = self.embedding[tokens.reshape(-1)].astype(self.dtype, copy=False)  # (B n, d), a copy
        ff = c.d_ff
        for layer, block in enumerate(self.blocks):
            a = rms_norm(x, block.attn_norm, c.rms_eps)
            qkv = a @ block.qkv  # (B n, H e + 2 G e)
            # RoPE in place on the query and key columns together (views of qkv, no copies)
            self._rotate(qkv[:, : (heads + kv_heads) * e].reshape(rows, n, heads + kv_heads, e), cos, sin)
            q = qkv[:, : heads * e].reshape(rows, n, kv_heads, group, e)
            k = qkv[:, heads * e : (heads + kv_heads) * e].reshape(rows, n, kv_heads, e)
            v = qkv[:, (heads + kv_heads) * e :].reshape(rows, n, kv_heads, e)
            cache.keys[layer, :, :, :, start:total] = k.transpose(0, 2, 3, 1)  # (B, G, e, n)
            cache.values[layer, :, :, start:total] = v.transpose(0, 2, 1, 3)
            keys = cache.keys[layer, :, :, :, :total]  # (B, G, e, T): k^T, plain matrices
            values = cache.values[layer, :, :, :total]  # (B, G, T, e)
            # queries grouped by their key/value head, scaled: (B, G, group n, e), head j = g group + i
            grouped = np.multiply(q.transpose(0, 2, 3, 1, 4), scale, order="C").reshape(rows, kv_heads, group * n, e)
            scores = grouped @ keys  # (B, G, group n, T)
            if mask is not None:
                scores5 = scores.reshape(rows, kv_heads, group, n, total)
                scores5 += mask
            scores -= scores.max(axis=-1, keepdims=True)  # each query sees itself: finite
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            mixed = scores @ values  # (B, G, group n, e)
            mixed = mixed.reshape(rows, kv_heads, group, n, e).transpose(0, 3, 1, 2, 4).reshape(rows * n, heads * e)
            x += mixed @ block.out
            f = rms_norm(x, block.ffn_norm, c.rms_eps)
            gate_up = f @ block.gate_up
            hidden = silu(gate_up[:, :ff])  # in place: a view of gate_up, multiplied in place
            hidden *= gate_up[:, ff:]
            x += hidden @ block.down
        cache.length = total
        return rms_norm(x, self.output_norm, c.rms_eps).reshape(rows, n, d)
