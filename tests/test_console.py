"""Numbers and ranks as every table writes them."""

import pytest

from pytest_swapkl.console import number, rank


@pytest.mark.parametrize("value, digits, text", [
    (1.5436, 3, "1.54"), (1.8, 3, "1.80"), (0.2, 3, "0.200"), (0.0523, 3, "0.0523"), (15.34, 3, "15.3"),
    (153.2, 3, "153"), (1532.7, 3, "1533"), (0.09999, 3, "0.100"), (9.9996, 4, "10.00"), (-0.18, 3, "-0.180"),
    (0.0, 3, "0"), (None, 3, "n/a"), (float("nan"), 3, "n/a"), (0.07042, 4, "0.07042"),
])
def test_decimals_follow_the_magnitude_and_trailing_zeros_stay(value, digits, text):
    assert number(value, digits) == text


def test_ranks_are_whole_unless_a_tie_was_averaged():
    assert [rank(3.0), rank(3), rank(2.5), rank(None)] == ["3", "3", "2.5", "n/a"]


def test_an_interval_always_reads_as_one():
    """Issue 37: '0.9286 [0.929, 0.929]' looked like a point; the ends now read apart, or say why they cannot."""
    from pytest_swapkl.console import interval

    assert interval(0.9286, 0.92861, 0.92866) == "0.9286 [0.9286, 0.9287]"
    assert interval(0.5, 0.33, 0.67) == "0.500 [0.330, 0.670]"
    assert interval(1.0, 1.0, 1.0) == "1.00 [same in every resample]"
    assert interval(0.5, None, 0.7) == "0.500"
