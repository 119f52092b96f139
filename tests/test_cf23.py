"""CF23: the compiled loop against an independent NumPy transcription, the spec's operators, reproducibility of
the per-member random streams, and the ENSO statistics the model must reproduce (fast subset + slow full run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bridging.errors import ConfigError
from bridging.idealized.cf23 import (
    NINO3_NODES,
    NINO4_NODES,
    NODE_LON,
    PHI0_EQ,
    CF23Model,
    decadal_noise_table,
    green_matrix,
    profiles,
    reference_integrate,
    steps_per_month,
)
from bridging.idealized.rng import MemberStreams, raw_uint64
from bridging.idealized.run import open_run, run_reference, simulate
from bridging.idealized.stats import run_statistics
from bridging.settings import IdealizedSection

# --- random streams -------------------------------------------------------------------------------------------------


def _xoshiro256starstar(state: list[int], n: int) -> list[int]:
    """xoshiro256** from its published definition, in Python integers."""
    mask = (1 << 64) - 1

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & mask

    s = list(state)
    out = []
    for _ in range(n):
        out.append((rotl((s[1] * 5) & mask, 7) * 9) & mask)
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def test_generator_is_xoshiro256starstar():
    streams = MemberStreams.from_seed(123, 2)
    expected = _xoshiro256starstar([int(v) for v in streams.state[1]], 50)
    assert [int(v) for v in raw_uint64(streams, 1, 50)] == expected


def test_normals_are_standard_normal():
    x = MemberStreams.from_seed(5, 1).standard_normal(0, 200_000)
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1) < 0.01
    assert scipy_stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.01  # the cached Box–Muller partner is not correlated


def test_streams_depend_on_seed_and_member_only():
    a = MemberStreams.from_seed(9, 3)
    b = MemberStreams.from_seed(9, 5)
    c = MemberStreams.from_seed(10, 3)
    assert np.array_equal(a.state, b.state[:3])
    assert not np.array_equal(a.state, c.state)
    assert len({tuple(row) for row in b.state}) == 5


# --- operators of spec §3 -------------------------------------------------------------------------------------------


def test_profiles_match_the_spec():
    p = profiles()
    assert p["eta"][0] == pytest.approx(0.206, abs=1e-3) and p["eta"][-1] == pytest.approx(2.400, abs=1e-3)
    assert np.argmax(p["eta2"]) == 24 and p["eta2"].max() == pytest.approx(3.6)  # node 25, ≈ 193.5°E
    assert np.argmax(p["burst_shape"]) == 13  # node 14, ≈ 162.6°E
    assert NODE_LON[24] == pytest.approx(193.5) and NODE_LON[13] == pytest.approx(162.5625)
    table = decadal_noise_table(0.018630)
    assert table.size == 100 and table[0] == 0 and table[-1] == pytest.approx(0, abs=1e-12)
    assert table[50] ** 2 == pytest.approx(0.9801 * 0.018630 * (50 / 99) * (49 / 99))


def test_green_function_direction_and_scale():
    G = green_matrix()
    F = 0.3225 * 0.204254 * (8 / 3 / 128) / (2 * 0.1)
    assert F == pytest.approx(0.006861, abs=1e-6)
    j = 30
    # Heating at node j: K_A jumps down eastward through j (∂x K_A < 0), so westerlies lie west of warm SST.
    assert G[j, j] == pytest.approx(F / 2) and G[j - 1, j] == pytest.approx(F * (0.5 - 1 / 127))
    assert G[j + 1, j] == pytest.approx(F * (0.5 - 127 / 127))
    # Over the whole periodic atmosphere (128 points) the response has zero zonal mean.
    s = np.arange(128)
    assert np.sum(0.5 - s / 127) == pytest.approx(0)


def test_dt_must_divide_months():
    assert steps_per_month(0.5).tolist() == [62, 56, 62, 60, 62, 60, 62, 62, 60, 62, 60, 62]
    with pytest.raises(ConfigError, match="dt_days"):
        steps_per_month(0.7)


# --- the compiled loop ----------------------------------------------------------------------------------------------


def test_compiled_loop_equals_numpy_reference():
    """Prefix-sum atmosphere, fused node loop and in-kernel noise against explicit matrices, step by step."""
    model = CF23Model({"zonal_advective_factor": 0.7, "thermocline_feedback_factor": 1.1})
    compiled = model.initial_state(3, seed=4)
    reference = compiled.copy()
    a = model.advance_nondimensional(compiled, 2)
    b = reference_integrate(model, reference, 2)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(compiled.T, reference.T, atol=1e-9)
    assert compiled.step == reference.step == 2 * 730


def test_symmetric_burst_switch_reaches_the_kernel():
    model = CF23Model({"burst_state_dependent": False})
    s1 = model.initial_state(2, seed=1)
    s2 = s1.copy()
    a = model.advance_nondimensional(s1, 1)
    b = reference_integrate(model, s2, 1)
    np.testing.assert_allclose(a["burst"], b["burst"], atol=1e-9)
    default = CF23Model().advance_nondimensional(CF23Model().initial_state(2, seed=1), 1)
    assert not np.allclose(a["burst"], default["burst"])


def test_runs_are_reproducible_and_independent_of_member_count_and_chunking():
    model = CF23Model()
    one_go = model.advance_years(model.initial_state(4, seed=3), 3)
    chunked_state = model.initial_state(6, seed=3)
    first = model.advance_years(chunked_state, 1)
    rest = model.advance_years(chunked_state, 2)
    for name in one_go:
        joined = np.concatenate([first[name], rest[name]], axis=1)[:4]
        assert np.array_equal(one_go[name], joined), name
    other_seed = model.advance_years(model.initial_state(4, seed=4), 3)
    assert not np.allclose(one_go["nino3"], other_seed["nino3"])


def test_physical_outputs_follow_the_spec_scalings():
    model = CF23Model()
    nondim = model.advance_nondimensional(model.initial_state(1, seed=2), 1)
    phys = model.physical(nondim)
    np.testing.assert_allclose(phys["sst_anomaly"], 1.5 * PHI0_EQ * nondim["T"], rtol=1e-6)
    np.testing.assert_allclose(phys["nino3"], phys["sst_anomaly"][..., NINO3_NODES].mean(-1), rtol=1e-5)
    np.testing.assert_allclose(phys["nino4"], phys["sst_anomaly"][..., NINO4_NODES].mean(-1), rtol=1e-5)
    k_atm = nondim["T"] @ green_matrix().T
    np.testing.assert_allclose(phys["zonal_wind"], 15.02 * k_atm, rtol=1e-3)  # u_A ≈ 15.0·K_A m/s (§3.3)


# --- statistics -----------------------------------------------------------------------------------------------------


def statistics_failures(stats: dict, *, n3_skew_min: float, n4_skew_max: float, cp_range=(0.3, 0.55)) -> list[str]:
    """Names of the violated checks (empty list: the run looks like CF23)."""
    checks = {
        "nino3 std": 0.75 <= stats["nino3"]["std"] <= 1.0,
        "nino3 skewness": stats["nino3"]["skewness"] > n3_skew_min,
        "nino4 std": 0.5 <= stats["nino4"]["std"] <= 0.78,
        "nino4 skewness": stats["nino4"]["skewness"] < n4_skew_max,
        "cp fraction": cp_range[0] <= stats["events"]["cp_fraction"] <= cp_range[1],
        "peak variance month": stats["nino3_peak_variance_month"] in (11, 12, 1),
    }
    return [name for name, ok in checks.items() if not ok]


FAST = dict(years=150, seed=0, members=8)  # 1200 member-years, about a second


def test_fast_statistics_subset():
    stats = run_statistics(simulate(**FAST))
    assert statistics_failures(stats, n3_skew_min=0.2, n4_skew_max=-0.2) == [], stats


@pytest.mark.parametrize(
    "broken, expected_failure",
    [
        ({"c2": 0.0}, "nino4 skewness"),  # §3.9: c2 sets Niño 4's skewness
        ({"burst_state_dependent": False}, "nino3 skewness"),  # additive bursts: symmetric ENSO
        ({"zonal_advective_factor": 0.0}, "cp fraction"),  # no zonal-advective feedback: few CP events
        ({"gamma": -6.529}, "nino3 std"),  # wind stress of the wrong sign: no Bjerknes feedback
        ({"thermocline_feedback_factor": 0.5}, "nino3 std"),
    ],
)
def test_fast_check_catches_a_broken_model(broken, expected_failure):
    stats = run_statistics(simulate({"cf23": broken}, **FAST))
    assert expected_failure in statistics_failures(stats, n3_skew_min=0.2, n4_skew_max=-0.2)


@pytest.mark.slow
def test_reference_run_reproduces_the_cf23_statistics(tmp_path):
    """The pipeline's reference run (here 1000 years after 10 spin-up years, seed_reference; the default is longer)
    against the model's published statistics (node means)."""
    section = IdealizedSection(reference_years=1000)
    out = run_reference(tmp_path / "cf23_reference.zarr", idealized=section)
    ds = open_run(out)
    assert ds.sizes == {"member": 1, "time": 12000, "node": 56, "nv": 2}  # nv: each month's bounds (time_bnds)
    stats = run_statistics(ds)
    assert json.loads(ds.attrs["enso_statistics"])["nino3"]["skewness"] == pytest.approx(stats["nino3"]["skewness"])
    assert abs(stats["nino3"]["std"] - 0.85) <= 0.15 and stats["nino3"]["skewness"] > 0.25
    assert abs(stats["nino4"]["std"] - 0.63) <= 0.15 and stats["nino4"]["skewness"] < -0.15
    ev = stats["events"]
    assert ev["ep"] > 100 and ev["cp"] > 100 and 0.25 <= ev["cp_fraction"] <= 0.60
    assert stats["nino3_peak_variance_month"] in (11, 12, 1)
