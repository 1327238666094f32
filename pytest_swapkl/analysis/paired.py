"""Paired comparisons: two numbers measured on the same sequences, judged on the same resamples.

Every probe of an audit (and every pruned model's cost) is measured on the same sequences, so the
question "is A smaller than B" is answered by resampling sequences once and looking at A - B on each
resample, not by checking whether two marginal intervals overlap (which calls many real differences
ties, since the shared sequence-to-sequence variation cancels in the difference).

Pure numpy: no torch, so the plugin and the report can use it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .mean_interval import expanded_interval
from .stats import interval

A_SMALLER, INDISTINGUISHABLE, B_SMALLER = -1, 0, 1
VERDICTS = {A_SMALLER: "A cheaper", INDISTINGUISHABLE: "indistinguishable", B_SMALLER: "B cheaper"}


def order(a_samples: np.ndarray, b_samples: np.ndarray, level: float = 0.95) -> int:
    """A_SMALLER, B_SMALLER or INDISTINGUISHABLE: whether the paired interval of A - B excludes 0.

    a_samples and b_samples are bootstrap means of A and B over the *same* resamples (same rows).
    """
    low, high = interval(np.asarray(a_samples) - np.asarray(b_samples), level)
    if high < 0:
        return A_SMALLER
    if low > 0:
        return B_SMALLER
    return INDISTINGUISHABLE


def order_matrix(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """[n, n] of A_SMALLER / INDISTINGUISHABLE / B_SMALLER for every ordered pair (row a, column b).

    samples is [n_resamples, n]: column c holds item c's bootstrap means on the shared resamples. The verdict
    is `order`'s, np.percentile of a - b against 0, bit for bit, decided from counts: the percentile lies
    between two order statistics of a - b, and how many resamples have a < b (a - b < 0 exactly when a < b,
    for finite floats) says which side of 0 each one is on. Only where 0 falls between the two is the
    percentile itself computed, from the largest difference below 0 and the smallest at or above it.
    """
    samples = np.asarray(samples, dtype=np.float64)
    n_resamples, n = samples.shape
    tail = (1 - level) / 2 * 100
    below = _below_counts(samples)  # [a, b]: resamples with a < b; [b, a]: resamples with a > b
    result = np.zeros((n, n), dtype=np.int64)
    result[_percentile_below_zero(samples, below, 100 - tail)] = A_SMALLER
    result[_percentile_above_zero(samples, below.T, tail)] = B_SMALLER
    np.fill_diagonal(result, INDISTINGUISHABLE)
    return result


def _below_counts(samples: np.ndarray) -> np.ndarray:
    """[n, n] int: for each two columns a, b the number of rows where samples[:, a] < samples[:, b].

    Compared as ranks within each row (equal values share a rank), int16 where they fit: the same answer as
    the floats, in a quarter of the memory traffic. A block of rows of the result at a time (~12 MB)."""
    n_resamples, n = samples.shape
    order = np.argsort(samples, axis=1, kind="stable")
    ordered = np.take_along_axis(samples, order, axis=1)
    steps = np.zeros(samples.shape, dtype=np.int16 if n < 2 ** 15 else np.int32)
    steps[:, 1:] = np.diff(ordered, axis=1) != 0
    ranks = np.empty_like(steps)
    np.put_along_axis(ranks, order, np.cumsum(steps, axis=1, dtype=steps.dtype), axis=1)
    ranks = np.ascontiguousarray(ranks.T)  # [n, n_resamples]: each item's ranks contiguous
    counts = np.empty((n, n), dtype=np.int64)
    block = max(1, int(12_000_000 // max(1, n_resamples * n)))
    for start in range(0, n, block):
        counts[start:start + block] = (ranks[start:start + block, None, :] < ranks[None, :, :]).sum(axis=-1)
    return counts


def _position(q: float, n: int) -> tuple[int, float]:
    """The order statistic below percentile q of n values and the weight of the next one, as numpy's linear
    method computes them (its order of operations, for its rounding)."""
    h = q / 100 * (n - 1)
    k = int(np.floor(h))
    return k, h - k


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """numpy's linear interpolation between order statistics: from the nearer end, so that t = 1 gives b."""
    difference = b - a
    return np.where(t >= 0.5, b - difference * (1 - t), a + difference * t)


