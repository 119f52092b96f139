"""Sensitivity sweeps: the `sweeps:` config (errors naming the sweep), the plan of a filter-only sweep, R rescaled
per experiment in the batched filter, and the one filter job of a sweep on the stand-in world of test_da_run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_da_run import GRID, LinearForecaster, _da, _paths, _run, world  # noqa: F401  (world is a fixture)

import bridging.da.decode as da_decode
import bridging.da.run as da_run
from bridging.da.run import assimilate
from bridging.errors import ConfigError
from bridging.settings import Config, load_config, validate_config
from bridging.sweeps.filter import decode_sweep_point, read_manifest, run_sweep_filter
from bridging.sweeps.plan import SweepPlan, plan_sweeps

# ------------------------------------------------------------------------------------------------ the config


def test_built_in_sweeps_are_defined_and_planned():
    plans = plan_sweeps(Config())
    assert plans["ensemble_size"].keys == ("da.ensemble_size",)
    assert plans["ensemble_size"].labels == ["20", "50", "100"]
    assert plans["obs_error"].keys == ("pseudo_obs.error_fraction",)
    assert plans["obs_error"].labels == ["0.01", "0.04", "0.16"]
    # R only scales a tensor of the analysis: one batched run; the ensemble size changes shapes: one run per value
    assert [len(g.points) for g in plans["obs_error"].filter_groups()] == [3]
    assert [len(g.points) for g in plans["obs_noise"].filter_groups()] == [4]  # batched, one draw of noise
    assert [g.name for g in plans["obs_thinning"].filter_groups()] == [
        "node_stride-1",
        "node_stride-2",
        "node_stride-4",
    ]
    assert plans["observed_variables"].labels == ["sst", "sst+thermocline_depth"]
    assert plans["hierarchy"].labels == ["cf23", "cfy22", "xro", "cf23+cfy22", "cf23_ep+cfy22_cp", "cf23+cfy22+xro"]
    assert [g.name for g in plans["localization"].filter_groups()] == ["enabled-false", "enabled-true"]
    assert len(plans["hierarchy"].filter_groups()) == 6  # H changes: one filter run per value
    assert [g.name for g in plans["ensemble_size"].filter_groups()] == [
        "ensemble_size-20",
        "ensemble_size-50",
        "ensemble_size-100",
    ]


@pytest.mark.parametrize(
    "sweep, message",
    [
        ({"key": "da.inflaton", "values": [1.1]}, r"sweeps\.bad\.key: sweep 'bad': unknown config key 'da\.inflaton'"),
        ({"key": "nonsense.key", "values": [1]}, r"sweeps\.bad\.key: sweep 'bad': unknown config key"),
        ({"key": "da.inflation", "values": []}, r"sweeps\.bad\.values: empty list"),
        (
            {"key": "da.ensemble_size", "values": [10, "many"]},
            r"sweeps\.bad\.values: sweep 'bad': value 'many' \(item 1\) for da\.ensemble_size is invalid",
        ),
        ({"key": "da.inflation", "values": [1.1, 0.5]}, r"sweep 'bad': value 0\.5 .*greater than or equal to 1"),
        ({"key": "da.localization", "values": [1]}, r"sweep 'bad': 'da\.localization' is a section"),
        ({"key": "run.name", "values": ["x"]}, r"sweep 'bad': run\.\* cannot be swept"),
        ({"key": "da.inflation", "values": [1.1, 1.1]}, r"sweep 'bad': repeated values"),
        (
            {"key": "da.inflation", "values": [1.1], "cross": {"key": "da.seed", "values": ["x"]}},
            r"sweeps\.bad\.cross\.values: sweep 'bad': value 'x'",
        ),
        (
            {"key": "da.observations.sources", "values": [["cf23"], ["cf23", "cf99"]]},
            r"sweep 'bad': value \['cf23', 'cf99'\] \(item 1\) .*unknown sources \['cf99'\]",
        ),
        (
            {"key": "da.observations.sources", "values": [["cf23_ep", "cf23_cp"]]},
            r"sweep 'bad': .*a model listed twice",
        ),
        # a value that breaks a cross-section check: fewer latent dimensions than observables
        ({"key": "autoencoder.latent_dim", "values": [8]}, r"sweep 'bad': value 8 .*latent_dim"),
    ],
)
def test_bad_sweeps_are_errors_naming_the_sweep(sweep, message):
    with pytest.raises(ConfigError, match=message):
        validate_config({"sweeps": {"bad": sweep}})


def test_a_bad_sweep_in_an_overlay_names_the_file(tmp_path, project_root):
    overlay = tmp_path / "sweeps.yaml"
    overlay.write_text("sweeps:\n  mine:\n    key: da.ensemble_size\n    values: [10, ten]\n")
    with pytest.raises(ConfigError, match=rf"sweeps\.mine\.values: sweep 'mine'.*\[set in {overlay}"):
        load_config(project_root / "config/config.default.yaml", overlay)


def test_values_are_normalised_and_grids_expand():
    config = validate_config(
        {
            "sweeps": {
                "grid": {
                    "key": "da.ensemble_size",
                    "values": ["20", 30],
                    "cross": {"key": "da.inflation", "values": [1.0, 1.2]},
                }
            }
        }
    )
    plan = plan_sweeps(config)["grid"]
    assert plan.labels == ["20__1.0", "20__1.2", "30__1.0", "30__1.2"]
    assert plan.points[0].values == {"da.ensemble_size": 20, "da.inflation": 1.0}
    groups = plan.filter_groups()
    assert [g.name for g in groups] == ["ensemble_size-20", "ensemble_size-30"]
    assert groups[1].points == [("30__1.0", {"inflation": 1.0}), ("30__1.2", {"inflation": 1.2})]
    assert SweepPlan.from_params(json.loads(json.dumps(plan.params()))).points == plan.points


def test_an_overlay_entry_named_like_a_built_in_sweep_is_merged_onto_it():
    """config/test.yaml sets only the values of the built-ins: alone (as the CLI and tests load it) or on top of
    config/config.default.yaml (as Snakemake merges them) it gives the same sweeps, each with its built-in key."""
    config_dir = Path(__file__).resolve().parents[1] / "config"
    alone = load_config(config_dir / "test.yaml").sweeps
    merged = load_config(config_dir / "config.default.yaml", config_dir / "test.yaml").sweeps
    assert alone == merged
    assert alone["lambda"].key == "autoencoder.lambda_corr" and alone["lambda"].values == [0.5]
    assert alone["observed_variables"] == Config().sweeps["observed_variables"]  # not in the overlay: built-in
    config = validate_config(
        {"sweeps": {"obs_error": {"enabled": False}, "lambda": {"key": "da.inflation", "values": [1.1]}}}
    )
    assert not config.sweeps["obs_error"].enabled and config.sweeps["obs_error"].values == [0.01, 0.04, 0.16]
    assert config.sweeps["lambda"].key == "da.inflation" and config.sweeps["lambda"].description == ""


def test_sweeps_upstream_of_the_autoencoder_are_refused():
    config = validate_config({"sweeps": {"kind": {"key": "forecast.kind", "values": ["linear", "lstm"]}}})
    with pytest.raises(ConfigError, match=r"sweeps\.kind: sweep 'kind' changes forecast\.kind"):
        plan_sweeps(config)
    off = validate_config({"sweeps": {"kind": {"key": "forecast.kind", "values": ["lstm"], "enabled": False}}})
    assert "kind" not in plan_sweeps(off)


def test_a_lambda_sweep_retrains_and_runs_one_filter_per_value():
    plan = plan_sweeps(Config())["lambda"]
    assert plan.retrains and plan.labels == ["0.0", "0.1", "0.5", "1.0"]
    groups = plan.filter_groups()
    assert [g.name for g in groups] == ["lambda_corr-0.0", "lambda_corr-0.1", "lambda_corr-0.5", "lambda_corr-1.0"]
    assert all(g.da_overrides == {} and len(g.points) == 1 for g in groups)  # λ is no da setting
    config = Config().model_dump(mode="json")
    section = plan.section(config, "0.5", "autoencoder")
    assert section["lambda_corr"] == 0.5 and section["latent_dim"] == config["autoencoder"]["latent_dim"]
    assert not plan_sweeps(Config())["obs_error"].retrains


# ------------------------------------------------------------------------------------------------ the filter


def _with_error_fraction(w, tmp_path, fraction=0.04):
    """The stand-in w's pseudo-observations with the error_fraction attribute a real store carries."""
    ds = xr.open_zarr(w["root"] / "pseudo_obs.zarr", consolidated=False).load()
    ds.attrs["error_fraction"] = fraction
    path = tmp_path / "pseudo_obs.zarr"
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return path


