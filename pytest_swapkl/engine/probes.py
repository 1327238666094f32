"""Probes (changed layer sequences) and the pair specs that choose them.

A probe is what runs in slots 0, 1, ...: a layer of the model (its index) or a module derived from
layers (``engine/slots.py``); the unchanged model is ``(0, 1, ..., N-1)``. A probe's kind is one of
the registered protocols (``engine/protocols.py``), which turns its arguments into slots and names it.
Everything here is plain Python (no torch) so that option parsing stays cheap at pytest start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Optional, Sequence

from .protocols import PROTOCOLS, SpecError
from .slots import Slot

__all__ = ["PAIR_SPEC_HELP", "Probe", "SpecError", "make_probe", "replacement", "interchange", "removal",
           "layer_order", "averaging", "head", "identity", "parse_pairs", "audit_probes", "count_layer_passes"]

PAIR_SPEC_HELP = "adjacent | all | window:K | i-j[,i-j...]"


@dataclass(frozen=True)
class Probe:
    """One changed layer sequence and the question it stands for."""

    kind: str  # a registered protocol: "replacement", "interchange", "removal", "order", ...
    args: tuple  # the protocol's arguments: (i, j) for replacement(i->j) and interchange; the removed set for removal
    order: tuple[Slot, ...]  # what runs in each slot: a layer index or a derived module
    n_layers: int  # depth of the unchanged model

    @cached_property
    def name(self) -> str:
        return PROTOCOLS.get(self.kind).label(self.args)

    def first_changed_slot(self) -> int | None:
        """The first slot whose input differs from the base pass; None for an identity probe."""
        for slot, module in enumerate(self.order):
            if module != slot:
                return slot
        # Same modules in every slot they have: a shorter order drops the tail.
        return None if len(self.order) == self.n_layers else len(self.order)

    def __str__(self) -> str:
        return self.name


def make_probe(kind: str, args: Sequence, n_layers: int) -> Probe:
    """A probe of a registered protocol; the protocol checks its arguments (a one-line SpecError)."""
    args = tuple(args)
    return Probe(kind, args, tuple(PROTOCOLS.get(kind).slots(args, n_layers)), n_layers)


def replacement(i: int, j: int, n_layers: int) -> Probe:
    """Slot j runs layer i's module (layer i also stays in slot i)."""
    return make_probe("replacement", (i, j), n_layers)


def interchange(i: int, j: int, n_layers: int) -> Probe:
    """Slots i and j swap modules."""
    return make_probe("interchange", (i, j), n_layers)


def removal(layers: Iterable[int], n_layers: int) -> Probe:
    """Every slot in ``layers`` is dropped."""
    return make_probe("removal", sorted(set(layers)), n_layers)


def layer_order(order: Sequence[Slot], n_layers: int) -> Probe:
    """Any sequence of slots (repeats, omissions and derived modules allowed)."""
    return make_probe("order", order, n_layers)


def averaging(i: int, j: int, n_layers: int, weight: float = 0.5) -> Probe:
    """Slots i and j both run one module with weights (1 - weight) * layer i's + weight * layer j's."""
    return make_probe("averaging", (i, j, weight), n_layers)


def head(i: int, j: int, head_index: int, n_layers: int) -> Probe:
    """Attention head ``head_index`` of layer i takes layer j's query, key, value and output slices."""
    return make_probe("head", (i, j, head_index), n_layers)


def identity(n_layers: int) -> Probe:
    return make_probe("order", range(n_layers), n_layers)


def parse_pairs(spec: str, n_layers: Optional[int]) -> list[tuple[int, int]]:
    """Pairs (i < j) named by a spec: ``adjacent``, ``all``, ``window:K`` or ``i-j,i-j,...``.

    Layer numbers are ASCII digits. ``n_layers=None`` only checks the spec's syntax, before a model is
    loaded, and returns no pairs.
    """
    text = spec.strip().lower()
    if n_layers is not None and n_layers < 2:
        raise SpecError(f"pairs need at least 2 layers; the model has {n_layers}")
    depth = n_layers or 0
    if text == "adjacent":
        return [(i, i + 1) for i in range(depth - 1)]
    if text == "all":
        return [(i, j) for i in range(depth) for j in range(i + 1, depth)]
    window = re.fullmatch(r"window:([0-9]+)", text)
    if window:
        k = _layer_number(window.group(1))
        if k < 1:
            raise SpecError(f"pair spec {spec!r}: window size must be at least 1, e.g. window:2")
        return [(i, j) for i in range(depth) for j in range(i + 1, min(i + k, depth - 1) + 1)]
    pairs: list[tuple[int, int]] = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*", item)
        if not match:
            raise SpecError(f"pair spec {spec!r} is not understood: use {PAIR_SPEC_HELP}")
        low, high = sorted(match.groups(), key=_numeric_order)
        if _numeric_order(low) == _numeric_order(high):
            raise SpecError(f"pair {item.strip()!r} names one layer twice: a pair needs two different layers")
        for digits in (low, high):
            if n_layers is not None and _layer_number(digits) >= n_layers:
                shown = digits if len(digits) <= 20 else f"{digits[:12]}...({len(digits)} digits)"
                raise SpecError(
                    f"pair {item.strip()!r}: layer {shown} is out of range, the model has layers 0..{n_layers - 1}"
                )
        pair = (_layer_number(low), _layer_number(high))
        if n_layers is not None and pair not in pairs:
            pairs.append(pair)
    return pairs


def _numeric_order(digits: str) -> tuple[int, str]:
    """Sort key of a run of ASCII digits by value, without int() (which refuses more than 4300 digits)."""
    significant = digits.lstrip("0") or "0"
    return len(significant), significant


def _layer_number(digits: str) -> int:
    """ASCII digits as an int; a number of more than 18 digits, beyond any model's depth, counts as 10**18."""
    length, significant = _numeric_order(digits)
    return int(significant) if length <= 18 else 10**18


def audit_probes(pairs: Sequence[tuple[int, int]], n_layers: int, removals: bool = True) -> list[Probe]:
    """The probes of an audit: both replacement directions and the interchange per pair, then removals."""
    probes: list[Probe] = []
    for i, j in pairs:
        probes += [replacement(i, j, n_layers), replacement(j, i, n_layers), interchange(i, j, n_layers)]
    if removals:
        probes += [removal([j], n_layers) for j in range(n_layers)]
    return probes


def count_layer_passes(probes: Sequence[Probe], n_layers: int) -> tuple[int, int]:
    """Layer passes of (reference path, fast path) for one batch, base pass included in both.

    The reference reruns every probe from the embedding. The fast path starts each
    probe at its first changed slot and shares leading runs of modules between probes
    that start at the same slot (the edges of a trie), which is exactly what
    ``engine`` executes.
    """
    reference = n_layers + sum(len(p.order) for p in probes)
    edges: set[tuple[int, tuple[int, ...]]] = set()
    for probe in probes:
        start = probe.first_changed_slot()
        if start is None:
            continue
        suffix = probe.order[start:]
        edges.update((start, suffix[: k + 1]) for k in range(len(suffix)))
    return reference, n_layers + len(edges)
