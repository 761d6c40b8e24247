"""Language models as premises in scenarios (issue 12): ``[premises.X] model = {...}`` beside
automaton premises, simulated, analysed exactly and swept through the same next-token function."""

import copy
import json
import math

import numpy as np
import pytest
import tomli_w

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.exact.chain import build_chain
from ecology.model import EcologyModel
from ecology.scenario import load, validate

from .conftest import SCENARIOS

# A first-order automaton over {a, b}: its law depends on the last token read (start: none yet).
LAWS = {"": {"a": 0.3, "b": 0.7}, "a": {"a": 0.8, "b": 0.2}, "b": {"a": 0.45, "b": 0.55}}


def markov_automaton() -> dict:
    states = {"s": {"emit": LAWS[""], "on": {"a": "a", "b": "b"}},
              "a": {"emit": LAWS["a"], "on": {"b": "b"}},
              "b": {"emit": LAWS["b"], "on": {"a": "a"}}}
    return {"start": "s", "states": states}


def markov_table(path, k: int) -> None:
    """The same law as a ``probs`` table with one row per context of at most ``k`` tokens."""
    rows = ["context,a,b"]
    contexts = [""]
    for length in range(1, k + 1):
        contexts += [" ".join(c) for c in np.ndindex(*([2] * length)) for c in [["ab"[i] for i in c]]]
    for context in contexts:
        law = LAWS[context.split(" ")[-1] if context else ""]
        rows.append(f"{context},{law['a']!r},{law['b']!r}")
    path.write_text("\n".join(rows) + "\n")


def pair(tmp_path, k=3, deletion="fifo") -> tuple[dict, dict]:
    """Two scenarios with the same mixture (the Markov premise beside a waluigi-like premise):
    one writes the Markov premise as an automaton, the other as a ``table`` model."""
    markov_table(tmp_path / "markov.csv", k)
    base = {
        "name": "pair", "vocabulary": {"tokens": ["a", "b"]},
        "context": {"length": k, "deletion": deletion, "prompt": ["a"], **({"block": 2} if deletion == "block" else {})},
        "run": {"steps": 40, "replicates": 300, "seed": 5, "drift": True},
        "simulacra": {"flip": {"start": "x", "states": {"x": {"emit": {"a": 0.9, "b": 0.1}, "on": {"b": "y"}},
                                                       "y": {"emit": {"a": 0.05, "b": 0.95}}}}},
        "premises": {"flip": {"prior": 0.4, "cast": ["flip"]}},
        "absorption": {"bs": {"window_only": ["b"]}},
    }
    automaton = copy.deepcopy(base)
    automaton["simulacra"]["markov"] = markov_automaton()
    automaton["premises"]["markov"] = {"prior": 0.6, "cast": ["markov"]}
    model = copy.deepcopy(base)
    model["premises"]["markov"] = {"prior": 0.6, "model": {"kind": "table", "file": str(tmp_path / "markov.csv"),
                                                          "values": "probs"}}
    return automaton, model


@pytest.mark.parametrize("deletion", ["fifo", "block"])
def test_table_premise_equal_to_automaton_gives_identical_run_and_chain(tmp_path, deletion):
    automaton, model = pair(tmp_path, deletion=deletion)
    compiled = compile_scenario(validate(model))
    assert [p.automaton is None for p in compiled.premises] == [False, True]
    assert compiled.premises[1].cast == ()
    a, m = EcologyModel(validate(automaton)), EcologyModel(validate(model))
    for _ in range(40):
        a.step()
        m.step()
        np.testing.assert_array_equal(a.context.window, m.context.window)
    np.testing.assert_allclose(m.amplitudes, a.amplitudes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.credit, a.credit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.drift, a.drift, rtol=0, atol=1e-12)
    assert m.premise_speakers and all((x == y).all() for x, y in zip(a.premise_speakers, m.premise_speakers))
    ca, cm = build_chain(compile_scenario(validate(automaton))), build_chain(compiled)
    np.testing.assert_array_equal(ca.windows, cm.windows)
    assert abs(ca.chain.P - cm.chain.P).max() < 1e-14


