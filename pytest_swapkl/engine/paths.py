"""The interface both measuring paths (fast, reference) offer to the batch loop."""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

import torch
from torch import nn

from .probes import Probe

Finish = Callable[[Probe, torch.Tensor, torch.Tensor], None]


class MeasuringPath(Protocol):
    """Runs one batch of probes; the loop around it handles batching, journals and retries."""

    name: str  # "fast" or "reference": recorded in the result
    model: nn.Module  # the model measured (a failure looks at its weights)
    dtype: torch.dtype  # the model's compute dtype, named in failure messages
    noise_floor: Optional[float]  # KL between two roundings of the unchanged model; None until measured

    def run_batch(self, batch: torch.Tensor, probes: Sequence[Probe], finish: Finish,
                  mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The base NLL per sequence of ``batch``; calls ``finish(probe, kl, nll)`` as each probe completes.
        ``mask``: 1 for the real tokens of right-padded prompts (None: every token is real)."""
        ...
