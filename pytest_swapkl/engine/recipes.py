"""Recipes: how a derived slot's module is built from the model's own layers.

A recipe takes the source layers (in the order the slot names them) and the slot's parameters and
returns a new module with the anchor layer's class and call signature. Both measuring paths build a
derived module through :func:`build`, so the fast path and the reference semantics run the same
weights; the modules of one batch run are built once and reused.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

from torch import nn

from ..errors import InputError
from ..registry import Registry
from .averaging import averaged_layer
from .heads import head_swapped_layer
from .slots import Derived

Recipe = Callable[[Sequence[nn.Module], tuple[Union[int, float], ...]], nn.Module]

RECIPES: Registry[Recipe] = Registry("layer recipe")


class RecipeError(InputError):
    """A derived module that cannot be built from these layers."""


def register_recipe(name: str, recipe: Recipe, summary: str, source: str = "register_recipe()") -> Recipe:
    return RECIPES.register(name, recipe, summary, source)


AVERAGE = register_recipe("average", averaged_layer,
                          "a copy of the first layer with its weights and the second's mixed (coefficients)", __name__)
HEAD = register_recipe("head", head_swapped_layer,
                       "a copy of the first layer whose attention head h is the second layer's", __name__)


def build(slot: Derived, layers: Sequence[nn.Module]) -> nn.Module:
    """The module a derived slot runs, in eval mode, on its anchor layer's device and dtype."""
    sources = [layers[index] for index in slot.sources]
    for index, layer in zip(slot.sources, sources):
        if any(parameter.device.type == "meta" for parameter in layer.parameters()):
            raise RecipeError(f"{slot}: layer {index}'s weights are offloaded (meta); a derived module needs them "
                              "in memory: give the model a device map without offloading")
    module = RECIPES.get(slot.recipe)(sources, slot.params)
    anchor = next(sources[0].parameters(), None)
    if anchor is not None:
        module = module.to(device=anchor.device, dtype=anchor.dtype)
    return module.eval()


class DerivedModules:
    """The derived modules of one measurement, built on first use and kept until it ends."""

    def __init__(self, layers: Sequence[nn.Module]):
        self.layers = layers
        self._built: dict[Derived, nn.Module] = {}

    def __call__(self, slot: Union[int, Derived]) -> nn.Module:
        if isinstance(slot, int):
            return self.layers[slot]
        if slot not in self._built:
            self._built[slot] = build(slot, self.layers)
        return self._built[slot]
