"""Equal-footing statistics: every source judged against a reference at equal record length, against the
reference's own sampling variability at that length.

Why: a distance between two PDFs shrinks as the records grow (the KDEs get smoother), and a 43-year record scatters
far more than a 300-year one, so pooled numbers of records of different lengths cannot be compared. Here:

* **Length.** A (source, reference) pair is compared at L = the shorter of the two records (per member, whole years).
  Longer records are cut into disjoint chunks of L months starting at whole years (:func:`chunks`); each chunk
  gives one value, and the source's value is the **median over its chunks** (the chunk values are reported too).
* **Null.** What the statistic looks like between records of the reference itself at length L
  (:func:`null_records`): disjoint chunks of the reference's long record when it holds at least ``min_chunks`` of
  them, otherwise block-bootstrap pseudo-records (whole-year blocks from every member's record, calendar phase
  kept). A moment's null is its distribution over those records; a distance's null is its distribution between pairs
  of them.
* **Test.** Each source's value is reported with the null's 5–95 % band and a p-value: two-sided for moments
  (std, skewness, Pearson kurtosis), one-sided (larger = worse) for distances (Hellinger of the KDE PDFs,
  Wasserstein-1). "Indistinguishable from the reference" means inside the band (for a distance: at most its 95th
  percentile). A source's distance to the reference is the median, over the reference's own length-L records, of the
  distance between the source chunk and that record, so source and null distances are taken between records of the
  same length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .statistics import (
    MOMENTS,
    block_bootstrap_positions,
    hellinger_from_roots,
    hellinger_roots,
    moments,
    record_pdfs,
    trapezoid_weights,
)

DISTANCES = ("hellinger", "wasserstein1")
STATISTICS = (*MOMENTS, *DISTANCES)
BAND = (0.05, 0.95)


def chunks(series: np.ndarray, length: int) -> np.ndarray:
    """(k, length) disjoint chunks of a (member, time) series, ``length`` months each, starting at whole years of
    each member's record (member by member, earliest first)."""
    x = np.atleast_2d(np.asarray(series, float))
    if length < 12 or length % 12:
        raise ValueError(f"chunk length must be whole years (a positive multiple of 12 months), got {length}")
    per_member = x.shape[1] // length
    if per_member == 0:
        return np.empty((0, length))
    return x[:, : per_member * length].reshape(x.shape[0] * per_member, length)


def common_length(*n_months: int) -> int:
    """The equal-footing record length of sources with these records (months per member): the shortest, whole years."""
    return int(min(n_months)) // 12 * 12


@dataclass
class NullRecords:
    """Records of a reference at one length: the null's raw material."""

    records: np.ndarray  # (m, length)
    method: str  # "chunks" | "block_bootstrap"


