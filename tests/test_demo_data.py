"""The demo data: real file layouts read back through the catalog and readers, thetao consistent with the
thermocline depth, realistic mean state and ENSO, recorded statistics recoverable from the files, biases."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest

from bridging.demo import fields
from bridging.demo.generate import build_source, generate_demo_data, load_statistics, plan_sources
from bridging.idealized.reconstruction import CF23Reconstruction
from bridging.idealized.run import simulate
from bridging.idealized.stats import index_statistics, monthly_anomalies
from bridging.io.catalog import build_catalog, open_source
from bridging.settings import DemoSection, IdealizedSection
from bridging.thermocline import isotherm_depth, thermocline_depth

TINY = {
    "n_years": 7,  # 2008–2014: GFDL thetao in the 5-year files 200801-200912 and 201001-201412
    "n_levels": 10,
    "long_run_years": 20,
    "detail_modes": 2,
    "reanalysis": {"first_year": 2013, "last_year": 2016, "resolution_deg": 3.0},  # crosses CONS → OPER
    "models": [
        {
            "source_id": "DEMO-CESM2",
            "layout": "cesm2",
            "resolution_deg": 4.0,
            "seed": 11,
            "bias": {"symmetric_wind_bursts": True, "westward_shift_deg": 15.0, "amplitude_factor": 1.35},
        },
        {
            "source_id": "DEMO-GFDL-CM4",
            "layout": "gfdl-cm4",
            "resolution_deg": 5.0,
            "seed": 13,
            "bias": {"zonal_advective_factor": 0.4},
        },
    ],
}


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    demo = DemoSection.model_validate(TINY)
    generate_demo_data(root, demo)
    catalog = root.parent / "catalog.json"
    build_catalog([root], catalog, root.parent / "catalog.csv")
    return root, demo, catalog


def _one(root, pattern):
    (path,) = sorted(root.rglob(pattern))
    return path


# --- pure functions ---------------------------------------------------------------------------------------------------


def test_thetao_profiles_cross_20C_exactly_at_the_intended_depth():
    rng = np.random.default_rng(0)
    depth = fields.level_depths(12)
    sst = rng.uniform(20.6, 31.0, size=(3, 20, 30))
    d20 = rng.uniform(depth[1] + 1, 260.0, size=sst.shape)  # the demo's range of thermocline depths
    theta = fields.isotherm_profiles(sst, d20, depth)
    assert theta.shape == (3, 12, 20, 30)
    np.testing.assert_allclose(
        isotherm_depth(fields.isotherm_profiles(sst, np.full_like(sst, depth[-2] - 1), depth), depth, axis=1),
        depth[-2] - 1,
        atol=1e-3,
    )
    assert np.all(np.diff(theta, axis=1) < 0)  # strictly decreasing: stably stratified
    np.testing.assert_allclose(isotherm_depth(theta, depth, axis=1), d20, atol=1e-3)  # float32 output
    # A realistic shape: surface level near the SST where the thermocline is not shallow, 7–9 °C at 450 m, and
    # sub-thermocline water that is not colder than the tropical Pacific's (≈ 12–15 °C at 100 m).
    deep_thermocline = d20 > 80
    assert np.all(np.abs(theta[:, 0] - sst)[deep_thermocline] < 0.5)
    assert np.all((theta[:, -1] > 7.0) & (theta[:, -1] < 9.0))
    assert np.all(
        fields.isotherm_profiles(np.full((1, 1, 1), 24.5), np.full((1, 1, 1), 40.0), np.array([5.0, 30, 50, 100, 200]))[
            0, 3
        ]
        > 12.0
    )
    land = fields.isotherm_profiles(np.full((1, 2, 2), np.nan), np.full((1, 2, 2), np.nan), depth)
    assert np.isnan(land).all()


def test_detail_modes_stay_off_the_equator():
    lat, lon = np.meshgrid(np.arange(-30.0, 31.0), np.arange(100.0, 300.0), indexing="ij")
    patterns = fields.detail_patterns(lat, lon, 6, np.random.default_rng(3))
    equator = np.abs(patterns[:, np.abs(lat[:, 0]) <= 2]).max()
    assert equator < 0.05 and np.abs(patterns).max() > 0.9
    series = fields.red_noise(20000, 2, 0.9, np.random.default_rng(4))
    assert series.std(0) == pytest.approx([1, 1], abs=0.08)
    assert np.corrcoef(series[:-1, 0], series[1:, 0])[0, 1] == pytest.approx(0.9, abs=0.02)


def test_mean_state_is_realistic():
    lat, lon = np.meshgrid(np.arange(-20.0, 21.0), np.arange(120.0, 281.0), indexing="ij")
    sst = fields.sst_climatology(lat, lon)
    d20 = fields.d20_climatology(lat, lon)
    eq = lat[:, 0] == 0
    annual_sst = sst.mean(0)[eq][0]
    annual_d20 = d20.mean(0)[eq][0]
    west, east = (lon[0] >= 140) & (lon[0] <= 170), (lon[0] >= 250) & (lon[0] <= 270)
    assert 29.0 <= annual_sst[west].mean() <= 30.0 and 24.0 <= annual_sst[east].mean() <= 25.5
    assert 160 <= annual_d20[west].mean() <= 180 and 35 <= annual_d20[east].mean() <= 55
    nino3 = (lon[0] >= 210) & (lon[0] <= 270)
    nino4 = (lon[0] >= 160) & (lon[0] <= 210)
    assert 60 <= annual_d20[nino3].mean() <= 100 and 140 <= annual_d20[nino4].mean() <= 175
    seasonal_range = sst.max(0) - sst.min(0)
    assert (
        seasonal_range[eq][0][east].mean() > 2 * seasonal_range[eq][0][west].mean()
    )  # annual cycle strongest in the east
    assert d20.mean(0)[lat[:, 0] == 18][0].mean() > annual_d20.mean()  # deeper off the equator
    assert sst.min() >= fields.SST_FLOOR


def test_every_cf23_observable_has_ocean_on_the_regridded_default_demo_grids():
    """The equator is land east of 279.5°E in the demo mask; the default regridding must still give data in the
    cell of CF23 node 56 (280°E), or the filter's layout could not extract that observable."""
    from bridging.grid import TargetGrid
    from bridging.idealized.pseudo_obs import cf23_layout
    from bridging.regrid import regrid_array, weights_from_config
    from bridging.settings import RegridSection

    target = TargetGrid()
    layout, _ = cf23_layout(target)
    for plan in plan_sources(DemoSection()):
        weights = weights_from_config(plan.grid.lat, plan.grid.lon, plan.grid.ocean, target, RegridSection())
        ocean = np.isfinite(regrid_array(np.where(plan.grid.ocean, 1.0, np.nan)[None], weights)[0])
        flat = ocean.ravel()
        assert layout.extract(
            {"sst": np.where(ocean, 1.0, np.nan), "thermocline_depth": np.where(ocean, 1.0, np.nan)}, target
        ).shape == (112,)
        assert all(flat[k] for k in np.flatnonzero(layout.weights(target).max(0) > 0)), plan.source_id


