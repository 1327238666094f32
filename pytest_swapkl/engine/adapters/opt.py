"""OPT: the final layer norm and the output projection are both optional (absent in some sizes)."""

from .base import Adapter

ADAPTER = Adapter(
    model_types=("opt",),
    layers="model.decoder.layers",
    final=("model.decoder.final_layer_norm", "model.decoder.project_out"),
)
