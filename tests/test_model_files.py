"""Saved model files (.npz n-grams and transformers) that are damaged or altered: one line naming
the file, never a traceback, never a silently wrong law (issue 22, model files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecology.errors import ScenarioError
from ecology.lm import load_model
from ecology.lm.files import read_npz, write_npz
from ecology.lm.ngram import NgramModel
from ecology.lm.train import initial_weights
from ecology.lm.transformer import TransformerConfig, TransformerModel

AB = ["a", "b"]


def ngram_file(path: Path) -> Path:
    stream = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0])
    NgramModel.train(stream, AB, 3, "kneser-ney", 0.75, 1.0, "m.npz").save(path)
    return path


def transformer_file(path: Path, **config) -> Path:
    shape = TransformerConfig(n_ctx=4)
    TransformerModel(AB, "m.npz", shape, initial_weights(shape, 2, 0)).save(path)
    if config:
        meta, arrays = read_npz(path, "m.npz", "model")
        meta["config"] |= config
        write_npz(path, meta, arrays)
    return path


def altered(path: Path, meta_change=None, **arrays_change) -> Path:
    meta, arrays = read_npz(path, "m.npz", "model")
    if meta_change is not None:
        meta = meta_change(meta)
    write_npz(path, meta, arrays | arrays_change)
    return path


def one_line(path: Path, spec: dict | None = None) -> str:
    with pytest.raises(ScenarioError) as err:
        model = load_model(spec or {"kind": "ngram", "file": path.name}, AB, path.parent)
        model.read(np.array([[2, 0, 1, 0]]))  # a forward pass that overflows is found here
    message = str(err.value)
    assert "\n" not in message and "m.npz" in message
    return message


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def raw_npz(path: Path, **arrays) -> Path:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: written(p, b""), "not an .npz model file"),
    (lambda p: written(p, ngram_file(p).read_bytes()[:200]), "not an .npz model file"),
    (lambda p: raw_npz(p, __meta__=np.array("{not json")), "'__meta__' entry is not JSON"),
    (lambda p: raw_npz(p, __meta__=np.array("[1, 2]")), "not a JSON object naming the model's 'kind'"),
    (lambda p: raw_npz(p, __meta__=np.array(json.dumps({"kind": "ngram"}))), "no 'tokens' list of distinct strings"),
    (lambda p: raw_npz(p, __meta__=np.array(json.dumps({"kind": "ngram", "tokens": ["a", "a"]}))), "distinct strings"),
    (lambda p: altered(ngram_file(p), lambda m: {k: v for k, v in m.items() if k != "order"} | {"order": "3"}),
     "bad n-gram settings"),
    (lambda p: altered(ngram_file(p), lambda m: m | {"k": -1}), "bad n-gram settings"),
    (lambda p: altered(ngram_file(p), lambda m: m | {"order": 4}), "'codes4' and 'counts4' are missing"),
    (lambda p: altered(ngram_file(p), codes2=read_npz(ngram_file(p), "m", "m")[1]["codes2"][::-1].copy()),
     "strictly increasing"),
    (lambda p: altered(ngram_file(p), counts1=-read_npz(ngram_file(p), "m", "m")[1]["counts1"]), "positive whole counts"),
    (lambda p: altered(ngram_file(p), counts1=np.array(["x", "y", "z"])), "not finite real numbers"),
    (lambda p: altered(ngram_file(p), lambda m: {k: v for k, v in m.items() if k != "order"}),
     "the settings ['order'] are missing"),
    (lambda p: altered(ngram_file(p), counts1=0 * read_npz(ngram_file(p), "m", "m")[1]["counts1"] + 1e308),
     "summing below 2^53"),
    (lambda p: altered(ngram_file(p), counts1=read_npz(ngram_file(p), "m", "m")[1]["counts1"] + 0.5),
     "positive whole counts"),
])
def test_damaged_ngram_files_are_one_line(tmp_path, make, expected):
    path = make(tmp_path / "m.npz")
    assert expected in one_line(path)


CORRUPT_BYTE = 300  # inside the first compressed member


def test_a_bad_crc_is_one_line(tmp_path):
    path = ngram_file(tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    data[CORRUPT_BYTE] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "not an .npz model file" in one_line(path)


@pytest.mark.parametrize(("config", "weights", "expected"), [
    ({"n_ctx": "4"}, {}, "n_ctx = '4'; expected a positive integer"),
    ({"n_head": 0}, {}, "n_head = 0; expected a positive integer"),
    ({"n_head": 3}, {}, "n_head = 3 does not divide d_model = 16"),
    ({}, {"wte": np.ones((3, 16), dtype=complex)}, "not finite real numbers"),
    ({}, {"lnf.g": np.full(16, np.inf)}, "not finite real numbers"),
    ({}, {"wte": np.random.default_rng(0).standard_normal((3, 16)) * 1e200}, "the forward pass overflowed"),
])
def test_damaged_transformer_files_are_one_line(tmp_path, config, weights, expected):
    path = transformer_file(tmp_path / "m.npz", **config)
    if weights:
        altered(path, **weights)
    assert expected in one_line(path, {"kind": "transformer", "file": "m.npz"})


@pytest.mark.parametrize("n_layer", [3, 10**9])
def test_a_config_whose_layer_count_is_not_the_files_is_one_line_without_listing_its_weights(tmp_path, n_layer):
    path = altered(transformer_file(tmp_path / "m.npz"), lambda m: m | {"config": m["config"] | {"n_layer": n_layer}})
    assert f"the config says n_layer = {n_layer} but the file holds the weights of 2 layers" in one_line(
        path, {"kind": "transformer", "file": "m.npz"})


def test_an_intact_file_still_loads(tmp_path):
    model = load_model({"kind": "ngram", "file": "m.npz"}, AB, ngram_file(tmp_path / "m.npz").parent)
    loglik, law = model.read(np.array([[2, 0, 1, 0]]))
    assert np.isfinite(loglik).all() and np.allclose(np.exp(law).sum(axis=1), 1.0)
