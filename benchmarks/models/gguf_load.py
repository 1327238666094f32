"""Real GGUF checkpoints through the cache: cold build, warm load, decoding and perplexity, per named model.

    HF_HUB_OFFLINE=1 python benchmarks/models/gguf_load.py                       # both models
    HF_HUB_OFFLINE=1 python benchmarks/models/gguf_load.py smollm2-135m --no-verify --no-exactness

Every phase runs in a fresh process (so each pays its own torch/transformers import, shown apart):
  assemble   resolve_named() into that root (gemma: its four chunks concatenated and sha256-checked)
  cold       dequantized_folder() into a fresh temporary cache root (GGUF -> float32 safetensors + tokenizer;
             includes the build's own reload check)
  warm       AutoModelForCausalLM/AutoTokenizer.from_pretrained(entry) (the page cache is hot: the entry was
             just written), then greedy decoding of PROMPT and the perplexity of SENTENCE
  verify     the GGUF loaded directly with transformers, compared with the entry: every tensor bit for bit, logits
  exactness  every quantized tensor dequantized in float64 and compared with the float32 values
The temporary root is removed at the end; --fill-default-cache also builds the entries in the default cache root
(~/.cache/swapkl/gguf unless $SWAPKL_CACHE_DIR or $XDG_CACHE_HOME say otherwise) for later runs to reuse.
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

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "The capital of France is"
SENTENCE = "The cat sat on the mat and watched the birds in the garden."
NEW_TOKENS = 12


# --- the phases, each run in its own process --------------------------------------------------------------------

def phase_cold(gguf: str, cache_root: str) -> dict:
    from pytest_swapkl.inputs.gguf import dequantized_folder

    started = time.perf_counter()
    entry = dequantized_folder(gguf, cache_root, notice=lambda _: None)
    return {"seconds": time.perf_counter() - started, "entry": str(entry)}


def phase_warm(entry: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(entry, dtype=torch.float32).eval()
    model_seconds = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(entry)
    seconds = time.perf_counter() - started
    config = model.config
    layer_types = getattr(config, "layer_types", None)
    return {
        "seconds": seconds, "model_seconds": model_seconds, "class": type(model).__name__,
        "model_type": config.model_type,
        "n_layers": config.num_hidden_layers, "tied": model.get_output_embeddings().weight.data_ptr()
        == model.get_input_embeddings().weight.data_ptr(),
        "sliding_window": getattr(config, "sliding_window", None),
        "full_attention_layers": [k for k, kind in enumerate(layer_types) if kind == "full_attention"]
        if layer_types else None,
        "layer_types_set": sorted(set(layer_types)) if layer_types else None,
        "decoded": greedy(model, tokenizer), "ppl": perplexity(model, tokenizer),
        "threads": torch.get_num_threads(),
    }


def greedy(model, tokenizer) -> str:
    import torch

    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def perplexity(model, tokenizer) -> dict:
    """exp(mean NLL) of SENTENCE's tokens, each predicted from the ones before (the first from BOS where the
    tokenizer adds one: Gemma's does, SmolLM2's does not)."""
    import math

    import torch

    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    return {"ppl": math.exp(loss), "tokens": ids.shape[1], "predicted": ids.shape[1] - 1}


def phase_verify(gguf: str, entry: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_swapkl.inputs.gguf import _dequantizing_config

    path = Path(gguf)
    started = time.perf_counter()
    direct = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                  quantization_config=_dequantizing_config()).eval()
    direct_seconds = time.perf_counter() - started
    cached = AutoModelForCausalLM.from_pretrained(entry, dtype=torch.float32).eval()
    expected, found = direct.state_dict(), cached.state_dict()
    identical = expected.keys() == found.keys() and all(torch.equal(expected[k], found[k]) for k in expected)
    ids = AutoTokenizer.from_pretrained(entry)(SENTENCE, return_tensors="pt").input_ids
    with torch.no_grad():
        same_logits = torch.equal(direct(ids).logits, cached(ids).logits)
    return {"bit_identical": identical, "same_logits": same_logits, "n_tensors": len(found),
            "direct_gguf_load_seconds": direct_seconds}


class _Float64Numpy:
    """numpy, with float32 meaning float64: gguf.quants then dequantizes every block in float64."""

    def __getattr__(self, name):
        import numpy

        return numpy.float64 if name == "float32" else getattr(numpy, name)


def phase_exactness(gguf: str) -> dict:
    """Per block type: how many dequantized values float32 does not hold exactly (0 means float32 is lossless)."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, quants

    plain = (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16)
    counts: dict[str, list[int]] = {}
    for tensor in GGUFReader(gguf).tensors:
        if tensor.tensor_type in plain:
            continue
        single = quants.dequantize(tensor.data, tensor.tensor_type)
        saved, quants.np = quants.np, _Float64Numpy()
        try:
            double = quants.dequantize(tensor.data, tensor.tensor_type)
        finally:
            quants.np = saved
        assert single.dtype == np.float32 and double.dtype == np.float64
        count = counts.setdefault(tensor.tensor_type.name, [0, 0])
        count[0] += single.size
        count[1] += int((single.astype(np.float64) != double).sum())
    return {"types": {kind: {"values": values, "inexact": inexact} for kind, (values, inexact) in counts.items()}}


