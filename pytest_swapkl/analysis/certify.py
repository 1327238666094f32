"""Which generated tests' exact verdicts are already decided, given what is known for sure about the means.

This is adaptive mode's narrow interface to the agreement rules (analysis/agreement.py). What adaptive
sampling knows, for each protocol (R, I, removal) and item (a pair, or a layer), is
  * ``below[a, b]``: item b's exact mean is surely below item a's (from confidence sequences);
  * ``low``/``high``: an interval that surely holds item a's exact mean;
  * ``full[a]``: the item is measured on every sequence, so its numbers are the exact audit's;
and, where both items are full, the rule's own relations (``surely``/``possibly``) on the exact numbers.
What the rules must provide (and what must be re-stated here when they change):
  * a pair verdict is ``floor or (not ratio_fail and gap <= allowed)``, where gap is the distance between
    the pair's rank intervals under R and I, and a rank interval runs from 1 + #(pairs surely below) to
    1 + #(pairs possibly below);
  * sign consistency: the rule never says "b surely below a" when b's exact mean is above a's, and always
    says "b possibly below a" when b's exact mean is below a's (an interval, marginal or paired, holds its
    own estimate);
  * the rank correlation and the removal sets depend only on the order of the exact means.
tests/analysis/test_certify.py checks the first two against agreement.pair_outcomes on random tables.
Each verdict comes back as a ``Maybe``: whether it can still be True, and whether it can still be False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import paired
from .pair_rules import MIN_PARTNER, SetRule, layer_min_scores, spaced_scan


@dataclass
class Maybe:
    """A three-valued boolean per item: can it be True, can it be False (both: not decided yet)."""

    can_true: np.ndarray
    can_false: np.ndarray

    @classmethod
    def known(cls, values) -> "Maybe":
        values = np.asarray(values, dtype=bool)
        return cls(values.copy(), ~values)

    @classmethod
    def unknown(cls, shape) -> "Maybe":
        return cls(np.ones(shape, dtype=bool), np.ones(shape, dtype=bool))

    def __and__(self, other: "Maybe") -> "Maybe":
        return Maybe(self.can_true & other.can_true, self.can_false | other.can_false)

    def __or__(self, other: "Maybe") -> "Maybe":
        return Maybe(self.can_true | other.can_true, self.can_false & other.can_false)

    def __invert__(self) -> "Maybe":
        return Maybe(self.can_false.copy(), self.can_true.copy())

    @property
    def decided(self) -> np.ndarray:
        return self.can_true != self.can_false

    @property
    def value(self) -> np.ndarray:
        """The decided value (meaningful where ``decided``)."""
        return self.can_true & ~self.can_false


@dataclass
class Knowledge:
    """What is surely known about one protocol's items (see the module docstring)."""

    values: np.ndarray  # the audit's current estimates: what the plugin would report now
    low: np.ndarray
    high: np.ndarray
    below: np.ndarray  # [a, b]: b's exact mean surely below a's
    full: np.ndarray
    surely: np.ndarray  # the rule's relations on the current numbers (exact where both items are full)
    possibly: np.ndarray

    def under(self, floor: float) -> Maybe:
        """Is the exact mean at or below the noise floor?"""
        return Maybe(self.low <= floor, self.high > floor)


