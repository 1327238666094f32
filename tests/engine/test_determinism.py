"""The same inputs give identical JSON on CPU across runs (separate processes), timings aside."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from determinism import audit_json, numbers  # noqa: E402


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_two_runs_of_one_audit_agree_in_every_number(tmp_path):
    args = ["demo", "--pairs", "all", "--tokens", "2048", "--seq-len", "128", "--prune-k", "2"]
    first, second = (numbers(audit_json(args, tmp_path, run)) for run in (0, 1))
    assert len(first) > 500
    assert first == second
