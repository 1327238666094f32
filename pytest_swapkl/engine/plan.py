"""The batch plan: how many sequences per batch and how many probes per layer call, from the device's memory.

A probe's cost is matrix products whose height is the number of rows one call sees: sequences x tokens,
times the probes stacked into that call (``fastpath``). A small model's layer on a few sequences is a
product far too short to keep a GPU busy, so on CUDA the plan makes every layer call at least
``SATURATING_FLOP`` tall, using the whole calibration set in one batch and stacking probes when one
batch is not enough, within a share of the free memory. A large model reaches that height with a few
sequences, and the plan then stays at the budget that kept an 8B audit near weights + 30%: more rows
would buy no speed, only memory. On CPU the plan is 192 MiB of batch and no stacking, except that a batch is
made at least ``CPU_ROWS`` tokens tall within ``CPU_MAX_BUDGET``: a large vocabulary's head chunks would
otherwise leave a real model one short sequence per batch (docs/decisions.md, "Small batches on CPU").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

CUDA_FREE_SHARE = 0.5  # of the free GPU memory (plus what this process holds unused) a default plan may use
CPU_BUDGET = 192 << 20
# SmolLM2-135M (49k vocabulary) fits one 256-token sequence in 192 MiB; 4 per batch took 13% less CPU time
# (docs/benchmarks.md, "CPU profile"). Past about 2048 rows the demo model got slower (page faults, decisions.md).
CPU_ROWS = 1024
CPU_MAX_BUDGET = 1 << 30
MIN_CUDA_BUDGET = 1 << 30
# One layer call of at least this many counted FLOPs runs within a few percent of its shape's best rate on an
# H200 (docs/benchmarks.md, "layer call height": SmolLM2-135M's layer 23% of the matrix rate at 0.25 TFLOP per
# call, 25% at 0.5, at most 26%; Pythia-1.4B's 70% at 0.84, at most 73%; Llama-3.1-8B's 76% at 0.9, at most 80%).
SATURATING_FLOP = 1e12
MAX_STACK = 64


@dataclass(frozen=True)
class BatchPlan:
    batch_size: int  # sequences per batch
    stack: int  # probes per layer call on the fast path (1 = depth-first, one state per slot)
    memory_budget: int  # bytes the plan sized itself to
    budget_source: str  # how the budget was chosen, for the JSON and the docs
    layer_flop_per_token: float  # counted matrix FLOPs of one layer on one token

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def layer_flop_per_token(config: Any, seq_len: int) -> float:
    """Matrix FLOPs of one decoder layer on one token: the projections, the gated or plain MLP, attention scores."""
    hidden = config.hidden_size
    heads = getattr(config, "num_attention_heads", 1) or 1
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    ffn = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", None) or 4 * hidden
    gated = getattr(config, "hidden_act", getattr(config, "hidden_activation", "")) in ("silu", "gelu_pytorch_tanh")
    projections = hidden * head_dim * (2 * heads + 2 * kv_heads)  # q, o and k, v
    mlp = hidden * ffn * (3 if gated else 2)
    scores = 2 * heads * head_dim * seq_len / 2  # QK^T and AV over the causal half, on average
    return 2.0 * (projections + mlp + scores)


def plan_batches(model: nn.Module, seq_len: int, n_sequences: int, memory_budget: Optional[int] = None,
                 vocab_chunk: int = 16384, path: str = "fast", stack: Optional[int] = None) -> BatchPlan:
    """The plan for measuring ``n_sequences`` of ``seq_len`` tokens on ``model``'s device.

    ``memory_budget`` caps the bytes (``--max-memory``); ``stack`` fixes the probes per layer call
    (None: chosen here, from the layer's FLOPs per token and the rows one batch gives).
    """
    device = next(model.parameters()).device
    flop = layer_flop_per_token(model.config, seq_len)
    sizes = _Sizes.of(model, seq_len, vocab_chunk, path)
    if device.type != "cuda":
        if memory_budget is not None:
            return BatchPlan(min(sizes.fit(memory_budget, 1), n_sequences), stack or 1, memory_budget,
                             "--max-memory", flop)
        tall_enough = min(sizes.fit(CPU_MAX_BUDGET, 1), math.ceil(CPU_ROWS / seq_len))
        return BatchPlan(min(max(sizes.fit(CPU_BUDGET, 1), tall_enough), n_sequences), stack or 1, CPU_BUDGET,
                         "cpu default", flop)
    share = int(_cuda_available(device) * CUDA_FREE_SHARE)
    budget = share if memory_budget is None else min(share, memory_budget)
    source = f"{CUDA_FREE_SHARE:.0%} of free GPU memory" if memory_budget is None else "--max-memory"
    if path != "fast":
        return BatchPlan(min(n_sequences, sizes.fit(budget, 1)), 1, budget, source, flop)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    # Enough sequences for a saturating call, but never fewer than the budget that kept 8B audits near
    # weights + 30% gives: a large model needs no more, and a small one gets the whole set.
    rows_wanted = math.ceil(SATURATING_FLOP / flop)
    floor = sizes.fit(min(budget, max(weights // 4, MIN_CUDA_BUDGET)), 1)
    batch = min(n_sequences, sizes.fit(budget, 1), max(floor, math.ceil(rows_wanted / seq_len)))
    if stack is None:
        stack = 1
        while (stack < MAX_STACK and stack * batch * seq_len < rows_wanted
               and sizes.fit(budget, stack + 1) >= batch):
            stack += 1
    return BatchPlan(batch, stack, budget, source, flop)


@dataclass(frozen=True)
class _Sizes:
    """Bytes a batch keeps alive: per batch token, per stacked row of a call, per extra stacked copy, once."""

    seq_len: int
    per_token: int
    per_row: int
    per_copy: int
    fixed: int

    @classmethod
    def of(cls, model: nn.Module, seq_len: int, vocab_chunk: int, path: str) -> "_Sizes":
        config = model.config
        hidden = config.hidden_size
        vocab = config.vocab_size
        heads = getattr(config, "num_attention_heads", 1)
        ffn = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", None) or 4 * hidden
        width = next(model.parameters()).element_size()
        layer = 4 * ffn * width + heads * seq_len * 4  # one layer's MLP activations, eager attention scores
        fixed = seq_len * vocab * (width + 8)  # the noise floor's one-sequence reference forward
        if path == "reference":
            # full logits of base and probe, both upcast to float64, and the KL's float64 temporaries
            return cls(seq_len, layer + vocab * (2 * width + 4 * 8), 0, 0, fixed)
        per_token = (
            (2 * config.num_hidden_layers + 2) * hidden * width  # states entering each slot + the walk's states
            + vocab * width  # the base's logits, as the head produced them
            + (vocab * 4 if next(model.parameters()).device.type == "cpu" else 0)  # on the CPU, its float32 probs
        )
        per_row = layer + 4 * min(vocab, vocab_chunk) * 4  # a layer call's activations, one head chunk's temporaries
        per_copy = 4 * hidden * width  # a stacked call's input, output and the states waiting for the next slot
        return cls(seq_len, per_token, per_row, per_copy, fixed)

    def fit(self, budget: int, stack: int) -> int:
        """Sequences per batch that fit ``budget`` when ``stack`` probes share each call (at least 1)."""
        per_token = self.per_token + stack * self.per_row + (stack - 1) * self.per_copy
        return max(1, int((budget - self.fixed) // (self.seq_len * per_token)))


def _cuda_available(device: torch.device) -> int:
    free, _ = torch.cuda.mem_get_info(device)
    # Memory this process's allocator holds but no tensor uses is free to us, though not to the driver.
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
