"""Fast vs reference path at 7-8B scale: random-weight models from published configs, timed on one GPU.

    python benchmarks/gpu/gpu_scale.py --models llama3-8b --fast-sample-sequences 16 --out "$OUT"
    python benchmarks/gpu/gpu_scale.py --model tiny --device cpu          # smoke test: seconds on a CPU

Models (real configs, random weights, no downloads): Llama-3.1-8B, Qwen3-8B, Pythia-1.4B, and `tiny`
(a 4-layer Llama with hidden 64). Calibration: random token ids, --sequences x --seq-len, fixed seed.

The same run measures the GPU's bf16 matrix rate (repeated 8192^3 torch.matmul), then times, per model and
pair set, the probes an audit runs (pairs + removals) on each path, and counts the matrix FLOPs each path
does (2 x in x out per token per Linear, attention's QK^T and AV at the causal mean context (L+1)/2, one
head per probe plus the base). Because one device command is limited in time, runs may be extrapolated:
the table's "timed on" column states what was timed and the factor the wall time was scaled by.
  * reference: a stride sample of --reference-sample probes over all sequences (base pass included);
    every reference probe is one full forward, so the wall is scaled by counted FLOPs (full / sample).
  * fast, pair sets other than adjacent: the first --fast-sample-sequences sequences; every batch does
    the same trie walk, so the wall is scaled by sequences (n / S).
Warm-up (CUDA context, cuBLAS, torch.compile of the shapes the timed call will see) is one measure call
with 2 probes on the timed sequences, before each timed call with a new (path, sequences) pair; its time
is reported separately. Raw numbers go to --out as JSON, rewritten after every timed run.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from packaging.version import Version
from tabulate import tabulate
from transformers import AutoModelForCausalLM, Gemma3TextConfig, GPTNeoXConfig, LlamaConfig, Qwen3Config

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine.adapters import find_layer_list
from pytest_swapkl.inputs.devices import resolve_device, resolve_dtype

STARTED = time.perf_counter()

# Published config.json values (meta-llama/Llama-3.1-8B, Qwen/Qwen3-8B, EleutherAI/pythia-1.4b); fields left out
# are the class defaults and match those files (hidden_act silu / gelu, no attention bias for Llama and Qwen3,
# biases for GPT-NeoX, no sliding window for Qwen3). smollm2-135m and gemma3-270m: the shapes transformers reads
# from the two bundled GGUF files (AutoConfig.from_pretrained(folder, gguf_file=...)), for random-weight timing.
CONFIGS: dict[str, Callable[[], transformers.PretrainedConfig]] = {
    "llama3-8b": lambda: LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
        tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001),
    "qwen3-8b": lambda: Qwen3Config(
        vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
        use_sliding_window=False, max_window_layers=36, tie_word_embeddings=False,
        bos_token_id=151643, eos_token_id=151645),
    "pythia-1.4b": lambda: GPTNeoXConfig(
        vocab_size=50304, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=16,
        rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=True, max_position_embeddings=2048,
        layer_norm_eps=1e-5, hidden_act="gelu", tie_word_embeddings=False, bos_token_id=0, eos_token_id=0),
    "smollm2-135m": lambda: LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, head_dim=64, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2),
    "gemma3-270m": lambda: Gemma3TextConfig(
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256, sliding_window=512,
        max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0, rope_local_base_freq=10000.0,
        tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0),
    "tiny": lambda: LlamaConfig(
        vocab_size=1024, hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=0),
}
# transformers renamed from_config's `torch_dtype` to `dtype` in 4.56 (5.x still takes torch_dtype, with a warning).
DTYPE_KEYWORD = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def build_model(name: str, device: torch.device, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    """Random weights, created directly on `device` (on "meta": shapes only, for --dry-run).

    Init: transformers' own init runs where the weights are created (on the GPU: normal_ kernels, no host
    copies, no downloads), then every matrix (Linear, embedding, head) is refilled with normal(0, 1/sqrt(fan_in))
    as in engine_speed.py, so each layer's output has about unit scale: layers are far from the identity and
    bf16 activations stay finite through 36 layers. Norm weights stay 1, biases 0.
    """
    config = CONFIGS[name]()
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **{DTYPE_KEYWORD: dtype})
    if device.type != "meta":
        with torch.no_grad():
            for param in model.parameters():
                if param.ndim >= 2:
                    param.normal_(0.0, 1.0 / param.shape[-1] ** 0.5)
    return model.eval()


def per_token_flops(model: torch.nn.Module, seq_len: int) -> tuple[float, float]:
    """Matrix FLOPs per token of (one layer pass, the head).

    A layer pass: 2 x in x out for each Linear in it (averaged over the layers), plus attention's QK^T and AV,
    2 x head_dim x context each per query head, at the causal mean context (L+1)/2. The head: 2 x hidden x vocab.
    Norms, activations, rotary, softmax and embedding lookups are not counted.
    """
    config = model.config
    owner, attr = find_layer_list(model)
    layers = getattr(owner, attr)
    linear = sum(2 * m.in_features * m.out_features for layer in layers for m in layer.modules()
                 if isinstance(m, torch.nn.Linear)) / len(layers)
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    attention = 2 * 2 * heads * head_dim * (seq_len + 1) / 2
    output = model.get_output_embeddings()
    return float(linear + attention), float(2 * output.in_features * output.out_features)


def counted_flops(layer: float, head: float, layer_passes: int, probes: int, tokens: int) -> float:
    """Layer passes per batch (base included, as count_layer_passes gives them) x tokens, plus probes + base heads."""
    return float(tokens) * (layer_passes * layer + (probes + 1) * head)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matrix_rate(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Best of 5 rounds of `repeats` square matmuls, after as many again to warm up clocks and cuBLAS:
    n=8192 in `dtype` on CUDA (about 2 PFLOP in all, a few seconds), n=1024 float32 on the CPU."""
    if device.type == "cuda":
        n, repeats = 8192, 50
    else:
        n, repeats, dtype = 1024, 3, torch.float32
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    for _ in range(repeats):
        torch.matmul(a, b)
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - start)
    del a, b
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "repeats": repeats, "seconds": best,
            "tflops": 2 * n**3 * repeats / best / 1e12}


