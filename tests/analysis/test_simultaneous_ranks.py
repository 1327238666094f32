"""Simultaneous rank intervals (Mogstad et al.): known orders, and properties on random tables."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.simultaneous_ranks import (
    joint_rank_intervals,
    layer_confidence_sets,
    rank_intervals,
    tau_best,
)


def _boot(per_sequence: np.ndarray, n_resamples: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[n_resamples, n] bootstrap means on shared draws and the [n] means, of a [n, n_sequences] table."""
    indices = stats.bootstrap_indices(per_sequence.shape[1], n_resamples, seed)
    return per_sequence[:, indices].mean(-1).T, per_sequence.mean(1)


def test_well_separated_means_give_point_intervals():
    rng = np.random.default_rng(0)
    table = np.arange(6)[:, None] * 10.0 + rng.normal(0, 0.1, (6, 32))
    samples, values = _boot(table)
    assert rank_intervals(samples, values).tolist() == [[r, r] for r in range(1, 7)]


def test_identical_means_give_full_width_intervals():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1.0, (1, 32))
    table = 5.0 + noise + rng.normal(0, 1.0, (5, 32)) * 0.5  # same expected value, each its own noise
    table -= table.mean(1, keepdims=True) - 5.0  # identical sample means
    samples, values = _boot(table)
    assert rank_intervals(samples, values).tolist() == [[1, 5]] * 5


def test_units_under_the_noise_floor_are_tied_whatever_their_resamples_say():
    table = np.array([[1e-9] * 16, [2e-9] * 16, [5.0] * 8 + [6.0] * 8])
    samples, values = _boot(table)
    assert rank_intervals(samples, values, floor=1e-8).tolist() == [[1, 2], [1, 2], [3, 3]]


def test_tau_best_holds_every_unit_that_may_be_among_the_k_best():
    intervals = np.array([[1, 1], [2, 3], [2, 4], [4, 4]])
    assert tau_best(intervals, 1).tolist() == [0]
    assert tau_best(intervals, 2).tolist() == [0, 1, 2]


def test_layer_confidence_sets_read_min_partner_scores():
    rng = np.random.default_rng(2)
    pairs = [(0, 1), (0, 2), (1, 2), (2, 3)]
    table = np.array([1.0, 50.0, 50.0, 100.0])[:, None] + rng.normal(0, 0.01, (4, 32))
    samples, values = _boot(table)
    # scores: L0 = L1 = 1 (pair 0-1), L2 = 50, L3 = 100: the best layer is L0 or L1, tied
    (sets,) = layer_confidence_sets(pairs, [samples], [values], ks=(1, 2, 3))
    assert sets == {1: [0, 1], 2: [0, 1], 3: [0, 1, 2]}


tables = st.tuples(st.integers(2, 12), st.integers(4, 24), st.integers(0, 2 ** 16), st.floats(0.0, 3.0))


def _random(spec):
    n, n_sequences, seed, spread = spec
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 1, (n, 1)) * spread + rng.normal(0, 1, (n, n_sequences)) + rng.normal(0, 1, (1, n_sequences))
    return _boot(table, n_resamples=200, seed=seed)


@settings(max_examples=60, deadline=None)
@given(tables)
def test_the_interval_always_contains_the_point_rank(spec):
    samples, values = _random(spec)
    intervals = rank_intervals(samples, values)
    point = stats.average_ranks(values)
    assert np.all(intervals[:, 0] <= np.floor(point)) and np.all(np.ceil(point) <= intervals[:, 1])


@settings(max_examples=60, deadline=None)
@given(tables, st.floats(0.01, 0.3), st.floats(0.01, 0.3))
def test_widths_grow_as_alpha_falls(spec, alpha_a, alpha_b):
    samples, values = _random(spec)
    strict, loose = sorted((alpha_a, alpha_b))
    wide, narrow = rank_intervals(samples, values, alpha=strict), rank_intervals(samples, values, alpha=loose)
    assert np.all(wide[:, 0] <= narrow[:, 0]) and np.all(narrow[:, 1] <= wide[:, 1])


@settings(max_examples=30, deadline=None)
@given(tables, tables)
def test_joint_intervals_are_at_least_as_wide_as_each_table_alone(spec_a, spec_b):
    (sa, va), (sb, vb) = _random(spec_a), _random(spec_b)
    n = min(len(sa), len(sb))
    joint_a, _ = joint_rank_intervals([sa[:n], sb[:n]], [va, vb])
    alone = rank_intervals(sa[:n], va)
    assert np.all(joint_a[:, 0] <= alone[:, 0]) and np.all(alone[:, 1] <= joint_a[:, 1])


def test_failing_pairs_touching_the_top_k_are_counted_per_budget():
    from pytest_swapkl.cases import touched_budget, touching_counts

    sets = [(1, [4], [5]), (2, [2, 4], [2, 5])]
    assert touched_budget(3, 4, sets) == 1 and touched_budget(1, 2, sets) == 2 and touched_budget(0, 1, sets) is None
    assert touching_counts([(3, 4), (1, 2), (0, 1)], sets) == {1: 1, 2: 2}


def test_the_verdict_says_how_many_disagreements_a_pruning_would_touch():
    from pytest_swapkl.report.verdict import Disagreement, Outcomes, sentence

    outcomes = Outcomes(n_pairs=10, disagreements=[Disagreement("L00-L01", "replacement"),
                                                   Disagreement("L05-L06", "interchange")],
                        spearman=0.9, spearman_passed=True, touching={2: 1, 4: 2})
    assert "2 of them touch a removal set at k <= 4" in sentence(outcomes)
