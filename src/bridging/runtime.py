"""Runtime plumbing shared by rule scripts and the CLI: logging into the rule's log, thread limits, devices, the
zarr format of the rule's stores and the sentinels that stand for them (:mod:`bridging.layout`)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import sys
import traceback

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        os.makedirs(os.path.dirname(os.path.abspath(logfile)), exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def limit_threads(threads: int | None) -> int:
    """Cap torch/BLAS thread pools at the rule's threads (never above the CPUs we have: oversubscription thrashes)."""
    n = max(1, min(int(threads or 1), available_cpus()))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass
    return n


def resolve_device(device: str = "auto"):
    """'auto' → CUDA when present, else CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("compute.device is 'cuda' but no CUDA device is available")
    return torch.device(device)


class StorePaths(list):
    """A rule's inputs or outputs (Snakemake's named list) with every store sentinel replaced by the path of its
    store (:func:`bridging.layout.store_of`): what a script passes to the library. Positions, names (``.name``)
    and ``items()`` as in the named list."""

    def __init__(self, named):
        from .layout import store_of

        def resolve(value):
            return store_of(value) if isinstance(value, str) else [store_of(v) for v in value]

        super().__init__(store_of(p) for p in named)
        self._names = {k: resolve(v) for k, v in named.items()}

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_names"][name]
        except KeyError:
            raise AttributeError(name) from None

    def items(self):
        return self._names.items()


def params_hash(params) -> str:
    """The config hash of a rule's params (the config subtrees the job depends on), recorded in its sentinels."""
    from .settings import config_hash

    return config_hash({str(k): v for k, v in params.items()})


def write_sentinels(snakemake) -> list[str]:
    """After a job: write the sentinel of each store among its outputs (which must exist by then), atomically."""
    from . import __version__
    from .atomic import write_text_atomic
    from .layout import is_sentinel, store_of

    written = []
    for path in snakemake.output:
        if not is_sentinel(path):
            continue
        store = store_of(path)
        if not os.path.isdir(store):
            raise RuntimeError(f"{store}: the rule {snakemake.rule} finished without writing this store")
        record = {
            "store": store,
            "rule": snakemake.rule,
            "wildcards": dict(snakemake.wildcards.items()),
            "config_hash": params_hash(snakemake.params),
            "package_version": __version__,
            "completed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_text_atomic(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", path)
        written.append(str(path))
    return written


@contextlib.contextmanager
def script_context(snakemake):
    """Used by every rule script: log to the rule's log file, limit threads, set the zarr format of its stores
    (params ``zarr_format``), log any traceback before failing, and write the sentinels of its stores on success."""
    logfile = snakemake.log[0] if len(snakemake.log) else None
    configure_logging(logfile)
    log = logging.getLogger(f"bridging.rule.{snakemake.rule}")
    limit_threads(snakemake.threads)
    log.info("rule %s, wildcards %s, threads %s", snakemake.rule, dict(snakemake.wildcards), snakemake.threads)
    if os.environ.get("SLURM_JOB_ID"):
        log.info(
            "SLURM job %s on %s (cpus %s, gpus %s)", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?"),
            os.environ.get("SLURM_CPUS_PER_TASK", "?"), os.environ.get("SLURM_GPUS", os.environ.get("SLURM_GPUS_ON_NODE", "0")),
        )  # fmt: skip
    zarr_format = dict(snakemake.params.items()).get("zarr_format")
    if zarr_format is not None:
        from .atomic import set_zarr_format

        set_zarr_format(zarr_format)
    try:
        yield log
        write_sentinels(snakemake)
    except BaseException:
        log.error("rule %s failed:\n%s", snakemake.rule, traceback.format_exc())
        raise
