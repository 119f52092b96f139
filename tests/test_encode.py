"""Encoding both records into the latent stores z (time, latent), y (time, obs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from test_autoencoder import COMPUTE, GRID, TINY_AE, run_training, write_tiny_sources

from bridging import stores
from bridging.atomic import write_zarr_atomic
from bridging.errors import ConfigError, InputDataError
from bridging.grid import TargetGrid
from bridging.models.autoencoder import encode_array, load_autoencoder, load_field_record
from bridging.models.latent import encode_sources, open_latent_store
from bridging.observables import ObservationLayout


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    root = tmp_path_factory.mktemp("encode")
    sources = write_tiny_sources(root)
    run_training(sources, root / "models", autoencoder={"epochs": 1})
    out = {"operational": root / "latent" / "operational.zarr", "reanalysis": root / "latent" / "reanalysis.zarr"}
    encode_sources(
        root / "models" / "autoencoder.pt",
        sources["operational"],
        sources["reanalysis"],
        sources["pseudo_obs"],
        out["operational"],
        out["reanalysis"],
        autoencoder=TINY_AE,
        compute=COMPUTE,
        grid=GRID.__dict__,
    )
    return root, sources, out


def test_latent_stores_hold_z_and_physical_y(encoded):
    root, sources, out = encoded
    ae = load_autoencoder(root / "models" / "autoencoder.pt")
    pseudo = xr.open_zarr(sources["pseudo_obs"], consolidated=False)
    for kind in ("operational", "reanalysis"):
        ds = open_latent_store(out[kind])
        src = stores.open_store(sources[kind])
        assert ds["z"].dims == ("time", "latent") and ds["y"].dims == ("time", "obs")
        assert ds.sizes["time"] == src.sizes["time"] and ds.sizes["latent"] == 12 and ds.sizes["obs"] == 8
        np.testing.assert_array_equal(ds["time"].values, src["time"].values)
        for coord in ("obs_variable", "obs_lat", "obs_lon", "obs_lat_min", "obs_lon_max"):
            np.testing.assert_array_equal(ds[coord].values, pseudo[coord].values)
        # y: the observables in physical anomaly units, extracted from the same fields
        expected_y = ObservationLayout.from_dataset(pseudo).extract(
            {f: stores.field_anomalies(src, f).values for f in stores.FIELDS}, GRID
        )
        np.testing.assert_allclose(ds["y"].values, expected_y, rtol=1e-5, atol=1e-6)
        # z: E of the fields standardised with the operational model's std (for the reanalysis too)
        assert json.loads(ds.attrs["field_std"]) == ae.field_std
        record = load_field_record(sources[kind], grid=GRID, layout=ae.layout, field_std=ae.field_std)
        np.testing.assert_allclose(ds["z"].values, encode_array(ae, record.standardised), rtol=1e-5, atol=1e-6)
        assert ds.attrs["source_kind"] == kind and ds.attrs["model"] == "TINY-OPERATIONAL"


def test_encode_batch_size_does_not_change_z(encoded):
    root, sources, _ = encoded
    ae = load_autoencoder(root / "models" / "autoencoder.pt")
    fields = load_field_record(sources["operational"], grid=GRID, layout=ae.layout).standardised
    np.testing.assert_allclose(
        encode_array(ae, fields, batch_size=7), encode_array(ae, fields, batch_size=256), rtol=1e-5, atol=1e-6
    )


def test_observables_other_than_the_autoencoders_are_refused(encoded, tmp_path):
    root, sources, _ = encoded
    other = ObservationLayout.points(GRID, ["sst", "sst"], [0.0, 0.0], [170.0, 250.0])
    write_zarr_atomic(xr.Dataset(coords=other.coords()), tmp_path / "other.zarr")
    with pytest.raises(InputDataError, match="other.zarr.*observables differ"):
        encode_sources(
            root / "models" / "autoencoder.pt",
            sources["operational"],
            sources["reanalysis"],
            tmp_path / "other.zarr",
            tmp_path / "op.zarr",
            tmp_path / "rean.zarr",
            autoencoder=TINY_AE,
            compute=COMPUTE,
            grid=GRID.__dict__,
        )
    assert not (tmp_path / "op.zarr").exists()


def test_another_grid_is_a_config_error(encoded, tmp_path):
    root, sources, _ = encoded
    wider = TargetGrid(-12.5, 10.0, 140.0, 280.0, 2.5).__dict__
    with pytest.raises(ConfigError, match="differs from the grid the autoencoder"):
        encode_sources(
            root / "models" / "autoencoder.pt",
            sources["operational"],
            sources["reanalysis"],
            sources["pseudo_obs"],
            tmp_path / "op.zarr",
            tmp_path / "rean.zarr",
            autoencoder=TINY_AE,
            compute=COMPUTE,
            grid=wider,
        )


def test_open_latent_store_checks_its_form(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        open_latent_store(tmp_path / "missing.zarr")
    write_zarr_atomic(xr.Dataset({"z": (("time", "latent"), np.zeros((3, 2)))}), tmp_path / "no_y.zarr")
    with pytest.raises(InputDataError, match=r"missing \['y'\]"):
        open_latent_store(tmp_path / "no_y.zarr")


def test_decode_of_encoded_fields_reconstructs_the_ocean(encoded):
    root, sources, _ = encoded
    ae = load_autoencoder(root / "models" / "autoencoder.pt")
    fields = torch.as_tensor(load_field_record(sources["operational"], grid=GRID, layout=ae.layout).standardised[:10])
    decoded = ae.decode(ae.encode(fields))
    ocean = ae.ocean_mask
    # One epoch of training: far from perfect, but the decoder must produce the ocean values' scale, not garbage.
    err = (decoded - fields)[:, :, ocean].square().mean()
    assert torch.isfinite(err) and err < fields[:, :, ocean].square().mean() * 2
