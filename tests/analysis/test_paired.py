"""Paired comparisons against cases with a known truth."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import paired, stats


def test_shared_variation_cancels_in_the_difference():
    # Sequences vary a lot, A is B plus a small constant: marginal intervals overlap, the paired one does not.
    rng = np.random.default_rng(0)
    b = rng.lognormal(0, 1, size=64)
    a = b + 0.05
    indices = stats.bootstrap_indices(64, 1000, seed=1)
    a_low, a_high = stats.interval(stats.bootstrap_means(a, indices))
    b_low, b_high = stats.interval(stats.bootstrap_means(b, indices))
    assert a_low <= b_high  # the marginal intervals overlap: the old rule called this a tie
    comparison = paired.compare_costs(a, b, indices)
    assert comparison.verdict == "B cheaper"
    assert comparison.ratio_low > 1


def test_identical_costs_are_indistinguishable():
    a = np.linspace(0.1, 2.0, 32)
    comparison = paired.compare_costs(a, a.copy(), stats.bootstrap_indices(32, 500, seed=0))
    assert comparison.verdict == "indistinguishable"
    assert comparison.ratio == comparison.ratio_low == comparison.ratio_high == 1.0


def test_zero_cost_has_no_ratio_but_a_verdict():
    a = np.full(16, 0.3)
    comparison = paired.compare_costs(a, np.zeros(16), stats.bootstrap_indices(16, 200, seed=0))
    assert comparison.ratio is None and comparison.ratio_low is None
    assert comparison.verdict == "B cheaper"


def test_unpaired_shapes_are_refused():
    with pytest.raises(ValueError, match="same sequences"):
        paired.compare_costs(np.ones(3), np.ones(4), stats.bootstrap_indices(3, 10, seed=0))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=6), st.integers(0, 2**16))
def test_order_matrix_is_antisymmetric_and_matches_order(means, seed):
    rng = np.random.default_rng(seed)
    samples = np.asarray(means)[None, :] + rng.normal(0, 0.5, size=(200, len(means)))
    matrix = paired.order_matrix(samples)
    assert (matrix == -matrix.T).all()
    for a in range(len(means)):
        for b in range(len(means)):
            if a != b:
                assert matrix[a, b] == paired.order(samples[:, a], samples[:, b])


def test_coverage_of_the_ratio_interval_is_near_95_percent():
    # Known truth: per-sequence costs with means 1.2 and 1.0, correlated across sequences.
    rng = np.random.default_rng(7)
    covered, trials = 0, 400
    for trial in range(trials):
        shared = rng.gamma(2.0, 0.5, size=64)
        b = shared * rng.gamma(20.0, 0.05, size=64)
        a = 1.2 * shared * rng.gamma(20.0, 0.05, size=64)
        comparison = paired.compare_costs(a, b, stats.bootstrap_indices(64, 400, seed=trial))
        covered += comparison.ratio_low <= 1.2 <= comparison.ratio_high
    assert 0.91 <= covered / trials <= 0.98
