"""ENSO indices from gridded monthly fields and from idealized-model runs.

Box means (Niño 3, 3.4, 4 of SST; the western-Pacific thermocline index of the 20 °C isotherm depth) are
cos(latitude)-weighted means over the ocean cells whose centres lie inside the box, boundaries included. That is
the convention of :meth:`bridging.observables.ObservationLayout.weights`, so a Niño 3 box-mean observable and the
Niño 3 index of the same field agree exactly. "Ocean" = finite at every time (and member), and inside the
store's ``ocean_mask`` where there is one, so the set of averaged cells does not change with time.

Indices are anomalies against the monthly climatology of the analysed record (pooled over members), as in the
community definitions; since the box mean is linear and the cell set is fixed, this equals the box mean of the
anomaly field. A Kelvin-vs-Celsius offset therefore cancels, so no unit conversion is needed for the indices.

Any regular latitude/longitude grid is accepted: the coordinates are found by cf-xarray (CF attributes such as
``standard_name`` or ``units: degrees_north``, else latitude/longitude-like names; 1-D, or 2-D like NEMO's
``nav_lat``/``nav_lon`` when regular), longitudes in 0–360 or −180–180, latitudes in either order, any calendar (only (year, month) is used, :func:`bridging.timeaxis.year_month`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..idealized.reconstruction import CF23Reconstruction, has_node_fields
from ..io.coords import TIME_NAMES, horizontal_pairs
from ..io.coords import time_dim as find_time_dim
from ..stores import FIELDS, anomalies, monthly_climatology, open_store, open_zarr
from ..timeaxis import month_counter, year_month

# Cell centres on a box edge are inside (same tolerance as ObservationLayout.weights).
EDGE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class IndexBox:
    """A box-mean index: the variable it averages and the box (°N, °E in 0–360)."""

    name: str
    variable: str
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    long_name: str
    units: str

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """(n_lat, n_lon) mask of the cell centres of a regular grid that lie inside the box."""
        return self.contains_points(np.asarray(lat, float)[:, None], np.asarray(lon, float)[None, :])

    def contains_points(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Element-wise: are the points (lat, lon) inside the box (edges included; lon in any convention)?"""
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float) % 360.0
        return (
            (lat >= self.lat_min - EDGE_TOLERANCE)
            & (lat <= self.lat_max + EDGE_TOLERANCE)
            & (lon >= self.lon_min - EDGE_TOLERANCE)
            & (lon <= self.lon_max + EDGE_TOLERANCE)
        )


NINO3 = IndexBox("nino3", "sst", -5.0, 5.0, 210.0, 270.0, "Niño 3 index (5°S–5°N, 150°W–90°W)", "degC")
NINO34 = IndexBox("nino34", "sst", -5.0, 5.0, 190.0, 240.0, "Niño 3.4 index (5°S–5°N, 170°W–120°W)", "degC")
NINO4 = IndexBox("nino4", "sst", -5.0, 5.0, 160.0, 210.0, "Niño 4 index (5°S–5°N, 160°E–150°W)", "degC")
WP_THERMOCLINE = IndexBox(
    "wp_thermocline",
    "thermocline_depth",
    -5.0,
    5.0,
    120.0,
    180.0,
    "Western-Pacific thermocline index: 20 °C isotherm depth anomaly (5°S–5°N, 120°E–180°)",
    "m",
)
BOXES: dict[str, IndexBox] = {b.name: b for b in (NINO3, NINO34, NINO4, WP_THERMOCLINE)}
NINO_INDICES = ("nino3", "nino34", "nino4")


# --------------------------------------------------------------------------------------------------- input files


def _regular_1d(values: xr.DataArray, along: str, path, what: str) -> np.ndarray:
    """1-D coordinate from a 2-D one that is constant along ``along`` (a regular grid stored as nav_lat/nav_lon)."""
    arr = np.asarray(values.values, float)
    axis = values.dims.index(along)
    ref = np.take(arr, 0, axis=axis)
    spread = np.nanmax(np.abs(arr - np.expand_dims(ref, axis)))
    if not np.isfinite(spread) or spread > 1e-4:
        raise InputDataError(
            path,
            f"{what} is 2-D and varies along both grid axes (a curvilinear grid); "
            "regrid it to a regular grid first (the ingest stage does this)",
        )
    return ref


