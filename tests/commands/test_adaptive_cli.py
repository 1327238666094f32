"""`swapkl audit --precision adaptive` on the demo model: the population verdicts in the JSON, and bad input as
one line with exit code 2."""

import json

import pytest

from pytest_swapkl.commands.cli import main

SMALL = ["--tokens", "1024", "--seq-len", "64", "--bootstrap", "200", "--device", "cpu", "--no-resume",
         "--pairs", "adjacent"]


def test_the_demo_audit_in_adaptive_mode_records_its_population_verdicts(tmp_path, capsys):
    output = tmp_path / "audit.json"
    assert main(["audit", "demo", *SMALL, "--precision", "adaptive", "--json", str(output)]) == 0
    record = json.loads(output.read_text())["adaptive"]
    assert record["probe_sequences"] <= record["exact_probe_sequences"]
    verdicts = record["population_verdicts"]
    assert "spearman" in verdicts and "set_removal_k1" in verdicts
    assert all(set(entry) == {"value", "settled"} for entry in verdicts.values())
    assert "per-pair cases are not certified" in record["guarantee"]


@pytest.mark.parametrize("argv, option", [
    (["--adaptive-alpha", "0"], "--adaptive-alpha"),
    (["--adaptive-alpha", "1.5"], "--adaptive-alpha"),
    (["--adaptive-alpha", "often"], "--adaptive-alpha"),
    (["--precision", "approximate"], "--precision"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_adaptive_input_is_one_line(argv, option, tmp_path, capsys):
    code = main(["audit", "demo", *SMALL, "--precision", "adaptive", *argv, "--json", str(tmp_path / "a.json")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and option in error and "\n" not in error and "Traceback" not in error
    assert not (tmp_path / "a.json").exists()
