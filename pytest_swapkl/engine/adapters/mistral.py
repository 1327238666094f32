"""Mistral (one sliding-window mask for every layer, replayed as captured)."""

from .base import Adapter

ADAPTER = Adapter(model_types=("mistral",), layers="model.layers", final=("model.norm",))