def parse_option(text: str) -> tuple[str, Any]:
    """key=value; the value as JSON or a Python literal when it parses (8192, true, None, "x"), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"--engine-option {text!r}: use key=value, e.g. --engine-option compile=off")
    for parse in (json.loads, ast.literal_eval):
        try:
            return key.strip(), parse(value)
        except (ValueError, SyntaxError):
            pass
    return key.strip(), value


def reference_sample(probes: list[P.Probe], n: int) -> list[P.Probe]:
    """n probes spread evenly over the audit's list (its replacements, interchanges and removals); n <= 0: all."""
    if n <= 0 or n >= len(probes):
        return list(probes)
    return [probes[k * len(probes) // n] for k in range(n)]


class Progress:
    """measure()'s progress callback: one stderr line every `every` seconds."""

    def __init__(self, label: str, every: float = 30.0):
        self.label, self.every = label, every
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            log(f"  {self.label}: {done}/{total} probe-sequences, {now - self.started:.0f} s")


def gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", "--model", default="llama3-8b,qwen3-8b,pythia-1.4b",
                        help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--pairs", default="adjacent,all", help="comma list of pair sets: adjacent, all, window:K")
    parser.add_argument("--paths", default="reference,fast",
                        help="comma list of reference, fast, run in this order within each pair set (default: the "
                             "short sampled reference first, so a run cut off by a time limit loses the least)")
    parser.add_argument("--sequences", type=int, default=None, help="default 64 on CUDA, 4 on the CPU")
    parser.add_argument("--seq-len", type=int, default=None, help="default 512 on CUDA, 64 on the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on CUDA, float32 on the CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the engine's own plan")
    parser.add_argument("--reference-sample", type=int, default=8,
                        help="time the reference on this many probes (spread over the list, all sequences) and "
                             "scale by counted FLOPs; 0: every probe")
    parser.add_argument("--fast-sample-sequences", type=int, default=0,
                        help="time the fast path of pair sets other than adjacent on the first S sequences and "
                             "scale by n/S; 0: all sequences")
    parser.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra keyword for engine.measure, repeatable (e.g. compile=off, vocab_chunk=8192)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; default 1 on the CPU (a smoke test: on a shared machine more "
                             "threads spin against other jobs and run many times slower), torch's own on CUDA")
    parser.add_argument("--skip-matrix-rate", action="store_true")
    parser.add_argument("--dry-run", action="store_true",
                        help="count probes, layer passes and FLOPs on meta-device models; time nothing")
    parser.add_argument("--out", default="gpu-scale-results", help="folder for the JSON and the table")
    args = parser.parse_args()

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]!r}: use one of {', '.join(CONFIGS)}")
    args.pair_sets = [s.strip() for s in args.pairs.split(",") if s.strip()]
    args.path_list = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not set(args.path_list) <= {"fast", "reference"}:
        raise SystemExit(f"--paths {args.paths!r}: use fast, reference or both")
    options = dict(parse_option(text) for text in args.engine_option)
    device = torch.device("meta") if args.dry_run else resolve_device(args.device)
    on_cpu = device.type == "cpu"
    dtype = resolve_dtype(args.dtype, torch.device("cpu") if on_cpu else torch.device("cuda"))
    if args.threads or on_cpu:
        torch.set_num_threads(args.threads or 1)
    args.sequences = args.sequences or (4 if on_cpu else 64)
    args.seq_len = args.seq_len or (64 if on_cpu else 512)

    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
    else:
        gpu = f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    rate = None
    if device.type != "meta" and not args.skip_matrix_rate:
        log("matrix rate ...")
        rate = matrix_rate(device, dtype)
        log(f"matrix rate: {rate['tflops']:.4g} TFLOP/s ({rate['n']}^3 {rate['dtype']} matmul)")
    rate_text = "not measured" if rate is None else f"{rate['tflops']:.4g} TFLOP/s ({rate['n']}^3 {rate['dtype']})"
    header = (f"{gpu}, torch {torch.__version__}, transformers {transformers.__version__}, matrix rate {rate_text}; "
              f"{args.sequences} x {args.seq_len} random tokens (seed {args.seed}), "
              f"{str(dtype).removeprefix('torch.')}, sdpa, batch {args.batch_size or 'engine plan'}"
              + (f", engine options {options}" if options else ""))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_scale_" + "_".join(names)
    document: dict[str, Any] = {
        "header": header, "gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "argv": sys.argv[1:], "args": vars(args), "dtype": str(dtype),
        "engine_options": options, "matrix_rate": rate, "models": {}, "runs": [],
    }

    def save() -> None:
        path = out / f"{stem}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(document, indent=2, default=str))
        os.replace(tmp, path)

    for name in names:
        bench_model(name, args, device, dtype, options, rate, document, save)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    headers = ["model", "pairs", "path", "probes", "timed on", "wall s", "speed-up over reference",
               "counted PFLOP", "TFLOP/s", "% of matrix rate", "peak GiB", "peak/weights"]
    rows = table_rows(document, rate)
    text = "\n".join([header, tabulate(rows, headers=headers, disable_numparse=True), *footnotes(document)])
    print(text)
    (out / f"{stem}.txt").write_text(text + "\n")
    save()
    log(f"wrote {out / (stem + '.json')} and {out / (stem + '.txt')}")


