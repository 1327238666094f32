"""The head + KL step alone on the two small models' head shapes: the engine's chunked path against two other ways
to fold, in one process (issue 21; neither adopted, docs/benchmarks.md "The head + KL step alone"):
- the fused Triton kernel of benchmarks/fused_head_kernel.py, autotuned and at each of TILINGS (--tilings N: the
  first N);
- the chunked path with sum_v p_v z_v computed as h . (W^T p), W^T p once per batch, so that the fold reads only
  the probe's logits (in bfloat16 not the same number: the product uses the unrounded logits).

One stacked call as the audit makes it (SmolLM2-135M: 4 probes x 64 x 512 rows, 576 wide, 49,152 columns;
Gemma-3-270M: 3 x 64 x 512 rows, 640 wide, 262,144 columns), bfloat16, random weights. Rows: the chunked path
(compiled fold: the audit's), the head's products alone (the chunked path's matrix products without the fold: what a
fused kernel would have to match), then the others. Median of --repeats timed calls after two warm-up calls; each
result is checked against the chunked one ("max rel KL diff").

    python3 benchmarks/fused_head_bench.py --out $OUT
    python3 benchmarks/fused_head_bench.py --tilings 0 --out $OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_swapkl.engine import divergence  # noqa: E402
from pytest_swapkl.engine.divergence import Head, base_distribution, chunk_step, kl_and_nll  # noqa: E402

SHAPES = {"smollm2-135m": (4, 576, 49152), "gemma3-270m": (3, 640, 262144)}  # stack, hidden, vocab
# BLOCK_M, BLOCK_N, BLOCK_K, num_stages, num_warps, COLUMNS, GROUP_M
TILINGS = [(128, 128, 64, 3, 8, 512, 8), (128, 128, 128, 2, 8, 512, 8), (128, 256, 64, 3, 8, 512, 8),
           (128, 256, 128, 2, 8, 512, 8), (256, 128, 64, 3, 8, 512, 8), (128, 128, 64, 4, 4, 512, 8),
           (64, 256, 64, 4, 4, 512, 8), (128, 128, 64, 3, 8, 2048, 8), (128, 256, 64, 3, 8, 2048, 16),
           (64, 128, 64, 4, 4, 512, 8)]


def timed(call, repeats: int) -> float:
    for _ in range(2):
        call()
    torch.cuda.synchronize()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def base_moment(head: Head, base) -> torch.Tensor:
    """sum_v p_v W_v per position (float32): with it sum_v p_v z_v = h . (W^T p) for a head without bias or
    transform, so the fold need not read the base's logits. The products here are exact-float32 ones, not the
    model's rounded logits: in bfloat16 the term differs from the chunked path's by the logits' rounding."""
    moment = None
    for start, stop in head.chunks():
        p = torch.exp(base.logits[..., start:stop].float() - base.shift[..., None] - base.lse[..., None])
        part = p @ head.weight[start:stop].float()
        moment = part if moment is None else moment + part
    return moment


def _lse_step(z, shift, running_max, running_sum, label_logit, local_labels):
    """chunk_step without the sum p z term, which the identity computes apart."""
    z = z.float() - shift[..., None]
    new_max, running_sum = divergence._fold_lse(z, running_max, running_sum)
    return new_max, running_sum, divergence._fold_label(z, label_logit, local_labels)


def _sums_without_base_logits(head, prepared, base, labels, moment, lse_step):
    rows = prepared.shape[:-1]
    labels = labels.expand(*rows[:-1], labels.shape[-1])
    running_max = torch.full(rows, float("-inf"), device=prepared.device)
    running_sum = torch.zeros(rows, device=prepared.device, dtype=torch.float64)
    label_logit = torch.zeros(*rows[:-1], rows[-1] - 1, device=prepared.device)
    for start, stop in head.chunks():
        running_max, running_sum, label_logit = lse_step(
            F.linear(prepared, head.weight[start:stop]), base.shift, running_max, running_sum, label_logit,
            labels - start)
    expected = (prepared.float() * moment).sum(-1).double() - base.shift.double() * base.prob_mass
    return running_max, running_sum, expected, label_logit


