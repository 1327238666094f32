"""The static manifest of a sharded audit: work units that any number of workers can cover.

A work unit is (probe group, sequence range). Both are fixed by the audit alone (its probes,
depth, number of sequences and unit size), never by the number of workers, so a unit finished
by a run with 4 workers is the same unit, with the same key, for a rerun with 1 or 3.

- Probe groups: probes are grouped by their first changed slot (the fast path's trie roots, which
  share no work with each other), and neighbouring slots are joined until a group's layer passes
  are at least ``GROUP_PASSES_PER_LAYER`` times the model's depth, so that the base pass each unit
  repeats costs at most a sixteenth of its work. Measured on the manifests (docs/scaling.md): the
  repeated base passes add 4.8% layer passes to an adjacent Llama-3.1-8B audit, 3.3% to all pairs
  (there every slot's own group is already larger, so the slots bound it) and 1.6% at 80 layers.
- Sequence ranges: consecutive blocks of ``unit_sequences`` sequences (the last one shorter).
- Assignment: unit k goes to worker k mod N, in the manifest's order (costliest groups first),
  which spreads both the costly groups and the sequence ranges over the workers.

No torch: option checks and `swapkl merge` use this without loading a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import InputError
from .probes import Probe

DEFAULT_UNIT_SEQUENCES = 8
GROUP_PASSES_PER_LAYER = 16


class ShardSpecError(InputError):
    pass


@dataclass(frozen=True)
class WorkUnit:
    group: int  # index of the probe group in the manifest
    probes: tuple[str, ...]  # probe names of the group, in audit order
    start: int  # first sequence (index into the calibration set)
    stop: int  # one past the last

    def key(self, audit_id: str) -> str:
        """The unit's content key: the audit's identity (weights, tokens, dtype, settings), its probes and range."""
        material = json.dumps([audit_id, list(self.probes), self.start, self.stop])
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def cost(self, passes: dict[str, int]) -> int:
        return sum(passes[name] for name in self.probes) * (self.stop - self.start)


def probe_groups(probes: Sequence[Probe], n_layers: int) -> list[list[Probe]]:
    """Probes grouped by first changed slot, neighbouring slots joined until a group is worth its base pass."""
    by_slot: dict[int, list[Probe]] = {}
    for probe in probes:
        slot = probe.first_changed_slot()
        by_slot.setdefault(-1 if slot is None else slot, []).append(probe)
    groups: list[list[Probe]] = []
    current: list[Probe] = []
    for slot in sorted(by_slot):
        current += by_slot[slot]
        if _layer_passes(current) >= GROUP_PASSES_PER_LAYER * n_layers:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    order = {probe: n for n, probe in enumerate(probes)}
    return [sorted(group, key=order.__getitem__) for group in groups]


def _layer_passes(probes: Sequence[Probe]) -> int:
    """Layer replays of these probes on the fast path (trie edges: shared leading runs count once)."""
    edges = set()
    for probe in probes:
        start = probe.first_changed_slot()
        if start is not None:
            suffix = probe.order[start:]
            edges.update((start, suffix[: k + 1]) for k in range(len(suffix)))
    return len(edges)


def build_manifest(probes: Sequence[Probe], n_layers: int, n_sequences: int,
                   unit_sequences: int = DEFAULT_UNIT_SEQUENCES) -> list[WorkUnit]:
    """Every unit of the audit, costliest groups first, each group's ranges in sequence order."""
    if unit_sequences < 1:
        raise ShardSpecError(f"--unit-sequences must be a positive integer, got {unit_sequences}")
    groups = probe_groups(probes, n_layers)
    costs = [_layer_passes(group) + n_layers for group in groups]  # the base pass every unit runs
    ranked = sorted(range(len(groups)), key=lambda g: -costs[g])  # stable: ties keep slot order
    units = []
    for g in ranked:
        names = tuple(p.name for p in groups[g])
        for start in range(0, n_sequences, unit_sequences):
            units.append(WorkUnit(g, names, start, min(start + unit_sequences, n_sequences)))
    return units


def assigned(units: Sequence[WorkUnit], rank: int, world: int) -> list[WorkUnit]:
    """The units of worker `rank` of `world`: every world-th unit of the manifest, from the rank-th."""
    return list(units[rank::world])


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (0 <= I < N) to (I, N); the one-line error says what a shard spec looks like."""
    parts = str(text).strip().split("/")
    try:
        index, count = (int(part) for part in parts)
    except ValueError:
        raise ShardSpecError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count or count > 1_000_000:
        raise ShardSpecError(f"--shard must be I/N with 0 <= I < N <= 1000000 (e.g. 0/4), got {text!r}")
    return index, count


def manifest_id(audit_id: str, units: Sequence[WorkUnit]) -> str:
    """One hash over every unit key: two shards belong to one audit exactly when these agree."""
    return hashlib.sha256("\n".join(u.key(audit_id) for u in units).encode()).hexdigest()


def describe(units: Sequence[WorkUnit]) -> dict[str, Any]:
    return {"units": len(units), "groups": len({u.group for u in units}),
            "unit_sequences": max((u.stop - u.start for u in units), default=0)}
