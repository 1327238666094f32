"""The reference semantics: permute the layer list (and `config.layer_types`) and run the model's own forward.

Slow (every probe reruns the whole model and materialises full logits) but it is
the definition the fast path is tested against, and the fallback for any causal LM
whose layer list can be found.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

from .adapters import find_layer_list
from .divergence import NonFiniteLogits, kl_full, nll_from_log_probs
from .paths import Finish
from .probes import Probe
from .reading import Positions
from .recipes import DerivedModules
from .slots import Slot, anchor

ATTENTION_TYPES = ("layer", "slot")  # whose attention type a moved layer runs with: its own, or its new slot's


@contextmanager
def permuted_layers(model: nn.Module, order: Sequence[Slot], attention_type: str = "layer",
                    modules: Optional[DerivedModules] = None) -> Iterator[None]:
    """Run slot k with order[k] until the block exits: a layer index, or a derived module built for real by its
    recipe (``modules`` keeps the ones already built).

    ``attention_type="layer"``: each module keeps its own layer type (sliding/full mask, local/global rotary):
    `config.layer_types` is permuted with the modules (a derived module has its anchor layer's type).
    ``"slot"``: slot k keeps slot k's type, whatever runs there.
    """
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, got {attention_type!r}")
    owner, attr = find_layer_list(model)
    config = owner.config
    original_layers = getattr(owner, attr)
    original_depth = config.num_hidden_layers
    layer_types = getattr(config, "layer_types", None)
    modules = modules if modules is not None else DerivedModules(original_layers)
    slot_modules = nn.ModuleList([modules(m) for m in order])  # built before anything changes
    try:
        setattr(owner, attr, slot_modules)
        config.num_hidden_layers = len(order)
        if layer_types is not None:
            config.layer_types = ([layer_types[anchor(m)] for m in order] if attention_type == "layer"
                                  else list(layer_types[: len(order)]))
        yield
    finally:
        setattr(owner, attr, original_layers)
        config.num_hidden_layers = original_depth
        if layer_types is not None:
            config.layer_types = layer_types


def model_log_probs(model: nn.Module, input_ids: torch.Tensor,
                    attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """float64 log-probabilities: the definition's precision. In float32, log_softmax and the KL's sum over a
    50k-260k vocabulary accumulate errors of 1e-5 nats on pretrained logits (measured on SmolLM2-135M)."""
    given = {} if attention_mask is None else {"attention_mask": attention_mask}
    logits = model(input_ids=input_ids, use_cache=False, **given).logits
    return torch.log_softmax(logits.double(), dim=-1)


class ReferencePath:
    """One batch at a time: the unchanged model, then every probe with its layer list permuted."""

    name = "reference"

    def __init__(self, model: nn.Module, attention_type: str = "layer", positions: Positions = Positions()):
        self.model = model
        self.positions = positions
        self.attention_type = attention_type
        self.dtype = next(model.parameters()).dtype
        self.noise_floor: Optional[float] = None  # one forward per probe and batch: no second rounding to compare
        self.modules = DerivedModules(getattr(*find_layer_list(model)))  # derived modules, built once per path

    def run_batch(self, batch: torch.Tensor, probes: Sequence[Probe], finish: Finish,
                  mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Base NLL per sequence; calls finish(probe, kl, nll) as each probe completes. ``mask``: 1 for the real
        tokens of right-padded prompts; the whole sequence runs, and only the contract's positions are read."""
        reading = self.positions.reading(batch, mask)
        model_mask = self.positions.model_mask(mask)
        labels = batch[:, 1:] if reading is None else reading.labels
        kl_weight = nll_weight = None
        if reading is not None:
            kl_weight, nll_weight = reading.kl_weight, reading.nll_weight
        base = model_log_probs(self.model, batch, model_mask)
        base = base if reading is None else reading.take(base)
        if not torch.isfinite(base).any(-1).all():
            raise NonFiniteLogits("the unchanged model")
        for probe in probes:
            with permuted_layers(self.model, probe.order, self.attention_type, self.modules):
                log_probs = model_log_probs(self.model, batch, model_mask)
            log_probs = log_probs if reading is None else reading.take(log_probs)
            kl, nll = kl_full(base, log_probs, kl_weight), nll_from_log_probs(log_probs, labels, nll_weight)
            if not (torch.isfinite(kl).all() and torch.isfinite(nll).all()):
                raise NonFiniteLogits(probe.name)
            finish(probe, kl, nll)
        return nll_from_log_probs(base, labels, nll_weight)
