"""The physically-augmented autoencoder: network, masked and correlation losses, data loading, training runs.

``write_tiny_sources`` (also used by test_encode.py and test_forecast.py) writes a tiny operational store, a
reanalysis store and a pseudo-observation store with the project's own store functions: ENSO-like fields from a
damped stochastic oscillator on an odd-sized grid, with land (NaN) in the west and the east.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from bridging import stores
from bridging.atomic import write_zarr_atomic
from bridging.errors import ConfigError, InputDataError
from bridging.grid import TargetGrid
from bridging.models import autoencoder as ae_mod
from bridging.models.autoencoder import (
    ConvAutoencoder,
    correlation_loss,
    designated_correlations,
    latent_observable_statistics,
    load_autoencoder,
    load_field_record,
    masked_mse,
    read_observation_layout,
    train_autoencoder,
)
from bridging.observables import ObservationLayout
from bridging.resume import ResumeCheckpoint, resume_path_for
from bridging.timeaxis import monthly_time, year_month

GRID = TargetGrid(-10.0, 10.0, 140.0, 280.0, 2.5)  # 9 × 57 cells: odd sizes on purpose
TINY_AE = {
    "latent_dim": 12,
    "channels": [4, 8],
    "epochs": 3,
    "batch_size": 16,
    "encode_batch_size": 64,
    "learning_rate": 3e-3,
    "patience": 5,
    "seed": 0,
}
NO_CURRICULUM = {"p_start": 0.0, "p_max": 0.6, "ramp_end_epoch": None, "apply_to_autoencoder": False}
COMPUTE = {"device": "cpu", "torch_threads": 1, "deterministic": True}


def _gauss(x, centre, width):
    return np.exp(-(((x - centre) / width) ** 2))


def _oscillator(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A damped stochastic oscillator (period 4 years): an ENSO-like index T and its recharge partner h."""
    angle, radius = 2 * np.pi / 48, 0.96
    rot = radius * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    state = np.zeros((n + 60, 2))
    for i in range(1, n + 60):
        state[i] = rot @ state[i - 1] + 0.3 * rng.standard_normal(2)
    return state[60:, 0], state[60:, 1]


def tiny_source(grid: TargetGrid, first_year: int, years: int, *, seed: int, shift: float, kind: str) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    lat, lon = grid.lat[:, None], grid.lon[None, :]
    n = 12 * years
    t, h = _oscillator(n, rng)
    red = np.zeros(n)
    for i in range(1, n):
        red[i] = 0.7 * red[i - 1] + rng.standard_normal()
    ep = _gauss(lat, 0, 6) * _gauss(lon, 240 - shift, 30)
    cp = _gauss(lat, 0, 5) * _gauss(lon, 190 - shift, 20)
    off = _gauss(lat, 7, 3) * _gauss(lon, 200, 25)
    sst = 0.8 * t[:, None, None] * ep + 0.4 * h[:, None, None] * cp + 0.3 * red[:, None, None] * off
    thermo = 20 * t[:, None, None] * _gauss(lat, 0, 4) * np.tanh((lon - 200 + shift) / 30) + 8 * h[
        :, None, None
    ] * _gauss(lat, 0, 8)
    sst = sst + 0.05 * rng.standard_normal(sst.shape)
    thermo = thermo + 1.0 * rng.standard_normal(thermo.shape)
    time = monthly_time(first_year, 1, n)
    _, months = year_month(time)
    season = np.cos(2 * np.pi * (months[:, None, None] - 3) / 12)
    sst_clim = 28.0 - 3.0 * (lon - 140) / 140 + season * (lon - 140) / 140
    thermo_clim = 160.0 - 100.0 * (lon - 140) / 140 + 5 * season
    land = ((lon < 146) & (lat > 2)) | ((lon > 272) & (lat > 4))
    fields = {
        name: xr.DataArray(
            np.where(land, np.nan, clim + anom).astype(np.float32),
            dims=("time", "lat", "lon"),
            coords={"time": time, **grid.coords()},
        )
        for name, clim, anom in (("sst", sst_clim, sst), ("thermocline_depth", thermo_clim, thermo))
    }
    return stores.build_store(fields, source_id=f"TINY-{kind.upper()}", source_kind=kind)


