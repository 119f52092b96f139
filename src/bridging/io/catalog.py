"""A catalog of the input files: scan directory trees for CMIP6 and ORAS5 files, write an intake-esm catalog.

Files are recognised by name, without opening them (a CMIP6 archive holds tens of thousands of files):

* CMIP6: ``{variable_id}_{table_id}_{source_id}_{experiment_id}_{member_id}_{grid_label}[_{time_range}].nc``; when
  the file sits in a DRS folder tree (``…/{activity_id}/{institution_id}/{source_id}/{experiment_id}/{member_id}/
  {table_id}/{variable_id}/{grid_label}/{version}/``) the activity, institution and version come from the path.
* ORAS5: ``{variable}_control_monthly_highres_{2D|3D}_{YYYYMM}_{CONS|OPER}_v{version}.nc`` (source_id ``ORAS5``,
  experiment ``reanalysis``, member ``control``, grid ``ORCA025``).

The catalog is an ESM collection (JSON + CSV, absolute paths; https://github.com/NCAR/esm-collection-spec), with a
``project`` column (``cmip6`` | ``oras5``). Stages read it through :func:`find_files` / :func:`open_source`, which
search it with intake-esm (works under pandas 3) and open the files with :mod:`bridging.io.readers`.

Users may also open it with intake-esm directly. ``to_dataset_dict`` joins each dataset's files with
``xr.combine_by_coords``, which finds the record dimension itself (``time`` in CMIP6 files, ``time_counter`` in
ORAS5's), so the catalog names no join dimension and the files are read as they are. But intake-esm opens the
datasets in threads, and netCDF4-python (>= 1.6.1) is not thread-safe: a plain ``to_dataset_dict()`` over several
netCDF datasets can crash the interpreter (intake-esm issue #697; about one run in two on the demo catalog).
:func:`load_datasets` opens them one at a time, as does ``cat[key].to_dask()`` on a datastore opened with
``threaded=False`` (``to_dataset_dict`` opens the keys in a thread pool even then);
``cat.search(...).to_dataset_dict(threaded=False)`` is safe for a query that selects one key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

COLUMNS = (
    "project", "activity_id", "institution_id", "source_id", "experiment_id", "member_id", "table_id", "variable_id",
    "grid_label", "version", "time_range", "stream", "path",
)  # fmt: skip
CMIP6_FILE = re.compile(
    r"^(?P<variable_id>[A-Za-z0-9]+)_(?P<table_id>[A-Za-z0-9]+)_(?P<source_id>[A-Za-z0-9.-]+)_(?P<experiment_id>[A-Za-z0-9-]+)"
    r"_(?P<member_id>[A-Za-z0-9-]+)_(?P<grid_label>g[a-z0-9]*)(?:_(?P<time_range>\d{4,12}-\d{4,12}(?:-clim)?))?\.nc$"
)
ORAS5_FILE = re.compile(
    r"^(?P<variable_id>[A-Za-z0-9]+)_control_monthly_highres_(?P<dims>2D|3D)_(?P<yyyymm>\d{6})_(?P<stream>CONS|OPER)_v(?P<version>[\d.]+)\.nc$"
)
ORAS5_SOURCE_ID = "ORAS5"


def parse_file(path: Path) -> dict | None:
    """Catalog row of one file from its name (and DRS folders), or None when the name matches no known layout."""
    name = path.name
    m = ORAS5_FILE.match(name)
    if m:
        yyyymm = m["yyyymm"]
        return {
            "project": "oras5", "activity_id": "", "institution_id": "ECMWF", "source_id": ORAS5_SOURCE_ID,
            "experiment_id": "reanalysis", "member_id": "control", "table_id": f"monthly_highres_{m['dims']}",
            "variable_id": m["variable_id"], "grid_label": "ORCA025", "version": f"v{m['version']}",
            "time_range": f"{yyyymm}-{yyyymm}", "stream": m["stream"], "path": str(path),
        }  # fmt: skip
    m = CMIP6_FILE.match(name)
    if not m:
        return None
    row = {c: "" for c in COLUMNS}
    row.update({k: v or "" for k, v in m.groupdict().items()})
    row.update({"project": "cmip6", "path": str(path)})
    parents = path.parent.parts
    if len(parents) >= 9:
        activity, institution, source, experiment, member, table, variable, grid, version = parents[-9:]
        if (source, experiment, member, table, variable, grid) == (
            row["source_id"], row["experiment_id"], row["member_id"], row["table_id"], row["variable_id"], row["grid_label"],
        ):  # fmt: skip
            row.update({"activity_id": activity, "institution_id": institution, "version": version})
    return row


def _walk_nc(root: Path) -> Iterable[Path]:
    """The .nc files under ``root``, following symbolic links to folders but entering each real folder once.

    Archives link folders into each other (shared versions, ``latest`` links); a link back to an ancestor would
    make ``os.walk(followlinks=True)`` recurse until the path is too long, which with two such links takes
    exponential time. Visited real paths cut every cycle, so the walk always ends."""
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):  # skip hidden (e.g. atomic temporaries)
                continue
            if os.path.realpath(os.path.join(dirpath, d)) in visited:
                log.debug("catalog: %s leads back to a folder already scanned; not followed", os.path.join(dirpath, d))
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if f.endswith(".nc") and not f.startswith("."):
                yield Path(dirpath) / f


def scan(roots: Sequence[str | Path]):
    """A pandas DataFrame with one row per recognised file under the roots (absolute, de-duplicated paths)."""
    import pandas as pd

    if not roots:
        raise ConfigError("data.catalog_roots: no directory given to scan for input files")
    rows, seen = [], set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"data.catalog_roots: {root} does not exist or is not a directory")
        found = skipped = 0
        for path in _walk_nc(root):
            resolved = path.resolve()
            if resolved in seen:  # reached through another (overlapping) root or a symlink
                found += 1
                continue
            row = parse_file(path)
            if row is None:
                skipped += 1
                continue
            seen.add(resolved)
            row["path"] = str(path.absolute())
            rows.append(row)
            found += 1
        if found == 0:
            raise ConfigError(
                f"data.catalog_roots: {root} holds no usable files ({skipped} other .nc files); expected CMIP6 files named "
                "{var}_{table}_{source}_{experiment}_{member}_{grid}_{YYYYMM}-{YYYYMM}.nc or ORAS5 files named "
                "{var}_control_monthly_highres_2D_{YYYYMM}_{CONS|OPER}_v0.1.nc"
            )
        log.info("catalog: %s: %d files (%d other .nc files skipped)", root, found, skipped)
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(
        ["project", "source_id", "variable_id", "path"], ignore_index=True
    )


def collection_spec(csv_name: str) -> dict:
    """The ESM collection JSON pointing at the CSV (relative names resolve against the JSON's folder)."""
    return {
        "esmcat_version": "0.1.0",
        "id": "enso-bridge-inputs",
        "description": "CMIP6 Omon and ORAS5 files found under data.catalog_roots (generated by `bridging catalog`)",
        "catalog_file": csv_name,
        "attributes": [{"column_name": c, "vocabulary": ""} for c in COLUMNS if c != "path"],
        "assets": {"column_name": "path", "format": "netcdf"},
        "aggregation_control": {
            "variable_column_name": "variable_id",
            "groupby_attrs": ["project", "source_id", "experiment_id", "table_id", "grid_label"],
            "aggregations": [
                {"type": "union", "attribute_name": "variable_id"},
                {
                    "type": "join_new",
                    "attribute_name": "member_id",
                    "options": {"coords": "minimal", "compat": "override"},
                },
                # no "dim": intake-esm combines by coordinates, along time (CMIP6) or time_counter (ORAS5)
                {"type": "join_existing", "attribute_name": "time_range"},
            ],
        },
    }


def build_catalog(
    roots: Sequence[str | Path], json_out: str | Path, csv_out: str | Path | None = None
) -> tuple[Path, Path]:
    """Scan ``roots`` and write the catalog JSON and CSV (atomically). Returns (json, csv) paths."""
    json_out = Path(json_out)
    csv_out = Path(csv_out) if csv_out is not None else json_out.with_suffix(".csv")
    df = scan(roots)
    csv_ref = csv_out.name if csv_out.parent.resolve() == json_out.parent.resolve() else str(csv_out.resolve())
    write_text_atomic(df.to_csv(index=False), csv_out)
    write_text_atomic(json.dumps(collection_spec(csv_ref), indent=2) + "\n", json_out)
    summary = df.groupby(["project", "source_id", "variable_id"]).size()
    log.info("catalog: %d files\n%s", len(df), summary.to_string())
    return json_out, csv_out


def listing_fingerprint(roots: Sequence[str | Path]) -> str:
    """Hash of the names and sizes of the .nc files under the roots (cheap, no file is opened).

    Used as a parameter of the catalog rule so that files added to or removed from a root re-run it; a missing
    root hashes to a marker (the rule then fails with a clear error)."""
    h = hashlib.sha256()
    for root in roots:
        root = Path(root)
        h.update(str(root).encode())
        if not root.is_dir():
            h.update(b"<missing>")
            continue
        for path in _walk_nc(root):
            try:
                size = path.stat().st_size
            except OSError:
                size = -1
            h.update(f"{path.relative_to(root)}:{size}\n".encode())
    return h.hexdigest()[:16]


def load_catalog(catalog_json: str | Path):
    """The intake-esm datastore of a catalog JSON; errors name the file."""
    import intake_esm

    catalog_json = Path(catalog_json)
    if not catalog_json.is_file():
        raise InputDataError(catalog_json, "catalog does not exist (run `bridging catalog` or the build_catalog rule)")
    try:
        return intake_esm.esm_datastore(str(catalog_json))
    except Exception as err:
        raise InputDataError(catalog_json, f"cannot read the catalog ({type(err).__name__}: {err})") from None


def load_datasets(catalog_json: str | Path, **query) -> dict:
    """Every dataset of an intake-esm catalog (this one or the run's results catalog), or of its ``query`` subset,
    as {key: xr.Dataset}: intake-esm's own aggregation, one dataset and one file at a time (see the module note on
    threads), each variable in the chunks its file or store has (not dask's "auto" chunks, which would re-chunk
    a store's variables). Errors name the catalog."""
    import intake

    catalog_json = Path(catalog_json)
    if not catalog_json.is_file():
        raise InputDataError(catalog_json, "catalog does not exist")
    cat = intake.open_esm_datastore(str(catalog_json), threaded=False)
    if query:
        cat = cat.search(**query)
    return {key: cat[key](xarray_open_kwargs={"chunks": {}}).to_dask() for key in cat.keys()}


def _months(time_range: str) -> tuple[int, int] | None:
    m = re.match(r"^(\d{4})(\d{2})?\d*-(\d{4})(\d{2})?", str(time_range or ""))
    if not m:
        return None
    y0, m0, y1, m1 = m.groups()
    return int(y0) * 12 + int(m0 or 1) - 1, int(y1) * 12 + int(m1 or 12) - 1


def find_files(
    catalog_json: str | Path,
    *,
    source_id: str,
    variable_id: str,
    project: str | None = None,
    experiment_id: str | None = None,
    member_id: str | None = None,
    table_id: str | None = None,
    grid_label: str | None = None,
    years: Sequence[int] | None = None,
) -> list[Path]:
    """The files of one variable of one dataset, sorted by path.

    The query must pin down one dataset: several experiments, members, tables or grid labels are an error naming
    the choices (set them in the config); several versions of a dataset → the newest (by version string) is used.
    ``years`` (first, last) drops files whose time range in the name lies entirely outside.
    """
    catalog = load_catalog(catalog_json)
    query = {
        k: v
        for k, v in dict(
            project=project, source_id=source_id, variable_id=variable_id, experiment_id=experiment_id,
            member_id=member_id, table_id=table_id, grid_label=grid_label,
        ).items()
        if v is not None
    }  # fmt: skip
    df = catalog.search(**query).df if len(catalog.df) else catalog.df
    if len(df) == 0:
        full = catalog.df
        sources = sorted(set(full["source_id"].astype(str)))
        variables = sorted(set(full.loc[full["source_id"].astype(str) == source_id, "variable_id"].astype(str)))
        raise InputDataError(
            catalog_json,
            f"no files match {query}; source_ids in the catalog: {sources}"
            + (f"; variables of {source_id}: {variables}" if variables else ""),
        )
    for column, key in (
        ("experiment_id", "experiment_id"),
        ("member_id", "member_id"),
        ("table_id", "table_id"),
        ("grid_label", "grid_label"),
    ):
        values = sorted(set(df[column].fillna("").astype(str)))
        if len(values) > 1:
            raise InputDataError(
                catalog_json,
                f"{source_id} {variable_id}: several {column}s {values} match; choose one in the config ({key})",
            )
    versions = sorted(set(df["version"].fillna("").astype(str)))
    if len(versions) > 1:
        log.info(
            "%s %s: versions %s in the catalog, using the newest %s", source_id, variable_id, versions, versions[-1]
        )
        df = df[df["version"].fillna("").astype(str) == versions[-1]]
    if years is not None:
        lo, hi = int(years[0]) * 12, int(years[1]) * 12 + 11
        spans = [_months(t) for t in df["time_range"].fillna("").astype(str)]
        keep = [s is None or (s[1] >= lo and s[0] <= hi) for s in spans]
        df = df[keep]
        if len(df) == 0:
            raise InputDataError(
                catalog_json, f"{source_id} {variable_id}: no file covers any month of {years[0]}–{years[1]}"
            )
    paths = sorted(Path(p) for p in df["path"].astype(str))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputDataError(missing, f"listed in the catalog {catalog_json} but missing on disk; rebuild the catalog")
    return paths


def open_source(catalog_json: str | Path, query: dict, *, years: Sequence[int] | None = None, chunk_mb: float = 128.0):
    """Find one variable's files through the catalog and open them with :func:`bridging.io.readers.open_variable`."""
    from .readers import open_variable

    files = find_files(catalog_json, years=years, **query)
    return open_variable(files, query["variable_id"], years=years, chunk_mb=chunk_mb)
