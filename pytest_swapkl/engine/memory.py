"""Freed memory kept by the process instead of handed back to the OS and faulted in again.

glibc returns a freed block of more than its mmap threshold (128 KiB, raised as blocks are freed, at most
32 MiB) to the OS, and trims the heap's top past its trim threshold; the next allocation of that size
faults every page in again, zero-filled by the kernel. The head + KL step allocates and frees temporaries
of up to 64 MiB per vocabulary chunk, thousands of times an audit: on SmolLM2-135M this was 204 s of system
time in 825 s of CPU time (docs/benchmarks.md, "CPU profile"). Fixing the thresholds keeps blocks up to
32 MiB in the heap; ``divergence`` keeps its CPU temporaries below that.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
LARGEST_MMAP_THRESHOLD = 32 << 20  # glibc refuses more on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_done = False


def keep_freed_memory() -> bool:
    """Ask glibc once per process to keep freed blocks; False (and nothing done) where libc is not glibc."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # macOS, Windows, musl: their allocators are left as they are
        return False
    _done = all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20)))
    return _done
