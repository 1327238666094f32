"""`swapkl baselines`: the audits saved with `pytest --swapkl-save NAME`, newest first.

    swapkl baselines [--cache-dir .pytest_cache] [--json]

They live in `CACHE_DIR/d/swapkl/baselines/` (pytest's cache folder, `--cache-dir` as pytest's
own option spells it). A damaged file is listed with its problem instead of ending the listing.
"""

from __future__ import annotations

import argparse
import json

from ..audit.baselines import default_folder, describe, saved


def add_baselines_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=".pytest_cache", metavar="DIR",
                        help="pytest's cache folder (pytest's --cache-dir / ini cache_dir; default .pytest_cache)")
    parser.add_argument("--json", action="store_true", help="print the baselines' details as JSON")
    parser.set_defaults(run=run_baselines)


def run_baselines(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    folder = default_folder(args.cache_dir)
    if not folder.is_dir():  # nothing saved yet is an answer, not an error
        print(f"no saved baselines in {folder}: save one with pytest --swapkl-model=... --swapkl-save NAME "
              "(or pass the --cache-dir pytest used)")
        return 0
    records = sorted(saved(folder), key=lambda r: str(r.get("saved_at") or ""), reverse=True)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "audit"} for r in records], indent=2, default=str))
        return 0
    rows = [describe(r) for r in records]
    if not rows:
        print(f"no saved baselines in {folder}")
        return 0
    if not any(row["problem"] for row in rows):
        for row in rows:
            del row["problem"]
    print(tabulate(rows, headers="keys", disable_numparse=True))
    return 0
