"""The command line: outputs of `ecology run`, and one-line errors (exit 2) for bad input."""

import json
import subprocess
import sys

import pytest
import tomli_w

from ecology.cli import main

from .conftest import SCENARIOS, misread, table


def write(tmp_path, data, name="bad.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def broken(mutate):
    data = table("waluigi")
    mutate(data)
    return data


BAD = {
    "unknown token in emit": (
        lambda d: d["simulacra"]["luigi"]["states"]["kind"].update(emit={"X": 1.0}),
        "simulacra.luigi.states.kind.emit.X: unknown token 'X'",
    ),
    "pad in emit": (
        lambda d: d["simulacra"]["luigi"]["states"]["kind"].update(emit={"N": 1.0}),
        "simulacra.luigi.states.kind.emit.N: the pad 'N' is never generated",
    ),
    "probabilities not summing to 1": (
        lambda d: d["simulacra"]["waluigi"]["states"]["hiding"].update(emit={"F": 0.9, "U": 0.2}),
        "simulacra.waluigi.states.hiding.emit: probabilities sum to 1.1, not 1",
    ),
    "unknown state in on": (
        lambda d: d["simulacra"]["waluigi"]["states"]["hiding"].update(on={"U": "gone"}),
        "simulacra.waluigi.states.hiding.on.U: unknown state 'gone'",
    ),
    "unknown simulacrum in cast": (
        lambda d: d["premises"]["luigi"].update(cast=["mario"]),
        "premises.luigi.cast[0]: unknown simulacrum 'mario'",
    ),
    "non-positive prior": (
        lambda d: d["premises"]["luigi"].update(prior=0),
        "premises.luigi.prior: Input should be greater than 0",
    ),
    "length < 1": (
        lambda d: d["context"].update(length=0),
        "context.length: Input should be greater than or equal to 1",
    ),
    "prompt impossible under every premise": (
        lambda d: d["context"].update(prompt=["U", "F"]),
        "context.prompt: the initial window 'N N N N N N U F' has probability 0 under every premise",
    ),
    "unknown token in prompt": (
        lambda d: d["context"].update(prompt=["Q"]),
        "context.prompt[0]: unknown token 'Q'",
    ),
    "unknown key": (
        lambda d: d["context"].update(lenght=3),
        "context.lenght: unknown key",
    ),
    "unknown kind": (
        lambda d: d["simulacra"].update(mario={"kind": "plumber"}),
        "simulacra.mario: unknown kind 'plumber'",
    ),
    "kind parameter out of range": (
        lambda d: d["simulacra"].update(w={"kind": "waluigi", "mask": "F", "reveal": "U", "p": 1.5}),
        "simulacra.w.p: Input should be less than or equal to 1",
    ),
    "unknown population in criterion": (
        lambda d: d["absorption"].update(x={"population": "mario", "above": 0.5}),
        "absorption.x.population: unknown population label 'mario'",
    ),
    "criterion with two forms": (
        lambda d: d["absorption"].update(x={"periodic": 2, "window_only": ["U"]}),
        "absorption.x: give exactly one of",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenarios_fail_with_one_line(case, tmp_path, capsys):
    mutate, expected = BAD[case]
    path = write(tmp_path, broken(mutate))
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"error: {path}: {expected}"), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sets, expected", [
    (["premises.luigi.prior=-1"], "premises.luigi.prior: Input should be greater than 0"),
    (["context.length=zero"], "context.length: Input should be a valid integer"),
    (["context.deletion=sideways"], "context.deletion: Input should be 'fifo', 'none', 'block' or 'message'"),
    (["context=3"], "context: is a table"),
    (["novalue"], "--set 'novalue': expected dotted.path=value"),
])
def test_bad_overrides_fail_with_one_line(sets, expected, tmp_path, capsys):
    args = ["run", str(SCENARIOS / "waluigi.toml"), "--out", str(tmp_path / "o")]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_missing_file_and_bad_flag(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: file not found" in capsys.readouterr().err
    assert main(["run", str(SCENARIOS / "waluigi.toml"), "--steps", "many"]) == 2
    assert "invalid int value" in capsys.readouterr().err


def test_run_writes_everything_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "run1"
    args = ["run", str(SCENARIOS / "waluigi.toml"), "--steps", "50", "--replicates", "300",
            "--set", "premises.luigi.prior=0.5", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("summary.json", "steps.csv", "replicates.csv", "scenario.toml", "raster.csv",
                 "populations.png", "reaching.png", "raster.png", "premises.csv", "speakers.png"):
        assert (out / name).is_file(), name
    assert summary == json.loads((out / "summary.json").read_text())
    assert {"scenario", "steps", "replicates", "seed", "criteria", "populations", "premises"} <= set(summary)
    revealed = summary["criteria"]["revealed"]
    assert len(revealed["reached_curve"]) == 51 and revealed["reached_curve"][0] == 0.0
    assert revealed["reached_curve"][-1] == revealed["reached"]
    assert set(summary["populations"]) == {"luigi", "waluigi"}
    assert "prior = 0.5" in (out / "scenario.toml").read_text()
    before = (out / "summary.json").read_text()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before


def test_runtime_impossible_window_through_the_cli(tmp_path, capsys):
    data = misread()
    path = write(tmp_path, data)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step 4, replicate 0: the window 'b a b'" in err
    assert not (tmp_path / "o").exists()


def test_subprocess_error_has_no_traceback(tmp_path):
    path = write(tmp_path, broken(lambda d: d["premises"]["luigi"].update(prior=-2)))
    proc = subprocess.run([sys.executable, "-m", "ecology", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_schema_and_every_shipped_scenario_validates(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"vocabulary", "context", "simulacra", "premises", "populations", "absorption"} <= set(schema["properties"])
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert main(["validate", str(path)]) == 0, path
    capsys.readouterr()


def test_a_closed_pipe_ends_the_command_quietly_with_sigpipes_status(tmp_path):
    """``ecology analyze ... --json | head``: the reader may close the pipe before the JSON is written."""
    reader = subprocess.Popen([sys.executable, "-m", "ecology", "analyze", str(SCENARIOS / "waluigi.toml"), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    reader.stdout.close()
    err = reader.stderr.read()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 128 + 13 and err == b""


def test_counts_are_printed_with_nouns_in_their_number(tmp_path, capsys):
    data = {"name": "one", "vocabulary": {"tokens": ["a", "b"]}, "context": {"length": 2, "prompt": ["a"]},
            "simulacra": {"c": {"kind": "iid", "probs": {"a": 0.5, "b": 0.5}}},
            "premises": {"p": {"prior": 1.0, "cast": ["c"]}}, "absorption": {"x": {"window_only": ["b"]}}}
    path = tmp_path / "one.toml"
    path.write_text(tomli_w.dumps(data))
    assert main(["validate", str(path)]) == 0
    assert "1 premise in 1 population, 1 absorption criterion;" in capsys.readouterr().out
