"""The bootstrap by document: whole documents per resample, the i.i.d. draws unchanged without groups."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl.analysis import stats


def test_without_groups_the_draws_are_the_iid_ones():
    expected = np.random.default_rng(3).integers(0, 10, size=(50, 10))
    assert np.array_equal(stats.bootstrap_indices(10, 50, 3), expected)


@given(st.lists(st.integers(1, 6), min_size=1, max_size=8), st.integers(1, 30), st.integers(0, 2 ** 16))
def test_every_resample_is_whole_documents_but_the_last(sizes, n_resamples, seed):
    groups = np.repeat(np.arange(len(sizes)) * 7 + 3, sizes)  # any labels, in blocks
    rng = np.random.default_rng(seed)
    groups = groups[rng.permutation(len(groups))]  # and in any order
    n = len(groups)
    indices = stats.bootstrap_indices(n, n_resamples, seed, groups=groups)
    assert indices.shape == (n_resamples, n) and indices.min() >= 0 and indices.max() < n
    members = {g: np.flatnonzero(groups == g) for g in set(groups.tolist())}
    for row in indices:
        # Read the row as drawn documents: each one all its sequences, the last one a first part of them.
        position = 0
        while position < n:
            document = members[groups[row[position]]]
            taken = row[position:position + len(document)]
            assert np.array_equal(taken, document[:len(taken)])
            position += len(taken)


def test_singleton_documents_give_an_iid_bootstrap():
    indices = stats.bootstrap_indices(200, 400, 0, groups=np.arange(200))
    counts = np.bincount(indices.reshape(-1), minlength=200)
    assert counts.min() > 250 and counts.max() < 550  # 400 draws each on average


def test_document_resamples_spread_more_when_documents_differ():
    groups = np.repeat(np.arange(8), 8)
    values = np.repeat(np.arange(8.0), 8) + np.random.default_rng(0).normal(0, 0.1, 64)
    iid = stats.bootstrap_means(values, stats.bootstrap_indices(64, 2000, 1))
    by_document = stats.bootstrap_means(values, stats.bootstrap_indices(64, 2000, 1, groups=groups))
    assert by_document.std() > 2 * iid.std()  # 8 independent documents, not 64 independent sequences


def test_groups_must_name_every_sequence():
    with pytest.raises(ValueError, match="groups names the document of 3 sequences, not 4"):
        stats.bootstrap_indices(4, 10, 0, groups=[0, 0, 1])
