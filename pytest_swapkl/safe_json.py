"""Untrusted JSON in: safe for unattended use.

    document = read_json(path, what="cache entry")      # JsonError (an InputError): one line, never a traceback

The file is read through `safe_files.read_input` (a regular file of at most `max_bytes`), must be
UTF-8 (a byte-order mark is dropped), valid JSON and not nested too deeply; every failure names the
file and the fix. Writing outputs lives in `safe_files` (`atomic_output`, `write_text`). No torch, no numpy.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from .errors import InputError
from .limits import MAX_JSON_BYTES
from .safe_files import UnreadableFile, decode_text, read_input

MAX_BYTES = MAX_JSON_BYTES  # the cap on every untrusted JSON or XML file (JSON here, junit XML in junit.py)


class JsonError(InputError):
    """A JSON file that cannot be used; `reason` is the short cause (e.g. 'truncated JSON ...')."""

    def __init__(self, path: str, reason: str, fix: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}; {fix}")


# ---------------------------------------------------------------- reading

def read_json(path: str | os.PathLike, *, what: str = "JSON file", max_bytes: int = MAX_BYTES,
              fix: Optional[str] = None) -> Any:
    """The parsed JSON of `path`, or a one-line `JsonError` naming the file, the problem and `fix`."""
    name = os.fspath(path)
    fix = fix or f"pass a complete {what} written by swapkl"
    try:
        text = decode_text(read_input(name, what=what, max_bytes=max_bytes, fix=fix), name, what=what, fix=fix)
    except UnreadableFile as error:
        raise JsonError(name, error.reason, fix) from None
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
