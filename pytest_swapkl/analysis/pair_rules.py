"""Pair-to-set rules: how a protocol's pair distances become the k layers it would remove.

    PAIR_RULES.get("later")(pairs, distances, k)   # the audit's rule (stats.removal_set)

Distances are per pair, smallest = most redundant; a rule returns at most k layers, sorted, and its k-set
contains its (k-1)-set. Every rule is registered beside its function; `swapkl list rules` prints them.
Pure Python, no numpy: `swapkl prune --pair-rule` reads the names when the command line is parsed.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from ..registry import Registry

Pairs = Sequence[tuple[int, int]]
PairRule = Callable[[Pairs, Sequence[float], int], list[int]]

PAIR_RULES: Registry[PairRule] = Registry("pair rule")


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
