"""The engine on a real CUDA GPU: float32 equality as on CPU, bfloat16/float16 close to their own reference."""

import pytest
import torch
from test_engine import assert_same, every_probe
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine

pytestmark = pytest.mark.gpu

GPU_FAMILIES = ["llama", "gpt_neox", "gemma2", "gemma3_text", "qwen3", "opt", "gpt2"]


@pytest.fixture(autouse=True, scope="module")
def compile_every_family():
    """One process compiles seven architectures: past dynamo's default of 8 recompiles a function runs eagerly,
    and these tests would then no longer test the compiled kernels."""
    import torch._dynamo

    saved = torch._dynamo.config.cache_size_limit
    torch._dynamo.config.cache_size_limit = 256
    yield
    torch._dynamo.config.cache_size_limit = saved


@pytest.fixture(autouse=True)
def no_tf32():
    """float32 must mean float32: TF32 matmuls would make both paths agree with each other but not be exact."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("family, compile_mode", [(family, "auto") for family in GPU_FAMILIES]
                         + [(family, "off") for family in ("llama", "gemma2", "gpt_neox")])
def test_fast_equals_reference_float32_on_gpu(family, compile_mode):
    """After every optimisation of the fast path (the compiled head + KL step, compiled layers) it still
    measures exactly what the reference does, in float32."""
    model = tiny_model(family).cuda()
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(6, 32)
    reference = engine.measure(model, ids, probes, path="reference", batch_size=3)
    notices = []
    fast = engine.measure(model, ids, probes, path="fast", batch_size=3, vocab_chunk=13, compile=compile_mode,
                          notice=notices.append)
    assert not notices, notices  # compiling did not silently fall back to eager
    assert fast.plan["stack"] > 1  # a tiny model's default plan on CUDA stacks probes into each layer call
    worst = max(abs(fast.kl(p) - reference.kl(p)) for p in probes)
    print(f"{family} compile={compile_mode}: worst |dKL| {worst:.2e}")
    assert_same(fast, reference, probes)


def test_out_of_memory_halves_the_batch_and_retries():
    """A real CUDA out-of-memory: leave free only what one sequence per batch needs, then ask for six."""
    model = tiny_model("llama").cuda()
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(6, 512)

    one, expected = _peak(model, ids, probes, batch_size=1, stack=1)
    per_sequence = _peak(model, ids, probes, batch_size=2, stack=1)[0] - one  # what a further sequence adds
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    ballast = torch.empty(free - one - per_sequence // 2, dtype=torch.uint8, device="cuda")
    notices = []
    try:
        retried = engine.measure(model, ids, probes, path="fast", batch_size=64, stack=1, notice=notices.append)
    finally:
        del ballast
        torch.cuda.empty_cache()
    assert any("CUDA out of memory at --batch-size" in notice for notice in notices), notices
    for probe in probes:
        assert retried.kl(probe) == pytest.approx(expected.kl(probe), abs=1e-6)


def test_out_of_memory_halves_the_stack_first():
    """Stacked probes that do not fit: the stack is halved (the batch kept) until they do, same numbers."""
    model = tiny_model("llama").cuda()
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(2, 512)
    unstacked, expected = _peak(model, ids, probes, batch_size=2, stack=1)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    ballast = torch.empty(free - 4 * unstacked, dtype=torch.uint8, device="cuda")
    notices = []
    try:
        retried = engine.measure(model, ids, probes, path="fast", batch_size=2, stack=64, notice=notices.append)
    finally:
        del ballast
        torch.cuda.empty_cache()
    assert any("probes per layer call: retrying with" in notice for notice in notices), notices
    assert not any("--batch-size" in notice for notice in notices), notices
    assert retried.plan["stack"] < 64
    for probe in probes:
        assert retried.kl(probe) == pytest.approx(expected.kl(probe), abs=1e-6)


def _peak(model, ids, probes, **options):
    """(the allocator's peak above what was allocated before, the measurement) of one measure call."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = engine.measure(model, ids, probes, path="fast", **options)
    return torch.cuda.max_memory_allocated() - before, result


def test_out_of_memory_at_one_sequence_names_the_setting():
    model = tiny_model("llama").cuda()
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    ballast = torch.empty(free - (8 << 20), dtype=torch.uint8, device="cuda")
    try:
        with pytest.raises(engine.EngineError, match="--seq-len"):
            engine.measure(model, random_ids(2, 2048), every_probe(model.config.num_hidden_layers), path="fast",
                           batch_size=2, notice=lambda _: None)
    finally:
        del ballast
        torch.cuda.empty_cache()


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
