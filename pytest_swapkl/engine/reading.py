"""Which positions of a batch a probe's KL and NLL read: the position contract and the attention mask.

Contracts (docs/contracts.md):
- ``all``: every position; with ``pads="out"`` only the real tokens of right-padded prompts (a masked mean),
  with ``pads="in"`` every position of the rectangle, pads included (the pads then run as ordinary tokens:
  the model is given no mask, as the paper's trajectory script does).
- ``last:K`` (``last`` = ``last:1``): the last K real positions of each prompt; pads are never read.

Prompts are right-padded: with a causal mask a real token never sees a later pad, and its position ids are
0..L-1 as when the prompt runs alone, so every real position's distribution is the unpadded prompt's.
Per sequence, KL = mean over its read positions. NLL = mean next-token NLL over the read positions whose next
token is real; under ``last:K`` the K last tokens are the labels (positions L-K-1..L-2, at least one), so the
head runs on K+1 positions, never on the whole sequence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import InputError

PADS = ("out", "in")
_LAST = re.compile(r"last(?::(\d+))?")


class PositionsError(InputError):
    pass


def last_k(positions: str) -> Optional[int]:
    """K of ``last:K`` (``last`` is 1), None for ``all``; anything else is refused in one line."""
    if positions == "all":
        return None
    match = _LAST.fullmatch(positions)
    if match is None or (match.group(1) is not None and int(match.group(1)) < 1):
        raise PositionsError(f"unknown positions {positions!r}: use all, last or last:K (K >= 1)")
    return int(match.group(1) or 1)


def check_mask(input_ids: torch.Tensor, mask: Optional[torch.Tensor], positions: str) -> None:
    """One line for every mask or contract that cannot be read: a mask of another shape, values other than 0/1,
    pads before real tokens (left padding), a prompt of fewer than 2 real tokens, last:K beyond a prompt."""
    k = last_k(positions)
    if mask is not None:
        if tuple(mask.shape) != tuple(input_ids.shape):
            raise PositionsError(f"the attention mask has shape {tuple(mask.shape)} but the ids have shape "
                                 f"{tuple(input_ids.shape)}: give one 0/1 per token")
        if not ((mask == 0) | (mask == 1)).all():
            raise PositionsError("the attention mask holds values other than 0 and 1")
        mask = mask.bool()
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            row = int((mask[:, 1:] & ~mask[:, :-1]).any(1).nonzero()[0])
            raise PositionsError(f"prompt {row}: a real token after a pad; prompts must be right-padded "
                                 "(real tokens first, then pads)")
    lengths = _lengths(input_ids, mask)
    short = int(lengths.argmin())
    if int(lengths[short]) < 2:
        raise PositionsError(f"prompt {short} has {int(lengths[short])} real token(s): every prompt needs at least 2")
    if k is not None and k > int(lengths[short]):
        raise PositionsError(f"positions last:{k} reads beyond prompt {short}, which has {int(lengths[short])} "
                             "real tokens")


def _lengths(input_ids: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1], dtype=torch.long, device=input_ids.device)
    return mask.long().sum(1)


@dataclass
class Reading:
    """The positions of one batch that are read: the head runs on ``columns`` (None: every position), the KL
    averages ``kl_weight`` (over the read columns), the NLL averages ``nll_weight`` of its ``labels``."""

    columns: Optional[torch.Tensor]  # [batch, C] long, or None
    kl_weight: torch.Tensor  # [batch, C] bool
    labels: torch.Tensor  # [batch, n_labels] long: the next token of read column c (c < n_labels)
    nll_weight: torch.Tensor  # [batch, n_labels] bool

    def take(self, states: torch.Tensor) -> torch.Tensor:
        """The read columns of [..., batch, seq, hidden] (or vocabulary) states."""
        if self.columns is None:
            return states
        index = self.columns.to(states.device)[..., None].expand(*self.columns.shape, states.shape[-1])
        return torch.gather(states, -2, index.expand(*states.shape[:-3], *index.shape))

    def to(self, device: torch.device) -> "Reading":
        return Reading(None if self.columns is None else self.columns.to(device), self.kl_weight.to(device),
                       self.labels.to(device), self.nll_weight.to(device))


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over the last axis of the weighted entries, float64 (entries left out are never multiplied in)."""
    values = torch.where(weight, values.double(), 0.0)
    return values.sum(-1) / weight.sum(-1)


@dataclass(frozen=True)
class Positions:
    """A measurement's position contract: ``positions`` (all, last, last:K) and whether pads count (``pads``)."""

    positions: str = "all"
    pads: str = "out"

    def __post_init__(self) -> None:
        last_k(self.positions)
        if self.pads not in PADS:
            raise PositionsError(f"unknown pads {self.pads!r}: use out or in")

    def model_mask(self, mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The attention mask the model is given: none where pads count as tokens, or where there are no pads."""
        if mask is None or self.pads == "in" or bool(mask.all()):
            return None
        return mask.long()

    def reading(self, batch: torch.Tensor, mask: Optional[torch.Tensor]) -> Optional[Reading]:
        """What this batch's KL and NLL read; None for every position of every sequence (the default, whose
        numbers are computed exactly as before any contract existed)."""
        k = last_k(self.positions)
        pads_count = mask is None or self.pads == "in" or bool(mask.all())
        if k is None and pads_count:
            return None
        real = torch.ones_like(batch, dtype=torch.bool) if mask is None else mask.bool()
        if k is None:
            return Reading(None, real, batch[:, 1:], real[:, :-1] & real[:, 1:])
        lengths = _lengths(batch, mask)
        offsets = torch.arange(k + 1, device=batch.device)
        wanted = lengths[:, None] - k - 1 + offsets  # [batch, K+1]: L-K-1 .. L-1
        exists = wanted >= 0  # only where K equals the prompt's length does L-K-1 fall before it
        columns = wanted.clamp(min=0)
        labels = batch.gather(1, (columns + 1).clamp(max=batch.shape[1] - 1))
        return Reading(columns, exists & (offsets >= 1), labels, exists & (offsets < k))
