"""Statistics of index series: moments with block-bootstrap confidence intervals, seasonal variance, PDFs and
distances between distributions.

Conventions (stated once, used everywhere):

* Moments are population moments of the anomalies (ddof = 0): std = √m2, skewness g1 = m3 / m2^1.5, kurtosis is
  **Pearson's** b2 = m4 / m2² (a Gaussian has 3). For the record lengths here (≥ 40 years of months) the
  small-sample corrections are far below the sampling noise.
* A source with members (dims member × time) is evaluated per member and **pooled**: the pooled sample is every
  member's anomalies together.
* Block bootstrap: blocks of ``block`` months (whole years) start at the record's first calendar month, so every
  resample keeps the calendar phase (ENSO's seasonal phase locking and the monthly variance stay intact). A block
  takes the same months from **all members at once**, which keeps the dependence between members (the bridging
  model's members all follow one pseudo-observation record) and so does not understate the pooled uncertainty.
  Confidence intervals are percentile intervals; the standard error is the std of the bootstrap replicates.
* PDFs are Gaussian kernel density estimates with one bandwidth rule for every source (Silverman's robust rule of
  thumb by default), evaluated on one fixed grid, so Hellinger distances compare like with like.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _scipy_stats

MOMENTS = ("std", "skewness", "kurtosis")


def moments(x: np.ndarray, axis: int = -1) -> dict[str, np.ndarray]:
    """Population std, skewness (g1) and Pearson kurtosis (b2) along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    d = x - x.mean(axis=axis, keepdims=True)
    d2 = d * d  # products, not d**3 / d**4: numpy's float power is several times slower
    m2 = np.mean(d2, axis=axis)
    m3 = np.mean(d2 * d, axis=axis)
    m4 = np.mean(d2 * d2, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"std": np.sqrt(m2), "skewness": m3 / m2**1.5, "kurtosis": m4 / m2**2}


