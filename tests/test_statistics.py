"""Moments, block bootstrap, seasonal variance, KDE PDFs and distances between distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bridging.diagnostics.statistics import (
    block_bootstrap_positions,
    bootstrap_series_statistics,
    gaussian_kde,
    hellinger_distance,
    index_pdf,
    kde_bandwidth,
    moments,
    monthly_variance,
    pdf_grid,
    wasserstein1_distance,
)
from bridging.diagnostics.synthetic import ar1


def test_moments_of_a_small_series_by_hand():
    # x = 1, 2, 3, 4, 10: mean 4, deviations −3 −2 −1 0 6 → m2 = 50/5 = 10, m3 = 180/5 = 36, m4 = 1394/5 = 278.8.
    m = moments(np.array([1.0, 2.0, 3.0, 4.0, 10.0]))
    assert m["std"] == pytest.approx(np.sqrt(10.0), abs=1e-12)
    assert m["skewness"] == pytest.approx(36.0 / 10.0**1.5, abs=1e-12)
    assert m["kurtosis"] == pytest.approx(278.8 / 100.0, abs=1e-12)


def test_moments_agree_with_scipy_population_estimators():
    x = np.random.default_rng(0).gamma(2.0, size=1000)
    m = moments(x)
    assert m["skewness"] == pytest.approx(scipy_stats.skew(x, bias=True), rel=1e-10)
    assert m["kurtosis"] == pytest.approx(scipy_stats.kurtosis(x, fisher=False, bias=True), rel=1e-10)
    assert m["std"] == pytest.approx(np.std(x), rel=1e-12)


def test_gaussian_has_skewness_zero_and_pearson_kurtosis_three():
    n = 200_000
    m = moments(np.random.default_rng(1).standard_normal(n))
    # Sampling standard errors of g1 and b2 for a Gaussian: √(6/n) and √(24/n).
    assert abs(m["skewness"]) < 4 * np.sqrt(6 / n)
    assert abs(m["kurtosis"] - 3.0) < 4 * np.sqrt(24 / n)


@pytest.mark.parametrize("shape", [2.0, 8.0])
def test_gamma_matches_its_analytic_skewness_and_kurtosis(shape):
    m = moments(np.random.default_rng(2).gamma(shape, size=1_000_000))
    assert m["skewness"] == pytest.approx(2.0 / np.sqrt(shape), abs=0.03)
    assert m["kurtosis"] == pytest.approx(3.0 + 6.0 / shape, abs=0.15)


def test_lognormal_matches_its_analytic_skewness():
    sigma = 0.4
    m = moments(np.random.default_rng(3).lognormal(0.0, sigma, size=1_000_000))
    analytic = (np.exp(sigma**2) + 2.0) * np.sqrt(np.exp(sigma**2) - 1.0)
    assert m["skewness"] == pytest.approx(analytic, abs=0.03)


def test_monthly_variance_by_hand():
    months = np.tile(np.arange(1, 13), 2)
    x = np.zeros(24)
    x[0], x[12] = 1.0, 3.0  # January holds 1 and 3: variance 1
    x[6], x[18] = -2.0, 2.0  # July: variance 4
    v = monthly_variance(x, months)
    assert v[0] == pytest.approx(1.0)
    assert v[6] == pytest.approx(4.0)
    assert np.all(v[[1, 2, 3, 4, 5, 7, 8, 9, 10, 11]] == 0.0)


def test_bootstrap_blocks_are_whole_years_that_keep_the_calendar_phase():
    rng = np.random.default_rng(0)
    pos = block_bootstrap_positions(130, 24, 50, rng)
    assert pos.shape == (50, 130)
    assert pos.min() >= 0 and pos.max() < 130
    # Each position holds the calendar month of the position it stands in.
    np.testing.assert_array_equal(pos % 12, np.broadcast_to(np.arange(130) % 12, pos.shape))
    # Within a block the months are consecutive.
    assert np.all(np.diff(pos[:, :24], axis=1) == 1)
    with pytest.raises(ValueError, match="whole years"):
        block_bootstrap_positions(130, 18, 5, rng)
    with pytest.raises(ValueError, match="shorter than one bootstrap block"):
        block_bootstrap_positions(20, 24, 5, rng)


@pytest.mark.parametrize("n_time, first_month", [(600, 1), (12 * 41 + 7, 5)])
def test_bootstrap_from_block_sums_equals_resampling_the_series(n_time, first_month):
    """The replicates built from per-block power sums are those of the resampled series themselves (same draws),
    also when the last block is cut and the record starts mid-year."""
    x = np.random.default_rng(3).gamma(2.0, size=(3, n_time))
    months = (np.arange(n_time) + first_month - 1) % 12 + 1
    fast = bootstrap_series_statistics(x, months, block=36, n_samples=300, seed=8)
    positions = block_bootstrap_positions(n_time, 36, 300, np.random.default_rng(8))
    direct = {"std": [], "skewness": [], "kurtosis": [], "monthly": []}
    for pos in positions:
        m = moments(x[:, pos].ravel())
        for k in ("std", "skewness", "kurtosis"):
            direct[k].append(m[k])
        direct["monthly"].append(monthly_variance(x[:, pos], months))
    for k in ("std", "skewness", "kurtosis"):
        reps = np.array(direct[k])
        assert fast[k]["se"] == pytest.approx(np.std(reps, ddof=1), rel=1e-9)
        assert fast[k]["ci_low"] == pytest.approx(np.quantile(reps, 0.025), rel=1e-9)
        assert fast[k]["ci_high"] == pytest.approx(np.quantile(reps, 0.975), rel=1e-9)
    np.testing.assert_allclose(
        fast["monthly_variance"]["ci_high"], np.quantile(np.array(direct["monthly"]), 0.975, axis=0), rtol=1e-9
    )


def test_bootstrap_interval_covers_the_truth_of_a_known_process():
    """Unit-variance Gaussian AR(1) (lag-1 correlation 0.7, like monthly ENSO): std 1, skewness 0, kurtosis 3.

    Block bootstraps undercover slightly; over 120 independent 50-year records the nominal 95 % interval must
    cover the truth at least 85 % of the time (a naive i.i.d. bootstrap of this persistent series covers far less).
    """
    rng = np.random.default_rng(0)
    n, reps = 600, 120
    months = np.arange(n) % 12 + 1
    hits = {"std": 0, "skewness": 0, "kurtosis": 0}
    truth = {"std": 1.0, "skewness": 0.0, "kurtosis": 3.0}
    for r in range(reps):
        s = bootstrap_series_statistics(ar1(n, 0.7, rng)[None], months, block=24, n_samples=200, seed=r)
        for k in hits:
            hits[k] += s[k]["ci_low"] <= truth[k] <= s[k]["ci_high"]
    for k, h in hits.items():
        assert h / reps >= 0.85, f"{k}: coverage {h / reps:.2f}"


def test_bootstrap_standard_error_matches_the_spread_of_independent_records():
    rng = np.random.default_rng(5)
    n = 600
    months = np.arange(n) % 12 + 1
    records = [ar1(n, 0.7, rng) for _ in range(150)]
    spread = np.std([moments(x)["std"] for x in records])
    boot_se = np.mean(
        [
            bootstrap_series_statistics(x[None], months, block=24, n_samples=200, seed=1)["std"]["se"]
            for x in records[:20]
        ]
    )
    assert boot_se == pytest.approx(spread, rel=0.3)


def test_identical_members_are_not_counted_as_independent_information():
    """Blocks take the same months from all members, so five copies of one record have the same uncertainty as
    the record itself (the bridging model's members all follow one pseudo-observation record)."""
    x = ar1(600, 0.7, np.random.default_rng(7))
    months = np.arange(600) % 12 + 1
    one = bootstrap_series_statistics(x[None], months, block=24, n_samples=300, seed=3)
    five = bootstrap_series_statistics(np.repeat(x[None], 5, axis=0), months, block=24, n_samples=300, seed=3)
    for k in ("std", "skewness", "kurtosis"):
        assert five[k]["value"] == pytest.approx(one[k]["value"], rel=1e-12)
        assert five[k]["se"] == pytest.approx(one[k]["se"], rel=1e-9)


def test_monthly_variance_interval_covers_a_seasonally_modulated_variance():
    rng = np.random.default_rng(11)
    n = 12 * 200
    months = np.arange(n) % 12 + 1
    amplitude = 1.0 + 0.8 * np.cos(2 * np.pi * (months - 12) / 12)  # variance peaks in December
    x = amplitude * rng.standard_normal(n)
    s = bootstrap_series_statistics(x[None], months, block=24, n_samples=300, seed=0)["monthly_variance"]
    truth = (1.0 + 0.8 * np.cos(2 * np.pi * (np.arange(1, 13) - 12) / 12)) ** 2
    covered = (np.array(s["ci_low"]) <= truth) & (truth <= np.array(s["ci_high"]))
    assert covered.sum() >= 10
    # November and January are within one standard error of December here; the peak must be in that season.
    assert int(np.argmax(s["value"])) in (10, 11, 0)
    assert max(s["value"]) / min(s["value"]) > 20


def test_bandwidth_rules_by_hand():
    x = np.random.default_rng(0).standard_normal(500)
    sigma = np.std(x, ddof=1)
    iqr = np.subtract(*np.percentile(x, [75, 25]))
    assert kde_bandwidth(x, "silverman") == pytest.approx(0.9 * min(sigma, iqr / 1.349) * 500**-0.2)
    assert kde_bandwidth(x, "scott") == pytest.approx(1.06 * sigma * 500**-0.2)
    with pytest.raises(ValueError, match="zero spread"):
        kde_bandwidth(np.ones(10))


def test_kde_matches_scipy_with_the_same_bandwidth_and_integrates_to_one():
    x = np.random.default_rng(4).gamma(3.0, size=2000) - 3.0
    grid = pdf_grid(20.0, 2001)  # wide enough for the gamma's long right tail
    pdf, h = index_pdf(x, grid, "silverman")  # the binned estimate every source uses
    reference = scipy_stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))(grid)
    np.testing.assert_allclose(gaussian_kde(x, grid, h), reference, rtol=1e-8, atol=1e-12)  # the direct sum: exact
    np.testing.assert_allclose(pdf, reference, atol=1e-3 * reference.max())
    assert np.trapezoid(pdf, grid) == pytest.approx(1.0, abs=1e-4)


