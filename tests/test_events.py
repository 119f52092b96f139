"""DJF event classification: EP / CP El Niño, La Niña, extreme EP, with the El Niño-first precedence."""

from __future__ import annotations

import numpy as np
import pytest

from bridging.diagnostics.events import (
    CP,
    EP,
    LA_NINA,
    NEUTRAL,
    bootstrap_event_frequencies,
    classify_winters,
    ep_cp_ratio,
    event_summary,
    winter_windows,
)
from bridging.timeaxis import year_month_from_counter

FIRST_YEAR = 1950


def record(n_years: int, first_month: int = 1):
    counter = FIRST_YEAR * 12 + first_month - 1 + np.arange(12 * n_years)
    return year_month_from_counter(counter)


def set_djf(series, years, months, winter, value):
    """Give the DJF months of ``winter`` (December of that year, Jan/Feb of the next) the value ``value``."""
    sel = ((years == winter) & (months == 12)) | ((years == winter + 1) & (months <= 2))
    series[sel] = value


def classify_cases(cases: dict[int, tuple[float, float]], n_years: int = 12, peaks: dict | None = None):
    """Build Niño 3/4 series from {winter: (DJF Niño 3, DJF Niño 4)} and {(year, month): Niño 3} peaks."""
    years, months = record(n_years)
    n3, n4 = np.zeros(years.size), np.zeros(years.size)
    for winter, (a, b) in cases.items():
        set_djf(n3, years, months, winter, a)
        set_djf(n4, years, months, winter, b)
    for (year, month), value in (peaks or {}).items():
        n3[(years == year) & (months == month)] = value
    cls = classify_winters(n3, n4, years, months, threshold=0.5, extreme_threshold=2.5)
    by_winter = {int(w): (int(c), bool(x)) for w, c, x in zip(cls.winter_year, cls.event_class[0], cls.extreme_ep[0])}
    return cls, by_winter


def test_constructed_winters_are_classified_with_el_nino_first():
    cases = {
        1950: (1.0, 0.6),  # EP: Niño 3 larger
        1951: (0.6, 1.0),  # CP: Niño 4 larger
        1952: (0.8, -0.9),  # dipole: El Niño (EP) takes precedence over La Niña
        1953: (-0.9, 0.7),  # dipole: CP El Niño, not La Niña
        1954: (0.7, 0.7),  # tie: EP (Niño 3 ≥ Niño 4)
        1955: (-0.6, -0.2),  # La Niña through Niño 3
        1956: (0.1, -0.7),  # La Niña through Niño 4
        1957: (0.5, 0.3),  # exactly at the threshold: not an event (strict)
        1958: (-0.5, 0.0),  # exactly at −threshold: not La Niña
        1959: (0.4, 0.45),  # both below the threshold: neutral
    }
    _, by_winter = classify_cases(cases)
    expected = {
        1950: EP,
        1951: CP,
        1952: EP,
        1953: CP,
        1954: EP,
        1955: LA_NINA,
        1956: LA_NINA,
        1957: NEUTRAL,
        1958: NEUTRAL,
        1959: NEUTRAL,
    }
    assert {w: by_winter[w][0] for w in expected} == expected


def test_extreme_ep_uses_april_to_the_following_march_across_the_year():
    cases = {1950: (1.2, 0.4), 1952: (1.2, 0.4), 1954: (1.2, 0.4), 1956: (0.6, 1.0)}
    peaks = {
        (1951, 3): 2.7,  # March after the winter of 1950: inside its window (crosses the calendar year)
        (1953, 4): 2.8,  # April after the winter of 1952: outside its window, inside 1953's (not an EP winter)
        (1954, 4): 2.6,  # April of the developing year 1954: inside
        (1956, 10): 3.0,  # a Niño 3 peak in a CP winter's window: CP winters are never extreme EP
    }
    cls, by_winter = classify_cases(cases, peaks=peaks)
    assert by_winter[1950] == (EP, True)
    assert by_winter[1952] == (EP, False)
    assert by_winter[1953] == (NEUTRAL, False)
    assert by_winter[1954] == (EP, True)
    assert by_winter[1956] == (CP, False)
    assert cls.counts()["extreme_ep"] == 2
    assert cls.max_nino3_apr_mar[0, list(cls.winter_year).index(1950)] == pytest.approx(2.7)


