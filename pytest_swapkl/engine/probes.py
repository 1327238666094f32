"""Probes (changed layer sequences) and the pair specs that choose them.

A probe is the sequence of layer modules that runs in slots 0, 1, ...; the
unchanged model is ``(0, 1, ..., N-1)``. Everything here is plain Python (no
torch) so that option parsing stays cheap at pytest start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from ..errors import InputError

PAIR_SPEC_HELP = "adjacent | all | window:K | i-j[,i-j...]"


class SpecError(InputError):
    """A user-supplied spec (pairs, layers) that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Probe:
    """One changed layer sequence and the question it stands for."""

    kind: str  # "replacement", "interchange", "removal" or "order"
    args: tuple[int, ...]  # (i, j) for replacement(i->j) and interchange; the removed set for removal
    order: tuple[int, ...]  # module index run in each slot
    n_layers: int  # depth of the unchanged model

    @property
    def name(self) -> str:
        if self.kind == "replacement":
            return f"replacement({self.args[0]}->{self.args[1]})"
        if self.kind == "interchange":
            return f"interchange({self.args[0]},{self.args[1]})"
        if self.kind == "removal":
            return f"removal({','.join(map(str, self.args))})"
        return f"order({','.join(map(str, self.order))})"

    def first_changed_slot(self) -> int | None:
        """The first slot whose input differs from the base pass; None for an identity probe."""
        for slot, module in enumerate(self.order):
            if module != slot:
                return slot
        # Same modules in every slot they have: a shorter order drops the tail.
        return None if len(self.order) == self.n_layers else len(self.order)

    def __str__(self) -> str:
        return self.name


def _make(kind: str, args: tuple[int, ...], order: Sequence[int], n_layers: int) -> Probe:
    return Probe(kind, args, tuple(order), n_layers)


def _check_layer(index: int, n_layers: int) -> None:
    if not 0 <= index < n_layers:
        raise SpecError(f"layer {index} is out of range: the model has layers 0..{n_layers - 1}")


def replacement(i: int, j: int, n_layers: int) -> Probe:
    """Slot j runs layer i's module (layer i also stays in slot i)."""
    _check_layer(i, n_layers)
    _check_layer(j, n_layers)
    order = list(range(n_layers))
    order[j] = i
    return _make("replacement", (i, j), order, n_layers)


def interchange(i: int, j: int, n_layers: int) -> Probe:
    """Slots i and j swap modules."""
    _check_layer(i, n_layers)
    _check_layer(j, n_layers)
    order = list(range(n_layers))
    order[i], order[j] = order[j], order[i]
    return _make("interchange", (i, j), order, n_layers)


def removal(layers: Iterable[int], n_layers: int) -> Probe:
    """Every slot in ``layers`` is dropped."""
    removed = tuple(sorted(set(layers)))
    for index in removed:
        _check_layer(index, n_layers)
    if len(removed) == n_layers:
        raise SpecError("cannot remove every layer: leave at least one")
    return _make("removal", removed, [m for m in range(n_layers) if m not in removed], n_layers)


def layer_order(order: Sequence[int], n_layers: int) -> Probe:
    """Any sequence of layer modules (repeats and omissions allowed)."""
    if not order:
        raise SpecError("a layer order needs at least one layer")
    for index in order:
        _check_layer(index, n_layers)
    return _make("order", tuple(order), order, n_layers)


def identity(n_layers: int) -> Probe:
    return _make("order", tuple(range(n_layers)), range(n_layers), n_layers)


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