# --- the generated files --------------------------------------------------------------------------------------------


def test_files_have_the_real_layouts_and_say_they_are_synthetic(tiny_demo):
    root, demo, _ = tiny_demo
    cesm_tos = _one(root, "tos_Omon_DEMO-CESM2_historical_r1i1p1f1_gn_200801-201412.nc")
    assert "CMIP6/CMIP/NCAR/DEMO-CESM2/historical/r1i1p1f1/Omon/tos/gn/" in str(cesm_tos)
    gfdl_thetao = sorted(p.name for p in root.rglob("thetao_Omon_DEMO-GFDL-CM4_*.nc"))
    assert gfdl_thetao == [
        "thetao_Omon_DEMO-GFDL-CM4_historical_r1i1p1f1_gn_200801-200912.nc",
        "thetao_Omon_DEMO-GFDL-CM4_historical_r1i1p1f1_gn_201001-201412.nc",
    ]
    oras5 = sorted(p.name for p in (root / "ORAS5" / "sosstsst").iterdir())
    assert len(oras5) == 48 and oras5[0].endswith("201301_CONS_v0.1.nc") and oras5[-1].endswith("201612_OPER_v0.1.nc")
    assert len(list((root / "ORAS5" / "so20chgt").iterdir())) == 48
    with netCDF4.Dataset(_one(root, "thetao_Omon_DEMO-CESM2_*.nc")) as nc:
        assert nc.source_id == "DEMO-CESM2" and nc.synthetic_data == "yes" and "SYNTHETIC" in nc.comment
        assert json.loads(nc.enso_bridge_demo_parameters)["seed"] == 11
        assert nc["lev"].units == "centimeters" and nc["time"].calendar == "noleap"
        assert set(nc.dimensions) >= {"nlat", "nlon", "lev", "d2", "vertices"}
        tos_land = nc["thetao"][0, 0].mask
        assert tos_land.any() and not tos_land.all()
    with netCDF4.Dataset(gfdl_thetao and _one(root, gfdl_thetao[0])) as nc:
        assert nc.source_id == "DEMO-GFDL-CM4" and nc["lon"][:].min() < 0  # the −300…60 convention
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["synthetic"] and set(manifest["sources"]) == {"DEMO-CESM2", "DEMO-GFDL-CM4", "ORAS5"}


