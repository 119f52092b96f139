"""The validated configuration of ENSO Bridge.

One pydantic model per section; ``Config`` assembles them. ``config/config.default.yaml`` and
``workflow/schemas/config.schema.json`` are generated from these models (``bridging config --write``) and a
test keeps them in sync, so defaults live in exactly one place.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .base import SafeName, Section
from .da import AdaptiveNoiseSection, DASection, DecodeSection, LocalizationSection
from .data import DataSection, GridSection, IngestSection, OperationalModelSection, ReanalysisSection, RegridSection
from .diagnostics import AcceptanceSection, DiagnosticsSection, PlottingSection
from .idealized import (
    CF23Params,
    CFY22Params,
    DemoBiasSection,
    DemoModelSection,
    DemoSection,
    IdealizedSection,
    PseudoObsSection,
)
from .loading import UniqueKeySafeLoader, file_setting, read_config_file, read_config_files
from .models import AutoencoderSection, CurriculumSection, ForecastSection, GateSection
from .run import ComputeSection, OutputsSection, RunSection
from .sweeps import SweepAxis, SweepSection, check_sweeps, default_sweeps

#: CF23's equatorial nodes and the CFY22 observation boxes per variable (bridging.idealized.pseudo_obs; a test
#: checks these against the layouts it builds)
CF23_NODES = 56
CFY22_BOXES = {"sst": 2, "thermocline_depth": 1}


def n_observables(model: str, pseudo_obs: PseudoObsSection) -> int:
    """Number of observables y of the pseudo-observations of ``model`` (without building the layout)."""
    if model == "cf23":
        return -(-CF23_NODES // pseudo_obs.node_stride) * len(set(pseudo_obs.variables))
    return sum(CFY22_BOXES[v] for v in set(pseudo_obs.variables))


class Config(Section):
    run: RunSection = Field(default_factory=RunSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    outputs: OutputsSection = Field(default_factory=OutputsSection)
    grid: GridSection = Field(default_factory=GridSection)
    data: DataSection = Field(default_factory=DataSection)
    ingest: IngestSection = Field(default_factory=IngestSection)
    demo: DemoSection = Field(default_factory=DemoSection)
    idealized: IdealizedSection = Field(default_factory=IdealizedSection)
    pseudo_obs: PseudoObsSection = Field(default_factory=PseudoObsSection)
    autoencoder: AutoencoderSection = Field(default_factory=AutoencoderSection)
    curriculum: CurriculumSection = Field(default_factory=CurriculumSection)
    forecast: ForecastSection = Field(default_factory=ForecastSection)
    da: DASection = Field(default_factory=DASection)
    decode: DecodeSection = Field(default_factory=DecodeSection)
    diagnostics: DiagnosticsSection = Field(default_factory=DiagnosticsSection)
    sweeps: dict[SafeName, SweepSection] = Field(
        default_factory=default_sweeps,
        description="Named sensitivity sweeps, run by `snakemake sweeps` (`make sweeps`), not by `all`: each over one "
        "dotted key (key, values; optionally a second key, cross) into results/<run>/sweeps/<name>/<value>/. Filter-only "
        "keys (da.*, pseudo_obs.error_fraction) run as one filter job per model for all values (docs/method.md, Sweeps). "
        "An overlay adds sweeps or switches built-in ones off (enabled: false).",
    )

    @field_validator("sweeps", mode="before")
    @classmethod
    def _onto_built_in_sweeps(cls, value):
        """An entry named like a built-in sweep is merged onto it (``lambda: {values: [0.5]}`` keeps its key), and
        the built-ins stay unless switched off: the same sweeps whether or not config/config.default.yaml is merged first.
        An empty mapping is no sweeps (the config each sweep value is checked in)."""
        if not isinstance(value, dict) or not value:
            return value
        merged = {
            name: sweep.model_dump(mode="json", exclude_defaults=True) for name, sweep in default_sweeps().items()
        }
        for name, entry in value.items():
            built_in = merged.get(name)
            if (
                built_in is not None
                and isinstance(entry, dict)
                and entry.get("key", built_in["key"]) == built_in["key"]
            ):
                merged[name] = deep_merge(built_in, entry)
            else:  # a new sweep, or a built-in name given another key: taken as written
                merged[name] = entry
        return merged

    @model_validator(mode="after")
    def _cross_section(self):
        n_obs = n_observables(self.idealized.model, self.pseudo_obs)
        if self.autoencoder.latent_dim < n_obs:
            raise ValueError(
                f"autoencoder.latent_dim ({self.autoencoder.latent_dim}) must be at least the number of observables "
                f"({n_obs} with idealized.model {self.idealized.model} and pseudo_obs.node_stride {self.pseudo_obs.node_stride}): "
                "each observable has a designated latent variable"
            )
        if self.forecast.kind == "lstm":
            from ..models.curriculum import ramps_end_epoch  # numpy only: no torch at config load

            ramps_end_epoch(self.forecast, self.curriculum)
        demo = self.demo.reanalysis
        if demo.first_year > demo.last_year:
            raise ValueError(
                f"demo.reanalysis.first_year ({demo.first_year}) is after demo.reanalysis.last_year ({demo.last_year})"
            )
        if self.sweeps:
            # each value is validated in a copy of this config without sweeps (so the check does not recurse)
            check_sweeps(Config, {**self.model_dump(mode="json", exclude={"sweeps"}), "sweeps": {}}, self.sweeps)
        return self


#: dotted config keys quoted in a cross-section error (used to find the file that set them)
_DOTTED_KEY = re.compile(r"\b([a-z_]+(?:\.[a-z_0-9]+)+)\b")


def _format_validation_error(err: ValidationError, origin: str, sources) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        setters = (
            [file_setting(sources, loc)]
            if loc
            else [file_setting(sources, k.split(".")) for k in _DOTTED_KEY.findall(msg)]
        )
        setters = list(dict.fromkeys(s for s in setters if s))
        where = f" [set in {', '.join(setters)}]" if setters else ""
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{where}")
        elif not loc and _DOTTED_KEY.match(msg):
            lines.append(f"  {msg}{where}")  # a cross-section check whose message starts with the key it is about
        elif e["type"] == "value_error" and isinstance(e.get("input"), dict):
            lines.append(f"  {key}: {msg}{where}")
        else:
            lines.append(f"  {key}: {msg} (got {e.get('input')!r}){where}")
    return "\n".join(lines)


def format_validation_error(err: ValidationError, origin: str) -> str:
    """A pydantic ValidationError of a config section as the lines of a config error (each bad key named)."""
    return _format_validation_error(err, origin, None)


def validate_config(
    data: dict[str, Any], origin: str = "config", sources: Sequence[tuple[str, dict]] | None = None
) -> Config:
    """Validate a plain (merged) config mapping; raise ConfigError naming each bad key and, given ``sources``
    ((path, mapping) of the merged files, in order), the file that set it."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, origin, sources)) from None


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Merge overlay into base recursively (mappings merge, everything else replaces), as Snakemake's --configfile does."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(*paths: str | Path) -> Config:
    """Load and merge YAML files (later ones override), then validate. Safe loading only; duplicate keys are errors."""
    sources = read_config_files(paths)
    merged: dict[str, Any] = {}
    for _, data in sources:
        merged = deep_merge(merged, data)
    return validate_config(merged, origin=", ".join(str(p) for p in paths), sources=sources)


