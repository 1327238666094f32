"""The audit cache: one JSON document per key, under pytest's cache directory.

The key hashes everything that determines the numbers: the checkpoint's files
(weights, config, tokenizer), the token ids actually used, the probe set, dtype,
device kind, statistics settings and library versions. File hashes are memoized by
(path, size, mtime) so a hit on a large checkpoint does not re-read its weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from .results import write_json

CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt")
SETTINGS_IN_KEY = ("pairs", "tokens", "seq_len", "seed", "replacement_reduce", "bootstrap", "path", "prune_k",
                   "prune_methods")


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


def audit_key(fingerprint: str, token_sha256: str, options: Any, dtype: str, device_kind: str,
              versions: dict[str, str]) -> str:
    material = {
        "checkpoint": fingerprint,
        "tokens_sha256": token_sha256,
        "settings": {name: getattr(options, name) for name in SETTINGS_IN_KEY},
        "dtype": dtype,
        "device": device_kind,
        "versions": versions,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


class AuditCache:
    def __init__(self, directory: Path):
        self.directory = directory
        self.memo_path = directory / "file-digests.json"

    def load_memo(self) -> dict[str, str]:
        try:
            return json.loads(self.memo_path.read_text())
        except (OSError, ValueError):
            return {}

    def save_memo(self, memo: dict[str, str]) -> None:
        write_json(memo, self.memo_path)

    def get(self, key: str) -> Optional[dict]:
        try:
            return json.loads((self.directory / f"{key}.json").read_text())
        except (OSError, ValueError):  # absent, or unreadable: recompute
            return None

    def put(self, key: str, document: dict) -> Path:
        return write_json(document, self.directory / f"{key}.json")

    def clear(self) -> None:
        for path in self.directory.glob("*.json"):
            if path != self.memo_path:
                path.unlink(missing_ok=True)
