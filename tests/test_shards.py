"""Replicate shards: one run split into fixed shards, the same numbers on one worker, two, a local Dask cluster
and a Dask scheduler with workers on loopback; exact merges of what merges exactly, per-step quantiles from the
amplitude sketch within its stated error; a shard whose worker died is run again."""

import json
import os
import signal
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from ecology.cli import main
from ecology.interrupts import Interrupted
from ecology.model import EcologyModel
from ecology.numerics import sketch_error, sketch_index, sketch_jit, sketch_quantiles, sketch_size, sketch_values
from ecology.results import (
    SHARD_REPLICATES,
    merge_shards,
    run_model,
    shard_seed,
    shard_sizes,
    simulate,
    simulate_shard,
    summarize,
)
from ecology.scenario import load
from ecology.sweep.executors import Serial, WorkerDied
from ecology.sweep.shards import RETRIES, default_workers, simulate_on

from .conftest import SCENARIOS, free_port

TOY = str(SCENARIOS / "waluigi.toml")
CHAT = str(SCENARIOS / "chat.toml")
LARGE = {"run.replicates": 2 * SHARD_REPLICATES + 1, "run.steps": 30}  # three shards of 6,667


def summary_without_time(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("seconds", "output")}


def test_shards_are_fixed_by_the_replicates_alone():
    assert shard_sizes(1) == [1] and shard_sizes(SHARD_REPLICATES) == [SHARD_REPLICATES]
    assert shard_sizes(SHARD_REPLICATES + 1) == [5001, 5000]
    for R in (SHARD_REPLICATES + 1, 123_457, 10**6):
        sizes = shard_sizes(R)
        assert sum(sizes) == R and max(sizes) <= SHARD_REPLICATES and max(sizes) - min(sizes) <= 1
    assert shard_seed(7, 0) == 7  # a run of one shard draws what it drew before shards existed
    first, second = (np.random.default_rng(shard_seed(7, i)).random(4) for i in (1, 2))
    assert np.array_equal(first, np.random.default_rng(np.random.SeedSequence(7).spawn(3)[1]).random(4))
    assert not np.array_equal(first, second)


def test_a_run_of_one_shard_is_the_model_itself():
    s = load(TOY, {"run.replicates": 300, "run.steps": 40})
    model = EcologyModel(s)
    direct = run_model(model)
    result = simulate(s)
    assert result.shards == 1 and summarize(result)["quantiles"] == {"method": "exact", "shards": 1}
    pd.testing.assert_frame_equal(result.steps, direct.steps)
    assert np.array_equal(result.reached_at["revealed"], direct.reached_at["revealed"])


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200), st.integers(0, 6))
@settings(max_examples=60, deadline=None)
def test_sketch_bins_numpy_and_compiled_agree(values, bits):
    a = np.array(values + [0.0, 0.5, 1.0, 2.0**-70, 1.0 - 2.0**-53, np.nextafter(0.5, 1.0)])
    index = sketch_index(a, bits)
    size = sketch_size(bits)
    assert index.min() >= 0 and index.max() < size
    counts, extremes = np.zeros((1, 1, size), dtype=np.uint16), np.empty((1, 1, 2))
    sketch_jit(0, a[None, :], 0, counts, extremes)
    assert np.array_equal(counts[0, 0], np.bincount(index, minlength=size))
    assert tuple(extremes[0, 0]) == (a.min(), a.max())
    # bins increase with the amplitude, and each value is within the stated factor of its bin's value
    order = np.argsort(a, kind="stable")
    assert np.all(np.diff(index[order]) >= 0)
    x, v = np.minimum(a, 1 - a), sketch_values(bits)[index]
    resolved = x >= 2.0**-64
    assert np.all(np.abs(np.minimum(v, 1 - v)[resolved] / x[resolved] - 1) <= sketch_error(bits) * (1 + 1e-12))
    assert np.all(np.minimum(v, 1 - v)[~resolved] == 0)


@given(st.integers(1, 400), st.integers(0, 2**32 - 1), st.sampled_from([0, 3, 5]))
@settings(max_examples=60, deadline=None)
def test_sketch_quantiles_within_their_stated_error(n, seed, bits):
    rng = np.random.default_rng(seed)
    a = np.concatenate([rng.random(n) ** rng.uniform(1, 40), rng.choice([0.0, 1.0, 0.25], size=rng.integers(0, 5))])
    counts = np.bincount(sketch_index(a, bits), minlength=sketch_size(bits))
    got = sketch_quantiles(counts, (0.1, 0.5, 0.9), bits, np.array(a.min()), np.array(a.max()))
    ordered = np.sort(a)
    for q, value in zip((0.1, 0.5, 0.9), got):
        virtual = (len(a) - 1) * q
        lo, hi = ordered[int(np.floor(virtual))], ordered[min(int(np.floor(virtual)) + 1, len(a) - 1)]
        # the interpolated value lies between the two order statistics, each widened by the stated error
        slack = sketch_error(bits) * 1.000001
        low = min(lo, 1 - (1 - lo) * (1 + slack)) if lo > 0.5 else lo / (1 + slack) - 2.0**-64
        high = max(hi, 1 - (1 - hi) / (1 + slack)) if hi > 0.5 else hi * (1 + slack) + 2.0**-64
        assert low <= value <= high, (q, value, lo, hi)
    same = np.full(50, 0.3)
    exact = sketch_quantiles(np.bincount(sketch_index(same, bits), minlength=sketch_size(bits)), (0.1, 0.9), bits,
                             np.array(0.3), np.array(0.3))
    assert np.all(exact == 0.3)  # equal values come back exactly (the extremes clip the bin's value)


