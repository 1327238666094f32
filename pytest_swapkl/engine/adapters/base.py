"""What the fast path needs to know about a model family, and nothing more.

Layers are replayed with the call arguments they received in the base pass, so an
adapter only says where the decoder layer list lives, which modules turn the last
layer's output into the head's input, and any elementwise logit transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

LogitTransform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Adapter:
    model_types: tuple[str, ...]  # Hugging Face `config.model_type` values this adapter handles
    layers: str  # dotted path from the causal-LM module to the decoder layer ModuleList
    final: tuple[str, ...] = ()  # dotted paths of modules applied after the last layer; absent/None ones are skipped
    # Builds the architecture's elementwise logit transform (softcapping, scaling) from the config.
    logit_transform: Callable[[object], Optional[LogitTransform]] = lambda config: None

    def layer_list(self, model: nn.Module) -> tuple[nn.Module, str]:
        """(owner, attribute) of the layer list, so callers can both read and replace it."""
        owner_path, _, attr = self.layers.rpartition(".")
        return resolve(model, owner_path), attr

    def final_modules(self, model: nn.Module) -> list[nn.Module]:
        found = (resolve(model, path, missing_ok=True) for path in self.final)
        return [module for module in found if module is not None]


def resolve(model: nn.Module, path: str, missing_ok: bool = False) -> Optional[nn.Module]:
    module: Optional[nn.Module] = model
    for part in filter(None, path.split(".")):
        module = getattr(module, part, None)
        if module is None:
            if missing_ok:
                return None
            raise AttributeError(f"{type(model).__name__} has no submodule {path!r}")
    return module


def softcap(cap: Optional[float]) -> Optional[LogitTransform]:
    """Gemma-style `cap * tanh(logits / cap)`, in the same operation order as transformers."""
    if cap is None:
        return None
    return lambda logits: torch.tanh(logits / cap) * cap
