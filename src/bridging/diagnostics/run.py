"""Stage functions of the diagnostics rules: per-source statistics, per-model comparison, figures.

Per source (``RUN/diagnostics/sources/<source>/``):

* ``statistics.json`` — per index (Niño 3, 3.4, 4; WP thermocline index for gridded sources): pooled std,
  skewness, Pearson kurtosis with block-bootstrap intervals and standard errors, per-member values, variance by
  calendar month, the KDE bandwidth; DJF event counts, frequencies per century (with bootstrap intervals) and the
  EP/CP ratio. Non-finite numbers are written as ``null``.
* ``indices.nc`` — the index anomaly series ``(member, time)``, their PDFs on the common grid ``pdf_x`` and the
  per-winter classification ``(member, winter)``.
* ``maps.nc`` (gridded sources) — the maps of :mod:`bridging.diagnostics.spatial`.

Per model (``RUN/diagnostics/<model>/``): ``comparison.json`` (everything), ``comparison.csv`` / ``comparison.md``
(the table), ``acceptance.json`` and the figures.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import xarray as xr

from .. import cf
from ..atomic import atomic_output, write_text_atomic
from ..errors import InputDataError
from ..observables import ObservationLayout
from ..settings import DiagnosticsSection, PlottingSection, config_hash
from ..stores import open_store, open_zarr, open_zarr_checked, provenance
from ..timeaxis import time_encoding, year_month
from . import plots
from .compare import REQUIRED_ROLES, ROLES, compare_sources, load_source
from .events import (
    EVENT_CODES,
    EVENT_LABELS,
    WinterClassification,
    bootstrap_event_frequencies,
    classify_winters,
    event_summary,
    winter_windows,
)
from .indices import BOXES, NINO_INDICES, as_member_time, idealized_indices, indices_from_file, store_indices
from .propagation import run_propagation
from .spatial import spatial_diagnostics
from .statistics import MOMENTS, bootstrap_series_statistics, index_pdf, moments, pdf_grid
from .tables import csv_rows, render_markdown, write_table_csv
from .tables_html import render_acceptance_html, render_html, render_tests_html

log = logging.getLogger(__name__)

STATISTICS_CONVENTIONS = {
    "moments": "population moments (ddof=0) of monthly anomalies pooled over members; kurtosis is Pearson's (Gaussian = 3)",
    "anomalies": "against the monthly climatology of the analysed record, pooled over members",
    "bootstrap": "block bootstrap, blocks of whole years starting at the record's first calendar month, all members together; percentile intervals",
    "pdf": "Gaussian KDE on the common grid pdf_x, the same bandwidth rule for every source",
    "events": "DJF means; El Niño when max(Niño3, Niño4) > threshold (EP if Niño3 >= Niño4, else CP); La Niña only if not El Niño; extreme EP: EP with max Niño3 April–March > extreme threshold; winter = year of December",
}


def jsonable(value):
    """Recursively convert numpy scalars/arrays to Python and non-finite floats to None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_json(data: dict, path) -> None:
    write_text_atomic(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n", path)


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write a diagnostics netCDF atomically, its CF metadata completed (:func:`bridging.cf.complete`)."""
    ds = cf.complete(ds)
    encoding = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].dtype.kind == "f"}
    for name in ("time", cf.TIME_BOUNDS):
        if name in ds.variables:
            # The store convention's units; the calendar stays the source's own (noleap for every project store).
            encoding[name] = {k: v for k, v in time_encoding().items() if k != "calendar"}
    for name in cf.no_fill_variables(ds):
        encoding[name] = {**encoding.get(name, {}), "_FillValue": None}
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


# --------------------------------------------------------------------------------------------------- per source


def index_statistics(
    indices: xr.Dataset, settings: DiagnosticsSection
) -> tuple[dict, xr.Dataset, WinterClassification, np.ndarray]:
    """Statistics of every index in ``indices`` and the DJF event classification.

    Returns (the ``indices`` and ``events`` parts of statistics.json, the indices.nc Dataset, the classification,
    the time positions of each classified winter's April).
    """
    years, months = year_month(indices["time"])
    grid = pdf_grid(settings.pdf_limit, settings.pdf_points)
    stats: dict = {}
    out = xr.Dataset(
        coords={"time": indices["time"], "pdf_x": ("pdf_x", grid, {"units": "degC", "long_name": "index anomaly"})}
    )
    for name in indices.data_vars:
        series = as_member_time(indices[name])
        boot = bootstrap_series_statistics(
            series,
            months,
            block=settings.bootstrap_block_months,
            n_samples=settings.bootstrap_samples,
            seed=settings.seed,
            level=settings.confidence_level,
        )
        per_member = moments(series, axis=-1)
        entry = {
            "units": BOXES[name].units,
            "long_name": BOXES[name].long_name,
            **{m: boot[m] for m in MOMENTS},
            "monthly_variance": boot["monthly_variance"],
            "members": {m: per_member[m].tolist() for m in MOMENTS},
        }
        attrs = {
            "units": BOXES[name].units,
            "long_name": f"{BOXES[name].long_name}, anomaly",
            "cell_methods": "time: mean",
        }
        out[name] = (("member", "time"), series, attrs)
        if name in NINO_INDICES:
            pdf, bandwidth = index_pdf(series, grid, settings.kde_bandwidth)
            mass = float(np.trapezoid(pdf, grid))
            if mass < 0.999:
                log.warning(
                    "%s: %.2f%% of the PDF lies outside ±%g °C (diagnostics.pdf_limit)",
                    name,
                    100 * (1 - mass),
                    settings.pdf_limit,
                )
            entry["kde_bandwidth"] = bandwidth
            entry["pdf_mass_on_grid"] = mass
            out[f"{name}_pdf"] = (
                ("pdf_x",),
                pdf,
                {
                    "units": "degC-1",
                    "long_name": f"probability density (Gaussian KDE) of {name}",
                    "bandwidth": bandwidth,
                },
            )
        stats[name] = entry
    n3, n4 = as_member_time(indices["nino3"]), as_member_time(indices["nino4"])
    classification = classify_winters(
        n3, n4, years, months, threshold=settings.event_threshold, extreme_threshold=settings.extreme_threshold
    )
    _, winter_starts = winter_windows(years, months)
    events = event_summary(classification)
    events["thresholds"] = {"event": settings.event_threshold, "extreme_ep": settings.extreme_threshold}
    events["bootstrap"] = bootstrap_event_frequencies(
        classification,
        block_years=settings.bootstrap_block_months // 12,
        n_samples=settings.bootstrap_samples,
        seed=settings.seed,
        level=settings.confidence_level,
    )
    out = out.assign_coords(
        winter=("winter", classification.winter_year, {"long_name": "year of the winter's December"})
    )
    djf = {"units": "degC", "cell_methods": "time: mean"}
    out["djf_nino3"] = (
        ("member", "winter"),
        classification.djf_nino3,
        {**djf, "long_name": "December-February mean Niño 3 anomaly"},
    )
    out["djf_nino4"] = (
        ("member", "winter"),
        classification.djf_nino4,
        {**djf, "long_name": "December-February mean Niño 4 anomaly"},
    )
    out["max_nino3_apr_mar"] = (
        ("member", "winter"),
        classification.max_nino3_apr_mar,
        {
            "units": "degC",
            "long_name": "largest monthly Niño 3 anomaly from April to March around the winter",
            "cell_methods": "time: maximum",
        },
    )
    out["event_class"] = (
        ("member", "winter"),
        classification.event_class,
        {
            "flag_values": np.array([0, *EVENT_CODES.values()], np.int8),
            "flag_meanings": "neutral " + " ".join(EVENT_CODES),
            "long_name": "DJF event class",
        },
    )
    out["extreme_ep"] = (
        ("member", "winter"),
        classification.extreme_ep.astype(np.int8),
        {"long_name": EVENT_LABELS["extreme_ep"], "flag_values": np.array([0, 1], np.int8), "flag_meanings": "no yes"},
    )
    return {"indices": stats, "events": events}, out, classification, winter_starts


GRIDDED_OPERATOR = "box means (cos-latitude, ocean cells) of the store's fields on the target grid"


def _header(name: str, kind: str, path, indices: xr.Dataset, settings: DiagnosticsSection, operator: str) -> dict:
    years, _ = year_month(indices["time"])
    return {
        "source": name,
        "kind": kind,
        "path": str(path),
        "index_operator": operator,
        "n_members": int(indices.sizes.get("member", 1)),
        "n_months": int(indices.sizes["time"]),
        "years": [int(years.min()), int(years.max())],
        "conventions": STATISTICS_CONVENTIONS,
        "settings": settings.model_dump(mode="json", exclude={"plotting", "acceptance"}),
    }


def read_layout(path) -> ObservationLayout:
    """The observation layout stored with the pseudo-observations (or a latent store)."""
    try:
        ds = open_zarr(path)
        return ObservationLayout.from_dataset(ds)
    except (KeyError, FileNotFoundError, OSError, ValueError) as err:
        raise InputDataError(path, f"no observation layout (obs_* coordinates) readable: {err}") from None


def gridded_source_diagnostics(
    store, *, statistics, indices, maps, diagnostics: dict | DiagnosticsSection, layout=None
) -> dict:
    """Everything per gridded source (operational model, reanalysis, free run, bridging model) from its store.

    ``layout``: a zarr store holding the observation layout (the pseudo-observations); needed for the residual std
    map, which is left out without it.
    """
    settings = DiagnosticsSection.model_validate(diagnostics)
    ds = open_store(store)
    name, kind = ds.attrs.get("source_id", Path(store).stem), ds.attrs.get("source_kind", "unknown")
    log.info("diagnostics of %s (%s) from %s", name, kind, store)
    idx = store_indices(ds, store)
    stats, idx_out, classification, winter_starts = index_statistics(idx, settings)
    obs_layout = read_layout(layout) if layout is not None else None
    maps_ds = spatial_diagnostics(
        ds,
        idx,
        classification,
        winter_starts,
        obs_layout,
        eof_modes=settings.eof_modes,
        residual_modes=settings.residual_observable_modes,
        seed=settings.seed,
        path=store,
    )
    output_attrs = _output_attrs(name, kind, store, ds, settings)
    maps_ds.attrs.update({**output_attrs, "title": f"ENSO diagnostics maps of {name}"})
    record = {**_header(name, kind, store, idx, settings, GRIDDED_OPERATOR), **stats}
    idx_out.attrs.update({**output_attrs, "title": f"ENSO indices of {name}"})
    write_netcdf(idx_out, indices)
    write_netcdf(maps_ds, maps)
    write_json(record, statistics)
    _log_summary(record)
    return record


def idealized_source_diagnostics(
    store, *, statistics, indices, diagnostics: dict | DiagnosticsSection, grid=None, kind: str = "idealized"
) -> dict:
    """Index statistics of an idealized-model run: the long reference run or the pseudo-observation record.

    ``grid``: a project store on the target grid whose ocean mask the indices are averaged over; with it, a CF23
    run's indices are box means of its 2-D reconstruction, the operator of every gridded source
    (:func:`bridging.diagnostics.indices.idealized_indices`).
    """
    settings = DiagnosticsSection.model_validate(diagnostics)
    path = Path(store)
    ds = open_zarr_checked(path, "idealized-run store")
    name = str(ds.attrs.get("model", path.stem))
    name = name if kind == "idealized" else f"{name} pseudo-observation record"
    grid_ds = open_store(grid) if grid is not None else None
    idx, operator = idealized_indices(ds, path, grid_ds)
    stats, idx_out, _, _ = index_statistics(idx, settings)
    record = {**_header(name, kind, store, idx, settings, operator), **stats}
    idx_out.attrs.update({**_output_attrs(name, kind, store, ds, settings), "title": f"ENSO indices of {name}"})
    write_netcdf(idx_out, indices)
    write_json(record, statistics)
    _log_summary(record)
    return record


def _output_attrs(name: str, kind: str, store, ds: xr.Dataset, settings: DiagnosticsSection) -> dict:
    """Global attributes of a diagnostics netCDF: its source, the config hash of the settings it was computed with
    and the provenance (the input store and that store's own config hash)."""
    settings_hash = config_hash(settings.model_dump(mode="json", exclude={"plotting", "acceptance"}))
    return {
        "source": name,
        "kind": kind,
        "config_hash": settings_hash,
        "provenance": provenance(
            [store], settings_hash, stage="diagnostics", input_config_hash=ds.attrs.get("config_hash")
        ),
    }


def _log_summary(record: dict) -> None:
    parts = []
    for name in ("nino3", "nino4"):
        s = record["indices"][name]
        parts.append(
            f"{name} std {s['std']['value']:.2f} skew {s['skewness']['value']:+.2f} kurt {s['kurtosis']['value']:.2f}"
        )
    ev = record["events"]["per_century"]
    parts.append("events/century EP {ep:.1f} CP {cp:.1f} LN {la_nina:.1f} xEP {extreme_ep:.1f}".format(**ev))
    log.info("%s: %s", record["source"], "; ".join(parts))


# --------------------------------------------------------------------------------------------------- per model


def source_inputs(named: dict) -> dict[str, dict[str, str]]:
    """Group named rule inputs ``<role>_<statistics|indices|maps>`` by role (other names, e.g. ``code``, ignored)."""
    out: dict[str, dict[str, str]] = {}
    for key, value in named.items():
        for role in ROLES:
            for kind in ("statistics", "indices", "maps"):
                if key == f"{role}_{kind}":
                    out.setdefault(role, {})[kind] = str(value)
    return out


def load_sources(inputs: dict[str, dict[str, str]]):
    missing = [r for r in REQUIRED_ROLES if r not in inputs]
    if missing:
        raise ValueError(f"the comparison needs the outputs of every source; missing {missing}")
    return {role: load_source(role, p["statistics"], p["indices"], p.get("maps")) for role, p in inputs.items()}


def compare_model(model: str, inputs: dict, outputs: dict, *, diagnostics: dict | DiagnosticsSection) -> dict:
    """The comparison of one bridging experiment: ``outputs`` names ``comparison`` (JSON), ``table_csv``,
    ``table_md``, ``acceptance`` and the report's pages ``summary_html``, ``tests_html``, ``acceptance_html``
    (each optional)."""
    settings = DiagnosticsSection.model_validate(diagnostics)
    sources = load_sources(source_inputs(inputs))
    result = compare_sources(sources, settings, model)
    write_table_csv(csv_rows(result), outputs["table_csv"])
    write_text_atomic(render_markdown(result) + "\n", outputs["table_md"])
    pages = {"summary_html": render_html, "tests_html": render_tests_html, "acceptance_html": render_acceptance_html}
    for name, render in pages.items():
        if outputs.get(name):
            write_text_atomic(render(result), outputs[name])
    write_json(result["acceptance"], outputs["acceptance"])
    write_json(result, outputs["comparison"])
    for c in result["acceptance"]["criteria"]:
        log.info("acceptance %-50s %s", c["name"], ("pass" if c["passed"] else "FAIL") if c["applies"] else "n/a")
    log.info("acceptance overall: %s", "PASSED" if result["acceptance"]["passed"] else "FAILED")
    return result


def plot_model(model: str, inputs: dict, figures: dict, *, plotting: dict | PlottingSection) -> None:
    """All comparison figures of one experiment; ``figures`` maps figure names (:data:`plots.FIGURES`) to paths."""
    settings = PlottingSection.model_validate(plotting)
    comparison_path = inputs["comparison"]
    try:
        comparison = json.loads(Path(comparison_path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputDataError(comparison_path, f"cannot read the comparison ({err})") from None
    sources = load_sources(source_inputs(inputs))
    plots.plot_all(model, comparison, sources, {k: v for k, v in figures.items() if k in plots.FIGURES}, settings)


# --------------------------------------------------------------------------------------------------- the CLI's numbers


def nino_stats(path, variable: str = "sst", diagnostics: dict | DiagnosticsSection | None = None) -> dict:
    """Std, skewness and Pearson kurtosis of Niño 3, 3.4, 4 and the DJF event counts of a monthly gridded file or
    project store — the same functions, hence the same numbers, as the workflow's per-source statistics."""
    settings = DiagnosticsSection.model_validate(diagnostics or {})
    idx = indices_from_file(path, variable)
    years, months = year_month(idx["time"])
    out: dict = {
        "file": str(path),
        "variable": variable,
        "n_members": int(idx.sizes.get("member", 1)),
        "n_months": int(idx.sizes["time"]),
        "years": [int(years.min()), int(years.max())],
    }
    for name in NINO_INDICES:
        values = moments(as_member_time(idx[name]).reshape(-1))
        out[name] = {m: float(values[m]) for m in MOMENTS}
    classification = classify_winters(
        as_member_time(idx["nino3"]),
        as_member_time(idx["nino4"]),
        years,
        months,
        threshold=settings.event_threshold,
        extreme_threshold=settings.extreme_threshold,
    )
    out["events"] = {**classification.counts(), "winters": classification.n_winters}
    return out


def propagation_stage(pseudo_obs, bridging, free_run, *, result, figure, plotting: dict | PlottingSection) -> dict:
    """The rule ``propagation``: the known-truth test's numbers (JSON) and its figure."""
    out = run_propagation(pseudo_obs, bridging, free_run)
    write_json(out, result)
    plots.plot_propagation(out, figure, PlottingSection.model_validate(plotting))
    return out
