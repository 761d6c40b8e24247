"""A validated scenario compiled to arrays: premises (automata or language models), the mixture,
criteria, the deletion rule and the initial page-state (:class:`Compiled`). Simulation, exact
analysis, drift and decompositions all start from :func:`compile_scenario`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecology.core.budget import check_compile
from ecology.core.mixture import Mixture
from ecology.errors import ScenarioError
from ecology.kinds.criteria import build_criteria, build_sets
from ecology.kinds.deletion import DeletionRule, deletion_rule
from ecology.kinds.simulacra import CompiledPremise, build_premises
from ecology.scenario import Scenario


@dataclass
class Compiled:
    """A validated scenario turned into arrays: what both the simulator and the analyser run."""

    scenario: Scenario
    tokens: list[str]
    premises: list[CompiledPremise]
    mixture: Mixture
    criteria: list
    memory: int  # deleted tokens that the criteria need to see (``periodic``)
    window: np.ndarray  # the initial page-state
    rule: DeletionRule
    sets: list = field(default_factory=list)  # the named sets ([sets.NAME]), predicates like the criteria

    @property
    def tracked(self) -> list:
        """The criteria, then the named sets: every predicate the engines evaluate at every step
        (criterion ``i`` is row ``i`` of their holding arrays, set ``j`` row ``len(criteria) + j``)."""
        return self.criteria + self.sets

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def slides(self) -> bool:
        """Whether premises keep their likelihoods as the window slides (O(1) per step): a sliding
        rule and no reset token; otherwise they re-read the visible window every step (O(k))."""
        return self.rule.sliding and self.mixture.reset is None

    def label(self, window: np.ndarray) -> str:
        """A page-state as text: tokens joined by single spaces, pads included (``"N N F U"``)."""
        names = self.tokens + [self.scenario.vocabulary.pad, "<start>"]
        return " ".join(names[t] for t in window)


def compile_scenario(scenario: Scenario) -> Compiled:
    """Compile premises, mixture and criteria; reject a prompt impossible under every premise."""
    check_compile(scenario)
    tokens = list(scenario.vocabulary.tokens)
    index = {t: i for i, t in enumerate(tokens)}
    premises = build_premises(scenario)
    ctx = scenario.context
    mixture = Mixture(premises, len(tokens), scenario.sampling.temperature, index.get(ctx.reset))
    criteria, memory = build_criteria(scenario.absorption, index, mixture.labels, ctx.length)
    rule = deletion_rule(ctx, index, len(tokens))
    window = rule.initial_window([index[t] for t in ctx.prompt])
    sets = build_sets(scenario.sets, scenario.absorption, criteria, index, mixture.labels, ctx.length)
    compiled = Compiled(scenario, tokens, premises, mixture, criteria, memory, window, rule, sets)
    if mixture.read(window[None]).impossible[0]:
        raise ScenarioError(
            "context.prompt",
            f"the initial window '{compiled.label(window)}' has probability 0 under every premise; "
            "change the prompt or give some premise a law that can print it",
        )
    return compiled