def bench_model(name: str, args: argparse.Namespace, device: torch.device, dtype: torch.dtype,
                options: dict[str, Any], rate: dict[str, Any] | None, document: dict[str, Any],
                save: Callable[[], None]) -> None:
    """Build one model, time every (pair set, path), append the runs to `document`; the model is freed on return."""
    log(f"{name}: building")
    started = time.perf_counter()
    model = build_model(name, device, dtype, args.seed)
    sync(device)
    config = model.config
    n_layers = config.num_hidden_layers
    if args.seq_len > config.max_position_embeddings:
        raise SystemExit(f"{name}: --seq-len {args.seq_len} exceeds max_position_embeddings "
                         f"{config.max_position_embeddings}")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    layer_flops, head_flops = per_token_flops(model, args.seq_len)
    info = document["models"][name] = {
        "build_seconds": time.perf_counter() - started, "parameters": sum(p.numel() for p in model.parameters()),
        "weights_bytes": weights, "n_layers": n_layers, "hidden": config.hidden_size, "vocab": config.vocab_size,
        "layer_flops_per_token": layer_flops, "head_flops_per_token": head_flops, "warmups": [],
    }
    log(f"{name}: {info['parameters']:,} parameters, {gib(weights)} GiB, built in "
        f"{info['build_seconds']:.1f} s; per token: layer {layer_flops / 1e9:.3f} GFLOP, head "
        f"{head_flops / 1e9:.3f} GFLOP")
    ids = torch.randint(0, config.vocab_size, (args.sequences, args.seq_len),
                        generator=torch.Generator().manual_seed(args.seed))
    if device.type != "meta":
        info["batch_size"] = batch_size(model, args, options, device)
        log(f"{name}: batch size {info['batch_size']}")
    full_tokens = args.sequences * args.seq_len
    warmed: set[tuple[str, int]] = set()
    for spec in args.pair_sets:
        probes = P.audit_probes(P.parse_pairs(spec, n_layers), n_layers)
        reference_passes, fast_passes = P.count_layer_passes(probes, n_layers)
        checked = reference_sample(probes, args.reference_sample)  # KLs kept for the fast-vs-reference check
        for path in args.path_list:
            if path == "reference":
                timed_probes = checked
                timed_sequences = args.sequences
                timed_passes = P.count_layer_passes(timed_probes, n_layers)[0]
                full = counted_flops(layer_flops, head_flops, reference_passes, len(probes), full_tokens)
                timed = counted_flops(layer_flops, head_flops, timed_passes, len(timed_probes), full_tokens)
                # Every reference probe is one full forward: the sample's wall scales with its counted FLOPs.
                scale = full / timed
                timed_on = (f"all {len(probes)} probes x {timed_sequences} seq" if len(timed_probes) == len(probes)
                            else f"{len(timed_probes)} of {len(probes)} probes x {timed_sequences} seq, "
                                 f"x{scale:.2f} (FLOPs)")
            else:
                timed_probes = probes
                sample = args.fast_sample_sequences if spec.lower() != "adjacent" else 0
                timed_sequences = sample if 0 < sample < args.sequences else args.sequences
                timed_passes = fast_passes
                full = counted_flops(layer_flops, head_flops, fast_passes, len(probes), full_tokens)
                timed = counted_flops(layer_flops, head_flops, fast_passes, len(probes),
                                      timed_sequences * args.seq_len)
                # Every batch walks the same trie: the wall scales with the number of sequences.
                scale = args.sequences / timed_sequences
                timed_on = (f"all {len(probes)} probes x {args.sequences} seq" if scale == 1
                            else f"{len(probes)} probes x first {timed_sequences} of {args.sequences} seq, "
                                 f"x{scale:.2f} (seq)")
            run: dict[str, Any] = {
                "model": name, "pairs": spec, "path": path, "probes": len(probes),
                "layer_passes_per_batch": {"reference": reference_passes, "fast": fast_passes},
                "timed_probes": [p.name for p in timed_probes] if len(timed_probes) < len(probes) else "all",
                "timed_layer_passes_per_batch": timed_passes, "timed_sequences": timed_sequences,
                "n_sequences": args.sequences, "seq_len": args.seq_len, "scale": scale, "timed_on": timed_on,
                "counted_flops": full, "timed_counted_flops": timed,
            }
            document["runs"].append(run)
            if device.type == "meta":
                continue
            time_run(model, ids[:timed_sequences], probes, timed_probes, checked, run, info, warmed, args, options,
                     rate, device, weights)
            save()
    del model


