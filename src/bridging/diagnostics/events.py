"""DJF ENSO event classification (EP / CP El Niño, La Niña, extreme EP El Niño).

Definitions (docs/idealized_models.md, "ENSO events", with its El Niño-first precedence): for each winter, the DJF means of
the Niño 3 and Niño 4 anomalies decide

* **El Niño** when the larger of the two exceeds the threshold (0.5 °C): **EP** if Niño 3 ≥ Niño 4, else **CP**;
* **La Niña** only for winters that are not El Niño, when either index is below −threshold;
* **extreme EP El Niño**: an EP winter whose maximum Niño 3 from April to the following March exceeds the extreme
  threshold (2.5 °C) (Kug et al. 2009; Wang et al. 2019). Extreme EP winters are a subset of EP winters.

A winter is labelled by the year of its December (the El Niño's developing year) and is classified only when its
whole April–March window lies in the record, so every classified winter is classified with the same information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..timeaxis import month_counter

NEUTRAL, EP, CP, LA_NINA = 0, 1, 2, 3
EVENT_CODES = {"ep": EP, "cp": CP, "la_nina": LA_NINA}
EVENT_LABELS = {"ep": "EP El Niño", "cp": "CP El Niño", "la_nina": "La Niña", "extreme_ep": "extreme EP El Niño"}
# Positions inside an April–March window.
_DJF = slice(8, 11)


@dataclass(frozen=True)
class WinterClassification:
    """Per member and winter: DJF index means, the event class (NEUTRAL/EP/CP/LA_NINA) and the extreme-EP flag."""

    winter_year: np.ndarray  # (winter,) year of the December
    djf_nino3: np.ndarray  # (member, winter)
    djf_nino4: np.ndarray
    max_nino3_apr_mar: np.ndarray
    event_class: np.ndarray  # (member, winter) int8
    extreme_ep: np.ndarray  # (member, winter) bool

    @property
    def n_winters(self) -> int:
        return int(self.event_class.size)

    def counts(self) -> dict[str, int]:
        out = {name: int(np.sum(self.event_class == code)) for name, code in EVENT_CODES.items()}
        out["extreme_ep"] = int(np.sum(self.extreme_ep))
        return out

    def per_century(self) -> dict[str, float]:
        n = self.n_winters
        return {name: (100.0 * c / n if n else float("nan")) for name, c in self.counts().items()}

    def member_counts(self) -> list[dict[str, int]]:
        out = []
        for m in range(self.event_class.shape[0]):
            row = {name: int(np.sum(self.event_class[m] == code)) for name, code in EVENT_CODES.items()}
            row["extreme_ep"] = int(np.sum(self.extreme_ep[m]))
            out.append(row)
        return out


def ep_cp_ratio(counts: dict[str, float]) -> float:
    """EP / CP El Niño ratio; inf when there is no CP event but some EP event, NaN when there is neither."""
    ep, cp = float(counts["ep"]), float(counts["cp"])
    if cp == 0:
        return float("inf") if ep > 0 else float("nan")
    return ep / cp


def winter_windows(years: np.ndarray, months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(winter years, start positions) of every April–March window fully inside a gap-free monthly record."""
    counter = month_counter(years, months)
    if counter.size and not np.all(np.diff(counter) == 1):
        raise ValueError("event classification needs a gap-free monthly record")
    first, n = int(counter[0]), counter.size
    candidate_years = np.arange(int(years.min()) - 1, int(years.max()) + 1)
    starts = month_counter(candidate_years, 4) - first
    keep = (starts >= 0) & (starts + 12 <= n)
    return candidate_years[keep], starts[keep]


