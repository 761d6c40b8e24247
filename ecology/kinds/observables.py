"""What the simulator records at every step: one registered class per observable.

Each observable names its columns of ``steps.csv`` (the DataCollector table), says what they
measure (``unit``, ``description``, and how the per-replicate values are aggregated over the R
replicates) and computes them from the records of every step (the per-step sums, counts and
quantiles over replicates that the engines fill, :class:`ecology.engine.base.StepRecords`). The DataCollector's reporters,
the column names that results, plots and studies read (``Observable.column(...)``) and the
column reference of ``docs/outputs.md`` all come from :data:`OBSERVABLES`, so a new observable is
one class here. In the notation of SCIENCE.md, with ``alpha_s`` the amplitude of premise ``s``
and ``A_L = sum_{s in L} alpha_s`` that of population label ``L``, per step:

- amplitude of each population: mean, 10/50/90% quantiles over replicates of ``A_L``;
- winner-take-all: fraction of replicates with ``A_L > 1/2`` (majority) and ``> 0.99`` (certain),
  under the tie rule of :func:`ecology.numerics.above`;
- amplitude of each premise: mean and quantiles of ``alpha_s``;
- entropy of the sampling law ``-sum_t p_T log p_T``, surprisal ``-log mu(t|w)`` of the printed
  token, free energy ``-log sum_s prior_s mu_s(w)`` (means over replicates);
- effective number of premises ``exp(-sum_s alpha_s log alpha_s)`` (mean over replicates);
- token ledger: tokens generated, mean tokens deleted, in the window and prompt tokens in it, and
  each population's mean credit issued ``sum over printed tokens of sum_{s in L} alpha_s mu_s(t|w) /
  mu(t|w)``, retired (deleted tokens), held (tokens in the window) and credit times age at deletion;
- drift (``run.drift = true``): mean exact expected one-step change of ``alpha_s`` and ``A_L``;
- criteria: fraction of replicates that have reached each criterion, and that hold it now.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

MAJORITY, CERTAIN = 0.5, 0.99  # amplitude thresholds of the winner-take-all observables
QUANTILES = (0.1, 0.5, 0.9)

# How a column merges over the shards of a run split over workers (ecology.results): the mean over all replicates
# from each shard's mean weighted by its replicates; a fraction of replicates from each shard's exact count; a value
# every shard has alike (the step's tokens generated); or a quantile read from the merged amplitude sketch:
# ("quantile", sketch column: premise s or S + label j, index into QUANTILES).
MEAN, FRACTION, SAME, QUANTILE = "mean", "fraction", "same", "quantile"


class Observable:
    """One recorded quantity; ``column(...)`` spells one column's name (the one place it is spelled).

    ``summarise(model, records, steps, table)`` adds the observable's columns to ``table``, one
    array per column over the steps ``steps`` (a slice) of a block's
    :class:`ecology.engine.base.StepRecords` (per-step sums, counts and quantiles over replicates),
    whichever engine filled them: the one method that computes a column, vectorised over the
    steps of a block (element ``i`` of a column is the value of step ``steps.start + i``, the
    same IEEE operations as one step at a time). The
    built-in observables read the reductions every engine records (``compiled = True``). A new
    observable may instead write only :meth:`measure`, its generic form: this step's columns from
    the engine's per-replicate state (``engine.current``, ``engine.population``, ...), which the
    numpy engine stores in the records; such an observable (``compiled = False``) makes the
    compiled engine fall back to numpy, saying so."""

    unit: ClassVar[str]
    description: ClassVar[str]
    aggregate: ClassVar[str]  # how the per-replicate values become one number per step
    compiled: ClassVar[bool] = False  # whether the compiled engine records what summarise reads

    @staticmethod
    def column(*parts: str) -> str:
        raise NotImplementedError

    def applies(self, model) -> bool:
        return True

    def measure(self, engine) -> dict[str, float]:
        """This step's columns from the engine's per-replicate state (the generic form)."""
        raise NotImplementedError

    def summarise(self, model, records, steps: slice, table: dict[str, np.ndarray]) -> None:
        measured = [records.measured[b][type(self).__name__] for b in range(steps.start, steps.stop)]
        for key in measured[0]:
            table[key] = np.array([values[key] for values in measured], dtype=float)

    def merge_rules(self, model) -> dict[str, tuple]:
        """Each of this observable's columns and how it merges over a split run's shards (:data:`MEAN` ...).
        The generic form: every column :meth:`measure` writes is a mean over replicates."""
        return dict.fromkeys(self.measure(model.engine), (MEAN,))


OBSERVABLES: list[Observable] = []


def observable(cls: type[Observable]) -> type[Observable]:
    """Class decorator: register an observable (columns appear in registration order; class names are
    unique, since the records keep a generic observable's columns under its class name)."""
    if any(type(item).__name__ == cls.__name__ for item in OBSERVABLES):
        raise ValueError(f"an observable named {cls.__name__} is registered already")
    OBSERVABLES.append(cls())
    return cls


@observable
class PopulationAmplitude(Observable):
    compiled = True
    unit = "amplitude (probability)"
    description = "amplitude of each population label"
    aggregate = "mean and 10/50/90% quantiles over replicates"

    @staticmethod
    def column(label: str, stat: str = "mean") -> str:
        return f"{label}_{stat}"

    def summarise(self, model, records, steps, table):
        sums, quantiles = records.population_sums(steps), records.population_quantiles(steps)
        majority, certain = records.winners(steps)
        for j, label in enumerate(model.mixture.labels):
            table[self.column(label)] = sums[:, j] / model.replicates
            for i, q in enumerate(QUANTILES):
                table[self.column(label, f"q{round(100 * q)}")] = quantiles[:, i, j].copy()
            table[Majority.column(label)] = majority[:, j] / model.replicates
            table[Certain.column(label)] = certain[:, j] / model.replicates

    def merge_rules(self, model):
        S, out = len(model.compiled.premises), {}
        for j, label in enumerate(model.mixture.labels):
            out[self.column(label)] = (MEAN,)
            for i, q in enumerate(QUANTILES):
                out[self.column(label, f"q{round(100 * q)}")] = (QUANTILE, S + j, i)
            out[Majority.column(label)] = out[Certain.column(label)] = (FRACTION,)
        return out


class Majority(Observable):
    """Recorded by :class:`PopulationAmplitude` (beside the amplitude of the same label)."""

    unit = "fraction of replicates"
    description = "replicates where the population holds more than 1/2 of the amplitude"
    aggregate = "fraction"

    @staticmethod
    def column(label: str) -> str:
        return f"{label}_majority"


class Certain(Observable):
    """Recorded by :class:`PopulationAmplitude`."""

    unit = "fraction of replicates"
    description = "replicates where the population holds more than 0.99 of the amplitude"
    aggregate = "fraction"

    @staticmethod
    def column(label: str) -> str:
        return f"{label}_certain"


@observable
class PremiseAmplitude(Observable):
    compiled = True
    unit = "amplitude (probability)"
    description = "amplitude of each premise"
    aggregate = "mean and 10/50/90% quantiles over replicates"

    @staticmethod
    def column(premise: str, stat: str = "mean") -> str:
        return f"premise_{premise}_{stat}"

    def summarise(self, model, records, steps, table):
        sums, quantiles = records.premise_sums(steps), records.premise_quantiles(steps)
        for s, premise in enumerate(model.compiled.premises):
            table[self.column(premise.name)] = sums[:, s] / model.replicates
            for i, q in enumerate(QUANTILES):
                table[self.column(premise.name, f"q{round(100 * q)}")] = quantiles[:, i, s].copy()

    def merge_rules(self, model):
        out = {}
        for s, premise in enumerate(model.compiled.premises):
            out[self.column(premise.name)] = (MEAN,)
            for i, q in enumerate(QUANTILES):
                out[self.column(premise.name, f"q{round(100 * q)}")] = (QUANTILE, s, i)
        return out


class ModelScalar(Observable):
    compiled = True
    aggregate = "mean over replicates"
    key: ClassVar[str]

    @classmethod
    def column(cls) -> str:
        return cls.key

    def summarise(self, model, records, steps, table):
        table[self.key] = records.scalar_sum(steps, self.key) / model.replicates

    def merge_rules(self, model):
        return {self.key: (MEAN,)}


@observable
class Entropy(ModelScalar):
    key = "entropy"
    unit = "nats"
    description = "entropy of the sampling law p_T(. | w)"


@observable
class Surprisal(ModelScalar):
    key = "surprisal"
    unit = "nats"
    description = "surprisal -log mu(t | w) of the token just printed (NaN at step 0)"


@observable
class FreeEnergy(ModelScalar):
    key = "free_energy"
    unit = "nats"
    description = "free energy -log sum_s prior_s mu_s(w) of the window"


@observable
class EffectivePremises(ModelScalar):
    """``N_eff(w) = exp(-sum_s alpha_s log alpha_s)``: 1 when one premise holds all the amplitude,
    ``S`` when the amplitude is spread evenly over ``S`` premises (the perplexity of the
    amplitudes; how many premises the model is still "running" on this window)."""

    key = "effective_premises"
    unit = "premises"
    description = "effective number of premises exp(entropy of the amplitudes alpha_s)"


@observable
class Ledger(Observable):
    """The token ledger (SCIENCE.md §7; every column a formula in docs/outputs.md). Each printed
    token carries the credit ``c_L = sum_{s in L} alpha_s mu_s(t | w) / mu(t | w)`` of the window
    ``w`` it was printed from (summing to 1 over labels); deletion retires the credit of the tokens
    it deletes. Per step, means over replicates of: tokens printed (``generated``), real tokens
    deleted (``deleted``), real tokens in the window (``window``) and prompt tokens among them
    (``prompt``); per label ``L`` the credit issued (``credit_L``: every printed token's), retired
    (``retired``: the deleted tokens'), held (``held``: the tokens' in the window) and
    ``age``, the sum of ``c_L`` times the age at deletion of each deleted token, so that
    ``age / retired`` is the turnover time of ``L``'s credit. Identities, per replicate:
    ``credit_L = retired_L + held_L`` and ``sum_L held_L + prompt = window``."""

    compiled = True
    unit = "tokens"
    description = ("tokens generated, deleted, in the window and prompt tokens in it; each population's credit "
                   "issued, retired, held, and credit times age at deletion")
    aggregate = "mean over replicates"
    PER_LABEL: ClassVar[tuple[str, ...]] = ("retired", "held", "age")  # engine.base.LEDGER, by label

    @staticmethod
    def column(part: str, label: str | None = None) -> str:
        """``credit_L`` (the credit issued), ``ledger_PART_L`` for ``retired``/``held``/``age``, else
        ``ledger_PART`` (``generated``, ``deleted``, ``window``, ``prompt``)."""
        if part == "credit":
            return f"credit_{label}"
        return f"ledger_{part}" if label is None else f"ledger_{part}_{label}"

    def summarise(self, model, records, steps, table):
        """``generated`` is the step number of each row (``records.first`` at row 0)."""
        R = model.replicates
        first = records.first + steps.start
        table[self.column("generated")] = np.arange(first, first + steps.stop - steps.start, dtype=float)
        for part in ("deleted", "window", "prompt"):
            table[self.column(part)] = records.scalar_sum(steps, part) / R
        labels = model.mixture.labels
        credit = records.credit_sums(steps)
        for j, label in enumerate(labels):
            table[self.column("credit", label)] = credit[:, j] / R
        for part in self.PER_LABEL:
            sums = records.ledger_sums(steps, part)
            for j, label in enumerate(labels):
                table[self.column(part, label)] = sums[:, j] / R

    def merge_rules(self, model):
        out = {self.column("generated"): (SAME,)}
        out.update(dict.fromkeys([self.column(part) for part in ("deleted", "window", "prompt")], (MEAN,)))
        for label in model.mixture.labels:
            out[self.column("credit", label)] = (MEAN,)
            out.update(dict.fromkeys([self.column(part, label) for part in self.PER_LABEL], (MEAN,)))
        return out


@observable
class Drift(Observable):
    compiled = True
    unit = "amplitude per step"
    description = "exact expected one-step change of each premise's and population's amplitude"
    aggregate = "mean over replicates"

    @staticmethod
    def column(name: str) -> str:
        """Of a premise or a population label (a label equal to a premise name has that premise
        as its only member, so the two values are the same; see ``scenario.check``)."""
        return f"drift_{name}"

    def applies(self, model) -> bool:
        return model.config.run.drift

    def summarise(self, model, records, steps, table):
        """From ``model.drift``, which the model computes after every step (engines take one step
        per block with drift, so ``steps`` is one step)."""
        assert steps.stop - steps.start == 1, "drift is computed one step at a time"
        for s, premise in enumerate(model.compiled.premises):
            table[self.column(premise.name)] = np.array([model.drift[:, s].mean()])
        for j, label in enumerate(model.mixture.labels):
            table[self.column(label)] = np.array([model.drift[:, model.mixture.members[j]].sum(axis=1).mean()])

    def merge_rules(self, model):
        names = [premise.name for premise in model.compiled.premises] + list(model.mixture.labels)
        return dict.fromkeys([self.column(name) for name in names], (MEAN,))


@observable
class Criteria(Observable):
    compiled = True
    unit = "fraction of replicates"
    description = "replicates that have reached each criterion (first hit by now), and that hold it now"
    aggregate = "fraction"

    @staticmethod
    def column(kind: str, criterion: str) -> str:
        assert kind in ("reached", "holding")
        return f"{kind}_{criterion}"

    def summarise(self, model, records, steps, table):
        reached, holding = records.criteria(steps)
        for i, c in enumerate(model.criteria):
            table[self.column("reached", c.name)] = reached[:, i] / model.replicates
            table[self.column("holding", c.name)] = holding[:, i] / model.replicates

    def merge_rules(self, model):
        return dict.fromkeys([self.column(kind, c.name) for c in model.criteria for kind in ("reached", "holding")],
                             (FRACTION,))


def table(model, records, steps: slice) -> dict[str, np.ndarray]:
    """The rows of ``steps.csv`` of the steps ``steps`` of ``records``, as one float64 array per
    column (every registered observable that applies to the model, in registration order)."""
    out: dict[str, np.ndarray] = {}
    for item in OBSERVABLES:
        if item.applies(model):
            item.summarise(model, records, steps, out)
    return out


def merge_rules(model) -> dict[str, tuple]:
    """Every column of the model's ``steps.csv`` and how it merges over a split run's shards."""
    out: dict[str, tuple] = {}
    for item in OBSERVABLES:
        if item.applies(model):
            out.update(item.merge_rules(model))
    return out


def row(model, records, b: int) -> dict[str, float]:
    """One row of ``steps.csv`` from step ``b`` of ``records`` (:func:`table` of that one step)."""
    return {key: float(values[0]) for key, values in table(model, records, slice(b, b + 1)).items()}
