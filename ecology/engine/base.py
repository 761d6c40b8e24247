"""The engine protocol: what runs the steps of a model's R replicates, and what a block of steps records.

An engine (the numpy reference, :class:`ecology.engine.reference.ReferenceEngine`, or the compiled
kernel, :class:`ecology.engine.compiled.CompiledEngine`) owns the replicates' state between steps
and runs the algorithm of SCIENCE.md §1 and §3 in **blocks of steps**: :meth:`Engine.run` takes one
row of uniforms per step (row ``b`` is step ``generated + b + 1``'s, the same stream whatever the
block sizes) and returns the block's :class:`StepRecords`, the per-step reductions over replicates
that ``steps.csv`` is made of (sums, counts, quantiles) and the raster replicates' records. The
observables (:mod:`ecology.kinds.observables`) read those records and nothing else, whichever
engine ran. Step 0 (the initial windows) is read by each engine and settled and recorded by the
reference code below, for both engines (:meth:`Engine.start`).

Recorded per step ``t`` over the replicates ``r`` (``S`` premises, ``L`` population labels, ``C``
criteria): sums of ``alpha_s``, of ``A_L = sum_{s in L} alpha_s``, of each population's credit, of the
entropy of ``p_T``, the surprisal, the free energy, the effective number of premises, the tokens
deleted, the real tokens in the window and the prompt tokens among them (:data:`SCALARS`), and of each
population's retired credit, held credit and credit-weighted age at deletion (the token ledger,
:class:`LedgerState`); counts of replicates with ``A_L`` above 1/2 and 0.99 (the tie rule of
:func:`ecology.numerics.above`), that have reached and that hold each criterion; the 10/50/90%
quantiles (``np.quantile``, method "linear") of every ``alpha_s`` and ``A_L``; and, for a shard of a run
split over workers (``Engine.sketch_bits`` set), their sketch counts (:func:`ecology.numerics.sketch_index`),
from which the merged run's quantiles are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

from ecology.core.mixture import Step
from ecology.errors import ImpossibleWindow, NotANumber
from ecology.kinds.observables import CERTAIN, MAJORITY, QUANTILES, Observable
from ecology.numerics import above, entropy, sketch_index, sketch_size

if TYPE_CHECKING:
    from ecology.core.compile import Compiled
    from ecology.core.windows import Windows

SCALARS = ("entropy", "surprisal", "free_energy", "effective_premises", "deleted", "window", "prompt")
LEDGER = ("retired", "held", "age")  # per population label, after the SCALARS (StepRecords.ledger_sums)
BLOCK_BYTES = 2**25  # uniforms and raster rows of one block stay below about this many bytes
IMPOSSIBLE, NOT_A_NUMBER = 1, 2  # why a block stopped early (StepRecords.failure)
SKETCH_BITS = 5  # 2^5 bins per octave of the amplitude sketch: every value within 1.55% (numerics.sketch_error)
SKETCH_BYTES = 2**27  # a shard's sketch of a whole run stays below this: bins per octave halved until it does


def sketch_bits_for(steps: int, columns: int) -> int:
    """Bits per octave of the sketch of ``columns`` amplitudes over ``steps + 1`` steps: :data:`SKETCH_BITS`, less
    one for each halving that a run of many steps or premises needs to keep its uint16 counts within
    :data:`SKETCH_BYTES` (0 at worst: a factor sqrt(2) per value)."""
    bits = SKETCH_BITS
    while bits > 0 and 2 * (steps + 1) * columns * sketch_size(bits) > SKETCH_BYTES:
        bits -= 1
    return bits


class RecordArrays(NamedTuple):
    """The arrays of a block's records (rows are steps), as the engines fill them (the compiled
    engine passes this tuple to its kernel as it is)."""

    sums: np.ndarray  # (B, S + 2L + 7 + 3L)
    counts: np.ndarray  # (B, 2L + 2C)
    quantiles: np.ndarray  # (B, 3, S + L)
    raster: np.ndarray  # (B, n, k) the raster replicates' windows
    printed: np.ndarray  # (B, n) their printed tokens
    speakers: np.ndarray  # (B, n) the population most responsible for each
    premise_speakers: np.ndarray  # (B, n) the premise most responsible for each
    trajectories: np.ndarray  # (B, n, L) their population amplitudes
    sketch: np.ndarray  # (B, S + L, bins) uint16 sketch counts of every alpha_s and A_L (numerics.sketch_index), or (B, 0, 0)
    extremes: np.ndarray  # (B, S + L, 2) their smallest and largest value over replicates (with the sketch), or (B, 0, 2)


@dataclass
class StepRecords:
    """What a block of ``done`` steps recorded (rows are steps): ``sums`` (B, S + 2L + 7 + 3L): per-step
    sums over replicates of each premise's amplitude, each population's amplitude and credit, the
    :data:`SCALARS`, and each population's :data:`LEDGER` figures; ``counts`` (B, 2L + 2C):
    replicates with a population above 1/2 and 0.99, that have reached and that hold each criterion;
    ``quantiles`` (B, 3, S + L): the 10/50/90% quantiles over replicates of each premise's then
    each population's amplitude; and the raster
    replicates' windows, printed tokens, speakers (population and premise most responsible) and
    population amplitudes. ``failure`` is (:data:`IMPOSSIBLE` or :data:`NOT_A_NUMBER`, replicate) at
    step ``done + 1`` of the block, or None."""

    done: int
    failure: tuple[int, int] | None
    arrays: RecordArrays
    n_premises: int
    n_labels: int
    measured: list[dict]  # per step: the generic observables' columns (Observable.measure), by class name
    first: int = 0  # the step number of row 0 (0: the records of step 0; generated + 1: a block's)

    @classmethod
    def empty(cls, steps: int, n_premises: int, n_labels: int, n_criteria: int, raster_rows: int, length: int,
              token_dtype, sketch_bits: int | None = None) -> StepRecords:
        """Records of a block of ``steps`` steps, to be filled (``done`` is set by the engine); with
        ``sketch_bits``, the amplitudes' sketch counts too (``2^sketch_bits`` bins per octave)."""
        S, L, n = n_premises, n_labels, raster_rows
        sketch = ((steps, S + L, sketch_size(sketch_bits)) if sketch_bits is not None else (steps, 0, 0))
        arrays = RecordArrays(np.zeros((steps, S + 2 * L + len(SCALARS) + len(LEDGER) * L)),
                              np.zeros((steps, 2 * L + 2 * n_criteria), dtype=np.int64),
                              np.empty((steps, len(QUANTILES), S + L)), np.empty((steps, n, length), dtype=token_dtype),
                              np.empty((steps, n), dtype=np.intp), np.empty((steps, n), dtype=np.intp),
                              np.empty((steps, n), dtype=np.intp), np.empty((steps, n, L)), np.zeros(sketch, dtype=np.uint16),
                              np.empty((steps, sketch[1], 2)))
        return cls(steps, None, arrays, S, L, [{} for _ in range(steps)])

    # Each accessor takes ``steps``, a slice of the block's rows, and returns the step axis first:
    # (n, ...) for n = steps.stop - steps.start (the observables build a block's columns at once).

    def premise_sums(self, steps: slice) -> np.ndarray:
        """(n, S) sums over replicates of each premise's amplitude."""
        return self.arrays.sums[steps, : self.n_premises]

    def population_sums(self, steps: slice) -> np.ndarray:
        """(n, L) sums over replicates of each population's amplitude."""
        return self.arrays.sums[steps, self.n_premises : self.n_premises + self.n_labels]

    def credit_sums(self, steps: slice) -> np.ndarray:
        """(n, L) sums over replicates of each population's credit issued."""
        return self.arrays.sums[steps, self.n_premises + self.n_labels : self.n_premises + 2 * self.n_labels]

    def scalar_sum(self, steps: slice, name: str) -> np.ndarray:
        """(n,) sums over replicates of ``entropy``, ``surprisal``, ``free_energy``,
        ``effective_premises``, ``deleted`` (cumulative real tokens deleted), ``window`` (real
        tokens in the window) or ``prompt`` (prompt tokens in the window)."""
        return self.arrays.sums[steps, scalar_column(self.n_premises, self.n_labels, name)]

    def ledger_sums(self, steps: slice, name: str) -> np.ndarray:
        """(n, L) sums over replicates of each population's ``retired``, ``held`` or ``age``
        ledger figure (:class:`LedgerState`)."""
        at = ledger_column(self.n_premises, self.n_labels, name)
        return self.arrays.sums[steps, at : at + self.n_labels]

    def premise_quantiles(self, steps: slice) -> np.ndarray:
        """(n, 3, S) quantiles of the premises' amplitudes."""
        return self.arrays.quantiles[steps, :, : self.n_premises]

    def population_quantiles(self, steps: slice) -> np.ndarray:
        """(n, 3, L) quantiles of the populations' amplitudes."""
        return self.arrays.quantiles[steps, :, self.n_premises :]

    def winners(self, steps: slice) -> tuple[np.ndarray, np.ndarray]:
        """(n, L) counts of replicates with each population above 1/2, and above 0.99."""
        counts = self.arrays.counts[steps]
        return counts[:, : self.n_labels], counts[:, self.n_labels : 2 * self.n_labels]

    def criteria(self, steps: slice) -> tuple[np.ndarray, np.ndarray]:
        """(n, C) counts of replicates that have reached each criterion, and that hold it."""
        rest = self.arrays.counts[steps, 2 * self.n_labels :]
        half = rest.shape[1] // 2
        return rest[:, :half], rest[:, half:]