def rule_relations(values, lows, highs, floor: float, order: Optional[np.ndarray] = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """[n, n] (surely, possibly): pair b is surely / possibly below pair a, as the rule counts them (its rank
    interval is 1 + the row sums). With ``order`` (agreement.paired_order, the rule the cases assert): b surely
    below a where the paired interval of a - b lies above 0, possibly where it does not lie below 0. Without it,
    the marginal-overlap rule of agreement.rank_intervals. test_certify checks both against agreement.py."""
    values, lows, highs = (np.asarray(a, dtype=np.float64) for a in (values, lows, highs))
    other = ~np.eye(len(values), dtype=bool)
    if order is not None:
        order = np.asarray(order)
        return (order == paired.B_SMALLER) & other, (order != paired.A_SMALLER) & other
    under = values <= floor
    surely = (highs[None, :] < lows[:, None]) & ~under[:, None] & other
    possibly = ((lows[None, :] <= highs[:, None]) | (under[None, :] & under[:, None])) & other
    return surely, possibly


def _relations(k: Knowledge, floor: float) -> tuple[Maybe, Maybe]:
    """The exact rule's surely / possibly matrices, as far as they are decided."""
    n = len(k.values)
    other = ~np.eye(n, dtype=bool)
    both_full = k.full[:, None] & k.full[None, :]
    under = k.under(floor)
    # surely[a, b] needs b's interval above... below a's and a above the floor: impossible when b's mean is
    # surely above a's (sign consistency) or a is surely under the floor; never sure before both are full.
    surely = Maybe(~k.below.T & under.can_false[:, None], np.ones((n, n), dtype=bool))
    # possibly[a, b] is sure when b's mean is surely below a's, or both are surely under the floor.
    sure_possible = k.below | (~under.can_false[:, None] & ~under.can_false[None, :])
    possibly = Maybe(np.ones((n, n), dtype=bool), ~sure_possible)
    for matrix, exact in ((surely, k.surely), (possibly, k.possibly)):
        matrix.can_true[both_full] = exact[both_full]
        matrix.can_false[both_full] = ~exact[both_full]
        matrix.can_true &= other
        matrix.can_false |= ~other
    return surely, possibly


def pair_verdicts(r: Knowledge, i: Knowledge, floor: float, allowed: int, log_ratio: Optional[float]) -> Maybe:
    """Each pair case's exact verdict, as far as it is decided (the structure in the module docstring)."""
    sr, pr = _relations(r, floor)
    si, pi = _relations(i, floor)

    def rank_bounds(surely: Maybe, possibly: Maybe):
        """(lowest and highest possible lower end, lowest and highest possible upper end) of rank intervals."""
        return (1 + (surely.can_true & ~surely.can_false).sum(1), 1 + surely.can_true.sum(1),
                1 + (possibly.can_true & ~possibly.can_false).sum(1), 1 + possibly.can_true.sum(1))

    r_low_min, r_low_max, r_high_min, r_high_max = rank_bounds(sr, pr)
    i_low_min, i_low_max, i_high_min, i_high_max = rank_bounds(si, pi)
    max_gap = np.maximum(0, np.maximum(r_low_max - i_high_min, i_low_max - r_high_min))
    min_gap = np.maximum(0, np.maximum(r_low_min - i_high_max, i_low_min - r_high_max))
    gap_ok = Maybe(min_gap <= allowed, max_gap > allowed)
    floor_pass = r.under(floor) & i.under(floor)
    ratio_fail = _ratio_fails(r, i, log_ratio)
    return floor_pass | (~ratio_fail & gap_ok)


def _ratio_fails(r: Knowledge, i: Knowledge, log_ratio: Optional[float]) -> Maybe:
    n = len(r.values)
    if log_ratio is None:
        return Maybe.known(np.zeros(n, dtype=bool))
    result = Maybe.unknown(n)
    positive = (r.low > 0) & (i.low > 0)  # ln(I/R) defined for every value the means can take
    with np.errstate(divide="ignore"):
        lowest = np.log(np.maximum(i.low, 1e-300)) - np.log(np.maximum(r.high, 1e-300))
        highest = np.log(np.maximum(i.high, 1e-300)) - np.log(np.maximum(r.low, 1e-300))
    surely_within = positive & (lowest >= -log_ratio) & (highest <= log_ratio)
    surely_beyond = positive & ((lowest > log_ratio) | (highest < -log_ratio))
    result.can_true[surely_within] = False
    result.can_false[surely_beyond] = False
    both_full = r.full & i.full
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where((r.values > 0) & (i.values > 0), np.abs(np.log(i.values) - np.log(r.values)), np.nan)
    exact_fail = ~np.isnan(exact) & (exact > log_ratio)
    result.can_true[both_full], result.can_false[both_full] = exact_fail[both_full], ~exact_fail[both_full]
    return result


RHO_ROUNDING = 1e-9  # far above the rounding of a Spearman of n <= 10^4 items, far below any tolerance


def rank_correlation_passes(r: Knowledge, i: Knowledge, min_spearman: float, exact_rho: Optional[float]) -> Maybe:
    """Spearman(R, I) >= min_spearman, decided from the range of ranks each pair can take.
    ``exact_rho``: the current Spearman, exact when every item is full."""
    n = len(r.values)
    if (r.full.all() and i.full.all()) or n < 2:
        return Maybe.known([exact_rho is None or exact_rho >= min_spearman])

    def ranks(k: Knowledge):
        return 1 + k.below.sum(1), n - k.below.sum(0)

    (r_low, r_high), (i_low, i_high) = ranks(r), ranks(i)
    largest = np.maximum(np.abs(r_high - i_low), np.abs(i_high - r_low)).astype(np.float64)
    smallest = np.maximum(0, np.maximum(r_low - i_high, i_low - r_high)).astype(np.float64)
    scale = 6 / (n * (n * n - 1))
    rho_lowest, rho_highest = 1 - scale * (largest ** 2).sum(), 1 - scale * (smallest ** 2).sum()
    # Within rounding of the minimum, the bound and the Spearman the rule computes may fall on either side of it
    # (0.9 here, 0.8999999999999998 there): undecided, so the exact rule decides once the items are full
    edge = RHO_ROUNDING
    return Maybe(np.array([rho_highest >= min_spearman - edge]), np.array([rho_lowest < min_spearman + edge]))


def walk_decided(pairs: Sequence[tuple[int, int]], k: Knowledge, budget: int) -> tuple[bool, list[int]]:
    """Is the removal set stats.removal_set would read from the exact means already decided? And which items
    it rests on (the walk's visited pairs and those not surely above them)."""
    order = sorted(range(len(pairs)), key=lambda n: (k.values[n], pairs[n]))
    removed: list[int] = []
    visited: list[int] = []
    for n in order:
        if len(removed) == budget:
            break
        visited.append(n)
        i, j = pairs[n]
        if j not in removed and i not in removed:
            removed.append(j)
    rest = [n for n in order if n not in visited]
    if k.full.all():  # the exact means themselves: the walk is the exact audit's
        return True, []
    return _prefix_decided(k, visited, rest), _open_items(k, visited, rest)


def set_decided(rule: SetRule, pairs: Sequence[tuple[int, int]], k: Knowledge, budget: int,
                n_layers: int) -> tuple[bool, list[int]]:
    """Is the set ``rule`` would read from the exact means already decided? And which items it rests on.
    later and earlier: their pair walks; min-partner and layer_min (min-partner without spacing): their layer
    walks; any other registered rule only once every item is full."""
    if rule.name in ("later", "earlier"):
        return walk_decided(pairs if rule.name == "later" else [(j, i) for i, j in pairs], k, budget)
    if k.full.all():
        return True, []
    if rule.name == MIN_PARTNER:
        return _layer_walk_decided(pairs, k, budget, rule.spacing, rule.keep_boundary, n_layers)
    if rule.name == "layer_min":
        return _layer_walk_decided(pairs, k, budget, 0, 0, n_layers)
    return False, [n for n in range(len(pairs)) if not k.full[n]]


def _layer_walk_decided(pairs: Sequence[tuple[int, int]], k: Knowledge, budget: int, spacing: int,
                        keep_boundary: int, n_layers: int) -> tuple[bool, list[int]]:
    """min-partner's walk over layers by (s, layer), s(l) = the smallest mean of a pair containing l: decided when
    the layers it visits are surely in their order and every other eligible layer surely comes after them."""
    scores = layer_min_scores(pairs, k.values)
    eligible = [layer for layer in sorted(scores, key=lambda layer: (scores[layer], layer))
                if keep_boundary <= layer < n_layers - keep_boundary]
    touching = {layer: [n for n, pair in enumerate(pairs) if layer in pair] for layer in eligible}

    def before(a: int, b: int) -> bool:
        # a pair p of a surely below every pair of b: s(a) <= mean(p) < s(b); p shared by both only orders
        # them by index, which is how the rule breaks a tie
        return any(all(k.below[q, p] or (q == p and a < b) for q in touching[b]) for p in touching[a])

    visited = spaced_scan(eligible, budget, spacing)[0]
    rest = eligible[len(visited):]
    unsure = [(a, b) for a, b in zip(visited, visited[1:]) if not before(a, b)]
    if visited:
        unsure += [(visited[-1], b) for b in rest if not before(visited[-1], b)]
    if not unsure:
        return True, []
    items = sorted({n for a, b in unsure for n in touching[a] + touching[b] if not k.full[n]})
    return False, items or [n for n in range(len(pairs)) if not k.full[n]]


def cheapest_decided(k: Knowledge, budget: int) -> tuple[bool, list[int]]:
    """Is the set of the ``budget`` smallest exact means decided (order inside the set does not matter)?"""
    order = list(np.argsort(k.values, kind="stable"))
    inside, rest = order[:budget], order[budget:]
    if k.full.all():
        return True, []
    decided = all(k.below[u, v] for v in inside for u in rest)
    return decided, _open_items(k, inside, rest)


def _prefix_decided(k: Knowledge, visited: list[int], rest: list[int]) -> bool:
    in_order = all(k.below[b, a] for a, b in zip(visited, visited[1:]))
    return in_order and (not visited or all(k.below[u, visited[-1]] for u in rest))


def _open_items(k: Knowledge, inside: list[int], rest: list[int]) -> list[int]:
    """Items whose order against the set is not yet sure."""
    items = set()
    for a in inside:
        for b in inside + rest:
            if a != b and not (k.below[a, b] or k.below[b, a]):
                items.update((a, b))
    return sorted(items)
