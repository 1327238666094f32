"""The `swapkl` command. `swapkl families` lists the model families with a fast path."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _families(_: argparse.Namespace) -> int:
    from .adapters import ENTRY_POINT_GROUP, registered_model_types

    print("model_type values with a fast-path adapter:")
    for model_type in registered_model_types():
        print(f"  {model_type}")
    print(f"others run on the reference path; add a family through the entry-point group {ENTRY_POINT_GROUP!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swapkl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pytest-swapkl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("families", help="list model families with a fast-path adapter").set_defaults(run=_families)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
