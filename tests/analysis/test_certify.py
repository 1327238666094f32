"""certify: the rank-range bound adaptive mode (analysis/population.py) settles the Spearman verdict with.

Soundness on synthetic tables with a known truth: whatever part of the order is revealed, a verdict the bound
calls decided is the exact one; with every item full, the exact rho decides.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import certify, stats


def exact_values(rng: np.random.Generator, n: int, ties: bool) -> np.ndarray:
    values = np.exp(rng.uniform(-3, 0, n))
    if ties and n > 2:
        values[1] = values[0]
    return values


def revealed(rng, values: np.ndarray, share_known: float, full: bool) -> certify.Knowledge:
    """A Knowledge that tells only the truth: some of the orders known, the estimates anything near the truth."""
    n = len(values)
    known = rng.random((n, n)) < share_known
    known = known | known.T
    below = (values[None, :] < values[:, None]) & known
    current = values if full else values * rng.uniform(0.8, 1.25, n)
    return certify.Knowledge(current, below, np.full(n, full))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), ties=st.booleans(),
       share_known=st.sampled_from([0.0, 0.5, 0.9, 1.0]), full=st.booleans(),
       min_spearman=st.sampled_from([-0.5, 0.0, 0.5, 0.9]))
def test_a_decided_rank_correlation_verdict_is_the_exact_one(seed, n, ties, share_known, full, min_spearman):
    rng = np.random.default_rng(seed)
    r, i = exact_values(rng, n, ties), exact_values(rng, n, ties)
    r_known, i_known = revealed(rng, r, share_known, full), revealed(rng, i, share_known, full)
    rho = stats.spearman(r, i)
    verdict = certify.rank_correlation_passes(r_known, i_known, min_spearman, rho if full else None)
    if verdict.decided[0]:
        assert verdict.value[0] == (rho is None or rho >= min_spearman)
    if full:
        assert verdict.decided[0]


def test_every_order_known_decides_a_clear_verdict():
    values = np.arange(1.0, 9.0)
    below = values[None, :] < values[:, None]
    known = certify.Knowledge(values, below, np.zeros(8, dtype=bool))
    assert certify.rank_correlation_passes(known, known, 0.9, None).value[0]  # identical orders: rho = 1
    reverse = certify.Knowledge(values[::-1].copy(), below.T.copy(), np.zeros(8, dtype=bool))
    verdict = certify.rank_correlation_passes(known, reverse, 0.0, None)
    assert verdict.decided[0] and not verdict.value[0]  # reversed: rho = -1
