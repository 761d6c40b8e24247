"""Up-front estimates of what a scenario will cost, checked before anything is computed.

A scenario can ask for more than any machine has (10^9 replicates, a window of 10^8 tokens, a
product automaton of 10^9 states, a ``periodic`` memory of 10^9 steps). Rather than fail after
minutes with an out-of-memory crash or hang, these estimates refuse such input at once with one
line naming the fields that drive the size and the flag that raises the budget.

Memory of a simulation (bytes), for R replicates, window length k (k + steps under
``deletion = "none"``), V tokens, premises s with product automata of Q_s states, a ``periodic``
memory of P steps, n steps, C criteria and L population labels (every array the simulator
allocates, see :mod:`ecology.kinds.deletion`, :class:`ecology.core.readers.SlidingReader`,
:class:`ecology.model.EcologyModel`):

    context        R (2 (P + k) + 64) b + 8 R k        (b = bytes per token; 8 R k: the int64 copy of the
                                                        windows that step 0's reading and the compiled
                                                        readers' first build take, one at a time)
    readers        sum_s R (16 k + 48 Q_s)              (two-stack queues and their rebuild)
    automata       sum_s 16 Q_s (V + 1)                (Q_s = 0 for a model premise)
    mixture        24 S R + 24 S R V                    (joint, amplitudes, per-premise laws)
    ledger         16 R (k + 1) L                       (the credit ring, engine and model copy; 0 under none)
    records        n (7 L + 2 C + S + 10) 120 + 32 k n b (DataCollector rows; the raster)
                   + 112 n min(R, 32)                  (trajectories, tokens, speakers of the first 32)
    predicates     48 R (C + Z) + 8 (C + Z) M k0        (holding, first hits, occupation counts of the C
                                                        criteria and Z named sets; M the most window
                                                        patterns of one, compiled (C + Z, M, k0),
                                                        k0 = context.length)

Memory of writing the outputs (bytes), held beside the simulation's records (``ecology.io.artefacts.
write_run``: ``steps.csv``, ``summary.json``'s curves, ``trajectories.csv`` and ``speakers.csv`` of
the first ``min(R, 32)`` replicates, the plots), with ``W = 10 L + 4 S + 2 C + 8`` columns of
``steps.csv`` (``7 L + 4 S + 2 C + 6`` before the token ledger's, when the figures below were measured):

    outputs        (n + 1) (28 W + 210 C + 114 min(R, 32))

Measured (peak RSS of ``write_run`` above what the simulation leaves held, ``scenarios/coins.toml``:
L = 2, S = 9, C = 1, W = 58) at n = 10^4, 3 x 10^4, 6 x 10^4 steps: 3.85 KB per step with R = 20
and 2.07 KB with R = 4, i.e. 114 B per step and traced replicate (the rows of the trajectory and
speaker tables, built for the CSVs and again for the plots) and 1.6 KB per step otherwise (28 B
per cell of ``steps.csv`` as it is formatted and plotted; 210 B per step and criterion for the four
curves of ``summary.json`` as Python floats and JSON text). The simulation's own records grow by
the 112 B per step and traced replicate above (6.1 KB per step at R = 20, 4.3 KB at R = 4).

A model premise (``model = {...}``) re-reads every replicate's window each step: its work per
step is ``R x read_cost(k)`` (:meth:`ecology.lm.LanguageModel.read_cost`), refused with the
per-step costs of :func:`check_work`; an exact chain reads each page-state once
(:func:`check_model_reads`, against ``--max-work``).

The estimate is an upper bound up to small constants (a factor 1.5 is added); it is compared
with ``run.max_memory_gib`` (the ``--max-memory`` flag). The two stages are added (the outputs are
written while the records are held), and a refusal names the stage and the fields that drive it.

The number of criteria is bounded by :data:`MAX_CRITERIA` (each is two columns of ``steps.csv``
and ``replicates.csv``, four curves of ``summary.json`` and a time-to-event summary: about 7 ms
each at 50 replicates and 20 steps, so 20,000 take 2.5 minutes to write); the named sets
(``[sets.NAME]``, an occupation summary and two columns of ``replicates.csv`` each) by the same
number.
"""