PHASES = {"cold": phase_cold, "warm": phase_warm, "verify": phase_verify, "exactness": phase_exactness}


def child(phase: str, arguments: list[str]) -> None:
    started = time.perf_counter()
    import torch  # noqa: F401  (timed apart: every phase pays it)
    import transformers  # noqa: F401

    imports = time.perf_counter() - started
    result = PHASES[phase](*arguments)
    print("RESULT " + json.dumps({**result, "import_seconds": imports}))


def run_phase(phase: str, *arguments: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, __file__, "--child", phase, *arguments], capture_output=True, text=True,
                          env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{phase} {arguments} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


# --- the table --------------------------------------------------------------------------------------------------

def folder_bytes(folder: Path) -> int:
    return sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())


def measure(name: str, root: Path, verify: bool, exactness: bool) -> dict:
    from pytest_swapkl.inputs.gguf import gguf_metadata
    from pytest_swapkl.inputs.named_models import resolve_named

    started = time.perf_counter()
    gguf = resolve_named(name, root)  # gemma: assembled from its chunks into the fresh root (cold too)
    resolve_seconds = time.perf_counter() - started
    cold = run_phase("cold", str(gguf), str(root))  # pays the header read too: nothing is memoized in root yet
    header = gguf_metadata(gguf, root)
    entry = Path(cold["entry"])
    row = {"model": name, "gguf": gguf.name, "quantization": header["quantization"],
           "gguf_mb": gguf.stat().st_size / 1e6, "resolve_s": resolve_seconds, "cold": cold,
           "entry_mb": folder_bytes(entry) / 1e6, "safetensors_mb": (entry / "model.safetensors").stat().st_size / 1e6,
           "warm": run_phase("warm", str(entry))}
    if verify:
        row["verify"] = run_phase("verify", str(gguf), str(entry))
    if exactness:
        row["exactness"] = run_phase("exactness", str(gguf))
    return row


def print_table(rows: list[dict]) -> None:
    from tabulate import tabulate

    table = [[r["model"], r["quantization"], f"{r['gguf_mb']:.1f}", f"{r['cold']['seconds']:.1f}",
              f"{r['warm']['seconds']:.2f}", f"{r['cold']['import_seconds']:.1f}", f"{r['entry_mb']:.1f}",
              f"{r['safetensors_mb']:.1f}", f"{r['warm']['ppl']['ppl']:.2f}", repr(r["warm"]["decoded"])]
             for r in rows]
    print(tabulate(table, headers=["model", "quant", "GGUF MB", "cold s", "warm s", "import s", "entry MB",
                                   "safetensors MB", "sentence ppl", f"greedy {NEW_TOKENS} tokens after {PROMPT!r}"]))
    for r in rows:
        warm = r["warm"]
        tokenizer_seconds = warm["seconds"] - warm["model_seconds"]
        print(f"\n{r['model']}: warm = {warm['model_seconds']:.2f} s model + {tokenizer_seconds:.2f} s tokenizer; "
              f"GGUF resolved (assembled) in {r['resolve_s']:.2f} s")
        print(f"  {warm['class']} (model_type {warm['model_type']}), {warm['n_layers']} layers, "
              f"tied head {warm['tied']}, sliding_window {warm['sliding_window']}, layer types "
              f"{warm['layer_types_set']}, full attention at {warm['full_attention_layers']}; torch threads "
              f"{warm['threads']}; ppl over {warm['ppl']['predicted']} predicted of {warm['ppl']['tokens']} tokens")
        if "verify" in r:
            v = r["verify"]
            print(f"  verify: {v['n_tensors']} tensors bit-identical {v['bit_identical']}, logits identical "
                  f"{v['same_logits']} (direct GGUF load took {v['direct_gguf_load_seconds']:.1f} s)")
        if "exactness" in r:
            print("  float32 exactness: " + ", ".join(f"{kind}: {c['inexact']} of {c['values']} values inexact"
                                                      for kind, c in r["exactness"]["types"].items()))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--no-verify", action="store_true", help="skip the bit-for-bit comparison with the GGUF")
    parser.add_argument("--no-exactness", action="store_true", help="skip the float64 dequantization check")
    parser.add_argument("--fill-default-cache", action="store_true",
                        help="also build the entries in the default cache root, for later runs")
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import transformers

    print(f"transformers {transformers.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    root = Path(tempfile.mkdtemp(prefix="swapkl-gguf-bench-"))
    try:
        rows = [measure(name, root, not args.no_verify, not args.no_exactness) for name in args.models]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.fill_default_cache:
        from pytest_swapkl.inputs.gguf import dequantized_folder
        from pytest_swapkl.inputs.named_models import resolve_named

        for name in args.models:
            print(f"default cache entry of {name}: {dequantized_folder(resolve_named(name))}")


if __name__ == "__main__":
    main()
