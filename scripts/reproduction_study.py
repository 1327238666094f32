"""Reproduction study: does the replacement-interchange gap grow with training?

Trains a Pythia-style GPT-NeoX model (12 layers, width 512) on the bundled corpus from
initialisation, saves checkpoints on a log-spaced schedule, audits every checkpoint (all
pairs, both protocols, removals) and runs guided-removal validation on the last one.
Meant for one GPU (a few minutes on an H100); seeded.

    python scripts/reproduction_study.py --out runs/repro          # then see docs/reproduction.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

from pytest_swapkl.inputs.data import DEMO_CORPUS_DIR
from pytest_swapkl.inputs.loading import DEMO_MODEL_DIR
from pytest_swapkl.options import OPTIONS
from pytest_swapkl.results import write_json
from pytest_swapkl.runner import run_audit


def token_stream(tokenizer, path: Path) -> torch.Tensor:
    """Works separated by end-of-text, as the demo model was trained."""
    works = gzip.open(path, "rt", encoding="utf-8").read().split("\n\n\n")
    ids: list[int] = []
    for work in works:
        ids += tokenizer(work, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)


def log_spaced_steps(total: int) -> list[int]:
    """0, 16, 32, 64, ... doubling, and the last step."""
    steps, step = [0], 16
    while step < total:
        steps.append(step)
        step *= 2
    return steps + [total]


def train(args: argparse.Namespace, tokenizer, out: Path) -> list[tuple[int, Path]]:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=args.width, num_hidden_layers=args.layers,
                           num_attention_heads=args.width // 64, intermediate_size=4 * args.width,
                           max_position_embeddings=512, bos_token_id=tokenizer.eos_token_id,
                           eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    model = GPTNeoXForCausalLM(config).to(device)
    stream = token_stream(tokenizer, DEMO_CORPUS_DIR / "train.txt.gz")
    n_chunks = (len(stream) - 1) // args.seq_len
    chunks = stream[: n_chunks * args.seq_len].view(n_chunks, args.seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    generator = torch.Generator().manual_seed(args.seed)
    save_at = set(log_spaced_steps(args.steps))
    saved, log = [], []
    started = time.perf_counter()
    for step in range(args.steps + 1):
        if step in save_at:
            folder = out / "checkpoints" / f"step{step}"
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            saved.append((step, folder))
        if step == args.steps:
            break
        cosine = 0.5 * (1 + math.cos(math.pi * step / args.steps))
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * cosine)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = chunks[torch.randint(0, n_chunks, (args.batch_size,), generator=generator)].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0:
            log.append({"step": step, "loss": float(loss), "seconds": time.perf_counter() - started})
            print(f"step {step} loss {float(loss):.3f}", flush=True)
    write_json({"config": config.to_dict(), "args": {k: str(v) for k, v in vars(args).items()}, "log": log,
                "train_seconds": time.perf_counter() - started}, out / "training.json")
    return saved


def audit_options(model: str, prune_k: int, device: str, tokens: int) -> argparse.Namespace:
    options = argparse.Namespace(**{option.name: option.default for option in OPTIONS})
    options.model, options.pairs, options.device, options.dtype = model, "all", device, "float32"
    options.tokens = tokens
    options.prune_k = prune_k
    options.prune_methods = ("replacement", "interchange", "removal", "block_influence", "angular", "sleb")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/repro"))
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--audit-tokens", type=int, default=8192)
    parser.add_argument("--train-only", action="store_true", help="save the checkpoints, audit none of them")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(DEMO_MODEL_DIR)
    checkpoints = train(args, tokenizer, args.out)
    if args.train_only:
        print(json.dumps({"final_checkpoint": str(checkpoints[-1][1])}))
        return
    documents = []
    for step, folder in checkpoints:
        last = step == checkpoints[-1][0]
        options = audit_options(str(folder), 4 if last else 0, args.device, args.audit_tokens)
        document, _, _ = run_audit(options)
        document["checkpoint"] = {"step": step, "tokens_seen": step * args.batch_size * args.seq_len}
        documents.append(document)
        print(f"audited step {step}: base ppl {document['base']['ppl']:.2f}, "
              f"Spearman {document['summary']['spearman']}", flush=True)
    write_json({"schema": "swapkl-reproduction/1", "documents": documents}, args.out / "audits.json")
    print(json.dumps({"checkpoints": len(documents), "out": str(args.out)}))


if __name__ == "__main__":
    main()
