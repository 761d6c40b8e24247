"""Hostile model inputs (issue 22, models): every bad model table, inline stream, text file, CSV
table or ONNX output is one line naming the scenario, the field and the fix, exit status 2; a
full-window logit table works as a single premise; a large n-gram vocabulary reads in seconds."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from ecology.cli import main
from ecology.lm.ngram import MAX_TEXT_BYTES, NgramModel

AB = ["a", "b"]


def scenario(tmp_path: Path, model: dict, extra: dict | None = None, prompt=("a", "b", "a")) -> Path:
    data = {"name": "h", "vocabulary": {"tokens": AB, "pad": "N"},
            "context": {"length": 3, "deletion": "fifo", "prompt": list(prompt)},
            "run": {"steps": 5, "replicates": 10, "seed": 1},
            "premises": {"p": {"prior": 1.0, "model": model}},
            "absorption": {"bb": {"window_only": ["b"]}}}
    for key, value in (extra or {}).items():
        data[key] = data.get(key, {}) | value
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def refused(capsys, path: Path, command: str = "validate") -> str:
    """The one error line of ``ecology COMMAND path`` (exit status 2), without 'error: PATH: '."""
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    return err.removeprefix(f"error: {path}: ").rstrip("\n")


# ---------------------------------------------------------------------------------------------- model tables

NGRAM = {"kind": "ngram", "sequence": "abab"}

BAD_TABLES = [
    (NGRAM | {"order": 0}, "premises.p.model.order: Input should be greater than or equal to 1, got 0"),
    (NGRAM | {"order": 13}, "premises.p.model.order: Input should be less than or equal to 12, got 13"),
    (NGRAM | {"order": 2.0}, "premises.p.model.order: Input should be a valid integer, got 2.0; write a whole number "
                             "(values are never converted)"),
    (NGRAM | {"order": "3"}, 'premises.p.model.order: Input should be a valid integer, got "3"; write a whole number '
                             "(values are never converted)"),
    (NGRAM | {"order": True}, "premises.p.model.order: Input should be a valid integer, got true; write a whole number "
                              "(values are never converted)"),
    (NGRAM | {"k": -1.0, "smoothing": "add-k"}, "premises.p.model.k: Input should be greater than 0, got -1.0"),
    (NGRAM | {"k": 0}, "premises.p.model.k: Input should be greater than 0, got 0"),
    (NGRAM | {"discount": math.nan}, "premises.p.model.discount: must be a finite number, got nan"),
    (NGRAM | {"discount": math.inf}, "premises.p.model.discount: must be a finite number, got inf"),
    (NGRAM | {"discount": -0.5}, "premises.p.model.discount: Input should be greater than 0, got -0.5"),
    (NGRAM | {"discount": 1.5}, "premises.p.model.discount: Input should be less than or equal to 1, got 1.5"),
    (NGRAM | {"smoothing": "witten-bell"},
     "premises.p.model.smoothing: Input should be 'kneser-ney' or 'add-k', got \"witten-bell\""),
    (NGRAM | {"lowercase": True}, "premises.p.model: ['lowercase'] apply to 'text' only; a 'sequence' is tokens already: "
                               "remove ['lowercase']"),
    (NGRAM | {"layers": 2}, "premises.p.model.layers: unknown key for kind 'ngram'; allowed: ['collapse', 'discount', "
                            "'file', 'k', 'kind', 'lowercase', 'map', 'order', 'sequence', 'smoothing', 'text', 'unit'] "
                            "(see docs/models.md)"),
    (NGRAM | {"file": "m.npz"}, "premises.p.model: a saved n-gram model ('file') takes no training keys; "
                                "remove ['sequence']"),
    ({"kind": "table", "file": "t.csv", "values": "odds"},
     "premises.p.model.values: Input should be 'logits' or 'probs', got \"odds\""),
    ({"kind": "table"}, "premises.p.model.file: required key is missing; give the CSV table, relative to the scenario"),
    ({"kind": "table", "file": ""}, "premises.p.model.file: String should have at least 1 character"),
    ({"kind": "transformer", "file": 3}, "premises.p.model.file: Input should be a valid string, got 3; write a quoted "
                                         "string (values are never converted)"),
    ({"kind": "onnx", "file": "m.onnx"}, "premises.p.model.bos: required key is missing; give the model's start-of-text "
                                         "token id (the law of the empty window is the law after it)"),
    ({"kind": "onnx", "file": "m.onnx", "bos": -1}, "premises.p.model.bos: Input should be greater than or equal to 0, "
                                                    "got -1"),
    ({"kind": "onnx", "file": "m.onnx", "bos": 0, "token_ids": [0, "1"]},
     'premises.p.model.token_ids.1: Input should be a valid integer, got "1"; write a whole number (values are never '
     "converted)"),
    ({"kind": "gguf", "file": "m.gguf", "prefix": 3}, "premises.p.model.prefix: Input should be a valid string, got 3; "
                                                      "write a quoted string (values are never converted)"),
]


@pytest.mark.parametrize(("model", "expected"), BAD_TABLES)
def test_bad_model_tables_are_one_line(tmp_path, capsys, model, expected):
    assert refused(capsys, scenario(tmp_path, model)) == expected


# ---------------------------------------------------------------------------------------------- inline streams

BAD_SEQUENCES = [
    ("", "premises.p.model.sequence: 0 tokens; give at least 2 (nothing to learn from fewer)"),
    ([], "premises.p.model.sequence: 0 tokens; give at least 2 (nothing to learn from fewer)"),
    ("a", "premises.p.model.sequence: 1 token; give at least 2 (nothing to learn from fewer)"),
    ("ab", "premises.p.model.order: the sequence gives 2 tokens, fewer than the order 3: no 3-gram to count; give at "
           "least 3 tokens or a lower order"),
    (5, "premises.p.model.sequence: expected a string of one-character tokens or a list of tokens, got 5"),
    ([["a"], "b"], "premises.p.model.sequence: expected a string of one-character tokens or a list of tokens, "
                   "got a list"),
    (["a", "c"], "premises.p.model.sequence: 'c' is not a token of the vocabulary ['a', 'b'] (item 1 of the sequence)"),
    ("abN", "premises.p.model.sequence: 'N' is not a token of the vocabulary ['a', 'b'] (item 2 of the sequence)"),
]


@pytest.mark.parametrize(("sequence", "expected"), BAD_SEQUENCES)
def test_bad_inline_sequences_are_one_line(tmp_path, capsys, sequence, expected):
    assert refused(capsys, scenario(tmp_path, {"kind": "ngram", "sequence": sequence})) == expected


def test_a_sequence_as_long_as_the_order_is_a_model(tmp_path, capsys):
    """Three tokens hold one 3-gram: accepted (the order-3 counts are that gram)."""
    assert main(["validate", str(scenario(tmp_path, {"kind": "ngram", "sequence": "aba"}))]) == 0
    model = NgramModel.train(np.array([0, 1, 0]), AB, 3, "kneser-ney", 0.75, 1.0, "sequence")
    assert list(model.counts[3][1]) == [1.0]


def test_text_and_sequence_together_or_neither_are_refused(tmp_path, capsys):
    (tmp_path / "ok.txt").write_text("abab")
    both = {"kind": "ngram", "text": "ok.txt", "sequence": "abab"}
    assert refused(capsys, scenario(tmp_path, both)) == ("premises.p.model: give 'text' (a file or \"pydoc\") or "
                                                         "'sequence' (tokens inline), not both")
    assert refused(capsys, scenario(tmp_path, {"kind": "ngram"})) == ("premises.p.model: give 'text' (a file or "
                                                                      "\"pydoc\") or 'sequence' (tokens inline)")


def hostile_text(tmp_path: Path, kind: str) -> str:
    """A ``text`` value that is not a readable UTF-8 regular file of at most 16 MiB."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return str(tmp_path / "fifo")
    if kind == "device":
        return "/dev/zero"
    if kind == "folder":
        (tmp_path / "folder").mkdir()
        return str(tmp_path / "folder")
    if kind == "large":
        with (tmp_path / "large.txt").open("wb") as handle:
            handle.truncate(MAX_TEXT_BYTES + 1)  # sparse: no 16 MiB written
        return str(tmp_path / "large.txt")
    if kind == "latin-1":
        (tmp_path / "latin.txt").write_bytes("abab\u00e9".encode("latin-1"))
        return str(tmp_path / "latin.txt")
    return str(tmp_path / "missing.txt")


