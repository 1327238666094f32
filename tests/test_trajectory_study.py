"""scripts/trajectory_study.py: the early-stopping rule, training resumed after a pause equal to training
straight through, the statistics of the gap across checkpoints and seeds, and the whole study end to end
at a tiny size on CPU (three seeds; the best checkpoint is the last one audited; intervals everywhere)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import trajectory_stats  # noqa: E402
import trajectory_study  # noqa: E402

from pytest_swapkl.analysis import stats  # noqa: E402

TINY = ["--layers", "3", "--width", "64", "--steps", "24", "--eval-every", "8", "--patience", "2",
        "--batch-size", "4", "--seq-len", "64", "--eval-tokens", "1024", "--audit-tokens", "512",
        "--bootstrap", "200", "--lr", "3e-3", "--warmup", "4", "--device", "cpu"]


def history(*ppls: float, every: int = 10) -> list[dict]:
    return [{"step": every * n, "heldout_ppl": ppl} for n, ppl in enumerate(ppls)]


def test_early_stopping_keeps_the_lowest_and_waits_patience_evaluations():
    # 79.99 is below 80 by less than 1%: the new best, but no progress, so patience runs out
    best, stop = trajectory_study.early_stopping(history(100, 90, 80, 81, 79.99), patience=2, min_delta=0.01)
    assert best["step"] == 40 and stop
    best, stop = trajectory_study.early_stopping(history(100, 90, 80, 81), patience=2, min_delta=0.01)
    assert best["step"] == 20 and not stop
    best, stop = trajectory_study.early_stopping(history(100, 90, 80, 81, 70), patience=2, min_delta=0.01)
    assert best["step"] == 40 and not stop
    best, stop = trajectory_study.early_stopping(history(100, 99.5, 99.2, 99.0), patience=3, min_delta=0.01)
    assert best["step"] == 30 and stop  # creeping down by less than 1% an evaluation is not progress


def test_log_spaced_audits_end_at_the_best_step():
    assert trajectory_study.log_spaced_steps(100) == [0, 16, 32, 64]
    assert trajectory_study.audited_steps({"best_step": 64}) == [0, 16, 32, 64]
    assert trajectory_study.audited_steps({"best_step": 70}) == [0, 16, 32, 64, 70]
    assert trajectory_study.audited_steps({"best_step": 0}) == [0]


def test_across_seeds_is_a_student_t_interval():
    spread = trajectory_stats.across_seeds([1.0, 2.0, 4.0, None])
    half = 4.302652729911275 * np.std([1.0, 2.0, 4.0], ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert spread["n"] == 3 and spread["mean"] == pytest.approx(7 / 3)
    assert spread["t_ci"] == pytest.approx([7 / 3 - half, 7 / 3 + half])
    assert (spread["min"], spread["max"]) == (1.0, 4.0)
    assert trajectory_stats.across_seeds([1.0])["t_ci"] == [None, None]


def test_verdict_follows_the_direction_in_which_the_gap_grows():
    assert trajectory_stats.verdict(0.1, 0.3, "up") == "grows"
    assert trajectory_stats.verdict(0.1, 0.3, "down") == "shrinks"
    assert trajectory_stats.verdict(-0.3, -0.1, "down") == "grows"
    assert trajectory_stats.verdict(-0.1, 0.3, "up") == "not distinguishable"
    assert trajectory_stats.verdict(None, None, "up") == "undefined"


def synthetic_distances(seed: int, n_sequences: int = 32, n_layers: int = 5):
    pairs = [(i, j) for i in range(n_layers) for j in range(i + 1, n_layers)]
    rng = np.random.default_rng(seed)
    r = rng.gamma(4.0, 0.25, size=(n_sequences, len(pairs))) * np.array([1 + j - i for i, j in pairs])
    i = r * rng.uniform(0.5, 1.5, size=r.shape)
    return r, i, np.array([j - i for i, j in pairs])


def test_paired_change_sees_interchange_halved_as_the_gap_growing():
    r, i, distances = synthetic_distances(0)
    draws = stats.bootstrap_indices(len(r), 500, 0)
    change = trajectory_stats.paired_change((r, i), (r, i / 2), distances, draws)
    assert change["log_mean_ratio"]["change"] == pytest.approx(math.log(2))
    assert change["log_mean_ratio"]["ci"] == pytest.approx([math.log(2), math.log(2)])
    assert change["log_mean_ratio"]["verdict"] == "grows"
    assert change["median_ratio_d1"]["verdict"] == "grows"  # every adjacent I/R halved
    assert change["spearman"]["change"] == pytest.approx(0.0)  # halving keeps every rank
    same = trajectory_stats.paired_change((r, i), (r, i), distances, draws)
    assert all(entry["verdict"] == "not distinguishable" for entry in same.values())


def test_checkpoint_gaps_carry_intervals_around_their_estimates():
    r, i, distances = synthetic_distances(1)
    gaps = trajectory_stats.checkpoint_gaps(r, i, distances, stats.bootstrap_indices(len(r), 500, 0))
    for name in ("mean_r", "mean_i", "log_mean_ratio", "median_ratio_d1", "spearman"):
        low, high = gaps[name]["ci"]
        assert low <= gaps[name]["value"] <= high, name
    assert gaps["log_mean_ratio"]["value"] == pytest.approx(math.log(r.mean() / i.mean()))


class PausingClock:
    """Time runs out after `calls` questions: the pause comes at a known step, not at whatever the machine's
    load makes of a real budget."""

    def __init__(self, calls: int):
        self.calls = calls

    def left(self) -> float:
        self.calls -= 1
        return 1e9 if self.calls >= 0 else 0.0


@pytest.mark.slow
def test_training_paused_and_resumed_equals_training_straight_through(tmp_path, one_thread):
    from safetensors.torch import load_file

    straight, paused = tmp_path / "straight", tmp_path / "paused"
    args = trajectory_study.parse_args(["--out", str(straight), "--part", "train", *TINY])
    data = trajectory_study.prepare_data(args)
    shutil.copytree(straight / "data", paused / "data")
    assert trajectory_study.train_seed(args, 0, data, PausingClock(10**9))
    resumed = trajectory_study.parse_args(["--out", str(paused), "--part", "train", *TINY])
    assert not trajectory_study.train_seed(resumed, 0, data, PausingClock(0))  # pauses before step 0
    assert not trajectory_study.train_seed(resumed, 0, data, PausingClock(13))  # pauses at step 12
    assert (paused / "checkpoints" / "seed0" / "train_state.pt").exists()
    assert trajectory_study.train_seed(resumed, 0, data, PausingClock(10**9))
    assert not (paused / "checkpoints" / "seed0" / "train_state.pt").exists()
    first, second = (json.loads((out / "seed0" / "training.json").read_text()) for out in (straight, paused))
    assert first["history"] == second["history"] and first["train_log"] == second["train_log"]
    a, b = (load_file(out / "checkpoints" / "seed0" / "best" / "model.safetensors") for out in (straight, paused))
    assert all(np.array_equal(a[name].numpy(), b[name].numpy()) for name in a)


@pytest.mark.slow
def test_tiny_study_end_to_end_on_cpu(tmp_path):
    out = tmp_path / "study"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the shared 2-core machine
    done = subprocess.run([sys.executable, str(SCRIPTS / "trajectory_study.py"), "--out", str(out),
                           "--seeds", "0,1,2", *TINY], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == trajectory_study.SCHEMA
    assert [seed["seed"] for seed in summary["seeds"]] == [0, 1, 2]
    for seed in summary["seeds"]:
        steps = [record["step"] for record in seed["checkpoints"]]
        assert steps == trajectory_study.audited_steps(seed) and steps[0] == 0
        assert seed["checkpoints"][-1]["best"] and steps[-1] == seed["best_step"]
        assert not any(record["best"] for record in seed["checkpoints"][:-1])
        evaluated = {entry["step"]: entry["heldout_ppl"] for entry in seed["heldout_history"]}
        assert evaluated[seed["best_step"]] == min(evaluated.values())
    for entry in summary["convergence"]:
        assert entry["reason"] in ("patience", "max_steps") and entry["stopped_at"] >= entry["best_step"]
    assert [row["checkpoint"] for row in summary["rows"]][0] == "init"
    assert summary["rows"][-1]["checkpoint"] == "best"
    for row in summary["rows"]:
        spread = row["log_mean_ratio"]
        assert spread["n"] == 3 and spread["t_ci"][0] <= spread["mean"] <= spread["t_ci"][1]
    for name, change in summary["init_to_best"].items():
        assert len(change["per_seed"]) == 3 and len(change["across_seeds"]["t_ci"]) == 2, name
        assert change["verdict"] in ("grows", "shrinks", "not distinguishable", "undefined")
    split = {name: np.load(out / "data" / f"{name}.npy") for name in ("validation", "calibration", "costs")}
    rows = [{row.tobytes() for row in ids} for ids in split.values()]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])  # three disjoint held-out sets
    table = (out / "summary.md").read_text()
    assert "| init |" in table and "| best |" in table and "across seeds" in table


def test_fewer_than_three_seeds_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPTS / "trajectory_study.py"), "--out", str(tmp_path),
                           "--seeds", "0,1", "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "at least 3" in done.stderr


def test_the_trend_reads_every_checkpoint_not_the_endpoints():
    """A statistic that dips and comes back: init and best are equal, so the endpoints see nothing, while every
    checkpoint shows the rise after the dip. Spearman's exact p over 4 checkpoints is a share of the 24 orderings."""
    rho, p = trajectory_stats.exact_spearman([0, 16, 32, 64], [1.0, 2.0, 3.0, 4.0])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 24)

    def seed(values):
        return {"checkpoints": [{"step": s, "best": n == len(values) - 1, "spearman": {"value": v}}
                                for n, (s, v) in enumerate(zip([0, 16, 32, 64, 128, 950], values))]}

    seeds = [seed([0.9, 0.5, 0.6, 0.7, 0.8, 0.9 + d]) for d in (0.0, 0.01, -0.01)]
    table = trajectory_stats.checkpoint_table(seeds, "spearman")
    assert len(table) == 6 and table[1]["change"]["mean"] == pytest.approx(-0.4)
    assert table[-1]["change"]["t_ci"][0] < 0 < table[-1]["change"]["t_ci"][1]  # the endpoints: no change
    trend = trajectory_stats.trend(seeds, "spearman")
    assert [s["n_checkpoints"] for s in trend["per_seed"]] == [6, 6, 6]
    assert trend["across_seeds"]["mean"] > 0 and 0 < trend["p"] < 1  # the rise after the dip: a positive trend