def scalar_column(n_premises: int, n_labels: int, name: str) -> int:
    """The column of ``sums`` that holds the scalar ``name`` (the one place the layout is spelled)."""
    return n_premises + 2 * n_labels + SCALARS.index(name)


class Occupation(NamedTuple):
    """Per predicate (criteria then named sets, :attr:`ecology.core.compile.Compiled.tracked`) and
    replicate, (C, R), updated by the engines at every step ``t = 0, 1, ..``: ``occupied`` the
    steps at which it held, ``entries`` the steps ``t >= 1`` at which it holds and did not at
    ``t - 1`` (a visit in progress at step 0 is not an entry), ``last`` the last step it held
    (-1: never), ``initial`` (bool) whether it held at step 0."""

    occupied: np.ndarray
    entries: np.ndarray
    last: np.ndarray
    initial: np.ndarray

    @classmethod
    def zeros(cls, predicates: int, replicates: int) -> Occupation:
        shape = (predicates, replicates)
        return cls(np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64), np.full(shape, -1, dtype=np.int64),
                   np.zeros(shape, dtype=bool))

    def update(self, holding: np.ndarray, step: int) -> None:
        """Step ``step``'s holding (C, R) into the counts (the reference form of the kernel's loop)."""
        self.occupied[:] += holding
        if step:
            self.entries[:] += holding & (self.last != step - 1)
        else:
            self.initial[:] = holding
        self.last[holding] = step


