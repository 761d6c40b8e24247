"""Storm reads ``analyze --export DIR --export-format storm,drn`` as written, and finds the report's
figures on it (docs/exact.md#export).

With stormpy (an optional test dependency): both files load (DRN by ``build_model_from_drn``, the
explicit ``storm.tra``/``storm.lab``/``storm.rew`` by ``build_model_from_explicit``); Storm's matrix is
the exported ``P`` bit for bit; its labels are the criteria's page-states; ``R=? [F "C"]`` (the state
reward 1 per step) is the report's expected hitting time, ``LRA=? ["C"]`` its long-run fraction,
and Storm's steady-state distribution from ``init`` is ``sum_c a_c pi_c`` (absorption probability
times stationary law of each closed class, from :class:`MarkovChain`), each to 1e-9 relative with
Storm's direct (elimination) solver; and on one chain Storm's exact rational arithmetic gives the hitting
time too; a criterion no page-state meets is in ``storm.lab`` and, not being in the DRN, Storm refuses
it there as an unknown label. Without stormpy the files' layout and the command line are still checked.
"""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain, criterion_chain
from ecology.exact.markov import MarkovChain
from ecology.exact.storm import LABEL_LIMIT, REWARD_MODEL, storm_labels
from ecology.scenario import load

from .conftest import SCENARIOS

RTOL = 1e-9
# one closed class with transient states before it (at two window lengths); an absorbing page-state;
# two closed classes, which the steady state from init weighs (dog's criterion is periodic, decided on a
# product chain, so not a label of the export); a criterion no page-state meets (Storm's reward is inf,
# the report's time None)
CASES = [("waluigi_soft", 4), ("waluigi_soft", 6), ("zeros", 3), ("dog", 3), ("coins", 3)]


def export(tmp_path, capsys, name: str, k: int, formats: str = "storm,drn"):
    """The export directory and the report of ``analyze NAME --set context.length=K``."""
    out = tmp_path / f"{name}_{k}"
    assert main(["analyze", str(SCENARIOS / f"{name}.toml"), "--set", f"context.length={k}", "--export", str(out),
                 "--export-format", formats, "--json"]) == 0
    return out, json.loads(capsys.readouterr().out)


def criterion_masks(name: str, k: int) -> tuple[int, dict[str, np.ndarray]]:
    """The initial state and each criterion's page-states, from the chain built again."""
    compiled = compile_scenario(load(SCENARIOS / f"{name}.toml", {"context.length": k}))
    chain = build_chain(compiled)
    masks = {}
    for c in compiled.tracked:
        decided_on, mask = criterion_chain(compiled, chain, c, 10**6)
        if decided_on is chain:
            masks[c.name] = mask
    return chain.initial, masks


# -- the files' layout (no stormpy needed) -----------------------------------------------------------


def test_storm_files_carry_the_chain_bit_for_bit(tmp_path, capsys):
    out, report = export(tmp_path, capsys, "waluigi_soft", 4)
    P = sp.load_npz(out / "transition.npz").tocsr()
    n = P.shape[0]
    tra = (out / "storm.tra").read_text().splitlines()
    assert tra[0] == "dtmc" and len(tra) == P.nnz + 1
    rows = [line.split() for line in tra[1:]]
    back = sp.csr_matrix(([float(p) for _, _, p in rows], ([int(i) for i, _, _ in rows], [int(j) for _, j, _ in rows])),
                         shape=(n, n))
    assert abs(back - P).max() == 0.0  # repr: the shortest decimal that reads back as the same double
    assert [(int(i), int(j)) for i, j, _ in rows] == sorted((int(i), int(j)) for i, j, _ in rows)
    lab = (out / "storm.lab").read_text().splitlines()
    assert lab[:3] == ["#DECLARATION", "init revealed waluigi_certain", "#END"]
    states = (out / "states.txt").read_text().splitlines()
    assert lab[3] == "0 init" and f"{states.index('U U U U')} revealed waluigi_certain" in lab
    assert (out / "storm.rew").read_text().splitlines() == [f"{i} 1" for i in range(n)]
    drn = (out / "chain.drn").read_text().splitlines()
    header = drn[: drn.index("@model") + 1]
    assert header[1:] == ["@type: DTMC", "@value_type: double", "@parameters", "", "@reward_models", REWARD_MODEL,
                          "@nr_states", str(n), "@nr_choices", str(n), "@model"]
    body = drn[len(header):]
    assert body[:2] == ["state 0 [1] init", "\taction 0"] and sum(line.startswith("state ") for line in body) == n
    transitions = [line.split(" : ") for line in body if line.startswith("\t\t")]
    assert [float(p) for _, p in transitions] == P.data.tolist() and [int(j) for j, _ in transitions] == P.indices.tolist()
    assert not (out / "chain.tra").exists() and report["export"] == str(out)


