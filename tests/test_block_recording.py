"""The DataCollector fed a block of steps at once (``StepsCollector.collect_block``) holds what
Mesa's own ``collect``, called once per step with one reporter per column, would hold: the
same columns, bit for bit, and the same collection times; and the model's state, taken from the
engine when first read after a block, is the state after the last step."""

import copy

import mesa
import numpy as np
import pytest

from ecology.kinds import observables
from ecology.model import EcologyModel
from ecology.scenario import validate

from .conftest import table


class PerStepModel(EcologyModel):
    """The model recording the way it did before blocks were recorded at once: per step, the row
    of :func:`ecology.kinds.observables.row` into ``observables`` and Mesa's ``collect``."""

    def advance(self, steps):
        while steps > 0:
            size = 1 if self.config.run.drift else self.engine.block_size(steps)
            records = self.engine.run(self.rng.random((size, self.replicates)), self.generated)
            self._state = None
            for b in range(records.done):
                if self.config.run.drift:
                    self.drift = self.mixture.drift(self.context.window, self.current, self.compiled.rule,
                                                    self.engine.mixture_on)
                self.observables = observables.row(self, records, b)
                mesa.DataCollector.collect(self.datacollector, self)
            self.generated += records.done
            steps -= size
        self.running = self.generated < self.n_steps


@pytest.mark.parametrize("scenario, overrides", [
    ("waluigi", {}),
    ("chat", {}),
    ("waluigi", {"context": {"deletion": "block", "block": 2}}),
    ("waluigi", {"run": {"drift": True, "steps": 6}}),
    ("waluigi", {"run": {"engine": "numpy"}}),
])
def test_a_block_is_recorded_as_mesa_records_each_step(scenario, overrides):
    config = copy.deepcopy(table(scenario))
    config["run"].update(steps=30, replicates=64)
    for key, values in overrides.items():
        config.setdefault(key, {}).update(values)
    bulk, single = EcologyModel(validate(copy.deepcopy(config))), PerStepModel(validate(copy.deepcopy(config)))
    for model in (bulk, single):
        model.step()
        model.run_model()
    want, got = single.datacollector, bulk.datacollector
    assert list(got.model_vars) == list(want.model_vars)
    for column, values in want.model_vars.items():
        assert len(got.model_vars[column]) == config["run"]["steps"] + 1
        assert np.array_equal(np.array(got.model_vars[column]), np.array(values), equal_nan=True), column
        assert all(type(value) is float for value in got.model_vars[column]), column
    assert getattr(got, "_collection_steps", None) == getattr(want, "_collection_steps", None)
    assert got.get_model_vars_dataframe().equals(want.get_model_vars_dataframe())
    assert bulk.observables == {column: values[-1] for column, values in want.model_vars.items()}


def test_the_state_read_after_a_block_is_the_state_after_its_last_step():
    config = copy.deepcopy(table("waluigi"))
    config["run"].update(steps=12, replicates=16)
    blocked, stepped = EcologyModel(validate(copy.deepcopy(config))), EcologyModel(validate(copy.deepcopy(config)))
    blocked.advance(7)
    earlier = blocked.state
    for _ in range(7):
        stepped.step()
        assert stepped.state.token is not None  # read after every step
    assert np.array_equal(blocked.amplitudes, stepped.amplitudes)
    assert np.array_equal(blocked.state.ledger.held, stepped.state.ledger.held)
    blocked.run_model()
    assert blocked.state is not earlier  # a new block: the state is taken anew
    assert np.array_equal(earlier.amplitudes, stepped.amplitudes)  # and the one read before is left as it was
