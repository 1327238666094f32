"""The audit cache: one JSON document per key, under pytest's cache directory.

The key hashes everything that determines the numbers: the checkpoint's files
(weights, config, tokenizer), the token ids actually used, the probe set, dtype,
device kind, statistics settings and library versions. File hashes are memoized by
(path, size, mtime) so a hit on a large checkpoint does not re-read its weights.

Safe for unattended and concurrent use (docs/reliability.md):

- An entry is ``{"format": "swapkl-cache/1", "key": KEY, "sha256": HEX, "document": {...}}``, HEX the
  sha256 of the document's canonical JSON (sorted keys, no spaces, ASCII). An entry that is truncated,
  unparsable, of an older format, for another key or whose checksum does not match is reported in one
  line through `notice`, deleted, and read as a miss: the caller recomputes and rewrites it.
- Writes are atomic (`safe_files.atomic_output`: temp file in this folder, fsync, rename).
- `lock(key)` holds a `filelock` lock on ``KEY.lock`` around "look up, compute, write", so a second process
  auditing the same key waits and then reads the first one's entry, on POSIX and Windows alike; where the
  folder refuses locks it goes on without one (the atomic writes still keep every entry whole).
- ``file-digests.json`` is merged, not overwritten, under its own lock: concurrent runs only add.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..console import quiet
from ..errors import InputError
from ..results import document_problem
from ..safe_files import write_text
from ..safe_json import JsonError, read_json

CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt")
SETTINGS_IN_KEY = ("pairs", "tokens", "seq_len", "seed", "replacement_reduce", "bootstrap", "path", "prune_k",
                   "prune_methods", "precision", "attention_type", "heldout", "heldout_tokens", "noise_probes",
                   "prune_budget")
# An adaptive audit samples until these tests' verdicts are settled (at its error level, under its bound), so its
# numbers depend on them too.
TOLERANCES_IN_ADAPTIVE_KEY = ("rank_tolerance", "log_ratio_tolerance", "min_spearman", "min_jaccard", "jaccard_k",
                              "adaptive_alpha", "adaptive_bound")
FORMAT = "swapkl-cache/1"
MEMO_NAME = "file-digests.json"
_KEY = re.compile(r"[0-9a-f]{32}")
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


def audit_key(fingerprint: str, token_sha256: str, options: Any, dtype: str, device_kind: str,
              versions: dict[str, str], heldout_sha256: Optional[str] = None) -> str:
    material = {
        "checkpoint": fingerprint,
        "tokens_sha256": token_sha256,
        "heldout_sha256": heldout_sha256,  # the costs' text: another held-out set is another audit
        "settings": {name: getattr(options, name) for name in SETTINGS_IN_KEY},
        "tolerances": ({name: getattr(options, name) for name in TOLERANCES_IN_ADAPTIVE_KEY}
                       if options.precision == "adaptive" else None),
        "dtype": dtype,
        "device": device_kind,
        "versions": versions,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


def document_checksum(document: Any) -> str:
    """sha256 of the canonical JSON of `document`: the same for the document written and the one read back."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditCache:
    """One folder of entries. `notice(line)` receives a one-line report of every entry found damaged."""

    def __init__(self, directory: Path, notice: Callable[[str], None] = quiet):
        self.directory = Path(directory)
        self.memo_path = self.directory / MEMO_NAME
        self.notice = notice

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):  # the file name comes from our own hash, never from input
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / f"{key}.json"

    # ------------------------------------------------------------ entries

    def get(self, key: str) -> Optional[dict]:
        """The document under `key`, or None: absent, or damaged (then reported, deleted, to be recomputed)."""
        path = self.path(key)
        if not path.exists() and not path.is_symlink():
            return None
        try:
            document, problem = self._verified(key, read_json(path, what="cache entry"))
        except JsonError as error:
            document, problem = None, f"is corrupt ({error.reason})"
        if problem is not None:
            self.notice(f"swapkl: cache entry {key} {problem}: recomputing")
            path.unlink(missing_ok=True)
        return document

    @staticmethod
    def _verified(key: str, entry: Any) -> tuple[Optional[dict], Optional[str]]:
        if isinstance(entry, dict) and "format" not in entry and "schema" in entry:
            return None, "has an older format without a checksum"
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None, "has an unknown format"
        document, checksum = entry.get("document"), entry.get("sha256")
        if not isinstance(document, dict) or not isinstance(checksum, str):
            return None, "is corrupt (no document or checksum)"
        if entry.get("key") != key:
            return None, "is corrupt (written for another key)"
        try:
            actual = document_checksum(document)
        except (ValueError, TypeError, RecursionError):
            return None, "is corrupt (document cannot be checksummed)"
        if actual != checksum:
            return None, "is corrupt (checksum mismatch)"
        problem = document_problem(document)  # the fields, as strictly as the checksum
        if problem is not None:
            return None, f"is not a usable audit ({problem})"
        return document, None

    def put(self, key: str, document: dict) -> Path:
        """Write the entry atomically; raises `OutputError` (an InputError and OSError) when it cannot."""
        normal = json.loads(json.dumps(document, allow_nan=False))  # what a reader will see: tuples are lists
        entry = {"format": FORMAT, "key": key, "sha256": document_checksum(normal), "document": normal}
        return write_text(self.path(key), json.dumps(entry, indent=1, allow_nan=False) + "\n")

    def clear(self) -> None:
        for path in self.directory.glob("*.json"):
            if path != self.memo_path:
                path.unlink(missing_ok=True)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the per-key lock: one process computes a key while others wait for its entry."""
        self.path(key)  # validates the key
        with _locked(self.directory / f"{key}.lock", self.notice,
                     f"swapkl: waiting for another process computing audit {key}"):
            yield

    # ------------------------------------------------------------ file digests

    def load_memo(self, quiet: bool = False) -> dict[str, str]:
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

    def save_memo(self, memo: dict[str, str]) -> None:
        """Merge `memo` into the file under its lock (a concurrent run's new digests are kept); best effort."""
        try:
            with _locked(self.directory / "file-digests.lock", quiet, None):
                current = self.load_memo(quiet=True)  # a damaged memo was reported when it was loaded
                if all(current.get(k) == v for k, v in memo.items()):
                    return
                write_text(self.memo_path, json.dumps({**current, **memo}, indent=1, sort_keys=True) + "\n")
        except (InputError, OSError):
            pass  # only a speed-up: the next run hashes again


@contextmanager
def _locked(path: Path, notice: Callable[[str], None], waiting: Optional[str]) -> Iterator[None]:
    """An exclusive lock on `path` for the block, through `filelock` (flock on POSIX, msvcrt on Windows, so the
    lock also holds there); where the folder refuses a lock (read-only, no lock support) `notice` says so and the
    block runs without one. The operating system drops the lock with its process: a killed run leaves none."""
    from filelock import FileLock, Timeout

    if path.is_symlink():  # planted: never create or lock a file elsewhere (filelock opens with O_NOFOLLOW too)
        notice(f"swapkl: cannot lock {path} (it is a symbolic link): going on without the lock")
        yield
        return
    lock = FileLock(str(path), thread_local=False)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            lock.acquire()
    except OSError as error:  # no lock support (some network file systems), an unwritable folder, a planted link
        notice(f"swapkl: cannot lock {path} ({error.strerror or error}): going on without the lock")
        yield
        return
    try:
        yield
    finally:
        lock.release()
