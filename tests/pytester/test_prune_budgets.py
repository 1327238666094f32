"""User budgets on a pruning search through the swapkl_audit fixture, in a real pytest run on the demo model."""

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