def normalise_grid(ds: xr.Dataset, variable: str, path=None) -> xr.DataArray:
    """``ds[variable]`` as a DataArray with dims ``([member,] time, lat, lon)``: 1-D ``lat`` ascending, 1-D ``lon`` in
    0–360 ascending, ``time`` the monthly axis. Errors name ``path`` and the problem."""
    if variable not in ds.data_vars:
        have = ", ".join(sorted(str(v) for v in ds.data_vars)) or "none"
        raise InputDataError(path, f"no variable {variable!r} (data variables: {have})")
    da = ds[variable]
    # The pairs cf-xarray finds (CF attributes, then names) that span the variable: 1-D axes first (a regular grid),
    # then 2-D ones (a regular grid stored as nav_lat/nav_lon, checked below to be regular).
    pairs, spanning = horizontal_pairs(ds, da, by_name=False)
    if not spanning:
        shown = "; ".join(f"{la}{tuple(ds[la].dims)} / {lo}{tuple(ds[lo].dims)}" for la, lo in pairs) or "none found"
        raise InputDataError(
            path,
            f"{variable!r} {da.dims} has no latitude/longitude coordinates spanning its dimensions (candidates by CF "
            f"attributes standard_name/units/axis or by name: {shown})",
        )
    spanning.sort(key=lambda p: p[2] != "regular")
    lat_name, lon_name, kind = spanning[0]
    lat, lon = ds[lat_name], ds[lon_name]
    if kind == "regular":
        ydim, xdim = lat.dims[0], lon.dims[0]
        lat_values, lon_values = np.asarray(lat.values, float), np.asarray(lon.values, float)
    else:
        ydim, xdim = lat.dims
        lat_values = _regular_1d(lat, xdim, path, f"latitude {lat_name!r}")
        lon_values = _regular_1d(lon, ydim, path, f"longitude {lon_name!r}")
    if ydim not in da.dims or xdim not in da.dims:
        raise InputDataError(path, f"{variable!r} {da.dims} does not span the latitude/longitude dims ({ydim}, {xdim})")
    time_dim = find_time_dim(da, ds)
    if time_dim is None:
        raise InputDataError(
            path, f"{variable!r} {da.dims} has no time dimension (looked for {TIME_NAMES} and CF time coordinates)"
        )
    extra = [d for d in da.dims if d not in (ydim, xdim, time_dim, "member")]
    for dim in extra:
        if da.sizes[dim] != 1:
            raise InputDataError(
                path, f"{variable!r} has an extra dimension {dim!r} of size {da.sizes[dim]}; select one level first"
            )
    da = da.squeeze(extra, drop=True)
    # Drop the original (possibly 2-D) coordinates before renaming: lat/lon become plain 1-D dimension coordinates.
    da = da.drop_vars([c for c in da.coords if c not in (time_dim, "member")])
    da = da.rename({ydim: "lat", xdim: "lon", time_dim: "time"})
    da = da.assign_coords(lat=("lat", lat_values), lon=("lon", lon_values % 360.0))
    da = da.isel(lon=np.unique(da["lon"].values, return_index=True)[1])  # sorted, a repeated 0/360 column once
    if np.any(np.diff(da["lat"].values) < 0):
        da = da.isel(lat=slice(None, None, -1))
    if np.any(np.diff(da["lat"].values) <= 0):
        raise InputDataError(path, "latitudes are not monotonic")
    order = [d for d in ("member", "time", "lat", "lon") if d in da.dims]
    return da.transpose(*order)


