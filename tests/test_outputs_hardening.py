"""Where things are written and served (issue 22): the app's host and port checked before
"serving", the budget of ``decompose``, the output locations of ``decompose`` and ``analyze
--export`` checked and claimed before anything is computed, and a full disk (or a read-only file
system, or a quota) on every writer: one line naming the file, nothing half-written, what was
computed kept where the docs promise it."""

import errno
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

import ecology.decompose
from ecology import plots
from ecology.cli import check_listen_address, main
from ecology.decompose import budget as decompose_budget
from ecology.decompose import data as decompose_data
from ecology.errors import UsageError
from ecology.exact import chain as exact_chain
from ecology.exact import prism
from ecology.io import safe

from .conftest import SCENARIOS

TOY = str(SCENARIOS / "waluigi.toml")
ALICE = str(SCENARIOS / "alice_coins.toml")
SMALL = ["--replicates", "50", "--steps", "20"]
DECOMPOSE = ["decompose", ALICE, "--family", "iid", "--components", "1", "--restarts", "1"]
ANALYZE = ["analyze", TOY, "--set", "context.length=3"]
FULL = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system",
        errno.EDQUOT: "Disk quota exceeded"}


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if safe.PARTIAL.match(p.name) or safe.TEMPORARY.match(p.name)
            or safe.LOCK.match(p.name)]


def full(code: int, filename: str | None = None) -> OSError:
    """The error a write on a full disk (read-only file system, exhausted quota) raises: ``write``
    and ``fsync`` name no file."""
    return OSError(code, os.strerror(code), filename)


# ---------------------------------------------------------------------------------------------
# The app: host and port checked before "serving"


@pytest.fixture
def never_serves(monkeypatch):
    """Fail the test if the server would be started."""
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("started the server"))


@pytest.fixture
def listening():
    """A port another process listens on (this test's socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("port", ["70000", "0", "-1", "http"])
def test_a_port_outside_1_to_65535_is_refused_by_the_parser(port, never_serves, capsys):
    pytest.importorskip("solara")
    assert main(["app", TOY, "--port", port]) == 2
    err = one_line(capsys.readouterr().err)
    assert "--port" in err and "serving" not in err


def test_a_port_in_use_is_refused_before_serving(listening, never_serves, capsys):
    pytest.importorskip("solara")
    for host in ("127.0.0.1", "0.0.0.0"):
        assert main(["app", TOY, "--host", host, "--port", str(listening)]) == 2
        err = one_line(capsys.readouterr().err)
        assert f"error: --port {listening}: address already in use" in err and "choose another --port" in err


def test_an_unresolvable_host_is_refused_before_serving(monkeypatch, never_serves, capsys):
    pytest.importorskip("solara")

    def unresolvable(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    assert main(["app", TOY, "--host", "nowhere.invalid"]) == 2
    assert "error: --host nowhere.invalid: cannot be resolved (Name or service not known)" \
        in one_line(capsys.readouterr().err)


def test_an_address_of_another_machine_is_refused_before_serving(never_serves, capsys):
    pytest.importorskip("solara")
    assert main(["app", TOY, "--host", "192.0.2.1"]) == 2  # TEST-NET-1: never an address of this machine
    assert "--host 192.0.2.1: 192.0.2.1 is not an address of this machine" in one_line(capsys.readouterr().err)


def test_a_free_address_passes_and_is_released():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check_listen_address("127.0.0.1", port)
    check_listen_address("localhost", port)
    with socket.socket() as again:  # the check holds nothing: the server can bind it
        again.bind(("127.0.0.1", port))
    with pytest.raises(UsageError, match="address already in use"), socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        check_listen_address("127.0.0.1", port)


# ---------------------------------------------------------------------------------------------
# decompose: the budget, refused before any storyline is drawn


@pytest.fixture
def nothing_computed(monkeypatch):
    """Fail the test if a decomposition's data, or an exact chain, would be computed."""
    def never(*args, **kwargs):
        raise AssertionError("computed before the check")

    for name in ("exact_storylines", "sample_storylines", "storyline_windows"):
        monkeypatch.setattr(decompose_data, name, never)
        monkeypatch.setattr(ecology.decompose.compare, name, never)
    monkeypatch.setattr(exact_chain, "build_chain", never)


