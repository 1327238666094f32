"""User budgets on a search: the requirement's logic and its message with the held-out intervals."""

import pytest
from tiny_models import random_ids, tiny_model

from pytest_swapkl.analysis.budgets import prune_outcome

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def outcome(one_thread):
    model = tiny_model("gpt_neox", n_layers=6, seed=3)
    return prune_outcome(model, 6, random_ids(8, 16, seed=1), random_ids(8, 16, seed=2), None,
                         guide="interchange", search="beam", objective="ppl", max_cost="30%", beam_width=2)


def test_the_search_stays_within_the_ceiling_and_the_message_has_intervals(outcome):
    assert outcome.calibration_cost <= outcome.ceiling
    text = outcome.describe()
    assert f"interchange-guided beam removed {outcome.k} layer" in text and "within ppl 30%" in text
    if outcome.k:
        assert outcome.heldout["low"] <= outcome.heldout["cost"] <= outcome.heldout["high"]
        assert "[95% " in text and "[paired 95% " in text
    outcome.require(min_layers=outcome.k)
    with pytest.raises(AssertionError, match=f"asked for at least {outcome.k + 1} layers"):
        outcome.require(min_layers=outcome.k + 1)


def test_a_held_out_cost_above_its_ceiling_fails_even_with_enough_layers(outcome):
    if not outcome.k:
        pytest.skip("nothing removed within 30% on this tiny model")
    tight = type(outcome)(**{**outcome.__dict__, "heldout_ceiling": outcome.heldout["cost"] * 0.99})
    with pytest.raises(AssertionError, match="held-out ppl .* is above its ceiling"):
        tight.require(min_layers=1)
    loose = type(outcome)(**{**outcome.__dict__, "heldout_ceiling": outcome.heldout["high"] * 0.999 + 1e-12})
    loose.require(min_layers=1)  # the point estimate is within
    if outcome.heldout["high"] > loose.heldout_ceiling:
        with pytest.raises(AssertionError, match=r"\(upper 95%\)"):
            loose.require(min_layers=1, strict=True)
