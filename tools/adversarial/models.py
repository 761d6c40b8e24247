"""Model premises: saved ``.npz`` n-grams and transformers (empty, truncated, bad CRC, altered meta,
counts and weights), logit and probability tables (CSV), ONNX graphs with NaN or infinite outputs,
tiny GGUF files (truncated, another architecture, a NaN tensor), inline model dicts (n-gram
``sequence`` and ``text``), and a full-window logit table as the single premise or beside another.

Valid files must give known answers: a saved n-gram the hitting time of the same n-gram trained
inline, the transformer's table (CSV) and its full-window rows the transformer's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from .case import REPO, Ctx, add
from .oracles import analyze_json, run_ok, strict_json
from .texts import scn

SEQ = "FFFFFFFFFFFFUFFFFFFFFFFFFFFFUFFFFFFFFFFFFFF"  # the training stream of every fixture model
NGRAM_INLINE = f'{{ kind = "ngram", order = 3, smoothing = "add-k", k = 0.5, sequence = "{SEQ}" }}'
NGRAM_SPEC = f"""kind = "ngram"
tokens = ["F", "U"]
out = "ng.npz"
[data]
sequence = "{SEQ}"
[model]
order = 3
smoothing = "add-k"
k = 0.5
"""
GPT_SPEC = f"""kind = "transformer"
tokens = ["F", "U"]
out = "gpt.npz"
[data]
sequence = "{SEQ}"
[model]
n_ctx = 3
n_layer = 1
n_head = 2
d_model = 8
d_mlp = 16
[training]
seed = 1
steps = 5
learning_rate = 1e-2
weight_decay = 0.0
batch = 0
"""


def model_scn(model: str, k=3, prompt="[]", tokens='["F", "U"]', crit='["U"]', extra="", steps=20) -> str:
    """One model premise (``model`` is the TOML inline table) over ``tokens``, criterion ``crit``."""
    return scn(name='"m"', vocabulary=f"tokens = {tokens}", context=f"length = {k}\nprompt = {prompt}",
               run=f"steps = {steps}\nreplicates = 20\nseed = 1",
               body=f"\n[premises.m]\nprior = 1.0\nmodel = {model}\n{extra}\n[absorption.hit]\nwindow_only = {crit}\n")


# ---- fixtures: trained models and the reference answers ----------------------------------------

def make_model_fixtures(fixtures: Path, env: dict, eco: list[str]) -> None:
    """Train the fixture n-gram and transformer (``ecology train``), their table, a tiny GGUF file, and
    the reference hitting times (``refs.json``) that the oracles compare with."""
    (fixtures / "ng.train.toml").write_text(NGRAM_SPEC)
    (fixtures / "gpt.train.toml").write_text(GPT_SPEC)
    for spec, extra in (("ng.train.toml", []), ("gpt.train.toml", ["--table", "gpt.csv"])):
        done = subprocess.run(eco + ["train", spec, *extra], cwd=fixtures, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"model fixture failed: train {spec}: {done.stderr[-300:]}", file=sys.stderr)
    table = (fixtures / "gpt.csv").read_text().splitlines() if (fixtures / "gpt.csv").is_file() else []
    full = [line for line in table[1:] if len(line.split(",")[0].split(" ")) == 3]  # rows of exactly k = 3 tokens
    (fixtures / "full.csv").write_text("\n".join(table[:1] + full) + "\n")
    try:
        sys.path.insert(0, str(REPO))
        from tests.gguf_files import write_tiny_gguf
        write_tiny_gguf(fixtures / "tiny.gguf")
        write_tiny_gguf(fixtures / "gpt2arch.gguf", architecture="gpt2")
        write_tiny_gguf(fixtures / "nan.gguf", weights={"output_norm.weight": np.full(32, np.nan, dtype=np.float32)})
    except Exception as err:  # noqa: BLE001 - the gguf cases then fail as harness errors, the rest runs
        print(f"gguf fixture failed: {type(err).__name__}: {err}", file=sys.stderr)
    refs = {}
    for name, text in {"ngram": model_scn(NGRAM_INLINE),
                       "gpt": model_scn(f'{{ kind = "transformer", file = "{fixtures / "gpt.npz"}" }}'),
                       "gpt_full": model_scn(f'{{ kind = "transformer", file = "{fixtures / "gpt.npz"}" }}',
                                             prompt='["F", "F", "F"]')}.items():
        path = fixtures / f"ref_{name}.toml"
        path.write_text(text)
        done = subprocess.run(eco + ["analyze", str(path), "--json"], cwd=fixtures, env=env, capture_output=True,
                              text=True)
        try:
            refs[name] = strict_json(done.stdout)["criteria"]["hit"]["expected_hitting_time"]
        except Exception:  # noqa: BLE001
            print(f"reference {name} failed: {done.stderr[-300:]}", file=sys.stderr)
    (fixtures / "refs.json").write_text(json.dumps(refs))


def hitting_time_is(ref: str, rel=1e-9):
    """Oracle: the criterion ``hit``'s exact expected hitting time equals the fixture reference ``ref``."""
    def oracle(ctx, stdout, stderr):
        truth = json.loads((ctx.fixtures / "refs.json").read_text())[ref]
        got = strict_json(stdout)["criteria"]["hit"]["expected_hitting_time"]
        if got is None or abs(got - truth) > rel * abs(truth):
            return f"E[T] = {got}, the reference ({ref}) is {truth}"
        return analyze_json(lambda r: None)(ctx, stdout, stderr)
    return oracle


