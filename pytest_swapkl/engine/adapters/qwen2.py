"""Qwen2 / Qwen2.5 (per-layer sliding or full attention via config.layer_types)."""

from .base import Adapter

ADAPTER = Adapter(model_types=("qwen2",), layers="model.layers", final=("model.norm",))
