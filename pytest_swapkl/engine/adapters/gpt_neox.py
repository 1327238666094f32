"""GPT-NeoX and Pythia (parallel attention + MLP residual)."""

from .base import Adapter

ADAPTER = Adapter(model_types=("gpt_neox",), layers="gpt_neox.layers", final=("gpt_neox.final_layer_norm",))
