"""Tiny GGUF files for the tests, written with the ``gguf`` package's writer (llama.cpp's own).

:func:`write_tiny_gguf` writes a llama-architecture model with random weights (2 blocks, width 32,
4 query heads and 2 key/value heads of 8 dimensions, MLP width 64) and a small byte-level BPE
vocabulary: GPT-2's 256 byte characters, a few merges (``Ġ t``, ``h e``, ``Ġt he``, ``i n``,
``Ġ a``) and two control tokens. Every tensor type the gguf kind reads can be chosen per tensor.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
from gguf.quants import quantize

from ecology.lm.bpe import byte_characters

MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "Ġa n", "Ġan d", "o u", "Ġ y", "Ġy ou"]
CONTROL = ["<|start|>", "<|end|>"]


def tiny_vocabulary() -> tuple[list[str], list[str], list[int]]:
    """(tokens, merges, token types): control tokens first, then the bytes, then the merges' results."""
    tokens = list(CONTROL) + [byte_characters()[b] for b in range(256)]
    tokens += ["".join(m.split(" ")) for m in MERGES]
    types = [3] * len(CONTROL) + [1] * (len(tokens) - len(CONTROL))
    return tokens, list(MERGES), types


def tiny_weights(seed: int = 0, n_layer: int = 2, d: int = 32, heads: int = 4, kv_heads: int = 2, d_ff: int = 64,
                 n_vocab: int | None = None, tied: bool = True) -> dict[str, np.ndarray]:
    """Random weights in the shapes a llama GGUF stores (rows = outputs), scaled so the logits
    are of order one."""
    rng = np.random.default_rng(seed)
    n_vocab = n_vocab or len(tiny_vocabulary()[0])
    e = d // heads

    def w(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    arrays = {"token_embd.weight": w(n_vocab, d, scale=3.0),
              "output_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)}
    for i in range(n_layer):
        p = f"blk.{i}."
        arrays |= {p + "attn_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
                   p + "attn_q.weight": w(heads * e, d, scale=2.0), p + "attn_k.weight": w(kv_heads * e, d, scale=2.0),
                   p + "attn_v.weight": w(kv_heads * e, d), p + "attn_output.weight": w(d, heads * e),
                   p + "ffn_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
                   p + "ffn_gate.weight": w(d_ff, d), p + "ffn_up.weight": w(d_ff, d), p + "ffn_down.weight": w(d, d_ff)}
    if not tied:
        arrays["output.weight"] = w(n_vocab, d, scale=3.0)
    return arrays


def write_tiny_gguf(path: Path, *, seed: int = 0, types: dict[str, str] | None = None, default_type: str = "F32",
                    architecture: str = "llama", add_bos: bool = True, pre: str = "gpt2", tied: bool = True,
                    header: dict | None = None, drop: tuple[str, ...] = (), weights: dict | None = None,
                    n_layer: int = 2, heads: int = 4, kv_heads: int = 2) -> Path:
    """Write a tiny model (module docstring). ``types``: tensor name -> GGML type name (others
    ``default_type``; norms stay F32); ``header``: extra or replaced keys; ``drop``: tensors left out;
    ``weights``: replaced arrays."""
    tokens, merges, token_types = tiny_vocabulary()
    arrays = tiny_weights(seed, n_layer=n_layer, heads=heads, kv_heads=kv_heads, tied=tied) | (weights or {})
    writer = gguf.GGUFWriter(str(path), architecture)
    a = architecture
    values = {f"{a}.block_count": n_layer, f"{a}.embedding_length": 32, f"{a}.feed_forward_length": 64,
              f"{a}.attention.head_count": heads, f"{a}.attention.head_count_kv": kv_heads,
              f"{a}.context_length": 64, f"{a}.rope.dimension_count": 32 // heads}
    for key, value in (values | (header or {})).items():
        if isinstance(value, int) and not isinstance(value, bool):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
    writer.add_float32(f"{a}.rope.freq_base", 10000.0)
    writer.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    writer.add_token_types(token_types)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_add_bos_token(add_bos)
    for name, values in arrays.items():
        if name in drop:
            continue
        kind = gguf.GGMLQuantizationType[(types or {}).get(name, "F32" if name.endswith("norm.weight") else default_type)]
        if kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, values)
        else:
            writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
