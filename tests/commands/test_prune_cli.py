"""`swapkl prune`: the command end to end on the demo model, the saved pruned model, bad input."""

import json
import re

import numpy as np
import pytest

from pytest_swapkl import engine
from pytest_swapkl.analysis import paired, stats
from pytest_swapkl.commands.cli import main
from pytest_swapkl.inputs.data import load_calibration, load_heldout
from pytest_swapkl.inputs.loading import load_model
from pytest_swapkl.report import guided

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--tokens", "1024", "--seq-len", "64", "--device", "cpu"]


def test_prune_json_and_saved_model_reproduce_the_measured_numbers(tmp_path, capsys):
    out, saved = tmp_path / "prune.json", tmp_path / "pruned"
    code = main(["prune", "demo", "--guide", "interchange", "--search", "beam", "--objective", "ppl",
                 "--budgets", "2", "--beam-width", "2", "--json", str(out), "--save-pruned", str(saved), *SMALL])
    assert code == 0
    printed = capsys.readouterr().out
    assert "objective ppl" in printed and "written to" in printed
    document = json.loads(out.read_text())
    [result] = document["prune"]["results"]
    assert result["search"] == "beam" and result["guide"] == "interchange" and result["k"] == 2
    assert result["evaluations"] > 0 and result["layer_passes"] > 0 and result["measure_calls"] == 2
    heldout = result["heldout"]
    assert heldout["ppl"]["low"] <= heldout["ppl"]["cost"] <= heldout["ppl"]["high"]
    assert document["saved"]["removed"] == result["layers"]
    # The saved folder is an ordinary checkpoint: loaded on its own it has the measured perplexities.
    pruned = load_model(str(saved), device="cpu")
    assert pruned.n_layers == 8 - 2
    full = load_model("demo", device="cpu")
    calibration = load_calibration("demo", full.tokenizer, tokens=1024, seq_len=64, seed=0)
    held = load_heldout(None, calibration, full.tokenizer, tokens=1024, seed=0)
    assert document["heldout"]["sha256"] == held.sha256
    assert engine.measure(pruned.model, calibration.input_ids, []).base_ppl == pytest.approx(result["cost"], rel=1e-6)
    assert engine.measure(pruned.model, held.input_ids, []).base_ppl == pytest.approx(heldout["ppl"]["cost"],
                                                                                     rel=1e-6)


def test_ceiling_and_exhaustive_reference(tmp_path, capsys):
    out = tmp_path / "prune.json"
    code = main(["prune", "demo", "--guide", "removal,none", "--search", "one-shot,exhaustive", "--objective", "kl",
                 "--max-cost", "0.08", "--json", str(out), *SMALL])
    assert code == 0
    results = json.loads(out.read_text())["prune"]["results"]
    exhaustive = next(r for r in results if r["search"] == "exhaustive")
    for result in results:
        assert result["cost"] <= 0.08 and result["stopped"] in ("ceiling", "evaluations")
        assert result["k"] <= exhaustive["k"]  # nothing removes more within B than the exhaustive search
        if result["k"] == exhaustive["k"]:
            assert result["heldout"]["vs_best"]["reference"] == exhaustive["layers"]


