"""The exact page-state chain: closed forms, a peer (QuantEcon), hard numerics, and simulation."""

import copy
import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain, criterion_curves
from ecology.exact.markov import MarkovChain, gth, stationary
from ecology.exact.report import analyze
from ecology.model import EcologyModel
from ecology.scenario import validate

from .conftest import SCENARIOS, table

ALPHA, P = 0.9, 0.9


def stay(n):
    """P(F next | window of n F's), SCIENCE.md §4."""
    return (ALPHA + (1 - ALPHA) * P ** (n + 1)) / (ALPHA + (1 - ALPHA) * P**n)


def toy_chain(toy, k):
    toy["context"]["length"] = k
    compiled = compile_scenario(validate(toy))
    return compiled, build_chain(compiled)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_toy_against_closed_forms(toy, k):
    compiled, pc = toy_chain(toy, k)
    labels = pc.labels()
    index = {label: i for i, label in enumerate(labels)}
    P_ = pc.chain.P
    # pages of n F's (n < k, padded) move to n + 1 F's with the closed-form probability
    for n in range(k):
        page = " ".join(["N"] * (k - n) + ["F"] * n)
        nxt = " ".join(["N"] * (k - n - 1) + ["F"] * (n + 1))
        assert np.isclose(P_[index[page], index[nxt]], stay(n), rtol=1e-12)
    all_f = " ".join(["F"] * k)
    assert np.isclose(P_[index[all_f], index[all_f]], stay(k), rtol=1e-12)  # n >= k: constant
    report = analyze(compiled, chain=pc)
    # one closed class, the absorbing U^k, reached with probability 1: the seed's claim
    assert len(report["closed_classes"]) == 1
    assert report["closed_classes"][0]["absorbing_state"] == " ".join(["U"] * k)
    assert np.isclose(report["closed_classes"][0]["probability"], 1.0)
    assert report["stationary"] == [{"state": " ".join(["U"] * k), "mass": 1.0}]
    # spectrum: 1 (U^k), stay(k) (the all-F self-loop), and 0 for the transient DAG of the rest
    eig = report["eigenvalues"]
    assert np.isclose(eig[0], 1.0) and np.isclose(eig[1], stay(k), rtol=1e-9)
    assert np.allclose(eig[2:], 0.0, atol=1e-6)
    # expected time: E[first U] = sum_{m<k} S(m) + S(k) / (1 - stay(k)), then k - 1 more steps
    S = [ALPHA + (1 - ALPHA) * P**m for m in range(k + 1)]
    expected = sum(S[:k]) + S[k] / (1 - stay(k)) + k - 1
    assert np.isclose(report["expected_absorption_time"], expected, rtol=1e-9)


def test_toy_state_count_and_power(toy):
    _, pc = toy_chain(toy, 3)
    assert pc.chain.n_states == 10  # N N N, N N F, N N U, N F F, N F U, N U U, F F F, F F U, F U U, U U U
    T3 = pc.chain.power(3).toarray()
    assert np.allclose(T3, np.linalg.matrix_power(pc.chain.P.toarray(), 3))
    # after k steps every original token is gone: rows of T^k depend only on... the chain, not on pads
    assert np.allclose(T3.sum(axis=1), 1.0)


def random_chain(rng, n, density=0.3, periodic_blocks=False):
    """A random sparse stochastic matrix, optionally with a deterministic cycle (periodic class)."""
    M = rng.random((n, n)) * (rng.random((n, n)) < density)
    if periodic_blocks:
        cycle = n // 3
        M[:cycle] = 0
        for i in range(cycle):
            M[i, (i + 1) % cycle] = 1.0  # a closed class of period `cycle`
    M[M.sum(axis=1) == 0, -1] = 1.0
    return M / M.sum(axis=1, keepdims=True)


def peer_cases():
    rng = np.random.default_rng(4)
    cases = {}
    for name, overrides in [("waluigi", {"context": {"length": 3}}), ("dog", {}), ("zeros", {"context": {"length": 4}}),
                            ("waluigi_soft", {"context": {"length": 4}})]:
        data = copy.deepcopy(table(name))
        for section, values in overrides.items():
            data[section].update(values)
        cases[name] = build_chain(compile_scenario(validate(data))).chain.P.toarray()
    for i in range(4):
        cases[f"random{i}"] = random_chain(rng, 12 + 3 * i, periodic_blocks=bool(i % 2))
    return cases


PEER = peer_cases()


@pytest.mark.parametrize("name", list(PEER))
def test_agrees_with_quantecon(name):
    qe = pytest.importorskip("quantecon")
    dense = PEER[name]
    ours = MarkovChain(sp.csr_matrix(dense))
    theirs = qe.MarkovChain(dense)
    ours_classes = sorted(tuple(c.tolist()) for c in ours.recurrent_classes)
    their_classes = sorted(tuple(sorted(c.tolist())) for c in theirs.recurrent_classes)
    assert ours_classes == their_classes
    for members, period in zip(ours.recurrent_classes, ours.periods):
        assert period == qe.MarkovChain(dense[np.ix_(members, members)]).period
    theirs_pi = sorted((tuple(np.flatnonzero(pi > 0)), tuple(pi)) for pi in theirs.stationary_distributions)
    ours_pi = sorted((tuple(np.flatnonzero(pi > 0)), tuple(pi)) for pi in ours.stationary_distributions)
    for (_, p1), (_, p2) in zip(ours_pi, theirs_pi):
        assert np.allclose(p1, p2, atol=1e-12)