def check_monthly(time: xr.DataArray | np.ndarray, path=None) -> None:
    """Raise InputDataError unless ``time`` is a gap-free series of consecutive calendar months."""
    try:
        years, months = year_month(time)
    except (AttributeError, TypeError):
        raise InputDataError(path, "time is not a date axis (cannot decode years and months)") from None
    if years.size < 12:
        raise InputDataError(path, f"only {years.size} time steps; a monthly climatology needs at least 12 months")
    steps = np.diff(month_counter(years, months))
    if not np.all(steps == 1):
        bad = np.flatnonzero(steps != 1)[0]
        raise InputDataError(
            path,
            f"not a gap-free monthly series: {years[bad]:04d}-{months[bad]:02d} is followed by "
            f"{years[bad + 1]:04d}-{months[bad + 1]:02d}",
        )


def is_project_store(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "zarr.json").exists() and all((path / v).exists() for v in (*FIELDS, "ocean_mask"))


def open_monthly_field(path: str | Path, variable: str) -> tuple[xr.DataArray, np.ndarray | None]:
    """A monthly field from a project store or any regular lat/lon netCDF/zarr file, normalised by
    :func:`normalise_grid`; and the store's ocean mask (None for other files)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist")
    if is_project_store(path):
        ds = open_store(path)
        field = normalise_grid(ds, variable, path)
        ocean = np.asarray(ds["ocean_mask"].transpose("lat", "lon").values, bool)
        if np.any(np.diff(ds["lat"].values) < 0):
            ocean = ocean[::-1]
    else:
        try:
            if path.is_dir():
                ds = open_zarr(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
            else:
                ds = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        except Exception as err:  # the backends raise many types for unreadable or undecodable files
            raise InputDataError(path, f"cannot open ({type(err).__name__}: {err})") from None
        field = normalise_grid(ds, variable, path)
        # a user's file: undeclared fill values → NaN; implausible values, spikes and damaged chunks → errors
        from ..io.plausibility import screen_field

        field = screen_field(field, path)
        ocean = None
    check_monthly(field["time"], path)
    return field, ocean


# --------------------------------------------------------------------------------------------------- box means


def box_weights(lat: np.ndarray, lon: np.ndarray, box: IndexBox, ocean: np.ndarray) -> np.ndarray:
    """(n_lat, n_lon) weights summing to 1: cos(lat) on the box's ocean cells, 0 elsewhere."""
    inside = box.contains(lat, lon) & np.asarray(ocean, bool)
    if not inside.any():
        raise ValueError(
            f"the {box.name} box ({box.lat_min}…{box.lat_max}°N, {box.lon_min}…{box.lon_max}°E) holds no ocean cell"
        )
    w = np.where(inside, np.cos(np.deg2rad(np.asarray(lat, float)))[:, None], 0.0)
    return w / w.sum()


def _index_strip(boxes) -> tuple[float, float, float, float]:
    return (
        min(b.lat_min for b in boxes) - EDGE_TOLERANCE,
        max(b.lat_max for b in boxes) + EDGE_TOLERANCE,
        min(b.lon_min for b in boxes) - EDGE_TOLERANCE,
        max(b.lon_max for b in boxes) + EDGE_TOLERANCE,
    )


# Rows (member·time slices) per float64 chunk of the box means: bounds the temporary copy of the index strip.
ROW_CHUNK = 1024


