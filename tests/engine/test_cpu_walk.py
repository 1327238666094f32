"""The fast path's subtrees walked by several CPU threads: the one-thread numbers, bit for bit; failures stop it."""

import threading

import pytest
import torch
from test_engine import assert_same, every_probe
from tiny_models import ADAPTED_FAMILIES, random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.engine.cpu_walk import Stopped, subtree_workers, walk_subtrees


def _measured(model, ids, probes, threads, **options):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return engine.measure(model, ids, probes, path="fast", batch_size=2, **options)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("family", ["gpt_neox", "llama", "gemma3_text"])
def test_three_workers_give_the_one_thread_numbers_bit_for_bit(family):
    model = tiny_model(family)
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(3, 16)
    alone = _measured(model, ids, probes, 1)
    walked = _measured(model, ids, probes, 3)
    assert walked.plan["threads"] == 3
    for probe in probes:
        assert (walked[probe].kl_per_seq == alone[probe].kl_per_seq).all(), probe.name
        assert (walked[probe].nll_per_seq == alone[probe].nll_per_seq).all(), probe.name
    assert_same(walked, engine.measure(model, ids, probes, path="reference", batch_size=2), probes)


def test_the_caller_keeps_its_thread_count():
    model = tiny_model(ADAPTED_FAMILIES[0])
    before = torch.get_num_threads()
    _measured(model, random_ids(2, 8), every_probe(model.config.num_hidden_layers), 2)
    assert torch.get_num_threads() == before


def test_one_worker_where_threads_would_not_help_or_are_not_safe():
    cpu = torch.device("cpu")
    torch_threads = torch.get_num_threads()
    assert subtree_workers(cpu, False, 1, 50) == torch_threads
    assert subtree_workers(cpu, False, 1, 1) == 1  # one subtree: nothing to share
    assert subtree_workers(cpu, True, 1, 50) == 1  # spread over devices, or compiled kernels
    assert subtree_workers(cpu, False, 4, 50) == 1  # stacked probes: the GPU's plan
    assert subtree_workers(torch.device("meta"), False, 1, 50) == 1


def test_a_failure_is_raised_and_stops_the_other_tasks():
    started = threading.Event()
    stopped = []

    def slow(check):
        started.set()
        try:
            for _ in range(10_000):
                check()
                threading.Event().wait(0.001)
        except Stopped:
            stopped.append(True)
            raise

    def fails(check):
        started.wait(5)
        raise ValueError("second task")

    ran = []

    def later(check):
        ran.append(True)

    with pytest.raises(ValueError, match="second task"):
        walk_subtrees([slow, fails] + [later] * 5, workers=2)
    assert stopped == [True] and ran == []  # the slow task stopped at its next check; the queued ones never ran
