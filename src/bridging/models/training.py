"""Training plumbing shared by the autoencoder and the forecast model: devices and seeds, time splits, early
stopping, model checkpoints, the epoch loop with its resume checkpoint, progress and metrics files.

Reproducibility: every epoch's randomness (sample draw, dropout, input noise) is seeded from (seed, epoch) alone,
and the resume checkpoint written after each epoch (:class:`EpochLoop`) holds the model, optimizer and
early-stopping state, so an interrupted run continued from its last epoch ends bit-identical (on CPU) to an
uninterrupted one.

Checkpoints are plain state dicts plus JSON-able metadata and are read with ``torch.load(weights_only=True)``:
loading never executes code from the file.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_output, write_text_atomic
from ..errors import InputDataError
from ..resume import ResumeCheckpoint, resume_path_for
from ..runtime import limit_threads, resolve_device

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: the modules a training stage runs (as the workflow's src() inputs of the model rules); their hash is part of a
#: resume checkpoint's identity
TRAINING_CODE = (
    "models",
    "diagnostics/indices.py",
    "diagnostics/statistics.py",
    "stores.py",
    "observables.py",
    "grid.py",
    "timeaxis.py",
    "resume.py",
)


# --------------------------------------------------------------------------------------------- devices and seeds
def prepare_torch(compute, *, threads: int | None = None):
    """Resolve ``compute.device`` and switch on deterministic algorithms when configured; returns the device."""
    c = compute.model_dump() if hasattr(compute, "model_dump") else dict(compute)
    if threads is not None:
        limit_threads(threads)
    device = resolve_device(c.get("device", "auto"))
    if c.get("deterministic", True):
        # cuBLAS needs a fixed workspace to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed for one epoch (and one random stream), independent of what earlier epochs drew."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(1, np.uint64)[0] >> 1)


def seed_torch(seed: int) -> None:
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------- time splits
@dataclass(frozen=True)
class TimeSplit:
    """Training months [0, n_train) and the held-out months [n_train, n) at the end of a record."""

    n: int
    n_train: int

    @property
    def train(self) -> slice:
        return slice(0, self.n_train)

    @property
    def validation(self) -> slice:
        return slice(self.n_train, self.n)

    @property
    def n_validation(self) -> int:
        return self.n - self.n_train


def time_split(
    n: int, validation_fraction: float, *, min_train: int = 1, min_validation: int = 1, what: str = "record"
) -> TimeSplit:
    """Hold out the last fraction of a record: the held-out months lie after every training month, as they would
    for a forecast, so autocorrelation cannot leak training information into the validation scores."""
    n_val = int(round(n * validation_fraction))
    n_train = n - n_val
    if n_val < min_validation or n_train < min_train:
        raise ValueError(
            f"{what}: {n} months cannot be split into >= {min_train} training and >= {min_validation} held-out months "
            f"with validation_fraction {validation_fraction}"
        )
    return TimeSplit(n, n_train)


# --------------------------------------------------------------------------------------------- early stopping
@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a new best held-out score (lower is better).

    Epochs 0 … ``start_epoch`` − 1 neither compete for the best nor count toward patience (a schedule still ramping);
    epoch −1, a baseline scored before training, always competes.
    """

    patience: int
    start_epoch: int = 0
    best: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's score; True when it is a new best."""
        if 0 <= epoch < self.start_epoch:
            return False
        if math.isfinite(value) and value < self.best:
            self.best, self.best_epoch, self.epochs_without_improvement = float(value), int(epoch), 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


