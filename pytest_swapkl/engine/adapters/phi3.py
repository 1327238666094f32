"""Phi-3 / Phi-3.5 / Phi-4-mini."""

from .base import Adapter

ADAPTER = Adapter(model_types=("phi3",), layers="model.layers", final=("model.norm",))
