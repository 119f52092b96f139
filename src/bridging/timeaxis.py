"""One monthly time axis for every source.

Calendars differ (CMIP6 ``noleap``/``365_day``/``360_day``, ORAS5 gregorian, idealized models' 365-day years), but
monthly means are identified by (year, month) alone, so every store uses the same representation: a cftime
``noleap`` date on the 15th of each month. Arithmetic on months uses an integer month counter.
"""

from __future__ import annotations

import cftime
import numpy as np
import xarray as xr

TIME_UNITS = "days since 0001-01-01 00:00:00"
TIME_CALENDAR = "noleap"


def month_counter(year, month) -> np.ndarray:
    """Integer months since year 0, month 1: consecutive months differ by exactly 1."""
    return np.asarray(year, dtype=np.int64) * 12 + np.asarray(month, dtype=np.int64) - 1


def year_month_from_counter(counter) -> tuple[np.ndarray, np.ndarray]:
    counter = np.asarray(counter, dtype=np.int64)
    return counter // 12, counter % 12 + 1


def monthly_time(first_year: int, first_month: int, n_months: int) -> xr.DataArray:
    """The store time coordinate for n consecutive months starting at (first_year, first_month)."""
    years, months = year_month_from_counter(month_counter(first_year, first_month) + np.arange(n_months))
    return time_from_year_month(years, months)


def time_from_year_month(years, months) -> xr.DataArray:
    dates = [cftime.DatetimeNoLeap(int(y), int(m), 15) for y, m in zip(np.atleast_1d(years), np.atleast_1d(months))]
    return xr.DataArray(
        np.array(dates, dtype=object),
        dims="time",
        attrs={"standard_name": "time", "long_name": "month (mid-month stamp)"},
    )


def year_month(time: xr.DataArray | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(year, month) of any time coordinate: cftime objects of any calendar, numpy datetime64, or pandas timestamps."""
    values = np.asarray(time.values if isinstance(time, xr.DataArray) else time)
    if values.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if np.issubdtype(values.dtype, np.datetime64):
        ym = values.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
        return ym // 12 + 1970, ym % 12 + 1
    years = np.array([v.year for v in values.ravel()], dtype=np.int64)
    months = np.array([v.month for v in values.ravel()], dtype=np.int64)
    return years, months


def time_encoding() -> dict:
    return {"units": TIME_UNITS, "calendar": TIME_CALENDAR, "dtype": "float64"}
