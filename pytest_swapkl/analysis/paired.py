"""Paired comparisons: two numbers measured on the same sequences, judged on the same resamples.

Every probe of an audit (and every pruned model's cost) is measured on the same sequences, so the
question "is A smaller than B" is answered by resampling sequences once and looking at A - B on each
resample, not by checking whether two marginal intervals overlap (which calls many real differences
ties, since the shared sequence-to-sequence variation cancels in the difference).

Pure numpy: no torch, so the plugin and the report can use it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from .mean_interval import expanded_interval, expanded_tail
from .multiplicity import adjust
from .stats import interval

A_SMALLER, INDISTINGUISHABLE, B_SMALLER = -1, 0, 1
VERDICTS = {A_SMALLER: "A cheaper", INDISTINGUISHABLE: "indistinguishable", B_SMALLER: "B cheaper"}

# A cost comparison's verdicts: a direction from the interval of A - B; else "equivalent" when the TOST interval of the
# ratio lies inside the equivalence margin, else "undecided" (docs/decisions.md, "Same cost only from an equivalence
# test"). "indistinguishable" above stays the order of two probes (the rank rules' statistical tie).
A_CHEAPER, B_CHEAPER, EQUIVALENT, UNDECIDED = "A cheaper", "B cheaper", "equivalent", "undecided"
COST_VERDICTS = (A_CHEAPER, B_CHEAPER, EQUIVALENT, UNDECIDED)
MIRRORED = {A_CHEAPER: B_CHEAPER, B_CHEAPER: A_CHEAPER, EQUIVALENT: EQUIVALENT, UNDECIDED: UNDECIDED}
DEFAULT_EQUIVALENCE_MARGIN = 0.20  # relative: equivalent means the ratio lies in [1/1.2, 1.2] (docs/decisions.md)


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


def rounded(values: np.ndarray, digits: int = 8) -> list[float]:
    """Per-unit costs for the JSON: 8 significant digits (float32's, which the engine's per-sequence numbers carry),
    enough to recompute every paired verdict and interval to its printed digits."""
    return [float(f"{x:.{digits}g}") for x in np.asarray(values, dtype=np.float64)]


# --- p-values from the paired bootstrap: the smallest alpha at which its interval excludes the null -----------


def _crossing(samples: np.ndarray, null: float) -> tuple[float, float]:
    """Where numpy's linearly interpolated percentiles of ``samples`` cross ``null``, as shares of the range:
    (last position read below null, first position read above it), each from 0 to 1."""
    s = np.sort(np.asarray(samples, dtype=np.float64)) - null
    last = len(s) - 1
    if last == 0:
        return (1.0 if s[0] < 0 else 0.0), (0.0 if s[0] > 0 else 1.0)

    def position(count: int) -> float:  # where 0 falls between s[count - 1] and s[count], as a share of the range
        if count == 0:
            return 0.0
        if count > last:
            return 1.0
        return (count - 1 + (0 - s[count - 1]) / (s[count] - s[count - 1])) / last

    # s[:below] < 0 <= s[below:] and s[:above] <= 0 < s[above:]
    return position(int(np.count_nonzero(s < 0))), position(int(np.count_nonzero(s <= 0)))


def _alpha_for_tail(tail: float, n: int) -> float:
    """The two-sided alpha whose interval (expanded for n sequences; plain percentiles for n < 2) reads the
    bootstrap distribution at lower tail ``tail``: expanded_tail inverted by bisection (it rises with alpha)."""
    if tail <= 0:
        return 0.0
    if tail >= 0.5:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if expanded_tail(n, 1 - middle) < tail:
            low = middle
        else:
            high = middle
    return high


def p_value(samples: np.ndarray, n: int, null: float = 0.0) -> float:
    """Two-sided p-value of "the statistic is ``null``" from its bootstrap ``samples``: the smallest alpha at which
    the (expanded, for n sequences) 1 - alpha percentile interval excludes ``null``. So the interval's verdict at
    level 1 - alpha is "p < alpha", and an adjusted p-value (multiplicity.py) gives the adjusted verdict. 0 means
    every resample fell on one side (the bootstrap resolves about 1 / n_resamples, no finer)."""
    below, above = _crossing(samples, null)
    return _alpha_for_tail(min(1 - below, above), n)


def equivalence_p_value(ratios: np.ndarray, n: int, margin: float) -> float:
    """TOST p-value of "the ratio lies outside [1/(1+margin), 1+margin]": the larger of the two one-sided p-values,
    each the smallest alpha at which the one-sided bound of the 1 - 2 alpha interval lies inside its margin. So
    "p < alpha" is "the 1 - 2 alpha interval of the ratio lies inside the margin" (TOST at level alpha)."""
    upper = 1 - _crossing(ratios, 1 + margin)[0]  # the upper bound reads below 1 + margin at tails above this
    lower = _crossing(ratios, 1 / (1 + margin))[1]  # the lower bound reads above 1/(1 + margin) at tails above this
    return max(_alpha_for_tail(upper, n), _alpha_for_tail(lower, n)) / 2


def cost_verdict(p: Optional[float], p_equivalent: Optional[float], a_lower: bool, alpha: float = 0.05) -> str:
    """The verdict of (possibly adjusted) p-values: a direction where p < alpha, else "equivalent" where the TOST
    p-value is below alpha, else "undecided"."""
    if p is not None and p < alpha:
        return A_CHEAPER if a_lower else B_CHEAPER
    if p_equivalent is not None and p_equivalent < alpha:
        return EQUIVALENT
    return UNDECIDED


@dataclass(frozen=True)
class CostComparison:
    """A against B on per-sequence costs (e.g. held-out KL of two pruned models), paired over sequences."""

    a: float  # mean cost of A
    b: float  # mean cost of B
    ratio: Optional[float]  # a / b; None where b is 0
    ratio_low: Optional[float]  # 95% paired-bootstrap interval of the ratio of means
    ratio_high: Optional[float]
    verdict: str  # COST_VERDICTS: a direction (interval of a - b), else "equivalent" (TOST on the ratio), "undecided"
    p: Optional[float] = None  # two-sided p-value of a - b = 0 (p_value): "p < 0.05" is the direction verdict
    p_equivalent: Optional[float] = None  # TOST p-value against the margin; None where the ratio has no interval
    margin: float = DEFAULT_EQUIVALENCE_MARGIN  # relative equivalence margin: [1/(1+m), 1+m]
    equivalent: bool = False  # the TOST interval of the ratio lies inside the margin (also beside a direction)
    # across the comparison's verdict table (adjusted_table): the adjusted p-values and the verdict they give
    p_adjusted: Optional[float] = None
    p_equivalent_adjusted: Optional[float] = None
    verdict_adjusted: Optional[str] = None

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "ratio": self.ratio, "ratio_low": self.ratio_low,
                "ratio_high": self.ratio_high, "verdict": self.verdict, "p": self.p,
                "p_equivalent": self.p_equivalent, "equivalence_margin": self.margin, "equivalent": self.equivalent,
                "p_adjusted": self.p_adjusted, "p_equivalent_adjusted": self.p_equivalent_adjusted,
                "verdict_adjusted": self.verdict_adjusted}

    def flipped(self) -> "CostComparison":
        """B against A: the ratio b / a and its interval (the inverted bounds, swapped), the verdicts mirrored."""
        def inverse(x: Optional[float]) -> Optional[float]:
            return None if x is None or x <= 0 else 1 / x

        low, high = inverse(self.ratio_high), inverse(self.ratio_low)
        if low is None or high is None:
            low = high = None
        return replace(self, a=self.b, b=self.a, ratio=self.b / self.a if self.a > 0 else None, ratio_low=low,
                       ratio_high=high, verdict=MIRRORED[self.verdict],
                       verdict_adjusted=None if self.verdict_adjusted is None else MIRRORED[self.verdict_adjusted])


def adjusted_table(comparisons: list[CostComparison], method: str, alpha: float = 0.05) -> list[CostComparison]:
    """Every comparison of one verdict table with its p-values adjusted across the table (multiplicity.adjust: each
    of the two families on its own) and the verdict those give (cost_verdict). None in the list is passed through
    (a comparison outside the family, e.g. a set against itself)."""
    present = [c for c in comparisons if c is not None]
    p = iter(adjust([c.p for c in present], method))
    p_equivalent = iter(adjust([c.p_equivalent for c in present], method))
    adjusted = []
    for comparison in comparisons:
        if comparison is None:
            adjusted.append(None)
            continue
        p_adjusted, p_equivalent_adjusted = next(p), next(p_equivalent)
        verdict = cost_verdict(p_adjusted, p_equivalent_adjusted, comparison.verdict == A_CHEAPER, alpha)
        adjusted.append(replace(comparison, p_adjusted=p_adjusted, p_equivalent_adjusted=p_equivalent_adjusted,
                                verdict_adjusted=verdict))
    return adjusted


def compare_costs(a_per_seq: np.ndarray, b_per_seq: np.ndarray, indices: np.ndarray,
                  level: float = 0.95, margin: float = DEFAULT_EQUIVALENCE_MARGIN) -> CostComparison:
    """Paired bootstrap of two methods' per-sequence costs; indices from ``stats.bootstrap_indices``.

    The direction comes from the difference of means (defined even when a cost is 0); the ratio's interval is
    reported where every resampled mean of B is positive. Both are expanded percentile intervals (intervals.py),
    which hold their 95% on few skewed sequences where plain percentiles do not. Without a direction the
    verdict is "equivalent" when the ratio's 1 - 2 alpha interval lies inside [1/(1+margin), 1+margin] (TOST at
    alpha = 1 - level), else "undecided".
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
    direction = A_SMALLER if difference_high < 0 else B_SMALLER if difference_low > 0 else INDISTINGUISHABLE
    p = p_value(a_samples - b_samples, n)
    p_equivalent = equivalence_p_value(a_samples / b_samples, n, margin) if low is not None else None
    return _judged(a, b, ratio, low, high, direction, p, p_equivalent, margin, 1 - level)


