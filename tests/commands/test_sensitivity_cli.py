"""`swapkl audit --sensitivity` end to end on the demo model: the JSON section, the terminal tables, the report."""

import json

from pytest_swapkl.commands.cli import build_parser, main
from pytest_swapkl.options import OPTIONS, _parse

SMALL = ["--tokens", "1024", "--seq-len", "64", "--bootstrap", "100", "--device", "cpu", "--no-resume"]


def test_a_bare_flag_asks_for_the_free_factors_and_the_plugin_reads_the_same_names():
    assert build_parser().parse_args(["audit", "demo", "--sensitivity"]).sensitivity == (
        "rules", "beam", "draws", "size")
    assert build_parser().parse_args(["audit", "demo"]).sensitivity is None
    option = next(option for option in OPTIONS if option.name == "sensitivity")
    assert _parse(option, "dtype,seq-len", "--swapkl-sensitivity") == ("dtype", "seq-len")


def test_an_unknown_factor_is_one_line_and_exit_2(capsys):
    assert main(["audit", "demo", "--sensitivity", "rules,widths", *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert "unknown sensitivity factor 'widths': use rules, beam, draws, size, dtype, seq-len" in error
    assert "\n" not in error


def test_the_audit_writes_the_section_and_the_report_shows_it(tmp_path, capsys):
    output = tmp_path / "audit.json"
    assert main(["audit", "demo", "--pairs", "adjacent", "--sensitivity", *SMALL, "--json", str(output)]) == 0
    table = capsys.readouterr().out
    document = json.loads(output.read_text())
    section = document["sensitivity"]
    assert section["factors"] == ["rules", "beam", "draws", "size"] == document["settings"]["sensitivity"]
    assert section["beam"]["uses_beam"] is False and len(section["draws"]["stays"]) == len(section["verdicts"])
    assert [row["share"] for row in section["size"]["rows"]] == [0.25, 0.5, 1.0]
    for title in ("pair-to-set rules", "calibration draws and size", "beam width"):
        assert f"Sensitivity: {title}" in table
    markdown = tmp_path / "report.md"
    assert main(["report", str(output), "--markdown", str(markdown)]) == 0
    assert "## Sensitivity: pair-to-set rules" in markdown.read_text()


def test_the_measuring_factors_run_only_when_named(tmp_path):
    output = tmp_path / "audit.json"
    argv = ["audit", "demo", "--pairs", "0-1,2-3", "--sensitivity", "dtype,seq-len", *SMALL, "--json", str(output)]
    assert main(argv) == 0
    record = json.loads(output.read_text())["sensitivity"]
    assert set(record) == {"factors", "verdicts", "dtype", "seq-len", "seconds"}
    assert record["dtype"]["other_dtype"] == "bfloat16" and record["dtype"]["offset"]["probes"] == 2 * 3 + 8
    assert (record["seq-len"]["other_seq_len"], record["seq-len"]["sequences"]) == (32, 32)  # 1024 tokens in 32s


def test_a_sharded_audit_refuses_the_section_in_one_line(tmp_path, capsys):
    assert main(["audit", "demo", "--shard", "0/2", "--sensitivity", "--json", str(tmp_path / "s.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert "a sharded audit does not compute the sensitivity section" in error and "\n" not in error
