"""Decompositions written as runnable scenario tables: a fitted mixture, Remark 10's two trivial
decompositions (one premise that is ``mu``; one deterministic premise per storyline), and the
free parameters each states (what BIC counts)."""

from __future__ import annotations

import itertools

import numpy as np

from ecology.core.budget import model_premises
from ecology.core.compile import Compiled
from ecology.decompose.data import exact_storylines
from ecology.decompose.families import Component
from ecology.decompose.fit import Fit
from ecology.errors import DecomposeError
from ecology.scenario import Scenario, to_table

TRIVIAL_SEQUENCES = 4096  # the two trivial decompositions need V^(k+1) at most this


NAME_LENGTH = 64  # the longest scenario name (ecology.fields.NAME_RULE)


def derived_name(scenario: Scenario, suffix: str) -> str:
    """The name of a decomposition of ``scenario``: its name and ``suffix``, the name cut so that
    the whole stays a valid name (a 64-character input name would otherwise make every
    decomposition's scenario invalid)."""
    return scenario.name[: NAME_LENGTH - len(suffix)] + suffix


def base_table(scenario: Scenario, name: str, description: str) -> dict:
    """The input scenario's vocabulary, context, sampling and run, no premises; absorption
    criteria kept unless they name a population (labels differ between decompositions)."""
    table = to_table(scenario, text=False)  # the premises change: keep the tokens the text gave
    keep = {key: table[key] for key in ("vocabulary", "context", "sampling", "run") if key in table}
    criteria = {n: c for n, c in table.get("absorption", {}).items() if "population" not in c}
    out = {"name": name, "description": description, **keep, "simulacra": {}, "premises": {}}
    if criteria:
        out["absorption"] = criteria
    return out


def law(row: np.ndarray, tokens: list[str]) -> dict:
    """An emission row as a token table that sums to one (float rounding put on the largest)."""
    row = np.asarray(row, dtype=float) / row.sum()
    table = {t: float(p) for t, p in zip(tokens, row) if p > 0}
    top = max(table, key=table.get)
    table[top] = 0.0
    table[top] = 1.0 - sum(table.values())
    return table


def component_table(component: Component, tokens: list[str]) -> dict:
    """A fitted component as a simulacrum table of an existing kind."""
    s = component.structure
    if s.spec is not None:
        return s.spec.model_copy(update=component.values).model_dump(mode="json")
    if s.family == "iid":
        return {"kind": "iid", "probs": law(component.emit[0], tokens)}
    names = [n if n == "start" else "after_" + "_".join(tokens[int(i)] for i in n.split("_")[1:])
             for n in s.machine.states]
    states = {}
    for q, name in enumerate(names):
        on = {tokens[t]: names[s.machine.next[q, t]] for t in range(len(tokens)) if s.machine.next[q, t] != q}
        states[name] = {"emit": law(component.emit[q], tokens), **({"on": on} if on else {})}
    return {"kind": "automaton", "start": "start", "states": states}


def fit_table(scenario: Scenario, fit: Fit, families: list[str]) -> dict:
    """The fitted decomposition as a runnable scenario table."""
    tokens = list(scenario.vocabulary.tokens)
    K = len(fit.components)
    table = base_table(scenario, derived_name(scenario, f"_fit_k{K}"),
                       f"ecology decompose: {K} premises from {', '.join(families)} fitted by EM to the static model "
                       f"of '{scenario.name}'")
    for j, (component, prior) in enumerate(zip(fit.components, fit.prior)):
        name = f"{component.family}{j}"
        table["simulacra"][name] = component_table(component, tokens)
        table["premises"][name] = {"prior": float(prior), "cast": [name]}
    return table


