"""Curriculum learning: epoch schedules and the sampler that mixes reanalysis into the training data.

The curriculum (docs/method.md, Forecast model) is *data mixing*, not scheduled sampling: each training sample (a
field for the autoencoder, a sequence for the forecast model) is drawn from the reanalysis with probability p_e and
from the operational model otherwise, with p_e rising linearly from p_start to p_max by epoch e_f and constant
after. The schedule is a small validated object, like ai2cm/ace's ``IntSchedule`` (start value + milestones); the
same class gives the forecast model's rollout length k (1 → 12 over the first 60 % of training).

Every epoch's draw comes from a generator seeded with (seed, epoch) alone, so a run resumed from an epoch
checkpoint draws exactly what an uninterrupted run would have drawn.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

OPERATIONAL = 0
REANALYSIS = 1


@dataclass(frozen=True)
class Milestone:
    """The schedule reaches ``value`` at ``epoch`` (0-based)."""

    epoch: int
    value: float


@dataclass(frozen=True)
class Schedule:
    """A piecewise-linear function of the epoch: ``start_value`` at epoch 0, each milestone's value at its epoch,
    linear in between, constant after the last milestone.

    Validated like ace's IntSchedule: milestone epochs are positive and strictly increasing, values finite and,
    where ``bounds`` is given, inside them.
    """

    start_value: float
    milestones: tuple[Milestone, ...] = ()
    bounds: tuple[float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "milestones", tuple(self.milestones))
        values = [self.start_value, *(m.value for m in self.milestones)]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"schedule values must be finite, got {values}")
        epochs = [m.epoch for m in self.milestones]
        if any(not isinstance(e, (int, np.integer)) for e in epochs):
            raise ValueError(f"milestone epochs must be integers, got {epochs}")
        if epochs and epochs[0] <= 0:
            raise ValueError(f"the first milestone epoch must be > 0 (epoch 0 is start_value), got {epochs[0]}")
        if any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ValueError(f"milestone epochs must be strictly increasing, got {epochs}")
        if self.bounds is not None:
            lo, hi = self.bounds
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise ValueError(f"schedule values {bad} lie outside [{lo}, {hi}]")

    @classmethod
    def linear_ramp(
        cls, start: float, end: float, end_epoch: int, bounds: tuple[float, float] | None = None
    ) -> Schedule:
        """``start`` at epoch 0 rising (or falling) linearly to ``end`` at ``end_epoch``, constant after."""
        if end_epoch < 1:
            raise ValueError(f"ramp end epoch must be >= 1, got {end_epoch}")
        return cls(float(start), (Milestone(int(end_epoch), float(end)),), bounds)

    def value(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        epochs = [0, *(m.epoch for m in self.milestones)]
        values = [self.start_value, *(m.value for m in self.milestones)]
        i = bisect.bisect_right(epochs, epoch) - 1
        if i == len(epochs) - 1:
            return float(values[-1])
        frac = (epoch - epochs[i]) / (epochs[i + 1] - epochs[i])
        return float(values[i] + frac * (values[i + 1] - values[i]))

    def int_value(self, epoch: int) -> int:
        """The value rounded half up: an integer schedule such as the rollout length."""
        return int(math.floor(self.value(epoch) + 0.5))


def reanalysis_probability_schedule(curriculum, epochs: int) -> Schedule:
    """p_e from a CurriculumSection (or its dict): p_start → p_max by ramp_end_epoch (default: half the epochs)."""
    c = curriculum.model_dump() if hasattr(curriculum, "model_dump") else dict(curriculum)
    ramp_end = c.get("ramp_end_epoch") or max(1, epochs // 2)
    return Schedule.linear_ramp(c["p_start"], c["p_max"], int(ramp_end), bounds=(0.0, 1.0))


def rollout_schedule(rollout_max: int, ramp_fraction: float, epochs: int) -> Schedule:
    """Rollout length k: 1 at epoch 0 → rollout_max by ramp_fraction of the epochs (at least epoch 1)."""
    end = max(1, int(round(ramp_fraction * epochs)))
    return Schedule.linear_ramp(1.0, float(rollout_max), end, bounds=(1.0, float(max(1, rollout_max))))


def ramps_end_epoch(forecast, curriculum) -> int:
    """The first epoch at which the forecast model's rollout length and the curriculum's reanalysis share have their
    final values (ForecastSection / CurriculumSection, or their dicts); early stopping counts from it, so training
    must last longer."""
    f = forecast.model_dump() if hasattr(forecast, "model_dump") else dict(forecast)
    epochs = int(f["epochs"])
    k_end = rollout_schedule(f["rollout_max"], f["rollout_ramp_fraction"], epochs).milestones[-1].epoch
    p_end = reanalysis_probability_schedule(curriculum, epochs).milestones[-1].epoch
    end = max(k_end, p_end)
    if end >= epochs:
        raise ValueError(
            f"forecast.epochs ({epochs}) must exceed the epoch at which the ramps end ({end}: rollout ramp {k_end}, "
            f"curriculum.ramp_end_epoch {p_end}); early stopping counts only after it"
        )
    return end


@dataclass(frozen=True)
class EpochDraw:
    """One epoch's samples: ``source[i]`` (OPERATIONAL or REANALYSIS) and the sample's start index in it."""

    source: np.ndarray
    index: np.ndarray
    p_reanalysis: float

    @property
    def reanalysis_share(self) -> float:
        return float(np.mean(self.source == REANALYSIS)) if self.source.size else 0.0


@dataclass
class CurriculumSampler:
    """Draw each sample from the reanalysis with probability p_e, else from the operational record.

    ``n_operational``/``n_reanalysis`` are the numbers of valid start indices in each source (fields, or sequence
    windows); within a source, indices are shuffled and each used once before any repeats. A source with no valid
    sample may only be chosen with probability 0.
    """

    schedule: Schedule
    n_operational: int
    n_reanalysis: int
    samples_per_epoch: int
    seed: int

    def __post_init__(self):
        if self.n_operational < 1:
            raise ValueError("the operational record has no training sample")
        if self.samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {self.samples_per_epoch}")

    def draw(self, epoch: int) -> EpochDraw:
        p = self.schedule.value(epoch)
        if p > 0 and self.n_reanalysis < 1:
            raise ValueError(
                f"curriculum asks for reanalysis samples (p={p:.2f} at epoch {epoch}) but the reanalysis record has none"
            )
        rng = np.random.default_rng([int(self.seed), int(epoch)])
        source = (rng.random(self.samples_per_epoch) < p).astype(np.int8)
        index = np.empty(self.samples_per_epoch, np.int64)
        n_rean = int(source.sum())
        index[source == OPERATIONAL] = _without_replacement(rng, self.n_operational, self.samples_per_epoch - n_rean)
        if n_rean:
            index[source == REANALYSIS] = _without_replacement(rng, self.n_reanalysis, n_rean)
        return EpochDraw(source, index, p)


def _without_replacement(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """``count`` indices below n, each used once before any repeats (a shuffled epoch, not iid draws)."""
    reps = -(-count // n) if count else 0
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:count] if reps else np.zeros(0, np.int64)
