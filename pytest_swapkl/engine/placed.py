"""A model placed across devices (accelerate's device map): each layer replayed where it lives.

The base pass records each layer's arguments as the layer received them, before accelerate's hook
moved them: on the device of the layer before it. A replay runs the layer on its own execution
device, so its recorded arguments (mask, rotary embedding, positions) are moved there once per base
pass and the hidden state at every replay; the head's input goes to the head's device. On a model
on one device nothing moves and nothing is copied.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn


def execution_device(module: nn.Module) -> Optional[torch.device]:
    """Where `module` computes: accelerate's execution device (an offloaded layer's weights live on the CPU or
    on 'meta' between calls), else the device of its first parameter."""
    device = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
    if device is not None:
        return torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    for parameter in module.parameters():
        if parameter.device.type != "meta":
            return parameter.device
    return None


def moved(value: Any, device: torch.device) -> Any:
    """`value` with every tensor in it (tuples, lists, dicts, at any depth) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True) if value.device != device else value
    if isinstance(value, tuple):
        return tuple(moved(item, device) for item in value)
    if isinstance(value, list):
        return [moved(item, device) for item in value]
    if isinstance(value, dict):
        return {key: moved(item, device) for key, item in value.items()}
    return value


class Placement:
    """The devices of a fast path's layers and head, and the recorded arguments moved to them."""

    def __init__(self, layers: Sequence[nn.Module], head: nn.Module):
        self.devices = [execution_device(layer) for layer in layers]
        self.head_device = execution_device(head)
        self.spread = len({*self.devices, self.head_device} - {None}) > 1
        self._moved: dict[tuple[int, torch.device], tuple[tuple, dict]] = {}
        self._for: Any = None  # the base pass the moved arguments belong to

    def arguments(self, base_pass: Any, call: int, module: int) -> tuple[tuple, dict]:
        """Recorded call `call` of the base pass, on the device of layer `module` (moved once per base pass)."""
        args, kwargs = base_pass.calls[call]
        if not self.spread:
            return args, kwargs
        if self._for is not base_pass:
            self._moved, self._for = {}, base_pass
        device = self.devices[module]
        if (call, device) not in self._moved:
            self._moved[call, device] = moved(args, device), moved(kwargs, device)
        return self._moved[call, device]

    def to_layer(self, hidden: torch.Tensor, module: int) -> torch.Tensor:
        return moved(hidden, self.devices[module]) if self.spread else hidden

    def to_head(self, value: Any) -> Any:
        return moved(value, self.head_device) if self.spread else value
