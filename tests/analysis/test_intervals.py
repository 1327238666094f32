"""Paired rules and the suite intervals against synthetic tables with a known truth."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import agreement, intervals, stats
from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.analysis.pair_rules import SetRule, removal_order


def _audit(mu_r, mu_i, rng, n_seq=32, shared_scale=0.25, own=0.05, resamples=300, seed=0):
    """Per-sequence R and I with true means mu_r, mu_i: a large variation shared by every probe (some sequences
    are hard for all of them) times a small one of each probe's own; their bootstrap means on shared draws."""
    mu_r, mu_i = np.asarray(mu_r, dtype=float), np.asarray(mu_i, dtype=float)
    shared = rng.gamma(1 / shared_scale, shared_scale, size=n_seq)
    r = mu_r[:, None] * shared[None] * rng.gamma(1 / own, own, size=(len(mu_r), n_seq))
    i = mu_i[:, None] * shared[None] * rng.gamma(1 / own, own, size=(len(mu_i), n_seq))
    indices = stats.bootstrap_indices(n_seq, resamples, seed)
    return r, i, r[:, indices].mean(-1).T, i[:, indices].mean(-1).T


def _judge(r, i, r_samples, i_samples, tolerances):
    values = [(x.mean(1), *np.percentile(s, [2.5, 97.5], axis=0)) for x, s in ((r, r_samples), (i, i_samples))]
    rank_r = agreement.paired_rank_intervals(r_samples, values[0][0])
    rank_i = agreement.paired_rank_intervals(i_samples, values[1][0])
    return agreement.pair_outcomes(values[0], values[1], 0.0, tolerances, rank_r=rank_r, rank_i=rank_i)


def test_shared_variation_makes_marginal_ties_that_the_paired_bootstrap_orders():
    rng = np.random.default_rng(0)
    mu = np.array([1.0, 1.04, 1.08, 1.12])
    r, _, samples, _ = _audit(mu, mu, rng, shared_scale=0.5, own=0.002)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    counts = agreement.tie_counts(samples, r.mean(1), low, high)
    assert counts["overlap_tied"] == 6  # every marginal interval overlaps every other
    assert counts["paired_tied"] == 0  # the differences are sharp
    assert agreement.paired_rank_intervals(samples, r.mean(1)).tolist() == [[1, 1], [2, 2], [3, 3], [4, 4]]


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 14), st.integers(0, 2**16))
def test_identical_well_separated_rankings_pass_at_tolerance_zero(n, seed):
    rng = np.random.default_rng(seed)
    mu = np.cumprod(1.1 + rng.uniform(0, 0.5, n))  # each pair at least 10% above the one below
    passed, gap, _ = _judge(*_audit(mu, 1.7 * mu, rng, seed=seed), Tolerances(rank=0, rank_is_fraction=False))
    assert passed.all() and (gap == 0).all()


def test_identical_rankings_with_near_ties_fail_rarely():
    # Known truth: R and I rank alike, but means drawn at random leave near-ties that a 95% paired test may
    # order the wrong way in one protocol. Measured: the share of whole audits with a failing pair.
    rng = np.random.default_rng(8)
    failed = {0: 0, 1: 0}
    trials = 200
    for trial in range(trials):
        mu = rng.uniform(0.5, 3.0, 10)
        table = _audit(mu, 1.7 * mu, rng, seed=trial, resamples=200)
        for allowed in failed:
            passed, _, _ = _judge(*table, Tolerances(rank=allowed, rank_is_fraction=False))
            failed[allowed] += not passed.all()
    assert failed[0] / trials <= 0.10 and failed[1] / trials <= 0.02, failed


@settings(max_examples=25, deadline=None)
@given(st.integers(6, 14), st.integers(0, 2**16))
def test_a_reversed_ranking_fails_at_its_ends(n, seed):
    rng = np.random.default_rng(seed)
    mu = 1.15 ** np.arange(n)  # well separated: the truth is readable from 32 sequences
    passed, gap, _ = _judge(*_audit(mu, mu[::-1], rng, seed=seed), Tolerances(rank=0.1))
    assert not passed[0] and not passed[-1]
    assert gap[0] >= n - 4  # the most and the least redundant pair swap ends (a tie or two may blur them)


