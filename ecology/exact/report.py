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
for curves and powers) and refused with one line naming the flag when over budget. A quantity the
numerics cannot answer (a :class:`ChainError`) is that quantity's entry in ``Report.notes``, its
figures null, and the others are reported (:func:`_attempt`; docs/exact.md, "When a quantity
cannot be computed").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from scipy.sparse import csgraph

from ecology.core.compile import Compiled, compile_scenario
from ecology.errors import UserError
from ecology.exact import quasi
from ecology.exact.chain import (
    CHUNK,
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
from ecology.exact.lumping import RTOL, aggregated_chain, coarsest_lumping, lumpability, partition_by_values
from ecology.exact.markov import (  # noqa: F401  (re-exported: the chain's API used to live here)
    DENSE_EIGEN_LIMIT,
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
from ecology.exact.moments import entropy_rates, hitting_time_moments, hitting_time_variance_by_series
from ecology.exact.paths import ReactiveFlux, classes_holding, dominant_pathways, reactive_flux, reversibility
from ecology.kinds.criteria import Periodic
from ecology.progress import Progress, silent
from ecology.scenario import Scenario, load
from ecology.threads import blas_threads

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
    constant ``K = sum_j pi_j M[0, j]`` is summed in log space from those columns alone
    (``kemeny_constant_method`` says so): a term pairs a stationary mass that may be below the float
    range with a time above it, so ``pi_j`` is taken from Kac's formula, ``1 / pi_j = E_j[return
    time] = 1 + sum_k P[j, k] M[k, j]``, itself a log-space sum, never from the (underflowed) law.
    When the float solve failed for another reason (a pivot underflowed) and the longest passage is
    within range, it is given as a value, from its log10."""
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
    if log10[0] < DOUBLE_MAX_LOG10 and log10[1] < 1e-12:  # within range: a pivot of the float solve underflowed
        longest = {"max_mean_first_passage": 10.0 ** log10[0]}
    else:
        longest = {"max_mean_first_passage": None, "max_mean_first_passage_overflow": OVERFLOW,
                   "max_mean_first_passage_log10": defended_log10(*log10)}
    P = inside.P.toarray()
    log_M = np.full((n, n), -np.inf)  # ln M[i, j], -inf on the diagonal (M[j, j] = 0)
    for j in range(n):
        log_M[np.delete(np.arange(n), j), j] = columns[j]
    with np.errstate(divide="ignore"):
        log_P = np.log(P)
    # Kac: pi_j = 1 / E_j[return time] = 1 / (1 + sum_k P[j, k] M[k, j]), so ln pi_j is a logsumexp
    log_pi = -np.logaddexp(0.0, np.array([_log_sum_exp(log_P[j] + log_M[:, j]) for j in range(n)]))
    log10_kemeny = _log_sum_exp(log_pi + log_M[0]) / math.log(10)
    if log10_kemeny >= DOUBLE_MAX_LOG10:  # a nearly decomposable class: K ~ 1 / (escape rate) beyond a double
        return {"kemeny_constant": None, "kemeny_constant_overflow": OVERFLOW, "kemeny_constant_method": KEMENY_IN_LOG_SPACE,
                "kemeny_constant_log10": defended_log10(log10_kemeny, log10[1]), **longest}
    return {"kemeny_constant": 10.0**log10_kemeny, "kemeny_constant_method": KEMENY_IN_LOG_SPACE, **longest}


KEMENY_IN_LOG_SPACE = "log space: sum_j pi_j M[0, j], pi_j = 1 / (1 + sum_k P[j, k] M[k, j]) (Kac)"


def _log_sum_exp(v: np.ndarray) -> float:
    top = float(v.max())
    return top if not math.isfinite(top) else top + math.log(float(np.exp(v - top).sum()))


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
    implied_timescales: dict | None = None  # -1 / ln|lambda| of the eigenvalues above (timescales_report)
    conductance: dict | None = None  # of each criterion's set and of the small closed classes (conductance_report)
    quasi_stationary: dict | None = None  # --quasi-stationary SET (quasi_stationary_report)
    lumping: dict | None = None  # --lump: lumping_report
    notes: dict[str, str] | None = None  # quantity -> why it was not computed (the others are reported: _attempt)

    OPTIONAL = ("occupation", "hit", "metastable", "horizon", "curves", "power", "export", "output",
                "expected_absorption_time_overflow", "expected_absorption_time_log10", "expected_absorption_time_note",
                "implied_timescales", "conductance", "quasi_stationary", "lumping", "notes")

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


@blas_threads()  # one BLAS thread unless the user says otherwise (ecology/threads.py)
def analyze(compiled: Compiled | Scenario | str | Path, max_states: int = DEFAULT_MAX_STATES, tolerance: float | None = None,
            horizon: int | None = None, power: int | None = None, chain: PageChain | None = None,
            hit: str | None = None, before: str | None = None, max_work: int = DEFAULT_MAX_WORK,
            occupation: list[str] | None = None, progress: Progress = silent,
            quasi_stationary: str | None = None, lump: str | None = None, lump_rtol: float = RTOL) -> Report:
    """The full :class:`Report` of a compiled scenario, or of a :class:`~ecology.scenario.Scenario`
    or a scenario file's path (compiled here: :func:`as_compiled`) (see ``ecology analyze --help``
    and the module docstring); a quantity the numerics cannot answer is a note in
    ``Report.notes`` (its figures null, never a wrong number) and the others are reported; a
    question the input must change (a flag over its budget) is one :class:`UserError` line.
    ``occupation`` names the sets and criteria whose occupation is reported (default: all of them).
    ``progress`` (:mod:`ecology.progress`) hears the enumeration of the chain (when ``chain`` is
    not given) and then each solver phase as it starts, ``("solving: PHASE", i, n_phases)``:
    classes, stationary laws, passage times, spectrum, absorption time, hitting times, loops,
    occupation, and as asked the ``--hit`` target, metastable classes, curves, the power, the
    quasi-stationary law and the lumping. ``quasi_stationary`` names a target as ``hit`` does: the
    law of the chain conditioned on not having entered it yet (:func:`quasi_stationary_report`).
    ``lump`` (``"amplitudes"`` or ``"criteria"``) partitions the page-states and lumps them
    (:func:`lumping_report`, values equal within the relative ``lump_rtol``)."""
    compiled = as_compiled("ecology.exact.analyze", compiled)
    if lump is not None and lump not in LUMP_BY:
        raise UserError(f"--lump {lump!r}: lump by 'amplitudes' (the premise amplitude vectors) or 'criteria' (the "
                        "truth values of the criteria and named sets)")
    if not 0 <= lump_rtol < 1:
        raise UserError(f"--lump-rtol {lump_rtol!r}: give a relative tolerance in [0, 1), e.g. 1e-9")
    try:
        return _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work, occupation,
                        progress, quasi_stationary, lump, lump_rtol)
    except ChainError as err:
        raise UserError(f"exact analysis: {err}") from None


def _analyze(compiled, max_states, tolerance, horizon, power, chain, hit, before, max_work, occupation,
             progress, quasi_stationary=None, lump=None, lump_rtol=RTOL) -> Report:
    check_periodic(compiled)
    pc = chain or build_chain(compiled, max_states, progress=progress)
    mc = pc.chain
    x = pc.initial
    asked = {"target (--hit)": hit is not None, "metastable classes": tolerance is not None,
             "curves": horizon is not None, "power": power is not None,
             "quasi-stationary law": quasi_stationary is not None, "lumping": lump is not None}
    names = [c.name for c in compiled.tracked] if occupation is None else occupation
    phases = ["classes", "stationary laws", "passage times", "spectrum", "absorption time", "hitting times", "loops",
              *(["occupation"] if names else []), *(name for name, given in asked.items() if given)]

    def phase(name: str) -> None:
        progress(f"solving: {name}", phases.index(name), len(phases), f"{mc.n_states:,} page-states")

    notes: dict[str, str] = {}
    if pc.underflowed:
        notes["chain"] = (f"{pc.underflowed:,} transitions have positive probabilities below the float range (about "
                          "5e-324) and are not in the chain: a set they alone lead to is unreachable here (P(ever) 0, "
                          "times infinite) though the model reaches it; the figures are those of the float chain")
    phase("classes")
    n_closed = len(mc.recurrent_classes)
    absorb = _attempt(notes, "absorption probabilities", lambda: mc.absorption_probabilities(x), [None] * n_closed)
    phase("stationary laws")
    laws = _attempt(notes, "stationary laws", lambda: mc.stationary_laws, [None] * n_closed)
    phase("passage times")
    classes = []
    rates = _attempt(notes, "entropy rates", lambda: entropy_rates(mc), None)
    for index, (members, period, law, prob) in enumerate(zip(mc.recurrent_classes, mc.periods, laws, absorb)):
        top = [] if law is None else np.argsort(-law.pi, kind="stable")[:TOP_STATES]
        classes.append({
            "size": len(members),
            "period": period,
            "absorbing_state": pc.label(members[0]) if len(members) == 1 else None,
            "states": [pc.label(i) for i in members] if len(members) <= FEW_STATES else None,
            "probability": None if prob is None else float(prob),
            "stationary_top": [{"state": pc.label(members[i]), "mass": float(law.pi[i])} for i in top],
            "stationary_accuracy": NOT_COMPUTED_LAW if law is None else _law_report(law),
            **_attempt(notes, f"passage times of class {len(classes)}", lambda members=members: _passage_report(mc, members),
                       {}),
            **({"entropy_rate": None, "entropy_rate_note": notes["entropy rates"]} if rates is None else
               _entropy_rate_report(rates, index)),
        })
        if f"passage times of class {len(classes) - 1}" in notes:  # the float and the log-space eliminations failed
            reason = notes[f"passage times of class {len(classes) - 1}"]
            classes[-1].update(kemeny_constant=None, kemeny_constant_note=reason, max_mean_first_passage=None,
                               max_mean_first_passage_note=reason)
    for entry, balance in zip(classes, _attempt(notes, "reversibility", lambda: reversibility(mc), [])):
        entry.update(reversibility_report(balance))
    phase("spectrum")
    eig = _attempt(notes, "spectrum", lambda: mc.eigenvalues(6), np.zeros(0, dtype=complex))
    closed = np.ones(mc.n_states, dtype=bool)
    closed[mc.transient_states] = False
    phase("absorption time")
    absorption = _attempt(notes, "absorption time", lambda: expected_entrance_time(mc, x, closed, max_work),
                          {"value": None, "overflow": None, "log10": None, "note": None})
    if "absorption time" in notes:
        absorption["note"] = notes["absorption time"]
    within = horizon if horizon is not None else compiled.scenario.run.steps
    flag = "--horizon" if horizon is not None else "--horizon (default run.steps)"
    criteria = {}
    phase("hitting times")
    for c in compiled.criteria:
        cpc, mask = criterion_chain(compiled, pc, c, max_states)
        quantity = f"criterion '{c.name}'"
        criteria[c.name] = _attempt(notes, quantity, lambda cpc=cpc, mask=mask: hitting_report(
            cpc, mask, None, within, max_work, flag), None) or _failed_hitting(mask, None, within, notes[quantity])
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
        loops=_attempt(notes, "loops", lambda: loops_report(pc), {"count": None, "cycles": []}),
        expected_absorption_time_overflow=absorption["overflow"],
        expected_absorption_time_log10=absorption["log10"],
        expected_absorption_time_note=absorption["note"],
        implied_timescales=_attempt(notes, "implied timescales", lambda: timescales_report(mc, eig), None),
        conductance=_attempt(notes, "conductance", lambda: conductance_report(compiled, pc, max_states), None),
    )
    if names:
        phase("occupation")
        report.occupation = {}
        for name in names:
            opc, mask = target_mask(compiled, pc, name, max_states, "--occupation")
            report.occupation[name] = _attempt(notes, f"occupation '{name}'", lambda opc=opc, mask=mask: occupation_report(
                opc, mask, within, max_work, flag), None)
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
        report.hit = {"target": hit, "before": before, **(_attempt(notes, "hit", lambda: hitting_report(
            hpc, A, B, within, max_work, flag), None) or _failed_hitting(A, B, within, notes["hit"]))}
        if B is not None:  # from --before to --hit
            report.hit["transition_paths"] = _attempt(notes, "transition paths", lambda: transition_paths_report(
                hpc, B, A), None)
    if tolerance is not None:
        phase("metastable classes")
        report.metastable = _attempt(notes, "metastable classes", lambda: metastable_report(pc, tolerance),
                                     {"tolerance": tolerance, "classes": []})
    if horizon is not None:
        phase("curves")
        report.horizon = horizon
        report.curves = _attempt(notes, "curves", lambda: criterion_curves(compiled, pc, horizon, max_states, max_work), None)
    if power is not None:
        phase("power")
        row = _attempt(notes, "power", lambda: distribution_after(mc, x, power, max_work), None)
        top = [] if row is None else np.argsort(-row, kind="stable")[:TOP_STATES]
        report.power = {
            "n": power,
            "from_initial": [{"state": pc.label(i), "probability": float(row[i])} for i in top if row[i] > 0],
        }
    if quasi_stationary is not None:
        phase("quasi-stationary law")
        report.quasi_stationary = _attempt(notes, "quasi-stationary law", lambda: quasi_stationary_report(
            compiled, pc, quasi_stationary, max_states, within, max_work, flag), None)
    if lump is not None:
        phase("lumping")
        report.lumping = _attempt(notes, "lumping", lambda: lumping_report(compiled, pc, lump, lump_rtol, max_work), None)
    report.notes = notes or None
    return report


NOT_COMPUTED_LAW = {"method": None, "error_estimate": None, "error_kind": "not computed (see the report's notes)",
                    "trusted": False}


def _attempt(notes: dict[str, str], quantity: str, compute, failed):
    """``compute()``, or ``failed`` when the numerics cannot answer it (a :class:`ChainError`: a
    singular or out-of-range system, a solver over its budget), the reason recorded as
    ``notes[quantity]``: one quantity that cannot be computed never aborts the others. A
    :class:`UserError` (a flag over its budget, a set that does not exist) still stops the report:
    it is the input that must change."""
    try:
        return compute()
    except ChainError as err:
        notes[quantity] = f"not computed: {err}"
        return failed


def _failed_hitting(A: np.ndarray, B: np.ndarray | None, within: int, note: str) -> dict:
    """The shape of :func:`hitting_report` when it could not be computed: every figure null, ``note`` says why."""
    return {"size": int(A.sum()), "expected_hitting_time": None, "note": note,
            "probability" if B is None else "probability_before": None, "within": within, "probability_within": None}


def hitting_report(pc: PageChain, A: np.ndarray, B: np.ndarray | None, within: int, max_work: int, flag: str) -> dict:
    """From the initial state: ``E[time to enter A]`` (None when A may be missed, or beyond a
    double: then ``expected_hitting_time_overflow`` and ``_log10`` are given, see
    :func:`expected_entrance_time`), the standard deviation of that time (:func:`hitting_time_sd`),
    ``P(ever enter A)`` or, with ``B``, ``P(A before B)``, and
    ``P(A entered within `within` steps)`` (``probability_within``; when it is 0 in floating point
    though ``A`` is reachable within the horizon on the graph, ``probability_within_note`` says it is
    below the float range)."""
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
        out.update(hitting_time_sd(mc, x, A, time, max_work))
    out["within"] = within
    out["probability_within"] = hit_by(mc, x, A, within, max_work, flag)
    if out["probability_within"] == 0 and A.any() and _steps_to_reach(mc, x, A) <= within:
        out["probability_within_note"] = UNDERFLOW_WITHIN
    return out


SD_TRUSTED = 1e-6  # a standard deviation is printed when its first-order error bound is below this fraction of it


def hitting_time_sd(mc: MarkovChain, x: int, A: np.ndarray, time: dict, max_work: int) -> dict:
    """The standard deviation of the time to enter ``A`` from ``x``, given its mean ``time``
    (:func:`expected_entrance_time`): ``hitting_time_sd`` from
    :func:`ecology.exact.moments.hitting_time_moments` (the variance by the martingale decomposition
    or by ``phi_2 + h - h^2``, whichever has the smaller error bound; at most the longest mean
    time, so a double whenever the means are); where the mean came from the survival series, the
    midpoint of the series' bounds (:func:`ecology.exact.moments.hitting_time_variance_by_series`,
    closed to 1e-10 relative within ``max_work``) with ``hitting_time_sd_bounds``. Null with
    ``hitting_time_sd_note`` when it is infinite (A may be missed), when the mean is beyond a
    double or not computed, when the moments or the series are not computed, or when its error
    bound exceeds :data:`SD_TRUSTED` of it (the note then gives the upper bound it does defend)."""
    if time["overflow"] is not None:
        return {"hitting_time_sd": None, "hitting_time_sd_note": f"not computed: the expected hitting time is {OVERFLOW}"}
    if time["bounds"] is not None:  # the linear solvers are out of reach: the series, with its bounds
        bounds = hitting_time_variance_by_series(mc, x, A, max_work // max(mc.P.nnz, PER_CALL))
        if bounds is None:
            return {"hitting_time_sd": None, "hitting_time_sd_note": "not computed: the survival series of the variance "
                    "did not close within the work budget (--max-work)"}
        lo, hi = math.sqrt(bounds[0]), math.sqrt(bounds[1])
        if not hi - lo <= 2 * SD_TRUSTED * (lo + hi) / 2:
            return _sd_withheld((lo + hi) / 2, (hi - lo) / 2)
        return {"hitting_time_sd": (lo + hi) / 2, "hitting_time_sd_bounds": [lo, hi]}
    if time["note"] is not None:
        return {"hitting_time_sd": None, "hitting_time_sd_note": "not computed: nor is the expected hitting time"}
    if time["value"] is None:
        return {"hitting_time_sd": None, "hitting_time_sd_note": "infinite: the set may be missed"}
    try:
        moments = hitting_time_moments(mc, A, 2)
    except ChainError as err:
        return {"hitting_time_sd": None, "hitting_time_sd_note": f"not computed: {err}"}
    sd, error = float(moments.sd()[x]), float(moments.sd_error()[x])
    if not error <= SD_TRUSTED * sd:
        return _sd_withheld(sd, error)
    return {"hitting_time_sd": sd}


def _sd_withheld(sd: float, error: float) -> dict:
    """An sd whose error bound does not defend 6 digits: null, the note giving what it does defend."""
    return {"hitting_time_sd": None, "hitting_time_sd_note": f"at most {sd + error:.2e}, not computed to 6 digits "
            f"(its error bound is {error:.1e})"}


def _entropy_rate_report(rates, index: int) -> dict:
    """``entropy_rate`` of closed class ``index`` (nats per step, :func:`ecology.exact.moments.entropy_rates`);
    null with ``entropy_rate_note`` when its stationary law is not trusted."""
    rate = rates.rates[index]
    if rate is not None:
        return {"entropy_rate": rate}
    error = rates.errors[index]
    return {"entropy_rate": None, "entropy_rate_note": "not computed: the class's stationary law is not trusted "
            f"(error bound {'none' if error is None else f'{error:.1e}'} nats per step)"}
UNDERFLOW_WITHIN = "below the float range (about 1e-308): the set is reachable within the horizon, so the probability is not 0"


def _steps_to_reach(mc: MarkovChain, x: int, A: np.ndarray) -> float:
    """The fewest steps from ``x`` to ``A`` on the transition graph (breadth first; ``inf`` when unreachable)."""
    distance = csgraph.shortest_path(mc.P, unweighted=True, indices=x)
    return float(distance[A].min())
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
              "overflow": f"a time {OVERFLOW} (the flux into the set is below the range of the ratio): not given",
              "underflow": "not computed: the set's stationary mass is below the float range (about 1e-308), so its stay, "
                           f"entry and return times are {OVERFLOW}"}


def occupation_report(pc: PageChain, A: np.ndarray, within: int, max_work: int, flag: str) -> dict:
    """The time the chain spends in ``A`` (:meth:`ecology.exact.markov.MarkovChain.occupation_over_horizon`
    and :meth:`~ecology.exact.markov.MarkovChain.occupation_in_stationarity`), from the initial page-state:

    - over the horizon ``H = within``: ``occupation`` (expected steps in A among ``t = 0 .. H``),
      ``fraction`` (over ``H + 1``), ``visits``, ``entries``, ``exits``, and the ratios a simulation
      estimates, ``mean_stay_within = exposure / exits`` and ``mean_time_between_entries_within =
      H / entries`` (null when no visit ends, or none begins, within the horizon);
    - ``long_run_fraction``: the Cesàro limit of ``fraction``, ``sum_C P(end in C) pi_C(A)`` (null
      when a class that may be entered has a stationary law that is not trusted, or when a class's
      ``pi(A)`` is below the float range: a closed class puts mass on each of its states, so a 0 is
      an underflow, reported as such with its figures null, never as "never visited");
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
        if stay["mass"] == 0 and A[mc.recurrent_classes[i]].any():  # each state of a closed class has mass > 0
            classes.append({"class": i, "probability": float(probability), **dict.fromkeys(keys),
                            "note": STAY_NOTES["underflow"]})
            continue
        figures = {key: _finite(stay[key]) if stay[key] is not None else None for key in keys}
        note = STAY_NOTES["unvisited"] if stay["mass"] == 0 else STAY_NOTES["closed"] if stay["flux"] == 0 else \
            STAY_NOTES["overflow"] if None in figures.values() else None
        classes.append({"class": i, "probability": float(probability), **figures, "note": note})
    trusted = all(law.trusted for law, p in zip(mc.stationary_laws, absorb) if p > 0) and not any(
        c["note"] == STAY_NOTES["underflow"] for c in classes)  # a mass below the float range is no 0
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
            value = float(mc.expected_hitting_times(A, max_products=0)[x])  # the eliminations; the series last
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
    tail bounds (:meth:`ecology.exact.markov.MarkovChain.expected_hitting_time_bounds`, the series
    behind the library's :meth:`~ecology.exact.markov.MarkovChain.hitting_times` where the
    eliminations refuse, here closed for ``x`` alone) within the work budget, when the linear
    solvers are out of reach; None when the bounds do not close to 1e-10 relative within the
    budget (``[inf, inf]`` when A may be missed)."""
    bounds = mc.expected_hitting_time_bounds(A, max_work // max(mc.P.nnz, PER_CALL), starts=[x])
    return None if bounds is None else [float(bounds[0][x]), float(bounds[1][x])]


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


@blas_threads()  # one BLAS thread unless the user says otherwise (ecology/threads.py)
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


@blas_threads()  # one BLAS thread unless the user says otherwise (ecology/threads.py)
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


def timescales_report(mc: MarkovChain, eig: np.ndarray) -> dict:
    """``whole``: the implied timescale ``-1 / ln |lambda|`` of each eigenvalue of ``eigenvalues``
    (:func:`ecology.exact.quasi.implied_timescale`; null where infinite: ``|lambda|`` within 1e-12
    of 1); ``classes``: per closed class of 2 to ``DENSE_EIGEN_LIMIT`` states, the timescales of its
    own 6 leading eigenvalues (null for the other classes and for infinite ones)."""
    classes = []
    for members in mc.recurrent_classes:
        if 2 <= len(members) <= DENSE_EIGEN_LIMIT:
            values = MarkovChain(mc.P[members][:, members]).eigenvalues(6)
            classes.append([_finite(quasi.implied_timescale(v)) for v in values])
        else:
            classes.append(None)
    return {"whole": [_finite(quasi.implied_timescale(v)) for v in eig], "classes": classes,
            "note": "null: infinite (a unit eigenvalue: a closed class or a period) or beyond 1e12 steps, which the "
                    "eigenvalue solver does not resolve (see quasi_stationary and metastable for slow exits)"}


def conductance_report(compiled: Compiled, pc: PageChain, max_states: int) -> dict:
    """``criteria``: per criterion, per closed class ``C`` holding part of its set ``H`` (neither
    none nor all of ``C``), the stationary ``mass`` ``pi(H)`` and the conductance
    ``Phi(H) = sum_{i in H, j not in H} pi_i P[i, j] / pi(H)``: the probability per step, in
    stationarity within ``H``, of leaving it (null with ``note`` when the class's law is not
    trusted; a periodic criterion, decided on a product chain, is not measured). ``classes``: per
    closed class of 2 to ``DENSE_EIGEN_LIMIT`` states with a trusted law, its conductance ``Phi*``
    (exact by enumeration up to 20 states, else a sweep-cut upper bound), the spectral gap
    ``1 - lambda_2`` of its additive reversibilisation and the Cheeger bounds
    ``Phi*^2 / 2 <= gap <= 2 Phi*`` (:func:`ecology.exact.quasi.cheeger_bounds`); only ``class`` and a
    ``note`` when they cannot be computed (stationary masses below the float range)."""
    mc = pc.chain
    laws = mc.stationary_laws
    criteria = {}
    for c in compiled.criteria:
        cpc, mask = criterion_chain(compiled, pc, c, max_states)
        if cpc is not pc:
            criteria[c.name] = {"note": "a periodic criterion is decided on a product chain: not measured"}
            continue
        rows = []
        for i, (members, law) in enumerate(zip(mc.recurrent_classes, laws)):
            inside = mask[members]
            if not inside.any() or inside.all():
                continue
            if not law.trusted:
                rows.append({"class": i, "size": int(inside.sum()), "mass": None, "conductance": None,
                             "note": "not computed: the class's stationary law is not trusted"})
                continue
            mass = float(law.pi[inside].sum())
            value = quasi.conductance(mc, members, inside, law.pi) if mass > 0 else None
            rows.append({"class": i, "size": int(inside.sum()), "mass": mass, "conductance": value,
                         "note": None if mass > 0 else "not computed: the set's stationary mass is below the float range "
                         "(about 1e-308; every state of a closed class has mass > 0)"})
        criteria[c.name] = {"classes": rows}
    classes = []
    for i, (members, law) in enumerate(zip(mc.recurrent_classes, laws)):
        if not 2 <= len(members) <= DENSE_EIGEN_LIMIT or not law.trusted:
            continue
        try:
            b = quasi.cheeger_bounds(mc, members, law.pi)
        except ChainError as err:  # masses below the float range, or ARPACK failed: the class is named, not measured
            classes.append({"class": i, "note": str(err)})
            continue
        classes.append({"class": i, "conductance": b["conductance"], "exact": b["exact"], "gap": b["gap"],
                        "cheeger_lower": b["lower"], "cheeger_upper": b["upper"], "reversible": b["reversible"]})
    return {"criteria": criteria, "classes": classes}


TV_THRESHOLD = 0.01  # from_initial.steps_to_tv: the first step at which the conditioned law is this close to the QSD


def quasi_stationary_report(compiled: Compiled, pc: PageChain, spec: str, max_states: int, within: int, max_work: int,
                            flag: str) -> dict:
    """The law of the chain conditioned on not yet having entered the target ``spec`` (named as
    ``--hit`` names one: :func:`ecology.exact.chain.target_mask`): the quasi-stationary law of
    its complement ``S`` reached from the initial page-state ``x``
    (:func:`ecology.exact.quasi.quasi_stationary`; docs/exact.md). Keys: ``set``, ``conditioned_on``,
    ``size`` ``|S|``, ``class_size`` and ``support_size`` (the class ``C*`` carrying it and the
    states downstream of it), ``tie``, ``decay_rate`` ``1 - lambda = sum nu_i e_i``,
    ``eigenvalue`` ``lambda``, ``expected_exit_time_from_qsd`` ``1 / (1 - lambda)`` (null when the
    decay rate is 0: a closed class inside S), ``implied_timescale`` ``-1 / ln lambda``,
    ``spectral_ratio`` ``|lambda_2| / lambda`` over the states reachable from ``x``, the
    ``method``, ``error_estimate``, ``error_kind`` and ``trusted``, ``top`` (the heaviest
    page-states and their masses) and ``from_initial``: ``expected_exit_time`` ``E_x[time to enter
    the target]`` (as :func:`expected_entrance_time`, with ``_overflow``/``_log10``/``_note``),
    ``ratio_to_qsd`` (that time over ``1 / (1 - lambda)``: 1 when ``x`` starts in the QSD),
    ``horizon``, ``log10_survival`` ``log10 P_x(not entered by the horizon)``, ``tv_to_qsd`` at the
    horizon and ``steps_to_tv`` (the first ``t`` at which the conditioned law is within
    ``TV_THRESHOLD`` of the QSD, null when not within the horizon). ``from_initial`` is null when
    ``x`` is in the target (the QSD is then the one of the slowest class of ``S``). Figures that the
    error estimate does not defend (untrusted) are null and ``note`` says why."""
    qpc, target = target_mask(compiled, pc, spec, max_states, "--quasi-stationary")
    mc, x = qpc.chain, qpc.initial
    S = ~target
    if not S.any():
        raise UserError(f"--quasi-stationary {spec!r}: the target holds every page-state, so nothing is left to "
                        "condition on; name a smaller target")
    start = None if target[x] else x
    try:
        law = quasi.quasi_stationary(mc, S, start)
    except ChainError as err:
        raise UserError(f"--quasi-stationary {spec!r}: {err}") from None
    notes = []
    if law.tie:
        notes.append("another reachable class has the same largest lambda (a tie): the conditioned law approaches "
                     "its limit only polynomially; the class downstream of the others is reported when there is one, "
                     "else the first (the limit then mixes the tied classes in proportions that depend on the start)")
    if start is None:
        notes.append("the initial page-state is in the target: the QSD of the slowest class of the complement is "
                     "reported, and there is no from_initial")
    trusted = law.trusted
    if not trusted:
        estimate = "none" if law.error is None else f"{law.error:.1e}"
        notes.append(f"the law, its decay rate and its masses are withheld: its L1 error estimate is {estimate} "
                     f"({law.error_kind})")
    out = {
        "set": spec, "conditioned_on": f"not yet entered {spec!r}", "size": int(S.sum()),
        "class_size": len(law.class_states), "support_size": len(law.support), "tie": law.tie,
        "decay_rate": law.decay_rate if trusted else None,
        "eigenvalue": law.eigenvalue if trusted else None,
        "expected_exit_time_from_qsd": _finite(law.expected_exit_time) if trusted else None,
        "implied_timescale": _finite(quasi.implied_timescale(None, decay_rate=law.decay_rate)) if trusted else None,
        "spectral_ratio": quasi.spectral_ratio(mc, S, law, start),
        "method": law.method, "error_estimate": law.error, "error_kind": law.error_kind, "trusted": trusted,
        "top": [{"state": qpc.label(i), "mass": float(law.nu[i])}
                for i in np.argsort(-law.nu, kind="stable")[:TOP_STATES] if law.nu[i] > 0] if trusted else None,
        "from_initial": None,
    }
    if start is not None:
        _work_check("the conditioned law over the horizon", within, mc.P.nnz, max_work, flag)
        initial = np.zeros(mc.n_states)
        initial[x] = 1.0
        laws = quasi.conditioned_laws(mc, S, initial, within, law.nu if trusted else None)
        time = expected_entrance_time(mc, x, target, max_work)
        close = np.flatnonzero(laws["tv"] <= TV_THRESHOLD) if trusted else np.array([], dtype=np.int64)
        out["from_initial"] = {
            "expected_exit_time": time["value"],
            **({"expected_exit_time_overflow": time["overflow"], "expected_exit_time_log10": time["log10"]}
               if time["overflow"] else {}),
            **({"expected_exit_time_note": time["note"]} if time["note"] else {}),
            "ratio_to_qsd": _ratio(time["value"] * law.decay_rate, 1.0) if time["value"] is not None and trusted else None,
            "horizon": within,
            "log10_survival": _finite(float(laws["log10_survival"][-1])),
            "tv_to_qsd": _finite(float(laws["tv"][-1])) if trusted and np.isfinite(laws["tv"][-1]) else None,
            "steps_to_tv": int(close[0]) if len(close) else None,
        }
    out["note"] = "; ".join(notes) or None
    return out
LUMP_BY = ("amplitudes", "criteria")  # what --lump partitions the page-states by


LUMP_BLOCKS_LISTED = 20  # the blocks of the partition are listed up to this many


def log_population_amplitudes(pc: PageChain) -> np.ndarray:
    """(n, labels): the log amplitude of each population label on each page-state, ``log sum_{s in
    label} alpha_s`` by log-sum-exp of the premises' log amplitudes (no underflow: an amplitude of
    1e-400 is ``-921``; ``-inf`` only for a premise that cannot have printed the window)."""
    from scipy.special import logsumexp

    mixture, windows = pc.compiled.mixture, pc.windows[:, pc.memory :]
    parts = []
    for i in range(0, len(windows), CHUNK):
        log_amplitude = mixture.read(windows[i : i + CHUNK]).log_amplitude
        with np.errstate(divide="ignore"):  # every member at -inf: -inf, not a warning
            parts.append(np.stack([logsumexp(log_amplitude[:, members], axis=1) for members in mixture.members], axis=1))
    return np.concatenate(parts)


def _decided_on(compiled: Compiled, pc: PageChain) -> list:
    """The criteria and named sets that are sets of ``pc``'s states (a ``periodic`` one is decided on
    the product chain of :func:`ecology.exact.chain.repetition_chain` unless ``pc`` carries its memory)."""
    return [c for c in compiled.tracked if not (isinstance(c, Periodic) and pc.repeated is None and pc.memory < c.period)]


def lump_partition(compiled: Compiled, pc: PageChain, by: str, rtol: float
                   ) -> tuple[np.ndarray, list[str], np.ndarray, str | None]:
    """The partition of the page-states that ``--lump BY`` names (:func:`lumping_report`): its labels,
    the names of its coordinates, their values per page-state (log amplitudes, or truth values as
    0/1) and a note on what was left out."""
    if by == "amplitudes":
        values = log_population_amplitudes(pc)
        return partition_by_values(values, rtol, log=True), list(compiled.mixture.labels), values, None
    used = _decided_on(compiled, pc)
    left = [c.name for c in compiled.tracked if c not in used]
    note = None if not left else f"left out (decided on the product chain with the repetition counts): {', '.join(left)}"
    if not used:
        raise UserError("--lump criteria: the scenario has no criterion or named set decided on the page-states "
                        f"{'(only periodic ones) ' if left else ''}to lump by; use --lump amplitudes")
    values = np.stack([pc.holds(c) for c in used], axis=1).astype(float)
    return partition_by_values(values, 0.0), [c.name for c in used], values, note


def lumping_report(compiled: Compiled, pc: PageChain, by: str, rtol: float, max_work: int = DEFAULT_MAX_WORK) -> dict:
    """``--lump BY``: the page-states partitioned by their premise amplitude vectors (``amplitudes``:
    the population labels' amplitudes equal within ``rtol``, compared in log space,
    :func:`ecology.exact.lumping.partition_by_values`) or by the truth values of every criterion and
    named set (``criteria``); the test of ordinary lumpability of that partition with its defect
    (:func:`ecology.exact.lumping.lumpability`) and the coarsest ordinarily lumpable partition
    refining it (:func:`ecology.exact.lumping.coarsest_lumping`). For the partition that is lumped
    (the given one when lumpable, else the coarsest refinement when it is), ``lumped_chain``: its
    size, its closed classes with the probability of ending in each from the initial block, and the
    same probability from the full chain (the sum over the full chain's closed classes that lie in
    the class's blocks) with their largest difference ``absorption_agreement`` as a check. Keys:
    docs/outputs.md."""
    mc = pc.chain
    labels, coordinates, values, note = lump_partition(compiled, pc, by, rtol)
    given = lumpability(mc, labels, "ordinary", rtol)
    refined = coarsest_lumping(mc, labels, "ordinary", rtol)
    finest = lumpability(mc, refined, "ordinary", rtol)
    out = {"by": by, "coordinates": coordinates, "rtol": rtol, "n_states": mc.n_states, "n_blocks": given.n_blocks,
           "lumpable": given.lumpable, "defect": given.defect, "coarsest_n_blocks": finest.n_blocks,
           "coarsest_lumpable": finest.lumpable, "coarsest_defect": finest.defect, "blocks": None,
           "lumped": None, "lumped_chain": None, "note": note}
    if given.n_blocks <= LUMP_BLOCKS_LISTED:
        out["blocks"] = []
        for b in range(given.n_blocks):
            members = np.flatnonzero(labels == b)
            row = values[members[0]]
            block = {"size": len(members), "example": pc.label(members[0]),
                     "values": [float(np.exp(v)) for v in row] if by == "amplitudes" else [bool(v) for v in row]}
            if by == "amplitudes":  # an amplitude below the float range is 0.0 in values: its log10 stays
                block["log10_values"] = [float(v / math.log(10)) if np.isfinite(v) else None for v in row]
            out["blocks"].append(block)
    if given.lumpable:
        out["lumped"], lumped_labels = "given", labels
    elif finest.lumpable:
        out["lumped"], lumped_labels = "coarsest refinement", refined
    else:
        out["note"] = "; ".join(filter(None, [note, "no lumped chain: the coarsest refinement is not lumpable within rtol "
                                              "either (its values chain together by gaps below rtol); see coarsest_defect"]))
        return out
    sets = {c.name: pc.holds(c) for c in _decided_on(compiled, pc)}
    out["lumped_chain"] = _lumped_summary(mc, pc.initial, lumped_labels, sets, max_work)
    return out


def _entrance(mc: MarkovChain, x: int, A: np.ndarray, max_work: int) -> dict:
    """``P_x(ever enter A)`` and :func:`expected_entrance_time` (its keys as in the criteria's
    report); a hitting probability the solvers cannot give is null with the ``note``."""
    try:
        probability = float(mc.hitting_probabilities(A)[x])
    except ChainError as err:
        return {"probability": None, "expected_hitting_time": None, "note": str(err)}
    time = expected_entrance_time(mc, x, A, max_work)
    out = {"probability": probability, "expected_hitting_time": time["value"], "note": time["note"]}
    for key in ("bounds", "overflow", "log10"):
        if time[key] is not None:
            out[f"expected_hitting_time_{key}"] = time[key]
    return out


def _lumped_summary(mc: MarkovChain, x: int, labels: np.ndarray, sets: dict[str, np.ndarray], max_work: int) -> dict:
    """The lumped chain of an ordinarily lumpable partition, checked against the full chain: each
    closed class of the full chain lies in the blocks of one closed class of the lumped chain (the
    block process from one of its states is the lumped chain and visits its blocks recurrently).
    ``criteria``: for each of ``sets`` that is a union of blocks, ``lumped`` and ``full_chain``:
    ``P(ever entered)`` and the expected hitting time from the initial block, from the initial
    page-state (:func:`_entrance`, the same solvers on both chains)."""
    lumped = aggregated_chain(mc, labels)
    start = int(labels[x])
    absorb = lumped.absorption_probabilities(start)
    class_of_block = np.full(lumped.n_states, -1)
    for c, members in enumerate(lumped.recurrent_classes):
        class_of_block[members] = c
    full = np.zeros(len(absorb))
    for members, p in zip(mc.recurrent_classes, mc.absorption_probabilities(x)):
        full[class_of_block[labels[members[0]]]] += p
    classes = [{"blocks": len(members), "page_states": int(np.isin(labels, members).sum()), "probability": float(p),
                "full_chain_probability": float(q)}
               for members, p, q in zip(lumped.recurrent_classes, absorb, full)]
    criteria = {}
    for name, mask in sets.items():
        inside, size = np.bincount(labels, weights=mask, minlength=lumped.n_states), np.bincount(labels)
        if mask.any() and np.all((inside == 0) | (inside == size)):  # every block wholly in or out: a union of blocks
            criteria[name] = {"lumped": _entrance(lumped, start, inside > 0, max_work),
                              "full_chain": _entrance(mc, x, mask, max_work)}
    return {"n_states": lumped.n_states, "n_transitions": int(lumped.P.nnz),
            "initial_block_size": int((labels == start).sum()), "closed_classes": classes,
            "absorption_agreement": float(np.abs(absorb - full).max()), "criteria": criteria}
