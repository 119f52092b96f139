"""Training plumbing shared by the autoencoder and the forecast model.

Reproducibility: every epoch's randomness (sample draw, dropout, input noise) is seeded from (seed, epoch) alone,
and the resume checkpoint written after each epoch holds the model, optimizer and early-stopping state, so an
interrupted run continued from its last epoch ends bit-identical (on CPU) to an uninterrupted one.

Checkpoints are plain state dicts plus JSON-able metadata and are read with ``torch.load(weights_only=True)``:
loading never executes code from the file.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..atomic import atomic_output, write_text_atomic
from ..errors import InputDataError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: the modules a training stage runs (as the workflow's src() inputs of the model rules); their hash is part of a
#: resume checkpoint's identity
TRAINING_CODE = ("models", "diagnostics/indices.py", "stores.py", "observables.py", "grid.py", "timeaxis.py")


def training_code_hash() -> str:
    from ..provenance import code_hash

    return code_hash(TRAINING_CODE)


# --------------------------------------------------------------------------------------------- devices and seeds
def prepare_torch(compute, *, threads: int | None = None):
    """Resolve ``compute.device`` and switch on deterministic algorithms when configured; returns the device."""
    import torch

    from ..runtime import limit_threads, resolve_device

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
    import torch

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


def time_split(n: int, validation_fraction: float, *, min_train: int = 1, min_validation: int = 1, what: str = "record") -> TimeSplit:
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
    """Stop after ``patience`` epochs without a new best held-out score (lower is better)."""

    patience: int
    best: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's score; True when it is a new best."""
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


def save_checkpoint(path: str | Path, *, kind: str, state_dict: dict, metadata: dict, extra: dict | None = None) -> Path:
    """Write {kind, format, state_dict, metadata[, extra]} atomically (tensors + plain types only)."""
    import torch

    payload = {"kind": kind, "format": CHECKPOINT_FORMAT, "state_dict": state_dict, "metadata": jsonable(metadata)}
    if extra:
        payload.update(extra)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, *, kind: str, device="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file and what is wrong."""
    import torch

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
        raise InputDataError(path, f"checkpoint format {payload.get('format')} is not the supported {CHECKPOINT_FORMAT}; retrain")
    return payload


@dataclass
class ResumeState:
    """What an interrupted training run needs to continue: written after every epoch, removed on success."""

    path: Path
    fingerprint: str
    code: str = field(default_factory=training_code_hash)

    def load(self, device="cpu") -> dict | None:
        """The saved state if it belongs to this run (same settings, data and code), else None (start afresh)."""
        import torch

        from .. import __version__

        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location=device, weights_only=True)
        except Exception as err:
            log.warning("ignoring unreadable resume checkpoint %s (%s); starting afresh", self.path, err)
            return None
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or "fingerprint" not in state:
            log.warning("ignoring corrupt resume checkpoint %s (not a training state: %s); starting afresh", self.path, type(state).__name__)
            return None
        if state.get("code_hash") != self.code:
            log.info(
                "resume checkpoint %s was written by other code (version %s, code hash %s; now %s, %s); starting afresh",
                self.path, state.get("code_version"), state.get("code_hash"), __version__, self.code,
            )  # fmt: skip
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.info("resume checkpoint %s belongs to other settings or data; starting afresh", self.path)
            return None
        log.info("resuming from %s after epoch %d", self.path, state["epoch"])
        return state

    def save(self, state: dict) -> None:
        import torch

        from .. import __version__

        state = dict(state, fingerprint=self.fingerprint, code_hash=self.code, code_version=__version__)
        with atomic_output(self.path) as tmp:
            torch.save(state, tmp)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def resume_path_for(output: str | Path) -> Path:
    """The resume checkpoint of an output: a hidden sibling, so Snakemake never treats it as (partial) output."""
    output = Path(output)
    return output.parent / f".{output.stem}.resume.pt"


def fingerprint(settings: dict, arrays: Sequence[np.ndarray] = (), **extra) -> str:
    """A short hash of the settings and a cheap content summary of the training data."""
    import hashlib

    summary = [[list(a.shape), str(a.dtype), float(np.nansum(a, dtype=np.float64)), float(np.nansum(np.abs(a), dtype=np.float64))] for a in arrays]
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
    from tqdm import tqdm

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


def plot_panels(path: str | Path, panels: list[dict], *, title: str, dpi: int = 120) -> Path:
    """Line panels: each {"title", "xlabel", "ylabel", "series": {label: (x, y)}, "logy"?, "hline"?}; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    ncol = min(n, 3)
    nrow = int(math.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        for label, (x, y) in panel["series"].items():
            y = np.asarray([np.nan if v is None else v for v in y], dtype=float)
            style = panel.get("styles", {}).get(label, "-")
            ax.plot(np.asarray(x), y, style, label=label, lw=1.4, ms=4)
        if panel.get("logy"):
            ax.set_yscale("log")
        for value, label in panel.get("hlines", []):
            ax.axhline(value, color="0.5", ls=":", lw=1)
            ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), fontsize=7, color="0.4", va="bottom")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel(panel.get("xlabel", "epoch"))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)