def batch_size(model: torch.nn.Module, args: argparse.Namespace, options: dict[str, Any],
               device: torch.device) -> int | None:
    """--batch-size, else the engine's own plan, taken once per model with only the weights allocated (what the
    engine's first call would see) and then passed to every call, so that warm-up and timed calls run the same
    batch shapes (torch.compile specialises on them). None when the planner cannot be called: the engine plans."""
    if args.batch_size:
        return args.batch_size
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    try:
        return engine.plan_batch_size(model, args.seq_len, options.get("memory_budget"),
                                      options.get("vocab_chunk", engine.DEFAULT_VOCAB_CHUNK))
    except Exception as error:  # the planner is the engine's business; not knowing its plan is not fatal here
        log(f"engine.plan_batch_size failed ({type(error).__name__}: {error}): the engine plans each call")
        return None


def time_run(model: torch.nn.Module, ids: torch.Tensor, probes: list[P.Probe], timed_probes: list[P.Probe],
             checked: list[P.Probe], run: dict[str, Any], info: dict[str, Any], warmed: set[tuple[str, int]],
             args: argparse.Namespace, options: dict[str, Any], rate: dict[str, Any] | None, device: torch.device,
             weights: int) -> None:
    """Warm up (once per path and sequence count), then one timed engine.measure; results go into `run`."""
    path, label = run["path"], f"{run['model']} {run['pairs']} {run['path']}"
    run["batch_size"] = info["batch_size"]
    kwargs = {"path": path, "batch_size": info["batch_size"], **options}
    if (path, len(ids)) not in warmed:
        warmed.add((path, len(ids)))
        log(f"{label}: warm-up, 2 probes x {len(ids)} seq")
        seconds, _ = timed_call(lambda: engine.measure(model, ids, probes[:2], **kwargs), device)
        info["warmups"].append({"path": path, "sequences": len(ids), "probes": 2, "seconds": seconds})
        log(f"{label}: warm-up {seconds:.1f} s")
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    log(f"{label}: timing {run['timed_on']}")
    if "progress" not in options:
        kwargs["progress"] = Progress(label)
    try:
        seconds, result = timed_call(lambda: engine.measure(model, ids, timed_probes, **kwargs), device)
    except torch.cuda.OutOfMemoryError as error:
        run["error"] = "CUDA out of memory"
        log(f"{label}: CUDA out of memory: {str(error).splitlines()[0]}")
        torch.cuda.empty_cache()
        return
    run.update({
        "timed_seconds": seconds, "engine_seconds": result.seconds, "wall_seconds": seconds * run["scale"],
        "tflops": run["timed_counted_flops"] / seconds / 1e12, "noise_floor": result.noise_floor,
        "base_ppl": result.base_ppl, "kl_per_seq": {p.name: result.probes[p].kl_per_seq.tolist() for p in checked},
    })
    if rate is not None:
        run["fraction_of_matrix_rate"] = run["tflops"] / rate["tflops"]
    if device.type == "cuda":
        run["peak_bytes"] = torch.cuda.max_memory_allocated(device)
        run["peak_over_weights"] = run["peak_bytes"] / weights
    log(f"{label}: {seconds:.1f} s timed -> {run['wall_seconds']:.1f} s, {run['tflops']:.4g} TFLOP/s, "
        f"peak {gib(run.get('peak_bytes'))} GiB")


