"""Qwen3 dense models (per-layer sliding or full attention via config.layer_types)."""

from .base import Adapter

ADAPTER = Adapter(model_types=("qwen3",), layers="model.layers", final=("model.norm",))
