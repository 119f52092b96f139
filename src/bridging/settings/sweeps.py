"""Sensitivity sweeps: named experiments over one dotted config key (or a grid of two), run beside the main run.

A sweep is data, not a new run: ``snakemake sweeps`` writes ``results/<run>/sweeps/<sweep>/<value>/`` and shares
everything upstream of the stages the swept key changes with the main run (bridging.sweeps plans the jobs). Each
value is checked at load by applying it to the config and validating the result, so a value of the wrong type or
out of range is an error naming the sweep, not a failed job hours later.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, JsonValue, ValidationError, field_validator

from .base import SafeName, Section

#: top-level sections a sweep may not change: the run's identity and the sweeps themselves
UNSWEEPABLE = ("run", "sweeps")
#: a value label: a folder name and a Snakemake wildcard value
_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


class SweepAxis(Section):
    """One swept key and its values."""

    key: str = Field(
        ..., pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$", description="Dotted config key, e.g. da.inflation."
    )
    values: list[JsonValue] = Field(..., description="The values, in the order of the summary table.")

    @field_validator("values")
    @classmethod
    def _not_empty(cls, values):
        if not values:
            raise ValueError("empty list: a sweep needs at least one value")
        return values


class SweepSection(SweepAxis):
    """A named sweep: ``key`` over ``values``, optionally crossed with a second key (a grid of both)."""

    enabled: bool = Field(True, description="Run it in `snakemake sweeps` / `make sweeps`.")
    description: str = Field("", description="What the sweep asks (shown in its summary).")
    cross: SweepAxis | None = Field(
        None, description="A second key: the sweep runs the grid of both value lists (key varies slowest)."
    )

    def axes(self) -> list[SweepAxis]:
        return [SweepAxis(key=self.key, values=self.values)] + ([self.cross] if self.cross is not None else [])


def default_sweeps() -> dict[str, SweepSection]:
    """The built-in sweeps: the seed paper's first checks (λ, SST only, ensemble size, R), its open question 1 (the
    model hierarchy) and 4 (noisier or fewer pseudo-observations), and the filter with and without localization."""
    return {
        "ensemble_size": SweepSection(
            key="da.ensemble_size",
            values=[20, 50, 100],
            description="Ensemble size of the latent EnKF.",
        ),
        "obs_error": SweepSection(
            key="pseudo_obs.error_fraction",
            values=[0.01, 0.04, 0.16],
            description="Observation-error variance R as a fraction of each observable's variance (1, 4, 16 %).",
        ),
        "lambda": SweepSection(
            key="autoencoder.lambda_corr",
            values=[0.0, 0.1, 0.5, 1.0],
            description="Weight λ of the correlation loss: each value trains its own autoencoder and forecast model "
            "(L_recon, L_corr and ‖C‖ on held-out months beside the bridging statistics).",
        ),
        "observed_variables": SweepSection(
            key="da.observations.variables",
            values=[["sst"], ["sst", "thermocline_depth"]],
            description="SST only vs SST and thermocline depth assimilated (the withheld D20 is the check).",
        ),
        "obs_noise": SweepSection(
            key="da.observations.added_noise",
            values=[0.0, 0.25, 0.5, 1.0],
            description="Noisier pseudo-observations: added noise of 0, 25, 50, 100 % of R (the filter's R grows "
            "with it).",
        ),
        "hierarchy": SweepSection(
            key="da.observations.sources",
            values=[["cf23"], ["cfy22"], ["xro"], ["cf23", "cfy22"], ["cf23_ep", "cfy22_cp"], ["cf23", "cfy22", "xro"]],
            description="The model hierarchy (open question 1): each idealized model alone, together, and CF23 for the "
            "eastern Pacific with CFY22 for the central Pacific. The models' runs are independent, so regions "
            "observed by different models lose their mutual correlation (the Niño 3–Niño 4 correlation shows it).",
        ),
        "obs_thinning": SweepSection(
            key="da.observations.node_stride",
            values=[1, 2, 4],
            description="Fewer pseudo-observations: every node, every 2nd, every 4th (the withheld nodes are the check).",
        ),
        "localization": SweepSection(
            key="da.localization.enabled",
            values=[False, True],
            description="The filter without and with localization (Gaspari–Cohn on the observation–observation "
            "covariance, half-width da.localization.obs_halfwidth_deg, projected onto the ensemble span).",
        ),
    }


def value_label(value: Any) -> str:
    """The folder name of one value: numbers as written (``0.04``, ``50``), booleans ``true``/``false``, lists joined
    with ``+`` (``sst+thermocline_depth``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "+".join(value_label(v) for v in value)
    if value is None:
        return "null"
    return str(value)


def point_label(values: list[Any]) -> str:
    """The folder name of one point of a sweep (a grid point joins its values with ``__``)."""
    return "__".join(value_label(v) for v in values)


def _section_at(model: type[BaseModel], key: str) -> str | None:
    """Why ``key`` is not a settable leaf of ``model`` (None when it is)."""
    parts = key.split(".")
    if parts[0] in UNSWEEPABLE:
        return f"{parts[0]}.* cannot be swept"
    node: Any = model
    for i, part in enumerate(parts):
        if not (isinstance(node, type) and issubclass(node, BaseModel)) or part not in node.model_fields:
            return f"unknown config key {key!r} (no {'.'.join(parts[: i + 1])!r})"
        node = node.model_fields[part].annotation
    if isinstance(node, type) and issubclass(node, BaseModel):
        return f"{key!r} is a section, not a value: sweep one of its keys"
    return None


def with_value(data: dict, key: str, value: Any) -> dict:
    """A copy of the config mapping ``data`` with ``key`` (dotted) set to ``value`` (the sections on the path copied)."""
    out = dict(data)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node[part] = dict(node.get(part) or {})
        node = node[part]
    node[parts[-1]] = value
    return out


def get_value(data: dict, key: str) -> Any:
    node = data
    for part in key.split("."):
        node = node[part]
    return node


def check_sweeps(config_cls: type[BaseModel], base: dict, sweeps: dict[SafeName, SweepSection]) -> None:
    """Each sweep's keys exist and each value validates in the config (``base``: the config without sweeps); a
    ValueError naming the sweep (``sweeps.<name>…``) otherwise."""
    for name, sweep in sweeps.items():
        axes = sweep.axes()
        if len(axes) == 2 and axes[0].key == axes[1].key:
            raise ValueError(f"sweeps.{name}.cross.key: sweep {name!r} crosses {axes[0].key} with itself")
        for where, axis in zip(("key", "cross.key"), axes):
            problem = _section_at(config_cls, axis.key)
            if problem:
                raise ValueError(f"sweeps.{name}.{where}: sweep {name!r}: {problem}")
        for where, axis in zip(("", "cross."), axes):
            for i, value in enumerate(axis.values):
                try:
                    config_cls.model_validate(with_value(base, axis.key, value))
                except ValidationError as err:
                    first = err.errors()[0]
                    loc = ".".join(str(p) for p in first["loc"]) or axis.key
                    msg = first["msg"].removeprefix("Value error, ")
                    raise ValueError(
                        f"sweeps.{name}.{where}values: sweep {name!r}: value {value!r} (item {i}) for {axis.key} is "
                        f"invalid: {loc}: {msg}"
                    ) from None
        labels = [point_label(p) for p in grid_points(sweep)]
        bad = [lab for lab in labels if not _LABEL.match(lab) or lab.startswith(".")]
        if bad:
            raise ValueError(
                f"sweeps.{name}.values: sweep {name!r}: values {bad} do not make folder names (letters, digits, . _ + -)"
            )
        if len(set(labels)) != len(labels):
            raise ValueError(f"sweeps.{name}.values: sweep {name!r}: repeated values {labels}")


def grid_points(sweep: SweepSection) -> list[list[Any]]:
    """The values of each point of a sweep, the first key varying slowest."""
    axes = sweep.axes()
    if len(axes) == 1:
        return [[v] for v in axes[0].values]
    return [[a, b] for a in axes[0].values for b in axes[1].values]
