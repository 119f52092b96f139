"""Units through pint with the CF / UDUNITS spellings: any temperature or length converts, anything else is refused
in one line naming the file and the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridging.errors import InputDataError
from bridging.io.units import conversion, field_conversion


@pytest.mark.parametrize(
    "units, expected",
    [
        ("degC", (1.0, 0.0)),
        ("degree_Celsius", (1.0, 0.0)),
        ("degrees_Celsius", (1.0, 0.0)),
        ("Celsius", (1.0, 0.0)),
        ("°C", (1.0, 0.0)),
        ("C", (1.0, 0.0)),  # ORAS5's spelling (coulomb to UDUNITS)
        ("degrees C", (1.0, 0.0)),
        ("degrees_C", (1.0, 0.0)),
        ("degrees_K", (1.0, -273.15)),
        ("K", (1.0, -273.15)),
        ("kelvin", (1.0, -273.15)),
        ("degF", (5.0 / 9.0, -32.0 * 5.0 / 9.0)),
    ],
)
def test_temperatures_convert_to_degc(units, expected):
    scale, offset = conversion(units, "degC", path="f.nc", variable="tos")
    assert scale == pytest.approx(expected[0]) and offset == pytest.approx(expected[1])


@pytest.mark.parametrize(
    "units, scale", [("m", 1.0), ("meters", 1.0), ("metre", 1.0), ("cm", 0.01), ("centimeters", 0.01), ("km", 1e3)]
)
def test_lengths_convert_to_metres(units, scale):
    assert conversion(units, "m", path="f.nc", variable="lev") == pytest.approx((scale, 0.0))


@pytest.mark.parametrize(
    "units, canonical, message",
    [
        ("kg", "sst", r"units 'kg' \(\[mass\]\) are not a temperature"),
        ("m", "thetao", r"units 'm' \(\[length\]\) are not a temperature"),
        ("K", "thermocline_depth", r"units 'K' \(\[temperature\]\) are not a length"),
        ("zorks", "sst", "unknown temperature units 'zorks'"),
        ("no_such_unit", "thermocline_depth", "unknown length units 'no_such_unit'"),
        ("", "sst", "no units attribute"),
    ],
)
def test_other_units_are_refused_in_one_line_naming_file_and_variable(units, canonical, message):
    with pytest.raises(InputDataError, match=message) as err:
        field_conversion(units, canonical, path="/data/x_file.nc", variable="myvar")
    text = str(err.value)
    assert "/data/x_file.nc" in text and "myvar" in text and "\n" not in text


def test_loading_the_registry_logs_nothing():
    """cf_xarray redefines some of pint's units; pint's warnings about it stay out of the rules' logs."""
    code = (
        "import logging; logging.basicConfig(level=logging.INFO); from bridging.io.units import conversion; "
        "print(conversion('K', 'degC', path=None, variable='x'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "(1.0, -273.15)" and proc.stderr == "", proc.stderr
