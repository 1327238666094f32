"""User budgets on a pruning search through the swapkl_audit fixture, in a real pytest run on the demo model."""

import json

import pytest

TESTS = '''
def test_beam_removes_two_within_ten_percent(swapkl_audit):
    outcome = swapkl_audit.prune(guide="interchange", search="beam", objective="ppl", max_cost="10%")
    outcome.require(min_layers=2)
    print("OUTCOME", outcome.describe())


def test_beam_removes_six_within_ten_percent(swapkl_audit):
    swapkl_audit.prune(guide="interchange", search="beam", objective="ppl", max_cost="10%").require(min_layers=6)
'''



@pytest.mark.slow  # a fresh pytest process runs the audit and two searches
def test_budget_passes_and_fails_with_intervals(pytester):
    pytester.makepyfile(test_budgets=TESTS)
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-tokens=1024", "--swapkl-seq-len=64",
                                           "--swapkl-device=cpu", "-s", "-p", "no:cacheprovider",
                                           "-k", "removes")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*OUTCOME interchange-guided beam removed * layers {L*} within ppl 10% (ceiling B = *",
        "*AssertionError: interchange-guided beam removed * layers*held-out ppl * ?95% *, *?, full model *"
        "ratio to the full model * ?paired 95% *, *?: asked for at least 6 layers*",
    ])


# --- budgets the plugin generates from --swapkl-prune-budget -------------------------------------------------

SMALL = ["--swapkl-tokens=1024", "--swapkl-seq-len=64", "--swapkl-device=cpu"]
PASSES = "interchange:beam:ppl:10%:1"  # on the demo model the search keeps 2 layers out within 10%
FAILS = "interchange:beam:ppl:10%:7"  # 7 of its 8 layers: far beyond +10% perplexity

FIXTURE_TWIN = '''
def test_fixture_twin(swapkl_audit):
    print("TWIN", swapkl_audit.prune(guide="interchange", search="beam", objective="ppl", max_cost="10%").describe())
'''


@pytest.mark.slow  # a fresh pytest process runs the audit and the budget's search, then a second reads the cache
def test_budget_cases_pass_and_fail_as_the_fixture_does_and_are_cached(pytester):
    from junit_cases import case_properties

    from pytest_swapkl.audit.results import document_problem

    pytester.makepyfile(test_twin=FIXTURE_TWIN)
    argv = ["--swapkl-model=demo", *SMALL, f"--swapkl-prune-budget={PASSES}", f"--swapkl-prune-budget={FAILS}",
            "--swapkl-json=audit.json", "--junitxml=budgets.xml", "-s", "-k", "prune_budget or twin"]
    result = pytester.runpytest_subprocess(*argv)
    result.assert_outcomes(passed=2, failed=1)
    failure = ("*interchange-guided beam removed * layers {L*} within ppl 10% (ceiling B = *; held-out ppl * ?95% *, "
               "*?, full model *, ratio to the full model * ?paired 95% *, *?: asked for at least 7 layers*")
    result.stdout.fnmatch_lines(["*FAILED swapkl::prune_budget?interchange-beam-ppl-10%-7? - *"])  # ?: [ ]
    result.stdout.fnmatch_lines([failure])
    # The generated case runs the fixture's search: the same set and the same numbers, to the last digit shown.
    twin = next(line for line in result.stdout.lines if "TWIN " in line).split("TWIN ", 1)[1]
    junit = case_properties(pytester.path / "budgets.xml")
    passed = junit["prune_budget[interchange-beam-ppl-10%-1]"]
    failed = junit["prune_budget[interchange-beam-ppl-10%-7]"]
    system_out = (pytester.path / "budgets.xml").read_text()
    assert f"swapkl::prune_budget[interchange-beam-ppl-10%-1] passed: {twin}" in system_out
    for properties in (passed, failed):
        assert float(properties["heldout_cost_ci_low"]) <= float(properties["heldout_cost"]) \
            <= float(properties["heldout_cost_ci_high"])
        assert float(properties["ratio_to_full_ci_low"]) <= float(properties["ratio_to_full"]) \
            <= float(properties["ratio_to_full_ci_high"])
        assert float(properties["calibration_cost"]) <= float(properties["ceiling"])
        assert properties["asserts_on"] == "estimate" and properties["heldout_source"]
    assert passed["min_layers"] == "1" and failed["min_layers"] == "7" and passed["layers"] == failed["layers"]
    assert int(passed["k"]) >= 1 and float(passed["heldout_cost"]) <= float(passed["heldout_ceiling"])
    # The JSON artifact holds every budget's search and verdict next to the other results.
    document = json.loads((pytester.path / "audit.json").read_text())
    assert [(r["spec"], r["passed"]) for r in document["prune_budgets"]] == [(PASSES, True), (FAILS, False)]
    assert document["prune_budgets"][1]["problems"] == ["asked for at least 7 layers"]
    assert str(document["prune_budgets"][0]["outcome"]["heldout"]["cost"]) == passed["heldout_cost"]
    assert document_problem(document) is None
    broken = json.loads(json.dumps(document))
    broken["prune_budgets"][1]["outcome"]["layers"] = ["L04"]
    assert document_problem(broken) == "prune_budgets[1].outcome.layers is not layers"
    # The cases come from the document: an audit JSON read back generates and judges them alike.
    given = pytester.runpytest_subprocess("--swapkl-audit-json=audit.json", "-p", "no:cacheprovider", "-k",
                                          "prune_budget")
    given.assert_outcomes(passed=1, failed=1)
    # A second run takes the searches from the audit cache and judges them alike.
    again = pytester.runpytest_subprocess(*argv[:-4], "--junitxml=again.xml", "-k", "prune_budget")
    again.assert_outcomes(passed=1, failed=1)
    again.stdout.fnmatch_lines(["*cache hit in*"])
    cached = case_properties(pytester.path / "again.xml")["prune_budget[interchange-beam-ppl-10%-1]"]
    assert cached == passed


