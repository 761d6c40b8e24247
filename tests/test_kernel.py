"""The compiled engine (ecology.engine.compiled) against the numpy engine, the reference.

What is guaranteed and checked here, for the same scenario and seed:

- tokens, rasters, speakers, first hitting times and criteria held: identical (``==``);
- every column of ``steps.csv``, amplitude trajectories and final amplitudes: equal to 1e-12
  (relative and absolute). The likelihood sums are the same additions in the same order; ``exp``
  and ``log`` are numba's where numpy may use its own vectorised ones, so the last bit may differ
  (in practice most runs below are bit for bit equal).

Cold cost: the first run of this file on a machine compiles the kernel and caches it on disk
(measured: 18 s for this file cold, 12 s with the cache, at load average 2 on 2 cores; the
compilation alone takes 6-28 s depending on the load, see ``benchmarks/bench_run.py``).
"""

import copy
import json

import numpy as np
import pytest

from ecology import numerics
from ecology.cli import build_parser, main, run_overrides
from ecology.core.compile import compile_scenario
from ecology.engine import choose_engine
from ecology.engine import compiled as kernel
from ecology.engine.compiled import CompiledEngine
from ecology.engine.reference import ReferenceEngine
from ecology.model import EcologyModel, warm_up
from ecology.scenario import ENGINES, validate

from .conftest import SCENARIOS, table
from .engines import assert_same, random_chat_scenario, simulate


def assert_same_run(data: dict) -> EcologyModel:
    """Run ``data`` under both engines and compare everything the model records (numpy against
    the compiled engine in blocks, as ``ecology run`` runs it, to 1e-12); the compiled engine in
    blocks (``run_model``) and step by step agree bit for bit."""
    reference, compiled = simulate(data, "numpy"), simulate(data, "compiled", "blocks")
    assert_same(simulate(data, "compiled"), compiled, tolerance=0)
    assert_same(reference, compiled)
    return compiled


def short(data: dict, steps: int = 60, replicates: int = 64) -> dict:
    data = copy.deepcopy(data)
    data.setdefault("run", {}).update(steps=steps, replicates=replicates)
    return data


def has_model_premise(name: str) -> bool:
    return any("model" in premise for premise in table(name)["premises"].values())


SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("name", [n for n in SHIPPED if not has_model_premise(n)])
def test_shipped_scenarios_same_under_both_engines(name):
    assert_same_run(short(table(name)))


@pytest.mark.parametrize("name", [n for n in SHIPPED if has_model_premise(n)])
def test_shipped_model_scenarios_run_on_numpy_and_say_why(name):
    """Scenarios with a trained model's premise run on the numpy engine when the compiled one is
    asked for, with the reason."""
    model = EcologyModel(SCENARIOS / f"{name}.toml", steps=3, replicates=4, **{"run.engine": "compiled"})
    assert model.engine.name == "numpy" and "is a trained model" in model.engine_note


RULES = {
    "fifo": {},
    "none": {"deletion": "none"},
    "block": {"deletion": "block", "block": 4},
    "message": {"deletion": "message", "delimiter": "/"},
    "pinned": {"deletion": "fifo", "pinned": 2},
    "reset": {"deletion": "fifo", "reset": "/"},
    "pinned message": {"deletion": "message", "delimiter": "/", "pinned": 2},
    "block reset": {"deletion": "block", "block": 3, "reset": "/"},
}


@pytest.mark.parametrize("rule", RULES)
def test_every_deletion_rule_same_under_both_engines(rule):
    data = short(table("chat"), steps=80)
    data["context"].update(RULES[rule])
    data["absorption"] = {"periodic": {"periodic": 3}, **data.get("absorption", {})}
    data["run"]["drift"] = True
    assert_same_run(data)


@pytest.mark.parametrize("temperature", [0.0, 1e-300, 0.5, 2.0])
def test_temperatures_same_under_both_engines(temperature):
    data = short(table("waluigi_soft"))
    data.setdefault("sampling", {})["temperature"] = temperature
    assert_same_run(data)


@pytest.mark.parametrize("length", [1, 2, 300])
def test_window_lengths_same_under_both_engines(length):
    data = short(table("waluigi_soft"), steps=2 * length + 20 if length < 300 else 700, replicates=16)
    data["context"]["length"] = length
    assert_same_run(data)