def test_model_premise_likelihood_is_the_product_of_its_conditionals(tmp_path):
    _, model = pair(tmp_path)
    mixture = compile_scenario(validate(model)).mixture
    window = np.array([[1, 0, 0]])  # b a a
    laws, loglik = mixture.likelihoods(window)
    expected = math.log(LAWS[""]["b"] * LAWS["b"]["a"] * LAWS["a"]["a"])
    assert loglik[1, 0] == pytest.approx(expected, abs=1e-14)
    np.testing.assert_allclose(np.exp(laws[1][0]), [LAWS["a"]["a"], LAWS["a"]["b"]], atol=1e-15)
    # the mixture by hand: the flip premise reads b (-> y) then a, a in state y
    flip = math.log(0.1 * 0.05 * 0.05)
    joint = np.array([math.log(0.4) + flip, math.log(0.6) + expected])
    amp = np.exp(joint - np.logaddexp(*joint))
    step = mixture.read(window)
    np.testing.assert_allclose(np.exp(step.log_amplitude[0]), amp, atol=1e-14)
    np.testing.assert_allclose(np.exp(step.log_mu[0]), amp[0] * np.array([0.05, 0.95]) + amp[1] * np.array([0.8, 0.2]),
                               atol=1e-14)


def test_trained_luigi_and_waluigi_simulation_agrees_with_exact_chain():
    """The n-gram luigi of scenarios/trained_luigi.toml beside the hand-written waluigi: the
    fraction of R = 3000 replicates that reached U^8 by step 120 lies within 5 sigma
    (sigma = sqrt(p (1 - p) / R), about 0.009) of the exact chain's probability."""
    scenario = load(SCENARIOS / "trained_luigi.toml", {"run.steps": 120, "run.replicates": 3000})
    compiled = compile_scenario(scenario)
    assert [p.automaton is None for p in compiled.premises] == [True, False]
    chain = build_chain(compiled)
    target = chain.holds(compiled.criteria[0])
    exact = float(chain.chain.hitting_curve(chain.initial, target, 120)[-1])
    model = EcologyModel(scenario)
    while model.running:
        model.step()
    got = float((model.reached_at[0] >= 0).mean())
    sigma = math.sqrt(exact * (1 - exact) / 3000)
    assert 0.05 < exact < 0.95
    assert abs(got - exact) < 5 * sigma, (got, exact, sigma)


def test_babygpt_exact_chain_is_the_trained_transformer_on_eight_states():
    """8 page-states from 111; each row is the transformer's law, and equals the table of its
    conditionals written when it was trained (scenarios/models/babygpt.csv)."""
    compiled = compile_scenario(load(SCENARIOS / "babygpt.toml"))
    chain = build_chain(compiled)
    assert chain.chain.n_states == 8 and chain.chain.P.nnz == 16
    table = {}
    for line in (SCENARIOS / "models" / "babygpt.csv").read_text().splitlines()[1:]:
        context, z0, z1 = line.split(",")
        z = np.array([float(z0), float(z1)])
        table[context] = np.exp(z - np.logaddexp(*z))
    P = chain.chain.P.toarray()
    labels = chain.labels()
    for i, label in enumerate(labels):
        for t in (0, 1):
            j = labels.index(" ".join(label.split()[1:] + [str(t)]))
            assert P[i, j] == pytest.approx(table[label][t], abs=1e-12)
    assert P[labels.index("1 1 1"), labels.index("1 1 1")] == pytest.approx(0.5029, abs=5e-5)
    assert P[labels.index("1 0 1"), labels.index("0 1 1")] == pytest.approx(0.9335, abs=5e-5)