def _stand_ins(w, monkeypatch):
    monkeypatch.setattr(da_run, "load_models", lambda f, a, d: (LinearForecaster(w["M"], w["noise_cov"]), w["ae"]))
    monkeypatch.setattr(da_decode, "load_autoencoder", lambda p, d: w["ae"])


def _assimilate(w, monkeypatch, out, pseudo_obs, **kw):
    _stand_ins(w, monkeypatch)
    paths = {**_paths(w), "pseudo_obs": pseudo_obs}
    stats = out.with_name(out.stem + "_statistics.json")
    return assimilate(out, stats, grid=GRID.__dict__, model_name="TOY", device="cpu", **paths, **kw)


def test_r_fraction_experiments_rescale_r(world, monkeypatch, tmp_path):  # noqa: F811
    pseudo_obs = _with_error_fraction(world, tmp_path)
    da = _da(months=24)
    plain = _assimilate(world, monkeypatch, tmp_path / "plain.zarr", pseudo_obs, da=da)
    same = _assimilate(
        world, monkeypatch, tmp_path / "same.zarr", pseudo_obs, da=da, experiments=[{"obs_error_fraction": 0.04}]
    )
    a = xr.open_zarr(tmp_path / "plain.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "same.zarr", consolidated=False)
    np.testing.assert_array_equal(a["members"].values, b["members"].values)  # R × 1: the configured run, bit for bit
    assert same["overall"]["innovation_ratio"] == plain["overall"]["innovation_ratio"]

    records = [{"obs_error_fraction": 0.01}, {"obs_error_fraction": 0.16, "inflation": 1.2}]
    summary = _assimilate(world, monkeypatch, tmp_path / "r.zarr", pseudo_obs, da=da, experiments=records)
    ds = xr.open_zarr(tmp_path / "r.zarr", consolidated=False)
    np.testing.assert_allclose(ds["obs_error_scale"].values, [0.25, 4.0])
    assert summary["experiments"] == [
        {"inflation": 1.09, "model_noise_scale": 1.0, "obs_error_fraction": 0.01},
        {"inflation": 1.2, "model_noise_scale": 1.0, "obs_error_fraction": 0.16},
    ]
    predicted = ds["predicted_variance"].values.mean(0)
    assert predicted[1] > predicted[0], "a larger R is a larger predicted innovation variance"

    with pytest.raises(ConfigError, match="records no error_fraction"):
        _run(world, monkeypatch, tmp_path / "x.zarr", da=da, experiments=[{"obs_error_fraction": 0.01}])


def test_one_sweep_job_runs_every_value_and_is_deterministic(world, monkeypatch, tmp_path):  # noqa: F811
    pseudo_obs = _with_error_fraction(world, tmp_path)
    _stand_ins(world, monkeypatch)
    config = validate_config(
        {
            "sweeps": {
                "grid": {
                    "key": "da.ensemble_size",
                    "values": [6, 8],
                    "cross": {"key": "pseudo_obs.error_fraction", "values": [0.02, 0.08]},
                }
            }
        }
    )
    plan = plan_sweeps(config)["grid"]
    inputs = {k: str(v) for k, v in {**_paths(world), "pseudo_obs": pseudo_obs}.items()}
    da = _da(months=24).model_dump(mode="json")
    runs = []
    for name in ("a", "b"):
        manifest = tmp_path / name / "grid" / "filter" / "TOY.json"
        out = run_sweep_filter(
            manifest, sweep=plan.params(), da=da, model_name="TOY", grid=GRID.__dict__, device="cpu", **inputs
        )
        assert read_manifest(manifest)["points"] == out["points"]
        runs.append(out)
    first, second = runs
    assert [g["name"] for g in first["groups"]] == ["ensemble_size-6", "ensemble_size-8"]
    assert set(first["points"]) == {"6__0.02", "6__0.08", "8__0.02", "8__0.08"}
    point = first["points"]["8__0.08"]
    assert point["experiment"] == 1 and point["values"] == {"da.ensemble_size": 8, "pseudo_obs.error_fraction": 0.08}
    ds = xr.open_zarr(point["store"], consolidated=False)
    assert ds.sizes["member"] == 8 and ds.sizes["experiment"] == 2
    for label in first["points"]:
        a, b = first["points"][label], second["points"][label]
        np.testing.assert_array_equal(
            xr.open_zarr(a["store"], consolidated=False)["members"].values,
            xr.open_zarr(b["store"], consolidated=False)["members"].values,
        )
    decoded = decode_sweep_point(
        tmp_path / "decoded.zarr",
        manifest=tmp_path / "a" / "grid" / "filter" / "TOY.json",
        label="8__0.08",
        autoencoder=inputs["autoencoder"],
        operational_store=inputs["operational_store"],
        decode={"n_realizations": 2},
        model_name="TOY",
        device="cpu",
    )
    assert "experiment 1 of ensemble_size-8.zarr" in xr.open_zarr(decoded, consolidated=False).attrs["realizations"]