def test_readers_recover_sst_and_thermocline_through_the_catalog(tiny_demo):
    root, demo, catalog = tiny_demo
    plans = {p.source_id: p for p in plan_sources(demo)}
    for source_id in ("DEMO-CESM2", "DEMO-GFDL-CM4"):
        truth = build_source(plans[source_id], demo)
        sst = open_source(catalog, {"source_id": source_id, "variable_id": "tos"})
        thetao = open_source(catalog, {"source_id": source_id, "variable_id": "thetao"})
        np.testing.assert_array_equal(sst[next(iter(sst.data_vars))].values, truth.sst)
        recovered = thermocline_depth(thetao[next(iter(thetao.data_vars))]).values
        assert np.array_equal(np.isnan(recovered), np.isnan(truth.thermocline_depth))
        assert np.nanmax(np.abs(recovered - truth.thermocline_depth)) < 0.1  # metres (thetao quantised to 4 digits)
    truth = build_source(plans["ORAS5"], demo)
    d20 = open_source(catalog, {"source_id": "ORAS5", "variable_id": "so20chgt"})
    np.testing.assert_array_equal(d20[next(iter(d20.data_vars))].values, truth.thermocline_depth)


def test_recorded_statistics_are_recovered_from_the_files(tiny_demo):
    root, demo, catalog = tiny_demo
    plans = {p.source_id: p for p in plan_sources(demo)}
    for source_id, variable in (("DEMO-GFDL-CM4", "tos"), ("ORAS5", "sosstsst")):
        record = load_statistics(root, source_id)
        ds = open_source(catalog, {"source_id": source_id, "variable_id": variable})
        sst = ds[next(iter(ds.data_vars))].values
        grid = plans[source_id].grid
        months = plans[source_id].months
        idx = {
            name: monthly_anomalies(
                np.nan_to_num(sst.reshape(sst.shape[0], -1)) @ fields.box_weights(grid.lat, grid.lon, grid.ocean, box),
                months[:, 1],
            )
            for name, box in fields.NINO_BOXES.items()
        }
        stats = index_statistics(idx["nino3"], idx["nino4"], months[:, 0], months[:, 1])
        for name in ("nino3", "nino4"):
            for moment in ("std", "skewness"):
                assert stats[name][moment] == pytest.approx(record["statistics"][name][moment], abs=1e-5)
        assert record["years"] == [int(months[0, 0]), int(months[-1, 0])] and record["synthetic"]
        assert record["long_run"]["years"] == demo.long_run_years


def test_generation_is_reproducible_and_seeded():
    demo = DemoSection.model_validate(TINY)
    plan = plan_sources(demo)[1]
    a = build_source(plan, demo)
    b = build_source(plan, demo)
    np.testing.assert_array_equal(a.sst, b.sst)
    plan.seed += 1
    c = build_source(plan, demo)
    assert not np.allclose(np.nan_to_num(a.sst), np.nan_to_num(c.sst))