def null_records(
    series: np.ndarray, length: int, *, min_chunks: int, n_samples: int, block_months: int, seed: int
) -> NullRecords:
    """Length-``length`` records of a (member, time) reference: its disjoint chunks when there are at least
    ``min_chunks``, else ``n_samples`` block-bootstrap pseudo-records (blocks of ``block_months`` whole months starting
    at whole years of any member's record, laid end to end and cut to ``length``)."""
    x = np.atleast_2d(np.asarray(series, float))
    own = chunks(x, length)
    if own.shape[0] >= min_chunks:
        return NullRecords(own, "chunks")
    n_member, n_time = x.shape
    block = min(block_months, n_time // 12 * 12)
    rng = np.random.default_rng(seed)
    positions = block_bootstrap_positions(n_time, block, n_samples, rng, length=length)  # (n_samples, length)
    # every block of a pseudo-record comes from a randomly drawn member
    member = rng.integers(0, n_member, size=(n_samples, -(-length // block)))
    member = np.repeat(member, block, axis=1)[:, :length]
    return NullRecords(x[member, positions], "block_bootstrap")


class RecordSet:
    """Statistics of equal-length records, computed once: moments, KDE PDFs on the common grid, sorted samples."""

    def __init__(self, records: np.ndarray, grid: np.ndarray, bandwidth_rule: str):
        self.records = np.atleast_2d(np.asarray(records, float))
        self.grid = grid
        self.bandwidth_rule = bandwidth_rule
        self.moments = moments(self.records, axis=-1)

    @cached_property
    def pdfs(self) -> np.ndarray:
        return record_pdfs(self.records, self.grid, self.bandwidth_rule)

    @cached_property
    def roots(self) -> np.ndarray:
        return hellinger_roots(self.pdfs, self.grid)

    @cached_property
    def sorted(self) -> np.ndarray:
        return np.sort(self.records, axis=-1)

    def __len__(self) -> int:
        return self.records.shape[0]

    def distances(self, other: RecordSet, statistic: str) -> np.ndarray:
        """(n_self, n_other) distances between every record of self and every record of other."""
        if self.records.shape[1] != other.records.shape[1]:
            raise ValueError("distances at equal footing need records of one length")
        if statistic == "wasserstein1":  # equal sample sizes: the mean absolute difference of the order statistics
            rows = max(1, int(2e7 // max(1, other.sorted.size)))  # bound the (rows, n_other, length) temporary
            return np.concatenate(
                [
                    np.abs(self.sorted[i : i + rows, None, :] - other.sorted[None]).mean(axis=2)
                    for i in range(0, len(self), rows)
                ]
            )
        if statistic == "hellinger":
            return hellinger_from_roots(self.roots, other.roots, self.grid)
        raise ValueError(f"unknown distance {statistic!r}")

    def pair_distances(self, statistic: str, pairs: np.ndarray) -> np.ndarray:
        """(p,) distances between the records of each index pair (i, j) of self."""
        i, j = pairs[:, 0], pairs[:, 1]
        if statistic == "wasserstein1":
            return np.abs(self.sorted[i] - self.sorted[j]).mean(axis=1)
        if statistic == "hellinger":
            return np.sqrt(np.clip(1.0 - ((self.roots[i] * self.roots[j]) @ trapezoid_weights(self.grid)), 0.0, None))
        raise ValueError(f"unknown distance {statistic!r}")


def null_pairs(n: int, max_pairs: int, seed: int) -> np.ndarray:
    """(p, 2) index pairs i < j of n records: all of them, or ``max_pairs`` drawn without repetition."""
    if n < 2:
        return np.empty((0, 2), int)
    i, j = np.triu_indices(n, k=1)
    pairs = np.stack([i, j], axis=1)
    if pairs.shape[0] > max_pairs:
        pairs = pairs[np.random.default_rng(seed).choice(pairs.shape[0], max_pairs, replace=False)]
    return pairs


def p_value(value: float, null: np.ndarray, two_sided: bool) -> float:
    """Empirical p-value of ``value`` under ``null``: the share of the null at least as extreme (doubled, two-sided),
    never below 1 / (size + 1), so that a value just outside the 5–95 % band has p ≤ 0.10 (two-sided) or ≤ 0.05."""
    null = np.asarray(null, float)
    null = null[np.isfinite(null)]
    if not math.isfinite(value) or null.size == 0:
        return float("nan")
    floor = 1.0 / (null.size + 1)
    upper = max(np.count_nonzero(null >= value) / null.size, floor)
    if not two_sided:
        return float(upper)
    lower = max(np.count_nonzero(null <= value) / null.size, floor)
    return float(min(1.0, 2.0 * min(upper, lower)))


@dataclass
class ReferenceAtLength:
    """A reference's records and null at one length: computed once, shared by every source compared with it."""

    length: int
    partners: RecordSet  # the reference's own records of this length (its record, or its chunks)
    null: RecordSet
    method: str
    pairs: np.ndarray

    @classmethod
    def build(cls, series: np.ndarray, length: int, grid: np.ndarray, *, bandwidth_rule: str, min_chunks: int,
              n_samples: int, block_months: int, max_partners: int, max_pairs: int, seed: int) -> ReferenceAtLength:  # fmt: skip
        own = chunks(series, length)
        if own.shape[0] == 0:
            raise ValueError(f"the reference record is shorter than {length // 12} years")
        null = null_records(
            series, length, min_chunks=min_chunks, n_samples=n_samples, block_months=block_months, seed=seed
        )
        null_set = RecordSet(null.records, grid, bandwidth_rule)
        if null.method == "chunks":
            partners = (
                null_set
                if len(null_set) <= max_partners
                else RecordSet(null.records[:max_partners], grid, bandwidth_rule)
            )
        else:
            partners = RecordSet(own[:max_partners], grid, bandwidth_rule)
        return cls(length, partners, null_set, null.method, null_pairs(len(null_set), max_pairs, seed))

    def null_distribution(self, statistic: str) -> np.ndarray:
        if statistic in MOMENTS:
            return np.asarray(self.null.moments[statistic], float)
        return self.null.pair_distances(statistic, self.pairs)

    def source_values(self, source: RecordSet, statistic: str) -> np.ndarray:
        """One value per source chunk: the moment, or the median distance to the reference's records."""
        if statistic in MOMENTS:
            return np.asarray(source.moments[statistic], float)
        return np.median(source.distances(self.partners, statistic), axis=1)


def compare_at_length(reference: ReferenceAtLength, source_chunks: np.ndarray, grid: np.ndarray, bandwidth_rule: str,
                 statistics=STATISTICS) -> dict[str, dict]:  # fmt: skip
    """Per statistic: the source's median chunk value, its chunk values, the null band and the p-value."""
    source = RecordSet(source_chunks, grid, bandwidth_rule)
    out = {}
    for statistic in statistics:
        values = reference.source_values(source, statistic)
        null = reference.null_distribution(statistic)
        value = float(np.median(values))
        low, high = (float(q) for q in np.quantile(null, BAND))
        two_sided = statistic in MOMENTS
        inside = (low <= value <= high) if two_sided else (value <= high)
        out[statistic] = {
            "value": value,
            "chunk_values": values.tolist(),
            "null_low": low,
            "null_high": high,
            "null_median": float(np.median(null)),
            "p_value": p_value(value, null, two_sided),
            "inside_null_band": bool(inside),
            "two_sided": two_sided,
            "n_chunks": int(len(source)),
            "null_size": int(null.size),
            "null_method": reference.method,
        }
    return out


def bootstrap_chunk_medians(
    series: np.ndarray,
    length: int,
    reference: ReferenceAtLength | None,
    statistics,
    grid: np.ndarray,
    bandwidth_rule: str,
    *,
    n_samples: int,
    block_months: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Block-bootstrap replicates of a source's equal-length values (the median over its length-``length`` chunks).

    Each replicate resamples whole-year blocks of the record, the same months for every member (the bridging
    model's members share one pseudo-observation record, so they are not independent), then chunks and evaluates
    it exactly as :func:`compare_at_length` does. Distances need the ``reference``'s records; moments do not.
    """
    x = np.atleast_2d(np.asarray(series, float))
    n_time = x.shape[1]
    block = min(block_months, n_time // 12 * 12)
    positions = block_bootstrap_positions(n_time, block, n_samples, np.random.default_rng(seed))
    out = {statistic: np.empty(n_samples) for statistic in statistics}
    for r in range(n_samples):
        records = RecordSet(chunks(x[:, positions[r]], length), grid, bandwidth_rule)
        for statistic in statistics:
            if statistic in MOMENTS:
                values = records.moments[statistic]
            else:
                values = reference.source_values(records, statistic)
            out[statistic][r] = np.median(values)
    return out
