"""`ecology decompose`: EM recovers known mixtures, the written scenario reproduces the fitted
law, the trivial decompositions reproduce mu, determinism, one-line errors."""

import itertools
import json

import numpy as np
import pytest

from ecology.cli import main
from ecology.core.compile import compile_scenario
from ecology.decompose import Request, decompose, summary
from ecology.decompose.data import exact_storylines, fitting_scenario, sample_storylines
from ecology.decompose.families import emission_counts
from ecology.decompose.fit import fit_mixture
from ecology.decompose.tables import fit_table
from ecology.numerics import logsumexp
from ecology.scenario import load, validate

from .conftest import SCENARIOS


def iid_and_cycle() -> dict:
    """An i.i.d. premise and a cycle with slip on three tokens."""
    return {
        "name": "iid_cycle", "vocabulary": {"tokens": ["a", "b", "c"]}, "context": {"length": 4},
        "run": {"steps": 20, "replicates": 50, "seed": 3},
        "simulacra": {"noise": {"kind": "iid", "probs": {"a": 0.5, "b": 0.3, "c": 0.2}},
                      "loop": {"kind": "cycle", "sequence": ["a", "b", "c"], "slip": 0.05}},
        "premises": {"noise": {"prior": 0.6, "cast": ["noise"]}, "loop": {"prior": 0.4, "cast": ["loop"]}},
    }


def exact_fit(scenario, families, K, restarts=3, seed=0):
    data = exact_storylines(compile_scenario(fitting_scenario(scenario)))
    return fit_mixture(families, K, data, list(scenario.vocabulary.tokens), scenario.context.length, seed, restarts)


def test_em_recovers_alices_three_coins():
    """Exact data (all 2^7 storylines weighted by their probability): the maximum is the truth,
    and EM reaches it to 1e-3 in the biases and priors (it converges slowly: the three binomial
    mixtures of 7 tosses are close)."""
    s = load(SCENARIOS / "alice_coins.toml")
    fit = exact_fit(s, ["iid"], 3)
    heads = np.array([c.emit[0, 0] for c in fit.components])
    order = np.argsort(heads)
    assert fit.converged
    np.testing.assert_allclose(heads[order], [0.2, 0.5, 0.8], atol=1e-3)
    np.testing.assert_allclose(fit.prior[order], [0.25, 0.5, 0.25], atol=1e-3)


def test_em_recovers_an_iid_and_a_cycle():
    s = validate(iid_and_cycle())
    fit = exact_fit(s, ["iid", "cycle"], 2)
    families = {c.family: (c, p) for c, p in zip(fit.components, fit.prior)}
    assert set(families) == {"iid", "cycle"}
    cycle, p_cycle = families["cycle"]
    noise, p_noise = families["iid"]
    assert cycle.structure.spec.sequence == ["a", "b", "c"]
    assert cycle.values["slip"] == pytest.approx(0.05, abs=1e-4)
    np.testing.assert_allclose(noise.emit[0], [0.5, 0.3, 0.2], atol=1e-4)
    assert (p_noise, p_cycle) == (pytest.approx(0.6, abs=1e-4), pytest.approx(0.4, abs=1e-4))


def test_em_on_samples_recovers_coins_within_sampling_error():
    """2000 sampled storylines of 7 tosses from coins of bias 0.1 and 0.9 (prior 1/2 each): the
    coins are told apart from 7 tosses with error probability below 1e-3, so the estimates are the
    per-coin maximum-likelihood ones: bias standard error sqrt(0.09 / 7000) = 0.0036 and prior
    standard error sqrt(0.25 / 2000) = 0.011; the tolerances are 5 of them."""
    table = load(SCENARIOS / "alice_coins.toml").model_dump(mode="json", exclude_none=True)
    table["simulacra"]["heads_biased"]["p"] = 0.9
    table["simulacra"]["tails_biased"]["p"] = 0.1
    del table["premises"]["fair"]
    s = validate(table)
    data = sample_storylines(s, 2000, 11)
    fit = fit_mixture(["iid"], 2, data, ["H", "T"], 6, 0, 3)
    order = np.argsort([c.emit[0, 0] for c in fit.components])
    np.testing.assert_allclose([fit.components[j].emit[0, 0] for j in order], [0.1, 0.9], atol=5 * 0.0036)
    np.testing.assert_allclose(fit.prior[order], [0.5, 0.5], atol=5 * 0.011)


