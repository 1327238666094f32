"""Time to the first number of `swapkl audit --compile on`, cold (empty swapkl cache folder) vs warm (the compile
cache of the run before, `engine/compile_cache.py`), each in a fresh process.

    python benchmarks/speed/compile_cache.py --model demo --device cpu --out benchmarks/results/compile_cache
    python benchmarks/speed/compile_cache.py --model llama3-8b --device cuda --tokens 16384 --seq-len 512 --skip-eager \
        --out "$OUT"

MODEL is anything `swapkl audit` takes, or a config name of benchmarks/gpu/multi_gpu.py (llama3-8b, qwen3-8b: random
bf16 weights from the published config, built once under --models-dir).

Per run: wall time of the whole process, time from the process start to the first finished probe result (the
first record in the resume journal, polled every 20 ms), and the audit's own `measure_seconds`. Runs, in order:
eager (`--compile off`, the floor), cold (fresh cache folder), warm, warm again; the journal and the audit cache
are per run, only `compile/` is carried from cold to warm. Rows go to stdout and OUT/compile_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate


def first_record(journal: Path) -> bool:
    for path in journal.glob("*.jsonl"):
        try:
            if len(path.read_bytes().splitlines()) > 1:  # the identity line, then a result
                return True
        except OSError:
            pass
    return False


def one_run(label: str, args: argparse.Namespace, cache: Path, compile_mode: str, out: Path) -> dict:
    for stale in ("journal", "units"):
        shutil.rmtree(cache / "swapkl" / stale, ignore_errors=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "SWAPKL_PROGRESS": "off"}
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # the swapkl cache folder's, nothing else
        env.pop(variable, None)
    document = out / f"audit-{label}.json"
    command = [sys.executable, "-m", "pytest_swapkl", "audit", args.model, "--device", args.device,
               "--pairs", args.pairs, "--tokens", str(args.tokens), "--seq-len", str(args.seq_len),
               "--compile", compile_mode, "--bootstrap", "10", "--json", str(document)]
    if args.data:
        command += ["--data", args.data]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while process.poll() is None:
        if first is None and first_record(cache / "swapkl" / "journal"):
            first = time.perf_counter() - started
        time.sleep(0.02)
    wall = time.perf_counter() - started
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"{label} run failed ({process.returncode}): {stderr[-2000:]}")
    measured = json.loads(document.read_text())
    return {"run": label, "compile": compile_mode, "first_number_s": round(first, 2) if first else None,
            "measure_s": measured["measure_seconds"], "process_s": round(wall, 2),
            "compile_notices": [line for line in stderr.splitlines() if "torch.compile" in line]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", default="adjacent")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--out", default="benchmarks/results/compile_cache")
    parser.add_argument("--skip-eager", action="store_true", help="no --compile off run (saves a run on a GPU)")
    parser.add_argument("--models-dir", default="/tmp/swapkl-bench-models")
    args = parser.parse_args()
    args.data = None
    if args.model in ("llama3-8b", "qwen3-8b", "llama3-70b"):
        import torch

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))  # multi_gpu.py's saved models
        import numpy as np
        from multi_gpu import saved_model

        args.model = str(saved_model(args.model, Path(args.models_dir), torch.bfloat16))
        # A config-built model has no tokenizer: random token ids, pre-tokenized, stand in for the corpus text.
        vocab = json.loads((Path(args.model) / "config.json").read_text())["vocab_size"]
        ids = np.random.default_rng(0).integers(0, vocab, (args.tokens // args.seq_len, args.seq_len))
        args.data = str(Path(args.models_dir) / f"ids_{args.tokens}x{args.seq_len}.npy")
        np.save(args.data, ids.astype(np.int64))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    rows = [] if args.skip_eager else [one_run("eager", args, out / "cache-eager", "off", out)]
    rows.append(one_run("cold", args, cache, "on", out))
    rows.append(one_run("warm", args, cache, "on", out))
    rows.append(one_run("warm-again", args, cache, "on", out))
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out / "cache-eager", ignore_errors=True)
    table = tabulate([{k: v for k, v in row.items() if k != "compile_notices"} for row in rows], headers="keys")
    header = (f"model {args.model}, device {args.device}, pairs {args.pairs}, {args.tokens} tokens x "
              f"{args.seq_len}; python {sys.version.split()[0]}")
    print(header + "\n" + table)
    (out / "compile_cache.json").write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
    (out / "compile_cache.txt").write_text(header + "\n" + table + "\n")


if __name__ == "__main__":
    main()
