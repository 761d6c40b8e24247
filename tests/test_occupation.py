"""Named page-state sets and the time spent in them: the exact occupation functions of the generic
chain against closed forms (two-state and birth–death chains) and dense linear algebra, the
scenario's [sets.NAME] tables (validation, one-line errors), both engines' occupation counts, and
the simulated estimates against the exact chain on page-states."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError, UserError
from ecology.exact.markov import MarkovChain
from ecology.exact.report import analyze, occupation_figures
from ecology.results import occupation_summary, simulate, summarize
from ecology.scenario import validate
from ecology.statistics import mean_interval, ratio_of_sums

from .engines import assert_engines_agree

# -- the generic chain ------------------------------------------------------------------------


def two_state(a: float, b: float) -> MarkovChain:
    return MarkovChain(np.array([[1 - a, a], [b, 1 - b]]))


@pytest.mark.parametrize("a, b", [(0.3, 0.1), (0.02, 0.9), (1e-6, 0.5)])
def test_two_state_stationary_occupation_is_the_closed_form(a, b):
    """A = {1}: pi(A) = a / (a + b), flux = a b / (a + b), stay 1 / b (geometric), time between
    entries 1 / a + 1 / b, excursion 1 / a, return time (a + b) / a."""
    (stay,) = two_state(a, b).occupation_in_stationarity([1])
    assert stay["mass"] == pytest.approx(a / (a + b), rel=1e-12)
    assert stay["flux"] == pytest.approx(a * b / (a + b), rel=1e-12)
    assert stay["flux_out"] == pytest.approx(stay["flux"], rel=1e-12)
    assert stay["mean_stay"] == pytest.approx(1 / b, rel=1e-12)
    assert stay["mean_time_between_entries"] == pytest.approx(1 / a + 1 / b, rel=1e-12)
    assert stay["mean_excursion"] == pytest.approx(1 / a, rel=1e-12)
    assert stay["mean_return_time"] == pytest.approx((a + b) / a, rel=1e-12)


@pytest.mark.parametrize("horizon", [0, 1, 7, 200])
def test_two_state_horizon_occupation_is_the_closed_form(horizon):
    """From state 0: P(X_t = 1) = pi_1 (1 - l^t), l = 1 - a - b, so E[occupation] =
    pi_1 (H + 1 - (1 - l^(H+1)) / (1 - l)); entries = sum_{t<H} P(X_t = 0) a; exits =
    sum_{t<H} P(X_t = 1) b."""
    a, b = 0.3, 0.1
    pi1, lam = a / (a + b), 1 - a - b
    inside = pi1 * (1 - lam ** np.arange(horizon + 1))
    occ = two_state(a, b).occupation_over_horizon(np.array([1.0, 0.0]), [1], horizon)
    assert occ["occupation"] == pytest.approx(pi1 * (horizon + 1 - (1 - lam ** (horizon + 1)) / (1 - lam)), rel=1e-12, abs=1e-15)
    assert occ["fraction"] == pytest.approx(occ["occupation"] / (horizon + 1), rel=1e-15)
    assert occ["entries"] == pytest.approx(float(np.sum((1 - inside[:horizon]) * a)), rel=1e-12, abs=1e-15)
    assert occ["exits"] == pytest.approx(float(np.sum(inside[:horizon] * b)), rel=1e-12, abs=1e-15)
    assert occ["visits"] == pytest.approx(occ["entries"], rel=1e-15)  # X_0 = 0 is outside A
    assert occ["exits"] == pytest.approx(occ["visits"] - inside[-1], rel=1e-9, abs=1e-12)


def birth_death(n: int, up: float, down: float) -> MarkovChain:
    """A lazy birth–death chain on 0 .. n-1: up with ``up``, down with ``down`` (reflected)."""
    P = np.zeros((n, n))
    for i in range(n):
        if i + 1 < n:
            P[i, i + 1] = up
        if i > 0:
            P[i, i - 1] = down
        P[i, i] = 1 - P[i].sum()
    return MarkovChain(P)


@pytest.mark.parametrize("m", [1, 5, 9])
def test_birth_death_upper_set_against_product_form_and_kac(m):
    """A = {m .. n-1}: pi_i proportional to (up/down)^i, the only way in is m-1 -> m, so flux =
    pi_{m-1} up and the mean stay is pi(A) / (pi_{m-1} up); the mean return time from pi on A is
    1 / pi(A) (Kac), checked against E[min{t >= 1 : X_t in A}] = 1 + sum_y P(x, y) h_A(y) from
    the expected hitting times (a linear solve)."""
    n, up, down = 10, 0.2, 0.35
    chain = birth_death(n, up, down)
    pi = (up / down) ** np.arange(n)
    pi /= pi.sum()
    A = np.arange(n) >= m
    (stay,) = chain.occupation_in_stationarity(A)
    assert stay["mass"] == pytest.approx(pi[A].sum(), rel=1e-12)
    assert stay["mean_stay"] == pytest.approx(pi[A].sum() / (pi[m - 1] * up), rel=1e-10)
    h = chain.expected_hitting_times(A)
    returns = 1 + chain.P.toarray()[A] @ h
    assert float(pi[A] @ returns / pi[A].sum()) == pytest.approx(stay["mean_return_time"], rel=1e-10)
    assert chain.long_run_fraction(np.eye(n)[0], A) == pytest.approx(pi[A].sum(), rel=1e-12)


def test_horizon_occupation_against_dense_powers():
    """Every horizon figure against the dense sums over P^t on a random 6-state chain, from a law."""
    rng = np.random.default_rng(3)
    P = rng.random((6, 6)) * (rng.random((6, 6)) < 0.6) + np.eye(6) * 0.05
    P /= P.sum(axis=1, keepdims=True)
    chain = MarkovChain(P)
    A = np.array([True, False, True, False, False, True])
    law = rng.random(6)
    law /= law.sum()
    H = 25
    d = [law @ np.linalg.matrix_power(P, t) for t in range(H + 1)]
    into, out_of = P[:, A].sum(axis=1) * ~A, P[:, ~A].sum(axis=1) * A
    occ = chain.occupation_over_horizon(law, A, H)
    assert occ["occupation"] == pytest.approx(sum(x[A].sum() for x in d), rel=1e-12)
    assert occ["entries"] == pytest.approx(sum(x @ into for x in d[:H]), rel=1e-12)
    assert occ["exits"] == pytest.approx(sum(x @ out_of for x in d[:H]), rel=1e-12)
    assert occ["exposure"] == pytest.approx(sum(x[A].sum() for x in d[:H]), rel=1e-12)
    assert occ["visits"] == pytest.approx(law[A].sum() + occ["entries"], rel=1e-12)
    # the Cesàro limit: the long-run fraction is pi(A) of this irreducible chain
    pi = np.linalg.matrix_power(P, 4096)[0]
    assert chain.long_run_fraction(law, A) == pytest.approx(pi[A].sum(), rel=1e-10)


def test_reducible_chain_reports_each_closed_class_and_the_weighted_limit():
    """0 -> {1, 2} (a loop left and re-entered) or 3 (absorbing, outside A): per class, and the
    long-run fraction P(end in the loop) pi_loop(A). A class inside A never leaves it (infinite
    stay); a class outside A is never visited (undefined)."""
    P = sp.csr_matrix(np.array([[0.0, 0.6, 0.0, 0.4],
                                [0.0, 0.5, 0.5, 0.0],
                                [0.0, 0.2, 0.8, 0.0],
                                [0.0, 0.0, 0.0, 1.0]]))
    chain = MarkovChain(P)
    A = np.array([False, True, False, False])
    loop, absorbing = chain.occupation_in_stationarity(A)
    assert loop["mass"] == pytest.approx(0.2 / 0.7) and loop["mean_stay"] == pytest.approx(2.0)
    assert absorbing["mass"] == 0 and absorbing["mean_stay"] is None and absorbing["mean_return_time"] is None
    assert absorbing["mean_time_between_entries"] == math.inf
    assert chain.long_run_fraction(np.eye(4)[0], A) == pytest.approx(0.6 * 0.2 / 0.7, rel=1e-12)
    (closed,) = MarkovChain(np.array([[0.5, 0.5], [0.0, 1.0]])).occupation_in_stationarity([1])
    assert closed["mass"] == 1 and closed["mean_stay"] == math.inf and closed["mean_excursion"] == 0


def test_ratio_of_sums_and_mean_interval():
    y, x = np.array([3.0, 5.0, 0.0, 4.0]), np.array([1.0, 2.0, 0.0, 1.0])
    rho, lo, hi = ratio_of_sums(y, x)
    assert rho == 3.0 and lo < rho < hi
    residual = y - rho * x
    assert hi - rho == pytest.approx(1.959963984540054 * math.sqrt(np.sum(residual**2) / 12) / x.mean())
    assert ratio_of_sums(y, np.zeros(4)) is None
    assert mean_interval(np.array([2.0, 2.0])) == (2.0, 2.0, 2.0)
    mean, lo, hi = mean_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and hi - mean == pytest.approx(1.959963984540054 / math.sqrt(3))


def test_occupation_summary_counts_censored_visits_as_exposure_only():
    """Three replicates over steps 0..4: in the set at 1-2 (one closed visit), at 0-4 (left and
    right censored: no entry, no exit), at 3-4 (open at the horizon)."""
    counts = {"occupied": np.array([2, 5, 2]), "entries": np.array([1, 0, 1]),
              "initial": np.array([False, True, False]), "final": np.array([False, True, True])}
    out = occupation_summary(counts, 4)
    assert (out["entries"], out["exits"], out["open_at_start"], out["open_at_horizon"]) == (2, 1, 1, 2)
    assert out["visits"] == pytest.approx(1.0)
    assert out["mean_stay"] == pytest.approx((2 + 4 + 1) / 1)  # exposure of the steps 0..3 per exit
    assert out["mean_time_between_entries"] == pytest.approx(12 / 2)
    assert out["fraction"] == pytest.approx(9 / 15)
    never = occupation_summary({"occupied": np.zeros(2, int), "entries": np.zeros(2, int),
                                "initial": np.zeros(2, bool), "final": np.zeros(2, bool)}, 4)
    assert never["mean_stay"] is None and never["mean_stay_note"] == "no visit ended within the horizon"
    assert never["mean_time_between_entries"] is None


# -- scenarios: [sets.NAME] -------------------------------------------------------------------


def coin(sets: dict | None = None, absorption: dict | None = None, **run) -> dict:
    """An iid coin (a 0.7, b 0.3) seen through a window of k = 3 under fifo: the page-states
    are the windows; "ends in b" has pi = 0.3 and geometric stays of mean 1 / 0.7 once full."""
    return {
        "name": "coin", "vocabulary": {"tokens": ["a", "b"]}, "context": {"length": 3},
        "run": {"steps": 60, "replicates": 3000, "seed": 11, "engine": "numpy", **run},
        "simulacra": {"coin": {"kind": "iid", "probs": {"a": 0.7, "b": 0.3}}},
        "premises": {"coin": {"prior": 1.0, "cast": ["coin"]}},
        "absorption": absorption if absorption is not None else {"bb": {"window_only": ["b"]}},
        "sets": sets if sets is not None else {"ends_b": {"windows": ["* * b"]}, "young": {"windows": ["N * *"]},
                                               "alternating": {"windows": ["a b a", "b a b"]}, "all_b": {"criterion": "bb"},
                                               "double": {"repeats": {"period": 1, "copies": 2}},
                                               "b_or_young": {"any_of": ["ends_b", "young"]}, "grown": {"not": "young"}},
    }


def test_window_patterns_match_tokens_pads_and_wildcards():
    compiled = compile_scenario(validate(coin()))
    pattern = {s.name: s for s in compiled.sets}
    a, b, pad = 0, 1, 2
    windows = np.array([[pad, pad, pad], [pad, pad, b], [pad, a, b], [a, b, a], [b, b, b], [a, a, a]])
    assert pattern["ends_b"].holds(windows, None).tolist() == [False, True, True, False, True, False]
    assert pattern["young"].holds(windows, None).tolist() == [True, True, True, False, False, False]
    assert pattern["alternating"].holds(windows, None).tolist() == [False, False, False, True, False, False]
    assert pattern["all_b"].holds(windows, None).tolist() == [False, False, False, False, True, False]
    assert pattern["b_or_young"].holds(windows, None).tolist() == [True, True, True, False, True, False]
    assert pattern["grown"].holds(windows, None).tolist() == [False, False, False, True, True, True]
    assert [c.name for c in compiled.tracked] == ["bb", "ends_b", "young", "alternating", "all_b", "double", "b_or_young",
                                                  "grown"]


@pytest.mark.parametrize("sets, path, words", [
    ({"s": {"windows": ["* b"]}}, "sets.s.windows[0]", "has 2 entries, the window context.length = 3"),
    ({"s": {"windows": ["* * z"]}}, "sets.s.windows[0]", "unknown token 'z'"),
    ({"s": {"windows": []}}, "sets.s.windows", "at least 1"),
    ({"bb": {"windows": ["* * b"]}}, "sets.bb", "an absorption criterion is also named 'bb'"),
    ({"s": {"criterion": "nothing"}}, "sets.s.criterion", "unknown absorption criterion 'nothing'"),
    ({"s": {"criterion": "loop"}}, "sets.s.criterion", "is 'periodic'"),
    ({"s": {"periodic": 2}}, "sets.s.periodic", "unknown key"),
    ({"s": {}}, "sets.s", "give exactly one of 'criterion', 'any_of', 'not', 'window_only'"),
    ({"s": {"criterion": "bb", "windows": ["* * b"]}}, "sets.s", "give exactly one of"),
    ({"s": {"window_only": ["z"]}}, "sets.s.window_only[0]", "unknown token 'z'"),
    ({"s": {"population": "coin"}}, "sets.s", "'population' needs 'above'"),
    ({"s": {"any_of": ["bb", "later"]}, "later": {"windows": ["* * b"]}}, "sets.s.any_of[1]",
     "unknown criterion or set 'later'; a combination names absorption criteria ['bb', 'loop'] or sets declared before it []"),
    ({"s": {"not": "loop"}}, "sets.s.not", "is 'periodic'"),
    ({"s": {"any_of": []}}, "sets.s.any_of", "at least 1"),
    ({"s": {"not": "bb", "any_of": ["bb"]}}, "sets.s", "give exactly one of 'criterion', 'any_of', 'not'"),
])
def test_bad_sets_are_one_line_errors_naming_the_field(sets, path, words):
    with pytest.raises(ScenarioError) as raised:
        validate(coin(sets, {"bb": {"window_only": ["b"]}, "loop": {"periodic": 2}}))
    line = str(raised.value)
    assert "\n" not in line and raised.value.path == path and words in line, line


def test_bad_set_through_the_cli_is_one_line_and_status_2(tmp_path, capsys):
    import tomli_w

    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(coin({"s": {"windows": ["* * q"]}})))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: sets.s.windows[0]: unknown token 'q'"), err


# -- engines, simulation against the exact chain ----------------------------------------------


@pytest.mark.parametrize("context", [{"length": 3}, {"length": 3, "deletion": "block", "block": 2},
                                     {"length": 3, "deletion": "none"}])
def test_engines_count_the_same_occupation(context):
    """Sliding, re-reading and growing windows: identical occupation counts (assert_same)."""
    data = coin(steps=25, replicates=64)
    data["context"] = context
    model = assert_engines_agree(data)
    occupied = model.engine.occupation.occupied
    assert occupied.shape == (8, 64) and occupied.sum() > 0
    counts = model.engine.occupation  # a set and its complement share every step
    assert np.array_equal(counts.occupied[7] + counts.occupied[2], np.full(64, 26))


def test_coin_exact_occupation_is_the_closed_form():
    """Once the window is full, "ends in b" has pi = 0.3, stays of mean 1 / 0.7 and entries at
    rate 0.7 * 0.3 per step (the chain is the coin itself)."""
    report = analyze(compile_scenario(validate(coin())))
    ends_b = report.occupation["ends_b"]
    (cls,) = ends_b["classes"]
    assert cls["mass"] == pytest.approx(0.3, rel=1e-12)
    assert cls["mean_stay"] == pytest.approx(1 / 0.7, rel=1e-12)
    assert cls["mean_time_between_entries"] == pytest.approx(1 / 0.21, rel=1e-12)
    assert cls["mean_return_time"] == pytest.approx(1 / 0.3, rel=1e-12)
    assert ends_b["long_run_fraction"] == pytest.approx(0.3, rel=1e-12)
    # from 'N N N': P(X_t ends in b) = 0.3 for every t >= 1, so the occupation over 0..60 is 18
    assert ends_b["occupation"] == pytest.approx(0.3 * 60, rel=1e-12)
    young = report.occupation["young"]  # transient: windows with a pad are the steps 0, 1, 2
    assert young["occupation"] == pytest.approx(3.0) and young["long_run_fraction"] == 0
    assert young["classes"][0]["note"].startswith("never visited")


def test_simulated_occupation_agrees_with_the_exact_chain_within_its_intervals():
    """3000 replicates x 60 steps (numpy engine): every simulated figure is within 3 of its
    standard errors (the 95% half-width / 1.96) of the exact finite-horizon value (fraction,
    visits, exposure / exits, N / entries). Three, not 1.96: some 20 figures are compared, and
    at 95% one of them is expected outside (at this seed 'alternating' visits is 2.4 se away;
    seeds 12 and 13 have every figure within 1.3 se)."""
    scenario = validate(coin())
    summary = summarize(simulate(scenario))
    exact = occupation_figures(compile_scenario(scenario))
    checked = 0
    for name, sim in summary["occupation"].items():
        ex = exact[name]
        for key, exact_key in (("fraction", "fraction"), ("visits", "visits"), ("mean_stay", "mean_stay_within"),
                               ("mean_time_between_entries", "mean_time_between_entries_within")):
            if sim[key] is None:
                assert ex[exact_key] is None or key == "mean_stay", (name, key)
                continue
            if sim[f"{key}_lo"] == sim[f"{key}_hi"]:  # every replicate alike (the pads' steps): exact
                assert sim[key] == pytest.approx(ex[exact_key], rel=1e-12), (name, key)
            else:
                se = (sim[f"{key}_hi"] - sim[f"{key}_lo"]) / (2 * 1.959963984540054)
                assert abs(sim[key] - ex[exact_key]) <= 3 * se, (name, key, sim[key], ex[exact_key])
            checked += 1
    assert checked >= 18


def test_analyze_occupation_flag_prints_and_writes_the_report(tmp_path, capsys):
    import tomli_w

    path = tmp_path / "coin.toml"
    path.write_text(tomli_w.dumps(coin()))
    assert main(["analyze", str(path), "--occupation", "ends_b,class:0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["occupation"]) == ["ends_b", "class:0"]
    assert report["occupation"]["class:0"]["long_run_fraction"] == pytest.approx(1.0)
    assert main(["analyze", str(path), "--hit", "alternating", "--before", "bb"]) == 0
    out = capsys.readouterr().out
    assert "occupation 'ends_b' (7 page-states) over t = 0-60: expected steps in it 18 (fraction 0.295082)" in out
    assert "mean stay per visit 1.42857 steps, mean time between entries 4.7619" in out
    assert "hit 'alternating'" in out
    assert main(["analyze", str(path), "--occupation", "nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--occupation 'nothing': 'nothing' is neither a criterion or set" in err


def test_run_writes_and_prints_the_occupation(tmp_path, capsys):
    import tomli_w

    path = tmp_path / "coin.toml"
    path.write_text(tomli_w.dumps(coin(replicates=200)))
    out_dir = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out_dir), "--exact"]) == 0
    printed = capsys.readouterr().out
    assert "occupation 'ends_b' over steps 0-60: fraction of steps" in printed
    summary = json.loads((out_dir / "summary.json").read_text())
    assert set(summary["occupation"]) == {"bb", "ends_b", "young", "alternating", "all_b", "double", "b_or_young", "grown"}
    resolved = (out_dir / "scenario.toml").read_text()
    assert 'not = "young"' in resolved and validate(__import__("tomllib").loads(resolved)).sets["grown"].not_ == "young"
    assert summary["occupation"]["ends_b"]["exact"]["long_run_fraction"] == pytest.approx(0.3)
    header = (out_dir / "replicates.csv").read_text().splitlines()[0].split(",")
    assert "occupied_steps_ends_b" in header and "entries_ends_b" in header
    with pytest.raises(UserError):
        analyze(compile_scenario(validate(coin())), occupation=["a a z"])


def test_an_untrusted_stationary_law_withholds_the_stationary_figures():
    """A law whose error estimate is above the trusted bound gives no stationary digits: the class's
    figures and the long-run fraction are null with a note; the horizon figures stay."""
    from ecology.exact.chain import build_chain
    from ecology.exact.markov import StationaryLaw
    from ecology.exact.report import occupation_report

    compiled = compile_scenario(validate(coin()))
    pc = build_chain(compiled)
    (law,) = pc.chain.stationary_laws
    pc.chain.__dict__["stationary_laws"] = [StationaryLaw(law.pi, law.method, 1e-3, "test")]
    mask = compiled.sets[0].holds(pc.windows, pc.population_amplitudes)
    out = occupation_report(pc, mask, 60, 10**9, "--horizon")
    (cls,) = out["classes"]
    assert cls["mass"] is None and cls["mean_stay"] is None and out["long_run_fraction"] is None
    assert cls["note"] == "not computed: the class's stationary law is not trusted (L1 error estimate 1.0e-03)"
    assert out["occupation"] == pytest.approx(18.0, rel=1e-12)
