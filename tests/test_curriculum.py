"""The curriculum: validated epoch schedules (p_e, rollout length) and the reanalysis/operational sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bridging.models.curriculum import (
    OPERATIONAL,
    REANALYSIS,
    CurriculumSampler,
    Milestone,
    Schedule,
    reanalysis_probability_schedule,
    rollout_schedule,
)
from bridging.settings import CurriculumSection


def test_linear_ramp_values():
    s = Schedule.linear_ramp(0.0, 0.6, 10)
    assert [s.value(e) for e in (0, 5, 10, 11, 100)] == pytest.approx([0.0, 0.3, 0.6, 0.6, 0.6])
    assert s.value(3) == pytest.approx(0.18)


def test_piecewise_milestones_interpolate_then_hold():
    s = Schedule(1.0, (Milestone(2, 3.0), Milestone(6, 1.0)))
    assert [s.value(e) for e in range(8)] == pytest.approx([1.0, 2.0, 3.0, 2.5, 2.0, 1.5, 1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_value": 0.0, "milestones": (Milestone(0, 1.0),)}, "first milestone epoch must be > 0"),
        ({"start_value": 0.0, "milestones": (Milestone(4, 1.0), Milestone(4, 2.0))}, "strictly increasing"),
        ({"start_value": 0.0, "milestones": (Milestone(4, 1.0), Milestone(2, 2.0))}, "strictly increasing"),
        ({"start_value": math.nan}, "finite"),
        ({"start_value": 0.0, "milestones": (Milestone(2, 1.5),), "bounds": (0.0, 1.0)}, "outside"),
        ({"start_value": 0.0, "milestones": (Milestone(2.5, 1.0),)}, "integers"),
    ],
)
def test_schedule_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**kwargs)


def test_negative_epoch_rejected():
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        Schedule(0.5).value(-1)


def test_reanalysis_probability_defaults_to_half_the_epochs():
    s = reanalysis_probability_schedule(CurriculumSection(p_start=0.0, p_max=0.6), epochs=30)
    assert s.value(0) == 0.0
    assert s.value(15) == pytest.approx(0.6)
    assert s.value(14) < 0.6
    explicit = reanalysis_probability_schedule(
        {"p_start": 0.1, "p_max": 0.5, "ramp_end_epoch": 4, "apply_to_autoencoder": False}, 30
    )
    assert [explicit.value(e) for e in (0, 2, 4, 29)] == pytest.approx([0.1, 0.3, 0.5, 0.5])


def test_rollout_length_ramps_from_one_to_max_over_the_fraction():
    s = rollout_schedule(12, 0.6, 40)  # ramp ends at epoch 24
    ks = [s.int_value(e) for e in range(40)]
    assert ks[0] == 1 and ks[24] == 12 and ks[-1] == 12
    assert s.value(23) < 12 and s.value(24) == 12
    assert all(b >= a for a, b in zip(ks, ks[1:]))
    assert set(ks) == set(range(1, 13))  # every length is trained on


def test_sampler_frequency_matches_probability():
    n = 20000
    sampler = CurriculumSampler(
        Schedule.linear_ramp(0.0, 0.6, 10), n_operational=500, n_reanalysis=200, samples_per_epoch=n, seed=3
    )
    for epoch, p in ((0, 0.0), (5, 0.3), (10, 0.6), (30, 0.6)):
        draw = sampler.draw(epoch)
        assert draw.p_reanalysis == pytest.approx(p)
        tolerance = 4 * math.sqrt(max(p * (1 - p), 1e-12) / n)
        assert abs(draw.reanalysis_share - p) <= tolerance
        assert draw.index[draw.source == OPERATIONAL].max(initial=0) < 500
        assert draw.index[draw.source == REANALYSIS].max(initial=0) < 200


def test_sampler_uses_each_index_once_before_repeating():
    sampler = CurriculumSampler(Schedule(0.0), n_operational=97, n_reanalysis=0, samples_per_epoch=97, seed=0)
    draw = sampler.draw(4)
    assert sorted(draw.index.tolist()) == list(range(97))
    longer = CurriculumSampler(Schedule(0.0), n_operational=10, n_reanalysis=0, samples_per_epoch=25, seed=0).draw(0)
    assert np.bincount(longer.index, minlength=10).min() >= 2


def test_sampler_is_a_function_of_seed_and_epoch_only():
    a = CurriculumSampler(Schedule(0.4), 300, 100, 256, seed=7)
    b = CurriculumSampler(Schedule(0.4), 300, 100, 256, seed=7)
    b.draw(0), b.draw(1)  # drawing other epochs first must not change epoch 2 (resume gives the same draw)
    for x, y in ((a.draw(2).source, b.draw(2).source), (a.draw(2).index, b.draw(2).index)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.draw(2).index, a.draw(3).index)
    assert not np.array_equal(a.draw(2).index, CurriculumSampler(Schedule(0.4), 300, 100, 256, seed=8).draw(2).index)


def test_sampler_refuses_reanalysis_samples_it_does_not_have():
    sampler = CurriculumSampler(
        Schedule.linear_ramp(0.0, 0.5, 4), n_operational=50, n_reanalysis=0, samples_per_epoch=10, seed=0
    )
    sampler.draw(0)  # p = 0: fine
    with pytest.raises(ValueError, match="reanalysis record has none"):
        sampler.draw(2)
