"""The summary of one sweep (rule ``sweep_summary``): the headline statistics of the bridging model against the swept
value, per operational model, as CSV, Markdown and the report's HTML page.

Every number comes from the outputs the main run's own functions wrote for each value: the comparison
(:func:`bridging.diagnostics.run.compare_model`: Niño 3 / Niño 4 std and skewness with block-bootstrap CIs and SEs,
the Hellinger distance to the idealized long run with its null band) and the filter's statistics JSON (overall
innovation ratio, the lowest decadal consistency correlation, and the withheld observables' innovation ratio when
some are not assimilated) and the known-truth propagation test (equatorial anomaly correlation of the decoded SST and
D20 with the twin truth, beside the main run's free run as the control). The mean analysis-increment size is not recorded by
the filter; it is computed here from the filter store in observation space: RMS over months and observables of
H x̄_a − H x̄_f = ȳ_a − (y − d), d the stored innovation, in units of each observable's training std.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..diagnostics.acceptance import find_test
from ..diagnostics.tables import INDEX_LABELS, Table, fmt, markdown_table
from ..diagnostics.tables_html import html_page
from ..errors import InputDataError
from ..idealized.pseudo_obs import open_pseudo_obs
from ..settings import PlottingSection
from ..stores import open_zarr_checked
from .figure import plot_sweep
from .filter import read_manifest
from .plan import SweepPlan

INDICES = ("nino3", "nino4")
MOMENTS = ("std", "skewness")
PROPAGATION_FIELDS = ("sst", "thermocline_depth")
EVENTS = ("ep", "cp", "la_nina")
EVENT_HEADERS = {"ep": "EP El Niño /100 yr", "cp": "CP El Niño /100 yr", "la_nina": "La Niña /100 yr"}


def analysis_increment_rms(store: str | Path, experiment: int, observations: np.ndarray) -> float:
    """RMS of the observation-space analysis increment of one experiment, in units of the observables' training std."""
    ds = open_zarr_checked(store, "filter store", ("ensemble_mean", "innovation", "observable_std"))
    n_latent = int(ds.attrs["n_latent"])
    mean_y = ds["ensemble_mean"].isel(experiment=experiment).values[:, n_latent:].astype(np.float64)
    innovation = ds["innovation"].isel(experiment=experiment).values.astype(np.float64)
    y = np.asarray(observations, dtype=np.float64)[: mean_y.shape[0]]
    m = mean_y.shape[1]  # the state's observables (a hierarchy's derived rows follow them in the filter store)
    increment = (mean_y - (y[:, :m] - innovation[:, :m])) / ds["observable_std"].values[:m].astype(np.float64)
    return float(np.sqrt(np.mean(increment**2)))


def filter_health(statistics: Mapping, experiment: int) -> dict:
    """Overall innovation ratio and the lowest decadal consistency correlation of one experiment."""
    overall = statistics["overall"]
    consistency = [
        d["consistency_correlation"][experiment] for d in statistics["per_decade"] if "consistency_correlation" in d
    ]
    withheld = overall.get("withheld_innovation_ratio")
    return {
        "innovation_ratio": overall["innovation_ratio"][experiment],
        "withheld_innovation_ratio": None if withheld is None else withheld[experiment],
        "min_decadal_consistency": min(consistency) if consistency else None,
    }


def propagation_columns(propagation: Mapping) -> dict:
    """Equatorial anomaly correlation with the twin truth of the decoded fields: bridging and the free run."""
    return {
        f"{field}_truth_correlation{suffix}": propagation[field][source]["equator_correlation"]
        for field in PROPAGATION_FIELDS
        for source, suffix in (("bridging", ""), ("free_run", "_free_run"))
    }


def event_columns(comparison: Mapping) -> dict:
    """The bridging model's EP / CP El Niño and La Niña winters per century with their block-bootstrap intervals."""
    events = comparison["event_statistics"]["bridging"]
    row = {}
    for event in EVENTS:
        boot = events.get("bootstrap", {}).get(event, {})
        row.update({f"{event}_per_century": events["per_century"][event], f"{event}_per_century_ci_low": boot.get("ci_low"), f"{event}_per_century_ci_high": boot.get("ci_high")})  # fmt: skip
    return row


def nino3_nino4_correlation(indices: str | Path) -> float:
    """Correlation of the monthly Niño 3 and Niño 4 anomalies (members pooled) of a source's indices.nc: regions
    observed by independent idealized runs lose it (the model hierarchy)."""
    import xarray as xr

    with xr.open_dataset(indices) as ds:
        n3, n4 = ds["nino3"].values.ravel(), ds["nino4"].values.ravel()
    return float(np.corrcoef(n3, n4)[0, 1])