def test_the_default_export_is_prism_alone(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["analyze", str(SCENARIOS / "waluigi_soft.toml"), "--set", "context.length=3", "--export", str(out),
                 "--json"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["chain.lab", "chain.sta", "chain.tra", "states.txt", "transition.npz"]
    assert (out / "chain.tra").read_text().split("\n", 1)[0].split() == ["15", "30"]  # PRISM's "states transitions"


def test_export_format_errors_are_one_line(tmp_path, capsys):
    scenario = str(SCENARIOS / "waluigi_soft.toml")
    assert main(["analyze", scenario, "--export-format", "drn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--export-format needs --export" in err
    assert main(["analyze", scenario, "--export", str(tmp_path / "x"), "--export-format", "prism,nusmv"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'prism,nusmv': choose one or more of prism, storm, drn" in err
    assert not (tmp_path / "x").exists()


def test_labels_are_storm_identifiers_of_bounded_length():
    names, members = storm_labels(SimpleNamespace(initial=2), {"a" * 300: np.array([True, False, False]),
                                                               "a" * 301: np.array([False, True, False]),
                                                               "init": np.array([False, False, True]),
                                                               "9 lives": np.array([False, False, False])})
    assert len(set(names.values())) == 4 and all(len(v) < 128 for v in names.values())
    assert names["a" * 300] == "a" * LABEL_LIMIT and names["init"] != "init" and names["9 lives"] == "_9_lives"
    assert members == {2: ["init", names["init"]], 0: ["a" * LABEL_LIMIT], 1: [names["a" * 301]]}


# -- Storm reads them ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stormpy():
    return pytest.importorskip("stormpy")


def direct_solver(stormpy):
    """Storm's environment with its elimination linear-equation solver (``--eqsolver elimination``):
    a direct method. Its default (gmm++) and Eigen's default (GMRES) are iterative and stop near
    1e-6 and 1e-9 relative; on ``waluigi_soft`` at ``k = 6`` gmm++'s steady state is 7.6% off on a
    page-state of small mass."""
    import stormpy.environments as environments

    env = environments.Environment()
    env.solver().set_linear_equation_solver_type(environments.EquationSolverType.ELIMINATION)
    return env


def models(stormpy, out):
    return {"drn": stormpy.build_model_from_drn(str(out / "chain.drn")),
            "storm": stormpy.build_model_from_explicit(str(out / "storm.tra"), str(out / "storm.lab"),
                                                       state_rewards=str(out / "storm.rew"))}


def check(stormpy, model, prop: str, env, state: int) -> float:
    return stormpy.model_checking(model, stormpy.parse_properties(prop)[0], environment=env).get_value(state)


@pytest.mark.parametrize("name, k", CASES, ids=[f"{n}-k{k}" for n, k in CASES])
def test_storm_finds_the_reports_figures(stormpy, tmp_path, capsys, name, k):
    import stormpy.analysis

    out, report = export(tmp_path, capsys, name, k)
    P = sp.load_npz(out / "transition.npz").tocsr()
    mc = MarkovChain(P)
    initial, masks = criterion_masks(name, k)
    steady = sum(a * pi for a, pi in zip(mc.absorption_probabilities(initial), mc.stationary_distributions))
    env = direct_solver(stormpy)
    for form, model in models(stormpy, out).items():
        assert model.nr_states == P.shape[0] and list(model.initial_states) == [initial], form
        entries = [(i, e.column, e.value) for i in range(model.nr_states) for e in model.transition_matrix.get_row(i)]
        back = sp.csr_matrix(([v for *_, v in entries], ([i for i, *_ in entries], [j for _, j, _ in entries])), shape=P.shape)
        assert back.nnz == P.nnz and abs(back - P).max() == 0.0, form
        # DRN declares a label by putting it on a state: a criterion no page-state meets is only in storm.lab
        held = {criterion: mask for criterion, mask in masks.items() if form == "storm" or mask.any()}
        assert model.labeling.get_labels() == {"init", *held}, form
        assert len(model.reward_models) == 1, form
        for criterion in masks.keys() - held.keys():
            with pytest.raises(RuntimeError, match=f"unknown label '{criterion}'"):
                check(stormpy, model, f'R=? [F "{criterion}"]', env, initial)
        for criterion, mask in held.items():
            assert sorted(model.labeling.get_states(criterion)) == np.flatnonzero(mask).tolist(), (form, criterion)
            time = check(stormpy, model, f'R=? [F "{criterion}"]', env, initial)
            expected = report["criteria"][criterion]["expected_hitting_time"]
            if expected is None:
                assert report["criteria"][criterion]["probability"] < 1 and math.isinf(time), (form, criterion, time)
            else:
                assert time == pytest.approx(expected, rel=RTOL), (form, criterion)
            fraction = check(stormpy, model, f'LRA=? ["{criterion}"]', env, initial)
            assert fraction == pytest.approx(report["occupation"][criterion]["long_run_fraction"], rel=RTOL, abs=1e-300)
            assert fraction == pytest.approx(steady[mask].sum(), rel=RTOL, abs=1e-300), (form, criterion)
        storm_steady = np.array(stormpy.analysis.compute_steady_state_distribution(model, environment=env).get_value_vector())
        assert np.allclose(storm_steady, steady, rtol=RTOL, atol=1e-15), form


def test_storm_in_exact_arithmetic_agrees_with_the_report(stormpy, tmp_path, capsys):
    import stormpy.environments as environments

    out, report = export(tmp_path, capsys, "waluigi_soft", 4, formats="drn")
    model = stormpy.build_model_from_drn[stormpy.Rational](str(out / "chain.drn"))  # each decimal read as a rational
    time = check(stormpy, model, f'R{{"{REWARD_MODEL}"}}=? [F "revealed"]', environments.exact(), 0)
    assert float(time) == pytest.approx(report["criteria"]["revealed"]["expected_hitting_time"], rel=RTOL)
