"""Regridding from any ocean grid (curvilinear, tripolar, regular) to the project's :class:`~bridging.grid.TargetGrid`.

Weights are computed once per source grid and applied to every time step as one sparse matrix product over the
flattened horizontal dimensions (target = W · source), chunk by chunk in time. All geometry is done on unit-sphere
vectors (a KD-tree of source points in 3-D), so longitude conventions (0–360, −180…180, GFDL's −300…60) and the
date line are harmless.

Methods (``ingest.regrid.method``):

``bilinear`` (default)
    The target point is located in its source cell (the quad of four neighbouring source centres, found around the
    nearest source point and inverted with Newton's method in the gnomonic projection about the target, where
    great circles are straight lines). If all four corners are ocean: bilinear weights. If the cell touches land:
    plain renormalisation over the ocean corners would only be zeroth-order accurate (error ≈ gradient × cell
    size at every coast), so the weights instead come from a weighted least-squares plane through the ocean points
    of the surrounding 4 × 4 block that connect through ocean to the cell (weights still sum to one and reproduce
    linear fields; nothing reaches across a one-cell isthmus). Where no cell encloses the target (grid edges,
    folds) or all four corners are land (the target lies on land at the source's resolution): inverse-distance
    weights of the nearest ocean points within ``max_distance_deg`` (chosen by distance, so such coastal
    extrapolation may mix both sides of a narrow isthmus).
``idw``
    Inverse-distance weights ``1/d^p`` of the ``neighbours`` nearest ocean points.
``nearest``
    The nearest ocean point.

Land awareness, for all methods: only ocean source points (finite in the first month of the field the weights are
built from) ever get weight, so land values never leak into the ocean; a target cell with no ocean source point
within ``max_distance_deg`` (great-circle) is NaN. Weight rows sum to one. When applied, source points that are
NaN in some month are dropped and the row renormalised over the remaining weight; a target keeps a value only if at
least half of its weight is valid (fields like the thermocline depth are legitimately undefined in some months).
For SST the land mask is assumed static: a month in which more than ``max_missing_fraction`` of the ocean points
used is NaN is an error.

Weights are saved as netCDF in the ESMF offline-weights convention (``S``, ``row``, ``col`` 1-based, ``mask_a``,
``mask_b``, ``src_grid_dims``/``dst_grid_dims`` in x-fastest order), readable by xESMF or CDO-style tools, plus a
fingerprint of the source grid so applying them to another grid fails with a clear error.
"""

from .apply import MIN_VALID_WEIGHT, SourceMaskChangedError, regrid, regrid_array
from .storage import WEIGHTS_FORMAT, load_weights, save_weights
from .weights import METHODS, RegridWeights, compute_weights, grid_fingerprint, unit_vectors, weights_from_config

__all__ = [
    "METHODS",
    "MIN_VALID_WEIGHT",
    "WEIGHTS_FORMAT",
    "RegridWeights",
    "SourceMaskChangedError",
    "compute_weights",
    "grid_fingerprint",
    "load_weights",
    "regrid",
    "regrid_array",
    "save_weights",
    "unit_vectors",
    "weights_from_config",
]