@pytest.mark.parametrize("path", [TOY, CHAT])
def test_engines_record_the_same_sketch(path):
    sketches = []
    for engine in ("numpy", "compiled"):
        model = EcologyModel(path, engine=engine, replicates=200, steps=15, sketch=True)
        model.run_model()
        sketches.append((np.stack(model.sketch), np.stack(model.extremes)))
    assert np.array_equal(sketches[0][0], sketches[1][0])
    np.testing.assert_allclose(sketches[0][1], sketches[1][1], rtol=0, atol=1e-12)
    assert (sketches[0][0].sum(axis=2) == 200).all()


@pytest.fixture(scope="module")
def large():
    """The three shards of a run of 20,001 replicates of the toy, run one by one, and their merge."""
    s = load(TOY, LARGE)
    parts = [simulate_shard(s, i) for i in range(3)]
    return s, parts, merge_shards(s, parts, 1.0)


def test_merge_is_exact_where_the_statistic_allows(large):
    s, parts, merged = large
    R = s.run.replicates
    assert merged.shards == 3 and len(merged.reached_at["revealed"]) == R
    # per-replicate arrays are the shards' own, in shard order (shard i seeded by shard_seed(seed, i))
    again = EcologyModel(s, rng=shard_seed(s.run.seed, 1), replicates=shard_sizes(R)[1])
    again.run_model()
    start = shard_sizes(R)[0]
    assert np.array_equal(merged.reached_at["revealed"][start:start + again.replicates], again.reached_at[0])
    # fractions are exact counts over all replicates; means are the means over all replicates
    last = merged.steps.iloc[-1]
    assert last["reached_revealed"] == np.count_nonzero(merged.reached_at["revealed"] >= 0) / R
    assert last["waluigi_majority"] == np.count_nonzero(merged.final_amplitudes["waluigi"] > 0.5 + 1e-12) / R
    assert last["waluigi_mean"] == pytest.approx(merged.final_amplitudes["waluigi"].mean(), rel=1e-12)
    # Kaplan-Meier from the pooled event times: the summary's curve is the one of all replicates
    summary = summarize(merged)
    curve = np.array(summary["criteria"]["revealed"]["reached_curve"])
    times = merged.reached_at["revealed"]
    assert curve[-1] == pytest.approx(np.count_nonzero(times >= 0) / R, abs=1e-12)  # no censoring before the horizon
    # the per-step quantiles at the last step are within the sketch's error of the final amplitudes' quantiles
    q = summary["quantiles"]
    assert q["method"] == "sketch" and q["shards"] == 3 and q["bins_per_octave"] == 32
    final = merged.final_amplitudes["luigi"]
    for name, prob in (("luigi_q10", 0.1), ("luigi_q50", 0.5), ("luigi_q90", 0.9)):
        exact, got = np.quantile(final, prob), last[name]
        x, y = min(exact, 1 - exact), min(got, 1 - got)
        assert abs(y - x) <= q["relative_error"] * 1.000001 * x + q["below"], (name, got, exact)
    # the merge does not depend on the order the shards came back in
    pd.testing.assert_frame_equal(merge_shards(s, parts[::-1], 1.0).steps, merged.steps)


