"""certify: what adaptive mode may conclude about exact verdicts from partial knowledge.

Soundness on synthetic tables with a known truth: whatever part of the truth is revealed (some items full,
some orders known, intervals that hold the exact means), every verdict certify calls decided is the exact
rule's verdict; with everything revealed, every verdict is decided. And the rule structure certify assumes
is checked against agreement.py itself, so a change of the rules there fails here.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import certify, stats
from pytest_swapkl.analysis.agreement import (
    Tolerances,
    pair_outcomes,
    paired_order,
    paired_rank_intervals,
    rank_intervals,
)
from pytest_swapkl.analysis.pair_rules import SetRule


def exact_table(rng: np.random.Generator, n: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values with intervals that hold them (sign consistency), some pairs close enough to tie."""
    values = np.exp(rng.uniform(-3, 0, n))
    if ties and n > 2:
        values[1] = values[0] * (1 + rng.uniform(-0.02, 0.02))
    half = values * rng.uniform(0.01, 0.4, n)
    return values, values - half * rng.uniform(0.2, 1, n), values + half * rng.uniform(0.2, 1, n)


def revealed(rng, arrays, floor: float, share_full: float, share_known: float) -> certify.Knowledge:
    """A Knowledge that tells only the truth: some items full, some orders known, intervals around the truth."""
    values, lows, highs = arrays
    n = len(values)
    full = rng.random(n) < share_full
    truly_below = values[None, :] < values[:, None]
    known = rng.random((n, n)) < share_known
    known = known | known.T | (full[:, None] & full[None, :])
    below = truly_below & known
    spread = values * rng.uniform(0, 2, n)
    low = np.where(full, values, np.maximum(0, values - spread * rng.random(n)))
    high = np.where(full, values, values + spread * rng.random(n))
    surely, possibly = certify.rule_relations(values, lows, highs, floor)
    # the current estimates are the exact ones where full; elsewhere anything near them
    current = np.where(full, values, values * rng.uniform(0.8, 1.25, n))
    return certify.Knowledge(current, low, high, below, full, surely, possibly)


tables = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1), "n": st.integers(2, 12), "ties": st.booleans(),
    "floor": st.sampled_from([0.0, 0.0, 0.05]), "log_ratio": st.sampled_from([None, None, 0.5, 1.5]),
    "rank": st.integers(0, 4), "share_full": st.sampled_from([0.0, 0.5, 1.0]),
    "share_known": st.sampled_from([0.0, 0.5, 0.9, 1.0])})


@settings(max_examples=300, deadline=None)
@given(case=tables)
def test_decided_pair_verdicts_are_the_exact_rules(case):
    rng = np.random.default_rng(case["seed"])
    r, i = exact_table(rng, case["n"], case["ties"]), exact_table(rng, case["n"], case["ties"])
    tolerances = Tolerances(rank=case["rank"], rank_is_fraction=False, log_ratio=case["log_ratio"])
    exact, _, _ = pair_outcomes(r, i, case["floor"], tolerances)
    r_known = revealed(rng, r, case["floor"], case["share_full"], case["share_known"])
    i_known = revealed(rng, i, case["floor"], case["share_full"], case["share_known"])
    verdicts = certify.pair_verdicts(r_known, i_known, case["floor"], case["rank"], case["log_ratio"])
    assert np.all(verdicts.value[verdicts.decided] == exact[verdicts.decided])
    if case["share_full"] == 1.0:  # everything known: everything decided
        assert verdicts.decided.all()


