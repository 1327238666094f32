"""Gemma 2: alternating sliding/full attention by `config.layer_types`, final logit softcapping."""

from .base import Adapter, softcap

ADAPTER = Adapter(
    model_types=("gemma2",),
    layers="model.layers",
    final=("model.norm",),
    logit_transform=lambda config: softcap(config.final_logit_softcapping),
)
