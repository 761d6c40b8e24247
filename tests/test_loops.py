"""Loops of the exact chain and ``periodic`` criteria decided without the deleted-token memory.

- :func:`ecology.exact.markov.most_likely_cycles` on chains whose cycles are known in closed form
  (a deterministic rotation, a rotation with a leak, two cycles), against a brute-force walk of the
  most likely successor map, and on 10^5 states;
- :func:`ecology.exact.chain.repetition_chain` against the chain extended by ``P`` deleted tokens
  (the definition, state by state) and against the simulation (both engines);
- ``ecology analyze``: the loops block and fields, the one-line refusal of ``periodic >= 2`` under
  ``block``.
"""

import json
import math
import time

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError, TooManyStates
from ecology.exact.chain import build_chain, criterion_chain, holding_curve, repetition_chain
from ecology.exact.markov import MarkovChain, most_likely_cycles
from ecology.exact.report import analyze
from ecology.results import simulate, summarize
from ecology.scenario import validate
from ecology.statistics import wilson

from .conftest import SCENARIOS, table


def rotation(length: int, leak: float = 0.0) -> sp.csr_matrix:
    """States 0 .. L-1 in a ring, each leaving to the absorbing state L with probability ``leak``."""
    P = np.zeros((length + 1, length + 1))
    for i in range(length):
        P[i, (i + 1) % length] = 1.0 - leak
        P[i, length] += leak
    P[length, length] = 1.0
    return sp.csr_matrix(P)


def test_a_deterministic_rotation_is_one_closed_cycle():
    cycles = most_likely_cycles(rotation(5)[:5, :5])
    assert len(cycles) == 1
    c = cycles[0]
    assert c.states.tolist() == [0, 1, 2, 3, 4] and c.length == 5
    assert c.closed and c.lap == 1.0 and c.leak == 0.0 and c.expected_laps == math.inf


@pytest.mark.parametrize("eps", [0.1, 1e-3, 1e-12])
def test_a_leaky_rotation_has_the_closed_form_lap_leak_and_laps(eps):
    """Lap ``(1 - eps)^L``, leak per step ``eps`` and ``rho / (1 - rho)`` laps, the last checked
    against the fundamental matrix: laps completed = returns to state 0 = ``N[0, 0] - 1``."""
    L = 4
    P = rotation(L, eps)
    cycles = most_likely_cycles(P)
    assert [c.states.tolist() for c in cycles] == [[4], [0, 1, 2, 3]]  # the absorbing state laps with probability 1
    assert cycles[0].closed and not cycles[1].closed
    c = cycles[1]
    mpmath.mp.dps = 40
    rho = (1 - mpmath.mpf(eps)) ** L  # in 40 digits: 1 - rho cancels in floats at eps = 1e-12
    assert c.lap == pytest.approx(float(rho), rel=1e-14)
    assert c.leak == pytest.approx(eps, rel=1e-12)  # 1 - rho^(1/L), no cancellation either
    assert c.expected_laps == pytest.approx(float(rho / (1 - rho)), rel=1e-12)
    if eps >= 1e-3:  # the fundamental matrix is dense linear algebra: fine while 1 - rho is not tiny
        N = MarkovChain(P).fundamental_matrix()
        assert N[0, 0] - 1 == pytest.approx(c.expected_laps, rel=1e-9)


def test_a_chain_with_two_cycles():
    """A 2-cycle {0, 1} and a 3-cycle {2, 3, 4}, joined by small transitions: both are found with
    their laps, and their stationary masses in the report agree with a dense eigenvector."""
    P = np.zeros((5, 5))
    P[0, 1], P[0, 2] = 0.9, 0.1
    P[1, 0] = 1.0
    P[2, 3], P[3, 4], P[4, 2], P[4, 0] = 1.0, 1.0, 0.8, 0.2
    cycles = most_likely_cycles(sp.csr_matrix(P))
    assert [c.states.tolist() for c in cycles] == [[0, 1], [2, 3, 4]]
    assert cycles[0].lap == pytest.approx(0.9) and cycles[1].lap == pytest.approx(0.8)
    assert cycles[0].leak == pytest.approx(1 - math.sqrt(0.9)) and cycles[1].leak == pytest.approx(1 - 0.8 ** (1 / 3))
    values, vectors = np.linalg.eig(P.T)
    pi = np.real(vectors[:, np.argmin(abs(values - 1))])
    pi /= pi.sum()
    law = MarkovChain(sp.csr_matrix(P)).stationary_distributions[0]
    assert pi[[0, 1]].sum() == pytest.approx(law[[0, 1]].sum(), abs=1e-12)