def box_means(field: xr.DataArray, boxes, ocean: np.ndarray | None = None, path=None) -> dict[str, xr.DataArray]:
    """Box means of a normalised field ``([member,] time, lat, lon)`` for each box: ``([member,] time)`` float64.

    Only the strip that holds the boxes is read, so a global high-resolution file costs little memory; the sums
    are taken in float64.
    """
    boxes = list(boxes)
    lat0, lat1, lon0, lon1 = _index_strip(boxes)
    lat, lon = field["lat"].values, field["lon"].values
    rows = np.flatnonzero((lat >= lat0) & (lat <= lat1))
    cols = np.flatnonzero((lon >= lon0) & (lon <= lon1))
    strip = field.isel(lat=rows, lon=cols)
    values = np.asarray(strip.values)
    lead = values.shape[:-2]
    flat = values.reshape(-1, rows.size * cols.size)
    ocean_strip = np.isfinite(flat).all(axis=0).reshape(rows.size, cols.size)
    if ocean is not None:
        ocean_strip &= np.asarray(ocean, bool)[np.ix_(rows, cols)]
    try:
        weights = np.stack([box_weights(lat[rows], lon[cols], box, ocean_strip).ravel() for box in boxes], axis=1)
    except ValueError as err:
        raise InputDataError(path, str(err)) from None
    used = np.flatnonzero(weights.any(axis=1))  # only the cells some box averages (all finite by construction)
    sums = np.empty((flat.shape[0], len(boxes)))
    for start in range(0, flat.shape[0], ROW_CHUNK):
        sums[start : start + ROW_CHUNK] = flat[start : start + ROW_CHUNK, used].astype(np.float64) @ weights[used]
    coords = {d: strip[d] for d in strip.dims[:-2]}
    return {
        box.name: xr.DataArray(
            sums[:, k].reshape(lead),
            dims=strip.dims[:-2],
            coords=coords,
            attrs={"units": box.units, "long_name": box.long_name},
        )
        for k, box in enumerate(boxes)
    }


def monthly_anomalies(series: xr.DataArray) -> xr.DataArray:
    """Anomalies against the monthly climatology of the whole record, pooled over members."""
    out = anomalies(series, monthly_climatology(series))
    out.attrs = dict(series.attrs)
    return out


def field_indices(fields: dict[str, xr.DataArray], ocean: np.ndarray | None = None, path=None) -> xr.Dataset:
    """Index anomalies of every box whose variable is among ``fields`` (normalised fields, same grid)."""
    out = {}
    for variable, field in fields.items():
        boxes = [b for b in BOXES.values() if b.variable == variable]
        if not boxes:
            continue
        for name, series in box_means(field, boxes, ocean, path).items():
            out[name] = monthly_anomalies(series)
    if not out:
        raise ValueError(f"no index is defined on the variables {sorted(fields)}")
    return xr.Dataset({name: out[name] for name in BOXES if name in out})


def store_indices(ds: xr.Dataset, path=None) -> xr.Dataset:
    """All indices of a project store (Niño indices of ``sst``, WP thermocline index of ``thermocline_depth``)."""
    fields = {name: normalise_grid(ds, name, path) for name in FIELDS}
    check_monthly(fields["sst"]["time"], path)
    ocean = np.asarray(ds["ocean_mask"].transpose("lat", "lon").values, bool)
    if np.any(np.diff(ds["lat"].values) < 0):
        ocean = ocean[::-1]
    return field_indices(fields, ocean, path)