@pytest.mark.parametrize("multiplicity", ["holm", "bh"])
def test_every_vs_best_verdict_recomputes_from_the_saved_units(tmp_path, capsys, multiplicity):
    """The file alone (per-unit held-out costs keyed by set, bootstrap seed and size, margin, adjustment) gives every
    paired vs_best comparison again: raw and adjusted verdicts, p-values, the ratio's interval."""
    out = tmp_path / "prune.json"
    assert main(["prune", "demo", "--guide", "removal,interchange", "--search", "one-shot,greedy,exhaustive",
                 "--objective", "kl,ppl", "--budgets", "1,2", "--multiplicity", multiplicity,
                 "--equivalence-margin", "0.2", "--json", str(out), *SMALL]) == 0
    prune = json.loads(out.read_text())["prune"]
    settings = prune["verdicts"]
    assert (settings["multiplicity"], settings["equivalence_margin"]) == (multiplicity, 0.2)
    draws = settings["bootstrap"]
    saved, again = [], []
    for result in prune["results"]:
        versus = result["heldout"].get("vs_best")
        if versus is None or versus["same_set"]:
            continue
        units = prune["heldout_units"][result["objective"]]
        a, b = (np.array(units["per_unit"][",".join(map(str, s))]) for s in (result["layers"], versus["reference"]))
        indices = stats.bootstrap_indices(units["n_units"], draws["n_resamples"], draws["seed"], groups=units["groups"])
        compare = paired.compare_log_costs if result["objective"] == "ppl" else paired.compare_costs
        saved.append(versus)
        again.append(compare(a, b, indices, margin=settings["equivalence_margin"]))
    assert len(saved) >= 4
    for versus, recomputed in zip(saved, paired.adjusted_table(again, settings["multiplicity"])):
        assert (recomputed.verdict, recomputed.verdict_adjusted) == (versus["verdict"], versus["verdict_adjusted"])
        assert recomputed.p == pytest.approx(versus["p"], abs=1e-4)
        assert recomputed.p_adjusted == pytest.approx(versus["p_adjusted"], abs=1e-3)
        assert recomputed.ratio_high == pytest.approx(versus["ratio_high"], rel=1e-6)
    study = guided.read_study(json.loads(out.read_text()), "prune.json")
    assert study.verdicts["multiplicity"] == multiplicity and "equivalence margin 0.2" in guided.objective_title(
        study, "kl")