def bench_model(name: str, step, repeats: int, tilings: int) -> tuple[list[dict], list[str]]:
    import fused_head_kernel

    stack, hidden, vocab = SHAPES[name]
    generator = torch.Generator(device="cuda").manual_seed(0)
    weight = (torch.randn(vocab, hidden, device="cuda", generator=generator) * 4 / hidden ** 0.5).bfloat16()
    head = Head(final=[], weight=weight, bias=None, transform=None, chunk=16384)
    base_hidden = torch.randn(64, 512, hidden, device="cuda", generator=generator).bfloat16()
    noise = torch.randn(stack, 64, 512, hidden, device="cuda", generator=generator)
    probes = (base_hidden + 0.3 * noise).bfloat16()
    labels = torch.randint(0, vocab, (64, 511), device="cuda", generator=generator)
    base = base_distribution(head, base_hidden)
    flop = 2 * probes[..., 0].numel() * hidden * vocab
    expected, _ = kl_and_nll(head, base, probes, labels, step)

    def fused_with(tiling):
        def fold(head, prepared, base, labels):
            return fused_head_kernel.fold(prepared, head.weight, base.logits, base.shift, base.lse, labels, tiling)
        return lambda: kl_and_nll(head, base, probes, labels, step, fold)

    moment = base_moment(head, base)  # once per batch, not per probe: timed apart
    lse_step = torch.compile(_lse_step)

    def without_base_logits(head, prepared, base, labels):
        return _sums_without_base_logits(head, prepared, base, labels, moment, lse_step)

    variants = [("chunked (compiled fold)", lambda: kl_and_nll(head, base, probes, labels, step), None),
                ("head products alone", lambda: [F.linear(probes, weight[a:b]) for a, b in head.chunks()], None),
                ("chunked, sum p z as h . (W^T p): no base logits read", lambda: kl_and_nll(
                    head, base, probes, labels, step, without_base_logits), {}),
                ("  its W^T p, once per batch", lambda: base_moment(head, base), None),
                ("fused, autotuned", fused_with(None), {})]
    for m, n, k, stages, warps, columns, group in TILINGS[:tilings]:
        tiling = {"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "num_stages": stages, "num_warps": warps,
                  "COLUMNS": columns, "GROUP_M": group}
        variants.append((f"fused {m}x{n}x{k} s{stages} w{warps} cols {columns} group {group}", fused_with(tiling),
                         tiling))
    rows = []
    for label, call, tiling in variants:
        try:
            seconds = timed(call, repeats)
        except Exception as error:  # a tiling this GPU cannot run (shared memory, registers)
            rows.append({"variant": label, "error": f"{type(error).__name__}: {str(error)[:80]}"})
            continue
        row = {"variant": label, "ms": 1e3 * seconds, "tflops": flop / seconds / 1e12}
        if tiling is not None:
            kl, _ = call()
            row["max_rel_kl_diff"] = float(((kl - expected).abs() / expected.abs()).max())
        rows.append(row)
        print(f"[{time.strftime('%H:%M:%S')}] {name} {label}: {row['ms']:.1f} ms", file=sys.stderr, flush=True)
    chunked_ms = rows[0]["ms"]
    lines = [f"\n{name}: one stacked call, {stack} x 64 x 512 rows, {hidden} wide, {vocab} columns, bfloat16, "
             f"{flop / 1e12:.1f} TFLOP in the head's products; median of {repeats}",
             tabulate([[r["variant"], f"{r['ms']:.1f}" if "ms" in r else r["error"],
                        f"{r['ms'] / chunked_ms:.2f}" if "ms" in r else "",
                        f"{r['tflops']:.0f}" if "ms" in r else "",
                        f"{r['max_rel_kl_diff']:.1e}" if "max_rel_kl_diff" in r else ""] for r in rows],
                      headers=["variant", "ms", "x chunked", "head TFLOP/s", "max rel KL diff"])]
    return rows, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,gemma3-270m")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tilings", type=int, default=len(TILINGS), help="how many of TILINGS to time (0: none)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("fused_head_bench.py: needs a CUDA GPU (and Triton, which CUDA builds of torch bring)")
    import fused_head_kernel  # noqa: F401  (imports Triton: fail here, not after the first model)
    document, text = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}, []
    step = torch.compile(chunk_step)
    for name in args.models.split(","):
        rows, lines = bench_model(name, step, args.repeats, args.tilings)
        document[name] = {"shape": dict(zip(("stack", "hidden", "vocab"), SHAPES[name])), "rows": rows}
        text += lines
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "fused_head_bench.json").write_text(json.dumps(document, indent=1))
        (args.out / "fused_head_bench.txt").write_text("\n".join(text) + "\n")
        torch.cuda.empty_cache()
    print("\n".join(text))


if __name__ == "__main__":
    main()
