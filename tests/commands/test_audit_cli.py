"""`swapkl audit` end to end on the bundled demo model and corpus."""

import json

import numpy as np
import pytest

from pytest_swapkl import engine
from pytest_swapkl.commands.cli import main
from pytest_swapkl.console import number, rank
from pytest_swapkl.engine.probes import audit_probes, parse_pairs
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

SMALL = ["--tokens", "2048", "--seq-len", "128", "--bootstrap", "200", "--device", "cpu"]


@pytest.fixture(scope="module")
def demo():
    return load_model("demo", device="cpu")


def run_audit(tmp_path, capsys, *argv):
    output = tmp_path / "audit.json"
    assert main(["audit", *argv, "--json", str(output)]) == 0
    return json.loads(output.read_text()), capsys.readouterr().out


def test_audit_demo_json_and_table(tmp_path, capsys):
    document, table = run_audit(tmp_path, capsys, "demo", "--pairs", "all", *SMALL)
    assert document["schema"] == "swapkl/1"
    assert set(document["model"]) >= {"name", "revision", "architecture", "n_layers", "dtype", "device"}
    assert document["model"]["architecture"] == "GPTNeoXForCausalLM" and document["model"]["n_layers"] == 8
    assert document["model"]["dtype"] == "float32" and document["model"]["device"] == "cpu"
    assert set(document["data"]) >= {"source", "n_sequences", "seq_len", "n_tokens", "sha256"}
    assert document["data"]["n_tokens"] == 2048 and document["data"]["seq_len"] == 128
    assert set(document["versions"]) == {"swapkl", "torch", "transformers"}
    assert document["base"]["ppl"] > 1 and document["seconds"] > 0
    assert len(document["pairs"]) == 28 and len(document["removal"]) == 8
    for pair in document["pairs"]:
        assert set(pair) >= {"i", "j", "replacement_ij", "replacement_ji", "interchange"}
        low, high = pair["ci"]["interchange"]
        assert low <= pair["interchange"] <= high
    kls = [p[key] for p in document["pairs"] for key in ("replacement_ij", "replacement_ji", "interchange")]
    assert max(kls) > 10 * min(kls), "a trained model's layers are not all alike"
    assert -1 <= document["summary"]["spearman"] <= 1
    reliability = document["summary"]["reliability"]  # split-half, each protocol, beside the correlations
    assert -1 <= reliability["replacement"] <= 1 and -1 <= reliability["interchange"] <= 1
    assert reliability["floor"] == 0.99 and reliability["below_floor"] == (min(reliability["replacement"],
                                                                               reliability["interchange"]) < 0.99)
    assert -1 <= document["summary"]["spearman_disattenuated"] <= 1
    assert f"split-half reliability R {reliability['replacement']:.4f}" in table
    assert [t["k"] for t in document["summary"]["topk"]] == [1, 2, 3, 4]
    for text in ("L03-L04", "removed layer", "Spearman(R, I)", "interchange removes", "base perplexity"):
        assert text in table
    rows = [line.split() for line in table.splitlines() if line.startswith("L0") and line.count("[") == 2]
    assert len(rows) == 28
    for row, pair in zip(rows, document["pairs"]):  # I/R with 3 significant digits, trailing zeros kept; whole ranks
        assert row[-3] == number(pair["ratio"]) and row[-2:] == [rank(pair["rank_replacement"]),
                                                                  rank(pair["rank_interchange"])]
        assert all(isinstance(pair[key], int) or pair[key] % 1 == 0.5 for key in ("rank_replacement",
                                                                                 "rank_interchange"))
    assert "{L" in table and "L05  " in table  # layer sets {L03, L05}, removed layers L05: one spelling


def test_same_inputs_same_json(tmp_path, capsys):
    first, _ = run_audit(tmp_path, capsys, "demo", *SMALL)
    second, _ = run_audit(tmp_path, capsys, "demo", *SMALL)
    for document in (first, second):  # timings are the only thing allowed to differ
        document.pop("seconds"), document.pop("measure_seconds")
    assert first == second


