"""The ``repeats = { period = P, copies = C }`` criterion: the window ends in ``C`` copies of a block
of ``p <= P`` real tokens. Its predicate on hand-made and on every small window (numpy and both
compiled evaluators against a plain Python definition), the engines against each other under every
deletion rule, the exact analyser against closed forms and simulation, and its one-line errors."""

import copy
import itertools

import numpy as np
import pytest

from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError
from ecology.exact.chain import build_chain, criterion_chain, criterion_curves
from ecology.exact.report import analyze, criterion_figures
from ecology.kinds.criteria import REPEATS, Repeats, repeats_read_jit, repeats_slide_jit
from ecology.kinds.observables import Criteria
from ecology.model import EcologyModel
from ecology.scenario import validate

from .engines import assert_engines_agree

V = 3  # tokens 0, 1, 2; the pad is 3, "before step 0" 4
PAD = V


def definition(w, period: int, copies: int) -> bool:
    """The docs' sentence, literally: some ``p <= P`` with ``C p <= len(w)`` whose last ``C p``
    positions are tokens and ``w[-i] == w[-i - p]`` for ``i = 1 .. (C - 1) p``."""
    w = list(w)
    for p in range(1, period + 1):
        if copies * p > len(w):
            break
        if all(t < PAD for t in w[-copies * p :]) and all(w[-i] == w[-i - p] for i in range(1, (copies - 1) * p + 1)):
            return True
    return False


def criterion(period: int, copies: int, k: int) -> Repeats:
    return Repeats("loop", period, copies, k, V)


def compiled_read(c: Repeats, windows: np.ndarray) -> np.ndarray:
    holding = np.zeros((1, len(windows)), dtype=np.bool_)
    form = c.compiled_form()
    repeats_read_jit(0, np.ascontiguousarray(windows), PAD, form.period, form.copies, holding)
    return holding[0]


def compiled_slide(c: Repeats, windows: np.ndarray, before: int = 2) -> np.ndarray:
    """On a sliding buffer whose page-states are preceded by ``before`` deleted tokens and followed
    by unused columns (only ``buf[r, end - k : end]`` may be read)."""
    rows, k = windows.shape
    buf = np.full((rows, before + k + 3), V + 1, dtype=windows.dtype)
    buf[:, before : before + k] = windows
    holding = np.zeros((1, rows), dtype=np.bool_)
    form = c.compiled_form()
    repeats_slide_jit(0, buf, before + k, k, PAD, form.period, form.copies, holding)
    return holding[0]


HAND = [  # (window, period, copies, holds)
    ([0, 0], 1, 2, True),
    ([PAD, 0, 0], 1, 2, True),  # not full: its last C p = 2 tokens are real
    ([PAD, 0, 0], 1, 3, False),  # a pad inside the last 3
    ([PAD, PAD, 1], 1, 2, False),
    ([0, 1, 1, 1], 1, 3, True),
    ([1, 1, 1, 0], 1, 3, False),  # the run must end the window
    ([0, 1, 0, 1], 1, 2, False),
    ([0, 1, 0, 1], 2, 2, True),
    ([PAD, 1, 0, 1], 2, 2, False),  # the pad is not a copy of 0
    ([2, 0, 1, 2, 0, 1], 2, 2, False),
    ([2, 0, 1, 2, 0, 1], 3, 2, True),
    ([0, 1, 2, 0, 1, 2], 3, 2, True),
    ([1, 0, 1, 0, 1, 0], 2, 3, True),
    ([1, 0, 1, 0, 1, 0], 3, 2, True),  # p = 2 is within P = 3
    ([0, 0, 0, 0], 1, 4, True),
    ([PAD, 0, 0, 0], 1, 4, False),
    ([1, 0, 1], 2, 2, False),  # C p = 4 > k = 3: only p = 1 fits, and 0 != 1
    ([1, 0, 0], 5, 2, True),  # C P = 10 > k: p = 1 still fits
    ([0, 0, 0], 1, 3, True),  # C = k
]


