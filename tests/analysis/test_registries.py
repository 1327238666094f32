"""The registries of searches, guides, objectives and pair rules: their names, and one name per entry."""

import dataclasses
import subprocess
import sys

import pytest

from pytest_swapkl.analysis.guides import GUIDES, GuideError, parse_guides
from pytest_swapkl.analysis.objectives import OBJECTIVES, ObjectiveError, objective_kind, parse_objectives
from pytest_swapkl.analysis.pair_rules import PAIR_RULES
from pytest_swapkl.analysis.search import SEARCHES, SearchError, parse_searches
from pytest_swapkl.registry import DuplicateNameError, UnknownNameError


def test_each_registry_holds_the_names_the_cli_spells():
    assert SEARCHES.names() == ["one-shot", "greedy", "beam", "paper-beam", "evolutionary", "exhaustive", "random"]
    assert [s for s in SEARCHES if SEARCHES.get(s).reads_guide] == ["one-shot", "beam", "paper-beam", "evolutionary"]
    assert GUIDES.names() == ["replacement", "interchange", "removal", "block_influence", "angular", "none"]
    assert [g for g in GUIDES if GUIDES.get(g).protocol] == ["replacement", "interchange"]
    assert OBJECTIVES.names() == ["kl", "ppl", "accuracy", "lm-eval:TASK"]
    assert objective_kind("lm-eval:hellaswag") is OBJECTIVES.get("lm-eval:TASK")
    assert PAIR_RULES.names() == ["min-partner", "layer_min", "later", "earlier"]
    for registry in (SEARCHES, GUIDES, OBJECTIVES, PAIR_RULES):
        assert all(entry.summary and "\n" not in entry.summary for entry in registry.entries())


def test_the_parsers_read_the_registries():
    assert parse_searches("Beam, greedy,beam") == ["beam", "greedy"]
    assert parse_guides("none,angular") == ["none", "angular"]
    assert parse_objectives("kl,lm-eval:arc_easy") == ["kl", "lm-eval:arc_easy"]
    with pytest.raises(SearchError, match="use one-shot, greedy, beam, paper-beam, evolutionary, exhaustive, random,"):
        parse_searches("sideways")
    with pytest.raises(GuideError, match="use replacement, interchange, removal, block_influence, angular, none,"):
        parse_guides("vibes")
    with pytest.raises(ObjectiveError, match="use kl, ppl, accuracy or lm-eval:TASK, comma-separated"):
        parse_objectives("bleu")


def test_a_second_entry_under_one_name_is_refused_naming_both_sources():
    kind = SEARCHES.get("beam")
    with pytest.raises(DuplicateNameError, match="search 'beam' is registered twice, by "
                                                 "pytest_swapkl.analysis.search and by my_plugin"):
        SEARCHES.register("beam", dataclasses.replace(kind), "mine", "my_plugin")
    assert SEARCHES.get("beam") is kind
    SEARCHES.register("beam", kind, "the same entry again", "pytest_swapkl.analysis.search")  # idempotent
    assert SEARCHES.entry("beam").summary.startswith("guided beam")


def test_an_unknown_name_names_the_closest_ones():
    with pytest.raises(UnknownNameError) as error:
        PAIR_RULES.get("latter")
    message = str(error.value)
    assert message.startswith("unknown pair rule 'latter': did you mean later?") and "\n" not in message


def test_a_registered_rule_is_a_pair_rule_everywhere():
    """Adding a pair rule is one registered function: the pruning validation reads it by name."""
    from pytest_swapkl.analysis.pruning import pair_rule_set

    PAIR_RULES.register("first-pairs", lambda pairs, distances, k: sorted({j for _, j in pairs[:k]}), "test only",
                        "this test")
    try:
        assert pair_rule_set([(0, 1), (1, 2), (2, 3)], [0.3, 0.2, 0.1], 2, "first-pairs") == [1, 2]
    finally:
        PAIR_RULES.unregister("first-pairs")


def test_reading_the_names_imports_no_numpy_or_torch():
    code = ("import sys; from pytest_swapkl.commands.cli import main; "
            "[main(['list', name]) for name in ('rules', 'guides', 'searches', 'objectives')]; "
            "main(['prune', 'demo', '--search', 'sideways']); "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "[]"
