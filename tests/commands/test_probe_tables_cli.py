"""`swapkl audit --averaging --heads PAIRS`: the JSON's tables, the report's, and bad input in one line (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import tiny_model

from pytest_swapkl.commands.cli import main

FAST = ["--tokens", "128", "--seq-len", "32", "--bootstrap", "50", "--noise-probes", "0", "--no-resume"]


def test_tables_reach_the_json_the_table_and_the_report(tmp_path, capsys, one_thread):
    document_path = tmp_path / "audit.json"
    assert main(["audit", "demo", *FAST, "--pairs", "0-1,2-3", "--averaging", "--heads", "2-3",
                 "--json", str(document_path)]) == 0
    printed = capsys.readouterr().out
    assert "averaging KL [95% CI]" in printed and "head(2<-3,3)" in printed
    document = json.loads(document_path.read_text())
    assert document["settings"]["averaging"] is True and document["settings"]["heads"] == "2-3"
    assert all(row["averaging"] > 0 and len(row["averaging_ci"]) == 2 for row in document["pairs"])
    assert [(row["i"], row["j"], row["head"]) for row in document["heads"]] == [(2, 3, h) for h in range(4)]
    assert all(row["ci"][0] <= row["kl"] <= row["ci"][1] for row in document["heads"])
    markdown = tmp_path / "report.md"
    assert main(["report", str(document_path), "--markdown", str(markdown)]) == 0
    text = markdown.read_text()
    assert "## Averaging" in text and "## Heads" in text and "| 2\\<-3 |" in text  # Markdown escapes <
    page = tmp_path / "report.html"
    assert main(["report", str(document_path), "--html", str(page)]) == 0
    assert "KL of head(i&lt;-j, h)" in page.read_text(), "the head x pair heatmap's caption"


def _phi3(tmp_path):
    tiny_model("phi3").save_pretrained(tmp_path / "phi3")
    np.save(tmp_path / "ids.npy", np.arange(64).reshape(2, 32) % 90)
    return [str(tmp_path / "phi3"), "--data", str(tmp_path / "ids.npy"), "--heads", "1-2"]


@pytest.mark.parametrize("case, expected", [
    (lambda tmp: ["demo", "--heads", "1-1"], "names one layer twice"),
    (lambda tmp: ["demo", "--heads", "0-9"], "out of range"),
    (_phi3, "fuses q/k/v in self_attn.qkv_proj"),
], ids=["pair-with-itself", "layer-out-of-range", "unsupported-family"])
def test_bad_head_tables_fail_in_one_line(case, expected, tmp_path, capsys, one_thread):
    output = tmp_path / "out" / "audit.json"
    code = main(["audit", *case(tmp_path), *FAST, "--json", str(output)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and expected in lines[-1] and lines[-1].startswith("swapkl: error: "), lines
    assert "Traceback" not in "\n".join(lines) and not output.exists()
