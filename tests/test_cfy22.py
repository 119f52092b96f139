"""CFY22 (ACI parameter set): compiled loop against a NumPy transcription of the equations, output form, and the
statistics it must reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from bridging.errors import ConfigError
from bridging.idealized.cfy22 import CFY22Model, reference_integrate, steps_per_month
from bridging.idealized.run import open_run, run_to_zarr, simulate
from bridging.idealized.stats import run_statistics


def test_compiled_loop_equals_numpy_reference():
    model = CFY22Model()
    compiled = model.initial_state(3, seed=2)
    reference = compiled.copy()
    model.advance_nondimensional(compiled, 1)
    reference_integrate(model, reference, 12 * 100)
    np.testing.assert_allclose(compiled.values, reference.values, rtol=0, atol=1e-10)
    assert compiled.step == reference.step == 1200


def test_decadal_variable_stays_in_range_and_fills_it():
    means = CFY22Model().advance_nondimensional(CFY22Model().initial_state(4, seed=1), 300)
    decadal = means[..., 5]
    assert decadal.min() >= 0 and decadal.max() <= 4
    # Stationary I ~ Uniform[0, 4]: mean 2, variance 16/12 (monthly means smooth it only slightly).
    assert abs(decadal.mean() - 2) < 0.25 and abs(decadal.var() - 16 / 12) < 0.3


def test_dt_must_divide_a_month():
    assert steps_per_month(0.005) == 100
    with pytest.raises(ConfigError, match="dt"):
        steps_per_month(0.003)


def test_run_store_form(tmp_path):
    out = run_to_zarr(tmp_path / "cfy22.zarr", model="cfy22", years=4, seed=1, members=3, chunk_years=3, member_batch=2)
    ds = open_run(out).load()
    assert dict(ds.sizes) == {"member": 3, "time": 48, "nv": 2}  # nv: the bounds of each month (time_bnds)
    assert set(ds.data_vars) - {"time_bnds"} == {
        "nino3",
        "nino34",
        "nino4",
        "wp_thermocline_depth_anomaly",
        "cp_zonal_current",
        "wind_burst",
        "decadal",
    }
    np.testing.assert_allclose(ds["nino34"], 0.4 * ds["nino4"] + 0.6 * ds["nino3"], rtol=1e-5, atol=1e-6)
    again = simulate(model="cfy22", years=4, seed=1, members=3)
    for name in again.data_vars:
        assert np.array_equal(ds[name].values, again[name].values), name


def statistics_failures(stats: dict) -> list[str]:
    checks = {
        "nino3 std": abs(stats["nino3"]["std"] - 0.93) <= 0.15,
        "nino3 skewness": abs(stats["nino3"]["skewness"] - 0.83) <= 0.25,
        "nino4 std": abs(stats["nino4"]["std"] - 0.65) <= 0.15,
        "nino4 skewness": abs(stats["nino4"]["skewness"] + 0.16) <= 0.25,
        "peak variance month": stats["nino3_peak_variance_month"] in (10, 11, 12),
    }
    return [name for name, ok in checks.items() if not ok]


FAST = dict(model="cfy22", years=150, seed=0, members=8)


def test_fast_statistics_subset():
    stats = run_statistics(simulate(**FAST))
    assert statistics_failures(stats) == [], stats
    assert stats["events"]["ep"] > 0 and stats["events"]["cp"] > 0


@pytest.mark.parametrize(
    "broken, expected_failure",
    [
        ({"burst_tanh": 0.0}, "nino3 skewness"),  # state-independent bursts: near-symmetric EP
        ({"c1_quadratic": 0.0}, "nino4 std"),  # no nonlinear CP damping
    ],
)
def test_fast_check_catches_a_broken_model(broken, expected_failure):
    stats = run_statistics(simulate({"cfy22": broken}, **FAST))
    assert expected_failure in statistics_failures(stats)


@pytest.mark.slow
def test_long_run_reproduces_the_cfy22_statistics(tmp_path):
    out = run_to_zarr(tmp_path / "cfy22.zarr", model="cfy22", years=1000, seed=2)
    stats = run_statistics(open_run(out))
    assert statistics_failures(stats) == [], stats
    assert stats["events"]["ep"] > stats["events"]["cp"] > 50
