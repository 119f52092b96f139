"""Headline ENSO statistics of idealized runs (and of the demo data's drivers), as plain numbers.

The definitions are the diagnostics stage's (:mod:`bridging.diagnostics.statistics` for moments: population std,
g1 skewness, Pearson kurtosis; :mod:`bridging.diagnostics.events` for the DJF EP/CP/La Niña classification with
the El Niño-first precedence), so the numbers recorded here and the diagnostics agree by construction. This module only
adds the anomaly step for raw model series and a compact summary for logs, store attributes and the demo data's
statistics files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..diagnostics.events import classify_winters
from ..diagnostics.statistics import moments, monthly_variance
from ..timeaxis import year_month


def monthly_anomalies(series, months, *, pool_leading: bool = True) -> np.ndarray:
    """series (..., time) minus the mean of its calendar month.

    ``pool_leading``: the leading dimensions share one climatology (members of one model); False gives every
    leading index its own (distinct quantities, e.g. observables).
    """
    x = np.asarray(series, dtype=np.float64)
    months = np.asarray(months)
    out = np.empty_like(x)
    for month in range(1, 13):
        sel = months == month
        if sel.any():
            block = x[..., sel]
            clim = block.mean() if pool_leading else block.mean(axis=-1, keepdims=True)
            out[..., sel] = block - clim
    return out


def nino_statistics(anomaly) -> dict[str, float]:
    """std, skewness (g1), Pearson kurtosis and number of months of an anomaly series (any shape, pooled)."""
    x = np.asarray(anomaly, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    m = moments(x)
    return {
        "std": float(m["std"]),
        "skewness": float(m["skewness"]),
        "kurtosis": float(m["kurtosis"]),
        "n_months": int(x.size),
    }


def index_statistics(nino3, nino4, years, months, nino34=None) -> dict[str, object]:
    """Moments, seasonal variance of Niño 3 and DJF event counts of (member, time) or (time,) anomaly series."""
    nino3 = np.atleast_2d(np.asarray(nino3, dtype=np.float64))
    nino4 = np.atleast_2d(np.asarray(nino4, dtype=np.float64))
    out: dict[str, object] = {"nino3": nino_statistics(nino3), "nino4": nino_statistics(nino4)}
    if nino34 is not None:
        out["nino34"] = nino_statistics(nino34)
    var = monthly_variance(nino3, months)
    out["nino3_variance_by_month"] = [float(v) for v in var]
    out["nino3_peak_variance_month"] = int(np.nanargmax(var) + 1)
    classification = classify_winters(nino3, nino4, np.asarray(years), np.asarray(months))
    counts = classification.counts()
    n_el = counts["ep"] + counts["cp"]
    out["events"] = {
        **counts,
        "n_winters": classification.n_winters,
        "cp_fraction": counts["cp"] / n_el if n_el else float("nan"),
    }
    return out


def run_statistics(ds: xr.Dataset, *, drop_years: int = 0) -> dict[str, object]:
    """Statistics of a run store (``nino3``/``nino34``/``nino4`` on ([member,] time), raw model anomalies).

    Anomalies against the run's monthly climatology, members pooled; ``drop_years`` more years are discarded first
    (stores written by :mod:`bridging.idealized.run` have their spin-up removed already).
    """
    years, months = year_month(ds["time"])
    keep = years >= years.min() + drop_years
    years, months = years[keep], months[keep]
    series = {}
    for name in ("nino3", "nino34", "nino4"):
        values = np.atleast_2d(np.asarray(ds[name].values, dtype=np.float64))[..., keep]
        series[name] = monthly_anomalies(values, months)
    out = index_statistics(series["nino3"], series["nino4"], years, months, nino34=series["nino34"])
    out["years"] = int(np.unique(years).size)
    out["members"] = int(ds.sizes.get("member", 1))
    return out


def summary_line(stats: Mapping[str, object]) -> str:
    """One line with the headline numbers."""
    n3, n4, ev = stats["nino3"], stats["nino4"], stats["events"]
    return (
        f"Niño 3 std {n3['std']:.2f} skew {n3['skewness']:+.2f} | Niño 4 std {n4['std']:.2f} skew {n4['skewness']:+.2f} | "
        f"winters {ev['n_winters']}: EP {ev['ep']} CP {ev['cp']} (CP {ev['cp_fraction']:.0%} of El Niños) "
        f"La Niña {ev['la_nina']} extreme EP {ev['extreme_ep']}"
    )
