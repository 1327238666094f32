"""Every file swapkl reads for the user and every file it writes for them, through one door each.

    data = read_input(path, what="calibration file", max_bytes=limits.MAX_TEXT_BYTES, fix="...")
    with open_input(path, what="token array", max_bytes=..., fix="...") as stream: ...
    check_outputs([("--json", args.json)], inputs=[("the model folder", model), ("the data", data)])
    with atomic_output(path) as stream: stream.write(text)

Reading: only a regular file is opened (a FIFO, a character device such as /dev/zero, also behind a
symlink, would block or never end; it is refused at once), opened non-blocking so that even the check
cannot hang, and never more than `max_bytes` of it; text is UTF-8 with an optional byte-order mark, and a
decoding error names the file and the byte. Every failure is an `UnreadableFile`: one line, problem and fix.

Writing: `check_outputs` is the one check every command and the plugin run before any work starts: each
output is absent or a regular file (never a folder, FIFO or device, links resolved), its folder exists (or
can be made) and is writable, no two outputs share a file, and no output is, or lies inside, an input of
the run (model files, data, junit inputs, baselines; compared after resolving links). `atomic_output`
then writes through a temporary file beside the target (exclusive create: a planted symlink cannot
redirect it), fsync and `os.replace`, so a reader or a killed run sees the old file or the new one, never
half of one; a target that is a symlink is replaced, never followed. `locked` holds an exclusive lock file
around a block (the cache's entries, the file-digest memo). No torch, no numpy.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Callable, Iterable, Iterator, Optional, Union

from .errors import InputError

PathLike = Union[str, os.PathLike]


class UnreadableFile(InputError):
    """An input file that cannot be read; `reason` is the short cause, e.g. 'data is not a regular file (a FIFO)'."""

    def __init__(self, path: str, reason: str, fix: str):
        self.path, self.reason, self.fix = path, reason, fix
        super().__init__(f"{path}: {reason}; {fix}")


class OutputError(InputError, OSError):
    """An output file that cannot be written. Also an OSError, so callers catching OSError still do."""


# ---------------------------------------------------------------- reading

def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages: 'a folder', 'a FIFO', 'a character device', ..."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def open_input(path: PathLike, *, what: str, max_bytes: int, fix: str) -> BinaryIO:
    """`path` opened for binary reading, once it is known to be a regular file of at most `max_bytes`."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not hang; fstat below refuses anything but a regular file.
        handle = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise UnreadableFile(name, f"no such {what}", fix) from None
    except OSError as error:
        raise UnreadableFile(name, f"cannot read {what} ({error.strerror or error})", fix) from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(name, f"{what} is not a regular file ({file_kind(info.st_mode)})", fix)
        if info.st_size > max_bytes:
            raise UnreadableFile(name, f"{what} of {info.st_size} bytes is over the {max_bytes} byte limit", fix)
    except BaseException:
        os.close(handle)
        raise
    return os.fdopen(handle, "rb")


def _read_sized(stream: BinaryIO, max_bytes: int) -> bytes:
    """At most `max_bytes` + 1 bytes, asking for buffers as large as the file, not as the limit (a 13 KB file under
    a 4 GiB limit must not reserve 4 GiB); a file that grows while being read is read on, in 16 MiB pieces."""
    first = stream.read(min(os.fstat(stream.fileno()).st_size, max_bytes) + 1)
    pieces, total = [first], len(first)
    while first and total <= max_bytes:
        first = stream.read(min(1 << 24, max_bytes + 1 - total))
        pieces.append(first)
        total += len(first)
    return b"".join(pieces) if len(pieces) > 1 else pieces[0]


def read_input(path: PathLike, *, what: str, max_bytes: int, fix: str) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (also if it grows while being read)."""
    name = os.fspath(path)
    with open_input(name, what=what, max_bytes=max_bytes, fix=fix) as stream:
        try:
            data = _read_sized(stream, max_bytes)
        except OSError as error:
            raise UnreadableFile(name, f"cannot read {what} ({error.strerror or error})", fix) from None
    if len(data) > max_bytes:
        raise UnreadableFile(name, f"{what} is over the {max_bytes} byte limit", fix)
    return data


def decode_text(data: bytes, name: str, *, what: str, fix: str, offset: int = 0) -> str:
    """UTF-8 text, a leading byte-order mark dropped (as Python's and the JSON readers' utf-8-sig do).

    A decoding error names the file and the byte, counted from the file's start (`offset`: where `data` began)."""
    try:
        return data.decode("utf-8-sig" if offset == 0 else "utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFile(name, f"{what} is not UTF-8 text ({error.reason} at byte {offset + error.start})",
                             fix) from None


# ---------------------------------------------------------------- checking outputs

Named = tuple[str, Optional[PathLike]]  # (how messages name it: a flag, or 'the model folder'; its path or None)


