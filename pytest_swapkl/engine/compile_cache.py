"""torch.compile's warm-up kept across processes, in the swapkl cache folder.

Inductor's FX-graph and AOTAutograd caches (on by default) and Triton's kernel cache store what
compiling the fast path's layer calls and head + KL step produced. By default they live in
/tmp/torchinductor_$USER and ~/.triton, which a fresh container, a CI job or another node of a cluster
does not have; pointed into the swapkl cache folder they travel with it (a CI cache, a shared file
system), so a second process finds compiled kernels instead of compiling again. Dynamo still traces
the functions in every process: that part of the warm-up is not cached (benchmarks/speed/compile_cache.py).

A user's own TORCHINDUCTOR_CACHE_DIR / TRITON_CACHE_DIR win; this only fills them in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

VARIABLES = (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton"))


def default_compile_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "compile"


def use_compile_cache(folder: Optional[Path] = None) -> Path:
    """Point the compile caches into `folder` (default: the swapkl cache's `compile/`) unless already set;
    call before the first compile of the process. Returns the folder."""
    folder = Path(folder) if folder is not None else default_compile_dir()
    for variable, sub in VARIABLES:
        os.environ.setdefault(variable, str(folder / sub))
    return folder
