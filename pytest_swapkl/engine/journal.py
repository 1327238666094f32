"""Finished probe results, appended to disk as they complete, so a killed audit resumes.

One JSON line per (probe, range of sequences): the per-sequence KL and NLL exactly as
measured (JSON floats round-trip float64 exactly), with a sha256 of the line's content.
A line cut short by a kill, or altered, fails its checksum and is simply measured again.
The first line names the audit the journal belongs to; a journal of another audit
(other model files, tokens, probes, dtype or versions) is discarded, never mixed in.

Lines are flushed as they are written: that survives `kill -9` (the data is in the
kernel), not a power cut, which would at worst lose the last records.

A record's fields are checked as strictly as its checksum: a line whose sha256 is right but
whose fields are missing, of the wrong type, out of range or not finite is ignored like a torn
one (and measured again), never a KeyError. The file is read only if it is a regular file of at
most `limits.MAX_JOURNAL_BYTES`; anything else in its place is an OSError, which the runner
turns into one notice and an audit without a journal. A write that fails later (a full disk)
stops the journal with one notice; the audit goes on, and the lines written before stay usable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..limits import MAX_JOURNAL_BYTES
from ..safe_files import UnreadableFile, open_input

FORMAT = "swapkl-journal/1"
RECORD_FIELDS = {"name", "start", "stop", "kl", "nll"}
MAX_SEQUENCES = 1 << 40  # a sequence index beyond this is no calibration set's


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Journal:
    """Per-probe segments [start, stop) of measured sequences, read from and appended to one file."""

    def __init__(self, path: Path, identity: dict[str, Any], notice: Callable[[str], None] = lambda _line: None):
        self.path = path
        self.notice = notice  # hears, once, that the journal stopped (a full disk): the audit goes on without it
        self.stopped: Optional[str] = None
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))  # as it reads back
        self.segments: dict[str, dict[int, tuple[int, np.ndarray, np.ndarray]]] = {}
        self.resumed = 0  # records found on opening
        self._stream = None

    @classmethod
    def open(cls, path: Path, identity: dict[str, Any],
             notice: Callable[[str], None] = lambda _line: None) -> "Journal":
        """Raises OSError when there can be no journal at `path` (a folder or a FIFO in its place, no space)."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise OSError(f"{path} is not a regular file")  # writing a FIFO would block, a folder cannot be
        journal = cls(path, identity, notice)
        journal._load()
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = journal.resumed == 0
        journal._stream = path.open("w" if fresh else "a", encoding="utf-8")
        if fresh:  # an OSError here (no space) means no journal at all: the caller says so
            try:
                journal._write_line({"format": FORMAT, "identity": identity})
            except OSError:
                with contextlib.suppress(OSError):  # closing flushes into the same full disk
                    journal._stream.close()
                path.unlink(missing_ok=True)  # the empty or torn file it opened is no journal: not left behind
                raise
        return journal

    def _load(self) -> None:
        try:
            with open_input(self.path, what="journal", max_bytes=MAX_JOURNAL_BYTES, fix="-") as stream:
                lines = stream.read().decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError, UnreadableFile):
            return  # none, unreadable or too large: start afresh (and overwrite it)
        if not lines or self._parse(lines[0]) != {"format": FORMAT, "identity": self.identity}:
            return  # another audit's journal (or none): start afresh
        for line in lines[1:]:
            record = self._parse(line)
            if _is_record(record):
                self._keep(record["name"], record["start"], record["stop"], np.asarray(record["kl"], dtype=np.float64),
                           np.asarray(record["nll"], dtype=np.float64))
                self.resumed += 1

    @staticmethod
    def _parse(line: str) -> Optional[dict]:
        try:
            entry = json.loads(line)
            payload = entry["payload"]
            return payload if entry["sha256"] == _digest(payload) else None
        except (ValueError, KeyError, TypeError):
            return None

    def _keep(self, name: str, start: int, stop: int, kl: np.ndarray, nll: np.ndarray) -> None:
        if len(kl) == len(nll) == stop - start:
            self.segments.setdefault(name, {})[start] = (stop, kl, nll)

    def _write(self, payload: dict) -> None:
        """One checksummed line. A write that fails (a full disk, a removed folder) stops the journal, not the
        audit: the lines before it stay usable for a resume (a torn last line fails its checksum and is skipped)."""
        if self._stream is None:
            return
        try:
            self._write_line(payload)
        except OSError as error:
            self._stop(error)

    def _write_line(self, payload: dict) -> None:
        self._stream.write(json.dumps({"payload": payload, "sha256": _digest(payload)}) + "\n")
        self._stream.flush()

    def _stop(self, error: OSError) -> None:
        self.stopped = error.strerror or str(error)
        stream, self._stream = self._stream, None
        try:
            stream.close()
        except OSError:
            pass  # the unflushed rest is lost, which the checksums account for
        self.notice(f"the resume journal {self.path} stopped ({self.stopped}): the results measured before stay "
                    "there for a resume; the audit goes on without keeping more")

    def get(self, name: str, start: int, stop: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Numbers of sequences [start, stop) for `name`, if recorded segments cover exactly that range."""
        segments = self.segments.get(name, {})
        kl, nll, at = [], [], start
        while at < stop and at in segments:
            end, seg_kl, seg_nll = segments[at]
            kl.append(seg_kl)
            nll.append(seg_nll)
            at = end
        if at != stop:
            return None
        return np.concatenate(kl), np.concatenate(nll)

    def record(self, name: str, start: int, stop: int, kl, nll) -> None:
        kl, nll = np.asarray(kl, dtype=np.float64), np.asarray(nll, dtype=np.float64)
        self._keep(name, start, stop, kl, nll)
        self._write({"name": name, "start": start, "stop": stop, "kl": kl.tolist(), "nll": nll.tolist()})

    def close(self, finished: bool) -> None:
        """Close; a finished audit's journal is removed (its numbers now live in the result)."""
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError as error:
                self.notice(f"the resume journal {self.path} could not be closed ({error.strerror or error})")
            self._stream = None
        if finished:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _is_record(record: Any) -> bool:
    """A finished (probe, sequence range) record with every field present, typed, in range and finite."""
    if not isinstance(record, dict) or set(record) != RECORD_FIELDS or not isinstance(record["name"], str):
        return False
    start, stop, kl, nll = record["start"], record["stop"], record["kl"], record["nll"]
    if not all(type(n) is int for n in (start, stop)) or not 0 <= start < stop <= MAX_SEQUENCES:
        return False
    if not (isinstance(kl, list) and isinstance(nll, list) and len(kl) == len(nll) == stop - start):
        return False
    return all(type(x) in (int, float) and math.isfinite(x) for x in (*kl, *nll))
