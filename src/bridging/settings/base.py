"""Base class for the strict, typed configuration sections, and the name type used for runs and sources."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A config section: unknown keys, wrong types and non-finite numbers (nan, inf) are errors (as in ai2cm/ace's
    strict dacite configs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


def _path_safe(name: str) -> str:
    # The pattern already excludes path separators; a leading dot would make '.', '..' (outside the results folder)
    # or a hidden folder that the catalog scan and the atomic writers' temporaries treat as not there.
    if name.startswith("."):
        raise ValueError(f"{name!r} starts with '.': names become folder and file names ('.' and '..' are not allowed)")
    return name


#: A run or source name: becomes a folder or file name and a Snakemake wildcard value.
SafeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$"), AfterValidator(_path_safe)]
