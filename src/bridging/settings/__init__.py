"""The validated configuration of ENSO Bridge.

One pydantic model per section; ``Config`` assembles them. ``config/config.default.yaml`` and
``workflow/schemas/config.schema.json`` are generated from these models (``bridging config --write``) and a
test keeps them in sync, so defaults live in exactly one place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from ..errors import ConfigError
from .base import Section
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
from .models import AutoencoderSection, CurriculumSection, ForecastSection, GateSection
from .run import ComputeSection, RunSection


class Config(Section):
    run: RunSection = Field(default_factory=RunSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
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


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def validate_config(data: dict[str, Any], origin: str = "config") -> Config:
    """Validate a plain (merged) config mapping; raise ConfigError naming each bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, origin)) from None


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
    """Load and merge YAML files (later ones override), then validate. safe_load only."""
    merged: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file does not exist")
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
        merged = deep_merge(merged, data)
    return validate_config(merged, origin=", ".join(str(p) for p in paths))


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
            dumped = yaml.safe_dump({name: value}, sort_keys=False, default_flow_style=flow, width=110, allow_unicode=True)
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
    "PlottingSection",
    "PseudoObsSection",
    "ReanalysisSection",
    "RegridSection",
    "RunSection",
    "Section",
    "config_hash",
    "deep_merge",
    "load_config",
    "render_default_yaml",
    "render_schema",
    "validate_config",
]
