"""The pruned model as a checkpoint: layers removed for good, saved so that ``from_pretrained`` loads it.

The saved model is exactly ``removal(S)`` of the reference semantics: the kept modules in their order, each with
its own attention type (``config.layer_types`` shortened with the modules), so loading it and running its
forward gives the numbers the search measured (tests/engine/test_pruned.py checks this to 1e-5).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..safe_files import atomic_folder, umask
from .adapters import find_layer_list


def pruned_copy(model: nn.Module, removed: Sequence[int]) -> nn.Module:
    """A deep copy of ``model`` without the layers ``removed``; the original is left as it was."""
    owner, attribute = find_layer_list(model)
    n_layers = len(getattr(owner, attribute))
    removed = set(removed)
    if not removed or any(not 0 <= layer < n_layers for layer in removed) or len(removed) >= n_layers:
        raise ValueError(f"cannot remove layers {sorted(removed)} of {n_layers}: at least one must stay")
    pruned = copy.deepcopy(model)
    owner, _ = find_layer_list(pruned)
    kept = [layer for layer in range(n_layers) if layer not in removed]
    setattr(owner, attribute, nn.ModuleList([getattr(owner, attribute)[layer] for layer in kept]))
    for config in {id(c): c for c in (owner.config, pruned.config, _text_config(pruned.config))}.values():
        config.num_hidden_layers = len(kept)
        if getattr(config, "layer_types", None) is not None and len(config.layer_types) == n_layers:
            config.layer_types = [config.layer_types[layer] for layer in kept]
    # Attention modules index a KV cache by layer_idx: renumber them so generation with a cache still works.
    for slot, layer in enumerate(getattr(owner, attribute)):
        for module in layer.modules():
            if hasattr(module, "layer_idx") and isinstance(module.layer_idx, int):
                module.layer_idx = slot
    return pruned


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def save_pruned(model: nn.Module, tokenizer: Any, removed: Sequence[int], folder: str | Path,
                record: dict | None = None) -> Path:
    """Write the pruned model (config, safetensors) and the tokenizer to ``folder``; ``record`` (which layers
    were removed and why) goes into ``config.swapkl_pruning``."""
    pruned = pruned_copy(model, removed)
    pruned.config.swapkl_pruning = {"removed": sorted(int(layer) for layer in removed), **(record or {})}
    folder = Path(folder)
    with atomic_folder(folder, what="the pruned model") as building:  # a full disk leaves no half model
        pruned.save_pretrained(building, safe_serialization=True)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(building)
        # safetensors writes its file through a private temporary (mode 0600): every file gets the umask's mode, as
        # the config beside it has, so whoever may read the folder may read the weights
        mode = 0o666 & ~umask()
        for path in building.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(mode)
    return folder
