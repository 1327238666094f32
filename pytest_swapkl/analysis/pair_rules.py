"""Pair-to-set rules: how a protocol's pair distances become the k layers it would remove.

    SetRule().choose(pairs, distances, k, n_layers)   # the default: the paper's min-partner rule, spacing 1
    PAIR_RULES.get("later")(pairs, distances, k)        # any registered rule by name (stats.removal_set = later)

Distances are per pair, smallest = most redundant; a rule returns at most k layers, sorted, and its k-set
contains its (k-1)-set. Every rule is registered beside its function; `swapkl list rules` prints them.
``SetRule`` is a rule with its parameters (min-partner's spacing and kept boundary layers): what the settings
name, what every reported set records. Pure Python, no numpy: the options read the names when they are parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from ..registry import Registry

Pairs = Sequence[tuple[int, int]]
PairRule = Callable[[Pairs, Sequence[float], int], list[int]]

PAIR_RULES: Registry[PairRule] = Registry("pair rule")

MIN_PARTNER = "min-partner"
DEFAULT_PAIR_RULE = MIN_PARTNER  # the paper's Table 14 rule (docs/decisions.md)


def _rule(name: str, summary: str) -> Callable[[PairRule], PairRule]:
    def register(function: PairRule) -> PairRule:
        return PAIR_RULES.register(name, function, summary, __name__)
    return register


def layer_min_scores(pairs: Pairs, distances: Sequence[float]) -> dict[int, float]:
    """Per layer: the smallest distance over the pairs that contain it (layers in no pair are absent)."""
    scores: dict[int, float] = {}
    for (i, j), distance in zip(pairs, distances):
        for layer in (i, j):
            scores[layer] = min(scores.get(layer, math.inf), float(distance))
    return scores


def lowest_k(scores: Mapping[int, float], k: int) -> list[int]:
    """The k layers with the smallest score, ties by layer index."""
    return sorted(sorted(scores, key=lambda layer: (scores[layer], layer))[:k])


def min_partner_order(pairs: Pairs, distances: Sequence[float], k: int, spacing: int = 1, keep_boundary: int = 0,
                      n_layers: Optional[int] = None) -> list[int]:
    """The paper's Table 14 rule, in the order it removes layers (its k'-set is the first k', for any k' <= k).

    Each layer's score is its smallest distance to any partner, s(i) = min_j d(i, j); the layers are scanned by
    ascending score (ties by layer index: the paper's scripts sort a layer-ordered dict stably) and a layer is
    taken when |i - r| > spacing for every layer r already taken (spacing 1: no two adjacent, as the paper's
    default; 0: no constraint, the ``layer_min`` set). ``keep_boundary`` N never takes the first N or the last
    N layers of ``n_layers`` (the last ones counted from the largest layer of a pair when n_layers is None).
    Layers in no pair have no score and are never taken (the scripts score them infinite, last).
    """
    if spacing < 0 or keep_boundary < 0:
        raise ValueError(f"spacing and keep_boundary are whole numbers >= 0, got {spacing} and {keep_boundary}")
    scores = layer_min_scores(pairs, distances)
    top = (n_layers if n_layers is not None else max(scores, default=-1) + 1) - keep_boundary
    eligible = [layer for layer in sorted(scores, key=lambda layer: (scores[layer], layer))
                if keep_boundary <= layer < top]
    return spaced_scan(eligible, k, spacing)[1]


def spaced_scan(ordered: Sequence[int], k: int, spacing: int) -> tuple[list[int], list[int]]:
    """Min-partner's scan: layers in ``ordered`` (ascending score) are taken unless within ``spacing`` of one
    already taken, until k are taken. Returns (visited, taken): adaptive mode and certification reason about
    the order of the visited layers, the rule itself reads only the taken ones."""
    visited: list[int] = []
    taken: list[int] = []
    for layer in ordered:
        if len(taken) == k:
            break
        visited.append(layer)
        if all(abs(layer - other) > spacing for other in taken):
            taken.append(layer)
    return visited, taken


@_rule(MIN_PARTNER, "the paper's rule (Table 14): score each layer by its smallest distance to a partner, take "
       "the lowest first, never two within --spacing of each other (default 1: no two adjacent)")
def min_partner(pairs: Pairs, distances: Sequence[float], k: int) -> list[int]:
    return sorted(min_partner_order(pairs, distances, k))


@_rule("layer_min", "score each layer by the smallest distance of a pair containing it; remove the k lowest")
def layer_min(pairs: Pairs, distances: Sequence[float], k: int) -> list[int]:
    return lowest_k(layer_min_scores(pairs, distances), k)


@_rule("later", "walk the pairs from most to least redundant, remove the later layer of each (the audit's rule)")
def removal_set(pairs: Pairs, distances: Sequence[float], k: int) -> list[int]:
    """The k layers a protocol would remove, read from its pair distances.

    Walk the pairs from most to least redundant (smallest distance first; ties by
    position) and remove the later layer j of each pair (i, j), on the reading that
    layer i stands in for it, unless j is already removed or i is (a removed layer
    cannot stand in for anything). Chains are allowed: after (2, 3) removed 3, the pair
    (1, 2) may remove 2, and layer 1 then stands in for both. On the demo model this
    chain reading costs far less at k = 3..4 than forbidding the removal of a stand-in
    (KL 0.18 vs 0.35 at k = 3; docs/pruning.md). Stops at k layers or when the pairs run out.
    """
    return sorted(removal_order(pairs, distances, k))


@_rule("earlier", "the same walk removing the earlier layer of each pair, the later one standing in")
def earlier(pairs: Pairs, distances: Sequence[float], k: int) -> list[int]:
    # Mirrored pairs make j the stand-in and i the removed layer; ties then go by (j, i).
    return removal_set([(j, i) for i, j in pairs], distances, k)


def removal_order(pairs: Pairs, distances: Sequence[float], k: int) -> list[int]:
    """The layers ``removal_set`` removes, in the order it removes them: its k'-set, for any k' <= k, is the
    first k' of these (sorted), so one walk serves every budget."""
    return walk(pairs, sorted(range(len(pairs)), key=lambda n: (distances[n], pairs[n])), k)


def walk(pairs: Pairs, order: list[int], k: int) -> list[int]:
    """The "later" walk over the pairs in ``order`` (indices into pairs), in removal order."""
    removed: list[int] = []
    for n in order:
        i, j = pairs[n]
        if len(removed) == k:
            break
        if j not in removed and i not in removed:
            removed.append(j)
    return removed


@dataclass(frozen=True)
class SetRule:
    """A registered pair rule with its parameters: how a protocol's pair distances become removal sets.
    ``spacing`` and ``keep_boundary`` are min-partner's (``min_partner_order``); other rules take none."""

    name: str = DEFAULT_PAIR_RULE
    spacing: int = 1
    keep_boundary: int = 0

    def __post_init__(self) -> None:
        PAIR_RULES.get(self.name)  # an unknown name fails here, in one line naming the known ones
        if self.spacing < 0 or self.keep_boundary < 0:
            raise ValueError(f"spacing and keep_boundary are whole numbers >= 0, got {self.spacing} and "
                             f"{self.keep_boundary}")

    @classmethod
    def of(cls, settings: Any) -> "SetRule":
        """The rule of anything with pair_rule, spacing and keep_boundary (the statistics settings), or a name."""
        if isinstance(settings, cls):
            return settings
        if isinstance(settings, str):
            return cls(settings)
        return cls(settings.pair_rule, settings.spacing, settings.keep_boundary)

    def order(self, pairs: Pairs, distances: Sequence[float], k: int, n_layers: Optional[int] = None) -> list[int]:
        """Up to k layers, in an order whose first k' are the k'-set for every k' <= k."""
        if self.name == MIN_PARTNER:
            return min_partner_order(pairs, distances, k, self.spacing, self.keep_boundary, n_layers)
        if self.name == "later":
            return removal_order(pairs, distances, k)
        rule, order = PAIR_RULES.get(self.name), []
        for budget in range(1, k + 1):  # nested by the registry's contract: each budget adds what it adds
            order += [layer for layer in rule(pairs, distances, budget) if layer not in order]
        return order

    def choose(self, pairs: Pairs, distances: Sequence[float], k: int, n_layers: Optional[int] = None) -> list[int]:
        """The k-set, sorted (fewer layers when the rule runs out)."""
        return sorted(self.order(pairs, distances, k, n_layers))

    def record(self) -> dict[str, Any]:
        """The rule as the audit JSON names it beside every set."""
        return {"name": self.name, "spacing": self.spacing, "keep_boundary": self.keep_boundary}

    @property
    def label(self) -> str:
        """The rule in words, for tables and reports: 'min-partner (spacing 1)', 'later'."""
        if self.name != MIN_PARTNER:
            return self.name
        kept = f", first and last {self.keep_boundary} kept" if self.keep_boundary else ""
        return f"{self.name} (spacing {self.spacing}{kept})"


def rule_label(record: Any) -> str:
    """A rule recorded in a document (``SetRule.record``, or a bare name from an older one) in words; '' if none."""
    if isinstance(record, dict) and isinstance(record.get("name"), str) and record["name"] in PAIR_RULES:
        try:
            return SetRule(record["name"], int(record.get("spacing", 1)), int(record.get("keep_boundary", 0))).label
        except (TypeError, ValueError):
            return ""
    return record if isinstance(record, str) and record in PAIR_RULES else ""