def test_written_scenario_reproduces_the_fitted_next_token_law():
    """The fitted law computed inside EM, ``sum_j pi_j q_j(w t) / sum_j pi_j q_j(w)`` from the
    emission counts, equals the written scenario's ``mu(t | w)`` from Mixture.read, on every window."""
    s = validate(iid_and_cycle())
    fit = exact_fit(s, ["iid", "cycle"], 2, restarts=2)
    written = compile_scenario(validate(fit_table(s, fit, ["iid", "cycle"])))
    V, k = 3, 4
    windows = np.array([[V] * (k - n) + list(h) for n in range(k + 1)
                        for h in itertools.product(range(V), repeat=n)])
    law = np.exp(written.mixture.read(windows).log_mu)

    def log_joint(seqs):
        ll = np.stack([c.log_likelihood(emission_counts(c.structure.machine, seqs, V)) for c in fit.components], axis=1)
        return logsumexp(np.log(fit.prior)[None, :] + ll, axis=1)

    inside = np.stack([np.exp(log_joint(np.column_stack([windows, np.full(len(windows), t)])) - log_joint(windows))
                       for t in range(V)], axis=1)
    np.testing.assert_allclose(law, inside, atol=1e-12)


@pytest.fixture(scope="module")
def alice_report():
    s = load(SCENARIOS / "alice_coins.toml")
    return summary(decompose(s, Request(["iid"], [1, 3], restarts=2, storylines=400)))


def test_kl_is_zero_for_mu_itself_and_the_trivial_decompositions(alice_report):
    rows = {row["decomposition"]: row for row in alice_report["table"]}
    assert rows["input"]["kl_mean"] == 0.0
    for name in ("single premise mu", "one premise per storyline", "fit K=3"):
        assert 0.0 <= rows[name]["kl_mean"] < 1e-8, name  # never a negative KL
    # same token law, different stories
    held = {rows[n]["heldout_loglik"] for n in ("input", "single premise mu", "one premise per storyline")}
    assert max(held) - min(held) < 1e-12
    assert rows["single premise mu"]["amplitude_entropy"] == 0.0
    assert rows["one premise per storyline"]["amplitude_entropy"] > rows["input"]["amplitude_entropy"] + 0.1
    assert rows["fit K=1"]["defect_max"] == 0.0 and rows["input"]["defect_max"] > 0.01
    assert rows["fit K=1"]["kl_mean"] > 0.01


def test_deterministic_with_a_seed():
    s = load(SCENARIOS / "alice_coins.toml")
    request = dict(storylines=300, restarts=2, data="samples", length=10)
    a = summary(decompose(s, Request(["iid"], [2], seed=5, **request)))
    b = summary(decompose(s, Request(["iid"], [2], seed=5, **request)))
    c = summary(decompose(s, Request(["iid"], [2], seed=6, **request)))
    assert json.dumps(a["table"]) == json.dumps(b["table"])
    assert json.dumps(a["fits"]) == json.dumps(b["fits"])
    assert json.dumps(a["fits"]) != json.dumps(c["fits"])


