"""Numbers at the edge of a double and the budgets of a run: expected times beyond 1.8e308,
priors whose sum overflows or that are subnormal, the output stage's memory, many criteria, and
the Python API's argument types."""

import json
import math

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp
import tomli_w

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.core.mixture import normalised_log_prior
from ecology.exact.chain import build_chain
from ecology.exact.markov import MarkovChain
from ecology.exact.report import criterion_figures
from ecology.scenario import validate


def coin_table(p: float, k: int, priors=(1.0,), second: float | None = None) -> dict:
    """An iid coin (P(H) = p) on a fifo window of k, criterion 'the window is all H'; with
    ``second``, a second coin premise of that P(H), the premises' priors ``priors``."""
    simulacra = {"a": {"kind": "coin", "heads": "H", "tails": "T", "p": p}}
    premises = {"a": {"prior": priors[0], "cast": ["a"]}}
    if second is not None:
        simulacra["b"] = {"kind": "coin", "heads": "H", "tails": "T", "p": second}
        premises["b"] = {"prior": priors[1], "cast": ["b"]}
    return {"name": "edge", "vocabulary": {"tokens": ["H", "T"], "pad": "N"},
            "context": {"length": k, "deletion": "fifo", "prompt": []},
            "run": {"steps": 20, "replicates": 16, "seed": 1}, "simulacra": simulacra, "premises": premises,
            "absorption": {"all_h": {"window_only": ["H"]}}}


