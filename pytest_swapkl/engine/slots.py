"""What one slot of a probe runs: a layer of the model (its index) or a module derived from layers.

A probe is a sequence of slots. Most slots run one of the model's own layers, named by its index.
A :class:`Derived` slot runs a module built from layers by a registered recipe (``engine/recipes.py``):
the mean of two layers' weights, a layer with one attention head taken from another. Slots are
plain hashable values, so the fast path's trie shares work wherever two probes agree on a run of
slots, whatever those slots run. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Derived:
    """A module that a recipe builds from the model's layers ``sources`` with parameters ``params``.

    The first source is the *anchor*: the derived module runs with the anchor's recorded call arguments
    (its attention mask type and rotary embedding, under the default attention type "layer") and on the
    anchor's device.
    """

    recipe: str
    sources: tuple[int, ...]
    params: tuple[Union[int, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"derived module {self.recipe!r} needs at least one source layer")

    @property
    def anchor(self) -> int:
        return self.sources[0]

    def __str__(self) -> str:
        params = ";" + ",".join(map(str, self.params)) if self.params else ""
        return f"{self.recipe}[{','.join(map(str, self.sources))}{params}]"


Slot = Union[int, Derived]


def anchor(slot: Slot) -> int:
    """The layer whose recorded arguments and device a slot's module uses: itself, or a derived module's anchor."""
    return slot if isinstance(slot, int) else slot.anchor


def sort_key(slot: Slot) -> tuple:
    """Orders mixed slots (layers before derived modules): the fast path sorts probes by the slots they run."""
    if isinstance(slot, int):
        return (0, slot)
    return (1, slot.recipe, slot.sources, tuple(map(float, slot.params)))
