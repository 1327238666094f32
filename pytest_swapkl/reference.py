"""The reference semantics: permute the layer list (and `config.layer_types`) and run the model's own forward.

Slow (every probe reruns the whole model and materialises full logits) but it is
the definition the fast path is tested against, and the fallback for any causal LM
whose layer list can be found.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from .adapters import find_layer_list
from .divergence import kl_full, nll_from_log_probs
from .measurement import Accumulator, Measurement
from .probes import Probe


@contextmanager
def permuted_layers(model: nn.Module, order: Sequence[int]) -> Iterator[None]:
    """Run slot k with module order[k] (each keeps its own layer type) until the block exits."""
    owner, attr = find_layer_list(model)
    config = owner.config
    original_layers = getattr(owner, attr)
    original_depth = config.num_hidden_layers
    layer_types = getattr(config, "layer_types", None)
    try:
        setattr(owner, attr, nn.ModuleList([original_layers[m] for m in order]))
        config.num_hidden_layers = len(order)
        if layer_types is not None:
            config.layer_types = [layer_types[m] for m in order]
        yield
    finally:
        setattr(owner, attr, original_layers)
        config.num_hidden_layers = original_depth
        if layer_types is not None:
            config.layer_types = layer_types


def model_log_probs(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=input_ids, use_cache=False).logits
    return torch.log_softmax(logits.float(), dim=-1)


def measure_reference(
    model: nn.Module,
    input_ids: torch.Tensor,
    probes: Sequence[Probe],
    batch_size: int,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Measurement:
    acc = Accumulator(list(probes))
    total, done = len(acc.probes) * input_ids.shape[0], 0
    for batch in input_ids.split(batch_size):
        labels = batch[:, 1:]
        base = model_log_probs(model, batch)
        acc.base_nll.append(nll_from_log_probs(base, labels).cpu().numpy())
        for probe in acc.probes:
            with permuted_layers(model, probe.order):
                log_probs = model_log_probs(model, batch)
            acc.add(probe, kl_full(base, log_probs).cpu(), nll_from_log_probs(log_probs, labels).cpu())
            done += batch.shape[0]
            if progress:
                progress(done, total)
    return acc.finish("reference", input_ids.shape[0], input_ids.shape[1], 0.0)
