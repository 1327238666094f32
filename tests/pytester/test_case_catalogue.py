"""The case catalogue round trip: every kind of generated case is written by a real pytest run into junit
XML, read back by `swapkl report`'s reader, and gives the numbers of the audit JSON of the same run."""

import json

import pytest

from pytest_swapkl import cases
from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.analysis.paired import B_SMALLER, VERDICTS
from pytest_swapkl.report.audit_json import read_document
from pytest_swapkl.report.junit import read_junit

SMALL = ["--swapkl-tokens=1024", "--swapkl-seq-len=128", "--swapkl-device=cpu"]


@pytest.mark.parametrize("name", ["audit", "rank_correlation", "pair[L03-L04]", "topk_jaccard[k=2]",
                                  "prune[interchange-k2]", "prune[removal-k1]", "prune_gap[k3]", "baseline[main-1.0]",
                                  "prune_budget[interchange-beam-ppl-10%-4]", "prune_budget[greedy-kl-1e-3-2-strict]",
                                  "merge[L02-L03]"])
def test_every_name_parses_back_to_itself(name):
    assert str(cases.parse_case(name)) == name


def test_unknown_names_and_keys_are_not_parsed():
    assert cases.parse_case("pair[L3-4]") is None and cases.parse_case("test_something") is None
    assert cases.parse_removal_key("removal_L05_kl") == 5 and cases.parse_removal_key("removal_kl") is None
    assert cases.parse_topk_key(cases.topk_keys(3)["jaccard"]) == 3


def test_one_spelling_of_layers_and_whole_ranks():
    assert cases.layer_label(5) == "L05" and cases.pair_label(5, 6) == "L05-L06"
    assert cases.layer_set_label([5, 3]) == "{L03, L05}" and cases.layer_set_label([]) == "{}"
    assert cases.layer_set_label(None) == "n/a"
    assert cases.whole(3.0) == 3 and isinstance(cases.whole(3.0), int) and cases.whole(2.5) == 2.5


def test_planned_cases_follow_the_settings_in_the_plugin_order():
    assert cases.planned_cases([(0, 1), (1, 2)], (2,)) == ["audit", "pair[L00-L01]", "pair[L01-L02]",
                                                          "rank_correlation", "topk_jaccard[k=2]"]
    planned = cases.planned_cases([(0, 1)], (1, 3), range(1, 3), ("removal", "interchange", "replacement"))
    assert planned[-4:] == ["prune[removal-k2]", "prune[interchange-k2]", "prune[replacement-k2]", "prune_gap[k2]"]
    assert "prune_gap[k1]" in planned and all(cases.parse_case(name) for name in planned)
    assert "prune_gap[k1]" not in cases.planned_cases([(0, 1)], (2,), (1,), ("removal", "interchange"))
    with_budget = cases.planned_cases([(0, 1)], (2,), (1,), ("interchange",), baseline="main",
                                      budget_labels=["interchange-beam-ppl-10%-4"])
    assert with_budget[-2:] == ["prune_budget[interchange-beam-ppl-10%-4]", "baseline[main]"]