@pytest.mark.parametrize("flags, expected", [
    (["--components", "1:1000000000000"], "GiB (mostly the largest decomposition's premises"),
    (["--components", "2", "--restarts", "1000000000"], "operations (mostly --components x --restarts (EM))"),
    (["--components", "2", "--length", "1000000000"], "or the input's) x --length windows read), more than"),
    (["--components", "2", "--data", "samples", "--storylines", "100000000"],
     "GiB (mostly the storylines and their emission counts)"),
    (["--components", "1", "--restarts", "1", "--max-work", "1000"], "over the work budget of 1e+03"),
    (["--components", "1", "--restarts", "1", "--length", "2000", "--max-memory", "0.01"],
     "more than the memory budget of 0.01 GiB"),
])
def test_decompose_requests_over_budget_are_refused_up_front(flags, expected, nothing_computed, tmp_path, capsys):
    out = tmp_path / "parent" / "dec"
    assert main(["decompose", ALICE, "--family", "iid", *flags, "--out", str(out)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: decompose: this request") and expected in err, err
    assert "--max-work" in err or "--max-memory" in err
    assert list(tmp_path.iterdir()) == []  # refused before the output's parent was made


def test_the_decompose_budget_grows_with_each_factor():
    """The work is linear in the restarts and in sum K; the memory of the reads in --length."""
    from ecology.scenario import load

    s = load(ALICE)

    def cost(components=range(1, 3), restarts=5, length=24):
        return decompose_budget.cost(s, ["iid"], components, restarts, 2000, length, True, True, 50_000, [])

    base = cost()
    assert cost(restarts=10).work > 1.9 * base.work
    assert cost(components=range(1, 5)).work > 3 * base.work  # sum K: 10 against 3
    assert cost(length=24_000).memory > 100 * base.memory
    assert cost(components=[1, 2]).work == base.work  # a list or a range: the same sum


# ---------------------------------------------------------------------------------------------
# Output locations of decompose and analyze --export, checked before anything is computed


def bad_locations(tmp_path: Path) -> dict:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    return {
        tmp_path / "link": "already exists",
        tmp_path / "dangling": "dangling symlink",
        tmp_path / "file" / "out": "is not a directory",
        tmp_path / "file": "already exists",
        locked / "out": "cannot be created in",
    }


@pytest.mark.parametrize("command, flag", [(DECOMPOSE, "--out"), (ANALYZE, "--export")], ids=["decompose", "export"])
def test_unusable_output_locations_are_refused_before_computing(command, flag, nothing_computed, tmp_path,
                                                               monkeypatch, capsys):
    cases = bad_locations(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == tmp_path / "locked"
                        else real_access(path, mode, **kw))
    for out, message in cases.items():
        assert main([*command, flag, str(out)]) == 2
        assert message in one_line(capsys.readouterr().err), out
    assert list((tmp_path / "victim").iterdir()) == [] and not (tmp_path / "nowhere").exists()
    assert (tmp_path / "file").read_text() == "x" and leftovers(tmp_path) == []


def test_analyze_refuses_one_directory_for_out_and_export(nothing_computed, tmp_path, capsys):
    out = tmp_path / "same"
    assert main([*ANALYZE, "--out", str(out), "--export", str(tmp_path / "." / "same")]) == 2
    assert "--out and --export both name" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_missing_parent_is_created_and_the_export_written(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "export"
    assert main([*ANALYZE, "--export", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["export"] == str(out)
    assert {p.name for p in out.iterdir()} >= {"transition.npz", "states.txt", "chain.tra", "chain.lab", "chain.sta"}
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# A full disk, a read-only file system, an exhausted quota on every writer


@pytest.mark.parametrize("code", list(FULL), ids=["ENOSPC", "EROFS", "EDQUOT"])
def test_full_disk_while_writing_a_decomposition_leaves_nothing(code, tmp_path, monkeypatch, capsys):
    def fills_up(stories, title, path):  # as plots._save reports it (test_plots_name_the_file_they_could_not_write)
        path.write_bytes(b"half")
        raise full(code, str(path))

    monkeypatch.setattr(plots, "amplitude_stories", fills_up)
    out = tmp_path / "dec"
    assert main([*DECOMPOSE, "--out", str(out)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"writing {out} failed, nothing was written: {out / 'stories.png'}: {FULL[code]}" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", ["export", "out"])
def test_full_disk_while_writing_an_analysis_names_the_file_and_leaves_nothing(writer, tmp_path, monkeypatch, capsys):
    from ecology.io import artefacts

    if writer == "export":
        def fills_up(prefix, chain, labels):
            Path(f"{prefix}.tra").write_text("half")
            raise full(errno.ENOSPC)

        monkeypatch.setattr(prism, "write_prism", fills_up)
        name = "chain.tra"
    else:
        def fills_up(directory, report, network):
            (directory / "reaching.png").write_bytes(b"half")
            raise full(errno.ENOSPC, str(directory / "reaching.png"))

        monkeypatch.setattr(artefacts, "draw_analysis", fills_up)
        name = "reaching.png"
    out = tmp_path / writer
    assert main([*ANALYZE, f"--{writer}", str(out)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"writing {out} failed, nothing was written: {out / name}" in err and "No space left on device" in err
    assert ".partial-" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_analysis_that_cannot_be_written_says_its_export_was(tmp_path, monkeypatch, capsys):
    from ecology.io import artefacts

    def fills_up(directory, report, network):
        raise full(errno.ENOSPC, str(directory / "eigenvalues.png"))

    monkeypatch.setattr(artefacts, "draw_analysis", fills_up)
    out, export = tmp_path / "out", tmp_path / "export"
    assert main([*ANALYZE, "--out", str(out), "--export", str(export)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{out / 'eigenvalues.png'}: No space left on device; the export {export} was written" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"] and (export / "chain.tra").is_file()


def filling_savefig(monkeypatch, when: int) -> list:
    """Figure.savefig writes half a file and fills the disk at its ``when``-th call; returns the
    paths it was called with."""
    real, calls = plots.plt.Figure.savefig, []

    def savefig(fig, path, *args, **kwargs):
        calls.append(Path(path))
        if len(calls) == when:
            Path(path).write_bytes(b"half")
            raise full(errno.ENOSPC)
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots.plt.Figure, "savefig", savefig)
    return calls


def test_plots_name_the_file_they_could_not_write_and_close_their_figure(tmp_path, monkeypatch):
    filling_savefig(monkeypatch, 1)
    fig = plots.plt.figure()
    with pytest.raises(OSError) as caught:
        plots._save(fig, tmp_path / "x.png")
    assert caught.value.filename == str(tmp_path / "x.png") and caught.value.errno == errno.ENOSPC
    assert not plots.plt.fignum_exists(fig.number)


def test_a_sweep_whose_plots_fill_the_disk_exits_1_naming_the_file_and_keeps_its_points(tmp_path, monkeypatch,
                                                                                        capsys):
    out = tmp_path / "sweep"
    calls = filling_savefig(monkeypatch, 1)
    assert main(["sweep", TOY, "--grid", "context.length=2,3", *SMALL, "--workers", "1", "--out", str(out)]) == 1
    monkeypatch.undo()
    err = one_line(capsys.readouterr().err)
    assert f"error: cannot write the plots: {out / calls[0].name}: No space left on device" in err, err
    assert f"2/2 points kept; resume with: ecology sweep --resume {out}" in err
    assert sorted(p.name for p in (out / "points").iterdir()) == ["0.json", "1.json"]
    assert not list(out.glob("*.png")) and leftovers(out) == []
    assert main(["sweep", "--resume", str(out), "--json"]) == 0  # draws the plots, runs nothing
    assert json.loads(capsys.readouterr().out)["ran"] == 0 and (out / calls[0].name).is_file()


def test_a_point_that_cannot_be_written_is_named_by_its_file(tmp_path, monkeypatch, capsys):
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # sweep.json, scenario.toml, point 0; then full
        calls.append(fd)
        if len(calls) >= 4:
            raise full(errno.ENOSPC)
        real_fsync(fd)

    out = tmp_path / "sweep"
    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["sweep", TOY, "--grid", "context.length=2,3", *SMALL, "--workers", "1", "--out", str(out)]) == 1
    monkeypatch.setattr(os, "fsync", real_fsync)
    err = one_line(capsys.readouterr().err)
    assert f"cannot write point 1: {out / 'points' / '1.json'}: No space left on device" in err, err
    assert ".tmp-" not in err and f"1/2 points kept; resume with: ecology sweep --resume {out}" in err


def test_a_sweep_directory_that_cannot_be_created_names_the_final_path(tmp_path, monkeypatch, capsys):
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(full(errno.ENOSPC)))
    out = tmp_path / "sweep"
    assert main(["sweep", TOY, "--grid", "context.length=2,3", *SMALL, "--out", str(out)]) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    err = one_line(capsys.readouterr().err)
    assert f"cannot create the sweep directory {out}, nothing was written: {out / 'sweep.json'}" in err, err
    assert ".partial-" not in err and list(tmp_path.iterdir()) == []


def test_redrawing_on_a_full_disk_keeps_the_old_plots(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["run", TOY, *SMALL, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.glob("*.png")}
    calls = filling_savefig(monkeypatch, 2)  # the second plot fills the disk
    assert main(["plot", str(run)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{run / calls[1].name}: No space left on device" in err and ".partial-" not in err, err
    assert {p.name: p.read_bytes() for p in run.glob("*.png")} == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("code", list(FULL), ids=["ENOSPC", "EROFS", "EDQUOT"])
def test_atomic_files_name_their_path_never_the_temporary_one(code, tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(full(code)))
    with pytest.raises(OSError) as caught:
        safe.write_file_atomically(target, "a,b\n")
    assert caught.value.errno == code and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_an_error_that_names_no_file_is_given_the_file_being_written(tmp_path, monkeypatch, capsys):
    """``write`` on a full disk names no file: the one being written is the newest in the
    temporary directory, reported under its final name."""
    def fills_up(directory, *args, **kwargs):
        time.sleep(0.05)  # a clock tick after the CSV files: strictly the newest file
        (directory / "raster.png").write_bytes(b"half")
        raise full(errno.ENOSPC)

    monkeypatch.setattr(plots, "run_plots", fills_up)
    out = tmp_path / "run"
    assert main(["run", TOY, *SMALL, "--out", str(out)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"writing {out} failed, nothing was written: {out / 'raster.png'}: No space left on device" in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_new_sweep_refused_before_any_point_ran_leaves_nothing(tmp_path, monkeypatch, capsys):
    """No Dask, or a scheduler address where no Dask scheduler answers: one line, and the new
    directory (holding only its plan, points/ and failed/) is removed."""
    from ecology.errors import UserError
    from ecology.sweep import execute as sweep_execute

    def refused(*args, **kwargs):
        raise UserError("--scheduler tcp://127.0.0.1:1: cannot connect (not a Dask scheduler)")

    monkeypatch.setattr(sweep_execute, "make_executor", refused)
    out = tmp_path / "o"
    assert main(["sweep", TOY, "--grid", "context.length=2,3", *SMALL, "--out", str(out)]) == 2
    assert "cannot connect" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_stopping_the_app_is_a_plain_message_not_an_error(monkeypatch, capsys):
    pytest.importorskip("solara")

    def interrupted(*args, **kwargs):  # the user presses Ctrl-C while the server runs
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "run", interrupted)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["app", TOY, "--port", str(port)]) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"stopped serving {TOY} (SIGINT)" and not any(line.startswith("error") for line in err)
