"""The `swapkl` command.

    swapkl audit MODEL [--data SOURCE] [--pairs SPEC] [--json PATH] ...   both protocols + removal, as a table
    swapkl families                                                      model families with a fast path
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from . import __version__
from .errors import InputError

DEFAULTS = {"data": "demo", "pairs": "adjacent", "tokens": 8192, "seq_len": 256, "seed": 0, "dtype": "auto",
            "device": "auto", "replacement_reduce": "mean", "bootstrap": 1000}


class UsageError(InputError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _add_audit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint folder, hub id (owner/name) or 'demo', the bundled model")
    parser.add_argument("--data", default=DEFAULTS["data"],
                        help="calibration SOURCE (default: demo, the bundled corpus)")
    parser.add_argument("--pairs", default=DEFAULTS["pairs"],
                        help="adjacent | all | window:K | i-j,... (default: adjacent)")
    parser.add_argument("--tokens", type=int, default=DEFAULTS["tokens"], help="calibration tokens (default: 8192)")
    parser.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"], help="tokens per sequence (default: 256)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="chooses chunks and bootstrap draws")
    parser.add_argument("--dtype", default=DEFAULTS["dtype"], help="auto | float32 | bfloat16 | float16")
    parser.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    parser.add_argument("--replacement-reduce", default=DEFAULTS["replacement_reduce"],
                        choices=["mean", "max", "min"],
                        help="how R combines replacement(i->j) and replacement(j->i) (default: mean)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULTS["bootstrap"],
                        help="bootstrap resamples for intervals")
    parser.add_argument("--path", default="auto", choices=["auto", "fast", "reference"], help="engine path")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per batch (default: from memory)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the audit JSON (schema swapkl/1) here")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow pickle (.bin) weights: only if you trust them")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the checkpoint's own code: only if you trust it")


def _audit(args: argparse.Namespace) -> int:
    # Heavy imports only when an audit actually runs.
    from .runner import run_audit
    from .table import render_audit

    for name in ("tokens", "seq_len", "bootstrap"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    progress = _Progress() if sys.stderr.isatty() else None
    document, audit = run_audit(args, progress=progress)
    if progress:
        progress.close()
    print(render_audit(document, audit))
    if args.json:
        from .results import write_json

        print(f"\naudit JSON written to {write_json(document, args.json)}")
    return 0


def _families(_: argparse.Namespace) -> int:
    from .adapters import ENTRY_POINT_GROUP, registered_model_types

    print("model_type values with a fast-path adapter:")
    for model_type in registered_model_types():
        print(f"  {model_type}")
    print(f"others run on the reference path; add a family through the entry-point group {ENTRY_POINT_GROUP!r}")
    return 0


class _Progress:
    """A one-line progress bar on a terminal's stderr, shown once a run has taken more than a second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed < 1.0 or total == 0 or (now - self.drawn_at < 0.2 and done < total):
            return
        self.shown, self.drawn_at = True, now
        fraction = done / total
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        bar = "#" * int(30 * fraction)
        sys.stderr.write(f"\rswapkl [{bar:<30}] {100 * fraction:5.1f}%  {elapsed:5.0f}s elapsed, ~{eta:4.0f}s left")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swapkl", description="Replacement vs interchange layer-redundancy audits.")
    parser.add_argument("--version", action="version", version=f"pytest-swapkl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    audit = commands.add_parser("audit", help="run both protocols and removal on a model")
    _add_audit_options(audit)
    audit.set_defaults(run=_audit)
    commands.add_parser("families", help="list model families with a fast-path adapter").set_defaults(run=_families)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except KeyboardInterrupt:
        print("\nswapkl: interrupted", file=sys.stderr)
        return 130
    except InputError as error:
        return _fail(str(error))


def _fail(message: str) -> int:
    print(f"swapkl: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
