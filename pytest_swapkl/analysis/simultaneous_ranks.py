"""Simultaneous rank confidence intervals: Mogstad, Romano, Shaikh and Wilhelm (ReStud 2024), "Inference for Ranks".

A rank is a statement about every other unit at once, so an interval per rank must hold for every comparison it
reads. From the paired bootstrap over sequences (every unit's bootstrap means on the same resamples), the
studentized differences of all two units, centred at the estimates, give one maximum |t| per resample; its
1 - alpha quantile ``c`` bounds every difference at once: theta_a - theta_b lies in est_a - est_b +- c * se_ab
for all a, b jointly with probability about 1 - alpha. Unit a is then surely above b where that interval excludes
0 on the positive side, and its rank interval runs from 1 + the units surely below it to n - the units surely
above it. All such intervals hold jointly (their "all ranks" coverage), which is what a test that compares
hundreds of ranks needs; the per-pair intervals of ``paired.order_matrix`` hold one comparison at a time.

Several tables (the replacement and the interchange distances of one audit, resampled alike) can share one
quantile: the maximum is then taken over every table's differences, so all their rank intervals hold jointly.

Vectorised over resamples in blocks (memory ~ block * n^2 floats), so 435 units x 1000 resamples take about a
second. Pure numpy.

The tau-best set of the paper (its "top-k confidence set") is every unit whose interval's lower end is at most k:
it holds the true k best with probability at least 1 - alpha.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_ALPHA = 0.05
BLOCK_ELEMENTS = 2_000_000  # float64 differences per block: ~16 MB


def rank_intervals(samples: np.ndarray, values: np.ndarray, floor: float = 0.0,
                   alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """[n, 2] simultaneous rank intervals (1 = smallest value) of one table: samples [n_resamples, n] bootstrap
    means on shared resamples, values [n] the estimates. Two units both at or under ``floor`` are tied."""
    return joint_rank_intervals([samples], [values], floor, alpha)[0]


def joint_rank_intervals(samples: Sequence[np.ndarray], values: Sequence[np.ndarray], floor: float = 0.0,
                         alpha: float = DEFAULT_ALPHA) -> list[np.ndarray]:
    """``rank_intervals`` of several tables with one critical value, so all of them hold jointly at 1 - alpha."""
    tables = [_Table(s, v, floor) for s, v in zip(samples, values)]
    if not tables or all(t.n < 2 for t in tables):
        return [np.tile([1, max(t.n, 1)], (t.n, 1)) for t in tables]
    maxima = np.max([t.max_abs_t() for t in tables if t.n >= 2], axis=0)
    critical = float(np.quantile(maxima, 1 - alpha, method="higher"))
    return [t.intervals(critical) for t in tables]


def critical_value(samples: np.ndarray, values: np.ndarray, floor: float = 0.0,
                   alpha: float = DEFAULT_ALPHA) -> float:
    """The 1 - alpha quantile of the maximum |t| of one table (for reports and tests)."""
    return float(np.quantile(_Table(samples, values, floor).max_abs_t(), 1 - alpha, method="higher"))


def tau_best(intervals: np.ndarray, k: int) -> np.ndarray:
    """Indices of the units whose simultaneous rank interval starts at or below k: a 1 - alpha confidence set
    for the k smallest units."""
    return np.flatnonzero(np.asarray(intervals)[:, 0] <= k)


class _Table:
    """One table's centred bootstrap differences and their standard errors."""

    def __init__(self, samples: np.ndarray, values: np.ndarray, floor: float):
        self.samples = np.asarray(samples, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)
        self.n = self.values.shape[-1]
        spread = self.samples - self.samples.mean(axis=0)
        covariance = spread.T @ spread / max(1, len(spread) - 1)
        variance = np.diag(covariance)
        self.se = np.sqrt(np.maximum(variance[:, None] + variance[None, :] - 2 * covariance, 0.0))
        under = self.values <= floor
        self.tied = under[:, None] & under[None, :]  # both under the noise floor: never ordered, never counted
        usable = (self.se > 0) & ~self.tied
        self.inverse_se = np.where(usable, 1.0 / np.where(usable, self.se, 1.0), 0.0)

    def max_abs_t(self) -> np.ndarray:
        """[n_resamples]: max over all two units of |(b_a - b_b) - (est_a - est_b)| / se_ab, a block at a time."""
        centred = self.samples - self.values
        block = max(1, BLOCK_ELEMENTS // max(1, self.n * self.n))
        maxima = np.empty(len(centred))
        for start in range(0, len(centred), block):
            rows = centred[start:start + block]
            t = np.abs(rows[:, :, None] - rows[:, None, :]) * self.inverse_se
            maxima[start:start + block] = t.reshape(len(rows), -1).max(axis=1)
        return maxima

    def intervals(self, critical: float) -> np.ndarray:
        difference = self.values[:, None] - self.values[None, :]  # [a, b]: est_a - est_b
        margin = critical * self.se
        above = (difference - margin > 0) & ~self.tied  # a surely above b: b ranks below a
        below = (difference + margin < 0) & ~self.tied
        return np.stack([above.sum(axis=1) + 1, self.n - below.sum(axis=1)], axis=1)


def layer_confidence_sets(pairs: Sequence[tuple[int, int]], samples: Sequence[np.ndarray],
                          values: Sequence[np.ndarray], ks: Sequence[int], floor: float = 0.0,
                          layers: Sequence[int] | None = None,
                          alpha: float = DEFAULT_ALPHA) -> list[dict[int, list[int]]]:
    """Per table (protocol): {k: the tau-best set of layers at k}, jointly at 1 - alpha over every table and k.

    A layer's score is the pair rule's (min-partner): its smallest distance to any partner, on the estimates and
    on every resample. The set holds, with probability about 1 - alpha, the k layers of lowest true score; a rule
    with a spacing may pass over some of them, so the set is what a pruning at k could read, not its exact pick.
    ``layers``: the layers the rule may remove (its kept boundary left out); default every layer in a pair."""
    eligible = sorted({layer for pair in pairs for layer in pair}) if layers is None else list(layers)
    touching = [[n for n, pair in enumerate(pairs) if layer in pair] for layer in eligible]
    eligible = [layer for layer, columns in zip(eligible, touching) if columns]
    touching = [columns for columns in touching if columns]
    if not eligible:
        return [{k: [] for k in ks} for _ in samples]
    scores = [np.stack([np.asarray(s, dtype=np.float64)[:, c].min(axis=1) for c in touching], axis=1)
              for s in samples]
    estimates = [np.array([np.asarray(v, dtype=np.float64)[c].min() for c in touching]) for v in values]
    intervals = joint_rank_intervals(scores, estimates, floor, alpha)
    return [{k: [eligible[n] for n in tau_best(table, k)] for k in ks} for table in intervals]
