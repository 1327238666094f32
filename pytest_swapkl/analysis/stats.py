"""Ranks, rank correlations, bootstrap intervals and the bootstrap walks of the audit's pair rule.

The rules themselves live in ``pair_rules.py``; ``stats.removal_set`` is still the "later" walk, by name, for
the callers that always read it there. ``rule_orders`` walks any rule over every bootstrap resample.

Pure numpy: no torch, so the plugin and the report can use it cheaply.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from .pair_rules import (
    MIN_PARTNER,
    SetRule,
    removal_order,
    removal_set,  # noqa: F401  (read as stats.removal_set)
    walk,
)

# How R combines replacement(i->j) (a) and replacement(j->i) (b): max is the paper's Definition 1 and the default;
# ji alone is the paper's one-direction scripts' "slot a runs layer b" (slot i runs layer j).
REDUCERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "max": np.maximum,
    "mean": lambda a, b: (a + b) / 2,
    "min": np.minimum,
    "ij": lambda a, b: a,
    "ji": lambda a, b: b,
}
DEFAULT_REDUCE = "max"


def bootstrap_indices(n_sequences: int, n_resamples: int, seed: int,
                      groups: Optional[Sequence[int]] = None) -> np.ndarray:
    """[n_resamples, n_sequences] indices of sequences drawn with replacement.

    Every probe is resampled with the same draws, so intervals of different probes
    (and of R and I of one pair) come from the same resampled calibration sets.
    With ``groups`` (the document of each sequence) whole documents are drawn instead: `cluster_indices`.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.integers(0, n_sequences, size=(n_resamples, n_sequences))
    if len(groups) != n_sequences:
        raise ValueError(f"groups names the document of {len(groups)} sequences, not {n_sequences}")
    return cluster_indices(groups, n_resamples, rng)


def cluster_indices(groups: Sequence[int], n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[n_resamples, n] indices of a bootstrap by document (cluster bootstrap), n = len(groups).

    Sequences of one document are not independent (a removal set can suit one work and not another), so a
    resample draws documents with replacement and takes all of each drawn document's sequences, until n
    sequences are filled; the last document drawn gives only as many of its sequences (the first ones) as fit.
    The fixed size keeps every caller's ``values[indices].mean(axis=1)``; with documents of equal size it is
    the textbook cluster bootstrap, and each document of one sequence makes it the i.i.d. one.
    """
    groups = np.asarray(groups)
    n = len(groups)
    _, owner = np.unique(groups, return_inverse=True)
    sizes = np.bincount(owner)
    members = np.full((len(sizes), sizes.max()), -1, dtype=np.int64)  # row d: document d's sequences, then -1
    order = np.argsort(owner, kind="stable")
    members[owner[order], np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = order
    out = np.empty((n_resamples, n), dtype=np.int64)
    block = max(1, 4_000_000 // (n * members.shape[1]))  # rows per block: at most ~32 MB of candidates
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        drawn = members[rng.integers(0, len(sizes), size=(rows, n))].reshape(rows, -1)  # n documents always fill n
        first = np.argsort(drawn < 0, axis=1, kind="stable")[:, :n]  # the first n real sequences, in draw order
        out[start:start + rows] = np.take_along_axis(drawn, first, axis=1)
    return out


def bootstrap_means(per_sequence: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return per_sequence[indices].mean(axis=1)


def intervals(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``interval`` of each column of samples [n_resamples, n] in one np.percentile call: the same numbers."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1 (smallest distance: most redundant); ties share their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson correlation of average ranks); None when undefined (fewer than 2 or constant)."""
    if len(a) < 2:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties accounted for); None when undefined."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return None
    upper = np.triu_indices(len(a), k=1)
    da = np.sign(a[:, None] - a[None, :])[upper]
    db = np.sign(b[:, None] - b[None, :])[upper]
    denominator = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    if denominator == 0:
        return None
    return float((da * db).sum() / denominator)


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def removal_orders(pairs: Sequence[tuple[int, int]], distances: np.ndarray, k: int) -> list[list[int]]:
    """``removal_order`` of each row of distances [n_rows, n_pairs] (one per bootstrap resample), the same lists:
    the rows are sorted by numpy, stably, after putting the pairs in their own order, which is the walk's order
    (distance, then pair). A row with a NaN, which Python's sort and numpy's would order differently, walks the
    Python way."""
    distances = np.asarray(distances, dtype=np.float64)
    if len(pairs) == 0:
        return [[] for _ in distances]
    by_pair = np.array(sorted(range(len(pairs)), key=lambda n: pairs[n]))
    orders = by_pair[np.argsort(distances[:, by_pair], axis=1, kind="stable")]
    return [removal_order(pairs, list(row), k) if np.isnan(row).any() else walk(pairs, order.tolist(), k)
            for row, order in zip(distances, orders)]



def rule_orders(rule: SetRule, pairs: Sequence[tuple[int, int]], distances: np.ndarray, k: int,
                n_layers: int) -> list[list[int]]:
    """``rule.order`` of each row of distances [n_rows, n_pairs], the same lists: "later" by ``removal_orders``,
    min-partner with the layer scores and their order from numpy (columns in layer order, sorted stably: ties by
    layer, as the rule), other rules row by row. A row with a NaN walks the Python way."""
    distances = np.asarray(distances, dtype=np.float64)
    if rule.name == "later":
        return removal_orders(pairs, distances, k)
    if rule.name != MIN_PARTNER or len(pairs) == 0:
        return [rule.order(pairs, list(row), k, n_layers) for row in distances]
    layers = sorted({layer for pair in pairs for layer in pair})
    scores = np.full((len(distances), len(layers)), np.inf)
    for column, layer in enumerate(layers):
        touching = [n for n, pair in enumerate(pairs) if layer in pair]
        scores[:, column] = distances[:, touching].min(axis=1)
    orders = np.argsort(scores, axis=1, kind="stable")
    low, high = rule.keep_boundary, n_layers - rule.keep_boundary
    result = []
    for row, order in zip(distances, orders):
        if np.isnan(row).any():
            result.append(rule.order(pairs, list(row), k, n_layers))
            continue
        taken: list[int] = []
        for column in order.tolist():
            if len(taken) == k:
                break
            layer = layers[column]
            if low <= layer < high and all(abs(layer - other) > rule.spacing for other in taken):
                taken.append(layer)
        result.append(taken)
    return result