def test_collect_only_lists_the_budget_cases_by_name(pytester):
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--collect-only", "-q", "-p", "no:cacheprovider",
                                           f"--swapkl-prune-budget={PASSES}",
                                           "--swapkl-prune-budget=none:greedy:kl:0.2:2")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["swapkl::prune_budget[interchange-beam-ppl-10%-1]",
                                 "swapkl::prune_budget[greedy-kl-0.2-2]"])


def test_budgets_come_from_ini_lines_too(pytester):
    pytester.makeini(f"[pytest]\nswapkl_prune_budget =\n    {PASSES}\n    -:greedy:kl:0.2:2:strict\n")
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["swapkl::prune_budget[interchange-beam-ppl-10%-1]",
                                 "swapkl::prune_budget[greedy-kl-0.2-2-strict]"])


@pytest.mark.parametrize("argv, ini, message", [
    (["--swapkl-prune-budget=interchange:beam:ppl:ten:4"], "",
     "ERROR: swapkl: --swapkl-prune-budget (ini swapkl_prune_budget) budget 'interchange:beam:ppl:ten:4': max cost "
     "'ten' is not a finite number >= 0 (a cost) or a percentage (10%); write "
     "GUIDE:SEARCH:OBJECTIVE:MAX_COST:MIN_LAYERS?:strict?, e.g. interchange:beam:ppl:10%:4"),
    ([], "swapkl_prune_budget = interchange:greedy:ppl:10%:4\n",
     "*budget 'interchange:greedy:ppl:10%:4': search greedy reads no guide, so the guide field must be -, not "
     "'interchange'; write GUIDE*"),
    (["--swapkl-prune-budget=interchange:beam:ppl:10%:8"], "",
     "ERROR: swapkl: --swapkl-prune-budget interchange:beam:ppl:10%:8: demo has 8 layers and one must stay, so at "
     "most 7 can be removed: ask for fewer"),
])
def test_a_bad_budget_is_a_one_line_usage_error(pytester, argv, ini, message):
    pytester.makeini("[pytest]\n" + ini)
    result = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL, "-p", "no:cacheprovider", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
