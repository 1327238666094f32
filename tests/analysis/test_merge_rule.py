"""The merge case's rule: averaging(i,j) against removing the cheaper layer, paired over sequences."""

import numpy as np

from pytest_swapkl.analysis.merge_rule import RULE, cheaper_layer, merge_comparison, merge_passes
from pytest_swapkl.analysis.stats import bootstrap_indices


def _pair(averaging, removal, layer=4):
    indices = bootstrap_indices(len(averaging), 400, 0)
    return {"i": 3, "j": 4, "averaging": float(np.mean(averaging)),
            "merge_vs_removal": merge_comparison(np.asarray(averaging), np.asarray(removal), layer, indices)}


def test_a_merge_that_costs_more_than_the_removal_fails_with_the_rule_and_numbers():
    rng = np.random.default_rng(0)
    removal = rng.uniform(0.1, 0.2, 40)
    passed, message = merge_passes(_pair(removal * 3, removal))
    assert passed is False and RULE in message and "remove L04 instead of merging the pair" in message
    assert "averaging(3,4) KL" in message and "ratio 3 [" in message


def test_a_merge_no_costlier_than_the_removal_passes():
    rng = np.random.default_rng(1)
    removal = rng.uniform(0.1, 0.2, 40)
    assert merge_passes(_pair(removal, removal))[0] is True  # indistinguishable: no evidence against merging
    assert merge_passes(_pair(removal / 2, removal))[0] is True
    assert merge_passes({"i": 3, "j": 4, "averaging": 0.1}) == (
        None, "merge L03-L04: no averaging and removal KLs on the same sequences to compare")


def test_the_cheaper_layer_is_the_smaller_removal_first_on_a_tie():
    assert cheaper_layer({3: 0.2, 4: 0.1}, 3, 4) == 4 and cheaper_layer({3: 0.1, 4: 0.1}, 3, 4) == 3
