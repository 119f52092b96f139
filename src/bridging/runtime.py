"""Runtime plumbing shared by rule scripts and the CLI: logging into the rule's log, thread limits, devices."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def script_context(snakemake):
    """Used by every rule script: log to the rule's log file, limit threads, and log any traceback before failing."""
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
    try:
        yield log
    except BaseException:
        log.error("rule %s failed:\n%s", snakemake.rule, traceback.format_exc())
        raise
