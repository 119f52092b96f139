"""Run-level settings: the run name (results/<name>/) and compute placement."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import SafeName, Section


class RunSection(Section):
    name: SafeName = Field("demo", description="Run name; outputs go to <results_dir>/<name>/.")
    results_dir: str = Field("results", description="Folder that holds one sub-folder per run.")


class ComputeSection(Section):
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Torch device for training, encoding, assimilation and decoding; auto = CUDA when present."
    )
    torch_threads: int = Field(
        2,
        ge=1,
        description="Threads of torch's intra-op pool on CPU; also the threads the torch rules ask for (Snakemake caps them at --cores; profiles/slurm sets its own).",
    )
    deterministic: bool = Field(
        True,
        description="torch.use_deterministic_algorithms: bit-identical reruns for a seed and a thread count on CPU (another "
        "thread count sums in another order; some CUDA kernels are slower).",
    )


class OutputsSection(Section):
    zarr_format: Literal[2, 3] = Field(
        3,
        description="Zarr format of every store the workflow writes: 3 (default), or 2 for readers that know only zarr v2 (zarr-python < 3, older tools). Metadata is consolidated in both.",
    )
