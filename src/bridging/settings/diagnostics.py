"""ENSO diagnostics, comparison, explainability and figures."""

from __future__ import annotations

from pydantic import Field

from .base import Section


class PlottingSection(Section):
    dpi: int = Field(120, ge=50)
    anomaly_cmap: str = Field("RdBu_r", description="Diverging colour map, centred at zero, for anomalies.")
    std_cmap: str = Field("viridis")


class DiagnosticsSection(Section):
    bootstrap_samples: int = Field(1000, ge=10)
    bootstrap_block_months: int = Field(24, ge=1, description="Block length of the block bootstrap.")
    event_threshold: float = Field(0.5, description="DJF El Niño / La Niña threshold (°C).")
    extreme_threshold: float = Field(2.5, description="Extreme EP El Niño: max Niño 3 from April to March above this (°C).")
    eof_modes: int = Field(3, ge=1)
    seed: int = Field(0)
    plotting: PlottingSection = Field(default_factory=PlottingSection)
