"""The one filter job of a filter-only sweep (rule ``sweep_filter``): every value of the sweep for one model.

The job runs :func:`bridging.da.run.run_filter_stage` once per filter group of the plan (:meth:`SweepPlan.filter_groups`):
a sweep over inflation, model-noise scale or R is one batched run whose experiments are the sweep's values; a sweep
over another ``da`` key (the ensemble size: members of different counts do not stack in one tensor) is one run per
value, one after the other, on the inputs the main run's filter read; a retraining sweep (λ) is one run per value on
that value's own models and latent store. It ends with a manifest (JSON, the rule's
output) that says where each value's analysis lies: the group's store, its experiment index and statistics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from ..atomic import write_text_atomic
from ..da.run import run_filter_stage
from ..settings.sweeps import with_value
from .plan import SweepPlan

log = logging.getLogger(__name__)

#: inputs that a retraining sweep gives once per value (a list in the sweep's order)
PER_VALUE_INPUTS = ("latent_store", "forecast_model", "autoencoder")


def group_paths(manifest: str | Path, group: str) -> tuple[str, str]:
    """The store and statistics JSON of one filter group, in the folder beside the manifest (``<model>/``)."""
    folder = Path(manifest).with_suffix("")
    return str(folder / f"{group}.zarr"), str(folder / f"{group}_statistics.json")


def run_sweep_filter(
    manifest: str | Path,
    *,
    sweep: Mapping,
    da: Mapping,
    model_name: str,
    **stage_inputs,
) -> dict:
    """Run the filter for every point of ``sweep`` (a :meth:`SweepPlan.params` dict) and write the manifest.

    ``stage_inputs`` are those of :func:`run_filter_stage` (stores, models, grid, device, allow_failed_gate); a model
    or latent store given as a list has one entry per value of the sweep, in its order (a retraining sweep's).
    """
    plan = SweepPlan.from_params(sweep)
    per_value = {
        k: dict(zip(plan.labels, v, strict=True))
        for k, v in stage_inputs.items()
        if isinstance(v, list) and k in PER_VALUE_INPUTS
    }
    out: dict = {"sweep": plan.name, "model": model_name, "keys": list(plan.keys), "groups": [], "points": {}}
    started = time.perf_counter()
    for group in plan.filter_groups():
        store, statistics = group_paths(manifest, group.name)
        group_da = {"da": dict(da)}
        for key, value in group.da_overrides.items():
            group_da = with_value(group_da, key, value)
        records = [record for _, record in group.points]
        own = {}
        if per_value:
            if len(group.points) != 1:
                raise ValueError(f"sweep {plan.name}: group {group.name} mixes values with their own models")
            own = {k: v[group.points[0][0]] for k, v in per_value.items()}
        log.info("sweep %s, %s: filter run %s with %d experiment(s)", plan.name, model_name, group.name, len(records))
        t0 = time.perf_counter()
        summary = run_filter_stage(
            store,
            statistics,
            kind="assimilation",
            da=group_da["da"],
            model_name=model_name,
            experiments=records if any(records) else None,
            **{**stage_inputs, **own},
        )
        out["groups"].append(
            {"name": group.name, "store": store, "statistics": statistics, "seconds": summary["seconds"]}
        )
        log.info("sweep %s, %s: %s took %.1f s", plan.name, model_name, group.name, time.perf_counter() - t0)
        for experiment, (label, _) in enumerate(group.points):
            values = next(p.values for p in plan.points if p.label == label)
            out["points"][label] = {
                "values": values,
                "store": store,
                "statistics": statistics,
                "experiment": experiment,
            }
    out["seconds"] = time.perf_counter() - started
    write_text_atomic(json.dumps(out, indent=2) + "\n", manifest)
    return out


def read_manifest(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def decode_sweep_point(output: str | Path, *, manifest: str | Path, label: str, **decode_args) -> Path:
    """Decode one point of a sweep (rule ``sweep_decode``): its experiment of its group's filter store, through
    :func:`bridging.da.decode.decode_filter_store` (the main run's decoding, same settings)."""
    from ..da.decode import decode_filter_store

    points = read_manifest(manifest)["points"]
    if label not in points:
        raise KeyError(f"{manifest} has no sweep value {label!r} (it has {sorted(points)})")
    point = points[label]
    return decode_filter_store(output, assimilation=point["store"], experiment=int(point["experiment"]), **decode_args)