def test_unbounded_window_long_run_same_under_both_engines():
    data = short(table("chat"), steps=300, replicates=16)
    data["context"]["deletion"] = "none"
    assert_same_run(data)


def test_drift_same_under_both_engines():
    data = short(table("waluigi"), steps=30, replicates=32)
    data["run"]["drift"] = True
    assert_same_run(data)


@pytest.mark.parametrize("seed", range(4))
def test_random_scenarios_same_under_both_engines(seed):
    """Random multi-state premises with turns, under a random deletion rule and temperature."""
    rng = np.random.default_rng(100 + seed)
    data = copy.deepcopy(random_chat_scenario(rng).scenario.model_dump(exclude_none=True, by_alias=True))
    data["context"].update([{}, {"deletion": "none"}, {"deletion": "block", "block": 2},
                            {"deletion": "message", "delimiter": "c"}][seed])
    data.setdefault("sampling", {})["temperature"] = [1.0, 0.7, 0.0, 1.5][seed]
    data["absorption"] = {"only_a": {"window_only": ["a"]}, "duet_wins": {"population": "duet", "above": 0.9}}
    assert_same_run(short(data, steps=100, replicates=48))


def test_impossible_window_raises_under_both_engines():
    from ecology.errors import ImpossibleWindow

    from .conftest import misread

    for engine in ENGINES:
        for blocks in (False, True):
            with pytest.raises(ImpossibleWindow, match="step 4, replicate 0: the window 'b a b'"):
                simulate(misread(), engine, "blocks" if blocks else None)


@pytest.mark.parametrize("values", [
    [0.5], [0.2, 0.7], [1.0] * 10, [0.0] * 7 + [1.0] * 5, list(np.linspace(0, 1, 101)),
    list(np.linspace(1, 0, 64)), [1e-300, 5e-324, 0.0, 1e-300, 2e-300], [0.3, 0.3, 0.9, 0.1, 0.3, 0.3, 0.9],
])
def test_quantiles_are_numpys(values):
    """The kernel's quantiles (a multiple quickselect) are ``np.quantile``'s, bit for bit, on ties,
    sorted and reversed input, tiny and subnormal values, one and two values, and random draws."""
    rng = np.random.default_rng(0)
    cases = [np.array(values, dtype=float), rng.random(1001), rng.choice([0.0, 0.25, 1.0], 4000)]
    for x in cases:
        got = np.empty((1, 3, 1))
        numerics.quantiles_jit(0, x[None, :].copy(), 0, np.array([0.1, 0.5, 0.9]), np.empty(len(x)), got)
        assert np.array_equal(got[0, :, 0], np.quantile(x, [0.1, 0.5, 0.9])), x


def test_probabilities_below_the_linear_range_same_under_both_engines():
    """Laws of 1e-250 and below (where the kernel's linear-space mixture switches to log space)
    and an amplitude pushed towards 1e-300 by a long window: the same numbers as numpy."""
    data = short(table("waluigi"), steps=80, replicates=40)
    data["simulacra"]["luigi"]["states"]["kind"]["emit"] = {"F": 1.0, "U": 1e-250}
    data["context"]["length"] = 40
    data.setdefault("sampling", {})["temperature"] = 300.0
    compiled = assert_same_run(data)
    assert np.min(compiled.engine.st.mu) < 1e-200  # the log-space branch was taken


def test_summary_says_which_engine_ran(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "waluigi.toml"), "--steps", "5", "--replicates", "4", "--out", str(out)]) == 0
    assert "(compiled engine)" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["engine"] == "compiled"


def test_engine_flag_overrides_the_scenario():
    for command in ("run", "sweep"):
        args = build_parser().parse_args([command, "x.toml", "--engine", "numpy"])
        assert args.engine == "numpy"
    assert run_overrides(build_parser().parse_args(["run", "x.toml", "--engine", "numpy"]))["run.engine"] == "numpy"


def test_fallback_to_numpy_is_reported(tmp_path, capsys, monkeypatch):
    """Without numba every run falls back to numpy, says so on stderr and in summary.json."""
    monkeypatch.setattr(kernel, "numba", None)
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "waluigi.toml"), "--steps", "10", "--replicates", "4",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "(numpy engine)" in captured.out
    assert "running on numpy" in captured.err and "numba is not installed" in captured.err
    assert json.loads((out / "summary.json").read_text())["engine"] == "numpy"


