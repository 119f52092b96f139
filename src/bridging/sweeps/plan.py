"""What a sweep runs: its points (value labels and normalised values) and, for filter-only sweeps, the filter runs of
its one filter job.

A key is **filter-only** when only the filter stage reads it: every ``da.*`` key, and ``pseudo_obs.error_fraction``
(R = fraction × each observable's variance; the pseudo-observations themselves do not depend on it, so the filter
rescales the stored R instead of re-making the record). The keys the analysis only uses as per-experiment factors
(:data:`BATCHED`: inflation, model-noise scale, R) run as experiments of ONE batched filter run; the other filter
keys (ensemble size, seed, localization, …) change the shapes or the code path of the cycle, so the one job runs the
filter once per value, batching the factor keys inside each run when a grid crosses both kinds.

A key is **retraining** when it changes the autoencoder (``autoencoder.*``, e.g. λ): each value then has its own
autoencoder, latent stores and forecast model (the main run's rules on the value's config, under the value's folder),
and the sweep's filter job runs one filter per value on them. Other keys upstream of the filter (the data, the
idealized model, the curriculum, the forecast model alone) are refused at load, naming the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..settings import Config, SweepSection
from ..settings.sweeps import get_value, grid_points, point_label, value_label, with_value

#: filter-only keys that are per-experiment factors of the batched analysis → the experiment record's entry
BATCHED = {
    "da.inflation": "inflation",
    "da.model_noise_scale": "model_noise_scale",
    "pseudo_obs.error_fraction": "obs_error_fraction",
    "da.observations.added_noise": "obs_added_noise",
}
#: filter-only keys run as one filter run per value inside the one job (every other ``da.*`` key)
LOOPED_PREFIX = "da."
#: keys whose values each need their own autoencoder, latent stores and forecast model
RETRAINING_PREFIX = "autoencoder."


def is_filter_only(key: str) -> bool:
    return key in BATCHED or key.startswith(LOOPED_PREFIX)


def is_retraining(key: str) -> bool:
    return key.startswith(RETRAINING_PREFIX)


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its folder name and the value of each swept key (normalised by the config's types)."""

    label: str
    values: dict[str, Any]


@dataclass(frozen=True)
class FilterGroup:
    """One filter run of a sweep's filter job: the ``da`` overrides it shares, and one experiment per point."""

    name: str
    da_overrides: dict[str, Any]  # dotted key under da → value
    points: list[tuple[str, dict]] = field(default_factory=list)  # (label, experiment record)


@dataclass(frozen=True)
class SweepPlan:
    name: str
    keys: tuple[str, ...]
    points: tuple[SweepPoint, ...]
    description: str = ""

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.points]

    @property
    def retrains(self) -> bool:
        """Whether each value has its own trained models (a key under ``autoencoder.``)."""
        return any(is_retraining(k) for k in self.keys)

    def section(self, config: Mapping, label: str, name: str) -> dict:
        """The config section ``name`` (e.g. ``autoencoder``) with the values of the point ``label`` applied."""
        point = next(p for p in self.points if p.label == label)
        data = {name: dict(config[name])}
        for key, value in point.values.items():
            if key.startswith(f"{name}."):
                data = with_value(data, key, value)
        return data[name]

    def params(self) -> dict:
        """What the sweep's jobs receive through ``params:`` (JSON: no description, so editing it re-runs nothing)."""
        return {"name": self.name, "keys": list(self.keys), "points": [[p.label, p.values] for p in self.points]}

    @classmethod
    def from_params(cls, params: Mapping) -> SweepPlan:
        points = tuple(SweepPoint(label, dict(values)) for label, values in params["points"])
        return cls(str(params["name"]), tuple(params["keys"]), points)

    def filter_groups(self) -> list[FilterGroup]:
        """The filter runs of the sweep's filter job, in order: points grouped by their non-batched values."""
        groups: dict[tuple, FilterGroup] = {}
        for point in self.points:
            looped = {k: v for k, v in point.values.items() if k not in BATCHED}
            record = {BATCHED[k]: v for k, v in point.values.items() if k in BATCHED}
            ident = tuple(sorted((k, value_label(v)) for k, v in looped.items()))
            looped = {k: v for k, v in looped.items() if not is_retraining(k)}  # not a da setting: its own models
            if ident not in groups:
                name = "_".join(f"{k.rsplit('.', 1)[-1]}-{lab}" for k, lab in ident) or "batched"
                groups[ident] = FilterGroup(name, looped)
            groups[ident].points.append((point.label, record))
        return list(groups.values())


def _config_dict(config: Config | Mapping) -> dict:
    if isinstance(config, Config):
        return config.model_dump(mode="json")
    return dict(config)


def plan_sweep(name: str, sweep: SweepSection | Mapping, config: Config | Mapping) -> SweepPlan:
    """The points of one sweep, each value normalised through the config (``"20"`` → ``20`` for an integer key)."""
    sweep = SweepSection.model_validate(sweep)
    base = {**_config_dict(config), "sweeps": {}}
    keys = tuple(axis.key for axis in sweep.axes())
    points = []
    for values in grid_points(sweep):
        data = base
        for key, value in zip(keys, values):
            data = with_value(data, key, value)
        resolved = Config.model_validate(data).model_dump(mode="json")
        normalised = [get_value(resolved, key) for key in keys]
        points.append(SweepPoint(point_label(values), dict(zip(keys, normalised))))
    return SweepPlan(name, keys, tuple(points), sweep.description)


def plan_sweeps(config: Config | Mapping) -> dict[str, SweepPlan]:
    """The enabled sweeps of a config; a ConfigError naming the sweep for one the workflow cannot run yet."""
    data = _config_dict(config)
    plans = {}
    for name, sweep in data.get("sweeps", {}).items():
        sweep = SweepSection.model_validate(sweep)
        if not sweep.enabled:
            continue
        upstream = [axis.key for axis in sweep.axes() if not (is_filter_only(axis.key) or is_retraining(axis.key))]
        if upstream:
            raise ConfigError(
                f"sweeps.{name}: sweep {name!r} changes {', '.join(upstream)}, which stages upstream of the filter read; "
                f"sweeps run over filter-only keys (da.*, {', '.join(k for k in BATCHED if not k.startswith('da.'))}) "
                f"and autoencoder.* keys (switch it off with sweeps.{name}.enabled: false)"
            )
        plans[name] = plan_sweep(name, sweep, data)
    return plans
