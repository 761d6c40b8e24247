"""Language models as premises (ecology.lm): tables, n-grams, the numpy transformer, ONNX, the registry of kinds."""

import math
import subprocess
import sys
from typing import Literal

import numpy as np
import pytest

from ecology.cli import main
from ecology.errors import ScenarioError
from ecology.fields import Strict
from ecology.lm import KINDS, kinds_table, load_model
from ecology.lm.base import ContextModel, canonical, log_softmax, resolve
from ecology.lm.ngram import reduction_of
from ecology.lm.registry import keys_table, register
from ecology.lm.train import contexts_upto, examples, train_transformer
from ecology.lm.transformer import TransformerConfig
from ecology.scenario import anchor_model_files

from .conftest import ROOT

MODELS = ROOT / "scenarios" / "models"
AB = ["a", "b"]
PAD = 2  # the pad of the two-token vocabulary

TABLE = """context,a,b
,0,{log3}
a,{log3},0
b,-inf,0
a a,-inf,0
a b,1,1
b a,0,{log3}
b b,0,0
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def table_model(tmp_path, text=None, values="logits", tokens=AB):
    write(tmp_path, "t.csv", text if text is not None else TABLE.format(log3=math.log(3)))
    return load_model({"kind": "table", "file": "t.csv", "values": values}, tokens, tmp_path)


def prefix_sum(model, windows):
    """``sum_i log mu(w_i | w_1 .. w_{i-1})`` by calling ``read`` on every prefix of every window."""
    pad = model.n_tokens
    out = []
    for row in windows:
        tokens = [int(t) for t in row if t != pad]
        total = 0.0
        for j, t in enumerate(tokens):
            prefix = np.array([[pad] * (len(row) - j) + tokens[:j]])
            total += model.read(prefix)[1][0, t]
        out.append(total)
    return np.array(out)


# ---------------------------------------------------------------------------------------------- table


def test_table_reproduces_hand_computed_conditionals_and_likelihoods(tmp_path):
    model = table_model(tmp_path)
    windows = np.array([[PAD, PAD, PAD], [PAD, PAD, 0], [PAD, 0, 1], [0, 0, 1], [1, 0, 1]])
    with pytest.raises(ScenarioError, match="context 'a a b' is not in the table"):
        model.read(windows)
    loglik, next_logp = model.read(windows[:3])
    # P(.|'') = (1/4, 3/4); P(.|a) = (3/4, 1/4); P(.|a b) = (1/2, 1/2)
    assert np.allclose(np.exp(next_logp), [[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]], atol=1e-15)
    assert np.allclose(loglik, [0.0, math.log(0.25), math.log(0.25 * 0.25)], atol=1e-15)


def test_table_probs_and_logits_agree(tmp_path):
    logits = table_model(tmp_path)
    rows = ["context,b,a"]  # columns in another order than the vocabulary
    for context, (pa, pb) in {"": (0.25, 0.75), "a": (0.75, 0.25), "b": (0.0, 1.0), "a a": (0.0, 1.0),
                              "a b": (0.5, 0.5), "b a": (0.25, 0.75), "b b": (0.5, 0.5)}.items():
        rows.append(f"{context},{pb},{pa}")
    (tmp_path / "probs").mkdir()
    probs = table_model(tmp_path / "probs", "\n".join(rows) + "\n", values="probs")
    windows = contexts_upto(2, 2)
    for got, want in zip(probs.read(windows), logits.read(windows)):
        assert np.allclose(got, want, atol=1e-14, rtol=0)


def test_zero_probability_gives_minus_inf_never_nan(tmp_path):
    model = table_model(tmp_path)
    loglik, next_logp = model.read(np.array([[PAD, 1, 0], [PAD, 0, 0]]))
    assert loglik[0] == -np.inf  # 'a' after 'b' has logit -inf
    assert next_logp[1, 0] == -np.inf and next_logp[1, 1] == 0.0  # after 'a a': 'b' surely
    assert np.isfinite(loglik[1])
    assert not np.isnan(loglik).any() and not np.isnan(next_logp).any()


@pytest.mark.parametrize(
    "text, message",
    [
        ("context,a,c\n,0,0\n", "'c' is not a token"),
        ("context,a\n,0\n", r"no column for token\(s\) \['b'\]"),
        ("context,a,a,b\n,0,0,0\n", "token 'a' appears twice"),
        ("ctx,a,b\n,0,0\n", "must start with 'context'"),
        ("context,a,b\n,0,0\na,1\n", "line 3: 2 fields, expected 3"),
        ("context,a,b\n,0,0\n,1,1\n", "line 3: context '' already given on line 2"),
        ("context,a,b\n,0,zero\n", "line 2: 'zero' is not a number"),
        ("context,a,b\n,0,nan\n", r"line 2: 'nan' is not allowed \(NaN or \+inf\)"),
        ("context,a,b\n,-inf,-inf\n", "every logit is -inf"),
        ("context,a,b\na  b,0,0\n", "'' is not a token"),
        ("context,a,b\n", "no rows"),
        ("", "the table is empty"),
    ],
)
def test_malformed_tables_give_one_line_errors(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message) as err:
        table_model(tmp_path, text)
    assert "\n" not in str(err.value) and str(err.value).startswith("model.file: t.csv: ")


def test_probs_rows_must_sum_to_one(tmp_path):
    with pytest.raises(ScenarioError, match="line 2: probabilities sum to 0.9"):
        table_model(tmp_path, "context,a,b\n,0.4,0.5\n", values="probs")
    with pytest.raises(ScenarioError, match="line 2: a probability is negative"):
        table_model(tmp_path, "context,a,b\n,-0.5,1.5\n", values="probs")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"kind": "gpt"}, "model.kind: 'gpt' is not a model kind"),
        ({"kind": "table", "file": "t.csv", "values": "odds"}, "model.values: Input should be 'logits' or 'probs', got \"odds\""),
        ({"kind": "table", "file": "none.csv"}, "model.file: none.csv: no such file"),
        ({"kind": "table", "file": "t.csv", "order": 2}, "model.order: unknown key for kind 'table'"),
        ({"kind": "ngram", "sequence": "ab", "order": 0}, "model.order: Input should be greater than or equal to 1, got 0"),
        ({"kind": "ngram", "sequence": "abz"}, "model.sequence: 'z' is not a token"),
        ({"kind": "ngram", "text": "pydoc", "map": {"a": "<vowels>"}}, "model.map.a: unknown class <vowels>"),
        ({"kind": "ngram", "sequence": "ab", "smoothing": "witten-bell"},
         "model.smoothing: Input should be 'kneser-ney' or 'add-k', got \"witten-bell\""),
        ({"kind": "transformer", "file": "t.csv"}, "model.file: t.csv: not an .npz model file"),
    ],
)
def test_bad_model_dicts_give_one_line_errors(tmp_path, spec, message):
    write(tmp_path, "t.csv", TABLE.format(log3=1.0))
    with pytest.raises(ScenarioError, match=message) as err:
        load_model(spec, AB, tmp_path)
    assert "\n" not in str(err.value)


def test_identical_windows_read_once_give_the_same_rows(tmp_path):
    model = table_model(tmp_path)
    windows = contexts_upto(2, 2)[[0, 3, 3, 5, 0, 6, 5]]
    loglik, next_logp = model.read(windows)
    for i, row in enumerate(windows):
        one = model.read(row[None])
        assert loglik[i] == one[0][0] and np.array_equal(next_logp[i], one[1][0])


# ---------------------------------------------------------------------------------------------- n-gram


def test_kneser_ney_matches_hand_computation():
    """Stream a b a b b, bigram, D = 1/2 (hand computation in the comments)."""
    model = load_model({"kind": "ngram", "sequence": "ababb", "order": 2, "discount": 0.5}, AB)
    # unigram (top, raw counts a: 2, b: 3): P(a) = 1.5/5 + 0.5 * 2/5 * 1/2 = 0.4
    # continuation N1+(. a) = 1, N1+(. b) = 2: P_cont(a) = 0.5/3 + 0.5 * 2/3 * 1/2 = 1/3, P_cont(b) = 2/3
    # c(a .) = {ab: 2}: P(a | a) = 0 + 0.5 * 1/2 * 1/3 = 1/12, P(b | a) = 1.5/2 + 0.5 * 1/2 * 2/3 = 11/12
    # c(b .) = {ba: 1, bb: 1}: P(a | b) = 0.5/2 + 0.5 * 2/2 * 1/3 = 5/12, P(b | b) = 7/12
    windows = np.array([[PAD, PAD, PAD], [PAD, PAD, 0], [PAD, PAD, 1], [0, 1, 1], [1, 1, 0]])
    loglik, next_logp = model.read(windows)
    want = [[0.4, 0.6], [1 / 12, 11 / 12], [5 / 12, 7 / 12], [5 / 12, 7 / 12], [1 / 12, 11 / 12]]
    assert np.allclose(np.exp(next_logp), want, atol=1e-15, rtol=0)
    assert np.allclose(loglik[3], math.log(0.4 * 11 / 12 * 7 / 12), atol=1e-14)
    assert np.allclose(loglik[4], math.log(0.6 * 7 / 12 * 5 / 12), atol=1e-14)


def test_add_k_matches_hand_computation():
    model = load_model({"kind": "ngram", "sequence": "ababb", "order": 2, "smoothing": "add-k", "k": 1}, AB)
    _, next_logp = model.read(np.array([[PAD, PAD], [PAD, 0], [PAD, 1], [1, 0]]))
    # (c + 1) / (c(h .) + 2): '' (2, 3) -> 3/7, 4/7; a (0, 2) -> 1/4, 3/4; b (1, 1) -> 1/2, 1/2
    assert np.allclose(np.exp(next_logp), [[3 / 7, 4 / 7], [1 / 4, 3 / 4], [1 / 2, 1 / 2], [1 / 4, 3 / 4]], atol=1e-15)


def test_ngram_likelihood_is_the_sum_of_prefix_conditionals_and_truncates_context():
    model = load_model({"kind": "ngram", "text": "pydoc", "order": 3, "collapse": ["_"],
                           "map": {"_": "<space>", "v": "<vowel>", "c": "<consonant>"}}, ["_", "v", "c"])
    windows = np.random.default_rng(0).integers(0, 4, size=(200, 6))
    windows = canonical(windows, 3)
    loglik, next_logp = model.read(windows)
    assert np.allclose(loglik, prefix_sum(model, windows[:40]).tolist() + list(loglik[40:]), atol=1e-12)
    # order 3: the law after a context depends on its last two tokens only
    assert np.array_equal(model.read(np.array([[0, 1, 2, 1, 2]]))[1], model.read(np.array([[3, 3, 3, 1, 2]]))[1])
    assert np.all(np.isfinite(next_logp)) and np.allclose(np.exp(next_logp).sum(axis=1), 1.0, atol=1e-12)


def test_reduction_maps_classes_drops_and_collapses():
    reduction = reduction_of({"map": {"_": "<space>", "v": "<vowel>", "c": "<consonant>"}, "collapse": ["_"]},
                                ["_", "v", "c"], "model")
    assert reduction.encode("Hi,  you 42!\n", ["_", "v", "c"]).tolist() == [2, 1, 0, 2, 1, 1, 0]


def test_ngram_saved_reloaded_and_reordered_gives_identical_outputs(tmp_path):
    spec = {"kind": "ngram", "sequence": "abbabbbaab", "order": 3}
    model = load_model(spec, AB)
    model.save(tmp_path / "m.npz")
    again = load_model({"kind": "ngram", "file": "m.npz"}, AB, tmp_path)
    windows = contexts_upto(2, 4)
    for got, want in zip(again.read(windows), model.read(windows)):
        assert np.array_equal(got, want)
    swapped = load_model({"kind": "ngram", "file": "m.npz"}, ["b", "a"], tmp_path)
    flip = np.where(windows == PAD, PAD, 1 - windows)
    loglik, next_logp = swapped.read(flip)
    assert np.allclose(loglik, model.read(windows)[0], atol=1e-14)
    assert np.allclose(next_logp[:, ::-1], model.read(windows)[1], atol=1e-14)


# ---------------------------------------------------------------------------------------------- transformer


def babygpt():
    return load_model({"kind": "transformer", "file": "babygpt.npz"}, ["0", "1"], MODELS)


def test_shipped_babygpt_matches_its_table_and_its_likelihood_is_the_sum_of_conditionals():
    model = babygpt()
    table = load_model({"kind": "table", "file": "babygpt.csv", "values": "logits"}, ["0", "1"], MODELS)
    windows = contexts_upto(2, 3)
    for got, want in zip(table.read(windows), model.read(windows)):
        assert np.allclose(got, want, atol=1e-13, rtol=0)
    assert np.allclose(model.read(windows)[0], prefix_sum(model, windows), atol=1e-12)
    with pytest.raises(ScenarioError, match="a window holds 4 tokens but the model's context is 3"):
        model.read(np.array([[0, 1, 1, 0]]))


def test_numpy_forward_equals_autograd_forward():
    pytest.importorskip("autograd")
    from ecology.lm.train import autograd_forward

    model = babygpt()
    ids = np.concatenate([np.full((8, 1), 2), contexts_upto(2, 3)[-8:]], axis=1)
    assert np.allclose(autograd_forward(model.weights, ids, model.config), log_softmax(model.logits(ids)), atol=1e-12, rtol=0)


def test_training_is_deterministic_and_a_saved_model_reloads_identically(tmp_path):
    pytest.importorskip("autograd")
    stream = np.array([int(c) for c in "111101111011110"])
    config = TransformerConfig(n_ctx=3, n_layer=1, n_head=2, d_model=8, d_mlp=16)
    runs = [train_transformer(stream, ["0", "1"], config, 5, 20, 1e-2, 0.0, 4, log=None) for _ in range(2)]
    assert all(np.array_equal(runs[0][0].weights[n], runs[1][0].weights[n]) for n in runs[0][0].weights)
    assert runs[0][1][-1] < runs[0][1][0]  # the loss went down
    runs[0][0].save(tmp_path / "m.npz")
    again = load_model({"kind": "transformer", "file": "m.npz"}, ["0", "1"], tmp_path)
    windows = contexts_upto(2, 3)
    for got, want in zip(again.read(windows), runs[0][0].read(windows)):
        assert np.array_equal(got, want)


def test_training_examples_cover_every_prefix():
    inputs, targets = examples(np.array([0, 1, 1, 0, 1]), 3, 2)
    assert inputs.tolist() == [[2, 0, 1, 1], [2, 1, 1, 0]]
    assert targets.tolist() == [[0, 1, 1, 0], [1, 1, 0, 1]]


def test_train_command_writes_model_and_table(tmp_path, capsys):
    pytest.importorskip("autograd")
    spec = write(tmp_path, "s.toml", (MODELS / "babygpt.train.toml").read_text())
    assert main(["train", str(spec), "--steps", "2", "--out", str(tmp_path / "m.npz"), "--table", str(tmp_path / "m.csv")]) == 0
    model = load_model({"kind": "transformer", "file": "m.npz"}, ["0", "1"], tmp_path)
    table = load_model({"kind": "table", "file": "m.csv"}, ["0", "1"], tmp_path)
    windows = contexts_upto(2, 3)
    assert np.allclose(model.read(windows)[1], table.read(windows)[1], atol=1e-13)
    assert "1 1 1 -> 0:" in capsys.readouterr().out


def test_train_command_rejects_a_bad_spec_in_one_line(tmp_path):
    spec = write(tmp_path, "s.toml", 'kind = "transformer"\ntokens = ["0", "1"]\nout = "m.npz"\n[data]\nsequence = "0120"\n'
                 '[model]\nn_ctx = 2\n')
    proc = subprocess.run([sys.executable, "-m", "ecology", "train", str(spec)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "s.toml: data.sequence: '2' is not a token" in proc.stderr
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------------------------- ONNX


def onnx_model(path, last_only: bool, n_model: int, embedding: np.ndarray):
    """A graph ids (batch, length) -> E[ids] (batch, length, Vm), or sum_j E[ids_j] (batch, Vm)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gather", ["E", "ids"], ["logits" if not last_only else "per_position"], axis=0)]
    shape = ["batch", "length", n_model]
    if last_only:
        nodes.append(helper.make_node("ReduceSum", ["per_position", "axes"], ["logits"], keepdims=0))
        shape = ["batch", n_model]
    graph = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
        initializer=[numpy_helper.from_array(embedding.astype(np.float32), "E"),
                     numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, path)


