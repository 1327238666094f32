"""Model-family adapters: a registry keyed by `config.model_type`.

Third-party packages add families through the entry-point group
``pytest_swapkl.adapters``; each entry point names an :class:`Adapter` (or a list of
them). See docs/adapters.md.
"""

from __future__ import annotations

from importlib import metadata
from typing import Optional

from torch import nn

from ...console import Notice, first_line, print_notice
from ...errors import InputError
from ..families import ENTRY_POINT_GROUP
from . import gemma2, gemma3, gpt2, gpt_neox, llama, mistral, opt, phi3, qwen2, qwen3
from .base import Adapter, resolve

BUILT_IN = "pytest-swapkl"


class DuplicateAdapterError(InputError):
    """Two adapters claim one model_type: which one runs would depend on import order."""


_REGISTRY: dict[str, tuple[Adapter, str]] = {}  # model_type -> (adapter, where it came from)
_entry_points_loaded = False


def register(adapter: Adapter, source: str = "register()") -> None:
    """Add a family. ``source`` names where it comes from (a package), for the duplicate error."""
    for model_type in adapter.model_types:
        if model_type in _REGISTRY and _REGISTRY[model_type][0] is not adapter:
            raise DuplicateAdapterError(
                f"model_type {model_type!r} has two adapters, from {_REGISTRY[model_type][1]} and from {source}: "
                "uninstall one of them, or give the new adapter other model_types")
        _REGISTRY[model_type] = (adapter, source)


for _module in (gemma2, gemma3, gpt2, gpt_neox, llama, mistral, opt, phi3, qwen2, qwen3):
    register(_module.ADAPTER, BUILT_IN)


def _load_entry_points(notice: Notice = print_notice) -> None:
    """Third-party families, loaded on the first look-up (not at import): a broken package costs a notice
    naming it, and the families it would have added run on the reference path."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value
        try:
            loaded = entry_point.load()
        except Exception as error:  # any failure inside someone else's package
            notice(f"adapter entry point {entry_point.name!r} of package {package} failed to load "
                   f"({type(error).__name__}: {first_line(error)}): its families run on the reference path")
            continue
        for adapter in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            register(adapter, f"package {package}")


def registered_model_types() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def adapter_for(model: nn.Module) -> Optional[Adapter]:
    """The registered adapter for this model's family, or None (then only the reference path runs)."""
    _load_entry_points()
    entry = _REGISTRY.get(getattr(model.config, "model_type", ""))
    return entry[0] if entry is not None else None


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


__all__ = ["Adapter", "DuplicateAdapterError", "ENTRY_POINT_GROUP", "NoLayerListError", "adapter_for",
           "find_layer_list", "register", "registered_model_types"]