from __future__ import annotations

import math

from ecology.errors import ScenarioError, TooManyStates
from ecology.fields import GIB
from ecology.kinds.deletion import RULES
from ecology.lm import LanguageModel, load_model
from ecology.scenario import Scenario

MAX_AUTOMATON_STATES = 100_000  # product states of one premise (compiled by a Python walk)


MAX_PREMISES = 100_000  # premises after populations are expanded (one Mesa agent each)


MAX_AUTOMATON_CELLS = 20_000_000  # sum over premises of states x tokens (each cell is a step of that walk)


SAFETY = 1.5


MAX_CRITERIA = 10_000  # [absorption] tables of one scenario (outputs written per criterion: see the module docstring)


TRACED = 32  # replicates whose trajectories and speakers are recorded (ecology.model.RASTER_REPLICATES)


DEFAULT_MAX_STATES = 2_500_000  # the one state budget of every exact computation (run, sweep, analyze)
DEFAULT_MAX_WORK = 2 * 10**10  # sparse multiply-adds allowed for curves and powers (about a minute)


def premise_states(scenario: Scenario, cast: list[str], every: int | None) -> int:
    """Upper bound on a premise's product states: speakers x turn counter x members' states."""
    bound = math.prod(scenario.simulacra[c].n_states for c in cast)
    if len(cast) > 1:
        bound *= len(cast) * (every or 1)
    return bound


def model_premises(scenario: Scenario) -> dict[str, LanguageModel]:
    """The loaded language model of every model premise, by premise name (cached loads)."""
    tokens = list(scenario.vocabulary.tokens)
    return {name: load_model(p.model, tokens, ".", f"premises.{name}.model")
            for name, p in scenario.premises.items() if p.model is not None}


def model_step_cost(scenario: Scenario, length: int) -> float:
    """Operations of one simulation step of one replicate with every model premise: at a step
    that deletes (a fraction ``deletion_rate`` of the steps) the window is read whole; at the
    others it only grew, which a caching model reads one token at a time (``step_cost``)."""
    rate = RULES[scenario.context.deletion].deletion_rate(scenario.context)
    return sum(rate * m.step_cost(length, False) + (1 - rate) * m.step_cost(length, True)
               for m in model_premises(scenario).values())


def model_read_cost(scenario: Scenario, length: int | None = None) -> float:
    """Elementary operations of reading one window of ``length`` positions (default
    ``context.length``) with every model premise (``read_cost``)."""
    length = scenario.context.length if length is None else length
    return sum(m.read_cost(length) for m in model_premises(scenario).values())


def automaton_sizes(scenario: Scenario) -> list[int]:
    """Product-state bounds of every premise (populations expanded; 0 for a model premise, which
    has no automaton); refuses what is too big."""
    sizes = []
    for name, premise in scenario.premises.items():
        if premise.model is not None:
            sizes.append(0)
            continue
        every = premise.turns.every if premise.turns else None
        bound = premise_states(scenario, premise.cast, every)
        if bound > MAX_AUTOMATON_STATES:
            raise ScenarioError(
                f"premises.{name}", f"its cast and turns make up to {bound:,} automaton states (more than "
                f"{MAX_AUTOMATON_STATES:,}); use fewer cast members or states, or a smaller turns.every")
        sizes.append(bound)
    count = len(sizes) + sum(pop.count for pop in scenario.populations.values())
    if count > MAX_PREMISES:
        raise ScenarioError("populations", f"{count:,} premises after populations are expanded (more than "
                            f"{MAX_PREMISES:,}); lower the populations' count")
    for pop in scenario.populations.values():
        sizes += [pop.template.n_states] * pop.count
    cells = sum(sizes) * len(scenario.vocabulary.tokens)
    if cells > MAX_AUTOMATON_CELLS:
        raise ScenarioError("premises", f"the premises' automata have {cells:,} (state, token) transitions to compile "
                            f"(more than {MAX_AUTOMATON_CELLS:,}); use fewer tokens, states or premises")
    return sizes