@pytest.mark.parametrize("last_only", [False, True])
def test_onnx_model_matches_numpy_computation_of_the_graph(tmp_path, last_only):
    pytest.importorskip("onnxruntime")
    n_model, bos, token_ids = 5, 4, [3, 1]  # the model's vocabulary is larger than the scenario's
    embedding = np.random.default_rng(1).normal(size=(n_model, n_model)).astype(np.float32).astype(np.float64)
    onnx_model(tmp_path / "m.onnx", last_only, n_model, embedding)
    model = load_model({"kind": "onnx", "file": "m.onnx", "bos": bos, "token_ids": token_ids}, AB, tmp_path)
    windows = contexts_upto(2, 3)
    loglik, next_logp = model.read(windows)

    def law(prefix):  # the graph's logits after [bos] + prefix, restricted to token_ids
        ids = [bos] + [token_ids[t] for t in prefix]
        logits = embedding[ids].sum(axis=0) if last_only else embedding[ids[-1]]
        return log_softmax(logits[token_ids])

    for row, ll, nxt in zip(windows, loglik, next_logp):
        tokens = [int(t) for t in row if t != PAD]
        assert np.allclose(nxt, law(tokens), atol=1e-6)  # float32 graph
        assert np.isclose(ll, sum(law(tokens[:j])[t] for j, t in enumerate(tokens)), atol=1e-5)