# ---- .npz files --------------------------------------------------------------------------------

def npz_variant(src: str, mutate=None, raw: bytes | None = None, dest="m.npz"):
    """Setup: ``dest`` = the fixture ``src`` with ``mutate(meta, arrays)`` applied (it may return a
    replacement meta: a dict, or a string stored as is), or ``raw(bytes of src)``."""
    def setup(ctx: Ctx):
        path = ctx.fixtures / src
        if raw is not None:
            (ctx.work / dest).write_bytes(raw(path.read_bytes()))
            return
        with np.load(path, allow_pickle=False) as data:
            arrays = {n: data[n] for n in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        out = mutate(meta, arrays) if mutate else None
        meta = meta if out is None else out
        text = meta if isinstance(meta, str) else json.dumps(meta)
        np.savez(ctx.work / dest, __meta__=np.array(text), **arrays)
    return setup


def bad_crc(ctx: Ctx) -> None:
    """An uncompressed copy of the n-gram with one data byte flipped (its CRC-32 then fails)."""
    npz_variant("ng.npz")(ctx)
    path = ctx.work / "m.npz"
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("counts1.npy")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.extra.__len__() + 140] ^= 0xFF
    path.write_bytes(bytes(data))


def ngram_file_cases():
    NG = model_scn('{ kind = "ngram", file = "m.npz" }')
    A = ["analyze", "s.toml", "--json"]

    def put(meta, arrays, **kw):
        meta.update(kw)

    def set_array(name, fn):
        def mutate(meta, arrays):
            arrays[name] = fn(arrays[name])
        return mutate

    def drop(*names):
        def mutate(meta, arrays):
            for n in names:
                del arrays[n]
        return mutate

    def drop_meta(key):
        def mutate(meta, arrays):
            del meta[key]
        return mutate

    errors = {
        "empty file": npz_variant("ng.npz", raw=lambda b: b""),
        "truncated to half": npz_variant("ng.npz", raw=lambda b: b[: len(b) // 2]),
        "truncated to 100 bytes": npz_variant("ng.npz", raw=lambda b: b[:100]),
        "random bytes": npz_variant("ng.npz", raw=lambda b: bytes(range(256)) * 8),
        "bad CRC": bad_crc,
        "meta not JSON": npz_variant("ng.npz", lambda m, a: "{not json"),
        "meta a JSON list": npz_variant("ng.npz", lambda m, a: "[1, 2]"),
        "meta a JSON string": npz_variant("ng.npz", lambda m, a: '"ngram"'),
        "meta nested 100000 deep": npz_variant("ng.npz", lambda m, a: "[" * 100000 + "]" * 100000),
        "meta missing kind": npz_variant("ng.npz", drop_meta("kind")),
        "meta missing tokens": npz_variant("ng.npz", drop_meta("tokens")),
        "meta missing order": npz_variant("ng.npz", drop_meta("order")),
        "meta kind unknown": npz_variant("ng.npz", lambda m, a: put(m, a, kind="gpt5")),
        "meta kind an int": npz_variant("ng.npz", lambda m, a: put(m, a, kind=3)),
        "meta tokens duplicate": npz_variant("ng.npz", lambda m, a: put(m, a, tokens=["F", "F"])),
        "meta tokens not strings": npz_variant("ng.npz", lambda m, a: put(m, a, tokens=[0, 1])),
        "meta tokens differ from the vocabulary": npz_variant("ng.npz", lambda m, a: put(m, a, tokens=["F", "X"])),
        "order string": npz_variant("ng.npz", lambda m, a: put(m, a, order="3")),
        "order 2.5": npz_variant("ng.npz", lambda m, a: put(m, a, order=2.5)),
        "order 0": npz_variant("ng.npz", lambda m, a: put(m, a, order=0)),
        "order 4 (arrays of 3)": npz_variant("ng.npz", lambda m, a: put(m, a, order=4)),
        "order true": npz_variant("ng.npz", lambda m, a: put(m, a, order=True)),
        "k = -1": npz_variant("ng.npz", lambda m, a: put(m, a, k=-1)),
        "k NaN": npz_variant("ng.npz", lambda m, a: "{" + json.dumps(m)[1:-1].replace('"k": 0.5', '"k": NaN') + "}"),
        "k Infinity": npz_variant("ng.npz",
                                  lambda m, a: "{" + json.dumps(m)[1:-1].replace('"k": 0.5', '"k": Infinity') + "}"),
        "k string": npz_variant("ng.npz", lambda m, a: put(m, a, k="0.5")),
        "discount 1.5": npz_variant("ng.npz", lambda m, a: put(m, a, discount=1.5)),
        "discount -0.1": npz_variant("ng.npz", lambda m, a: put(m, a, discount=-0.1)),
        "smoothing unknown": npz_variant("ng.npz", lambda m, a: put(m, a, smoothing="witten-bell")),
        "missing codes2": npz_variant("ng.npz", drop("codes2")),
        "missing counts1": npz_variant("ng.npz", drop("counts1")),
        "unsorted codes": npz_variant("ng.npz", set_array("codes2", lambda c: c[::-1].copy())),
        "duplicate codes": npz_variant("ng.npz", set_array("codes2", lambda c: np.sort(np.r_[c[:1], c[:-1]]))),
        "codes out of range": npz_variant("ng.npz", set_array("codes2", lambda c: c + 10**6)),
        "negative codes": npz_variant("ng.npz", set_array("codes1", lambda c: c - 100)),
        "float codes": npz_variant("ng.npz", set_array("codes2", lambda c: c.astype(float))),
        "codes 2-D": npz_variant("ng.npz", set_array("codes2", lambda c: c.reshape(1, -1))),
        "codes longer than counts": npz_variant("ng.npz", set_array("codes3", lambda c: np.r_[c, c[-1] + 1])),
        "negative counts": npz_variant("ng.npz", set_array("counts2", lambda n: -n)),
        "zero counts": npz_variant("ng.npz", set_array("counts1", lambda n: n * 0)),
        "NaN counts": npz_variant("ng.npz", set_array("counts1", lambda n: n * np.nan)),
        "infinite counts": npz_variant("ng.npz", set_array("counts1", lambda n: n * np.inf)),
        "string counts": npz_variant("ng.npz", set_array("counts1", lambda n: n.astype(str))),
        "complex counts": npz_variant("ng.npz", set_array("counts1", lambda n: n.astype(complex))),
        "counts 1e308 (sums overflow)": npz_variant("ng.npz", set_array("counts1", lambda n: n * 0.0 + 1e308)),
    }
    for label, setup in errors.items():
        add("npz", f"n-gram: {label}", A, "error", files={"s.toml": NG}, setup=setup)
    add("npz", "n-gram: a directory named m.npz", A, "error", files={"s.toml": NG},
        setup=lambda c: (c.work / "m.npz").mkdir())
    add("npz", "n-gram: a FIFO named m.npz", A, "error", files={"s.toml": NG}, timeout=30,
        setup=lambda c: os.mkfifo(c.work / "m.npz"))
    add("npz", "n-gram: /dev/zero", A, "error", files={"s.toml": model_scn('{ kind = "ngram", file = "/dev/zero" }')})
    add("npz", "n-gram: missing file", A, "error", files={"s.toml": NG})
    add("npz", "n-gram: a transformer file", A, "error", files={"s.toml": NG}, setup=npz_variant("gpt.npz"))
    add("npz", "n-gram saved: E[T] = the inline n-gram's", A, "ok", files={"s.toml": NG}, setup=npz_variant("ng.npz"),
        oracle=hitting_time_is("ngram"))
    add("npz", "n-gram saved, vocabulary reordered: E[T] = the inline n-gram's", A, "ok",
        files={"s.toml": model_scn('{ kind = "ngram", file = "m.npz" }', tokens='["U", "F"]')},
        setup=npz_variant("ng.npz"), oracle=hitting_time_is("ngram"))
    add("npz", "n-gram saved: an extra meta key is refused or harmless", A, "either", files={"s.toml": NG},
        setup=npz_variant("ng.npz", lambda m, a: put(m, a, comment="hello")), oracle=hitting_time_is("ngram"))
    add("npz", "n-gram saved: run", ["run", "s.toml", "--out", "out"], "ok", files={"s.toml": NG},
        setup=npz_variant("ng.npz"), oracle=run_ok(steps=20))


def transformer_file_cases():
    TF = model_scn('{ kind = "transformer", file = "m.npz" }')
    A = ["analyze", "s.toml", "--json"]

    def config(**kw):
        def mutate(meta, arrays):
            meta["config"].update(kw)
        return mutate

    def weights(fn, only=None):
        def mutate(meta, arrays):
            for n in list(arrays):
                if only is None or n == only:
                    arrays[n] = fn(arrays[n])
        return mutate

    first = "wte"
    errors = {
        "empty file": npz_variant("gpt.npz", raw=lambda b: b""),
        "truncated to half": npz_variant("gpt.npz", raw=lambda b: b[: len(b) // 2]),
        "meta not JSON": npz_variant("gpt.npz", lambda m, a: "{"),
        "meta a number": npz_variant("gpt.npz", lambda m, a: "3"),
        "config missing": npz_variant("gpt.npz", lambda m, a: m.pop("config") and None),
        "config a list": npz_variant("gpt.npz", lambda m, a: m.update(config=[3, 1, 2, 8, 16])),
        "config unknown key": npz_variant("gpt.npz", config(dropout=0.1)),
        "config missing n_head": npz_variant("gpt.npz", lambda m, a: m["config"].pop("n_head") and None),
        "n_ctx string": npz_variant("gpt.npz", config(n_ctx="3")),
        "n_ctx 3.0": npz_variant("gpt.npz", config(n_ctx=3.0)),
        "n_ctx true": npz_variant("gpt.npz", config(n_ctx=True)),
        "n_ctx 0": npz_variant("gpt.npz", config(n_ctx=0)),
        "n_ctx 2 < context length 3": npz_variant("gpt.npz", config(n_ctx=2)),
        "n_ctx 1e18": npz_variant("gpt.npz", config(n_ctx=10**18)),
        "n_head 0": npz_variant("gpt.npz", config(n_head=0)),
        "n_head 3 does not divide d_model 8": npz_variant("gpt.npz", config(n_head=3)),
        "n_head -2": npz_variant("gpt.npz", config(n_head=-2)),
        "n_layer 0": npz_variant("gpt.npz", config(n_layer=0)),
        "n_layer 2 (weights of 1)": npz_variant("gpt.npz", config(n_layer=2)),
        "n_layer 1e9": npz_variant("gpt.npz", config(n_layer=10**9)),
        "d_model 1e12": npz_variant("gpt.npz", config(d_model=10**12)),
        "d_mlp -16": npz_variant("gpt.npz", config(d_mlp=-16)),
        "a weight missing": npz_variant("gpt.npz", lambda m, a: [a.pop(first), None][1]),
        "a weight of the wrong shape": npz_variant("gpt.npz", weights(lambda w: w[:-1], only=first)),
        "a weight 0-d": npz_variant("gpt.npz", weights(lambda w: np.array(1.0), only=first)),
        "string weights": npz_variant("gpt.npz", weights(lambda w: w.astype(str), only=first)),
        "complex weights": npz_variant("gpt.npz", weights(lambda w: w.astype(complex), only=first)),
        "bool weights": npz_variant("gpt.npz", weights(lambda w: w > 0, only=first)),
        "NaN weights": npz_variant("gpt.npz", weights(lambda w: w * np.nan, only=first)),
        "infinite weights": npz_variant("gpt.npz", weights(lambda w: w * np.inf, only=first)),
        "tokens differ from the vocabulary": npz_variant("gpt.npz", lambda m, a: m.update(tokens=["F", "Z"])),
        "kind says ngram": npz_variant("gpt.npz", lambda m, a: m.update(kind="ngram")),
    }
    for label, setup in errors.items():
        add("npz", f"transformer: {label}", A, "error", files={"s.toml": TF}, setup=setup)
    add("npz", "transformer: file = 3", A, "error", files={"s.toml": model_scn('{ kind = "transformer", file = 3 }')})
    add("npz", "transformer: no file key", A, "error", files={"s.toml": model_scn('{ kind = "transformer" }')})
    add("npz", "transformer: unknown key", A, "error",
        files={"s.toml": model_scn('{ kind = "transformer", file = "m.npz", layers = 2 }')}, setup=npz_variant("gpt.npz"))
    add("npz", "transformer: a FIFO", A, "error", files={"s.toml": TF}, timeout=30,
        setup=lambda c: os.mkfifo(c.work / "m.npz"))
    add("npz", "transformer: /dev/zero", A, "error",
        files={"s.toml": model_scn('{ kind = "transformer", file = "/dev/zero" }')})
    add("npz", "transformer saved: E[T] as trained", A, "ok", files={"s.toml": TF}, setup=npz_variant("gpt.npz"),
        oracle=hitting_time_is("gpt"))
    add("npz", "transformer, vocabulary reordered: the same E[T]", A, "ok",
        files={"s.toml": model_scn('{ kind = "transformer", file = "m.npz" }', tokens='["U", "F"]')},
        setup=npz_variant("gpt.npz"), oracle=hitting_time_is("gpt"))
    # finite but huge weights: the forward pass in float64 would not overflow; float32 does, silently
    for scale in ("1e15", "1e30"):
        add("npz", f"transformer: weights x {scale}: refused or the right answer", A, "either", files={"s.toml": TF},
            setup=npz_variant("gpt.npz", weights(lambda w, s=float(scale): (w.astype(np.float64) * s).astype(w.dtype))),
            oracle=analyze_json(lambda r: None))


# ---- tables (CSV) ------------------------------------------------------------------------------

def table_cases():
    A = ["analyze", "s.toml", "--json"]
    TB = model_scn('{ kind = "table", file = "t.csv" }')

    def table(text_fn):
        def setup(ctx):
            (ctx.work / "t.csv").write_text(text_fn((ctx.fixtures / "gpt.csv").read_text()))
        return setup

    def row(i, fn):
        def edit(text):
            lines = text.splitlines()
            lines[i] = fn(lines[i])
            return "\n".join(lines) + "\n"
        return edit

    errors = {
        "NaN logit": row(2, lambda r: r.rsplit(",", 1)[0] + ",nan"),
        "+inf logit": row(2, lambda r: r.rsplit(",", 1)[0] + ",inf"),
        "1e400 logit (inf when parsed)": row(2, lambda r: r.rsplit(",", 1)[0] + ",1e400"),
        "a row all -inf": row(2, lambda r: r.split(",")[0] + ",-inf,-inf"),
        "ragged row (one field short)": row(2, lambda r: r.rsplit(",", 1)[0]),
        "ragged row (one field more)": row(2, lambda r: r + ",0.5"),
        "duplicate context": lambda t: t + t.splitlines()[3] + "\n",
        "unknown token in a context": row(3, lambda r: "Z" + r[1:]),
        "unknown token in the header": row(0, lambda r: r.replace(",U", ",Z")),
        "duplicate header token": row(0, lambda r: "context,F,F"),
        "header without context column": row(0, lambda r: "ctx,F,U"),
        "not a number": row(2, lambda r: r.rsplit(",", 1)[0] + ",abc"),
        "empty file": lambda t: "",
        "header only": lambda t: t.splitlines()[0] + "\n",
        "double space in a context": row(6, lambda r: r.replace(" ", "  ", 1)),
        "non-UTF-8 bytes": None,
        "binary garbage": None,
    }
    def non_utf8(c):
        (c.work / "t.csv").write_bytes((c.fixtures / "gpt.csv").read_bytes() + b"\xff\xfe,1,2\n")

    def garbage(c):
        (c.work / "t.csv").write_bytes(bytes(range(256)) * 16)
    for label, edit in errors.items():
        setup = {"non-UTF-8 bytes": non_utf8, "binary garbage": garbage}.get(label) or table(edit)
        add("table", f"logits table: {label}", A, "error", files={"s.toml": TB}, setup=setup)
    probs = model_scn('{ kind = "table", file = "p.csv", values = "probs" }')
    for label, body in {"probs sum to 0.9": "context,F,U\n,0.5,0.4\n", "negative prob": "context,F,U\n,1.2,-0.2\n",
                        "probs NaN": "context,F,U\n,nan,0.5\n", "probs all 0": "context,F,U\n,0,0\n"}.items():
        add("table", f"probs table: {label}", A, "error", files={"s.toml": probs, "p.csv": body})
    add("table", "values = 'log'", A, "error", files={"s.toml": model_scn('{ kind = "table", file = "t.csv", '
                                                                          'values = "log" }')}, setup=table(str))
    add("table", "a missing file", A, "error", files={"s.toml": TB})
    add("table", "a directory", A, "error", files={"s.toml": TB}, setup=lambda c: (c.work / "t.csv").mkdir())
    add("table", "a FIFO", A, "error", files={"s.toml": TB}, timeout=30, setup=lambda c: os.mkfifo(c.work / "t.csv"))
    add("table", "/dev/zero", A, "error", files={"s.toml": model_scn('{ kind = "table", file = "/dev/zero" }')},
        timeout=30)
    add("table", "a context asked for and missing: named in one line", A, "error", files={"s.toml": TB},
        setup=table(lambda t: "\n".join(x for x in t.splitlines() if x.split(",")[0] != "F U") + "\n"))
    add("table", "a row longer than the window (never read): refused or harmless", A, "either", files={"s.toml": TB},
        setup=table(lambda t: t + "F F F F,-0.5,-0.9\n"), oracle=hitting_time_is("gpt", rel=1e-6))
    add("table", "the transformer's table: the transformer's E[T]", A, "ok", files={"s.toml": TB}, setup=table(str),
        oracle=hitting_time_is("gpt", rel=1e-6))
    add("table", "logits 1e300 apart: a certain token, finite answer", A, "either",
        files={"s.toml": TB}, setup=table(row(1, lambda r: ",-1e300," + r.split(",")[2])),
        oracle=analyze_json(lambda r: None))
    # a full-window table (rows of exactly k tokens), the form small GPTs' tables are published in
    FW = model_scn('{ kind = "table", file = "t.csv" }', prompt='["F", "F", "F"]')
    full = lambda c: shutil.copy(c.fixtures / "full.csv", c.work / "t.csv")  # noqa: E731
    add("fullwindow", "full-window table, single premise, full prompt: analyze = the transformer", A, "ok",
        files={"s.toml": FW}, setup=full, oracle=hitting_time_is("gpt_full", rel=1e-6))
    add("fullwindow", "full-window table, single premise, full prompt: run", ["run", "s.toml", "--out", "out"], "ok",
        files={"s.toml": FW}, setup=full, oracle=run_ok(steps=20))
    add("fullwindow", "full-window table, single premise, empty prompt: the missing context named", A, "error",
        files={"s.toml": TB}, setup=full)
    two = FW.replace("[absorption.hit]", '[simulacra.f]\nkind = "constant"\ntoken = "F"\n[premises.f]\nprior = 0.5\n'
                     'cast = ["f"]\n[absorption.hit]')
    for cmd in (A, ["run", "s.toml", "--out", "out"], ["validate", "s.toml"]):
        add("fullwindow", f"full-window table beside an automaton: refused ({cmd[0]})", cmd, "error",
            files={"s.toml": two}, setup=full)


# ---- ONNX --------------------------------------------------------------------------------------

def onnx_graph(path: Path, embedding: np.ndarray) -> None:
    """A graph ids (batch, length) -> E[ids] (batch, length, Vm): the logits after each prefix are the
    row of its last token."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Gather", ["E", "ids"], ["logits"], axis=0)
    graph = helper.make_graph(
        [node], "adversarial", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "length", embedding.shape[1]])],
        initializer=[numpy_helper.from_array(embedding.astype(np.float32), "E")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def onnx_cases():
    A = ["analyze", "s.toml", "--json"]
    OX = model_scn('{ kind = "onnx", file = "m.onnx", bos = 2 }')
    good = np.log(np.array([[0.9, 0.1, 1e-9], [0.5, 0.5, 1e-9], [0.7, 0.3, 1e-9]]))
    variants = {"NaN outputs": np.full((3, 3), np.nan), "+inf outputs": np.full((3, 3), np.inf),
                "all -inf outputs": np.full((3, 3), -np.inf),
                "-inf on both vocabulary tokens": np.array([[-np.inf, -np.inf, 0.0]] * 3),
                "one NaN row": np.vstack([good[:2], [[np.nan] * 3]]), "inf beside finite": good + [[np.inf, 0, 0]]}
    for label, emb in variants.items():
        add("onnx", f"onnx: {label}", A, "error", files={"s.toml": OX},
            setup=lambda c, emb=emb: onnx_graph(c.work / "m.onnx", emb))
        add("onnx", f"onnx: {label} (run)", ["run", "s.toml", "--out", "out"], "error", files={"s.toml": OX},
            setup=lambda c, emb=emb: onnx_graph(c.work / "m.onnx", emb))
    add("onnx", "onnx: valid graph, finite answer", A, "ok", files={"s.toml": OX},
        setup=lambda c: onnx_graph(c.work / "m.onnx", good), oracle=analyze_json(lambda r: None))
    add("onnx", "onnx: garbage file", A, "error", files={"s.toml": OX, "m.onnx": bytes(range(256)) * 4})
    add("onnx", "onnx: empty file", A, "error", files={"s.toml": OX, "m.onnx": b""})
    add("onnx", "onnx: a directory", A, "error", files={"s.toml": OX}, setup=lambda c: (c.work / "m.onnx").mkdir())
    add("onnx", "onnx: an npz instead", A, "error", files={"s.toml": OX}, setup=npz_variant("gpt.npz", dest="m.onnx"))
    add("onnx", "onnx: no bos", A, "error", files={"s.toml": model_scn('{ kind = "onnx", file = "m.onnx" }')},
        setup=lambda c: onnx_graph(c.work / "m.onnx", good))
    for label, extra in {"token_ids too short": "token_ids = [0]", "token_ids out of range": "token_ids = [0, 99]",
                         "token_ids strings": 'token_ids = ["0", "1"]', "bos out of range": "bos = 99",
                         "bos -1": "bos = -1", "max_length 0": "max_length = 0"}.items():
        spec = "{ kind = \"onnx\", file = \"m.onnx\", " + (extra if "bos" in extra else f"bos = 2, {extra}") + " }"
        add("onnx", f"onnx: {label}", A, "error", files={"s.toml": model_scn(spec)},
            setup=lambda c: onnx_graph(c.work / "m.onnx", good))


# ---- GGUF --------------------------------------------------------------------------------------

def gguf_cases():
    A = ["analyze", "s.toml", "--json"]

    def gg(file, tokens='["a", "b"]'):
        return model_scn(f'{{ kind = "gguf", file = "{file}" }}', k=2, tokens=tokens, crit='["a"]')

    def copy(src, cut=None):
        def setup(ctx):
            data = (ctx.fixtures / src).read_bytes()
            (ctx.work / "m.gguf").write_bytes(data if cut is None else data[:cut(len(data))])
        return setup
    add("gguf", "gguf: truncated to half", A, "error", files={"s.toml": gg("m.gguf")}, setup=copy("tiny.gguf",
                                                                                                  lambda n: n // 2))
    add("gguf", "gguf: truncated in the header", A, "error", files={"s.toml": gg("m.gguf")},
        setup=copy("tiny.gguf", lambda n: 64))
    add("gguf", "gguf: last byte cut", A, "error", files={"s.toml": gg("m.gguf")}, setup=copy("tiny.gguf",
                                                                                             lambda n: n - 1))
    add("gguf", "gguf: architecture gpt2", A, "error", files={"s.toml": gg("m.gguf")}, setup=copy("gpt2arch.gguf"))
    add("gguf", "gguf: a NaN tensor", A, "error", files={"s.toml": gg("m.gguf")}, setup=copy("nan.gguf"))
    add("gguf", "gguf: magic only", A, "error", files={"s.toml": gg("m.gguf"), "m.gguf": b"GGUF" + b"\0" * 40})
    add("gguf", "gguf: an npz", A, "error", files={"s.toml": gg("m.gguf")}, setup=npz_variant("gpt.npz", dest="m.gguf"))
    add("gguf", "gguf: a FIFO", A, "error", files={"s.toml": gg("m.gguf")}, timeout=30,
        setup=lambda c: os.mkfifo(c.work / "m.gguf"))
    add("gguf", "gguf: unknown shipped name", A, "error", files={"s.toml": gg("gpt-4")})
    add("gguf", "gguf: a token that is two model tokens", A, "error",
        files={"s.toml": gg("m.gguf", tokens='["a", "zq"]')}, setup=copy("tiny.gguf"))
    add("gguf", "gguf: valid tiny file, analyze", A, "ok", files={"s.toml": gg("m.gguf")}, setup=copy("tiny.gguf"),
        oracle=analyze_json(lambda r: None))
    add("gguf", "gguf: valid tiny file, run", ["run", "s.toml", "--out", "out"], "ok", files={"s.toml": gg("m.gguf")},
        setup=copy("tiny.gguf"), oracle=run_ok(steps=20))


# ---- inline model dicts ------------------------------------------------------------------------

def inline_cases():
    V = ["validate", "s.toml"]
    A = ["analyze", "s.toml", "--json"]
    ng = 'kind = "ngram", order = 3, smoothing = "add-k", k = 0.5'
    errors = {
        'sequence = ""': f'{{ {ng}, sequence = "" }}',
        "one-token sequence": f'{{ {ng}, sequence = "F" }}',
        "sequence an int": f"{{ {ng}, sequence = 5 }}",
        "sequence a nested list": f'{{ {ng}, sequence = [["F", "U"]] }}',
        "sequence true": f"{{ {ng}, sequence = true }}",
        "sequence of unknown symbols only": f'{{ {ng}, sequence = "xyzxyz" }}',
        "both text and sequence": f'{{ {ng}, sequence = "{SEQ}", text = "pydoc" }}',
        "neither text nor sequence": f"{{ {ng} }}",
        "text at a FIFO": f'{{ {ng}, text = "fifo.txt" }}',
        "text at /dev/zero": f'{{ {ng}, text = "/dev/zero" }}',
        "text at a directory": f'{{ {ng}, text = "d" }}',
        "text missing": f'{{ {ng}, text = "nope.txt" }}',
        "text non-UTF-8": f'{{ {ng}, text = "latin.txt" }}',
        'text = ""': f'{{ {ng}, text = "" }}',
        "text = 3": f"{{ {ng}, text = 3 }}",
        "order 0": f'{{ kind = "ngram", order = 0, sequence = "{SEQ}" }}',
        "order 100": f'{{ kind = "ngram", order = 100, sequence = "{SEQ}" }}',
        "order '3'": f'{{ kind = "ngram", order = "3", sequence = "{SEQ}" }}',
        "order 2.5": f'{{ kind = "ngram", order = 2.5, sequence = "{SEQ}" }}',
        "k = -1": f'{{ kind = "ngram", smoothing = "add-k", k = -1, sequence = "{SEQ}" }}',
        "k nan": f'{{ kind = "ngram", smoothing = "add-k", k = nan, sequence = "{SEQ}" }}',
        "k inf": f'{{ kind = "ngram", smoothing = "add-k", k = inf, sequence = "{SEQ}" }}',
        "discount 2": f'{{ kind = "ngram", discount = 2.0, sequence = "{SEQ}" }}',
        "discount nan": f'{{ kind = "ngram", discount = nan, sequence = "{SEQ}" }}',
        "smoothing typo": f'{{ kind = "ngram", smoothing = "kneser_ney", sequence = "{SEQ}" }}',
        "unknown key ordr": f'{{ kind = "ngram", ordr = 3, sequence = "{SEQ}" }}',
        "a transformer key (n_layer)": f'{{ {ng}, n_layer = 2, sequence = "{SEQ}" }}',
        "unit byte": f'{{ {ng}, unit = "byte", text = "c.txt" }}',
        "map to a non-token": f'{{ {ng}, map = {{ "Z" = "<vowel>" }}, text = "c.txt" }}',
        "map to an unknown class": f'{{ {ng}, map = {{ "F" = "<vowl>" }}, text = "c.txt" }}',
        "lowercase 'yes'": f'{{ {ng}, lowercase = "yes", text = "c.txt" }}',
        "collapse a non-token": f'{{ {ng}, collapse = ["Z"], text = "c.txt" }}',
        "kind missing": f'{{ order = 3, sequence = "{SEQ}" }}',
        "kind 3": f'{{ kind = 3, sequence = "{SEQ}" }}',
        "kind unknown": f'{{ kind = "lstm", sequence = "{SEQ}" }}',
        "model a string": '"ngram"',
        "model an empty table": "{}",
        "model a list": '["ngram"]',
        "table: values unknown": '{ kind = "table", file = "t.csv", values = "logs" }',
        "table: no file": '{ kind = "table" }',
        "transformer: inline sequence": f'{{ kind = "transformer", sequence = "{SEQ}" }}',
        "reduction keys beside a sequence (they do not apply)": f'{{ {ng}, unit = "word", sequence = "{SEQ}" }}',
    }
    for label, model in errors.items():
        def setup(c):
            os.mkfifo(c.work / "fifo.txt")
            (c.work / "d").mkdir()
            (c.work / "latin.txt").write_bytes("FFU\xe9FFU".encode("latin-1") * 10)
            (c.work / "c.txt").write_text(SEQ)
        add("inline", f"model dict: {label}", V, "error", files={"s.toml": model_scn(model)}, setup=setup, timeout=30)
    add("inline", "model and cast both", V, "error",
        files={"s.toml": model_scn(NGRAM_INLINE, extra='cast = ["x"]\n[simulacra.x]\nkind = "constant"\ntoken = "F"')})
    add("inline", "inline n-gram: E[T] = the saved one's", A, "ok", files={"s.toml": model_scn(NGRAM_INLINE)},
        oracle=hitting_time_is("ngram"))
    add("inline", "inline n-gram, sequence with symbols outside the vocabulary", A, "either",
        files={"s.toml": model_scn(f'{{ {ng}, sequence = "{SEQ}xyz" }}')}, oracle=analyze_json(lambda r: None))
    add("inline", "inline n-gram, text of a valid file", A, "ok",
        files={"s.toml": model_scn(f'{{ {ng}, text = "c.txt" }}'), "c.txt": SEQ}, oracle=hitting_time_is("ngram"))
    add("inline", "inline n-gram, text of 17 MiB", V, "either", files={"s.toml": model_scn(f'{{ {ng}, text = "c.txt" }}')},
        setup=lambda c: (c.work / "c.txt").write_text(SEQ * (17 * 2**20 // len(SEQ))), timeout=60)
