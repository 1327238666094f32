"""SIGTERM ends a run the way Ctrl-C does: as a `KeyboardInterrupt`, so every `finally` runs.

A scheduler, `timeout` or `docker stop` sends SIGTERM; by default Python dies of it at once, mid-statement,
without a word. Inside `sigterm_as_interrupt()` it raises `Terminated` (a `KeyboardInterrupt`) instead: the
journal is closed with whole lines, no output file is half-written (they are written atomically, and only
after the audit), and the command prints one line and exits 143 (pytest: its Ctrl-C ending, exit 2).
A handler someone else installed (pytest-timeout, an embedding program) is left alone. No torch.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

TERMINATED = 128 + signal.SIGTERM  # the exit code a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""

    def __str__(self) -> str:
        return "terminated by SIGTERM"


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated`; the previous handler comes back afterwards."""
    in_main = threading.current_thread() is threading.main_thread()
    if not in_main or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield  # signals reach only the main thread; someone else's handler is theirs
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
