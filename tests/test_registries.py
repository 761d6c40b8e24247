"""Every registered class checked the same way, whatever registers it (scikit-learn's
``parametrize_with_checks`` is the model): each deletion rule (:data:`ecology.kinds.deletion.RULES`),
criterion form (:data:`ecology.kinds.criteria.FORMS`), simulacrum kind
(:data:`ecology.kinds.simulacra.KINDS`) and observable (:data:`ecology.kinds.observables.OBSERVABLES`)
is collected from its registry, so a new class is checked without editing a list here -- and fails
at once with "no example for new ... : add one" until :data:`EXAMPLES` holds a small scenario for
it (the examples are kept here, by registered name, until they move onto the classes).

The checks, per class:

- its example validates, and its scenario uses the class (the rule deletes, the form decides a
  criterion, the kind is a cast member, the observable applies);
- every field of the class has a bad value in the example, and each bad value (put at its
  dotted path in the example's table) is refused with a one-line :class:`ScenarioError` naming that field;
- ``run.engine = "compiled"`` and ``"numpy"`` print identical tokens and give every ``steps.csv``
  column within 1e-12 (relative and absolute), the compiled engine running the class itself (no
  fallback to numpy);
- under each engine, where the page-state chain is finite and small: every window the simulation
  visits is a page-state of :func:`ecology.exact.chain.build_chain`, and the simulated ``reached``
  and ``holding`` curves of every criterion lie within 5 binomial standard deviations (+1e-9) of
  the exact ones at every step (1000 replicates: sd at most 0.016);
- under each engine, each observable's columns (spelled by its own ``column``) are in the table.
"""

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from ecology.core.compile import compile_scenario
from ecology.errors import ScenarioError
from ecology.exact.chain import build_chain, criterion_curves
from ecology.kinds.criteria import FORMS
from ecology.kinds.deletion import RULES, DeletionRule
from ecology.kinds.observables import (
    OBSERVABLES,
    Certain,
    Criteria,
    Drift,
    EffectivePremises,
    Entropy,
    FreeEnergy,
    Ledger,
    Majority,
    PopulationAmplitude,
    PremiseAmplitude,
    Surprisal,
)
from ecology.kinds.simulacra import KINDS
from ecology.model import EcologyModel
from ecology.scenario import ENGINES, validate

from .engines import TOLERANCE, build, drive

TOKENS = ["a", "b", "c"]
ECHO = {"start": "x", "states": {"x": {"emit": {"a": 0.7, "b": 0.2, "c": 0.1}, "on": {"b": "y"}},
                                 "y": {"emit": {"a": 0.1, "b": 0.8, "c": 0.1}, "on": {"a": "x"}}}}
EXACT_REPLICATES, EXACT_STEPS, EXACT_MAX_STATES = 1000, 12, 500


def scenario(simulacrum: dict | None = None, context: dict | None = None, absorption: dict | None = None,
             run: dict | None = None, premises: dict | None = None) -> dict:
    """A small scenario (3 tokens, k = 3, 12 steps, 64 replicates): premise ``subject`` casts the
    simulacrum ``subject`` (``simulacrum``, else a two-state automaton), premise ``background`` an
    iid source of every token (so every window can be read whatever the deletion rule)."""
    return {
        "name": "example", "vocabulary": {"tokens": TOKENS},
        "context": {"length": 3, "prompt": ["a"], **(context or {})},
        "run": {"steps": 12, "replicates": 64, "seed": 7, **(run or {})},
        "simulacra": {"background": {"kind": "iid", "probs": {"a": 0.5, "b": 0.3, "c": 0.2}},
                      "subject": copy.deepcopy(simulacrum or ECHO)},
        "premises": premises or {"background": {"prior": 0.4, "cast": ["background"]},
                                 "subject": {"prior": 0.6, "cast": ["subject"]}},
        "absorption": absorption or {"only_a": {"window_only": ["a"]}},
    }


@dataclass
class Example:
    """A registered class's example: its scenario ``table``; ``bad`` values of its fields as
    (dotted path, value) pairs, the field being the path's last key; why the exact chain is not
    compared (``no_exact``); for an observable, the columns it must add to the table."""

    table: dict
    bad: list[tuple[str, object]] = field(default_factory=list)
    no_exact: str | None = None
    columns: Callable[[EcologyModel], list[str]] | None = None


