"""Paired-bootstrap intervals of the suite statistics: Spearman, Kendall, top-k Jaccard, set stability and the
median I/R per layer distance.

Every probe is resampled with the same draws (``stats.bootstrap_indices``), so resample b gives one whole
plausible audit: R and I of every pair on the same resampled sequences. A statistic's interval is the
2.5th-97.5th percentile of the statistic recomputed on each such audit; the shared sequence-to-sequence
variation is kept, as it is in the estimate.

The rank correlations (Spearman, Kendall) get a symmetric interval instead (`rms_interval`): the estimate plus and
minus z times the resamples' root-mean-square about it, so the bootstrap's bias widens the interval rather than
moving it. On truths resampled from the measured tables (demo, SmolLM2, Gemma-3, and each with its noise inflated to
split-half reliability 0.99; benchmarks/statistics/rank_interval_resampled.py) it covered 93.6-94.6% (Spearman) at
five of six truths and 98.3% on the demo's 28 pairs (docs/decisions.md). `corrected_interval` (issue 15's) and
`basic_interval` stay for the benchmarks. Each protocol's split-half rank reliability and the disattenuated Spearman
come with them (`split_half_reliability`, `disattenuated`). Ranks are numpy's (`average_ranks`, scipy's
``rankdata`` to the bit) and scipy's ``kendalltau`` takes over from ~200 pairs on; scipy is imported here,
lazily, never at plugin start-up, and scipy.stats only for those many pairs (importing it costs half a CPU
second of a short audit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import stats
from .pair_rules import SetRule
from .reliability_text import RELIABILITY_FLOOR


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
    # How reproducible each protocol's ranking of the pairs is (`split_half_reliability`), and Spearman's rho
    # corrected for that unreliability (`disattenuated`); None where the audit has no per-sequence table for it.
    reliability_replacement: Optional[float] = None
    reliability_interchange: Optional[float] = None
    spearman_disattenuated: Optional[float] = None
    sets: list[SetInterval] = field(default_factory=list)
    ratio_by_distance: list[DistanceRatio] = field(default_factory=list)


def suite_intervals(pairs: Sequence[tuple[int, int]], r_samples: np.ndarray, i_samples: np.ndarray,
                    r_values: np.ndarray, i_values: np.ndarray, ks: Sequence[int],
                    level: float = 0.95, rule: SetRule = SetRule(), n_layers: Optional[int] = None) -> SuiteIntervals:
    """The suite statistics' intervals from [n_resamples, n_pairs] bootstrap means of R and I (shared draws)."""
    r_samples, i_samples = np.asarray(r_samples, dtype=np.float64), np.asarray(i_samples, dtype=np.float64)
    result = SuiteIntervals()
    if len(pairs) >= 2:
        for name, estimate, rows in (("spearman", stats.spearman(r_values, i_values), spearman_rows),
                                     ("kendall", stats.kendall(r_values, i_values), kendall_rows)):
            setattr(result, name, rms_interval(estimate, rows(r_samples, i_samples), level))
    if ks:
        result.sets = set_intervals(pairs, r_samples, i_samples, r_values, i_values, ks, level, rule, n_layers)
    result.ratio_by_distance = ratio_by_distance(pairs, r_samples, i_samples, r_values, i_values, level)
    return result




