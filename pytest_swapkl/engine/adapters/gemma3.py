"""Gemma 3 text models: local/global layers differ in both mask and rotary embedding."""

from .base import Adapter, softcap

ADAPTER = Adapter(
    model_types=("gemma3_text",),
    layers="model.layers",
    final=("model.norm",),
    logit_transform=lambda config: softcap(getattr(config, "final_logit_softcapping", None)),
)
