"""`swapkl trajectory`: protocol-gap statistics over a series of checkpoints."""

import argparse
import json
import os
import shutil
import statistics

import pytest
import torch
from safetensors.torch import load_file, save_file

from pytest_swapkl.audit.runner import run_audit
from pytest_swapkl.commands import trajectory
from pytest_swapkl.errors import InputError
from pytest_swapkl.inputs.loading import DEMO_MODEL_DIR
from pytest_swapkl.options import OPTIONS

NOISE = {"step0": 0.0, "step1": 0.15, "step2": 0.4}  # label -> relative weight noise


pytestmark = pytest.mark.usefixtures("one_thread")


def small_options(**changes):
    options = argparse.Namespace(**{o.name: o.default for o in OPTIONS}, model=None)
    options.tokens, options.seq_len, options.pairs, options.device = 1024, 128, "all", "cpu"
    options.prune_k, options.bootstrap = 2, 50
    for name, value in changes.items():
        setattr(options, name, value)
    return options


def derived_checkpoint(folder, scale, seed):
    """The demo model with seeded Gaussian noise (relative to each tensor's std) added to its layer weights."""
    shutil.copytree(DEMO_MODEL_DIR, folder)
    weights = load_file(folder / "model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in weights.items():
        if ".layers." in name and tensor.is_floating_point() and tensor.numel() > 1:
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            weights[name] = tensor + scale * tensor.std() * noise
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("trajectory")
    checkpoints = [(label, str(derived_checkpoint(root / label, scale, seed)), None)
                   for seed, (label, scale) in enumerate(NOISE.items())]
    notices = []
    rows = trajectory.audit_series(checkpoints, small_options(), notice=notices.append)
    return checkpoints, rows, notices


def by_hand_median(document, distance):
    ratios = [p["interchange"] / p["replacement"] for p in document["pairs"]
              if p["j"] - p["i"] == distance and p["replacement"]]
    return statistics.median(ratios) if ratios else None


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_one_row_per_checkpoint_in_order(series):
    checkpoints, rows, notices = series
    assert [row["label"] for row in rows] == list(NOISE)
    assert [row["model"] for row in rows] == [spec for _, spec, _ in checkpoints]
    assert [row["document"]["model"]["name"] for row in rows] == [spec for _, spec, _ in checkpoints]
    assert len(notices) == len(checkpoints) + 1 and "1/3" in notices[0]
    assert notices[-1].startswith("trajectory: 3 checkpoints audited in ")
    # the noise scales really give different checkpoints
    assert len({row["statistics"]["base_ppl"] for row in rows}) == 3


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_statistics_match_each_checkpoints_own_audit(series):
    checkpoints, rows, _ = series
    own, _, _ = run_audit(small_options(model=checkpoints[1][1]))  # one checkpoint audited on its own
    assert own["pairs"] == rows[1]["document"]["pairs"]
    for row in rows:
        document, stats = row["document"], row["statistics"]
        assert stats["median_ratio"]["1"] == pytest.approx(by_hand_median(document, 1), rel=1e-12)
        assert stats["median_ratio"]["3"] == pytest.approx(by_hand_median(document, 3), rel=1e-12)
        assert stats["spearman"] == document["summary"]["spearman"]
        assert stats["kendall"] == document["summary"]["kendall"]
        assert stats["base_ppl"] == document["base"]["ppl"]
        assert stats["jaccard"] == {str(t["k"]): t["jaccard"] for t in document["summary"]["topk"]}
        assert {"2", "4"} <= set(stats["jaccard"])
        assert sorted(stats["pruning"]) == ["1", "2"]
        for budget in document["pruning"]["budgets"]:
            for method in ("replacement", "interchange"):
                assert stats["pruning"][str(budget["k"])][method] == {  # held-out costs since issue 15
                    "kl": budget["heldout_kl"][method], "ppl": budget["heldout_ppl"][method],
                    "kl_ci": budget["heldout_kl_ci"][method], "calibration_kl": budget["kl"][method]}
    assert trajectory.gap_statistics(own) == rows[1]["statistics"]


def test_statistics_edge_cases():
    document = {"base": {"ppl": 3.0}, "summary": {"spearman": None, "kendall": None, "topk": []},
                "pairs": [{"i": 0, "j": 1, "interchange": 0.2, "replacement": 0.0},
                          {"i": 1, "j": 2, "interchange": 0.3, "replacement": 0.1},
                          {"i": 0, "j": 2, "interchange": 0.3, "replacement": 0.1}]}
    stats = trajectory.gap_statistics(document)
    assert stats["median_ratio"] == {"1": pytest.approx(3.0), "3": None}  # R == 0 skipped; no pair at d=3
    assert "pruning" not in stats and stats["jaccard"] == {}


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_document_json_table_and_plot(series, tmp_path, monkeypatch):
    from pytest_swapkl.audit.results import write_json

    _, rows, _ = series
    document = trajectory.trajectory_document(rows)
    assert document["schema"] == "swapkl-trajectory/1"
    assert [c["label"] for c in document["checkpoints"]] == list(NOISE)
    assert all(c["audit"]["schema"] == "swapkl/1" for c in document["checkpoints"])

    target = tmp_path / "out" / "trajectory.json"
    write_json(document, target)
    assert json.loads(target.read_text()) == json.loads(json.dumps(document))
    assert [p.name for p in target.parent.iterdir()] == ["trajectory.json"]  # no temporary left behind
    # atomic: a write that fails midway leaves the previous file whole
    def broken_replace(*_):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_json({"schema": "other"}, target)
    monkeypatch.undo()
    assert json.loads(target.read_text())["schema"] == "swapkl-trajectory/1"
    assert [p.name for p in target.parent.iterdir()] == ["trajectory.json"]

    table = trajectory.render_trajectory(rows).splitlines()
    assert len(table) == 2 + len(rows)  # header, rule, one line per checkpoint
    assert "median I/R d=1" in table[0] and "Jaccard k=4" in table[0] and "prune KL k=2 (I)" in table[0]
    assert [line.split()[0] for line in table[2:]] == list(NOISE)

    pytest.importorskip("matplotlib")
    png = trajectory.plot_trajectory(rows, tmp_path / "plots" / "trajectory.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_plot_without_matplotlib(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(InputError, match=r"^plotting needs matplotlib: pip install matplotlib$"):
        trajectory.plot_trajectory([], tmp_path / "x.png")


def test_missing_checkpoint_folder_is_named(tmp_path):
    missing = tmp_path / "step9000"
    with pytest.raises(InputError, match="step9000") as error:
        trajectory.audit_series([("a", "demo", None), ("b", str(missing), None)], small_options(),
                                notice=lambda _: None)
    assert "\n" not in str(error.value)


def test_cli_series_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "t.json"
    argv = ["demo", "demo", "--labels", "first,second", "--tokens", "256", "--seq-len", "64", "--device", "cpu",
            "--bootstrap", "10", "--json", str(out)]
    if trajectory._has_matplotlib():
        argv += ["--plot", str(tmp_path / "t.png")]
    assert trajectory.main_trajectory(argv) == 0
    printed = capsys.readouterr().out
    assert "first" in printed and "second" in printed
    document = json.loads(out.read_text())
    assert [c["label"] for c in document["checkpoints"]] == ["first", "second"]
    assert document["checkpoints"][0]["statistics"] == document["checkpoints"][1]["statistics"]
    if trajectory._has_matplotlib():
        assert (tmp_path / "t.png").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["./no/such/ckpt"], "no such folder: ./no/such/ckpt"),
    (["a/b", "c/d", "--revisions", "step1,step2"], "--revisions takes a single hub id"),
    (["a/b", "--revision", "step1"], "swapkl trajectory takes --revisions REV[,REV...] (the revisions of one hub id), "
                                     "not --revision: write --revisions step1"),
    (["demo", "--labels", "x,y"], "--labels has 2 labels for 1 checkpoints"),
    (["demo", "--tokens", "0"], "must be a positive integer"),
])
def test_cli_input_errors_are_one_line(argv, message, capsys):
    assert trajectory.main_trajectory(argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_revisions_series():
    series = trajectory.checkpoint_series(["EleutherAI/pythia-70m"], ["step1000", "step8000"])
    assert series == [("step1000", "EleutherAI/pythia-70m", "step1000"),
                      ("step8000", "EleutherAI/pythia-70m", "step8000")]
    assert trajectory.checkpoint_series(["runs/a/", "b"], labels=["x", "y"]) == [("x", "runs/a/", None),
                                                                              ("y", "b", None)]


def test_each_checkpoint_line_says_time_elapsed_and_an_estimate(monkeypatch):
    """One audit per checkpoint: from the second on, its line says the time so far and the mean time per
    finished checkpoint times those left; a closing line gives the total (a fake clock and fake audits)."""
    from pytest_swapkl.audit import runner

    clock = iter([0.0, 0.0, 30.0, 60.0, 90.0])  # start, then before checkpoints 1, 2, 3, then the end
    monkeypatch.setattr(runner, "model_from_options", lambda options, notice=None: object())
    monkeypatch.setattr(runner, "run_audit", lambda *args, **kwargs: ({"pairs": [], "summary": {}}, None, None))
    notices = []
    trajectory.audit_series([("a", "demo", None), ("b", "demo", None), ("c", "demo", None)], small_options(),
                            notice=notices.append, clock=lambda: next(clock))
    assert notices == ["trajectory 1/3: a (demo)",
                       "trajectory 2/3: b (demo), 30 s elapsed, ~60 s left",
                       "trajectory 3/3: c (demo), 60 s elapsed, ~30 s left",
                       "trajectory: 3 checkpoints audited in 90 s"]
    assert trajectory.series_estimate(0, 3, 5.0) == ""
