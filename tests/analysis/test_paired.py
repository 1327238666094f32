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


def test_identical_costs_are_equivalent():
    a = np.linspace(0.1, 2.0, 32)
    comparison = paired.compare_costs(a, a.copy(), stats.bootstrap_indices(32, 500, seed=0))
    assert comparison.verdict == "equivalent" and comparison.equivalent
    assert comparison.p == 1.0 and comparison.p_equivalent == 0.0
    assert comparison.ratio == comparison.ratio_low == comparison.ratio_high == 1.0


def test_close_costs_on_noisy_sequences_are_undecided_not_the_same():
    """No direction and an interval wider than the margin: "undecided", never "same cost"."""
    rng = np.random.default_rng(2)
    b = rng.lognormal(0, 1, size=16)
    a = b * rng.lognormal(0, 0.6, size=16)
    comparison = paired.compare_costs(a, b, stats.bootstrap_indices(16, 1000, seed=0), margin=0.1)
    assert comparison.ratio_low < 1 / 1.1 or comparison.ratio_high > 1.1
    assert comparison.verdict == "undecided" and not comparison.equivalent


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.integers(3, 40), st.floats(0.7, 1.4), st.floats(0.02, 0.3))
def test_p_values_give_the_intervals_verdicts(seed, n, ratio, margin):
    """p < 0.05 exactly where the 95% (expanded) interval of the difference excludes 0; the TOST p-value < 0.05
    exactly where the 90% interval of the ratio lies inside [1/(1+m), 1+m]."""
    rng = np.random.default_rng(seed)
    b = rng.gamma(2.0, 0.5, size=n)
    a = ratio * b * rng.gamma(20.0, 0.05, size=n)
    indices = stats.bootstrap_indices(n, 300, seed)
    comparison = paired.compare_costs(a, b, indices, margin=margin)
    assert (comparison.verdict in ("A cheaper", "B cheaper")) == (comparison.p < 0.05)
    low, high = paired.expanded_interval(a[indices].mean(axis=1) / b[indices].mean(axis=1), n, 0.90)
    assert (1 / (1 + margin) < low and high < 1 + margin) == (comparison.p_equivalent < 0.05)
    if comparison.verdict not in ("A cheaper", "B cheaper"):
        assert comparison.verdict == ("equivalent" if comparison.p_equivalent < 0.05 else "undecided")


def test_a_flipped_comparison_mirrors_its_verdicts_and_keeps_its_p_values():
    rng = np.random.default_rng(0)
    b = rng.lognormal(0, 1, size=64)
    comparison = paired.adjusted_table([paired.compare_costs(b + 0.05, b, stats.bootstrap_indices(64, 500, 1))],
                                       "holm")[0]
    back = comparison.flipped()
    assert (back.verdict, back.verdict_adjusted) == ("A cheaper", "A cheaper")
    assert (back.p, back.p_adjusted, back.a, back.b) == (comparison.p, comparison.p_adjusted, comparison.b,
                                                         comparison.a)
    assert back.ratio_low == pytest.approx(1 / comparison.ratio_high)


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


def straightforward_order_matrix(samples: np.ndarray, level: float) -> np.ndarray:
    """The definition: np.percentile of a - b for every two columns, one at a time (`paired.order`)."""
    n = samples.shape[1]
    return np.array([[paired.order(samples[:, a], samples[:, b], level) if a != b else paired.INDISTINGUISHABLE
                      for b in range(n)] for a in range(n)])


LEVELS = st.sampled_from([0.95, 0.9, 0.99, 0.5, 0.8, 0.0, 1.0])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 60), st.integers(1, 7), st.integers(1, 4), st.sampled_from([1.0, 0.1, 3e-7, 1e-300, 1e300]),
       LEVELS, st.integers(0, 2**16))
