"""Progress of long jobs (ecology.progress): the library reports through a callback and stays
silent by default; the command line draws one rich bar on stderr, only on a terminal and without
--quiet or --json, and leaves stdout as it is; --json alone writes no directory."""

import ast
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ecology import progress as progress_module
from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.decompose import Request, decompose
from ecology.exact.chain import build_chain
from ecology.exact.report import analyze
from ecology.progress import TerminalProgress, silent, terminal_progress
from ecology.results import simulate
from ecology.scenario import load
from ecology.sweep import execute as sweep_execute

from .conftest import SCENARIOS

TOY = SCENARIOS / "waluigi.toml"
PACKAGE = Path(progress_module.__file__).resolve().parent


class Recorder:
    """A progress callback keeping every report."""

    def __init__(self):
        self.reports = []

    def __call__(self, task, done, total=None, detail=""):
        self.reports.append((task, done, total, detail))

    def tasks(self) -> list[str]:
        return list(dict.fromkeys(task for task, *_ in self.reports))


def test_a_run_reports_its_steps_and_gives_the_same_trajectories_as_a_silent_run():
    s = load(TOY, {"run.replicates": 50, "run.steps": 300})
    recorder = Recorder()
    reported, quiet = simulate(s, recorder), simulate(s)
    assert reported.steps.equals(quiet.steps)
    assert all(np.array_equal(reported.reached_at[k], quiet.reached_at[k]) for k in quiet.reached_at)
    done = [d for _, d, _, _ in recorder.reports]
    assert recorder.tasks() == ["steps"] and done[0] == 0 and done[-1] == 300 and done == sorted(done)
    assert {total for _, _, total, _ in recorder.reports} == {300}
    assert re.fullmatch(r"50 replicates, [0-9.e+]+ replicate-steps/s", recorder.reports[-1][3])


def test_the_chain_reports_page_states_found_then_each_solver_phase_in_order():
    compiled = compile_scenario(load(TOY, {"context.length": 6}))
    recorder = Recorder()
    chain = build_chain(compiled, progress=recorder)
    found = [d for task, d, _, _ in recorder.reports if task == "enumerating page-states"]
    assert found == sorted(found) and found[-1] == chain.chain.n_states
    recorder.reports.clear()
    analyze(compiled, horizon=20, tolerance=1e-3, chain=chain, progress=recorder)
    phases = ["classes", "stationary laws", "passage times", "spectrum", "absorption time", "hitting times", "loops",
              "occupation", "metastable classes", "curves"]
    assert recorder.tasks() == [f"solving: {p}" for p in phases]
    assert [(d, t) for _, d, t, _ in recorder.reports] == [(i, len(phases)) for i in range(len(phases))]


def test_decompose_reports_every_restart_of_every_k_out_of_their_total():
    s = load(SCENARIOS / "alice_coins.toml")
    recorder = Recorder()
    decompose(s, Request(["iid"], [1, 2], restarts=2, seed=3), recorder)
    em = [(d, t, detail) for task, d, t, detail in recorder.reports if task == "EM restarts"]
    assert sorted({d for d, _, _ in em}) == [0, 1, 2, 3] and {t for _, t, _ in em} == {4}
    assert em[-1][2].startswith("K = 2, restart 2 of 2, iteration ")
    assert recorder.tasks() == ["EM restarts", "comparing decompositions"]


def test_training_reports_each_step_with_its_loss():
    pytest.importorskip("autograd")
    from ecology.lm.train import train_transformer
    from ecology.lm.transformer import TransformerConfig

    recorder = Recorder()
    config = TransformerConfig(n_ctx=3, n_layer=1, n_head=2, d_model=8, d_mlp=16)
    _, losses = train_transformer(np.array([int(c) for c in "111101111011110"]), ["0", "1"], config, 5, 6, 1e-2, 0.0, 4,
                                  log=None, progress=recorder)
    assert [(task, d, t) for task, d, t, _ in recorder.reports] == [("training steps", i, 6) for i in range(1, 7)]
    assert recorder.reports[-1][3] == f"loss {losses[-1]:.4f} nats/token"


def test_a_sweep_reports_points_on_disk_out_of_the_plan(tmp_path):
    from ecology import scenario as scn
    from ecology.sweep import directory, grid

    plan = grid.make_plan(scn.read_scenario_table(TOY), dict([grid.parse_grid("context.length=2,3")]),
                          {"run.replicates": 20, "run.steps": 10}, False, 1000)
    target = tmp_path / "sweep"
    recorder = Recorder()
    with directory.start_directory(target, plan):
        outcome = sweep_execute.execute(target, plan, 1, None, recorder)
    assert outcome["done"] == 2 and recorder.tasks() == ["sweep points"]
    assert {t for _, _, t, _ in recorder.reports} == {2} and all(0 <= d <= 2 for _, d, _, _ in recorder.reports)


def bar_output(calls, delay: float = 0.0, thread: bool = False) -> str:
    out = io.StringIO()
    with TerminalProgress(Console(file=out, force_terminal=True, width=120), delay=delay, thread=thread) as bar:
        for call in calls:
            bar(*call)
    return out.getvalue()


