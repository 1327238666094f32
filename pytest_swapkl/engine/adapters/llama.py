"""Llama 2/3 and Llama-style checkpoints."""

from .base import Adapter

ADAPTER = Adapter(model_types=("llama",), layers="model.layers", final=("model.norm",))