def point_row(comparison: Mapping, health: Mapping, increment: float, propagation: Mapping) -> dict:
    """The headline statistics of one (model, value): the bridging model's moments with CIs, Hellinger to the
    idealized long run with its null band, event frequencies, and the filter health."""
    row: dict = {}
    bridging = comparison["moments"]["bridging"]
    for index in INDICES:
        for moment in MOMENTS:
            m = bridging[index][moment]
            prefix = f"{index}_{moment}"
            row.update({prefix: m["value"], f"{prefix}_ci_low": m.get("ci_low"), f"{prefix}_ci_high": m.get("ci_high"), f"{prefix}_se": m.get("se")})  # fmt: skip
        test = find_test(dict(comparison), "bridging", "idealized", index, "hellinger")
        if test is None:
            raise InputDataError(comparison.get("model", "?"), f"the comparison has no Hellinger test for {index}")
        prefix = f"{index}_hellinger"
        row.update({prefix: test["value"], f"{prefix}_null_low": test["null_low"], f"{prefix}_null_high": test["null_high"], f"{prefix}_p": test["p_value"]})  # fmt: skip
    row.update(event_columns(comparison))
    row.update(health)
    row["analysis_increment_rms"] = increment
    row.update(propagation_columns(propagation))
    return row


def autoencoder_columns(metrics: Mapping) -> dict:
    """A retraining sweep's autoencoder losses on the operational model's held-out months: L_recon, L_corr and the
    norm of the latent–observable cross-covariance ‖C‖ (``autoencoder_metrics.json``, ``final``)."""
    heldout = metrics["final"]["operational_heldout"]
    return {
        "autoencoder_recon_loss": heldout["recon_loss"],
        "autoencoder_corr_loss": heldout["corr_loss"],
        "autoencoder_cross_cov_norm": heldout["cross_cov_norm"],
    }


def summary_rows(
    plan: SweepPlan,
    manifests: Mapping[str, str],
    comparisons: Mapping[str, Mapping[str, str]],
    propagation: Mapping[str, Mapping[str, str]],
    observations,
    autoencoder_metrics: Mapping[str, Mapping[str, str]] | None = None,
    indices: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[dict], dict]:
    """Rows (model × value, in the sweep's order) and the idealized reference's moments (the target)."""
    rows, reference = [], {}
    for model, manifest_path in manifests.items():
        manifest = read_manifest(manifest_path)
        for point in plan.points:
            entry = manifest["points"][point.label]
            comparison = json.loads(Path(comparisons[model][point.label]).read_text())
            statistics = json.loads(Path(entry["statistics"]).read_text())
            experiment = int(entry["experiment"])
            increment = analysis_increment_rms(entry["store"], experiment, observations)
            row = {"model": model, "value": point.label, **point.values}
            if autoencoder_metrics:
                metrics = json.loads(Path(autoencoder_metrics[model][point.label]).read_text())
                row.update(autoencoder_columns(metrics))
            skill = json.loads(Path(propagation[model][point.label]).read_text())
            row.update(point_row(comparison, filter_health(statistics, experiment), increment, skill))
            if indices:
                row["nino3_nino4_correlation"] = nino3_nino4_correlation(indices[model][point.label])
            rows.append(row)
            reference = {i: {m: comparison["moments"]["idealized"][i][m] for m in MOMENTS} for i in INDICES}
    return rows, reference


def _ci(row: Mapping, prefix: str, digits: int, low: str = "ci_low", high: str = "ci_high") -> str:
    text = fmt(row[prefix], digits)
    lo, hi = row.get(f"{prefix}_{low}"), row.get(f"{prefix}_{high}")
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{fmt(lo, digits)}, {fmt(hi, digits)}]"
    return text


