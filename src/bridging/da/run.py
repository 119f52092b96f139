"""The filter stage (rules ``assimilate`` and ``free_run``): the latent forecast model cycled with the EnKF against
the idealized model's pseudo-observations, or the same model without analysis (the free run, the control).

A run reads and checks its inputs and models (:mod:`.inputs`), builds what stays constant over the cycle (observations,
R = the pseudo-observations' ``obs_error_variance``, model noise ``noise_cov × model_noise_scale``, inflation, taper,
the autoencoder hooks), starts from random training months spun up through the forecast model or resumes from its
sidecar (:mod:`.checkpoint`), cycles month by month (:mod:`.cycle`) writing each finished block and logging its
statistics (:mod:`.statistics`), then adds the per-month statistics to the store, writes the JSON summary beside it
and moves the store into place.

The analysis settings (``ANALYSIS_SETTINGS``) apply to the assimilation only; the free run neither uses nor records
them. Localization (an m × m taper between observables, projected onto the ensemble span so that z and y stay
balanced: :mod:`.analysis`) and re-encoding are off by default (docs/method.md, Filter has the measurements);
E(D(z)) moves the states of an imperfect autoencoder; each run reports the autoencoder's own consistency and
``reencode_relative_change`` (:func:`.inputs.autoencoder_check`) to decide.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .. import __version__
from ..atomic import write_text_atomic, zarr_write_options
from ..errors import ConfigError
from ..observables import OBS_UNITS_COMMENT, OBS_UNITS_SQUARED_COMMENT
from ..progress import Eta
from ..runtime import resolve_device
from ..settings import DASection
from ..stores import provenance
from .checkpoint import FilterSidecar, run_fingerprint, store_template
from .cycle import BlockResult, CycleSetup, FilterState, run_cycles
from .experiments import Experiments
from .inputs import (
    StageInputs,
    autoencoder_check,
    autoencoder_hooks,
    checked_models,
    initial_members,
    load_models,
    log_autoencoder_check,
    read_inputs,
    spin_up,
)
from .localization import taper_from_settings, taper_summary
from .noise import AdaptiveNoise, NoiseSplit, noise_factor
from .sources import assimilated_rows, hierarchy_stores, per_model_ratios
from .statistics import (
    block_summary,
    format_values,
    health_warnings,
    monthly_statistics,
    monthly_statistics_attrs,
    summarize,
)

log = logging.getLogger(__name__)

KINDS = ("assimilation", "free_run")
#: the DASection entries only the analysis uses: the free run neither applies nor records them
ANALYSIS_SETTINGS = ("method", "inflation", "localization", "reencode", "adaptive_noise", "observations")


def run_filter_stage(
    output: str | Path,
    statistics: str | Path,
    *,
    kind: str,
    latent_store: str | Path,
    operational_store: str | Path,
    forecast_model: str | Path,
    autoencoder: str | Path,
    pseudo_obs: str | Path,
    da: DASection | Mapping,
    other_pseudo_obs: Sequence[str | Path] = (),
    grid: Mapping,
    allow_failed_gate: bool = False,
    device: str = "auto",
    model_name: str | None = None,
    inflation: Sequence[float] | None = None,
    model_noise_scale: Sequence[float] | None = None,
    experiments: Sequence[Mapping] | None = None,
) -> dict:
    """Run the filter (kind "assimilation") or the free run (kind "free_run") and write the store and statistics.

    ``inflation`` / ``model_noise_scale`` lists turn the run into a batched sweep over their Cartesian product (the
    experiment dimension); by default one experiment with the configured values. The free run has no analysis, so
    its experiments are the model-noise scales alone. ``experiments`` instead lists the experiments one by one
    (``{"inflation": …, "model_noise_scale": …, "obs_error_fraction": …}``, a missing entry takes the configured
    value; the sweeps of :mod:`bridging.sweeps` use it): ``obs_error_fraction`` rescales R, which the
    pseudo-observation store holds as its ``error_fraction`` attribute × each observable's variance.

    ``other_pseudo_obs``: pseudo-observation stores of other idealized models; those of the models in
    ``da.observations.sources`` join the observation vector (the model hierarchy, :mod:`.sources`), others are unused.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'assimilation' or 'free_run', got {kind!r}")
    da = DASection.model_validate(da)
    dev = resolve_device(device)
    started = time.perf_counter()
    others = hierarchy_stores(da, pseudo_obs, other_pseudo_obs) if kind == "assimilation" else {}
    input_paths = [latent_store, operational_store, forecast_model, autoencoder, pseudo_obs, *others.values()]

    inputs = read_inputs(latent_store, pseudo_obs, operational_store, grid, da.months, others)
    fm, ae = load_models(forecast_model, autoencoder, dev)
    fm, ae = checked_models(
        fm,
        ae,
        inputs,
        dtype=getattr(torch, da.dtype),
        allow_failed_gate=allow_failed_gate,
        forecast_path=forecast_model,
        latent_store=latent_store,
    )
    assimilating = kind == "assimilation"
    if experiments is not None:
        if inflation is not None or model_noise_scale is not None:
            raise ConfigError("give either experiments or inflation / model_noise_scale lists, not both")
        base = inputs.pseudo_obs_attrs.get("error_fraction")
        experiments = Experiments.from_records(da, experiments, base_error_fraction=base, assimilating=assimilating)
    else:
        experiments = Experiments.of(da, inflation, model_noise_scale, assimilating=assimilating)
    run = FilterRun(kind, da, inputs, experiments, dev, model_name, _taper(kind, da, inputs))
    setup, ae_check = cycle_setup(run, fm, ae, forecast_path=forecast_model)

    settings = run.settings(allow_failed_gate)
    sidecar = FilterSidecar(output, run_fingerprint(input_paths, settings))
    state = _resumed_state(sidecar, run, output)
    if state is None:
        state = _fresh_state(sidecar, run, fm, setup, settings, input_paths, output)
    state = run_cycles(
        setup,
        state,
        stop_month=inputs.months,
        block_months=da.checkpoint_months,
        on_block=_BlockMonitor(run, sidecar, setup, ae_check, state.month),
        time_values=inputs.time,
    )

    summary = _finalize(sidecar.store.path, run, ae_check, seconds=time.perf_counter() - started)
    write_text_atomic(json.dumps(summary, indent=2, default=float) + "\n", statistics)
    sidecar.move_into_place(output)
    return summary