@pytest.mark.parametrize("window, period, copies, expected", HAND)
def test_hand_made_windows(window, period, copies, expected):
    assert definition(window, period, copies) == expected
    c = criterion(period, copies, len(window))
    rows = np.array([window], dtype=np.uint8)
    assert c.holds(rows, np.zeros((1, 1))).tolist() == [expected]
    assert compiled_read(c, rows).tolist() == [expected]
    assert compiled_slide(c, rows).tolist() == [expected]
    # deleted-token memory before the page-state is never read
    extended = np.concatenate([np.full((1, 3), V + 1, dtype=np.uint8), rows], axis=1)
    assert c.holds(extended, np.zeros((1, 1))).tolist() == [expected]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_every_small_window_against_the_definition(k):
    """Every canonical window (pads first, then tokens) of length k over 3 tokens, and every row of
    tokens and pads in any order, for periods 1..4 and copies 2..4 (those with C <= k)."""
    canonical = [(PAD,) * (k - n) + tail for n in range(k + 1) for tail in itertools.product(range(V), repeat=n)]
    anywhere = list(itertools.product(range(V + 1), repeat=k)) if k <= 5 else []
    windows = np.array(sorted(set(canonical + anywhere)), dtype=np.uint8)
    for period, copies in itertools.product(range(1, 5), range(2, 5)):
        if copies > k:
            continue
        c = criterion(period, copies, k)
        expected = np.array([definition(w, period, copies) for w in windows.tolist()])
        assert np.array_equal(c.holds(windows, np.zeros((len(windows), 1))), expected), (period, copies)
        assert np.array_equal(compiled_read(c, windows), expected), (period, copies)
        assert np.array_equal(compiled_slide(c, windows), expected), (period, copies)


def test_compiled_form_keeps_only_the_blocks_that_fit():
    form = criterion(10, 3, 7).compiled_form()
    assert (form.form, form.period, form.copies) == (REPEATS, 2, 3)  # 3 p <= 7
    assert criterion(2, 2, 8).compiled_form().period == 2


# ---------------------------------------------------------------------------------------------
# scenarios


def coin(k: int = 4, absorption: dict | None = None, **run) -> dict:
    """A fair coin H/T, one premise, window k from empty."""
    return {
        "name": "coin", "vocabulary": {"tokens": ["H", "T"]}, "context": {"length": k},
        "run": {"steps": 40, "replicates": 64, "seed": 11, **run},
        "simulacra": {"c": {"kind": "coin", "heads": "H", "tails": "T", "p": 0.5}},
        "premises": {"c": {"prior": 1.0, "cast": ["c"]}},
        "absorption": absorption or {"run3": {"repeats": {"period": 1, "copies": 3}}},
    }


ECHO = {"start": "x", "states": {"x": {"emit": {"a": 0.6, "b": 0.3, "c": 0.1}, "on": {"b": "y"}},
                                 "y": {"emit": {"a": 0.2, "b": 0.7, "c": 0.1}, "on": {"a": "x"}}}}


def three_tokens(context: dict) -> dict:
    """Three tokens, two premises (an automaton that loops, an iid background), several repeats
    criteria (one with C P > k), k = 5."""
    return {
        "name": "loops", "vocabulary": {"tokens": ["a", "b", "c"]},
        "context": {"length": 5, "prompt": ["a", "b"], **context},
        "run": {"steps": 30, "replicates": 48, "seed": 5},
        "simulacra": {"background": {"kind": "iid", "probs": {"a": 0.4, "b": 0.4, "c": 0.2}}, "subject": ECHO},
        "premises": {"background": {"prior": 0.5, "cast": ["background"]}, "subject": {"prior": 0.5, "cast": ["subject"]}},
        "absorption": {"pair": {"repeats": {"period": 1, "copies": 2}},
                       "run4": {"repeats": {"period": 1, "copies": 4}},
                       "loop": {"repeats": {"period": 2, "copies": 2}},
                       "wide": {"repeats": {"period": 9, "copies": 2}},
                       "only_a": {"window_only": ["a"]}},
    }