def test_a_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    import bridging.demo.generate as generate

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(generate, "write_source", fail)
    with pytest.raises(OSError):
        generate_demo_data(tmp_path / "demo", TINY)
    assert list(tmp_path.iterdir()) == []


def idealized_long_run(plan, years=1000):
    """The idealized model's own dynamics (CF23 as published) through the same grid mapping as a demo source."""
    run = simulate(IdealizedSection(), years=years, seed=plan.seed, first_member=1).isel(member=0)
    mapping = CF23Reconstruction.build(plan.grid.lat, plan.grid.lon)
    months = np.tile(np.arange(1, 13), years)
    node_sst = run["sst_anomaly"].values.astype(float)
    idx = {
        name: monthly_anomalies(
            node_sst @ (mapping.sst @ fields.box_weights(plan.grid.lat, plan.grid.lon, plan.grid.ocean, box)), months
        )
        for name, box in fields.NINO_BOXES.items()
    }
    return index_statistics(
        idx["nino3"], idx["nino4"], np.repeat(np.arange(1, years + 1), 12), months, nino34=idx["nino34"]
    )


@pytest.mark.slow
def test_default_demo_is_a_fraternal_twin_with_biases_that_stand_out(tmp_path):
    """The default demo: the truth (reanalysis) differs from the idealized model by a documented choice (stronger
    wind bursts and zonal-advective feedback), the operational models carry biases against the idealized model larger
    than a 43-year record's noise."""
    root = generate_demo_data(tmp_path / "demo")
    stats = {s: load_statistics(root, s) for s in ("DEMO-CESM2", "DEMO-GFDL-CM4", "ORAS5")}
    ideal = idealized_long_run(next(p for p in plan_sources(DemoSection()) if p.source_id == "ORAS5"))
    truth = stats["ORAS5"]["long_run"]["statistics"]
    cesm = stats["DEMO-CESM2"]["long_run"]["statistics"]
    gfdl = stats["DEMO-GFDL-CM4"]["long_run"]["statistics"]
    assert stats["ORAS5"]["years"] == [1981, 2023] and stats["DEMO-CESM2"]["years"] == [1915, 2014]
    assert stats["ORAS5"]["driver"]["parameters"]["burst_noise"] == 2.2
    # The idealized model: positive Niño 3 and negative Niño 4 skewness, both EP and CP events.
    assert (
        ideal["nino3"]["skewness"] > 0.2 and ideal["nino4"]["skewness"] < -0.2 and ideal["events"]["cp_fraction"] > 0.2
    )
    # Fraternal truth: a stronger Niño 4 (43-year std standard error ≈ 0.04 °C), more CP El Niños, a less skewed Niño 4.
    assert truth["nino4"]["std"] - ideal["nino4"]["std"] > 0.15
    assert truth["events"]["cp_fraction"] > ideal["events"]["cp_fraction"] + 0.1
    assert truth["nino4"]["skewness"] > ideal["nino4"]["skewness"] + 0.15
    # DEMO-CESM2: near-symmetric, too strong, anomalies extending further west (Niño 4 / Niño 3 std ratio up).
    assert abs(cesm["nino3"]["skewness"]) < 0.15 and ideal["nino3"]["skewness"] - cesm["nino3"]["skewness"] > 0.2
    assert cesm["nino3"]["std"] / ideal["nino3"]["std"] > 1.2
    assert cesm["nino4"]["std"] / cesm["nino3"]["std"] > ideal["nino4"]["std"] / ideal["nino3"]["std"] + 0.05
    # DEMO-GFDL-CM4: near-symmetric Niño 3, too few CP El Niños, too weak.
    assert gfdl["nino3"]["skewness"] < 0.1 and gfdl["events"]["cp_fraction"] < 0.5 * ideal["events"]["cp_fraction"]
    assert gfdl["nino3"]["std"] / ideal["nino3"]["std"] < 0.85
    for record in stats.values():
        assert (
            record["clipped_fraction"]["sst_below_20.5C"] < 1e-3
            and record["clipped_fraction"]["d20_outside_levels"] < 1e-2
        )
