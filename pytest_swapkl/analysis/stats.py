"""Ranks, rank correlations, bootstrap intervals and the layer sets each protocol would remove.

Pure numpy: no torch, so the plugin and the report can use it cheaply.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

REDUCERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": lambda a, b: (a + b) / 2,
    "max": np.maximum,
    "min": np.minimum,
}


def bootstrap_indices(n_sequences: int, n_resamples: int, seed: int) -> np.ndarray:
    """[n_resamples, n_sequences] indices of sequences drawn with replacement.

    Every probe is resampled with the same draws, so intervals of different probes
    (and of R and I of one pair) come from the same resampled calibration sets.
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_sequences, size=(n_resamples, n_sequences))


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


def removal_set(pairs: Sequence[tuple[int, int]], distances: Sequence[float], k: int) -> list[int]:
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


def removal_order(pairs: Sequence[tuple[int, int]], distances: Sequence[float], k: int) -> list[int]:
    """The layers ``removal_set`` removes, in the order it removes them: its k'-set, for any k' <= k, is the
    first k' of these (sorted), so one walk serves every budget."""
    return _walk(pairs, sorted(range(len(pairs)), key=lambda n: (distances[n], pairs[n])), k)


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
    return [removal_order(pairs, list(row), k) if np.isnan(row).any() else _walk(pairs, order.tolist(), k)
            for row, order in zip(distances, orders)]


def _walk(pairs: Sequence[tuple[int, int]], order: list[int], k: int) -> list[int]:
    removed: list[int] = []
    for n in order:
        i, j = pairs[n]
        if len(removed) == k:
            break
        if j not in removed and i not in removed:
            removed.append(j)
    return removed

