"""``ecology train``: hostile training specs (NaN, huge or negative rates, non-integer steps and seeds,
sizes beyond any budget, an n-gram spec with a transformer's keys) and hostile output locations
(a missing directory, a directory or a file in the way, symlinks planted at the output or at its
``.partial`` file, a read-only directory): each refused in one line before any training, nothing
written, a victim file untouched.
"""

from __future__ import annotations

import os
import re
import subprocess

from .case import Ctx, add
from .models import GPT_SPEC, NGRAM_SPEC
from .oracles import strict_json

VICTIM = "precious content\n"
PROGRESS = r"step +\d+/\d+: loss"  # the trainer's progress lines on stderr
LATE = {"timeout": 40, "refuse_within": 5, "stderr_ignore": PROGRESS}  # refused before ~10 s of training


def tadd(*args, **kw):
    """:func:`add` with the trainer's progress lines allowed on stderr."""
    kw.setdefault("stderr_ignore", PROGRESS)
    add(*args, **kw)


def spec_with(base: str, section: str | None, key: str, value: str | None) -> str:
    """``base`` with ``key`` of ``[section]`` (top level when None) set to the TOML ``value`` (or removed)."""
    lines = base.splitlines()
    start = 0 if section is None else lines.index(f"[{section}]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start, end):
        if re.match(rf"{re.escape(key)}\s*=", lines[i]):
            if value is None:
                del lines[i]
            else:
                lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if value is not None:
        lines.insert(end, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def trained(out="m.npz"):
    """Oracle of a valid training: the model file exists and the summary is strict JSON."""
    def check(ctx, stdout, stderr):
        if not (ctx.work / out).is_file():
            return f"{out} missing"
        return None
    return check


def train_cases():
    T = ["train", "t.toml", "--out", "m.npz"]
    gpt_values = {
        ("training", "learning_rate"): ["nan", "inf", "1e300", "-1e-3", "0.0", '"0.01"', "true"],
        ("training", "weight_decay"): ["inf", "nan", "-0.1", '"0"'],
        ("training", "steps"): ["2.7", "0", '"10"', "-5", "true", "1e18", str(10**18)],
        ("training", "seed"): ["1.5", "-1", '"1"', str(2**64), "nan"],
        ("training", "batch"): ["-1", "1.5", '"all"'],
        ("model", "d_model"): [str(10**6), "0", "8.0", "-8"],
        ("model", "n_layer"): [str(10**5), "0", '"1"'],
        ("model", "n_ctx"): [str(10**6), "0", "2.5"],
        ("model", "n_head"): ["0", "3", "-2", str(10**9)],
        ("model", "d_mlp"): ["0", str(10**9)],
        (None, "kind"): ['"gpt"', "3"],
        (None, "tokens"): ["[]", '["F", "F"]', '["F"]', '"FU"', "[1, 2]"],
        (None, "out"): ["3", '""'],
        (None, "table"): ["3"],
    }
    # a batch larger than the example set is the full batch, as batch = 0 (docs/models.md)
    tadd("train", f"transformer training.batch = {10**12} (the full batch)", T, "either", timeout=30,
        files={"t.toml": spec_with(GPT_SPEC, "training", "batch", str(10**12))}, oracle=trained())
    for (section, key), values in gpt_values.items():
        for value in values:
            where = f"{section}.{key}" if section else key
            # sizes beyond any budget must be refused in seconds, from the spec, not trained
            tadd("train", f"transformer {where} = {value}", T, "error", timeout=30,
                files={"t.toml": spec_with(GPT_SPEC, section, key, value)})
    for section, key in (("training", "learning_rate"), ("model", "n_ctx"), ("data", "sequence"), (None, "tokens"),
                         (None, "kind")):
        tadd("train", f"transformer without {key}", T, "error" if key != "learning_rate" else "either",
            files={"t.toml": spec_with(GPT_SPEC, section, key, None)}, oracle=trained(), timeout=30)
    data_cases = {
        "both text and sequence": ("text", '"pydoc"'), 'sequence = ""': ("sequence", '""'),
        "one-token sequence": ("sequence", '"F"'), "sequence an int": ("sequence", "5"),
        "sequence a nested list": ("sequence", '[["F"]]'), "sequence of unknown symbols": ("sequence", '"xyz"'),
    }
    for label, (key, value) in data_cases.items():
        tadd("train", f"transformer data: {label}", T, "error", files={"t.toml": spec_with(GPT_SPEC, "data", key, value)},
            timeout=30)
    no_seq = spec_with(GPT_SPEC, "data", "sequence", None)
    for label, value in {"FIFO": '"fifo.txt"', "/dev/zero": '"/dev/zero"', "directory": '"d"',
                         "missing file": '"nope.txt"', "non-UTF-8 file": '"latin.txt"'}.items():
        def setup(c: Ctx):
            os.mkfifo(c.work / "fifo.txt")
            (c.work / "d").mkdir()
            (c.work / "latin.txt").write_bytes("FFU\xe9".encode("latin-1") * 30)
        tadd("train", f"transformer data: text at a {label}", T, "error", timeout=30, setup=setup,
            files={"t.toml": spec_with(no_seq, "data", "text", value)})
    tadd("train", "transformer: unknown key in [training]", T, "error",
        files={"t.toml": spec_with(GPT_SPEC, "training", "lr", "0.1")})
    tadd("train", "transformer: unknown top-level key", T, "error", files={"t.toml": spec_with(GPT_SPEC, None, "name", '"x"')})
    tadd("train", "transformer: unknown section", T, "error", files={"t.toml": GPT_SPEC + "\n[extra]\nx = 1\n"})
    tadd("train", "transformer: an n-gram key in [model]", T, "error",
        files={"t.toml": spec_with(GPT_SPEC, "model", "order", "3")})
    ngram_bad = {
        ("model", "n_layer"): "2", ("model", "order"): "0", ("model", "k"): "-1", ("model", "discount"): "1.5",
        ("model", "smoothing"): '"good-turing"', ("model", "ordr"): "3", ("training", "steps"): "10",
    }
    for (section, key), value in ngram_bad.items():
        base = NGRAM_SPEC if section != "training" else NGRAM_SPEC + "\n[training]\n"
        tadd("train", f"n-gram {section + '.' if section else ''}{key} = {value}", T, "error",
            files={"t.toml": spec_with(base, section, key, value)})
    # an n-gram's table holds every context of at most order - 1 tokens (docs/models.md): valid
    tadd("train", "n-gram table = \"t.csv\" (its contexts up to order - 1)", T, "ok",
        files={"t.toml": spec_with(NGRAM_SPEC, None, "table", '"t.csv"')},
        oracle=lambda c, o, e: trained()(c, o, e) or (None if (c.work / "t.csv").is_file() else "no t.csv written"))
    tadd("train", "n-gram: both text and sequence", T, "error",
        files={"t.toml": spec_with(NGRAM_SPEC, "data", "text", '"pydoc"')})
    for label, flags in {"--steps 0": ["--steps", "0"], "--steps -1": ["--steps", "-1"], "--steps 2.5": ["--steps", "2.5"],
                         "--steps 1e18": ["--steps", str(10**18)], "--seed -1": ["--seed", "-1"],
                         "--seed 1.5": ["--seed", "1.5"], "--seed 2^64": ["--seed", str(2**64)]}.items():
        tadd("train", f"transformer {label}", T + flags, "error", files={"t.toml": GPT_SPEC}, timeout=30)
    tadd("train", "not TOML", T, "error", files={"t.toml": "kind = \n"})
    tadd("train", "a scenario, not a spec", T, "error", files={"t.toml": 'name = "x"\n[vocabulary]\ntokens = ["F"]\n'})
    tadd("train", "spec at /dev/zero", ["train", "/dev/zero", "--out", "m.npz"], "error", timeout=30)
    tadd("train", "valid transformer", T + ["--json"], "ok", files={"t.toml": GPT_SPEC},
        oracle=lambda c, o, e: trained()(c, o, e) or (None if strict_json(o.splitlines()[0])["steps"] == 5
                                                      else "summary steps != 5"))
    tadd("train", "valid n-gram", T, "ok", files={"t.toml": NGRAM_SPEC}, oracle=trained())
    tadd("train", "valid: the same spec twice gives the same weights", T, "ok", files={"t.toml": GPT_SPEC},
        oracle=same_weights)


def same_weights(ctx, stdout, stderr):
    """Train again into m2.npz (in the oracle) and compare the arrays: the training is seeded."""
    import numpy as np

    from .harness import ecology_command
    subprocess.run(ecology_command() + ["train", "t.toml", "--out", "m2.npz"], cwd=ctx.work, capture_output=True,
                   env=dict(os.environ, OPENBLAS_NUM_THREADS="1"), timeout=60)
    with np.load(ctx.work / "m.npz") as a, np.load(ctx.work / "m2.npz") as b:
        differ = [n for n in a.files if n != "__meta__" and not np.array_equal(a[n], b[n])]
    return f"weights {differ[:3]} differ between two trainings of one spec" if differ else None


def train_output_cases():
    """Output locations of ``ecology train`` (and ``--table``): refused before training, atomically
    written, never through a symlink, nothing left behind."""
    slow = spec_with(GPT_SPEC, "training", "steps", "600")  # 6-15 s of training: a refusal after it is late

    def victim(c: Ctx):
        (c.work / "victim.txt").write_text(VICTIM)

    def both(*fns):
        def setup(c):
            victim(c)
            for fn in fns:
                fn(c)
        return setup
    locations = {
        "a missing directory": ("nodir/m.npz", None),
        "a directory in the way": ("d", lambda c: (c.work / "d").mkdir()),
        "an existing file": ("victim.txt", None),
        "a symlink to a file": ("m.npz", lambda c: os.symlink(c.work / "victim.txt", c.work / "m.npz")),
        "a dangling symlink": ("m.npz", lambda c: os.symlink(c.work / "ghost.npz", c.work / "m.npz")),
        "inside a file": ("victim.txt/m.npz", None),
        "/proc": ("/proc/adversarial.npz", None),
        "/dev/null": ("/dev/null", None),
        "an over-long name": ("x" * 300 + ".npz", None),
        "empty string": ("", None),
    }
    for label, (target, fn) in locations.items():
        tadd("trainout", f"train --out {label}", ["train", "t.toml", "--out", target], "error", **LATE,
            files={"t.toml": slow}, setup=both(fn) if fn else victim, victims=("victim.txt",))
        tadd("trainout", f"train --table {label}", ["train", "t.toml", "--out", "model.npz", "--table", target], "error",
            **LATE, files={"t.toml": slow}, setup=both(fn) if fn else victim, victims=("victim.txt",))
    # the planted link is the user's own file: it stays, pointing at the untouched victim
    tadd("trainout", "train: a symlink planted at m.npz.partial", ["train", "t.toml", "--out", "m.npz"], "either",
        files={"t.toml": GPT_SPEC}, victims=("victim.txt",),
        setup=both(lambda c: os.symlink(c.work / "victim.txt", c.work / "m.npz.partial")),
        oracle=lambda c, o, e: trained()(c, o, e) or (None if os.path.islink(c.work / "m.npz.partial")
                                                      else "the planted m.npz.partial link was removed or replaced"))
    tadd("trainout", "train: a symlink planted at .m.npz.partial", ["train", "t.toml", "--out", "m.npz"], "either",
        files={"t.toml": GPT_SPEC}, victims=("victim.txt",),
        setup=both(lambda c: os.symlink(c.work / "victim.txt", c.work / ".m.npz.partial")),
        oracle=trained())
    tadd("trainout", "train: --out and --table the same file", ["train", "t.toml", "--out", "m.npz", "--table", "m.npz"],
        "error", files={"t.toml": GPT_SPEC})
    tadd("trainout", "train: out into missing parents (spec's out)", ["train", "t.toml"], "either",
        files={"t.toml": spec_with(GPT_SPEC, None, "out", '"p/q/m.npz"')}, oracle=trained("p/q/m.npz"))

    def read_only(c: Ctx):
        (c.work / "ro").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(c.work / "ro")], check=True,
                       capture_output=True)
    tadd("trainout", "train --out in a read-only directory", ["train", "t.toml", "--out", "ro/m.npz"], "error",
        **LATE, files={"t.toml": slow}, setup=read_only, teardown=unmount("ro"), needs_root=True)


def unmount(rel: str):
    def teardown(c: Ctx):
        subprocess.run(["umount", "-l", str(c.work / rel)], capture_output=True)
    return teardown
