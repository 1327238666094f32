"""The real pretrained checkpoints on one GPU: fast vs reference path, numbers and times, in bfloat16 and float32.

    python benchmarks/gpu/real_models_gpu.py --gguf smollm2-135m=PATH.gguf --gguf gemma3-270m=PATH.gguf --out "$OUT"
    python benchmarks/gpu/real_models_gpu.py --gguf smollm2-135m=PATH.gguf --device cpu --sequences 2 --seq-len 32 \
        --reference adjacent                                   # smoke test on a CPU

Per model and dtype: the audit's probes for all pairs (every replacement in both directions, every interchange,
every removal) on --sequences x --seq-len tokens of the bundled held-out corpus, on the fast path (timed after a
warm-up call that compiles its kernels) and on the reference path (the definition: a permuted layer list and the
model's own forward per probe). --reference all times the reference on every probe; --reference adjacent on the
adjacent pairs and removals only (then the table says so). Numbers: max |KL fast - KL reference| over the probes
both ran, base perplexity on each path, the Spearman of R and I and each protocol's top-3 removal set (fast path).
On a model with sliding and full attention layers (Gemma-3) the fast path also runs with --attention-type slot:
how much the slot reading moves R, I, their ranks and the removal sets. Raw numbers go to --out/real_models.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from tabulate import tabulate

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_measure(model, ids, probes, device: str, **options) -> tuple[object, float, float]:
    """(measurement, seconds, warm-up seconds): a warm-up call on two probes first (compile, cuBLAS)."""
    started = time.perf_counter()
    engine.measure(model, ids[: min(len(ids), 4)], probes[:2], **options)
    _sync(device)
    warm = time.perf_counter() - started
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = engine.measure(model, ids, probes, **options)
    _sync(device)
    return result, time.perf_counter() - started, warm


def protocol_view(measurement, pairs, n_layers: int) -> dict:
    audit = summarize(measurement, pairs, n_layers, n_resamples=200)
    top3 = next(t for t in audit.top_k if t.k == 3)
    return {"spearman": audit.spearman, "kendall": audit.kendall,
            "top3_replacement": top3.replacement_layers, "top3_interchange": top3.interchange_layers,
            "R": [p.replacement.value for p in audit.pairs], "I": [p.interchange.value for p in audit.pairs],
            "base_ppl": audit.base_ppl}


def reading_change(layer: dict, slot: dict) -> dict:
    """How the slot reading moves the numbers of the layer reading."""
    def rel(a, b):
        return max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b))

    return {"max_rel_change_R": rel(layer["R"], slot["R"]), "max_rel_change_I": rel(layer["I"], slot["I"]),
            "spearman_R_layer_vs_slot": stats.spearman(layer["R"], slot["R"]),
            "spearman_I_layer_vs_slot": stats.spearman(layer["I"], slot["I"]),
            "top3_replacement": [layer["top3_replacement"], slot["top3_replacement"]],
            "top3_interchange": [layer["top3_interchange"], slot["top3_interchange"]]}


def run_model(name: str, path: str, dtype: str, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    loaded = load_model(path, dtype=dtype, device=args.device)
    load_seconds = time.perf_counter() - started
    calibration = load_calibration("demo", loaded.tokenizer, tokens=args.sequences * args.seq_len,
                                   seq_len=args.seq_len, vocab_size=loaded.vocab_size)
    ids, n = calibration.input_ids, loaded.n_layers
    pairs = P.parse_pairs("all", n)
    probes = P.audit_probes(pairs, n)
    reference_probes = probes if args.reference == "all" else P.audit_probes(P.parse_pairs("adjacent", n), n)
    fast, fast_s, fast_warm = timed_measure(loaded.model, ids, probes, args.device, compile=args.compile,
                                            batch_size=args.batch_size)
    fast_peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else 0
    reference, reference_s, _ = timed_measure(loaded.model, ids, reference_probes, args.device, path="reference",
                                              batch_size=args.reference_batch_size)
    diffs = [abs(fast.kl(p) - reference.kl(p)) for p in reference_probes]
    row = {"model": name, "dtype": dtype, "device": args.device, "n_layers": n, "tokens": int(ids.numel()),
           "batch_size": args.batch_size, "reference_batch_size": args.reference_batch_size,
           "probes_fast": len(probes), "probes_reference": len(reference_probes), "reference_set": args.reference,
           "load_s": round(load_seconds, 2), "fast_s": round(fast_s, 2), "fast_warmup_s": round(fast_warm, 2),
           "reference_s": round(reference_s, 2),
           "reference_s_per_probe": reference_s / len(reference_probes), "fast_s_per_probe": fast_s / len(probes),
           "max_abs_kl_diff": max(diffs), "median_abs_kl_diff": sorted(diffs)[len(diffs) // 2],
           "base_ppl_fast": fast.base_ppl, "base_ppl_reference": reference.base_ppl,
           "fast_peak_gib": fast_peak / 2**30, "weights": loaded.weights,
           "layer_reading": protocol_view(fast, pairs, n)}
    types = getattr(loaded.model.config, "layer_types", None)
    if dtype in args.slot_dtypes.split(",") and types and len(set(types)) > 1:
        slot, slot_s, _ = timed_measure(loaded.model, ids, probes, args.device, compile=args.compile,
                                        attention_type="slot", batch_size=args.batch_size)
        row["slot_reading"] = protocol_view(slot, pairs, n)
        row["slot_vs_layer"] = reading_change(row["layer_reading"], row["slot_reading"])
        row["slot_s"] = round(slot_s, 2)
    del loaded
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--reference", choices=("all", "adjacent"), default="all")
    parser.add_argument("--compile", default="auto")
    parser.add_argument("--slot-dtypes", default="bfloat16", help="dtypes in which to also run --attention-type slot")
    # The default batch plan gives a small model a few sequences per batch on a large GPU (issue 21's subject);
    # a fixed batch keeps this table about the real models, not about the plan. None: the engine's plan.
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--reference-batch-size", type=int, default=None)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.gguf:
        name, _, path = spec.partition("=")
        for dtype in args.dtypes.split(","):
            rows.append(run_model(name, path, dtype, args))
            (out / "real_models.json").write_text(json.dumps(
                {"rows": rows, "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if
                 torch.cuda.is_available() else platform.processor()}, indent=1, default=str))
            r = rows[-1]
            print(f"{name} {dtype}: fast {r['fast_s']} s, reference {r['reference_s']} s, "
                  f"max|dKL| {r['max_abs_kl_diff']:.2e}", flush=True)
    print(tabulate([[r["model"], r["dtype"], r["probes_fast"], r["fast_s"], r["fast_warmup_s"],
                     f"{r['probes_reference']} ({r['reference_set']})", r["reference_s"],
                     f"{r['reference_s_per_probe'] / r['fast_s_per_probe']:.1f}x", f"{r['max_abs_kl_diff']:.1e}",
                     f"{r['base_ppl_fast']:.3f} / {r['base_ppl_reference']:.3f}", f"{r['fast_peak_gib']:.1f}"]
                    for r in rows],
                   headers=["model", "dtype", "probes", "fast s", "warm-up s", "reference probes", "reference s",
                            "per-probe speed-up", "max |dKL|", "base ppl fast / ref", "fast peak GiB"]))


if __name__ == "__main__":
    main()
