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
    removal_kl = {row["layer"]: row["kl"] for row in document["removal"]}
    for row in document["pairs"]:  # the merge case's comparison: averaging against the cheaper layer's removal
        merge = row["merge_vs_removal"]
        cheaper = min((row["i"], row["j"]), key=lambda layer: (removal_kl[layer], layer))
        assert merge["removed_layer"] == cheaper and merge["a"] == pytest.approx(row["averaging"])
        assert merge["b"] == pytest.approx(removal_kl[cheaper])
    assert [(row["i"], row["j"], row["head"]) for row in document["heads"]] == [(2, 3, h) for h in range(4)]
    assert all(row["ci"][0] <= row["kl"] <= row["ci"][1] for row in document["heads"])
    markdown = tmp_path / "report.md"
    assert main(["report", str(document_path), "--markdown", str(markdown)]) == 0
    text = markdown.read_text()
    assert "## Averaging" in text and "## Heads" in text and "| 2\\<-3 |" in text  # Markdown escapes <
    assert "merge case: removing instead" in text
    page = tmp_path / "report.html"
    assert main(["report", str(document_path), "--html", str(page)]) == 0
    assert "KL of head(i&lt;-j, h)" in page.read_text(), "the head x pair heatmap's caption"


def _phi3(tmp_path):
    tiny_model("phi3").save_pretrained(tmp_path / "phi3")
    np.save(tmp_path / "ids.npy", np.arange(64).reshape(2, 32) % 90)
    return [str(tmp_path / "phi3"), "--data", str(tmp_path / "ids.npy"), "--heads", "1-2"]


def _mamba(tmp_path):
    from transformers import MambaConfig, MambaForCausalLM

    MambaForCausalLM(MambaConfig(vocab_size=96, hidden_size=16, state_size=4, num_hidden_layers=3)).save_pretrained(
        tmp_path / "mamba")
    np.save(tmp_path / "ids.npy", np.arange(64).reshape(2, 32) % 90)
    return [str(tmp_path / "mamba"), "--data", str(tmp_path / "ids.npy"), "--heads", "0-1:0"]


def test_chosen_heads_only(tmp_path, one_thread):
    document_path = tmp_path / "audit.json"
    assert main(["audit", "demo", *FAST, "--pairs", "0-1", "--heads", "2-3:0+3,1-2:1..2,2-3:1",
                 "--json", str(document_path)]) == 0
    document = json.loads(document_path.read_text())
    assert [(row["i"], row["j"], row["head"]) for row in document["heads"]] == [
        (2, 3, 0), (2, 3, 3), (2, 3, 1), (1, 2, 1), (1, 2, 2)], "a pair named twice measures the union"


@pytest.mark.parametrize("case, expected", [
    (lambda tmp: ["demo", "--heads", "1-1"], "names one layer twice"),
    (lambda tmp: ["demo", "--heads", "0-9"], "out of range"),
    (_phi3, "fuses q/k/v in self_attn.qkv_proj"),
    (lambda tmp: ["demo", "--heads", "1-2,2-3:0+4"], "--heads 2-3:0+4: head 4 is out of range, layer 2 has 4 "
     "attention heads (0..3)"),
    (lambda tmp: ["demo", "--heads", "2-3:x"], "--heads '2-3:x' is not understood"),
    (lambda tmp: ["demo", "--heads", "2-3:3..1"], "ends before it starts"),
    (_mamba, "this mamba model has no attention heads"),
], ids=["pair-with-itself", "layer-out-of-range", "unsupported-family", "head-out-of-range", "head-syntax",
        "head-run-backwards", "family-without-heads"])
def test_bad_head_tables_fail_in_one_line(case, expected, tmp_path, capsys, one_thread, monkeypatch):
    import pytest_swapkl.audit.runner as runner

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    if expected.startswith(("--heads", "this mamba")):  # the config's head count: refused before any weights load
        monkeypatch.setattr(runner, "model_from_options", no_weights)
    output = tmp_path / "out" / "audit.json"
    code = main(["audit", *case(tmp_path), *FAST, "--json", str(output)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and expected in lines[-1] and lines[-1].startswith("swapkl: error: "), lines
    assert "Traceback" not in "\n".join(lines) and not output.exists()