def labels(model: EcologyModel) -> list[str]:
    return list(model.mixture.labels)


def premise_names(model: EcologyModel) -> list[str]:
    return [premise.name for premise in model.compiled.premises]


STATISTICS = ("mean", "q10", "q50", "q90")
SHARED_LABEL = {"background": {"prior": 0.3, "cast": ["background"], "population": "shared"},
                "other": {"prior": 0.2, "cast": ["background"], "population": "shared"},
                "subject": {"prior": 0.5, "cast": ["subject"]}}
CRITERION = "absorption.decided"

EXAMPLES: dict[str, dict[str, Example]] = {
    "deletion rule": {
        "fifo": Example(scenario()),
        "none": Example(scenario(context={"deletion": "none"}),
                        no_exact="the window grows without bound: the page-state chain is infinite"),
        "block": Example(scenario(context={"deletion": "block", "block": 2}),
                         bad=[("context.block", 0), ("context.block", 3.5), ("context.block", 4)]),
        "message": Example(scenario(context={"deletion": "message", "delimiter": "c"}),
                           bad=[("context.delimiter", "z"), ("context.delimiter", 3)]),
    },
    "criterion form": {
        "window_only": Example(scenario(absorption={"decided": {"window_only": ["a", "b"]}}),
                               bad=[(f"{CRITERION}.window_only", []), (f"{CRITERION}.window_only", ["z"])]),
        "population": Example(scenario(absorption={"decided": {"population": "subject", "above": 0.5}}),
                              bad=[(f"{CRITERION}.population", "nobody"), (f"{CRITERION}.above", 1.5),
                                   (f"{CRITERION}.above", "half")]),
        "periodic": Example(scenario(absorption={"decided": {"periodic": 2}}),
                            bad=[(f"{CRITERION}.periodic", 0), (f"{CRITERION}.periodic", 1.5)]),
        "repeats": Example(scenario(context={"length": 4}, absorption={"decided": {"repeats": {"period": 2, "copies": 2}}}),
                           bad=[(f"{CRITERION}.repeats", {"period": 2, "copies": 1}),
                                (f"{CRITERION}.repeats", {"period": 2, "copies": 5}),
                                (f"{CRITERION}.repeats", {"period": 0, "copies": 2}),
                                (f"{CRITERION}.repeats", {"period": 2}),
                                (f"{CRITERION}.repeats", {"period": 2, "copies": 2, "length": 4})]),
        "windows": Example(scenario(absorption={"decided": {"windows": ["* a b", "b * c", "N N a"]}}),
                           bad=[(f"{CRITERION}.windows", []), (f"{CRITERION}.windows", ["a b"]),
                                (f"{CRITERION}.windows", ["a b z"]), (f"{CRITERION}.windows", "a b c")]),
    },
    "simulacrum kind": {
        "automaton": Example(scenario(ECHO), bad=[("simulacra.subject.start", "nowhere"),
                                                  ("simulacra.subject.states", {}),
                                                  ("simulacra.subject.states", {"x": {"emit": {"a": 1.5}}})]),
        "constant": Example(scenario({"kind": "constant", "token": "b", "eps": 0.1}),
                            bad=[("simulacra.subject.token", "z"), ("simulacra.subject.eps", 1.5)]),
        "iid": Example(scenario({"kind": "iid", "probs": {"a": 0.2, "b": 0.2, "c": 0.6}}),
                       bad=[("simulacra.subject.probs", {"a": 0.5}), ("simulacra.subject.probs", {"z": 1.0})]),
        "coin": Example(scenario({"kind": "coin", "heads": "a", "tails": "c", "p": 0.3}),
                        bad=[("simulacra.subject.heads", "z"), ("simulacra.subject.tails", "a"),
                             ("simulacra.subject.p", 2.0)]),
        "cycle": Example(scenario({"kind": "cycle", "sequence": ["a", "b", "b"], "slip": 0.1}),
                         bad=[("simulacra.subject.sequence", []), ("simulacra.subject.sequence", ["a", "z"]),
                              ("simulacra.subject.slip", -0.1)]),
        "waluigi": Example(scenario({"kind": "waluigi", "mask": "a", "reveal": "c", "p": 0.8, "eps": 0.05}),
                           bad=[("simulacra.subject.mask", "z"), ("simulacra.subject.reveal", "a"),
                                ("simulacra.subject.p", 1.5), ("simulacra.subject.eps", float("nan"))]),
    },
    "observable": {
        "PopulationAmplitude": Example(scenario(premises=SHARED_LABEL), columns=lambda model: [
            column for label in labels(model) for column in
            [PopulationAmplitude.column(label, stat) for stat in STATISTICS]
            + [Majority.column(label), Certain.column(label)]]),
        "PremiseAmplitude": Example(scenario(premises=SHARED_LABEL), columns=lambda model: [
            PremiseAmplitude.column(name, stat) for name in premise_names(model) for stat in STATISTICS]),
        "Entropy": Example(scenario(), columns=lambda model: [Entropy.column()]),
        "Surprisal": Example(scenario(), columns=lambda model: [Surprisal.column()]),
        "FreeEnergy": Example(scenario(), columns=lambda model: [FreeEnergy.column()]),
        "EffectivePremises": Example(scenario(), columns=lambda model: [EffectivePremises.column()]),
        "Ledger": Example(scenario(premises=SHARED_LABEL), columns=lambda model: [
            Ledger.column("generated"), Ledger.column("deleted"),
            *[Ledger.column("credit", label) for label in labels(model)]]),
        "Drift": Example(scenario(premises=SHARED_LABEL, run={"drift": True}), columns=lambda model: [
            Drift.column(name) for name in premise_names(model) + labels(model)]),
        "Criteria": Example(scenario(absorption={"only_a": {"window_only": ["a"]}, "repeats": {"periodic": 1}}),
                            columns=lambda model: [Criteria.column(kind, criterion.name) for criterion in model.criteria
                                                   for kind in ("reached", "holding")]),
    },
}

