"""Equal-footing statistics: chunking, the null of a reference at a record length (chunks or block bootstrap), the
tests of a source against it, and bootstrap standard errors, on series whose laws are known."""

from __future__ import annotations

import numpy as np
import pytest

from bridging.diagnostics.equal_footing import (
    STATISTICS,
    ReferenceAtLength,
    bootstrap_chunk_medians,
    chunks,
    common_length,
    compare_at_length,
    null_records,
    p_value,
)
from bridging.diagnostics.statistics import binned_gaussian_kde, gaussian_kde, kde_bandwidth, pdf_grid

GRID = pdf_grid(6.0, 601)
SETTINGS = dict(bandwidth_rule="silverman", n_samples=400, block_months=24, max_partners=60, max_pairs=1500, seed=0)


def reference(series, length, min_chunks=100):
    return ReferenceAtLength.build(series, length, GRID, min_chunks=min_chunks, **SETTINGS)


def test_chunks_are_disjoint_whole_years_per_member():
    x = np.arange(2 * 12 * 10, dtype=float).reshape(2, 120)
    c = chunks(x, 36)
    assert c.shape == (6, 36)  # 3 per member; the last 12 months of each member are left over
    np.testing.assert_array_equal(c[0], np.arange(36))
    np.testing.assert_array_equal(c[3], np.arange(120, 156))
    assert chunks(x, 132).shape == (0, 132)
    assert common_length(1200, 516, 3600) == 516
    with pytest.raises(ValueError, match="whole years"):
        chunks(x, 30)


def test_null_uses_chunks_when_there_are_enough_and_a_block_bootstrap_otherwise():
    rng = np.random.default_rng(0)
    long = rng.standard_normal((1, 12 * 1000))
    assert null_records(long, 120, min_chunks=100, n_samples=50, block_months=24, seed=0).method == "chunks"
    short = rng.standard_normal((1, 12 * 43))
    boot = null_records(short, 12 * 43, min_chunks=100, n_samples=50, block_months=24, seed=0)
    assert boot.method == "block_bootstrap" and boot.records.shape == (50, 12 * 43)
    # every pseudo-record is made of whole-year blocks of the record: calendar months stay in place
    months = np.tile(np.arange(12, dtype=float), 43)[None, :]
    calendar = null_records(months, 12 * 43, min_chunks=100, n_samples=20, block_months=24, seed=1).records
    np.testing.assert_array_equal(calendar, np.tile(np.arange(12), 43)[None, :].repeat(20, axis=0))


def test_chunked_null_of_gaussian_skewness_has_its_known_width():
    """iid Gaussian months: a chunk of n months has skewness ~ N(0, 6/n); the 5–95 % band is ±1.645·√(6/n)."""
    rng = np.random.default_rng(1)
    length = 12 * 30
    ref = reference(rng.standard_normal((1, 12 * 30 * 400)), length)
    assert ref.method == "chunks" and len(ref.null) == 400
    null = ref.null_distribution("skewness")
    half_width = 1.645 * np.sqrt(6 / length)
    assert np.quantile(null, 0.95) == pytest.approx(half_width, rel=0.2)
    assert np.quantile(null, 0.05) == pytest.approx(-half_width, rel=0.2)
    assert np.std(null) == pytest.approx(np.sqrt(6 / length), rel=0.15)


def test_a_source_of_the_reference_law_is_inside_and_a_different_law_is_outside():
    rng = np.random.default_rng(2)
    length = 12 * 30
    ref = reference(rng.standard_normal((1, 12 * 30 * 200)), length)
    same = compare_at_length(ref, chunks(rng.standard_normal((3, length * 3)), length), GRID, "silverman")
    assert all(same[s]["inside_null_band"] for s in STATISTICS), {s: same[s]["p_value"] for s in STATISTICS}
    assert all(same[s]["p_value"] > 0.05 for s in STATISTICS)
    skewed = rng.gamma(2.0, size=(3, length * 3))
    skewed = (skewed - skewed.mean()) / skewed.std()
    far = compare_at_length(ref, chunks(skewed, length), GRID, "silverman")
    for statistic in ("skewness", "kurtosis", "hellinger", "wasserstein1"):
        assert not far[statistic]["inside_null_band"] and far[statistic]["p_value"] < 0.01, statistic
    assert far["std"]["inside_null_band"]  # same variance: the std test must not see a difference
    stronger = compare_at_length(ref, chunks(1.3 * rng.standard_normal((3, length * 3)), length), GRID, "silverman")
    assert not stronger["std"]["inside_null_band"] and not stronger["hellinger"]["inside_null_band"]
    assert stronger["skewness"]["inside_null_band"]


def test_chunk_values_and_sizes_are_reported():
    rng = np.random.default_rng(3)
    ref = reference(rng.standard_normal((1, 12 * 20 * 150)), 240)
    out = compare_at_length(ref, chunks(rng.standard_normal((2, 12 * 60)), 240), GRID, "silverman")
    assert out["std"]["n_chunks"] == 6 and len(out["std"]["chunk_values"]) == 6
    assert out["std"]["value"] == pytest.approx(np.median(out["std"]["chunk_values"]))
    assert out["std"]["null_size"] == 150 and out["hellinger"]["null_size"] == 1500  # pairs, capped
    assert out["std"]["two_sided"] and not out["hellinger"]["two_sided"]


def test_p_values_are_empirical_and_never_zero():
    null = np.arange(1, 101, dtype=float)  # 1 … 100
    assert p_value(1000.0, null, two_sided=False) == pytest.approx(1 / 101)
    assert p_value(50.5, null, two_sided=True) == pytest.approx(1.0)
    assert p_value(0.0, null, two_sided=True) == pytest.approx(2 / 101)
    assert p_value(95.5, null, two_sided=False) == pytest.approx(0.05)  # just above the 95th percentile
    assert p_value(95.5, null, two_sided=True) == pytest.approx(0.10)


def test_bootstrap_standard_error_of_the_median_chunk_std():
    """Gaussian months, 5 members × 120 years in 30-year chunks: the median chunk std scatters like a std of about
    (members × years) / (a little more) months."""
    rng = np.random.default_rng(4)
    length = 12 * 30
    x = rng.standard_normal((5, 12 * 120))
    reps = bootstrap_chunk_medians(x, length, None, ("std",), GRID, "silverman", n_samples=300, block_months=24, seed=0)
    se = np.std(reps["std"], ddof=1)
    pooled_se = 1 / np.sqrt(2 * x.size)
    assert pooled_se < se < 3 * pooled_se
    # members that share their months (the bridging model's members follow one record) are not independent
    shared = np.repeat(rng.standard_normal((1, 12 * 120)), 5, axis=0) + 0.1 * rng.standard_normal((5, 12 * 120))
    se_shared = np.std(
        bootstrap_chunk_medians(
            shared, length, None, ("std",), GRID, "silverman", n_samples=300, block_months=24, seed=0
        )["std"],
        ddof=1,
    )
    assert se_shared > 1.5 * se


def test_binned_kde_agrees_with_the_direct_sum():
    x = np.random.default_rng(5).gamma(3.0, size=3000) * 0.4 - 1.2
    h = kde_bandwidth(x)
    direct = gaussian_kde(x, GRID, h)
    binned = binned_gaussian_kde(x, GRID, h)
    assert np.max(np.abs(binned - direct)) < 1e-3 * direct.max()
    rows = np.stack([x[:1000], x[1000:2000]])
    both = binned_gaussian_kde(rows, GRID, [h, 2 * h])
    np.testing.assert_allclose(both[1], binned_gaussian_kde(x[1000:2000], GRID, 2 * h))
