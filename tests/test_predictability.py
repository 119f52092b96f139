"""One-step predictability of the observables at equal record length (bridging.models.predictability)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bridging.errors import InputDataError
from bridging.grid import TargetGrid
from bridging.models.predictability import (
    equal_chunks,
    noise_budget_stage,
    one_step_residual_variance,
    predictability,
)
from bridging.observables import ObservationLayout
from bridging.timeaxis import monthly_time

GRID = TargetGrid(lat_min=-2.0, lat_max=2.0, lon_min=130.0, lon_max=170.0, resolution=2.0)
LON = (132.0, 142.0, 152.0, 162.0)


def _var1(T: int, seed: int, innovation_std=(1.0, 0.5, 0.2)) -> np.ndarray:
    """y_t = A y_{t−1} + e_t with known innovation variances."""
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.1, 0.0], [-0.2, 0.8, 0.0], [0.0, 0.3, 0.5]])
    y = np.zeros((T, 3))
    for t in range(1, T):
        y[t] = A @ y[t - 1] + rng.standard_normal(3) * innovation_std
    return y


def test_the_residual_variance_of_a_var1_is_its_innovation_variance():
    """Golden value: with every EOF and one lag the fit is the VAR(1) itself."""
    residual = one_step_residual_variance(_var1(20_000, seed=1), lags=1, n_eofs=3)
    np.testing.assert_allclose(residual, [1.0, 0.25, 0.04], rtol=0.03)


def test_white_noise_on_a_record_shows_as_less_predictable_and_the_ratio_says_by_how_much():
    clean = _var1(6000, seed=2)
    noisy = clean[:3000] + np.random.default_rng(3).standard_normal((3000, 3)) * 0.5
    std = clean.std(0)
    groups = {"all": np.ones(3, bool)}
    study = predictability({"clean": clean, "noisy": noisy}, std, groups=groups, lags=(1, 3), n_eofs=3)
    assert study["length_months"] == 3000  # the shortest record sets the chunk length
    assert study["sources"]["clean"]["chunks"] == 2 and study["sources"]["noisy"]["chunks"] == 1
    for p in ("1", "3"):
        clean_var = study["sources"]["clean"]["residual_variance"][p]["all"]["mean"]
        noisy_var = study["sources"]["noisy"]["residual_variance"][p]["all"]["mean"]
        # white noise of variance 0.25 adds at least its own variance (standardised) to the one-step error
        assert noisy_var > clean_var + 0.25 * np.mean(1 / std**2) * 0.9


def test_chunks_are_equal_and_a_too_short_record_is_refused():
    y = np.arange(25.0)[:, None]
    assert [len(c) for c in equal_chunks(y, 10)] == [10, 10]
    with pytest.raises(ValueError, match="too short"):
        predictability({"a": np.ones((30, 3))}, np.ones(3), groups={"all": np.ones(3, bool)}, lags=(12,), n_eofs=10)


def _stores(tmp_path, *, nan=False, shift=0.0, constant=False):
    variables = ["sst"] * len(LON) + ["thermocline_depth"] * len(LON)
    layout = ObservationLayout.points(GRID, variables, [0.0] * len(variables), list(LON) * 2)
    rng = np.random.default_rng(4)
    paths = {}
    for name, T in (("operational", 600), ("reanalysis", 240)):
        y = np.concatenate([_var1(T, seed=5 + T)[:, :2]] * 4, axis=1) + 0.3 * rng.standard_normal((T, 8))
        if constant and name == "operational":
            y[:, 2] = 1.0
        ds = xr.Dataset(
            {"y": (("time", "obs"), y.astype(np.float32)), "z": (("time", "latent"), rng.standard_normal((T, 3)))},
            coords={"time": monthly_time(1950, 1, T), **layout.coords()},
        )
        paths[name] = tmp_path / f"{name}.zarr"
        ds.to_zarr(paths[name], mode="w", zarr_format=3, consolidated=False)
    obs = np.concatenate([_var1(1200, seed=9)[:, :2]] * 4, axis=1)
    if nan:
        obs[5, 3] = np.nan
    other = ObservationLayout.points(GRID, variables, [0.0] * len(variables), [lon + shift for lon in LON] * 2)
    ds = xr.Dataset(
        {"observations": (("time", "obs"), obs.astype(np.float32)), "obs_error_variance": ("obs", np.ones(8))},
        coords={"time": monthly_time(1, 1, 1200), **other.coords()},
        attrs={"model": "toy"},
    )
    paths["pseudo_obs"] = tmp_path / "pseudo_obs.zarr"
    ds.to_zarr(paths["pseudo_obs"], mode="w", zarr_format=3, consolidated=False)
    return paths


def test_the_stage_writes_the_study_per_variable_with_the_idealized_over_training_ratio(tmp_path):
    paths = _stores(tmp_path)
    md = noise_budget_stage(
        paths["operational"], paths["reanalysis"], paths["pseudo_obs"], tmp_path / "out",
        reanalysis_share=0.6, lags=(1, 3), n_eofs=4,
    )  # fmt: skip
    study = json.loads((tmp_path / "out" / "noise_budget.json").read_text())
    assert study["length_months"] == 240 and study["groups"] == ["all", "sst", "thermocline_depth"]
    assert study["sources"]["toy"]["chunks"] == 5 and study["sources"]["operational"]["chunks"] == 2
    ratio = study["idealized_over_training"]["toy"]["1"]["all"]
    assert 0 < ratio["ratio"] < 1 and ratio["factor_on_std"] == pytest.approx(np.sqrt(ratio["ratio"]))
    assert "| 3 |" in md.read_text() and "toy / training" in md.read_text()


@pytest.mark.parametrize(
    "problem, match",
    [
        ("nan", "NaN"),
        ("shift", "observables of the two stores differ"),
        ("constant", "constant"),
        ("short", "too short for 12 lags"),
    ],
)
def test_bad_stores_are_refused_naming_the_file(tmp_path, problem, match):
    paths = _stores(
        tmp_path, nan=problem == "nan", shift=4.0 if problem == "shift" else 0.0, constant=problem == "constant"
    )
    with pytest.raises(InputDataError, match=match) as err:
        noise_budget_stage(  # 240 reanalysis months are too short for the default 12 lags of 10 EOFs
            paths["operational"], paths["reanalysis"], paths["pseudo_obs"], tmp_path / "out", reanalysis_share=0.6
        )
    assert ("operational.zarr" if problem == "constant" else "pseudo_obs.zarr") in str(err.value)
    assert not (tmp_path / "out").exists()


def test_the_command_on_a_run_that_is_not_there_is_one_line(tmp_path, capsys, monkeypatch):
    from bridging.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["noise-budget", "--model", "DEMO-CESM2", "--out", str(tmp_path / "out")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "latent/DEMO-CESM2/operational.zarr" in lines[0], lines
    assert not (tmp_path / "out").exists()
