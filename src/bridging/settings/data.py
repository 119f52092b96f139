"""Input data (catalog, sources) and ingestion (regridding, thermocline, stores)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import SafeName, Section


def _ordered_years(years, what: str):
    if years is not None and years[0] > years[1]:
        raise ValueError(f"{what}: first year {years[0]} is after last year {years[1]}")


class GridSection(Section):
    """Target grid: regular lat/lon, cell centres from *_min to *_max inclusive, longitudes in 0–360 °E."""

    lat_min: float = Field(-20.0, ge=-90, le=90, description="Southernmost cell centre (°N).")
    lat_max: float = Field(20.0, ge=-90, le=90, description="Northernmost cell centre (°N).")
    lon_min: float = Field(120.0, ge=0, le=360, description="Westernmost cell centre (°E, 0–360).")
    lon_max: float = Field(280.0, ge=0, le=360, description="Easternmost cell centre (°E, 0–360).")
    resolution: float = Field(1.0, gt=0, le=10, description="Grid spacing in degrees (both directions).")

    @model_validator(mode="after")
    def _ranges(self):
        if self.lat_min >= self.lat_max:
            raise ValueError(f"lat_min ({self.lat_min}) must be below lat_max ({self.lat_max})")
        if self.lon_min >= self.lon_max:
            raise ValueError(f"lon_min ({self.lon_min}) must be below lon_max ({self.lon_max}); use 0–360 °E")
        for name, lo, hi in (("lat", self.lat_min, self.lat_max), ("lon", self.lon_min, self.lon_max)):
            n = (hi - lo) / self.resolution
            if abs(n - round(n)) > 1e-6:
                raise ValueError(f"{name} range {lo}…{hi} is not a multiple of resolution {self.resolution}")
        return self


class OperationalModelSection(Section):
    name: SafeName = Field(..., description="Label used in file names and wildcards.")
    source_id: str = Field(..., description="CMIP6 source_id to select in the catalog.")
    experiment_id: str = Field("historical", description="CMIP6 experiment_id.")
    member_id: str = Field("r1i1p1f1", description="CMIP6 variant label.")
    table_id: str = Field("Omon", description="CMIP6 table of tos and thetao (monthly ocean).")
    grid_label: str | None = Field(None, description="CMIP6 grid_label (gn, gr, ...); null = the only one present.")
    years: tuple[int, int] | None = Field(None, description="First and last year to use; null = the whole record.")

    @model_validator(mode="after")
    def _years_in_order(self):
        _ordered_years(self.years, "years")
        return self


class ReanalysisSection(Section):
    name: SafeName = Field("ORAS5", description="Label used in file names.")
    source_id: str = Field("ORAS5", description="source_id of the reanalysis in the catalog.")
    years: tuple[int, int] = Field((1981, 2023), description="First and last year to use.")

    @model_validator(mode="after")
    def _years_in_order(self):
        _ordered_years(self.years, "years")
        return self


class DataSection(Section):
    catalog_roots: list[str] = Field(
        ["data/demo"], description="Directory trees scanned for CMIP6 (DRS) and ORAS5 files by the catalog rule."
    )
    operational: list[OperationalModelSection] = Field(
        default_factory=lambda: [
            OperationalModelSection(name="DEMO-CESM2", source_id="DEMO-CESM2"),
            OperationalModelSection(name="DEMO-GFDL-CM4", source_id="DEMO-GFDL-CM4"),
        ],
        min_length=1,
        description="Operational (CMIP6) models to bridge; each becomes a wildcard value of the DAG.",
    )
    reanalysis: ReanalysisSection = Field(default_factory=ReanalysisSection)

    @model_validator(mode="after")
    def _unique_sources(self):
        """Every source name names one store: RUN/stores/<name>.zarr, and bridging_<model> / free_run_<model>."""
        names = [m.name for m in self.operational]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"operational model names must be unique, {repeated} appear more than once")
        derived = {f"{prefix}_{n}" for n in names for prefix in ("bridging", "free_run")}
        if self.reanalysis.name in names or self.reanalysis.name in derived:
            raise ValueError(
                f"reanalysis.name {self.reanalysis.name!r} is also the name of an operational model's store; "
                "every source needs a name of its own"
            )
        clash = sorted(set(names) & derived)
        if clash:
            raise ValueError(f"operational model names {clash} clash with another model's bridging_/free_run_ store")
        return self


class RegridSection(Section):
    method: Literal["bilinear", "idw", "nearest"] = Field(
        "bilinear",
        description="bilinear: bilinear weights in the enclosing source cell (all four corners ocean), a weighted "
        "least-squares plane through the connected ocean points of the surrounding 4x4 block where the cell touches "
        "land, IDW where no cell encloses the target or all its corners are land; idw: inverse-distance weights of the "
        "k nearest ocean points; nearest: nearest ocean point.",
    )
    neighbours: int = Field(4, ge=1, le=16, description="k for idw (and for the idw fallback of bilinear).")
    idw_power: float = Field(2.0, gt=0, description="Exponent p of the inverse-distance weights 1/d^p.")
    max_distance_deg: float = Field(
        2.5,
        gt=0,
        description="A target cell whose nearest ocean source point is farther than this (great-circle degrees) is NaN.",
    )
    max_missing_fraction: float = Field(
        0.01,
        ge=0,
        le=1,
        description="The source land mask is taken from the first month; a later month with a larger fraction of those "
        "ocean points missing is an error (a static mask is assumed).",
    )


class IngestSection(Section):
    time_chunk: int = Field(120, ge=1, description="Months per chunk of the written store.")
    read_chunk_mb: float = Field(
        128.0,
        gt=0,
        description="Target size (MB) of one dask chunk of source data (thetao is read and reduced chunk by chunk).",
    )
    isotherm: float = Field(20.0, ge=-5, le=45, description="Isotherm (°C) whose depth is the thermocline depth.")
    scheduler: Literal["synchronous", "threads", "distributed"] = Field(
        "threads", description="dask scheduler for ingestion; distributed starts a local dask.distributed cluster."
    )
    n_workers: int = Field(1, ge=1, description="Workers of the distributed scheduler.")
    memory_limit: str = Field("3GB", description="Memory limit per distributed worker.")
    regrid: RegridSection = Field(default_factory=RegridSection)