def test_temperature_sweep_with_a_model_premise(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(SCENARIOS / "pydoc_chars.toml"), "--grid", "sampling.temperature=1,0.3",
                 "--replicates", "50", "--steps", "20", "--workers", "1", "--exact", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    import pandas as pd

    rows = pd.read_csv(out / "results.csv")
    assert list(rows["exact_n_states"]) == [81, 81]
    times = list(rows["consonants_exact_expected_hitting_time"])
    assert times[1] > 10 * times[0]  # colder sampling avoids the rare 'c c c c' far longer


def test_exact_hitting_time_at_low_temperature_is_finite():
    """T = 0.1 tempers the transformer's laws to ratios near 1e-50: no overflow, no NaN."""
    from ecology.exact.report import analyze

    report = analyze(compile_scenario(load(SCENARIOS / "pydoc_chars.toml", {"sampling.temperature": 0.1})))
    time = report["criteria"]["consonants"]["expected_hitting_time"]
    assert time is not None and 1e6 < time < 1e12


def write(tmp_path, data):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def babygpt(**premise) -> dict:
    with (SCENARIOS / "babygpt.toml").open("rb") as handle:
        import tomllib

        data = tomllib.load(handle)
    data["premises"]["gpt"] = {"prior": 1.0, **premise}
    return data


BAD_MODELS = {
    "unknown kind": ({"model": {"kind": "lstm", "file": "x"}}, "premises.gpt.model.kind: 'lstm' is not a model kind"),
    "missing file": ({"model": {"kind": "table", "file": "nope.csv"}}, "nope.csv: no such file"),
    "unknown key": ({"model": {"kind": "transformer", "file": "models/babygpt.npz", "layers": 2}},
                    "premises.gpt.model.layers: unknown key for kind 'transformer'"),
    "cast and model": ({"cast": ["x"], "model": {"kind": "table", "file": "x.csv"}},
                       "premises.gpt: give exactly one of 'cast' (simulacra) or 'model'"),
    "neither": ({}, "premises.gpt: give exactly one of 'cast' (simulacra) or 'model'"),
    "model not a table": ({"model": "babygpt.npz"}, "premises.gpt.model: Input should be a valid dictionary"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_bad_model_specs_give_one_line(name, tmp_path, capsys):
    premise, expected = BAD_MODELS[name]
    path = write(tmp_path, babygpt(**premise))
    (tmp_path / "models").symlink_to(SCENARIOS / "models")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_model_errors_at_run_and_analyze_are_one_line(tmp_path, capsys):
    # the transformer holds 3 tokens: a longer window is refused up front, naming context.length
    assert main(["validate", str(SCENARIOS / "babygpt.toml"), "--set", "context.length=5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context.length: 5 is longer than the context of the model of premises.gpt" in err
    assert main(["validate", str(SCENARIOS / "babygpt.toml"), "--set", "context.deletion=none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context.deletion: 'none' grows the window to 203 tokens" in err, err
    # a table lacking a context the chain reaches: named, exit 2, nothing written
    (tmp_path / "short.csv").write_text("context,0,1\n,0.0,0.0\n1,0.0,0.0\n1 1,0.0,0.0\n1 1 1,0.0,1.0\n")
    path = write(tmp_path, babygpt(model={"kind": "table", "file": "short.csv"}))
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context '1 1 0' is not in the table" in err, err
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "is not in the table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_model_premise_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "trained_luigi.toml"), "--steps", "30", "--replicates", "200",
                 "--set", "run.drift=true", "--exact", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["premises"]) == {"luigi", "waluigi"}
    for name in ("steps.csv", "replicates.csv", "premises.csv", "raster.png", "speakers.png", "scenario.toml"):
        assert (out / name).is_file(), name
    # the resolved copy names the model's file absolutely: it runs from anywhere
    assert main(["validate", str(out / "scenario.toml")]) == 0


def test_model_work_is_refused_up_front_naming_the_flag(capsys):
    """A model premise is re-read every step (R x read_cost per step) and once per page-state of
    the exact chain: both are estimated before anything runs."""
    assert main(["validate", str(SCENARIOS / "pydoc_chars.toml"), "--set", "run.replicates=10000000",
                 "--set", "run.steps=100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "re-read every window each step" in err and "--steps, --replicates" in err
    assert main(["analyze", str(SCENARIOS / "trained_luigi.toml"), "--set", "context.length=20",
                 "--max-work", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2,097,151 page-states" in err and "raise it with --max-work" in err


def test_decompose_a_trained_model():
    """decompose reads mu from the transformer premise (storylines of k + 1 = 4 tokens through its
    3-token context: the last token's conditional after the first three); the single-premise
    decomposition has the same law, and the input counts the transformer's weights."""
    from ecology.decompose import Request, decompose, summary

    report = summary(decompose(load(SCENARIOS / "babygpt.toml"), Request(["markov2"], [1], storylines=200, restarts=1)))
    rows = {row["decomposition"]: row for row in report["table"]}
    assert rows["input"]["params"] == sum(w.size for w in compile_scenario(load(SCENARIOS / "babygpt.toml"))
                                          .premises[0].model.weights.values())
    assert abs(rows["single premise mu"]["kl_mean"]) < 1e-12
    assert rows["single premise mu"]["heldout_loglik"] == pytest.approx(rows["input"]["heldout_loglik"], abs=1e-12)
    assert rows["fit K=1"]["kl_mean"] > 1e-3  # an order-2 Markov premise is not the transformer
