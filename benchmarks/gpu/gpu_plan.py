"""The batch plan and stacked probes on one GPU: before (the old plan) and after (the default plan), one run.

    python benchmarks/gpu/gpu_plan.py --gguf smollm2-135m=S.gguf --gguf gemma3-270m=G.gguf \
        --random pythia-1.4b --random llama3-8b=adjacent --out "$OUT"
    python benchmarks/gpu/gpu_plan.py --random tiny --device cpu --sequences 4 --seq-len 32      # smoke test

Three parts, all in the same process on the same GPU:
  1. The bf16 matrix rate (repeated 8192^3 matmul, benchmarks/gpu/gpu_scale.py) and the height table: one decoder
     layer of each model's shape timed on 512-token sequences stacked to 1k..512k rows, as TFLOP/s of its
     counted FLOPs. This is what the plan's SATURATING_FLOP rests on.
  2. Per model: the audit's probes (all pairs unless NAME=PAIRS says otherwise, removals included) through
     engine.measure, before (stack 1, the old budget: max(weights/4, 1 GiB)) and after (the default plan), timed
     after a warm-up call; counted PFLOP (benchmarks/gpu/gpu_scale.py's count: the trie's layer passes, one head per
     probe), TFLOP/s, % of the matrix rate, the plan and the allocator's peak. "before" runs on the first
     --before-sequences sequences when that is fewer (every batch walks the same trie, so its wall scales with
     the sequences; the column "timed on" says so).
  3. Per model: the whole process from the CLI (`python -m pytest_swapkl audit MODEL --pairs PAIRS ...`), wall
     seconds of the process and the probe seconds its JSON records; run twice, the first one warming the
     dequantized-weights cache and the kernel caches, the second one reported. A random-weight model is saved
     first as a checkpoint folder under --models-dir (bfloat16 safetensors) with its random ids as a .npy file
     the CLI reads as --data (such a model has no tokenizer).
     --runs none --no-heights: the CLI runs alone.
Raw numbers go to --out/gpu_plan.json; the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).parent))
from gpu_scale import build_model, counted_flops, matrix_rate, per_token_flops, sync  # noqa: E402

from pytest_swapkl import engine  # noqa: E402
from pytest_swapkl import probes as P  # noqa: E402
from pytest_swapkl.engine.adapters import adapter_for, find_layer_list  # noqa: E402
from pytest_swapkl.engine.fastpath import FastPath, Kernels, _call_layer, _tiled  # noqa: E402
from pytest_swapkl.inputs.data import load_calibration  # noqa: E402
from pytest_swapkl.inputs.loading import load_model  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def height_table(model: torch.nn.Module, name: str, seq_len: int, rate: float, device: torch.device) -> list[dict]:
    """One layer of `model` on 1k..512k rows (sequences of seq_len, stacked): seconds and TFLOP/s."""
    layer_flops, _ = per_token_flops(model, seq_len)
    owner, attr = find_layer_list(model)
    layer = getattr(owner, attr)[0]
    fast = FastPath(model, adapter_for(model), 16384, Kernels())
    rows = []
    with torch.inference_mode():
        ids = torch.randint(0, model.config.vocab_size, (1, seq_len), device=device)
        args, kwargs = fast.base_pass(ids).calls[0]
        sequences = 2
        while sequences * seq_len <= (1 << 19):
            hidden = torch.randn(sequences, seq_len, model.config.hidden_size, device=device,
                                 dtype=next(model.parameters()).dtype)
            call_args = tuple(_tiled(a, 1, sequences) for a in args)
            call_kwargs = {k: _tiled(v, 1, sequences) for k, v in kwargs.items()}
            call_args = (hidden, *call_args[1:]) if call_args else call_args
            if not args:
                call_kwargs["hidden_states"] = hidden
            try:
                for _ in range(2):
                    _call_layer(layer, call_args, call_kwargs)
                sync(device)
                repeats = 5
                started = time.perf_counter()
                for _ in range(repeats):
                    _call_layer(layer, call_args, call_kwargs)
                sync(device)
            except torch.cuda.OutOfMemoryError:
                break
            seconds = (time.perf_counter() - started) / repeats
            flops = layer_flops * sequences * seq_len
            rows.append({"model": name, "rows": sequences * seq_len, "call_tflop": flops / 1e12,
                         "ms": seconds * 1e3, "tflops": flops / seconds / 1e12,
                         "share_of_rate": flops / seconds / 1e12 / rate if rate else None})
            del hidden
            sequences *= 2
    return rows


def timed(model, ids, probes, device, **options) -> tuple[Any, float, float]:
    started = time.perf_counter()
    engine.measure(model, ids[: min(len(ids), 2)], probes[:2], **options)
    sync(device)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    result = engine.measure(model, ids, probes, **options)
    sync(device)
    return result, time.perf_counter() - started, warm


def bench_engine(name: str, model: torch.nn.Module, ids: torch.Tensor, pairs: str, args, rate: float,
                 device: torch.device) -> list[dict]:
    n = model.config.num_hidden_layers
    probes = P.audit_probes(P.parse_pairs(pairs, n), n)
    _, fast_passes = P.count_layer_passes(probes, n)
    layer_flops, head_flops = per_token_flops(model, ids.shape[1])
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    old_budget = max(weights // 4, 1 << 30)
    runs = []
    plans = {"before": ({"stack": 1, "memory_budget": old_budget}, min(args.before_sequences, len(ids))),
             "after": ({}, len(ids))}
    for label in args.runs.split(","):
        options, sequences = plans[label]
        if device.type == "cuda":
            torch.cuda.empty_cache()
        log(f"{name} {pairs} {label}: {len(probes)} probes x {sequences} sequences")
        result, seconds, warm = timed(model, ids[:sequences], probes, device, compile=args.compile, **options)
        scale = len(ids) / sequences
        flops = counted_flops(layer_flops, head_flops, fast_passes, len(probes), ids.numel())
        runs.append({
            "model": name, "pairs": pairs, "run": label, "probes": len(probes),
            "timed_on": f"{sequences} of {len(ids)} seq, x{scale:.2f}" if scale != 1 else f"all {len(ids)} seq",
            "plan": result.plan, "seconds": seconds * scale, "warmup_seconds": warm,
            "counted_pflop": flops / 1e15, "tflops": flops / (seconds * scale) / 1e12,
            "share_of_rate": flops / (seconds * scale) / 1e12 / rate if rate else None,
            "peak_gib": None if result.peak_memory is None else result.peak_memory / 2**30,
            "weights_gib": weights / 2**30,
            "kl": {p.name: result.kl(p) for p in probes},
        })
        log(f"  {seconds * scale:.1f} s, {runs[-1]['tflops']:.1f} TFLOP/s, plan {result.plan}")
    return runs


def bench_cli(name: str, model_path: str, pairs: str, args, out: Path, data: Any = None) -> dict:
    """Whole process from the CLI, run twice; the second (warm caches) is reported, both are kept."""
    tries = []
    for attempt in (1, 2):
        json_path = out / f"cli_{name}_{attempt}.json"
        command = [sys.executable, "-m", "pytest_swapkl", "audit", model_path, "--pairs", pairs, "--tokens",
                   str(args.sequences * args.seq_len), "--seq-len", str(args.seq_len), "--dtype", "bfloat16",
                   "--device", args.device, "--json", str(json_path), "--no-resume", "--compile", args.compile]
        command += ["--data", str(data)] if data is not None else []
        log(f"{name}: CLI run {attempt}: {' '.join(command[3:])}")
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        record: dict[str, Any] = {"attempt": attempt, "wall_seconds": wall, "returncode": done.returncode,
                                  "stderr_tail": done.stderr[-2000:]}
        if done.returncode == 0:
            document = json.loads(json_path.read_text())
            record.update(probe_seconds=document["measure_seconds"], plan=document["engine"]["plan"],
                          audit_seconds=document["seconds"],
                          peak_gib=(document["engine"]["peak_memory"] or 0) / 2**30, base_ppl=document["base"]["ppl"])
            json_path.unlink()
        tries.append(record)
        log(f"  wall {wall:.1f} s, rc {done.returncode}, probes {record.get('probe_seconds')}")
    return {"model": name, "pairs": pairs, "tries": tries}


def saved_checkpoint(name: str, model: torch.nn.Module, ids: torch.Tensor, folder: Path) -> tuple[Path, Path]:
    """The random-weight model as a checkpoint folder and its ids as a .npy file, for the CLI."""
    import numpy as np

    path, data = folder / name, folder / f"{name}_ids.npy"
    model.save_pretrained(path)
    np.save(data, ids.numpy().astype(np.int64))
    return path, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", action="append", default=[], help="NAME=PATH[=PAIRS] of a GGUF model")
    parser.add_argument("--random", action="append", default=[], help="NAME[=PAIRS] of a gpu_scale.py config")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--before-sequences", type=int, default=16)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", default="auto")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--runs", default="before,after", help="which engine runs: before,after | after | none")
    parser.add_argument("--no-heights", action="store_true")
    parser.add_argument("--out", default=".")
    parser.add_argument("--models-dir", default="/tmp/gpu_plan_models", help="random-weight checkpoints for the CLI")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rate = matrix_rate(device, dtype)
    log(f"matrix rate {rate['tflops']:.1f} TFLOP/s")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    document: dict[str, Any] = {"gpu": gpu,
                                "torch": torch.__version__, "transformers": transformers.__version__,
                                "matrix_rate": rate, "heights": [], "runs": [], "cli": []}

    def save() -> None:
        (out / "gpu_plan.json").write_text(json.dumps(document, indent=1))

    models = []
    for spec in args.gguf:
        name, path, *pairs = spec.split("=")
        models.append((name, "gguf", path, pairs[0] if pairs else "all"))
    for spec in args.random:
        name, *pairs = spec.split("=")
        models.append((name, "random", None, pairs[0] if pairs else "all"))
    for name, kind, path, pairs in models:
        log(f"{name}: loading")
        if kind == "gguf":
            loaded = load_model(path, device=args.device, dtype="bfloat16" if device.type == "cuda" else "float32")
            model, tokenizer = loaded.model, loaded.tokenizer
            ids = load_calibration("demo", tokenizer, tokens=args.sequences * args.seq_len,
                                   seq_len=args.seq_len).input_ids
        else:
            model = build_model(name, device, dtype, seed=0)
            ids = torch.randint(0, model.config.vocab_size, (args.sequences, args.seq_len),
                                generator=torch.Generator().manual_seed(0))
        if not args.no_heights:
            document["heights"] += height_table(model, name, args.seq_len, rate["tflops"], device)
        save()
        if args.runs != "none":
            document["runs"] += bench_engine(name, model, ids, pairs, args, rate["tflops"], device)
        save()
        data, weights_gib = None, sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
        if kind == "random" and not args.no_cli:
            Path(args.models_dir).mkdir(parents=True, exist_ok=True)
            path, data = saved_checkpoint(name, model, ids, Path(args.models_dir))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if not args.no_cli:
            document["cli"].append({**bench_cli(name, str(path), pairs, args, out, data), "weights_gib": weights_gib})
            save()
    print(f"{document['gpu']}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"bf16 matrix rate {rate['tflops']:.0f} TFLOP/s; {args.sequences} x {args.seq_len} tokens")
    print(tabulate([[h["model"], h["rows"], f"{h['call_tflop']:.3g}", f"{h['ms']:.3f}", f"{h['tflops']:.0f}",
                     f"{100 * (h['share_of_rate'] or 0):.0f}"] for h in document["heights"]],
                   headers=["layer of", "rows", "TFLOP/call", "ms", "TFLOP/s", "% rate"], tablefmt="github"))
    print()
    print(tabulate([[r["model"], r["pairs"], r["run"], r["probes"], r["timed_on"],
                     f"{r['plan']['batch_size']} seq x stack {r['plan']['stack']}", f"{r['seconds']:.1f}",
                     f"{r['counted_pflop']:.3g}", f"{r['tflops']:.0f}", f"{100 * (r['share_of_rate'] or 0):.1f}",
                     "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}", f"{r['weights_gib']:.2f}"]
                    for r in document["runs"]],
                   headers=["model", "pairs", "run", "probes", "timed on", "plan", "probe s", "counted PFLOP",
                            "TFLOP/s", "% rate", "peak GiB", "weights GiB"], tablefmt="github"))
    for cli in document["cli"]:
        for t in cli["tries"]:
            print(f"CLI {cli['model']} --pairs {cli['pairs']} try {t['attempt']}: "
                  f"whole process {t['wall_seconds']:.1f} s, "
                  f"run_audit {t.get('audit_seconds')} s, probes {t.get('probe_seconds')} s, plan {t.get('plan')}, "
                  f"peak {t.get('peak_gib')} GiB (weights {cli['weights_gib']:.2f}), "
                  f"rc {t['returncode']}")
    save()
    os.sync()


if __name__ == "__main__":
    main()
