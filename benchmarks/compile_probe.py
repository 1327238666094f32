"""One-off GPU probe behind docs/benchmarks.md's decisions for issue 8: on the Llama-3.1-8B shape (random bf16
weights, 8 x 512 tokens, the adjacent audit's probes) time the fast path with compile off / auto / on, and the
bf16 matmul rate of the layer's largest product at the token counts a batch gives (is batching probes worth it?)."""

import sys
import time

import torch

sys.path.insert(0, "benchmarks")
from gpu_scale import build_model  # noqa: E402

from pytest_swapkl import engine  # noqa: E402
from pytest_swapkl import probes as P


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, out


def matmul_rate(m: int, device: torch.device) -> float:
    a = torch.randn(m, 4096, device=device, dtype=torch.bfloat16)
    w = torch.randn(14336, 4096, device=device, dtype=torch.bfloat16)
    torch.nn.functional.linear(a, w)
    seconds, _ = timed(lambda: [torch.nn.functional.linear(a, w) for _ in range(20)])
    return 2 * m * 14336 * 4096 * 20 / seconds / 1e12


def main() -> None:
    device = torch.device("cuda")
    for m in (2048, 4096, 8192, 16384):
        print(f"matmul M={m} N=14336 K=4096: {matmul_rate(m, device):.0f} TFLOP/s", flush=True)
    model = build_model("llama3-8b", device, torch.bfloat16, 0)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    n = model.config.num_hidden_layers
    ids = torch.randint(0, model.config.vocab_size, (8, 512), generator=torch.Generator().manual_seed(0))
    probes = P.audit_probes(P.parse_pairs("adjacent", n), n)
    print("plan_batch_size", engine.plan_batch_size(model, 512, None), flush=True)
    _, passes = P.count_layer_passes(probes, n)
    for mode in ("off", "auto", "on"):
        warm, _ = timed(lambda: engine.measure(model, ids, probes[:3], path="fast", batch_size=8, compile=mode))
        torch.cuda.reset_peak_memory_stats()
        seconds, result = timed(lambda: engine.measure(model, ids, probes, path="fast", batch_size=8, compile=mode))
        flops = 8 * 512 * (passes * 0.440e9 + (len(probes) + 1) * 1.051e9)
        print(f"compile={mode}: warm-up {warm:.1f} s, {len(probes)} probes x 8 seq {seconds:.2f} s, "
              f"{flops / seconds / 1e12:.0f} TFLOP/s, "
              f"peak {torch.cuda.max_memory_allocated() / weights:.3f} x weights, "
              f"kl[0] {result.kl(probes[0]):.6f}", flush=True)
    torch.cuda.reset_peak_memory_stats()
    seconds, _ = timed(lambda: engine.measure(model, ids, probes[:8], path="reference", batch_size=8))
    peak = torch.cuda.max_memory_allocated() / weights
    print(f"reference 8 probes x 8 seq: {seconds:.2f} s, peak {peak:.3f} x weights")
    torch.cuda.reset_peak_memory_stats()
    ids64 = torch.randint(0, model.config.vocab_size, (16, 512), generator=torch.Generator().manual_seed(0))
    seconds, _ = timed(lambda: engine.measure(model, ids64, probes[:4], path="fast"))
    print(f"default batch plan, 4 probes x 16 seq: {seconds:.2f} s, "
          f"peak {torch.cuda.max_memory_allocated() / weights:.3f} x weights")


if __name__ == "__main__":
    main()
