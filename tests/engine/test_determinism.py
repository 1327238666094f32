"""The same inputs give identical JSON on CPU across runs (separate processes), timings aside.

benchmarks/gpu/determinism.py measures the same spread on a GPU, where it need not be zero."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def audit_json(audit_args: list[str], folder: Path, run: int) -> dict:
    """`swapkl audit` in a fresh process, its JSON document."""
    out = folder / f"run{run}.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "pytest_swapkl", "audit", *audit_args, "--no-resume", "--json",
                    str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_two_runs_of_one_audit_agree_in_every_number(tmp_path):
    args = ["demo", "--pairs", "all", "--tokens", "2048", "--seq-len", "128", "--prune-k", "2"]
    first, second = (numbers(audit_json(args, tmp_path, run)) for run in (0, 1))
    assert len(first) > 500
    assert first == second
