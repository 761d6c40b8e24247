"""Robust reports (issue 24): an overflow or a failed solve is one quantity's note, never the end
of the report; no third-party warning reaches stderr; birth–death and banded classes solved to
dense-GTH accuracy per component, with an error estimate that is not below the true error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp
import tomli_w

from ecology.cli import main, power_of_ten_text
from ecology.exact import markov
from ecology.exact.markov import ChainError, MarkovChain, birth_death_law, stationary_law
from ecology.exact.report import analyze

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "scenarios" / "babygpt_published.toml"
TABLE = REPO / "scenarios" / "models" / "babygpt_published.csv"


def published_chain(temperature: float) -> mpmath.matrix:
    """The 8 full windows of the published babyGPT table (GPTasMC, 1000 epochs) tempered, in
    mpmath: ``P(w -> w[1:] t) = softmax(logits(w) / T)_t``, window ``i`` in binary."""
    rows = {}
    for line in TABLE.read_text().splitlines()[1:]:
        context, zero, one = line.split(",")
        rows[int(context.replace(" ", ""), 2)] = (mpmath.mpf(zero), mpmath.mpf(one))
    P = mpmath.zeros(8, 8)
    for i, (zero, one) in rows.items():
        a, b = zero / temperature, one / temperature
        top = max(a, b)
        ea, eb = mpmath.exp(a - top), mpmath.exp(b - top)
        P[i, (2 * i) % 8], P[i, (2 * i) % 8 + 1] = ea / (ea + eb), eb / (ea + eb)
    return P


def mp_passage_time(P: mpmath.matrix, start: int, target: int) -> mpmath.mpf:
    """``E_start[time to hit target]`` from ``(I - P_SS) h = 1`` in mpmath (the digits must hold 1 - 1e-460)."""
    rest = [i for i in range(P.rows) if i != target]
    A = mpmath.matrix(len(rest), len(rest))
    for a, i in enumerate(rest):
        for b, j in enumerate(rest):
            A[a, b] = (1 if a == b else 0) - P[i, j]
    return mpmath.lu_solve(A, mpmath.matrix([1] * len(rest)))[rest.index(start)]


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")
    return json.loads(text, parse_constant=refuse)


# --- 1. an overflow never aborts a report ----------------------------------------------------------


def test_the_published_table_at_t_001_reports_its_passage_times_by_their_log10(capsys):
    """The longest mean first passage, 1 0 1 -> 0 0 0, is 6.2595e451 steps (mpmath, 1200 digits):
    beyond a double, printed as 6.3e451 with log10 451.797, every other quantity reported."""
    with mpmath.workdps(1200):
        truth = mpmath.log10(mp_passage_time(published_chain(mpmath.mpf("0.01")), 0b101, 0b000))
    assert abs(truth - mpmath.mpf("451.79654")) < 1e-4
    assert main(["analyze", str(PUBLISHED), "--set", "sampling.temperature=0.01", "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    assert "notes" not in report  # nothing failed
    closed = report["closed_classes"][0]
    assert closed["max_mean_first_passage"] is None and closed["max_mean_first_passage_overflow"] == "above 1.8e308"
    assert abs(closed["max_mean_first_passage_log10"] - float(truth)) <= 5e-4
    with mpmath.workdps(1200):  # Kemeny's constant sum_j pi_j M[0, j], pi_j = 1 / E_j[return time] (Kac)
        P = published_chain(mpmath.mpf("0.01"))
        back = [1 + mpmath.fsum(P[j, k] * mp_passage_time(P, k, j) for k in range(8) if k != j) for j in range(8)]
        kemeny = mpmath.fsum(mp_passage_time(P, 0, j) / back[j] for j in range(1, 8))
    assert closed["kemeny_constant"] == pytest.approx(float(kemeny), rel=1e-12)  # 5.80272396773181
    for top in closed["stationary_top"]:  # the law, per component, against Kac's 1 / E_j[return time]
        truth = 1 / back[int(top["state"].replace(" ", ""), 2)]
        assert top["mass"] == 0.0 if truth < 1e-308 else abs(top["mass"] / truth - 1) < 1e-14
    assert closed["kemeny_constant_method"].startswith("log space")
    assert closed["stationary_accuracy"]["trusted"]
    zeros = report["criteria"]["zeros"]
    assert zeros["probability"] == 1.0 and zeros["expected_hitting_time_overflow"] == "above 1.8e308"
    assert zeros["probability_within"] == 0.0 and "below the float range" in zeros["probability_within_note"]
    stay = report["occupation"]["zeros"]["classes"][0]
    assert stay["mass"] is None and "below the float range" in stay["note"]  # an underflow, never "never visited"
    assert report["occupation"]["zeros"]["long_run_fraction"] is None
    assert main(["analyze", str(PUBLISHED), "--set", "sampling.temperature=0.01"]) == 0
    out = capsys.readouterr().out
    assert "longest mean first passage between two of its states 6.3e451 (log10 451.797, by the log-space elimination)" in out
    assert "expected steps to reach it 6.3e451 (log10 451.797" in out
    assert "P(within 200 steps) below 1e-308" in out
    assert "never visited" not in out


def test_the_published_table_at_t_0001_loses_its_underflowed_transitions_and_still_reports(capsys):
    """At T = 0.001 the minority tokens' probabilities (about e^-5000) are below the float range:
    the chain has 4 page-states and the zeros are unreachable in it, exit 0, and the report's
    ``chain`` note says that 3 transitions of positive probability were lost to underflow."""
    assert main(["analyze", str(PUBLISHED), "--set", "sampling.temperature=0.001", "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    assert report["n_states"] == 4 and set(report["notes"]) == {"chain"}  # said, not hidden
    assert report["notes"]["chain"].startswith("3 transitions have positive probabilities below the float range")
    assert report["criteria"]["zeros"]["probability"] == 0.0 and report["criteria"]["zeros"]["expected_hitting_time"] is None


def test_kemeny_in_log_space_equals_the_float_one_and_the_spectral_formula(monkeypatch):
    """At T = 1 nothing overflows: the log-space Kemeny constant (forced by refusing the float
    passage matrix) equals the float one and ``sum_{lambda != 1} 1 / (1 - lambda)`` (numpy's eigenvalues)."""
    closed = analyze(str(PUBLISHED)).closed_classes[0]
    P = np.array([[float(x) for x in row] for row in published_chain(mpmath.mpf(1)).tolist()])
    values = np.linalg.eigvals(P)
    spectral = float(np.real(np.sum(1 / (1 - np.delete(values, np.argmin(np.abs(values - 1)))))))
    assert closed["kemeny_constant"] == pytest.approx(spectral, rel=1e-10)

    def refuse(self):
        raise ChainError("forced")
    monkeypatch.setattr(MarkovChain, "mean_first_passage_times", refuse)
    logged = analyze(str(PUBLISHED)).closed_classes[0]
    assert logged["kemeny_constant_method"].startswith("log space")
    assert logged["kemeny_constant"] == pytest.approx(closed["kemeny_constant"], rel=1e-12)
    assert logged["max_mean_first_passage"] == pytest.approx(closed["max_mean_first_passage"], rel=1e-10)
    assert "max_mean_first_passage_overflow" not in logged  # within range: a value, not an overflow


def test_a_kemeny_constant_beyond_a_double_is_an_overflow_with_its_log10(capsys):
    """Two states swapping with probability 1e-320 (subnormal: 9.99988671826831e-321 as a double):
    K = 1 / (p + q) = 5.00006e319 and M = 1 / p = 1.00001e320, neither a double; both by their log10."""
    from ecology.cli import expected_time
    from ecology.exact.report import _passage_report

    p = 1e-320
    figures = _passage_report(MarkovChain(np.array([[1.0, p], [p, 1.0]])), np.arange(2))
    assert figures["kemeny_constant"] is None and figures["kemeny_constant_overflow"] == "above 1.8e308"
    assert figures["kemeny_constant_log10"] == pytest.approx(float(mpmath.log10(1 / (2 * mpmath.mpf(p)))), abs=1e-3)
    assert figures["max_mean_first_passage_log10"] == pytest.approx(float(mpmath.log10(1 / mpmath.mpf(p))), abs=1e-3)
    assert expected_time(figures, "kemeny_constant") == "5.0e319 (log10 319.699, by the log-space elimination)"


def test_at_t_1_the_published_table_matches_mpmath():
    report = analyze(str(PUBLISHED))
    with mpmath.workdps(60):
        truth = mp_passage_time(published_chain(mpmath.mpf(1)), 0b111, 0b000)
    assert report["criteria"]["zeros"]["expected_hitting_time"] == pytest.approx(float(truth), rel=1e-12)


def test_a_quantity_that_fails_is_a_note_and_the_others_are_reported(monkeypatch, capsys):
    """A ChainError in the spectrum, the loops or a criterion's hitting figures: the report keeps
    every other quantity, ``notes`` names what failed and why, and the text report prints it."""
    def refuse(*args, **kwargs):
        raise ChainError("ARPACK could not verify the top 6 eigenvalues of a class of 8 states")
    monkeypatch.setattr(MarkovChain, "eigenvalues", refuse)
    monkeypatch.setattr("ecology.exact.report.loops_report", refuse)
    monkeypatch.setattr("ecology.exact.report.hitting_report", refuse)
    report = analyze(str(PUBLISHED), hit="zeros")
    assert report.eigenvalues == [] and report.loops == {"count": None, "cycles": []}
    # the implied timescales are read off the same spectrum, so they fail with it
    assert set(report.notes) == {"spectrum", "implied timescales", "loops", "criterion 'zeros'", "hit"}
    assert report.notes["spectrum"] == "not computed: ARPACK could not verify the top 6 eigenvalues of a class of 8 states"
    assert report.criteria["zeros"]["probability"] is None and report.criteria["zeros"]["note"].startswith("not computed")
    assert report.closed_classes[0]["stationary_accuracy"]["trusted"]  # the rest is there
    assert report.occupation["zeros"]["long_run_fraction"] == pytest.approx(6.19264e-06, rel=1e-5)
    strict_json(report.to_json())
    assert main(["analyze", str(PUBLISHED), "--hit", "zeros"]) == 0
    out = capsys.readouterr().out
    assert "largest eigenvalue moduli: not computed (see the notes)" in out
    assert "loops: not computed (see the notes)" in out
    assert "note: spectrum: not computed: ARPACK could not verify" in out
    assert "criterion 'zeros' (1 page-states): not computed: ARPACK" in out


def test_a_stationary_law_that_fails_leaves_the_hitting_figures(monkeypatch, capsys):
    def refuse(self):
        raise ChainError("the sparse block elimination would exceed its budget")
    monkeypatch.setattr(MarkovChain, "stationary_laws", property(refuse))
    report = analyze(str(PUBLISHED))
    assert report.closed_classes[0]["stationary_accuracy"]["method"] is None
    assert report.closed_classes[0]["stationary_top"] == []
    assert {"stationary laws", "loops", "occupation 'zeros'"} <= set(report.notes)
    assert report.criteria["zeros"]["expected_hitting_time"] == pytest.approx(162997, rel=1e-5)
    assert main(["analyze", str(PUBLISHED)]) == 0
    out = capsys.readouterr().out
    assert "stationary law not computed (see the notes)" in out and "note: stationary laws: not computed" in out


def test_analyze_out_writes_its_report_and_figures_when_quantities_fail(monkeypatch, tmp_path, capsys):
    """No probability of ending in a class and no spectrum: report.json (strict JSON) and the figures are written."""
    def refuse(*args, **kwargs):
        raise ChainError("the log-space elimination is done for up to 400 unknowns, not 401")
    monkeypatch.setattr(MarkovChain, "eigenvalues", refuse)
    monkeypatch.setattr(MarkovChain, "absorption_probabilities", refuse)
    assert main(["analyze", str(PUBLISHED), "--out", str(tmp_path / "a")]) == 0
    assert "probability of ending here not computed (see the notes)" in capsys.readouterr().out
    report = strict_json((tmp_path / "a" / "report.json").read_text())
    assert report["closed_classes"][0]["probability"] is None and report["eigenvalues"] == []
    assert set(report["notes"]) >= {"absorption probabilities", "spectrum"}
    assert sorted(p.suffix for p in (tmp_path / "a").iterdir() if p.suffix == ".png")


def test_a_sweep_row_keeps_its_other_exact_cells_when_quantities_fail(monkeypatch):
    """sweep --exact's row: no loop or occupation cells, an empty class probability; the rest is written."""
    from ecology.scenario import load
    from ecology.sweep.points import exact_figures

    def refuse(*args, **kwargs):
        raise ChainError("forced")
    monkeypatch.setattr("ecology.exact.report.loops_report", refuse)
    monkeypatch.setattr("ecology.exact.report.occupation_report", refuse)
    monkeypatch.setattr(MarkovChain, "absorption_probabilities", refuse)
    row = exact_figures(load(PUBLISHED), 1000)
    assert "exact_note" not in row and "exact_loops" not in row and np.isnan(row["exact_class0_probability"])
    assert row["zeros_exact_expected_hitting_time"] == pytest.approx(162997, rel=1e-5)


def test_hitting_probabilities_whose_pivots_underflow_are_solved_in_log_space():
    """The float elimination of this chain meets a pivot below 1e-308 (the escape probabilities of
    {2, 3, 4, 5} multiply below the float range); the log-space elimination answers, and agrees with
    an 800-digit mpmath solve to 1e-12 relative."""
    P = np.zeros((6, 6))
    P[0, 0] = P[1, 1] = 1
    P[2, [1, 2, 4]] = [1e-200, 1e-250, 1e-170]
    P[3, [0, 2, 5]] = [1e-250, 1e-170, 1]
    P[4, [1, 2, 5]] = [1e-250, 1e-250, 1]
    P[5, [3, 4, 5]] = [1e-250, 1e-170, 1]
    P /= P.sum(axis=1, keepdims=True)
    with pytest.raises(ChainError, match="singular"):
        markov.solve_leaving(sp.csr_matrix(P), np.arange(2, 6), P[2:, 0])
    q = MarkovChain(P).hitting_probabilities([0])
    with mpmath.workdps(800):
        A = mpmath.matrix(4, 4)
        for a, i in enumerate(range(2, 6)):
            for b, j in enumerate(range(2, 6)):
                A[a, b] = -mpmath.mpf(P[i, j]) if a != b else mpmath.fsum(mpmath.mpf(P[i, j]) for j in range(6) if j != i)
        truth = mpmath.lu_solve(A, mpmath.matrix([mpmath.mpf(P[i, 0]) for i in range(2, 6)]))
        assert all(abs(mpmath.mpf(q[i]) / truth[i - 2] - 1) < 1e-12 for i in range(2, 6))


def test_a_stationary_law_whose_censored_escapes_underflow_is_computed_in_log_space():
    """The iid coin P(H) = 1e-300 on a window of 3: censoring multiplies escape probabilities to
    1e-600, a pivot 0 in floating point; the log-space GTH answers: pi(w) = p^#H (1-p)^#T exactly."""
    p = 1e-300
    n = 8
    P = np.zeros((n, n))
    for w in range(n):
        P[w, (2 * w) % n + 1], P[w, (2 * w) % n] = p, 1 - p  # append H (bit 1) or T (bit 0)
    law = stationary_law(sp.csr_matrix(P), "dense")
    with mpmath.workdps(50):
        truth = [mpmath.mpf(p) ** bin(w).count("1") * mpmath.mpf(1 - p) ** (3 - bin(w).count("1")) for w in range(n)]
    for w in range(n):
        if truth[w] > 1e-308:  # 1e-600 and 1e-900 are below the float range: 0
            assert abs(law.pi[w] / float(truth[w]) - 1) < 1e-12
        else:
            assert law.pi[w] == 0.0
    assert law.trusted


def test_power_of_ten_text_gives_the_digits_its_log10_defends():
    assert power_of_ten_text(451.797) == "6.3e451"
    assert power_of_ten_text(330.0) == "1e330"
    assert power_of_ten_text(320.9) == "8e320"
    assert power_of_ten_text(308.9999) == "1.00e309"  # 9.9977 to 3 digits is 10.0: carried into the exponent


# --- 2. no third-party warning on stderr -----------------------------------------------------------


def coin(p: float, k: int) -> dict:
    return {"name": "edge", "vocabulary": {"tokens": ["H", "T"], "pad": "N"},
            "context": {"length": k, "deletion": "fifo", "prompt": []},
            "run": {"steps": 20, "replicates": 8, "seed": 1},
            "simulacra": {"a": {"kind": "coin", "heads": "H", "tails": "T", "p": p}},
            "premises": {"a": {"prior": 1.0, "cast": ["a"]}}, "absorption": {"all_h": {"window_only": ["H"]}}}


@pytest.mark.parametrize("case", ["published T=0.01", "coin 1e-300", "soft floors 1e-300, k=9", "coin 1e-3, k=12",
                                  "run --exact", "sweep --exact"])
def test_extreme_cases_print_no_warning_and_no_traceback(tmp_path, case):
    """``python -W error``: any RuntimeWarning (overflow, divide, invalid), SparseEfficiencyWarning,
    LinAlgWarning or ARPACK message would be an exception, hence a traceback and a non-zero exit."""
    (tmp_path / "c.toml").write_text(tomli_w.dumps(coin(1e-300, 3)))
    (tmp_path / "k.toml").write_text(tomli_w.dumps(coin(1e-3, 12)))  # 8,191 page-states: sparse solvers, ARPACK
    soft = ["--set", "simulacra.luigi.eps=1e-300", "--set", "simulacra.waluigi.eps=1e-300", "--set", "context.length=9"]
    command = {
        "published T=0.01": ["analyze", str(PUBLISHED), "--set", "sampling.temperature=0.01", "--tolerance", "1e-3",
                             "--hit", "zeros", "--horizon", "20", "--power", "5"],
        "coin 1e-300": ["analyze", str(tmp_path / "c.toml"), "--tolerance", "1e-5", "--json"],
        "soft floors 1e-300, k=9": ["analyze", str(REPO / "scenarios" / "waluigi_soft.toml"), *soft, "--tolerance", "1e-5"],
        "coin 1e-3, k=12": ["analyze", str(tmp_path / "k.toml"), "--tolerance", "1e-4", "--horizon", "20", "--json"],
        "run --exact": ["run", str(tmp_path / "c.toml"), "--exact", "--json"],
        "sweep --exact": ["sweep", str(PUBLISHED), "--grid", "sampling.temperature=0.01,0.001", "--exact", "--out",
                          str(tmp_path / "s"), "--replicates", "4", "--steps", "10", "--workers", "1"],
    }[case]
    done = subprocess.run([sys.executable, "-W", "error", "-m", "ecology", *command], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr


# --- 3. birth–death and banded classes to dense-GTH accuracy -------------------------------------------


def birth_death(up: np.ndarray, down: np.ndarray) -> sp.csr_matrix:
    n = len(up) + 1
    P = sp.diags([up, down], [1, -1], shape=(n, n)).tocsr()
    return (P + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())).tocsr()


def mp_birth_death(P: sp.csr_matrix) -> np.ndarray:
    """The exact law of the given float matrix (detailed balance in 40-digit mpmath, in log space)."""
    with mpmath.workdps(40):
        logs = [mpmath.mpf(0)]
        for i in range(P.shape[0] - 1):
            logs.append(logs[-1] + mpmath.log(mpmath.mpf(P[i, i + 1])) - mpmath.log(mpmath.mpf(P[i + 1, i])))
        top = max(logs)
        weights = [mpmath.exp(x - top) for x in logs]
        total = mpmath.fsum(weights)
        return np.array([float(w / total) for w in weights])


def rates_spanning_decades(n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return birth_death(0.5 * 10 ** rng.uniform(-6, 0, n - 1), 0.5 * 10 ** rng.uniform(-6, 0, n - 1))


def test_birth_death_law_has_a_few_ulps_per_component_at_n_3000():
    """Rates spanning 6 decades, masses spanning 1e-137 .. 0.6: every component within 3 ulps of
    the mpmath law (the banded GTH was 1e-12 per component before: its back-substitution held the
    masses as logarithms, an absolute error of ulp(ln x) ~ 1e-13 once the masses span 1e-900);
    the reported error bound is not below the true L1 error, and the dense GTH agrees."""
    P = rates_spanning_decades(3000, 1)
    truth = mp_birth_death(P)
    law = stationary_law(P)
    assert law.method == "birth–death ratios (compensated)"
    relative = np.abs(law.pi - truth) / truth
    assert relative.max() <= 3 * 2.0**-53
    assert law.error >= np.abs(law.pi - truth).sum()
    assert law.error < 4e-16


def test_birth_death_closed_forms():
    """Geometric (up p, down q: pi_i proportional to (p/q)^i) and Ehrenfest (binomial) laws, with
    masses down to 1e-900 (exact binary rescaling: nothing lost beyond the float range)."""
    n = 3000
    pi, error = birth_death_law(np.full(n - 1, 0.25), np.full(n - 1, 0.5))
    with mpmath.workdps(30):
        truth = np.array([float(mpmath.mpf(2) ** -i / (2 - mpmath.mpf(2) ** (1 - n))) for i in range(n)])
    nonzero = truth > 0
    assert np.all(np.abs(pi[nonzero] / truth[nonzero] - 1) <= 3 * 2.0**-53) and np.all(pi[~nonzero] == 0)
    assert error >= np.abs(pi - truth).sum()
    m = 256  # (m - i) / 2m and (i + 1) / 2m are exact in binary
    up = np.array([(m - i) / (2 * m) for i in range(m)])
    down = np.array([(i + 1) / (2 * m) for i in range(m)])
    pi, _ = birth_death_law(up, down)
    with mpmath.workdps(40):
        binomial = np.array([float(mpmath.binomial(m, i) / mpmath.mpf(2) ** m) for i in range(m + 1)])
    assert np.all(np.abs(pi / binomial - 1) <= 3 * 2.0**-53)


def test_birth_death_path_is_found_in_any_labelling():
    """A birth–death chain whose states are shuffled is still recognised (its graph is a path)."""
    P = rates_spanning_decades(500, 3)
    perm = np.random.default_rng(4).permutation(500)
    shuffled = P[perm][:, perm].tocsr()
    law = stationary_law(shuffled)
    assert law.method == "birth–death ratios (compensated)"
    truth = mp_birth_death(P)[perm]
    assert np.max(np.abs(law.pi - truth) / truth) <= 3 * 2.0**-53


def test_birth_death_ratios_beyond_the_float_range():
    """A down rate of 1e-320 (subnormal): the ratio 0.5 / 1e-320 = 5e319 is no double, but the
    mantissas' ratio is; pi = (1e-320, 1/2, 1/2) to the subnormal's spacing."""
    pi, error = birth_death_law(np.array([0.5, 0.5]), np.array([1e-320, 0.5]))
    assert pi[1] == pi[2] == 0.5 and abs(pi[0] - 1e-320) <= 2.0**-1074 and error < 4e-16


def test_birth_death_law_refuses_a_reducible_chain():
    with pytest.raises(ChainError, match="positive"):
        birth_death_law(np.array([0.5, 0.0]), np.array([0.5, 0.5]))


def mp_gth(P: sp.csr_matrix) -> np.ndarray:
    """The stationary law by GTH elimination in 50-digit mpmath, natural order, on the nonzero
    pattern (a band keeps its width): subtraction-free, so every component to about 1e-45."""
    n = P.shape[0]
    with mpmath.workdps(50):
        rows = [{int(j): mpmath.mpf(float(v)) for j, v in zip(P[i].indices, P[i].data) if j != i} for i in range(n)]
        factors = []
        for k in range(n - 1):
            pivot = mpmath.fsum(v for j, v in rows[k].items() if j > k)
            column = {i: rows[i].pop(k) / pivot for i in range(k + 1, n) if k in rows[i]}
            for i, f in column.items():
                for j, v in rows[k].items():
                    if j > k and j != i:
                        rows[i][j] = rows[i].get(j, 0) + f * v
            factors.append(column)
        x = [mpmath.mpf(0)] * n
        x[n - 1] = mpmath.mpf(1)
        for k in range(n - 2, -1, -1):
            x[k] = mpmath.fsum(x[i] * f for i, f in factors[k].items())
        total = mpmath.fsum(x)
        return np.array([float(v / total) for v in x])


@pytest.mark.parametrize(("method", "n"), [("band", 3000), ("dense", 150)])
def test_banded_and_dense_gth_reach_a_few_ulps_against_mpmath_and_their_estimate_is_not_below_the_error(method, n):
    """A band of width 2 (steps of one and two states) drifting down, so that the masses span 1e-110
    at n = 150 and fall below the float range at 3,000: per component within 1e-14 relative of GTH
    in 50-digit mpmath on the same matrix (the log-scale back-substitution lost ulp(ln x), 1e-13 once
    the masses span 1e-900), and the estimate (two eliminations in opposite orders, at least n u) is
    not below the true L1 error."""
    rng = np.random.default_rng(5)
    offsets = [1, 2, -1, -2]
    scales = [0.01, 0.01, 0.25, 0.25]
    diagonals = [scale * 10 ** rng.uniform(-2, 0, n - abs(o)) for o, scale in zip(offsets, scales)]
    P = sp.diags(diagonals, offsets, shape=(n, n)).tocsr()
    P = (P + sp.diags(1.0 - np.asarray(P.sum(axis=1)).ravel())).tocsr()
    law = stationary_law(P, method)
    assert law.method == ("GTH (band 2)" if method == "band" else "GTH (dense)")
    truth = mp_gth(P)
    big = truth > 1e-300
    assert np.max(np.abs(law.pi[big] - truth[big]) / truth[big]) < 1e-14
    assert law.error >= np.abs(law.pi - truth).sum()