def split_half_reliability(tables: Sequence[np.ndarray], combine=None, splits: int = 200,
                           seed: int = 0) -> Optional[float]:
    """Spearman-Brown corrected split-half rank reliability of a protocol's pair values.

    ``tables`` are [n_pairs, n_sequences] per-sequence arrays on the same sequences; a pair's value on a set of
    sequences is ``combine(*means)`` of their means over that set (default: the one table's mean; R passes both
    directions and the audit's reduction). Each of ``splits`` random splits puts half of the sequences on each
    side (one left out when their number is odd) and takes Spearman's rho of the two halves' pair values; the
    mean rho over the splits, r, gives the full table's reliability 2r / (1 + r), clipped to [-1, 1] (so any
    r <= -1/3 reads -1). Splits whose halves are constant (no rho) are skipped; None where every split is, or
    with fewer than 2 sequences or 2 pairs. Data whose every sequence orders the pairs alike give exactly 1.
    """
    tables = [np.asarray(table, dtype=np.float64) for table in tables]
    n_pairs, n_seq = tables[0].shape
    if n_seq < 2 or n_pairs < 2 or any(table.shape != tables[0].shape for table in tables):
        return None
    combine = combine or (lambda means: means)
    half = n_seq // 2
    order = np.argsort(np.random.default_rng(seed).random((splits, n_seq)), axis=1)
    sides = [combine(*[table[:, order[:, side]].mean(-1).T for table in tables])
             for side in (slice(0, half), slice(half, 2 * half))]  # each [splits, n_pairs]
    rhos = spearman_rows(*sides)
    if not np.isfinite(rhos).any():
        return None
    return spearman_brown(float(np.nanmean(rhos)))


def spearman_brown(r: float) -> float:
    """A half-length correlation r stepped up to the full length: 2r / (1 + r), clipped to [-1, 1]."""
    if r <= -1 / 3:
        return -1.0
    return float(np.clip(2 * r / (1 + r), -1.0, 1.0))


def disattenuated(rho: Optional[float], reliability_a: Optional[float],
                  reliability_b: Optional[float]) -> Optional[float]:
    """Spearman's correction for attenuation, rho / sqrt(rel_a rel_b), clipped to [-1, 1]; None where rho or a
    reliability is missing or a reliability is not positive (no correction is defined)."""
    if rho is None or reliability_a is None or reliability_b is None or min(reliability_a, reliability_b) <= 0:
        return None
    return float(np.clip(rho / np.sqrt(reliability_a * reliability_b), -1.0, 1.0))


def unreliable(reliability_a: Optional[float], reliability_b: Optional[float]) -> bool:
    """True where either protocol's reliability is below `RELIABILITY_FLOOR` (or unknown while the other is)."""
    known = [x for x in (reliability_a, reliability_b) if x is not None]
    return any(x < RELIABILITY_FLOOR for x in known)


def add_reliability(result: SuiteIntervals, r_tables: Sequence[np.ndarray], i_table: np.ndarray, combine,
                    rho: Optional[float]) -> SuiteIntervals:
    """Fill ``result``'s reliabilities from the per-sequence tables ([n_pairs, n_sequences]: R's directions,
    combined by ``combine`` as the audit reduces them, and I) and the disattenuated Spearman ``rho``."""
    result.reliability_replacement = split_half_reliability(r_tables, combine)
    result.reliability_interchange = split_half_reliability([i_table])
    result.spearman_disattenuated = disattenuated(rho, result.reliability_replacement,
                                                  result.reliability_interchange)
    return result


