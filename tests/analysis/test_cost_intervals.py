"""Pruning costs and cost comparisons on synthetic per-sequence costs with a known truth.

Per-sequence held-out KLs of pruned models are skewed and share what each sequence makes hard (a sequence
that is hard for one pruned model is hard for the other): the simulations below draw them that way, from
distributions whose means are known, and measure by simulation how often the 95% intervals the pruning
validation reports hold the truth, and how often the paired verdict is wrong. The spread is the demo
model's: on 64 held-out sequences of 128 tokens its removal sets' per-sequence KLs have a coefficient of
variation of 0.24-0.66 and a skewness of 0.5-4 (removal of {5}, {3,5}, {4,5}, {2..5}); the draws here have
about 0.55 and 1.3.
"""

import numpy as np
import pytest

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.mean_interval import expanded_interval, t_quantile
from pytest_swapkl.analysis.paired import compare_costs

N_SEQUENCES = 64  # held-out sequences of one audit (8192 tokens of 128)
N_RESAMPLES = 500
N_SIMULATIONS = 2000  # coverage known to about +-0.5% (one standard error)
SHAPE, SCALE = 4.0, 0.025  # sequence difficulty: gamma, mean 0.1 nats


def costs(rng, n, ratio, spread=0.2):
    """Per-sequence costs of two pruned models on the same n sequences: shared difficulty times independent
    mean-1 lognormal noise, so E[a] / E[b] = ratio exactly."""
    difficulty = rng.gamma(SHAPE, SCALE, size=n)
    noise = rng.lognormal(-spread ** 2 / 2, spread, size=(2, n))  # mean 1
    return ratio * difficulty * noise[0], difficulty * noise[1]


def test_the_cost_interval_covers_the_true_mean_95_percent_of_the_time_where_plain_percentiles_fall_short():
    rng = np.random.default_rng(1)
    truth = SHAPE * SCALE  # E[difficulty * noise] with mean-1 noise
    expanded = plain = 0
    for _ in range(N_SIMULATIONS):
        a, _ = costs(rng, N_SEQUENCES, 1.0)
        samples = stats.bootstrap_means(a, stats.bootstrap_indices(N_SEQUENCES, N_RESAMPLES, int(rng.integers(2**31))))
        low, high = expanded_interval(samples, N_SEQUENCES)  # as pruning._cost
        expanded += low <= truth <= high
        low, high = stats.interval(samples)
        plain += low <= truth <= high
    assert 0.93 <= expanded / N_SIMULATIONS <= 0.97, expanded / N_SIMULATIONS
    assert plain < expanded, (plain, expanded)  # the same simulations: the plain interval is narrower


def test_the_ratio_interval_covers_the_true_ratio_95_percent_of_the_time():
    """(The ratio's sampling distribution here does not depend on the true ratio: one value is enough.)"""
    ratio, rng = 1.3, np.random.default_rng(2)
    covered = 0
    for _ in range(N_SIMULATIONS):
        a, b = costs(rng, N_SEQUENCES, ratio)
        indices = stats.bootstrap_indices(N_SEQUENCES, N_RESAMPLES, int(rng.integers(2**31)))
        comparison = compare_costs(a, b, indices)
        covered += comparison.ratio_low <= ratio <= comparison.ratio_high
    assert 0.93 <= covered / N_SIMULATIONS <= 0.97, covered / N_SIMULATIONS


def test_equal_costs_are_called_different_about_5_percent_of_the_time_and_a_real_gap_nearly_always():
    """The paired verdict's errors: equal true costs called 'cheaper' (either way) at about the 5% the level
    promises; a 1.3x gap on 64 sequences found, and never reversed."""
    rng = np.random.default_rng(3)
    verdicts = {1.0: [], 1.3: []}
    for ratio in verdicts:
        for _ in range(N_SIMULATIONS // 2):
            a, b = costs(rng, N_SEQUENCES, ratio)
            indices = stats.bootstrap_indices(N_SEQUENCES, N_RESAMPLES, int(rng.integers(2**31)))
            verdicts[ratio].append(compare_costs(a, b, indices).verdict)
    false_calls = np.mean([v in ("A cheaper", "B cheaper") for v in verdicts[1.0]])
    assert 0.02 <= false_calls <= 0.08, false_calls
    found = np.mean([v == "B cheaper" for v in verdicts[1.3]])
    assert found >= 0.9 and "A cheaper" not in verdicts[1.3], found


def test_pairing_separates_what_marginal_intervals_call_a_tie():
    """The reason for a paired test: with shared difficulty, the two marginal intervals overlap although the
    paired difference is clearly one-sided (the 'tie' the old rule would have reported)."""
    rng = np.random.default_rng(4)
    overlapping_but_separated = 0
    for _ in range(200):
        a, b = costs(rng, N_SEQUENCES, 1.15, spread=0.05)
        indices = stats.bootstrap_indices(N_SEQUENCES, N_RESAMPLES, int(rng.integers(2**31)))
        a_low, a_high = stats.interval(stats.bootstrap_means(a, indices))
        b_low, b_high = stats.interval(stats.bootstrap_means(b, indices))
        overlap = a_low <= b_high and b_low <= a_high
        overlapping_but_separated += overlap and compare_costs(a, b, indices).verdict == "B cheaper"
    assert overlapping_but_separated >= 150


@pytest.mark.parametrize("df, expected", [(5, 2.570582), (15, 2.131450), (63, 1.998341), (1000, 1.962339)])
def test_t_quantile_matches_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-3 if df == 5 else 1e-4)