def target_grid_mask(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat ascending, lon, ocean mask) of a project store: the grid and land mask every source is averaged on."""
    lat = np.asarray(ds["lat"].values, float)
    ocean = np.asarray(ds["ocean_mask"].transpose("lat", "lon").values, bool)
    if np.any(np.diff(lat) < 0):
        lat, ocean = lat[::-1], ocean[::-1]
    return lat, np.asarray(ds["lon"].values, float) % 360.0, ocean


# Months of an idealized run reconstructed at a time: bounds the (months × index strip) fields in memory.
RECONSTRUCTION_CHUNK_MONTHS = 1200


def reconstructed_indices(
    run: xr.Dataset, lat: np.ndarray, lon: np.ndarray, ocean: np.ndarray, path=None
) -> xr.Dataset:
    """Every index (Niño boxes, WP thermocline) of a CF23 run, as box means of its 2-D fields on the target grid.

    The fields are CF23's own reconstruction (:mod:`bridging.idealized.reconstruction`) on the grid's cells, and the
    box means are :func:`box_means` with the grid's ocean mask: the operator every gridded source goes through.
    Only the rows that hold the boxes are reconstructed, one time chunk at a time.
    """
    boxes = list(BOXES.values())
    lat0, lat1, _, _ = _index_strip(boxes)
    rows = np.flatnonzero((lat >= lat0) & (lat <= lat1))
    la, lo = np.meshgrid(lat[rows], lon, indexing="ij")
    reconstruction = CF23Reconstruction.build(la, lo)
    has_member = "member" in run["sst_anomaly"].dims
    n_time = run.sizes["time"]
    parts: dict[str, list[np.ndarray]] = {b.name: [] for b in boxes}
    for start in range(0, n_time, RECONSTRUCTION_CHUNK_MONTHS):
        months = slice(start, min(start + RECONSTRUCTION_CHUNK_MONTHS, n_time))
        sst, depth = reconstruction.apply_run(run, months)
        dims = ("member", "time", "lat", "lon") if has_member else ("time", "lat", "lon")
        coords = {"lat": lat[rows], "lon": lon}
        fields = {
            "sst": xr.DataArray(sst, dims=dims, coords=coords),
            "thermocline_depth": xr.DataArray(depth, dims=dims, coords=coords),
        }
        for variable, field in fields.items():
            for name, series in box_means(
                field, [b for b in boxes if b.variable == variable], ocean[rows], path
            ).items():
                parts[name].append(series.values)
    out = {}
    for box in boxes:
        values = np.concatenate(parts[box.name], axis=-1)
        dims = ("member", "time") if has_member else ("time",)
        series = xr.DataArray(
            values, dims=dims, coords={"time": run["time"]}, attrs={"units": box.units, "long_name": box.long_name}
        )
        out[box.name] = monthly_anomalies(series)
    return xr.Dataset(out)


def idealized_indices(ds: xr.Dataset, path=None, grid: xr.Dataset | None = None) -> tuple[xr.Dataset, str]:
    """The indices of an idealized-model run and the operator that made them.

    CF23 runs (node fields present) with a ``grid`` (a project store on the target grid): box means of the run's
    2-D reconstruction on that grid and its ocean mask, exactly as for gridded sources. Otherwise (CFY22, whose
    state is three box variables) the run's own ``nino3``, ``nino34``, ``nino4``, re-referenced to the run's monthly
    climatology like every other source.
    """
    check_monthly(ds["time"], path)
    if grid is not None and has_node_fields(ds):
        lat, lon, ocean = target_grid_mask(grid)
        operator = "box means (cos-latitude, ocean cells) of CF23's 2-D reconstruction on the target grid"
        return reconstructed_indices(ds, lat, lon, ocean, path), operator
    missing = [n for n in NINO_INDICES if n not in ds]
    if missing:
        raise InputDataError(path, f"idealized-run store lacks the index variables {missing}")
    out = {}
    for name in NINO_INDICES:
        series = ds[name].astype("float64")
        order = [d for d in ("member", "time") if d in series.dims]
        if set(series.dims) != set(order):
            raise InputDataError(path, f"{name} has dims {series.dims}, expected ([member,] time)")
        series = series.transpose(*order).load()
        if not np.isfinite(series.values).all():
            raise InputDataError(path, f"{name} has missing (non-finite) values")
        series.attrs = {"units": BOXES[name].units, "long_name": BOXES[name].long_name}
        out[name] = monthly_anomalies(series)
    return xr.Dataset(out), "the model's own box variables (no 2-D fields)"


def indices_from_file(path: str | Path, variable: str = "sst") -> xr.Dataset:
    """Niño index anomalies of ``variable`` in any monthly gridded file or project store (the CLI's entry point)."""
    field, ocean = open_monthly_field(path, variable)
    series = box_means(field, [BOXES[n] for n in NINO_INDICES], ocean, path)
    return xr.Dataset({name: monthly_anomalies(s) for name, s in series.items()})


def as_member_time(series: xr.DataArray) -> np.ndarray:
    """The values of a ``([member,] time)`` series as a (member, time) array (one member when there is none)."""
    values = np.asarray(series.transpose(*[d for d in ("member", "time") if d in series.dims]).values, float)
    return values[None, :] if values.ndim == 1 else values
