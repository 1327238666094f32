"""Simultaneous rank intervals (analysis/simultaneous_ranks.py): joint coverage on truths resampled from the
measured tables, and how many pair cases fail under the new rule against the old one on those tables.

    python benchmarks/statistics/simultaneous_rank_coverage.py --replicates 500 --resamples 300

Tables: benchmarks/results/study/smollm2-135m_all.npz (435 pairs x 64 sequences), gemma3-270m_all.npz (153 x 64),
benchmarks/results/agreement/demo_all.npz (28 x 32): per-sequence KL of replacement(i->j), replacement(j->i) and
interchange for every pair. A truth is a population of sequences: the table's own sequences ("measured"), or the
same with every pair's mean pulled toward the grand mean of its protocol ("pulled 4x": differences a quarter the
size, so ranks are closer and the intervals must widen). Each replicate draws a calibration set of the table's
size from the population, bootstraps it as the audit does (R = max of the two directions), and checks that every
pair's true rank under R and under I lies in its interval (joint over all pairs and both protocols, the claim the
pair cases rest on). A coverage from t replicates has a standard error of about sqrt(0.95 * 0.05 / t): 1 point at
500.

Then the failure counts: on each table as measured (1000 resamples, seed 0, as the audit), the pair cases that
fail under the old rule (one unadjusted paired 95% comparison per two pairs, `paired_rank_intervals`) and the new
(simultaneous, `joint_rank_intervals`), at several rank tolerances, and how many failing pairs touch a top-k
removal set (either protocol's min-partner set at k <= 4).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_swapkl.analysis import agreement, stats  # noqa: E402
from pytest_swapkl.analysis.pair_rules import SetRule  # noqa: E402
from pytest_swapkl.analysis.simultaneous_ranks import joint_rank_intervals  # noqa: E402
from pytest_swapkl.cases import touching_counts  # noqa: E402

TABLES = {"demo": ROOT / "benchmarks/results/agreement/demo_all.npz",
          "gemma3-270m": ROOT / "benchmarks/results/study/gemma3-270m_all.npz",
          "smollm2-135m": ROOT / "benchmarks/results/study/smollm2-135m_all.npz"}
PULLS = {"measured": 1.0, "pulled 4x": 0.25}
TOLERANCES = [("1 rank", 1, False), ("5%", 0.05, True), ("10% (default)", 0.10, True), ("25%", 0.25, True)]


def load(path: Path) -> dict:
    data = np.load(path)
    return {key: data[key] for key in ("pairs", "replacement_ij", "replacement_ji", "interchange")} | {
        "floor": float(data["noise_floor"]), "n_layers": int(data["n_layers"])}


def pulled(table: dict, pull: float) -> dict:
    """Every pair's per-sequence values shifted so its mean moves toward its protocol's grand mean by 1 - pull."""
    out = dict(table)
    for key in ("replacement_ij", "replacement_ji", "interchange"):
        values = table[key]
        means = values.mean(1, keepdims=True)
        out[key] = values - (1 - pull) * (means - means.mean())
    return out


def boot(table: dict, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R and I bootstrap means [n_resamples, n_pairs] on shared draws, and their estimates."""
    ij, ji, swap = table["replacement_ij"], table["replacement_ji"], table["interchange"]
    r_samples = np.maximum(ij[:, indices].mean(-1), ji[:, indices].mean(-1)).T
    i_samples = swap[:, indices].mean(-1).T
    return r_samples, i_samples, np.maximum(ij.mean(1), ji.mean(1)), swap.mean(1)


def true_ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values, kind="stable"), kind="stable") + 1


