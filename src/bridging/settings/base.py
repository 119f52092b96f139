"""Base class for the strict, typed configuration sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys and wrong types are errors (as in ai2cm/ace's strict dacite configs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
