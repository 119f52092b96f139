"""Runs of the idealized models: many members at once, spin-up dropped, long runs streamed to zarr.

Store form (docs/architecture.md, "Idealized runs"): dims ``(member, time, node)`` for CF23's equatorial fields,
``(member, time)`` for scalars and for the indices ``nino3``, ``nino34``, ``nino4`` of every model; ``time`` is
the project's monthly axis in model years starting at year 1 (the spin-up years precede it and are not written).
Attributes: ``model``, ``seed``, ``members``, ``years``, ``spinup_years``, ``parameters`` (JSON),
``enso_statistics`` (JSON, see :func:`bridging.idealized.stats.run_statistics`) and ``provenance``.

Memory stays bounded whatever the run length and ensemble size: the model advances ``chunk_years`` at a time and
at most ``member_batch`` members at a time, and each (member batch, chunk) block is written into its own zarr chunk
(region writes into a pre-declared store), so a 1000-member × 1000-year run never sits in memory.
"""

from __future__ import annotations

import json
import logging
import time as _time
from collections.abc import Mapping
from pathlib import Path

import dask.array as dsa
import numba
import numpy as np
import xarray as xr
import zarr

from .. import cf
from ..atomic import atomic_output, consolidate, variable_length_strings, zarr_write_options
from ..errors import ConfigError
from ..settings import IdealizedSection, config_hash
from ..stores import provenance
from ..timeaxis import monthly_time
from .cf23 import CF23Model
from .cfy22 import CFY22Model
from .stats import run_statistics, summary_line

log = logging.getLogger(__name__)

DEFAULT_MEMBER_BATCH = 64


def idealized_section(idealized: IdealizedSection | Mapping | None) -> IdealizedSection:
    if idealized is None:
        return IdealizedSection()
    if isinstance(idealized, IdealizedSection):
        return idealized
    return IdealizedSection.model_validate(dict(idealized))


def make_model(idealized: IdealizedSection | Mapping | None = None, model: str | None = None) -> CF23Model | CFY22Model:
    """The configured idealized model (``model`` overrides ``idealized.model``)."""
    section = idealized_section(idealized)
    name = model or section.model
    if name == "cf23":
        return CF23Model(section.cf23)
    if name == "cfy22":
        return CFY22Model(section.cfy22)
    raise ConfigError(f"idealized.model: unknown idealized model {name!r} (cf23 or cfy22)")


def _set_threads(threads: int | None) -> None:
    if threads:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def _blocks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _advance_discarding(model, state, years: int, chunk_years: int, member_batch: int) -> None:
    """Spin-up: advance all members, in bounded blocks, without keeping the output."""
    for years_block in _blocks(years, chunk_years):
        n_years = years_block.stop - years_block.start
        for members in _blocks(state.n_members, member_batch):
            sub = state.subset(members)
            model.advance_nondimensional(sub, n_years)
        state.step += n_years * model.steps_per_year


def _dataset(model, fields: Mapping[str, np.ndarray], time: xr.DataArray, member_index: np.ndarray) -> xr.Dataset:
    data_vars = {}
    for name, (extra_dims, attrs) in model.variables.items():
        data_vars[name] = xr.DataArray(fields[name], dims=("member", "time", *extra_dims), attrs=attrs)
    coords = {"member": member_index, "time": time, **model.coords()}
    return xr.Dataset(data_vars, coords=coords)


def simulate(
    idealized: IdealizedSection | Mapping | None = None,
    *,
    years: int,
    seed: int,
    members: int = 1,
    model: str | None = None,
    spinup_years: int | None = None,
    threads: int | None = None,
    first_member: int = 0,
) -> xr.Dataset:
    """An in-memory run (for short runs: pseudo-observations, tests); same form as the zarr runs.

    Members ``first_member … first_member + members − 1`` of the seed's streams (an independent run of the same
    seed: ``first_member`` past the members used elsewhere).
    """
    section = idealized_section(idealized)
    mdl = make_model(section, model)
    spinup = section.spinup_years if spinup_years is None else int(spinup_years)
    _set_threads(threads)
    state = mdl.initial_state(members, seed, first_member=first_member)
    _advance_discarding(mdl, state, spinup, section.chunk_years, DEFAULT_MEMBER_BATCH)
    fields = mdl.advance_years(state, years)
    ds = _dataset(mdl, fields, monthly_time(1, 1, 12 * years), first_member + np.arange(members))
    ds.attrs.update(_run_attrs(mdl, seed, members, years, spinup))
    return ds


def _run_attrs(mdl, seed: int, members: int, years: int, spinup: int) -> dict:
    return {
        "model": mdl.name,
        "seed": int(seed),
        "members": int(members),
        "years": int(years),
        "spinup_years": int(spinup),
        "parameters": json.dumps(mdl.params.model_dump(mode="json"), sort_keys=True),
        "description": f"{mdl.name.upper()} idealized ENSO run: monthly means, model years 1–{years} after {spinup} spin-up years; "
        "member k's trajectory depends only on (seed, k).",
        "title": f"{mdl.name.upper()} idealized ENSO run, {members} member(s) × {years} model years",
        "time_coverage_start": "0001-01",
        "time_coverage_end": f"{int(years):04d}-12",
    }


