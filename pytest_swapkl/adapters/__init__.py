"""Model-family adapters: a registry keyed by `config.model_type`.

Third-party packages add families through the entry-point group
``pytest_swapkl.adapters``; each entry point names an :class:`Adapter` (or a list of
them). See docs/adapters.md.
"""

from __future__ import annotations

from importlib import metadata
from typing import Optional

from torch import nn

from ..errors import InputError
from . import gemma2, gemma3, gpt2, gpt_neox, llama, mistral, opt, phi3, qwen2, qwen3
from .base import Adapter, resolve

ENTRY_POINT_GROUP = "pytest_swapkl.adapters"

_REGISTRY: dict[str, Adapter] = {}


def register(adapter: Adapter) -> None:
    for model_type in adapter.model_types:
        _REGISTRY[model_type] = adapter


for _module in (gemma2, gemma3, gpt2, gpt_neox, llama, mistral, opt, phi3, qwen2, qwen3):
    register(_module.ADAPTER)


def _load_entry_points() -> None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        for adapter in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            register(adapter)


_load_entry_points()


def registered_model_types() -> list[str]:
    return sorted(_REGISTRY)


def adapter_for(model: nn.Module) -> Optional[Adapter]:
    """The registered adapter for this model's family, or None (then only the reference path runs)."""
    return _REGISTRY.get(getattr(model.config, "model_type", ""))


class NoLayerListError(InputError):
    pass


def find_layer_list(model: nn.Module) -> tuple[nn.Module, str]:
    """(owner, attribute) of the decoder layer ModuleList, through the adapter or by searching.

    Without an adapter we accept exactly one ModuleList of `num_hidden_layers`
    modules of one class; anything else is ambiguous and needs an adapter.
    """
    adapter = adapter_for(model)
    if adapter is not None:
        return adapter.layer_list(model)
    n_layers = getattr(model.config, "num_hidden_layers", None)
    candidates = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList)
        and len(module) == n_layers
        and len({type(layer) for layer in module}) == 1
    ]
    if len(candidates) != 1:
        raise NoLayerListError(
            f"cannot find the decoder layer list of {type(model).__name__} "
            f"(model_type {getattr(model.config, 'model_type', '?')!r}): register an Adapter under the "
            f"entry-point group {ENTRY_POINT_GROUP!r} (see docs/adapters.md)"
        )
    owner_path, _, attr = candidates[0].rpartition(".")
    return resolve(model, owner_path), attr


__all__ = ["Adapter", "ENTRY_POINT_GROUP", "NoLayerListError", "adapter_for", "find_layer_list", "register",
           "registered_model_types"]
