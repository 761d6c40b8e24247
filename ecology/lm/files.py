"""Model files and the loading of a model table: ``.npz`` read and write, :func:`load_model`.

A saved model (:meth:`ecology.lm.ngram.NgramModel.save`,
:meth:`ecology.lm.transformer.TransformerModel.save`) is an ``.npz`` with a JSON ``__meta__``
entry (its ``kind``, its ``tokens`` and the kind's settings) beside its arrays; the registered
kind named in the meta reads it back (its ``from_npz``), over the scenario's vocabulary in any
order of the same tokens.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ecology.errors import ScenarioError
from ecology.io import safe
from ecology.lm.base import LanguageModel
from ecology.lm.registry import KINDS, kind_of

_cache: dict = {}


def write_npz(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (as JSON) and ``arrays`` to ``path`` whole or not at all, never through a
    symlink (:func:`ecology.io.safe.write_file_atomically`)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
    safe.write_file_atomically(Path(path), buffer.getvalue())


def check_same_tokens(own: list[str], tokens: list[str], source: str, field: str) -> None:
    """Refuse a saved model whose tokens ``own`` are not the vocabulary's (in any order)."""
    if sorted(own) != sorted(tokens):
        raise ScenarioError(f"{field}.file", f"{source}: the model's tokens {own} differ from the vocabulary {tokens}")


def read_npz(path: Path, source: str, field: str) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a file written by :func:`write_npz`: a readable archive of numeric
    arrays whose ``__meta__`` is a JSON object naming the model's ``kind`` and its ``tokens``
    (a list of distinct strings); anything else is one line naming the file."""

    def fail(message):
        return ScenarioError(f"{field}.file", f"{source}: {message}")

    try:
        with open(path, "rb") as handle:  # ours to close: np.load leaks its own handle when the archive is damaged
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with data:
                arrays = {name: data[name] for name in data.files}
    except OSError as err:
        raise fail(f"cannot read: {err.strerror or err}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise fail(f"not an .npz model file, or an empty, truncated or corrupt one ({reason})") from None
    if "__meta__" not in arrays:
        raise fail("no '__meta__' entry; not a model saved by ecology")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except (json.JSONDecodeError, RecursionError):
        raise fail("its '__meta__' entry is not JSON; not a model saved by ecology") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
        raise fail("its '__meta__' is not a JSON object naming the model's 'kind'; not a model saved by ecology")
    own = meta.get("tokens")
    if not isinstance(own, list) or not own or not all(isinstance(t, str) for t in own) or len(set(own)) != len(own):
        raise fail("its '__meta__' has no 'tokens' list of distinct strings")
    for name, array in arrays.items():
        if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and not np.all(np.isfinite(array))):
            raise fail(f"array {name!r} is not finite real numbers (dtype {array.dtype})")
    return meta, arrays


def load_npz_model(path: Path, tokens: list[str], source: str, field: str = "model") -> LanguageModel:
    """The model saved in ``path``, read by the registered kind its meta names (module docstring)."""
    meta, arrays = read_npz(path, source, field)
    name = meta.get("kind")
    kind = KINDS.get(name) if isinstance(name, str) else None
    from_npz = getattr(kind, "from_npz", None)
    if from_npz is None:
        raise ScenarioError(f"{field}.file", f"{source}: unknown model kind {name!r} in the file")
    return from_npz(meta, arrays, tokens, source, field)


def load_model(spec: dict, tokens: list[str], base: str | Path = ".", field: str = "model") -> LanguageModel:
    """The model described by ``spec`` (the scenario's ``model = {kind = ..., ...}``) over
    ``tokens``; files are relative to ``base``. Models are cached in memory per (spec, tokens,
    file contents' size and modification time of the kind's file keys), so re-reading a scenario
    does not retrain. Errors are :class:`ScenarioError` naming ``field.<key>`` and the file."""
    kind = kind_of(spec, field)
    base = Path(base)
    tokens = list(tokens)
    stamp = []
    for key in kind.file_keys:
        name = spec.get(key)
        if isinstance(name, str) and (base / name).is_file():
            stat = (base / name).stat()
            stamp.append((str((base / name).resolve()), stat.st_size, stat.st_mtime_ns))
    key = (json.dumps(spec, sort_keys=True, default=str), tuple(tokens), tuple(stamp))
    if key not in _cache:
        _cache[key] = kind.build(spec, tokens, base, field)
    return _cache[key]
