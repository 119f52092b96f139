"""ENSO diagnostics, comparison, explainability and figures."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section


class PlottingSection(Section):
    dpi: int = Field(120, ge=50)
    anomaly_cmap: str = Field("RdBu_r", description="Diverging colour map, centred at zero, for anomalies.")
    std_cmap: str = Field("viridis")

    @field_validator("anomaly_cmap", "std_cmap")
    @classmethod
    def _known_colour_map(cls, name: str) -> str:
        # Checked here so a typo fails at config validation, not after the statistics have been computed.
        from matplotlib import colormaps

        if name not in colormaps:
            raise ValueError(f"unknown matplotlib colour map {name!r}")
        return name


class AcceptanceSection(Section):
    """Thresholds of the acceptance criteria the comparison checks (bridging model vs its operational model)."""

    significance_se: float = Field(
        2.0,
        gt=0,
        description="A bridging model that moves away from a reference by more than this many standard errors of the "
        "difference (bootstrap) fails the criterion, whether or not the operational model was off.",
    )
    residual_pattern_correlation: float = Field(
        0.8,
        ge=-1,
        le=1,
        description="Minimum pattern correlation of the bridging residual std map with the operational model's.",
    )
    residual_amplitude_ratio: float = Field(
        0.7,
        gt=0,
        description="Minimum RMS amplitude ratio of the bridging residual std map to the operational model's.",
    )
    residual_min_abs_lat: float = Field(
        5.0,
        ge=0,
        lt=90,
        description="The residual std map criteria use cells poleward of this latitude (°), off the observed equator.",
    )


class DiagnosticsSection(Section):
    bootstrap_samples: int = Field(1000, ge=10)
    bootstrap_block_months: int = Field(
        24,
        ge=12,
        description="Block length of the block bootstrap; whole years, so resampled series keep the calendar phase.",
    )
    confidence_level: float = Field(
        0.95, gt=0, lt=1, description="Level of the bootstrap percentile confidence intervals."
    )
    event_threshold: float = Field(0.5, description="DJF El Niño / La Niña threshold (°C).")
    extreme_threshold: float = Field(
        2.5, description="Extreme EP El Niño: max Niño 3 from April to March above this (°C)."
    )
    kde_bandwidth: Literal["silverman", "scott"] = Field(
        "silverman", description="Bandwidth rule of the Gaussian KDE of index PDFs, the same for every source."
    )
    pdf_limit: float = Field(6.0, gt=0, description="Index PDFs are evaluated on [-pdf_limit, pdf_limit] °C.")
    pdf_points: int = Field(601, ge=51, description="Points of the common PDF evaluation grid.")
    eof_modes: int = Field(3, ge=1)
    residual_observable_modes: int = Field(
        8,
        ge=1,
        description="Leading PCs of the (standardised) observables regressed out for the residual std map; few, to avoid overfitting.",
    )
    null_min_chunks: int = Field(
        100,
        ge=2,
        description="A reference's null at a record length comes from its own disjoint chunks of that length when it holds at "
        "least this many (the idealized long run), otherwise from block-bootstrap pseudo-records (the reanalysis).",
    )
    null_samples: int = Field(1000, ge=10, description="Block-bootstrap pseudo-records of a null built by bootstrap.")
    null_max_partners: int = Field(
        100,
        ge=1,
        description="Reference records a source chunk's distance is taken to (the median over them is its distance).",
    )
    null_max_pairs: int = Field(2000, ge=10, description="Pairs of reference records in the null of a distance.")
    se_bootstrap_samples: int = Field(
        200,
        ge=10,
        description="Block-bootstrap replicates behind the standard errors of the equal-footing values (effects and "
        "acceptance); a standard error needs fewer replicates than a percentile interval (about 5 % precision at 200).",
    )
    seed: int = Field(0)
    explain_month: int | None = Field(
        None,
        ge=1,
        description="Month index of the bridging run whose filter gain the explainability maps show; null = the middle.",
    )
    acceptance: AcceptanceSection = Field(default_factory=AcceptanceSection)
    plotting: PlottingSection = Field(default_factory=PlottingSection)

    @field_validator("bootstrap_block_months")
    @classmethod
    def _whole_years(cls, months: int) -> int:
        # Blocks start in the record's first calendar month; whole-year blocks keep ENSO's seasonal phase locking
        # (and the monthly variance) intact in every resample.
        if months % 12:
            raise ValueError(f"must be a multiple of 12 (whole years), got {months}")
        return months

    @model_validator(mode="after")
    def _thresholds_ordered(self):
        if self.extreme_threshold <= self.event_threshold:
            raise ValueError(
                f"extreme_threshold ({self.extreme_threshold}) must exceed event_threshold ({self.event_threshold})"
            )
        return self