def test_only_winters_with_a_complete_april_to_march_window_are_classified():
    years, months = record(5)  # Jan 1950 … Dec 1954
    winters, starts = winter_windows(years, months)
    assert list(winters) == [1950, 1951, 1952, 1953]  # 1954's window would need Jan–Mar 1955
    assert list(starts) == [3, 15, 27, 39]  # the April of each
    years, months = record(5, first_month=5)  # May 1950 … Apr 1955: 1950's window lacks April 1950
    winters, _ = winter_windows(years, months)
    assert list(winters) == [1951, 1952, 1953, 1954]
    with pytest.raises(ValueError, match="gap-free"):
        winter_windows(np.array([1950, 1950, 1950]), np.array([1, 2, 4]))


def test_members_are_classified_separately_and_pooled():
    years, months = record(6)
    n3 = np.zeros((2, years.size))
    n4 = np.zeros((2, years.size))
    set_djf(n3[0], years, months, 1950, 1.0)  # member 0: one EP
    set_djf(n4[1], years, months, 1950, 1.0)  # member 1: one CP in the same winter
    set_djf(n3[1], years, months, 1952, -1.0)  # and a La Niña
    cls = classify_winters(n3, n4, years, months)
    summary = event_summary(cls)
    assert summary["n_winters"] == 2 * 5
    assert summary["counts"] == {"ep": 1, "cp": 1, "la_nina": 1, "extreme_ep": 0}
    assert summary["per_century"]["ep"] == pytest.approx(10.0)
    assert summary["member_counts"] == [
        {"ep": 1, "cp": 0, "la_nina": 0, "extreme_ep": 0},
        {"ep": 0, "cp": 1, "la_nina": 1, "extreme_ep": 0},
    ]
    assert summary["ep_cp_ratio"] == 1.0


def test_ep_cp_ratio_edge_cases():
    assert ep_cp_ratio({"ep": 3, "cp": 2}) == 1.5
    assert ep_cp_ratio({"ep": 3, "cp": 0}) == float("inf")
    assert np.isnan(ep_cp_ratio({"ep": 0, "cp": 0}))


def test_event_frequency_interval_covers_a_known_rate():
    """Winters drawn independently with P(EP) = 0.25, P(CP) = 0.15: over 40 records of 300 winters the nominal
    95 % bootstrap intervals cover 25 and 15 events per century at least 85 % of the time, and the standard error
    is the binomial one, 100·√(p(1−p)/300)."""
    rng = np.random.default_rng(4)
    n_years, reps = 301, 40
    years, months = record(n_years)
    hits = {"ep": 0, "cp": 0}
    se_ep = []
    for r in range(reps):
        n3, n4 = np.zeros(years.size), np.zeros(years.size)
        u = rng.random(n_years - 1)
        for k, winter in enumerate(range(FIRST_YEAR, FIRST_YEAR + n_years - 1)):
            if u[k] < 0.25:
                set_djf(n3, years, months, winter, 1.0)
            elif u[k] < 0.40:
                set_djf(n4, years, months, winter, 1.0)
        cls = classify_winters(n3, n4, years, months)
        assert cls.counts()["ep"] == int(np.sum(u < 0.25)) and cls.counts()["cp"] == int(
            np.sum((u >= 0.25) & (u < 0.4))
        )
        boot = bootstrap_event_frequencies(cls, block_years=2, n_samples=300, seed=r)
        hits["ep"] += boot["ep"]["ci_low"] <= 25.0 <= boot["ep"]["ci_high"]
        hits["cp"] += boot["cp"]["ci_low"] <= 15.0 <= boot["cp"]["ci_high"]
        assert boot["la_nina"]["ci_high"] == 0.0
        se_ep.append(boot["ep"]["se"])
    assert hits["ep"] / reps >= 0.85 and hits["cp"] / reps >= 0.85, hits
    assert np.mean(se_ep) == pytest.approx(100 * np.sqrt(0.25 * 0.75 / 300), rel=0.15)
