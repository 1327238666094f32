"""Coverage of the rank correlations' 95% intervals by simulation, old (reflected) against new (bias-corrected,
`intervals.corrected_interval`): audits with a known truth from tests/analysis/test_intervals.py's generator,
over truths from the demo's 12/28 pairs to the real models' 153/435, and the extra cost on a 435-pair audit.

    python benchmarks/statistics/rank_interval_coverage.py --trials 200 --large-trials 100

The truth is the rank correlation of the true means (mu_r, mu_i); mu_r is evenly spread over [1, 2.2] and
mu_i = mu_r * exp(N(0, disagreement)); each sequence multiplies a probe's mean by a shared gamma factor
(variance 0.25) and its own (variance `noise`). A coverage from t trials has a standard error of about
sqrt(0.95 * 0.05 / t): 1.5 points at 200, 2.2 at 100.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "analysis"))

from test_intervals import _audit  # noqa: E402

from pytest_swapkl.analysis import intervals, stats  # noqa: E402

# (pairs, sequences, per-sequence noise of each probe, disagreement of I from R, truth seed)
CONFIGS = [(12, 32, 0.1, 0.15, 11), (12, 32, 0.1, 0.15, 1), (12, 32, 0.2, 0.3, 2), (12, 64, 0.02, 0.1, 15),
           (28, 32, 0.1, 0.15, 3), (28, 32, 0.05, 0.05, 4), (28, 32, 0.2, 0.4, 5),
           (66, 32, 0.1, 0.1, 6), (66, 32, 0.05, 0.05, 7), (66, 64, 0.2, 0.3, 8),
           (153, 64, 0.1, 0.12, 9), (153, 64, 0.05, 0.1, 10), (153, 32, 0.2, 0.12, 11),
           (435, 64, 0.1, 0.065, 12), (435, 64, 0.05, 0.05, 13), (435, 32, 0.1, 0.07, 14)]
STATISTICS = {"spearman": (stats.spearman, intervals.spearman_rows), "kendall": (stats.kendall, intervals.kendall_rows)}


def truth(n_pairs: int, disagreement: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    mu_r = np.linspace(1, 2.2, n_pairs)
    return mu_r, mu_r * np.exp(np.random.default_rng(seed).normal(0, disagreement, n_pairs))


def both_intervals(name: str, r_samples, i_samples, r_values, i_values) -> dict:
    estimate_of, rows = STATISTICS[name]
    estimate = estimate_of(r_values, i_values)
    return {"old": intervals.basic_interval(estimate, rows(r_samples, i_samples), 0.95),
            "new": intervals.corrected_interval(estimate, rows, r_samples, i_samples, r_values, i_values, 0.95)}


def coverage_row(config: tuple, trials: int, resamples: int) -> list:
    n_pairs, n_seq, noise, disagreement, seed = config
    mu_r, mu_i = truth(n_pairs, disagreement, seed)
    truths = {name: STATISTICS[name][0](mu_r, mu_i) for name in STATISTICS}
    covered, width = {}, {}
    rng = np.random.default_rng(100 + seed)
    for trial in range(trials):
        r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, n_seq=n_seq, own=noise, resamples=resamples, seed=trial)
        for name in STATISTICS:
            for method, (low, high) in both_intervals(name, r_samples, i_samples, r.mean(1), i.mean(1)).items():
                covered[name, method] = covered.get((name, method), 0) + (low <= truths[name] <= high)
                width[name, method] = width.get((name, method), 0.0) + (high - low)
    row = [n_pairs, n_seq, noise, disagreement, trials, f"{truths['spearman']:.3f}", f"{truths['kendall']:.3f}"]
    for name in STATISTICS:
        for method in ("old", "new"):
            row.append(f"{100 * covered[name, method] / trials:.1f}% ({width[name, method] / trials:.3f})")
    return row


def cost(n_pairs: int = 435, n_seq: int = 64, resamples: int = 1000) -> list:
    mu_r, mu_i = truth(n_pairs, 0.065, 12)
    r, i, r_samples, i_samples = _audit(mu_r, mu_i, np.random.default_rng(0), n_seq=n_seq, resamples=resamples)
    both_intervals("spearman", r_samples[:10], i_samples[:10], r.mean(1), i.mean(1))  # scipy's import, not timed
    rows = []
    for name in STATISTICS:
        estimate_of, statistic_rows = STATISTICS[name]
        estimate = estimate_of(r.mean(1), i.mean(1))
        timed = {"old": lambda: intervals.basic_interval(estimate, statistic_rows(r_samples, i_samples), 0.95),
                 "new": lambda: intervals.corrected_interval(estimate, statistic_rows, r_samples, i_samples,
                                                             r.mean(1), i.mean(1), 0.95)}
        seconds = {}
        for method, call in timed.items():  # best of 3: the CPU is shared
            seconds[method] = min(_seconds(call) for _ in range(3))
        rows.append([name, f"{seconds['old']:.2f}", f"{seconds['new']:.2f}", f"{seconds['new'] - seconds['old']:.2f}"])
    return rows


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200, help="simulated audits per truth up to 66 pairs")
    parser.add_argument("--large-trials", type=int, default=100, help="simulated audits per truth of 153+ pairs")
    parser.add_argument("--resamples", type=int, default=300)
    args = parser.parse_args()
    print("command: python benchmarks/statistics/rank_interval_coverage.py " + " ".join(sys.argv[1:]))
    print(f"95% intervals, {args.resamples} resamples; coverage % (mean width); old = reflected (basic), "
          "new = bias-corrected with the corrected estimate's width")
    table = []
    for config in CONFIGS:
        table.append(coverage_row(config, args.trials if config[0] <= 66 else args.large_trials, args.resamples))
        print("  done:", table[-1], flush=True)
    print(tabulate(table, headers=["pairs", "seqs", "noise", "disagr.", "trials", "true rho", "true tau",
                                   "Spearman old", "Spearman new", "Kendall old", "Kendall new"]))
    print("\ncost on one 435-pair, 64-sequence, 1000-resample audit (s, best of 3, same run; CPU shared with other "
          "jobs; old = the reflected interval with today's kendall_rows)")
    print(tabulate(cost(), headers=["statistic", "old", "new", "extra"]))


if __name__ == "__main__":
    main()
