"""The CPU's head + KL chunk width (temporaries glibc keeps) and glibc's kept memory change no number."""

import pytest
import torch
from test_engine import assert_same, every_probe
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.engine import divergence
from pytest_swapkl.engine.divergence import Head
from pytest_swapkl.engine.memory import keep_freed_memory

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_cpu_width_bounds_a_chunks_temporary_and_keeps_at_least_256_columns():
    head = Head([], torch.zeros(49152, 8), None, None, 16384)
    assert head.cpu_width(1024) * 1024 * 4 <= divergence.CPU_TEMPORARY
    assert head.cpu_width(1) == 16384 and head.cpu_width(10 ** 9) == 256
    assert head.chunks(4096)[-1] == (45056, 49152) and len(head.chunks()) == 3


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
def test_narrow_cpu_chunks_equal_the_reference(monkeypatch, family):
    """Chunks a few columns wide (as 1024 rows of a 49k head get on the CPU) give the reference's numbers."""
    model, ids = tiny_model(family), random_ids(3, 12)
    probes = every_probe(model.config.num_hidden_layers)
    reference = engine.measure(model, ids, probes, path="reference")
    monkeypatch.setattr(Head, "cpu_width", lambda self, rows: 7)
    narrow = engine.measure(model, ids, probes, path="fast")
    assert_same(narrow, reference, probes)


def test_kept_memory_is_asked_once_and_changes_no_number():
    model, ids = tiny_model("llama"), random_ids(2, 10)
    probes = every_probe(model.config.num_hidden_layers)
    first = engine.measure(model, ids, probes, path="fast")
    assert keep_freed_memory() in (True, False) and keep_freed_memory() == keep_freed_memory()
    again = engine.measure(model, ids, probes, path="fast")
    for probe in probes:
        assert again.kl(probe) == first.kl(probe)


@pytest.mark.parametrize("scale", [1.0, 200.0, -200.0])
def test_the_cpu_fold_with_the_bases_shift_equals_the_running_maximum_fold(scale):
    """The CPU's three-pass fold (kept base probabilities, the base's shift) gives the running-maximum fold's KL and
    NLL, also where the probe's logits are far above (exponentials overflow) or far below (underflow) the base's."""
    torch.manual_seed(0)
    head = Head([], torch.randn(300, 16), None, None, 64)
    base = divergence.base_distribution(head, torch.randn(2, 5, 16))
    assert base.probs is not None
    probe, labels = torch.randn(2, 5, 16) * scale, torch.randint(0, 300, (2, 4))
    fast = divergence.kl_and_nll(head, base, probe, labels)
    folded = divergence.kl_and_nll(head, base, probe, labels, step=lambda *args: divergence.chunk_step(*args))
    for mine, theirs in zip(fast, folded):
        assert torch.allclose(mine, theirs, rtol=1e-6, atol=1e-6)