def assimilate(output, statistics, **kwargs) -> dict:
    """The bridging filter run: ``run_filter_stage(kind="assimilation", ...)``."""
    return run_filter_stage(output, statistics, kind="assimilation", **kwargs)


def free_run(output, statistics, **kwargs) -> dict:
    """The control: the same forecast model and noise without assimilation, same length and members."""
    return run_filter_stage(output, statistics, kind="free_run", **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# What a run is


@dataclass(frozen=True)
class FilterRun:
    """The run's identity and inputs, shared by the steps of the stage."""

    kind: str
    da: DASection
    inputs: StageInputs
    experiments: Experiments
    device: torch.device
    model_name: str | None
    taper: np.ndarray | None  # (m, m) observation-space Schur taper of the analysis (float64), or None

    @property
    def assimilating(self) -> bool:
        return self.kind == "assimilation"

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.da.dtype)

    @property
    def consistency_members(self) -> int:
        """Members per experiment decoded for the consistency check: ``da.consistency_members`` is the run's budget,
        shared by a batched run's experiments (at least one each), so a sweep decodes no more a month than one run
        (the decoder's cost does not batch on the CPU: docs/method.md, Sweeps)."""
        budget = min(self.da.consistency_members, self.da.ensemble_size)
        return 0 if budget == 0 else max(1, math.ceil(budget / len(self.experiments)))

    def da_settings(self) -> dict:
        """The DA settings the run uses: for the free run without the analysis settings."""
        settings = self.da.model_dump(mode="json")
        if not self.assimilating:
            settings = {key: value for key, value in settings.items() if key not in ANALYSIS_SETTINGS}
        return settings

    def settings(self, allow_failed_gate: bool) -> dict:
        """Every setting that changes the numbers (the resume fingerprint and the provenance hash)."""
        settings = {"kind": self.kind, "da": self.da_settings()}
        if self.experiments.inflation is not None:
            settings["inflation"] = list(self.experiments.inflation)
        if self.experiments.obs_error_fraction is not None:
            settings["obs_error_fraction"] = list(self.experiments.obs_error_fraction)
        if self.experiments.obs_added_noise is not None:
            settings["obs_added_noise"] = list(self.experiments.obs_added_noise)
        settings.update(
            model_noise_scale=list(self.experiments.model_noise_scale),
            device=self.device.type,
            allow_failed_gate=allow_failed_gate,
        )
        return settings


def assimilated_observables(run: FilterRun) -> np.ndarray | None:
    """Indices of the observation rows the analysis uses (``da.observations``), or None when it uses all of them."""
    if not run.assimilating:
        return None
    chosen, inputs = run.da.observations, run.inputs
    return assimilated_rows(
        inputs.layout,
        inputs.obs_model,
        chosen.sources,
        primary=str(inputs.pseudo_obs_attrs.get("model", "")),
        variables=chosen.variables,
        node_stride=chosen.node_stride,
    )