def ledger_column(n_premises: int, n_labels: int, name: str) -> int:
    """The first of the ``n_labels`` columns of ``sums`` that hold the ledger figure ``name``."""
    return n_premises + 2 * n_labels + len(SCALARS) + LEDGER.index(name) * n_labels


class LedgerState(NamedTuple):
    """Each replicate's token ledger (SCIENCE.md §7, docs/outputs.md). A token printed at step ``u``
    carries the credit ``c_L(u) = sum_{s in L} alpha_s mu_s(t | w) / mu(t | w)`` (on the window it
    was printed from; it sums to 1 over labels); the engines' ``credit`` is the credit *issued*,
    ``sum_{u <= t} c_L(u)``. Every rule deletes the oldest tokens after the pinned prefix, so the
    prompt tokens go first and the printed tokens still in the window are those of steps
    ``oldest .. t``: their credits are kept in a ring of ``k + 1`` slots by step (slot ``u mod
    (k + 1)``; no ring under ``none``, which deletes nothing). At step ``t``:

    - ``retired`` (R, L): ``sum`` of ``c_L(u)`` over the printed tokens deleted by step ``t``;
    - ``held`` (R, L): ``sum_{u = oldest}^{t} c_L(u)``, summed over the ring (under ``none``:
      the credit issued);
    - ``age`` (R, L): ``sum`` of ``c_L(u) (t_u - u)`` over the deleted tokens, ``t_u`` the step that
      deleted the token printed at ``u`` (its age at deletion: ``k`` for every token under ``fifo``);
    - ``oldest`` (R,): the step of the oldest printed token in the window (``t + 1`` when none);
    - ``prompt_left`` (R,): the prompt tokens in the window that the rule may still delete.

    So ``issued = retired + held`` per label, and ``sum_L held_L + prompt tokens = real tokens in
    the window`` (``tests/test_ledger.py`` checks both, and every figure against a recomputation
    from the printed tokens)."""

    ring: np.ndarray  # (R, L, k + 1), or (R, L, 0) under none
    retired: np.ndarray
    held: np.ndarray
    age: np.ndarray
    oldest: np.ndarray
    prompt_left: np.ndarray

    @classmethod
    def start(cls, compiled: Compiled, replicates: int) -> LedgerState:
        L = len(compiled.mixture.labels)
        slots = compiled.rule.length + 1 if compiled.rule.deletes_oldest else 0
        real = int(np.count_nonzero(compiled.window < compiled.n_tokens))
        zeros = [np.zeros((replicates, L)) for _ in range(3)]
        return cls(np.zeros((replicates, L, slots)), *zeros, np.ones(replicates, dtype=np.int64),
                   np.full(replicates, real - min(compiled.rule.pinned, real), dtype=np.int64))

    def copy(self) -> LedgerState:
        return LedgerState(*(a.copy() for a in self))

    def step(self, fresh: np.ndarray, deleted: np.ndarray, step: int, issued: np.ndarray) -> None:
        """The numpy reference of :func:`ecology.engine.compiled._ledger_pass`: the token printed at
        ``step`` with credit ``fresh`` (R, L) enters the ring; the ``deleted`` (R,) real tokens the
        rule deleted are the oldest, prompt tokens first, then printed ones from ``oldest`` on; the
        held credit is summed anew over the ring (``issued`` under ``none``)."""
        slots = self.ring.shape[2]
        if not slots:
            self.held[:] = issued
            return
        self.ring[:, :, step % slots] = fresh
        from_prompt = np.minimum(deleted, self.prompt_left)
        self.prompt_left[:] -= from_prompt
        gone = deleted - from_prompt
        rows = np.arange(len(gone))
        for i in range(int(gone.max(initial=0))):
            leaving = gone > i
            birth = self.oldest[leaving] + i
            credit = self.ring[rows[leaving], :, birth % slots]
            self.retired[leaving] += credit
            self.age[leaving] += credit * (step - birth)[:, None]
        self.oldest[:] += gone
        alive = (np.arange(slots)[None, :] - self.oldest[:, None]) % slots < (step + 1 - self.oldest)[:, None]
        self.held[:] = np.where(alive[:, None, :], self.ring, 0.0).sum(axis=2)