def nearly_decomposable(rng, blocks, size, coupling):
    n = blocks * size
    M = np.zeros((n, n))
    for b in range(blocks):
        sl = slice(b * size, (b + 1) * size)
        M[sl, sl] = rng.random((size, size)) + 0.01
    M /= M.sum(axis=1, keepdims=True)
    for b in range(blocks):  # leave each block with probability `coupling` from one state
        i = b * size
        M[i] *= 1 - coupling
        M[i, ((b + 1) % blocks) * size] += coupling
    return M


@pytest.mark.parametrize("coupling, method", [(1e-6, "dense"), (1e-8, "dense"), (1e-12, "dense"),
                                              (1e-6, "sparse"), (1e-8, "sparse"), (1e-6, "arnoldi"),
                                              (1e-8, "arnoldi")])
def test_nearly_decomposable_stationary_distributions(coupling, method):
    """Escape probabilities down to 1e-12 (GTH, used for classes up to 400 states) and 1e-8
    (sparse LU with refinement, and Arnoldi, used above that) agree with the dense reference to 1e-8."""
    rng = np.random.default_rng(9)
    M = nearly_decomposable(rng, blocks=4, size=25, coupling=coupling)
    qe = pytest.importorskip("quantecon")
    reference = qe.MarkovChain(M).stationary_distributions[0]
    pi = stationary(sp.csr_matrix(M), method=method)
    assert np.all(pi >= 0) and np.isclose(pi.sum(), 1.0, atol=1e-14)
    assert np.allclose(pi, reference, atol=1e-8, rtol=0)
    assert np.allclose(pi @ M, pi, atol=1e-12)
    assert np.allclose(gth(M), reference, atol=1e-12)


def test_exact_curves_match_simulation():
    """Toy, soft toy (population criterion) and dog (periodic, extended chain) against 4000 replicates.

    Each curve point is a binomial proportion over 4000 replicates (sd at most 0.0079); 5 sd.
    """
    for name, steps in [("waluigi", 150), ("waluigi_soft", 150), ("dog", 30)]:
        data = copy.deepcopy(table(name))
        data["run"].update(steps=steps, replicates=4000, seed=99)
        s = validate(data)
        compiled = compile_scenario(s)
        curves = criterion_curves(compiled, build_chain(compiled), steps, 100_000)
        model = EcologyModel(s)
        while model.running:
            model.step()
        df = model.datacollector.get_model_vars_dataframe()
        for c in compiled.criteria:
            for kind, column in (("reached", f"reached_{c.name}"), ("holding", f"holding_{c.name}")):
                exact = np.array(curves[c.name][kind])
                sd = np.sqrt(exact * (1 - exact) / 4000)
                assert np.all(np.abs(df[column].to_numpy() - exact) <= 5 * sd + 1e-9), (name, c.name, kind)


def test_metastable_classes_of_the_soft_toy():
    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = 6
    compiled = compile_scenario(validate(data))
    report = analyze(compiled, tolerance=0.02)
    # with floors nothing is strictly absorbing: one closed class holding every full window
    assert len(report["closed_classes"]) == 1 and report["closed_classes"][0]["size"] == 2**6
    meta = report["metastable"]["classes"]
    likely = {m["likely_state"] for m in meta}
    assert "U U U U U U" in likely and "F F F F F F" in likely
    for m in meta:  # a single sticky page each: exit time = 1 / escape probability
        assert len(meta) == 2 and 0 < m["max_escape"] < 0.02
        assert np.isclose(m["exit_time"], 1 / m["max_escape"], rtol=1e-9)


