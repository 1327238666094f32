"""Custom thresholds on the audit: your own rules, next to the generated ones."""


def test_protocols_rank_pairs_alike(swapkl_audit):
    assert swapkl_audit.spearman >= 0.8, f"Spearman(R, I) = {swapkl_audit.spearman:.3f}"


def test_middle_layers_are_more_redundant_than_the_first(swapkl_audit):
    # Layer 0 builds the residual stream from the embeddings: nothing should stand in for it.
    first = swapkl_audit.distance(0, 1, "interchange")
    middle = min(swapkl_audit.distance(i, i + 1, "interchange") for i in range(2, swapkl_audit.n_layers - 2))
    assert middle < first / 10


def test_every_adjacent_swap_interval_is_tight(swapkl_audit):
    for i in range(swapkl_audit.n_layers - 1):
        low, high = swapkl_audit.interval(i, i + 1, "interchange")
        assert high - low < 0.5 * swapkl_audit.distance(i, i + 1, "interchange") + 1e-3