def run_bytes(scenario: Scenario) -> tuple[float, str]:
    """Estimated peak memory of simulating the scenario and writing its outputs, and the stage
    and fields that drive it (the largest part of :func:`run_parts`)."""
    parts = run_parts(scenario)
    return SAFETY * sum(parts.values()), max(parts, key=parts.get)


def stage_bytes(scenario: Scenario) -> dict[str, float]:
    """The estimate of :func:`run_bytes` by stage: ``{"simulating": ..., "writing the outputs": ...}``."""
    stages: dict[str, float] = {}
    for part, size in run_parts(scenario).items():
        stage = part.split(":")[0]
        stages[stage] = stages.get(stage, 0.0) + SAFETY * size
    return stages


def run_parts(scenario: Scenario) -> dict[str, float]:
    """The parts of the memory estimate (module docstring), each named ``"stage: fields"``."""
    sizes = automaton_sizes(scenario)
    ctx, run = scenario.context, scenario.run
    R, n, V, S = run.replicates, run.steps, len(scenario.vocabulary.tokens), len(sizes)
    k = ctx.length + (0 if RULES[ctx.deletion].deletes_oldest else n)
    P = max([c.periodic for c in scenario.absorption.values() if c.periodic], default=0)
    L = len({p.population or name for name, p in scenario.premises.items()} | set(scenario.populations))
    C = len(scenario.absorption)
    b = 1 if V + 2 <= 256 else 2 if V + 2 <= 2**16 else 4
    traced = min(R, TRACED)
    W = 10 * L + 4 * S + 2 * C + 8  # columns of steps.csv
    parts = {
        "simulating: run.replicates x context.length":
            R * (2 * (P + k) + 64) * b + 8 * R * k + sum(R * (16 * k + 48 * q) for q in sizes),
        "simulating: premises (automaton states x tokens)": sum(16 * q * (V + 1) for q in sizes),
        "simulating: run.replicates x premises x tokens": 24 * S * R * (V + 1),
        "simulating: run.steps": n * (7 * L + 2 * C + S + 10) * 120 + 32 * k * (n + 1) * b + 112 * n * traced,
        "simulating: run.replicates x (absorption criteria + sets), window patterns":
            48 * R * (C + len(scenario.sets)) + 8 * (C + len(scenario.sets)) * ctx.length * max(
                [len(c.windows) for c in [*scenario.absorption.values(), *scenario.sets.values()] if c.windows], default=0),
        # the ledger's ring of k + 1 credits per replicate and label (none under "none"), the engine's and the model's copy
        "simulating: run.replicates x context.length x populations (the token ledger)":
            16 * R * (ctx.length + 1) * L if RULES[ctx.deletion].deletes_oldest else 0,
        "writing the outputs: run.steps (steps.csv, curves, the first replicates' tables, plots)":
            (n + 1) * (28 * W + 210 * C + 114 * traced),
    }
    models = model_premises(scenario)
    if models:
        parts["simulating: the model premises (weights and key/value caches)"] = sum(m.memory_bytes(R, k)
                                                                                       for m in models.values())
    if P:
        parts["simulating: run.replicates x periodic memory"] = R * k * P * b if not _sliding(scenario) else 0
    if run.drift:
        parts["simulating: run.replicates x context.length (drift)"] = 16 * R * (k + 1) * max(S, 1)
    return parts


def _sliding(scenario: Scenario) -> bool:
    return RULES[scenario.context.deletion].slides_with(scenario.context.pinned)


def check_compile(scenario: Scenario) -> None:
    """What compiling needs, whatever is done next: bounded automata and premise counts, and an
    initial window (and a few copies of it) within the memory budget."""
    automaton_sizes(scenario)
    if len(scenario.absorption) > MAX_CRITERIA:
        raise ScenarioError("absorption", f"{len(scenario.absorption):,} criteria (more than {MAX_CRITERIA:,}): each is "
                            "columns of steps.csv and replicates.csv, curves and a summary (about 7 ms each to write); "
                            "use fewer [absorption] tables")
    if len(scenario.sets) > MAX_CRITERIA:
        raise ScenarioError("sets", f"{len(scenario.sets):,} sets (more than {MAX_CRITERIA:,}): each is an occupation "
                            "summary and columns of replicates.csv; use fewer [sets] tables")
    window = 64 * scenario.context.length
    if window > scenario.run.max_memory_gib * GIB:
        raise ScenarioError(
            "context.length", f"a window of {scenario.context.length:,} tokens needs about {window / GIB:,.3g} GiB "
            f"per copy, more than the budget of {scenario.run.max_memory_gib:g} GiB; shorten it, or raise the budget "
            "with --max-memory GIB (run.max_memory_gib)")


