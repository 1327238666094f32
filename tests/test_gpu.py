"""The engine on a real CUDA GPU: float32 equality as on CPU, bfloat16/float16 close to their own reference."""

import pytest
import torch
from test_engine import assert_same, every_probe
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine

pytestmark = pytest.mark.gpu

GPU_FAMILIES = ["llama", "gpt_neox", "gemma2", "gemma3_text", "qwen3", "opt", "gpt2"]


@pytest.fixture(autouse=True)
def no_tf32():
    """float32 must mean float32: TF32 matmuls would make both paths agree with each other but not be exact."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("family", GPU_FAMILIES)
def test_fast_equals_reference_float32_on_gpu(family):
    model = tiny_model(family).cuda()
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(6, 32)
    reference = engine.measure(model, ids, probes, path="reference", batch_size=3)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=3, vocab_chunk=13)
    assert_same(fast, reference, probes)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["llama", "gemma3_text", "gpt_neox"])
def test_half_precision_close_to_reference_on_gpu(family, dtype):
    """Both paths run the same layers in the same dtype; they differ only in how the head is chunked and how
    the KL is summed, so they agree to within a few bf16/fp16 roundings of the logits."""
    model = tiny_model(family).to("cuda", dtype)
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(6, 32)
    reference = engine.measure(model, ids, probes, path="reference", batch_size=3)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=3, vocab_chunk=13)
    for probe in probes:
        assert fast.kl(probe) == pytest.approx(reference.kl(probe), rel=2e-2, abs=2e-3), probe.name
    assert fast.base_ppl == pytest.approx(reference.base_ppl, rel=1e-2)
    # And against float32: the half-precision audit measures the same thing.
    exact = engine.measure(tiny_model(family).cuda(), ids, probes, path="fast", batch_size=3)
    worst = max(abs(fast.kl(p) - exact.kl(p)) / max(exact.kl(p), 1e-2) for p in probes)
    print(f"{family} {dtype}: worst relative KL error against float32 {worst:.3f}")
    assert worst < 0.25


def test_default_budget_uses_free_gpu_memory():
    model = tiny_model("llama").cuda()
    assert engine.plan_batch_size(model, 512, memory_budget=None) > 1
