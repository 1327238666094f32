"""Sharded audits over several GPUs of one host: speed-up over one GPU, and the numbers against one GPU's.

    python benchmarks/gpu/multi_gpu.py --models llama3-8b,qwen3-8b --gpus 1,2,4 --out "$OUT"        # nvidia-h200-x4
    python benchmarks/gpu/multi_gpu.py --models llama3-8b,qwen3-8b --gpus 1,2,4,8 --out "$OUT"      # nvidia-h200-x8
    python benchmarks/gpu/multi_gpu.py --models llama3-70b --placed --gpus 4 --pairs adjacent --out "$OUT"
    python benchmarks/gpu/multi_gpu.py --models tiny --gpus 1,2 --device cpu --out /tmp/mg      # smoke test on a CPU

Models: the published configs of benchmarks/gpu/gpu_scale.py (Llama-3.1-8B, Qwen3-8B) and Llama-3.1-70B, random
weights (seed 0), saved once as bf16 safetensors under --models-dir (not under OUT, whose files come back).
Calibration: random ids, --sequences x --seq-len, saved as .npy. Each run is
`torchrun --nproc-per-node G -m pytest_swapkl audit MODEL --pairs all` (one GPU per rank), without finished
units or compiled kernels from the run before (the memo of the weights' sha256 is kept), timed from launch
to exit; --placed instead runs one process with `--device-map auto` across the G GPUs (a model larger than
one GPU). NVLink multicast stays off (NCCL is not used: the ranks meet on gloo, see docs/scaling.md).
The table: wall time, speed-up over the G=1 run (wall: launch to exit, loading included; measure: the
slowest shard's probes), and the largest |difference| of any pair's R, I and removal KL from the G=1 run,
relative to the value. Units never span two batches, so G ranks and one rank measure the same batches:
any difference is the GPU's own run-to-run rounding.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate
from transformers import AutoModelForCausalLM, LlamaConfig

sys.path.insert(0, str(Path(__file__).parent))
from gpu_scale import CONFIGS  # noqa: E402  (the published 8B configs, one definition)

CONFIGS = {**CONFIGS, "llama3-70b": lambda: LlamaConfig(
    vocab_size=128256, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
    num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192},
    tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001)}


def saved_model(name: str, root: Path, dtype: torch.dtype) -> Path:
    folder = root / name
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    config = CONFIGS[name]()
    with torch.device("cuda" if torch.cuda.is_available() and name != "llama3-70b" else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    del model
    return folder


def run(model: Path, gpus: int, args: argparse.Namespace, ids: Path, out: Path, cache: Path) -> dict:
    document = out / f"{model.name}-{'placed' if args.placed else 'ranks'}-{gpus}.json"
    audit = ["audit", str(model), "--data", str(ids), "--pairs", args.pairs, "--seq-len", str(args.seq_len),
             "--json", str(document), "--no-resume"]
    if not args.placed:
        audit += ["--unit-sequences", str(args.unit_sequences)]
    # Every run starts without finished units and without compiled kernels; only the memo of the checkpoint's
    # sha256 is kept, so no run pays for hashing the weights again.
    shutil.rmtree(cache / "swapkl" / "compile", ignore_errors=True)
    for folder in (cache / "swapkl" / "units").glob("*/"):
        shutil.rmtree(folder, ignore_errors=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "SWAPKL_PROGRESS": "off", "NCCL_NVLS_ENABLE": "0"}
    if args.device == "cpu":
        audit += ["--device", "cpu"]
    if args.placed:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(gpus)))
        command = [sys.executable, "-m", "pytest_swapkl", *audit, "--device-map", "auto"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(gpus),
                   "-m", "pytest_swapkl", *audit]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (out / f"{document.stem}.stderr.txt").write_text(result.stderr)
    if result.returncode != 0:
        return {"model": model.name, "gpus": gpus, "error": result.stderr.strip().splitlines()[-1:]}
    measured = json.loads(document.read_text())["measure_seconds"]
    return {"model": model.name, "gpus": gpus, "wall_s": round(wall, 1), "measure_s": measured, "json": str(document)}


def values(path: str) -> np.ndarray:
    document = json.loads(Path(path).read_text())
    numbers = [p[key] for p in document["pairs"] for key in ("replacement", "interchange")]
    numbers += [r["kl"] for r in document["removal"]]
    return np.asarray([np.nan if x is None else x for x in numbers], dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="llama3-8b,qwen3-8b")
    parser.add_argument("--gpus", default="1,2,4", help="comma list of GPU counts; the first is the baseline")
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--unit-sequences", type=int, default=4,
                        help="sequences per work unit: --sequences / this many ranges should divide by every G")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--placed", action="store_true", help="one process, --device-map auto over the GPUs")
    parser.add_argument("--out", default="multi-gpu-results")
    parser.add_argument("--models-dir", default="/tmp/swapkl-bench-models")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    rows = []
    cache = Path(tempfile.mkdtemp(prefix="swapkl-mg-"))
    for name in args.models.split(","):
        model = saved_model(name, Path(args.models_dir), dtype)
        vocab = CONFIGS[name]().vocab_size
        ids = out / f"ids-{name}.npy"
        rng = np.random.default_rng(0)
        np.save(ids, rng.integers(2, vocab, size=(args.sequences, args.seq_len), dtype=np.int64))
        baseline = None
        for gpus in map(int, args.gpus.split(",")):
            row = run(model, gpus, args, ids, out, cache)
            if "wall_s" in row:
                if baseline is None:
                    baseline = row
                row["speed_up_wall"] = round(baseline["wall_s"] / row["wall_s"], 2)
                row["speed_up_measure"] = round(baseline["measure_s"] / row["measure_s"], 2)
                ref, mine = values(baseline["json"]), values(row["json"])
                scale = np.maximum(np.abs(ref), 1e-12)
                row["max_rel_diff"] = float(np.nanmax(np.abs(mine - ref) / scale))
            rows.append(row)
            (out / "multi_gpu.json").write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
            print(json.dumps(row), flush=True)
    table = tabulate([{k: v for k, v in row.items() if k != "json"} for row in rows], headers="keys")
    print(table)
    (out / "multi_gpu.txt").write_text(table + "\n")


if __name__ == "__main__":
    main()
