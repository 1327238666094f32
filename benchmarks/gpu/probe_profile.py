"""Where the fast path's GPU time goes, and whether a heavier compile of the layer calls moves it (issue 21).

For the published shapes of the two small pretrained models (random weights, benchmarks/gpu/gpu_scale.py), bfloat16,
64 x 512 random ids, the audit's own batch plan:

1. kernel time by kind (matrix products, attention, compiled elementwise, other) under torch.profiler for the
   probes of adjacent pairs + removals, after a warm-up;
2. the audit's probes (--pairs, default all) timed with the layer calls compiled in each --modes entry
   (torch.compile's default, max-autotune-no-cudagraphs, ...) against the default in the same run, with the
   warm-up (compile) time and the largest KL difference from the first row;
3. the same probes at each --chunks vocabulary chunk width (the head + KL step's columns per call), default
   compile.

    python3 benchmarks/gpu/probe_profile.py --models smollm2-135m,gemma3-270m --out $OUT
    python3 benchmarks/gpu/probe_profile.py --no-profile --modes default --chunks 8192,16384,32768,65536 --out $OUT
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpu_scale import build_model, counted_flops, matrix_rate, per_token_flops, sync  # noqa: E402

from pytest_swapkl import engine  # noqa: E402
from pytest_swapkl import probes as P  # noqa: E402
from pytest_swapkl.engine import fastpath  # noqa: E402
from pytest_swapkl.engine.divergence import chunk_step  # noqa: E402

KINDS = (("matrix products", ("gemm", "cutlass", "nvjet", "cublas", "sm90_xmma", "sm80_xmma")),
         ("attention", ("flash", "fmha", "attention", "efficient_attention")),
         ("compiled elementwise (Triton)", ("triton",)))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kind_of(kernel: str) -> str:
    name = kernel.lower()
    for kind, needles in KINDS:
        if any(needle in name for needle in needles):
            return kind
    return "other"


def use_layer_mode(mode: str, device_type: str) -> None:
    """Compile the layer calls (and the head + KL step with its default mode) as `mode` in this process, for the
    engine's kernels of `device_type`."""
    torch._dynamo.reset()
    layer = fastpath._call_layer if mode == "eager" else torch.compile(
        fastpath._call_layer, **({} if mode == "default" else {"mode": mode}))
    fastpath._COMPILED[device_type] = fastpath.Kernels(
        fastpath._Compiled(torch.compile(chunk_step), chunk_step, "the head + KL step", print),
        fastpath._Compiled(layer, fastpath._call_layer, "layer calls", print))


def kernel_breakdown(model, ids, probes) -> tuple[list[list], list[list], float]:
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if ids.device.type == "cuda" else ProfilerActivity.CPU

    engine.measure(model, ids, probes, compile="on")  # warm, so that no compile is profiled
    sync(ids.device)
    started = time.perf_counter()
    with profile(activities=[activity]) as trace:
        engine.measure(model, ids, probes, compile="on")
        sync(ids.device)
    wall = time.perf_counter() - started
    by_kind, by_kernel = defaultdict(float), defaultdict(float)
    for event in trace.key_averages():
        if ids.device.type != "cuda" or event.device_type == torch.autograd.DeviceType.CUDA:
            micros = getattr(event, "self_device_time_total", None) if ids.device.type == "cuda" else None
            micros = micros if micros is not None else (
                event.self_cpu_time_total if ids.device.type != "cuda" else event.self_cuda_time_total)
            by_kind[kind_of(event.key)] += micros / 1e6
            by_kernel[event.key] += micros / 1e6
    total = sum(by_kind.values())
    kinds = [[kind, f"{seconds:.2f}", f"{100 * seconds / total:.1f}"] for kind, seconds in
             sorted(by_kind.items(), key=lambda kv: -kv[1])]
    top = [[name[:90], f"{seconds:.3f}", f"{100 * seconds / total:.1f}"] for name, seconds in
           sorted(by_kernel.items(), key=lambda kv: -kv[1])[:12]]
    return kinds, top, wall