def write(tmp_path, data: dict, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (which are not JSON)."""
    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")
    return json.loads(text, parse_constant=refuse)


def run_length_log10(p) -> mpmath.mpf:
    """log10 of the expected time to 3 heads in a row of an iid coin: 1/p + 1/p^2 + 1/p^3."""
    p = mpmath.mpf(p)
    return mpmath.log10(1 / p + 1 / p**2 + 1 / p**3)


def mp_log10_hitting_time(P: np.ndarray, start: int, target: np.ndarray) -> mpmath.mpf:
    """log10 E_start[T] solving (I - P_SS) h = 1 in mpmath (450 digits, unbounded exponents), the
    diagonal of I - P_SS being what leaves each state (the row's sum off the diagonal, as the
    chain means its rows: a float row 1 - 1e-200, 1e-200 is stored as 1.0, 1e-200)."""
    with mpmath.workdps(450):  # digits enough for 1 + 1e-400
        rest = np.flatnonzero(~target)
        n = len(rest)
        A = mpmath.matrix(n, n)
        for a, i in enumerate(rest):
            for b, j in enumerate(rest):
                A[a, b] = -mpmath.mpf(float(P[i, j])) if a != b else 0
            A[a, a] = mpmath.fsum(mpmath.mpf(float(P[i, j])) for j in range(len(P)) if j != i)
        rhs = mpmath.matrix([1 / A[a, a] for a in range(n)])  # rows scaled to a unit diagonal
        for a in range(n):
            A[a, :] = A[a, :] / A[a, a]
        h = mpmath.lu_solve(A, rhs)
        return mpmath.log10(h[int(np.searchsorted(rest, start))])


# --- times beyond a double -----------------------------------------------------------------------

def test_a_time_beyond_a_double_is_above_1_8e308_on_the_console_and_in_the_json(tmp_path, capsys):
    """The 1e-110 coin at k = 3: E[T] ~ 1e330. Never 'infinite' beside P(ever) 1, never NaN."""
    path = write(tmp_path, coin_table(1e-110, 3))
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("criterion 'all_h'"))
    assert "expected steps to reach it 1e330 (log10 330.0, by the log-space elimination), P(ever) 1" in line
    assert "infinite" not in out
    assert "longest mean first passage between two of its states 1e330 (log10 330.0" in out
    assert main(["analyze", str(path), "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    c = report["criteria"]["all_h"]
    assert c["expected_hitting_time"] is None and c["note"] is None and c["probability"] == 1.0
    assert c["expected_hitting_time_overflow"] == "above 1.8e308" and c["expected_hitting_time_log10"] == 330.0
    closed = report["closed_classes"][0]
    assert closed["max_mean_first_passage_overflow"] == "above 1.8e308"
    # an iid coin on a fifo window: T^3 has equal rows, every other eigenvalue is 0 and Kemeny's constant
    # sum 1 / (1 - lambda) is 7, found in log space although each of its terms pairs 1e-330 with 1e330
    assert closed["kemeny_constant"] == pytest.approx(7.0, rel=1e-12)


def test_run_exact_and_sweep_rows_say_the_same(tmp_path, capsys):
    path = write(tmp_path, coin_table(1e-110, 3))
    assert main(["run", str(path), "--exact", "--out", str(tmp_path / "r")]) == 0
    assert "exact chain: E[T] = 1e330 (log10 330.0, by the log-space elimination)" in capsys.readouterr().out
    exact = strict_json((tmp_path / "r" / "summary.json").read_text())["criteria"]["all_h"]["exact"]
    assert exact["expected_hitting_time"] is None and exact["expected_hitting_time_overflow"] == "above 1.8e308"
    assert exact["expected_hitting_time_log10"] == 330.0 and exact["reached_ever"] == 1.0
    from ecology.sweep.points import exact_figures

    row = exact_figures(validate(coin_table(1e-110, 3)), 10_000)
    assert math.isnan(row["all_h_exact_expected_hitting_time"]) and row["all_h_exact_expected_hitting_time_log10"] == 330.0
    finite = exact_figures(validate(coin_table(0.5, 3)), 10_000)
    assert finite["all_h_exact_expected_hitting_time"] == pytest.approx(14.0) and len(finite) == len(row) - 1


@pytest.mark.parametrize("p", [1e-110, 1e-150, 1e-300])
def test_log10_of_the_time_matches_the_closed_form(p):
    """log10 E[T] of three heads in a row against 1/p + 1/p^2 + 1/p^3 in mpmath."""
    compiled = compile_scenario(validate(coin_table(p, 3)))
    pc = build_chain(compiled, 10_000)
    log10, error = pc.chain.log10_expected_hitting_time(pc.initial, pc.holds(compiled.criteria[0]))
    assert error < 1e-10
    assert abs(log10 - float(run_length_log10(p))) < 1e-12 * log10


def test_log10_of_a_random_chain_with_tiny_escapes_matches_mpmath():
    """A 12-state chain whose only way to the target (state 0) is 2 -> 3 -> 0, each step of
    probability 1e-200 (E[T] ~ 1e400): the log-space elimination against a 450-digit mpmath solve."""
    rng = np.random.default_rng(7)
    n = 12
    P = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    P[:, [0, 3]] = 0.0
    ring = [i for i in range(1, n) if i != 3]
    for a, b in zip(ring, ring[1:] + ring[:1]):  # a cycle through every other state
        P[a, b] += 0.3
    P[1:] /= P[1:].sum(axis=1, keepdims=True)
    P[3] = 0.0
    P[2, 3], P[3, 0], P[3, 4] = 1e-200, 1e-200, 1.0
    P[0] = 0.0
    P[0, 0] = 1.0
    mc = MarkovChain(sp.csr_matrix(P))
    target = np.arange(n) == 0
    log10, error = mc.log10_expected_hitting_time(5, target)
    assert log10 > 308.3 and error < 1e-10
    assert abs(log10 - float(mp_log10_hitting_time(P, 5, target))) < 1e-12 * log10


def test_a_subnormal_prior_gives_a_time_beyond_a_double_with_the_digits_it_defends(tmp_path, capsys):
    """A premise of prior 1e-320 is the only one that can print H: E[T] ~ 1e321. The chain's
    probabilities are subnormal (3 digits), so log10 gets one decimal, within the bound of mpmath."""
    data = coin_table(0.5, 2, priors=(1e-320, 1.0), second=0.0)
    compiled = compile_scenario(validate(data))
    pc = build_chain(compiled, 10_000)
    target = pc.holds(compiled.criteria[0])
    log10, error = pc.chain.log10_expected_hitting_time(pc.initial, target)
    assert 1e-3 < error < 0.05
    assert abs(log10 - float(mp_log10_hitting_time(pc.chain.P.toarray(), pc.initial, target))) < 1e-10
    assert main(["analyze", str(write(tmp_path, data)), "--json"]) == 0
    c = strict_json(capsys.readouterr().out)["criteria"]["all_h"]
    assert c["expected_hitting_time_overflow"] == "above 1.8e308" and c["expected_hitting_time_log10"] == round(log10, 1)


def test_a_metastable_exit_time_beyond_a_double_is_not_closed(tmp_path, capsys):
    """'T T' under the prior-1e-320 premise escapes with probability 1.25e-321 per step: its exit
    time is above 1.8e308, never 'never (closed)'."""
    path = write(tmp_path, coin_table(0.5, 2, priors=(1e-320, 1.0), second=0.0))
    assert main(["analyze", str(path), "--tolerance", "1e-5"]) == 0
    assert ("<0> 1 states, most likely 'T T', max escape per step 1.25e-321, expected exit time from there 8e320 "
            "(log10 320.9, by the log-space elimination)") in capsys.readouterr().out
    assert main(["analyze", str(path), "--tolerance", "1e-5", "--json"]) == 0
    c = strict_json(capsys.readouterr().out)["metastable"]["classes"][0]
    assert c["exit_time"] is None and c["exit_time_overflow"] == "above 1.8e308" and c["exit_time_log10"] == 320.9


def test_an_infinite_time_is_infinite_only_when_the_set_may_be_missed(tmp_path, capsys):
    """A coin that never prints H again after a T: the set is missed with probability 1 - 1e-300;
    the time is infinite and P(ever) is not 1."""
    data = coin_table(0.5, 2, priors=(1e-300, 1.0), second=0.0)
    data["simulacra"]["a"]["p"] = 1.0  # premise a prints H only: after a T it is out
    figures = criterion_figures(compile_scenario(validate(data)), 10_000)["all_h"]
    assert figures["expected_hitting_time"] is None and figures["expected_hitting_time_overflow"] is None
    assert figures["reached_ever"] < 1e-299
    assert main(["analyze", str(write(tmp_path, data))]) == 0
    assert "expected steps to reach it infinite (the set may never be entered), P(ever) 1e-300" in capsys.readouterr().out


# --- priors normalised in log space ----------------------------------------------------------------

def test_normalised_log_prior_is_exact_at_the_edges():
    assert np.array_equal(np.exp(normalised_log_prior([1e308, 1e308])), [0.5, 0.5])
    assert np.allclose(np.exp(normalised_log_prior([1.5e308, 1.5e308, 1.5e308])), 1 / 3, rtol=1e-15)
    tiny = normalised_log_prior([1e-320, 1.0])
    assert tiny[0] == math.log(1e-320) and tiny[1] == 0.0
    below = normalised_log_prior([1e-320, 1e10])  # the ratio 1e-330 is below the double range
    assert below[0] == pytest.approx(math.log(1e-320) - math.log(1e10), rel=1e-15)
    assert np.allclose(np.exp(normalised_log_prior([1.0, 3.0])), [0.25, 0.75], rtol=1e-15)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_two_priors_of_1e308_are_one_half_each_in_both_engines_and_the_chain(engine, tmp_path, capsys):
    huge = coin_table(0.9, 2, priors=(1e308, 1e308), second=0.2)
    plain = coin_table(0.9, 2, priors=(1.0, 1.0), second=0.2)
    out = tmp_path / "r"
    assert main(["run", str(write(tmp_path, huge)), "--engine", engine, "--exact", "--out", str(out)]) == 0
    summary = strict_json((out / "summary.json").read_text())
    assert {name: p["prior"] for name, p in summary["premises"].items()} == {"a": 0.5, "b": 0.5}
    assert main(["run", str(write(tmp_path, plain, "p.toml")), "--engine", engine, "--exact",
                 "--out", str(tmp_path / "p")]) == 0
    reference = strict_json((tmp_path / "p" / "summary.json").read_text())
    capsys.readouterr()
    assert summary["criteria"]["all_h"]["exact"] == reference["criteria"]["all_h"]["exact"]
    assert summary["criteria"]["all_h"]["reached_curve"] == reference["criteria"]["all_h"]["reached_curve"]


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_a_subnormal_prior_keeps_its_value_in_both_engines_and_the_chain(engine, tmp_path, capsys):
    data = coin_table(0.5, 2, priors=(1e-320, 1.0), second=0.0)
    out = tmp_path / "r"
    assert main(["run", str(write(tmp_path, data)), "--engine", engine, "--out", str(out)]) == 0
    capsys.readouterr()
    priors = {name: p["prior"] for name, p in strict_json((out / "summary.json").read_text())["premises"].items()}
    assert priors == {"a": 1e-320, "b": 1.0}
    pc = build_chain(compile_scenario(validate(data)), 10_000)
    # from the empty window, H is printed by premise a only: alpha_a P_a(H) = 1e-320 x 1/2
    assert pc.chain.P[pc.initial].toarray().max(initial=0.0) == 1.0
    first = pc.chain.P[pc.initial].toarray().ravel()
    assert sorted(first[first > 0]) == [5e-321, 1.0]


def test_population_weights_whose_sum_overflows(tmp_path, capsys):
    data = coin_table(0.5, 2)
    data["populations"] = {"many": {"prior": 1.0, "count": 2, "template": {"kind": "coin", "heads": "H", "tails": "T"},
                                    "parameter": "p", "distribution": {"kind": "values", "values": [0.2, 0.8]},
                                    "weights": {"kind": "values", "values": [1e308, 1e308]}}}
    out = tmp_path / "r"
    assert main(["run", str(write(tmp_path, data)), "--out", str(out)]) == 0
    capsys.readouterr()
    priors = {name: p["prior"] for name, p in strict_json((out / "summary.json").read_text())["premises"].items()}
    assert priors == {"a": 0.5, "many[0]": 0.25, "many[1]": 0.25}


@pytest.mark.parametrize("value, reason", [
    (0.0, "premises.a.prior: Input should be greater than 0, got 0.0"),
    (-1.0, "premises.a.prior: Input should be greater than 0, got -1.0"),
    (math.nan, "premises.a.prior: must be a finite number, got nan"),
    (math.inf, "premises.a.prior: must be a finite number, got inf"),
])
def test_bad_priors_are_one_line_with_the_true_reason(value, reason, tmp_path, capsys):
    path = write(tmp_path, coin_table(0.5, 2, priors=(value,)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: {reason}\n"


# --- the Python API's argument types -----------------------------------------------------------

SCENARIO_TYPES = "scenario must be a path to a scenario file (str or os.PathLike) or an ecology.scenario.Scenario"


@pytest.mark.parametrize("args, kwargs, message", [
    ((42,), {}, f"ecology.run: {SCENARIO_TYPES}, got int"),
    ((None,), {}, f"ecology.run: {SCENARIO_TYPES}, got None"),
    ((b"coins.toml",), {}, f"ecology.run: {SCENARIO_TYPES}, got bytes"),
    ((["coins.toml"],), {}, f"ecology.run: {SCENARIO_TYPES}, got list"),
    (("S",), {"exact": 1}, "ecology.run: exact must be True or False, got int"),
    (("S",), {"exact": "yes"}, "ecology.run: exact must be True or False, got str"),
    (("S",), {"max_states": "9"}, "ecology.run: max_states must be an int, got str"),
    (("S",), {"max_states": 1e6}, "ecology.run: max_states must be an int, got float"),
    (("S",), {"max_states": True}, "ecology.run: max_states must be an int, got bool"),
])
def test_api_arguments_of_the_wrong_type_are_a_type_error_naming_them(args, kwargs, message):
    import ecology

    from .conftest import SCENARIOS

    args = tuple(str(SCENARIOS / "coins.toml") if a == "S" else a for a in args)
    with pytest.raises(TypeError) as caught:
        ecology.run(*args, **kwargs)
    assert str(caught.value) == message


def test_api_values_are_a_scenario_error_and_save_checks_its_path(tmp_path):
    import ecology
    from ecology.errors import ScenarioError

    from .conftest import SCENARIOS

    coins = SCENARIOS / "coins.toml"
    with pytest.raises(ScenarioError, match="^max_states: must be a positive integer, got 0$"):
        ecology.run(coins, max_states=0)
    with pytest.raises(ScenarioError, match='run.steps: Input should be a valid integer, got "9"'):
        ecology.run(coins, steps="9")
    with pytest.raises(ScenarioError, match="file not found"):
        ecology.run(tmp_path / "missing.toml")
    outcome = ecology.run(coins, steps=3, replicates=4)
    with pytest.raises(TypeError, match="^RunOutcome.save: out must be a path \\(str or os.PathLike\\) or None, got int$"):
        outcome.save(42)
    assert not list(tmp_path.iterdir())
    assert outcome.save(tmp_path / "r") == tmp_path / "r" and (tmp_path / "r" / "summary.json").exists()
    assert ecology.run(outcome.result.scenario, steps=3, replicates=4).summary["steps"] == 3


# --- the run's budgets: the output stage and the number of criteria --------------------------------

def many_criteria(count: int, steps: int = 20) -> dict:
    data = coin_table(0.5, 4)
    data["run"]["steps"] = steps
    data["absorption"] = {f"c{i}": {"window_only": ["H"]} if i % 2 else {"repeats": {"period": 1, "copies": 2}}
                          for i in range(count)}
    return data


def test_the_estimate_includes_the_output_stage_and_a_refusal_names_it(tmp_path, capsys):
    from ecology.core.budget import GIB, SAFETY, run_bytes, stage_bytes

    s = validate(many_criteria(1000, steps=100_000))
    stages = stage_bytes(s)
    # writing: (n + 1) (28 W + 210 C + 114 min(R, 32)), W = 10 L + 4 S + 2 C + 8 = 2022 columns of steps.csv
    assert stages["writing the outputs"] == pytest.approx(SAFETY * 100_001 * (28 * 2022 + 210 * 1000 + 114 * 16))
    assert run_bytes(s)[0] == pytest.approx(sum(stages.values()))
    path = write(tmp_path, many_criteria(1000, steps=100_000))
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    total, simulating, writing = (x / GIB for x in (sum(stages.values()), stages["simulating"], stages["writing the outputs"]))
    assert err.count("\n") == 1 and err.startswith(
        f"error: {path}: run: the run needs about {total:,.3g} GiB ({simulating:,.3g} simulating, {writing:,.3g} writing "
        "the outputs; mostly writing the outputs: run.steps (steps.csv, curves, the first replicates' tables, plots))")
    assert "lower run.steps (--steps), or raise the budget with --max-memory GIB" in err
    assert not (tmp_path / "r").exists()
    assert main(["validate", str(write(tmp_path, coin_table(0.5, 3), "small.toml"))]) == 0
    assert "simulating, " in capsys.readouterr().out and stages["simulating"] < 200 * GIB


def test_the_output_stage_estimate_bounds_the_measured_peak():
    """The formula's constants were measured (docstring of ecology.core.budget); at the smallest
    measured size the estimate of writing must exceed the memory that writing added there."""
    from ecology.core.budget import stage_bytes
    from ecology.scenario import load

    from .conftest import SCENARIOS

    measured = {(10_000, 20): 0.090, (60_000, 20): 0.269, (60_000, 4): 0.168}  # GiB above the held records
    for (steps, replicates), gib in measured.items():
        estimate = stage_bytes(load(SCENARIOS / "coins.toml", {"run.steps": steps, "run.replicates": replicates}))
        assert gib * 0.6 < estimate["writing the outputs"] / 2**30 < gib * 3


def test_many_criteria_are_written_whole_and_too_many_are_refused(tmp_path, capsys):
    from ecology.core.budget import MAX_CRITERIA

    path = write(tmp_path, many_criteria(300))
    out = tmp_path / "r"
    assert main(["run", str(path), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    summary = strict_json((out / "summary.json").read_text())
    assert len(summary["criteria"]) == 300
    import pandas as pd

    replicates = pd.read_csv(out / "replicates.csv", index_col="replicate")
    steps = pd.read_csv(out / "steps.csv", index_col="step")
    for name in ("c0", "c1", "c299"):
        reached = replicates[f"reached_step_{name}"]
        assert (reached.notna().mean() == summary["criteria"][name]["reached"])
        assert steps[f"holding_{name}"].tolist() == summary["criteria"][name]["holding_curve"]
    assert summary["criteria"]["c1"] == summary["criteria"]["c299"]  # the same criterion, the same figures
    path = write(tmp_path, many_criteria(MAX_CRITERIA + 1), "many.toml")
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: absorption: 10,001 criteria (more than 10,000): each is columns "
                                       "of steps.csv and replicates.csv, curves and a summary (about 7 ms each to "
                                       "write); use fewer [absorption] tables\n")