MAX_RUN_WORK = 10**12  # elementary operations (about an hour of numpy on one core): beyond, a hang


PER_CALL = 10**4  # the overhead of one numpy call, in elementary operations


def check_work(scenario: Scenario) -> None:
    """Refuse the two per-step costs that grow with a user's number rather than with the window:
    a ``periodic`` criterion compares each page-state with the last P (``n P k R``), and
    ``run.drift`` re-reads every window once per token (``n R V k S``)."""
    ctx, run = scenario.context, scenario.run
    k = ctx.length + (0 if RULES[ctx.deletion].deletes_oldest else run.steps)
    for name, c in scenario.absorption.items():
        # one vectorised comparison per earlier step: k R elements, and at least ~10^4 element-costs of overhead
        work = run.steps * c.periodic * max(k * run.replicates, PER_CALL) if c.periodic else 0
        if work > MAX_RUN_WORK:
            raise ScenarioError(f"absorption.{name}.periodic", f"comparing each page-state with the last {c.periodic:,} "
                                f"costs about {work:.2g} operations for this run (hours or more); use a shorter "
                                "period, fewer steps or replicates")
    models = model_step_cost(scenario, k)
    if models:
        # every step, each model premise reads every replicate's window (or its new token)
        work = run.steps * max(run.replicates * models, PER_CALL) * (1 + (len(scenario.vocabulary.tokens) if run.drift else 0))
        if work > MAX_RUN_WORK:
            drift = " (and once per token for drift)" if run.drift else ""
            raise ScenarioError("run", f"the model premises re-read every window each step{drift}: "
                                f"about {work:.2g} operations for this run (hours or more); use fewer steps or replicates "
                                "(--steps, --replicates), a shorter context.length or a smaller model")
    if run.drift:
        premises = len(scenario.premises) + sum(p.count for p in scenario.populations.values())
        # per step, per token and premise, a read of the window column by column (one numpy call each)
        work = run.steps * len(scenario.vocabulary.tokens) * k * premises * max(run.replicates, PER_CALL)
        if work > MAX_RUN_WORK:
            raise ScenarioError("run.drift", f"drift re-reads every window once per token: about {work:.2g} operations "
                                "for this run (hours or more); turn it off or use fewer steps, replicates or tokens")


def check_run(scenario: Scenario) -> float:
    """Refuse a simulation whose estimated memory exceeds ``run.max_memory_gib``, or whose
    per-step work cannot finish (:func:`check_work`); return the memory estimate in bytes."""
    check_work(scenario)
    total, driver = run_bytes(scenario)
    limit = scenario.run.max_memory_gib * GIB
    if total > limit:
        stages = ", ".join(f"{size / GIB:,.3g} {stage}" for stage, size in stage_bytes(scenario).items())
        stage, fields = driver.split(": ", 1)
        named = fields.split(" (")[0]
        lower = named.replace("run.steps", "run.steps (--steps)").replace("run.replicates", "run.replicates (--replicates)")
        raise ScenarioError(
            "run", f"the run needs about {total / GIB:,.3g} GiB ({stages}; mostly {stage}: {fields}), more than the "
            f"budget of {scenario.run.max_memory_gib:g} GiB; lower {lower}, or raise the budget with --max-memory GIB "
            "(run.max_memory_gib) if the machine has the memory")
    return total