def test_cli_writes_a_runnable_decomposition(tmp_path, capsys):
    out = tmp_path / "dec"
    assert main(["decompose", str(SCENARIOS / "alice_coins.toml"), "--family", "iid", "--components", "1:2",
                 "--restarts", "2", "--compare", str(SCENARIOS / "alice_coins.toml"), "--out", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [row["decomposition"] for row in report["table"]]
    assert names == ["fit K=1", "fit K=2", "input", "single premise mu", "one premise per storyline",
                     "compare alice_coins.toml"]
    for file in ("fitted_k1.toml", "fitted_k2.toml", "single.toml", "storylines.toml", "report.json", "report.txt",
                 "table.csv", "stories.png", "comparison.png"):
        assert (out / file).is_file(), file
    assert main(["validate", str(out / "fitted_k2.toml")]) == 0
    assert main(["run", str(out / "fitted_k2.toml"), "--steps", "5", "--replicates", "10",
                 "--out", str(tmp_path / "run"), "--json"]) == 0


@pytest.mark.parametrize("argv, expected", [
    (["--family", "iid,plumber", "--components", "2"], "--family: unknown family 'plumber'"),
    (["--family", "iid", "--components", "70"], "--components: K = 70 needs at least 139 free parameters"),
    (["--family", "iid", "--components", "3:1"], "--components: '3:1': need 1 <= K1 <= K2"),
])
def test_bad_requests_fail_with_one_line(argv, expected, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["decompose", str(SCENARIOS / "alice_coins.toml"), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {expected}"), err
    assert not out.exists()


def two_constants(eps: float) -> dict:
    return {
        "name": "two_constants", "vocabulary": {"tokens": ["F", "U"]}, "context": {"length": 5},
        "simulacra": {"f": {"kind": "constant", "token": "F", "eps": eps},
                      "u": {"kind": "constant", "token": "U", "eps": eps}},
        "premises": {"f": {"prior": 0.7, "cast": ["f"]}, "u": {"prior": 0.3, "cast": ["u"]}},
    }


def test_floors_of_1e_300_fit_without_underflow_or_nan():
    """Storylines with one slip have probability ~1e-300 and two slips underflow to 0. The fit
    stays finite, the priors come back, and the written scenario's next-token law equals mu's to
    1e-12 on every window of probability above e^-100. (Windows of probability ~1e-300 carry no
    weight in the likelihood, so the fit does not pin mu down there: a window with one F and one U
    is explained by whichever floor the fit kept.)"""
    s = validate(two_constants(1e-300))
    fit = exact_fit(s, ["constant"], 2)
    assert np.isfinite(fit.log_likelihood) and np.all(np.isfinite(fit.prior))
    assert sorted(fit.prior) == [pytest.approx(0.3, abs=1e-9), pytest.approx(0.7, abs=1e-9)]
    written = compile_scenario(validate(fit_table(s, fit, ["constant"])))
    windows = np.array([[2] * (5 - n) + list(h) for n in range(6) for h in itertools.product(range(2), repeat=n)])
    truth = compile_scenario(s).mixture.read(windows)
    got = written.mixture.read(windows)
    assert not np.isnan(got.log_mu[np.isfinite(got.free_energy)]).any()
    fine = truth.free_energy < 100
    np.testing.assert_allclose(np.exp(got.log_mu[fine]), np.exp(truth.log_mu[fine]), atol=1e-12)


def test_identical_premises_tie_without_nan():
    """Two identical fair coins are one coin: K = 2 reaches the K = 1 likelihood, finite, with
    both components the fair coin (the split between them is arbitrary)."""
    table = load(SCENARIOS / "alice_coins.toml").model_dump(mode="json", exclude_none=True)
    for name in ("heads_biased", "tails_biased"):
        table["simulacra"][name]["p"] = 0.5
    s = validate(table)
    one, two = exact_fit(s, ["iid"], 1), exact_fit(s, ["iid"], 2)
    assert two.log_likelihood == pytest.approx(one.log_likelihood, abs=1e-10)  # rounding of logsumexp
    # splitting the fair coin into 0.5 +- d costs O(d^2) at most in log-likelihood, so EM's stopping
    # rule (gain below 1e-11) leaves d of order 1e-4
    np.testing.assert_allclose([c.emit[0, 0] for c in two.components], 0.5, atol=2e-3)
    assert np.all(np.isfinite(two.prior)) and two.prior.sum() == pytest.approx(1.0)


def test_markov_premises_are_recovered():
    """A fair coin and a repeater (an order-1 Markov premise) from the semiotic-style mixture:
    markov1 recovers the repeater's stay probability and its prior."""
    data = {
        "name": "repeat", "vocabulary": {"tokens": ["H", "T"]}, "context": {"length": 5},
        "simulacra": {"fair": {"kind": "coin", "heads": "H", "tails": "T"},
                      "rep": {"start": "s", "states": {"s": {"emit": {"H": 0.5, "T": 0.5}, "on": {"H": "h", "T": "t"}},
                                                        "h": {"emit": {"H": 0.9, "T": 0.1}, "on": {"T": "t"}},
                                                        "t": {"emit": {"H": 0.1, "T": 0.9}, "on": {"H": "h"}}}}},
        "premises": {"fair": {"prior": 0.6, "cast": ["fair"]}, "rep": {"prior": 0.4, "cast": ["rep"]}},
    }
    fit = exact_fit(validate(data), ["iid", "markov1"], 2)
    families = {c.family: (c, p) for c, p in zip(fit.components, fit.prior)}
    assert set(families) == {"iid", "markov1"}
    rep, prior = families["markov1"]
    np.testing.assert_allclose(rep.emit[1:], [[0.9, 0.1], [0.1, 0.9]], atol=1e-4)
    assert prior == pytest.approx(0.4, abs=1e-4)


def test_markov2_premise_is_written_and_reproduces_mu():
    """A single order-2 premise (its law depends on the last two tokens) is in the markov2 family:
    K = 1 recovers it, and the written automaton's next-token law equals mu on every window."""
    states = {"start": {"emit": {"a": 0.5, "b": 0.5}, "on": {"a": "a", "b": "b"}},
              "a": {"emit": {"a": 0.3, "b": 0.7}, "on": {"a": "aa", "b": "ab"}},
              "b": {"emit": {"a": 0.6, "b": 0.4}, "on": {"a": "ba", "b": "bb"}}}
    law = {"aa": 0.1, "ab": 0.8, "ba": 0.35, "bb": 0.95}
    for ctx, p_a in law.items():
        states[ctx] = {"emit": {"a": p_a, "b": 1.0 - p_a}, "on": {"a": ctx[1] + "a", "b": ctx[1] + "b"}}
    s = validate({"name": "order2", "vocabulary": {"tokens": ["a", "b"]}, "context": {"length": 5},
                  "simulacra": {"m": {"start": "start", "states": states}},
                  "premises": {"m": {"prior": 1.0, "cast": ["m"]}}})
    fit = exact_fit(s, ["markov2"], 1, restarts=1)
    written = compile_scenario(validate(fit_table(s, fit, ["markov2"])))
    windows = np.array([[2] * (5 - n) + list(h) for n in range(6) for h in itertools.product(range(2), repeat=n)])
    np.testing.assert_allclose(np.exp(written.mixture.read(windows).log_mu),
                               np.exp(compile_scenario(s).mixture.read(windows).log_mu), atol=1e-12)


def story(values: list[float], steps: int = 5, storylines: int = 3) -> np.ndarray:
    """(steps, storylines, labels) amplitudes, label j constant at values[j]."""
    return np.broadcast_to(np.array(values, dtype=float), (steps, storylines, len(values))).copy()


def test_a_premise_keeps_its_colour_in_every_decomposition_whatever_its_name_or_order():
    from ecology.plots import STORY_OTHER, STORY_PALETTE, story_colours

    stories = [("input", ["fair", "heads", "tails"], story([0.5, 0.3, 0.2])),
               ("fit K=3", ["iid0", "iid1", "iid2"], story([0.21, 0.49, 0.3])),  # the same three, reordered
               ("fit K=4", ["a", "b", "c", "d"], story([0.25, 0.25, 0.3, 0.2])),  # fair split in two halves
               ("many", ["x", "other (7)"], story([0.5, 0.5]))]
    input_, k3, k4, many = story_colours(stories)
    assert input_ == {"fair": STORY_PALETTE[0], "heads": STORY_PALETTE[1], "tails": STORY_PALETTE[2]}
    assert k3 == {"iid0": input_["tails"], "iid1": input_["fair"], "iid2": input_["heads"]}
    assert k4["c"] == input_["heads"] and k4["d"] == input_["tails"]
    assert {k4["a"], k4["b"]} == {STORY_PALETTE[3], STORY_PALETTE[4]}  # new stories, new colours
    assert many == {"x": input_["fair"], "other (7)": STORY_OTHER}


def test_decompose_figures_keep_titles_and_legends_apart_with_long_names_and_many_premises():
    """Every title, the figure title and every legend lie inside the figure and overlap none of
    the others, with a 150-character scenario name, long decomposition names and 8 rows of 6 premises."""
    from ecology.plots import amplitude_stories_figure, decomposition_comparison_figure

    rng = np.random.default_rng(0)
    name = "a_scenario_with_a_long_name_" * 5
    stories = []
    for i in range(8):
        amp = rng.dirichlet(np.ones(6), size=(24, 10))
        labels = [f"premise_with_a_long_name_{j}" for j in range(5)] + ["other (17)"]
        stories.append(("input" if i == 0 else f"compare {'decomposition_file_' * 4}{i}.toml", labels, amp))
    rows = [{"premises": K, "bic": 100.0 - K, "defect_mean": 0.01 * K, "defect_max": 0.02 * K} for K in range(1, 9)]
    for fig in (amplitude_stories_figure(stories, name),
                decomposition_comparison_figure(rows, name, {"premises": 3, "bic": 95.0, "defect_mean": 0.02,
                                                             "defect_max": 0.05})):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        texts = [fig._suptitle] + [ax.title for ax in fig.axes if ax.get_title()] + [
            ax._left_title for ax in fig.axes if ax._left_title.get_text()]
        boxes = [t.get_window_extent(renderer) for t in texts] + [
            ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
        frame = fig.bbox
        for i, box in enumerate(boxes):
            assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1
            for other in boxes[i + 1:]:
                assert not box.overlaps(other)
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_a_scenario_with_a_name_of_the_longest_length_decomposes_into_valid_scenarios():
    s = load(SCENARIOS / "alice_coins.toml", {"name": "n" * 64})
    result = decompose(s, Request(["iid"], [1], restarts=1))
    names = [d["table"]["name"] for d in result["decompositions"] if d["kind"] in ("fitted", "single", "storylines")]
    assert names == ["n" * 57 + "_fit_k1", "n" * 57 + "_single", "n" * 53 + "_storylines"]
    assert all(validate(d["table"]).name == d["table"]["name"] for d in result["decompositions"])
