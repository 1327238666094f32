"""KL(P_base || P_probe) and next-token NLL from hidden states, in vocabulary chunks.

The probe's full-vocabulary logits are never materialised: each chunk of the head
is applied, upcast to float32 and folded into a running log-sum-exp, so memory
grows with the chunk, not with the vocabulary. Per position

    KL = sum_v p_v log p_v - sum_v p_v z_v + lse(z) * sum_v p_v,

which is the reference's sum_v p_v (log p_v - log_softmax(z)_v) rearranged so that
one pass over the chunks suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adapters.base import LogitTransform


@dataclass
class Head:
    """Final modules, output embedding and logit transform of one model."""

    final: Sequence[nn.Module]
    weight: torch.Tensor  # [vocab, hidden]
    bias: Optional[torch.Tensor]
    transform: Optional[LogitTransform]
    chunk: int  # vocabulary columns per step

    @property
    def vocab_size(self) -> int:
        return self.weight.shape[0]

    def prepare(self, hidden: torch.Tensor) -> torch.Tensor:
        """The last layer's output turned into the head's input (final norm, projection)."""
        for module in self.final:
            hidden = module(hidden)
        return hidden

    def logits(self, prepared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """float32 logits of vocabulary columns [start, stop), computed in the model's dtype like its forward."""
        bias = None if self.bias is None else self.bias[start:stop]
        z = F.linear(prepared, self.weight[start:stop], bias)
        if self.transform is not None:
            z = self.transform(z)
        return z.float()

    def chunks(self) -> range:
        return range(0, self.vocab_size, self.chunk)


@dataclass
class BaseDistribution:
    """The unchanged model's next-token distribution for one batch, kept in float32."""

    log_probs: torch.Tensor  # [batch, seq, vocab]
    probs: torch.Tensor  # exp(log_probs), kept so no probe recomputes it
    negentropy: torch.Tensor  # [batch, seq] float64: sum_v p_v log p_v
    prob_mass: torch.Tensor  # [batch, seq] float64: sum_v p_v (1 up to rounding; kept for fidelity to the reference)


def base_distribution(head: Head, last_hidden: torch.Tensor) -> BaseDistribution:
    prepared = head.prepare(last_hidden)
    batch, seq = prepared.shape[:2]
    logits = torch.empty(batch, seq, head.vocab_size, dtype=torch.float32, device=prepared.device)
    for start in head.chunks():
        stop = min(start + head.chunk, head.vocab_size)
        logits[..., start:stop] = head.logits(prepared, start, stop)
    log_probs = torch.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    negentropy = torch.linalg.vecdot(probs, log_probs).double()
    return BaseDistribution(log_probs, probs, negentropy, probs.sum(-1, dtype=torch.float64))


def kl_and_nll(
    head: Head, base: BaseDistribution, last_hidden: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence mean KL over all positions and mean NLL over positions 0..L-2 (labels = ids[:, 1:])."""
    prepared = head.prepare(last_hidden)
    batch, seq = prepared.shape[:2]
    device = prepared.device
    # Across chunks, sums are carried in float64: with many small chunks float32 carries drift past 1e-6.
    running_max = torch.full((batch, seq), float("-inf"), device=device)
    running_sum = torch.zeros(batch, seq, device=device, dtype=torch.float64)
    expected_logit = torch.zeros(batch, seq, device=device, dtype=torch.float64)  # sum_v p_v z_v
    label_logit = torch.zeros(batch, seq - 1, device=device)
    for start in head.chunks():
        stop = min(start + head.chunk, head.vocab_size)
        z = head.logits(prepared, start, stop)
        expected_logit += torch.linalg.vecdot(base.probs[..., start:stop], z)
        new_max = torch.maximum(running_max, z.amax(-1))
        running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(z - new_max[..., None]).sum(-1)
        running_max = new_max
        in_chunk = (labels >= start) & (labels < stop)
        picked = z[:, :-1].gather(-1, (labels - start).clamp(0, stop - start - 1)[..., None])[..., 0]
        label_logit = torch.where(in_chunk, picked, label_logit)
    lse = running_max + torch.log(running_sum)
    kl = base.negentropy - expected_logit + lse * base.prob_mass
    nll = lse[:, :-1] - label_logit
    return kl.double().mean(-1), nll.double().mean(-1)


def nll_from_log_probs(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean next-token NLL from full float32 log-probs."""
    picked = log_probs[:, :-1].gather(-1, labels[..., None])[..., 0]
    return (-picked).double().mean(-1)


def kl_full(base_log_probs: torch.Tensor, probe_log_probs: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean KL from full float32 log-probs: the reference formula, verbatim."""
    kl = (base_log_probs.exp() * (base_log_probs - probe_log_probs)).sum(-1)
    return kl.double().mean(-1)