class ReplicateState(NamedTuple):
    """The per-replicate state after a step, replicate-major: arrays no engine writes to again (copies,
    or arrays an engine makes anew each step), which the model keeps until the next block."""

    step: Step  # the mixture on the current windows: (R, S) log alpha, (R, V) log mu and log p_T, (R,) F
    amplitudes: np.ndarray  # (R, S) alpha_s
    population: np.ndarray  # (R, L) A_L
    states: np.ndarray  # (S, R) final automaton state of each premise (0 for a model premise)
    loglik: np.ndarray  # (S, R) log mu_s(w)
    laws: dict  # premise index -> (R, V) log mu_s(. | w) of a model premise
    holding: np.ndarray  # (C, R) whether each criterion holds now
    reached_at: np.ndarray  # (C, R) first step each criterion held (-1: not yet)
    credit: np.ndarray  # (R, L) credit of the printed tokens per population
    deleted: np.ndarray  # (R,) real tokens deleted so far
    token: np.ndarray | None  # (R,) the token printed at the last step (None at step 0)
    surprisal: np.ndarray | None  # (R,) its surprisal -log mu(t | w)
    ledger: LedgerState  # the token ledger (a copy)


class Engine:
    """Runs the steps of ``replicates`` replicates of a compiled scenario on ``context``'s windows.

    Subclasses read the initial windows (:meth:`read_initial`), run blocks of steps (:meth:`run`),
    compute the mixture on arbitrary windows (:meth:`mixture_on`, for drift) and hand their state to
    the model (:meth:`state`). The settling of step 0 (Bayes checks, populations, criteria) and its
    recording are the reference code of this class, shared by every engine."""

    name: ClassVar[str]

    def __init__(self, compiled: Compiled, context: Windows, replicates: int, raster_rows: int,
                 measured: tuple[Observable, ...] = ()):
        self.compiled = compiled
        self.measured = measured  # the observables of generic form (Observable.measure) that apply
        self.mixture = compiled.mixture
        self.context = context
        self.replicates = replicates
        self.raster_rows = raster_rows
        self.length = compiled.rule.length
        self.criteria = compiled.tracked  # the criteria, then the named sets
        self.rows = np.arange(replicates)
        self.credit = np.zeros((replicates, len(self.mixture.labels)))
        self.deleted = np.zeros(replicates)
        self.ledger = LedgerState.start(compiled, replicates)
        self.initial_tokens = int(np.count_nonzero(compiled.window < compiled.n_tokens))  # real tokens at step 0
        self.pinned_tokens = min(compiled.rule.pinned, self.initial_tokens)
        self.settled_step = 0
        self.reached_at = np.full((len(self.criteria), replicates), -1)
        self.holding = np.zeros((len(self.criteria), replicates), dtype=bool)
        self.occupation = Occupation.zeros(len(self.criteria), replicates)
        self.token = self.left = self.surprisal = None
        self.sketch_bits: int | None = None  # with bits, the records carry the amplitudes' sketch (shards of a run)

    @staticmethod
    def unsupported(compiled: Compiled) -> str | None:
        """Why this engine cannot run ``compiled`` (None if it can)."""
        return None

    def read_initial(self) -> Step:
        """The mixture on the initial windows; sets each premise's states and likelihoods."""
        raise NotImplementedError

    def run(self, uniforms: np.ndarray, generated: int) -> StepRecords:
        """``len(uniforms)`` steps from step ``generated`` (row ``b`` of ``uniforms`` holds step
        ``generated + b + 1``'s uniforms, one per replicate)."""
        raise NotImplementedError

    def mixture_on(self, windows: np.ndarray) -> Step:
        """The mixture on arbitrary windows (as :meth:`ecology.core.mixture.Mixture.read`); the
        engine's own state is left alone."""
        raise NotImplementedError

    def state(self) -> ReplicateState:
        """The replicates' state after the last step (:class:`ReplicateState`: never written to again)."""
        raise NotImplementedError

    def block_size(self, steps: int) -> int:
        """Steps of the next block: ``steps`` at most, uniforms and raster rows within ``BLOCK_BYTES``."""
        per_step = 8 * self.replicates + 8 * self.raster_rows * (self.length + 4)
        if self.sketch_bits is not None:
            per_step += 2 * (len(self.compiled.premises) + len(self.mixture.labels)) * sketch_size(self.sketch_bits)
        return max(1, min(steps, BLOCK_BYTES // per_step))

    def window_tokens(self) -> np.ndarray:
        """(R,) real tokens in each window at the settled step: the initial window's, plus the tokens
        printed, less the real tokens deleted."""
        return self.initial_tokens + self.settled_step - self.deleted

    def prompt_tokens(self) -> np.ndarray:
        """(R,) prompt tokens in each window: the pinned ones and those the rule has not deleted yet."""
        return self.pinned_tokens + self.ledger.prompt_left

    def new_records(self, steps: int, first: int = 0) -> StepRecords:
        """Records of ``steps`` steps from step ``first`` (0: step 0; a block from step ``generated`` has
        ``first = generated + 1``)."""
        records = StepRecords.empty(steps, len(self.compiled.premises), len(self.mixture.labels), len(self.criteria),
                                    self.raster_rows, self.length, self.context.window.dtype, self.sketch_bits)
        records.first = first
        return records

    def start(self) -> StepRecords:
        """Step 0: read the initial windows, settle them (:meth:`settle`) and record them."""
        self.current = self.read_initial()
        for criterion in self.criteria:
            criterion.start(self)
        records = self.new_records(1)
        failure = self.settle(self.current, 0)
        if failure:
            refuse(self.compiled, self.context, 0, *failure)
        self.record(records, 0)
        return records

    def settle(self, step: Step, generated: int) -> tuple[int, int] | None:
        """The reference settling of a step's mixture: refuse an impossible window or a NaN (the
        failure and its replicate), else the populations ``A_L``, the criteria that hold and their
        first hitting times."""
        if step.impossible.any():
            return IMPOSSIBLE, int(np.flatnonzero(step.impossible)[0])
        broken = np.isnan(step.log_p).any(axis=1) | np.isnan(step.log_amplitude).any(axis=1)
        if broken.any():
            return NOT_A_NUMBER, int(np.flatnonzero(broken)[0])
        self.current = step
        self.settled_step = generated
        self.population = self.mixture.population_amplitudes(step.log_amplitude)
        for i, criterion in enumerate(self.criteria):
            self.holding[i] = criterion.observe(self)
        first = self.holding & (self.reached_at < 0)
        self.reached_at[first] = generated
        self.occupation.update(self.holding, generated)
        self.amplitudes = np.exp(step.log_amplitude)  # (R, S) alpha_s(w) on the current windows
        return None

    def record(self, records: StepRecords, b: int) -> None:
        """Row ``b`` of ``records`` from the settled state, in numpy (means are sums over replicates
        divided by R, bit for bit the numpy means; quantiles are ``np.quantile``)."""
        step, population, amplitudes = self.current, self.population, self.amplitudes
        S, L = records.n_premises, records.n_labels
        sums = records.arrays.sums[b]
        for s in range(S):
            sums[s] = amplitudes[:, s].sum()
        for j in range(L):
            sums[S + j] = population[:, j].sum()
            sums[S + L + j] = self.credit[:, j].sum()
        scalars = {
            "entropy": entropy(step.log_p).sum(),
            "surprisal": np.nan if self.surprisal is None else self.surprisal.sum(),
            "free_energy": step.free_energy.sum(),
            "effective_premises": np.exp(entropy(step.log_amplitude)).sum(),
            "deleted": self.deleted.sum(),
            "window": self.window_tokens().sum(),
            "prompt": self.prompt_tokens().sum(),
        }
        for name, value in scalars.items():
            sums[scalar_column(S, L, name)] = value
        for name in LEDGER:
            at = ledger_column(S, L, name)
            sums[at : at + L] = getattr(self.ledger, name).sum(axis=0)
        counts = records.arrays.counts[b]
        for j in range(L):
            counts[j] = np.count_nonzero(above(population[:, j], MAJORITY))
            counts[L + j] = np.count_nonzero(above(population[:, j], CERTAIN))
        C = len(self.criteria)
        counts[2 * L : 2 * L + C] = np.count_nonzero(self.reached_at >= 0, axis=1)
        counts[2 * L + C :] = np.count_nonzero(self.holding, axis=1)
        premise_quantiles = np.quantile(amplitudes, QUANTILES, axis=0)
        members = self.mixture.members
        if all(len(m) == 1 for m in members):  # each population is one premise: its quantiles
            population_quantiles = premise_quantiles[:, [m[0] for m in members]]
        else:
            population_quantiles = np.quantile(population, QUANTILES, axis=0)
        records.arrays.quantiles[b, :, :S] = premise_quantiles
        records.arrays.quantiles[b, :, S:] = population_quantiles
        if self.sketch_bits is not None:
            size = sketch_size(self.sketch_bits)
            for c, values in enumerate([*amplitudes.T, *population.T]):
                records.arrays.sketch[b, c] = np.bincount(sketch_index(values, self.sketch_bits), minlength=size)
                records.arrays.extremes[b, c] = values.min(), values.max()
        n = self.raster_rows
        records.arrays.raster[b] = self.context.last(self.length)[:n]
        records.arrays.trajectories[b] = population[:n]
        records.measured[b] = {type(item).__name__: item.measure(self) for item in self.measured}


def refuse(compiled: Compiled, context: Windows, generated: int, failure: int, r: int) -> None:
    """Raise on replicate ``r``'s window at step ``generated``: :data:`IMPOSSIBLE` (probability 0
    under every premise) or :data:`NOT_A_NUMBER`."""
    window = compiled.label(context.window[r])
    if failure == IMPOSSIBLE:
        raise ImpossibleWindow(
            "", f"step {generated}, replicate {r}: the window '{window}' "
            "has probability 0 under every premise (deletion made the premises misread it); "
            "give some premise a softmax floor (eps/slip) or change the deletion rule",
        )
    raise NotANumber(
        "", f"step {generated}, replicate {r}: the mixture on window '{window}' "
        "is not a number (NaN); nothing was written. Please report this scenario as a bug",
    )