def test_npy_reproduces_engine_numbers_exactly(tmp_path, capsys, demo):
    calibration = load_calibration("demo", demo.tokenizer, tokens=2048, seq_len=128, seed=3)
    np.save(tmp_path / "ids.npy", calibration.input_ids.numpy())
    document, _ = run_audit(tmp_path, capsys, "demo", "--data", str(tmp_path / "ids.npy"), "--pairs", "window:2",
                            "--batch-size", "4", "--bootstrap", "50", "--device", "cpu")
    assert document["data"]["sha256"] == calibration.sha256
    pairs = parse_pairs("window:2", demo.n_layers)
    probes = audit_probes(pairs, demo.n_layers)
    direct = engine.measure(demo.model, calibration.input_ids, probes, batch_size=4)
    by_name = {p.name: direct.kl(p) for p in probes}
    for row in document["pairs"]:
        i, j = row["i"], row["j"]
        assert row["replacement_ij"] == by_name[f"replacement({i}->{j})"]
        assert row["replacement_ji"] == by_name[f"replacement({j}->{i})"]
        assert row["interchange"] == by_name[f"interchange({i},{j})"]
    for row in document["removal"]:
        assert row["kl"] == by_name[f"removal({row['layer']})"]
    assert document["base"]["ppl"] == pytest.approx(direct.base_ppl, rel=1e-12)


def test_the_cli_audit_opens_on_the_reports_verdict(tmp_path, capsys, monkeypatch):
    """Issue 37: `swapkl audit` prints the sentence `swapkl report` opens on, first, and never says "agree" and
    "would remove different layers" in one sentence."""
    from pytest_swapkl.commands.cli import main

    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    assert main(["audit", "demo", "--tokens", "512", "--seq-len", "64", "--no-resume", "--json",
                 str(tmp_path / "a.json")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert main(["report", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "a.md")]) == 0
    reported = (tmp_path / "a.md").read_text().splitlines()[2].strip("*").replace("\\", "")
    assert first.startswith("verdict: Replacement and interchange ")
    assert first[len("verdict: "):] == reported
    assert not ("agree on this model" in first and "remove different layers" in first)


WINDOWED = ["--pairs", "adjacent", "--prune-k", "2", "--heldout", "demo", "--heldout-window", "64",
            "--heldout-stride", "32", "--tokens", "1024", "--seq-len", "128", "--bootstrap", "200",
            "--noise-probes", "0", "--device", "cpu", "--no-resume"]


def test_windowed_removal_costs_equal_the_plain_sliding_window_loop(tmp_path, capsys, demo):
    from window_reference import pruned_copy, reference_loop

    from pytest_swapkl.audit.runner import locate
    from pytest_swapkl.commands.cli import build_parser

    document, table = run_audit(tmp_path, capsys, "demo", *WINDOWED)
    held = document["heldout"]
    assert held["evaluator"] == "sliding-window" and (held["window"], held["stride"]) == (64, 32)
    assert held["source"] == "demo (held-out part)" and held["n_sequences"] == held["windows"]
    assert f"{held['windows']} sliding windows of 64 (stride 32)" in table
    assert f"costs on {held['windows']} held-out windows" in table
    # the stream: --heldout demo with --data demo is the corpus's chunks the calibration left, joined in order
    stream = locate(build_parser().parse_args(["audit", "demo", *WINDOWED])).heldout.input_ids
    assert held["n_tokens"] == len(stream) == 1024 and held["scored_tokens"] == 1023
    base_nll, _ = reference_loop(demo.model, stream, 64, 32)
    pruning = document["pruning"]
    assert pruning["heldout_units"] == "windows" and pruning["n_heldout_sequences"] == held["windows"]
    assert pruning["heldout_base_ppl"] == pytest.approx(np.exp(base_nll.sum() / 1023), rel=1e-5)
    for budget in pruning["budgets"]:
        for method, layers in budget["sets"].items():
            nll, kl = reference_loop(pruned_copy(demo.model, layers), stream, 64, 32, base=demo.model)
            assert budget["heldout_kl"][method] == pytest.approx(kl.sum() / 1023, rel=1e-5), (method, layers)
            assert budget["heldout_ppl"][method] == pytest.approx(np.exp(nll.sum() / 1023), rel=1e-5)
            low, high = budget["heldout_kl_ci"][method]
            assert low <= budget["heldout_kl"][method] <= high


@pytest.mark.parametrize("argv, message", [
    (["--heldout-window", "1"], "--heldout-window: must be an integer >= 2 (tokens per window), got 1"),
    (["--heldout-stride", "8"], "--heldout-stride shapes the sliding-window evaluator: add --heldout-window W"),
    (["--heldout-words", "80"], "--heldout-words shapes the sliding-window evaluator: add --heldout-window W"),
    (["--heldout-window", "8", "--heldout-stride", "16"], "--heldout-stride 16 is longer than --heldout-window 8"),
    (["--prune-k", "1", "--heldout-window", "8", "--heldout-words", "80"], "--heldout-words cuts a held-out text"),
    (["--prune-k", "1", "--heldout-window", "100000"], "--heldout-window 100000: the model reads at most"),
])
def test_window_options_that_do_not_fit_are_one_line(argv, message, capsys):
    assert main(["audit", "demo", *argv, *SMALL, "--no-resume"]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