def run_to_zarr(
    out: str | Path,
    idealized: IdealizedSection | Mapping | None = None,
    *,
    years: int,
    seed: int,
    members: int = 1,
    model: str | None = None,
    spinup_years: int | None = None,
    chunk_years: int | None = None,
    member_batch: int = DEFAULT_MEMBER_BATCH,
    threads: int | None = None,
    extra_attrs: Mapping | None = None,
) -> Path:
    """Run ``members`` members for ``years`` (after the spin-up) and stream the monthly output to a zarr store.

    Written atomically: an interrupted run leaves nothing at ``out``.
    """
    section = idealized_section(idealized)
    mdl = make_model(section, model)
    spinup = section.spinup_years if spinup_years is None else int(spinup_years)
    chunk = section.chunk_years if chunk_years is None else int(chunk_years)
    if years < 1 or members < 1 or chunk < 1 or member_batch < 1:
        raise ConfigError(
            f"idealized run needs years, members, chunk_years and member_batch ≥ 1 (got {years}, {members}, {chunk}, {member_batch})"
        )
    _set_threads(threads)
    batch = min(member_batch, members)
    n_months = 12 * years
    time = monthly_time(1, 1, n_months)
    start = _time.perf_counter()
    state = mdl.initial_state(members, seed)
    _advance_discarding(mdl, state, spinup, chunk, batch)
    log.info(
        "%s: spin-up of %d years for %d members done in %.1f s", mdl.name, spinup, members, _time.perf_counter() - start
    )

    # Declare the whole store (metadata + coordinates), then fill it block by block with aligned region writes.
    template = {}
    for name, (extra_dims, attrs) in mdl.variables.items():
        extra_shape = tuple(len(mdl.coords()[d]) for d in extra_dims)
        shape = (members, n_months, *extra_shape)
        chunks = (batch, min(12 * chunk, n_months), *extra_shape)
        template[name] = xr.DataArray(
            dsa.zeros(shape, chunks=chunks, dtype=np.float32),
            dims=("member", "time", *extra_dims),
            attrs={**attrs, "cell_methods": "time: mean"},
        )
    ds_template = xr.Dataset(template, coords={"member": np.arange(members), "time": time, **mdl.coords()})
    ds_template.attrs.update(_run_attrs(mdl, seed, members, years, spinup))
    settings_hash = config_hash(
        {
            "idealized": section.model_dump(mode="json"),
            "model": mdl.name,
            "years": int(years),
            "seed": int(seed),
            "members": int(members),
            "spinup_years": int(spinup),
        }
    )
    ds_template.attrs["provenance"] = provenance(config_hash=settings_hash, seed=int(seed), model=mdl.name)
    ds_template.attrs["config_hash"] = settings_hash
    if extra_attrs:
        ds_template.attrs.update(extra_attrs)
    ds_template = cf.complete(ds_template)
    encoding = cf.time_encodings(ds_template)
    for name in template:
        encoding[name] = {"chunks": template[name].data.chunksize}

    with atomic_output(out) as tmp:
        ds_template = variable_length_strings(ds_template)
        ds_template.to_zarr(tmp, mode="w", compute=False, encoding=encoding, **zarr_write_options())
        for years_block in _blocks(years, chunk):
            n_years = years_block.stop - years_block.start
            months = slice(12 * years_block.start, 12 * years_block.stop)
            for members_block in _blocks(members, batch):
                sub = state.subset(members_block)
                fields = mdl.advance_years(sub, n_years)
                block = xr.Dataset(
                    {name: (("member", "time", *mdl.variables[name][0]), fields[name]) for name in mdl.variables}
                )
                block.to_zarr(tmp, region={"member": members_block, "time": months}, **zarr_write_options())
            state.step += n_years * mdl.steps_per_year
            log.info(
                "%s: years %d–%d written (%.1f s)",
                mdl.name,
                years_block.start + 1,
                years_block.stop,
                _time.perf_counter() - start,
            )
        stats = run_statistics(
            xr.open_zarr(tmp, consolidated=False, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        )
        zarr.open_group(tmp, mode="r+").attrs["enso_statistics"] = json.dumps(stats, sort_keys=True)
        consolidate(tmp)
    log.info(
        "%s: %d members × %d years in %.1f s; %s",
        mdl.name,
        members,
        years,
        _time.perf_counter() - start,
        summary_line(stats),
    )
    return Path(out)


def run_reference(out: str | Path, *, idealized: IdealizedSection | Mapping, threads: int | None = None) -> Path:
    """The rule ``idealized_reference``: the configured model's independent long run (reference statistics)."""
    section = idealized_section(idealized)
    return run_to_zarr(
        out,
        section,
        years=section.reference_years,
        seed=section.seed_reference,
        members=1,
        threads=threads,
        extra_attrs={"role": "reference long run (seed_reference)"},
    )


def open_run(path: str | Path) -> xr.Dataset:
    """Open an idealized run store (cftime time axis)."""
    from ..stores import open_zarr_checked

    return open_zarr_checked(path, "idealized run store", ("nino3", "nino34", "nino4"))
