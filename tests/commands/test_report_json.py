"""`swapkl report` on audit JSON (schema swapkl/1) and on guided-removal JSON.

The audit JSON and the junit file come from one real run of the plugin on the demo model (`audit_run`), and a
second junit file from the plugin judging that same JSON with stricter tolerances (`--swapkl-audit-json`), so
every comparison is between what pytest wrote and what the report builds from the JSON by itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.commands.report import figures, main_report, render_html, render_markdown, study_figures
from pytest_swapkl.report import guided
from pytest_swapkl.report.inputs import read_inputs
from pytest_swapkl.report.junit import read_junit

STUDY = Path(__file__).resolve().parents[1] / "fixtures" / "study"  # copied from benchmarks/results/study
SMALL = ["--swapkl-tokens=512", "--swapkl-seq-len=64", "--swapkl-bootstrap=100", "--swapkl-device=cpu"]
STRICT = ["--rank-tolerance=1", "--min-spearman=0.95", "--min-jaccard=1", "--jaccard-k=1,2,3"]


def _pytest(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *arguments], cwd=folder,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit")
    run = _pytest(folder, "--swapkl-model=demo", "--swapkl-pairs=all", "--swapkl-prune-k=2", *SMALL,
                  "--swapkl-json=audit.json", "--junitxml=audit.xml")
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    strict = _pytest(folder, "--swapkl-audit-json=audit.json", "--junitxml=strict.xml",
                     *(f"--swapkl-{flag[2:]}" for flag in STRICT))
    assert strict.returncode == 1, strict.stdout[-3000:] + strict.stderr[-3000:]  # the strict run fails cases
    return folder


def _without_sources(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("| sources |"))


def _before_failures(markdown: str) -> str:
    return _without_sources(markdown).split("\n## Failures")[0]


STRICT_TOLERANCES = Tolerances(rank=1, rank_is_fraction=False, min_spearman=0.95, min_jaccard=1.0, jaccard_k=(1, 2, 3))


@pytest.mark.slow
def test_the_json_reports_as_its_junit_file_does(audit_run):
    from_junit = read_junit(audit_run / "audit.xml")
    from_json = read_inputs([audit_run / "audit.json"], Tolerances()).audit
    n = from_json.n_layers
    assert from_json.prune_costs and from_json.prune_gaps and len(from_json.pairs) == n * (n - 1) // 2 > 0
    assert [(c.name, c.outcome) for c in from_json.cases] == [(c.name, c.outcome) for c in from_junit.cases]
    assert [{k: v for k, v in c.properties.items() if not k.startswith("audit_")} for c in from_json.cases] == [
        {k: v for k, v in c.properties.items() if not k.startswith("audit_")} for c in from_junit.cases]
    assert (from_json.removals, from_json.topk) == (from_junit.removals, from_junit.topk)
    # A failed pair's message: the JSON's is the whole text, the junit file's the same text cut after its first
    # lines (the full one is in the element's text); everything else is equal.
    assert [replace(p, message=None) for p in from_json.pairs] == [replace(p, message=None) for p in from_junit.pairs]
    for json_pair, junit_pair in zip(from_json.pairs, from_junit.pairs):
        if junit_pair.message:
            shown = junit_pair.message.split("\n[+")[0]
            assert json_pair.message.startswith(shown), (json_pair.message, junit_pair.message)
    # Before the failures (whose messages are cut in the junit file) only the sources row differs; the figures are
    # the same pictures, byte for byte.
    assert _before_failures(render_markdown(from_json)) == _before_failures(render_markdown(from_junit))
    assert [f.png for f in figures(from_json)] == [f.png for f in figures(from_junit)]
    page = render_html(from_json)
    assert page.count("<figcaption>") == 4 and "Guided removal" not in page


@pytest.mark.slow
def test_the_json_judged_with_flags_matches_the_plugin_with_those_options(audit_run, tmp_path, capsys):
    strict_junit = read_junit(audit_run / "strict.xml")
    from_json = read_inputs([audit_run / "audit.json"], STRICT_TOLERANCES).audit
    outcomes = [(c.name, c.outcome) for c in from_json.cases]
    assert outcomes == [(c.name, c.outcome) for c in strict_junit.cases]
    assert "failed" in dict(outcomes).values()
    assert _before_failures(render_markdown(from_json)) == _before_failures(render_markdown(strict_junit))
    for mine, pytests in zip(from_json.cases, strict_junit.cases):  # junit: a shortened message, then all of it
        assert (mine.message == "") == (pytests.message == "") and mine.message in pytests.message
    # The CLI's flags are the plugin's option names.
    out = tmp_path / "strict.md"
    assert main_report([str(audit_run / "audit.json"), *STRICT, "--markdown", str(out)]) == 0
    assert _before_failures(out.read_text().rstrip("\n")) == _before_failures(render_markdown(strict_junit))


@pytest.mark.slow
def test_json_and_junit_of_one_audit_merge(audit_run):
    both = read_inputs([audit_run / "audit.xml", audit_run / "audit.json"], Tolerances()).audit
    assert [c.name for c in both.cases] == [c.name for c in read_junit(audit_run / "audit.xml").cases]
    with pytest.raises(Exception, match="not shards of one audit"):  # the same audit judged otherwise: refused
        read_inputs([audit_run / "strict.xml", audit_run / "audit.json"], Tolerances())


# ---------------------------------------------------------------- bad input

def _document() -> dict:
    return json.loads((STUDY / "gemma3-270m_audit.json").read_text())


@pytest.mark.parametrize("write, needle", [
    (lambda: json.dumps({"schema": "swapkl-report/1", "audit": {}}), "schema 'swapkl-report/1' is neither an audit"),
    (lambda: json.dumps([1, 2]), "a JSON document without a schema is neither"),
    (lambda: json.dumps(_document())[:5000], "truncated JSON"),
    (lambda: json.dumps({**_document(), "pairs": [{"i": 3, "j": 1}]}), "not a complete swapkl/1 audit document "
                                                                       "(pairs[0] is not a pair of layers"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "results": [{"search": "beam", "guide": "x",
                                                                           "objective": "kl", "k": 40}]}}),
     "not a readable guided-removal study (prune.results[0].k is not a budget 1..17)"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "results": "x"}}), "prune.results is not a"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "results": [{"search": "beam", "guide": "$\\x$",
                                                                           "objective": "kl", "k": 1}]}}),
     "prune.results[0].guide is not a name of letters"),  # matplotlib would read $...$ in a legend as TeX
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "results": [
        {"search": "beam", "guide": "x", "objective": "kl", "k": 1, "layers": [3],
         "heldout": {"vs_best": {"verdict": "tie", "same_set": False}}}]}}),
     "prune.results[0].heldout.vs_best.verdict is not one of"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "results": [
        {"search": "beam", "guide": "x", "objective": "kl", "k": 1, "layers": [3],
         "heldout": {"vs_best": {"verdict": "undecided", "p_adjusted": 1.5}}}]}}),
     "vs_best.p_adjusted is not a probability"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "verdicts": {"equivalence_margin": 0.1,
                                                                            "multiplicity": "bonferroni"},
                                   "results": [{"search": "beam", "guide": "x", "objective": "kl", "k": 1}]}}),
     "prune.verdicts is not {equivalence_margin > 0, multiplicity: holm|bh|none"),
    (lambda: json.dumps({"prune": {"n_layers": 18, "base": {}, "heldout_units": {"kl": {"n_units": 2, "per_unit": {
        "3": [0.1]}}}, "results": [{"search": "beam", "guide": "x", "objective": "kl", "k": 1}]}}),
     "prune.heldout_units.kl.per_unit['3'] is not 2 numbers"),
])
def test_bad_json_is_a_one_line_error(tmp_path, capsys, write, needle):
    bad = tmp_path / "bad.txt"  # the extension says nothing: the content decides
    bad.write_text(write())
    assert main_report([str(bad)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("swapkl: error:") and needle in err and "\n" not in err, err
    assert "Traceback" not in captured.out + captured.err
    assert "pass junit XML" in err or "pass a file written by" in err or "pass the JSON written by" in err


# ---------------------------------------------------------------- guided removal

def _md_cells(path: Path) -> list:
    """The search x guide rows of each objective's table in a guided_*.md written by
    benchmarks/pruning/guided_removal.py."""
    tables, rows = [], None
    for line in path.read_text().splitlines():
        if line.startswith("objective "):
            rows = []
            tables.append(rows)
        elif rows is not None and line.startswith("| ") and not line.startswith("| search"):
            rows.append(tuple(cell.strip() for cell in line.strip("|").split("|")))
        elif rows is not None and line.startswith("evaluations / layer passes"):
            break
    return tables


@pytest.mark.parametrize("name", ["guided_gemma3-270m"])
def test_guided_tables_are_the_ones_the_study_script_wrote(name):
    document = json.loads((STUDY / f"{name}.json").read_text())
    study = guided.read_study(document, name)
    written = _md_cells(STUDY / f"{name}.md")
    assert len(written) == len(study.objectives) >= 2
    for objective, rows in zip(study.objectives, written):
        assert [tuple(row) for row in guided.cost_rows(study, objective)] == rows


def test_guided_report_has_a_table_and_a_figure_per_objective(tmp_path):
    page, md = tmp_path / "guided.html", tmp_path / "guided.md"
    assert main_report([str(STUDY / "guided_gemma3-270m.json"), "--html", str(page), "--markdown", str(md)]) == 0
    html, text = page.read_text(), md.read_text()
    study = read_inputs([STUDY / "guided_gemma3-270m.json"], Tolerances()).studies[0]
    assert study.objectives == ["kl", "ppl", "accuracy"] and study.budgets == [1, 2, 3, 4]
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert [c.split(":")[0] for c in captions] == ["Objective kl", "Objective ppl", "Objective accuracy"]
    assert html.count("<table class=\"cells\">") == 3 and text.count("| search | guide | k=1 | k=2 | k=3 | k=4 |") == 3
    assert "swapkl audit report" not in text and "{L07, L08, L09, L15} =" in text
    lines = guided.figure_lines(study, "kl")
    assert ("greedy", "-") in lines and ("beam", "interchange") in lines and ("exhaustive", "-") in lines
    assert ("evolutionary", "angular") not in lines and ("one-shot", "none") not in lines
    # Each line's points are the held-out costs the table's ratios are taken against.
    exhaustive = guided.curve(study, "kl", "exhaustive", "-")
    assert [k for k, *_ in exhaustive] == [1, 2, 3, 4] and all(low <= c <= high for _, c, low, high in exhaustive)
    assert len(study_figures(study)) == 3


def test_an_audit_and_a_study_share_one_page(tmp_path):
    page = tmp_path / "both.html"
    inputs = [str(STUDY / "gemma3-270m_audit.json"), str(STUDY / "guided_gemma3-270m.json")]
    assert main_report([*inputs, "--html", str(page)]) == 0
    html = page.read_text()
    assert html.count("<figcaption>") == 4 + 3
    assert html.index('class="verdict"') < html.index("<h2>Guided removal")


def test_the_report_accepts_every_model_size_the_audit_accepts(tmp_path, capsys, monkeypatch):
    """Issue 35: a 3-layer model's own audit JSON was refused (a top-4 case outside its layers); budgets the model
    cannot have are no cases at all (a top-k case beyond n_layers - 1 could only pass vacuously)."""
    import numpy as np
    from tiny_models import random_ids, tiny_model

    from pytest_swapkl.commands.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    tiny_model("llama", n_layers=3).save_pretrained(tmp_path / "three")
    np.save(tmp_path / "ids.npy", random_ids(6, 16).numpy())
    assert main(["audit", "./three", "--data", "ids.npy", "--pairs", "all", "--bootstrap", "50", "--no-resume",
                 "--json", "three.json"]) == 0
    capsys.readouterr()
    assert main(["report", "three.json", "--markdown", "three.md"]) == 0
    text = (tmp_path / "three.md").read_text()
    assert "top-4" not in text and "k=4" not in text
