"""--swapkl-summary, --swapkl-save / --swapkl-compare and `swapkl baselines` in real pytest runs, under xdist
(where the numbers travel from the workers to the controller, which writes junit, the summary and the baseline)."""

import json

import pytest
from junit_cases import case_properties

from pytest_swapkl.commands.cli import main as swapkl_main

SMALL = ["--swapkl-model=demo", "--swapkl-tokens=1024", "--swapkl-seq-len=128", "--swapkl-device=cpu",
         "--swapkl-bootstrap=200"]


def _baseline(pytester, name: str):
    return pytester.path / ".pytest_cache" / "d" / "swapkl" / "baselines" / f"{name}.json"


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_summary_junit_and_baseline_under_xdist_then_a_regression_fails(pytester, capsys):
    first = pytester.runpytest_subprocess(*SMALL, "-n", "2", "--junitxml=audit.xml", "--swapkl-summary=summary.md",
                                          "--swapkl-save=main", "--swapkl-json=audit.json")
    first.assert_outcomes(passed=11)
    first.stdout.fnmatch_lines(["*swapkl notices*", "swapkl: saved this audit as baseline main (*main.json)"])
    document = json.loads((pytester.path / "audit.json").read_text())
    junit = case_properties(pytester.path / "audit.xml")  # xunit2: the suite's properties, from the workers
    assert junit["rank_correlation"]["spearman"] == str(document["summary"]["spearman"])
    assert junit["pair[L03-L04]"]["interchange"] == str(document["pairs"][3]["interchange"])
    text = (pytester.path / "audit.xml").read_text()
    assert text.count("<system-out>swapkl::") == 11

    summary = (pytester.path / "summary.md").read_text()
    assert summary.startswith("## swapkl audit: demo\n\n**Replacement and interchange ")
    assert "11 cases passed, 0 failed" in summary and "| Spearman(R, I) |" in summary
    assert "- k=2: replacement removes {L" in summary

    saved = json.loads(_baseline(pytester, "main").read_text())
    assert saved["schema"] == "swapkl-baseline/1" and saved["audit"] == document
    assert saved["machine"]["node"] and "saved_at" in saved
    assert swapkl_main(["baselines", "--cache-dir", str(pytester.path / ".pytest_cache")]) == 0
    listing = capsys.readouterr().out
    assert "main" in listing and f"{document['summary']['spearman']:.3f}" in listing

    same = pytester.runpytest_subprocess(*SMALL, "--swapkl-compare=main")
    same.assert_outcomes(passed=12)  # the eleven cases and baseline[main]

    saved["audit"]["summary"]["spearman"] = min(1.0, document["summary"]["spearman"] + 0.2)
    _baseline(pytester, "main").write_text(json.dumps(saved))
    worse = pytester.runpytest_subprocess(*SMALL, "--swapkl-compare=main", "--swapkl-summary=second.md")
    worse.assert_outcomes(passed=11, failed=1)
    worse.stdout.fnmatch_lines(["*baseline*main*REGRESSION: Spearman dropped by more than the tolerance 0.05*"])
    assert "- baseline\\[main\\]: failed" in (pytester.path / "second.md").read_text()
    lenient = pytester.runpytest_subprocess(*SMALL, "--swapkl-compare=main", "--swapkl-regression-tolerance=0.5")
    lenient.assert_outcomes(passed=12)


def test_a_missing_or_badly_named_baseline_is_a_one_line_usage_error(pytester):
    missing = pytester.runpytest_subprocess(*SMALL, "--swapkl-compare=nothing-saved")
    assert missing.ret == 4
    missing.stderr.fnmatch_lines(["ERROR: swapkl: no saved baseline 'nothing-saved' in *--swapkl-save nothing-saved*"])
    bad = pytester.runpytest_subprocess(*SMALL, "--swapkl-save=../escape")
    assert bad.ret == 4 and "Traceback" not in bad.stderr.str()
    bad.stderr.fnmatch_lines(["ERROR: swapkl: --swapkl-save (ini swapkl_save) must be 1-64 letters*"])
