"""The assimilation run, free run and decoding with small stand-in models (a linear forecaster carrying a recurrent
state and a PCA-like linear autoencoder) on a synthetic operational model and synthetic pseudo-observations."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import bridging.da.decode as da_decode
import bridging.da.run as da_run
from bridging.cf import missing_attributes
from bridging.da.checkpoint import sidecar_dir
from bridging.da.cycle import CycleSetup, FilterDivergedError, FilterState, run_cycles
from bridging.da.noise import noise_factor
from bridging.da.run import assimilate, free_run
from bridging.da.statistics import health_warnings
from bridging.errors import ConfigError, GateFailedError, InputDataError
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.settings import DASection
from bridging.stores import FIELDS, build_store, open_store, write_store
from bridging.timeaxis import monthly_time, year_month

GRID = TargetGrid(lat_min=-3.0, lat_max=3.0, lon_min=130.0, lon_max=160.0, resolution=1.0)
N_LATENT = 6
FIELD_STD = {"sst": 0.8, "thermocline_depth": 12.0}
OBS_LON = (132.0, 140.0, 148.0, 156.0)


# ------------------------------------------------------------------------------------------------ stand-in models


class LinearAutoencoder(torch.nn.Module):
    """PCA-like: orthonormal patterns over the ocean; decode returns NaN over land like the real autoencoder."""

    field_names = FIELDS

    def __init__(self, patterns: np.ndarray, ocean: np.ndarray):
        super().__init__()
        self.register_buffer("patterns", torch.as_tensor(patterns.reshape(patterns.shape[0], -1)))
        self.register_buffer("ocean", torch.as_tensor(ocean))
        self.shape = patterns.shape[1:]

    def encode(self, x):
        x = torch.where(self.ocean & torch.isfinite(x), x, torch.zeros((), dtype=x.dtype))
        return x.flatten(1) @ self.patterns.mT

    def decode(self, z):
        fields = (z @ self.patterns).reshape(-1, *self.shape)
        return fields.masked_fill(~self.ocean, float("nan"))


class LinearForecaster(torch.nn.Module):
    """x_{t+1} = M x_t + 0.05 (h − x_t), h ← 0.7 h + 0.3 x: a linear model whose recurrent state h matters."""

    def __init__(self, M: np.ndarray, noise_cov: np.ndarray, gate_passed: bool = True):
        super().__init__()
        self.register_buffer("M", torch.as_tensor(M))
        self.register_buffer("noise_cov", torch.as_tensor(noise_cov))
        self.n_state = M.shape[0]
        self.gate_passed = gate_passed
        self.gate_report = {} if gate_passed else {"failures": ["free run left the training range"]}
        self.calls = 0

    def initial_state(self, batch, device, dtype):
        return (torch.zeros(batch, self.n_state, device=device, dtype=dtype),)

    def step(self, x, state):
        self.calls += 1
        (h,) = state
        return x @ self.M.mT + 0.05 * (h - x), (0.7 * h + 0.3 * x,)

    def modulate_noise(self, noise, origin):
        return noise  # constant noise: no state-dependent head


class CrashingForecaster(LinearForecaster):
    """Simulates a kill: raises on the ``crash_at``-th call."""

    def __init__(self, *args, crash_at: int, **kw):
        super().__init__(*args, **kw)
        self.crash_at = crash_at

    def step(self, x, state):
        if self.calls + 1 == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        return super().step(x, state)


class NaNForecaster(LinearForecaster):
    def __init__(self, *args, nan_at: int, **kw):
        super().__init__(*args, **kw)
        self.nan_at = nan_at

    def step(self, x, state):
        out, state = super().step(x, state)
        if self.calls == self.nan_at:
            out = out.clone()
            out[3, 2] = float("nan")
        return out, state


# ------------------------------------------------------------------------------------------------ synthetic world


def _ocean() -> np.ndarray:
    ocean = np.ones(GRID.shape, bool)
    ocean[:2, :4] = False  # a corner of land
    return ocean


def _patterns(ocean) -> np.ndarray:
    lat, lon = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    raw = []
    for i in range(N_LATENT):
        k = (i % 3) + 1
        base = np.cos(np.deg2rad(lat) * 15) * np.sin(np.deg2rad(lon - 130) * 6 * k + i)
        raw.append(np.stack([base, np.roll(base, i + 1, axis=1) * (1 if i % 2 else -1)]))
    raw = np.asarray(raw) * ocean
    q, _ = np.linalg.qr(raw.reshape(N_LATENT, -1).T)
    return q.T.reshape(raw.shape)


def _latent_series(T: int, seed: int, amplitude: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = 0.3
    A = 0.93 * np.eye(N_LATENT)
    A[:2, :2] = 0.95 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    z = np.zeros((T, N_LATENT))
    for t in range(1, T):
        z[t] = A @ z[t - 1] + 0.35 * rng.standard_normal(N_LATENT)
    return amplitude * z


def _layout() -> ObservationLayout:
    variables = ["sst"] * len(OBS_LON) + ["thermocline_depth"] * len(OBS_LON)
    return ObservationLayout.points(GRID, variables, [0.0] * len(variables), list(OBS_LON) * 2)


def _physical(ae, z) -> dict[str, np.ndarray]:
    std_fields = ae.decode(torch.as_tensor(z)).numpy()
    return {f: std_fields[:, c] * FIELD_STD[f] for c, f in enumerate(FIELDS)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files of a tiny run: operational store, latent store, pseudo-observations, model files; and the stand-ins."""
    root = tmp_path_factory.mktemp("world")
    ocean = _ocean()
    ae = LinearAutoencoder(_patterns(ocean), ocean)
    layout = _layout()
    T_train, T_obs = 600, 60

    z = _latent_series(T_train, seed=1)
    anomalies = _physical(ae, z)
    y = layout.extract(anomalies, GRID)
    time = monthly_time(1850, 1, T_train)
    _, months = year_month(time)
    clim = {
        "sst": 27
        + np.cos(2 * np.pi * (np.arange(1, 13) / 12))[:, None, None]
        + 0.01 * GRID.lon[None, None, :]
        + 0 * GRID.lat[None, :, None],
        "thermocline_depth": 120
        + 10 * np.sin(2 * np.pi * np.arange(1, 13) / 12)[:, None, None]
        + 0 * GRID.lat[None, :, None]
        + 0 * GRID.lon[None, None, :],
    }
    coords = {"time": time, **GRID.coords()}
    fields = {
        f: xr.DataArray(
            np.where(ocean, anomalies[f] + clim[f][months - 1], np.nan), dims=("time", "lat", "lon"), coords=coords
        )
        for f in FIELDS
    }
    clim_da = {
        f: xr.DataArray(clim[f], dims=("month", "lat", "lon"), coords={"month": np.arange(1, 13), **GRID.coords()})
        for f in FIELDS
    }
    op = build_store(
        fields,
        source_id="TOY",
        source_kind="operational",
        climatology=clim_da,
        anomaly_std=FIELD_STD,
        climatology_period=(1850, 1899),
    )
    write_store(op, root / "stores" / "TOY.zarr")

    latent = xr.Dataset(
        {"z": (("time", "latent"), z.astype(np.float32)), "y": (("time", "obs"), y.astype(np.float32))},
        coords={"time": time, **layout.coords()},
    )
    latent.to_zarr(root / "latent.zarr", mode="w", zarr_format=3, consolidated=False)

    # The "idealized model": the same dynamics, 1.3 × the amplitude, an independent trajectory.
    obs = layout.extract(_physical(ae, _latent_series(T_obs, seed=2, amplitude=1.3)), GRID)
    pseudo = xr.Dataset(
        {"observations": (("time", "obs"), obs.astype(np.float32)), "obs_error_variance": ("obs", 0.04 * obs.var(0))},
        coords={"time": monthly_time(1, 1, T_obs), **layout.coords()},
        attrs={"model": "toy-idealized", "seed": 2},
    )
    pseudo.to_zarr(root / "pseudo_obs.zarr", mode="w", zarr_format=3, consolidated=False)

    # The forecast model: least squares on the training augmented state, noise = residual covariance.
    x = np.concatenate([z, y], axis=1)
    X0, X1 = x[:-1], x[1:]
    M = np.linalg.lstsq(X0, X1, rcond=None)[0].T
    resid = X1 - X0 @ M.T
    for name in ("forecast.pt", "autoencoder.pt"):
        (root / name).write_bytes(b"stand-in: the tests patch the loaders")
    return {
        "root": root,
        "ae": ae,
        "M": M,
        "noise_cov": np.cov(resid.T),
        "layout": layout,
        "ocean": ocean,
        "obs": obs,
        "clim": clim,
        "T_obs": T_obs,
    }