def coverage(table: dict, replicates: int, resamples: int, alpha: float, seed: int) -> dict:
    n_seq = table["interchange"].shape[1]
    truth_r = true_ranks(np.maximum(table["replacement_ij"].mean(1), table["replacement_ji"].mean(1)))
    truth_i = true_ranks(table["interchange"].mean(1))
    rng = np.random.default_rng(seed)
    joint = both = width = 0
    seconds = 0.0
    for replicate in range(replicates):
        draw = rng.integers(0, n_seq, n_seq)
        audit = {key: (value[:, draw] if key in ("replacement_ij", "replacement_ji", "interchange") else value)
                 for key, value in table.items()}
        r_samples, i_samples, r_values, i_values = boot(audit, stats.bootstrap_indices(n_seq, resamples, replicate))
        start = time.perf_counter()
        rank_r, rank_i = joint_rank_intervals([r_samples, i_samples], [r_values, i_values], table["floor"], alpha)
        seconds += time.perf_counter() - start
        inside_r = (rank_r[:, 0] <= truth_r) & (truth_r <= rank_r[:, 1])
        inside_i = (rank_i[:, 0] <= truth_i) & (truth_i <= rank_i[:, 1])
        joint += bool(inside_r.all() and inside_i.all())
        both += int(inside_r.sum() + inside_i.sum())
        width += float((rank_r[:, 1] - rank_r[:, 0]).mean() + (rank_i[:, 1] - rank_i[:, 0]).mean()) / 2
    n = len(truth_r)
    return {"joint": joint / replicates, "each": both / (2 * n * replicates), "width": width / replicates,
            "seconds": seconds / replicates}


def failures(table: dict, alpha: float) -> list[list]:
    n_seq = table["interchange"].shape[1]
    r_samples, i_samples, r_values, i_values = boot(table, stats.bootstrap_indices(n_seq, 1000, 0))
    floor, pairs = table["floor"], [tuple(map(int, p)) for p in table["pairs"]]
    start = time.perf_counter()
    new = joint_rank_intervals([r_samples, i_samples], [r_values, i_values], floor, alpha)
    new_seconds = time.perf_counter() - start
    old = [agreement.paired_rank_intervals(s, v, floor) for s, v in ((r_samples, r_values), (i_samples, i_values))]
    r = (r_values, *stats.intervals(r_samples))
    i = (i_values, *stats.intervals(i_samples))
    rule = SetRule()
    sets = [(k, rule.choose(pairs, list(r_values), k, table["n_layers"]),
             rule.choose(pairs, list(i_values), k, table["n_layers"])) for k in (1, 2, 3, 4)]
    rows = []
    for label, tolerance, fraction in TOLERANCES:
        tolerances = agreement.Tolerances(rank=tolerance, rank_is_fraction=fraction)
        counts = []
        for rank_r, rank_i in (old, new):
            passed, _, _ = agreement.pair_outcomes(r, i, floor, tolerances, rank_r=rank_r, rank_i=rank_i)
            failing = [pair for pair, ok in zip(pairs, passed) if not ok]
            counts.append(f"{len(failing)} ({touching_counts(failing, sets)[4]})")
        rows.append([label, tolerances.rank_slots(len(pairs)), *counts])
    return rows, new_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples per simulated audit")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--truths", default=",".join(PULLS), help="which truths: measured, pulled 4x")
    parser.add_argument("--skip-coverage", action="store_true")
    args = parser.parse_args()
    print("command: python benchmarks/statistics/simultaneous_rank_coverage.py " + " ".join(sys.argv[1:]))
    names = args.tables.split(",")
    tables = {name: load(TABLES[name]) for name in names}
    if not args.skip_coverage:
        rows = []
        for name in names:
            for truth in args.truths.split(","):
                pull = PULLS[truth]
                result = coverage(pulled(tables[name], pull), args.replicates, args.resamples, args.alpha, seed=1)
                rows.append([name, len(tables[name]["pairs"]), truth, args.replicates,
                             f"{100 * result['joint']:.1f}%", f"{100 * result['each']:.2f}%",
                             f"{result['width']:.1f}", f"{result['seconds']:.2f}"])
                print(tabulate([rows[-1]]), flush=True)
        print(f"\njoint coverage of every pair's true rank under R and I (target >= {100 * (1 - args.alpha):g}%), "
              f"{args.resamples} resamples per simulated audit")
        print(tabulate(rows, headers=["table", "pairs", "truth", "replicates", "joint coverage", "per-interval",
                                      "mean width (ranks)", "seconds per audit"]))
    for name in names:
        rows, seconds = failures(tables[name], args.alpha)
        print(f"\n{name}: failing pair cases (of which touching a top-k set at k <= 4), 1000 resamples, seed 0; "
              f"simultaneous intervals in {seconds:.2f} s")
        print(tabulate(rows, headers=["tolerance", "ranks", "old rule (unadjusted)", "new rule (simultaneous)"]))


if __name__ == "__main__":
    main()