def test_overlapping_own_intervals_no_longer_hide_a_rank_disagreement():
    # Pair 0 has R = I (its own intervals overlap) but is the most redundant under R and the least under I.
    rng = np.random.default_rng(3)
    mu_r = np.array([1.0, 1.2, 1.4, 1.6, 1.8, 2.0])
    mu_i = np.array([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng)
    (r_low, r_high), (i_low, i_high) = (np.percentile(s, [2.5, 97.5], axis=0) for s in (r_samples, i_samples))
    assert r_low[0] <= i_high[0] and i_low[0] <= r_high[0]
    passed, gap, reason = _judge(r, i, r_samples, i_samples, Tolerances(rank=2, rank_is_fraction=False))
    assert not passed[0] and gap[0] >= 4 and reason[0] == agreement.FAIL_GAP


def test_pair_outcomes_judges_a_batch_of_audits_as_each_alone():
    rng = np.random.default_rng(5)
    batch = [_audit(rng.uniform(1, 2, 7), rng.uniform(1, 2, 7), rng, seed=s) for s in range(4)]
    tolerances = Tolerances(rank=1, rank_is_fraction=False)
    arrays = []
    for r, i, rs, is_ in batch:
        arrays.append(((r.mean(1), *np.percentile(rs, [2.5, 97.5], axis=0)),
                       (i.mean(1), *np.percentile(is_, [2.5, 97.5], axis=0)),
                       agreement.paired_rank_intervals(rs, r.mean(1)),
                       agreement.paired_rank_intervals(is_, i.mean(1))))
    stacked_r = tuple(np.stack([a[0][k] for a in arrays]) for k in range(3))
    stacked_i = tuple(np.stack([a[1][k] for a in arrays]) for k in range(3))
    rank_r = agreement.paired_rank_intervals(np.stack([b[2] for b in batch]), stacked_r[0])
    rank_i = agreement.paired_rank_intervals(np.stack([b[3] for b in batch]), stacked_i[0])
    passed, gap, reason = agreement.pair_outcomes(stacked_r, stacked_i, 0.0, tolerances, rank_r=rank_r,
                                                  rank_i=rank_i)
    for n, (r, i, rr, ri) in enumerate(arrays):
        alone = agreement.pair_outcomes(r, i, 0.0, tolerances, rank_r=rr, rank_i=ri)
        assert (alone[0] == passed[n]).all() and (alone[1] == gap[n]).all() and (alone[2] == reason[n]).all()
    # Without rank intervals, the marginal rule, also batched.
    marginal = agreement.pair_outcomes(stacked_r, stacked_i, 0.0, tolerances)
    assert marginal[0].shape == (4, 7)


@pytest.mark.parametrize("rule", [SetRule("later"), SetRule()], ids=["later", "min-partner"])
def test_set_stability_is_the_share_of_resamples_reproducing_the_set(rule):
    rng = np.random.default_rng(2)
    pairs = [(n, n + 1) for n in range(6)]
    mu = np.array([1.0, 1.0, 3.0, 4.0, 5.0, 6.0])  # the first two tie: which one removes first is a coin flip
    r, i, r_samples, i_samples = _audit(mu, mu * np.array([1, 1, 1, 1, 1, 0.1]), rng, own=0.2)
    found = intervals.set_intervals(pairs, r_samples, i_samples, r.mean(1), i.mean(1), [1, 2], 0.95, rule, 7)
    by_k = {s.k: s for s in found}
    r_first = set(rule.order(pairs, list(r.mean(1)), 1, 7))
    share = np.mean([set(rule.order(pairs, list(row), 1, 7)) == r_first for row in r_samples])
    assert by_k[1].stability_replacement == share
    assert 0.2 < share < 0.8  # a coin flip, not a certainty
    assert by_k[1].stability_interchange == 1.0  # pair 5 is far cheaper under I
    r_two = set(rule.order(pairs, list(r.mean(1)), 2, 7))
    assert by_k[2].stability_replacement == np.mean(
        [set(rule.order(pairs, list(row), 2, 7)) == r_two for row in r_samples])


@pytest.mark.parametrize("rule", [SetRule("later"), SetRule(), SetRule("min-partner", 0, 1), SetRule("earlier")],
                         ids=["later", "min-partner", "min-partner-0-1", "earlier"])
def test_the_removal_order_prefix_is_each_budgets_set(rule):
    rng = np.random.default_rng(4)
    pairs = [(a, b) for a in range(6) for b in range(a + 1, 6)]
    for _ in range(20):
        distances = rng.uniform(0, 1, (3, len(pairs)))
        order = rule.order(pairs, list(distances[0]), 4, 6)
        for k in range(1, 5):
            assert sorted(order[:k]) == rule.choose(pairs, list(distances[0]), k, 6)
        if rule.name == "later":
            assert order == removal_order(pairs, list(distances[0]), 4)
        # the bootstrap walks (numpy where it can) give the same orders as the rule row by row
        assert stats.rule_orders(rule, pairs, distances, 4, 6) == [rule.order(pairs, list(row), 4, 6)
                                                                   for row in distances]


def _coverage(statistic, truth, rng, trials=400, truth_seed=11):
    n_pairs = 12
    mu_r = np.linspace(1, 2.2, n_pairs)
    mu_i = mu_r * np.exp(np.random.default_rng(truth_seed).normal(0, 0.15, n_pairs))
    pairs = [(n, n + 1) for n in range(n_pairs)]
    covered = 0
    for trial in range(trials):
        r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, own=0.1, resamples=300, seed=trial)
        found = intervals.suite_intervals(pairs, r_samples, i_samples, r.mean(1), i.mean(1), [])
        low, high = statistic(found)
        covered += low <= truth(mu_r, mu_i) <= high
    return covered / trials