def time_modes(model, ids, probes, modes, rate, chunks=(None,)) -> list[dict]:
    n = model.config.num_hidden_layers
    _, passes = P.count_layer_passes(probes, n)
    layer_flops, head_flops = per_token_flops(model, ids.shape[1])
    flops = counted_flops(layer_flops, head_flops, passes, len(probes), ids.numel())
    rows, reference = [], None
    for mode, chunk in [(m, c) for m in modes for c in chunks]:
        use_layer_mode(mode, ids.device.type)
        options = {"compile": "on", **({} if chunk is None else {"vocab_chunk": chunk})}
        if ids.device.type == "cuda":
            torch.cuda.empty_cache()
        started = time.perf_counter()
        engine.measure(model, ids[:2], probes[:2], **options)
        sync(ids.device)
        warm = time.perf_counter() - started
        started = time.perf_counter()
        result = engine.measure(model, ids, probes, **options)
        sync(ids.device)
        seconds = time.perf_counter() - started
        kls = torch.tensor([result.kl(p) for p in probes], dtype=torch.float64)
        reference = kls if reference is None else reference
        rows.append({"mode": mode, "vocab_chunk": chunk or engine.DEFAULT_VOCAB_CHUNK, "warmup_s": warm,
                     "probes_s": seconds, "tflops": flops / seconds / 1e12,
                     "share_of_rate": flops / seconds / 1e12 / rate, "plan": result.plan,
                     "max_rel_kl_diff_vs_first": float(((kls - reference).abs() / reference.abs().clamp_min(1e-12))
                                                       .max())})
        log(f"  {mode}, chunk {rows[-1]['vocab_chunk']}: warm-up {warm:.1f} s, probes {seconds:.1f} s "
            f"({100 * rows[-1]['share_of_rate']:.1f}%)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,gemma3-270m")
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--modes", default="default,max-autotune-no-cudagraphs")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--chunks", default="", help="comma list of vocabulary chunk widths (default: the engine's)")
    parser.add_argument("--no-profile", action="store_true", help="skip the kernel-time table")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of this script, not a measurement")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rate = matrix_rate(device, dtype)["tflops"]
    log(f"matrix rate {rate:.0f} TFLOP/s")
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    document = {"gpu": gpu, "torch": torch.__version__, "matrix_rate_tflops": rate,
                "models": {}}
    text = [f"{gpu}, torch {torch.__version__}, matrix rate (gpu_scale.matrix_rate, same run) {rate:.0f} TFLOP/s"]
    for name in args.models.split(","):
        model = build_model(name, device, dtype, 0)
        n = model.config.num_hidden_layers
        ids = torch.randint(0, model.config.vocab_size, (args.sequences, args.seq_len), device=device)
        use_layer_mode("default", device.type)
        adjacent = P.audit_probes(P.parse_pairs("adjacent", n), n)
        if not args.no_profile:
            log(f"{name}: profile of {len(adjacent)} probes")
            kinds, top, wall = kernel_breakdown(model, ids, adjacent)
            document["models"][name] = {"profile_probes": len(adjacent), "profile_wall_s": wall, "kinds": kinds,
                                        "top_kernels": top}
            text += [f"\n{name}: kernel time by kind, adjacent pairs + removals ({len(adjacent)} probes, "
                     f"{args.sequences} x {args.seq_len}), wall {wall:.2f} s",
                     tabulate(kinds, headers=["kind", "GPU s", "%"]), "\ntop kernels",
                     tabulate(top, headers=["kernel", "GPU s", "%"])]
        log(f"{name}: modes on --pairs {args.pairs}")
        chunks = [int(c) for c in args.chunks.split(",") if c] or [None]
        modes = time_modes(model, ids, P.audit_probes(P.parse_pairs(args.pairs, n), n), args.modes.split(","), rate,
                           chunks)
        document["models"].setdefault(name, {})["modes"] = modes
        text += [f"\n{name}: --pairs {args.pairs}, layer calls compiled as",
                 tabulate([[m["mode"], m["vocab_chunk"], f"{m['warmup_s']:.1f}", f"{m['probes_s']:.2f}",
                            f"{m['tflops']:.0f}", f"{100 * m['share_of_rate']:.1f}",
                            f"{m['max_rel_kl_diff_vs_first']:.1e}",
                            json.dumps(m["plan"])] for m in modes],
                          headers=["layer compile mode", "vocab chunk", "warm-up s", "probes s", "TFLOP/s", "% of rate",
                                   "max rel KL diff", "plan"])]
        save(args.out, document, text)  # after each model: a time limit keeps what is done
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print("\n".join(text))


def save(folder: Path, document: dict, text: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe_profile.json").write_text(json.dumps(document, indent=1, default=str))
    (folder / "probe_profile.txt").write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
