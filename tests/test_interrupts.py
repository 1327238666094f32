"""SIGTERM behaves like Ctrl-C: a real `swapkl audit` and a real pytest run, terminated mid-audit, leave nothing
half-written, say so in one line and exit non-zero; the journal they leave has only whole lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_swapkl.engine.journal import FORMAT, _digest
from pytest_swapkl.interrupts import TERMINATED

WORK = ["--data", "ids.npy", "--pairs", "all", "--batch-size", "2", "--bootstrap", "10"]


@pytest.fixture
def folder(tmp_path, tiny_model):
    from tiny_models import random_ids

    tiny_model("llama", n_layers=6).save_pretrained(tmp_path / "tiny")
    np.save(tmp_path / "ids.npy", random_ids(400, 32).numpy())  # far more work than the test waits for
    return tmp_path


def journal_lines(where: Path) -> list[str]:
    return [line for path in where.rglob("*.jsonl") for line in path.read_text().splitlines()]


def wait_for_records(process: subprocess.Popen, where: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(journal_lines(where)) < count + 1 and time.monotonic() < deadline:
        assert process.poll() is None, "the audit ended before it could be terminated: give it more work"
        time.sleep(0.05)


def assert_whole_journal(where: Path) -> None:
    lines = journal_lines(where)
    assert len(lines) > 1
    for line in lines:
        entry = json.loads(line)  # a line torn by the signal would not parse
        assert entry["sha256"] == _digest(entry["payload"])
    assert json.loads(lines[0])["payload"]["format"] == FORMAT


def test_sigterm_ends_swapkl_audit_like_ctrl_c(folder):
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pytest_swapkl", "audit", "tiny", *WORK,
                                "--json", "out.json"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    wait_for_records(process, folder / "cache", 3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == TERMINATED == 143
    stderr = process.stderr.read()
    assert stderr.strip().splitlines()[-1] == "swapkl: terminated by SIGTERM" and "Traceback" not in stderr
    assert not (folder / "out.json").exists() and not list(folder.glob(".out.json*"))  # nothing half-written
    assert_whole_journal(folder / "cache")


def test_sigterm_ends_a_pytest_run_like_ctrl_c(folder):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    options = [f"--swapkl-{flag[2:]}={value}" for flag, value in zip(WORK[::2], WORK[1::2])]
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--swapkl-model=tiny", *options,
                                "--swapkl-json=out.json"], cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    wait_for_records(process, folder / ".pytest_cache", 3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 2  # pytest's exit code for an interrupted run, as after Ctrl-C
    output = process.stdout.read()
    said = [line.strip("! ") for line in output.splitlines() if line.startswith("!!!")]  # as after Ctrl-C
    assert said == ["pytest_swapkl.interrupts.Terminated: terminated by SIGTERM"], output
    assert "INTERNALERROR" not in output
    assert not (folder / "out.json").exists()
    assert_whole_journal(folder / ".pytest_cache")