@pytest.mark.parametrize(("kind", "expected"), [
    ("fifo", "not a regular file (a FIFO, socket or device); give a text file"),
    ("device", "not a regular file (a FIFO, socket or device); give a text file"),
    ("folder", "is a directory; give a text file"),
    ("large", f"is {MAX_TEXT_BYTES + 1:,} bytes; a text file is at most {MAX_TEXT_BYTES:,} bytes"),
    ("latin-1", "not UTF-8 text (byte 4 is not valid UTF-8); save it as UTF-8"),
    ("missing", "file not found"),
])
def test_a_text_that_is_no_regular_utf8_file_is_one_line_and_never_read(tmp_path, capsys, kind, expected):
    """A FIFO would block the read and /dev/zero never end: both are refused from the opened
    descriptor's type, before a byte is read."""
    text = hostile_text(tmp_path, kind)
    assert refused(capsys, scenario(tmp_path, {"kind": "ngram", "text": text})) == f"premises.p.model.text: {text}: {expected}"


def test_the_training_data_section_shares_the_stream_checks(tmp_path, capsys):
    spec = tmp_path / "t.toml"
    spec.write_text('kind = "ngram"\ntokens = ["a", "b"]\nout = "m.npz"\n[data]\nsequence = "ab"\ntext = "pydoc"\n')
    assert main(["train", str(spec)]) == 2
    assert capsys.readouterr().err == (f"error: {spec}: data: give 'text' (a file or \"pydoc\") or 'sequence' (tokens "
                                       "inline), not both\n")
    spec.write_text('kind = "ngram"\ntokens = ["a", "b"]\nout = "m.npz"\n[data]\nsequence = "abab"\n[model]\nk = -1.5\n')
    assert main(["train", str(spec)]) == 2
    assert capsys.readouterr().err == f"error: {spec}: model.k: Input should be greater than 0, got -1.5\n"
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------------------------- CSV tables

