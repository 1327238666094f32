"""Probe kinds (the protocols), each one registered definition.

A probe kind says how its arguments become what each slot runs (``slots``) and how a probe of
it is named (``label``). Everything downstream (the fast path, the reference path, placed
models, prefix sharing, the journal and the shards) reads only the slot sequence, so a new kind
is one :func:`register_protocol` call and, if its slots run modules derived from the model's
layers (averaged weights, a swapped head), one recipe in ``engine/recipes.py``.
No torch here: option parsing and ``swapkl list`` read this registry at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import InputError
from ..registry import Registry
from .slots import Derived, Slot


class SpecError(InputError):
    """A user-supplied spec (pairs, layers, a probe's arguments) that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class ProbeKind:
    """One protocol: what each slot runs for given arguments, and the probe's printed name."""

    name: str
    summary: str  # the question the probe asks, one line (`swapkl list protocols`)
    slots: Callable[[tuple, int], Sequence[Slot]]  # (args, n_layers) -> what slots 0, 1, ... run
    label: Callable[[tuple], str]  # args -> "replacement(1->2)"


PROTOCOLS: Registry[ProbeKind] = Registry("protocol")


def register_protocol(kind: ProbeKind, source: str = "register_protocol()") -> ProbeKind:
    return PROTOCOLS.register(kind.name, kind, kind.summary, source)


def check_layer(index: int, n_layers: int) -> None:
    if not 0 <= index < n_layers:
        raise SpecError(f"layer {index} is out of range: the model has layers 0..{n_layers - 1}")


def _pair_slots(args: tuple, n_layers: int) -> tuple[int, int, list[Slot]]:
    """The pair (i, j), checked, and the unchanged sequence for a pair protocol to change."""
    i, j = args
    check_layer(i, n_layers)
    check_layer(j, n_layers)
    return i, j, list(range(n_layers))


def _replacement_slots(args: tuple, n_layers: int) -> list[Slot]:
    i, j, order = _pair_slots(args, n_layers)
    order[j] = i
    return order


def _interchange_slots(args: tuple, n_layers: int) -> list[Slot]:
    i, j, order = _pair_slots(args, n_layers)
    order[i], order[j] = order[j], order[i]
    return order


def _removal_slots(args: tuple, n_layers: int) -> list[Slot]:
    for index in args:
        check_layer(index, n_layers)
    if len(set(args)) == n_layers:
        raise SpecError("cannot remove every layer: leave at least one")
    return [m for m in range(n_layers) if m not in args]


def _order_slots(args: tuple, n_layers: int) -> list[Slot]:
    if not args:
        raise SpecError("a layer order needs at least one layer")
    for entry in args:
        if isinstance(entry, int):
            check_layer(entry, n_layers)
        else:
            for source in entry.sources:
                check_layer(source, n_layers)
    return list(args)


def _distinct_pair(args: tuple, n_layers: int, name: str) -> tuple[int, int, list[Slot]]:
    i, j, order = _pair_slots(args[:2], n_layers)
    if i == j:
        raise SpecError(f"{name}({i},{j}) names one layer twice: a pair needs two different layers")
    return i, j, order


def averaging_weight(args: tuple) -> float:
    """The interpolation weight w of averaging(i,j; w): slots run (1 - w) * layer i + w * layer j (default 0.5)."""
    weight = float(args[2]) if len(args) > 2 else 0.5
    if not 0.0 <= weight <= 1.0:
        raise SpecError(f"averaging weight {weight} is outside 0..1: slots run (1 - w) * layer i + w * layer j")
    return weight


def _averaging_slots(args: tuple, n_layers: int) -> list[Slot]:
    i, j, order = _distinct_pair(args, n_layers, "averaging")
    weight = averaging_weight(args)
    # The same two coefficients in both slots, swapped with the sources: bit-identical weights in both.
    order[i] = Derived("average", (i, j), (1.0 - weight, weight))
    order[j] = Derived("average", (j, i), (weight, 1.0 - weight))
    return order


def _averaging_label(args: tuple) -> str:
    weight = averaging_weight(args)
    return f"averaging({args[0]},{args[1]})" if weight == 0.5 else f"averaging({args[0]},{args[1]};{weight:g})"


def _head_slots(args: tuple, n_layers: int) -> list[Slot]:
    i, j, order = _distinct_pair(args, n_layers, "head")
    head = args[2]
    if not isinstance(head, int) or head < 0:
        raise SpecError(f"head index {head!r} must be a whole number 0 or more")
    order[i] = Derived("head", (i, j), (head,))  # its range is the model's: engine/heads.py checks it
    return order


def _joined(args: tuple) -> str:
    return ",".join(map(str, args))


REPLACEMENT = register_protocol(ProbeKind(
    "replacement", "slot j runs layer i's module (layer i also stays in slot i): can layer i stand in for layer j?",
    _replacement_slots, lambda args: f"replacement({args[0]}->{args[1]})"), __name__)
INTERCHANGE = register_protocol(ProbeKind(
    "interchange", "slots i and j swap modules: do the two layers commute?",
    _interchange_slots, lambda args: f"interchange({args[0]},{args[1]})"), __name__)
REMOVAL = register_protocol(ProbeKind(
    "removal", "every slot in the set is dropped: what does skipping those layers cost?",
    _removal_slots, lambda args: f"removal({_joined(args)})"), __name__)
ORDER = register_protocol(ProbeKind(
    "order", "any sequence of modules, repeats, omissions and derived modules allowed",
    _order_slots, lambda args: f"order({_joined(args)})"), __name__)
AVERAGING = register_protocol(ProbeKind(
    "averaging", "slots i and j both run one module with the mean of the two layers' weights: are they one layer?",
    _averaging_slots, _averaging_label), __name__)
HEAD = register_protocol(ProbeKind(
    "head", "attention head h of layer i takes layer j's q/k/v/o slices: does one head carry the difference?",
    _head_slots, lambda args: f"head({args[0]}<-{args[1]},{args[2]})"), __name__)
