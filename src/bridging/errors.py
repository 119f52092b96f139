"""Error types that name the offending file or config key and the problem, for users."""

from __future__ import annotations

from pathlib import Path


class BridgingError(Exception):
    """Base class of all errors raised deliberately by ENSO Bridge."""


class InputDataError(BridgingError):
    """A data file (or set of files) cannot be used: says which file and what is wrong with it."""

    def __init__(self, path: str | Path | list | tuple | None, problem: str):
        if isinstance(path, (list, tuple)):
            shown = ", ".join(str(p) for p in path[:5]) + (" …" if len(path) > 5 else "")
        else:
            shown = str(path) if path is not None else "<no file>"
        self.path = path
        self.problem = problem
        super().__init__(f"{shown}: {problem}")

    def __reduce__(self):
        # picklable with its two arguments, so errors raised in dask.distributed workers reach the user intact
        return (type(self), (self.path, self.problem))


class ConfigError(BridgingError):
    """The configuration is invalid: names the key and the problem."""


class GateFailedError(BridgingError):
    """A trained model failed its quality gate and must not be used downstream."""