def _taper(kind: str, da: DASection, inputs: StageInputs) -> np.ndarray | None:
    """The analysis' observation-space localization taper (assimilation with ``da.localization.enabled`` only)."""
    if kind != "assimilation":
        return None
    return taper_from_settings(inputs.layout.lon, da.localization)


def cycle_setup(run: FilterRun, fm, ae, *, forecast_path) -> tuple[CycleSetup, dict]:
    """The cycle's constant part on the run's device and dtype, and the autoencoder check (logged)."""
    inputs, da, dev, dtype = run.inputs, run.da, run.device, run.dtype
    B = len(run.experiments)
    reencode, decoded_observables = autoencoder_hooks(
        ae,
        layout=inputs.layout.select(range(inputs.n_observables)),
        grid=inputs.grid,
        ocean_mask=inputs.ocean_mask,
        anomaly_std=inputs.anomaly_std,
        device=dev,
        dtype=dtype,
    )
    ae_check = autoencoder_check(reencode, decoded_observables, inputs, device=dev, dtype=dtype)
    log_autoencoder_check(ae_check, reencoding=run.assimilating and da.reencode)
    adaptive = run.assimilating and da.adaptive_noise.enabled
    setup = CycleSetup(
        forecaster=fm,
        observations=torch.as_tensor(
            run.experiments.observations(inputs.observations, inputs.obs_error_variance, da.seed),
            dtype=dtype,
            device=dev,
        ),
        obs_var=torch.as_tensor(run.experiments.obs_error_variance(inputs.obs_error_variance), dtype=dtype, device=dev),
        noise_factor=noise_factor(fm.noise_cov, path=forecast_path).to(device=dev, dtype=dtype),
        noise_std_scale=torch.as_tensor(run.experiments.model_noise_scale, dtype=dtype, device=dev).sqrt(),
        inflation=torch.as_tensor(run.experiments.inflation or [1.0] * B, dtype=dtype, device=dev),
        n_latent=inputs.n_latent,
        method=da.method,
        taper=None if run.taper is None else torch.as_tensor(run.taper, dtype=dtype, device=dev),
        assimilate=run.assimilating,
        reencode=reencode if (run.assimilating and da.reencode) else None,
        decoded_observables=decoded_observables,
        consistency_members=run.consistency_members,
        observable_std=torch.as_tensor(inputs.observable_std),
        adaptive=AdaptiveNoise(**da.adaptive_noise.model_dump(exclude={"enabled"})) if adaptive else None,
        noise_split=NoiseSplit.from_covariance(fm.noise_cov, inputs.n_latent, device=dev, dtype=dtype)
        if adaptive
        else None,
        assimilated=None if (picked := assimilated_observables(run)) is None else torch.as_tensor(picked, device=dev),
        derived=None if inputs.derived is None else torch.as_tensor(inputs.derived, dtype=dtype, device=dev),
    )
    return setup, ae_check


# --------------------------------------------------------------------------------------------------------------------
# Start, resume, monitor, finish


def _resumed_state(sidecar: FilterSidecar, run: FilterRun, output) -> FilterState | None:
    resumed = sidecar.resume(run.device)
    if resumed is None:
        return None
    generator = torch.Generator(device=run.device)
    generator.set_state(resumed["rng_state"])
    state = FilterState(int(resumed["month"]), resumed["members"], resumed["recurrent"], generator, resumed["adapt"])
    log.info("%s: resuming from the checkpoint at month %d of %d", output, state.month, run.inputs.months)
    return state


def _fresh_state(
    sidecar: FilterSidecar, run: FilterRun, fm, setup: CycleSetup, settings: dict, input_paths, output
) -> FilterState:
    """Month 0: members drawn from training months and spun up through the forecast model; an empty partial store."""
    inputs, da, dev, dtype = run.inputs, run.da, run.device, run.dtype
    B, N, n = len(run.experiments), da.ensemble_size, inputs.n_state
    months0, history, x0 = initial_members(inputs.training, N, warmup=da.init_warmup_months, seed=da.seed)
    history_t = torch.as_tensor(history, dtype=dtype, device=dev)
    members = torch.as_tensor(x0, dtype=dtype, device=dev).unsqueeze(0).expand(B, N, n).contiguous()
    generator = torch.Generator(device=dev)
    state = FilterState(0, members, spin_up(fm, history_t, B), generator)
    generator.manual_seed(da.seed)
    template, encoding = store_template(
        time_values=inputs.time,
        n_experiments=B,
        n_members=N,
        n_state=n,
        n_latent=inputs.n_latent,
        layout=inputs.layout,
        consistency_members=run.consistency_members,
        chunk_months=da.checkpoint_months,
        static=_static_variables(run, months0),
        attrs=_store_attrs(run, settings, input_paths),
        adaptive=setup.adaptive is not None,
    )
    sidecar.start(template, encoding)
    log.info(
        "%s %s: %d months, %d experiment(s) × %d members, state %d = %d latent + %d observables, %s on %s",
        run.kind,
        run.model_name or Path(output).name,
        inputs.months,
        B,
        N,
        n,
        inputs.n_latent,
        inputs.layout.size,
        da.dtype,
        dev,
    )
    return state


