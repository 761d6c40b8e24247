"""Criteria: which page-states count as "absorbed" (the user's choice, Remark 5).

Each criterion is a predicate on a batch of page-states, shared by the simulator and by the
exact analyser. Two different things are reported for each: the criterion is *reached* at the
first step at which it holds (the first hitting time ``T``; "reached by t" means ``T <= t``),
and it is *holding* at step ``t`` when it holds on the page-state of step ``t``. The two agree
only when the criterion's set of page-states is closed (never left once entered); the exact
analyser says whether it is.

- ``window_only = [tokens]``: the last ``k`` positions hold only those tokens (so no pad: the
  window is full). Under ``deletion = "none"`` this looks at the most recent ``k`` tokens.
- ``population = "label"``, ``above = x``: the label's total amplitude is greater than ``x``
  by more than ``TIE_TOLERANCE`` (see :func:`above`): amplitudes within ``1e-12`` of the
  threshold count as *at* it, so an exact tie (e.g. amplitude 1/2 computed as 0.5000000000000001
  by one reader and 0.4999999999999999 by another) is decided the same way by the simulator,
  the exact analyser and the studies, whatever the rounding.
- ``periodic = P``: the page-state equals the page-state ``d`` steps earlier for some
  ``1 <= d <= P``; this needs the ``P`` most recently deleted tokens (the *extended* window,
  ``memory = P`` columns before the page-state). A window that never deletes never repeats.
"""

from __future__ import annotations

import numpy as np

from .context import repeats
from .scenario import Criterion


class WindowOnly:
    def __init__(self, name: str, tokens: list[int], length: int, n_tokens: int):
        self.name = name
        self.length = length
        self.allowed = np.zeros(n_tokens + 2, dtype=bool)
        self.allowed[tokens] = True

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        return np.all(self.allowed[extended[:, -self.length :]], axis=1)

    # Incremental form for the simulator: count the disallowed tokens among the last k.
    def start(self, last: np.ndarray) -> None:
        self.outside = np.sum(~self.allowed[last], axis=1)

    def update(self, entered: np.ndarray, left: np.ndarray) -> np.ndarray:
        self.outside += ~self.allowed[entered]
        self.outside -= ~self.allowed[left]
        return self.outside == 0


TIE_TOLERANCE = 1e-12  # amplitudes closer than this to a threshold are ties (not above it)


def above(amplitude: np.ndarray, threshold: float) -> np.ndarray:
    """The tie rule of every threshold: ``amplitude > threshold + TIE_TOLERANCE``."""
    return amplitude > threshold + TIE_TOLERANCE


class PopulationAbove:
    def __init__(self, name: str, label: int, above: float):
        self.name = name
        self.label = label
        self.above = above

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        return above(amplitudes[:, self.label], self.above)


class Periodic:
    def __init__(self, name: str, period: int, memory: int):
        self.name = name
        self.period = period
        self.memory = memory  # deleted-token columns before the page-state in ``extended``

    def holds(self, extended: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
        """On extended page-states of a ``fifo`` window (the exact analyser's extended chain; the
        simulator asks its context, :meth:`ecology.context.Context.repeats`, under any rule)."""
        return repeats(extended, self.period, self.memory)


def build_criteria(criteria: dict[str, Criterion], token_index: dict[str, int], labels: list[str], length: int):
    """Compile the scenario's named criteria; returns (criteria, memory needed)."""
    memory = max([c.periodic for c in criteria.values() if c.periodic is not None], default=0)
    out = []
    for name, c in criteria.items():
        if c.window_only is not None:
            out.append(WindowOnly(name, [token_index[t] for t in c.window_only], length, len(token_index)))
        elif c.population is not None:
            out.append(PopulationAbove(name, labels.index(c.population), c.above))
        else:
            out.append(Periodic(name, c.periodic, memory))
    return out, memory
