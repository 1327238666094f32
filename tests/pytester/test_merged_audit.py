"""The CI recipe of docs/scaling.md: shards in parallel jobs, `swapkl merge`, then one plugin run on the merged
audit (`--swapkl-audit-json`), which generates the same cases without loading a model."""

import json
import xml.etree.ElementTree as ET

from pytest_swapkl.commands.cli import main as swapkl_main

AUDIT = ["audit", "demo", "--tokens", "512", "--seq-len", "64", "--device", "cpu", "--bootstrap", "100"]


def test_plugin_generates_the_cases_of_a_merged_audit(pytester, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    for index in range(2):
        assert swapkl_main([*AUDIT, "--shard", f"{index}/2", "--json", str(tmp_path / f"shard{index}.json")]) == 0
    assert swapkl_main(["merge", str(tmp_path / "shard0.json"), str(tmp_path / "shard1.json"),
                        "--json", str(tmp_path / "merged.json")]) == 0
    capsys.readouterr()
    merged = json.loads((tmp_path / "merged.json").read_text())

    # xunit1: the numbers inside each testcase (under the default xunit2 they are suite properties, issue 19)
    result = pytester.runpytest_subprocess(f"--swapkl-audit-json={tmp_path / 'merged.json'}", "--junitxml=a.xml",
                                           "-o", "junit_family=xunit1")
    outcomes = result.parseoutcomes()  # 7 adjacent pairs, audit, rank correlation, two Jaccard budgets
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 7 + 4 and "error" not in outcomes
    root = ET.parse(pytester.path / "a.xml").getroot()
    junit = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in root.iter("testcase")}
    for pair in merged["pairs"]:
        assert junit[f"pair[L{pair['i']:02d}-L{pair['j']:02d}]"]["interchange"] == str(pair["interchange"])

    (tmp_path / "broken.json").write_text('{"schema": "swapkl/1"}')
    result = pytester.runpytest_subprocess(f"--swapkl-audit-json={tmp_path / 'broken.json'}")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*swapkl: --swapkl-audit-json * is not an audit document (*): pass a file*"])
