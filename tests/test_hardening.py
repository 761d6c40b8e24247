"""Hostile and odd input: every input either works or gets one line and exit status 2, before any
computation, with nothing written; sizes beyond a budget fail fast within bounded memory."""

import copy
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.numerics import tempered
from ecology.scenario import load, read_toml

from .conftest import SCENARIOS

BASE = read_toml(SCENARIOS / "waluigi_soft.toml")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


# --- strict types, names, files ------------------------------------------------------------------

@pytest.mark.parametrize("path, value, expected", [
    ("context.length", True, "context.length: Input should be a valid integer, got true"),
    ("context.length", "4", 'context.length: Input should be a valid integer, got "4"'),
    ("run.drift", "yes", 'run.drift: Input should be a valid boolean, got "yes"'),
    ("run.seed", -1, "run.seed: Input should be greater than or equal to 0"),
    ("sampling.temperature", math.nan, "sampling.temperature: must be a finite number, got nan"),
    ("name", "../../x", "name: name '../../x' is not allowed"),
    ("name", "/tmp/abs", "name: name '/tmp/abs' is not allowed"),
])
def test_strict_values_are_refused(path, value, expected, tmp_path, capsys):
    data = copy.deepcopy(BASE)
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    file = tmp_path / "s.toml"
    file.write_text(tomli_w.dumps(data))
    assert main(["run", str(file), "--out", str(tmp_path / "out")]) == 2
    assert f"{file}: {expected}" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_names_with_path_separators_are_refused(tmp_path, capsys):
    data = copy.deepcopy(BASE)
    data["absorption"]["a/b"] = data["absorption"].pop(next(iter(data["absorption"])))
    file = tmp_path / "s.toml"
    file.write_text(tomli_w.dumps(data))
    assert main(["validate", str(file)]) == 2
    assert "absorption.a/b: name 'a/b' is not allowed" in one_line_error(capsys)


def test_set_cannot_invent_a_premise(capsys):
    assert main(["validate", str(SCENARIOS / "waluigi.toml"), "--set", "premises.typo.prior=1"]) == 2
    assert "premises.typo.prior: there is no premise 'typo'" in one_line_error(capsys)


@pytest.mark.parametrize("content, expected", [
    (b'name = "\xff"\n', "not UTF-8 text (byte 0xff at offset 8)"),
    (b"a = " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested more than 24 levels deep"),
    (b"a = " + b"{b = " * 200 + b"1" + b"}" * 200 + b"\n", "nested more than 24 levels deep"),
])
def test_unreadable_files(content, expected, tmp_path, capsys):
    file = tmp_path / "s.toml"
    file.write_bytes(content)
    assert main(["validate", str(file)]) == 2
    assert expected in one_line_error(capsys)


def test_fifo_device_and_directory_are_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path, expected in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                           (tmp_path, "is a directory"), (tmp_path / ("x" * 300), "cannot open")):
        assert main(["validate", str(path)]) == 2
        assert expected in one_line_error(capsys)