def test_prune_states_only_comparisons_it_made_and_the_ceiling_in_absolute_terms(capsys):
    """Issue 37: one search, one set per budget: no "same set" against itself, and the ceiling as a number."""
    assert main(["prune", "demo", "--guide", "interchange", "--search", "beam", "--objective", "ppl",
                 "--max-cost", "10%", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "same set" not in out and "vs exhaustive" not in out
    assert "vs cheapest found (paired 95%" in out and "no exhaustive search ran" in out
    assert "after holm" in out and "margin 0.2" in out
    base = float(re.search(r"full model ([0-9.]+) \(calibration\)", out).group(1))
    ceiling = float(re.search(r"ceiling ([0-9.]+) \(10% of the full model, on calibration text\)", out).group(1))
    assert ceiling == pytest.approx(1.1 * base, rel=2e-3)  # both printed to 3 significant digits


@pytest.mark.parametrize("argv, message", [
    (["--search", "beam,greedy", "--save-pruned", "X"], "--save-pruned saves one model"),
    (["--search", "sideways"], "--search 'sideways'"),
    (["--guide", "vibes"], "--guide 'vibes'"),
    (["--objective", "bleu"], "--objective 'bleu'"),
    (["--max-cost", "lots"], "--max-cost 'lots'"),
    (["--budgets", "2", "--max-cost", "1"], "not allowed with argument"),
    (["--budgets", "0"], "--budgets '0'"),
    (["--max-cost", "5%", "--objective", "kl"], "which is 0"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "x") if a == "X" else a for a in argv]
    assert main(["prune", "demo", *argv, *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("swapkl: error:") and message in error and "\n" not in error


def test_save_folder_that_holds_files_is_refused(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["prune", "demo", "--search", "one-shot", "--budgets", "1", "--save-pruned", str(tmp_path),
                 *SMALL]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_prune_says_what_it_does_while_it_runs(capsys, monkeypatch):
    """Issue 37: prune printed nothing for 43 minutes; now each phase, and the searches with an estimate."""
    monkeypatch.setenv("SWAPKL_PROGRESS", "lines")
    monkeypatch.setenv("SWAPKL_PROGRESS_SECONDS", "0.001")
    assert main(["prune", "demo", "--guide", "interchange,none", "--search", "beam,greedy", "--objective", "ppl",
                 "--budgets", "1,2", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "swapkl: measuring the guides (interchange, none) on the calibration text" in err
    assert "swapkl: 6 searches (search x guide x objective x budget)" in err
    assert re.search(r"swapkl: [1-5]/6 searches, \d+ s elapsed, ~\d+ s left", err), err
    assert "swapkl: held-out costs of the" in err and "swapkl: 6/6 searches in" in err


def test_paper_beam_with_held_out_costs_from_the_sliding_window_evaluator(tmp_path, capsys):
    from pytest_swapkl.analysis.sliding_window import sliding_window_ppl
    from pytest_swapkl.inputs.heldout_stream import load_heldout_stream

    text = tmp_path / "heldout.txt"
    text.write_text("\n\n".join(f"The river ran past the old mill and the miller counted {n} sacks of grain before "
                                "night came down over the valley." for n in range(40)))
    out = tmp_path / "prune.json"
    code = main(["prune", "demo", "--guide", "interchange", "--search", "paper-beam", "--objective", "ppl",
                 "--budgets", "2", "--max-evaluations", "40", "--heldout", str(text), "--heldout-window", "64",
                 "--heldout-stride", "32", "--heldout-words", "300", "--json", str(out), *SMALL])
    assert code == 0
    document = json.loads(out.read_text())
    [result] = document["prune"]["results"]
    assert result["search"] == "paper-beam" and result["evaluations"] <= 40
    held = document["heldout"]
    assert held["evaluator"] == "sliding-window" and (held["window"], held["stride"], held["words"]) == (64, 32, 300)
    full = load_model("demo", device="cpu")
    stream = load_heldout_stream(str(text), full.tokenizer, words=300)
    assert held["sha256"] == stream.sha256 and held["scored_tokens"] == stream.n_tokens - 1
    assert document["prune"]["base"]["ppl"]["heldout"] == pytest.approx(
        sliding_window_ppl(full.model, stream.input_ids, 64, 32), rel=1e-9)


@pytest.mark.parametrize("argv, message", [
    (["--heldout-stride", "8"], "add --heldout-window W"),
    (["--heldout-window", "32", "--heldout-stride", "64"], "--heldout-stride 64 is longer than --heldout-window 32"),
    (["--heldout-window", "32", "--heldout-words", "50"], "--heldout-words cuts a held-out text of its own"),
])
def test_window_options_without_their_stream_are_one_line(argv, message, capsys):
    assert main(["prune", "demo", "--budgets", "1", *argv, *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


@pytest.mark.parametrize("action", ["share", "merge"])
def test_action_pairs_saved_model_reloads_with_the_printed_cost(action, tmp_path, capsys):
    out, saved = tmp_path / "prune.json", tmp_path / "acted"
    assert main(["prune", "demo", "--action", action, "--action-pairs", "3-4", "--json", str(out),
                 "--save-pruned", str(saved), *SMALL]) == 0
    assert f"{action} on pairs 3-4" in capsys.readouterr().out
    document = json.loads(out.read_text())
    costs = document["saved"]["costs"]["heldout"]
    pruned = load_model(str(saved), device="cpu")
    assert pruned.n_layers == (8 if action == "share" else 7)
    full = load_model("demo", device="cpu")
    calibration = load_calibration("demo", full.tokenizer, tokens=1024, seq_len=64, seed=0)
    held = load_heldout(None, calibration, full.tokenizer, tokens=1024, seed=0)
    measured = engine.measure(pruned.model, held.input_ids, [], path="reference")
    assert measured.base_nll_per_seq == pytest.approx(costs["nll_per_seq"], abs=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--action", "merge", "--action-pairs", "3-3", "--save-pruned", "NEW"], "cannot merge with itself"),
    (["--action", "share", "--action-pairs", "0-99", "--save-pruned", "NEW"], "layer 99 is out of range"),
    (["--action", "share", "--action-pairs", "0-1", "--save-pruned", "NEW.gguf"], "not gpt_neox"),
    (["--action", "share", "--action-pairs", "0-1", "--save-pruned", "DEMO/x.gguf"], "an input of this run"),
    (["--action", "share", "--save-pruned", "DEMO"], "not an empty folder"),
    (["--action", "merge"], "give --save-pruned"),
])
def test_bad_action_input_is_one_line_and_writes_nothing(argv, message, capsys, tmp_path):
    import os

    import pytest_swapkl

    demo = os.path.join(os.path.dirname(pytest_swapkl.__file__), "data", "demo_model")
    before = sorted(os.listdir(demo))
    argv = [a.replace("NEW", str(tmp_path / "new")).replace("DEMO", demo) for a in argv]
    assert main(["prune", "demo", "--search", "one-shot", "--budgets", "1", *argv, *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("swapkl: error:") and message in error and "\n" not in error, error
    assert list(tmp_path.iterdir()) == [] and sorted(os.listdir(demo)) == before