def test_cli_analyze_json_export_and_plots(tmp_path, capsys):
    out, export = tmp_path / "out", tmp_path / "export"
    code = main(["analyze", str(SCENARIOS / "waluigi.toml"), "--set", "context.length=3", "--horizon", "20",
                 "--power", "3", "--tolerance", "1e-4", "--json", "--out", str(out), "--export", str(export)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("n_states", "initial_state", "closed_classes", "expected_absorption_time", "stationary",
                "eigenvalues", "metastable", "curves", "power"):
        assert key in report
    assert report["initial_state"] == "N N N"
    P_ = sp.load_npz(export / "transition.npz")
    states = (export / "states.txt").read_text().splitlines()
    assert P_.shape == (10, 10) and len(states) == 10 and states[0] == "N N N"
    assert np.allclose(np.asarray(P_.sum(axis=1)).ravel(), 1.0)
    assert (export / "power_3.npz").is_file()
    for name in ("report.json", "network.npz", "eigenvalues.png", "stationary.png", "curves.png", "network.png"):
        assert (out / name).is_file(), name
    # `ecology plot` redraws an analysis directory from report.json and network.npz alone
    network = np.load(out / "network.npz")
    assert np.allclose(network["P"], P_.toarray()) and list(network["labels"]) == states
    for name in ("eigenvalues.png", "stationary.png", "curves.png", "network.png"):
        (out / name).unlink()
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0 and "redrew the analysis plots" in capsys.readouterr().out
    for name in ("eigenvalues.png", "stationary.png", "curves.png", "network.png"):
        assert (out / name).stat().st_size > 1000, name
    (out / "report.json").write_text("{}")
    assert main(["plot", str(out)]) == 2
    assert "not a readable analysis directory" in capsys.readouterr().err


def test_cli_analyze_errors(tmp_path, capsys):
    toy = str(SCENARIOS / "waluigi.toml")
    assert main(["analyze", toy, "--max-states", "20"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 20 page-states" in err and "--max-states" in err
    assert main(["analyze", toy, "--set", "context.deletion=none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context.deletion" in err and "infinite" in err
    assert main(["analyze", toy, "--tolerance", "2"]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def test_run_exact_overlay(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "waluigi.toml"), "--steps", "40", "--replicates", "500",
                 "--exact", "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    exact = summary["criteria"]["revealed"]["exact"]["reached_curve"]
    assert len(exact) == 41 and exact[0] == 0.0
    assert abs(exact[-1] - summary["criteria"]["revealed"]["reached"]) < 0.05


def soft_toy_recurrent_block(length: int, eps: float):
    """The soft toy's page chain at window ``length`` with both floors ``eps``: the chain, its
    (only) recurrent class and the transition matrix restricted to it (CSR)."""
    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = length
    data["simulacra"]["luigi"]["eps"] = data["simulacra"]["waluigi"]["eps"] = eps
    pc = build_chain(compile_scenario(validate(data)))
    members = pc.chain.recurrent_classes[0]
    return pc, members, pc.chain.P[members][:, members].tocsr()


def test_stationary_of_a_nearly_decomposable_page_chain():
    """Soft toy, eps = 1e-4, k = 10: the waluigi basin is left with probability ~eps^k per step,
    the all-F page at ~4e-3: the stationary law sits in the basin. GTH, Arnoldi and the automatic
    choice agree to 1e-8 with residual below 1e-10; a plain pinned LU solve is not trusted alone."""
    pc, members, block = soft_toy_recurrent_block(10, 1e-4)
    reference = stationary(block, "dense")
    basin = pc.population_amplitudes[members, 1] > 0.5
    assert reference[basin].sum() > 0.999
    for method in ("arnoldi", "auto"):
        pi = stationary(block, method)
        assert np.allclose(pi, reference, atol=1e-8)
        assert np.abs(pi @ block - pi).sum() < 1e-10


def test_page_keys_do_not_collide_with_300_tokens():
    """Two printable tokens at indices 0 and 256 of a 300-token vocabulary collided in a uint8 key:
    the truth at k = 8 is 2^9 - 1 = 511 page-states and one closed class of 2^8 full windows."""
    tokens = [f"t{i}" for i in range(300)]
    data = {"name": "wide", "vocabulary": {"tokens": tokens, "pad": "N"}, "context": {"length": 8},
            "run": {"steps": 5, "replicates": 2},
            "simulacra": {"coin": {"kind": "iid", "probs": {"t0": 0.5, "t256": 0.5}}},
            "premises": {"coin": {"prior": 1.0, "cast": ["coin"]}}}
    pc = build_chain(compile_scenario(validate(data)))
    assert pc.chain.n_states == 511
    assert [len(c) for c in pc.chain.recurrent_classes] == [256]
    assert len(set(pc.labels())) == 511


def test_state_budget_fires_before_memory_at_long_windows(toy):
    from ecology.errors import TooManyStates

    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = 40
    with pytest.raises(TooManyStates, match="--max-states"):
        build_chain(compile_scenario(validate(data)), max_states=50_000)


def test_criteria_hitting_times_agree_with_their_curves():
    """E[T] = sum_t P(T > t): the exact expected hitting time of each criterion's set against the
    tail sum of its exact hitting curve (soft toy, k = 5; the tail beyond 6000 steps is < 1e-12)."""
    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = 5
    compiled = compile_scenario(validate(data))
    pc = build_chain(compiled)
    report = analyze(compiled, chain=pc, horizon=6000)
    for name, c in report["criteria"].items():
        curve = np.array(report["curves"][name]["reached"])
        assert 1 - curve[-1] < 1e-12
        assert np.isclose(c["expected_hitting_time"], np.sum(1 - curve), rtol=1e-9)
        assert c["within"] == 6000 and np.isclose(c["probability_within"], curve[-1], rtol=1e-12)
    # the toy's initial window is transient; soft: the closed class holds every full window
    assert not report["initial_in_closed_class"] and report["expected_absorption_time"] == 5


def test_huge_horizon_and_power_are_bounded(capsys):
    toy = str(SCENARIOS / "waluigi_soft.toml")
    assert main(["analyze", toy, "--horizon", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--horizon" in err and "--max-work" in err
    # a small chain answers P(hit by 1e9) and T^(1e9) by squaring, at once
    assert main(["analyze", toy, "--set", "context.length=4", "--power", "1000000000", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert np.isclose(sum(s["probability"] for s in report["power"]["from_initial"]), 1.0)


def test_hit_and_committor_from_the_cli(capsys):
    toy = str(SCENARIOS / "waluigi.toml")
    assert main(["analyze", toy, "--set", "context.length=3", "--hit", "U U U", "--before", "F F F", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # from N N N the toy reaches F F F unless a U comes first: P(U U U before F F F) = 1 - P(F F F first)
    compiled = compile_scenario(validate(dict(table("waluigi"), context=dict(table("waluigi")["context"], length=3))))
    pc = build_chain(compiled)
    labels = pc.labels()
    Pm = pc.chain.P.toarray()
    path = ["N N N", "N N F", "N F F", "F F F"]
    first_f = np.prod([Pm[labels.index(a), labels.index(b)] for a, b in itertools.pairwise(path)])
    assert np.isclose(report["hit"]["probability_before"], 1 - first_f, rtol=1e-12)
    assert report["hit"]["expected_hitting_time"] == pytest.approx(report["expected_absorption_time"], rel=1e-12)
    assert main(["analyze", toy, "--hit", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--hit" in err and "revealed" in err
    assert main(["analyze", toy, "--before", "revealed"]) == 2


def test_prism_export_round_trip(tmp_path, capsys):
    export = tmp_path / "export"
    assert main(["analyze", str(SCENARIOS / "waluigi_soft.toml"), "--set", "context.length=4",
                 "--export", str(export), "--json"]) == 0
    capsys.readouterr()
    P_ = sp.load_npz(export / "transition.npz").tocsr()
    lines = (export / "chain.tra").read_text().splitlines()
    n, m = map(int, lines[0].split())
    rows = np.array([line.split() for line in lines[1:]], dtype=float)
    back = sp.csr_matrix((rows[:, 2], (rows[:, 0].astype(int), rows[:, 1].astype(int))), shape=(n, n))
    assert m == P_.nnz and abs(back - P_).max() == 0.0
    lab = (export / "chain.lab").read_text().splitlines()
    declared = dict(item.split("=") for item in lab[0].split())
    assert declared["0"] == '"init"' and '"revealed"' in declared.values() and '"waluigi_certain"' in declared.values()
    revealed = next(k for k, v in declared.items() if v == '"revealed"')
    labelled = {int(s.split(":")[0]) for s in lab[1:] if revealed in s.split(":")[1].split()}
    states = (export / "states.txt").read_text().splitlines()
    assert labelled == {states.index("U U U U")}
    assert any(s.startswith("0:") and "0" in s.split(":")[1].split() for s in lab[1:])  # init = state 0
    sta = (export / "chain.sta").read_text().splitlines()
    assert sta[0] == "(w1,w2,w3,w4)" and len(sta) == n + 1 and sta[1] == "0:(2,2,2,2)"


def test_metastable_exit_laws_of_the_soft_toy():
    data = copy.deepcopy(table("waluigi_soft"))
    data["context"]["length"] = 6
    compiled = compile_scenario(validate(data))
    report = analyze(compiled, tolerance=0.02)
    for m in report["metastable"]["classes"]:
        assert np.isclose(sum(e["probability"] for e in m["exits_to"]), 1.0)
        page = m["likely_state"].split()
        flipped = "U" if page[-1] == "F" else "F"
        assert m["exits_to"][0]["state"] == " ".join(page[1:] + [flipped])  # a single sticky page leaves by one token


def test_spectrum_of_page_chains_above_the_dense_limit():
    """Issue 10's cases: two constant premises printing 0 or 1 (floor 0.01, priors 1/2, k = 11)
    are symmetric under swapping the tokens, and the antisymmetric mode has |lambda_2| =
    0.9999999991; the shipped semiotic scenario's third eigenvalue is 0.9152 (dense spectrum)."""
    data = {"name": "swap", "vocabulary": {"tokens": ["0", "1"], "pad": "N"}, "context": {"length": 11},
            "run": {"steps": 5, "replicates": 2},
            "simulacra": {"zero": {"kind": "constant", "token": "0", "eps": 0.01},
                          "one": {"kind": "constant", "token": "1", "eps": 0.01}},
            "premises": {"zero": {"prior": 0.5, "cast": ["zero"]}, "one": {"prior": 0.5, "cast": ["one"]}}}
    pc = build_chain(compile_scenario(validate(data)))
    assert len(pc.chain.recurrent_classes[0]) == 2048
    assert np.isclose(np.abs(pc.chain.eigenvalues(2))[1], 0.9999999991, rtol=0, atol=1e-10)
    semiotic = build_chain(compile_scenario(validate(table("semiotic"))))
    assert np.allclose(np.abs(semiotic.chain.eigenvalues(3)), [1.0, 0.9683, 0.9152], atol=1e-4)


def test_sparse_block_gth_on_a_nearly_decomposable_page_chain():
    """Soft toy, eps = 1e-8, k = 11 (a closed class of 2,048 page-states, the waluigi basin left with
    probability ~1e-88 per step): the sparse block elimination (used above the dense limit, here
    forced) agrees with dense GTH to 1e-12, and its own estimate (two eliminations in different
    orders) says as much. benchmarks/bench_exact.py runs k = 12, 13 against a dense reference."""
    from ecology.exact.markov import DENSE_LIMIT, stationary_law

    _, members, block = soft_toy_recurrent_block(11, 1e-8)
    dense = stationary_law(block, "dense")
    sparse = stationary_law(block, "blocks")
    assert sparse.method.startswith("GTH (sparse") and dense.method == "GTH (dense)"
    assert np.abs(sparse.pi - dense.pi).sum() < 1e-12 and sparse.error < 1e-12
    assert len(members) <= DENSE_LIMIT < 2 * len(members)


def test_report_is_a_dataclass_with_the_json_keys(toy):
    """analyze returns a Report; to_json is the dict of its fields in order, optional parts left
    out until asked for; item access reads the same keys."""
    from ecology.exact.report import Report

    compiled, pc = toy_chain(toy, 3)
    report = analyze(compiled, chain=pc)
    assert isinstance(report, Report)
    keys = ["scenario", "n_states", "n_transitions", "initial_state", "depth", "closed_classes",
            "expected_absorption_time", "initial_in_closed_class", "stationary", "eigenvalues",
            "eigenvalues_complex", "criteria", "loops", "occupation", "implied_timescales", "conductance"]
    assert list(json.loads(report.to_json())) == keys == list(report.to_dict())
    assert "curves" not in report and report.get("curves") is None and report["n_states"] == report.n_states
    with pytest.raises(KeyError):
        report["power"]
    fuller = analyze(compiled, chain=pc, horizon=5, power=3, tolerance=0.1)
    assert list(fuller.to_dict()) == keys[:-2] + ["metastable", "horizon", "curves", "power"] + keys[-2:]
    assert json.loads(fuller.to_json(indent=2))["power"]["n"] == 3


def test_expected_time_falls_back_to_the_survival_series(monkeypatch):
    """When the linear solvers are out of reach (as for the soft toy's 65,535-unknown system at
    k = 16), analyze and run --exact report the survival series' value with its bounds, which
    contain the solved value, instead of no number; a number that cannot be bounded stays a note."""
    from ecology.exact import markov
    from ecology.exact import report as exact_module
    from ecology.exact.markov import ChainError
    from ecology.exact.report import criterion_figures

    soft = copy.deepcopy(table("waluigi_soft"))
    soft["context"]["length"] = 5
    s = validate(soft)
    solved = analyze(compile_scenario(s))["criteria"]["revealed"]["expected_hitting_time"]
    reference = criterion_figures(compile_scenario(s), 10_000)["revealed"]["expected_hitting_time"]
    assert np.isclose(solved, reference, rtol=1e-12)

    solve = MarkovChain.expected_hitting_times

    def out_of_reach(self, target, max_products=None):  # the one-state target U^5 of 'revealed' only
        if np.asarray(target).dtype == bool and np.sum(target) == 1:
            raise ChainError("a linear system too large for this test")
        return solve(self, target, max_products)

    monkeypatch.setattr(MarkovChain, "expected_hitting_times", out_of_reach)
    monkeypatch.setattr(markov, "LOG_SOLVE_LIMIT", 0)  # the log-space elimination out of reach too, as for 65,535
    hit = analyze(compile_scenario(s))["criteria"]["revealed"]
    lo, hi = hit["expected_hitting_time_bounds"]
    assert hit["note"] is None and lo <= solved * (1 + 1e-12) and solved <= hi * (1 + 1e-12)
    assert np.isclose(hit["expected_hitting_time"], solved, rtol=1e-10)
    figures = criterion_figures(compile_scenario(s), 10_000)["revealed"]
    assert np.isclose(figures["expected_hitting_time"], solved, rtol=1e-10)
    assert figures["expected_hitting_time_note"] is None
    monkeypatch.setattr(exact_module, "_hitting_time_by_series", lambda *args: None)
    figures = criterion_figures(compile_scenario(s), 10_000)["revealed"]
    assert figures["expected_hitting_time"] is None and "too large" in figures["expected_hitting_time_note"]


def test_the_exact_functions_take_a_path_a_scenario_or_its_compiled_form_and_name_anything_else():
    from ecology.exact.report import criterion_figures, occupation_figures
    from ecology.scenario import load

    path = SCENARIOS / "waluigi.toml"
    scenario = load(path)
    from_scenario, from_compiled = analyze(scenario), analyze(compile_scenario(scenario))
    assert from_scenario.to_dict() == from_compiled.to_dict() == analyze(str(path)).to_dict() == analyze(path).to_dict()
    assert criterion_figures(path) == criterion_figures(scenario)
    assert occupation_figures(str(path)) == occupation_figures(compile_scenario(scenario))
    for function, name in ((analyze, "ecology.exact.analyze"), (criterion_figures, "criterion_figures"),
                           (occupation_figures, "occupation_figures")):
        with pytest.raises(TypeError, match=f"{name}: the scenario must be a path .* got int"):
            function(42)


# -- a few leading eigenvalues by ARPACK (issue 25): against the dense spectrum ---------------------


def sparse_class(rng, n, degree=4):
    """An irreducible sparse stochastic matrix: a cycle through every state plus ``degree`` random
    transitions per row."""
    rows = np.repeat(np.arange(n), degree + 1)
    cols = np.concatenate([np.stack([(np.arange(n) + 1) % n, *rng.integers(0, n, (degree, n))]).T.ravel()])
    P = sp.csr_matrix((rng.random(len(rows)) + 0.05, (rows, cols)), shape=(n, n))
    return (sp.diags(1 / np.asarray(P.sum(axis=1)).ravel()) @ P).tocsr()


@pytest.fixture
def arpack_only(monkeypatch):
    """No dense fallback: an ARPACK result the two runs do not agree on raises instead."""
    from ecology.exact import markov

    monkeypatch.setattr(markov, "DENSE_EIGEN_LIMIT", 0)


def assert_leading_agree(ours, P, count, atol=1e-11):
    """The ``count`` leading moduli equal the dense ones; and every eigenvalue whose modulus is
    not tied with the one at the cut is a dense eigenvalue (ties at the cut may be cut differently)."""
    dense = np.linalg.eigvals(P.toarray())
    dense = dense[np.argsort(-np.abs(dense), kind="stable")]
    assert len(ours) == count
    assert np.allclose(np.abs(ours), np.abs(dense[:count]), rtol=0, atol=atol)
    assert np.all(np.diff(np.abs(ours)) <= atol)
    cut = np.abs(dense[count - 1])
    for v in ours[np.abs(np.abs(ours) - cut) > 1e-8]:
        assert np.min(np.abs(dense - v)) <= atol


@pytest.mark.parametrize("n, seed", [(400, 1), (700, 2)])
def test_arpack_leading_eigenvalues_agree_with_the_dense_spectrum(n, seed, arpack_only):
    from ecology.exact.markov import ARPACK_EIGEN_MIN, leading_eigenvalues

    assert n > ARPACK_EIGEN_MIN
    P = sparse_class(np.random.default_rng(seed), n)
    for count in (2, 6, 10):
        assert_leading_agree(leading_eigenvalues(P, count), P, count)
    assert_leading_agree(MarkovChain(P).eigenvalues(6), P, 6)


def test_arpack_on_a_periodic_class_finds_every_root_of_unity(arpack_only):
    """Period 4 over cyclic classes of 100 states: the spectrum is invariant under a quarter turn,
    so 1, i, -1, -i have modulus 1 and every other modulus comes four times."""
    rng, m, d = np.random.default_rng(3), 100, 4
    blocks = [[None] * d for _ in range(d)]
    for r in range(d):
        B = sp.random(m, m, density=0.05, random_state=rng, format="csr") + sp.eye(m, k=r % 2) * 0.1
        blocks[r][(r + 1) % d] = sp.diags(1 / np.asarray(B.sum(axis=1)).ravel()) @ B
    P = sp.bmat(blocks).tocsr()
    mc = MarkovChain(P)
    assert mc.periods == [4] and mc.n_states == 400
    ours = mc.eigenvalues(8)
    assert_leading_agree(ours, P, 8)
    assert np.allclose(np.abs(ours[:4]), 1.0, atol=1e-12)
    assert np.allclose(np.sort_complex(np.round(ours[:4], 10)), np.sort_complex(np.array([-1, -1j, 1j, 1])), atol=1e-10)


def test_arpack_on_a_degenerate_spectrum(arpack_only):
    """The product of a chain with itself (two independent copies, 21 x 21 = 441 states) has the
    eigenvalues lambda_i lambda_j: each lambda_i lambda_j with i != j twice, pairs of equal moduli
    and near-ties: every copy must be found."""
    rng = np.random.default_rng(4)
    A = rng.random((21, 21)) * (rng.random((21, 21)) < 0.3)
    A[np.arange(21), (np.arange(21) + 1) % 21] += 0.3
    A /= A.sum(axis=1, keepdims=True)
    P = sp.csr_matrix(np.kron(A, A))
    mc = MarkovChain(P)
    assert mc.is_irreducible
    ours = mc.eigenvalues(10)
    assert_leading_agree(ours, P, 10)
    second = np.sort(np.abs(np.linalg.eigvals(A)))[::-1][1]
    assert np.sum(np.abs(np.abs(ours) - second) < 1e-10) >= 2  # lambda_1 lambda_2 and lambda_2 lambda_1


def test_arpack_that_disagrees_falls_back_to_the_dense_spectrum_or_says_so(monkeypatch):
    from ecology.exact import markov
    from ecology.exact.markov import ChainError, leading_eigenvalues

    P = sparse_class(np.random.default_rng(5), 500)
    monkeypatch.setattr(markov, "EIGEN_AGREEMENT", -1.0)  # no two runs can agree
    assert_leading_agree(leading_eigenvalues(P, 6), P, 6, atol=1e-14)
    monkeypatch.setattr(markov, "DENSE_EIGEN_LIMIT", 400)
    with pytest.raises(ChainError, match="two ARPACK runs disagree .* 500 states .* dense spectrum is computed up to 400"):
        leading_eigenvalues(P, 6)
    monkeypatch.setattr(markov, "EIGEN_AGREEMENT", 1e-11)
    monkeypatch.setattr(markov, "EIGEN_RESIDUAL", -1.0)  # no pair verifies: ARPACK gives up
    with pytest.raises(ChainError, match="ARPACK could not verify the top 8 eigenvalues of a class of 500 states"):
        leading_eigenvalues(P, 6)


def test_page_chain_spectrum_by_arpack_is_the_dense_one_and_the_report_states_a_refusal(monkeypatch):
    """waluigi_soft at k = 10: a closed class of 1,024 page-states (above ARPACK_EIGEN_MIN) with a
    conjugate pair and a near-tie among its six leading eigenvalues; its report's spectrum and
    implied timescales come from ARPACK and agree with the dense spectrum. Refused eigenvalues
    leave the spectrum empty with a note, never a number."""
    from ecology.exact import markov

    soft = copy.deepcopy(table("waluigi_soft"))
    soft["context"]["length"] = 10
    compiled = compile_scenario(validate(soft))
    pc = build_chain(compiled)
    mc = pc.chain
    (members,) = mc.recurrent_classes
    assert len(members) == 1024 > markov.ARPACK_EIGEN_MIN
    monkeypatch.setattr(markov, "DENSE_EIGEN_LIMIT", 0)  # ARPACK's own answer: no dense fallback
    ours = mc.eigenvalues(6)
    P = mc.P
    dense = np.concatenate([np.linalg.eigvals(P[c][:, c].toarray()) for c in mc.communication_classes])
    dense = dense[np.argsort(-np.abs(dense), kind="stable")][:6]
    assert np.allclose(np.abs(ours), np.abs(dense), rtol=0, atol=1e-11)
    assert np.allclose(np.sort_complex(ours), np.sort_complex(dense), rtol=0, atol=1e-11)
    report = analyze(compiled, chain=pc)
    assert np.allclose(report.eigenvalues, np.abs(dense), atol=1e-11)
    assert report.implied_timescales["classes"][0][1] == pytest.approx(-1 / np.log(np.abs(dense[1])), rel=1e-9)
    monkeypatch.setattr(markov, "EIGEN_AGREEMENT", -1.0)
    monkeypatch.setattr(markov, "DENSE_EIGEN_LIMIT", 1000)
    refused = analyze(compiled, chain=pc)
    assert refused.eigenvalues == [] and "two ARPACK runs disagree" in refused.notes["spectrum"]


# -- hitting times above what the eliminations take (issue 25): the survival series, as the CLI ---------


def test_library_hitting_times_above_the_elimination_budgets_by_the_survival_series(monkeypatch):
    """20,340 unknowns (levels 1..339 of an exactly lumpable level chain, above KRYLOV_LIMIT) with the
    sparse block elimination over its budget: the library gives the survival series' bounds and
    midpoints instead of refusing, for every state at once; they bracket the birth–death closed form
    (mpmath, 50 digits), and the CLI's path (expected_entrance_time) gives the same time from its start."""
    mpmath = pytest.importorskip("mpmath")
    from ecology.exact import markov
    from ecology.exact.markov import KRYLOV_LIMIT, SERIES_RTOL, ChainError
    from ecology.exact.report import expected_entrance_time

    from .test_markov import birth_death_hitting_times, lumpable_levels

    levels, width = 340, 60
    up, down = np.full(levels, 0.1), np.full(levels, 0.5)
    up[-1], down[0] = 0.0, 0.0
    P, level = lumpable_levels(levels, width, up, down, np.random.default_rng(3))
    target = level == 0
    assert (~target).sum() > KRYLOV_LIMIT
    monkeypatch.setattr(markov, "FRONT_LIMIT", 1000)  # the block elimination refuses, as on a chain that fills in
    mc = MarkovChain(P)
    with pytest.raises(ChainError, match="not solved"):
        mc.expected_hitting_times(target, max_products=0)
    times = mc.hitting_times(target)
    reference = birth_death_hitting_times(up, down, mpmath)[level]
    assert times.method.startswith("survival series") and "not solved" in times.note
    assert np.all(times.lower <= reference * (1 + 1e-12)) and np.all(reference <= times.upper * (1 + 1e-12))
    assert np.all(times.upper - times.lower <= SERIES_RTOL * times.lower)
    assert np.allclose(times.value, reference, rtol=1e-10, atol=0)
    assert np.array_equal(mc.expected_hitting_times(target), times.value)
    assert np.all(times.value[target] == 0)
    x = int(np.flatnonzero(level == levels - 1)[0])
    cli = expected_entrance_time(mc, x, target, 2 * 10**10)
    lo, hi = cli["bounds"]
    assert cli["note"] is None and lo <= reference[x] * (1 + 1e-12) and reference[x] <= hi * (1 + 1e-12)
    assert cli["value"] == pytest.approx(times.value[x], rel=1e-10)
    with pytest.raises(ChainError, match="not solved; the survival series did not close to 1e-10 within 5 sparse"):
        mc.hitting_times(target, max_products=5)


def test_the_series_budget_is_the_clis():
    from ecology.core.budget import DEFAULT_MAX_WORK
    from ecology.exact.chain import PER_CALL
    from ecology.exact.markov import SERIES_PRODUCT_FLOOR, SERIES_WORK

    assert (SERIES_WORK, SERIES_PRODUCT_FLOOR) == (DEFAULT_MAX_WORK, PER_CALL)


def test_backward_series_bounds_with_a_state_that_may_miss_and_restricted_starts():
    """A walk absorbed at n - 1, plus a trap n every state can fall into: every time infinite (decided
    on the graph, no product); with the trap in the target, the bounds bracket the eliminated times;
    given starts, only what they reach is solved (nan elsewhere)."""
    n = 60
    P = np.zeros((n + 1, n + 1))
    P[0, 0], P[0, 1] = 0.5, 0.5
    for i in range(1, n - 1):
        P[i, i + 1], P[i, i - 1] = 0.55, 0.45
    P[n - 1, n - 1] = 1.0
    P[n, n], P[n - 2, n], P[n - 2, n - 1] = 1.0, 0.1, 0.45  # state n - 2 may fall into the trap n
    mc = MarkovChain(sp.csr_matrix(P))
    target = np.zeros(n + 1, bool)
    target[n - 1] = True
    exact = mc.expected_hitting_times(target)
    lo, hi, products = mc.expected_hitting_time_bounds(target, 10**6)  # every state can reach the trap
    assert products == 0 and np.all(np.isinf(exact[:n - 1])) and np.array_equal(lo, exact) and np.array_equal(hi, exact)
    target[n] = True  # now every state enters surely
    exact = mc.expected_hitting_times(target)
    lo, hi, _ = mc.expected_hitting_time_bounds(target, 10**6, starts=[n - 3])
    assert lo[n - 3] <= exact[n - 3] * (1 + 1e-12) <= hi[n - 3] * (1 + 1e-12) and hi[n - 3] - lo[n - 3] <= 1e-10 * lo[n - 3]
    assert lo[n - 1] == lo[n] == 0 and np.isfinite(lo[: n - 1]).all()
    line = MarkovChain(sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])))
    lo, hi, _ = line.expected_hitting_time_bounds([2], 100, starts=[1])  # P_1(T > t) = 2^-t: E_1[T] = 2
    assert lo[1] == pytest.approx(2.0, rel=1e-12) and hi[1] == pytest.approx(2.0, rel=1e-12) and lo[2] == 0
    assert np.isnan(lo[0]) and np.isnan(hi[0])  # state 0 is not reached from the start: not solved


def test_cheeger_lambda_2_by_lanczos_is_the_dense_one(monkeypatch):
    """The second eigenvalue of the additive reversibilisation of a 600-state class (above
    ARPACK_EIGEN_MIN: Lanczos twice) against LAPACK's dense eigvalsh, and the dense fallback when
    the two runs cannot agree."""
    from ecology.exact import markov
    from ecology.exact.quasi import cheeger_bounds

    P = sparse_class(np.random.default_rng(6), 600)
    pi = stationary(P)
    flow = P.multiply(pi[:, None]).toarray()
    sym = (flow + flow.T) / 2 / np.sqrt(pi)[:, None] / np.sqrt(pi)[None, :]
    dense = np.sort(np.linalg.eigvalsh(sym))[::-1][1]
    eigvalsh = np.linalg.eigvalsh
    with monkeypatch.context() as patched:
        patched.setattr(np.linalg, "eigvalsh", lambda *a: pytest.fail("the dense fallback was taken"))
        assert cheeger_bounds(P, np.arange(600), pi)["lambda_2"] == pytest.approx(dense, abs=1e-12)
    assert np.linalg.eigvalsh is eigvalsh
    monkeypatch.setattr(markov, "EIGEN_AGREEMENT", -1.0)
    assert cheeger_bounds(P, np.arange(600), pi)["lambda_2"] == pytest.approx(dense, abs=1e-13)
