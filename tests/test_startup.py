"""Start-up: a command imports only what it uses (docs/engine.md, "Start-up"). Each check runs in
a fresh interpreter, since this test process has imported everything already; none is timed
(the times are in benchmarks/bench_startup.py)."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOY = str(ROOT / "scenarios" / "waluigi.toml")


def fresh(code: str) -> dict:
    """What ``code`` (which sets ``out``) leaves in ``out``, run by a new interpreter in the repository."""
    program = f"import json, sys\n{code}\nprint('RESULT ' + json.dumps(out))"
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.rpartition("RESULT ")[2])


def test_the_model_loads_mesa_core_without_the_rest_of_mesa():
    out = fresh("import ecology.model\n"
                "out = sorted(m for m in ('networkx', 'scipy.spatial', 'mesa.discrete_space', 'mesa.batchrunner',\n"
                "                          'mesa.space', 'mesa.experimental.continuous_space') if m in sys.modules)")
    assert out == []


def test_the_rest_of_mesa_is_there_when_asked_for():
    out = fresh("import ecology.model as model\n"
                "import mesa\n"
                "from mesa import batch_run\n"
                "from mesa.experimental import continuous_space\n"
                "import mesa.agent, mesa.model, mesa.datacollection\n"
                "out = [mesa.__version__, batch_run is mesa.batchrunner.batch_run, 'networkx' in sys.modules,\n"
                "       mesa.Agent is mesa.agent.Agent, mesa.Model is mesa.model.Model,\n"
                "       mesa.DataCollector is mesa.datacollection.DataCollector,\n"
                "       issubclass(model.EcologyModel, mesa.model.Model), issubclass(model.Premise, mesa.agent.Agent),\n"
                "       continuous_space.__name__]")
    assert out[0].count(".") >= 1 and out[1:] == [True, True, True, True, True, True, True,
                                                    "mesa.experimental.continuous_space"]


def test_mesa_names_its_loggers_as_without_plain_frames():
    out = fresh("import inspect\n"
                "stack, outer, getmodule = inspect.stack, inspect.getouterframes, inspect.getmodule\n"
                "import ecology.model\n"
                "import mesa.mesa_logging as logging_\n"
                "out = [sorted(logging_._module_loggers), logging_._module_loggers['mesa.model'].name,\n"
                "       (inspect.stack, inspect.getouterframes, inspect.getmodule) == (stack, outer, getmodule),\n"
                "       ecology.model.mesa.Model.__init__.__wrapped__.__qualname__]")
    assert out == [["mesa.mesa_logging", "mesa.model"], "MESA.mesa.model", True, "Model.__init__"]


def test_plain_frames_are_the_frames_inspect_gives():
    from ecology.mesa_core import plain_frames

    def named():
        return inspect.getouterframes(inspect.currentframe())[1][3], inspect.getmodule(inspect.stack()[0][0])

    full, full_named = inspect.stack(), named()
    with plain_frames():
        plain, plain_named = inspect.stack(), named()
    assert [(f.filename, f.function) for f in plain] == [(f.filename, f.function) for f in full]
    assert all(a.frame is b.frame and a.lineno == b.lineno for a, b in zip(plain[1:], full[1:]))
    assert {f.code_context for f in plain} == {None} and full[0].code_context is not None
    assert plain_named == full_named == ("test_plain_frames_are_the_frames_inspect_gives", sys.modules[__name__])
    assert inspect.stack()[0].code_context is not None  # restored


def test_mesa_imported_first_is_used_as_it_is():
    out = fresh("import mesa\nimport ecology.mesa_core as core\nout = [core.mesa is mesa, 'networkx' in sys.modules]")
    assert out == [True, True]


def test_run_json_loads_neither_plots_nor_the_exact_chain():
    out = fresh("import contextlib, io\n"
                "from ecology.cli import main\n"
                "with contextlib.redirect_stdout(io.StringIO()) as text:\n"
                f"    status = main(['run', {TOY!r}, '--steps', '2', '--replicates', '10', '--json'])\n"
                "out = [status, json.loads(text.getvalue())['steps'],\n"
                "       sorted(m for m in ('matplotlib', 'scipy.sparse', 'ecology.exact', 'ecology.plots', 'networkx',\n"
                "                          'rich') if m in sys.modules)]")
    assert out == [0, 2, []]


def test_the_command_line_exits_with_its_status_and_its_output_whole():
    done = subprocess.run([sys.executable, "-m", "ecology", "run", TOY, "--steps", "3", "--replicates", "20", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] == 3
    bad = subprocess.run([sys.executable, "-m", "ecology", "run", TOY, "--set", "run.steps=-1", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
