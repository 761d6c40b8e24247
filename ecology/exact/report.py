"""Exact analysis of the page-state Markov chain of a scenario (Remarks 4–6).

With a finite window the dynamic model is a finite chain over page-states (SCIENCE.md §1). The
enumeration (:mod:`ecology.exact.chain`) enumerates the page-states reachable from the initial window, breadth-first, with the
simulator's own next-token law (:meth:`ecology.core.mixture.Mixture.read`), so chain and simulation
share one source of truth, and this module writes the scenario report. The mathematics of the chain (classes,
stationary laws with error estimates, spectrum, hitting times, committors) lives in
:mod:`ecology.exact.markov`; docs/exact.md states it.

Report items, for the initial page-state ``x``:

- closed classes, their periods, the probability of ending in each, their stationary laws (with
  the per-law L1 error estimate) and the expected time to enter a closed class;
- for each criterion with holding set ``H``: the expected hitting time ``E_x[min{t : X_t in H}]``
  (``inf`` when ``H`` is missed with positive probability) and ``P_x(H entered by the horizon)``
  (the horizon is ``--horizon``, else the scenario's ``run.steps``); a ``periodic`` criterion is
  decided on the product chain of :func:`ecology.exact.chain.repetition_chain`, whose size is its ``n_states``;
- the loops: the cycles of the most likely successor map (:func:`loops_report`);
- metastable classes at tolerance ``D`` (closed classes once transitions below ``D`` are
  ignored): escape per step, expected exit time from the most likely state, and where the chain
  goes when it leaves (the exit law);
- occupation of every named set and criterion (or those of ``--occupation``): the expected
  time in it over the horizon from ``x``, its visits and entries, and per closed class its
  stationary mass, mean stay per visit, mean time between entries and mean return time
  (:func:`occupation_report`);
- optional: a hitting query ``--hit A [--before B]`` (expected hitting time of ``A`` and
  ``P(A before B)`` from the initial state), exact criterion curves up to ``--horizon`` and the
  row of ``T^n`` (``--power``).

Beside a simulation (``run --exact``, ``sweep --exact``, :func:`ecology.run`), the exact figures
per criterion come from :func:`criterion_figures`.

Every computation whose size grows with a flag is estimated first (work ``steps x transitions``
for curves and powers) and refused with one line naming the flag when over budget.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ecology.core.compile import Compiled, compile_scenario
from ecology.errors import UserError
from ecology.exact.chain import (
    DEFAULT_MAX_STATES,
    DEFAULT_MAX_WORK,
    PER_CALL,
    PageChain,
    _work_check,
    build_chain,
    check_periodic,
    criterion_chain,
    criterion_curves,
    distribution_after,
    hit_by,
    holding_curve,
    target_mask,
)
from ecology.exact.markov import (  # noqa: F401  (re-exported: the chain's API used to live here)
    DENSE_LIMIT,
    DOUBLE_MAX_LOG10,
    ChainError,
    MarkovChain,
    StationaryLaw,
    gth,
    log_solve_leaving,
    most_likely_cycles,
    stationary,
    times_power,
)
from ecology.exact.paths import ReactiveFlux, classes_holding, dominant_pathways, reactive_flux, reversibility
from ecology.progress import Progress, silent
from ecology.scenario import Scenario, load

TOP_STATES = 20


FEW_STATES = 20


TOP_EXITS = 5


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


PASSAGE_REPORT_LIMIT = 64  # classes up to this size get Kemeny's constant and the longest mean first passage


OVERFLOW = "above 1.8e308"  # an expected time beyond the largest double, 1.7976931348623157e308


def _passage_report(mc: MarkovChain, members: np.ndarray) -> dict:
    """Kemeny's constant and ``M = max_{i, j} E_i[time to hit j]`` of a small closed class. When
    the passage times leave the range of a double, ``M`` is null with
    ``max_mean_first_passage_overflow`` (:data:`OVERFLOW`) and ``max_mean_first_passage_log10``
    (``max_j`` of the log-space elimination's column ``j``, :func:`log_solve_leaving`), and Kemeny's
    constant is null with ``kemeny_constant_note`` (its terms ``pi_j M[i, j]`` pair a stationary
    mass below the float range with a time above it)."""
    if not 2 <= len(members) <= PASSAGE_REPORT_LIMIT:
        return {}
    inside = MarkovChain(mc.P[members][:, members])
    try:
        with np.errstate(over="ignore"):  # an overflow is the inf looked at below
            kemeny, longest = inside.kemeny_constant(), float(inside.mean_first_passage_times().max())
        if math.isfinite(kemeny) and math.isfinite(longest):
            return {"kemeny_constant": kemeny, "max_mean_first_passage": longest}
    except ChainError:
        pass
    n = len(members)
    columns = [log_solve_leaving(inside.P, np.delete(np.arange(n), j), np.zeros(n - 1)) for j in range(n)]
    j = int(np.argmax([c.max() for c in columns]))
    i = int(np.delete(np.arange(n), j)[np.argmax(columns[j])])
    log10 = inside.log10_expected_hitting_time(i, np.arange(n) == j)  # the longest, with its error bound
    return {"kemeny_constant": None, "kemeny_constant_note": f"not computed: passage times {OVERFLOW}",
            "max_mean_first_passage": None, "max_mean_first_passage_overflow": OVERFLOW,
            "max_mean_first_passage_log10": defended_log10(*log10)}


def _law_report(law: StationaryLaw) -> dict:
    return {"method": law.method, "error_estimate": _finite(law.error) if law.error is not None else None,  # never NaN in JSON
            "error_kind": law.error_kind, "trusted": law.trusted}


@dataclass
class Report:
    """The exact analysis of a scenario (module docstring), as ``ecology analyze`` prints and writes it.

    ``to_dict()`` / ``to_json()`` give the JSON report, whose keys are the field names in this
    order (docs/outputs.md); the optional parts (``occupation``, absent when there is no criterion,
    set or ``--occupation``; ``hit``, ``metastable``, ``horizon``, ``curves``,
    ``power``, and ``export``/``output`` set by the CLI) are left out when absent. Read-only item
    access (``report["n_states"]``, ``"curves" in report``) reads the same keys."""

    scenario: str
    n_states: int
    n_transitions: int
    initial_state: str
    depth: int
    closed_classes: list[dict]
    expected_absorption_time: float | None  # null only with expected_absorption_time_overflow (or _note)
    initial_in_closed_class: bool
    stationary: list[dict] | None  # the top of the stationary law when there is one closed class
    eigenvalues: list[float]
    eigenvalues_complex: list[list[float]]
    criteria: dict[str, dict]
    loops: dict  # the cycles of the most likely successor map (loops_report)
    occupation: dict[str, dict] | None = None  # per criterion and set (or --occupation): occupation_report
    hit: dict | None = None
    metastable: dict | None = None
    horizon: int | None = None
    curves: dict | None = None
    power: dict | None = None
    export: str | None = None
    output: str | None = None
    expected_absorption_time_overflow: str | None = None  # OVERFLOW when the time is beyond a double ...
    expected_absorption_time_log10: float | None = None  # ... with its log10 (log-space elimination)
    expected_absorption_time_note: str | None = None  # why it was not computed

    OPTIONAL = ("occupation", "hit", "metastable", "horizon", "curves", "power", "export", "output",
                "expected_absorption_time_overflow", "expected_absorption_time_log10", "expected_absorption_time_note")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name in self.OPTIONAL and getattr(self, f.name) is None)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __contains__(self, key: str) -> bool:
        return key in {f.name for f in fields(self)} and not (key in self.OPTIONAL and getattr(self, key) is None)

    def __getitem__(self, key: str):
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return self[key] if key in self else default


def as_compiled(function: str, scenario) -> Compiled:
    """What the exact functions take, in any of its three forms: a scenario file's path (``str`` or
    ``Path``, read by :func:`ecology.scenario.load`), a :class:`~ecology.scenario.Scenario`, or its
    compiled form; anything else is one ``TypeError`` line naming ``function``."""
    if isinstance(scenario, Compiled):
        return scenario
    if isinstance(scenario, (str, Path)):
        scenario = load(scenario)
    if isinstance(scenario, Scenario):
        return compile_scenario(scenario)
    raise TypeError(f"{function}: the scenario must be a path to a scenario file, an ecology.scenario.Scenario (from "
                    f"ecology.scenario.load) or its compiled form, got {type(scenario).__name__}")


def analyze(compiled: Compiled | Scenario | str | Path, max_states: int = DEFAULT_MAX_STATES, tolerance: float | None = None,
            horizon: int | None = None, power: int | None = None, chain: PageChain | None = None,
            hit: str | None = None, before: str | None = None, max_work: int = DEFAULT_MAX_WORK,
            occupation: list[str] | None = None, progress: Progress = silent) -> Report:
    """The full :class:`Report` of a compiled scenario, or of a :class:`~ecology.scenario.Scenario`
    or a scenario file's path (compiled here: :func:`as_compiled`) (see ``ecology analyze --help``
    and the module docstring); a question the numerics cannot answer is one :class:`UserError`
    line, never a wrong number. ``occupation`` names the sets and criteria whose occupation is
    reported (default: all of them). ``progress`` (:mod:`ecology.progress`) hears the enumeration
    of the chain (when ``chain`` is not given) and then each solver phase as it starts,
    ``("solving: PHASE", i, n_phases)``: classes, stationary laws, passage times, spectrum,
    absorption time, hitting times, loops, occupation, and as asked the ``--hit`` target,
    metastable classes, curves and the power."""
    compiled = as_compiled("ecology.exact.analyze", compiled)
    try:
        return _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work, occupation,
                        progress)
    except ChainError as err:
        raise UserError(f"exact analysis: {err}") from None


def _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work, occupation,
             progress) -> Report:
    check_periodic(compiled)
    pc = chain or build_chain(compiled, max_states, progress=progress)
    mc = pc.chain
    x = pc.initial
    asked = {"target (--hit)": hit is not None, "metastable classes": tolerance is not None,
             "curves": horizon is not None, "power": power is not None}
    names = [c.name for c in compiled.tracked] if occupation is None else occupation
    phases = ["classes", "stationary laws", "passage times", "spectrum", "absorption time", "hitting times", "loops",
              *(["occupation"] if names else []), *(name for name, given in asked.items() if given)]

    def phase(name: str) -> None:
        progress(f"solving: {name}", phases.index(name), len(phases), f"{mc.n_states:,} page-states")

    phase("classes")
    absorb = mc.absorption_probabilities(x)
    phase("stationary laws")
    laws = mc.stationary_laws
    phase("passage times")
    classes = []
    for members, period, law, prob in zip(mc.recurrent_classes, mc.periods, laws, absorb):
        top = np.argsort(-law.pi, kind="stable")[:TOP_STATES]
        classes.append({
            "size": len(members),
            "period": period,
            "absorbing_state": pc.label(members[0]) if len(members) == 1 else None,
            "states": [pc.label(i) for i in members] if len(members) <= FEW_STATES else None,
            "probability": float(prob),
            "stationary_top": [{"state": pc.label(members[i]), "mass": float(law.pi[i])} for i in top],
            "stationary_accuracy": _law_report(law),
            **_passage_report(mc, members),
        })
    for entry, balance in zip(classes, reversibility(mc)):
        entry.update(reversibility_report(balance))
    phase("spectrum")
    eig = mc.eigenvalues(6)
    closed = np.ones(mc.n_states, dtype=bool)
    closed[mc.transient_states] = False
    phase("absorption time")
    absorption = expected_entrance_time(mc, x, closed, max_work)
    within = horizon if horizon is not None else compiled.scenario.run.steps
    flag = "--horizon" if horizon is not None else "--horizon (default run.steps)"
    criteria = {}
    phase("hitting times")
    for c in compiled.criteria:
        cpc, mask = criterion_chain(compiled, pc, c, max_states)
        criteria[c.name] = hitting_report(cpc, mask, None, within, max_work, flag)
        if cpc is not pc:  # a periodic criterion: decided on the product of repetition_chain
            criteria[c.name]["n_states"] = cpc.chain.n_states
    phase("loops")
    report = Report(
        scenario=compiled.scenario.name,
        n_states=mc.n_states,
        n_transitions=int(mc.P.nnz),
        initial_state=pc.label(x),
        depth=pc.depth,
        closed_classes=classes,
        expected_absorption_time=absorption["value"],
        initial_in_closed_class=bool(x not in set(mc.transient_states.tolist())),
        stationary=classes[0]["stationary_top"] if len(classes) == 1 else None,
        eigenvalues=np.abs(eig).tolist(),
        eigenvalues_complex=[[float(v.real), float(v.imag)] for v in eig],
        criteria=criteria,
        loops=loops_report(pc),
        expected_absorption_time_overflow=absorption["overflow"],
        expected_absorption_time_log10=absorption["log10"],
        expected_absorption_time_note=absorption["note"],
    )
    if names:
        phase("occupation")
        report.occupation = {}
        for name in names:
            opc, mask = target_mask(compiled, pc, name, max_states, "--occupation")
            report.occupation[name] = occupation_report(opc, mask, within, max_work, flag)
    if hit is not None:
        phase("target (--hit)")
        hpc, A = target_mask(compiled, pc, hit, max_states, "--hit")
        B = None
        if before is not None:
            bpc, B = target_mask(compiled, pc, before, max_states, "--before")
            if bpc is not hpc:
                hpc = pc.extended(max_states)
                A = target_mask(compiled, hpc, hit, max_states, "--hit")[1]
                B = target_mask(compiled, hpc, before, max_states, "--before")[1]
            if (A & B).any():
                raise UserError(f"--hit {hit!r} and --before {before!r} share page-states; give disjoint sets")
        report.hit = {"target": hit, "before": before, **hitting_report(hpc, A, B, within, max_work, flag)}
        if B is not None:
            report.hit["transition_paths"] = transition_paths_report(hpc, B, A)  # from --before to --hit
    if tolerance is not None:
        phase("metastable classes")
        report.metastable = metastable_report(pc, tolerance)
    if horizon is not None:
        phase("curves")
        report.horizon = horizon
        report.curves = criterion_curves(compiled, pc, horizon, max_states, max_work)
    if power is not None:
        phase("power")
        row = distribution_after(mc, x, power, max_work)
        top = np.argsort(-row, kind="stable")[:TOP_STATES]
        report.power = {
            "n": power,
            "from_initial": [{"state": pc.label(i), "probability": float(row[i])} for i in top if row[i] > 0],
        }
    return report


def hitting_report(pc: PageChain, A: np.ndarray, B: np.ndarray | None, within: int, max_work: int, flag: str) -> dict:
    """From the initial state: ``E[time to enter A]`` (None when A may be missed, or beyond a
    double: then ``expected_hitting_time_overflow`` and ``_log10`` are given, see
    :func:`expected_entrance_time`), ``P(ever enter A)`` or, with ``B``, ``P(A before B)``, and
    ``P(A entered within `within` steps)``."""
    mc, x = pc.chain, pc.initial
    out = {"size": int(A.sum()), "expected_hitting_time": None, "note": None}
    key = "probability" if B is None else "probability_before"
    out[key] = None
    try:
        out[key] = float(mc.hitting_probabilities(A)[x] if B is None else mc.committor(A, B)[x])
    except ChainError as err:  # what was computed stays; the curve below is exact anyway
        out["note"] = str(err)
    if out["note"] is None:
        time = expected_entrance_time(mc, x, A, max_work)
        out["expected_hitting_time"], out["note"] = time["value"], time["note"]
        if time["bounds"] is not None:
            out["expected_hitting_time_bounds"] = time["bounds"]
        if time["overflow"] is not None:
            out["expected_hitting_time_overflow"], out["expected_hitting_time_log10"] = time["overflow"], time["log10"]
    out["within"] = within
    out["probability_within"] = hit_by(mc, x, A, within, max_work, flag)
    return out


def reversibility_report(balance) -> dict:
    """The keys a closed class gets from :func:`ecology.exact.paths.reversibility`: ``reversible``
    (detailed balance ``pi_i P_ij = pi_j P_ji`` holds to within the law's accuracy; null when the
    law is not trusted and the graph does not decide it), ``detailed_balance_defect`` (``D =
    sum_{i<j} |pi_i P_ij - pi_j P_ji|``, the unbalanced stationary flux per step),
    ``detailed_balance_relative_defect`` (``D`` over the stationary flux between distinct states),
    ``one_way_edges`` (transitions whose reverse is impossible: irreversible on the graph alone) and
    ``reversibility_note``."""
    return {"reversible": balance.reversible, "detailed_balance_defect": balance.defect,
            "detailed_balance_relative_defect": balance.relative_defect, "one_way_edges": balance.one_way_edges,
            "reversibility_note": balance.note}


TOP_PATHWAYS = 5  # dominant pathways listed in the report


PATHWAYS_FRACTION = 0.9  # the decomposition stops once the listed pathways carry this share of the flux


def transition_paths_report(pc: PageChain, A: np.ndarray, B: np.ndarray) -> dict:
    """Stationary transition-path theory from ``A`` to ``B`` (:mod:`ecology.exact.paths`; ``analyze
    --hit TARGET --before OTHER`` gives ``A = OTHER``, ``B = TARGET``, so that ``P(TARGET before
    OTHER)`` is the reaction's forward committor) in the
    closed class that holds page-states of both (the likeliest from the initial page-state when
    several do): ``class``, the page-states of A and B in it (``A_size``, ``B_size``), the total
    reactive ``flux`` (reactive trajectories completed per step in stationarity), the ``rate``
    ``k_AB`` (per step with A visited more recently than B), the ``mean_duration`` of a reactive
    trajectory (steps from its last page-state in A to its first in B), ``conservation_error``
    (largest defect of the net flux's conservation, relative to the flux: the check of the
    committors) and ``pathways``: the dominant ones (bottleneck decomposition of the net flux,
    at most :data:`TOP_PATHWAYS`, until :data:`PATHWAYS_FRACTION` of the flux is covered), each
    with its page-states, ``flux`` and ``share``. Where it is not defined (no closed class holds
    both: an absorbing chain) or not computed, the figures are null and ``note`` says why; a figure
    beyond a double (the flux below 2.2e-308, a duration above 1.8e308) is null with its log10 beside
    it (``flux_log10``, ``rate_log10``, ``mean_duration_log10``, 3 decimals: the sums are in log space)."""
    mc = pc.chain
    keys = ("class", "A_size", "B_size", "flux", "rate", "mean_duration", "conservation_error", "pathways")
    out = dict.fromkeys(keys) | {"note": None}
    holding = classes_holding(mc, A, B)
    if not holding:
        return out | {"note": "not defined: no closed class holds page-states of both sets, so the chain does not go "
                              "back and forth between them in stationarity; P(--hit before --before) from the initial "
                              "page-state (above) is the question that has an answer"}
    absorb = mc.absorption_probabilities(pc.initial)
    k = max(holding, key=lambda i: absorb[i])
    try:
        flux: ReactiveFlux = reactive_flux(mc, A, B, class_index=k)
        out |= {"class": k, "A_size": int(flux.A.sum()), "B_size": int(flux.B.sum()), "flux": flux.total_flux,
                "rate": flux.rate, "mean_duration": flux.mean_duration, "conservation_error": flux.conservation_error,
                "note": flux.note}
        for key, log10 in (("flux", flux.log10_total_flux), ("rate", flux.log10_rate),
                           ("mean_duration", flux.log10_mean_duration)):
            if out[key] is None and log10 is not None:
                out[f"{key}_log10"] = round(log10, 3)  # beyond a double: its log10 from the log-space sums
        if flux.total_flux is not None:  # else the note says why there are no pathways
            paths = dominant_pathways(flux, PATHWAYS_FRACTION, TOP_PATHWAYS)
            out["pathways"] = [{"states": [pc.label(i) for i in p.states], "flux": p.flux, "share": p.share}
                               for p in paths]
    except ChainError as err:
        out["note"] = f"not computed: {err}"
    if len(holding) > 1:
        shown = f"closed classes {holding} each hold page-states of both sets; class {k} (the likeliest from the initial " \
                "page-state) is shown"
        out["note"] = shown if out["note"] is None else f"{shown}; {out['note']}"
    return out


STAY_NOTES = {"closed": "never left once entered in this class: stays and times between entries are infinite",
              "unvisited": "never visited in this class: no stay, excursion or return to measure",
              "overflow": f"a time {OVERFLOW} (the flux into the set is below the range of the ratio): not given"}


def occupation_report(pc: PageChain, A: np.ndarray, within: int, max_work: int, flag: str) -> dict:
    """The time the chain spends in ``A`` (:meth:`ecology.exact.markov.MarkovChain.occupation_over_horizon`
    and :meth:`~ecology.exact.markov.MarkovChain.occupation_in_stationarity`), from the initial page-state:

    - over the horizon ``H = within``: ``occupation`` (expected steps in A among ``t = 0 .. H``),
      ``fraction`` (over ``H + 1``), ``visits``, ``entries``, ``exits``, and the ratios a simulation
      estimates, ``mean_stay_within = exposure / exits`` and ``mean_time_between_entries_within =
      H / entries`` (null when no visit ends, or none begins, within the horizon);
    - ``long_run_fraction``: the Cesàro limit of ``fraction``, ``sum_C P(end in C) pi_C(A)`` (null
      when a class that may be entered has a stationary law that is not trusted);
    - ``classes``: per closed class, ``probability`` of ending there, ``mass = pi(A)``, ``flux``
      into A per step, ``mean_stay = pi(A) / flux``, ``mean_time_between_entries = 1 / flux``,
      ``mean_excursion = (1 - pi(A)) / flux`` and ``mean_return_time = 1 / pi(A)`` (from pi
      restricted to A); where they are infinite, undefined or not defended by the class's stationary
      law (:attr:`StationaryLaw.trusted`) they are null and ``note`` says which."""
    mc = pc.chain
    _work_check("the occupation over the horizon", within, mc.P.nnz, max_work, flag)
    initial = np.zeros(mc.n_states)
    initial[pc.initial] = 1.0
    horizon = mc.occupation_over_horizon(initial, A, within)
    absorb = mc.absorption_probabilities(pc.initial)
    classes = []
    keys = ("mass", "flux", "mean_stay", "mean_time_between_entries", "mean_excursion", "mean_return_time")
    for i, (stay, probability, law) in enumerate(zip(mc.occupation_in_stationarity(A), absorb, mc.stationary_laws)):
        if not law.trusted:  # digits that the law's error estimate does not defend are withheld
            estimate = "none" if law.error is None else f"{law.error:.1e}"
            classes.append({"class": i, "probability": float(probability), **dict.fromkeys(keys),
                            "note": f"not computed: the class's stationary law is not trusted (L1 error estimate {estimate})"})
            continue
        figures = {key: _finite(stay[key]) if stay[key] is not None else None for key in keys}
        note = STAY_NOTES["unvisited"] if stay["mass"] == 0 else STAY_NOTES["closed"] if stay["flux"] == 0 else \
            STAY_NOTES["overflow"] if None in figures.values() else None
        classes.append({"class": i, "probability": float(probability), **figures, "note": note})
    trusted = all(law.trusted for law, p in zip(mc.stationary_laws, absorb) if p > 0)
    return {
        "size": int(A.sum()), "horizon": within,
        **{key: horizon[key] for key in ("occupation", "fraction", "visits", "entries", "exits")},
        "mean_stay_within": _ratio(horizon["exposure"], horizon["exits"]),
        "mean_time_between_entries_within": _ratio(within, horizon["entries"]),
        "long_run_fraction": mc.long_run_fraction(initial, A) if trusted else None,
        "classes": classes,
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; None when the denominator is 0 or the ratio is beyond a double."""
    return _finite(numerator / denominator) if denominator > 0 else None


def expected_entrance_time(mc: MarkovChain, x: int, A: np.ndarray, max_work: int) -> dict:
    """``E_x[time to enter A]`` as ``value`` (a float; None when infinite, beyond a double or not
    computed), ``bounds`` (``[lo, hi]`` when it comes from the survival series), ``overflow``
    (:data:`OVERFLOW` when the time is beyond the largest double), ``log10`` (its log10 when
    known) and ``note`` (why it was not computed). None with neither ``overflow`` nor ``note``
    means infinite: A is missed with positive probability (decided on the graph, exactly; a finite
    chain has no null-recurrent states, so a time is infinite only then).

    The subtraction-free solvers first. A time whose solution overflows (``inf`` where A is
    surely entered) or whose pivots underflow (a ChainError) is solved again by the log-space
    elimination (:meth:`ecology.exact.markov.MarkovChain.log10_expected_hitting_time`, up to
    ``LOG_SOLVE_LIMIT`` unknowns), which gives its log10; beyond that size an overflowed solution
    is still ``above 1.8e308`` (every step of the elimination adds, multiplies or divides
    non-negative numbers, so ``inf`` means a true value beyond the range) without log10, and a
    failed one goes to the survival series with its two-sided tail bounds (the value is their
    midpoint), else the note."""
    out = {"value": None, "bounds": None, "overflow": None, "log10": None, "note": None}
    if not mc.surely_entered(A)[x]:
        return out
    try:
        with np.errstate(over="ignore"):  # an overflow is the inf looked at below
            value = float(mc.expected_hitting_times(A)[x])
        if math.isfinite(value):
            return {**out, "value": value}
        failure = None  # the solution overflowed
    except ChainError as err:
        failure = str(err)
    try:
        log10, error = mc.log10_expected_hitting_time(x, A)
    except ChainError:
        log10 = error = None
    if log10 is not None and log10 < DOUBLE_MAX_LOG10 and error < 1e-12:
        return {**out, "value": 10.0**log10}  # within range, though a pivot of the float solve underflowed
    if log10 is not None or failure is None:
        return {**out, "overflow": OVERFLOW, "log10": defended_log10(log10, error)}
    series = _hitting_time_by_series(mc, x, A, max_work)
    if series is None:
        return {**out, "note": failure}
    return {**out, "value": (series[0] + series[1]) / 2, "bounds": series}


def defended_log10(log10: float | None, error: float | None) -> float | None:
    """``log10`` rounded to the decimals its error bound defends (at most 3; None when it
    defends none, or when there is no log10)."""
    if log10 is None or not error < 0.5:
        return None
    decimals = min(3, max(0, math.floor(-math.log10(2 * error)))) if error > 0 else 3
    return round(log10, decimals)


def _hitting_time_by_series(mc: MarkovChain, x: int, A: np.ndarray, max_work: int) -> list[float] | None:
    """``[lo, hi]`` bounds on ``E_x[time to enter A]`` by the survival series with Collatz–Wielandt
    tail bounds (:meth:`ecology.exact.markov.MarkovChain.expected_hitting_time_by_series`) within the
    work budget, when the linear solvers are out of reach; None when the bounds do not close to
    1e-10 relative within the budget (``[inf, inf]`` when A may be missed)."""
    bounds = mc.expected_hitting_time_by_series(x, A, max_work // max(mc.P.nnz, PER_CALL))
    return None if bounds is None else [float(bounds[0]), float(bounds[1])]


TOP_LOOPS = 10  # loops listed in the report (the most likely laps first)


def loops_report(pc: PageChain) -> dict:
    """The loops of the chain: the cycles of its most likely successor map
    ``f(i) = argmax_j P[i, j]`` (:func:`ecology.exact.markov.most_likely_cycles`), every state's
    likeliest future ending on one of them. ``count`` of them in all, the :data:`TOP_LOOPS` with
    the most likely laps listed, each with its page-states in the order the chain runs round them,
    ``length`` ``L``, ``lap_probability`` ``rho`` (going once round), ``leak_per_step``
    ``1 - rho^(1/L)``, ``expected_laps`` ``rho / (1 - rho)`` (complete laps before leaving; null
    when ``closed``: no transition leaves it, a closed class of period ``L``, and when it is beyond a
    double: a leak below double precision), the closed class it
    lies in (``closed_class``, null when transient) and ``stationary_mass``, the mass of that
    class's stationary law on the cycle (0 on a transient cycle; null when the law's error
    estimate is not trusted)."""
    mc = pc.chain
    home = np.full(mc.n_states, -1)
    for i, members in enumerate(mc.recurrent_classes):
        home[members] = i
    laws = mc.stationary_laws
    position = np.zeros(mc.n_states, dtype=np.int64)
    for members in mc.recurrent_classes:
        position[members] = np.arange(len(members))
    cycles = most_likely_cycles(mc.P)
    listed = []
    for c in cycles[:TOP_LOOPS]:
        where = int(home[c.states[0]])
        mass = 0.0 if where < 0 else float(laws[where].pi[position[c.states]].sum()) if laws[where].trusted else None
        listed.append({
            "states": [pc.label(i) for i in c.states],
            "length": c.length,
            "lap_probability": c.lap,
            "leak_per_step": c.leak,
            "expected_laps": _finite(c.expected_laps),
            "closed": c.closed,
            "closed_class": where if where >= 0 else None,
            "stationary_mass": mass,
        })
    return {"count": len(cycles), "cycles": listed}


def metastable_report(pc: PageChain, tolerance: float) -> dict:
    """Metastable classes at ``tolerance`` with exit times and exit laws (labelled)."""
    meta = pc.chain.metastable(tolerance)
    home = np.full(pc.chain.n_states, -1)
    for i, m in enumerate(meta):
        home[m["states"]] = i
    classes = []
    for m in meta:
        exits = sorted(m["exit_law"].items(), key=lambda kv: -kv[1])
        into = {}
        for state, p in m["exit_law"].items():
            into[int(home[state])] = into.get(int(home[state]), 0.0) + p
        classes.append({
            "size": len(m["states"]),
            "states": [pc.label(i) for i in m["states"]] if len(m["states"]) <= FEW_STATES else None,
            "max_escape": m["max_escape"],
            "likely_state": pc.label(m["likely_state"]),
            "exit_time": _finite(m["exit_time"]),  # null: closed (max_escape 0), or beyond a double (below)
            **({"exit_time_overflow": OVERFLOW, "exit_time_log10": defended_log10(*(m["exit_time_log10"] or (None, None)))}
               if m["max_escape"] > 0 and not math.isfinite(m["exit_time"]) else {}),
            "exits_to": [{"state": pc.label(s), "probability": p, "metastable_class": int(home[s])}
                         for s, p in exits[:TOP_EXITS]],
            "exit_class_probabilities": {str(k): v for k, v in sorted(into.items())},
        })
    return {"tolerance": tolerance, "classes": classes}


def criterion_figures(compiled: Compiled | Scenario | str | Path, max_states: int = DEFAULT_MAX_STATES,
                      horizon: int | None = None, chain: PageChain | None = None, progress: Progress = silent) -> dict:
    """The exact chain's figures per criterion beside a simulation (``run --exact``, ``sweep
    --exact``, :func:`ecology.run`), from the initial page-state ``x`` with ``h`` the criterion's
    set (bool mask of page-states) and ``N`` the horizon (default ``run.steps``):

    - ``n_states``: the states of the chain the criterion is decided on (for ``periodic``, the
      product of :func:`ecology.exact.chain.repetition_chain`);
    - ``expected_hitting_time``: ``E[T] = h(x)`` from ``(I - P_SS) h_S = 1`` (None = infinite:
      the set is missed with positive probability, or not computed: then
      ``expected_hitting_time_note`` says why, or beyond a double: then
      ``expected_hitting_time_overflow`` is ``"above 1.8e308"`` and ``expected_hitting_time_log10``
      its log10 when known, both null otherwise); ``expected_hitting_time_bounds``: ``[lo, hi]``
      when it comes from the survival series (:func:`expected_entrance_time`);
      ``reached_ever``: P(T < infinity);
    - ``reached_by_horizon`` and ``reached_curve``: ``P(T <= t)``, ``t = 0 .. N``;
      ``restricted_mean``: ``E[min(T, N)] = sum_{t<N} P(T > t)``;
    - ``holding_curve``: ``P(the criterion holds at t) = e_x P^t h`` (:func:`holding_curve`);
    - ``closed``: no transition leaves the set (once reached, it holds forever).

    ``chain`` is the page-state chain when the caller has built it already; else the chains the
    criteria need are built here (none when there is no criterion). Raises :class:`UserError`
    when a chain is out of reach (too many states, deletion none). ``progress`` hears the
    enumeration (:func:`build_chain`) and ``("exact figures", i, n_criteria, NAME)`` before each.
    """
    compiled = as_compiled("ecology.exact.report.criterion_figures", compiled)
    horizon = compiled.scenario.run.steps if horizon is None else horizon
    check_periodic(compiled)
    out = {}
    for i, c in enumerate(compiled.criteria):
        chain = chain or build_chain(compiled, max_states, progress=progress)
        progress("exact figures", i, len(compiled.criteria), c.name)
        pc, h = criterion_chain(compiled, chain, c, max_states)
        mc, x = pc.chain, pc.initial
        curve = mc.hitting_curve(x, h, horizon)
        expected = expected_entrance_time(mc, x, h, DEFAULT_MAX_WORK)
        leaving = mc.P[np.flatnonzero(h)][:, np.flatnonzero(~h)].sum() if h.any() else 0.0
        out[c.name] = {
            "n_states": mc.n_states,
            "expected_hitting_time": expected["value"],
            "expected_hitting_time_bounds": expected["bounds"],
            "expected_hitting_time_note": expected["note"],
            "expected_hitting_time_overflow": expected["overflow"],
            "expected_hitting_time_log10": expected["log10"],
            "reached_ever": float(mc.hitting_probabilities(h)[x]),
            "reached_by_horizon": float(curve[-1]),
            "restricted_mean": float(np.sum(1.0 - curve[:horizon])),
            "closed": bool(h.any() and leaving == 0),
            "reached_curve": curve.tolist(),
            "holding_curve": holding_curve(pc, h, horizon).tolist(),
        }
    return out


def occupation_figures(compiled: Compiled | Scenario | str | Path, max_states: int = DEFAULT_MAX_STATES,
                       horizon: int | None = None, chain: PageChain | None = None) -> dict:
    """:func:`occupation_report` of every criterion and named set, over the horizon (default
    ``run.steps``), beside a simulation (``run --exact``); ``chain`` as in :func:`criterion_figures`."""
    compiled = as_compiled("ecology.exact.report.occupation_figures", compiled)
    within = compiled.scenario.run.steps if horizon is None else horizon
    pc = chain or (build_chain(compiled, max_states) if compiled.tracked else None)
    out = {}
    for c in compiled.tracked:
        opc, mask = target_mask(compiled, pc, c.name, max_states, "--occupation")
        out[c.name] = occupation_report(opc, mask, within, DEFAULT_MAX_WORK, "--horizon (default run.steps)")
    return out