def gaussian_pdf(grid, mean, std):
    return np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def analytic_hellinger(m1, s1, m2, s2):
    bc = np.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * np.exp(-((m1 - m2) ** 2) / (4 * (s1**2 + s2**2)))
    return np.sqrt(1 - bc)


def test_hellinger_of_identical_densities_is_zero_and_of_disjoint_ones_is_one():
    grid = pdf_grid(6.0, 601)
    p = gaussian_pdf(grid, 0.0, 0.8)
    assert hellinger_distance(p, p, grid) == pytest.approx(0.0, abs=1e-7)
    far = gaussian_pdf(grid, -4.5, 0.2), gaussian_pdf(grid, 4.5, 0.2)
    assert hellinger_distance(*far, grid) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shift, s2", [(0.3, 1.0), (1.0, 1.0), (0.5, 1.5)])
def test_hellinger_of_gaussians_is_analytic(shift, s2):
    grid = pdf_grid(10.0, 2001)
    p, q = gaussian_pdf(grid, 0.0, 1.0), gaussian_pdf(grid, shift, s2)
    assert hellinger_distance(p, q, grid) == pytest.approx(analytic_hellinger(0.0, 1.0, shift, s2), abs=1e-6)


def test_hellinger_of_kde_of_shifted_gaussian_samples_is_near_analytic():
    """KDE of a Gaussian sample is (nearly) Gaussian with variance σ² + h²; both samples share h."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(20_000)
    grid = pdf_grid(6.0, 1201)
    p, h = index_pdf(x, grid)
    q, _ = index_pdf(x + 0.5, grid)
    s = np.sqrt(1.0 + h * h)
    assert hellinger_distance(p, q, grid) == pytest.approx(analytic_hellinger(0.0, s, 0.5, s), abs=0.01)
    same, _ = index_pdf(x, grid)
    assert hellinger_distance(p, same, grid) == pytest.approx(0.0, abs=1e-7)


def test_wasserstein_of_identical_and_shifted_samples():
    x = np.random.default_rng(0).standard_normal(5000)
    assert wasserstein1_distance(x, x) == 0.0
    assert wasserstein1_distance(x, x + 0.7) == pytest.approx(0.7, abs=1e-12)
    # Two independent samples of one law: small, shrinking like n^-1/2.
    y = np.random.default_rng(1).standard_normal(5000)
    assert wasserstein1_distance(x, y) < 0.05


def test_kde_with_fixed_bandwidth_is_a_mixture_of_gaussians():
    grid = pdf_grid(4.0, 81)
    pdf = gaussian_kde(np.array([-1.0, 1.0]), grid, 0.5)
    expected = 0.5 * (gaussian_pdf(grid, -1.0, 0.5) + gaussian_pdf(grid, 1.0, 0.5))
    np.testing.assert_allclose(pdf, expected, rtol=1e-12)