def check_output(path: PathLike, *, make_parents: bool = False) -> Path:
    """Fail early, in one line, for a path that cannot be an output file: not a plain file name; a folder, FIFO or
    device (links resolved); in a missing folder (unless `make_parents`), or in one that is not writable."""
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise OutputError(f"cannot write {str(path)!r}: name a file, e.g. {target / 'out.json'}")
    try:
        info = os.stat(target)  # follows a symlink: what a link points to is judged, though the link is replaced
    except (FileNotFoundError, NotADirectoryError):
        info = None  # absent, or a dangling link (a file where a folder should be is named below)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {target}: it is a folder; name a file inside it, e.g. {target / 'out.json'}")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputError(f"cannot write {target}: it is {file_kind(info.st_mode)}, not a regular file; "
                          "name a regular file")
    folder = _existing_ancestor(target.parent) if make_parents else target.parent
    if not folder.exists():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist (create it first)")
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: folder {folder} is not writable; write the file elsewhere")
    return target


def check_outputs(outputs: Iterable[Named], inputs: Iterable[Named] = (), *, make_parents: bool = False) -> None:
    """The one check of a run's outputs, before any work: each passes `check_output`, no two are one file, and
    none is an input of the run or inside an input folder (links resolved). `inputs` are specs as the user gave
    them; those that are no local path (a hub id, `demo`) are skipped. One-line `OutputError`s."""
    sources = _existing(inputs)
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if not path:
            continue
        check_output(path, make_parents=make_parents)
        real = os.path.realpath(os.fspath(path))
        if real in seen:
            raise OutputError(f"{flag} and {seen[real]} both write {path}: give each output its own file")
        seen[real] = flag
        for what, source in sources:
            if real == source:
                raise OutputError(f"{flag} {path} is {what}, an input of this run: refusing to overwrite it; "
                                  "write the output elsewhere")
            if os.path.isdir(source) and os.path.commonpath([real, source]) == source:
                raise OutputError(f"{flag} {path} is inside {what} {source}, an input of this run: writing there "
                                  "would change it; write the output elsewhere")


def _existing(inputs: Iterable[Named]) -> list[tuple[str, str]]:
    """(what, resolved path) of the inputs that name an existing local file or folder (hub ids and such drop out)."""
    found = []
    for what, spec in inputs:
        if not spec:
            continue
        text = os.path.expanduser(os.fspath(spec))
        try:
            if os.path.exists(text):
                found.append((what, os.path.realpath(text)))
        except (OSError, ValueError):  # a name the file system cannot even look up is no file of ours
            continue
    return found


# ---------------------------------------------------------------- writing

@contextmanager
def atomic_output(path: PathLike, *, binary: bool = False, make_parents: bool = False) -> Iterator[IO]:
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
        os.chmod(temporary, 0o666 & ~umask())
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


# Why a write fails when the disk or its permissions are the cause: one line naming the path, never a traceback.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
_DISK_TEXTS = {"no space left on device": "No space left on device", "storagefull": "No space left on device",
               "disk quota exceeded": "Disk quota exceeded", "permission denied": "Permission denied",
               "read-only file system": "Read-only file system", "file too large": "File too large"}


def disk_failure(error: BaseException) -> Optional[str]:
    """'No space left on device' (and the like) when `error` is a write failing for want of space or permission,
    else None: an OSError by its errno, or the error of a library that wraps one in its own type (safetensors'
    SafetensorError says "I/O error: No space left on device (os error 28)")."""
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        return error.strerror or os.strerror(error.errno)
    text = str(error).lower()
    return next((reason for clue, reason in _DISK_TEXTS.items() if clue in text), None)


@contextmanager
def atomic_folder(path: PathLike, *, what: str) -> Iterator[Path]:
    """A temporary folder beside `path` (absent, or an empty folder), renamed to `path` when the block ends
    without error and removed otherwise: a full disk or an error leaves no half-written folder (a kill leaves at
    most the hidden temporary one). A disk or permission failure (`disk_failure`) is one `OutputError` naming
    `path`."""
    target = Path(path)
    building: Optional[Path] = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{target.name[:100]}.", suffix=".tmp", dir=target.parent))
        yield building
        os.chmod(building, 0o777 & ~umask())
        if target.is_dir():
            target.rmdir()  # empty: the command checked it before any work
        os.replace(building, target)
        building = None
    except Exception as error:
        reason = disk_failure(error)
        if reason is None or isinstance(error, OutputError):
            raise
        raise OutputError(f"cannot write {what} {target}: {reason}; free space there, or write it elsewhere") from None
    finally:
        if building is not None:
            shutil.rmtree(building, ignore_errors=True)


def write_text(path: PathLike, text: str, *, make_parents: bool = False) -> Path:
    with atomic_output(path, make_parents=make_parents) as stream:
        stream.write(text)
    return Path(path)


def append_text(path: PathLike, text: str, *, max_bytes: int, make_parents: bool = False) -> Path:
    """An append made atomic: the old content (at most `max_bytes`, else a one-line refusal) and `text` written
    whole through `atomic_output`, so a full disk or a kill leaves the old file, never a torn one."""
    target = check_output(path, make_parents=make_parents)
    old = ""
    if target.exists():
        old = decode_text(read_input(target, what="file to append to", max_bytes=max_bytes,
                                     fix="name a smaller file or a new one"), str(target), what="file to append to",
                          fix="name a UTF-8 text file or a new one")
    return write_text(target, old + text, make_parents=make_parents)


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


def umask() -> int:
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


@contextmanager
def locked(path: Path, notice: Callable[[str], None], waiting: Optional[str]) -> Iterator[None]:
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