def config_hash(data: dict[str, Any] | Section) -> str:
    """Stable short hash of a config (sub)tree, recorded in provenance."""
    if isinstance(data, Section):
        data = data.model_dump(mode="json")
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _yaml_with_comments(model: type[Section], data: dict[str, Any], indent: int = 0) -> list[str]:
    """Render defaults as YAML with each field's description as a comment (pypsa-eur style generated defaults)."""
    pad = "  " * indent
    lines: list[str] = []
    for name, field in model.model_fields.items():
        value = data[name]
        if field.description:
            lines.append(f"{pad}# {field.description}")
        ann = field.annotation
        sub = ann if isinstance(ann, type) and issubclass(ann, Section) else None
        if sub is not None:
            lines.append(f"{pad}{name}:")
            lines.extend(_yaml_with_comments(sub, value, indent + 1))
        else:
            flow = None if isinstance(value, (list, dict)) else False
            dumped = yaml.safe_dump(
                {name: value}, sort_keys=False, default_flow_style=flow, width=110, allow_unicode=True
            )
            lines.extend(pad + ln for ln in dumped.rstrip("\n").split("\n"))
    return lines


def render_default_yaml() -> str:
    header = [
        "# yaml-language-server: $schema=../workflow/schemas/config.schema.json",
        "# ENSO Bridge defaults. GENERATED from src/bridging/settings/ by `bridging config --write`; do not edit by hand.",
        "# Override values in config/config.yaml (git-ignored) or with --configfile; unknown keys are errors.",
        "",
    ]
    data = Config().model_dump(mode="json")
    return "\n".join(header + _yaml_with_comments(Config, data)) + "\n"


def render_schema() -> str:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ENSO Bridge configuration"
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


__all__ = [
    "AdaptiveNoiseSection",
    "AcceptanceSection",
    "AutoencoderSection",
    "CF23Params",
    "CFY22Params",
    "ComputeSection",
    "Config",
    "CurriculumSection",
    "DASection",
    "DataSection",
    "DecodeSection",
    "DemoBiasSection",
    "DemoModelSection",
    "DemoSection",
    "DiagnosticsSection",
    "ForecastSection",
    "GateSection",
    "GridSection",
    "IdealizedSection",
    "IngestSection",
    "LocalizationSection",
    "OperationalModelSection",
    "OutputsSection",
    "PlottingSection",
    "PseudoObsSection",
    "ReanalysisSection",
    "RegridSection",
    "RunSection",
    "Section",
    "SweepAxis",
    "SweepSection",
    "UniqueKeySafeLoader",
    "config_hash",
    "deep_merge",
    "format_validation_error",
    "load_config",
    "n_observables",
    "read_config_file",
    "read_config_files",
    "render_default_yaml",
    "render_schema",
    "validate_config",
]
