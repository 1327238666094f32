"""How many CPU threads torch uses for an audit: what ``--threads`` asks, else the cores that are idle.

Two threads per process on a 2-core machine that something else keeps busy run several times slower
than one (measured: the demo audit took 408 s at load 9-13 and 30 s quiet, issue 37), and xdist
workers that each take every core oversubscribe it. So the default is the cores this process may use,
divided among xdist workers, less the load average of the last minute, and at least one; where the
user set OMP_NUM_THREADS, torch's own count from it stands.

The load average lags, and other jobs may start mid-audit. OpenMP threads that spin while they wait for
work then take the core from the job that holds it: on the shared 2-core machine (load 5-7) the demo
model's probes took 33.8 s of CPU time on 2 threads against 5 s on 1; with OMP_WAIT_POLICY=PASSIVE, 2
threads took 5.9-6.8 s (docs/benchmarks.md, "CPU profile"). So the CLI asks for passive waiting before
torch starts (``wait_passively``), unless the user chose a policy.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Optional


def wait_passively() -> None:
    """Idle OpenMP threads sleep instead of spinning: read once, when torch first starts its thread pool."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_threads(cores: int, load: Optional[float], workers: int) -> int:
    """The idle share of `cores` for one of `workers` processes, given the 1-minute load average (None: unknown)."""
    share = max(1, cores // max(1, workers))
    if load is None or workers > 1:  # xdist workers are the load: dividing the cores already accounts for them
        return share
    return max(1, min(share, round(cores - load)))


def _xdist_workers() -> int:
    try:
        return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) if os.environ.get("PYTEST_XDIST_WORKER") else 1
    except ValueError:
        return 1


def _load() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def chosen_threads(requested: Optional[int]) -> tuple[int, Optional[str]]:
    """The thread count, and a one-line reason where the default chose fewer than the usable cores."""
    cores = usable_cores()
    if requested is not None:
        return requested, None
    if os.environ.get("OMP_NUM_THREADS"):  # the user's own choice, which torch has already taken
        import torch

        return torch.get_num_threads(), None
    load, workers = _load(), _xdist_workers()
    threads = default_threads(cores, load, workers)
    if threads >= cores:
        return threads, None
    why = f"{workers} xdist workers" if workers > 1 else f"load average {load:.1f}"
    return threads, f"using {threads} of {cores} CPU threads ({why}); --threads N sets it"


@contextmanager
def cpu_threads(requested: Optional[int]) -> Iterator[tuple[int, Optional[str]]]:
    """torch's intra-op threads for the block, restored after it (the plugin shares its process with the tests).
    Yields (threads, why fewer than the cores, or None): what the audit JSON records, quietly (a notice on every
    run of a loaded machine would be noise on stderr, where errors are one line)."""
    import torch

    threads, why = chosen_threads(requested)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads, why
    finally:
        torch.set_num_threads(before)
