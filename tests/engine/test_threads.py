"""--threads, and the default that leaves busy cores and other xdist workers alone."""

import pytest
import torch

from pytest_swapkl.engine import threads as T


@pytest.mark.parametrize("cores, load, workers, expected", [
    (2, 0.1, 1, 2),  # quiet: every core
    (2, 1.2, 1, 1),  # one core busy elsewhere
    (2, 11.0, 1, 1),  # the loaded machine of issue 37: never fewer than one
    (16, 3.4, 1, 13),
    (2, 2.0, 2, 1),  # two xdist workers on two cores: one each, whatever the load says
    (8, None, 1, 8),  # no load average (not on Unix)
])
def test_default_threads(cores, load, workers, expected):
    assert T.default_threads(cores, load, workers) == expected


def test_the_block_gets_its_threads_and_the_process_its_own_back(monkeypatch):
    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(T, "_load", lambda: 1.6)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with T.cpu_threads(None) as (threads, why):
        assert threads == 1 == torch.get_num_threads()
        assert why == "using 1 of 2 CPU threads (load average 1.6); --threads N sets it"
    assert torch.get_num_threads() == before
    with T.cpu_threads(3) as (threads, why):
        assert threads == 3 == torch.get_num_threads() and why is None


def test_xdist_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr(T, "usable_cores", lambda: 8)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert T.chosen_threads(None) == (2, "using 2 of 8 CPU threads (4 xdist workers); --threads N sets it")


def test_the_command_asks_for_passive_openmp_waiting_before_torch_starts():
    import subprocess
    import sys

    code = ("import os, sys; os.environ.pop('OMP_WAIT_POLICY', None); import pytest_swapkl.commands.cli; "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "False"]