def _judged(a: float, b: float, ratio: Optional[float], low: Optional[float], high: Optional[float], direction: int,
            p: float, p_equivalent: Optional[float], margin: float, alpha: float) -> CostComparison:
    """The comparison with its verdict: the interval's direction where it has one (exactly as before the
    p-values), else the equivalence test's."""
    equivalent = p_equivalent is not None and p_equivalent < alpha
    verdict = VERDICTS[direction] if direction != INDISTINGUISHABLE else EQUIVALENT if equivalent else UNDECIDED
    return CostComparison(a, b, ratio, low, high, verdict, p, p_equivalent, margin, equivalent)


def compare_log_costs(a_per_seq: np.ndarray, b_per_seq: np.ndarray, indices: np.ndarray,
                      margin: float = DEFAULT_EQUIVALENCE_MARGIN, level: float = 0.95) -> CostComparison:
    """Perplexities compared through per-sequence mean NLLs: the ratio of two perplexities is exp(mean NLL_a -
    mean NLL_b), resampled on the same draws, with plain percentile intervals (as the prune file always read)."""
    a_per_seq, b_per_seq = (np.asarray(x, dtype=np.float64) for x in (a_per_seq, b_per_seq))
    a_samples, b_samples = a_per_seq[indices].mean(axis=1), b_per_seq[indices].mean(axis=1)
    differences = a_samples - b_samples
    low, high = interval(np.exp(differences), level)
    plain = 1  # expanded_tail reads plain percentiles below 2 sequences: the p-values invert `interval`
    p_equivalent = equivalence_p_value(np.exp(differences), plain, margin)
    return _judged(float(np.exp(a_per_seq.mean())), float(np.exp(b_per_seq.mean())),
                   math.exp(float(a_per_seq.mean() - b_per_seq.mean())), low, high,
                   order(a_samples, b_samples, level), p_value(differences, plain), p_equivalent, margin, 1 - level)