BAD_CSV = [
    ("context,a,b\n,0,nan\n", "line 2: 'nan' is not allowed (NaN or +inf)"),
    ("context,a,b\n,0,inf\n", "line 2: 'inf' is not allowed (NaN or +inf)"),
    ("context,a,b\n,0,1e400\n", "line 2: '1e400' is not allowed (NaN or +inf)"),
    ("context,a,b\n,-inf,-inf\n", "line 2: every logit is -inf (no token possible)"),
    ("context,a,b\n,0,x\n", "line 2: 'x' is not a number"),
    ("context,a,b\n,0\n", "line 2: 2 fields, expected 3 (context + 2 tokens)"),
    ("context,a,b\n,0,1,2\n", "line 2: 4 fields, expected 3 (context + 2 tokens)"),
    ("context,a,b\n,0,1\n,1,0\n", "line 3: context '' already given on line 2"),
    ("context,a,b\na c,0,1\n", "line 2: context 'a c': 'c' is not a token (tokens are separated by single spaces)"),
    ("context,a,c\n,0,1\n", "header: 'c' is not a token of the vocabulary ['a', 'b']"),
    ("context,a,a,b\n,0,1,2\n", "header: token 'a' appears twice"),
    ("context,a\n,0\n", "header: no column for token(s) ['b']"),
    ("ctx,a,b\n,0,1\n", "the header must start with 'context', got 'ctx,a,b'"),
    ("", "the table is empty; expected a header 'context,<token>,...'"),
    ("context,a,b\n", "the table has a header but no rows"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CSV)
def test_bad_logit_tables_are_one_line_naming_file_and_line(tmp_path, capsys, text, expected):
    (tmp_path / "t.csv").write_text(text)
    line = refused(capsys, scenario(tmp_path, {"kind": "table", "file": "t.csv"}))
    assert line == f"premises.p.model.file: {tmp_path / 't.csv'}: {expected}"


@pytest.mark.parametrize(("text", "expected"), [
    ("context,a,b\n,0.5,0.6\n", "line 2: probabilities sum to 1.1, not 1 (within 1e-9)"),
    ("context,a,b\n,-0.5,1.5\n", "line 2: a probability is negative"),
    ("context,a,b\n,nan,1\n", "line 2: 'nan' is not allowed (NaN or +inf)"),
    ("context,a,b\n,0,0\n", "line 2: probabilities sum to 0, not 1 (within 1e-9)"),
])
def test_probability_tables_must_normalise(tmp_path, capsys, text, expected):
    (tmp_path / "t.csv").write_text(text)
    line = refused(capsys, scenario(tmp_path, {"kind": "table", "file": "t.csv", "values": "probs"}))
    assert line == f"premises.p.model.file: {tmp_path / 't.csv'}: {expected}"


def test_a_table_that_is_not_utf8_or_a_fifo_is_one_line(tmp_path, capsys):
    (tmp_path / "t.csv").write_bytes(b"context,a,b\n,0,\xff\n")
    line = refused(capsys, scenario(tmp_path, {"kind": "table", "file": "t.csv"}))
    assert line == f"premises.p.model.file: {tmp_path / 't.csv'}: not UTF-8 text; save it as UTF-8"
    os.mkfifo(tmp_path / "f.csv")
    line = refused(capsys, scenario(tmp_path, {"kind": "table", "file": "f.csv"}))
    assert line == f"premises.p.model.file: {tmp_path / 'f.csv'}: not a regular file"


def test_logits_beyond_a_doubles_range_of_each_other_are_a_law_without_a_warning(tmp_path, capsys):
    """1e308 - (-1e308) overflows to inf: the second token's probability is exactly 0."""
    (tmp_path / "t.csv").write_text("context,a,b\n" + "".join(f"{' '.join(w)},1e308,-1e308\n"
                                                            for n in range(4) for w in itertools.product(AB, repeat=n)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["validate", str(scenario(tmp_path, {"kind": "table", "file": "t.csv"}, prompt=("a", "a", "a")))]) == 0
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- a full-window table

FULL_WINDOW_LAW = {"a b a": 0.2, "b a b": 0.7}  # P(a | window); 0.5 after the six other windows


def full_window_table(path: Path) -> Path:
    """One row per window of exactly 3 tokens (no row for shorter contexts), as small GPTs'
    tables are published."""
    rows = ["context,a,b"]
    for window in itertools.product(AB, repeat=3):
        p = FULL_WINDOW_LAW.get(" ".join(window), 0.5)
        rows.append(f"{' '.join(window)},{math.log(p)!r},{math.log(1 - p)!r}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_full_window_table_is_a_single_premise(tmp_path, capsys):
    """The single premise's amplitude is 1 whatever the likelihood, so no row for the prefixes
    is needed: ``analyze`` gives the exact chain, P(w -> w[1:] + t) = P(t | w) of the table, and
    the run writes every output (its free energy, which would need the prefixes, is left empty)."""
    import scipy.sparse as sp

    full_window_table(tmp_path / "full.csv")
    path = scenario(tmp_path, {"kind": "table", "file": "full.csv"})
    assert main(["analyze", str(path), "--export", str(tmp_path / "chain")]) == 0
    capsys.readouterr()
    states = (tmp_path / "chain" / "states.txt").read_text().splitlines()
    matrix = sp.load_npz(tmp_path / "chain" / "transition.npz").toarray()
    assert sorted(states) == sorted(" ".join(w) for w in itertools.product(AB, repeat=3))
    for i, state in enumerate(states):
        p_a = FULL_WINDOW_LAW.get(state, 0.5)
        rest = state.split(" ")[1:]
        expected = {" ".join(rest + ["a"]): p_a, " ".join(rest + ["b"]): 1 - p_a}
        assert {states[j]: matrix[i, j] for j in np.flatnonzero(matrix[i])} == pytest.approx(expected, abs=1e-12)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    steps = (out / "steps.csv").read_text().splitlines()
    header = steps[0].split(",")
    assert [row.split(",")[header.index("p_mean")] for row in steps[1:]] == ["1.0"] * 6
    assert {row.split(",")[header.index("free_energy")] for row in steps[1:]} == {""}


def test_a_mixture_needing_a_full_window_tables_prefixes_is_one_line(tmp_path, capsys):
    full_window_table(tmp_path / "full.csv")
    other = {"premises": {"q": {"prior": 1.0, "cast": ["c"]}},
             "simulacra": {"c": {"kind": "iid", "probs": {"a": 0.5, "b": 0.5}}}}
    path = scenario(tmp_path, {"kind": "table", "file": "full.csv"}, other)
    for command in ("validate", "analyze", "run"):
        assert refused(capsys, path, command) == (
            f"premises.p.model.file: {tmp_path / 'full.csv'}: context '' (the empty window) is not in the table: the "
            "mixture's likelihood of the window 'a b a' needs the law after each of its prefixes; add the row of "
            "context '' (the empty window), or make the table the scenario's single premise (whose amplitude is 1: "
            "no likelihood)")


# ---------------------------------------------------------------------------------------------- ONNX outputs


def onnx_gather(path: Path, embedding: np.ndarray, unused: bool = False) -> Path:
    """A graph ids (batch, length) -> E[ids] (batch, length, Vm): the logits after a prefix are
    the row of its last token (the start token ``bos`` for the empty window). ``unused``: with an
    initializer no node uses (onnxruntime warns that it removes it)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    extra = [numpy_helper.from_array(np.array([1], dtype=np.int64), "unused")] if unused else []
    graph = helper.make_graph(
        [helper.make_node("Gather", ["E", "ids"], ["logits"], axis=0)], "toy",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "length", embedding.shape[1]])],
        initializer=[numpy_helper.from_array(embedding.astype(np.float32), "E")] + extra)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, path)
    return path


ONNX_OUTPUTS = [
    (2, np.nan, "'' (the empty window) are NaN"),
    (2, np.inf, "'' (the empty window) are +inf"),
    (1, np.nan, "'a b' are NaN"),
    (0, -np.inf, "'a' are -inf for every token"),
]


@pytest.mark.parametrize(("row", "value", "expected"), ONNX_OUTPUTS)
def test_onnx_outputs_that_are_no_law_are_one_line(tmp_path, capfd, row, value, expected):
    """Rows 0, 1 of E: the logits after tokens a, b; row 2: after the start token."""
    embedding = np.zeros((3, 2))
    embedding[row] = value
    onnx_gather(tmp_path / "m.onnx", embedding)
    path = scenario(tmp_path, {"kind": "onnx", "file": "m.onnx", "bos": 2})
    assert main(["validate", str(path)]) == 2
    err = capfd.readouterr().err  # the file descriptor: onnxruntime's own log would be here
    assert err == (f"error: {path}: premises.p.model.file: {tmp_path / 'm.onnx'}: the model's logits after context "
                   f"{expected}: no law; check the exported model\n")


def test_a_garbage_onnx_file_is_our_line_alone(tmp_path, capfd):
    pytest.importorskip("onnxruntime")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07garbage" * 20)
    path = scenario(tmp_path, {"kind": "onnx", "file": "m.onnx", "bos": 2})
    assert main(["validate", str(path)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: premises.p.model.file: {tmp_path / 'm.onnx'}: "
                                                   "not a loadable ONNX model: "), err
    assert "\x1b[" not in err  # no coloured onnxruntime log line


def test_onnxruntimes_warnings_do_not_reach_stderr(tmp_path, capfd):
    """A graph with an unused initializer makes onnxruntime print a coloured warning by default;
    the kind sets its log severity to errors only: validate prints its line, stderr stays empty."""
    onnx_gather(tmp_path / "m.onnx", np.zeros((3, 2)), unused=True)
    assert main(["validate", str(scenario(tmp_path, {"kind": "onnx", "file": "m.onnx", "bos": 2}))]) == 0
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- a large vocabulary


def test_a_20000_token_ngram_reads_sparse_in_the_vocabulary():
    """1000 windows of 4 tokens over V = 20,000: the laws after the windows (1000 x V), and one
    conditional per token for the likelihood; the numbers are those of the dense formulas."""
    import time

    V = 20000
    rng = np.random.default_rng(0)
    tokens = [f"t{i}" for i in range(V)]
    model = NgramModel.train(rng.integers(0, V, 40000), tokens, 3, "kneser-ney", 0.75, 1.0, "stream")
    windows = rng.integers(0, V, (1000, 4))
    began = time.process_time()
    loglik, laws = model.read(windows)
    assert time.process_time() - began < 10  # 0.6 s here; the dense read took 21 s and 3,471 MiB
    assert np.allclose(np.exp(laws).sum(axis=1), 1.0)
    first = windows[:3]  # the likelihood is the sum of the laws' entries (the dense read)
    expected = [sum(model.read(np.concatenate([np.full((1, 4 - j), V), w[None, :j]], axis=1))[1][0, w[j]]
                    for j in range(4)) for w in first]
    assert loglik[:3] == pytest.approx(expected, rel=1e-12)


def test_a_storylines_probability_still_needs_the_prefixes_of_a_single_premise(tmp_path):
    """``log P(y)`` (decompose's held-out likelihood) is a likelihood even for one premise: a
    full-window table without the rows of the prefixes is refused there, never a NaN."""
    from ecology.core.compile import compile_scenario
    from ecology.errors import ScenarioError
    from ecology.scenario import load

    full_window_table(tmp_path / "full.csv")
    mixture = compile_scenario(load(scenario(tmp_path, {"kind": "table", "file": "full.csv"}))).mixture
    with pytest.raises(ScenarioError, match=r"context '' \(the empty window\) is not in the table: the mixture's "
                                            "likelihood of the window 'a b a'"):
        mixture.sequence_log_prob(np.array([[0, 1, 0, 1]]))
