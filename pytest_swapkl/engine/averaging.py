"""The averaging recipe: one module whose weights are a weighted mean of two layers' (the paper's App. I).

`averaging(i,j; w)` runs ``(1 - w) * theta_i + w * theta_j`` in both slots i and j. Each slot's module is a
copy of the layer whose slot it is (so it keeps that slot's attention type, mask and rotary embedding, as a
model whose two layers were overwritten with the mean would); only floating-point parameters are averaged:
buffers (masks, rotary frequencies) and non-float entries stay the copied layer's.
"""

from __future__ import annotations

import copy
from typing import Sequence, Union

import torch
from torch import nn


def averaged_layer(sources: Sequence[nn.Module], params: tuple[Union[int, float], ...]) -> nn.Module:
    """A copy of ``sources[0]`` with every floating parameter ``params[0] * own + params[1] * other's``.

    Both slots of one averaging probe pass the same two coefficients in swapped order, and IEEE addition
    commutes, so the two modules hold bit-identical weights.
    """
    own_weight, other_weight = params
    module = copy.deepcopy(sources[0])
    other = dict(sources[1].named_parameters())
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.is_floating_point():
                parameter.copy_(parameter * own_weight + other[name].to(parameter.device) * other_weight)
    return module
