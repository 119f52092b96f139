"""Progress of the long stages in their logs: how far, how fast, how long still to go.

Ingestion computes one dask graph for hours on real data; :func:`dask_progress` logs the share of its tasks done
(a line every ``interval`` seconds, never more often, and one at the end), whichever scheduler runs it: a dask
callback for the local schedulers, the scheduler's progress plugin for ``dask.distributed``. The filter logs one
line per block of months; :class:`Eta` gives those lines the month over the total, the rate and the time left.
Log lines, not a progress bar: a rule's log is a file, where a redrawn bar is noise.
"""

from __future__ import annotations

import contextlib
import logging
import time

log = logging.getLogger(__name__)

#: seconds between two progress lines of a dask computation
DEFAULT_INTERVAL = 60.0


def format_duration(seconds: float) -> str:
    """``3h05m``, ``4m07s``, ``12s``: a duration as a person reads it in a log."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Eta:
    """Done / total, rate and time left of a count that grows (months of a filter run).

    ``start`` is where this process began (a resumed run), so the rate measures this process's own work."""

    def __init__(self, total: int, start: int = 0, unit: str = "month", clock=time.perf_counter):
        self.total, self.start, self.unit, self.clock = int(total), int(start), unit, clock
        self.t0 = clock()

    def line(self, done: int) -> str:
        """``month 120/1200 (10%), 0.52 s/month, elapsed 1m02s, ETA 9m22s``"""
        elapsed = self.clock() - self.t0
        worked = int(done) - self.start
        rate = elapsed / worked if worked > 0 else float("nan")
        left = rate * (self.total - int(done)) if worked > 0 else float("nan")
        pct = 100.0 * int(done) / self.total if self.total else 100.0
        return (
            f"{self.unit} {int(done)}/{self.total} ({pct:.0f}%), {rate:.3g} s/{self.unit}, "
            f"elapsed {format_duration(elapsed)}, ETA {format_duration(left)}"
        )


def _task_line(label: str, done: int, total: int, elapsed: float) -> str:
    pct = 100.0 * done / total if total else 100.0
    left = elapsed * (total - done) / done if done else float("nan")
    return f"{label}: {pct:.0f}% of {total} tasks done, elapsed {format_duration(elapsed)}, ETA {format_duration(left)}"


class _Throttle:
    """Logs a line when ``interval`` seconds have passed since the last one (and the first after ``interval``)."""

    def __init__(self, label: str, interval: float, logger: logging.Logger, client=None, clock=time.monotonic):
        self.label, self.interval, self.logger, self.client, self.clock = label, float(interval), logger, client, clock
        self.t0 = self.last = clock()

    def update(self, done: int, total: int, final: bool = False) -> None:
        now = self.clock()
        if final or now - self.last >= self.interval:
            self.last = now
            self.logger.info(_task_line(self.label, done, total, now - self.t0))


def _local_callback(throttle: _Throttle):
    """A dask callback (synchronous and threaded schedulers) that counts finished tasks."""
    from dask.callbacks import Callback

    class _LogProgress(Callback):
        def _start_state(self, dsk, state):
            self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self.done = len(state["finished"])

        def _posttask(self, key, result, dsk, state, worker_id):
            self.done += 1
            throttle.update(self.done, self.total)

        def _finish(self, dsk, state, errored):
            if not errored and getattr(self, "total", 0):
                throttle.update(self.total, self.total, final=True)

    return _LogProgress()


@contextlib.contextmanager
def dask_progress(label: str, interval: float | None = None, client=None, logger: logging.Logger | None = None):
    """Log the progress of the dask computations run inside this block (``label``: what is computed; a line every
    ``interval`` seconds, :data:`DEFAULT_INTERVAL` by default, and one when done).

    Compute through :func:`compute` with what this yields. With ``client`` (a ``dask.distributed`` client) it
    follows the tasks on the cluster; without, a local-scheduler callback counts them."""
    throttle = _Throttle(label, DEFAULT_INTERVAL if interval is None else interval, logger or log, client)
    if client is not None:
        yield throttle
        return
    with _local_callback(throttle):
        yield throttle


def compute(*collections, progress: _Throttle | None = None):
    """``dask.compute(*collections)``, followed by ``progress`` (from :func:`dask_progress`) on a distributed
    client."""
    import dask

    client = progress.client if progress is not None else None
    if client is None:
        return dask.compute(*collections)
    from distributed.diagnostics.progressbar import TextProgressBar

    class _LogBar(TextProgressBar):
        # the scheduler's progress plugin reports (remaining, all) every `interval`; the throttle decides what to log
        def _draw_bar(self, remaining, all, **kwargs):
            progress.update(all - remaining, all)

        def _draw_stop(self, remaining=0, all=0, status=None, **kwargs):
            if status == "finished":
                progress.update(all, all, final=True)

    futures = client.compute(list(collections))
    _LogBar(futures, interval="1s")  # returns when the computation has finished or failed
    return tuple(client.gather(futures))