def test_same_numbers_on_one_worker_two_and_local_dask(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    overrides = ["--replicates", str(LARGE["run.replicates"]), "--steps", str(LARGE["run.steps"])]
    summaries = {}
    for name, extra in [("one", ["--workers", "1"]), ("two", ["--workers", "2"]),
                        ("dask", ["--scheduler", "local", "--workers", "2"])]:
        assert main(["run", TOY, *overrides, *extra, "--out", str(tmp_path / name), "--json"]) == 0
        summaries[name] = summary_without_time(json.loads(capsys.readouterr().out))
    assert summaries["one"] == summaries["two"] == summaries["dask"]
    assert summaries["one"]["shards"] == 3
    steps = [pd.read_csv(tmp_path / name / "steps.csv") for name in summaries]
    pd.testing.assert_frame_equal(steps[0], steps[1])
    pd.testing.assert_frame_equal(steps[0], steps[2])
    replicates = [pd.read_csv(tmp_path / name / "replicates.csv") for name in summaries]
    pd.testing.assert_frame_equal(replicates[0], replicates[2])


def test_sharded_run_on_a_dask_scheduler_with_workers_on_loopback(dask_cluster, large, capsys):
    _, _, merged = large
    overrides = ["--replicates", str(LARGE["run.replicates"]), "--steps", str(LARGE["run.steps"])]
    assert main(["run", TOY, *overrides, "--scheduler", dask_cluster, "--json"]) == 0
    summary = summary_without_time(json.loads(capsys.readouterr().out))
    assert summary == summary_without_time(summarize(merged))


class DyingOnce(Serial):
    """Serial, except that the first ``deaths`` submissions of shard ``victim`` fail as a killed worker would."""

    def __init__(self, victim: int, deaths: int, exitcode: int = -signal.SIGKILL):
        self.victim, self.deaths, self.exitcode, self.calls = victim, deaths, exitcode, []

    def submit(self, fn, /, *args):
        self.calls.append(args[1])
        if args[1] == self.victim and self.deaths:
            self.deaths -= 1
            future = Future()
            future.set_exception(WorkerDied(self.exitcode))
            return future
        return super().submit(fn, *args)


def test_a_shard_whose_worker_died_is_recomputed(large):
    s, _, merged = large
    executor = DyingOnce(victim=1, deaths=RETRIES)
    again = simulate_on(s, executor)
    assert executor.calls.count(1) == RETRIES + 1
    pd.testing.assert_frame_equal(again.steps, merged.steps)
    with pytest.raises(Exception, match="died 3 times"):
        simulate_on(s, DyingOnce(victim=2, deaths=RETRIES + 1))
    with pytest.raises(Interrupted):  # a worker killed by Ctrl-C stops the run as an interrupt of this process
        simulate_on(s, DyingOnce(victim=0, deaths=1, exitcode=-signal.SIGINT))


def test_default_workers_only_for_runs_that_gain():
    assert default_workers(load(TOY, {"run.replicates": 5000, "run.steps": 400})) == 1  # one shard
    assert default_workers(load(TOY, {"run.replicates": 20_000, "run.steps": 10})) == 1  # too small to gain
    assert default_workers(load(TOY, {"run.replicates": 100_000, "run.steps": 400})) >= 1


def test_a_scenario_error_in_a_shard_keeps_its_one_line(tmp_path, capsys):
    """A window of probability zero met in a worker is the same one-line error, naming the file, as in this
    process."""
    from .conftest import misread

    path = tmp_path / "misread.toml"
    path.write_text(tomli_w.dumps(misread()))
    code = main(["run", str(path), "--replicates", str(SHARD_REPLICATES + 1), "--steps", "20", "--workers", "2",
                 "--json"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {path}: ") and "probability 0 under every premise" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_worker_process_loses_nothing(tmp_path):
    """SIGKILL one of the two worker processes of a real run while its shard runs: that shard runs again on a
    fresh worker, and the run's numbers are those of the run in one process."""
    from .test_faults import children_of, start

    args = ["run", TOY, "--replicates", str(2 * SHARD_REPLICATES + 1), "--steps", "600", "--json"]
    proc = start([*args, "--workers", "2"], tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and len(children_of(proc.pid)) < 2:
        time.sleep(0.05)
    time.sleep(0.5)  # the workers have their shards
    os.kill(children_of(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "its worker process died (exit code -9); running it again" in err
    alone = summarize(simulate(load(TOY, {"run.replicates": 2 * SHARD_REPLICATES + 1, "run.steps": 600})))
    assert summary_without_time(json.loads(out)) == summary_without_time(json.loads(json.dumps(alone)))


@pytest.mark.parametrize("path, overrides", [(TOY, {}), (CHAT, {"run.drift": True})])
def test_every_column_has_a_merge_rule(path, overrides):
    """Each column of steps.csv says how it merges over shards (a new observable cannot be merged by accident as
    something it is not), and the quantile rules point at the sketch column of their premise or population."""
    from ecology.kinds import observables

    model = EcologyModel(path, replicates=20, steps=3, **overrides)
    model.run_model()
    rules = observables.merge_rules(model)
    columns = list(model.datacollector.get_model_vars_dataframe().columns)
    assert sorted(rules) == sorted(columns)
    S = len(model.compiled.premises)
    for s, premise in enumerate(model.compiled.premises):
        assert rules[f"premise_{premise.name}_q90"] == (observables.QUANTILE, s, 2)
    for j, label in enumerate(model.mixture.labels):
        assert rules[f"{label}_q10"] == (observables.QUANTILE, S + j, 0)
        assert rules[f"{label}_majority"] == (observables.FRACTION,)


def test_bad_workers_or_scheduler_is_one_line_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "run"
    for extra in (["--scheduler", "nonsense:port"], ["--scheduler", f"tcp://127.0.0.1:{free_port()}"]):
        assert main(["run", TOY, "--replicates", "20001", "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: --scheduler") and not out.exists()
    for extra in ([], ["--workers", "2"]):  # the whole run's budget, not each shard's
        assert main(["run", TOY, "--replicates", str(10**9), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "GiB" in err and "run.replicates" in err and not out.exists()
    assert main(["run", TOY, "--workers", "0"]) == 2
    assert capsys.readouterr().err == "error: ecology run: argument --workers: must be at least 1, got 0\n"
