"""The CF check of the outputs: IOOS compliance-checker's CF 1.11 checker on every netCDF output, and on a netCDF
copy of each zarr store's first months (the checker reads netCDF only; the copy has every variable, coordinate and
attribute of the store)."""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from bridging import cf

#: the checker and the CF version it checks against
CF_CHECKER = "cf:1.11"
#: months of a zarr store copied for the check (metadata is what is checked)
SAMPLE_MONTHS = 3


def netcdf_copy(store: Path, out: Path) -> Path:
    """A netCDF file with the store's variables and attributes over its first months (same time encoding)."""
    ds = xr.open_zarr(store, decode_times=False)
    if "time" in ds.dims:
        ds = ds.isel(time=slice(0, SAMPLE_MONTHS))
    for dim in ("member", "state", "check_member"):
        if dim in ds.dims:
            ds = ds.isel({dim: slice(0, 2)})
    encoding = {}
    for name, var in ds.variables.items():
        fill = var.encoding.get("_FillValue", var.attrs.get("_FillValue"))
        var.encoding = {}
        encoding[name] = {"_FillValue": None if fill is None or name in cf.no_fill_variables(ds) else fill}
    ds.to_netcdf(out, engine="netcdf4", encoding=encoding)
    return out


def check_file(path: Path, report: Path) -> dict:
    """compliance-checker's result for one netCDF file: its high-priority failures (errors) and the rest."""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    ComplianceChecker.run_checker(
        str(path), [CF_CHECKER], verbose=0, criteria="normal", output_filename=str(report), output_format="json"
    )
    result = json.loads(report.read_text())[CF_CHECKER]
    messages = {"errors": [], "warnings": []}
    for priority, key in (("high_priorities", "errors"), ("medium_priorities", "warnings")):
        for check in result.get(priority, []):
            msgs = [m for m in check.get("msgs", []) if m]
            if check["value"][0] < check["value"][1]:
                messages[key].append({"name": check["name"], "msgs": msgs})
    messages["scored"] = result.get("scored_points"), result.get("possible_points")
    return messages


def cf_check_report(paths, workdir: Path) -> dict[str, dict]:
    """Check every output (a zarr store through its netCDF copy); one result per output path."""
    out = {}
    for k, path in enumerate(paths):
        path = Path(path)
        target = netcdf_copy(path, workdir / f"copy{k}.nc") if path.suffix == ".zarr" else path
        out[str(path)] = check_file(target, workdir / f"report{k}.json")
    return out
