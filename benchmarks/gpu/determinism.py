"""Run-to-run spread: the same `swapkl audit` N times in fresh processes, every number compared.

    python benchmarks/gpu/determinism.py --runs 3 -- demo --pairs all --device cuda

Prints, per kind of number (pair distances, removal KL, perplexities, statistics), the largest
absolute and relative difference from the first run; timings are left out. On CPU every number
is identical (tests/engine/test_determinism.py asserts it); on a GPU, kernels may pick other reduction
orders from run to run, and this measures how far that moves the audit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]
VOLATILE = ("seconds", "measure_seconds", "created", "cache_key")


def numbers(node, path: str = "") -> dict[str, float]:
    """Every number in a document by its path, timings left out."""
    found = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in VOLATILE:
                found.update(numbers(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.update(numbers(value, f"{path}[{index}]"))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        found[path] = float(node)
    return found


def kind(path: str) -> str:
    for marker in ("replacement", "interchange", "removal", "ppl", "spearman", "kendall", "jaccard", "ci"):
        if marker in path.split(".")[-1] or f".{marker}" in path:
            return marker
    return "other"


def audit_json(audit_args: list[str], folder: Path, run: int) -> dict:
    out = folder / f"run{run}.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "pytest_swapkl", "audit", *audit_args, "--no-resume", "--json",
                    str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("audit_args", nargs=argparse.REMAINDER, help="arguments of `swapkl audit`, after --")
    args = parser.parse_args()
    audit_args = [a for a in args.audit_args if a != "--"]
    with tempfile.TemporaryDirectory() as folder:
        runs = [numbers(audit_json(audit_args, Path(folder), run)) for run in range(args.runs)]
    worst: dict[str, list[float]] = {}
    for other in runs[1:]:
        for path, value in runs[0].items():
            delta = abs(other.get(path, math.nan) - value)
            entry = worst.setdefault(kind(path), [0.0, 0.0, 0])
            entry[0] = max(entry[0], delta)
            entry[1] = max(entry[1], delta / abs(value) if value else (0.0 if delta == 0 else math.inf))
            entry[2] += delta != 0
    print(f"swapkl audit {' '.join(audit_args)}: {args.runs} runs, {len(runs[0])} numbers each")
    print(tabulate([[k, f"{v[0]:.3g}", f"{v[1]:.3g}", v[2]] for k, v in sorted(worst.items())],
                   headers=["numbers", "max |difference|", "max relative", "differing (all runs)"]))


if __name__ == "__main__":
    main()