def _paths(world) -> dict:
    r = world["root"]
    return {
        "latent_store": r / "latent.zarr",
        "operational_store": r / "stores" / "TOY.zarr",
        "forecast_model": r / "forecast.pt",
        "autoencoder": r / "autoencoder.pt",
        "pseudo_obs": r / "pseudo_obs.zarr",
    }


def _da(**overrides) -> DASection:
    base = dict(
        ensemble_size=12,
        months=48,
        checkpoint_months=12,
        consistency_members=3,
        dtype="float64",
        localization={"enabled": False},
        init_warmup_months=6,
    )
    base.update(overrides)
    return DASection.model_validate(base)


def _run(world, monkeypatch, out: Path, *, forecaster=None, kind="assimilation", **kw):
    fm = forecaster or LinearForecaster(world["M"], world["noise_cov"])
    monkeypatch.setattr(da_run, "load_models", lambda f, a, d: (fm, world["ae"]))
    stage = assimilate if kind == "assimilation" else free_run
    kw.setdefault("da", _da())
    return stage(
        out,
        out.with_name(out.stem + "_statistics.json"),
        grid=GRID.__dict__,
        model_name="TOY",
        device="cpu",
        **_paths(world),
        **kw,
    )


# ------------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """One assimilation and one free run shared by the read-only tests below."""
    mp = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("runs")
    try:
        summary = _run(world, mp, out / "assimilation" / "TOY.zarr")
        free_summary = _run(world, mp, out / "free_run" / "TOY.zarr", kind="free_run")
    finally:
        mp.undo()
    return {"dir": out, "summary": summary, "free_summary": free_summary}


def test_assimilation_store_contents(runs, world):
    path = runs["dir"] / "assimilation" / "TOY.zarr"
    ds = xr.open_zarr(path, consolidated=False)
    n = N_LATENT + world["layout"].size
    assert ds["members"].shape == (48, 1, 12, n) and ds["members"].dtype == np.float32
    assert ds["ensemble_mean"].shape == (48, 1, n) and ds["ensemble_spread"].shape == (48, 1, n)
    assert ds["decoded_observables"].shape == (48, 1, 3, world["layout"].size)
    for name in (
        "members",
        "ensemble_mean",
        "ensemble_spread",
        "innovation",
        "innovation_ratio",
        "consistency_correlation",
    ):
        assert np.isfinite(ds[name].values).all(), name
    np.testing.assert_allclose(ds["ensemble_mean"].values, ds["members"].values.mean(2), atol=1e-5)
    assert ds.attrs["kind"] == "assimilation" and ds.attrs["n_latent"] == N_LATENT
    assert "taper" not in ds, "localization is off in this run"
    assert not sidecar_dir(path).exists(), "the resume sidecar is removed after success"
    stats = json.loads((runs["dir"] / "assimilation" / "TOY_statistics.json").read_text())
    assert len(stats["per_decade"]) == 1 and stats["months"] == 48
    # The linear autoencoder is exact on its manifold: full training consistency, re-encoding changes nothing.
    assert stats["autoencoder"]["training_consistency_correlation"] == pytest.approx(1.0, abs=1e-9)
    assert stats["autoencoder"]["reencode_relative_change"] < 1e-6


