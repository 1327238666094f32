"""`swapkl report` and the junit reader, on junit files written by the plugin (tests/fixtures/junit).

xunit1.xml / xunit2.xml: `pytest --swapkl-model=demo --swapkl-pairs=all --swapkl-tokens=1024
--swapkl-seq-len=128 --swapkl-bootstrap=200 -o junit_family=xunit1|xunit2`; baseline_seed1.xml the same
with --swapkl-seed=1; shard_a.xml / shard_b.xml the xunit1 run split by `-k 'pair and L00'` /
`-k 'not (pair and L00)'` (pairs in both shards); failing.xml with --swapkl-rank-tolerance=1 --swapkl-min-spearman=0.95.
The others are crafted.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from pytest_swapkl.commands.report import compare, main_report, render_html, render_markdown
from pytest_swapkl.console import interval
from pytest_swapkl.errors import InputError
from pytest_swapkl.report.junit import JunitError, parse_value, read_junit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "junit"
X1, X2 = FIXTURES / "xunit1.xml", FIXTURES / "xunit2.xml"
BASELINE, FAILING = FIXTURES / "baseline_seed1.xml", FIXTURES / "failing.xml"
SHARDS = [FIXTURES / "shard_a.xml", FIXTURES / "shard_b.xml"]


def _numbers(audit):
    return (audit.model, audit.data_sha256, audit.dtype, audit.device, audit.base_ppl, audit.noise_floor,
            audit.spearman, audit.kendall, audit.n_pairs, audit.pairs, audit.removals, audit.topk,
            [(c.name, c.outcome, c.properties) for c in audit.cases])


# ---------------------------------------------------------------- reading

def test_reads_the_plugin_output():
    audit = read_junit(X1)
    assert audit.model == "demo" and len(audit.data_sha256) == 64
    assert audit.dtype == "float32" and audit.device == "cpu"
    n = audit.n_layers
    assert len(audit.pairs) == n * (n - 1) // 2 == audit.n_pairs
    assert [r.layer for r in audit.removals] == list(range(n))
    assert all(isinstance(r.kl, float) for r in audit.removals)
    pair = audit.pair(0, 1)
    assert pair.label == "L00-L01" and pair.interchange > 0 and pair.replacement > 0
    low, high = pair.ci["interchange"]
    assert low <= pair.interchange <= high
    assert -1 <= audit.spearman <= 1 and -1 <= audit.kendall <= 1
    assert [t.k for t in audit.topk] == [2, 4]
    assert all(isinstance(t.replacement_layers, list) for t in audit.topk)
    assert audit.counts()["passed"] == len(audit.cases) == audit.suites[0].tests


def test_xunit1_and_xunit2_read_the_same_numbers():
    assert _numbers(read_junit(X1)) == _numbers(read_junit(X2))


def test_merged_shards_equal_the_unsharded_file():
    shard_a, shard_b = read_junit(SHARDS[0]), read_junit(SHARDS[1])
    assert shard_a.pairs and shard_b.pairs and not shard_a.removals  # the split really separates cases
    merged = read_junit(SHARDS)
    assert _numbers(merged) == _numbers(read_junit(X1))
    assert len(merged.suites) == 2


def test_failures_carry_their_messages():
    audit = read_junit(FAILING)
    failed = [c for c in audit.cases if c.outcome == "failed"]
    assert failed and all(c.message for c in failed)
    assert audit.counts()["failed"] == sum(s.failures for s in audit.suites)
    assert any(not p.passed for p in audit.pairs)


def test_parse_value():
    assert parse_value("None") is None and parse_value("3") == 3 and parse_value("0.5") == 0.5
    assert parse_value("[3, 5]") == [3, 5] and parse_value("False") is False
    assert parse_value("nan") != parse_value("nan") and parse_value("demo") == "demo"


# ---------------------------------------------------------------- bad input: one-line errors

@pytest.mark.parametrize("name, needle", [
    ("malformed.xml", "malformed XML"),
    ("billion_laughs.xml", "DOCTYPE/ENTITY"),
    ("no_swapkl.xml", "no swapkl test cases"),
    ("missing.xml", "no such junit file"),
])
def test_bad_files_give_one_line_errors(name, needle, capsys):
    started = time.monotonic()
    with pytest.raises(JunitError, match=needle) as caught:
        read_junit(FIXTURES / name)
    assert isinstance(caught.value, InputError) and "\n" not in str(caught.value)
    assert main_report([str(FIXTURES / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swapkl: error:") and needle in err and "\n" not in err
    assert time.monotonic() - started < 5


def test_entity_declaration_without_doctype_keyword_variants(tmp_path):
    bomb = tmp_path / "x.xml"
    bomb.write_text('<?xml version="1.0"?><!doctype a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    with pytest.raises(JunitError, match="malformed XML"):  # XML spells it DOCTYPE: expat stops at the first byte
        read_junit(bomb)
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    with pytest.raises(JunitError, match="DOCTYPE/ENTITY"):  # defusedxml, forbid_dtd
        read_junit(bomb)


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    import pytest_swapkl.report.junit as junit

    monkeypatch.setattr(junit, "MAX_BYTES", 1000)
    with pytest.raises(JunitError, match="limit"):
        read_junit(X1)


def test_shards_of_different_audits_are_refused(tmp_path):
    other = tmp_path / "other.xml"
    other.write_text(X1.read_text().replace(read_junit(X1).data_sha256, "0" * 64))
    with pytest.raises(JunitError, match="different audits"):
        read_junit([SHARDS[1], other])
    with pytest.raises(JunitError, match="different audits|not shards of one audit"):
        read_junit([X1, BASELINE])
    renumbered = tmp_path / "renumbered.xml"  # same model and data, different numbers
    renumbered.write_text(re.sub(r'(name="interchange" value=")[^"]*"', r'\g<1>9.0"', X1.read_text()))
    with pytest.raises(JunitError, match="not shards of one audit"):
        read_junit([X1, renumbered])
    assert main_report([str(X1), str(other)]) == 2


# ---------------------------------------------------------------- rendering

def test_markdown_has_the_pair_table_sorted_by_divergence():
    audit = read_junit(X1)
    text = render_markdown(audit)
    assert r"| pair | R \[95% CI\] | I \[95% CI\] | ln(I/R) | rank R | rank I | gap | tolerance | result |" in text
    pair = audit.pairs[0]
    low, high = pair.ci["replacement"]
    assert f"| {pair.label} | {interval(pair.replacement, low, high)} |".replace("[", "\\[").replace("]", "\\]") in text
    assert text.splitlines()[2].startswith("**Replacement and interchange")  # the verdict comes first
    rows = re.findall(r"^\| (L\d\d-L\d\d) \|.*\| (\d+) \| \d+ \| \w+ \|$", text, re.MULTILINE)
    assert len(rows) == len(audit.pairs)
    gaps = [int(gap) for _, gap in rows]
    assert gaps == sorted(gaps, reverse=True)
    spearman = interval(audit.spearman, *audit.spearman_ci).replace("[", "\\[").replace("]", "\\]")
    assert f"Spearman(R, I) | {spearman}" in text
    assert "top-2 Jaccard" in text


def test_cli_prints_markdown_to_stdout(capsys):
    assert main_report([str(X1)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# swapkl audit report: demo") and "| L00-L01 |" in out


def test_html_is_self_contained(tmp_path, capsys):
    out_html, out_md, out_json = tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.json"
    assert main_report([str(FAILING), "--html", str(out_html), "--markdown", str(out_md),
                        "--json", str(out_json)]) == 0
    page = out_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http" not in page.lower().replace("http-equiv", "")
    images = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert len(images) == 4  # all pairs: R and I heatmaps (one figure), ln(I/R), removal KL, removal sets
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<script" not in page.lower() and "Failures" in page
    assert out_md.read_text().startswith("# swapkl audit report")
    document = json.loads(out_json.read_text())
    assert document["schema"] == "swapkl-report/1" and len(document["audit"]["pairs"]) == 28


def test_script_in_model_and_test_names_is_escaped(tmp_path):
    audit = read_junit(FIXTURES / "script_injection.xml")
    assert audit.model == "<script>alert('model')</script>"
    page = render_html(audit)
    assert "<script" not in page.lower() and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page
    assert "<img src=x" not in page


# ---------------------------------------------------------------- baseline

def test_baseline_comparison():
    current, baseline = read_junit(X1), read_junit(BASELINE)
    comparison = compare(current, baseline, tolerance=0.05)
    assert len(comparison.deltas) == len(current.pairs)
    assert comparison.spearman_delta == pytest.approx(current.spearman - baseline.spearman)
    delta = comparison.deltas[0]
    assert delta.interchange == pytest.approx(current.pairs[0].interchange - baseline.pairs[0].interchange)
    moved = comparison.most_changed(3)
    assert [d.rank_change for d in moved] == sorted((d.rank_change for d in moved), reverse=True)
    text = render_markdown(current, comparison)
    assert "## Against the baseline" in text and "Spearman" in text
    assert compare(current, current).regression is False


def _with_spearman(source: Path, target: Path, value: float) -> Path:
    text = source.read_text()
    text, n = re.subn(r'(name="spearman" value=")[^"]*"', rf'\g<1>{value}"', text)
    assert n == 1
    target.write_text(text)
    return target


def test_fail_on_regression_exit_code(tmp_path, capsys):
    good = _with_spearman(X1, tmp_path / "good.xml", 0.9)
    worse = _with_spearman(X1, tmp_path / "worse.xml", 0.8)
    slightly = _with_spearman(X1, tmp_path / "slightly.xml", 0.88)
    args = ["--markdown", str(tmp_path / "r.md")]
    assert main_report([str(worse), "--baseline", str(good), "--fail-on-regression"] + args) == 1
    assert "REGRESSION" in (tmp_path / "r.md").read_text()
    assert main_report([str(slightly), "--baseline", str(good), "--fail-on-regression"] + args) == 0
    assert main_report([str(slightly), "--baseline", str(good), "--fail-on-regression",
                        "--regression-tolerance", "0.01"] + args) == 1
    assert main_report([str(good), "--baseline", str(worse), "--fail-on-regression"] + args) == 0
    assert main_report([str(worse), "--baseline", str(good)] + args) == 0  # reported, not failed
    capsys.readouterr()
    assert main_report([str(worse), "--fail-on-regression"]) == 2
    assert "needs --baseline" in capsys.readouterr().err
    assert main_report([str(worse), "--baseline", str(good), "--regression-tolerance", "-1"]) == 2


def test_fixtures_are_small():
    assert all(path.stat().st_size < 64_000 for path in FIXTURES.iterdir())


def test_every_budget_from_the_rank_correlation_case(tmp_path):
    """Budgets without a topk_jaccard case (k = 1, 3) still reach the report, through rank_correlation."""
    import xml.etree.ElementTree as ET

    from pytest_swapkl.report.junit import read_junit

    tree = ET.parse(Path(__file__).resolve().parents[1] / "fixtures" / "junit" / "xunit1.xml")
    case = next(c for c in tree.iter("testcase") if c.get("name") == "rank_correlation")
    properties = case.find("properties")
    for k, (r, i, jaccard) in {1: ([5], [5], 1.0), 3: ([2, 3, 5], [3, 4, 5], 0.5)}.items():
        for name, value in ((f"top{k}_replacement_layers", r), (f"top{k}_interchange_layers", i),
                            (f"top{k}_jaccard", jaccard)):
            ET.SubElement(properties, "property", name=name, value=str(value))
    tree.write(tmp_path / "budgets.xml")
    audit = read_junit(tmp_path / "budgets.xml")
    assert [t.k for t in audit.topk] == [1, 2, 3, 4]
    assert audit.topk[2].replacement_layers == [2, 3, 5] and audit.topk[2].jaccard == 0.5


# ---------------------------------------------------------------- numbers from the file size nothing unchecked

def _junit(cases_xml: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><testsuite name="pytest" tests="2">' + cases_xml + "</testsuite>")


def _case(name: str, **properties) -> str:
    props = "".join(f'<property name="{key}" value="{value}" />' for key, value in properties.items())
    return f'<testcase classname="swapkl" name="{name}" time="0.001"><properties>{props}</properties></testcase>'


AUDIT_2_LAYERS = _case("audit", model="m", removal_L00_kl=0.5, removal_L01_kl=0.2)


@pytest.mark.parametrize("cases_xml, expected", [
    (_case("pair[L00-L01]", i=0, j=100000, replacement=0.5, interchange=0.2),
     "case pair[L00-L01] has the property j=100000, but its name says 1"),
    (_case("pair[L00-L01]", i=-3, j=1), "case pair[L00-L01] has the property i=-3, but its name says 0"),
    (AUDIT_2_LAYERS + _case("pair[L00-L07]", i=0, j=7),
     "pair[L00-L07] is outside the 2 layers (0..1) its audit case lists"),
    (_case("pair[L00-L99999]", i=0, j=99999), "100000 layers is over the limit of 1024"),
    (_case("pair[L03-L01]", i=3, j=1), "pair[L03-L01] names its layers in the wrong order (pairs are i < j)"),
    (_case("audit", model="m", removal_L00_kl=0.5, removal_L99999_kl=0.2),
     "the audit case lists removals of layers [0, 99999], not of layers 0..1 once each"),
    (AUDIT_2_LAYERS + _case("topk_jaccard[k=1]", k=1, jaccard=1.0, replacement_layers="[5]",
                            interchange_layers="[1]"), "the top-1 layer set [5] is not at most 1 of the 2 layers"),
    (AUDIT_2_LAYERS + _case("rank_correlation", spearman=0.5, n_pairs=10**9), "n_pairs=1000000000 is more"),
])
def test_layer_indices_and_counts_are_checked_before_they_size_anything(tmp_path, capsys, cases_xml, expected):
    path = tmp_path / "crafted.xml"
    path.write_text(_junit(cases_xml))
    assert path.stat().st_size < 1000  # a file this small once made `swapkl report --html` ask for 80 GB
    started = time.monotonic()
    with pytest.raises(JunitError) as caught:
        read_junit(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message, message
    assert message.endswith("regenerate it with pytest --swapkl-model=... --junitxml=PATH")
    assert main_report([str(path), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swapkl: error: ") and "\n" not in err and not (tmp_path / "r.html").exists()
    assert time.monotonic() - started < 5


def test_a_case_name_with_thousands_of_digits_is_no_catalogue_name(tmp_path):
    path = tmp_path / "long.xml"
    path.write_text(_junit(AUDIT_2_LAYERS + _case(f"pair[L{'9' * 5000}-L01]", i=0, j=1)
                           + _case(f"topk_jaccard[k={'9' * 5000}]")))
    audit = read_junit(path)  # read, not a ValueError from int(): such names are simply not swapkl's cases
    assert audit.pairs == [] and audit.n_layers == 2


def test_markdown_escapes_every_value_from_the_junit_file():
    text = render_markdown(read_junit(FIXTURES / "script_injection.xml"))
    outside_code = re.sub(r"(?ms)^```\n.*?^```$", "", text)  # a failure message is literal text in its code block
    assert not re.search(r"(?<!\\)[<>]", outside_code)  # no tag opens outside code: every < and > escaped
    assert "\\<script\\>alert('model')\\</script\\>" in text
    assert "\\<img src=x onerror=alert(1)\\>" in text
    audit = read_junit(X1)
    audit.model = "[click](https://evil.example) ![x](https://track.example/p.png) **b** `c` | d\n# e @team $x$"
    text = render_markdown(audit)
    title = text.splitlines()[0]
    assert "https\u2060://evil.example" in title and "\\@\u2060team" in title  # no bare autolink (md_text.plain)
    assert title.replace("\u2060", "") == ("# swapkl audit report: \\[click\\](https://evil.example) \\!\\[x\\](https://track.example/"
                     "p.png) \\*\\*b\\*\\* \\`c\\` \\| d \\# e \\@team \\$x\\$")
    assert "\n# e" not in text  # a line break in a value never starts a Markdown line


def test_a_failure_message_cannot_close_its_code_block(tmp_path):
    path = tmp_path / "fence.xml"
    message = "boom\n```\n<script>alert(1)</script>\n````"
    path.write_text(_junit(AUDIT_2_LAYERS + '<testcase classname="swapkl" name="rank_correlation"><failure message="'
                           + message.replace("<", "&lt;").replace(">", "&gt;").replace("\n", "&#10;")
                           + '"/></testcase>'))
    lines = render_markdown(read_junit(path)).splitlines()
    start = lines.index("### swapkl::rank\\_correlation") + 2
    assert lines[start] == "`````" and lines[start + 5] == "`````"  # longer than any backtick run inside
    assert lines[start + 1:start + 5] == message.splitlines()