CONTEXTS = {
    "fifo": {},
    "none": {"deletion": "none"},
    "block": {"deletion": "block", "block": 2},
    "message": {"deletion": "message", "delimiter": "c"},
    "pinned": {"pinned": 1},
    "reset": {"reset": "c"},
}


@pytest.mark.parametrize("context", list(CONTEXTS))
def test_numpy_and_compiled_engines_agree(context):
    """Identical holding and reached_at (bit for bit), every column within 1e-12, and compiled
    blocks equal to compiled single steps; the criteria actually hold and fail along the run."""
    model = assert_engines_agree(three_tokens(CONTEXTS[context]), schedules=("blocks", [3, "s", 7]))
    assert model.engine.name == "compiled"
    for c, crit in enumerate(model.criteria):
        if isinstance(crit, Repeats):
            assert (model.reached_at[c] >= 0).any(), crit.name


def test_any_vocabulary_size():
    """300 tokens (two-byte windows): the engines agree; a peaked law makes repeats likely."""
    tokens = [f"t{i}" for i in range(300)]
    probs = dict.fromkeys(tokens[1:], 0.5 / 299)
    probs[tokens[0]] = 0.5
    data = {"name": "big", "vocabulary": {"tokens": tokens}, "context": {"length": 4},
            "run": {"steps": 20, "replicates": 32, "seed": 2},
            "simulacra": {"s": {"kind": "iid", "probs": probs}},
            "premises": {"s": {"prior": 1.0, "cast": ["s"]}},
            "absorption": {"pair": {"repeats": {"period": 2, "copies": 2}}}}
    model = assert_engines_agree(data)
    assert model.context.window.dtype == np.uint16
    assert (model.reached_at >= 0).any()


# ---------------------------------------------------------------------------------------------
# the exact analyser


def expected_run_time(n: int, p: float = 0.5) -> float:
    """Expected tosses until the first run of ``n`` equal outcomes of a p-coin, from the chain of
    the current run length (1 after the first toss; it grows with probability p or 1 - p,
    depending on the side, else falls back to 1): one small linear solve, independent of the
    page-state chain. For a fair coin this is ``2^n - 1``."""
    # states (side, run length 1 .. n - 1); T = 1 + time from (first side, 1)
    index = {(s, m): i for i, (s, m) in enumerate(itertools.product((0, 1), range(1, n)))}
    A, b = np.eye(len(index)), np.ones(len(index))
    for (s, m), i in index.items():
        same = p if s == 0 else 1 - p
        if m + 1 < n:
            A[i, index[(s, m + 1)]] -= same
        A[i, index[(1 - s, 1)]] -= 1 - same
    h = np.linalg.solve(A, b)
    return 1 + p * h[index[(0, 1)]] + (1 - p) * h[index[(1, 1)]]


def test_closed_form_of_runs():
    assert expected_run_time(3) == pytest.approx(7.0, rel=1e-12)  # 2^3 - 1
    assert expected_run_time(4) == pytest.approx(15.0, rel=1e-12)
    p = 0.3  # two equal tosses of a biased coin, by first-step analysis: 1 + (1 + 2p - 2p^2) / (1 - p + p^2)
    assert expected_run_time(2, p) == pytest.approx(1 + (1 + 2 * p - 2 * p**2) / (1 - p + p**2), rel=1e-12)


