"""One map panel of the tropical Pacific as every map figure draws it: the field on the regular lat/lon grid, land
(no data) grey and outlined by the contour of the ocean mask, geographic ticks (°E/°W, °N/°S) and axis labels."""

from __future__ import annotations

import math

import numpy as np

LAND_COLOUR = "0.8"
COAST_COLOUR = "0.15"


def lon_label(value: float) -> str:
    """Longitude in degrees east (any range) as 150°E, 180°, 120°W."""
    v = float(value) % 360.0
    if math.isclose(v, 0.0) or math.isclose(v, 180.0):
        return f"{v:g}°"
    return f"{v:g}°E" if v < 180 else f"{360 - v:g}°W"


def lat_label(value: float) -> str:
    """Latitude as 10°S, 0°, 10°N."""
    v = float(value)
    if math.isclose(v, 0.0):
        return "0°"
    return f"{abs(v):g}°{'N' if v > 0 else 'S'}"


def _ticks(low: float, high: float, steps: tuple[float, ...], most: int) -> np.ndarray:
    for step in steps:
        ticks = np.arange(math.ceil(low / step) * step, high + 1e-6, step)
        if len(ticks) <= most:
            return ticks
    return np.array([low, high])


def geographic_ticks(
    ax, lat: np.ndarray, lon: np.ndarray, *, xlabel: bool = True, ylabel: bool = True, max_lon_ticks: int = 7
) -> None:
    """Ticks in °E/°W and °N/°S over the panel's extent (at most ``max_lon_ticks`` along longitude, fewer on narrow
    panels); the tick labels and axis labels on the outer panels only."""
    lon_ticks = _ticks(float(np.min(lon)), float(np.max(lon)), (20, 30, 40, 60, 90), max_lon_ticks)
    lat_ticks = _ticks(float(np.min(lat)), float(np.max(lat)), (5, 10, 20), 5 if max_lon_ticks > 4 else 3)
    ax.set_xticks(lon_ticks)
    ax.set_xticklabels([lon_label(t) for t in lon_ticks] if xlabel else [])
    ax.set_yticks(lat_ticks)
    ax.set_yticklabels([lat_label(t) for t in lat_ticks] if ylabel else [])
    if xlabel:
        ax.set_xlabel("longitude")
    if ylabel:
        ax.set_ylabel("latitude")


def outline_land(ax, lat: np.ndarray, lon: np.ndarray, ocean_mask) -> None:
    """The coastline of the grid: the 0.5 contour of the ocean mask (1 ocean, 0 land) between cell centres."""
    mask = np.asarray(ocean_mask, float)
    if mask.min() == mask.max():
        return  # all ocean (or all land): nothing to outline
    ax.contour(lon, lat, mask, levels=[0.5], colors=COAST_COLOUR, linewidths=0.9)


def draw_map(
    ax,
    lat: np.ndarray,
    lon: np.ndarray,
    values,
    *,
    cmap,
    vmin: float,
    vmax: float,
    ocean_mask=None,
    xlabel: bool = True,
    ylabel: bool = True,
    max_lon_ticks: int = 7,
):
    """The field on its grid (NaN = land, grey), the land outlined, geographic ticks; returns the mesh (or None when
    the field has no finite value, which the panel then says)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    ax.set_facecolor(LAND_COLOUR)
    values = None if values is None else np.asarray(values, float)
    mesh = None
    if values is None or not np.isfinite(values).any():
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        mesh = ax.pcolormesh(lon, lat, np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest")
    if ocean_mask is not None:
        outline_land(ax, lat, lon, ocean_mask)
    ax.set_xlim(lon.min() - 0.5 * _step(lon), lon.max() + 0.5 * _step(lon))
    ax.set_ylim(lat.min() - 0.5 * _step(lat), lat.max() + 0.5 * _step(lat))
    ax.set_aspect("equal")
    geographic_ticks(ax, lat, lon, xlabel=xlabel, ylabel=ylabel, max_lon_ticks=max_lon_ticks)
    return mesh


def _step(coord: np.ndarray) -> float:
    return float(np.abs(np.diff(coord)).min()) if coord.size > 1 else 1.0


def symmetric_limits(arrays, diverging: bool) -> tuple[float, float]:
    """One colour range for maps of one quantity: ±99th percentile of |values| (diverging) or 0…99th percentile."""
    finite = [np.asarray(a, float)[np.isfinite(a)].ravel() for a in arrays if a is not None and np.isfinite(a).any()]
    values = np.concatenate(finite or [np.zeros(1)])
    if diverging:
        vmax = float(np.quantile(np.abs(values), 0.99)) or 1.0
        return -vmax, vmax
    return 0.0, float(np.quantile(values, 0.99)) or 1.0