def test_onnx_needs_a_start_token(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_model(tmp_path / "m.onnx", False, 3, np.eye(3))
    with pytest.raises(ScenarioError, match="model.bos: required key is missing; give the model's start-of-text token id"):
        load_model({"kind": "onnx", "file": "m.onnx"}, AB, tmp_path)


# ---------------------------------------------------------------------------------------------- registry


def test_the_docs_table_of_kinds_is_the_registry():
    assert list(KINDS) == ["table", "ngram", "transformer", "onnx", "gguf"]
    docs = (ROOT / "docs" / "models.md").read_text()
    assert kinds_table() in docs
    for name in KINDS:  # each kind's key table, generated from its pydantic model
        assert f"### `{name}`\n\n" + keys_table(name) in docs, name


class UniformSpec(Strict):
    kind: Literal["uniform"]
    labels: str


class UniformModel(ContextModel):
    """A kind defined outside the package: the uniform law, named by a file ``labels``."""

    kind = "uniform"
    spec_model = UniformSpec
    file_keys = ("labels",)
    docs_row = "`{kind = \"uniform\", labels = \"FILE\"}` | every token equally likely"

    @classmethod
    def from_spec(cls, spec, tokens, base, field):
        resolve(spec.labels, "labels", base, field)  # the file must exist
        return cls(tokens, spec.labels, field)

    def extend(self, code, token):
        return code * 0

    def laws(self, codes, where):
        return np.full((len(codes), self.n_tokens), -math.log(self.n_tokens))


@pytest.fixture
def uniform_kind():
    register(UniformModel)
    yield UniformModel
    del KINDS["uniform"]


def test_a_registered_kind_is_checked_loaded_anchored_and_documented(tmp_path, uniform_kind):
    write(tmp_path, "u.txt", "")
    model = load_model({"kind": "uniform", "labels": "u.txt"}, AB, tmp_path)
    assert isinstance(model, uniform_kind)
    assert np.array_equal(model.read(np.array([[PAD, 0, 1]]))[0], [2 * math.log(0.5)])
    with pytest.raises(ScenarioError, match=r"model.file: unknown key for kind 'uniform'; allowed: \['kind', 'labels'\]"):
        load_model({"kind": "uniform", "labels": "u.txt", "file": "u.txt"}, AB, tmp_path)
    with pytest.raises(ScenarioError, match="model.labels: none.txt: no such file"):
        load_model({"kind": "uniform", "labels": "none.txt"}, AB, tmp_path)
    with pytest.raises(ScenarioError, match=r"expected one of \['table', 'ngram', 'transformer', 'onnx', 'gguf', 'uniform'\]"):
        load_model({"kind": "gpt"}, AB, tmp_path)
    table = {"premises": {"u": {"model": {"kind": "uniform", "labels": "u.txt"}},
                          "n": {"model": {"kind": "ngram", "text": "pydoc"}}}}
    anchored = anchor_model_files(table, tmp_path)
    assert anchored["premises"]["u"]["model"]["labels"] == str((tmp_path / "u.txt").resolve())
    assert anchored["premises"]["n"]["model"]["text"] == "pydoc"  # a shipped corpus is not a file
    assert kinds_table().splitlines()[-1] == "| `uniform` | " + UniformModel.docs_row + " |"
