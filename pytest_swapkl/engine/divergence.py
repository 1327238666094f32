"""KL(P_base || P_probe) and next-token NLL from hidden states, in vocabulary chunks.

Neither distribution's full-vocabulary logits exist in float32: each chunk of the head
is applied in the model's dtype, upcast, and folded into running sums, so memory grows
with the chunk, not with the vocabulary. Per position

    KL = sum_v p_v log p_v - sum_v p_v z_v + lse(z) * sum_v p_v,

which is the reference's sum_v p_v (log p_v - log_softmax(z)_v) rearranged so that
one pass over the chunks suffices.

Every logit is taken relative to a per-position shift, the base's largest logit, before
any float32 arithmetic: KL and the log-normalisers are invariant to it, and pretrained
heads give logits of magnitude 30-100 whose float32 rounding (about 4e-6 each) would
otherwise dominate a sum of 50k-260k terms. The reference's log_softmax shifts by each
distribution's own maximum for the same reason.

The base keeps its logits exactly as the model's head produced them (model dtype,
the tensor the reference upcasts) plus its float32 shift and log-normaliser, and recomputes
p_v = exp(logit_v - lse) chunk by chunk: half the memory of float32 probabilities in
bfloat16, and on CUDA the recomputation is fused into the one kernel that reads the
probe's chunk (``chunk_step``), so it is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adapters.base import LogitTransform
from .reading import Reading, weighted_mean

# The largest head + KL temporary on the CPU: below glibc's largest mmap threshold (32 MiB). Measured on
# SmolLM2-135M's head, 1024 rows: 16,384 columns (64 MiB) took 1.89 s of CPU per probe, 0.83 s of it system
# time faulting pages in; 4,096 columns 0.95 s, no system time (docs/benchmarks.md, "CPU profile").
CPU_TEMPORARY = 16 << 20


class NonFiniteLogits(ArithmeticError):
    """A distribution had NaN or infinite logits; the engine names the probe."""


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

    def raw_logits(self, prepared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Logits of vocabulary columns [start, stop) in the model's dtype, computed like its forward."""
        bias = None if self.bias is None else self.bias[start:stop]
        z = F.linear(prepared, self.weight[start:stop], bias)
        return z if self.transform is None else self.transform(z)

    def chunks(self, width: Optional[int] = None) -> list[tuple[int, int]]:
        width = width or self.chunk
        return [(start, min(start + width, self.vocab_size)) for start in range(0, self.vocab_size, width)]

    def cpu_width(self, rows: int) -> int:
        """Columns per chunk on the CPU: a [rows, columns] float32 temporary of at most ``CPU_TEMPORARY`` bytes,
        which glibc keeps for reuse (engine/memory.py) instead of faulting it in again, and at least 256."""
        return max(256, min(self.chunk, CPU_TEMPORARY // (4 * max(1, rows))))


@dataclass
class BaseDistribution:
    """The unchanged model's next-token distribution for one batch."""

    logits: torch.Tensor  # [batch, seq, vocab] in the model's dtype: exactly what its head produced
    shift: torch.Tensor  # [batch, seq] float32: the largest base logit, subtracted from every logit first
    lse: torch.Tensor  # [batch, seq] float32 log-normaliser of logits.float() - shift
    negentropy: torch.Tensor  # [batch, seq] float64: sum_v p_v log p_v
    prob_mass: torch.Tensor  # [batch, seq] float64: sum_v p_v (1 up to rounding; kept for fidelity to the reference)
    # [batch, seq, vocab] float32 p_v, kept on the CPU (no logit transform) so that each probe reads them instead
    # of recomputing an exponential per logit: ``_cpu_sums``. None elsewhere: CUDA recomputes them for free.
    probs: Optional[torch.Tensor] = None

    def log_probs(self, rows: slice = slice(None)) -> torch.Tensor:
        """float32 log-probabilities of some sequences (full vocabulary: for small slices only)."""
        return self.logits[rows].float() - self.shift[rows, :, None] - self.lse[rows, :, None]

    def nll(self, labels: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-sequence mean next-token NLL (labels = ids[:, 1:], or a reading's labels and weights)."""
        n = labels.shape[-1]
        picked = self.logits[:, :n].gather(-1, labels[..., None])[..., 0].float() - self.shift[:, :n]
        per_position = (self.lse[:, :n] - picked).double()
        return per_position.mean(-1) if weight is None else weighted_mean(per_position, weight)


def base_distribution(head: Head, last_hidden: torch.Tensor) -> BaseDistribution:
    prepared = head.prepare(last_hidden)
    batch, seq = prepared.shape[:2]
    logits = torch.empty(batch, seq, head.vocab_size, dtype=prepared.dtype, device=prepared.device)
    running_max = torch.full((batch, seq), float("-inf"), device=prepared.device)
    running_sum = torch.zeros(batch, seq, device=prepared.device, dtype=torch.float64)
    width = head.cpu_width(batch * seq) if prepared.device.type == "cpu" else None
    for start, stop in head.chunks(width):
        z = logits[..., start:stop] = head.raw_logits(prepared, start, stop)
        running_max, running_sum = _fold_lse(z.float(), running_max, running_sum)
    # The fold's final maximum is the largest logit itself, so it is the shift, and the sum it carries is
    # already relative to it: lse(z - shift) = log(running_sum), with no second pass over the logits.
    shift, lse = running_max, torch.log(running_sum).float()
    if not (torch.isfinite(shift).all() and torch.isfinite(lse).all()):
        raise NonFiniteLogits("the unchanged model")
    negentropy = torch.zeros(batch, seq, device=prepared.device, dtype=torch.float64)
    mass = torch.zeros_like(negentropy)
    probs = torch.empty(batch, seq, head.vocab_size) if _keeps_probs(head, prepared) else None
    for start, stop in head.chunks(width):
        log_p = logits[..., start:stop].float() - shift[..., None] - lse[..., None]
        p = log_p.exp()
        negentropy += torch.where(p > 0, p * log_p, 0).sum(-1)  # 0 log 0 = 0 for tokens a head masks to -inf
        mass += p.sum(-1)
        if probs is not None:
            probs[..., start:stop] = p
    return BaseDistribution(logits, shift, lse, negentropy, mass, probs)


def _keeps_probs(head: Head, prepared: torch.Tensor) -> bool:
    """Whether the base keeps its probabilities: on the CPU, for a head without a logit transform (whose logits
    are finite, so p_v z_v needs no 0 * -inf guard)."""
    return prepared.device.type == "cpu" and head.transform is None


def _fold_lse(z: torch.Tensor, running_max: torch.Tensor, running_sum: torch.Tensor):
    new_max = torch.maximum(running_max, z.amax(-1))
    # exp(-inf - -inf) is NaN on the first chunk; running_sum is 0 there anyway.
    scale = torch.exp(torch.where(torch.isinf(running_max), new_max, running_max) - new_max)
    return new_max, running_sum * scale + torch.exp(z - new_max[..., None]).sum(-1)


def chunk_step(z: torch.Tensor, base_z: torch.Tensor, shift: torch.Tensor, base_lse: torch.Tensor,
               running_max: torch.Tensor, running_sum: torch.Tensor, expected: torch.Tensor, label_logit: torch.Tensor,
               local_labels: torch.Tensor):
    """Fold one vocabulary chunk of a probe's logits `z` (model dtype) into the running sums.

    Pure tensor code without Python-number arguments, so that ``torch.compile`` turns
    it into one kernel per chunk width: it reads both chunks once (the base's
    probabilities are recomputed in registers) instead of a dozen float32 passes.
    """
    z = z.float() - shift[..., None]
    p = torch.exp(base_z.float() - shift[..., None] - base_lse[..., None])
    expected = expected + torch.where(p > 0, p * z, 0).sum(-1)
    new_max, running_sum = _fold_lse(z, running_max, running_sum)
    return new_max, running_sum, expected, _fold_label(z, label_logit, local_labels)


def _fold_label(z: torch.Tensor, label_logit: torch.Tensor, local_labels: torch.Tensor) -> torch.Tensor:
    """The label's logit where it falls in this chunk (labels - chunk start), else the one found before."""
    width = z.shape[-1]
    in_chunk = (local_labels >= 0) & (local_labels < width)
    # Labels cover positions 0..L-2 (ids[:, 1:]), or every read column under a position contract.
    picked = z[..., :local_labels.shape[-1], :].gather(-1, local_labels.clamp(0, width - 1)[..., None])[..., 0]
    return torch.where(in_chunk, picked, label_logit)


ChunkStep = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
# (head, prepared, base, labels) -> (running_max, running_sum, expected, label_logit), or None
Fold = Callable[["Head", torch.Tensor, "BaseDistribution", torch.Tensor], Optional[tuple]]


def kl_and_nll(head: Head, base: BaseDistribution, last_hidden: torch.Tensor, labels: torch.Tensor,
               step: ChunkStep = chunk_step, fold: Optional[Fold] = None,
               reading: Optional[Reading] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence mean KL over all positions and mean NLL over positions 0..L-2 (labels = ids[:, 1:]).

    ``last_hidden`` is [batch, seq, hidden], or [probes, batch, seq, hidden] for several probes' states on the
    same batch (stacked: one head product serves them all, against the base broadcast over the first axis);
    the results are then [probes, batch].
    ``fold``: another way to the four sums (a fused Triton kernel was measured at commit 33ed8b0); None from it, or no
    fold, folds chunk by chunk.
    ``reading``: a position contract's read columns (``last_hidden`` and ``base`` already taken at them), labels and
    weights; the means are then over the weighted positions only.
    Raises NonFiniteLogits when the probe's logits hold NaN or infinity: such a number must never be averaged in.
    """
    prepared = head.prepare(last_hidden)
    if reading is not None:
        labels, fold = reading.labels, None
    sums = None if fold is None else fold(head, prepared, base, labels)
    running_max, running_sum, expected, label_logit = sums if sums is not None else _chunked_sums(
        head, base, prepared, labels, step)
    lse = running_max + torch.log(running_sum)
    kl_positions = base.negentropy - expected + lse * base.prob_mass
    nll_positions = (lse[..., :labels.shape[-1]] - label_logit).double()
    if reading is None:
        kl, nll = kl_positions.mean(-1), nll_positions.mean(-1)
    else:
        kl, nll = weighted_mean(kl_positions, reading.kl_weight), weighted_mean(nll_positions, reading.nll_weight)
    # A NaN anywhere propagates into these sums; an infinite logit makes them infinite or NaN.
    if not (torch.isfinite(kl).all() and torch.isfinite(nll).all()):
        raise NonFiniteLogits("probe")
    return kl, nll


def _chunked_sums(head: Head, base: BaseDistribution, prepared: torch.Tensor, labels: torch.Tensor, step: ChunkStep):
    """Largest logit, sum of exponentials, sum_v p_v z_v and the label's logit, folded chunk by chunk."""
    rows = prepared.shape[:-1]  # (batch, seq) or (probes, batch, seq)
    device = prepared.device
    labels = labels.expand(*rows[:-1], labels.shape[-1])
    # Across chunks, sums are carried in float64: with many small chunks float32 carries drift past 1e-6.
    running_max = torch.full(rows, float("-inf"), device=device)
    running_sum = torch.zeros(rows, device=device, dtype=torch.float64)
    expected = torch.zeros(rows, device=device, dtype=torch.float64)  # sum_v p_v z_v
    label_logit = torch.zeros(*rows[:-1], labels.shape[-1], device=device)
    width = head.cpu_width(rows.numel()) if device.type == "cpu" else None
    if base.probs is not None and step is chunk_step:
        sums = _cpu_sums(head, base, prepared, labels, width)
        if sums is not None:
            return sums
    for start, stop in head.chunks(width):
        z = head.raw_logits(prepared, start, stop)
        running_max, running_sum, expected, label_logit = step(
            z, base.logits[..., start:stop], base.shift, base.lse, running_max, running_sum, expected, label_logit,
            labels - start)
    return running_max, running_sum, expected, label_logit


# Below this, sum_v exp(z_v - shift) has lost float32 range (the probe's largest logit is ~69 under the base's).
_SMALLEST_SUM = 1e-30


def _cpu_sums(head: Head, base: BaseDistribution, prepared: torch.Tensor, labels: torch.Tensor, width: int):
    """``_chunked_sums`` in three passes over each chunk instead of a dozen: the probe's logits are shifted by the
    base's largest logit in place, read once against the base's kept probabilities (sum p_v z_v) and once more
    as their exponentials (in place), so its own running maximum is never needed (it stays 0: the shift).
    None where that shift does not fit the probe (an exponential overflowed or all underflowed, or a NaN):
    the caller then folds with the running maximum, which also names non-finite logits."""
    rows = prepared.shape[:-1]
    shift = base.shift[..., None]
    running_sum = torch.zeros(rows, dtype=torch.float64)
    expected = torch.zeros(rows, dtype=torch.float64)
    label_logit = torch.zeros(*rows[:-1], labels.shape[-1])
    for start, stop in head.chunks(width):
        z = head.raw_logits(prepared, start, stop).float().sub_(shift)  # a fresh tensor: safe to change in place
        label_logit = _fold_label(z, label_logit, labels - start)
        expected += (base.probs[..., start:stop] * z).sum(-1)
        running_sum += z.exp_().sum(-1)
    if not (torch.isfinite(running_sum).all() and bool((running_sum >= _SMALLEST_SUM).all())):
        return None
    return torch.zeros(rows), running_sum, expected, label_logit


def nll_from_log_probs(log_probs: torch.Tensor, labels: torch.Tensor,
                       weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sequence mean next-token NLL from full log-probs (float64 on the reference path); ``weight``: only the
    weighted positions of a position contract."""
    picked = log_probs[:, :labels.shape[-1]].gather(-1, labels[..., None])[..., 0]
    return (-picked).double().mean(-1) if weight is None else weighted_mean(-picked, weight)


def kl_full(base_log_probs: torch.Tensor, probe_log_probs: torch.Tensor,
            weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sequence mean KL from full log-probs: the reference formula, verbatim, summed in float64; ``weight``:
    only the weighted positions of a position contract."""
    base_log_probs, probe_log_probs = base_log_probs.double(), probe_log_probs.double()
    p = base_log_probs.exp()
    kl = torch.where(p > 0, p * (base_log_probs - probe_log_probs), 0).sum(-1)  # 0 log 0 = 0
    return kl.double().mean(-1) if weight is None else weighted_mean(kl, weight)