def test_exact_hitting_times_against_closed_forms():
    """Fair coin, k = 4, from the empty window: a run of 3 equal tokens (period 1, copies 3) takes
    ``E[T] = 7`` steps; ``period 2, copies 2`` (two equal tokens, or ``x y x y``) takes
    ``2 (1/2) + 3 (1/4) + 4 (1/4) = 2.75`` and, once 4 tokens are down, holds with probability
    ``1/2 + 1/8``. Both are decided on the plain page-state chain (no deleted-token memory)."""
    data = coin(absorption={"run3": {"repeats": {"period": 1, "copies": 3}},
                            "loop": {"repeats": {"period": 2, "copies": 2}}})
    compiled = compile_scenario(validate(data))
    assert compiled.memory == 0
    pc = build_chain(compiled)
    for c in compiled.criteria:
        assert criterion_chain(compiled, pc, c, 10_000)[0] is pc
    report = analyze(compiled, chain=pc, horizon=8)
    assert report["criteria"]["run3"]["expected_hitting_time"] == pytest.approx(expected_run_time(3), rel=1e-9)
    assert report["criteria"]["loop"]["expected_hitting_time"] == pytest.approx(2.75, rel=1e-9)
    assert report.curves["loop"]["holding"][4:] == pytest.approx([0.625] * 5, abs=1e-12)
    assert report.curves["run3"]["holding"][3:] == pytest.approx([0.25] * 6, abs=1e-12)
    figures = criterion_figures(compiled, horizon=8, chain=pc)
    assert figures["run3"]["expected_hitting_time"] == pytest.approx(7.0, rel=1e-9)
    assert figures["run3"]["n_states"] == pc.chain.n_states  # 6 of them hold: N H H H, x H H H and the T twins
    assert int(pc.holds(compiled.criteria[0]).sum()) == 6


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_simulated_hitting_time_against_the_exact_chain(engine):
    """Mean first hitting time of 4000 replicates within 4 standard errors of the exact 7, every
    replicate reached by step 150 (P(T > 150) < 1e-13), holding curve within 5 binomial sd."""
    data = coin(steps=150, replicates=4000, engine=engine)
    model = EcologyModel(validate(data))
    assert model.engine.name == engine
    model.run_model()
    T = model.reached_at[0].astype(float)
    assert (T > 0).all()
    se = T.std(ddof=1) / np.sqrt(len(T))
    assert abs(T.mean() - 7.0) < 4 * se, (T.mean(), se)
    compiled = compile_scenario(model.config)
    curves = criterion_curves(compiled, build_chain(compiled), 150, 10_000)["run3"]
    steps = model.datacollector.get_model_vars_dataframe()
    for kind in ("reached", "holding"):
        exact = np.array(curves[kind])
        sd = np.sqrt(exact * (1 - exact) / 4000)
        simulated = steps[Criteria.column(kind, "run3")].to_numpy()
        assert np.all(np.abs(simulated - exact) <= 5 * sd + 1e-9), kind


def test_exact_analysis_under_a_rule_that_is_not_fifo():
    """Window-only: block deletion (which a ``periodic`` criterion cannot be analysed under) is fine."""
    data = coin(absorption={"run3": {"repeats": {"period": 1, "copies": 3}}})
    data["context"].update(deletion="block", block=2)
    compiled = compile_scenario(validate(data))
    report = analyze(compiled)
    assert 0 < report["criteria"]["run3"]["expected_hitting_time"] < np.inf


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("value, path, words", [
    ({"period": 1, "copies": 1}, "repeats.copies", "copies >= 2"),
    ({"period": 1, "copies": 5}, "repeats.copies", "copies <= 4"),
    ({"period": 2, "copies": 2, "length": 3}, "repeats.length", "unknown key"),
    ({"period": 0, "copies": 2}, "repeats.period", "greater than or equal to 1"),
    ({"period": 1.5, "copies": 2}, "repeats.period", "whole number"),
    ({"period": 1, "copies": True}, "repeats.copies", "whole number"),
    ({"copies": 2}, "repeats.period", "missing"),
    (3, "repeats", ""),
])
def test_one_line_errors(value, path, words):
    data = coin(absorption={"loop": {"repeats": value}})
    with pytest.raises(ScenarioError) as raised:
        validate(data)
    line = str(raised.value)
    assert "\n" not in line
    assert raised.value.path == f"absorption.loop.{path}", line
    assert words in line, line


def test_blocks_longer_than_the_window_are_allowed():
    """C P > k validates when some block fits (p = 1 here); the form then looks at p <= k // C."""
    data = coin(k=4, absorption={"loop": {"repeats": {"period": 7, "copies": 3}}})
    compiled = compile_scenario(validate(data))
    assert compiled.criteria[0].period == 1
    other = copy.deepcopy(data)
    other["absorption"]["loop"]["repeats"]["copies"] = 4
    validate(other)  # C = k: a run of k equal tokens