def _percentile_below_zero(samples: np.ndarray, negative: np.ndarray, q: float) -> np.ndarray:
    """[n, n] bool: percentile q of samples[:, a] - samples[:, b] is < 0, given the counts of a - b < 0.

    With s the sorted differences, the percentile lies between s[k] and s[k + 1]: below 0 when both are (more
    than k + 1 negatives), not when s[k] is not (k or fewer); with exactly k + 1 it is computed."""
    n_resamples = samples.shape[0]
    k, t = _position(q, n_resamples)
    result = negative >= k + 2
    a, b = np.nonzero(negative == k + 1)
    if len(a):
        low, high = _straddling(samples, a, b, lambda d: d < 0, k + 1 < n_resamples)
        result[a, b] = _lerp(low, high, t) < 0
    return result


def _percentile_above_zero(samples: np.ndarray, positive: np.ndarray, q: float) -> np.ndarray:
    """[n, n] bool: percentile q of samples[:, a] - samples[:, b] is > 0, given the counts of a - b > 0.

    Above 0 when s[k] is (n - k or more positives), not when s[k + 1] is not (n - k - 2 or fewer); with exactly
    n - k - 1 it is computed."""
    n_resamples = samples.shape[0]
    k, t = _position(q, n_resamples)
    result = positive >= n_resamples - k
    a, b = np.nonzero(positive == n_resamples - k - 1)
    if len(a):
        low, high = _straddling(samples, a, b, lambda d: d <= 0, k + 1 < n_resamples)
        result[a, b] = _lerp(low, high, t) > 0
    return result


def _straddling(samples: np.ndarray, a: np.ndarray, b: np.ndarray, lower, has_next: bool,
                chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For item pairs (a[m], b[m]): the largest difference a - b on the `lower` side and the smallest on the
    other, the two order statistics around the count's boundary (the same twice where there is no next one)."""
    lows, highs = [], []
    for start in range(0, len(a), chunk):
        d = samples[:, a[start:start + chunk]] - samples[:, b[start:start + chunk]]
        side = lower(d)
        low = np.where(side, d, -np.inf).max(axis=0)
        lows.append(low)
        highs.append(np.where(side, np.inf, d).min(axis=0) if has_next else low)
    return np.concatenate(lows), np.concatenate(highs)


@dataclass(frozen=True)
class CostComparison:
    """A against B on per-sequence costs (e.g. held-out KL of two pruned models), paired over sequences."""

    a: float  # mean cost of A
    b: float  # mean cost of B
    ratio: Optional[float]  # a / b; None where b is 0
    ratio_low: Optional[float]  # 95% paired-bootstrap interval of the ratio of means
    ratio_high: Optional[float]
    verdict: str  # "A cheaper", "B cheaper" or "indistinguishable" (from the interval of a - b)

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "ratio": self.ratio, "ratio_low": self.ratio_low,
                "ratio_high": self.ratio_high, "verdict": self.verdict}


def compare_costs(a_per_seq: np.ndarray, b_per_seq: np.ndarray, indices: np.ndarray,
                  level: float = 0.95) -> CostComparison:
    """Paired bootstrap of two methods' per-sequence costs; indices from ``stats.bootstrap_indices``.

    The verdict comes from the difference of means (defined even when a cost is 0); the ratio's interval is
    reported where every resampled mean of B is positive. Both are expanded percentile intervals (intervals.py),
    which hold their 95% on few skewed sequences where plain percentiles do not.
    """
    a_per_seq, b_per_seq = (np.asarray(x, dtype=np.float64) for x in (a_per_seq, b_per_seq))
    if a_per_seq.shape != b_per_seq.shape:
        raise ValueError(f"paired costs need the same sequences: got {a_per_seq.shape} and {b_per_seq.shape}")
    a_samples, b_samples = a_per_seq[indices].mean(axis=1), b_per_seq[indices].mean(axis=1)
    a, b = float(a_per_seq.mean()), float(b_per_seq.mean())
    n = len(a_per_seq)
    ratio = a / b if b > 0 else None
    low = high = None
    if ratio is not None and np.all(b_samples > 0):
        low, high = expanded_interval(a_samples / b_samples, n, level)
    # Expanded percentiles (intervals.py): the plain ones are too narrow on few sequences.
    difference_low, difference_high = expanded_interval(a_samples - b_samples, n, level)
    verdict = A_SMALLER if difference_high < 0 else B_SMALLER if difference_low > 0 else INDISTINGUISHABLE
    return CostComparison(a, b, ratio, low, high, VERDICTS[verdict])