def test_ties_go_to_the_lowest_state():
    P = sp.csr_matrix(np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert [c.states.tolist() for c in most_likely_cycles(P)] == [[0, 1]]


def walk_cycles(P: sp.csr_matrix) -> set[tuple[int, ...]]:
    """Brute force: follow the most likely successor from every state until a state repeats."""
    dense = P.toarray()
    f = np.argmax(dense, axis=1)  # numpy's argmax takes the first maximum: the lowest index
    found = set()
    for start in range(len(f)):
        path, at = [], start
        while at not in path:
            path.append(at)
            at = int(f[at])
        cycle = path[path.index(at):]
        low = cycle.index(min(cycle))
        found.add(tuple(cycle[low:] + cycle[:low]))
    return found


def random_stochastic(rng, n: int, per_row: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(n), per_row)
    P = sp.csr_matrix((rng.random(n * per_row), (rows, rng.integers(0, n, n * per_row))), shape=(n, n))
    return sp.csr_matrix(sp.diags(1 / np.asarray(P.sum(axis=1)).ravel()) @ P)


def test_cycles_agree_with_a_brute_force_walk_and_are_fast_on_a_large_chain():
    rng = np.random.default_rng(7)
    for n in (30, 300, 1000):
        P = random_stochastic(rng, n, 3)
        assert {tuple(c.states.tolist()) for c in most_likely_cycles(P)} == walk_cycles(P)
    P = random_stochastic(rng, 100_000, 4)
    start = time.perf_counter()
    cycles = most_likely_cycles(P)
    assert time.perf_counter() - start < 2.0
    dense_laps = [np.prod([P[i, j] for i, j in zip(c.states, np.roll(c.states, -1))]) for c in cycles]
    assert np.allclose([c.lap for c in cycles], dense_laps, rtol=1e-12)


def ngram(deletion: str = "fifo", length: int = 3, **context) -> dict:
    """Three tokens from a trigram model of a loopy sequence: every page-state reachable, loops likely."""
    return {
        "name": "loops",
        "vocabulary": {"tokens": ["a", "b", "c"], "pad": "N"},
        "context": {"length": length, "deletion": deletion, "prompt": ["a", "b"], **context},
        "run": {"steps": 40, "replicates": 3000, "seed": 5},
        "premises": {"model": {"prior": 1.0, "model": {"kind": "ngram", "order": 3, "smoothing": "add-k", "k": 0.3,
                                                         "sequence": "abcabcabcaaaaabababcccabcab"}}},
        "absorption": {},
    }


@pytest.mark.parametrize("period", [1, 2, 3, 5])
def test_the_product_chain_equals_the_chain_extended_by_deleted_tokens(period):
    """Reached and holding curves of ``periodic = P`` on the product equal those on the chain whose
    states carry the ``P`` deleted tokens (where ``X_t = X_{t-d}`` is read off the state), with
    fewer states."""
    data = ngram()
    data["absorption"] = {"loop": {"periodic": period}}
    compiled = compile_scenario(validate(data))
    base = build_chain(compiled)
    product, h = criterion_chain(compiled, base, compiled.criteria[0], 10**6)
    extended = build_chain(compiled, 10**6, period)
    h_ext = extended.holds(compiled.criteria[0])
    assert product.chain.n_states < extended.chain.n_states
    for curve in (lambda pc, mask: pc.chain.hitting_curve(pc.initial, mask, 60), lambda pc, mask: holding_curve(pc, mask, 60)):
        assert np.allclose(curve(product, h), curve(extended, h_ext), atol=1e-13)
    assert np.array_equal(product.windows, base.windows[product.page_state])


def exact_against_simulation(data: dict, engine: str) -> None:
    """Every criterion's exact ``P(reached by t)``, t = 0 .. steps, lies in the simulation's Wilson
    interval at z = 4.42 (two-sided 1e-5 per point: up to 41 x 3 comparisons, in the tail a
    curve rests on a handful of unreached replicates)."""
    data["run"]["engine"] = engine
    s = validate(data)
    result = simulate(s)
    figures = analyze(compile_scenario(s), horizon=s.run.steps)
    df = result.steps
    for name, curve in figures["curves"].items():
        exact = np.array(curve["reached"])
        lo, hi = wilson(np.round(df[f"reached_{name}"].to_numpy() * s.run.replicates), s.run.replicates, z=4.42)
        assert np.all((lo - 1e-12 <= exact) & (exact <= hi + 1e-12)), name
    assert summarize(result)["criteria"]


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_periodic_criteria_agree_with_the_simulation_under_fifo(engine):
    data = ngram()
    data["absorption"] = {"p1": {"periodic": 1}, "p2": {"periodic": 2}, "p5": {"periodic": 5}}
    exact_against_simulation(data, engine)


@pytest.mark.parametrize("context", [{"deletion": "block", "block": 1}, {"deletion": "message", "delimiter": "c"},
                                     {"deletion": "fifo", "pinned": 1}])
def test_periodic_one_is_exact_under_every_deleting_rule(context):
    """``periodic = 1`` is the self-loop event: exact under the rules that re-write the window too
    (``block = 1`` re-writes, unlike ``fifo``; ``block >= 2`` leaves a pad, so it never repeats)."""
    data = ngram(**context)
    data["absorption"] = {"p1": {"periodic": 1}}
    assert analyze(compile_scenario(validate(data)))["criteria"]["p1"]["probability_within"] > 0.5  # the test can fail
    exact_against_simulation(data, "numpy")


def test_periodic_two_under_block_is_refused_up_front_in_one_line(tmp_path, capsys):
    data = ngram(deletion="block", block=2)
    data["absorption"] = {"loop": {"periodic": 2}}
    compiled = compile_scenario(validate(data))
    with pytest.raises(ScenarioError, match="periodic = 2 under deletion"):
        repetition_chain(build_chain(compiled), 2)
    path = tmp_path / "block.toml"
    path.write_text("\n".join([
        'name = "block"', '[vocabulary]', 'tokens = ["a", "b"]', '[context]', 'length = 3', 'deletion = "block"', 'block = 2',
        '[simulacra.s]', 'kind = "cycle"', 'sequence = ["a", "b"]', '[premises.s]', 'prior = 1.0', 'cast = ["s"]',
        '[absorption.loop]', 'periodic = 2']) + "\n")
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "absorption.loop.periodic" in err
    assert "use periodic = 1" in err


def test_analyze_reports_the_loops(tmp_path, capsys):
    """The rotation a b c of a cycle simulacrum that slips with probability 0.01: one leaky loop of length 3
    whose lap probability is the product of its three transitions, the report's JSON and console."""
    path = tmp_path / "loops.toml"
    lines = ['name = "loops"', '[vocabulary]', 'tokens = ["a", "b", "c"]', '[context]', 'length = 3', 'deletion = "fifo"',
             'prompt = ["a"]', '[simulacra.s]', 'kind = "cycle"', 'sequence = ["a", "b", "c"]', 'slip = 0.01',
             '[premises.s]', 'prior = 1.0', 'cast = ["s"]']
    path.write_text("\n".join(lines) + "\n")
    assert main(["analyze", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    top = report["loops"]["cycles"][0]
    assert top["length"] == 3 and sorted(top["states"]) == ["a b c", "b c a", "c a b"]
    assert not top["closed"] and top["closed_class"] == 0
    assert top["lap_probability"] == pytest.approx((1 - top["leak_per_step"]) ** 3, rel=1e-12)
    assert top["expected_laps"] == pytest.approx(top["lap_probability"] / (1 - top["lap_probability"]), rel=1e-9)
    assert 0.9 < top["stationary_mass"] <= 1.0
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "loops (cycles of the most likely successor" in out and "length 3: 'a b c' -> 'b c a' -> 'c a b'" in out


def test_analyze_says_what_a_periodic_criterion_was_decided_on(tmp_path, capsys):
    path = tmp_path / "dog.toml"
    path.write_text((SCENARIOS / "dog.toml").read_text().replace("periodic = 4", "periodic = 1"))
    assert main(["analyze", str(path), "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["criteria"]["orbit"]
    assert main(["analyze", str(path)]) == 0
    assert f"criterion 'orbit' ({entry['size']} of the {entry['n_states']} states of its product" in capsys.readouterr().out


def test_a_long_period_keys_its_states_as_bytes_and_still_equals_the_extended_chain():
    """dog.toml (k = 6) with periodic = 20: the product keeps 14 deleted tokens and 20 runs, too many
    digits for an int64 code, so states are compared as raw bytes; the curves still equal the
    extended chain's."""
    data = table("dog")
    data["absorption"] = {"orbit": {"periodic": 20}}
    compiled = compile_scenario(validate(data))
    product, h = criterion_chain(compiled, build_chain(compiled), compiled.criteria[0], 10**6)
    extended = build_chain(compiled, 10**6, 20)
    h_ext = extended.holds(compiled.criteria[0])
    assert np.allclose(product.chain.hitting_curve(0, h, 80), extended.chain.hitting_curve(0, h_ext, 80), atol=1e-13)
    assert np.allclose(holding_curve(product, h, 80), holding_curve(extended, h_ext, 80), atol=1e-13)
    assert product.chain.hitting_curve(0, h, 80)[-1] > 0.5


def test_a_product_over_the_state_budget_is_one_line_with_the_way_out():
    data = ngram()
    data["absorption"] = {"loop": {"periodic": 5}}
    compiled = compile_scenario(validate(data))
    base = build_chain(compiled)
    with pytest.raises(TooManyStates) as refused:
        repetition_chain(base, 5, max_states=base.chain.n_states)
    message = str(refused.value)
    assert message.startswith("absorption.loop: the exact chain of periodic = 5 (page-states with their runs of repeated "
                              "tokens and 2 deleted tokens) has more than")
    assert "use periodic <= 3 (context.length" in message and "\n" not in message