REGISTRIES: dict[str, dict[str, type]] = {
    "deletion rule": RULES,
    "criterion form": FORMS,
    "simulacrum kind": KINDS,
    "observable": {type(item).__name__: type(item) for item in OBSERVABLES},
}

REGISTERED = [pytest.param(registry, name, id=f"{registry}:{name}")
              for registry, classes in REGISTRIES.items() for name in classes]


def with_value(table: dict, path: str, value) -> dict:
    """A copy of ``table`` with ``value`` at the dotted ``path`` (tables included, unlike ``--set``)."""
    table = copy.deepcopy(table)
    *parents, key = path.split(".")
    node = table
    for part in parents:
        node = node[part]
    node[key] = value
    return table


def example(registry: str, name: str) -> Example:
    """The example of a registered class, or a failure saying that a new class needs one."""
    found = EXAMPLES[registry].get(name)
    if found is None:
        pytest.fail(f"no example for new {registry} {name!r}: add one to EXAMPLES[{registry!r}] in "
                    "tests/test_registries.py")
    return found


def fields_of(registry: str, cls: type) -> list[str]:
    """The scenario keys a class owns: a rule's constructor parameters beyond the window's, a
    form's ``fields``, a kind's pydantic fields but ``kind``; an observable has none."""
    if registry == "deletion rule":
        common = set(inspect.signature(DeletionRule.__init__).parameters)
        return [p for p in inspect.signature(cls.__init__).parameters if p not in common]
    if registry == "criterion form":
        return list(cls.fields)
    if registry == "simulacrum kind":
        return [name for name in cls.model_fields if name != "kind"]
    return []


def uses(registry: str, name: str, cls: type, model: EcologyModel) -> bool:
    """Whether the model built from the example runs the class."""
    if registry == "deletion rule":
        return type(model.compiled.rule) is cls
    if registry == "criterion form":
        return any(type(criterion) is cls for criterion in model.criteria)
    if registry == "simulacrum kind":
        return type(model.config.simulacra["subject"]) is cls
    return next(item for item in OBSERVABLES if type(item) is cls).applies(model)


