"""The arithmetic of docs/scaling.md: manifests, FLOPs and balance of sharded audits at 8B and 70B, from the configs.

    python benchmarks/gpu/scaling_plan.py > benchmarks/results/scaling/plan.txt

Counts as benchmarks/gpu/gpu_scale.py does: 2 x in x out per token per Linear, attention's QK^T and AV at the causal
mean context (L+1)/2, one head per probe and per group's base pass. The fast path's layer passes per batch are
`count_layer_passes`; each extra probe group repeats the base pass. Time at the fast path's measured 575 TFLOP/s
(Llama-3.1-8B shape, H100, docs/benchmarks.md). No torch, no GPU.
"""

from pytest_swapkl.engine.manifest import _layer_passes, assigned, build_manifest, probe_groups
from pytest_swapkl.engine.probes import audit_probes, count_layer_passes, parse_pairs

RATE = 575e12  # FLOP/s, measured (docs/benchmarks.md)
MODELS = {  # layers, hidden, intermediate, heads, kv heads, vocab (published config.json values)
    "llama3-8b": (32, 4096, 14336, 32, 8, 128256),
    "qwen3-8b": (36, 4096, 12288, 32, 8, 151936),
    "llama3-70b": (80, 8192, 28672, 64, 8, 128256),
}


def plan(name, seq_len=512, sequences=64, unit_sequences=8):
    n, hidden, inter, heads, kv, vocab = MODELS[name]
    head_dim = hidden // heads
    layer_params = 2 * hidden * hidden + 2 * hidden * kv * head_dim + 3 * hidden * inter
    layer = 2 * layer_params + 2 * 2 * (seq_len + 1) / 2 * hidden
    head = 2 * hidden * vocab
    params = n * layer_params + 2 * hidden * vocab
    print(f"{name}: {params / 1e9:.2f} B parameters ({params * 2 / 2**30:.1f} GiB in bf16), "
          f"{layer_params * 2 / 1e9:.2f} GB per layer; layer {layer / 1e9:.3f} GFLOP/token, head {head / 1e9:.3f}")
    worlds = (2, 4, 8) if n < 80 else (4, 8, 16, 32)
    for spec in ("adjacent", "all"):
        probes = audit_probes(parse_pairs(spec, n), n)
        fast = count_layer_passes(probes, n)[1]
        units = build_manifest(probes, n, sequences, unit_sequences)
        groups = probe_groups(probes, n)
        extra = (len(groups) - 1) * n
        flops = sequences * seq_len * ((fast + extra) * layer + (len(probes) + len(groups)) * head)
        cost = {u: (_layer_passes(groups[u.group]) + n) * (u.stop - u.start) for u in units}
        mean = sum(cost.values())
        balance = ", ".join(
            f"{w}: {max(sum(cost[u] for u in assigned(units, r, w)) for r in range(w)) / (mean / w):.3f}"
            for w in worlds)
        print(f"  {spec}: {len(probes)} probes, {fast} fast layer passes per batch, {len(groups)} groups "
              f"(+{extra} layer passes, +{100 * extra / fast:.1f}%), {len(units)} units of {unit_sequences} seq; "
              f"{flops / 1e15:.1f} PFLOP for {sequences} x {seq_len} tokens, {flops / RATE:.0f} s at 575 TFLOP/s; "
              f"slowest worker / mean: {balance}")


if __name__ == "__main__":
    for model in MODELS:
        plan(model)
