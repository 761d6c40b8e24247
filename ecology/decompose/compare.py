"""The comparison of decompositions of one static model: the driver :func:`decompose` (fit,
build the decompositions, compute their columns on the visited windows) and the columns
themselves (docs/decompose.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecology.core.compile import Compiled, compile_scenario
from ecology.decompose import budget
from ecology.decompose.data import (
    Storylines,
    Visits,
    exact_storylines,
    exact_visits,
    fitting_scenario,
    sample_storylines,
    sampled_visits,
    storyline_windows,
)
from ecology.decompose.families import family, min_params
from ecology.decompose.fit import fit_mixture
from ecology.decompose.tables import (
    base_table,
    check_trivial,
    fit_table,
    free_parameters,
    single_premise_table,
    storyline_parameters,
    storyline_table,
)
from ecology.errors import DecomposeError, UserError
from ecology.kinds.deletion import DeletionRule, Fifo
from ecology.progress import Progress, silent
from ecology.scenario import Scenario, to_table, validate

EXACT_SEQUENCES = budget.EXACT_SEQUENCES


TOP_LABELS = 6  # amplitude stories show the largest premises, the others summed


def fifo_rule(compiled: Compiled, width: int) -> DeletionRule:
    """Plain fifo at the window's width: the rule under which Remark 9's defect is measured."""
    return Fifo(width, compiled.n_tokens)


def columns(reference: Compiled, candidate: Compiled, visits: Visits, held_out: Storylines, train: Storylines,
            n_params: int) -> dict:
    """The comparison row of one decomposition (see ``docs/decompose.md``)."""
    ref = reference.mixture.read(visits.windows)
    got = candidate.mixture.read(visits.windows)
    mu = np.exp(ref.log_mu)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(mu > 0, mu * (ref.log_mu - got.log_mu), 0.0)
    kl = terms.sum(axis=1)
    # KL >= 0 (Gibbs); laws equal to the last digit can sum to -1e-17 in rounding: that is 0
    kl = np.where(np.isnan(kl), np.inf, np.maximum(kl, 0.0))
    kl_mean = float(visits.weight @ kl) if np.all(np.isfinite(kl[visits.weight > 0])) else math.inf

    amp = np.exp(got.log_amplitude)
    with np.errstate(invalid="ignore", divide="ignore"):
        amp_entropy = -np.sum(np.where(amp > 0, amp * got.log_amplitude, 0.0), axis=1)
    k = reference.scenario.context.length
    if visits.windows.shape[1] == k:
        drift = candidate.mixture.drift(visits.windows, got, fifo_rule(candidate, k))
    else:  # deletion "none": the defect is taken on the last k tokens, as a fifo window would hold them
        last = visits.windows[:, -k:]
        drift = candidate.mixture.drift(last, candidate.mixture.read(last), fifo_rule(candidate, k))
    defect = 0.5 * np.abs(drift).sum(axis=1)

    heldout = candidate.mixture.sequence_log_prob(held_out.tokens)
    train_ll = candidate.mixture.sequence_log_prob(train.tokens)
    if held_out.exact:
        held_mean = float(held_out.weight @ heldout) if np.all(np.isfinite(heldout)) else -math.inf
        held_se = 0.0
    else:
        held_mean = float(heldout.mean())
        held_se = float(heldout.std(ddof=1) / math.sqrt(len(heldout))) if len(heldout) > 1 else math.nan
    if train.exact:
        n = None
        train_total = float(train.weight @ train_ll) if np.all(np.isfinite(train_ll)) else -math.inf
    else:
        n = len(train.weight)
        train_total = float(train_ll.sum())
    return {
        "premises": len(candidate.premises),
        "kl_mean": kl_mean,
        "kl_max": float(np.max(kl[visits.weight > 0])),
        "heldout_loglik": held_mean,
        "heldout_se": held_se,
        "train_loglik": train_total,
        "params": n_params,
        "defect_mean": _finite(float(visits.weight @ np.nan_to_num(defect, nan=0.0))) if np.all(np.isfinite(defect)) else None,
        "defect_max": _finite(float(np.max(defect))) if np.all(np.isfinite(defect)) else None,
        "amplitude_entropy": _finite(float(visits.weight @ amp_entropy)) if np.all(np.isfinite(amp_entropy)) else None,
        "n_for_bic": n,
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def bic(row: dict, n_storylines: int) -> float | None:
    """``-2 log L + d log n``; with exact data ``log L = n E[log q(y)]`` at the notional size
    ``n = --storylines``."""
    n = row["n_for_bic"] or n_storylines
    total = row["train_loglik"] * (n if row["n_for_bic"] is None else 1)
    return _finite(-2.0 * total + row["params"] * math.log(n))


@dataclass
class Request:
    families: list[str]
    components: list[int] | range  # increasing
    storylines: int = 2000
    length: int | None = None  # default 4k
    seed: int | None = None  # default run.seed
    restarts: int = 5
    data: str = "auto"  # "exact", "samples" or "auto"
    max_states: int = 50_000
    compare: list[tuple[str, Scenario]] = field(default_factory=list)
    max_work: int = budget.DEFAULT_MAX_WORK  # operations (:mod:`ecology.decompose.budget`); memory: run.max_memory_gib


def parse_components(text: str) -> range:
    """``K`` or ``K1:K2`` (inclusive), as a range (a huge one costs nothing until the budget refuses it)."""
    try:
        low, _, high = text.partition(":")
        first, last = int(low), int(high or low)
    except ValueError:
        raise DecomposeError(f"--components: {text!r} is not K or K1:K2 (integers)") from None
    if first < 1 or last < first:
        raise DecomposeError(f"--components: {text!r}: need 1 <= K1 <= K2")
    return range(first, last + 1)


def parse_families(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    for f in names:
        family(f)  # a DecomposeError naming the registered families when unknown
    if not names:
        raise DecomposeError("--family: give at least one family")
    return list(dict.fromkeys(names))


def check_support(K: int, families: list[str], V: int, data: Storylines) -> None:
    """A mixture is a law on the distinct training storylines: it cannot have more free
    parameters than that law (distinct storylines - 1), nor more premises than storylines."""
    distinct = data.distinct()
    need = K * (min_params(families, V) + 1) - 1
    if distinct < K or need > distinct - 1:
        raise DecomposeError(
            f"--components: K = {K} needs at least {need} free parameters but the data ({distinct} distinct "
            f"storylines) support at most {distinct - 1}; use a smaller K (or more --storylines)")


def check_request(scenario: Scenario, request: Request) -> tuple[int, int, bool]:
    """Everything about a request that can be refused before anything is computed, the budget
    included (:mod:`ecology.decompose.budget`); returns (seed, length, exact data)."""
    V, k = len(scenario.vocabulary.tokens), scenario.context.length
    seed = scenario.run.seed if request.seed is None else request.seed
    if seed < 0:
        raise DecomposeError(f"--seed: {seed}: must be at least 0")
    length = request.length or 4 * k
    if length < 1:
        raise DecomposeError("--length: must be at least 1")
    for f in request.families:
        if f == "waluigi" and V < 2:
            raise DecomposeError("--family: waluigi needs at least two tokens")
    exact_possible = budget.sequence_count(V, k + 1, EXACT_SEQUENCES) <= EXACT_SEQUENCES
    if request.data == "exact" and not exact_possible:
        raise DecomposeError(f"--data exact: V^(k+1) = {V}^{k + 1} sequences exceeds {EXACT_SEQUENCES}; use --data samples")
    use_exact = request.data == "exact" or (request.data == "auto" and exact_possible)
    estimate = budget.cost(scenario, request.families, request.components, request.restarts, request.storylines,
                           length, use_exact, use_exact, request.max_states, [other for _, other in request.compare])
    budget.check(estimate, request.max_work, scenario.run.max_memory_gib)
    return seed, length, use_exact


def decompose(scenario: Scenario, request: Request, progress: Progress = silent) -> dict:
    """Fit, build the decompositions, compute the comparison; returns everything to write.
    ``progress`` (:mod:`ecology.progress`) hears the EM restarts over every K
    (:func:`~ecology.decompose.fit.fit_mixture`), then ``("comparing decompositions", i, n)``."""
    tokens = list(scenario.vocabulary.tokens)
    V, k = len(tokens), scenario.context.length
    seed, length, use_exact = check_request(scenario, request)
    compiled = compile_scenario(scenario)
    fitting = compile_scenario(fitting_scenario(scenario))
    seeds = np.random.SeedSequence(seed).generate_state(4)
    if use_exact:
        train = held = exact_storylines(fitting)
    else:
        train = sample_storylines(scenario, request.storylines, int(seeds[0]))
        held = sample_storylines(scenario, max(request.storylines // 4, 2), int(seeds[1]))
    for K in request.components:
        check_support(K, request.families, V, train)

    fits, decompositions = {}, []
    total = len(request.components) * request.restarts
    for i, K in enumerate(request.components):
        fit = fit_mixture(request.families, K, train, tokens, k, int(seeds[2]), request.restarts, progress,
                          i * request.restarts, total)
        fits[K] = fit
        decompositions.append({"name": f"fit K={K}", "kind": "fitted", "K": K,
                               "table": fit_table(scenario, fit, request.families), "params": fit.n_params})
    decompositions.append({"name": "input", "kind": "input", "table": to_table(scenario),
                           "params": free_parameters(scenario)})
    trivial_note = check_trivial(compiled)
    if trivial_note is None:
        single = single_premise_table(scenario, compiled)
        stories = storyline_table(scenario, compiled)
        decompositions.append({"name": "single premise mu", "kind": "single", "table": single,
                               "params": free_parameters(validate(single))})
        decompositions.append({"name": "one premise per storyline", "kind": "storylines", "table": stories,
                               "params": storyline_parameters(validate(stories))})
    for path, other in request.compare:
        if list(other.vocabulary.tokens) != tokens:
            raise DecomposeError(f"{path}: vocabulary.tokens: {list(other.vocabulary.tokens)} differs from the input's "
                                 f"{tokens}; a decomposition of the same mu needs the same tokens in the same order")
        table = base_table(scenario, other.name, other.description)
        other_table = to_table(other)
        for key in ("simulacra", "premises", "populations"):
            if other_table.get(key):
                table[key] = other_table[key]
        decompositions.append({"name": f"compare {Path(path).name}", "kind": "compare", "table": table,
                               "params": free_parameters(other)})

    try:
        visits = exact_visits(compiled, length, request.max_states) if use_exact else None
    except UserError:
        visits = None
    story_windows = storyline_windows(scenario, min(request.storylines, 500), length, int(seeds[3]))
    if visits is None:
        visits = sampled_visits(story_windows)

    rows = []
    for i, d in enumerate(decompositions):
        progress("comparing decompositions", i, len(decompositions), d["name"])
        try:
            candidate = compile_scenario(validate(d["table"]))
        except UserError as err:
            raise DecomposeError(f"decomposition '{d['name']}' does not compile: {err}") from None
        row = {"decomposition": d["name"], **columns(compiled, candidate, visits, held, train, d["params"])}
        row["bic"] = bic(row, request.storylines)
        rows.append(row)
        d["compiled"] = candidate
    return {"scenario": scenario, "compiled": compiled, "fits": fits, "decompositions": decompositions,
            "rows": rows, "train": train, "held": held, "visits": visits, "story_windows": story_windows,
            "length": length, "seed": seed, "trivial_note": trivial_note, "families": request.families}


def amplitude_story(compiled: Compiled, windows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(labels, (L, R, labels) amplitudes) of a decomposition along storyline windows, the
    largest ``TOP_LABELS`` labels by mean amplitude kept and the others summed as ``other``."""
    L, R, width = windows.shape
    amp = compiled.mixture.population_amplitudes(compiled.mixture.read(windows.reshape(-1, width)).log_amplitude)
    amp = np.nan_to_num(amp).reshape(L, R, -1)
    labels = list(compiled.mixture.labels)
    if len(labels) > TOP_LABELS:
        order = np.argsort(-amp.mean(axis=(0, 1)), kind="stable")
        top = order[: TOP_LABELS - 1]
        rest = amp[:, :, order[TOP_LABELS - 1 :]].sum(axis=2, keepdims=True)
        amp = np.concatenate([amp[:, :, top], rest], axis=2)
        labels = [labels[i] for i in top] + [f"other ({len(order) - TOP_LABELS + 1})"]
    return labels, amp