def prefix_laws(compiled: Compiled) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Every sequence ``h`` of at most ``k`` tokens with ``P(h) > 0``, with ``log P(h)`` and
    ``mu(. | h)`` (each read as a window: pads, then ``h``)."""
    V, k = compiled.n_tokens, compiled.scenario.context.length
    seqs = [()]
    for length in range(1, k + 1):
        seqs += list(itertools.product(range(V), repeat=length))
    windows = np.full((len(seqs), k), V, dtype=np.int64)
    for i, h in enumerate(seqs):
        if h:
            windows[i, k - len(h):] = h
    step = compiled.mixture.read(windows)
    keep = np.flatnonzero(np.isfinite(step.free_energy))
    return [seqs[i] for i in keep], -step.free_energy[keep], np.exp(step.log_mu[keep])


def check_trivial(compiled: Compiled) -> str | None:
    """Why the trivial decompositions are out of reach, or None."""
    V, k = compiled.n_tokens, compiled.scenario.context.length
    # 2 ** bit_length > TRIVIAL_SEQUENCES, so capping the exponent there keeps the comparison (V >= 2) and never
    # builds a huge power for a long window
    if V ** min(k + 1, TRIVIAL_SEQUENCES.bit_length()) > TRIVIAL_SEQUENCES:
        return f"V^(k+1) = {V}^{k + 1} sequences exceeds {TRIVIAL_SEQUENCES}"
    return None


def single_premise_table(scenario: Scenario, compiled: Compiled) -> dict:
    """Remark 10's first trivial decomposition: one premise that is ``mu`` itself, an automaton
    whose state is the sequence read so far (up to ``k`` tokens) and which prints ``mu(. | h)``."""
    tokens = list(scenario.vocabulary.tokens)
    seqs, _, laws = prefix_laws(compiled)
    name = lambda h: "h" + "".join(f"_{tokens[t]}" for t in h)  # noqa: E731
    known = set(seqs)
    states = {}
    for h, row in zip(seqs, laws):
        on = {tokens[t]: name(h + (t,)) for t in range(len(tokens)) if h + (t,) in known}
        states[name(h)] = {"emit": law(row, tokens), **({"on": on} if on else {})}
    table = base_table(scenario, derived_name(scenario, "_single"),
                       f"Remark 10: the static model of '{scenario.name}' as one premise")
    table["simulacra"]["mu"] = {"kind": "automaton", "start": name(()), "states": states}
    table["premises"]["mu"] = {"prior": 1.0, "cast": ["mu"]}
    return table


def storyline_table(scenario: Scenario, compiled: Compiled) -> dict:
    """Remark 10's second trivial decomposition: one deterministic premise per sequence ``y`` of
    ``k + 1`` tokens with ``P(y) > 0``, prior ``P(y)``; it prints ``y`` and then (never read, a
    window holds at most ``k`` tokens) any token uniformly."""
    tokens = list(scenario.vocabulary.tokens)
    V, width = len(tokens), scenario.context.length + 1
    data = exact_storylines(compiled)
    table = base_table(scenario, derived_name(scenario, "_storylines"),
                       f"Remark 10: the static model of '{scenario.name}' as one deterministic premise per storyline")
    uniform = law(np.ones(V), tokens)
    for y, p in zip(data.tokens, data.weight):
        states = {f"s{j}": {"emit": {tokens[y[j]]: 1.0}, "on": dict.fromkeys(tokens, f"s{j + 1}")} for j in range(width)}
        states[f"s{width}"] = {"emit": uniform}
        name = "story_" + "_".join(tokens[t] for t in y)
        table["simulacra"][name] = {"kind": "automaton", "start": "s0", "states": states}
        table["premises"][name] = {"prior": float(p), "cast": [name]}
    return table


def free_parameters(scenario: Scenario) -> int:
    """Free parameters of a decomposition as its file states it: per premise its simulacra's
    (automaton: states x (V - 1); iid: V - 1; coin, constant, cycle: 1; waluigi: 2) or its
    model's (``n_parameters``: table rows x (V - 1), n-gram counts, transformer weights), one per
    population member, and the priors (premises - 1). A deterministic law still counts its
    states: the count is of the table's entries, not of what the data pinned down."""
    V = len(scenario.vocabulary.tokens)

    def of(spec) -> int:
        kind = getattr(spec, "kind", "automaton")
        if kind == "automaton":
            return len(spec.states) * (V - 1)
        return {"iid": V - 1, "coin": 1, "constant": 1, "cycle": 1, "waluigi": 2}[kind]

    count = sum(of(scenario.simulacra[c]) for p in scenario.premises.values() for c in p.cast or ())
    for name, model in model_premises(scenario).items():
        if model.n_parameters is None:
            raise DecomposeError(f"premises.{name}.model: the parameters of a {model.kind} model cannot be counted, "
                                 "so its BIC is undefined; decompose a table, n-gram or transformer model")
        count += model.n_parameters
    count += sum(p.count for p in scenario.populations.values())
    members = len(scenario.premises) + sum(p.count for p in scenario.populations.values())
    return count + members - 1


def storyline_parameters(scenario: Scenario) -> int:
    """The per-storyline decomposition is fixed by its priors: premises - 1."""
    return len(scenario.premises) - 1
