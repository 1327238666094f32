"""Holm and Benjamini-Hochberg against hand-computed tables, and the properties every adjustment keeps."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import multiplicity, paired


def test_holm_by_hand():
    # sorted: 0.01 * 4 = 0.04, 0.02 * 3 = 0.06, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> running max 0.06
    assert multiplicity.adjust([0.03, 0.01, 0.04, 0.02], "holm") == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert multiplicity.adjust([0.5, 0.6], "holm") == [1.0, 1.0]  # capped at 1


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.2: * 4/1, 4/2, 4/3, 4/4 = 0.04, 0.04, 0.04, 0.2; running min from the top
    assert multiplicity.adjust([0.03, 0.01, 0.2, 0.02], "bh") == pytest.approx([0.04, 0.04, 0.2, 0.04])
    assert multiplicity.adjust([0.04, 0.01], "bh") == pytest.approx([0.04, 0.02])


def test_none_and_missing_values():
    assert multiplicity.adjust([0.2, None, 0.01], "none") == [0.2, None, 0.01]
    assert multiplicity.adjust([0.2, None, 0.01], "holm") == pytest.approx([0.2, None, 0.02])  # a family of 2
    with pytest.raises(ValueError, match="holm, bh, none"):
        multiplicity.adjust([0.1], "bonferroni")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_adjusted_p_values_keep_their_order_and_never_shrink(raw):
    holm, bh = multiplicity.adjust(raw, "holm"), multiplicity.adjust(raw, "bh")
    for adjusted in (holm, bh):
        assert all(p <= a <= 1.0 for p, a in zip(raw, adjusted))
        pairs = sorted(zip(raw, adjusted))
        assert all(a1 <= a2 for (_, a1), (_, a2) in zip(pairs, pairs[1:]))  # monotone in the raw p-value
    assert all(h >= b - 1e-12 for h, b in zip(holm, bh))  # Holm controls more, so it adjusts at least as much


def test_adjusted_verdicts_read_the_adjusted_p_values():
    def comparison(p, p_equivalent, verdict):
        return paired.CostComparison(1.0, 1.0, 1.0, 0.9, 1.1, verdict, p, p_equivalent)

    table = [comparison(0.001, 0.5, "A cheaper"), comparison(0.02, 0.5, "B cheaper"),
             comparison(0.5, 0.01, "equivalent"), comparison(0.5, 0.04, "equivalent")]
    holm = paired.adjusted_table(table, "holm")
    # p: 0.001 * 4 = 0.004 (kept), 0.02 * 3 = 0.06 (lost); TOST: 0.01 * 4 = 0.04, max(0.04, 0.04 * 3) = 0.12
    assert [c.verdict_adjusted for c in holm] == ["A cheaper", "undecided", "equivalent", "undecided"]
    assert [c.verdict_adjusted for c in paired.adjusted_table(table, "none")] == [c.verdict for c in table]
