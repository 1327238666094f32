"""The one front door of every `swapkl` command: its parser class and how a run ends.

Bad usage and bad input end the same way in every command: one line on stderr
(`swapkl: error: ...`, line breaks inside quoted values escaped) and exit code 2.
Ctrl-C is exit 130 with one line, SIGTERM exit 143 with one line (both after every `finally` ran: nothing
half-written); a reader that leaves a pipe early is not an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from ..console import one_line
from ..errors import InputError
from ..interrupts import TERMINATED, Terminated, sigterm_as_interrupt
from ..options import resolve_defaults
from ..safe_files import disk_failure

INPUT_ERROR = 2
INTERRUPTED = 130


class UsageError(InputError):
    """Bad command-line usage."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with errors as one-line `UsageError`s instead of a usage block and exit."""

    def error(self, message: str) -> None:
        raise UsageError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # the options left out take the contract's values or their defaults (options.resolve_defaults)
        return resolve_defaults(super().parse_args(args, namespace))


def print_error(message: str) -> int:
    """The one error printer: one line on stderr; returns the exit code for bad input."""
    print(f"swapkl: error: {one_line(message)}", file=sys.stderr)
    return INPUT_ERROR


def run_main(build_parser: Callable[[], argparse.ArgumentParser], argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` with the parser ``build_parser`` makes and call the chosen command's ``run(args)``."""
    try:
        with sigterm_as_interrupt():
            args = build_parser().parse_args(None if argv is None else list(argv))
            return args.run(args)
    except Terminated:
        print("swapkl: terminated by SIGTERM", file=sys.stderr)
        return TERMINATED
    except BrokenPipeError:  # e.g. `swapkl report audit.xml | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("\nswapkl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except InputError as error:
        return print_error(str(error))
    except OSError as error:  # a full or read-only disk met by a writer that does not name its path itself
        reason = disk_failure(error)
        if reason is None:
            raise
        return print_error(f"cannot write {error.filename or 'an output file'}: {reason}; free space there, or "
                           "write it elsewhere")