@settings(max_examples=200, deadline=None)
@given(case=tables, min_spearman=st.sampled_from([-0.5, 0.0, 0.5, 0.9]), k=st.integers(1, 4))
def test_decided_rank_correlation_and_removal_sets_are_the_exact_ones(case, min_spearman, k):
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    r, i = exact_table(rng, n, case["ties"]), exact_table(rng, n, case["ties"])
    r_known = revealed(rng, r, case["floor"], case["share_full"], case["share_known"])
    i_known = revealed(rng, i, case["floor"], case["share_full"], case["share_known"])
    rho = stats.spearman(r[0], i[0])
    current_rho = stats.spearman(r_known.values, i_known.values)
    verdict = certify.rank_correlation_passes(r_known, i_known, min_spearman,
                                              rho if r_known.full.all() and i_known.full.all() else current_rho)
    if verdict.decided[0]:
        assert verdict.value[0] == (rho is None or rho >= min_spearman)
    layers = 6
    pairs = [(a, b) for a in range(layers) for b in range(a + 1, layers)][:n]
    decided, _ = certify.walk_decided(pairs, r_known, k)
    if decided:
        assert stats.removal_set(pairs, r_known.values, k) == stats.removal_set(pairs, r[0], k)
    for rule in (SetRule(), SetRule("min-partner", 0, 1), SetRule("layer_min"), SetRule("earlier")):
        decided, _ = certify.set_decided(rule, pairs, r_known, k, layers)
        if decided:  # sound: a decided set is the one the exact means give
            assert rule.choose(pairs, r_known.values, k, layers) == rule.choose(pairs, r[0], k, layers), rule
    decided, _ = certify.cheapest_decided(r_known, min(k, n))
    if decided:
        exact_set = set(np.argsort(r[0], kind="stable")[:min(k, n)])
        assert set(np.argsort(r_known.values, kind="stable")[:min(k, n)]) == exact_set


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), floor=st.sampled_from([0.0, 0.05, 0.5]))
def test_rule_relations_are_the_ones_agreement_counts_ranks_with(seed, n, floor):
    """The tripwire for part of the interface: agreement.rank_intervals must be 1 + the row sums."""
    values, lows, highs = exact_table(np.random.default_rng(seed), n, True)
    surely, possibly = certify.rule_relations(values, lows, highs, floor)
    expected = rank_intervals(values, lows, highs, floor)
    assert np.array_equal(surely.sum(1) + 1, expected[:, 0]) and np.array_equal(possibly.sum(1) + 1, expected[:, 1])


@settings(max_examples=200, deadline=None)
@given(case=tables)
def test_with_everything_full_the_structure_is_agreement_pair_outcomes(case):
    """The tripwire for the rest: a pair passes iff floor or (not ratio fail and gap ok)."""
    rng = np.random.default_rng(case["seed"])
    r, i = exact_table(rng, case["n"], case["ties"]), exact_table(rng, case["n"], case["ties"])
    tolerances = Tolerances(rank=case["rank"], rank_is_fraction=False, log_ratio=case["log_ratio"])
    exact, _, _ = pair_outcomes(r, i, case["floor"], tolerances)
    r_known, i_known = revealed(rng, r, case["floor"], 1.0, 1.0), revealed(rng, i, case["floor"], 1.0, 1.0)
    verdicts = certify.pair_verdicts(r_known, i_known, case["floor"], case["rank"], case["log_ratio"])
    assert verdicts.decided.all() and np.array_equal(verdicts.value, exact)


def test_three_valued_logic():
    yes, no, open_ = certify.Maybe.known([True]), certify.Maybe.known([False]), certify.Maybe.unknown(1)
    assert (yes | open_).decided[0] and (yes | open_).value[0]
    assert (no & open_).decided[0] and not (no & open_).value[0]
    assert not (yes & open_).decided[0] and not (no | open_).decided[0]
    assert (~no).value[0] and not (~open_).decided[0]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 10), floor=st.sampled_from([0.0, 0.05, 0.5]))
def test_paired_rule_relations_are_the_ones_the_pair_cases_count_ranks_with(seed, n, floor):
    """The tripwire for the paired rule: agreement.paired_rank_intervals must be 1 + the row sums."""
    rng = np.random.default_rng(seed)
    values = np.exp(rng.uniform(-3, 0, n))
    samples = values[None, :] * rng.lognormal(0, 0.3, size=(200, n)) * rng.lognormal(0, 0.3, size=(200, 1))
    order = paired_order(samples, values, floor)
    surely, possibly = certify.rule_relations(values, values, values, floor, order)
    expected = paired_rank_intervals(samples, values, floor)
    assert np.array_equal(surely.sum(1) + 1, expected[:, 0]) and np.array_equal(possibly.sum(1) + 1, expected[:, 1])