def summary_table(plan: SweepPlan, rows: Sequence[Mapping], reference: Mapping) -> Table:
    """The table of the Markdown and HTML pages: value cells with their CI or null band; Hellinger outside its band
    emphasised."""
    retrained = bool(rows) and "autoencoder_recon_loss" in rows[0]
    header = ["model", *plan.keys]
    if retrained:
        header += ["L_recon (held-out)", "L_corr (held-out)", "‖C‖ (held-out)"]
    for index in INDICES:
        label = INDEX_LABELS[index]
        header += [f"{label} std (°C)", f"{label} skewness", f"{label} Hellinger"]
    header += [EVENT_HEADERS[e] for e in EVENTS]
    correlation = bool(rows) and "nino3_nino4_correlation" in rows[0]
    header += ["Niño 3–Niño 4 corr."] if correlation else []
    header += ["innovation ratio", "withheld innovation ratio", "min decadal consistency"]
    header += ["analysis increment (RMS, std units)", "SST truth corr. (free run)", "D20 truth corr. (free run)"]
    body, emphasis = [], []
    for row in rows:
        cells = [row["model"], *(json.dumps(row[k]) if isinstance(row[k], list) else str(row[k]) for k in plan.keys)]
        if retrained:
            cells += [fmt(row["autoencoder_recon_loss"], 4), fmt(row["autoencoder_corr_loss"], 3), fmt(row["autoencoder_cross_cov_norm"], 1)]  # fmt: skip
        marks = [False] * len(cells)
        for index in INDICES:
            h = f"{index}_hellinger"
            cells += [
                _ci(row, f"{index}_std", 2),
                _ci(row, f"{index}_skewness", 2),
                _ci(row, h, 3, "null_low", "null_high"),
            ]
            marks += [False, False, not (row[f"{h}_null_low"] <= row[h] <= row[f"{h}_null_high"])]
        cells += [_ci(row, f"{e}_per_century", 1) for e in EVENTS]
        cells += [fmt(row["nino3_nino4_correlation"], 2)] if correlation else []
        marks += [False] * (len(EVENTS) + correlation)
        cells += [fmt(row["innovation_ratio"]), fmt(row["withheld_innovation_ratio"]), fmt(row["min_decadal_consistency"], 3), fmt(row["analysis_increment_rms"], 3)]  # fmt: skip
        cells += [f"{fmt(row[f'{f}_truth_correlation'], 2)} ({fmt(row[f'{f}_truth_correlation_free_run'], 2)})" for f in PROPAGATION_FIELDS]  # fmt: skip
        marks += [False] * 6
        body.append(cells)
        emphasis.append(marks)
    target = "; ".join(
        f"{INDEX_LABELS[i]} std {fmt(reference[i]['std']['value'])} °C, skewness {fmt(reference[i]['skewness']['value'])}"
        for i in INDICES
        if i in reference
    )
    note = (
        "The bridging model for each value (moments and event frequencies with block-bootstrap intervals at "
        "diagnostics.confidence_level, 95 % by default; Hellinger distance to the idealized long run with the "
        "reference's 5–95 % null band at equal record length, bold when outside). "
        f"Target (idealized long run): {target}. Filter health: the whole run's innovation ratio (≈ 1 when "
        "consistent; over the assimilated observables), the same over the withheld ones (— when all are assimilated: "
        "an independent check), the lowest decade's decoded-vs-analysis correlation, and the RMS analysis increment of "
        "the observables. Truth corr.: equatorial anomaly correlation of the decoded ensemble-mean SST / D20 with the "
        "twin truth (the idealized run), in brackets the main run's free run (the control). The other sources of "
        "each comparison are the main run's."
        + (
            " Each value has its own autoencoder and forecast model; their losses are on the operational model's "
            "held-out months (L_corr = −mean designated correlation, ‖C‖ the Frobenius norm of cov(z, y/std y))."
            if retrained
            else ""
        )
    )
    return Table(f"Sweep {plan.name}: {', '.join(plan.keys)}", header, body, note, emphasis)


def write_summary(
    plan_params: Mapping,
    *,
    models: Sequence[str],
    manifests: Sequence[str],
    comparisons: Sequence[str],
    propagation: Sequence[str],
    pseudo_obs: str | Path,
    autoencoder_metrics: Sequence[str] = (),
    indices: Sequence[str] = (),
    csv_path: str | Path,
    markdown: str | Path,
    html: str | Path,
    figure: str | Path,
    plotting: Mapping | PlottingSection,
    description: str = "",
) -> list[dict]:
    """Write the sweep's summary (CSV: every number, one row per model and value; Markdown and HTML: the table; the
    figure of :mod:`.figure`).

    ``manifests``: the sweep filter job's manifest of each model; ``comparisons`` / ``propagation`` / ``indices``:
    the comparison and propagation JSON and the bridging model's indices.nc of each (model, value), models in the
    order of ``models``, values in the sweep's order.
    """
    plan = SweepPlan.from_params(plan_params)
    n = len(plan.points)
    if len(manifests) != len(models) or not len(comparisons) == len(propagation) == len(models) * n:
        raise ValueError("one manifest per model and one comparison and propagation test per model and value needed")

    def by_model(paths):
        return {m: dict(zip(plan.labels, paths[k * n : (k + 1) * n])) for k, m in enumerate(models)}

    comparisons, propagation = by_model(comparisons), by_model(propagation)
    autoencoder_metrics = by_model(list(autoencoder_metrics)) if autoencoder_metrics else None
    indices = by_model(list(indices)) if indices else None
    manifests = dict(zip(models, manifests))
    observations = open_pseudo_obs(pseudo_obs)["observations"].transpose("time", "obs").values
    rows, reference = summary_rows(
        plan, manifests, comparisons, propagation, observations, autoencoder_metrics, indices
    )
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else json.dumps(row[k]) if isinstance(row[k], list) else row[k]) for k in columns})  # fmt: skip
    write_text_atomic(buffer.getvalue(), csv_path)
    table = summary_table(plan, rows, reference)
    intro = description or f"Sensitivity of the bridging model to {', '.join(plan.keys)}."
    write_text_atomic("\n".join([f"# Sweep {plan.name}", "", intro, "", *markdown_table(table)]), markdown)
    write_text_atomic(html_page(f"Sweep {plan.name}", intro, [table]), html)
    plot_sweep(plan.name, plan.labels, rows, reference, figure, PlottingSection.model_validate(plotting))
    return rows
