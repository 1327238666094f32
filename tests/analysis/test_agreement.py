"""The agreement rule on synthetic distance tables (no model needed)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl.analysis.agreement import (
    Tolerances,
    failure_message,
    jaccard_passes,
    pair_verdicts,
    rank_intervals,
)
from pytest_swapkl.analysis.stats import average_ranks

distance = st.floats(1e-4, 5.0, allow_nan=False)


def document(r_values, i_values, r_width=0.0, i_width=0.0, floor=0.0):
    rank_r, rank_i = average_ranks(r_values), average_ranks(i_values)
    pairs = [
        {"i": n, "j": n + 1, "replacement": r, "interchange": i, "rank_replacement": float(rank_r[n]),
         "rank_interchange": float(rank_i[n]), "log_ratio": None,
         "ci": {"replacement": [r - r_width, r + r_width], "interchange": [i - i_width, i + i_width]}}
        for n, (r, i) in enumerate(zip(r_values, i_values))
    ]
    return {"pairs": pairs, "noise_floor": floor}


tables = st.integers(2, 12).flatmap(lambda n: st.tuples(st.lists(distance, min_size=n, max_size=n, unique=True),
                                                          st.lists(distance, min_size=n, max_size=n, unique=True)))


@given(tables)
def test_same_ranking_always_agrees(table):
    r_values, _ = table
    doubled = [2 * v + 1 for v in r_values]  # another scale, same order
    verdicts = pair_verdicts(document(r_values, doubled), Tolerances(rank=0, rank_is_fraction=False))
    assert all(v.passed and v.rank_gap == 0 for v in verdicts)


@given(tables, st.floats(0, 1), st.floats(0, 1), st.booleans())
def test_widening_the_tolerance_never_fails_a_passing_pair(table, narrow, extra, fraction):
    doc = document(*table)
    scale = 1 if fraction else len(table[0])
    tight = pair_verdicts(doc, Tolerances(rank=narrow * scale, rank_is_fraction=fraction))
    loose = pair_verdicts(doc, Tolerances(rank=(narrow + extra) * scale, rank_is_fraction=fraction))
    assert all(b.passed for a, b in zip(tight, loose) if a.passed)


@given(tables)
def test_tolerance_of_all_pairs_passes_everything(table):
    doc = document(*table)
    assert all(v.passed for v in pair_verdicts(doc, Tolerances(rank=len(table[0]), rank_is_fraction=False)))


@given(tables, st.floats(0, 1))
def test_rank_interval_contains_the_point_rank(table, width):
    values = table[0]
    lows, highs = [v - width for v in values], [v + width for v in values]
    ranks = average_ranks(values)
    for n, (low, high) in enumerate(rank_intervals(values, lows, highs, floor=0.0)):
        assert low <= ranks[n] <= high


def spelled_out_verdicts(doc, tolerances):
    """The pair rule written pair by pair, for a document without paired rank intervals (marginal overlap makes
    the ties): the vectorised one must match it. The own-interval pass is gone (docs/decisions.md, issue 15)."""
    pairs, floor = doc["pairs"], doc["noise_floor"]

    def rank_range(key, n):
        values = [p[key] for p in pairs]
        lows, highs = zip(*(p["ci"][key] for p in pairs))
        surely = sum(1 for m in range(len(pairs)) if m != n and highs[m] < lows[n] and values[n] > floor)
        possibly = sum(1 for m in range(len(pairs))
                       if m != n and (lows[m] <= highs[n] or (values[m] <= floor and values[n] <= floor)))
        return surely + 1, possibly + 1

    verdicts = []
    for n, p in enumerate(pairs):
        a, b = rank_range("replacement", n), rank_range("interchange", n)
        gap = max(0, a[0] - b[1], b[0] - a[1])
        if p["replacement"] <= floor and p["interchange"] <= floor:
            verdicts.append(True)
        elif (tolerances.log_ratio is not None and p["replacement"] > 0 and p["interchange"] > 0
              and abs(math.log(p["interchange"] / p["replacement"])) > tolerances.log_ratio):
            verdicts.append(False)
        else:
            verdicts.append(gap <= tolerances.rank_slots(len(pairs)))
    return verdicts


@given(tables, st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0, 1), st.integers(0, 4),
       st.one_of(st.none(), st.floats(0, 2)))
def test_vectorised_rule_matches_the_spelled_out_rule(table, r_width, i_width, floor, rank, log_ratio):
    doc = document(*table, r_width=r_width, i_width=i_width, floor=floor)
    for pair in doc["pairs"]:
        pair["log_ratio"] = math.log(pair["interchange"] / pair["replacement"])
    tolerances = Tolerances(rank=rank, rank_is_fraction=False, log_ratio=log_ratio)
    assert [v.passed for v in pair_verdicts(doc, tolerances)] == spelled_out_verdicts(doc, tolerances)


@given(tables)
def test_overlapping_intervals_everywhere_means_agreement(table):
    doc = document(*table, r_width=10.0, i_width=10.0)
    assert all(v.passed for v in pair_verdicts(doc, Tolerances(rank=0, rank_is_fraction=False)))


@given(tables)
def test_everything_under_the_noise_floor_agrees(table):
    doc = document(*table, floor=10.0)
    assert all(v.passed for v in pair_verdicts(doc, Tolerances(rank=0, rank_is_fraction=False)))


def test_reversed_ranking_fails_with_a_full_message():
    doc = document([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    verdicts = pair_verdicts(doc, Tolerances(rank=1, rank_is_fraction=False))
    assert [v.passed for v in verdicts] == [False, True, True, False]
    message = failure_message(doc["pairs"][0], verdicts[0], 4)
    assert message.startswith("L00-L01: the protocols disagree about how redundant this pair is.")
    for text in ("R = 0.1 nats", "I = 0.4 nats", "95% CI", "rank 1 of 4", "rank 4 of 4", "tolerance 1",
                 "For pruning: replacement ranks this pair as more redundant"):
        assert text in message


def test_log_ratio_tolerance_applies_when_set():
    doc = document([0.1, 0.2], [0.1, 0.2])
    doc["pairs"][0]["log_ratio"] = 2.0
    assert not pair_verdicts(doc, Tolerances(rank=5, rank_is_fraction=False, log_ratio=1.0))[0].passed
    assert pair_verdicts(doc, Tolerances(rank=5, rank_is_fraction=False))[0].passed


@pytest.mark.parametrize("share, n_pairs, ranks", [(0.25, 7, 2), (0.25, 6, 2), (0.25, 5, 1), (0.25, 28, 7),
                                                   (0.1, 4, 0), (0.5, 3, 2)])
def test_a_share_of_the_pairs_is_a_whole_number_of_ranks(share, n_pairs, ranks):
    allowed = Tolerances(rank=share, rank_is_fraction=True).rank_slots(n_pairs)
    assert allowed == ranks and isinstance(allowed, int)
    assert Tolerances(rank=2.5, rank_is_fraction=False).rank_slots(9) == 3  # a count rounds the same way
    doc = document([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.7, 0.2, 0.3, 0.4, 0.5, 0.6, 0.1])
    verdicts = pair_verdicts(doc, Tolerances(rank=0.25, rank_is_fraction=True))
    assert {v.allowed_gap for v in verdicts} == {2} and all(isinstance(v.rank_gap, int) for v in verdicts)
    assert "tolerance 2" in verdicts[0].reason


def test_a_failing_top_k_jaccard_says_what_it_means_for_pruning():
    entry = {"k": 2, "jaccard": 1 / 3, "replacement_layers": [3, 5], "interchange_layers": [4, 5]}
    doc = {"summary": {"topk": [entry]}}
    passed, message = jaccard_passes(doc, 2, Tolerances(min_jaccard=0.5))
    assert not passed
    assert message.startswith("top-2 removal sets: replacement {L03, L05}, interchange {L04, L05}, Jaccard 0.333")
    for text in ("only replacement would remove {L03}, only interchange {L04}", "For pruning:",
                 "--swapkl-prune-k=2", "swapkl_audit.removal_cost"):
        assert text in message
    passed, message = jaccard_passes(doc, 2, Tolerances(min_jaccard=0.33))
    assert passed and "For pruning" not in message