def test_every_case_kind_round_trips_through_junit(pytester):
    result = pytester.runpytest_subprocess(
        "--swapkl-model=demo", "--swapkl-pairs=0-1,2-3,2-5", "--swapkl-prune-k=2", "--swapkl-jaccard-k=1,2",
        "--swapkl-rank-tolerance=3", "--junitxml=audit.xml", "--swapkl-json=audit.json", "--swapkl-averaging",
        "--swapkl-heads=2-3:0+2", "--swapkl-summary=summary.md", *SMALL)
    document = json.loads((pytester.path / "audit.json").read_text())
    audit = read_junit(pytester.path / "audit.xml")
    kinds = {cases.parse_case(case.name).kind for case in audit.cases}
    assert kinds == {"audit", "pair", "rank_correlation", "topk_jaccard", "prune", "prune_gap", "merge"}, \
        result.stdout.str()
    assert [(m.i, m.j) for m in audit.merges] == [(p["i"], p["j"]) for p in document["pairs"]]
    for read, written in zip(audit.merges, document["pairs"]):
        merge = written["merge_vs_removal"]
        assert (read.averaging, read.removed_layer, read.removal_kl, read.cost_ratio, read.paired_verdict) == \
            (written["averaging"], merge["removed_layer"], merge["b"], merge["ratio"], merge["verdict"])
        assert read.cost_ratio_ci == (merge["ratio_low"], merge["ratio_high"])
        assert list(read.averaging_ci) == written["averaging_ci"]
        assert read.outcome == ("failed" if merge["verdict"] == VERDICTS[B_SMALLER] else "passed")
    from_json = read_document(document, Tolerances(), "audit.json")  # the merge rule takes no tolerance
    assert from_json.merges == audit.merges
    assert from_json.averaging == audit.averaging
    printed = result.stdout.str()
    assert "KL of head(i<-j, h)" in printed and "averaging (both slots run the mean" in printed
    summary = (pytester.path / "summary.md").read_text()
    assert "### Heads" in summary and "| head | 2\\<-3 |" in summary and "### Averaging against removal" in summary

    assert audit.model == document["model"]["name"] and audit.data_sha256 == document["data"]["sha256"]
    assert audit.base_ppl == document["base"]["ppl"] and audit.noise_floor == document["noise_floor"]
    assert [(r.layer, r.kl) for r in audit.removals] == [(r["layer"], r["kl"]) for r in document["removal"]]
    assert len(audit.pairs) == len(document["pairs"]) == 3
    for read, written in zip(audit.pairs, document["pairs"]):
        for key in cases.PAIR_KEYS:
            assert getattr(read, key) == written[key], key
        assert {name: tuple(bounds) for name, bounds in read.ci.items()} == \
            {name: tuple(bounds) for name, bounds in written["ci"].items()}
    assert audit.spearman == document["summary"]["spearman"] and audit.kendall == document["summary"]["kendall"]
    for read in audit.topk:
        written = next(t for t in document["summary"]["topk"] if t["k"] == read.k)
        assert (read.jaccard, read.replacement_layers, read.interchange_layers) == \
            (written["jaccard"], written["replacement_layers"], written["interchange_layers"])
    for budget in document["pruning"]["budgets"]:
        for method in document["pruning"]["methods"]:
            properties = audit.case(cases.prune_case(method, budget["k"])).properties
            assert properties["kl"] == budget["kl"][method] and properties["layers"] == budget["sets"][method]
            assert properties["heldout_kl"] == budget["heldout_kl"][method]
            read = next(c for c in audit.prune_costs if (c.method, c.k) == (method, budget["k"]))
            assert (read.heldout_kl, read.heldout_ppl) == (budget["heldout_kl"][method], budget["heldout_ppl"][method])
            assert list(read.heldout_kl_ci) == budget["heldout_kl_ci"][method]
        gap = audit.case(cases.prune_gap_case(budget["k"])).properties
        assert gap["replacement_kl"] == budget["kl"]["replacement"]
        comparison = budget["comparisons"]["replacement|interchange"]
        assert gap["replacement_heldout_kl"] == comparison["a"] and gap["cost_ratio"] == comparison["ratio"]
        read_gap = next(g for g in audit.prune_gaps if g.k == budget["k"])
        assert read_gap.cost_ratio_ci == (comparison["ratio_low"], comparison["ratio_high"])
    assert audit.heldout_sha256 == document["heldout"]["sha256"]


def test_merge_cases_are_planned_with_averaging_and_heads_out_of_range_stop_the_plugin(pytester):
    assert cases.planned_cases([(0, 1), (2, 3)], (1,), merge_pairs=[(0, 1), (2, 3)])[-2:] == [
        "merge[L00-L01]", "merge[L02-L03]"]
    listed = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-pairs=2-3", "--swapkl-averaging",
                                           "--collect-only", "-q", *SMALL)
    assert "swapkl::merge[L02-L03]" in listed.stdout.str()
    bad = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-heads=2-3:0+4", *SMALL)
    assert bad.ret == 4 and "Traceback" not in bad.stderr.str()
    assert "--heads 2-3:0+4: head 4 is out of range, layer 2 has 4 attention heads (0..3)" in bad.stderr.str()
