"""User budgets on a search: the requirement's logic and its message with the held-out intervals."""

import json
import subprocess
import sys

import pytest
from tiny_models import random_ids, tiny_model

from pytest_swapkl import cases
from pytest_swapkl.analysis.budgets import (
    BUDGET_GRAMMAR,
    BudgetError,
    outcome_from_record,
    outcome_record,
    parse_budget,
    prune_outcome,
)

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


# --- --swapkl-prune-budget: the grammar and the record the audit JSON keeps ----------------------------------


@pytest.mark.parametrize("text, written, label", [
    ("interchange:beam:ppl:10%:4", "interchange:beam:ppl:10%:4", "interchange-beam-ppl-10%-4"),
    (" Replacement : BEAM : PPL : 10 % : 2 : Strict ", "replacement:beam:ppl:10%:2:strict",
     "replacement-beam-ppl-10%-2-strict"),
    ("none:greedy:kl:0.2:1", "-:greedy:kl:0.2:1", "greedy-kl-0.2-1"),
    ("-:exhaustive:accuracy:5%:3", "-:exhaustive:accuracy:5%:3", "exhaustive-accuracy-5%-3"),
    ("none:beam:kl:1e-3:2", "none:beam:kl:1e-3:2", "none-beam-kl-1e-3-2"),  # the beam over every remaining layer
])
def test_budgets_parse_and_write_themselves_back(text, written, label):
    spec = parse_budget(text)
    assert str(spec) == written and spec.label == label and parse_budget(str(spec)) == spec
    assert cases.parse_case(cases.prune_budget_case(spec.label)) == cases.CaseName("prune_budget", budget=label)


@pytest.mark.parametrize("text, problem", [
    ("interchange:beam:ppl:10%", "it has 4 fields, not 5"),
    ("interchange:beam:ppl:10%:4:lax", "its sixth field 'lax' is not strict"),
    ("swap:beam:ppl:10%:4", "guide 'swap' is not one of replacement, interchange"),
    ("interchange:sleb:ppl:10%:4", "search 'sleb' is not one of one-shot, greedy"),
    ("interchange:greedy:ppl:10%:4", "search greedy reads no guide, so the guide field must be -, not 'interchange'"),
    ("interchange:beam:loss:10%:4", "objective 'loss' is not one of kl, ppl, accuracy"),
    ("interchange:beam:ppl:-1:4", "max cost '-1' is not a finite number >= 0"),
    ("interchange:beam:ppl:nan%:4", "max cost 'nan%' is not"),
    ("interchange:beam:ppl:10%:0", "min layers '0' is not a whole number >= 1"),
    ("interchange:beam:ppl:10%:2.5", "min layers '2.5' is not"),
])
def test_a_bad_budget_names_the_field_and_the_grammar_in_one_line(text, problem):
    with pytest.raises(BudgetError) as error:
        parse_budget(text)
    message = str(error.value)
    assert message.startswith(f"budget {text!r}: {problem}") and "\n" not in message
    assert message.endswith(f"; write {BUDGET_GRAMMAR}")


def test_the_grammar_reads_the_registries_and_parsing_imports_no_numpy_or_torch():
    """The names come from where the searches, guides and objectives are registered; the option parser reads
    them when pytest starts, so parsing a budget must stay cheap."""
    code = ("import sys; from pytest_swapkl.analysis.budgets import parse_budget; "
            "assert str(parse_budget('Interchange:beam:ppl:10%:4')) == 'interchange:beam:ppl:10%:4'; "
            "assert parse_budget('-:random:kl:1:1').label == 'random-kl-1-1'; "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(BudgetError, match="objective 'lm-eval' is not one of kl, ppl, accuracy;"):
        parse_budget("interchange:beam:lm-eval:10%:4")


def test_the_record_gives_back_the_outcome_and_its_verdict(outcome):
    from pytest_swapkl.audit.results import json_ready

    for min_layers in (max(outcome.k, 1), outcome.k + 1):
        spec = parse_budget(f"interchange:beam:ppl:30%:{min_layers}")
        record = json.loads(json.dumps(json_ready(outcome_record(spec, outcome))))  # through the JSON artifact
        back = outcome_from_record(record)
        assert back == outcome and back.describe() == outcome.describe()
        assert record["passed"] == (not outcome.failures(min_layers)) and record["problems"] == \
            outcome.failures(min_layers)
    assert record["passed"] is False and record["problems"][0] == f"asked for at least {outcome.k + 1} layers"