def test_the_bar_shows_task_done_of_total_and_detail_on_a_terminal_and_is_erased_at_the_end():
    text = bar_output([("steps", 0, 1000, "starting"), ("steps", 1500, 3000, "2,000 replicates")])
    assert "steps" in text and "0/1,000" in text and "starting" in text
    assert text.endswith("\x1b[2K")  # transient: the last line is erased
    unknown = bar_output([("enumerating page-states", 12345, None, "depth 3")])
    assert "12,345/?" in unknown and "eta" not in unknown
    phase = bar_output([("writing the report and figures", 0, None, "runs/x")])
    assert "writing the report and figures" in phase and "/?" not in phase and "0/" not in phase


def test_a_job_shorter_than_the_start_delay_shows_no_bar():
    assert bar_output([("steps", 1, 10, "")], delay=60.0) == ""
    assert bar_output([("steps", 1, 10, "")], delay=60.0, thread=True) == ""


def test_quiet_or_a_non_terminal_stderr_gives_the_silent_callback(capsys):
    with terminal_progress(quiet=True) as callback:
        assert callback is silent
    with terminal_progress(quiet=False) as callback:  # pytest's captured stderr is not a terminal
        assert callback is silent
    assert capsys.readouterr().err == ""


def test_only_ecology_progress_imports_rich_and_only_inside_functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "rich" or n.startswith("rich.") for n in names):
                assert path.name == "progress.py" and path.parent == PACKAGE, f"{path}:{node.lineno} imports rich"
                assert node.col_offset > 0, f"{path}:{node.lineno}: rich imported at module level"


def on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``ecology ARGS`` with stderr on a pseudo-terminal (stdout a pipe), no start delay and
    every report redrawn."""
    code = ("import sys, ecology.progress as p; p.START_DELAY = p.REDRAW = 0.0; from ecology.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=slave, cwd=cwd,
                               env=env)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end closed: the process ended
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = process.stdout.read().decode()
    process.stdout.close()
    return process.wait(timeout=120), out, err.decode(errors="replace")


def test_on_a_terminal_the_bar_appears_on_stderr_and_stdout_is_what_quiet_prints(tmp_path):
    status, out, err = on_a_terminal(["analyze", str(TOY)], tmp_path)
    quiet_status, quiet_out, quiet_err = on_a_terminal(["analyze", str(TOY), "--quiet"], tmp_path)
    assert status == quiet_status == 0
    assert out == quiet_out and "\x1b" not in out
    assert "solving: classes" in err and "0/8" in err and quiet_err == ""


@pytest.fixture
def fake_terminal(monkeypatch):
    """Every command's bar drawn into a buffer as on a terminal (no start delay, every report
    redrawn); quiet stays quiet."""
    screen = io.StringIO()
    monkeypatch.setattr(progress_module, "REDRAW", 0.0)

    def fake(quiet: bool, thread: bool = True):
        if quiet:
            return terminal_progress(True)
        return TerminalProgress(Console(file=screen, force_terminal=True, width=120), delay=0.0, thread=thread)

    monkeypatch.setattr(progress_module, "terminal_progress", fake)
    return screen


@pytest.mark.parametrize("quiet", [[], ["--quiet"], ["--json"]])
def test_run_and_sweep_draw_their_bar_unless_quiet_or_json(tmp_path, fake_terminal, capsys, quiet):
    small = ["--replicates", "20", "--steps", "30"]
    assert main(["run", str(TOY), *small, "--out", str(tmp_path / "r"), *quiet]) == 0
    assert main(["sweep", str(TOY), "--grid", "context.length=2,3", *small, "--workers", "1", "--out",
                 str(tmp_path / "s"), *quiet]) == 0
    drawn = fake_terminal.getvalue()
    if quiet:
        assert drawn == ""
    else:
        assert "steps" in drawn and "/30" in drawn and "replicate-steps/s" in drawn
        assert "sweep points" in drawn and "/2" in drawn and "points/min" in drawn
    assert "\x1b" not in capsys.readouterr().out


def test_run_json_without_out_writes_no_directory_and_with_out_writes_both(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(TOY), "--replicates", "20", "--steps", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] is None and list(tmp_path.iterdir()) == []
    assert main(["run", str(TOY), "--replicates", "20", "--steps", "10", "--json", "--out", "r"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "r" and (tmp_path / "r" / "summary.json").is_file()


def test_decompose_json_without_out_writes_no_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["decompose", str(SCENARIOS / "alice_coins.toml"), "--family", "iid", "--components", "1",
                 "--restarts", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] is None and report["fits"]["1"]["converged"] and list(tmp_path.iterdir()) == []


def test_run_json_into_a_closed_pipe_exits_quietly_with_sigpipes_status(tmp_path):
    reader = subprocess.Popen([sys.executable, "-m", "ecology", "run", str(TOY), "--replicates", "20", "--steps", "10",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    reader.stdout.close()
    err = reader.stderr.read()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 128 + 13 and err == b"" and list(tmp_path.iterdir()) == []


def test_the_time_left_is_the_average_rate_since_the_first_report_extrapolated():
    assert progress_module.remaining_seconds(2, 8.0, 2) == 8.0  # 2 points in 8 s, 2 left: 8 s, however bunched
    assert progress_module.remaining_seconds(0, 8.0, 2) is None and progress_module.remaining_seconds(3, 0.0, 2) is None
    assert [progress_module.clock(x) for x in (0.4, 59.5, 3600 + 61)] == ["0:00:01", "0:01:00", "1:01:01"]