def test_every_example_names_a_registered_class():
    """An example left behind by a class that is no longer registered is an error too."""
    for registry, examples in EXAMPLES.items():
        stale = sorted(set(examples) - set(REGISTRIES[registry]))
        assert not stale, f"examples for unregistered {registry}s {stale}: remove them"


@pytest.mark.parametrize("registry, name", REGISTERED)
def test_example_validates_and_uses_the_class(registry, name):
    cls = REGISTRIES[registry][name]
    model = EcologyModel(validate(example(registry, name).table))
    assert uses(registry, name, cls, model), f"the example of {registry} {name!r} does not use {cls.__name__}"


@pytest.mark.parametrize("registry, name", REGISTERED)
def test_bad_values_are_one_line_errors_naming_the_field(registry, name):
    chosen = example(registry, name)
    covered = {path.rsplit(".", 1)[-1] for path, _ in chosen.bad}
    for key in fields_of(registry, REGISTRIES[registry][name]):
        assert key in covered, f"no bad value for field {key!r} of {registry} {name!r}: add one to its example"
    for path, value in chosen.bad:
        with pytest.raises(ScenarioError) as raised:
            validate(with_value(chosen.table, path, value))
        line = str(raised.value)
        assert "\n" not in line and line.startswith(f"{raised.value.path}: "), line
        assert raised.value.path == path or raised.value.path.startswith((f"{path}.", f"{path}[")), (path, value, line)


@pytest.mark.parametrize("registry, name", REGISTERED)
def test_engines_print_the_same_tokens_and_table(registry, name):
    """``build`` asserts that each engine runs as asked (a class without a compiled form would fall
    back to numpy, and the note says which)."""
    table = example(registry, name).table
    reference, compiled = drive(build(table, "numpy"), None), drive(build(table, "compiled"), "blocks")
    assert np.array_equal(np.array(reference.printed), np.array(compiled.printed))
    steps_numpy = reference.datacollector.get_model_vars_dataframe()
    steps_compiled = compiled.datacollector.get_model_vars_dataframe()
    assert list(steps_numpy.columns) == list(steps_compiled.columns)
    np.testing.assert_allclose(steps_compiled.to_numpy(float), steps_numpy.to_numpy(float),
                               rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("registry, name", REGISTERED)
def test_simulation_agrees_with_the_exact_chain(registry, name, engine):
    chosen = example(registry, name)
    if chosen.no_exact:
        pytest.skip(chosen.no_exact)
    table = copy.deepcopy(chosen.table)
    table["run"].update(replicates=EXACT_REPLICATES, steps=EXACT_STEPS)
    model = build(table, engine)
    compiled = compile_scenario(model.config)
    chain = build_chain(compiled, max_states=EXACT_MAX_STATES)
    states = {tuple(window) for window in chain.windows.tolist()}
    visited = {tuple(window) for window in model.context.window.tolist()}
    while model.running:
        model.step()
        visited |= {tuple(window) for window in model.context.window.tolist()}
    assert visited <= states, f"simulated windows outside the chain: {sorted(visited - states)[:3]}"
    curves = criterion_curves(compiled, chain, EXACT_STEPS, EXACT_MAX_STATES)
    steps = model.datacollector.get_model_vars_dataframe()
    for criterion, curve in curves.items():
        for kind in ("reached", "holding"):
            exact = np.array(curve[kind])
            sd = np.sqrt(exact * (1 - exact) / EXACT_REPLICATES)
            simulated = steps[Criteria.column(kind, criterion)].to_numpy()
            assert np.all(np.abs(simulated - exact) <= 5 * sd + 1e-9), (criterion, kind, simulated, exact)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", [type(item).__name__ for item in OBSERVABLES])
def test_observable_columns_are_in_the_table(name, engine):
    chosen = example("observable", name)
    model = drive(build(chosen.table, engine), "blocks")
    expected = chosen.columns(model)
    missing = [column for column in expected if column not in model.datacollector.get_model_vars_dataframe()]
    assert expected and not missing, f"observable {name}: columns {missing} not in steps.csv"
