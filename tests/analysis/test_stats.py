import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.engine.measurement import Measurement, ProbeStats
from pytest_swapkl.engine.probes import audit_probes, parse_pairs

finite = st.floats(0, 10, allow_nan=False)


def test_average_ranks_share_ties():
    assert list(stats.average_ranks([0.3, 0.1, 0.3, 0.2])) == [3.5, 1.0, 3.5, 2.0]


def test_correlations_known_values():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.kendall([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One discordant pair of six: tau = (5 - 1) / 6; rho = 1 - 6 * 2 / (4 * 15).
    assert stats.kendall([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert stats.spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    assert stats.spearman([1, 1, 1], [1, 2, 3]) is None and stats.kendall([1], [1]) is None


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=30))
def test_correlations_bounded_symmetric_and_rank_based(points):
    a, b = [p[0] for p in points], [p[1] for p in points]
    for corr in (stats.spearman, stats.kendall):
        value = corr(a, b)
        if value is None:
            continue
        assert -1 - 1e-9 <= value <= 1 + 1e-9
        assert corr(b, a) == pytest.approx(value)
        assert corr([math.exp(x / 10) for x in a], b) == pytest.approx(value)  # monotone transforms don't matter


@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(finite, min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2), st.integers(1, 6))))
def test_removal_set_keeps_a_stand_in_for_every_removed_layer(case):
    n, distances, k = case
    pairs = parse_pairs("all", n)
    removed = stats.removal_set(pairs, distances, k)
    assert len(removed) == min(k, len(removed)) and len(set(removed)) == len(removed)
    assert len(removed) <= min(k, n - 1)
    for j in removed:
        assert any(pj == j and pi not in removed for pi, pj in pairs), "every removed layer keeps a stand-in"
    assert removed == stats.removal_set(pairs, list(distances), k)


def test_removal_set_on_adjacent_pairs_picks_the_most_redundant():
    pairs = parse_pairs("adjacent", 6)
    assert stats.removal_set(pairs, [0.5, 0.1, 0.4, 0.2, 0.3], 2) == [2, 4]
    # (1,2) is taken first, so (2,3) can't remove 3 through the removed layer 2.
    assert stats.removal_set(pairs, [0.5, 0.1, 0.15, 0.9, 0.3], 2) == [2, 5]
    # (2,3) is taken first, then (1,2) removes 2 too: a chain, with layer 1 standing in for both.
    assert stats.removal_set(pairs, [0.5, 0.15, 0.1, 0.9, 0.3], 2) == [2, 3]


def synthetic_measurement(n_layers: int, seed: int) -> tuple[Measurement, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    pairs = parse_pairs("all", n_layers)
    probes = audit_probes(pairs, n_layers)
    per_probe = {p: ProbeStats(p, rng.gamma(2.0, 0.05, size=16), rng.normal(3, 0.1, size=16)) for p in probes}
    return Measurement("fast", 16, 32, rng.normal(3, 0.1, size=16), per_probe), pairs


def test_summarize_numbers():
    measurement, pairs = synthetic_measurement(5, seed=1)
    audit = summarize(measurement, pairs, 5, "mean", n_resamples=200, seed=0)
    assert len(audit.pairs) == 10 and len(audit.removals) == 5
    for p in audit.pairs:
        assert p.replacement.value == pytest.approx((p.replacement_ij.value + p.replacement_ji.value) / 2)
        for estimate in (p.replacement, p.interchange, p.replacement_ij):
            assert estimate.low <= estimate.value <= estimate.high
    assert sorted(p.rank_replacement for p in audit.pairs) == list(range(1, 11))
    assert [t.k for t in audit.top_k] == [1, 2, 3, 4]
    again = summarize(measurement, pairs, 5, "mean", n_resamples=200, seed=0)
    assert again.pairs == audit.pairs, "seeded bootstrap is reproducible"
    worst = summarize(measurement, pairs, 5, "max", n_resamples=200, seed=0)
    assert all(w.replacement.value >= m.replacement.value for w, m in zip(worst.pairs, audit.pairs))


@given(st.integers(0, 6), st.integers(1, 8), st.integers(1, 5), st.integers(0, 2**16), st.booleans())
def test_removal_orders_of_many_rows_are_removal_order_row_by_row(n_layers_extra, n_rows, k, seed, odd_values):
    # Ties (a small grid), pairs in any order and repeated, and rows with NaN, -0.0 and infinity.
    rng = np.random.default_rng(seed)
    n_layers = 2 + n_layers_extra
    pairs = [tuple(sorted(rng.choice(n_layers, 2, replace=False).tolist())) for _ in range(int(rng.integers(0, 12)))]
    distances = rng.integers(0, 3, size=(n_rows, len(pairs))).astype(np.float64)
    if odd_values and pairs:
        distances[0, 0], distances[-1, :] = np.nan, -0.0
        distances[-1, -1] = np.inf
    assert stats.removal_orders(pairs, distances, k) == [stats.removal_order(pairs, list(row), k) for row in distances]


@given(st.integers(1, 50), st.integers(1, 6), st.integers(0, 2**16), st.sampled_from([0.95, 0.5, 0.99]))
def test_intervals_of_columns_are_interval_column_by_column(n_resamples, n, seed, level):
    samples = np.random.default_rng(seed).lognormal(0, 2, size=(n_resamples, n))
    lows, highs = stats.intervals(samples, level)
    assert [(float(low), float(high)) for low, high in zip(lows, highs)] == \
        [stats.interval(samples[:, c], level) for c in range(n)]
