"""Untrusted JSON in, output files out: both safe for unattended use.

    document = read_json(path, what="cache entry")      # JsonError (an InputError): one line, never a traceback
    with atomic_output(path) as stream:                 # temp file beside the target, fsync, os.replace
        stream.write(text)

Reading: the file must be a regular file (a FIFO or device would block or never end) of at
most `max_bytes`, UTF-8, valid JSON and not nested too deeply; every failure names the file
and the fix. Writing: the temporary file is made by `mkstemp` in the target's own folder
(exclusive create: a planted symlink cannot redirect it), flushed to disk, then renamed over
the target, so a reader or a killed run sees the old file or the new one, never half of one;
on any failure the temporary file (and any folder this call created) is removed. A target
that is a folder, or whose folder is missing, is a one-line `OutputError`. Output file names
come only from the caller's path, never from the content. No torch, no numpy.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Optional

from .errors import InputError

MAX_BYTES = 64 * 1024 * 1024  # the cap on every untrusted input file (JSON here, junit XML in junit.py)


class JsonError(InputError):
    """A JSON file that cannot be used; `reason` is the short cause (e.g. 'truncated JSON ...')."""

    def __init__(self, path: str, reason: str, fix: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}; {fix}")


class OutputError(InputError, OSError):
    """An output file that cannot be written. Also an OSError, so callers catching OSError still do."""


# ---------------------------------------------------------------- reading

def read_json(path: str | os.PathLike, *, what: str = "JSON file", max_bytes: int = MAX_BYTES,
              fix: Optional[str] = None) -> Any:
    """The parsed JSON of `path`, or a one-line `JsonError` naming the file, the problem and `fix`."""
    name = os.fspath(path)
    fix = fix or f"pass a complete {what} written by swapkl"
    data = _read_capped(name, what, max_bytes, fix)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JsonError(name, f"{what} is not UTF-8 text ({error.reason} at byte {error.start})", fix) from None
    return parse_json(text, name, what=what, fix=fix)


def parse_json(text: str, name: str, *, what: str = "JSON", fix: str = "fix or regenerate it") -> Any:
    """`json.loads` whose every failure (malformed, truncated, nested too deeply, oversized number) is a one-line
    `JsonError` naming `name` (a file, or e.g. 'ids.jsonl line 3'): for callers that read the text themselves."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        ended = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
        where = f"{'' if error.msg.endswith(' at') else ' at'} line {error.lineno} column {error.colno}"
        raise JsonError(name, f"{'truncated' if ended else 'malformed'} JSON in {what} ({error.msg}{where})",
                        fix) from None
    except RecursionError:
        raise JsonError(name, f"{what} is nested too deeply to read", fix) from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise JsonError(name, f"unreadable JSON in {what} ({str(error).splitlines()[0][:100]})", fix) from None


def _read_capped(name: str, what: str, max_bytes: int, fix: str) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not hang; fstat below refuses anything but a regular file.
        handle = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise JsonError(name, f"no such {what}", fix) from None
    except OSError as error:
        raise JsonError(name, f"cannot read {what} ({error.strerror or error})", fix) from None
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(handle)
        if not stat.S_ISREG(info.st_mode):
            raise JsonError(name, f"{what} is not a regular file", fix)
        raise JsonError(name, f"{what} of {info.st_size} bytes is over the {max_bytes} byte limit", fix)
    with os.fdopen(handle, "rb") as stream:
        try:
            data = stream.read(max_bytes + 1)
        except OSError as error:
            raise JsonError(name, f"cannot read {what} ({error.strerror or error})", fix) from None
    if len(data) > max_bytes:  # it grew after the size check
        raise JsonError(name, f"{what} is over the {max_bytes} byte limit", fix)
    return data


# ---------------------------------------------------------------- writing

def check_output(path: str | os.PathLike, *, make_parents: bool = False) -> Path:
    """Fail early, in one line, for a path that cannot be an output file: a folder, or in a missing folder."""
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise OutputError(f"cannot write {str(path)!r}: name a file, e.g. {target / 'out.json'}")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder; name a file inside it, e.g. {target / 'out.json'}")
    folder = _existing_ancestor(target.parent) if make_parents else target.parent
    if not folder.exists():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist (create it first)")
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: {folder} is not a folder")
    return target


@contextmanager
def atomic_output(path: str | os.PathLike, *, binary: bool = False, make_parents: bool = False) -> Iterator[IO]:
    """A stream whose content replaces `path` whole when the block ends without error, and is discarded otherwise.

    The target's mode follows the umask (not mkstemp's 0600). A target that is a symlink is replaced by the
    file, never followed: nothing is written outside the path named. OSErrors become `OutputError`.
    """
    target = check_output(path, make_parents=make_parents)
    created = _make_folders(target) if make_parents else []
    temporary, done = None, False
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
        done = True
    except OSError as error:
        if isinstance(error, OutputError):
            raise
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        if not done:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            for folder in reversed(created):
                _remove_empty(folder)
    _sync_folder(target.parent)


def write_text(path: str | os.PathLike, text: str, *, make_parents: bool = False) -> Path:
    with atomic_output(path, make_parents=make_parents) as stream:
        stream.write(text)
    return Path(path)


def _existing_ancestor(folder: Path) -> Path:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _make_folders(target: Path) -> list[Path]:
    """Create the target's missing folders, outermost first; returns them so a failed write can remove them."""
    missing = []
    folder = target.parent
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    created = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise
                continue  # a concurrent run made it: theirs, not ours to remove
            created.append(folder)
    except OSError as error:
        for folder in reversed(created):
            _remove_empty(folder)
        raise OutputError(f"cannot write {target}: cannot create folder {folder} ({error.strerror or error})") \
            from None
    return created


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (someone else wrote there meanwhile) or gone: leave it


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _umask() -> int:
    """The process umask, read without changing it where the system says it (Linux); else set and restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # briefly: a file another thread creates meanwhile is private, never world-writable
    os.umask(mask)
    return mask
