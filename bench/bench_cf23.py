"""Benchmark of the CF23 step loop: the compiled (numba) kernel against a plain per-step NumPy loop, in one run.

    nice -n 10 .venv/bin/python bench/bench_cf23.py [--quick]

Rows:
* one member, 1000 model years: compiled kernel (timed in full) vs the NumPy reference loop
  (``bridging.idealized.cf23.reference_integrate``; timed on 50 years and scaled ×20, stated in the table);
* many members at once: member-years per second, compiled (1 and 2 threads) vs the NumPy loop vectorised over
  the same members;
* peak resident memory of a streamed 1000-member × 100-year run written to zarr (``run_to_zarr``), measured in a
  child process, beside the size the same output would take in memory.

Both implementations draw identical per-member noise and agree to rounding (tests/test_cf23.py), so the
comparison is like for like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

from bridging.idealized.cf23 import CF23Model, reference_integrate


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _compiled(model: CF23Model, members: int, years: int, threads: int) -> float:
    numba.set_num_threads(threads)
    state = model.initial_state(members, seed=1)
    return _time(lambda: model.advance_nondimensional(state, years))


def _reference(model: CF23Model, members: int, years: int) -> float:
    state = model.initial_state(members, seed=1)
    return _time(lambda: reference_integrate(model, state, years))


_CHILD = """
import json, resource, sys, time
from bridging.idealized.run import run_to_zarr
members, years, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if members:
    run_to_zarr(out, years=years, seed=1, members=members, spinup_years=0, threads=2)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "import_kib": base}))
"""


def _streamed_peak(members: int, years: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", _CHILD, str(members), str(years), os.path.join(tmp, "run.zarr")]
        return json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run of the script)")
    args = parser.parse_args()
    years_one = 100 if args.quick else 1000
    years_ref = 5 if args.quick else 50
    members, years_members = (64, 2) if args.quick else (512, 10)
    ref_members_years = 1
    stream_members, stream_years = (100, 10) if args.quick else (1000, 100)

    model = CF23Model()
    model.advance_nondimensional(model.initial_state(1, seed=0), 1)  # compile (or load the cache) outside the timings

    rows = []
    t_ours = _compiled(model, 1, years_one, threads=1)
    t_ref = _reference(model, 1, years_ref) * years_one / years_ref
    rows.append(
        (
            f"1 member, {years_one} yr",
            f"{t_ours:.2f} s",
            f"{t_ref:.1f} s (timed on {years_ref} yr ×{years_one // years_ref})",
            f"{t_ref / t_ours:.0f}×",
        )
    )

    my = members * years_members
    t_ref_m = _reference(model, members, ref_members_years) * years_members / ref_members_years
    for threads in (1, 2):
        t = _compiled(model, members, years_members, threads=threads)
        rows.append(
            (
                f"{members} members × {years_members} yr, {threads} thread{'s' if threads > 1 else ''}",
                f"{my / t:,.0f} member-yr/s",
                f"{my / t_ref_m:,.0f} member-yr/s (NumPy over members, timed on {ref_members_years} yr)",
                f"{t_ref_m / t:.0f}×",
            )
        )

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    base = _streamed_peak(0, 0)
    peak = _streamed_peak(stream_members, stream_years)
    in_memory_gib = stream_members * stream_years * 12 * (4 * 56 + 5) * 4 / 2**30
    rows.append(
        (
            f"{stream_members} members × {stream_years} yr streamed to zarr",
            f"peak RSS {peak['peak_kib'] / 2**20:.2f} GiB ({(peak['peak_kib'] - base['peak_kib']) / 2**20:.2f} GiB above an idle interpreter), {peak['seconds']:.0f} s",
            f"whole output in memory would be {in_memory_gib:.2f} GiB (float32)",
            "",
        )
    )

    widths = [max(len(r[i]) for r in rows + [("case", "ours (numba)", "reference", "speed-up")]) for i in range(4)]
    header = ("case", "ours (numba)", "reference", "speed-up")
    print(f"CF23 benchmark — {os.cpu_count()} CPUs, numba {numba.__version__}, numpy {np.__version__}")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
