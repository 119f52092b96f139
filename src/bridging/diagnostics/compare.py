"""The comparison of one bridging experiment: every source against two references at equal footing, the effects of
the curriculum and of the filter, and the maps.

Sources (roles): the **operational** model; its forecast model's **free run** (the control: the same models, no
analysis); the **bridging** model; the **reanalysis**; the idealized model's independent **long run**; and the
**pseudo-observation** record the filter assimilated (the realization the bridging model tracks). References: the
idealized long run (the bridging model's target) and the reanalysis (the truth the curriculum taught the models).

* ``tests`` — every (source, reference, index, statistic) at equal record length with the reference's null band
  and p-value (:mod:`bridging.diagnostics.equal_footing`), at the common length of the three model sources and the
  reference, and at the source's own length when that is longer.
* ``effects`` — the curriculum's effect (free run − operational) and the filter's (bridging − free run) on every
  headline statistic, with block-bootstrap standard errors and two-sided p-values: moments at the common length of
  the three model sources, distances at the common length of each reference, event frequencies per century.
* ``maps`` — pattern statistics of every gridded source's maps against the reanalysis's, and what the bridge kept of
  the operational model off the observed equator.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.special import ndtr

from ..errors import InputDataError
from ..settings import DiagnosticsSection
from .acceptance import check_acceptance, find_test
from .equal_footing import (
    STATISTICS,
    ReferenceAtLength,
    bootstrap_chunk_medians,
    chunks,
    common_length,
    compare_at_length,
)
from .events import EVENT_CODES
from .indices import NINO_INDICES, as_member_time
from .spatial import pattern_statistics
from .statistics import MOMENTS, pdf_grid

ROLES = ("operational", "free_run", "bridging", "reanalysis", "idealized", "pseudo_obs")
REQUIRED_ROLES = ("operational", "free_run", "bridging", "reanalysis", "idealized")
MODEL_ROLES = ("operational", "free_run", "bridging")
REFERENCES = ("idealized", "reanalysis")
ROLE_LABELS = {
    "operational": "operational model",
    "free_run": "free run (control)",
    "bridging": "bridging model",
    "reanalysis": "reanalysis",
    "idealized": "idealized long run",
    "pseudo_obs": "pseudo-observation record",
}
EFFECTS = {"curriculum": ("operational", "free_run"), "filter": ("free_run", "bridging")}
EVENT_NAMES = (*EVENT_CODES, "extreme_ep")
ACCEPTANCE_INDICES = ("nino3", "nino4")
MAP_FIELDS = ("sst", "thermocline_depth")


@dataclass
class SourceResult:
    """The per-source diagnostics written by :mod:`bridging.diagnostics.run`."""

    role: str
    name: str
    statistics: dict
    indices: xr.Dataset
    maps: xr.Dataset | None = None

    @property
    def n_time(self) -> int:
        return int(self.indices.sizes["time"])

    def series(self, index: str) -> np.ndarray:
        return as_member_time(self.indices[index])

    def pdf(self, index: str) -> np.ndarray:
        return np.asarray(self.indices[f"{index}_pdf"].values, float)


def load_source(role: str, statistics_path, indices_path, maps_path=None) -> SourceResult:
    """Read one source's statistics JSON, indices file and (for gridded sources) maps file."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    try:
        statistics = json.loads(Path(statistics_path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputDataError(statistics_path, f"cannot read the statistics ({err})") from None
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    try:
        indices = xr.load_dataset(indices_path, decode_times=coder)
        maps = xr.load_dataset(maps_path) if maps_path is not None else None
    except (OSError, ValueError) as err:
        raise InputDataError([indices_path, maps_path], f"cannot read the diagnostics ({err})") from None
    return SourceResult(role, statistics["source"], statistics, indices, maps)


# --------------------------------------------------------------------------------------------------- maps


def map_names(maps: xr.Dataset) -> list[tuple[str, str, dict]]:
    """(name, variable, selection) of every comparable 2-D map in a maps Dataset."""
    out = []
    for field in MAP_FIELDS:
        for kind in ("std", "regression_nino3", "regression_nino4", "residual_std"):
            var = f"{field}_{kind}"
            if var in maps:
                out.append((var, var, {}))
        if f"{field}_eof" in maps:
            for mode in maps["mode"].values[:2]:
                out.append((f"{field}_eof{int(mode)}", f"{field}_eof", {"mode": int(mode)}))
        if f"{field}_composite" in maps:
            for event in maps["event"].values:
                out.append((f"{field}_composite_{event}", f"{field}_composite", {"event": str(event)}))
    return out


def map_comparisons(source: SourceResult, reference: SourceResult, min_abs_lat: float | None = None) -> dict[str, dict]:
    """Pattern statistics of each of the source's maps against the same map of the reference."""
    if source.maps is None or reference.maps is None:
        return {}
    lat = source.maps["lat"].values
    if not (
        np.array_equal(lat, reference.maps["lat"].values)
        and np.array_equal(source.maps["lon"].values, reference.maps["lon"].values)
    ):
        raise ValueError(f"maps of {source.name} and {reference.name} are on different grids")
    region = None
    if min_abs_lat is not None:
        region = (np.abs(lat) > min_abs_lat)[:, None] & np.ones((1, source.maps.sizes["lon"]), bool)
    out = {}
    for name, var, sel in map_names(source.maps):
        if var not in reference.maps:
            continue
        out[name] = pattern_statistics(
            reference.maps[var].sel(sel).values, source.maps[var].sel(sel).values, lat, region
        )
    return out


# --------------------------------------------------------------------------------------------------- equal footing


class EqualFooting:
    """The references at each record length they are compared at, built once and shared by every source."""

    def __init__(self, sources: dict[str, SourceResult], settings: DiagnosticsSection):
        self.sources = sources
        self.settings = settings
        self.grid = pdf_grid(settings.pdf_limit, settings.pdf_points)
        self._cache: dict[tuple[str, str, int], ReferenceAtLength] = {}

    def months(self, role: str) -> int:
        return self.sources[role].n_time

    def reference(self, ref: str, index: str, length: int) -> ReferenceAtLength:
        key = (ref, index, length)
        if key not in self._cache:
            s = self.settings
            self._cache[key] = ReferenceAtLength.build(
                self.sources[ref].series(index), length, self.grid, bandwidth_rule=s.kde_bandwidth,
                min_chunks=s.null_min_chunks, n_samples=s.null_samples, block_months=s.bootstrap_block_months,
                max_partners=s.null_max_partners, max_pairs=s.null_max_pairs, seed=s.seed,
            )  # fmt: skip
        return self._cache[key]

    def lengths(self, role: str, ref: str) -> dict[str, int]:
        """The record lengths a source is tested at against a reference: for the three model sources the common one
        (their shortest record and the reference's), so they share one null band, and the pair's own (the shorter
        of the source's and the reference's records) when that is longer; for other sources the pair's own."""
        pair = common_length(self.months(role), self.months(ref))
        if role not in MODEL_ROLES:
            return {"pair": pair}
        common = common_length(*(self.months(r) for r in MODEL_ROLES), self.months(ref))
        return {"common": common, **({"pair": pair} if pair != common else {})}

    def tests(self) -> list[dict]:
        """Every source against every reference at equal length. Entries of the three model sources at the common
        length also carry ``se``: the block-bootstrap standard error of their value (for effects and acceptance)."""
        s = self.settings
        out = []
        for ref in REFERENCES:
            for role in (r for r in ROLES if r in self.sources and r not in (ref, "idealized")):
                for kind, length in self.lengths(role, ref).items():
                    for index in NINO_INDICES:
                        reference = self.reference(ref, index, length)
                        series = self.sources[role].series(index)
                        results = compare_at_length(reference, chunks(series, length), self.grid, s.kde_bandwidth)
                        se = {}
                        if role in MODEL_ROLES and kind == "common":
                            replicates = bootstrap_chunk_medians(
                                series, length, reference, STATISTICS, self.grid, s.kde_bandwidth,
                                n_samples=s.se_bootstrap_samples, block_months=s.bootstrap_block_months, seed=s.seed,
                            )  # fmt: skip
                            se = {k: float(np.std(v, ddof=1)) for k, v in replicates.items()}
                        for statistic, r in results.items():
                            out.append(
                                {"source": role, "reference": ref, "index": index, "statistic": statistic,
                                 "record_months": length, "length_kind": kind,
                                 "reference_value": _reference_value(reference, statistic), **r,
                                 **({"se": se[statistic]} if se else {})}
                            )  # fmt: skip
        return out


def effects(result: dict, sources: dict[str, SourceResult]) -> list[dict]:
    """The curriculum's (free run − operational) and the filter's (bridging − free run) effects with two-sided
    p-values from the bootstrap standard errors: moments at the common length against the idealized long run (the
    three model sources' shortest record), distances at each reference's common length, and event frequencies per
    century (block bootstrap over winters)."""
    out = []
    for effect, (before, after) in EFFECTS.items():
        for index in NINO_INDICES:
            for statistic in STATISTICS:
                for ref in ("idealized",) if statistic in MOMENTS else REFERENCES:
                    a, b = (find_test(result, role, ref, index, statistic) for role in (before, after))
                    reference = None if statistic in MOMENTS else ref
                    out.append(
                        _effect_entry(effect, before, after, index, statistic, reference, a["record_months"],
                                      a["value"], b["value"], math.hypot(a["se"], b["se"]))
                    )  # fmt: skip
        for event in (*EVENT_NAMES, "ep_cp_ratio"):
            a, b = (_event_value(sources[role].statistics["events"], event) for role in (before, after))
            se = math.hypot(*(_event_se(sources[role].statistics["events"], event) for role in (before, after)))
            out.append(_effect_entry(effect, before, after, "events", event, None, None, a, b, se))
    return out


def _reference_value(reference: ReferenceAtLength, statistic: str) -> float:
    """A moment's value of the reference at the test length: the median over its own records (for a one-record
    reference, that record's value); distances have none."""
    if statistic not in MOMENTS:
        return float("nan")
    return float(np.median(reference.partners.moments[statistic]))


def _event_value(events: dict, name: str) -> float:
    if name == "ep_cp_ratio":
        return float(events["ep_cp_ratio"]) if events.get("ep_cp_ratio") is not None else float("nan")
    return float(events["per_century"][name])


def _event_se(events: dict, name: str) -> float:
    se = events.get("bootstrap", {}).get(name, {}).get("se")
    return float("nan") if se is None else float(se)


def _effect_entry(effect, before, after, index, statistic, reference, length, a, b, se) -> dict:
    diff = b - a
    z = diff / se if se and math.isfinite(se) and se > 0 and math.isfinite(diff) else float("nan")
    return {
        "effect": effect,
        "from": before,
        "to": after,
        "index": index,
        "statistic": statistic,
        "reference": reference,
        "record_months": length,
        "value_from": a,
        "value_to": b,
        "difference": diff,
        "se": se,
        "p_value": float(2.0 * ndtr(-abs(z))) if math.isfinite(z) else float("nan"),
    }


# --------------------------------------------------------------------------------------------------- the comparison


def source_summary(role: str, src: SourceResult) -> dict:
    """Record facts and the pooled moments (plain numbers, with intervals beside them) of one source."""
    st = src.statistics
    out = {
        "name": src.name,
        "label": ROLE_LABELS[role],
        "kind": st.get("kind"),
        "n_members": int(st["n_members"]),
        "n_months": int(st["n_months"]),
        "years": st["years"],
        "index_operator": st.get("index_operator", "box means (cos-latitude, ocean cells) on the target grid"),
    }
    for index in NINO_INDICES:
        entry = {}
        for moment in MOMENTS:
            m = st["indices"][index][moment]
            entry[moment] = m["value"]
            entry[f"{moment}_ci"] = [m.get("ci_low"), m.get("ci_high")]
            entry[f"{moment}_se"] = m.get("se")
        out[index] = entry
    return out


def compare_sources(sources: dict[str, SourceResult], settings: DiagnosticsSection, model: str) -> dict:
    """The whole comparison of one experiment as a JSON-able dict (tables, figures and acceptance come from it)."""
    missing = [r for r in REQUIRED_ROLES if r not in sources]
    if missing:
        raise ValueError(f"compare_sources needs every role; missing {missing}")
    footing = EqualFooting(sources, settings)
    result: dict = {
        "model": model,
        "sources": {role: source_summary(role, src) for role, src in sources.items()},
        "settings": settings.model_dump(mode="json", exclude={"plotting"}),
        "tests": footing.tests(),
        "maps": {
            role: map_comparisons(sources[role], sources["reanalysis"])
            for role in MODEL_ROLES
            if sources[role].maps is not None
        },
    }
    acc = settings.acceptance
    result["versus_operational"] = {
        role: {
            "all_cells": map_comparisons(sources[role], sources["operational"]),
            "off_equator": map_comparisons(sources[role], sources["operational"], acc.residual_min_abs_lat),
        }
        for role in ("free_run", "bridging", "reanalysis")
    }
    result["moments"] = {
        role: {index: src.statistics["indices"][index] for index in src.statistics["indices"]}
        for role, src in sources.items()
    }
    result["event_statistics"] = {role: src.statistics["events"] for role, src in sources.items()}
    result["effects"] = effects(result, sources)
    result["acceptance"] = check_acceptance(result, acc)
    return result


def find_effect(result: dict, effect: str, index: str, statistic: str, reference: str | None = None) -> dict | None:
    return next(
        (
            e
            for e in result["effects"]
            if (e["effect"], e["index"], e["statistic"], e["reference"]) == (effect, index, statistic, reference)
        ),
        None,
    )


__all__ = [
    "STATISTICS",
    "ROLES",
    "REFERENCES",
    "compare_sources",
    "find_test",
    "find_effect",
    "load_source",
    "SourceResult",
]
