"""Deletion rules and the reset token, in the simulator and in the exact chain."""

import copy

import numpy as np
import pytest

from ecology.core.compile import compile_scenario
from ecology.core.windows import after_reset
from ecology.exact.chain import build_chain, criterion_curves
from ecology.kinds.deletion import Block, Fifo, Message
from ecology.model import EcologyModel
from ecology.scenario import validate

from .conftest import table

N = 9  # pad in the hand examples


def grow(windows, token):
    windows = np.array(windows)
    return np.concatenate([windows, np.full((len(windows), 1), token)], axis=1)


def test_rules_by_hand():
    w = [[0, 1, 3, 2, 2, 3], [N, N, 0, 1, 3, 2], [0, 1, 1, 1, 1, 1]]
    message = Message(6, N, pinned=1, delimiter=3).apply(grow(w, 5))
    assert message.tolist() == [[N, 0, 2, 2, 3, 5], [N, 0, 1, 3, 2, 5], [0, 1, 1, 1, 1, 5]]
    block = Block(6, N, block=3).apply(grow(w, 5))
    assert block.tolist() == [[N, N, 2, 2, 3, 5], [N, 0, 1, 3, 2, 5], [N, N, 1, 1, 1, 5]]
    pinned = Fifo(6, N, pinned=2).apply(grow(w, 5))
    assert pinned.tolist() == [[0, 1, 2, 2, 3, 5], [N, 0, 1, 3, 2, 5], [0, 1, 1, 1, 1, 5]]
    fifo = Fifo(6, N).apply(grow(w, 5))
    assert fifo.tolist() == [row[1:] + [5] for row in w]


def test_after_reset_masks_up_to_the_last_reset():
    w = np.array([[0, 7, 1, 7, 2], [0, 1, 2, 3, 4], [7, 1, 1, 1, 1]])
    assert after_reset(w, 7, N).tolist() == [[N, N, N, N, 2], [0, 1, 2, 3, 4], [N, 1, 1, 1, 1]]


POLICIES = {
    "block": {"deletion": "block", "block": 4},
    "message": {"deletion": "message", "delimiter": "/"},
    "pinned": {"deletion": "fifo", "pinned": 2},
    "reset": {"deletion": "fifo", "reset": "/"},
    "pinned message": {"deletion": "message", "delimiter": "/", "pinned": 2},
}


@pytest.mark.parametrize("policy", list(POLICIES))
def test_policies_simulation_matches_exact_chain(policy):
    """The chat scenario at k = 6: simulated absorption and holding curves (4000 replicates)
    within 5 binomial standard deviations of the exact chain's, at every step."""
    data = copy.deepcopy(table("chat"))
    data["context"].update(POLICIES[policy], length=6)
    data["absorption"]["helpful_certain"] = {"population": "helpful", "above": 0.9}
    data["run"].update(steps=60, replicates=4000, seed=1)
    s = validate(data)
    compiled = compile_scenario(s)
    curves = criterion_curves(compiled, build_chain(compiled), 60, 100_000)
    model = EcologyModel(s)
    assert not model.sliding
    while model.running:
        model.step()
    df = model.datacollector.get_model_vars_dataframe()
    for name, c in curves.items():
        for kind in ("reached", "holding"):
            exact = np.array(c[kind])
            sd = np.sqrt(exact * (1 - exact) / 4000)
            column = f"{kind}_{name}"
            assert np.all(np.abs(df[column].to_numpy() - exact) <= 5 * sd + 1e-9), (policy, name, kind)


def test_rereading_and_sliding_readers_give_the_same_run(toy):
    """A reset token that is never printed forces the re-reading path: same seed, same run."""
    toy["run"].update(steps=80, replicates=500)
    sliding = EcologyModel(validate(toy))
    toy["vocabulary"]["tokens"] = ["F", "U", "E"]
    toy["context"]["reset"] = "E"
    rereading = EcologyModel(validate(toy))
    assert sliding.sliding and not rereading.sliding
    for m in (sliding, rereading):
        while m.running:
            m.step()
    assert np.array_equal(sliding.reached_at, rereading.reached_at)
    assert np.array_equal(sliding.context.window, rereading.context.window)


def test_periodic_criterion_under_block_deletion():
    """Under block deletion (B = 2, k = 6) an orbit's window alternates between 6 and 5 tokens, so
    its page-states repeat with period lcm(orbit, 2): 6 for the recital (missed by periodic = 4),
    4 for the tale (caught). The tale wins with probability 3/7 (first token: 1/4 vs 1/3)."""
    data = copy.deepcopy(table("dog"))
    data["context"].update(deletion="block", block=2)
    data["run"].update(steps=40, replicates=2000)
    model = EcologyModel(validate(data))
    while model.running:
        model.step()
    caught = model.reached_at[0] >= 0
    tale = np.exp(model.premise_agents[1].log_amplitude) > 0.5
    assert np.array_equal(caught, tale)
    assert abs(caught.mean() - 3 / 7) < 5 * np.sqrt((3 / 7) * (4 / 7) / 2000)