def _static_variables(run: FilterRun, months0: np.ndarray) -> dict[str, xr.DataArray]:
    inputs = run.inputs
    static = {}
    if run.experiments.inflation is not None:
        static["inflation"] = xr.DataArray(
            np.asarray(run.experiments.inflation),
            dims="experiment",
            attrs={"long_name": "prior inflation factor", "units": "1"},
        )
    static.update({
        "model_noise_scale": xr.DataArray(np.asarray(run.experiments.model_noise_scale), dims="experiment", attrs={"long_name": "scale of the forecast model's noise covariance", "units": "1"}),
        "obs_error_variance": xr.DataArray(inputs.obs_error_variance, dims="obs", attrs={"long_name": "observation-error variance R of each observable (of the pseudo-observations; obs_error_scale rescales it per experiment when present)", "comment": OBS_UNITS_SQUARED_COMMENT}),
        "observable_std": xr.DataArray(inputs.observable_std, dims="obs", attrs={"long_name": "standard deviation of y over the training record", "comment": OBS_UNITS_COMMENT}),
        "initial_training_month": xr.DataArray(months0, dims="member", attrs={"long_name": "latent-store time index each member started from", "units": "1"}),
    })  # fmt: skip
    if (picked := assimilated_observables(run)) is not None:
        flag = np.zeros(inputs.layout.size, dtype=np.int8)
        flag[picked] = 1
        static["assimilated"] = xr.DataArray(flag, dims="obs", attrs={"long_name": "observable used by the analysis (1) or withheld (0)", "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "withheld assimilated"})  # fmt: skip
    if run.experiments.obs_added_noise is not None:
        static["obs_added_noise"] = xr.DataArray(np.asarray(run.experiments.obs_added_noise), dims="experiment", attrs={"long_name": "noise added to the pseudo-observations, variance as a fraction of R (R grows by 1 + this)", "units": "1"})  # fmt: skip
    if run.experiments.obs_error_scale is not None:
        static["obs_error_scale"] = xr.DataArray(
            np.asarray(run.experiments.obs_error_scale),
            dims="experiment",
            attrs={"long_name": "factor on obs_error_variance (R) of each experiment", "units": "1"},
        )
    if inputs.derived is not None:
        models = list(dict.fromkeys(inputs.obs_model))
        static["obs_model"] = xr.DataArray(np.asarray([models.index(m) for m in inputs.obs_model], dtype=np.int64), dims="obs", attrs={"long_name": "idealized model of each observation row (the model hierarchy)", "flag_values": np.arange(len(models), dtype=np.int64), "flag_meanings": " ".join(models)})  # fmt: skip
    if run.taper is not None:
        static["taper"] = xr.DataArray(
            run.taper.astype(np.float32),
            dims=("obs", "obs_other"),
            attrs={"long_name": "Schur localization taper of the observation-space covariance", "units": "1"},
        )
    return static


def _store_attrs(run: FilterRun, settings: dict, input_paths) -> dict:
    settings_hash = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "kind": run.kind,
        "model": run.model_name or "",
        "method": run.da.method if run.assimilating else "none",
        "reencode": int(bool(run.assimilating and run.da.reencode)),
        "seed": run.da.seed,
        "da_settings": json.dumps(settings["da"], sort_keys=True),
        "pseudo_obs_model": str(run.inputs.pseudo_obs_attrs.get("model", "")),
        "hierarchy": json.dumps({"sources": run.da.observations.sources, "derived_rows": run.inputs.calibration}),
        "provenance": provenance(input_paths, settings_hash),
        "config_hash": settings_hash,
        "title": f"{run.kind.replace('_', ' ')} of the latent filter for {run.model_name or 'a model'}: ensemble of "
        "the augmented state on the pseudo-observation record's model years",
    }


class _BlockMonitor:
    """After each block: write it and the filter state to the sidecar, log the block's statistics and warnings."""

    def __init__(self, run: FilterRun, sidecar: FilterSidecar, setup: CycleSetup, ae_check: dict, start_month: int):
        self.run, self.sidecar, self.ae_check = run, sidecar, ae_check
        self.obs_var = setup.obs_var.cpu().numpy()
        # month / total, rate and time left, measured from where this process started (a resumed run)
        self.eta = Eta(run.inputs.months, start=start_month)

    def __call__(self, result: BlockResult, state: FilterState) -> None:
        self.sidecar.save_block(result, state)
        inputs, da = self.run.inputs, self.run.da
        row = block_summary(
            result,
            self.obs_var,
            inputs.observable_std,
            inputs.n_latent,
            self.run.consistency_members * inputs.layout.size,
            assimilated_observables(self.run),
        )
        done = result.first_month + result.members.shape[0]
        log.info(
            "%s: innovation ratio %s, consistency corr %s, spread latent %s",
            self.eta.line(done),
            format_values(row["innovation_ratio"]),
            format_values(row.get("consistency_correlation", [])),
            format_values(row["spread_latent"]),
        )
        for w in health_warnings(
            [row],
            ratio_max=da.innovation_ratio_warn,
            consistency_min=da.consistency_warn,
            assimilating=self.run.assimilating,
            baseline=self.ae_check["training_consistency_correlation"],
        ):
            log.warning(w)


def _finalize(path: Path, run: FilterRun, ae_check: dict, *, seconds: float) -> dict:
    """Add the per-month statistics to the finished partial store; return the JSON summary."""
    inputs, da, k, m = run.inputs, run.da, run.consistency_members, run.inputs.layout.size
    ds = xr.open_zarr(path, consolidated=False, decode_times=False)
    moments = ds["consistency_moments"].values if k else None
    monthly = monthly_statistics(
        ds["innovation"].values,
        ds["forecast_spread"].values,
        run.experiments.obs_error_variance(inputs.obs_error_variance),
        inputs.observable_std,
        ds["ensemble_spread"].values,
        inputs.n_latent,
        moments,
        k * m,
        assimilated=assimilated_observables(run),
    )
    # mode="a" replaces the group attributes with those of the appended dataset: carry them over.
    stats = xr.Dataset(
        {name: (("time", "experiment"), values, monthly_statistics_attrs(name)) for name, values in monthly.items()},
        attrs=dict(ds.attrs),
    )
    stats.to_zarr(path, mode="a", **zarr_write_options())
    if "model_noise_factor" in ds:
        monthly = {**monthly, "model_noise_factor": ds["model_noise_factor"].values}
    decades = summarize(monthly, moments, k * m)
    warnings = health_warnings(
        decades,
        ratio_max=da.innovation_ratio_warn,
        consistency_min=da.consistency_warn,
        assimilating=run.assimilating,
        baseline=ae_check["training_consistency_correlation"],
    )
    for w in warnings:
        log.warning(w)
    T = monthly["innovation_ratio"].shape[0]
    overall = summarize(monthly, moments, k * m, decade_months=max(T, 1))[0]
    hierarchy = None
    if inputs.derived is not None:
        obs_var = run.experiments.obs_error_variance(inputs.obs_error_variance)
        per_model = per_model_ratios(ds, obs_var, inputs.observable_std, inputs.obs_model, assimilated_observables(run))
        hierarchy = {"sources": da.observations.sources, "derived_rows": inputs.calibration, "per_model": per_model}
    return {
        "kind": run.kind,
        "model": run.model_name,
        "months": T,
        "experiments": run.experiments.records(),
        "ensemble_size": da.ensemble_size,
        "method": da.method if run.assimilating else None,
        "reencode": bool(run.assimilating and da.reencode),
        "localization": taper_summary(run.taper, run.inputs.layout.lon) if run.assimilating else None,
        "hierarchy": hierarchy,
        "autoencoder": ae_check,
        "units": "observables in units of their standard deviation over the training record",
        "definitions": {
            "innovation_ratio": "sum over months and observables of d̃² / sum of (forecast spread̃² + R̃); ≈1 when consistent",
            "consistency_correlation": f"correlation of decoded vs analysis observables of the first {k} members",
            "consistency_slope": "regression slope of decoded on analysis observables (≈1 when consistent)",
        },
        "overall": overall,
        "per_decade": decades,
        "warnings": warnings,
        "seconds": seconds,
        "seconds_per_month": seconds / max(T, 1),
        "package_version": __version__,
    }