def test_order_from_counts_equals_np_percentile_with_ties(n_resamples, n, grid, scale, level, seed):
    # Values on a small grid: many resamples tie (a - b == 0 exactly), so the counts sit on every boundary.
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, grid + 1, size=(n_resamples, n)) * scale
    assert (paired.order_matrix(samples, level) == straightforward_order_matrix(samples, level)).all()


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 400), st.data(), LEVELS)
def test_order_from_counts_equals_np_percentile_at_the_boundary(n_resamples, data, level):
    # a - b negative on exactly c resamples, c drawn around the order statistics the percentiles read: the
    # cases where the percentile itself must be interpolated between the last negative and the first non-negative.
    tail = (1 - level) / 2 * 100
    edges = [int(np.floor(q / 100 * (n_resamples - 1))) for q in (tail, 100 - tail)]
    near = sorted({min(max(e + step, 0), n_resamples) for e in edges for step in (-1, 0, 1, 2)})
    negatives = data.draw(st.sampled_from(near))
    magnitudes = st.floats(0.0, 5.0, allow_nan=False, allow_infinity=False)
    offsets = np.array(data.draw(st.lists(magnitudes, min_size=n_resamples, max_size=n_resamples)))
    offsets[:negatives] *= -1
    offsets[:negatives][offsets[:negatives] == 0] = -data.draw(st.floats(1e-12, 1.0))  # strictly negative
    base = np.array(data.draw(st.lists(st.floats(0.0, 10.0), min_size=n_resamples, max_size=n_resamples)))
    third = np.array(data.draw(st.lists(st.floats(0.0, 10.0), min_size=n_resamples, max_size=n_resamples)))
    samples = np.stack([base + offsets, base, third], axis=1)
    assert (paired.order_matrix(samples, level) == straightforward_order_matrix(samples, level)).all()


def test_order_from_counts_equals_np_percentile_on_audit_sized_samples():
    # 60 items x 1000 resamples of bootstrap means, as an audit's: close pairs, far pairs and exact duplicates.
    rng = np.random.default_rng(5)
    per_sequence = rng.lognormal(0, 1, size=(60, 64)) * rng.uniform(0.9, 1.1, size=(60, 1))
    per_sequence[7] = per_sequence[3]
    indices = stats.bootstrap_indices(64, 1000, seed=2)
    samples = np.stack([stats.bootstrap_means(row, indices) for row in per_sequence], axis=1)
    expected = straightforward_order_matrix(samples, 0.95)
    assert (paired.order_matrix(samples) == expected).all()
    assert (expected == paired.A_SMALLER).any() and (expected == paired.INDISTINGUISHABLE).sum() > 60


@pytest.mark.parametrize("side", ["low", "high"])
def test_order_from_counts_rounds_the_interpolation_as_np_percentile(side):
    # The percentile between the last negative difference a and the first non-negative b is 0 or not by one
    # rounding: numpy interpolates from the nearer end, and the other (algebraically equal) formula has the
    # other sign here. The order must follow numpy's.
    n_resamples, level = 1000, 0.95
    tail = (1 - level) / 2 * 100
    h = (tail if side == "low" else 100 - tail) / 100 * (n_resamples - 1)
    k, t, b = int(np.floor(h)), h - np.floor(h), 1.0
    is_beyond = (lambda v: v > 0) if side == "low" else (lambda v: v < 0)
    start = -t / (1 - t) * b  # where the percentile is 0; a few thousand floats either side
    candidates = start + np.arange(-4000, 4000) * np.spacing(abs(start))
    numpy_way = np.where(t >= 0.5, b - (b - candidates) * (1 - t), candidates + (b - candidates) * t)
    other_way = np.where(t >= 0.5, candidates + (b - candidates) * t, b - (b - candidates) * (1 - t))
    found = candidates[is_beyond(numpy_way) != is_beyond(other_way)]
    assert len(found), "no rounding case found: the test would check nothing"
    a = found[0]
    differences = np.concatenate([np.full(k, a - 10.0), [a, b], np.full(n_resamples - k - 2, b + 1.0)])
    differences = np.random.default_rng(0).permutation(differences)
    samples = np.stack([differences, np.zeros(n_resamples)], axis=1)  # column 0 - column 1 is exactly `differences`
    assert paired.order_matrix(samples, level)[0, 1] == paired.order(samples[:, 0], samples[:, 1], level)
