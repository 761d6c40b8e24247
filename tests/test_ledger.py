"""The token ledger (issue 26): what each population issues, what deletion retires, what the window
holds, and the turnover time of credit, in both engines, against a token-by-token recomputation,
against the exact chain extended by token age (itself checked against every path of a short
horizon), and in the outputs of ``ecology run``."""

import copy
import json

import numpy as np
import pytest
import tomli_w

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError, TooMuchWork
from ecology.exact.chain import build_chain
from ecology.exact.ledger import ledger_curves, stationary_ledger, unbounded_ledger
from ecology.kinds.observables import Ledger
from ecology.model import EcologyModel
from ecology.scenario import validate

from .conftest import table
from .engines import assert_engines_agree, simulate


def toy(**context) -> dict:
    data = copy.deepcopy(table("waluigi"))
    data["context"].update({"length": 4, **context})
    data["run"].update(steps=30, replicates=60)
    return data


def chat(**context) -> dict:
    data = copy.deepcopy(table("chat"))
    data["context"].update({"length": 5, **context})
    data["run"].update(steps=30, replicates=60)
    return data


RULES = {
    "fifo": toy(),
    "block": toy(deletion="block", block=3),
    "message": chat(deletion="message", delimiter="/"),
    "none": toy(deletion="none"),
    "pinned": chat(pinned=1),  # fifo after a pinned prompt token: the re-reading kernel
    "reset": chat(deletion="block", block=2, reset="/"),
    "long prompt": toy(prompt=["F", "F", "F", "F", "F", "F"]),  # fifo keeps its last k: prompt fills the window
}


def real_tokens(model) -> np.ndarray:
    return np.count_nonzero(np.asarray(model.context.window) < model.compiled.n_tokens, axis=1)