def test_the_filter_follows_the_pseudo_observations_and_stays_consistent(runs, world):
    """The analysis observables track the pseudo-observations far better than the free run, the latent block moves
    with them (decoded fields at the observation points agree with the analysis y), and the innovations match the
    predicted spread."""
    obs = world["obs"][:48]
    sd = world["obs"].std(0)
    a = xr.open_zarr(runs["dir"] / "assimilation" / "TOY.zarr", consolidated=False)
    f = xr.open_zarr(runs["dir"] / "free_run" / "TOY.zarr", consolidated=False)
    err_a = np.sqrt((((a["ensemble_mean"].values[:, 0, N_LATENT:] - obs) / sd) ** 2).mean())
    err_f = np.sqrt((((f["ensemble_mean"].values[:, 0, N_LATENT:] - obs) / sd) ** 2).mean())
    assert err_a < 0.4 * err_f, (err_a, err_f)
    overall = runs["summary"]["overall"]
    assert overall["consistency_correlation"][0] > 0.95
    assert 0.8 < overall["consistency_slope"][0] < 1.2
    assert 0.2 < overall["innovation_ratio"][0] < 3.0
    assert runs["summary"]["warnings"] == []
    assert runs["free_summary"]["kind"] == "free_run" and runs["free_summary"]["reencode"] is False


def test_the_free_run_records_no_analysis_settings(runs, world, monkeypatch, tmp_path):
    """The free run has no analysis: its store and statistics record no inflation, method, localization, re-encoding
    or adaptive noise (the DA section's defaults must not read as settings it used); the assimilation records them."""
    analysis_settings = {"inflation", "method", "localization", "reencode", "adaptive_noise"}
    free = xr.open_zarr(runs["dir"] / "free_run" / "TOY.zarr", consolidated=False)
    assert "inflation" not in free.variables
    recorded = json.loads(free.attrs["da_settings"])
    assert not analysis_settings & recorded.keys(), recorded
    assert recorded["ensemble_size"] == 12 and recorded["model_noise_scale"] == 1.0
    assert free.attrs["method"] == "none" and free.attrs["reencode"] == 0
    stats = json.loads((runs["dir"] / "free_run" / "TOY_statistics.json").read_text())
    assert stats["experiments"] == [{"model_noise_scale": 1.0}]
    assert stats["method"] is None and stats["localization"] is None and stats["reencode"] is False

    assim = xr.open_zarr(runs["dir"] / "assimilation" / "TOY.zarr", consolidated=False)
    assert assim["inflation"].values.tolist() == [1.09]
    assert analysis_settings <= json.loads(assim.attrs["da_settings"]).keys()
    assert runs["summary"]["experiments"] == [{"inflation": 1.09, "model_noise_scale": 1.0}]

    with pytest.raises(ConfigError, match="free run has no analysis"):
        _run(world, monkeypatch, tmp_path / "free.zarr", kind="free_run", inflation=[1.0, 1.2])


LOCALIZED = {"enabled": True, "obs_halfwidth_deg": 15.0}


def test_localized_filter_keeps_the_decoded_observables_consistent(world, monkeypatch, tmp_path):
    """The observation-space taper is projected onto the ensemble span, so z and y move by the same member weights
    and y stays the decoded z (exactly, in this linear world), even with a half-width narrow enough to cut most
    observable pairs: consistency as the unlocalized filter's, no drift warning, the observations followed."""
    plain = _run(world, monkeypatch, tmp_path / "plain.zarr")
    out = tmp_path / "loc.zarr"
    summary = _run(world, monkeypatch, out, da=_da(localization=LOCALIZED))
    ds = xr.open_zarr(out, consolidated=False)
    m = world["layout"].size
    assert ds["taper"].shape == (m, m)
    assert summary["localization"]["enabled"] and 0 < summary["localization"]["mean"] < 1
    consistency = summary["overall"]["consistency_correlation"][0]
    assert consistency > 0.99 and consistency > plain["overall"]["consistency_correlation"][0] - 0.01
    assert not any("drifting off the autoencoder's manifold" in w for w in summary["warnings"])
    obs, sd = world["obs"][:48], world["obs"].std(0)
    assert np.sqrt((((ds["ensemble_mean"].values[:, 0, N_LATENT:] - obs) / sd) ** 2).mean()) < 0.5


def test_reencoding_replaces_the_latent_block_only(world, monkeypatch, tmp_path):
    """z ← E(D(z)) each month; with an exact (orthonormal) autoencoder that is the identity, so the run equals the
    run without re-encoding, while a perturbing encoder changes z and never y."""
    plain = _run(world, monkeypatch, tmp_path / "plain.zarr", da=_da(months=12))
    _run(world, monkeypatch, tmp_path / "reenc.zarr", da=_da(months=12, reencode=True))
    a, b = (xr.open_zarr(tmp_path / n, consolidated=False) for n in ("plain.zarr", "reenc.zarr"))
    np.testing.assert_allclose(b["members"].values, a["members"].values, atol=1e-5)
    assert json.loads((tmp_path / "reenc_statistics.json").read_text())["reencode"] is True
    assert plain["reencode"] is False

    shrink = LinearAutoencoder(world["ae"].patterns.reshape(N_LATENT, 2, *GRID.shape).numpy(), world["ocean"])
    shrink.encode = lambda x: 0.5 * LinearAutoencoder.encode(shrink, x)  # E(D(z)) = z / 2
    monkeypatch.setattr(
        da_run, "load_models", lambda f, a_, d: (LinearForecaster(world["M"], world["noise_cov"]), shrink)
    )
    out = tmp_path / "shrink.zarr"
    assimilate(
        out,
        tmp_path / "shrink.json",
        grid=GRID.__dict__,
        da=_da(months=1, reencode=True),
        device="cpu",
        **_paths(world),
    )
    first = xr.open_zarr(out, consolidated=False)["members"].values[0, 0]
    ref = a["members"].values[0, 0]
    np.testing.assert_allclose(first[:, :N_LATENT], ref[:, :N_LATENT] / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first[:, N_LATENT:], ref[:, N_LATENT:], rtol=1e-6, atol=1e-6)


