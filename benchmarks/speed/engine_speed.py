"""Fast path vs reference path on one random-weight model, timed in the same run.

    python benchmarks/speed/engine_speed.py                       # CPU: 12-layer tiny Llama, all pairs
    python benchmarks/speed/engine_speed.py --device cuda --dtype bfloat16 --hidden 1024 --sequences 32 --seq-len 512

Prints one table: probes, counted layer passes and FLOPs of each path, the speed-up
predicted from those counts, and the measured wall time and speed-up. The fast path
is also checked against the reference (max |dKL|) so a fast wrong answer can't win.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from tabulate import tabulate
from transformers import AutoConfig, AutoModelForCausalLM

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.inputs.devices import resolve_device, resolve_dtype


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    config = AutoConfig.for_model(
        args.family,
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64 if args.hidden >= 256 else 4,
        max_position_embeddings=max(args.seq_len, 64),
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    with torch.no_grad():
        for param in model.parameters():  # wider than the default init, so layers are far from identity
            if param.ndim >= 2:
                param.normal_(0.0, 1.0 / param.shape[-1] ** 0.5)
    return model.eval()


def counted_flops(model: torch.nn.Module, layer_passes: int, probes: int, tokens: int, seq_len: int) -> float:
    """Matrix FLOPs: 2 x parameters per token for each layer pass, attention's two seq x seq products, and
    one head per probe plus the base (the reference's head is the same size as the fast path's chunks)."""
    config = model.config
    layer_params = sum(p.numel() for p in model.model.layers[0].parameters() if p.ndim >= 2)
    per_layer = 2 * layer_params + 4 * seq_len * config.hidden_size
    head = 2 * config.hidden_size * config.vocab_size
    return float(tokens) * (layer_passes * per_layer + (probes + 1) * head)


def timed(fn, device: torch.device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="llama")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate fast and reference this many times and keep each path's best time")
    parser.add_argument("--reference-sample", type=int, default=0,
                        help="time the reference on only this many probes and extrapolate (0: all)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_model(args, device, dtype)
    n = args.layers
    probes = P.audit_probes(P.parse_pairs(args.pairs, n), n)
    ids = torch.randint(0, args.vocab, (args.sequences, args.seq_len), generator=torch.Generator().manual_seed(0))
    tokens = ids.numel()
    reference_passes, fast_passes = P.count_layer_passes(probes, n)

    def run(path, subset):
        return engine.measure(model, ids, subset, path=path, batch_size=args.batch_size)

    run("fast", probes[:2])  # warm-up: allocator, kernels, lazy init
    sample = probes if args.reference_sample <= 0 else probes[:: max(1, len(probes) // args.reference_sample)]
    # Alternating rounds, best time of each: on a shared machine the minimum is the least disturbed run.
    fast_seconds = sample_seconds = float("inf")
    for _ in range(max(1, args.rounds)):
        seconds, fast = timed(lambda: run("fast", probes), device)
        fast_seconds = min(fast_seconds, seconds)
        seconds, reference = timed(lambda: run("reference", sample), device)
        sample_seconds = min(sample_seconds, seconds)
    # Every reference probe costs the same full forward, so a sample extrapolates linearly (base pass included).
    reference_seconds = sample_seconds * (len(probes) + 1) / (len(sample) + 1)
    max_diff = max(abs(fast.kl(p) - reference.kl(p)) for p in sample)

    reference_flops = counted_flops(model, reference_passes, len(probes), tokens, args.seq_len)
    fast_flops = counted_flops(model, fast_passes, len(probes), tokens, args.seq_len)
    rows = [
        ["reference", len(probes), reference_passes, f"{reference_flops / 1e12:.3f}", "1.00", "1.00",
         f"{reference_seconds:.2f}" + ("*" if len(sample) < len(probes) else ""), "1.00",
         f"{reference_flops / reference_seconds / 1e12:.2f}", ""],
        ["fast", len(probes), fast_passes, f"{fast_flops / 1e12:.3f}", f"{reference_passes / fast_passes:.2f}",
         f"{reference_flops / fast_flops:.2f}", f"{fast_seconds:.2f}", f"{reference_seconds / fast_seconds:.2f}",
         f"{fast_flops / fast_seconds / 1e12:.2f}", f"{max_diff:.1e}"],
    ]
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"{args.family} {n} layers, hidden {args.hidden}, vocab {args.vocab}, "
          f"{args.sequences} x {args.seq_len} tokens, {args.pairs} pairs + removals, {dtype}, {name}, "
          f"torch {torch.__version__}, best of {max(1, args.rounds)} alternating rounds")
    print(tabulate(rows, headers=["path", "probes", "layer passes", "TFLOP", "predicted x (layers)",
                                  "predicted x (FLOPs)", "seconds", "measured x", "TFLOP/s", "max |dKL|"]))
    if len(sample) < len(probes):
        print(f"* reference extrapolated from {len(sample)} timed probes")


if __name__ == "__main__":
    main()