# Coverage of the rank-correlation intervals of `suite_intervals`, 400 simulated audits of 12 pairs per truth. The
# numbers below (seeds 1-5 and 11: Spearman 88-99%, Kendall 89-95%; the reflected interval at seed 11: 83.5% and 82%,
# 200 audits) were measured with the bias-corrected interval (intervals.corrected_interval); the RMS interval that
# replaced it (issue 34) passes the seed-5 tests and still misses at seed 11 (strict xfail). Its coverage on truths
# resampled from the measured tables: benchmarks/statistics/rank_interval_resampled.py.
@pytest.mark.slow
def test_coverage_of_the_spearman_interval_is_near_95_percent():
    coverage = _coverage(lambda f: f.spearman, stats.spearman, np.random.default_rng(21), truth_seed=5)
    assert 0.93 <= coverage <= 0.97, coverage


@pytest.mark.slow
def test_coverage_of_the_kendall_interval_is_near_95_percent():
    coverage = _coverage(lambda f: f.kendall, stats.kendall, np.random.default_rng(21), truth_seed=5)
    assert 0.93 <= coverage <= 0.97, coverage


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured 90.5% (Spearman) and 91.75% (Kendall) at this truth; over 12-pair "
                   "truths of seeds 1-5 and 11: Spearman 88-99%, Kendall 89-95%. With 12 pairs the spread of a rank "
                   "correlation depends on the truth's own near-ties, which the bootstrap sees only through the "
                   "estimate's (noisier) configuration")
def test_coverage_of_the_rank_intervals_is_near_95_percent_at_every_truth():
    coverage = [_coverage(lambda f: getattr(f, name), getattr(stats, name), np.random.default_rng(21), truth_seed=11)
                for name in ("spearman", "kendall")]
    assert all(0.93 <= c <= 0.97 for c in coverage), coverage


def test_the_corrected_interval_is_wider_than_the_reflected_and_moves_up():
    # Attenuation: the resamples sit below the estimate; the corrected interval moves up by est - mean(resamples)
    # relative to the estimate and is at least as wide as the reflected one (the scale 2 - slope is >= 1 here).
    rng = np.random.default_rng(9)
    mu_r = np.linspace(1, 2.2, 20)
    mu_i = mu_r * np.exp(rng.normal(0, 0.15, 20))
    r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, own=0.2, resamples=400)
    estimate = stats.spearman(r.mean(1), i.mean(1))
    samples = intervals.spearman_rows(r_samples, i_samples)
    reflected = intervals.basic_interval(estimate, samples, 0.95)
    corrected = intervals.corrected_interval(estimate, intervals.spearman_rows, r_samples, i_samples, r.mean(1),
                                             i.mean(1), 0.95)
    assert samples.mean() < estimate
    assert corrected[1] - corrected[0] > reflected[1] - reflected[0]
    assert corrected[0] <= estimate <= corrected[1]


def test_kendall_rows_matches_scipy_with_ties_and_constant_rows():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, size=(30, 15)).astype(float)  # many ties
    b = rng.integers(0, 4, size=(30, 15)).astype(float)
    a[0] = 1.0  # a constant row: undefined
    expected = np.array([kendalltau(x, y).statistic for x, y in zip(a, b)])
    np.testing.assert_allclose(intervals.kendall_rows(a, b), expected, atol=1e-12, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 30), n=st.integers(1, 30), levels=st.integers(1, 9), seed=st.integers(0, 1000))
def test_average_ranks_are_scipys_rankdata_to_the_bit(rows, n, levels, seed):
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    values = rng.integers(0, levels, size=(rows, n)).astype(float)  # ties, and constant rows
    values[rng.random(values.shape) < 0.05] = np.nan  # a row holding NaN ranks as NaN
    assert np.array_equal(intervals.average_ranks(values), rankdata(values, axis=-1), equal_nan=True)
    assert np.array_equal(intervals.average_ranks(values[0]), rankdata(values[0]), equal_nan=True)


def test_the_rank_interval_z_is_scipys_normal_quantile():
    from scipy.stats import norm

    samples = np.linspace(0.2, 0.6, 50)
    low, high = intervals.rms_interval(0.4, samples, 0.9)
    half = norm.ppf(0.95) * float(np.sqrt(np.mean((samples - 0.4) ** 2)))
    assert (low, high) == (0.4 - half, 0.4 + half)