def check_model_reads(scenario: Scenario, max_states: int, max_work: int) -> None:
    """Refuse an exact chain whose model premises cannot be evaluated within ``max_work``
    operations: the chain reads each page-state once, and there are at most
    ``min(max_states, sum_{m <= k} V^m)`` page-states (windows of ``m`` real tokens after pads)."""
    cost = model_read_cost(scenario)
    if not cost:
        return
    V, k = len(scenario.vocabulary.tokens), scenario.context.length
    states = min(max_states, sum(V**m for m in range(k + 1)) if k * math.log2(max(V, 2)) < 62 else max_states)
    work = states * cost
    if work > max_work:
        raise ScenarioError("premises", f"evaluating the model premises on up to {states:,} page-states costs about "
                            f"{work:.3g} operations, over the work budget of {max_work:.3g}; raise it with --max-work, "
                            "or shorten context.length")


EXACT_BYTES_PER_TRANSITION = 128  # CSR entry (12 B) while enumerating, and about ten copies in the solvers


EXACT_VECTORS_PER_STATE = 30  # float64 vectors over the states held by the solvers and the report


def window_count(symbols: int, width: int, cap: int) -> int:
    """``min(cap, sum_{j=0}^{width} symbols^j)``: page-states of at most ``width`` symbols."""
    total, term = 0, 1
    for _ in range(width + 1):
        total += term
        if total >= cap:
            return cap
        term *= symbols
    return total


def exact_bytes(n_tokens: int, emitted: int, symbols: int, widths: list[int], max_states: int,
                transitions_per_state: int) -> tuple[float, int, int]:
    """Upper bound on the peak memory of enumerating and analysing the page-state chains of
    window widths ``widths`` (the chain, and the extended chain of a ``periodic`` criterion),
    with the numbers of states and transitions it assumes.

    Of the V tokens, ``emitted`` have positive probability in some premise state (the others are
    never sampled), and a page-state is a string of at most ``w`` of ``symbols`` symbols (those
    tokens, the prompt's, the pad, the deleted slot). So a chain has at most
    ``n = min(max_states, sum_{j <= w} symbols^j)`` states and ``m = min(n emitted, max_states x
    transitions_per_state)`` transitions. Per state: the window (``w b`` bytes, ``b`` per symbol)
    four times (list, frontier, concatenation, labels), its key (8 bytes, or ``w b`` when packed
    codes would overflow) three times while merging, and :data:`EXACT_VECTORS_PER_STATE` float64
    vectors; per transition :data:`EXACT_BYTES_PER_TRANSITION` (both measured peaks, so no
    safety factor). The enumeration's time is proportional to the same count of transitions
    (each is generated, keyed and looked up once), so this bound bounds it too.
    """
    b = 1 if n_tokens + 2 <= 256 else 4
    total, states, transitions = 0.0, 0, 0
    for width in widths:
        n = window_count(symbols, width, max_states)
        m = min(n * emitted, max_states * transitions_per_state)
        key = 8 if width * math.log2(n_tokens + 2) < 62 else width * b
        total += n * (4 * width * b + 3 * key + 8 * EXACT_VECTORS_PER_STATE) + m * EXACT_BYTES_PER_TRANSITION
        states, transitions = states + n, transitions + m
    return total, states, transitions


def check_exact(scenario: Scenario, max_states: int, transitions_per_state: int, widths: list[int], emitted: int,
                symbols: int) -> None:
    """Refuse, before any page-state is enumerated, an exact analysis whose worst case under the
    state budget (:func:`exact_bytes`) exceeds ``run.max_memory_gib`` (the ``--max-memory`` flag)."""
    V = len(scenario.vocabulary.tokens)
    total, states, transitions = exact_bytes(V, emitted, symbols, widths, max_states, transitions_per_state)
    limit = scenario.run.max_memory_gib * GIB
    if total > limit:
        raise TooManyStates(
            f"the exact chain may have up to {states:,} page-states and {transitions:,} transitions (state budget "
            f"--max-states {max_states:,}, {emitted:,} tokens emitted, window {max(widths):,}), which may "
            f"need {total / GIB:,.3g} GiB, more than the memory budget of {scenario.run.max_memory_gib:g} GiB; lower "
            "--max-states or context.length, or raise --max-memory GIB (run.max_memory_gib) if the machine has the memory")
