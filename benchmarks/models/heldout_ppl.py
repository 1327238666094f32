"""Base perplexity of each named model on the bundled held-out text (the `demo` data source), in float32 on CPU.

    python benchmarks/models/heldout_ppl.py [--tokens 8192] [--seq-len 256]

Every token position of every sequence counts (GUIDE section 1); a tokenizer that starts texts with BOS (Gemma's)
gets BOS + seq_len - 1 text tokens per sequence, as `swapkl audit` feeds it (docs/data.md).
"""

from __future__ import annotations

import argparse
import time

import torch
from tabulate import tabulate

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

MODELS = ("demo", "smollm2-135m", "gemma3-270m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=256)
    args = parser.parse_args()
    rows = []
    for name in MODELS:
        loaded = load_model(name, dtype="float32", device="cpu")
        data = load_calibration("demo", loaded.tokenizer, tokens=args.tokens, seq_len=args.seq_len,
                                vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
        started = time.perf_counter()
        result = engine.measure(loaded.model, data.input_ids, [P.identity(loaded.n_layers)])
        rows.append([name, loaded.architecture, loaded.n_layers, loaded.weights.get("quantization", "-"),
                     f"{data.n_sequences} x {data.seq_len}", f"{result.base_ppl:.2f}",
                     f"{time.perf_counter() - started:.1f}"])
        del loaded
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(tabulate(rows, headers=["MODEL", "architecture", "layers", "GGUF type", "sequences x tokens",
                                  "held-out ppl", "seconds"]))


if __name__ == "__main__":
    main()
