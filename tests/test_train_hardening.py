"""``ecology train`` at the door: the spec validated (strict types, ranges, keys of the other kind),
the budget checked before training, the outputs claimed before training and written whole or not
at all, never through a symlink; a diverging training stopped before anything is written."""

from __future__ import annotations

import errno
import os
import time
import tomllib
import tracemalloc

import numpy as np
import pytest

from ecology.cli import main
from ecology.io import safe
from ecology.lm import train
from ecology.lm.train import TrainingSettings, TransformerShape, parameter_count, training_need

from .conftest import ROOT

SPEC = """kind = "transformer"
tokens = ["0", "1"]
out = "m.npz"
[data]
sequence = "111101111011110"
[model]
n_ctx = 3
n_layer = 1
n_head = 2
d_model = 8
d_mlp = 16
[training]
seed = 1
steps = 3
learning_rate = 1e-2
"""

NGRAM = """kind = "ngram"
tokens = ["0", "1"]
out = "n.npz"
[data]
sequence = "111101111011110"
[model]
order = 3
"""


def spec_file(tmp_path, text=SPEC, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a transformer or an n-gram is trained."""
    def refuse(*args, **kwargs):
        raise AssertionError("training ran")

    monkeypatch.setattr(train, "train_transformer", refuse)
    monkeypatch.setattr(train.NgramModel, "train", refuse)


def refused(tmp_path, capsys, text, *flags):
    status = main(["train", str(spec_file(tmp_path, text)), *flags])
    assert status == 2
    return one_line(capsys.readouterr().err)


@pytest.mark.parametrize("old, new, message", [
    ("learning_rate = 1e-2", "learning_rate = nan", "training.learning_rate: expected a finite number > 0, got nan"),
    ("learning_rate = 1e-2", "learning_rate = -1e-3", "training.learning_rate: expected a finite number > 0, got -0.001"),
    ("learning_rate = 1e-2", "learning_rate = 0.0", "training.learning_rate: expected a finite number > 0, got 0.0"),
    ("learning_rate = 1e-2", 'learning_rate = "0.1"', 'got "0.1"; values are never converted'),
    ("learning_rate = 1e-2", "weight_decay = inf", "training.weight_decay: expected a finite number >= 0, got inf"),
    ("learning_rate = 1e-2", "weight_decay = -0.1", "training.weight_decay: expected a finite number >= 0"),
    ("steps = 3", "steps = 2.7", "training.steps: expected a whole number >= 1, got 2.7; values are never converted"),
    ("steps = 3", "steps = 0", "training.steps: expected a whole number >= 1, got 0"),
    ("steps = 3", "steps = true", "training.steps: expected a whole number >= 1, got true"),
    ("steps = 3", 'steps = "3"', 'training.steps: expected a whole number >= 1, got "3"'),
    ("seed = 1", "seed = 1.5", "training.seed: expected a whole number, 0 <= seed < 2^63, got 1.5"),
    ("seed = 1", "seed = -3", "training.seed: expected a whole number, 0 <= seed < 2^63, got -3"),
    ("seed = 1", "batch = -1", "training.batch: expected a whole number >= 0"),
    ("seed = 1", "batch = 2.0", "training.batch: expected a whole number >= 0"),
    ("seed = 1", "epochs = 3", "training.epochs: unknown key; the keys allowed here are seed, steps, learning_rate"),
    ("n_head = 2", "n_head = 3", "model.n_head: n_head = 3 does not divide d_model = 8"),
    ("n_head = 2", "n_head = 0", "model.n_head: expected a whole number >= 1 that divides d_model, got 0"),
    ("d_model = 8", "d_model = -8", "model.d_model: expected a whole number >= 1"),
    ("d_mlp = 16", "d_mlp = false", "model.d_mlp: expected a whole number >= 1, got false"),
    ("n_ctx = 3", "n_ctx = 3.0", "model.n_ctx: expected a whole number >= 1"),
    ("n_ctx = 3", "n_layer_ = 1", "model.n_layer_: unknown key; the keys allowed here are n_ctx, n_layer"),
    ("n_ctx = 3", "order = 3", "model.order: belongs to ngram specs, not transformer ones; the keys allowed here "
                               "are n_ctx, n_layer, d_model, n_head, d_mlp"),
    ('kind = "transformer"', 'kind = "gpt"', 'kind: "gpt": write kind = "transformer" or kind = "ngram"'),
    ('kind = "transformer"', "", 'kind: missing: write kind = "transformer"'),
    ('tokens = ["0", "1"]', 'tokens = ["0", "0"]', "tokens: token '0' is listed twice"),
    ('tokens = ["0", "1"]', 'tokens = ["0,", "1"]', "tokens.0: token '0,' is not allowed: the table is comma-separated"),
    ('tokens = ["0", "1"]', 'tokens = ["0 1", "1"]', "tokens.0: token '0 1' is not allowed"),
    ('tokens = ["0", "1"]', "tokens = []", "tokens: "),
    ('out = "m.npz"', "out = 3", "out: Input should be a valid string, got 3"),
    ('out = "m.npz"', 'out = "m.npz"\nepochs = 2', "epochs: unknown key; the keys allowed here are kind, tokens, out, "
                                                  "table, data, model, training"),
])
def test_a_bad_transformer_spec_is_one_line_naming_the_key_before_training(tmp_path, capsys, no_training, old, new,
                                                                           message):
    assert old in SPEC
    err = refused(tmp_path, capsys, SPEC.replace(old, new, 1))
    assert err.startswith(f"error: {tmp_path / 's.toml'}: ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


@pytest.mark.parametrize("old, new, message", [
    ("order = 3", "order = 3\n[training]\nsteps = 2", "training: belongs to transformer specs, not ngram ones"),
    ("order = 3", "n_ctx = 3", "model.n_ctx: belongs to transformer specs, not ngram ones; the keys allowed here are "
                               "order, smoothing, discount, k"),
    ("order = 3", "order = 3.0", "model.order: expected a whole number, got 3.0"),
    ("order = 3", "order = true", "model.order: expected a whole number, got true"),
    ("order = 3", "smoothing = 1", "model.smoothing: expected a string"),
])
def test_a_bad_ngram_spec_is_one_line_naming_the_key(tmp_path, capsys, no_training, old, new, message):
    assert message in refused(tmp_path, capsys, NGRAM.replace(old, new))


def test_command_line_overrides_are_validated_as_the_spec_is(tmp_path, capsys, no_training):
    err = refused(tmp_path, capsys, SPEC, "--seed", "-1")
    assert "training.seed: expected a whole number, 0 <= seed < 2^63, got -1 (from --seed)" in err
    assert "--steps: an n-gram is counted, not trained by steps" in refused(tmp_path, capsys, NGRAM, "--steps", "3")


class Admitted(Exception):
    """Raised instead of training: the budget let the spec through."""


@pytest.mark.parametrize("old, new, flag", [
    ("d_model = 8", "d_model = 1_000_000", "--max-memory"),
    ("n_layer = 1", "n_layer = 1_000_000_000", "--max-memory"),
    ("d_mlp = 16", "d_mlp = 1_000_000_000_000", "--max-memory"),
    ("steps = 3", "steps = 1_000_000_000_000", "--max-work"),
    ("steps = 3", "steps = 1_000_000", "--max-work"),
    ("seed = 1", "batch = 1_000_000_000_000", None),  # more than the 12 examples: the full batch, which fits
])
def test_the_budget_refuses_huge_training_in_seconds(tmp_path, capsys, monkeypatch, old, new, flag):
    def admitted(*args, **kwargs):
        raise Admitted

    monkeypatch.setattr(train, "train_transformer", admitted)
    spec = spec_file(tmp_path, SPEC.replace(old, new))
    began = time.perf_counter()
    if flag is None:
        with pytest.raises(Admitted):
            main(["train", str(spec)])
        return
    assert main(["train", str(spec)]) == 2
    assert time.perf_counter() - began < 5
    err = one_line(capsys.readouterr().err)
    assert f"or raise {flag}" in err and "the budget is" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_the_memory_budget_names_the_part_and_the_keys_to_lower(tmp_path, capsys, no_training):
    err = refused(tmp_path, capsys, SPEC.replace("d_model = 8", "d_model = 100_000"))
    assert "training would need about 1,789 GiB (weights, AdamW moments and gradients 1,788 GiB)" in err
    assert "the budget is 8 GiB: lower model.d_model, model.d_mlp or model.n_layer, or raise --max-memory" in err
    err = refused(tmp_path, capsys, SPEC.replace("d_model = 8", "d_model = 100_000"), "--max-memory", "0.5")
    assert "the budget is 0.5 GiB" in err
    err = refused(tmp_path, capsys, SPEC.replace("n_ctx = 3", "n_ctx = 2000").replace(
        'sequence = "111101111011110"', 'sequence = "' + "10" * 20_000 + '"'), "--max-memory", "1")
    assert "one batch's activations" in err and "lower training.batch (0: all 38000 examples at once)" in err


def test_the_shipped_specs_fit_the_default_budgets():
    for name, n_examples in (("babygpt", 12), ("pydoc3", 388_974)):
        spec = train.parse_spec(train.load_spec(ROOT / "scenarios" / "models" / f"{name}.train.toml"), {})
        need, work = training_need(spec.model, len(spec.tokens), n_examples, spec.training, True)
        assert sum(need.values()) < train.DEFAULT_MAX_MEMORY_GIB * 2**30 and work < train.DEFAULT_MAX_WORK


def test_the_parameter_count_is_the_models():
    for shape in (TransformerShape(n_ctx=3, n_layer=4, n_head=4, d_model=16, d_mlp=64),
                  TransformerShape(n_ctx=7, n_layer=3, n_head=2, d_model=12, d_mlp=5)):
        config = train.TransformerConfig(**shape.model_dump())
        assert parameter_count(shape, 5) == sum(int(np.prod(s)) for s in config.parameter_shapes(5).values())


@pytest.mark.parametrize("shape, batch", [
    (dict(n_ctx=4, n_layer=2, n_head=2, d_model=16, d_mlp=64), 64),
    (dict(n_ctx=16, n_layer=1, n_head=8, d_model=32, d_mlp=32), 16),
    (dict(n_ctx=4, n_layer=1, n_head=1, d_model=16, d_mlp=512), 32),
])
def test_the_memory_estimate_bounds_autograds_peak_within_a_factor_of_three(shape, batch):
    """tracemalloc's peak over one training step (forward, backward, gradients) against the
    estimate of the activations and the gradients (the weights and moments exist before)."""
    pytest.importorskip("autograd")
    from autograd import value_and_grad

    shape = TransformerShape(**shape)
    config = train.TransformerConfig(**shape.model_dump())
    n_tokens = 3
    params = train.initial_weights(config, n_tokens, 0)
    rng = np.random.default_rng(0)
    ids, targets = (rng.integers(0, n_tokens, (batch, shape.n_ctx + 1)) for _ in range(2))
    step = value_and_grad(lambda p, x, y: -train._picked_mean(train.autograd_forward(p, x, config), y))
    step(params, ids, targets)  # first call: autograd's own caches
    tracemalloc.start()
    step(params, ids, targets)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    need, _ = training_need(shape, n_tokens, batch, TrainingSettings(batch=batch), False)
    estimate = need["one batch's activations"] + need["weights, AdamW moments and gradients"] / 6
    assert peak <= estimate <= 3 * peak


def test_outputs_are_checked_before_training(tmp_path, capsys, no_training):
    spec = spec_file(tmp_path)
    cases = [
        (["--out", str(tmp_path / "missing" / "m.npz")], "its directory", "does not exist"),
        (["--out", str(tmp_path / "s.toml" / "m.npz")], "its directory", "is not a directory"),
        (["--out", str(tmp_path / ("x" * 250 + ".npz"))], "is too long", ""),
        (["--out", str(tmp_path / "s.toml")], "already exists; outputs never overwrite anything", "--replace"),
        (["--table", str(tmp_path / "s.toml")], "already exists", "--replace"),
        (["--table", str(tmp_path / "m.npz")], "is also the model's file (out)", ""),
    ]
    (tmp_path / "dir").mkdir()
    cases.append((["--out", str(tmp_path / "dir"), "--replace"], "is a directory or another special file", ""))
    os.mkfifo(tmp_path / "fifo")
    cases.append((["--out", str(tmp_path / "fifo"), "--replace"], "is a directory or another special file", ""))
    for flags, *messages in cases:
        assert main(["train", str(spec), *flags]) == 2, flags
        err = one_line(capsys.readouterr().err)
        assert all(m in err for m in messages), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "fifo", "s.toml"]


def test_a_second_train_aiming_at_the_same_file_is_refused_at_once(tmp_path, capsys, no_training):
    with safe.claim_new_file(tmp_path / "m.npz"):
        assert main(["train", str(spec_file(tmp_path))]) == 2
    assert "m.npz: another ecology process is writing this file (pid" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # the lock file went with the claim


def test_replace_replaces_a_symlink_planted_at_out_and_never_writes_through_it(tmp_path, capsys):
    pytest.importorskip("autograd")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    spec = spec_file(tmp_path, SPEC.replace('out = "m.npz"', 'out = "m.npz"\ntable = "m.csv"'))
    (tmp_path / "m.npz").symlink_to(victim)
    assert main(["train", str(spec)]) == 2  # without --replace: refused, like any existing file
    assert "m.npz: already exists" in one_line(capsys.readouterr().err)
    (tmp_path / "m.csv").symlink_to(victim)
    for planted in (f".m.npz.tmp-{os.getpid()}", f".m.csv.tmp-{os.getpid()}", "m.npz.partial", "m.csv.partial"):
        (tmp_path / planted).symlink_to(victim)  # the temporary names, this process's and the old ones
    assert main(["train", str(spec), "--replace", "--json"]) == 0
    assert victim.read_text() == "precious"
    assert not (tmp_path / "m.npz").is_symlink() and not (tmp_path / "m.csv").is_symlink()
    assert (tmp_path / "m.csv").read_text().startswith("context,0,1\n")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["m.csv", "m.csv.partial", "m.npz", "m.npz.partial", "s.toml", "victim"]  # the old names untouched


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_at_write_time_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch, code):
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == failing:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    spec = spec_file(tmp_path, NGRAM.replace('out = "n.npz"', 'out = "n.npz"\ntable = "n.csv"'))
    failing = 1  # the model file
    assert main(["train", str(spec)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"writing {tmp_path / 'n.npz'} failed, nothing was written there: {os.strerror(code)}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
    calls.clear()
    failing = 2  # the table, after the model
    assert main(["train", str(spec)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"wrote {tmp_path / 'n.npz'}, but writing {tmp_path / 'n.csv'} failed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.npz", "s.toml"]


def test_a_diverging_training_stops_in_one_line_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("autograd")
    spec = spec_file(tmp_path, SPEC.replace("learning_rate = 1e-2", "learning_rate = 1e300"))
    assert main(["train", str(spec), "--json"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "training.learning_rate: training diverged at step" in err and "nothing was written" in err
    assert "lower training.learning_rate (now 1e+300)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_a_trained_model_replaces_an_existing_one_only_with_replace(tmp_path, capsys):
    spec = spec_file(tmp_path, NGRAM)
    assert main(["train", str(spec), "--json"]) == 0
    first = (tmp_path / "n.npz").stat().st_ino
    assert main(["train", str(spec), "--json"]) == 2
    assert "n.npz: already exists" in one_line(capsys.readouterr().err)
    assert (tmp_path / "n.npz").stat().st_ino == first
    assert main(["train", str(spec), "--json", "--replace"]) == 0
    assert (tmp_path / "n.npz").stat().st_ino != first  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.npz", "s.toml"]


def test_the_docs_table_of_spec_keys_is_the_specs():
    assert train.spec_keys_table() in (ROOT / "docs" / "models.md").read_text()


def test_a_table_too_large_for_the_budget_is_refused_before_training(tmp_path, capsys, no_training):
    ten = 'tokens = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'
    spec = (SPEC.replace('tokens = ["0", "1"]', ten).replace('out = "m.npz"', 'out = "m.npz"\ntable = "m.csv"')
            .replace("n_ctx = 3", "n_ctx = 12").replace("111101111011110", "0123456789" * 3))
    err = refused(tmp_path, capsys, spec)
    assert "(the table " in err and "lower model.n_ctx, or drop the table, or raise --max-memory" in err
    spec = NGRAM.replace('tokens = ["0", "1"]', ten).replace('out = "n.npz"', 'out = "n.npz"\ntable = "n.csv"')
    err = refused(tmp_path, capsys, spec.replace("order = 3", "order = 12").replace("111101111011110", "0123456789"))
    assert "(the table " in err and "lower model.order, or drop the table" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_the_estimate_bounds_the_peak_of_a_whole_training_run(tmp_path):
    """tracemalloc's peak over train_from_spec (the data, the examples, two steps, the table),
    autograd imported before (its import alone allocates about 50 MB, part of the process's base)."""
    pytest.importorskip("autograd")
    import autograd.numpy
    import autograd.scipy.special  # noqa: F401
    stream = "".join(np.random.default_rng(0).choice(["0", "1"], 40_000))
    text = (SPEC.replace("111101111011110", stream).replace("n_ctx = 3", "n_ctx = 8").replace("seed = 1", "batch = 64")
            .replace('out = "m.npz"', 'out = "m.npz"\ntable = "m.csv"'))
    spec = train.parse_spec(tomllib.loads(text), {})
    need, _ = training_need(spec.model, 2, 40_000 - 8, spec.training, True)
    tracemalloc.start()
    train.train_from_spec(spec_file(tmp_path, text), overrides={"steps": 2}, log=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= sum(need.values()) <= 4 * peak


@pytest.mark.parametrize("case, expected", [
    ("fifo", "not a regular file (a FIFO, socket or device); give a training spec (TOML)"),
    ("device", "not a regular file (a FIFO, socket or device); give a training spec (TOML)"),
    ("folder", "is a directory; give a training spec (TOML)"),
    ("large", f"is {train.MAX_SPEC_BYTES + 1:,} bytes; a training spec (TOML) is at most {train.MAX_SPEC_BYTES:,} bytes"),
    ("latin-1", "not UTF-8 text (byte 8 is not valid UTF-8); save it as UTF-8"),
])
def test_a_spec_that_is_no_small_regular_utf8_file_is_refused_unread(tmp_path, capsys, case, expected):
    path = {"fifo": tmp_path / "fifo", "device": "/dev/zero", "folder": tmp_path, "large": tmp_path / "big.toml",
            "latin-1": tmp_path / "l.toml"}[case]
    if case == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif case == "large":
        with open(path, "wb") as handle:
            handle.truncate(train.MAX_SPEC_BYTES + 1)
    elif case == "latin-1":
        path.write_bytes('kind = "\xe9"\n'.encode("latin-1"))
    assert main(["train", str(path), "--out", str(tmp_path / "m.npz")]) == 2
    assert one_line(capsys.readouterr().err) == f"error: {path}: {expected}"


@pytest.mark.parametrize("flag", ["--out", "--table"])
def test_an_empty_output_path_is_refused_not_read_as_missing(tmp_path, capsys, no_training, flag):
    extra = ["--out", str(tmp_path / "m.npz")] if flag == "--table" else []
    assert main(["train", str(spec_file(tmp_path)), *extra, flag, ""]) == 2
    assert one_line(capsys.readouterr().err) == f"error: {flag}: an empty path; give a file name"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