def classify_winters(
    nino3: np.ndarray,
    nino4: np.ndarray,
    years: np.ndarray,
    months: np.ndarray,
    *,
    threshold: float = 0.5,
    extreme_threshold: float = 2.5,
) -> WinterClassification:
    """Classify every complete winter of (member, time) or (time,) Niño 3 / Niño 4 anomaly series."""
    n3 = np.atleast_2d(np.asarray(nino3, float))
    n4 = np.atleast_2d(np.asarray(nino4, float))
    if n3.shape != n4.shape or n3.shape[-1] != np.asarray(years).size:
        raise ValueError(f"Niño 3 {n3.shape}, Niño 4 {n4.shape} and the time axis ({np.asarray(years).size}) disagree")
    winter_year, starts = winter_windows(np.asarray(years), np.asarray(months))
    window = starts[:, None] + np.arange(12)[None, :]  # (winter, 12)
    w3 = n3[:, window]  # (member, winter, 12)
    w4 = n4[:, window]
    djf3 = w3[:, :, _DJF].mean(axis=-1)
    djf4 = w4[:, :, _DJF].mean(axis=-1)
    peak3 = w3.max(axis=-1)
    larger = np.maximum(djf3, djf4)
    el_nino = larger > threshold
    ep = el_nino & (djf3 >= djf4)
    cp = el_nino & (djf3 < djf4)
    la_nina = ~el_nino & ((djf3 < -threshold) | (djf4 < -threshold))
    event_class = np.full(djf3.shape, NEUTRAL, np.int8)
    event_class[ep] = EP
    event_class[cp] = CP
    event_class[la_nina] = LA_NINA
    extreme = ep & (peak3 > extreme_threshold)
    return WinterClassification(winter_year, djf3, djf4, peak3, event_class, extreme)


def bootstrap_event_frequencies(
    classification: WinterClassification, *, block_years: int, n_samples: int, seed: int, level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Percentile intervals and standard errors of the event frequencies per century (and the EP/CP ratio) by a
    block bootstrap over winters (blocks of ``block_years`` consecutive winters, all members together)."""
    n = classification.winter_year.size
    names = [*EVENT_CODES, "extreme_ep", "ep_cp_ratio"]
    if n == 0:
        return {k: {"ci_low": float("nan"), "ci_high": float("nan"), "se": float("nan")} for k in names}
    block = max(1, min(int(block_years), n))
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_samples, n_blocks))
    positions = (starts[:, :, None] + np.arange(block)).reshape(n_samples, -1)[:, :n]
    # Events per winter (summed over members) for each class; a resample's counts are sums over its winters.
    per_winter = np.stack(
        [np.sum(classification.event_class == code, axis=0) for code in EVENT_CODES.values()]
        + [np.sum(classification.extreme_ep, axis=0)],
        axis=1,
    )  # (winter, 4)
    counts = per_winter[positions].sum(axis=1)  # (resample, 4)
    member_winters = classification.event_class.shape[0] * n
    reps = {k: 100.0 * counts[:, i] / member_winters for i, k in enumerate((*EVENT_CODES, "extreme_ep"))}
    ep, cp = counts[:, 0].astype(float), counts[:, 1].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps["ep_cp_ratio"] = np.where(cp > 0, ep / np.where(cp > 0, cp, 1), np.where(ep > 0, np.inf, np.nan))
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    out = {}
    for k, r in reps.items():
        finite = r[np.isfinite(r)]
        if finite.size < 2:
            out[k] = {"ci_low": float("nan"), "ci_high": float("nan"), "se": float("nan")}
            continue
        # A ratio with no CP event in a resample is infinite; the interval is taken over the finite replicates
        # and the share of infinite ones is reported, instead of silently dropping them.
        lo, hi = np.quantile(finite, q)
        out[k] = {"ci_low": float(lo), "ci_high": float(hi), "se": float(np.std(finite, ddof=1))}
        if k == "ep_cp_ratio":
            out[k]["infinite_fraction"] = float(np.mean(~np.isfinite(r)))
    return out


def event_summary(classification: WinterClassification) -> dict:
    """Counts, frequencies per century and EP/CP ratio, pooled over members, plus per-member counts."""
    counts = classification.counts()
    return {
        "n_winters": classification.n_winters,
        "n_members": int(classification.event_class.shape[0]),
        "counts": counts,
        "per_century": classification.per_century(),
        "ep_cp_ratio": ep_cp_ratio(counts),
        "member_counts": classification.member_counts(),
    }