def monthly_variance(x: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Variance of the anomalies for each calendar month (index 0 = January), pooled over members.

    ``x`` is (member, time) or (time,); ``months`` (time,) in 1–12. Anomalies are taken about each month's own mean.
    """
    x = np.atleast_2d(np.asarray(x, float))
    months = np.asarray(months)
    out = np.full(12, np.nan)
    for m in range(1, 13):
        sel = x[:, months == m]
        if sel.size > 1:
            out[m - 1] = np.var(sel)
    return out


def block_bootstrap_starts(
    n_time: int, block: int, n_samples: int, rng: np.random.Generator, length: int | None = None
) -> np.ndarray:
    """(n_samples, n_blocks) start positions of the blocks of each block-bootstrap resample.

    Blocks of ``block`` months start at positions 0, 12, 24, … (the record's first calendar month) and are laid
    end to end, the last one cut to the resample's length (``length``, default the record's), so a resample keeps
    the calendar month of every position when ``block`` is a whole number of years.
    """
    if block % 12:
        raise ValueError(f"block length must be whole years (a multiple of 12 months), got {block}")
    if n_time < block:
        raise ValueError(f"a record of {n_time} months is shorter than one bootstrap block ({block} months)")
    starts = np.arange(0, n_time - block + 1, 12)
    return rng.choice(starts, size=(n_samples, -(-(n_time if length is None else length) // block)))


def block_bootstrap_positions(
    n_time: int, block: int, n_samples: int, rng: np.random.Generator, length: int | None = None
) -> np.ndarray:
    """(n_samples, length) time positions of the resamples of :func:`block_bootstrap_starts` (length: the record's)."""
    chosen = block_bootstrap_starts(n_time, block, n_samples, rng, length)
    positions = (chosen[:, :, None] + np.arange(block)[None, None, :]).reshape(n_samples, -1)
    return positions[:, : (n_time if length is None else length)]


def _block_power_sums(x: np.ndarray, months: np.ndarray, length: int, n_starts: int) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate block (start 12·i, first ``length`` months, all members): Σx, Σx², Σx³, Σx⁴ (n_starts, 4) and
    per calendar month Σx, Σx² (n_starts, 2, 12)."""
    window = 12 * np.arange(n_starts)[:, None] + np.arange(length)[None, :]
    seg = x[:, window]  # (member, start, length)
    seg2 = seg * seg
    powers = np.stack(
        [seg.sum(axis=(0, 2)), seg2.sum(axis=(0, 2)), (seg2 * seg).sum(axis=(0, 2)), (seg2 * seg2).sum(axis=(0, 2))],
        axis=1,
    )
    # Calendar-aligned blocks: offset j of every block holds the calendar month of position j of the record.
    onehot = (months[:length, None] == np.arange(1, 13)[None, :]).astype(np.float64)
    monthly = np.stack([seg.sum(axis=0) @ onehot, seg2.sum(axis=0) @ onehot], axis=1)
    return powers, monthly


def bootstrap_series_statistics(
    series: np.ndarray,
    months: np.ndarray,
    *,
    block: int,
    n_samples: int,
    seed: int,
    level: float = 0.95,
) -> dict:
    """Pooled moments and monthly variance of a (member, time) anomaly series, each with a block-bootstrap
    percentile interval and standard error.

    A resample is a set of blocks, so its power sums (Σx … Σx⁴, per calendar month Σx, Σx²) are sums of the
    blocks' own, precomputed once per candidate block: the cost is (resamples × blocks), not (resamples × months).
    The sums are taken about the record mean, which keeps the central-moment formulas well conditioned.

    Returns ``{"std": {"value", "ci_low", "ci_high", "se"}, "skewness": …, "kurtosis": …,
    "monthly_variance": {"value": [12], "ci_low": [12], "ci_high": [12], "se": [12]}}``.
    """
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    months = np.asarray(months)
    n_member, n_time = x.shape
    rng = np.random.default_rng(seed)
    chosen = block_bootstrap_starts(n_time, block, n_samples, rng) // 12  # (resample, block) candidate numbers
    n_starts = (n_time - block) // 12 + 1
    last = n_time - (chosen.shape[1] - 1) * block  # months of the (possibly cut) last block
    centred = x - x.mean()
    full_powers, full_monthly = _block_power_sums(centred, months, block, n_starts)
    last_powers, last_monthly = _block_power_sums(centred, months, last, n_starts)
    powers = full_powers[chosen[:, :-1]].sum(axis=1) + last_powers[chosen[:, -1]]  # (resample, 4)
    monthly = full_monthly[chosen[:, :-1]].sum(axis=1) + last_monthly[chosen[:, -1]]  # (resample, 2, 12)
    n = n_member * n_time
    e1, e2, e3, e4 = (powers[:, k] / n for k in range(4))
    m2 = e2 - e1 * e1
    m3 = e3 - 3 * e1 * e2 + 2 * e1**3
    m4 = e4 - 4 * e1 * e3 + 6 * e1 * e1 * e2 - 3 * e1**4
    with np.errstate(invalid="ignore", divide="ignore"):
        replicate = {"std": np.sqrt(m2), "skewness": m3 / m2**1.5, "kurtosis": m4 / (m2 * m2)}
        per_month = n_member * np.bincount(months, minlength=13)[1:].astype(np.float64)
        mean_m = monthly[:, 0] / per_month
        replicate_monthly = monthly[:, 1] / per_month - mean_m * mean_m
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    point = moments(x.reshape(-1))
    out: dict = {}
    for name in MOMENTS:
        lo, hi = np.quantile(replicate[name], q)
        out[name] = {
            "value": float(point[name]),
            "ci_low": float(lo),
            "ci_high": float(hi),
            "se": float(np.std(replicate[name], ddof=1)),
        }
    lo, hi = np.quantile(replicate_monthly, q, axis=0)
    out["monthly_variance"] = {
        "value": monthly_variance(x, months).tolist(),
        "ci_low": lo.tolist(),
        "ci_high": hi.tolist(),
        "se": np.std(replicate_monthly, axis=0, ddof=1).tolist(),
    }
    return out


# --------------------------------------------------------------------------------------------------- PDFs


def kde_bandwidth(x: np.ndarray, rule: str = "silverman") -> float:
    """Gaussian-kernel bandwidth of a sample by a named rule.

    ``silverman``: 0.9 · min(σ, IQR/1.349) · n^(−1/5) (Silverman 1986, eq. 3.31; robust to skewed and heavy-tailed
    samples such as Niño 3). ``scott``: 1.06 · σ · n^(−1/5) (the normal-reference rule).
    """
    x = np.asarray(x, float).ravel()
    if x.size < 2:
        raise ValueError("a KDE needs at least two samples")
    return float(kde_bandwidths(x[None, :], rule)[0])


def kde_bandwidths(records: np.ndarray, rule: str = "silverman") -> np.ndarray:
    """:func:`kde_bandwidth` of every row of (k, n) ``records``."""
    x = np.atleast_2d(np.asarray(records, float))
    n = x.shape[1]
    sigma = np.std(x, axis=1, ddof=1)
    if rule == "silverman":
        q75, q25 = np.percentile(x, [75, 25], axis=1)
        iqr = q75 - q25
        spread = np.where(iqr > 0, np.minimum(sigma, iqr / 1.349), sigma)
        h = 0.9 * spread * n ** (-0.2)
    elif rule == "scott":
        h = 1.06 * sigma * n ** (-0.2)
    else:
        raise ValueError(f"unknown bandwidth rule {rule!r}")
    if not np.all(h > 0):
        raise ValueError("the sample has zero spread; its PDF is not defined")
    return h


def pdf_grid(limit: float, points: int) -> np.ndarray:
    """The common evaluation grid of index PDFs, symmetric about zero."""
    return np.linspace(-float(limit), float(limit), int(points))


def gaussian_kde(x: np.ndarray, grid: np.ndarray, bandwidth: float, chunk: int = 4096) -> np.ndarray:
    """Gaussian KDE of the samples ``x`` evaluated on ``grid`` with a fixed ``bandwidth``."""
    x = np.asarray(x, float).ravel()
    grid = np.asarray(grid, float)
    density = np.zeros(grid.size)
    for start in range(0, x.size, chunk):
        z = (grid[:, None] - x[None, start : start + chunk]) / bandwidth
        density += np.exp(-0.5 * z * z).sum(axis=1)
    return density / (x.size * bandwidth * np.sqrt(2.0 * np.pi))


def binned_gaussian_kde(x: np.ndarray, grid: np.ndarray, bandwidth) -> np.ndarray:
    """:func:`gaussian_kde` on a uniform ``grid`` by linear binning and Gaussian smoothing in Fourier space.

    ``x`` is one sample (n,) or equal-size samples as rows (k, n) with one bandwidth each; returns (grid,) or
    (k, grid). Each sample's mass is split between its two nearest grid points, then smoothed with the Gaussian of
    its bandwidth (its exact Fourier transform, on a zero-padded grid so nothing wraps around): O(n + grid log grid)
    per sample instead of O(n · grid), which makes the equal-length null distributions (thousands of PDFs)
    affordable. Mass beyond the grid is dropped (the Hellinger distance renormalises on the grid).
    """
    rows = np.atleast_2d(np.asarray(x, float))
    grid = np.asarray(grid, float)
    bandwidth = np.broadcast_to(np.asarray(bandwidth, float), (rows.shape[0],))
    step = (grid[-1] - grid[0]) / (grid.size - 1)
    if not np.allclose(np.diff(grid), step, rtol=1e-9, atol=1e-12):
        raise ValueError("binned_gaussian_kde needs a uniform grid")
    position = (rows - grid[0]) / step
    inside = (position >= 0) & (position <= grid.size - 1)
    left = np.minimum(np.floor(np.where(inside, position, 0.0)).astype(int), grid.size - 2)
    frac = np.where(inside, position - left, 0.0)
    weight = inside.astype(float)
    offset = (np.arange(rows.shape[0]) * grid.size)[:, None]
    size = rows.shape[0] * grid.size
    counts = np.bincount((left + offset).ravel(), (weight * (1.0 - frac)).ravel(), minlength=size)
    counts += np.bincount((left + 1 + offset).ravel(), (weight * frac).ravel(), minlength=size)
    counts = counts[:size].reshape(rows.shape[0], grid.size)
    pad = int(np.ceil(8.0 * bandwidth.max() / step))
    n_fft = 1 << int(np.ceil(np.log2(grid.size + 2 * pad)))
    freq = np.fft.rfftfreq(n_fft, d=step)
    smoothing = np.exp(-0.5 * (2.0 * np.pi * freq[None, :] * bandwidth[:, None]) ** 2)
    density = np.fft.irfft(np.fft.rfft(counts, n_fft, axis=1) * smoothing, n_fft, axis=1)[:, : grid.size]
    density = np.maximum(density, 0.0) / (rows.shape[1] * step)
    return density[0] if np.ndim(x) == 1 else density


def index_pdf(x: np.ndarray, grid: np.ndarray, rule: str = "silverman") -> tuple[np.ndarray, float]:
    """(density on ``grid``, bandwidth) of the pooled samples ``x`` by the bandwidth ``rule`` (binned KDE)."""
    h = kde_bandwidth(x, rule)
    return binned_gaussian_kde(np.asarray(x, float).ravel(), grid, h), h


def record_pdfs(records: np.ndarray, grid: np.ndarray, rule: str = "silverman") -> np.ndarray:
    """(k, grid) KDE PDFs of equal-length records (rows), each with its own bandwidth by ``rule``."""
    records = np.atleast_2d(np.asarray(records, float))
    return binned_gaussian_kde(records, grid, kde_bandwidths(records, rule))


def _unit_mass(p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    mass = np.trapezoid(p, grid)
    if not mass > 0:
        raise ValueError("a PDF has no mass on the grid")
    return p / mass


def hellinger_distance(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """H = √(1 − ∫√(p q) dx) of two densities on a common grid (0 = identical, 1 = disjoint).

    Each density is renormalised to unit mass on the grid first, so mass outside the grid does not count as a
    difference.
    """
    grid = np.asarray(grid, float)
    p = _unit_mass(np.asarray(p, float), grid)
    q = _unit_mass(np.asarray(q, float), grid)
    bc = np.trapezoid(np.sqrt(np.clip(p, 0, None) * np.clip(q, 0, None)), grid)
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def wasserstein1_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Wasserstein-1 (earth mover's) distance between two samples: ∫|F_x − F_y| dt of their empirical CDFs."""
    return float(_scipy_stats.wasserstein_distance(np.asarray(x, float).ravel(), np.asarray(y, float).ravel()))


def trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """Weights w with Σ w f = ∫ f dx by the trapezoid rule on ``grid``."""
    grid = np.asarray(grid, float)
    w = np.empty(grid.size)
    w[1:-1] = (grid[2:] - grid[:-2]) / 2
    w[0], w[-1] = (grid[1] - grid[0]) / 2, (grid[-1] - grid[-2]) / 2
    return w


def hellinger_roots(pdfs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """√(density / its mass on the grid) of each row: the factors of the Bhattacharyya coefficient."""
    d = np.clip(np.atleast_2d(np.asarray(pdfs, float)), 0, None)
    mass = d @ trapezoid_weights(grid)
    if not np.all(mass > 0):
        raise ValueError("a PDF has no mass on the grid")
    return np.sqrt(d / mass[:, None])


def hellinger_from_roots(p_roots: np.ndarray, q_roots: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(k, m) Hellinger distances from the :func:`hellinger_roots` of two sets of densities."""
    bc = (p_roots * trapezoid_weights(grid)) @ q_roots.T
    return np.sqrt(np.clip(1.0 - bc, 0.0, None))


def hellinger_matrix(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(k, m) Hellinger distances between the rows of p (k, grid) and q (m, grid): :func:`hellinger_distance` for
    many pairs at once."""
    return hellinger_from_roots(hellinger_roots(p, grid), hellinger_roots(q, grid), grid)
