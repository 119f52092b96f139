"""The known-truth propagation test: skill of an estimate against a known field, by latitude and longitude."""

from __future__ import annotations

import numpy as np
import pytest

from bridging.diagnostics.propagation import cell_skill, propagation_skill


def test_cell_skill_is_correlation_and_rmse_over_time():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((600, 2, 3))
    estimate = truth + 0.5 * rng.standard_normal((600, 2, 3))
    corr, rmse, std = cell_skill(truth, estimate)
    assert corr == pytest.approx(np.full((2, 3), 1 / np.sqrt(1.25)), abs=0.05)
    assert rmse == pytest.approx(np.full((2, 3), 0.5), abs=0.05)
    assert std == pytest.approx(np.ones((2, 3)), abs=0.1)


def test_skill_decays_away_from_the_observed_equator_and_the_control_has_none():
    """An estimate that holds the truth near the equator and only a weak trace of it poleward, and a control made of
    independent series: the latitude profile and the control's near-zero correlation come out as built."""
    rng = np.random.default_rng(1)
    n_time = 12 * 60
    lat = np.arange(-15.0, 15.1, 1.0)
    lon = np.arange(120.0, 281.0, 4.0)
    months = np.tile(np.arange(1, 13), 60)
    signal = rng.standard_normal((n_time, lat.size, 1)) * np.ones((1, 1, lon.size))
    truth = signal * np.exp(-((lat / 6.0) ** 2))[None, :, None]
    kept = np.where(np.abs(lat) <= 3, 1.0, 0.2)[None, :, None]
    noise = 0.3 * rng.standard_normal(truth.shape)
    estimates = {
        "bridging": {"sst": kept * truth + noise},
        "free_run": {"sst": rng.standard_normal(truth.shape)},
    }
    ocean = np.ones((lat.size, lon.size), bool)
    ocean[:, :2] = False  # land in the far west never counts
    out = propagation_skill({"sst": truth}, estimates, lat, lon, ocean, months)
    bridging = np.array(out["sst"]["bridging"]["correlation"])
    free_run = np.array(out["sst"]["free_run"]["correlation"])
    equator = lat == 0
    assert bridging[equator][0] > 0.9 and out["sst"]["bridging"]["equator_correlation"] > 0.9
    assert bridging[np.abs(lat) == 10].max() < bridging[equator][0] - 0.2
    assert np.abs(free_run).max() < 0.15 and abs(out["sst"]["free_run"]["equator_correlation"]) < 0.1
    assert len(out["sst"]["bridging"]["correlation_by_longitude"]) == lon.size
    assert out["sst"]["truth_std"][int(np.flatnonzero(equator)[0])] > out["sst"]["truth_std"][0]
