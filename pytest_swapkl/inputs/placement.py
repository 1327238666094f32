"""Models larger than one GPU: accelerate's placement (`--device-map auto`, `--device-memory 0=70GiB,cpu=200GiB`).

accelerate plans the map (`infer_auto_device_map`, whole decoder layers per device) and transformers
loads each weight where the map says. Layers that land on the CPU while GPUs are in use are offloaded
by accelerate: kept in CPU memory, executed on the first GPU, streamed in at each call (slow, but a
model that fits nowhere else runs). The embedding, the final norm and the head are pinned to the
first GPU: the fast path runs the head once per probe, and an offloaded head would stream the
largest matrix of the model for every probe chunk.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ..errors import InputError

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?", re.IGNORECASE)


class PlacementError(InputError):
    pass


def parse_device_memory(text: Optional[str]) -> Optional[dict]:
    """'0=20GiB,1=70GiB,cpu=64GiB' to accelerate's {0: '20GiB', 1: '70GiB', 'cpu': '64GiB'}."""
    if text is None or not str(text).strip():
        return None
    limits: dict = {}
    for part in str(text).split(","):
        device, _, size = part.partition("=")
        device, size = device.strip().lower(), size.strip()
        if not (device == "cpu" or device.isdigit()) or not _SIZE.fullmatch(size):
            raise PlacementError(f"--device-memory must be DEVICE=SIZE pairs such as 0=20GiB,cpu=64GiB (DEVICE a GPU "
                                 f"index or cpu), got {part.strip()!r}")
        limits[int(device) if device.isdigit() else device] = size if not size.isdigit() else int(size)
    return limits


def placement_kwargs(device_map: Optional[str], device_memory: Optional[str], device: str) -> dict[str, Any]:
    """from_pretrained's device_map/max_memory, or {} for the usual one-device load."""
    limits = parse_device_memory(device_memory)
    if device_map is None:
        if limits is not None:
            raise PlacementError("--device-memory needs --device-map auto: it limits what accelerate places per device")
        return {}
    if device_map not in DEVICE_MAPS:
        raise PlacementError(f"unknown --device-map {device_map!r}: use one of {', '.join(DEVICE_MAPS)}")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise PlacementError("--device-map places the model itself: leave --device at auto")
    return {"device_map": device_map, "max_memory": limits}


def pinned_device_map(config: Any, dtype: Any, device_map: str, max_memory: Optional[dict]) -> Any:
    """accelerate's map for `config` with everything outside the decoder layers on the first GPU (see above).
    A map of one device, or a machine without GPUs, is returned as accelerate planned it."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        from accelerate import infer_auto_device_map, init_empty_weights
        from accelerate.utils import get_balanced_memory
    except ImportError:
        raise PlacementError("--device-map needs accelerate, which is not installed: pip install accelerate") from None

    if not torch.cuda.is_available():
        return "cpu"
    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, dtype=dtype)
    layer_prefix = _layer_prefix(empty)
    no_split = list(getattr(empty, "_no_split_modules", None) or [])
    if device_map != "sequential":
        max_memory = get_balanced_memory(empty, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype,
                                         low_zero=device_map == "balanced_low_0")
    planned = infer_auto_device_map(empty, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype)
    if "disk" in planned.values():
        raise PlacementError("the model does not fit the GPUs and the CPU memory --device-memory allows: raise the CPU "
                             "limit (disk offload is not supported)")
    gpus = [d for d in planned.values() if d not in ("cpu", "disk")]
    if not gpus:
        return planned
    first = min(gpus, key=lambda d: int(str(d).split(":")[-1]))
    return {name: (first if not _inside(name, layer_prefix) and where == "cpu" else where)
            for name, where in planned.items()}


def _layer_prefix(model: Any) -> str:
    from ..engine.adapters import find_layer_list

    owner, attr = find_layer_list(model)
    layers = getattr(owner, attr)
    return next(name for name, module in model.named_modules() if module is layers)


def _inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def describe(model: Any) -> str:
    """Where the model's modules ended up, for the audit JSON: 'map:cuda:0=20,cpu=12' (modules per device)."""
    placed = getattr(model, "hf_device_map", None) or {}
    counts: dict[str, int] = {}
    for where in placed.values():
        name = f"cuda:{where}" if isinstance(where, int) else str(where)
        counts[name] = counts.get(name, 0) + 1
    return "map:" + ",".join(f"{name}={count}" for name, count in counts.items()) if counts else "cpu"
