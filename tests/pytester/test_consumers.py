"""The plugin's output read by programs this project did not write, as CI systems and people read it.

One real pytest run of the demo audit (every pair, pytest's default junit_family=xunit2) writes junit XML, the
audit JSON, a --swapkl-summary and a pytest-html page; then:

- junitparser reads every number back, equal to the JSON, and every case's system-out block;
- junit2html renders the file;
- the file validates against the JUnit XSD pytest's own tests use (tests/fixtures/schema), with lxml;
- the pytest-html page, opened in headless Chromium, shows the attached heatmap;
- the Markdown summary renders through markdown-it-py, and no junit value becomes raw HTML.

Screenshots of the pytest-html page and of the rendered summary land in test-artifacts/.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import junitparser
import pytest
from browser import CHECK_IMAGES, CHROMIUM, chromium, console_errors, images_decoded, screenshot
from lxml import etree
from markdown_it import MarkdownIt

from pytest_swapkl import cases
from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.plugin.job_summary import render

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schema" / "junit-10.xsd"
OLD_XUNIT2 = Path(__file__).resolve().parents[1] / "fixtures" / "junit" / "xunit2.xml"
# A minimum Spearman no audit meets: the file then holds a <failure> too, with the numbers in its message.
SMALL = ["--swapkl-model=demo", "--swapkl-pairs=all", "--swapkl-tokens=1024", "--swapkl-seq-len=128",
         "--swapkl-device=cpu", "--swapkl-bootstrap=200", "--swapkl-min-spearman=0.999"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")


def _pytest(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SWAPKL_PROGRESS": "off"}
    return subprocess.run([sys.executable, "-m", "pytest", *SMALL, *arguments], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consumers")
    full = _pytest(folder, "--junitxml=audit.xml", "--swapkl-json=audit.json", "--swapkl-summary=summary.md")
    assert full.returncode in (0, 1), full.stdout[-3000:] + full.stderr[-3000:]
    # The page people open: the two suite-level cases, where the figures are attached (the audit is cached now).
    page = _pytest(folder, "-k", "audit or rank_correlation", "--html=page.html", "--self-contained-html")
    assert page.returncode in (0, 1), page.stdout[-3000:] + page.stderr[-3000:]
    return folder


def test_junitparser_reads_every_number_back(run):
    document = json.loads((run / "audit.json").read_text())
    [suite] = list(junitparser.JUnitXml.fromfile(str(run / "audit.xml")))
    numbers = {p.name: p.value for p in suite.properties()}
    found = {case.name: case for case in suite}
    for pair in document["pairs"]:
        name = cases.pair_case(pair["i"], pair["j"])
        for key in cases.PAIR_KEYS:
            assert numbers[cases.suite_property(name, key)] == str(cases.whole(pair[key])), (name, key)
        for quantity, (low, high) in pair["ci"].items():
            low_key, high_key = cases.ci_keys(quantity)
            assert numbers[cases.suite_property(name, low_key)] == str(low)
            assert numbers[cases.suite_property(name, high_key)] == str(high)
        block = found[name].system_out
        assert block.startswith(f"swapkl::{name} ") and f"interchange = {pair['interchange']:.4g} [" in block
    for removal in document["removal"]:
        assert numbers[cases.suite_property(cases.AUDIT, cases.removal_key(removal["layer"]))] == str(removal["kl"])
    assert numbers[cases.suite_property(cases.RANK_CORRELATION, "spearman")] == str(document["summary"]["spearman"])
    assert f"spearman = {document['summary']['spearman']:.4g}" in found[cases.RANK_CORRELATION].system_out
    assert all(case.system_out for case in suite)  # every case, passed or not
    [failure] = found[cases.RANK_CORRELATION].result
    assert isinstance(failure, junitparser.Failure)
    assert f"spearman = {document['summary']['spearman']:.4g}" in failure.text
    assert "min_spearman = 0.999" in failure.text


def test_junit2html_renders_the_file(run, tmp_path):
    out = tmp_path / "junit2html.html"
    done = subprocess.run([sys.executable, "-m", "junit2htmlreport", str(run / "audit.xml"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    page = out.read_text()
    assert "pair[L03-L04]" in page and "rank_correlation" in page
    assert "spearman = " in page  # the system-out block, which junit2html shows per case


def test_the_xunit2_file_validates_against_the_junit_schema(run):
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(etree.parse(str(run / "audit.xml"))), schema.error_log
    # The schema is strict where it matters: properties inside a testcase (swapkl's output before) are refused.
    assert not schema.validate(etree.parse(str(OLD_XUNIT2)))
    assert "properties" in str(schema.error_log.last_error)


@needs_chromium
def test_the_pytest_html_page_shows_the_heatmap(run, tmp_path):
    page = run / "page.html"
    text = page.read_text()
    assert "on one logarithmic colour scale" in text  # the heatmap's caption, as the extra's name
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", CHECK_IMAGES))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri() + "?collapsed=")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    total, decoded = images_decoded(dom.stdout)
    assert total >= 2 and decoded == total  # audit: removal KL; rank_correlation: the heatmaps and the sets
    assert "Replacement distance R (left) and interchange distance I (right)" in dom.stdout
    screenshot(tmp_path, page.as_uri() + "?collapsed=", "pytest-html.png", 1366, 1400)


def test_the_summary_renders_as_markdown_without_raw_html(run, tmp_path):
    summary = (run / "summary.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(summary)  # raw HTML allowed: escaping must hold
    assert "<table>" in html and "<strong>" in html and "Most divergent pairs" in html
    assert "Failed cases" in html and "swapkl::rank_correlation" in html
    document = json.loads((run / "audit.json").read_text())
    assert f"| Spearman(R, I) | {document['summary']['spearman']:.4g}" in summary

    hostile = json.loads(json.dumps(document))
    hostile["model"]["name"] = "<script>alert('model')</script> [link](https://example.com) <img src=x onerror=1>"
    hostile["data"]["source"] = "| a | b |\n# heading"
    results = {"audit": "passed", "pair[L00-L01]</td><script>x</script>": "failed"}
    rendered = MarkdownIt("commonmark").enable("table").render(render(hostile, Tolerances(), results))
    assert "<script" not in rendered and "<img" not in rendered and "<a href" not in rendered
    assert "&lt;script&gt;alert" in rendered
    assert "<h1>heading" not in rendered

    if CHROMIUM is not None:  # how the summary reads, rendered, as GitHub's job summary shows it
        page = tmp_path / "summary.html"
        page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{font-family:sans-serif;"
                        "max-width:1000px;margin:1em auto;padding:0 1em}table{border-collapse:collapse}"
                        "td,th{border:1px solid #ccc;padding:.2em .5em}</style></head><body>" + html + "</body></html>")
        screenshot(tmp_path, page.as_uri(), "summary.png", 1100, 1500)
