"""A compressed model as a checkpoint: saved so that ``from_pretrained`` loads it with no custom code.

The saved model is exactly what was measured: for ``remove``, ``removal(S)`` of the reference semantics (the kept
modules in their order, each with its own attention type); for ``share`` and ``merge``, the acted copy of
``engine/compress.py``. Config, per-layer arrays and cache indices are rewritten there, so loading the folder and
running its forward gives the numbers the search measured (tests/engine/test_pruned.py, test_compress.py: 1e-5).
The folder is written in a temporary folder beside the target and renamed into place: a failed save leaves
nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..safe_files import atomic_folder, umask
from .adapters import find_layer_list
from .compress import acted_copy, pairs_for_layers


def pruned_copy(model: nn.Module, removed: Sequence[int]) -> nn.Module:
    """A deep copy of ``model`` without the layers ``removed``; the original is left as it was."""
    owner, attribute = find_layer_list(model)
    n_layers = len(getattr(owner, attribute))
    removed = set(removed)
    if not removed or any(not 0 <= layer < n_layers for layer in removed) or len(removed) >= n_layers:
        raise ValueError(f"cannot remove layers {sorted(removed)} of {n_layers}: at least one must stay")
    return acted_copy(model, "remove", pairs_for_layers(sorted(removed), n_layers))


def save_pruned(model: nn.Module, tokenizer: Any, removed: Sequence[int], folder: str | Path,
                record: dict | None = None) -> Path:
    """Write the pruned model (config, safetensors) and the tokenizer to ``folder``; ``record`` (which layers
    were removed and why) goes into ``config.swapkl_pruning``."""
    pruned = pruned_copy(model, removed)
    return save_model(pruned, tokenizer, folder,
                      {"action": "remove", "removed": sorted(int(layer) for layer in removed), **(record or {})})


def save_model(model: nn.Module, tokenizer: Any, folder: str | Path, record: dict) -> Path:
    """``model`` (its config carrying ``record`` as ``swapkl_pruning``) and the tokenizer, written to a temporary
    folder beside ``folder`` and renamed onto it (``folder`` absent or an empty folder)."""
    model.config.swapkl_pruning = record
    folder = Path(folder)
    with atomic_folder(folder, what="the pruned model") as building:  # a full disk leaves no half model
        model.save_pretrained(building, safe_serialization=True)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(building)
        # safetensors writes its file through a private temporary (mode 0600): every file gets the umask's mode, as
        # the config beside it has, so whoever may read the folder may read the weights
        mode = 0o666 & ~umask()
        for path in building.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(mode)
    return folder
