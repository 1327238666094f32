"""`swapkl merge SHARD... --json OUT`: the shards of one audit into the audit JSON one process writes."""

from __future__ import annotations

import argparse


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARD", help="shard files of swapkl audit --shard I/N --json")
    parser.add_argument("--json", required=True, help="where the merged audit JSON (schema swapkl/1) goes")
    parser.set_defaults(run=_merge)


def _merge(args: argparse.Namespace) -> int:
    from ..safe_files import check_outputs

    check_outputs([("--json", args.json)], [("a shard", path) for path in args.shards], make_parents=True)
    from ..audit.results import write_json
    from ..audit.sharding import merge_shards, read_shard
    from .table import render_audit

    shards = [(path, read_shard(path)) for path in args.shards]
    document, audit = merge_shards(shards)
    print(render_audit(document, audit))
    print(f"\naudit JSON written to {write_json(document, args.json)}")
    return 0
