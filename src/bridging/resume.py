"""Resume checkpoints: what an interrupted stage needs to continue, tied to the run and to the code that wrote it.

The filter (every ``da.checkpoint_months`` months) and both training loops (every epoch) save their state with
:meth:`ResumeCheckpoint.save`; a re-run continues from :meth:`ResumeCheckpoint.load` only when the saved state
belongs to it: the same ``fingerprint`` (inputs and every setting that changes numbers) and the same code (the
package version and :func:`bridging.provenance.code_hash` of the modules the stage runs; a run continued by edited
code would mix two programs' numbers in one output). Anything else (no file, an unreadable file, a readable file
that is not a state of this stage, other settings, other code) starts afresh with a log line saying why.

States hold tensors and plain types only and are read with ``torch.load(weights_only=True)``: loading never executes
code from the file. Checkpoints are hidden siblings of the output, never declared as outputs, so Snakemake's
``--rerun-incomplete`` does not delete them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import atomic_output
from .provenance import code_hash

log = logging.getLogger(__name__)


def resume_path_for(output: str | Path) -> Path:
    """The resume checkpoint of a file output: a hidden sibling ``.<stem>.resume.pt``."""
    output = Path(output)
    return output.parent / f".{output.stem}.resume.pt"


@dataclass
class ResumeCheckpoint:
    """One stage's resume checkpoint at ``path``.

    ``code`` is the modules the stage runs (as for :func:`bridging.provenance.code_hash`); ``required`` the entries
    (name, type) a saved state must have, so that a readable file of another kind counts as corrupt.
    """

    path: Path
    fingerprint: str
    code: Sequence[str]
    required: Mapping[str, type | tuple[type, ...]]
    what: str = "stage state"

    def __post_init__(self):
        self.path = Path(self.path)
        self.code_hash = code_hash(self.code)

    def load(self, map_location="cpu") -> dict | None:
        """The saved state if it belongs to this run (same fingerprint, same code), else None (start afresh)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location=map_location, weights_only=True)
        except Exception as err:  # a truncated or foreign file: start afresh rather than fail
            log.warning("%s: unreadable resume checkpoint (%s); starting afresh", self.path, err)
            return None
        if not self._is_state(state):
            log.warning(
                "%s: corrupt resume checkpoint (not a %s: %s); starting afresh",
                self.path,
                self.what,
                type(state).__name__,
            )
            return None
        if state.get("code_hash") != self.code_hash:
            log.info(
                "%s: resume checkpoint was written by other code (version %s, code hash %s; now %s, %s); "
                "starting afresh", self.path, state.get("code_version"), state.get("code_hash"), __version__,
                self.code_hash,
            )  # fmt: skip
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.info("%s: resume checkpoint belongs to other inputs or settings; starting afresh", self.path)
            return None
        return state

    def save(self, state: Mapping[str, Any]) -> None:
        """Write the state with this run's fingerprint and code hash (atomically: the old or the new checkpoint)."""
        record = dict(state, fingerprint=self.fingerprint, code_hash=self.code_hash, code_version=__version__)
        with atomic_output(self.path) as tmp:
            torch.save(record, tmp)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _is_state(self, state) -> bool:
        required = {"fingerprint": str, **self.required}
        return isinstance(state, dict) and all(
            key in state and isinstance(state[key], kind) for key, kind in required.items()
        )
