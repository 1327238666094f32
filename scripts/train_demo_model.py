"""Train the bundled demo model: a tiny GPT-NeoX on the bundled corpus.

Steps, all seeded and single-threaded so a rerun on CPU gives the same weights:

1. train a byte-level BPE tokenizer on the train split (`<|endoftext|>` is the
   only special token; it also ends every work in the token stream);
2. train an 8-layer GPT-NeoX with AdamW and a warmup + cosine schedule on
   random `--seq-len` windows of the train split;
3. measure held-out perplexity (exp of the mean next-token NLL over contiguous,
   unpadded `--seq-len` chunks of the heldout split) and the add-one-smoothed
   unigram baseline on exactly the same target tokens;
4. save model + tokenizer with `save_pretrained` and write TRAINING.json.

Usage: python scripts/train_demo_model.py [--steps 1600]
Needs the corpus from scripts/build_demo_corpus.py.
"""

from __future__ import annotations

import os

# Pin every thread pool to one core before the libraries start them; also part
# of what makes the run reproducible.
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # tokenizers' BPE trainer and encoder
os.environ.setdefault("RAYON_RS_NUM_CPUS", "1")  # same, for older tokenizers releases
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import gzip
import json
import math
import platform
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "pytest_swapkl" / "data" / "corpus"
DEFAULT_OUT = ROOT / "pytest_swapkl" / "data" / "demo_model"
EOS = "<|endoftext|>"
WORK_SEPARATOR = "\n\n\n"  # written by build_demo_corpus.py between works


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate-size", type=int, default=512)
    parser.add_argument("--max-positions", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of --lr")
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--log-every", type=int, default=100)
    return parser.parse_args()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # the second core belongs to someone else
    torch.use_deterministic_algorithms(True)


def read_works(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().rstrip("\n").split(WORK_SEPARATOR)


def train_tokenizer(works: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable
        show_progress=False,
    )
    tokenizer.train_from_iterator(works, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, pad_token=EOS,
    )


def encode_stream(tokenizer: PreTrainedTokenizerFast, works: list[str]) -> torch.Tensor:
    """Token ids of all works, each followed by <|endoftext|>."""
    ids: list[int] = []
    for work in works:
        ids += tokenizer(work, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)


def build_model(args: argparse.Namespace, tokenizer: PreTrainedTokenizerFast) -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=args.max_positions,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    return GPTNeoXForCausalLM(config)


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.AdamW:
    # No weight decay on biases and LayerNorm gains, as usual for transformers.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))


def lr_factor(step: int, args: argparse.Namespace) -> float:
    """Linear warmup, then cosine decay from 1 to --min-lr-ratio."""
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(model: GPTNeoXForCausalLM, stream: torch.Tensor, args: argparse.Namespace) -> list[float]:
    optimizer = make_optimizer(model, args)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, args))
    generator = torch.Generator().manual_seed(args.seed)
    window = torch.arange(args.seq_len)
    losses = []
    model.train()
    for step in range(args.steps):
        starts = torch.randint(0, len(stream) - args.seq_len + 1, (args.batch_size,), generator=generator)
        batch = stream[starts[:, None] + window]
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % args.log_every == 0:
            recent = sum(losses[-args.log_every:]) / args.log_every
            print(f"step {step + 1}/{args.steps} loss {recent:.4f} lr {schedule.get_last_lr()[0]:.2e}", flush=True)
    return losses


def contiguous_chunks(stream: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Non-overlapping seq_len chunks; the tail shorter than seq_len is dropped."""
    n_chunks = len(stream) // seq_len
    return stream[: n_chunks * seq_len].view(n_chunks, seq_len)


@torch.no_grad()
def model_perplexity(model: GPTNeoXForCausalLM, chunks: torch.Tensor, batch_size: int) -> float:
    model.eval()
    total_nll = 0.0
    for batch in chunks.split(batch_size):
        logits = model(input_ids=batch).logits[:, :-1].double()
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
        total_nll += nll.item()
    return math.exp(total_nll / chunks[:, 1:].numel())


def unigram_perplexity(train_stream: torch.Tensor, chunks: torch.Tensor, vocab_size: int) -> float:
    """Add-one-smoothed unigram model from train counts, scored on the chunks' targets."""
    counts = torch.bincount(train_stream, minlength=vocab_size).double()
    log_probs = torch.log((counts + 1) / (counts.sum() + vocab_size))
    return math.exp(-log_probs[chunks[:, 1:]].mean().item())


def mark_portable_tokenizer_class(out: Path) -> None:
    """Record the tokenizer class as PreTrainedTokenizerFast.

    transformers 5 writes its internal "TokenizersBackend", which transformers
    4.x's AutoTokenizer cannot resolve; PreTrainedTokenizerFast loads on both.
    """
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n")


def save(model: GPTNeoXForCausalLM, tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(out)
    mark_portable_tokenizer_class(out)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    seed_everything(args.seed)

    train_works = read_works(args.corpus / "train.txt.gz")
    heldout_works = read_works(args.corpus / "heldout.txt.gz")
    tokenizer = train_tokenizer(train_works, args.vocab_size)
    train_stream = encode_stream(tokenizer, train_works)
    heldout_chunks = contiguous_chunks(encode_stream(tokenizer, heldout_works), args.seq_len)
    print(f"tokenizer: {len(tokenizer)} tokens; train {len(train_stream):,} tokens; "
          f"heldout {heldout_chunks.numel():,} tokens in {len(heldout_chunks)} chunks", flush=True)

    model = build_model(args, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters", flush=True)
    train_started = time.perf_counter()
    losses = train(model, train_stream, args)
    train_seconds = time.perf_counter() - train_started

    heldout_ppl = model_perplexity(model, heldout_chunks, args.eval_batch_size)
    unigram_ppl = unigram_perplexity(train_stream, heldout_chunks, len(tokenizer))
    save(model, tokenizer, args.out)

    tail = min(100, len(losses))
    report = {
        "command": shlex.join(["python", *sys.argv]),
        "seed": args.seed,
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("corpus", "out")},
        "model_config": model.config.to_diff_dict(),
        "parameters": n_params,
        "steps": args.steps,
        "tokens_seen": args.steps * args.batch_size * args.seq_len,
        "train_tokens": len(train_stream),
        "heldout_tokens": heldout_chunks.numel(),
        "heldout_chunks": len(heldout_chunks),
        "train_wall_seconds": round(train_seconds, 1),
        "total_wall_seconds": round(time.perf_counter() - started, 1),
        "final_train_loss": round(losses[-1], 4),
        f"final_train_loss_mean_last_{tail}_steps": round(sum(losses[-tail:]) / tail, 4),
        "heldout_perplexity": round(heldout_ppl, 3),
        "unigram_baseline_perplexity": round(unigram_ppl, 3),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
    }
    (args.out / "TRAINING.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
