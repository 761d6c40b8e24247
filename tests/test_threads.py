"""BLAS threads of the exact analyser (ecology/threads.py): one by default, ECOLOGY_BLAS_THREADS
overrides, the user's own OPENBLAS/OMP variables are respected, a malformed value is one line."""

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (scipy's BLAS loaded before the limits below, as the analyser loads it)
from threadpoolctl import threadpool_info, threadpool_limits

from ecology.errors import UserError
from ecology.threads import BLAS_THREADS_VARIABLE, DEFAULT_BLAS_THREADS, USER_VARIABLES, blas_thread_count, blas_threads

SOFT = Path(__file__).resolve().parent.parent / "scenarios" / "waluigi_soft.toml"


def blas_counts() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.mark.parametrize("environ, expected", [
    ({}, DEFAULT_BLAS_THREADS),
    ({BLAS_THREADS_VARIABLE: "3"}, 3),
    ({BLAS_THREADS_VARIABLE: " 2 "}, 2),
    ({"OPENBLAS_NUM_THREADS": "4"}, None),
    ({"OMP_NUM_THREADS": "2"}, None),
    ({"MKL_NUM_THREADS": "8"}, None),
    ({"OPENBLAS_NUM_THREADS": ""}, DEFAULT_BLAS_THREADS),  # set but empty: not a choice
    ({"OPENBLAS_NUM_THREADS": "4", BLAS_THREADS_VARIABLE: "1"}, 1),  # ours, named for this tool, wins
    ({BLAS_THREADS_VARIABLE: ""}, DEFAULT_BLAS_THREADS),
])
def test_the_rule(environ, expected):
    assert blas_thread_count(environ) == expected


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_malformed_value_names_the_variable_and_the_fix(bad):
    with pytest.raises(UserError, match=rf"{BLAS_THREADS_VARIABLE}='{bad}': give a positive whole number"):
        blas_thread_count({BLAS_THREADS_VARIABLE: bad})


def test_the_limit_holds_inside_and_the_callers_limits_come_back_after():
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_counts() == {2}
        with blas_threads({}) as count:
            assert count == 1 and blas_counts() == {1}
        assert blas_counts() == {2}
        with blas_threads({BLAS_THREADS_VARIABLE: "3"}) as count:
            assert count == 3 and blas_counts() == {3}
        with blas_threads({"OMP_NUM_THREADS": "2"}) as count:
            assert count is None and blas_counts() == {2}  # the user's choice, untouched
        assert blas_counts() == {2}


def test_the_exact_analyser_runs_with_one_blas_thread(monkeypatch):
    """ecology.exact.analyze pins BLAS for its length (seen from inside its spectrum phase)."""
    from ecology.exact.markov import MarkovChain
    from ecology.exact.report import analyze

    for name in (BLAS_THREADS_VARIABLE, *USER_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    seen = []
    eigenvalues = MarkovChain.eigenvalues

    def spying(self, count=6):
        seen.append(blas_counts())
        return eigenvalues(self, count)

    monkeypatch.setattr(MarkovChain, "eigenvalues", spying)
    with threadpool_limits(limits=2, user_api="blas"):
        report = analyze(SOFT)
        assert blas_counts() == {2}
    assert seen and all(s == {1} for s in seen)
    assert np.isclose(report.eigenvalues[0], 1.0)


def test_the_cli_says_one_line_for_a_malformed_value(monkeypatch, capsys):
    from ecology.cli import main

    monkeypatch.setenv(BLAS_THREADS_VARIABLE, "many")
    assert main(["analyze", str(SOFT), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{BLAS_THREADS_VARIABLE}='many'" in err and "Traceback" not in err
