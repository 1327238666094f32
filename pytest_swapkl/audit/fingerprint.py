"""A checkpoint's content fingerprint: sha256 over its files, with a memo so that reruns do not read weights again.

The audit cache, the shards and the resume journal name an audit by its content (`settings.content_identity`);
this is the checkpoint's part of it. File digests are memoized by (path, size, mtime) in ``file-digests.json``,
merged under a lock so that concurrent runs only add to it. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable

from ..console import quiet
from ..errors import InputError
from ..safe_files import locked, write_text
from ..safe_json import JsonError, read_json

CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt")
MEMO_NAME = "file-digests.json"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def file_digest(path: Path, memo: dict[str, str]) -> str:
    stat = path.stat()
    memo_key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if memo_key not in memo:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 24), b""):
                digest.update(block)
        memo[memo_key] = digest.hexdigest()
    return memo[memo_key]


def checkpoint_fingerprint(folder: Path, memo: dict[str, str]) -> str:
    """sha256 over the checkpoint's files (names and contents), in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES):
        digest.update(f"{path.name}:{file_digest(path, memo)}\n".encode())
    return digest.hexdigest()


class DigestMemo:
    """The memo of file digests in one folder. `notice(line)` hears of a damaged memo (then hashing starts over)."""

    def __init__(self, directory: Path, notice: Callable[[str], None] = quiet):
        self.directory = Path(directory)
        self.memo_path = self.directory / MEMO_NAME
        self.notice = notice

    def load(self, quiet: bool = False) -> dict[str, str]:
        if not self.memo_path.exists():
            return {}
        try:
            memo = read_json(self.memo_path, what="file-digest memo")
        except JsonError as error:
            if not quiet:
                self.notice(f"swapkl: {self.memo_path} is corrupt ({error.reason}): hashing the checkpoint again")
            return {}
        if not isinstance(memo, dict):
            return {}
        return {k: v for k, v in memo.items() if isinstance(k, str) and isinstance(v, str) and _DIGEST.fullmatch(v)}

    def save(self, memo: dict[str, str]) -> None:
        """Merge `memo` into the file under its lock (a concurrent run's new digests are kept); best effort."""
        try:
            with locked(self.directory / "file-digests.lock", quiet, None):
                current = self.load(quiet=True)  # a damaged memo was reported when it was loaded
                if all(current.get(k) == v for k, v in memo.items()):
                    return
                write_text(self.memo_path, json.dumps({**current, **memo}, indent=1, sort_keys=True) + "\n")
        except (InputError, OSError):
            pass  # only a speed-up: the next run hashes again


def fingerprint_with_memo(folder: Path, memo_dir: Path) -> str:
    """The checkpoint fingerprint of `folder`, its file digests memoized under `memo_dir`."""
    digests = DigestMemo(memo_dir)
    memo = digests.load(quiet=True)
    fingerprint = checkpoint_fingerprint(Path(folder), memo)
    digests.save(memo)
    return fingerprint