def test_model_premises_fall_back_to_numpy():
    """A premise without an automaton (a trained model's premise) is not run by the kernel."""
    import dataclasses

    compiled = compile_scenario(validate(table("waluigi")))
    assert choose_engine(compiled, "compiled") == (CompiledEngine, None)
    assert choose_engine(compiled, "numpy") == (ReferenceEngine, None)
    compiled.premises[1] = dataclasses.replace(compiled.premises[1], automaton=None)
    engine, note = choose_engine(compiled, "compiled")
    assert engine.name == "numpy" and "premise 'waluigi'" in note


def test_warm_up_compiles_or_loads_every_loop():
    assert warm_up() >= 0.0


def test_extensions_without_a_compiled_form_fall_back_to_numpy(monkeypatch):
    """A deletion rule, criterion form or observable registered without its compiled form runs
    on numpy, and the reason names it."""
    from ecology.kinds import observables

    compiled = compile_scenario(validate(table("waluigi")))
    assert CompiledEngine.unsupported(compiled) is None
    monkeypatch.setattr(compiled.rule, "name", "lifo")
    monkeypatch.setattr(compiled.rule, "compiled_form", lambda: None)
    assert "deletion rule 'lifo'" in CompiledEngine.unsupported(compiled)
    monkeypatch.undo()

    criterion = compiled.criteria[0]
    monkeypatch.setattr(criterion, "compiled_form", lambda: None)
    assert f"criterion '{criterion.name}'" in CompiledEngine.unsupported(compiled)
    monkeypatch.undo()

    class Odd(observables.Observable):
        def measure(self, engine):
            return {"odd": 1.0}

    monkeypatch.setattr(observables, "OBSERVABLES", [*observables.OBSERVABLES, Odd()])
    assert "observable Odd has no compiled form" in CompiledEngine.unsupported(compiled)
    model = EcologyModel(validate(short(table("waluigi"), steps=3, replicates=4)))
    assert model.engine.name == "numpy" and "observable Odd" in model.engine_note
    model.run_model()
    assert list(model.datacollector.get_model_vars_dataframe()["odd"]) == [1.0] * 4


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``|got - want|`` in units in the last place of ``want`` (0 where equal, infinities included)."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(got - want) / np.spacing(np.abs(want)))


@pytest.mark.parametrize("name", ["exp", "log"])
def test_the_kernels_exp_and_log_are_within_one_ulp(name):
    """``numerics.exp_jit`` and ``numerics.log_jit`` (branch-free, so that loops over replicates vectorise)
    against numpy's in extended precision rounded to double (``np.longdouble``: 64-bit mantissas,
    so the reference is correctly rounded but for double rounding, 2^-11 ulp) on a
    million random arguments spread over their whole range and on the hard cases (NaN, infinities,
    signed zeros, subnormals, the overflow and underflow edges, 1e45, 1e-300): at most 1 ulp
    apart (so NaN, infinities and zeros exactly as the reference)."""
    import numba

    function = getattr(numerics, f"{name}_jit")

    @numba.njit
    def apply(x, out):
        for i in range(len(x)):
            out[i] = function(x[i])

    rng = np.random.default_rng(15)
    if name == "exp":
        random = np.concatenate([rng.uniform(-746.0, 710.0, 500_000), rng.uniform(-1.0, 1.0, 250_000),
                                 rng.uniform(-1e-300, 1e-300, 250_000)])
        special = [-np.inf, np.inf, np.nan, 0.0, -0.0, 5e-324, -5e-324, -745.2, -745.13, -744.44, -708.4, -708.39,
                   709.78, 709.79, 710.0, -1e300, 1e300, 1e45, -1e45, np.log(2.0), -np.log(2.0) / 2]
    else:
        random = np.concatenate([np.exp(rng.uniform(-744.0, 709.0, 500_000)), rng.uniform(0.5, 2.0, 250_000),
                                 rng.uniform(0.0, 1e-300, 250_000)])
        special = [-np.inf, np.inf, np.nan, 0.0, -0.0, -1.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-200,
                   0.5, 1.0, 2.0, np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0), 1e45, 1.7976931348623157e308]

    for x in (random, np.array(special)):
        got = np.empty_like(x)
        apply(x, got)
        with np.errstate(all="ignore"):
            want = getattr(np, name)(x.astype(np.longdouble)).astype(float)
        assert ulps(got, want).max() <= 1.0, x[np.argmax(ulps(got, want))]
