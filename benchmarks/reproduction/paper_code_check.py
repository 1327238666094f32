"""Does this tool give the paper's own numbers under each of the paper's contracts?

    python benchmarks/reproduction/paper_code_check.py --paper PATH [--models demo,smollm2-135m] [--prompts 16]

PATH is a checkout of Gpgabriel25/ProtocolGapDiagnostic (the paper's public code). For each model and contract,
the same token ids (the paper's own prompt set, `scaling_bisimulation.build_diverse_prompts`, tokenized and padded
by this tool's `prompts:` reader) go through the paper's forward and KL code (`paper_code.py`: imported unchanged,
weights pointed at local files) and through `swapkl audit --contract C` in float32, and every pair's numbers are
compared:

- last-token:  the torch script scaling_bisimulation.py (each prompt alone, unpadded; KL at the last position;
               both replacement directions and their max, Definition 1);
- masked-mean: the paper's JAX forward (GPT-NeoX from the trajectory script, Llama from the Llama script) on
               right-padded prompts and qwen3_8b_tpu.py's `kl_per_prompt` (mean over each prompt's real tokens);
- trajectory / llama-adjacent: the same JAX forward on prompts padded to --seq-len, every position including pads,
               with the trajectory script's `kl_per_prompt` (GPT-NeoX) or the Llama script's `_batched_kl`.

Prints one row per model x contract x quantity: pairs compared, largest relative difference, and whether it is
within 1e-5. The JAX contracts are skipped with a notice where jax is not installed. Float32, CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_code  # noqa: E402  (beside this script)

TOLERANCE = 1e-5
JAX_CONTRACT = {"gpt_neox": "trajectory", "llama": "llama-adjacent"}  # the pads-in, one-direction contract


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", type=Path, required=True, help="checkout of Gpgabriel25/ProtocolGapDiagnostic")
    parser.add_argument("--models", default="demo,smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16, help="prompts of the paper's own set")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--pairs", default=None, help="pairs for every model (default: the model's adjacent pairs, "
                        "every fifth for models over 12 layers)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if not (args.paper / "scaling_bisimulation.py").is_file():
        print(f"--paper {args.paper}: not a checkout of the paper's code (no scaling_bisimulation.py)",
              file=sys.stderr)
        return 2
    try:
        import jax  # noqa: F401
        has_jax = True
    except ImportError:
        print("notice: jax is not installed: the JAX contracts (masked-mean, trajectory, llama-adjacent) are "
              "skipped (pip install jax)", file=sys.stderr)
        has_jax = False
    rows, records = [], []
    for model in args.models.split(","):
        found = check_model(model, args, has_jax)
        records.append(found)
        rows.extend(found["rows"])
    from tabulate import tabulate

    print(tabulate(rows, headers=["model", "contract", "quantity", "pairs", "max rel. diff", "within 1e-5"],
                   disable_numparse=True))
    if args.json_out:
        args.json_out.write_text(json.dumps(records, indent=2) + "\n")
    return 0 if all(row[-1] == "yes" for row in rows) else 1


def check_model(model: str, args: argparse.Namespace, has_jax: bool) -> dict:
    from pytest_swapkl.inputs.data import load_calibration
    from pytest_swapkl.inputs.loading import load_model

    started = time.perf_counter()
    loaded = load_model(model, device="cpu", dtype="float32")
    folder, model_type = Path(loaded.path), loaded.model.config.model_type
    n_layers, tokenizer = loaded.n_layers, loaded.tokenizer
    pairs = parse_pairs(args.pairs, n_layers)
    del loaded
    script = paper_code.load_script(args.paper, "scaling_bisimulation")
    texts = script.build_diverse_prompts(args.prompts)  # the paper's own prompt set
    work = Path(tempfile.mkdtemp(prefix="paper-check-"))
    prompts_file = work / "prompts.jsonl"
    # ids as the paper's scripts tokenize (special tokens as the tokenizer adds them), cut to --seq-len
    prompts_file.write_text("".join(json.dumps({"input_ids": tokenizer(text)["input_ids"][:args.seq_len]}) + "\n"
                                    for text in texts))
    source = f"prompts:{prompts_file}"
    # read by the audit's own reader with the model's tokenizer (its pad id), so both sides get the same ids
    unpadded = load_calibration(source, tokenizer, seq_len=args.seq_len)
    padded_full = load_calibration(source, tokenizer, seq_len=args.seq_len, pad_to_seq_len=True)
    prompt_ids = [row[mask.bool()].tolist() for row, mask in zip(unpadded.input_ids, unpadded.attention_mask)]

    rows, details = [], {}
    paper = paper_code.last_token(args.paper, folder, prompt_ids, pairs)
    tool = tool_audit(model, source, "last-token", pairs, args.seq_len, work)
    details["last-token"] = compare(rows, model, "last-token", paper, tool, ("ji", "ij", "max"))
    if has_jax:
        run, jax_script = paper_code.jax_forward(args.paper, folder, model_type, unpadded.input_ids.shape[1])
        paper = paper_code.masked_mean(args.paper, run, unpadded.input_ids.numpy(),
                                       unpadded.attention_mask.numpy().astype(bool), n_layers, pairs)
        tool = tool_audit(model, source, "masked-mean", pairs, args.seq_len, work)
        details["masked-mean"] = compare(rows, model, "masked-mean", means(paper), tool, ("interchange", "ji", "ij"))
        run, jax_script = paper_code.jax_forward(args.paper, folder, model_type, args.seq_len)
        contract = JAX_CONTRACT[model_type]
        paper = paper_code.every_position(jax_script, run, padded_full.input_ids.numpy(), n_layers, pairs)
        tool = tool_audit(model, source, contract, pairs, args.seq_len, work)
        details[contract] = compare(rows, model, contract, means(paper), tool, ("interchange", "ji"))
    return {"model": model, "model_type": model_type, "pairs": pairs, "prompts": len(prompt_ids),
            "seq_len": args.seq_len, "seconds": round(time.perf_counter() - started, 1), "rows": rows,
            "details": details}


def parse_pairs(spec: str | None, n_layers: int) -> list[tuple[int, int]]:
    if spec:
        return [tuple(int(x) for x in part.split("-")) for part in spec.split(",")]
    step = 1 if n_layers <= 12 else 5
    return [(i, i + 1) for i in range(0, n_layers - 1, step)]


def tool_audit(model: str, source: str, contract: str, pairs: list[tuple[int, int]], seq_len: int,
               work: Path) -> dict:
    """`swapkl audit` under the contract, float32 on the CPU: per pair, the three quantities' means."""
    from pytest_swapkl.commands.cli import main as swapkl

    out = work / f"{contract}.json"
    argv = ["audit", model, "--data", source, "--contract", contract, "--dtype", "float32", "--device", "cpu",
            "--pairs", ",".join(f"{i}-{j}" for i, j in pairs), "--seq-len", str(seq_len), "--bootstrap", "100",
            "--replacement-reduce", "max", "--no-resume", "--json", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):  # the audit's tables: the JSON is what is compared
        code = swapkl(argv)
    if code != 0:
        raise SystemExit(f"swapkl {' '.join(argv)} failed")
    document = json.loads(out.read_text())
    return {(p["i"], p["j"]): {"interchange": p["interchange"], "ji": p["replacement_ji"], "ij": p["replacement_ij"],
                               "max": p["replacement"]} for p in document["pairs"]}


def means(paper: dict) -> dict:
    return {pair: {name: float(np.mean(values)) for name, values in found.items()} for pair, found in paper.items()}


def compare(rows: list, model: str, contract: str, paper: dict, tool: dict, quantities: tuple[str, ...]) -> dict:
    details = {}
    for quantity in quantities:
        diffs = {f"{i}-{j}": (paper[(i, j)][quantity], tool[(i, j)][quantity]) for (i, j) in paper}
        worst = max(abs(t - p) / max(abs(p), 1e-30) for p, t in diffs.values())
        rows.append([model, contract, quantity, str(len(diffs)), f"{worst:.1e}", "yes" if worst <= TOLERANCE else "NO"])
        details[quantity] = {"paper_vs_tool": diffs, "max_relative_difference": worst}
    return details


if __name__ == "__main__":
    raise SystemExit(main())
