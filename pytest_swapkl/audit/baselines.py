"""Saved audits to compare against, in the manner of pytest-benchmark's `--benchmark-save`.

`--swapkl-save NAME` stores the run's audit document with the machine and the git commit it ran on,
as `NAME.json` in the `baselines` folder of swapkl's pytest cache (`.pytest_cache/d/swapkl/`);
`--swapkl-compare NAME` reads it back and `comparison.compare` decides; `swapkl baselines` lists
the folder. A baseline is read as untrusted JSON (`safe_json`) and its audit is field-checked as
strictly as a cache entry (`results.document_problem`). No torch.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError

SCHEMA = "swapkl-baseline/1"
FOLDER = "baselines"
PYTEST_CACHE_PART = Path("d") / "swapkl" / FOLDER  # under pytest's cache folder (default .pytest_cache)


class BaselineError(InputError):
    """A saved baseline that is missing or not usable."""


def folder(cache_dir: Optional[Path]) -> Path:
    if cache_dir is None:
        raise BaselineError("saved baselines live in pytest's cache: run without -p no:cacheprovider")
    return Path(cache_dir) / FOLDER


def machine() -> dict:
    return {"node": platform.node(), "system": platform.system(), "release": platform.release(),
            "machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()}


def commit(root: Path) -> Optional[dict]:
    """The git commit of `root` and whether the tree had changes; None outside a repository or without git."""
    def git(*arguments: str) -> Optional[str]:
        try:
            done = subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "branch": git("rev-parse", "--abbrev-ref", "HEAD"), "dirty": bool(status)}


def save(cache_dir: Optional[Path], name: str, document: dict, root: Path) -> Path:
    from .results import write_json

    record = {"schema": SCHEMA, "name": name, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), "commit": commit(root), "audit": document}
    return write_json(record, folder(cache_dir) / f"{name}.json")


def load(cache_dir: Optional[Path], name: str) -> dict:
    from ..safe_json import read_json
    from .results import document_problem

    path = folder(cache_dir) / f"{name}.json"
    if not path.exists():
        raise BaselineError(f"no saved baseline {name!r} in {path.parent}: save one first with --swapkl-save {name} "
                            "(swapkl baselines lists the saved ones)")
    record = read_json(path, what="saved baseline")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise BaselineError(f"{path} is not a swapkl baseline (schema {SCHEMA}): save it again with "
                            f"--swapkl-save {name}")
    problem = document_problem(record.get("audit"))
    if problem is not None:
        raise BaselineError(f"{path}: its audit is not usable ({problem}): save it again with --swapkl-save {name}")
    return record


def saved(directory: Path) -> list[dict]:
    """Every readable baseline in `directory`, by name; a damaged one is listed with its problem."""
    from ..safe_json import read_json

    found = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            record = read_json(path, what="saved baseline")
            if not isinstance(record, dict) or record.get("schema") != SCHEMA:
                raise BaselineError("not a swapkl baseline")
            found.append({"path": str(path), **record})
        except InputError as error:
            found.append({"path": str(path), "name": path.stem, "problem": str(error)})
    return found


def describe(record: dict) -> dict:
    """One row of `swapkl baselines`."""
    if "problem" in record:
        return {"name": record["name"], "saved": "", "commit": "", "machine": "", "model": "",
                "Spearman(R, I)": "", "problem": record["problem"]}
    audit, where = record.get("audit") or {}, record.get("commit") or {}
    sha = (where.get("sha") or "")[:10] + (" (changed)" if where.get("dirty") else "")
    spearman = (audit.get("summary") or {}).get("spearman")
    return {"name": record.get("name"), "saved": record.get("saved_at"), "commit": sha or "n/a",
            "machine": (record.get("machine") or {}).get("node"), "model": (audit.get("model") or {}).get("name"),
            "Spearman(R, I)": "n/a" if spearman is None else f"{spearman:.3f}", "problem": ""}


def default_folder(cache_dir: Any = ".pytest_cache") -> Path:
    return Path(cache_dir) / PYTEST_CACHE_PART