@pytest.mark.parametrize("rule", RULES)
def test_both_engines_keep_the_same_ledger_and_it_balances(rule):
    """numpy and compiled agree on every ledger column (to 1e-12, blocks bit for bit), and per
    replicate: issued = retired + held for every population, and the held credit plus the prompt
    tokens left is the number of real tokens in the window (counted on the windows themselves)."""
    model = assert_engines_agree(RULES[rule], schedules=("blocks", [7, "s", 5]))
    numpy = simulate(RULES[rule], "numpy")
    for m in (model, numpy):
        book = m.state.ledger
        np.testing.assert_allclose(m.credit, book.retired + book.held, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(book.held.sum(axis=1) + m.engine.prompt_tokens(), real_tokens(m), rtol=0, atol=1e-9)
        assert np.all(book.age >= book.retired - 1e-12)  # every deleted token is at least one step old
        df = m.datacollector.get_model_vars_dataframe()
        labels = m.mixture.labels
        for label in labels:
            np.testing.assert_allclose(df[Ledger.column("credit", label)],
                                       df[Ledger.column("retired", label)] + df[Ledger.column("held", label)], atol=1e-12)
        held = sum(df[Ledger.column("held", label)] for label in labels)
        np.testing.assert_allclose(held + df[Ledger.column("prompt")], df[Ledger.column("window")], atol=1e-9)
        np.testing.assert_allclose(df[Ledger.column("window")].iloc[-1], real_tokens(m).mean(), atol=1e-12)
        if rule == "none":
            assert not book.retired.any() and df[Ledger.column("window")].iloc[-1] == m.n_steps


class Oracle:
    """The ledger recomputed token by token from the rules as docs/scenarios.md states them: each
    replicate's real tokens as a list of (credit or None for a prompt token, step printed); after an
    append, a window that was full (``k`` real tokens) deletes after the pinned prefix: ``fifo`` 1,
    ``block`` B, ``message`` up to and including the first delimiter among its first ``k`` tokens
    (else 1); ``none`` nothing."""

    def __init__(self, compiled, rows: int):
        rule, V = compiled.rule, compiled.n_tokens
        self.rule, self.k, self.pinned = rule, rule.length, rule.pinned
        prompt = [int(t) for t in compiled.window if t < V]
        self.items = [[(t, None, 0) for t in prompt] for _ in range(rows)]
        L = len(compiled.mixture.labels)
        self.retired, self.age = np.zeros((rows, L)), np.zeros((rows, L))

    def count(self, tokens: list[int]) -> int:
        name = self.rule.name
        if name == "block":
            return self.rule.block
        if name == "message":
            ends = [j for j in range(self.pinned, self.k) if tokens[j] == self.rule.delimiter]
            return ends[0] - self.pinned + 1 if ends else 1
        return 1

    def step(self, r: int, token: int, credit: np.ndarray, step: int) -> None:
        items = self.items[r]
        full = len(items) == self.k
        items.append((token, credit, step))
        if not self.rule.deletes_oldest or not full:
            return
        count = self.count([t for t, _, _ in items])
        for _, c, born in items[self.pinned : self.pinned + count]:
            if c is not None:
                self.retired[r] += c
                self.age[r] += c * (step - born)
        del items[self.pinned : self.pinned + count]

    def held(self, r: int) -> np.ndarray:
        return sum((c for _, c, _ in self.items[r] if c is not None), np.zeros(self.retired.shape[1]))


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize("rule", RULES)
def test_the_ledger_is_the_credit_of_each_token_kept_until_it_is_deleted(rule, engine):
    """Step by step, each replicate's retired, held and age figures are those of the oracle fed with
    the printed tokens and their credit (the model's own responsibility on the window they were
    printed from), and the oracle's tokens are the window's real tokens."""
    data = copy.deepcopy(RULES[rule])
    data["run"].update(replicates=12, engine=engine)
    model = EcologyModel(validate(data))
    rows = np.arange(model.replicates)
    oracle = Oracle(model.compiled, model.replicates)
    members = model.mixture.members
    pad = model.compiled.n_tokens
    while model.running:
        responsibility = model.responsibility(rows)  # (R, S, V) on the windows the tokens are printed from
        model.step()
        for r in rows:
            token = int(model.token[r])
            oracle.step(r, token, np.array([responsibility[r, m, token].sum() for m in members]), model.generated)
        book = model.state.ledger
        np.testing.assert_allclose(book.retired, oracle.retired, atol=1e-12)
        np.testing.assert_allclose(book.age, oracle.age, atol=1e-10)
        np.testing.assert_allclose(book.held, [oracle.held(r) for r in rows], atol=1e-12)
        for r in rows:
            window = [int(t) for t in model.context.window[r] if t < pad]
            assert window == [t for t, _, _ in oracle.items[r]]


def every_path(compiled, horizon: int):
    """Every token path of ``horizon`` steps from the initial window with its probability, and
    each step's expected issued, retired, held and age figures by the oracle: the exact ledger by
    brute force, (horizon + 1, L) each."""
    mixture, V = compiled.mixture, compiled.n_tokens
    L = len(mixture.labels)
    out = np.zeros((4, horizon + 1, L))

    def walk(window, oracle, issued, weight, t):
        out[0, t] += weight * issued
        out[1, t] += weight * oracle.retired[0]
        out[2, t] += weight * oracle.held(0)
        out[3, t] += weight * oracle.age[0]
        if t == horizon:
            return
        laws, loglik = mixture.likelihoods(window[None])
        step = mixture.combine(laws, loglik)
        for token in range(V):
            p = float(np.exp(step.log_p[0, token]))
            if p == 0.0:
                continue
            log_resp = np.array([step.log_amplitude[0, s] + laws[s][0, token] for s in range(len(mixture.premises))])
            credit = mixture.population_amplitudes((log_resp - step.log_mu[0, token])[None])[0]
            branch = copy.deepcopy(oracle)
            branch.step(0, token, credit, t + 1)
            walk(compiled.rule.successor(window[None], np.array([token]))[0], branch, issued + credit, weight * p, t + 1)

    walk(np.asarray(compiled.window), Oracle(compiled, 1), np.zeros(L), 1.0, 0)
    return out


@pytest.mark.parametrize("data, horizon", [
    (toy(length=2), 7), (toy(length=3, deletion="block", block=2), 7),
    (chat(length=3, deletion="message", delimiter="/"), 5), (chat(length=3, pinned=1), 5),
])
def test_the_exact_ledger_is_the_mean_over_every_path(data, horizon):
    """The extended chain (page-state x age) gives, at every step, the probability-weighted mean of
    the oracle's ledger over every path (to rounding), and issued = retired + held."""
    compiled = compile_scenario(validate(data))
    curves = ledger_curves(compiled, build_chain(compiled), horizon)
    brute = every_path(compiled, horizon)
    for got, want in zip((curves.issued, curves.retired, curves.held, curves.age), brute):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(curves.issued, curves.retired + curves.held, atol=1e-12)


def test_stationary_ledger_closed_forms_and_the_long_run():
    """At stationarity: under fifo every token is deleted at age k, so the turnover is k and the
    window holds k tokens of credit; under block B the deleted ages are k, k - 1, .. k - B + 1 and
    the window holds k - (B - 1) / 2 tokens on average; Little's law (held = rate x turnover); and
    the forward recursion tends to the stationary figures (in the mean over a whole number of
    block cycles: the long-run law is a Cesàro limit)."""
    for data, turnover in [(chat(length=5), 5.0), (chat(length=5, deletion="block", block=3), 4.0),
                           (chat(length=4, deletion="message", delimiter="/"), None)]:
        compiled = compile_scenario(validate(data))
        pc = build_chain(compiled)
        st = stationary_ledger(compiled, pc)
        labels = compiled.mixture.labels
        held = sum(st[label]["held"] for label in labels)
        rate = sum(st[label]["issued_per_step"] for label in labels)
        assert rate == pytest.approx(1.0, abs=1e-12) and st["balance_residual"] < 1e-12
        if turnover is not None:  # ages at deletion are the same for every token: so is every population's turnover
            assert held == pytest.approx(turnover, abs=1e-12)
            for label in labels:
                assert st[label]["turnover"] == pytest.approx(turnover, abs=1e-9)
        for label in labels:
            assert st[label]["held"] == pytest.approx(st[label]["issued_per_step"] * st[label]["little"], abs=1e-12)
            assert st[label]["turnover"] == pytest.approx(st[label]["little"], rel=1e-9)
        long = ledger_curves(compiled, pc, 3000)  # block deletes in phase: its figures cycle, their mean over 60 steps converges
        for j, label in enumerate(labels):
            assert long.held[-60:, j].mean() == pytest.approx(st[label]["held"], abs=1e-6)
            assert (long.issued[-1, j] - long.issued[-61, j]) / 60 == pytest.approx(st[label]["issued_per_step"], abs=1e-6)


def within(values: np.ndarray, exact: float, sigmas: float = 4.5) -> bool:
    return abs(values.mean() - exact) <= sigmas * values.std(ddof=1) / np.sqrt(len(values)) + 1e-12


@pytest.mark.parametrize("data", [toy(length=4, deletion="block", block=2), chat(length=4, deletion="message", delimiter="/")])
def test_simulation_agrees_with_the_exact_ledger(data):
    data = copy.deepcopy(data)
    data["run"].update(replicates=4000, steps=40)
    model = EcologyModel(validate(data))
    model.run_model()
    compiled = model.compiled
    curves = ledger_curves(compiled, build_chain(compiled), 40)
    book = model.state.ledger
    for j in range(len(compiled.mixture.labels)):
        assert within(model.credit[:, j], curves.issued[-1, j])
        assert within(book.retired[:, j], curves.retired[-1, j])
        assert within(book.held[:, j], curves.held[-1, j])
        assert within(book.age[:, j], curves.age[-1, j])


def test_no_deletion_issues_the_initial_amplitude_per_step():
    """Under none at T = 1 the amplitudes are martingales: E[issued_L(t)] = E[held_L(t)] = t A_L(W_0)
    (0.9 t and 0.1 t for the toy); nothing is retired; at T != 1 the closed form is refused."""
    data = toy(deletion="none")
    data["run"].update(replicates=4000, steps=50)
    model = EcologyModel(validate(data))
    model.run_model()
    exact = unbounded_ledger(model.compiled, 50)
    np.testing.assert_allclose(exact[-1], [45.0, 5.0], atol=1e-12)
    for j in range(2):
        assert within(model.credit[:, j], exact[-1, j]) and within(model.state.ledger.held[:, j], exact[-1, j])
    assert not model.state.ledger.retired.any()
    data["sampling"] = {"temperature": 0.5}
    with pytest.raises(ScenarioError, match="temperature 1"):
        unbounded_ledger(compile_scenario(validate(data)), 50)


def test_an_exact_ledger_over_the_work_budget_is_refused_in_one_line():
    compiled = compile_scenario(validate(toy()))
    with pytest.raises(TooMuchWork) as err:
        ledger_curves(compiled, build_chain(compiled), 1000, max_work=10**5)
    assert "--horizon" in str(err.value) and "\n" not in str(err.value)


def test_run_writes_and_prints_the_ledger(tmp_path, capsys):
    """``ecology run --exact``: summary.json's ledger section (intervals, held share, turnover, the
    exact figures beside them) and one printed line per population; under none the closed form."""
    path = tmp_path / "toy.toml"
    path.write_text(tomli_w.dumps(toy()))
    assert main(["run", str(path), "--exact", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "ledger 'waluigi' at step 30 (95% intervals): issued" in out
    assert "turnover (mean age at deletion) 4 [4, 4] steps" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    row = summary["ledger"]["waluigi"]
    assert row["issued_lo"] <= row["issued"] <= row["issued_hi"] and row["turnover"] == pytest.approx(4.0)
    assert sum(summary["ledger"][label]["held_share"] for label in ("luigi", "waluigi")) == pytest.approx(1.0)
    assert row["exact"]["stationary"]["held"] == pytest.approx(4.0) and row["exact"]["turnover"] == pytest.approx(4.0)
    assert row["issued"] == pytest.approx(row["retired"] + row["held"])
    path.write_text(tomli_w.dumps(toy(deletion="none")))
    assert main(["run", str(path), "--exact", "--out", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "exact: issued 3, retired 0, held 3, turnover infinite (nothing deleted)" in out


def test_every_path_walks_every_branch():
    """A check of the checker: the brute force issues one token of credit per step in all (its
    paths' probabilities sum to 1)."""
    brute = every_path(compile_scenario(validate(toy(length=2))), 3)
    np.testing.assert_allclose(brute[0].sum(axis=1), np.arange(4), atol=1e-12)
