"""The complete audit: every pair on the default 8192 calibration tokens, and removals measured for real.

Minutes on a CPU, so it is marked slow and this folder's pytest.ini leaves it out (addopts = -m "not slow");
`pytest -m slow` runs it alone.
"""

import pytest

COMPLETE = pytest.mark.swapkl(pairs="all", tokens=8192, seq_len=256)


@pytest.mark.slow
@COMPLETE
def test_protocols_rank_every_pair_alike(swapkl_audit):
    assert len(swapkl_audit.pairs) == swapkl_audit.n_layers * (swapkl_audit.n_layers - 1) // 2
    assert swapkl_audit.spearman >= 0.8, f"Spearman(R, I) = {swapkl_audit.spearman:.3f} over every pair"


@pytest.mark.slow
@COMPLETE
def test_both_protocols_choices_cost_about_the_same(swapkl_audit):
    # The two layers each protocol would remove, removed for real: neither choice costs twice the other.
    costs = {protocol: swapkl_audit.removal_cost(swapkl_audit.removal_set(protocol, k=2))
             for protocol in ("replacement", "interchange")}
    low, high = sorted(cost.kl for cost in costs.values())
    assert high <= 2 * low, {protocol: (cost.layers, round(cost.kl, 4)) for protocol, cost in costs.items()}
