"""The fast path's trie walked by several CPU threads at once, each running its operations on one core.

A small model's layer call is a few dozen operations on a few hundred kilobytes each. With torch's
intra-op threads every one of them is split in two, the sleeping second thread is woken (the CLI asks
OpenMP to wait passively, engine/threads.py) and the first waits for it at the end: on the demo model
this costs CPU time without halving the wall time. The trie's subtrees below the base pass are
independent, so here ``workers`` Python threads each walk whole subtrees with one intra-op thread:
torch releases the GIL inside its kernels, every core computes, and no operation waits for another
thread. A subtree runs the same operations on the same shapes as in the one-thread walk, so every
number equals the one-thread number bit for bit (tests/engine/test_cpu_walk.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import torch

# A task walks one subtree; it calls its argument before each layer call, which stops it once another failed.
Task = Callable[[Callable[[], None]], None]


class Stopped(Exception):
    """Raised inside a task when another task failed or the caller was interrupted: its work is not wanted."""


def subtree_workers(device: torch.device, single: bool, stack: int, subtrees: int) -> int:
    """How many threads walk the trie: torch's intra-op thread count on a CPU fast path walked depth-first, with
    at least two subtrees; else 1 (the walk as it always was). ``single``: layers or head on other devices, or
    compiled kernels (torch.compile is not called from several threads here)."""
    if device.type != "cpu" or single or stack > 1:
        return 1
    return max(1, min(torch.get_num_threads(), subtrees))


def walk_subtrees(tasks: Sequence[Task], workers: int) -> None:
    """Run ``tasks`` on ``workers`` threads, one intra-op thread each, taken in the order given (put the longest
    first). A task that fails stops the others at their next layer call, and its error is raised here once every
    started task has stopped (of several, the first in task order). The intra-op thread count and the grad and
    inference modes of the caller hold in every worker."""
    threads = torch.get_num_threads()
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise Stopped

    def run(task: Task) -> None:
        check()
        torch.set_num_threads(1)  # OpenMP's thread count is per calling thread: each worker sets its own
        try:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                task(check)
        except Stopped:
            raise
        except BaseException:
            stop.set()
            raise

    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="swapkl-walk")
    try:
        for future in [pool.submit(run, task) for task in tasks]:
            try:
                future.result()
            except Stopped:  # another task failed: its own error comes from its own future
                continue
    finally:
        stop.set()  # an interrupt (KeyboardInterrupt reaches this thread) stops the workers too
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)
