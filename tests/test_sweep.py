"""Sweeps: grid syntax, reproducibility across executors, failures, kill and resume, plots."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import tomli_w

from ecology.cli import main
from ecology.errors import UserError
from ecology.sweep.grid import parse_values, point_seed

from .conftest import SCENARIOS, misread

TOY = str(SCENARIOS / "waluigi.toml")
SMALL = ["--replicates", "200", "--steps", "40"]


def rows(directory):
    return pd.read_csv(directory / "results.csv").sort_values("point").reset_index(drop=True)


def test_grid_syntax():
    assert parse_values("2:64:*2") == [2, 4, 8, 16, 32, 64]
    assert parse_values("0.1:0.5:0.2") == [0.1, 0.3, 0.5]
    assert parse_values("1:10:3") == [1, 4, 7, 10]
    assert parse_values("4,8,16") == [4, 8, 16]
    assert parse_values("fifo,none") == ["fifo", "none"]
    assert parse_values("0.5, 0.9") == [0.5, 0.9]
    for bad in ("1:10:0", "10:1:1", "0:8:*2", "a:b:c", "1,,2"):
        with pytest.raises(UserError):
            parse_values(bad)


def test_seed_depends_on_parameters_not_order():
    a = point_seed(7, {"context.length": 4, "premises.luigi.prior": 0.5})
    b = point_seed(7, {"premises.luigi.prior": 0.5, "context.length": 4})
    assert a == b and a != point_seed(8, {"context.length": 4, "premises.luigi.prior": 0.5})
    assert a != point_seed(7, {"context.length": 8, "premises.luigi.prior": 0.5})


def test_identical_rows_with_one_worker_two_workers_and_dask(tmp_path, dask_cluster, capsys):
    grid = ["--grid", "context.length=2:8:*2", "--grid", "premises.luigi.prior=0.5,0.9"]
    outs = {}
    for name, extra in [("one", ["--workers", "1"]), ("two", ["--workers", "2"]),
                        ("dask", ["--scheduler", dask_cluster])]:
        outs[name] = tmp_path / name
        assert main(["sweep", TOY, *grid, *SMALL, *extra, "--out", str(outs[name]), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["done"] == 6 and summary["failed"] == []
    one = rows(outs["one"])
    assert len(one) == 6 and sorted(one["context.length"].unique()) == [2, 4, 8]
    assert (one["engine"] == "compiled").all()  # each row says which engine ran it
    pd.testing.assert_frame_equal(one, rows(outs["two"]))
    pd.testing.assert_frame_equal(one, rows(outs["dask"]))
    assert (outs["one"] / "heatmap_revealed_reached.png").is_file()
    # a point's row equals a plain run of that point with its derived seed
    seed, length, prior = (one.loc[0, c] for c in ("seed", "context.length", "premises.luigi.prior"))
    run_dir = tmp_path / "single"
    assert main(["run", TOY, *SMALL, "--seed", str(seed), "--set", f"context.length={length}",
                 "--set", f"premises.luigi.prior={prior}", "--out", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["criteria"]["revealed"]["reached"] == one.loc[0, "revealed_reached"]


def test_local_dask_cluster_gives_the_same_rows(tmp_path, capsys):
    pytest.importorskip("distributed")
    grid = ["--grid", "context.length=2,4", *SMALL]
    for name, extra in [("local", ["--scheduler", "local", "--workers", "2"]), ("plain", ["--workers", "1"])]:
        assert main(["sweep", TOY, *grid, *extra, "--out", str(tmp_path / name), "--json"]) == 0
        err = capsys.readouterr().err
        assert ("Dask dashboard: http" in err) == (name == "local")
    pd.testing.assert_frame_equal(rows(tmp_path / "local"), rows(tmp_path / "plain"))


def misread_scenario(tmp_path):
    data = {**misread(), "sweep": {"grid": {"run.steps": [2, 10]}}}
    path = tmp_path / "misread.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_failing_point_is_reported_and_resume_runs_only_missing(tmp_path, capsys):
    path = misread_scenario(tmp_path)  # the [sweep] table declares the grid
    out = tmp_path / "sweep"
    assert main(["sweep", str(path), "--workers", "1", "--out", str(out), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 1 and len(summary["failed"]) == 1
    failed = summary["failed"][0]
    assert failed["params"] == {"run.steps": 10} and "step 4, replicate 0" in failed["error"]
    assert main(["sweep", "--resume", str(out), "--json"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["ran"] == 0 and again["done"] == 1 and len(again["failed"]) == 1


def test_killed_sweep_keeps_finished_points_and_resumes(tmp_path, capsys):
    grid = ["--grid", "context.length=2,3,4,5,6,7", "--replicates", "3000", "--steps", "300"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ecology", "sweep", TOY, *grid, "--workers", "1", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, points = time.time() + 120, out / "points"
    while time.time() < deadline and proc.poll() is None:
        if points.exists() and len(list(points.glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = sorted(p.name for p in (out / "points").glob("*.json"))
    assert 2 <= len(kept) < 6
    for p in (out / "points").glob("*.json"):
        json.loads(p.read_text())  # every file on disk is whole
    assert main(["sweep", "--resume", str(out), "--workers", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ran"] == 6 - len(kept) and summary["done"] == 6
    reference = tmp_path / "reference"
    assert main(["sweep", TOY, *grid, "--workers", "2", "--out", str(reference), "--json"]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(rows(out), rows(reference))


def test_sweep_over_deletion_policies(tmp_path, capsys):
    out = tmp_path / "policies"
    assert main(["sweep", str(SCENARIOS / "chat.toml"), "--grid", "context.deletion=fifo,message,block",
                 "--set", "context.delimiter=/", "--set", "context.block=3", "--set", "context.length=6",
                 *SMALL, "--workers", "1", "--exact", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    table_ = rows(out)
    assert list(table_["context.deletion"]) == ["fifo", "message", "block"]
    assert table_["exact_n_states"].nunique() == 3  # each rule has its own page-state chain


def test_plot_shapes_and_redraw(tmp_path, capsys):
    one = tmp_path / "one"
    assert main(["sweep", TOY, "--grid", "context.length=2,4", *SMALL, "--workers", "1", "--out", str(one), "--json"]) == 0
    assert (one / "sweep.png").is_file()
    three = tmp_path / "three"
    assert main(["sweep", TOY, "--grid", "context.length=2,4", "--grid", "premises.luigi.prior=0.5,0.9",
                 "--grid", "sampling.temperature=0.5,1.0", *SMALL, "--workers", "1", "--out", str(three), "--json"]) == 0
    assert (three / "facets_revealed_reached.png").is_file()
    (one / "sweep.png").unlink()
    assert main(["plot", str(one)]) == 0
    assert (one / "sweep.png").is_file()
    run = tmp_path / "run"
    assert main(["run", TOY, *SMALL, "--out", str(run), "--json"]) == 0
    (run / "raster.png").unlink()
    assert main(["plot", str(run)]) == 0
    assert (run / "raster.png").is_file()
    assert main(["plot", str(tmp_path)]) == 2
    capsys.readouterr()


def test_sweep_exact_columns_and_bad_grid(tmp_path, capsys):
    out = tmp_path / "exact"
    assert main(["sweep", TOY, "--grid", "context.length=2,3", *SMALL, "--workers", "1", "--exact",
                 "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    table_ = rows(out)
    assert list(table_["exact_n_states"]) == [6, 10]
    assert (table_["exact_class0_probability"] > 0.999).all()
    assert main(["sweep", TOY, "--grid", "context.length=0,2", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context.length" in err and "grid point" in err
    assert not (tmp_path / "bad").exists()
    assert main(["sweep", TOY, "--grid", "nonsense", "--out", str(tmp_path / "bad")]) == 2
    assert "expected dotted.path=values" in capsys.readouterr().err