def reliability_record(result: SuiteIntervals) -> dict:
    """The JSON summary's fields: each protocol's reliability, the floor, the flag and the corrected rho."""
    return {"reliability": {"replacement": result.reliability_replacement,
                            "interchange": result.reliability_interchange, "floor": RELIABILITY_FLOOR,
                            "below_floor": unreliable(result.reliability_replacement,
                                                      result.reliability_interchange)},
            "spearman_disattenuated": result.spearman_disattenuated}


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of a[n] against b[n] for each row (NaN where a row is constant)."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(-1) / np.sqrt((ra ** 2).sum(-1) * (rb ** 2).sum(-1))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties sharing their mean rank, NaN for a row holding NaN: what
    ``scipy.stats.rankdata(values, axis=-1)`` gives, equal to the bit, without importing scipy.stats (half a
    CPU second of an audit's start; docs/benchmarks.md, "CPU profile")."""
    values = np.asarray(values, dtype=np.float64)
    rows = values.reshape(-1, values.shape[-1]) if values.ndim else values.reshape(1, 1)
    n = rows.shape[1]
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones(rows.shape, dtype=bool)  # a tie group starts here; every row starts a group of its own
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    position = np.tile(np.arange(1, n + 1, dtype=np.float64), len(rows))
    mean = (np.bincount(group, weights=position) / np.bincount(group))[group].reshape(rows.shape)
    ranks = np.empty_like(mean)
    np.put_along_axis(ranks, order, mean, axis=1)
    ranks[np.isnan(rows).any(axis=1)] = np.nan
    return ranks.reshape(values.shape)


def kendall_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of a[n] against b[n] for each row (NaN where undefined)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    n = a.shape[-1]
    if n * (n - 1) // 2 > 20_000:  # scipy's O(n log n) per row beats the vectorised n^2 signs from ~200 values on
        from scipy.stats import kendalltau

        return np.array([kendalltau(x, y).statistic for x, y in zip(a, b)])
    first, second = np.triu_indices(n, k=1)
    result = np.empty(len(a))
    chunk = max(1, 2_000_000 // max(1, len(first)))  # rows at a time: a few MB of signs
    for start in range(0, len(a), chunk):
        rows = slice(start, start + chunk)
        da = np.sign(a[rows][:, first] - a[rows][:, second])
        db = np.sign(b[rows][:, first] - b[rows][:, second])
        with np.errstate(invalid="ignore", divide="ignore"):
            result[rows] = (da * db).sum(-1) / np.sqrt(np.count_nonzero(da, -1) * np.count_nonzero(db, -1))
    return result


def set_intervals(pairs: Sequence[tuple[int, int]], r_samples: np.ndarray, i_samples: np.ndarray,
                  r_values: np.ndarray, i_values: np.ndarray, ks: Sequence[int], level: float,
                  rule: SetRule = SetRule(), n_layers: Optional[int] = None) -> list[SetInterval]:
    """Each budget's Jaccard interval and set stability, every set read by ``rule`` (the audit's)."""
    top = max(ks)
    n_layers = n_layers if n_layers is not None else max((j for pair in pairs for j in pair), default=-1) + 1
    r_now, i_now = rule.order(pairs, list(r_values), top, n_layers), rule.order(pairs, list(i_values), top, n_layers)
    walks = list(zip(stats.rule_orders(rule, pairs, r_samples, top, n_layers),
                     stats.rule_orders(rule, pairs, i_samples, top, n_layers)))
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
        # A resample whose R are all 0 (e.g. layers whose outputs are 0) has no ratio: no median, not a warning
        some = ~np.isnan(resampled).all(axis=1) if resampled.size else np.zeros(0, dtype=bool)
        medians = np.nanmedian(resampled[some], axis=1) if some.any() else np.array([])
        low, high = _interval(medians, level)
        estimate = float(np.median(i_values[usable] / r_values[usable]))
        result.append(DistanceRatio(distance, int(at.sum()), estimate, low, high,
                                    float(np.mean(i_values[at] < r_values[at]))))
    return result


def corrected_interval(estimate: Optional[float], rows, r_samples: np.ndarray, i_samples: np.ndarray,
                       r_values: np.ndarray, i_values: np.ndarray, level: float, outer: int = 200, inner: int = 5,
                       seed: int = 0, bounds: tuple[float, float] = (-1.0, 1.0)
                       ) -> tuple[Optional[float], Optional[float]]:
    """A rank correlation's interval, bias-corrected and with the corrected estimate's width.

    Each resample adds the sequence noise once more, so mean(resamples) - est estimates the bias: the centre is
    2 est - mean(resamples). That correction itself moves with the data: were the estimate higher by d, the
    resamples' mean would be higher by slope * d (slope < 1, the attenuation), so the corrected estimate moves
    by (2 - slope) d, and the interval's half-widths are the resamples' fluctuations about their mean times
    2 - slope. The slope comes from a second level on `outer` resamples: each gets `inner` resamples of its own,
    made by adding other resamples' deviations from the estimate (the same shared-draw noise, no per-sequence
    data needed), and the inner means are regressed on the outer statistic.
    """
    samples = rows(r_samples, i_samples)
    finite = np.isfinite(samples)
    if estimate is None or finite.sum() < 2:
        return None, None
    mean = float(samples[finite].mean())
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples[finite] - mean, [tail, 100 - tail])
    centre = 2 * estimate - mean
    scale = 2 - _inner_slope(rows, r_samples, i_samples, r_values, i_values, samples, outer, inner, seed)
    return (float(np.clip(centre - scale * high, *bounds)), float(np.clip(centre - scale * low, *bounds)))


def _inner_slope(rows, r_samples: np.ndarray, i_samples: np.ndarray, r_values: np.ndarray, i_values: np.ndarray,
                 samples: np.ndarray, outer: int, inner: int, seed: int) -> float:
    """Slope of the inner resamples' mean on the outer resample's statistic (1 where it cannot be measured:
    the correction then moves with the estimate and the width is the resamples' own)."""
    rng = np.random.default_rng(seed)
    n_resamples, n_pairs = r_samples.shape
    picked = rng.choice(n_resamples, min(outer, n_resamples), replace=False)
    added = rng.integers(0, n_resamples, size=(len(picked), inner))
    r_inner = r_samples[picked][:, None] + (r_samples - r_values)[added]
    i_inner = i_samples[picked][:, None] + (i_samples - i_values)[added]
    inner_means = rows(r_inner.reshape(-1, n_pairs), i_inner.reshape(-1, n_pairs)).reshape(len(picked), inner)
    counts = np.isfinite(inner_means).sum(1)
    inner_means = np.where(counts > 0, np.nansum(inner_means, axis=1) / np.maximum(counts, 1), np.nan)
    x = samples[picked]
    ok = np.isfinite(x) & np.isfinite(inner_means)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return 1.0
    return float(np.polyfit(x[ok], inner_means[ok], 1)[0])


def basic_interval(estimate: Optional[float], samples: np.ndarray, level: float,
                   bounds: tuple[float, float] = (-1.0, 1.0)) -> tuple[Optional[float], Optional[float]]:
    """The basic (reflected) bootstrap interval [2 est - q_high, 2 est - q_low], clipped to the statistic's range.

    The rank correlations' interval before `corrected_interval`, kept as the benchmark's baseline: it corrects the
    attenuation bias once but keeps the raw estimate's width, and under-covers
    (benchmarks/statistics/rank_interval_coverage.py).
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


def rms_interval(estimate: Optional[float], samples: np.ndarray, level: float,
                 bounds: tuple[float, float] = (-1.0, 1.0)) -> tuple[Optional[float], Optional[float]]:
    """The rank correlations' interval: estimate +- z sqrt(mean((resample - estimate)^2)), clipped to the range.

    The root-mean-square of the resamples about the estimate is sqrt(sd^2 + bias^2): the bootstrap's bias widens
    the interval symmetrically instead of moving it, because on the measured tables its sign and size are not to
    be trusted (on the demo's 28 pairs it pointed away from the truth; at reliability 0.99 on SmolLM2's 435 it
    saw about all of it), and a rank correlation's resamples are skewed the other way from its estimate's
    sampling distribution near ties, so no percentile shape is kept either.
    Coverage on truths resampled from the demo, SmolLM2 and Gemma-3 tables, measured and at split-half
    reliability 0.99: docs/decisions.md, "Rank-correlation intervals on resampled truths".
    """
    from scipy.special import ndtri  # scipy.stats.norm.ppf's own kernel, without importing scipy.stats

    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if estimate is None or len(samples) < 2:
        return None, None
    half = ndtri(0.5 + level / 2) * float(np.sqrt(np.mean((samples - estimate) ** 2)))
    return float(np.clip(estimate - half, *bounds)), float(np.clip(estimate + half, *bounds))