def tiny_layout(grid: TargetGrid = GRID) -> ObservationLayout:
    lons = [160.0, 200.0, 240.0, 270.0]
    return ObservationLayout.points(grid, ["sst"] * 4 + ["thermocline_depth"] * 4, [0.0] * 8, lons * 2)


def write_tiny_sources(
    root: Path, *, grid: TargetGrid = GRID, operational_years: int = 8, reanalysis_years: int = 5, seed: int = 0
) -> dict[str, Path]:
    """Operational + reanalysis stores and a pseudo-observation store under root (the operational pattern shifted west)."""
    root = Path(root)
    paths = {
        "operational": root / "stores" / "TINY-OP.zarr",
        "reanalysis": root / "stores" / "TINY-REAN.zarr",
        "pseudo_obs": root / "pseudo_obs" / "tiny.zarr",
    }
    stores.write_store(
        tiny_source(grid, 1990, operational_years, seed=seed, shift=15.0, kind="operational"), paths["operational"]
    )
    rean = tiny_source(grid, 1981, reanalysis_years, seed=seed + 100, shift=0.0, kind="reanalysis")
    stores.write_store(rean, paths["reanalysis"])
    layout = tiny_layout(grid)
    y = layout.extract({f: stores.field_anomalies(rean, f).values for f in stores.FIELDS}, grid)
    ds = xr.Dataset(
        {"observations": (("time", "obs"), y.astype(np.float32))}, coords={"time": rean["time"], **layout.coords()}
    )
    write_zarr_atomic(ds, paths["pseudo_obs"])
    return paths


