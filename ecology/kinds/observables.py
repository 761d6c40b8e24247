"""What the simulator records at every step: one registered class per observable.

Each observable names its columns of ``steps.csv`` (the DataCollector table), says what they
measure (``unit``, ``description``, and how the per-replicate values are aggregated over the R
replicates) and computes them from the model after every step. The DataCollector's reporters,
the column names that results, plots and studies read (``Observable.column(...)``) and the
column reference of ``docs/outputs.md`` all come from :data:`OBSERVABLES`, so a new observable is
one class here. In the notation of SCIENCE.md, with ``alpha_s`` the amplitude of premise ``s``
and ``A_L = sum_{s in L} alpha_s`` that of population label ``L``, per step:

- amplitude of each population: mean, 10/50/90% quantiles over replicates of ``A_L``;
- winner-take-all: fraction of replicates with ``A_L > 1/2`` (majority) and ``> 0.99`` (certain),
  under the tie rule of :func:`ecology.absorption.above`;
- amplitude of each premise: mean and quantiles of ``alpha_s``;
- entropy of the sampling law ``-sum_t p_T log p_T``, surprisal ``-log mu(t|w)`` of the printed
  token, free energy ``-log sum_s prior_s mu_s(w)`` (means over replicates);
- effective number of premises ``exp(-sum_s alpha_s log alpha_s)`` (mean over replicates);
- token ledger: tokens generated, mean tokens deleted, and each population's mean credit
  ``sum over printed tokens of sum_{s in L} alpha_s mu_s(t|w) / mu(t|w)``;
- drift (``run.drift = true``): mean exact expected one-step change of ``alpha_s`` and ``A_L``;
- criteria: fraction of replicates that have reached each criterion, and that hold it now.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ecology.numerics import above, entropy

MAJORITY, CERTAIN = 0.5, 0.99  # amplitude thresholds of the winner-take-all observables


QUANTILES = (0.1, 0.5, 0.9)


class Observable:
    """One recorded quantity: ``record(model, row)`` adds its columns to the step's row from the
    model's per-replicate arrays (``population``, ``amplitudes``, ``premise_quantiles``,
    ``current``, ...: the numpy engine, and step 0); ``summarise(model, block, b, row)`` adds the
    same columns from step ``b`` of a compiled block (:class:`ecology.kernel.Block`: per-step sums,
    counts and quantiles over replicates, which the kernel accumulates; an observable without it
    makes the compiled engine fall back to numpy); ``column(...)`` spells one column's name (the
    one place it is spelled)."""

    unit: ClassVar[str]
    description: ClassVar[str]
    aggregate: ClassVar[str]  # how the per-replicate values become one number per step

    @staticmethod
    def column(*parts: str) -> str:
        raise NotImplementedError

    def applies(self, model) -> bool:
        return True

    def record(self, model, row: dict[str, float]) -> None:
        raise NotImplementedError

    summarise = None  # (model, block, b, row) -> None, where the compiled engine records it


OBSERVABLES: list[Observable] = []


def observable(cls: type[Observable]) -> type[Observable]:
    """Class decorator: register an observable (columns appear in registration order)."""
    OBSERVABLES.append(cls())
    return cls


@observable
class PopulationAmplitude(Observable):
    unit = "amplitude (probability)"
    description = "amplitude of each population label"
    aggregate = "mean and 10/50/90% quantiles over replicates"

    @staticmethod
    def column(label: str, stat: str = "mean") -> str:
        return f"{label}_{stat}"

    def record(self, model, row):
        population = model.population
        if all(len(m) == 1 for m in model.mixture.members):  # each population is one premise
            quantiles = model.premise_quantiles[:, [m[0] for m in model.mixture.members]]
        else:
            quantiles = np.quantile(population, QUANTILES, axis=0)
        for j, label in enumerate(model.mixture.labels):
            row[self.column(label)] = float(population[:, j].mean())
            for q, value in zip(QUANTILES, quantiles[:, j]):
                row[self.column(label, f"q{round(100 * q)}")] = float(value)
            row[Majority.column(label)] = float(np.mean(above(population[:, j], MAJORITY)))
            row[Certain.column(label)] = float(np.mean(above(population[:, j], CERTAIN)))

    def summarise(self, model, block, b, row):
        sums, quantiles = block.population_sums(b), block.population_quantiles(b)
        majority, certain = block.winners(b)
        for j, label in enumerate(model.mixture.labels):
            row[self.column(label)] = float(sums[j] / model.replicates)
            for q, value in zip(QUANTILES, quantiles[:, j]):
                row[self.column(label, f"q{round(100 * q)}")] = float(value)
            row[Majority.column(label)] = float(majority[j] / model.replicates)
            row[Certain.column(label)] = float(certain[j] / model.replicates)


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
    unit = "amplitude (probability)"
    description = "amplitude of each premise"
    aggregate = "mean and 10/50/90% quantiles over replicates"

    @staticmethod
    def column(premise: str, stat: str = "mean") -> str:
        return f"premise_{premise}_{stat}"

    def record(self, model, row):
        amplitudes = model.amplitudes
        for s, premise in enumerate(model.compiled.premises):
            row[self.column(premise.name)] = float(amplitudes[:, s].mean())
            for q, value in zip(QUANTILES, model.premise_quantiles[:, s]):
                row[self.column(premise.name, f"q{round(100 * q)}")] = float(value)

    def summarise(self, model, block, b, row):
        sums, quantiles = block.premise_sums(b), block.premise_quantiles(b)
        for s, premise in enumerate(model.compiled.premises):
            row[self.column(premise.name)] = float(sums[s] / model.replicates)
            for q, value in zip(QUANTILES, quantiles[:, s]):
                row[self.column(premise.name, f"q{round(100 * q)}")] = float(value)


class ModelScalar(Observable):
    aggregate = "mean over replicates"
    key: ClassVar[str]

    @classmethod
    def column(cls) -> str:
        return cls.key

    def summarise(self, model, block, b, row):
        row[self.key] = block.scalar_sum(b, self.key) / model.replicates


@observable
class Entropy(ModelScalar):
    key = "entropy"
    unit = "nats"
    description = "entropy of the sampling law p_T(. | w)"

    def record(self, model, row):
        row[self.key] = float(entropy(model.current.log_p).mean())


@observable
class Surprisal(ModelScalar):
    key = "surprisal"
    unit = "nats"
    description = "surprisal -log mu(t | w) of the token just printed (NaN at step 0)"

    def record(self, model, row):
        row[self.key] = float("nan") if model.surprisal is None else float(model.surprisal.mean())


@observable
class FreeEnergy(ModelScalar):
    key = "free_energy"
    unit = "nats"
    description = "free energy -log sum_s prior_s mu_s(w) of the window"

    def record(self, model, row):
        row[self.key] = float(model.current.free_energy.mean())


@observable
class EffectivePremises(ModelScalar):
    """``N_eff(w) = exp(-sum_s alpha_s log alpha_s)``: 1 when one premise holds all the amplitude,
    ``S`` when the amplitude is spread evenly over ``S`` premises (the perplexity of the
    amplitudes; how many premises the model is still "running" on this window)."""

    key = "effective_premises"
    unit = "premises"
    description = "effective number of premises exp(entropy of the amplitudes alpha_s)"

    def record(self, model, row):
        row[self.key] = float(np.exp(entropy(model.current.log_amplitude)).mean())


@observable
class Ledger(Observable):
    unit = "tokens"
    description = "tokens generated, mean tokens deleted, and each population's mean credit"
    aggregate = "mean over replicates"

    @staticmethod
    def column(part: str, label: str | None = None) -> str:
        return f"credit_{label}" if part == "credit" else f"ledger_{part}"

    def record(self, model, row):
        row[self.column("generated")] = float(model.generated)
        row[self.column("deleted")] = float(model.deleted.mean())
        for j, label in enumerate(model.mixture.labels):
            row[self.column("credit", label)] = float(model.credit[:, j].mean())

    def summarise(self, model, block, b, row):
        row[self.column("generated")] = float(model.generated)
        row[self.column("deleted")] = block.scalar_sum(b, "deleted") / model.replicates
        for j, label in enumerate(model.mixture.labels):
            row[self.column("credit", label)] = float(block.credit_sums(b)[j] / model.replicates)


@observable
class Drift(Observable):
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

    def record(self, model, row):
        for s, premise in enumerate(model.compiled.premises):
            row[self.column(premise.name)] = float(model.drift[:, s].mean())
        for j, label in enumerate(model.mixture.labels):
            row[self.column(label)] = float(model.drift[:, model.mixture.members[j]].sum(axis=1).mean())

    def summarise(self, model, block, b, row):
        """The compiled engine takes one step per block with drift, and computes ``model.drift``."""
        self.record(model, row)


@observable
class Criteria(Observable):
    unit = "fraction of replicates"
    description = "replicates that have reached each criterion (first hit by now), and that hold it now"
    aggregate = "fraction"

    @staticmethod
    def column(kind: str, criterion: str) -> str:
        assert kind in ("reached", "holding")
        return f"{kind}_{criterion}"

    def record(self, model, row):
        for i, c in enumerate(model.criteria):
            row[self.column("reached", c.name)] = float(np.mean(model.reached_at[i] >= 0))
            row[self.column("holding", c.name)] = float(np.mean(model.holding[i]))

    def summarise(self, model, block, b, row):
        reached, holding = block.criteria(b)
        for i, c in enumerate(model.criteria):
            row[self.column("reached", c.name)] = float(reached[i] / model.replicates)
            row[self.column("holding", c.name)] = float(holding[i] / model.replicates)


def record(model) -> dict[str, float]:
    """One row of ``steps.csv``: every registered observable that applies to the model."""
    row: dict[str, float] = {}
    for item in OBSERVABLES:
        if item.applies(model):
            item.record(model, row)
    return row


def summarise(model, block, b: int) -> dict[str, float]:
    """The same row from step ``b`` of a compiled block."""
    row: dict[str, float] = {}
    for item in OBSERVABLES:
        if item.applies(model):
            item.summarise(model, block, b, row)
    return row
