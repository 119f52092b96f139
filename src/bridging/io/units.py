"""Units of the files the readers open, through pint with the CF / UDUNITS definitions of ``cf_xarray.units``.

Any spelling UDUNITS knows is accepted (``degC``, ``degree_Celsius``, ``K``, ``degrees_C``, ``cm``, ``meters`` …)
and converted to the project's units (°C for temperatures, metres for depths) as a ``(scale, offset)`` pair, applied
block by block as the data are read. A unit that does not parse, or that is not a temperature / a length, is refused
with one line naming the file and the variable. The values are checked after conversion as well
(:mod:`bridging.io.plausibility`): a plausible unit on implausible values (centimetres labelled metres) is caught
there.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from ..errors import InputDataError

#: canonical names of the temperature fields (°C); every other field is a length (m)
TEMPERATURE = ("sst", "thetao")
#: spellings (lower-cased) that ocean files use for temperatures beyond the registry's: ORAS5 writes "C" (coulomb
#: to UDUNITS), others "degrees_C" or "deg K"
TEMPERATURE_ALIASES = {
    **{u: "degC" for u in ("c", "celsius", "deg c", "degree c", "degrees c", "degree_c", "degrees_c")},
    **{u: "K" for u in ("deg k", "degree k", "degrees k", "degree_k", "degrees_k")},
}


@functools.cache
def registry():
    """The pint registry with the CF / UDUNITS spellings (loaded on first use: pint takes ~0.3 s to build it)."""
    # cf_xarray redefines a few of pint's units (degrees_east …), which pint logs as warnings in every rule's log.
    pint_log = logging.getLogger("pint")
    level = pint_log.level
    pint_log.setLevel(logging.ERROR)
    try:
        from cf_xarray.units import units
    finally:
        pint_log.setLevel(level)
    return units


def _parse(units: str, temperature: bool):
    import pint

    ureg = registry()
    text = units.strip()
    if temperature and text.lower() in TEMPERATURE_ALIASES:
        text = TEMPERATURE_ALIASES[text.lower()]
    try:
        return ureg.Unit(text)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, AssertionError, SyntaxError):
        return None


def conversion(units, target: str, *, path: str | Path | None, variable: str) -> tuple[float, float]:
    """``(scale, offset)`` with ``value_in_target = value * scale + offset`` for values in ``units``.

    ``target``: ``"degC"`` or ``"m"``. Raises :class:`InputDataError` naming ``path`` and ``variable`` when
    ``units`` is missing, does not parse, or is not convertible to ``target`` (``kg`` for a temperature)."""
    what = "temperature" if target == "degC" else "length"
    expected = "a temperature such as degC, degree_Celsius or K" if target == "degC" else "a length such as m or cm"
    if units is None or not str(units).strip():
        raise InputDataError(path, f"{variable}: no units attribute (expected {expected})")
    unit = _parse(str(units), temperature=target == "degC")
    if unit is None:
        raise InputDataError(path, f"{variable}: unknown {what} units {str(units)!r} (expected {expected})")
    ureg = registry()
    try:
        zero = ureg.Quantity(0.0, unit).to(target).magnitude
        one = ureg.Quantity(1.0, unit).to(target).magnitude
    except Exception:  # pint's DimensionalityError, or an offset unit used as a factor
        dims = str(unit.dimensionality)
        raise InputDataError(
            path, f"{variable}: units {str(units)!r} ({dims}) are not a {what} (expected {expected})"
        ) from None
    return float(one - zero), float(zero)


def field_conversion(units, canonical: str, *, path, variable: str) -> tuple[float, float]:
    """The conversion of a field of canonical name ``canonical`` to the project's units (°C or m)."""
    return conversion(units, "degC" if canonical in TEMPERATURE else "m", path=path, variable=variable)