def run_training(
    paths: dict, out: Path, *, autoencoder: dict | None = None, curriculum: dict | None = None, grid: TargetGrid = GRID
) -> dict:
    return train_autoencoder(
        paths["operational"],
        paths["reanalysis"],
        paths["pseudo_obs"],
        out / "autoencoder.pt",
        out / "autoencoder_metrics.json",
        out / "autoencoder_curves.png",
        autoencoder={**TINY_AE, **(autoencoder or {})},
        curriculum={**NO_CURRICULUM, **(curriculum or {})},
        compute=COMPUTE,
        grid=grid.__dict__,
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_sources(tmp_path_factory.mktemp("tiny_sources"))


@pytest.fixture(scope="module")
def trained(sources, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ae")
    return out, run_training(sources, out)


# ---------------------------------------------------------------------------------------------- network and losses
@pytest.mark.parametrize("shape, channels", [((41, 161), [4, 8, 16, 32]), ((9, 57), [4, 8]), ((8, 16), [4, 8, 16])])
def test_network_pads_and_crops_odd_grids(shape, channels):
    net = ConvAutoencoder(shape, latent_dim=7, channels=channels)
    recon, z = net(torch.randn(3, 2, *shape))
    assert recon.shape == (3, 2, *shape)
    assert z.shape == (3, 7)


def test_land_values_change_nothing():
    torch.manual_seed(0)
    ocean = np.ones((9, 57), bool)
    ocean[:4, :5] = False
    ocean[6:, -3:] = False
    net = ConvAutoencoder((9, 57), 6, [4, 8], ocean_mask=ocean)
    x = torch.randn(5, 2, 9, 57)
    altered = x.clone()
    altered[:, 0][:, ~torch.as_tensor(ocean)] = 1e6
    altered[:, 1][:, ~torch.as_tensor(ocean)] = float("nan")
    recon_a, z_a = net(x)
    recon_b, z_b = net(altered)
    torch.testing.assert_close(z_a, z_b, rtol=0, atol=0)
    weight = torch.as_tensor(ocean, dtype=torch.float32)[None, None]
    target_b = torch.nan_to_num(altered)  # what a loader would never pass, but the loss must still ignore it
    assert masked_mse(recon_a, x, weight) == masked_mse(recon_b, torch.where(weight.bool(), target_b, x), weight)
    decoded = net.decode(z_a)
    assert (
        torch.isnan(decoded[:, :, ~torch.as_tensor(ocean)]).all()
        and torch.isfinite(decoded[:, :, torch.as_tensor(ocean)]).all()
    )


def test_masked_mse_counts_only_ocean_cells():
    target = torch.zeros(2, 2, 3, 4)
    recon = target.clone()
    mask = torch.ones(1, 1, 3, 4)
    mask[..., 0, 0] = 0
    recon[..., 0, 0] = 100.0  # error on land only
    assert masked_mse(recon, target, mask) == 0
    recon[..., 1, 1] = 2.0  # error 4 on one ocean cell of each of 2 fields × 2 samples = 16 over 44 ocean values
    assert masked_mse(recon, target, mask).item() == pytest.approx(16 / 44)


def test_correlation_loss_is_minus_mean_designated_correlation():
    y = torch.randn(64, 3)
    z = torch.cat([2 * y + 1, torch.randn(64, 4)], 1)
    assert correlation_loss(z, y).item() == pytest.approx(-1.0, abs=1e-5)
    assert correlation_loss(torch.cat([-y, z[:, 3:]], 1), y).item() == pytest.approx(1.0, abs=1e-5)
    mixed = torch.cat([y[:, :1], -y[:, 1:2], torch.zeros(64, 1), z[:, 3:]], 1).requires_grad_(True)
    loss = correlation_loss(mixed, y)
    assert loss.item() == pytest.approx(0.0, abs=1e-5)  # (+1 − 1 + 0) / 3, the constant latent counts as 0
    loss.backward()
    assert torch.isfinite(mixed.grad).all()
    np.testing.assert_allclose(designated_correlations(z, y).numpy(), 1.0, atol=1e-5)


def test_latent_observable_statistics():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((500, 3)) * [1.0, 10.0, 0.1]
    z = np.concatenate([y, rng.standard_normal((500, 5))], 1)
    stats = latent_observable_statistics(z, y)
    assert stats["corr_loss"] == pytest.approx(-1.0)
    assert stats["mean_max_abs_corr"] == pytest.approx(1.0)
    # cov(z, y/σ_y): the designated block is diag(σ_y) (plus sampling noise off the diagonal)
    assert stats["cross_cov_norm"] == pytest.approx(np.sqrt(1 + 100 + 0.01), rel=0.05)
    noise = latent_observable_statistics(rng.standard_normal((500, 8)), y)
    assert abs(noise["corr_loss"]) < 0.15 and noise["mean_max_abs_corr"] < 0.2


# ---------------------------------------------------------------------------------------------- data
def test_field_record_standardises_masks_and_extracts(sources):
    layout = read_observation_layout(sources["pseudo_obs"])
    rec = load_field_record(sources["operational"], grid=GRID, layout=layout)
    ds = stores.open_store(sources["operational"])
    assert rec.standardised.shape == (96, 2, *GRID.shape) and rec.standardised.dtype == np.float32
    assert np.all(rec.standardised[:, :, ~rec.ocean] == 0)
    sst_anom = stores.field_anomalies(ds, "sst").values
    np.testing.assert_allclose(
        rec.standardised[:, 0][:, rec.ocean], (sst_anom / float(ds["sst_anomaly_std"]))[:, rec.ocean], rtol=1e-5
    )
    expected_y = layout.extract({f: stores.field_anomalies(ds, f).values for f in stores.FIELDS}, GRID)
    np.testing.assert_allclose(rec.observables, expected_y, rtol=1e-5)
    rean = load_field_record(sources["reanalysis"], grid=GRID, layout=layout, field_std=rec.field_std)
    assert rean.field_std == rec.field_std  # one scale for every source: the operational model's


def test_store_on_another_grid_is_rejected_naming_the_file(sources):
    layout = read_observation_layout(sources["pseudo_obs"])
    with pytest.raises(InputDataError, match="TINY-OP.zarr.*target grid"):
        load_field_record(sources["operational"], grid=TargetGrid(-10.0, 10.0, 140.0, 282.5, 2.5), layout=layout)


def test_missing_pseudo_obs_is_an_input_error(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        read_observation_layout(tmp_path / "nope.zarr")


# ---------------------------------------------------------------------------------------------- training runs
def test_training_reduces_losses_and_writes_outputs(trained):
    out, record = trained
    h = record["history"]
    assert len(h) == TINY_AE["epochs"]
    assert h[-1]["train"]["recon_loss"] < h[0]["train"]["recon_loss"]
    assert h[-1]["heldout_operational"]["recon_loss"] < h[0]["heldout_operational"]["recon_loss"]
    for split in ("train", "heldout_operational", "heldout_reanalysis"):
        assert {"recon_loss", "corr_loss", "cross_cov_norm"} <= set(h[-1][split])
    saved = json.loads((out / "autoencoder_metrics.json").read_text())
    assert saved["loss"]["definition"].startswith("L = L_recon + lambda * L_corr")
    assert {"operational_heldout", "reanalysis_heldout", "reanalysis_all"} <= set(saved["final"])
    assert saved["final"]["operational_heldout"]["recon_rmse_physical"]["sst"]["units"] == "degC"
    assert (out / "autoencoder_curves.png").stat().st_size > 10_000
    assert not resume_path_for(out / "autoencoder.pt").exists()  # the resume checkpoint goes on success


def test_checkpoint_loads_with_weights_only_and_decodes(trained, sources):
    out, record = trained
    ae = load_autoencoder(out / "autoencoder.pt")
    payload = torch.load(out / "autoencoder.pt", weights_only=True)
    assert payload["kind"] == "autoencoder"
    assert ae.latent_dim == 12 and ae.field_names == ("sst", "thermocline_depth")
    assert ae.layout == read_observation_layout(sources["pseudo_obs"])
    assert ae.grid == GRID
    x = torch.as_tensor(load_field_record(sources["operational"], grid=GRID, layout=ae.layout).standardised[:5])
    z = ae.encode(x)
    decoded = ae.decode(z)
    assert z.shape == (5, 12) and decoded.shape == x.shape
    ocean = ae.ocean_mask
    assert torch.isnan(decoded[:, :, ~ocean]).all() and torch.isfinite(decoded[:, :, ocean]).all()


def test_same_seed_same_model(sources, trained, tmp_path):
    first_out, first = trained
    second = run_training(sources, tmp_path)
    a = torch.load(first_out / "autoencoder.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "autoencoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(first["history"]) == strip(second["history"])


def test_resume_after_interruption_gives_the_uninterrupted_result(sources, trained, tmp_path, monkeypatch):
    reference_out, reference = trained
    original_save = ResumeCheckpoint.save

    def save_then_interrupt(self, state):
        original_save(self, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # the job is killed right after the epoch-2 checkpoint

    monkeypatch.setattr(ResumeCheckpoint, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_training(sources, tmp_path)
    assert not (tmp_path / "autoencoder.pt").exists()  # no partial output
    assert resume_path_for(tmp_path / "autoencoder.pt").exists()
    monkeypatch.setattr(ResumeCheckpoint, "save", original_save)
    resumed = run_training(sources, tmp_path)
    a = torch.load(reference_out / "autoencoder.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "autoencoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["heldout_operational"] for r in resumed["history"]] == [
        r["heldout_operational"] for r in reference["history"]
    ]


def test_resume_checkpoint_of_other_settings_is_ignored(sources, tmp_path, monkeypatch):
    original_save = ResumeCheckpoint.save

    def save_then_interrupt(self, state):
        original_save(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(ResumeCheckpoint, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_training(sources, tmp_path, autoencoder={"epochs": 2})
    monkeypatch.setattr(ResumeCheckpoint, "save", original_save)
    record = run_training(sources, tmp_path, autoencoder={"epochs": 2, "lambda_corr": 0.0})
    assert len(record["history"]) == 2  # started afresh, not from the λ = 0.1 run's epoch 1


def test_curriculum_can_drive_the_autoencoder(sources, tmp_path):
    record = run_training(
        sources,
        tmp_path,
        autoencoder={"epochs": 4, "patience": 10},
        curriculum={"apply_to_autoencoder": True, "p_start": 0.0, "p_max": 0.6, "ramp_end_epoch": 2},
    )
    p = [r["p_reanalysis"] for r in record["history"]]
    share = [r["reanalysis_share"] for r in record["history"]]
    assert p == pytest.approx([0.0, 0.3, 0.6, 0.6])
    assert share[0] == 0.0 and share[-1] > 0.3


def test_latent_dim_below_number_of_observables_is_a_config_error(sources, tmp_path):
    with pytest.raises(ConfigError, match="at least the number of observables"):
        run_training(sources, tmp_path, autoencoder={"latent_dim": 4})


def test_unreadable_or_wrong_checkpoints(tmp_path, trained):
    bad = tmp_path / "autoencoder.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputDataError, match="cannot read"):
        load_autoencoder(bad)
    payload = torch.load(trained[0] / "autoencoder.pt", weights_only=True)
    payload["kind"] = "forecast"
    torch.save(payload, bad)
    with pytest.raises(InputDataError, match="not a autoencoder checkpoint"):
        ae_mod.load_autoencoder(bad)
