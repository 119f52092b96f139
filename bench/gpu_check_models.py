"""GPU check of the latent models: one training epoch of each model and encode/decode throughput on CUDA.

    .venv/bin/python bench/gpu_check_models.py [--work DIR]

Exits 0 with a message on a machine without CUDA. With CUDA it writes demo-sized synthetic sources (see
bench_models.py), trains the default autoencoder and the default LSTM forecast model for one epoch each with
``compute.device: cuda`` (deterministic algorithms on, as in the workflow), checks that the saved checkpoints load
on the CPU and give the same encoding there, and prints wall times beside the same work on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_models' synthetic sources


def _train_one_epoch(paths: dict, out: Path, device: str) -> dict:
    from bridging.models.autoencoder import train_autoencoder
    from bridging.models.forecast import train_forecast
    from bridging.models.latent import encode_sources
    from bridging.settings import Config

    cfg = Config()
    cfg.compute.device = device
    cfg.autoencoder.epochs = 1
    cfg.forecast.epochs = 1
    cfg.forecast.gate.free_run_years = 10
    grid = cfg.grid.model_dump()
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    start = time.perf_counter()
    train_autoencoder(
        paths["operational"],
        paths["reanalysis"],
        paths["pseudo_obs"],
        out / "autoencoder.pt",
        out / "ae.json",
        out / "ae.png",
        autoencoder=cfg.autoencoder,
        curriculum=cfg.curriculum,
        compute=cfg.compute,
        grid=grid,
    )
    times["autoencoder epoch (incl. evaluation)"] = time.perf_counter() - start
    start = time.perf_counter()
    encode_sources(
        out / "autoencoder.pt",
        paths["operational"],
        paths["reanalysis"],
        paths["pseudo_obs"],
        out / "op.zarr",
        out / "rean.zarr",
        autoencoder=cfg.autoencoder,
        compute=cfg.compute,
        grid=grid,
    )
    times["encode both records"] = time.perf_counter() - start
    start = time.perf_counter()
    train_forecast(
        out / "op.zarr",
        out / "rean.zarr",
        out / "autoencoder.pt",
        paths["operational"],
        paths["reanalysis"],
        out / "forecast.pt",
        out / "fc.json",
        out / "fc.png",
        out / "gate.png",
        forecast=cfg.forecast,
        curriculum=cfg.curriculum,
        compute=cfg.compute,
        grid=grid,
    )
    times["forecast epoch + gates (10-year free runs)"] = time.perf_counter() - start
    return times


def _throughput(checkpoint: Path, paths: dict, device: str, batch: int = 256, repeats: int = 8) -> float:
    import torch

    from bridging.grid import TargetGrid
    from bridging.models.autoencoder import load_autoencoder, load_field_record
    from bridging.settings import Config

    ae = load_autoencoder(checkpoint, device)
    rec = load_field_record(
        paths["operational"], grid=TargetGrid(**Config().grid.model_dump()), layout=ae.layout, field_std=ae.field_std
    )
    fields = torch.as_tensor(rec.standardised[:batch], device=device)
    with torch.no_grad():
        ae.decode(ae.encode(fields))
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            ae.decode(ae.encode(fields))
        if device == "cuda":
            torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="folder for data and outputs (default: a temporary folder)")
    args = parser.parse_args()
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print(
            f"no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}): nothing to check on this machine"
        )
        return 0
    from bench_models import write_synthetic_sources

    from bridging.models.autoencoder import encode_array, load_autoencoder, load_field_record
    from bridging.runtime import available_cpus, limit_threads

    limit_threads(available_cpus())
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_models_"))
    paths = write_synthetic_sources(work / "synthetic")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    rows = []
    gpu = _train_one_epoch(paths, work / "cuda", "cuda")
    cpu = _train_one_epoch(paths, work / "cpu", "cpu")
    for key in gpu:
        rows.append((key, f"{gpu[key]:.1f} s", f"{cpu[key]:.1f} s"))
    rows.append(
        (
            "encode+decode, batch 256 (fields/s)",
            f"{_throughput(work / 'cuda' / 'autoencoder.pt', paths, 'cuda'):,.0f}",
            f"{_throughput(work / 'cpu' / 'autoencoder.pt', paths, 'cpu'):,.0f}",
        )
    )
    # A checkpoint trained on the GPU must load and encode on a CPU-only machine (the filter may run there).
    ae_cpu = load_autoencoder(work / "cuda" / "autoencoder.pt", "cpu")
    ae_gpu = load_autoencoder(work / "cuda" / "autoencoder.pt", "cuda")
    rec = load_field_record(paths["operational"], grid=ae_cpu.grid, layout=ae_cpu.layout, field_std=ae_cpu.field_std)
    z_cpu = encode_array(ae_cpu, rec.standardised[:64], device="cpu")
    z_gpu = encode_array(ae_gpu, rec.standardised[:64], device="cuda")
    diff = float(np.max(np.abs(z_cpu - z_gpu)))
    rows.append(("max |z_cpu − z_cuda| of a CUDA-trained checkpoint", f"{diff:.2e}", "(should be ~1e-5 or less)"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print(" | ".join(h.ljust(w) for h, w in zip(("check", "cuda", "cpu"), width)))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, width)))
    return 0 if diff < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