def timed_call(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def table_rows(document: dict[str, Any], rate: dict[str, Any] | None) -> list[list[Any]]:
    walls = {(r["model"], r["pairs"], r["path"]): r.get("wall_seconds") for r in document["runs"]}
    rows = []
    for r in document["runs"]:
        wall = r.get("wall_seconds")
        reference = walls.get((r["model"], r["pairs"], "reference"))
        speedup = f"{reference / wall:.2f}" if wall and reference else "-"
        tflops = r.get("tflops")
        rows.append([
            r["model"], r["pairs"], r["path"], r["probes"], r["timed_on"],
            r.get("error", "not run") if wall is None else f"{wall:.{1 if wall >= 10 else 2}f}", speedup,
            f"{r['counted_flops'] / 1e15:.4g}", "-" if tflops is None else f"{tflops:.4g}",
            "-" if tflops is None or rate is None else f"{100 * tflops / rate['tflops']:.1f}",
            gib(r.get("peak_bytes")),
            "-" if r.get("peak_over_weights") is None else f"{r['peak_over_weights']:.2f}",
        ])
    return rows


def footnotes(document: dict[str, Any]) -> list[str]:
    notes = ["timed on: reference rows scale a stride sample of probes (base pass included) by counted FLOPs; "
             "fast rows scale the first S sequences by n/S. Counted PFLOP is for the full run."]
    for name, info in document["models"].items():
        warmups = ", ".join(f"{w['path']} {w['seconds']:.1f} s ({w['probes']} probes x {w['sequences']} seq)"
                            for w in info["warmups"])
        notes.append(f"{name}: {info['parameters']:,} parameters, weights {gib(info['weights_bytes'])} GiB, "
                     f"built in {info['build_seconds']:.1f} s; batch {info.get('batch_size') or '-'} sequences; "
                     f"warm-up (not in wall s): {warmups or 'none'}")
    # The sampled reference probes are in every fast run of the same pair set: compare where sequences overlap.
    for r in document["runs"]:
        if r["path"] != "fast" or "kl_per_seq" not in r:
            continue
        ref = next((x for x in document["runs"] if x["path"] == "reference" and x["model"] == r["model"]
                    and x["pairs"] == r["pairs"] and "kl_per_seq" in x), None)
        if ref is None:
            continue
        diffs = [(abs(a - b), abs(a - b) / max(abs(b), 1e-12))
                 for probe, fast_kl in r["kl_per_seq"].items() if probe in ref["kl_per_seq"]
                 for a, b in zip(fast_kl, ref["kl_per_seq"][probe])]
        if diffs:
            r["max_abs_dkl"] = max(d[0] for d in diffs)
            r["max_rel_dkl"] = max(d[1] for d in diffs)
            notes.append(f"{r['model']} {r['pairs']}: fast vs reference KL on {len(ref['kl_per_seq'])} sampled probes "
                         f"x {r['timed_sequences']} seq: max |dKL| {r['max_abs_dkl']:.2e}, max relative "
                         f"{r['max_rel_dkl']:.2e} (noise floor {r.get('noise_floor', 0):.2e})")
    return notes


if __name__ == "__main__":
    main()
