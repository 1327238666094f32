"""End-to-end runs of the plugin in a fresh pytest process, on the bundled demo model."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from junit_cases import case_properties

from pytest_swapkl.audit.results import document_problem
from pytest_swapkl.commands.cli import main as swapkl_main

SMALL = ["--swapkl-tokens=1024", "--swapkl-seq-len=128", "--swapkl-device=cpu"]
EXAMPLES = Path(__file__).parents[2] / "examples"


def cases(junit: Path) -> dict[str, dict[str, str]]:
    """name -> properties of every generated test case in a junit file (xunit1 or xunit2)."""
    return case_properties(junit)


def test_empty_directory_generates_cases_equal_to_swapkl_audit(pytester, tmp_path, capsys):
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--junitxml=audit.xml", *SMALL)
    result.assert_outcomes(passed=7 + 4)  # 7 adjacent pairs, audit, rank correlation, two Jaccard budgets
    result.stdout.fnmatch_lines(["*swapkl audit*", "*most divergent pairs*", "*Spearman(R, I)*"])
    junit = cases(pytester.path / "audit.xml")
    assert [name for name in junit if name.startswith("pair[")] == [f"pair[L{i:02d}-L{i + 1:02d}]" for i in range(7)]
    for name, properties in junit.items():  # ranks as whole numbers: 3, not 3.0
        for key in ("rank_replacement", "rank_interchange", "rank_gap", "rank_tolerance"):
            assert key not in properties or not properties[key].endswith(".0"), (name, key, properties[key])
    assert swapkl_main(["audit", "demo", "--tokens", "1024", "--seq-len", "128", "--device", "cpu",
                        "--json", str(tmp_path / "cli.json")]) == 0
    capsys.readouterr()
    cli = json.loads((tmp_path / "cli.json").read_text())
    for pair in cli["pairs"]:
        properties = junit[f"pair[L{pair['i']:02d}-L{pair['j']:02d}]"]
        for key in ("replacement_ij", "replacement_ji", "interchange", "replacement", "rank_replacement"):
            assert properties[key] == str(pair[key]), key
    assert junit["rank_correlation"]["spearman"] == str(cli["summary"]["spearman"])
    assert junit["audit"]["data_sha256"] == cli["data"]["sha256"]


def test_tolerance_decides(pytester):
    strict = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-pairs=all",
                                           "--swapkl-rank-tolerance=1", *SMALL)
    assert strict.ret == 1
    strict.stdout.fnmatch_lines([
        "*the protocols disagree about how redundant this pair is*",
        "*replacement R = * nats ?95% CI *, rank * of 28",  # '?': fnmatch reads [...] as a character set
        "*interchange I = * nats ?95% CI *, rank * of 28",
        "*tolerance 1*",
        "*For pruning:*",
    ])
    wide = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-pairs=all",
                                         "--swapkl-rank-tolerance=28", *SMALL)
    assert wide.ret == 0


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_second_run_hits_the_cache_and_changed_inputs_recompute(pytester):
    first = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL)
    first.stdout.fnmatch_lines(["*computed in*"])
    again = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL)
    again.stdout.fnmatch_lines(["*cache hit in*"])
    other_seed = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-seed=1", *SMALL)
    other_seed.stdout.fnmatch_lines(["*computed in*"])
    cleared = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-cache-clear", *SMALL)
    cleared.stdout.fnmatch_lines(["*computed in*"])


def test_xdist_computes_once_and_equals_serial(pytester):
    pytest.importorskip("xdist")
    serial = pytester.runpytest_subprocess("--swapkl-model=demo", "--junitxml=serial.xml", *SMALL,
                                           "-p", "no:cacheprovider")
    parallel = pytester.runpytest_subprocess("--swapkl-model=demo", "--junitxml=parallel.xml", *SMALL,
                                             "-p", "no:cacheprovider", "-n", "2")
    assert serial.ret == parallel.ret == 0
    one, two = cases(pytester.path / "serial.xml"), cases(pytester.path / "parallel.xml")
    assert two["audit"]["audit_computed_in"] == "xdist controller"
    for properties in (one["audit"], two["audit"]):
        properties.pop("audit_computed_in"), properties.pop("audit_cache_hit")
    assert one == two


def test_junit_properties_under_xunit1_and_xunit2(pytester):
    for family in ("xunit1", "xunit2"):
        result = pytester.runpytest_subprocess("--swapkl-model=demo", f"--junitxml={family}.xml",
                                               "-o", f"junit_family={family}", *SMALL)
        assert result.ret == 0
        assert cases(pytester.path / f"{family}.xml")["pair[L03-L04]"]["interchange"]


@pytest.mark.parametrize("argv, message", [
    (["--swapkl-model=/no/such/model"], "ERROR: swapkl: no such folder: /no/such/model*"),
    (["--swapkl-model=demo", "--swapkl-pairs=0-99"], "ERROR: swapkl: pair '0-99': layer 99 is out of range*"),
    (["--swapkl-model=demo", "--swapkl-tokens=many"], "ERROR: swapkl: --swapkl-tokens (ini swapkl_tokens) *"),
    (["--swapkl-model=demo", "--swapkl-prune-k=1", "--swapkl-heldout=/no/such/heldout.txt"],
     "ERROR: swapkl: --heldout: *no/such/heldout.txt*"),
    (["--swapkl-model=demo", "--swapkl-heldout-tokens=0"],
     "ERROR: swapkl: --swapkl-heldout-tokens (ini swapkl_heldout_tokens) must be a positive integer, got 0"),
])
def test_bad_option_is_a_one_line_usage_error(pytester, argv, message):
    result = pytester.runpytest_subprocess(*argv)
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_without_the_option_the_plugin_is_inert(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "swapkl audit" not in result.stdout.str() and "swapkl::" not in result.stdout.str()


def test_examples_pass_as_written(pytester):
    for path in EXAMPLES.iterdir():
        shutil.copy(path, pytester.path / path.name)
    result = pytester.runpytest_subprocess()  # the slow complete audit is deselected by the examples' pytest.ini
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.assert_outcomes(passed=7 + 4 + 8, deselected=2)


def test_prune_cases_measure_real_removals_on_heldout_text_and_budgets_decide(pytester):
    strict = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-prune-k=2", "--junitxml=prune.xml",
                                           "--swapkl-json=audit.json", "--swapkl-max-ppl-increase=0.001",
                                           "--swapkl-max-cost-factor=1.0", *SMALL)
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["*removing interchange's choice * for real: held-out perplexity * -> * ?95% CI *"
                                 "(+*%*budget +0.1% on the estimate*"])
    document = json.loads((pytester.path / "audit.json").read_text())
    heldout = document["heldout"]  # which text the costs are on: by default other works than the calibration's
    assert heldout["source"] == "demo-heldout" and heldout["sha256"] != document["data"]["sha256"]
    assert heldout["bootstrap_unit"] == "document" == document["pruning"]["bootstrap_unit"]
    assert not set(heldout["documents"]) & set(document["data"]["documents"])
    assert heldout["seq_len"] == 128 and heldout["n_tokens"] == 1024 == document["data"]["n_tokens"]
    assert document["noise_floor"] is not None and document["noise_floor"] > 0  # measured, never a 0 by default
    assert document["noise"]["reference_dtype"] == "float64"
    junit = cases(pytester.path / "prune.xml")
    assert {"prune[replacement-k1]", "prune[interchange-k2]", "prune_gap[k2]"} <= set(junit)
    k1 = junit["prune[interchange-k1]"]
    assert float(k1["heldout_ppl"]) > float(k1["heldout_base_ppl"])
    assert float(k1["heldout_ppl_ci_low"]) <= float(k1["heldout_ppl"]) <= float(k1["heldout_ppl_ci_high"])
    assert k1["heldout_source"] == "demo-heldout" and k1["heldout_sha256"] == heldout["sha256"]
    assert k1["asserts_on"] == "estimate"
    gap = junit["prune_gap[k2]"]
    comparison = document["pruning"]["budgets"][1]["comparisons"]["replacement|interchange"]
    expected = {"A cheaper": "replacement cheaper", "B cheaper": "interchange cheaper"}
    assert gap["paired_verdict"] == expected.get(comparison["verdict"], comparison["verdict"])
    assert gap["paired_verdict_adjusted"] == expected.get(comparison["verdict_adjusted"],
                                                          comparison["verdict_adjusted"])
    assert gap["multiplicity"] == "holm" and gap["asserts_on"] == "interval"
    assert document_problem(document) is None  # the checker reads the new fields: verdicts, p-values, units
    comparison["p_adjusted"] = 2.0
    assert "p_adjusted is not a probability" in document_problem(document)
    comparison["p_adjusted"] = None
    document["pruning"]["budgets"][0]["heldout_kl_per_sequence"]["replacement"] = [0.1]
    assert "heldout_kl_per_sequence['replacement'] is not 8 numbers" in document_problem(document)
    if document["pruning"]["budgets"][1]["sets"]["replacement"] != document["pruning"]["budgets"][1]["sets"][
            "interchange"]:
        assert float(gap["cost_ratio_ci_low"]) <= float(gap["cost_ratio"]) <= float(gap["cost_ratio_ci_high"])
    assert junit["audit"]["noise_floor"] == str(document["noise_floor"])
    # swapkl report carries the held-out costs with their intervals and the paired verdict.
    assert swapkl_main(["report", str(pytester.path / "prune.xml"), "--markdown", str(pytester.path / "r.md")]) == 0
    report = (pytester.path / "r.md").read_text()
    assert "## Pruning: sets removed for real, costs on held-out text" in report
    assert "held-out KL \\[95% CI\\]" in report and "KL ratio R/I \\[95% CI\\]" in report  # Markdown-escaped
    assert gap["paired_verdict"] in report and f"{gap['paired_verdict_adjusted']} (holm)" in report
    assert "demo-heldout" in report
    wide = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-prune-k=2", "--swapkl-max-ppl-increase=10",
                                         "--swapkl-max-cost-factor=100", *SMALL)
    assert wide.ret == 0


WINDOWED_FIXTURE = '''
import json

import numpy as np


def test_removal_cost_by_windows(swapkl_audit):
    cost = swapkl_audit.removal_cost([4, 5])
    print("COST", json.dumps({"kl": cost.kl, "ppl": cost.ppl, "base_ppl": cost.base_ppl, "low": cost.kl_low,
                              "high": cost.kl_high, "source": cost.heldout_source}))
'''


def test_heldout_windows_reach_the_prune_cases_and_the_fixture(pytester):
    from window_reference import pruned_copy, reference_loop

    from pytest_swapkl.audit.runner import locate
    from pytest_swapkl.commands.cli import build_parser
    from pytest_swapkl.inputs.loading import load_model

    pytester.makepyfile(test_windows=WINDOWED_FIXTURE)
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-prune-k=1", "--swapkl-heldout-window=64",
                                           "--swapkl-heldout-stride=32", "--swapkl-noise-probes=0",
                                           "--swapkl-max-ppl-increase=10", "--swapkl-max-cost-factor=100",
                                           "--swapkl-json=audit.json", "--junitxml=windows.xml", "-s", *SMALL)
    assert result.ret == 0, result.stdout.str()[-3000:]
    document = json.loads((pytester.path / "audit.json").read_text())
    held = document["heldout"]
    assert held["evaluator"] == "sliding-window"
    assert (held["window"], held["stride"], held["n_tokens"]) == (64, 32, 1024)
    junit = cases(pytester.path / "windows.xml")
    k1 = junit["prune[interchange-k1]"]
    assert k1["heldout_n_sequences"] == str(held["windows"]) and k1["heldout_sha256"] == held["sha256"]
    [line] = [line for line in result.stdout.lines if "COST {" in line]  # -s: after the file's name
    cost = json.loads(line[line.index("COST {") + len("COST "):])
    # the fixture measures on the audit's windows: the plain loop over the same stream gives its numbers
    options = ["audit", "demo", "--prune-k", "1", "--heldout-window", "64", "--tokens", "1024", "--seq-len", "128"]
    heldout = locate(build_parser().parse_args(options)).heldout
    stream = heldout.input_ids
    assert held["sha256"] == heldout.sha256
    model = load_model("demo", device="cpu").model
    base_nll, _ = reference_loop(model, stream, 64, 32)
    nll, kl = reference_loop(pruned_copy(model, (4, 5)), stream, 64, 32, base=model)
    assert cost["kl"] == pytest.approx(kl.sum() / 1023, rel=1e-5)
    assert cost["ppl"] == pytest.approx(np.exp(nll.sum() / 1023), rel=1e-5)
    assert cost["base_ppl"] == pytest.approx(np.exp(base_nll.sum() / 1023), rel=1e-5)
    assert cost["low"] <= cost["kl"] <= cost["high"] and cost["source"] == "demo-heldout"