def test_resume_after_a_kill_is_bit_identical(world, monkeypatch, tmp_path):
    da = _da(months=40)
    ref = tmp_path / "ref.zarr"
    _run(world, monkeypatch, ref, da=da)
    out = tmp_path / "killed.zarr"
    warmup_calls = da.init_warmup_months
    crasher = CrashingForecaster(world["M"], world["noise_cov"], crash_at=warmup_calls + 30)  # killed in month 30
    with pytest.raises(KeyboardInterrupt):
        _run(world, monkeypatch, out, forecaster=crasher, da=da)
    assert not out.exists() and (sidecar_dir(out) / "checkpoint.pt").exists()
    resumed_fm = LinearForecaster(world["M"], world["noise_cov"])
    _run(world, monkeypatch, out, forecaster=resumed_fm, da=da)
    assert resumed_fm.calls == 40 - 24, "resumed from the checkpoint at month 24, no spin-up"
    a, b = (xr.open_zarr(p, consolidated=False) for p in (ref, out))
    for name in ("members", "innovation", "decoded_observables", "innovation_ratio"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_changed_settings_do_not_resume_a_foreign_checkpoint(world, monkeypatch, tmp_path):
    out = tmp_path / "x.zarr"
    crasher = CrashingForecaster(world["M"], world["noise_cov"], crash_at=6 + 20)
    with pytest.raises(KeyboardInterrupt):
        _run(world, monkeypatch, out, forecaster=crasher, da=_da(months=24))
    fm = LinearForecaster(world["M"], world["noise_cov"])
    _run(world, monkeypatch, out, forecaster=fm, da=_da(months=24, inflation=1.2))
    assert fm.calls == 6 + 24, "different inflation: started again from month 0"


@pytest.mark.parametrize("localized", [False, True])
def test_non_finite_forecast_stops_the_run_naming_the_month(world, monkeypatch, tmp_path, localized):
    fm = NaNForecaster(world["M"], world["noise_cov"], nan_at=6 + 8)  # the 8th forecast: month index 7
    da = _da(localization=LOCALIZED if localized else {"enabled": False})
    with pytest.raises(FilterDivergedError, match=r"month index 7 \(0001-08\).*forecast model") as err:
        _run(world, monkeypatch, tmp_path / "nan.zarr", forecaster=fm, da=da)
    assert ("localization is on" in str(err.value)) == localized
    assert not (tmp_path / "nan.zarr").exists()


def test_a_forecast_model_that_failed_its_gate_is_refused(world, monkeypatch, tmp_path):
    fm = LinearForecaster(world["M"], world["noise_cov"], gate_passed=False)
    with pytest.raises(GateFailedError, match=r"forecast\.pt: failed its quality gate.*allow_failed"):
        _run(world, monkeypatch, tmp_path / "gate.zarr", forecaster=fm)
    _run(world, monkeypatch, tmp_path / "gate.zarr", forecaster=fm, allow_failed_gate=True, da=_da(months=12))
    assert (tmp_path / "gate.zarr").exists()


def test_batched_sweep_over_inflation_and_noise(world, monkeypatch, tmp_path):
    out = tmp_path / "sweep.zarr"
    summary = _run(
        world,
        monkeypatch,
        out,
        da=_da(months=24, method="etkf", localization=LOCALIZED, consistency_members=0),
        inflation=[1.0, 1.2],
        model_noise_scale=[0.5, 1.0],
    )
    ds = xr.open_zarr(out, consolidated=False)
    assert ds.sizes["experiment"] == 4
    assert "decoded_observables" not in ds and "consistency_correlation" not in summary["overall"]
    np.testing.assert_array_equal(ds["inflation"].values, [1.0, 1.0, 1.2, 1.2])
    np.testing.assert_array_equal(ds["model_noise_scale"].values, [0.5, 1.0, 0.5, 1.0])
    assert len(summary["overall"]["innovation_ratio"]) == 4
    spread = ds["ensemble_spread"].values[-12:].mean((0, 2))
    assert spread[3] > spread[0], "more inflation and model noise keep more spread"


def test_layout_mismatch_names_both_files(world, monkeypatch, tmp_path):
    bad = xr.open_zarr(world["root"] / "pseudo_obs.zarr", consolidated=False).load()
    bad = bad.assign_coords(obs_lon_min=bad["obs_lon_min"] + 1.0)
    bad.to_zarr(tmp_path / "bad.zarr", mode="w", zarr_format=3, consolidated=False)
    monkeypatch.setattr(
        da_run, "load_models", lambda f, a, d: (LinearForecaster(world["M"], world["noise_cov"]), world["ae"])
    )
    paths = {**_paths(world), "pseudo_obs": tmp_path / "bad.zarr"}
    with pytest.raises(InputDataError, match=r"bad\.zarr, .*latent\.zarr: the observables .* differ"):
        assimilate(tmp_path / "o.zarr", tmp_path / "o.json", grid=GRID.__dict__, da=_da(), device="cpu", **paths)


def test_decode_writes_the_bridging_store(runs, world, tmp_path, monkeypatch):
    monkeypatch.setattr(da_decode, "load_autoencoder", lambda p, d: world["ae"])
    analysis_path = runs["dir"] / "assimilation" / "TOY.zarr"
    out = da_decode.decode_filter_store(
        tmp_path / "bridging_TOY.zarr",
        assimilation=analysis_path,
        autoencoder=world["root"] / "autoencoder.pt",
        operational_store=world["root"] / "stores" / "TOY.zarr",
        decode={"n_realizations": 4, "batch_size": 7, "time_chunk": 20},
        model_name="TOY",
        device="cpu",
    )
    ds = open_store(out)
    op = open_store(world["root"] / "stores" / "TOY.zarr")
    assert ds.attrs["source_kind"] == "bridging" and ds.attrs["source_id"] == "bridging_TOY"
    assert missing_attributes(ds) == [] and ds.attrs["config_hash"]  # coordinates of the decoded fields too
    assert ds["sst"].dims == ("member", "time", "lat", "lon") and ds.sizes["member"] == 4 and ds.sizes["time"] == 48
    land = ~world["ocean"]
    assert np.isnan(ds["sst"].values[..., land]).all() and np.isfinite(ds["sst"].values[..., ~land]).all()
    np.testing.assert_array_equal(ds["ocean_mask"].values, op["ocean_mask"].values)
    np.testing.assert_allclose(ds["thermocline_depth_climatology"].values, op["thermocline_depth_climatology"].values)
    assert float(ds["sst_anomaly_std"]) == pytest.approx(FIELD_STD["sst"])
    # Member 2, month 17: climatology of its calendar month + anomaly std × decoded standardised anomaly.
    filt = xr.open_zarr(analysis_path, consolidated=False)
    z = filt["members"].values[17, 0, 2, :N_LATENT]
    expected = world["ae"].decode(torch.as_tensor(z[None], dtype=torch.float64)).numpy()[0, 1] * 12.0
    _, months = year_month(ds["time"])
    expected = expected + world["clim"]["thermocline_depth"][months[17] - 1]
    np.testing.assert_allclose(
        ds["thermocline_depth"].values[2, 17], np.where(world["ocean"], expected, np.nan), rtol=1e-5
    )
    zm = filt["ensemble_mean"].values[5, 0, :N_LATENT]
    mean_expected = world["ae"].decode(torch.as_tensor(zm[None], dtype=torch.float64)).numpy()[0, 0] * 0.8
    mean_expected = mean_expected + world["clim"]["sst"][months[5] - 1]
    np.testing.assert_allclose(
        ds["sst_ensemble_mean"].values[5], np.where(world["ocean"], mean_expected, np.nan), rtol=1e-5
    )
    # The product the diagnostics will read agrees with the analysis observables at the observation points.
    anomalies = {
        f: (ds[f] - ds[f"{f}_climatology"].sel(month=xr.DataArray(months, dims="time"))).values for f in FIELDS
    }
    decoded_y = world["layout"].extract(anomalies, GRID)  # (member, time, obs)
    analysis_y = filt["members"].values[:, 0, :4, N_LATENT:].transpose(1, 0, 2)
    corr = np.corrcoef(decoded_y.ravel(), analysis_y.ravel())[0, 1]
    assert corr > 0.95


def test_decode_refuses_more_realizations_than_members(runs, world, tmp_path, monkeypatch):
    monkeypatch.setattr(da_decode, "load_autoencoder", lambda p, d: world["ae"])
    with pytest.raises(ConfigError, match="n_realizations = 13 exceeds the 12 members"):
        da_decode.decode_filter_store(
            tmp_path / "x.zarr",
            assimilation=runs["dir"] / "free_run" / "TOY.zarr",
            autoencoder=world["root"] / "autoencoder.pt",
            operational_store=world["root"] / "stores" / "TOY.zarr",
            decode={"n_realizations": 13},
            model_name="TOY",
            device="cpu",
        )


def test_observation_operator_equals_observation_layout_extract(world):
    rng = np.random.default_rng(3)
    fields = rng.standard_normal((5, 2, *GRID.shape))
    fields[:, :, ~world["ocean"]] = np.nan
    op = world["layout"].operator(GRID, world["ocean"], FIELDS)
    ours = np.nan_to_num(fields).reshape(5, -1) @ op.T
    ref = world["layout"].extract({f: fields[:, c] for c, f in enumerate(FIELDS)}, GRID)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_model_noise_has_the_configured_covariance():
    """One free-run month of a persistence model: member changes are the noise, with covariance scale × Q."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 3))
    Q = X.T @ X / 5  # rank 3 of 5? no: 3×3 full rank
    Q5 = np.zeros((5, 5))
    Q5[:3, :3] = Q  # singular: only the first three entries are noisy
    L = noise_factor(Q5)
    np.testing.assert_allclose((L @ L.T).numpy(), Q5, atol=1e-12)

    class Persistence:
        def step(self, x, state):
            return x, state

        def modulate_noise(self, noise, origin):
            return noise

    B, N = 2, 20000
    setup = CycleSetup(
        forecaster=Persistence(),
        observations=torch.zeros(1, B, 2, dtype=torch.float64),
        obs_var=torch.ones(B, 2, dtype=torch.float64),
        noise_factor=L,
        noise_std_scale=torch.tensor([1.0, 0.25], dtype=torch.float64).sqrt(),
        inflation=torch.ones(B, dtype=torch.float64),
        n_latent=3,
        assimilate=False,
    )
    state = FilterState(0, torch.zeros(B, N, 5, dtype=torch.float64), None, torch.Generator().manual_seed(0))
    state = run_cycles(setup, state, stop_month=1, block_months=12)
    for b, scale in enumerate((1.0, 0.25)):
        cov = np.cov(state.members[b].numpy().T)
        np.testing.assert_allclose(cov, scale * Q5, atol=0.05 * scale * np.abs(Q).max())
    with pytest.raises(InputDataError, match="not positive semi-definite"):
        noise_factor(-np.eye(3))


def test_decode_runs_the_decoder_once_per_time_chunk(runs, world, tmp_path, monkeypatch):
    """Realizations, ensemble mean and land mask share one decode per chunk (no second pass to build the store)."""
    calls = []
    decode = type(world["ae"]).decode
    monkeypatch.setattr(type(world["ae"]), "decode", lambda self, z: calls.append(z.shape[0]) or decode(self, z))
    monkeypatch.setattr(da_decode, "load_autoencoder", lambda p, d: world["ae"])
    da_decode.decode_filter_store(
        tmp_path / "b.zarr",
        assimilation=runs["dir"] / "assimilation" / "TOY.zarr",
        autoencoder=world["root"] / "autoencoder.pt",
        operational_store=world["root"] / "stores" / "TOY.zarr",
        decode={"n_realizations": 4, "batch_size": 1000, "time_chunk": 20},
        model_name="TOY",
        device="cpu",
    )
    # Chunks of 20, 20 and 8 months: one call for the realizations and one for the mean per chunk.
    assert sorted(calls) == sorted([80, 20, 80, 20, 32, 8])


def test_consistency_warnings_tell_the_filter_from_the_autoencoder():
    row = {"first_month": 0, "months": 120, "innovation_ratio": [0.5, 3.0], "consistency_correlation": [0.55, 0.2]}
    warnings = health_warnings([row], ratio_max=2.0, consistency_min=0.9, assimilating=True, baseline=0.6)
    assert len(warnings) == 3
    assert "experiment 1: innovation ratio" in warnings[0] and "collapsing" in warnings[0]
    assert "experiment 0" in warnings[1] and "the autoencoder itself reaches only 0.600" in warnings[1]
    assert "experiment 1" in warnings[2] and "drifting off" in warnings[2]
    # A free run has no analysis whose spread could collapse.
    assert len(health_warnings([row], ratio_max=2.0, consistency_min=0.9, assimilating=False, baseline=0.6)) == 2


def test_progress_lines_show_month_over_total_and_eta(world, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bridging.da.run")
    _run(world, monkeypatch, tmp_path / "p.zarr", da=_da(months=24))
    lines = [r.getMessage() for r in caplog.records if r.name == "bridging.da.run" and "s/month" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["month 12/24 (50%)", "month 24/24 (100%)"], lines
    assert all(re.search(r"elapsed \d+s, ETA \d+s: innovation ratio", line) for line in lines), lines
    assert lines[-1].split("ETA ")[1].startswith("0s")


def test_assimilating_a_subset_equals_withheld_observables_with_huge_error():
    """H selecting some observables (moved to the end of the state and back) is the analysis in which the others
    have an error variance so large that they carry no weight (deterministic ETKF, float64)."""
    from bridging.da.cycle import _assimilate, _RunConstants

    rng = np.random.default_rng(7)
    n_latent, m, B, N = 5, 6, 2, 30
    forecast = torch.as_tensor(rng.standard_normal((B, N, n_latent + m)))
    y = torch.as_tensor(rng.standard_normal((B, m)))
    obs_var = torch.full((B, m), 0.3, dtype=torch.float64)
    picked = torch.tensor([0, 2, 3])

    def setup(var, assimilated):
        return CycleSetup(
            forecaster=None,
            observations=y[None],
            obs_var=var,
            noise_factor=torch.eye(n_latent + m, dtype=torch.float64),
            noise_std_scale=torch.ones(B, dtype=torch.float64),
            inflation=torch.full((B,), 1.05, dtype=torch.float64),
            n_latent=n_latent,
            method="etkf",
            assimilated=assimilated,
        )

    subset = setup(obs_var, picked)
    ours = _assimilate(subset, forecast, y, None, _RunConstants.of(subset, forecast))
    huge = obs_var.clone()
    huge[:, [1, 4, 5]] = 1e12
    reference_setup = setup(huge, None)
    reference = _assimilate(reference_setup, forecast, y, None, _RunConstants.of(reference_setup, forecast))
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-8)
    assert not torch.allclose(ours[..., n_latent + 1], forecast[..., n_latent + 1]), "withheld ones move by covariance"


def test_sst_only_assimilation_reports_the_withheld_thermocline_innovations(world, monkeypatch, tmp_path):
    out = tmp_path / "sst_only.zarr"
    summary = _run(world, monkeypatch, out, da=_da(months=24, observations={"variables": ["sst"]}))
    ds = xr.open_zarr(out, consolidated=False)
    layout = world["layout"]
    np.testing.assert_array_equal(ds["assimilated"].values, [v == "sst" for v in layout.variable])
    ratio = summary["overall"]["withheld_innovation_ratio"][0]
    assert np.isfinite(ratio) and ratio > 0
    assert "withheld_innovation_ratio" in ds

    thinned = _run(world, monkeypatch, tmp_path / "thin.zarr", da=_da(months=24, observations={"node_stride": 2}))
    flags = xr.open_zarr(tmp_path / "thin.zarr", consolidated=False)["assimilated"].values
    assert flags.sum() == sum((len(layout.indices(v)) + 1) // 2 for v in ("sst", "thermocline_depth"))
    assert "withheld_innovation_ratio" in thinned["overall"]


def test_added_observation_noise_is_one_draw_scaled_per_experiment(world, monkeypatch, tmp_path):
    out = tmp_path / "noisy.zarr"
    records = [{"obs_added_noise": 0.0}, {"obs_added_noise": 1.0}]
    summary = _run(world, monkeypatch, out, da=_da(months=24), experiments=records)
    ds = xr.open_zarr(out, consolidated=False)
    np.testing.assert_array_equal(ds["obs_added_noise"].values, [0.0, 1.0])
    assert [r["obs_added_noise"] for r in summary["experiments"]] == [0.0, 1.0]
    predicted = ds["predicted_variance"].values.mean(0)
    assert predicted[1] > predicted[0], "the filter is told: R grows by (1 + fraction)"
    # the consistency check's budget (3 members) is shared by the 2 experiments: ceil(3 / 2) each
    assert ds["decoded_observables"].sizes["check_member"] == 2
    assert np.isfinite(ds["consistency_correlation"].values).all()

    from bridging.da.experiments import Experiments

    exps = Experiments.from_records(_da(), records * 2, base_error_fraction=None, assimilating=True)
    base = np.full(4, 0.5)
    obs = exps.observations(np.zeros((5000, 4)), base, seed=3)
    np.testing.assert_array_equal(obs[:, 0], 0.0)  # experiment 0 adds none
    np.testing.assert_array_equal(obs[:, 1], obs[:, 3])  # one draw for every experiment
    np.testing.assert_allclose(obs[:, 1].var(0), 0.5, rtol=0.1)
    np.testing.assert_allclose(exps.obs_error_variance(base)[:, 0], [0.5, 1.0, 0.5, 1.0])


# ------------------------------------------------------------------------------------------------ the model hierarchy


def test_a_derived_row_copying_an_observable_is_the_same_analysis_as_that_observable():
    """The hierarchy's derived rows are columns appended to the state: a derived row equal to y_j, assimilated in place
    of y_j, gives the same analysis to rounding (stochastic EnKF, same perturbation draws)."""
    from bridging.da.cycle import _assimilate, _RunConstants

    rng = np.random.default_rng(11)
    n_latent, m, B, N, j = 5, 6, 2, 30, 4
    forecast = torch.as_tensor(rng.standard_normal((B, N, n_latent + m)))
    y_state = torch.as_tensor(rng.standard_normal((B, m)))
    copy = torch.zeros(1, m, dtype=torch.float64)
    copy[0, j] = 1.0

    def analysed(derived, y, assimilated):
        setup = CycleSetup(
            forecaster=None,
            observations=y[None],
            obs_var=torch.full(y.shape, 0.3, dtype=torch.float64),
            noise_factor=torch.eye(n_latent + m, dtype=torch.float64),
            noise_std_scale=torch.ones(B, dtype=torch.float64),
            inflation=torch.full((B,), 1.05, dtype=torch.float64),
            n_latent=n_latent,
            assimilated=torch.tensor(assimilated),
            derived=derived,
        )
        return _assimilate(setup, forecast, y, torch.Generator().manual_seed(5), _RunConstants.of(setup, forecast))

    direct = analysed(None, y_state, [1, j])
    extended = torch.cat([y_state, y_state[:, [j]]], dim=-1)
    through_derived = analysed(copy, extended, [1, m])
    assert through_derived.shape == forecast.shape
    np.testing.assert_allclose(through_derived.numpy(), direct.numpy(), atol=1e-10)


def _box_store(world, path: Path, boxes: ObservationLayout, *, model: str, seed: int) -> None:
    """A second idealized model's pseudo-observations: box means of an independent trajectory."""
    obs = boxes.extract(_physical(world["ae"], _latent_series(world["T_obs"], seed=seed, amplitude=1.3)), GRID)
    xr.Dataset(
        {"observations": (("time", "obs"), obs.astype(np.float32)), "obs_error_variance": ("obs", 0.04 * obs.var(0))},
        coords={"time": monthly_time(1, 1, world["T_obs"]), **boxes.coords()},
        attrs={"model": model, "seed": seed},
    ).to_zarr(path, mode="w", zarr_format=3, consolidated=False)


def test_hierarchy_assimilates_another_models_boxes_through_the_state(world, monkeypatch, tmp_path):
    boxes = ObservationLayout(("sst", "thermocline_depth"), (-3.0, -3.0), (3.0, 3.0), (136.0, 130.0), (150.0, 160.0))
    primary = tmp_path / "cf23.zarr"
    xr.open_zarr(world["root"] / "pseudo_obs.zarr", consolidated=False).assign_attrs(model="cf23").to_zarr(
        primary, mode="w", zarr_format=3, consolidated=False
    )
    _box_store(world, tmp_path / "cfy22.zarr", boxes, model="cfy22", seed=3)
    run = {"pseudo_obs": primary, "other_pseudo_obs": [tmp_path / "cfy22.zarr"]}
    paths = {**_paths(world), **run}

    def stage(out, sources):
        monkeypatch.setattr(da_run, "load_models", lambda f, a, d: (LinearForecaster(world["M"], world["noise_cov"]), world["ae"]))  # fmt: skip
        return assimilate(out, out.with_name(out.stem + ".json"), grid=GRID.__dict__, model_name="TOY", device="cpu", da=_da(months=48, observations={"sources": sources}), **paths)  # fmt: skip

    both = stage(tmp_path / "both.zarr", ["cf23", "cfy22"])
    ds = xr.open_zarr(tmp_path / "both.zarr", consolidated=False)
    m = world["layout"].size
    assert ds.sizes["obs"] == m + 2 and ds["members"].shape[-1] == N_LATENT + m, "derived rows are not state entries"
    assert ds["obs_model"].attrs["flag_meanings"] == "cf23 cfy22"
    np.testing.assert_array_equal(ds["obs_model"].values, [0] * m + [1, 1])
    rows = both["hierarchy"]["derived_rows"]
    assert [r["variable"] for r in rows] == ["sst", "thermocline_depth"]
    assert all(0.5 < r["beta"] < 2 and r["r2"] > 0.5 for r in rows), rows
    assert set(both["hierarchy"]["per_model"]) == {"cf23", "cfy22"}
    assert np.isfinite(both["overall"]["consistency_correlation"]).all()

    # CFY22 alone: the state's own observables are withheld and report their innovations against CF23's record.
    alone = stage(tmp_path / "alone.zarr", ["cfy22"])
    flags = xr.open_zarr(tmp_path / "alone.zarr", consolidated=False)["assimilated"].values
    np.testing.assert_array_equal(flags, [0] * m + [1, 1])
    assert "withheld_innovation_ratio" in alone["hierarchy"]["per_model"]["cf23"]

    with pytest.raises(ConfigError, match="no pseudo-observations of it"):
        stage(tmp_path / "missing.zarr", ["cf23", "xro"])


def test_a_box_that_holds_none_of_the_states_observables_is_refused():
    from bridging.da.sources import derived_rows

    cells = _layout()
    boxes = ObservationLayout(("sst",), (-3.0,), (3.0,), (150.5,), (151.5,))  # between the observed cells
    with pytest.raises(ConfigError, match="contains none of the state's observables"):
        derived_rows(cells, boxes)
    np.testing.assert_allclose(derived_rows(cells, _layout().select([0, 1]))[:, :2], np.eye(2))


def test_sources_pick_each_models_rows_in_its_region():
    from bridging.da.sources import assimilated_rows

    lons = [150.0, 190.0, 230.0, 270.0, 150.0, 190.0, 230.0, 270.0, 185.0, 240.0, 150.0]
    variables = ["sst"] * 4 + ["thermocline_depth"] * 4 + ["sst", "sst", "thermocline_depth"]
    layout = ObservationLayout(tuple(variables), (0.0,) * 11, (0.0,) * 11, tuple(lons), tuple(lons))
    model = ("cf23",) * 8 + ("cfy22",) * 3

    def rows(sources, variables=("sst", "thermocline_depth"), stride=1):
        picked = assimilated_rows(layout, model, sources, primary="cf23", variables=variables, node_stride=stride)
        return None if picked is None else picked.tolist()

    assert rows([]) == list(range(8)), "no sources: idealized.model alone, the others' rows withheld"
    assert rows(["cf23", "cfy22"]) is None
    assert rows(["cf23_ep", "cfy22_cp"]) == [2, 3, 6, 7, 8], "EP: 210–280 °E; CP: 160–210 °E"
    assert rows(["cfy22"], variables=("sst",)) == [8, 9]
    assert rows(["cf23"], stride=2) == [0, 2, 4, 6], "the stride thins idealized.model's nodes, west to east"
    with pytest.raises(ConfigError, match="no observable of source cfy22_wp"):
        rows(["cf23", "cfy22_wp"], variables=("sst",))


def test_beta_is_the_box_mean_over_the_node_mean_for_a_separable_field():
    """A field a(t)·f(lat) observed on the equator and as a box mean: β = box mean of f / f(0), R² = 1."""
    from bridging.da.sources import calibrate, derived_rows

    f_lat = np.cos(np.deg2rad(GRID.lat) * 20)  # 1 on the equator, smaller off it
    a = np.random.default_rng(3).standard_normal(120)
    field = a[:, None, None] * f_lat[None, :, None] * np.ones(GRID.shape[1])[None, None, :]
    anomalies = {"sst": field, "thermocline_depth": 2 * field}
    cells = _layout()
    boxes = ObservationLayout(("sst",), (-3.0,), (3.0,), (130.0,), (160.0,))
    rows = derived_rows(cells, boxes)
    (fit,) = calibrate(rows, cells, boxes, anomalies, GRID)
    weights = np.cos(np.deg2rad(GRID.lat))
    expected = float((f_lat * weights).sum() / weights.sum())  # the cos-weighted box mean of f over f(0) = 1
    assert fit["beta"] == pytest.approx(expected, rel=1e-10) and fit["r2"] == pytest.approx(1.0)


def test_a_hierarchy_store_with_nan_is_refused_naming_it(world, monkeypatch, tmp_path):
    boxes = ObservationLayout(("sst",), (-3.0,), (3.0,), (136.0,), (150.0,))
    primary, other = tmp_path / "cf23.zarr", tmp_path / "cfy22.zarr"
    xr.open_zarr(world["root"] / "pseudo_obs.zarr", consolidated=False).assign_attrs(model="cf23").to_zarr(
        primary, mode="w", zarr_format=3, consolidated=False
    )
    _box_store(world, other, boxes, model="cfy22", seed=3)
    ds = xr.open_zarr(other, consolidated=False).load()
    ds["observations"][5, 0] = np.nan
    ds.to_zarr(other, mode="w", zarr_format=3, consolidated=False)
    out = tmp_path / "bad.zarr"
    monkeypatch.setattr(da_run, "load_models", lambda f, a, d: (LinearForecaster(world["M"], world["noise_cov"]), world["ae"]))  # fmt: skip
    paths = {**_paths(world), "pseudo_obs": primary, "other_pseudo_obs": [other]}
    with pytest.raises(InputDataError, match=r"cfy22\.zarr.*NaN/Inf \(first at time index 5\)"):
        assimilate(out, tmp_path / "bad.json", grid=GRID.__dict__, model_name="TOY", device="cpu", da=_da(observations={"sources": ["cf23", "cfy22"]}), **paths)  # fmt: skip
    assert not out.exists() and not (tmp_path / "bad.json").exists()
