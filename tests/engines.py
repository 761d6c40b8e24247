"""Helpers shared by the engine tests (not collected: the name does not start with ``test_``).

What they build and compare: a model of a scenario table under one engine (:func:`build`), run to
its end step by step or by a schedule of blocks (:func:`drive`, :func:`simulate`); two models
compared on everything the engines guarantee to share (:func:`assert_same`: identical tokens,
rasters, speakers, first hitting times, holding, occupation counts, windows and automaton states; every ``steps.csv``
column, trajectory, amplitude, credit and likelihood within ``TOLERANCE``, relative and absolute);
numpy against compiled step by step and compiled step by step against schedules of blocks
(:func:`assert_engines_agree`); and a random scenario of multi-state simulacra with turns
(:func:`random_chat_scenario`).
"""

import copy

import numpy as np

from ecology.core.compile import compile_scenario
from ecology.model import EcologyModel
from ecology.scenario import validate

TOLERANCE = 1e-12

def build(data: dict, engine: str) -> EcologyModel:
    data = copy.deepcopy(data)
    data.setdefault("run", {})["engine"] = engine
    model = EcologyModel(validate(data))
    assert model.engine.name == engine, model.engine_note
    return model


def simulate(data: dict, engine: str, schedule=None) -> EcologyModel:
    """The model after all its steps: step by step, or by ``schedule`` (``"blocks"``: one
    ``run_model()``; a list: ``advance(n)`` for each number, ``step()`` for each ``"s"``), then
    step by step to the end."""
    return drive(build(data, engine), schedule)


def drive(model: EcologyModel, schedule) -> EcologyModel:
    if schedule == "blocks":
        model.run_model()
    for item in schedule if isinstance(schedule, list) else []:
        if model.running:
            model.step() if item == "s" else model.advance(min(item, model.n_steps - model.generated))
    while model.running:
        model.step()
    return model


def assert_same(a: EcologyModel, b: EcologyModel, tolerance: float = TOLERANCE) -> None:
    """Everything of the guarantee; ``tolerance = 0`` for bit-for-bit."""
    for name in ("printed", "speakers", "premise_speakers", "raster"):
        assert np.array_equal(np.array(getattr(a, name)), np.array(getattr(b, name))), name
    assert np.array_equal(a.reached_at, b.reached_at)
    assert np.array_equal(a.holding, b.holding)
    for counts_a, counts_b, name in zip(a.engine.occupation, b.engine.occupation, a.engine.occupation._fields):
        assert np.array_equal(counts_a, counts_b), f"occupation {name}"
    assert np.array_equal(a.context.window, b.context.window)
    table_a, table_b = a.datacollector.get_model_vars_dataframe(), b.datacollector.get_model_vars_dataframe()
    assert list(table_a.columns) == list(table_b.columns)
    if tolerance == 0:
        assert table_a.equals(table_b)
    close = dict(rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(table_b.to_numpy(float), table_a.to_numpy(float), **close)
    np.testing.assert_allclose(np.array(b.trajectories), np.array(a.trajectories), **close)
    np.testing.assert_allclose(b.amplitudes, a.amplitudes, **close)
    np.testing.assert_allclose(b.credit, a.credit, **close)
    for premise_a, premise_b in zip(a.premise_agents, b.premise_agents):
        assert np.array_equal(premise_a.state, premise_b.state)
        np.testing.assert_allclose(premise_b.log_likelihood, premise_a.log_likelihood, **close)


def assert_engines_agree(data: dict, schedules=("blocks",)) -> EcologyModel:
    """numpy against compiled step by step (to 1e-12), and compiled step by step against each
    schedule of blocks (bit for bit)."""
    stepwise = simulate(data, "compiled")
    assert_same(simulate(data, "numpy"), stepwise)
    for schedule in schedules:
        assert_same(stepwise, simulate(data, "compiled", schedule), tolerance=0)
    return stepwise


def random_chat_scenario(rng):
    """A random scenario with several multi-state simulacra and turns, for reader properties."""
    tokens = ["a", "b", "c"]
    def law():
        w = rng.random(3) + 0.05
        return dict(zip(tokens, (w / w.sum()).tolist()))
    def automaton():
        states = {f"s{i}": {"emit": law(), "on": {t: f"s{rng.integers(3)}" for t in tokens if rng.random() < 0.5}}
                  for i in range(3)}
        return {"start": "s0", "states": states}
    table = {
        "name": "random",
        "vocabulary": {"tokens": tokens},
        "context": {"length": int(rng.integers(1, 9)), "deletion": "fifo"},
        "simulacra": {f"m{i}": automaton() for i in range(3)},
        "premises": {
            "duet": {"prior": 0.5, "cast": ["m0", "m1"], "turns": {"every": int(rng.integers(1, 3))}},
            "trio": {"prior": 0.3, "cast": ["m0", "m1", "m2"], "turns": {"after": "c"}},
            "solo": {"prior": 0.2, "cast": ["m2"]},
        },
    }
    return compile_scenario(validate(table))
