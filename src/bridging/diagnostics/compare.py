"""Comparison of the sources of one bridging experiment against two references, the sampling floor, and the
acceptance criteria.

Sources (roles): the **operational** model, its forecast model's **free run**, the **bridging** model, the
**reanalysis** and the idealized model's **long run**. References: the reanalysis AND the idealized long run; each
source is compared with each reference that is not itself.

Distances per index (Niño 3, 3.4, 4): Hellinger distance between the KDE PDFs (common grid and bandwidth rule),
Wasserstein-1 between the samples, |Δ std|, |Δ skewness|, with the bootstrap standard error of each difference
(√(se_source² + se_reference²), the two samples being independent). Event frequencies per century and the EP/CP
ratio. Maps (gridded sources only): centred pattern correlation and RMSE against the reanalysis; the residual
std maps also against the operational model, off the equator, for the acceptance criterion.

Sampling floor: the same distances between two independent, equally long samples of one model — disjoint
chunks of the idealized long run, as long as the bridging run and as long as the reanalysis. A distance is only
meaningful where it exceeds its floor (two 300-year samples of one model differ by a Hellinger distance of about
0.05).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..settings import AcceptanceSection, DiagnosticsSection
from ..timeaxis import year_month
from .events import EVENT_CODES, classify_winters, ep_cp_ratio
from .indices import NINO_INDICES, as_member_time
from .spatial import pattern_statistics
from .statistics import hellinger_distance, index_pdf, moments, pdf_grid, wasserstein1_distance

ROLES = ("operational", "free_run", "bridging", "reanalysis", "idealized")
REFERENCES = ("reanalysis", "idealized")
ROLE_LABELS = {
    "operational": "operational model",
    "free_run": "forecast-model free run",
    "bridging": "bridging model",
    "reanalysis": "reanalysis",
    "idealized": "idealized long run",
}
EVENT_NAMES = (*EVENT_CODES, "extreme_ep")
DISTANCE_INDICES = ("nino3", "nino34", "nino4")
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


def distribution_distances(source: SourceResult, reference: SourceResult, grid: np.ndarray) -> dict[str, dict]:
    """Per index: Hellinger, Wasserstein-1, |Δ std|, |Δ skewness| and the standard errors of the differences."""
    out = {}
    for index in DISTANCE_INDICES:
        s_stats = source.statistics["indices"][index]
        r_stats = reference.statistics["indices"][index]
        row = {
            "hellinger": hellinger_distance(source.pdf(index), reference.pdf(index), grid),
            "wasserstein1": wasserstein1_distance(source.series(index), reference.series(index)),
        }
        for moment in ("std", "skewness"):
            row[f"diff_{moment}"] = s_stats[moment]["value"] - r_stats[moment]["value"]
            row[f"abs_diff_{moment}"] = abs(row[f"diff_{moment}"])
            row[f"se_diff_{moment}"] = math.hypot(s_stats[moment]["se"], r_stats[moment]["se"])
        out[index] = row
    return out


def event_distances(source: SourceResult, reference: SourceResult) -> dict[str, float]:
    s, r = source.statistics["events"], reference.statistics["events"]
    out = {f"abs_diff_{k}_per_century": abs(s["per_century"][k] - r["per_century"][k]) for k in EVENT_NAMES}
    s_ratio, r_ratio = _ratio(s), _ratio(r)
    out["abs_diff_ep_cp_ratio"] = abs(s_ratio - r_ratio) if math.isfinite(s_ratio) and math.isfinite(r_ratio) else float("nan")
    return out


def _ratio(events: dict) -> float:
    return ep_cp_ratio(events["counts"])


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
    if not (np.array_equal(lat, reference.maps["lat"].values) and np.array_equal(source.maps["lon"].values, reference.maps["lon"].values)):
        raise ValueError(f"maps of {source.name} and {reference.name} are on different grids")
    region = None
    if min_abs_lat is not None:
        region = (np.abs(lat) > min_abs_lat)[:, None] & np.ones((1, source.maps.sizes["lon"]), bool)
    out = {}
    for name, var, sel in map_names(source.maps):
        if var not in reference.maps:
            continue
        a = reference.maps[var].sel(sel).values
        b = source.maps[var].sel(sel).values
        out[name] = pattern_statistics(a, b, lat, region)
    return out


# --------------------------------------------------------------------------------------------------- sampling floor


def _chunks(series: np.ndarray, length: int) -> list[tuple[int, int]]:
    """(member, start) of disjoint chunks of ``length`` months, starting at whole years of the record."""
    n_member, n_time = series.shape
    per_member = n_time // length
    return [(m, c * length) for m in range(n_member) for c in range(per_member)]


def sampling_floor(long_run: SourceResult, length: int, settings: DiagnosticsSection) -> dict:
    """Distances between every pair of disjoint ``length``-month chunks of one model's long run.

    Returns ``{"length_months", "n_chunks", "n_pairs", "<index>": {metric: {"mean", "p90"}}, "events": {...}}``;
    empty metrics (NaN) when the run holds fewer than two chunks. ``length`` is rounded down to whole years so that
    every chunk starts in the same calendar month and holds the same winters.
    """
    length = int(length) // 12 * 12
    series = {index: long_run.series(index) for index in NINO_INDICES}
    chunks = _chunks(series["nino3"], length) if length >= 24 else []
    grid = pdf_grid(settings.pdf_limit, settings.pdf_points)
    years, months = year_month(long_run.indices["time"])
    out: dict = {"length_months": length, "n_chunks": len(chunks)}
    pairs = list(itertools.combinations(range(len(chunks)), 2))
    out["n_pairs"] = len(pairs)
    metrics = ("hellinger", "wasserstein1", "abs_diff_std", "abs_diff_skewness")

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"mean": float("nan"), "p90": float("nan")}
        return {"mean": float(np.mean(values)), "p90": float(np.quantile(values, 0.9))}

    for index in DISTANCE_INDICES:
        samples = [series[index][m, s : s + length] for m, s in chunks]
        pdfs = [index_pdf(x, grid, settings.kde_bandwidth)[0] for x in samples]
        mom = [moments(x) for x in samples]
        values = {k: [] for k in metrics}
        for i, j in pairs:
            values["hellinger"].append(hellinger_distance(pdfs[i], pdfs[j], grid))
            values["wasserstein1"].append(wasserstein1_distance(samples[i], samples[j]))
            values["abs_diff_std"].append(abs(float(mom[i]["std"] - mom[j]["std"])))
            values["abs_diff_skewness"].append(abs(float(mom[i]["skewness"] - mom[j]["skewness"])))
        out[index] = {k: summary(v) for k, v in values.items()}
    events = []
    for m, s in chunks:
        cls = classify_winters(
            series["nino3"][m, s : s + length],
            series["nino4"][m, s : s + length],
            years[s : s + length],
            months[s : s + length],
            threshold=settings.event_threshold,
            extreme_threshold=settings.extreme_threshold,
        )
        counts = cls.counts()
        events.append((cls.per_century(), ep_cp_ratio(counts)))
    ev = {f"abs_diff_{k}_per_century": [] for k in EVENT_NAMES}
    ev["abs_diff_ep_cp_ratio"] = []
    for i, j in pairs:
        for k in EVENT_NAMES:
            ev[f"abs_diff_{k}_per_century"].append(abs(events[i][0][k] - events[j][0][k]))
        ri, rj = events[i][1], events[j][1]
        if math.isfinite(ri) and math.isfinite(rj):
            ev["abs_diff_ep_cp_ratio"].append(abs(ri - rj))
    out["events"] = {k: summary(v) for k, v in ev.items()}
    return out


# --------------------------------------------------------------------------------------------------- the comparison


def compare_sources(sources: dict[str, SourceResult], settings: DiagnosticsSection, model: str) -> dict:
    """The whole comparison of one experiment as a JSON-able dict (the table, the figures and the acceptance
    check are all made from it)."""
    missing = [r for r in ROLES if r not in sources]
    if missing:
        raise ValueError(f"compare_sources needs every role; missing {missing}")
    grid = pdf_grid(settings.pdf_limit, settings.pdf_points)
    result: dict = {
        "model": model,
        "sources": {
            role: {
                "name": src.name,
                "label": ROLE_LABELS[role],
                "n_members": int(src.statistics["n_members"]),
                "n_months": int(src.statistics["n_months"]),
                "years": src.statistics["years"],
            }
            for role, src in sources.items()
        },
        "settings": settings.model_dump(mode="json", exclude={"plotting"}),
        "comparisons": [],
    }
    for role in ROLES:
        for ref in REFERENCES:
            if ref == role:
                continue
            src, reference = sources[role], sources[ref]
            entry = {
                "source": role,
                "reference": ref,
                "indices": distribution_distances(src, reference, grid),
                "events": event_distances(src, reference),
                "maps": map_comparisons(src, reference),
            }
            result["comparisons"].append(entry)
    # What the bridge kept of the operational model's own detail: maps against the operational model, off the
    # observed equator (the residual std map is the discriminating one).
    acc = settings.acceptance
    result["versus_operational"] = {
        role: {
            "all_cells": map_comparisons(sources[role], sources["operational"]),
            "off_equator": map_comparisons(sources[role], sources["operational"], acc.residual_min_abs_lat),
        }
        for role in ("free_run", "bridging", "reanalysis")
    }
    idealized = sources["idealized"]
    result["floor"] = {
        "bridging_length": sampling_floor(idealized, sources["bridging"].n_time, settings),
        "reanalysis_length": sampling_floor(idealized, sources["reanalysis"].n_time, settings),
        "operational_length": sampling_floor(idealized, sources["operational"].n_time, settings),
    }
    result["moments"] = {
        role: {index: src.statistics["indices"][index] for index in src.statistics["indices"]} for role, src in sources.items()
    }
    result["event_statistics"] = {role: src.statistics["events"] for role, src in sources.items()}
    result["acceptance"] = check_acceptance(result, acc)
    return result


def _floor_for(result: dict, source: str, reference: str, index: str) -> dict:
    """The Hellinger sampling floor (mean, p90) for comparing ``source`` with ``reference``: that of the floor
    entry whose chunk length is closest to the shorter of the two records."""
    entries = [f for f in result.get("floor", {}).values() if f.get("n_pairs", 0) > 0]
    if not entries or "sources" not in result:
        return {"mean": float("nan"), "p90": float("nan"), "years": None}
    lengths = {role: info["n_months"] for role, info in result["sources"].items()}  # months per member
    target = min(lengths[source], lengths[reference]) // 12 * 12
    best = min(entries, key=lambda f: abs(f["length_months"] - target))
    h = best[index]["hellinger"]
    return {"mean": h["mean"], "p90": h["p90"], "years": best["length_months"] // 12}


def _comparison(result: dict, source: str, reference: str) -> dict:
    return next(c for c in result["comparisons"] if c["source"] == source and c["reference"] == reference)


def check_acceptance(result: dict, acceptance: AcceptanceSection) -> dict:
    """Pass/fail of each acceptance criterion of the bridging model against its operational model.

    1. Hellinger distance of Niño 3 and Niño 4 at least ``hellinger_reduction`` smaller than the operational
       model's, against each reference.
    2. Std and skewness of Niño 3 / Niño 4: where the operational model differs from a reference by more than
       ``significance_se`` standard errors of the difference, the bridging model is closer. Where it does not
       differ significantly the criterion does not apply (recorded as passed, ``applies: false``).
    3. EP/CP ratio closer to each reference than the operational model's.
    4. Residual std map (SST and thermocline depth) poleward of ``residual_min_abs_lat``: pattern correlation with
       the operational model's ≥ ``residual_pattern_correlation`` and RMS amplitude ratio ≥
       ``residual_amplitude_ratio``.
    """
    criteria = []
    for ref in REFERENCES:
        op, br = _comparison(result, "operational", ref), _comparison(result, "bridging", ref)
        for index in ACCEPTANCE_INDICES:
            h_op, h_br = op["indices"][index]["hellinger"], br["indices"][index]["hellinger"]
            limit = (1.0 - acceptance.hellinger_reduction) * h_op
            # The criterion is applied as stated; beside it, what sampling noise alone gives (two samples of one
            # model as long as the shorter of the two records compared), so a reader sees when the operational
            # model is not distinguishable from the reference, or when the threshold lies below what any record
            # of the bridging model's length could reach.
            floor_op = _floor_for(result, "operational", ref, index)
            floor_br = _floor_for(result, "bridging", ref, index)
            criteria.append(
                {
                    "name": f"hellinger_{index}_vs_{ref}",
                    "description": f"Hellinger({index}) vs {ref}: bridging ≤ {1 - acceptance.hellinger_reduction:.2f} × operational",
                    "applies": True,
                    "passed": bool(h_br <= limit),
                    "value": h_br,
                    "threshold": limit,
                    "operational": h_op,
                    "floor_operational_length": floor_op,
                    "floor_bridging_length": floor_br,
                    "operational_above_floor": bool(h_op > floor_op["p90"]) if np.isfinite(floor_op["p90"]) else None,
                    "threshold_above_floor": bool(limit > floor_br["mean"]) if np.isfinite(floor_br["mean"]) else None,
                }
            )
        for index in ACCEPTANCE_INDICES:
            for moment in ("std", "skewness"):
                d_op = op["indices"][index][f"abs_diff_{moment}"]
                se = op["indices"][index][f"se_diff_{moment}"]
                d_br = br["indices"][index][f"abs_diff_{moment}"]
                applies = bool(d_op > acceptance.significance_se * se)
                criteria.append(
                    {
                        "name": f"{moment}_{index}_vs_{ref}",
                        "description": (
                            f"{moment} of {index} vs {ref}: bridging closer than operational where the operational "
                            f"model differs by > {acceptance.significance_se:g} standard errors"
                        ),
                        "applies": applies,
                        "passed": bool(d_br < d_op) if applies else True,
                        "value": d_br,
                        "threshold": d_op,
                        "operational_significance": d_op / se if se > 0 else float("inf"),
                    }
                )
        r_ref = _ratio(result["event_statistics"][ref])
        r_op = _ratio(result["event_statistics"]["operational"])
        r_br = _ratio(result["event_statistics"]["bridging"])
        # An undefined ratio (no CP event) is infinitely far from a defined one; an undefined reference ratio
        # cannot be approached, so the criterion does not apply (noted, not silently passed as a comparison).
        defined = bool(np.isfinite(r_ref))
        d_op = abs(r_op - r_ref) if np.isfinite([r_op, r_ref]).all() else float("inf")
        d_br = abs(r_br - r_ref) if np.isfinite([r_br, r_ref]).all() else float("inf")
        criteria.append(
            {
                "name": f"ep_cp_ratio_vs_{ref}",
                "description": f"EP/CP ratio closer to {ref} than the operational model's",
                "applies": defined,
                "passed": bool(d_br < d_op) if defined else True,
                "value": r_br,
                "threshold": r_op,
                "reference": r_ref,
                **({} if defined else {"note": f"the {ref} has no CP El Niño, so its EP/CP ratio is undefined"}),
            }
        )
    off = result["versus_operational"]["bridging"]["off_equator"]
    for field in MAP_FIELDS:
        stats = off.get(f"{field}_residual_std")
        if stats is None:
            criteria.append(
                {"name": f"residual_std_{field}", "description": "residual std map missing", "applies": True, "passed": False}
            )
            continue
        corr, ratio = stats["pattern_correlation"], stats["amplitude_ratio"]
        criteria.append(
            {
                "name": f"residual_std_{field}",
                "description": (
                    f"{field} residual std map poleward of {acceptance.residual_min_abs_lat:g}°: pattern correlation with the "
                    f"operational model ≥ {acceptance.residual_pattern_correlation:g} and amplitude ratio ≥ "
                    f"{acceptance.residual_amplitude_ratio:g}"
                ),
                "applies": True,
                "passed": bool(
                    corr >= acceptance.residual_pattern_correlation and ratio >= acceptance.residual_amplitude_ratio
                ),
                "value": {"pattern_correlation": corr, "amplitude_ratio": ratio},
                "threshold": {
                    "pattern_correlation": acceptance.residual_pattern_correlation,
                    "amplitude_ratio": acceptance.residual_amplitude_ratio,
                },
            }
        )
    return {"passed": all(c["passed"] for c in criteria), "criteria": criteria}


# --------------------------------------------------------------------------------------------------- the table


def _row_values(result: dict, comparison: dict | None, role: str) -> dict:
    row: dict = {}
    moments_ = result["moments"][role]
    for index in DISTANCE_INDICES:
        for moment in ("std", "skewness", "kurtosis"):
            row[f"{index}_{moment}"] = moments_[index][moment]["value"]
        if comparison is not None:
            d = comparison["indices"][index]
            for metric in ("hellinger", "wasserstein1", "abs_diff_std", "abs_diff_skewness"):
                row[f"{index}_{metric}"] = d[metric]
    ev = result["event_statistics"][role]
    for k in EVENT_NAMES:
        row[f"{k}_per_century"] = ev["per_century"][k]
    row["ep_cp_ratio"] = _ratio(ev)
    if comparison is not None:
        row.update(comparison["events"])
        for name, stats in comparison["maps"].items():
            row[f"{name}_pattern_correlation"] = stats["pattern_correlation"]
            row[f"{name}_rmse"] = stats["rmse"]
    return row


def comparison_rows(result: dict) -> list[dict]:
    """The comparison as flat rows: one per (source, reference), then the sampling floors (mean and 90th percentile)."""
    rows = []
    for comp in result["comparisons"]:
        role = comp["source"]
        src = result["sources"][role]
        rows.append(
            {
                "source": role,
                "source_name": src["name"],
                "reference": comp["reference"],
                "years": src["n_months"] // 12,
                "members": src["n_members"],
                **_row_values(result, comp, role),
            }
        )
    for key, floor in result["floor"].items():
        for stat in ("mean", "p90"):
            row = {
                "source": f"sampling floor ({stat})",
                "source_name": f"{result['sources']['idealized']['name']}: pairs of {floor['length_months'] // 12}-year chunks",
                "reference": "same model",
                "years": floor["length_months"] // 12,
                "members": 1,
            }
            for index in DISTANCE_INDICES:
                for metric, v in floor[index].items():
                    row[f"{index}_{metric}"] = v[stat]
            for metric, v in floor["events"].items():
                row[metric] = v[stat]
            rows.append(row)
    return rows


def write_table_csv(rows: list[dict], path) -> None:
    import csv
    import io

    from ..atomic import write_text_atomic

    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    write_text_atomic(buffer.getvalue(), path)


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    def cells(row):
        return " | ".join(str(c).replace("|", "\\|") for c in row)  # a literal | would end the cell

    lines = ["| " + cells(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + cells(row) + " |" for row in body]
    return lines + [""]


def render_markdown(result: dict) -> str:
    """The comparison as Markdown: index distributions, events, maps, the sampling floor and the acceptance check."""
    src = result["sources"]
    lines = [f"# ENSO diagnostics: bridging {result['model']}", ""]
    lines.append("Sources: " + "; ".join(
        f"{ROLE_LABELS[r]} `{s['name']}` ({s['n_months'] // 12} years × {s['n_members']} member{'s' if s['n_members'] > 1 else ''})"
        for r, s in src.items()
    ))
    lines.append("")
    lines.append(
        f"Moments are pooled over members, with bootstrap {100 * result['settings']['confidence_level']:g} % intervals in "
        "brackets (kurtosis is Pearson's, Gaussian = 3). "
        "H = Hellinger distance of the KDE PDFs, W1 = Wasserstein-1 (°C). A distance matters only where it exceeds the "
        "sampling floor below."
    )
    lines.append("")
    for ref in REFERENCES:
        lines.append(f"## Index distributions against the {ROLE_LABELS[ref]}")
        lines.append("")
        header = ["source"]
        for index in ACCEPTANCE_INDICES:
            header += [f"{index} std", f"{index} skewness", f"{index} H", f"{index} W1"]
        body = []
        ref_m = result["moments"][ref]
        row = [f"**{ROLE_LABELS[ref]} (reference)**"]
        for index in ACCEPTANCE_INDICES:
            row += [_ci(ref_m[index]["std"]), _ci(ref_m[index]["skewness"]), "0", "0"]
        body.append(row)
        for comp in (c for c in result["comparisons"] if c["reference"] == ref):
            m = result["moments"][comp["source"]]
            row = [ROLE_LABELS[comp["source"]]]
            for index in ACCEPTANCE_INDICES:
                d = comp["indices"][index]
                row += [_ci(m[index]["std"]), _ci(m[index]["skewness"]), _fmt(d["hellinger"], 3), _fmt(d["wasserstein1"], 3)]
            body.append(row)
        lines += _md_table(header, body)
    lines.append("## DJF events (per century, pooled over members)")
    lines.append("")
    header = ["source", "EP El Niño", "CP El Niño", "La Niña", "extreme EP", "EP/CP ratio"]
    body = []
    for role in ROLES:
        ev = result["event_statistics"][role]
        ci = ev.get("bootstrap", {})
        body.append(
            [ROLE_LABELS[role]]
            + [_ci({"value": ev["per_century"][k], **ci.get(k, {})}, 1) for k in EVENT_NAMES]
            + [_ci({"value": _ratio(ev), **ci.get("ep_cp_ratio", {})})]
        )
    lines += _md_table(header, body)
    lines.append("## Maps: centred pattern correlation with the reanalysis (cos-lat weighted, common ocean cells)")
    lines.append("")
    names = []
    for comp in result["comparisons"]:
        names.extend(n for n in comp["maps"] if n not in names)
    if names:
        roles = [c["source"] for c in result["comparisons"] if c["reference"] == "reanalysis" and c["maps"]]
        body = []
        for name in names:
            row = [name]
            for role in roles:
                stats = _comparison(result, role, "reanalysis")["maps"].get(name)
                row.append(_fmt(stats["pattern_correlation"]) if stats else "–")
            body.append(row)
        lines += _md_table(["map"] + [ROLE_LABELS[r] for r in roles], body)
    lines.append("## What the bridge kept: maps against the operational model")
    lines.append("")
    body = []
    for role, per in result["versus_operational"].items():
        for field in MAP_FIELDS:
            for region in ("all_cells", "off_equator"):
                stats = per[region].get(f"{field}_residual_std")
                if stats:
                    body.append(
                        [ROLE_LABELS[role], f"{field} residual std", region.replace("_", " "),
                         _fmt(stats["pattern_correlation"]), _fmt(stats["amplitude_ratio"])]
                    )
    if body:
        lines += _md_table(["source", "map", "cells", "pattern correlation", "amplitude ratio"], body)
    lines.append("## Sampling floor (pairs of disjoint chunks of the idealized long run)")
    lines.append("")
    body = []
    for floor in result["floor"].values():
        years = floor["length_months"] // 12
        row = [f"{years} years ({floor['n_pairs']} pairs)"]
        for index in ACCEPTANCE_INDICES:
            f = floor[index]
            row += [f"{_fmt(f['hellinger']['mean'], 3)} / {_fmt(f['hellinger']['p90'], 3)}",
                    f"{_fmt(f['abs_diff_skewness']['mean'])} / {_fmt(f['abs_diff_skewness']['p90'])}",
                    f"{_fmt(f['abs_diff_std']['mean'])} / {_fmt(f['abs_diff_std']['p90'])}"]
        row.append(f"{_fmt(floor['events']['abs_diff_ep_cp_ratio']['mean'])} / {_fmt(floor['events']['abs_diff_ep_cp_ratio']['p90'])}")
        body.append(row)
    header = ["chunk length"]
    for index in ACCEPTANCE_INDICES:
        header += [f"{index} H (mean / p90)", f"{index} abs Δ skewness", f"{index} abs Δ std"]
    header.append("abs Δ EP/CP ratio")
    lines += _md_table(header, body)
    acc = result["acceptance"]
    lines.append(f"## Acceptance: {'PASSED' if acc['passed'] else 'FAILED'}")
    lines.append("")
    body = []
    for c in acc["criteria"]:
        status = ("pass" if c["passed"] else "**FAIL**") if c["applies"] else f"n/a ({c.get('note', 'not significant')})"
        body.append([c["name"], status, c["description"], _criterion_value(c)])
    lines += _md_table(["criterion", "result", "rule", "value (bridging vs threshold)"], body)
    return "\n".join(lines)


def _ci(stat: dict, digits: int = 2) -> str:
    value = _fmt(stat.get("value"), digits)
    if "ci_low" in stat and "ci_high" in stat and stat["ci_low"] is not None and not math.isnan(float(stat["ci_low"])):
        return f"{value} [{_fmt(stat['ci_low'], digits)}, {_fmt(stat['ci_high'], digits)}]"
    return value


def _criterion_value(c: dict) -> str:
    value, threshold = c.get("value"), c.get("threshold")
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)} (≥ {_fmt(threshold[k])})" for k, v in value.items())
    if value is None:
        return "–"
    text = f"{_fmt(value, 3)} vs {_fmt(threshold, 3)}"
    floor_op, floor_br = c.get("floor_operational_length"), c.get("floor_bridging_length")
    if floor_op and floor_br and floor_op.get("years"):
        text += (
            f"; floor {_fmt(floor_br['mean'], 3)} ({floor_br['years']} yr), operational {_fmt(c['operational'], 3)} vs "
            f"its floor {_fmt(floor_op['mean'], 3)}/{_fmt(floor_op['p90'], 3)} (mean/p90, {floor_op['years']} yr)"
        )
        if c.get("operational_above_floor") is False:
            text += ": operational model within sampling noise of the reference"
        if c.get("threshold_above_floor") is False:
            text += ": threshold below the floor"
    return text