# --------------------------------------------------------------------------------------------- checkpoints
def jsonable(obj: Any) -> Any:
    """Plain Python types (numpy scalars/arrays → numbers/lists; non-finite floats → None) for JSON and checkpoints."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in metadata")


def save_checkpoint(
    path: str | Path, *, kind: str, state_dict: dict, metadata: dict, extra: dict | None = None
) -> Path:
    """Write {kind, format, state_dict, metadata[, extra]} atomically (tensors + plain types only)."""
    payload = {"kind": kind, "format": CHECKPOINT_FORMAT, "state_dict": state_dict, "metadata": jsonable(metadata)}
    if extra:
        payload.update(extra)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, *, kind: str, device="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, f"{kind} checkpoint does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise InputDataError(path, f"cannot read as a {kind} checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise InputDataError(path, f"not a {kind} checkpoint (found {found!r})")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise InputDataError(
            path, f"checkpoint format {payload.get('format')} is not the supported {CHECKPOINT_FORMAT}; retrain"
        )
    return payload


# --------------------------------------------------------------------------------------------- the epoch loop
#: what a readable resume checkpoint must hold to count as a training state (anything else is corrupt)
TRAINING_STATE = {"epoch": int}


def training_checkpoint(output: str | Path, fingerprint: str) -> ResumeCheckpoint:
    """The resume checkpoint of a training stage whose output (the model file) is ``output``."""
    return ResumeCheckpoint(resume_path_for(output), fingerprint, TRAINING_CODE, TRAINING_STATE, what="training state")


@dataclass
class EpochLoop:
    """What a training loop carries from epoch to epoch (model, optimizer, early stopping, the best weights, the
    history), saved to the resume checkpoint after every epoch and restored from it.

    ``for epoch in loop.epochs(n): ...; loop.end_epoch(epoch, record, score)``, then ``loop.finish()`` puts the best
    epoch's weights back. ``extra`` holds further values saved with each epoch (and restored by :meth:`resume`).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    stopper: EarlyStopping
    checkpoint: ResumeCheckpoint
    extra: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    start_epoch: int = 0

    def __post_init__(self):
        self.best_state = copy.deepcopy(self.model.state_dict())

    def resume(self) -> bool:
        """Continue from the checkpoint when it belongs to this run; False when starting afresh."""
        saved = self.checkpoint.load()
        if saved is None:
            return False
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.best_state = saved["best_model"]
        self.stopper.load_state_dict(saved["early_stopping"])
        self.history = list(saved["history"])
        self.start_epoch = int(saved["epoch"]) + 1
        self.extra = {key: saved[key] for key in self.extra}
        log.info("resuming from %s after epoch %d", self.checkpoint.path, saved["epoch"])
        return True

    def epochs(self, n_epochs: int) -> Iterator[int]:
        """The epochs still to train, until early stopping says stop."""
        for epoch in range(self.start_epoch, n_epochs):
            if self.stopper.should_stop:
                return
            yield epoch

    def end_epoch(self, epoch: int, record: dict, score: float) -> None:
        """Record the epoch's held-out score (keeping the weights of a new best) and save the resume checkpoint."""
        if self.stopper.update(score, epoch):
            self.best_state = copy.deepcopy(self.model.state_dict())
        self.history.append(record)
        self.checkpoint.save({
            "epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "best_model": self.best_state, "early_stopping": self.stopper.state_dict(), "history": self.history,
            **self.extra,
        })  # fmt: skip

    def finish(self) -> torch.nn.Module:
        """The model with the best epoch's weights, in eval mode."""
        self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.model


def fingerprint(settings: dict, arrays: Sequence[np.ndarray] = (), **extra) -> str:
    """A short hash of the settings and a cheap content summary of the training data."""
    summary = [
        [
            list(a.shape),
            str(a.dtype),
            float(np.nansum(a, dtype=np.float64)),
            float(np.nansum(np.abs(a), dtype=np.float64)),
        ]
        for a in arrays
    ]
    blob = json.dumps({"settings": jsonable(settings), "data": summary, **jsonable(extra)}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


# --------------------------------------------------------------------------------------------- reporting
def write_json(path: str | Path, record: dict) -> Path:
    return write_text_atomic(json.dumps(jsonable(record), indent=2, sort_keys=False) + "\n", path)


class _LogStream(io.StringIO):
    """A file-like object that forwards tqdm's lines to a logger (the rule's log file), not to a terminal."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger

    def write(self, text: str) -> int:
        text = text.strip("\r\n ")
        if text:
            self.logger.info(text)
        return len(text)

    def flush(self) -> None:
        pass


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", logger: logging.Logger | None = None):
    """A tqdm progress bar written to the log every 30 s (and at the end): readable in a log file, no flood."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        file=_LogStream(logger or log),
        mininterval=30.0,
        ascii=True,
        dynamic_ncols=False,
        ncols=100,
    )


@dataclass
class Timer:
    start: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
