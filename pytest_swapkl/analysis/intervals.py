"""Paired-bootstrap intervals of the suite statistics: Spearman, Kendall, top-k Jaccard, set stability and the
median I/R per layer distance.

Every probe is resampled with the same draws (``stats.bootstrap_indices``), so resample b gives one whole
plausible audit: R and I of every pair on the same resampled sequences. A statistic's interval is the
2.5th-97.5th percentile of the statistic recomputed on each such audit (reflected about the estimate for
the rank correlations, see `basic_interval`); the shared sequence-to-sequence variation is kept, as it is
in the estimate. scipy's rank statistics (``scipy.stats.rankdata``,
``kendalltau``) do the per-resample work; scipy is imported here, lazily, never at plugin start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import stats
from .stats import removal_order  # one walk, shared with stats.removal_set


@dataclass(frozen=True)
class SetInterval:
    """Top-k removal sets on the resampled audits: the Jaccard's interval and each protocol's stability."""

    k: int
    jaccard_low: float
    jaccard_high: float
    stability_replacement: float  # share of resamples whose R-chosen k-set equals the estimate's
    stability_interchange: float


@dataclass(frozen=True)
class DistanceRatio:
    """I/R of the pairs whose layers are `distance` apart: the median with its interval, and how many have I < R."""

    distance: int
    n_pairs: int
    median: Optional[float]  # None where no pair at this distance has R > 0
    low: Optional[float]
    high: Optional[float]
    share_below_one: Optional[float]  # share of the pairs with I < R


@dataclass
class SuiteIntervals:
    spearman: tuple[Optional[float], Optional[float]] = (None, None)
    kendall: tuple[Optional[float], Optional[float]] = (None, None)
    sets: list[SetInterval] = field(default_factory=list)
    ratio_by_distance: list[DistanceRatio] = field(default_factory=list)


def suite_intervals(pairs: Sequence[tuple[int, int]], r_samples: np.ndarray, i_samples: np.ndarray,
                    r_values: np.ndarray, i_values: np.ndarray, ks: Sequence[int],
                    level: float = 0.95) -> SuiteIntervals:
    """The suite statistics' intervals from [n_resamples, n_pairs] bootstrap means of R and I (shared draws)."""
    r_samples, i_samples = np.asarray(r_samples, dtype=np.float64), np.asarray(i_samples, dtype=np.float64)
    result = SuiteIntervals()
    if len(pairs) >= 2:
        result.spearman = basic_interval(stats.spearman(r_values, i_values), spearman_rows(r_samples, i_samples),
                                         level)
        result.kendall = basic_interval(stats.kendall(r_values, i_values), kendall_rows(r_samples, i_samples),
                                        level)
    if ks:
        result.sets = set_intervals(pairs, r_samples, i_samples, r_values, i_values, ks, level)
    result.ratio_by_distance = ratio_by_distance(pairs, r_samples, i_samples, r_values, i_values, level)
    return result


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of a[n] against b[n] for each row (NaN where a row is constant)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(-1) / np.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))


def kendall_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of a[n] against b[n] for each row (NaN where undefined)."""
    from scipy.stats import kendalltau

    return np.array([kendalltau(x, y).statistic for x, y in zip(np.atleast_2d(a), np.atleast_2d(b))])


def set_intervals(pairs: Sequence[tuple[int, int]], r_samples: np.ndarray, i_samples: np.ndarray,
                  r_values: np.ndarray, i_values: np.ndarray, ks: Sequence[int], level: float) -> list[SetInterval]:
    top = max(ks)
    r_now, i_now = removal_order(pairs, list(r_values), top), removal_order(pairs, list(i_values), top)
    walks = list(zip(stats.removal_orders(pairs, r_samples, top), stats.removal_orders(pairs, i_samples, top)))
    result = []
    for k in ks:
        r_set, i_set = set(r_now[:k]), set(i_now[:k])
        r_sets, i_sets = [set(r[:k]) for r, _ in walks], [set(i[:k]) for _, i in walks]
        jaccards = np.array([stats.jaccard(r, i) for r, i in zip(r_sets, i_sets)])
        low, high = _interval(jaccards, level)
        result.append(SetInterval(k, low, high, float(np.mean([r == r_set for r in r_sets])),
                                  float(np.mean([i == i_set for i in i_sets]))))
    return result


def ratio_by_distance(pairs: Sequence[tuple[int, int]], r_samples: np.ndarray, i_samples: np.ndarray,
                      r_values: np.ndarray, i_values: np.ndarray, level: float) -> list[DistanceRatio]:
    distances = np.array([j - i for i, j in pairs], dtype=np.int64)
    r_values, i_values = np.asarray(r_values, dtype=np.float64), np.asarray(i_values, dtype=np.float64)
    result = []
    for distance in sorted(set(distances.tolist())):
        at = distances == distance
        usable = at & (r_values > 0)
        if not usable.any():
            result.append(DistanceRatio(distance, int(at.sum()), None, None, None, None))
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            resampled = np.where(r_samples[:, usable] > 0, i_samples[:, usable] / r_samples[:, usable], np.nan)
        medians = np.nanmedian(resampled, axis=1) if resampled.size else np.array([])
        low, high = _interval(medians, level)
        estimate = float(np.median(i_values[usable] / r_values[usable]))
        result.append(DistanceRatio(distance, int(at.sum()), estimate, low, high,
                                    float(np.mean(i_values[at] < r_values[at]))))
    return result


def basic_interval(estimate: Optional[float], samples: np.ndarray, level: float,
                   bounds: tuple[float, float] = (-1.0, 1.0)) -> tuple[Optional[float], Optional[float]]:
    """The basic (reflected) bootstrap interval [2 est - q_high, 2 est - q_low], clipped to the statistic's range.

    A rank correlation of noisy means is biased towards 0, and each resample adds the noise once more, so the
    resamples sit below the estimate as the estimate sits below the truth: the percentile interval then misses
    the truth (25% coverage in tests/analysis/test_intervals.py's simulation), the reflected one does not (93-97%).
    """
    low, high = _interval(samples, level)
    if estimate is None or low is None:
        return None, None
    return (float(np.clip(2 * estimate - high, *bounds)), float(np.clip(2 * estimate - low, *bounds)))


def _interval(samples: np.ndarray, level: float) -> tuple[Optional[float], Optional[float]]:
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None, None
    return stats.interval(samples, level)
