"""'These layers must be removable at under X% perplexity cost', measured by really removing them."""

import pytest

MAX_PPL_INCREASE = 0.10  # +10%


def test_interchange_choice_is_cheap(swapkl_audit):
    layers = swapkl_audit.removal_set("interchange", k=1)
    cost = swapkl_audit.removal_cost(layers)
    assert cost.ppl_increase < MAX_PPL_INCREASE, (
        f"removing {layers} costs {100 * cost.ppl_increase:.1f}% perplexity ({cost.base_ppl:.2f} -> {cost.ppl:.2f})")


@pytest.mark.parametrize("layers", [[4, 5]])
def test_layers_4_and_5_removable(swapkl_audit, layers):
    cost = swapkl_audit.removal_cost(layers)
    assert cost.ppl_increase < 0.25, f"removing {layers}: +{100 * cost.ppl_increase:.1f}% perplexity"


def test_first_layer_is_not_removable(swapkl_audit):
    assert swapkl_audit.removal_cost([0]).ppl_increase > 1.0