def test_sweep_table_typos_are_errors(tmp_path, capsys):
    data = copy.deepcopy(BASE)
    data["sweep"] = {"grid": {"context.length": [2, 3]}, "replicate": 5}
    file = tmp_path / "s.toml"
    file.write_text(tomli_w.dumps(data))
    assert main(["sweep", str(file), "--out", str(tmp_path / "out")]) == 2
    assert "sweep.replicate: unknown key" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("grid, expected", [
    ("context.length=1:1e18:1", "more than 10,000"),
    ("context.length=1:inf:1", "must be finite numbers"),
    ("sampling.temperature=nan:1:0.1", "must be finite numbers"),
    ("context.length=2:1e300:*1.0000001", "more than 10,000"),
])
def test_grids_are_bounded_before_they_are_generated(grid, expected, tmp_path, capsys):
    args = ["sweep", str(SCENARIOS / "waluigi.toml"), "--grid", grid, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_list_valued_grid_values_parse_as_toml():
    from ecology.sweep.grid import parse_values

    assert parse_values('["F"],["U", "F"]') == [["F"], ["U", "F"]]
    assert parse_values("fifo,none") == ["fifo", "none"]
    assert parse_values("2,4") == [2, 4]


# --- numerics: temperature in log space, never NaN ------------------------------------------------

@pytest.mark.parametrize("temperature", [5e-324, 1e-320, 1e-300, 1e-12])
def test_tiny_temperature_is_greedy_never_nan(temperature):
    with np.errstate(divide="ignore"):
        log_mu = np.log(np.array([[0.3, 0.7], [0.6, 0.4], [0.5, 0.5], [1.0, 0.0]]))
    p = np.exp(tempered(log_mu, temperature))
    assert not np.isnan(p).any()
    np.testing.assert_array_equal(p, [[0, 1], [1, 0], [0.5, 0.5], [1, 0]])


def test_tiny_temperature_run_prints_the_likelier_token(tmp_path):
    scenario = load(SCENARIOS / "waluigi_soft.toml", {"sampling.temperature": 1e-320, "run.replicates": 50,
                                                       "run.steps": 30})
    from ecology.results import simulate

    result = simulate(scenario)
    # the luigi (prior 0.99 here or not) makes F the likelier token on the empty window: greedy prints F
    law = np.exp(compile_scenario(scenario).mixture.read(compile_scenario(scenario).window[None]).log_mu[0])
    assert law[0] > law[1]
    assert np.all(result.raster[1:, -1] == 0)


# --- resource bounds: fail fast within a fixed memory budget --------------------------------------

SIZE_CASES = {
    "replicates 1e9": ["run", "waluigi.toml", "--set", "run.replicates=1000000000"],
    "length 1e9": ["run", "waluigi.toml", "--set", "context.length=1000000000"],
    "steps beyond int64": ["run", "waluigi.toml", "--set", "run.steps=100000000000000000000"],
    "steps 1e15": ["run", "waluigi.toml", "--set", "run.steps=1000000000000000"],
    "periodic 1e9": ["run", "dog.toml", "--set", "absorption.orbit.periodic=1000000000"],
    "population count 1e9": ["run", "coins.toml", "--set", "populations.biased.count=1000000000"],
    "product automaton": ["validate", "chat.toml", "--set", "premises.helpful.turns.every=1000000000",
                          "--set", "premises.helpful.turns.after=false"],
    "grid of 1e12 points": ["sweep", "waluigi.toml", "--grid", "context.length=1:1000000:1",
                            "--grid", "run.seed=1:1000000:1"],
    "workers on a huge grid": ["sweep", "waluigi.toml", "--grid", "run.seed=0:1e12:1"],
    "analyze k=40 --max-states 1e12": ["analyze", "waluigi_soft.toml", "--set", "context.length=40",
                                       "--max-states", str(10**12)],
    "analyze k=40 --max-states 1e15": ["analyze", "waluigi_soft.toml", "--set", "context.length=40",
                                       "--max-states", str(10**15)],
    "analyze iid over 300 tokens at k=2 within 2 GiB": ["analyze", "iid300.toml", "--max-memory", "2"],
}


def iid_table(n_tokens: int, length: int) -> dict:
    """One iid premise, uniform over ``n_tokens`` tokens: ``sum_{j <= k} V^j`` page-states, V transitions each."""
    tokens = [f"t{i}" for i in range(n_tokens)]
    return {"name": "iid", "vocabulary": {"tokens": tokens}, "context": {"length": length},
            "simulacra": {"src": {"kind": "iid", "probs": dict.fromkeys(tokens, 1 / n_tokens)}},
            "premises": {"src": {"prior": 1.0, "cast": ["src"]}}}


def test_size_cases_fail_fast_within_a_memory_limit(tmp_path):
    """Each case runs in one child process limited to 3 GiB of address space: exit 2, one line,
    within seconds (a generous wall-clock bound for a loaded machine)."""
    import tomli_w

    (tmp_path / "iid300.toml").write_text(tomli_w.dumps(iid_table(300, 2)))
    folder = {"iid300.toml": tmp_path}
    cases = {name: [a if not a.endswith(".toml") else str(folder.get(a, SCENARIOS) / a) for a in args]
             + (["--out", str(tmp_path / name.replace(" ", "_"))] if args[0] in ("run", "sweep") else [])
             for name, args in SIZE_CASES.items()}
    driver = textwrap.dedent("""
        import contextlib, io, json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        from ecology.cli import main
        out = {}
        for name, args in json.loads(sys.argv[1]).items():
            err = io.StringIO()
            began = time.perf_counter()
            with contextlib.redirect_stderr(err):
                code = main(args)
            out[name] = [code, err.getvalue(), time.perf_counter() - began]
        print(json.dumps(out))
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", driver, json.dumps(cases)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for name, (code, err, seconds) in results.items():
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (name, code, err)
        assert seconds < 20, (name, seconds)
        assert not (tmp_path / name.replace(" ", "_")).exists(), name


# --- property-based fuzzing of scenario files ------------------------------------------------------

ODD_VALUES = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 2**31, 2**63, 10**30, 0.0, 0.5, 1.0, -0.5, 1e-320, 1e300, math.nan, math.inf,
                     True, False, "", "F", "U", "N", "../x", "$\\frac$", "a b", "fifo", "none", "block", [], ["F"],
                     ["U", "F"], [1, 2], {}, {"kind": "constant"}]),
    st.text(max_size=8),
    st.integers(min_value=-10, max_value=40),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


EXTRA_PATHS = {("context", "deletion"), ("context", "block"), ("context", "pinned"), ("context", "reset"),
               ("context", "delimiter"), ("run", "drift"), ("sampling", "temperature"), ("absorption", "x", "periodic"),
               ("absorption", "y", "population"), ("absorption", "y", "above"), ("extra_key",)}
BASES = {name: read_toml(SCENARIOS / f"{name}.toml") for name in ("waluigi_soft", "chat", "coins", "dog")}
PATHS = {name: sorted(set(_paths(table)) | EXTRA_PATHS) for name, table in BASES.items()}


@st.composite
def mutated_scenarios(draw):
    base = draw(st.sampled_from(sorted(BASES)))
    data = copy.deepcopy(BASES[base])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[base]))
        node = data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        if draw(st.booleans()) and path[-1] in node:
            del node[path[-1]]
        else:
            node[path[-1]] = draw(ODD_VALUES)
    return data


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated_scenarios())
def test_fuzzed_scenarios_work_or_fail_with_one_line(data, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("fuzz")
    file = folder / "s.toml"
    try:
        file.write_text(tomli_w.dumps(data))
    except (TypeError, ValueError):  # not representable in TOML (e.g. a list of mixed tables)
        return
    out = folder / "out"
    code = main(["run", str(file), "--steps", "3", "--replicates", "3", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    if code == 0:
        summary = json.loads(captured.out)
        assert (out / "summary.json").is_file() and summary["output"] == str(out)
    else:
        assert code == 2, captured.err
        assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
        assert not out.exists()
        assert not any(p.name.startswith(".out") for p in folder.iterdir())


# --- the exact chain's memory estimate ---------------------------------------------------------------


def test_exact_memory_bound_counts_states_and_transitions():
    """iid over 300 tokens at k = 2: at most 1 + 302 + 302^2 strings of the 302 symbols (tokens,
    pad, deleted slot), 300 transitions each; the estimate grows linearly in both."""
    from ecology.core.budget import EXACT_BYTES_PER_TRANSITION, exact_bytes, window_count

    assert window_count(302, 2, 10**9) == 1 + 302 + 302**2
    assert window_count(4, 40, 2_500_000) == 2_500_000
    total, states, transitions = exact_bytes(300, 300, 302, [2], 10**9, 24)
    assert (states, transitions) == (91_507, 91_507 * 300)
    assert transitions * EXACT_BYTES_PER_TRANSITION < total < 1.1 * transitions * EXACT_BYTES_PER_TRANSITION
    _, states, transitions = exact_bytes(300, 300, 302, [2], 50_000, 24)
    assert (states, transitions) == (50_000, 50_000 * 24)  # the budget of 24 transitions per state binds
    twice, _, _ = exact_bytes(300, 300, 302, [2, 2], 10**9, 24)
    assert twice == 2 * total  # the extended chain of a periodic criterion is counted beside the chain


def test_a_raised_state_budget_that_fits_still_runs_and_one_that_does_not_is_refused(capsys):
    """The toy at k = 40 has few page-states (861): a state budget of 10^7 fits 8 GiB in the worst
    case and runs; 10^7 within 1 GiB, or 10^12, is refused up front naming --max-memory."""
    toy = str(SCENARIOS / "waluigi.toml")
    assert main(["analyze", toy, "--set", "context.length=40", "--max-states", str(10**7), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_states"] < 10_000
    for extra in (["--max-states", str(10**7), "--max-memory", "1"], ["--max-states", str(10**12)]):
        assert main(["analyze", toy, "--set", "context.length=40", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--max-memory" in err and "--max-states" in err, err
