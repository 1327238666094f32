"""The audit cache: one JSON document per key, under pytest's cache directory.

The key is the audit's content identity (`settings.content_identity`): the checkpoint's files
(weights, config, tokenizer; `fingerprint.py` memoizes their hashes by path, size and mtime so a hit
on a large checkpoint does not re-read its weights), the token ids actually used, the probe set,
dtype, device kind, the settings that change numbers and library versions.

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

`swapkl audit` puts each exact audit it computes into a second cache of the same format, the user's
(`shared_directory`: ~/.cache/swapkl/audits), under the same key; the plugin looks there on a miss, so
``swapkl audit MODEL ...`` followed by ``pytest --swapkl-model=MODEL`` with the same settings measures once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..audit.fingerprint import MEMO_NAME, DigestMemo
from ..audit.results import document_problem
from ..console import quiet
from ..safe_files import locked, write_text
from ..safe_json import JsonError, read_json
from ..settings import AuditSettings, content_identity

# An adaptive audit samples until these tests' verdicts are settled (at its error level), so its numbers depend on
# them too.
TOLERANCES_IN_ADAPTIVE_KEY = ("rank_tolerance", "log_ratio_tolerance", "min_spearman", "min_jaccard", "jaccard_k",
                              "adaptive_alpha")
FORMAT = "swapkl-cache/1"
_KEY = re.compile(r"[0-9a-f]{32}")


def audit_key(fingerprint: str, token_sha256: str, options: Any, dtype: str, device_kind: str,
              versions: dict[str, str], heldout_sha256: Optional[str] = None) -> str:
    """The cache key: the audit's content identity (`settings.content_identity`), with the pair spec standing for
    the probes (the depth is not known before the model loads; the checkpoint fingerprint fixes it) and, for an
    adaptive audit, the tolerances it settles."""
    settings = AuditSettings.of(options)
    identity = settings.identity()
    # Entries written before the pair cases' rank intervals became simultaneous (issue 34) hold the older intervals
    identity["rank_intervals"] = "simultaneous"
    if settings.statistics.precision == "adaptive":
        identity["tolerances"] = {name: getattr(options, name) for name in TOLERANCES_IN_ADAPTIVE_KEY}
    return content_identity(checkpoint=fingerprint, tokens_sha256=token_sha256, heldout_sha256=heldout_sha256,
                            probes=[settings.pairs], dtype=dtype, device_kind=device_kind, settings=identity,
                            versions=versions)


def key_for(options: Any, located: Any, cache: "AuditCache") -> str:
    """`audit_key` of located inputs (`audit.runner.locate`): the plugin's key and `swapkl audit`'s alike, the
    checkpoint's file digests memoized in `cache`'s folder."""
    from ..audit.fingerprint import checkpoint_fingerprint
    from ..audit.results import library_versions
    from ..inputs.devices import resolve_device, resolve_dtype

    device = resolve_device(options.device)
    memo = cache.load_memo()
    fingerprint = located.checkpoint.fingerprint or checkpoint_fingerprint(located.checkpoint.folder, memo)
    cache.save_memo(memo)
    heldout = None if located.heldout is None else located.heldout.sha256
    return audit_key(fingerprint, located.calibration.sha256, options, str(resolve_dtype(options.dtype, device)),
                     device.type, library_versions(), heldout)


def shared_directory() -> Optional[Path]:
    """The user's audit cache, which `swapkl audit` writes and the plugin reads on a miss of its own:
    $SWAPKL_AUDIT_CACHE (a folder, or ``off``: none), else ~/.cache/swapkl/audits ($XDG_CACHE_HOME)."""
    chosen = os.environ.get("SWAPKL_AUDIT_CACHE", "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "audits"


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
        with locked(self.directory / f"{key}.lock", self.notice,
                     f"swapkl: waiting for another process computing audit {key}"):
            yield

    # ------------------------------------------------------------ file digests

    def load_memo(self, quiet: bool = False) -> dict[str, str]:
        return DigestMemo(self.directory, self.notice).load(quiet)

    def save_memo(self, memo: dict[str, str]) -> None:
        DigestMemo(self.directory, self.notice).save(memo)
