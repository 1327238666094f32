"""Coverage of the suite intervals by simulation: audits with a known truth (tests/analysis/test_intervals.py's
generator), the share of 95% intervals that contain the true Spearman, Kendall and median I/R (distance 1).

    python benchmarks/statistics/interval_coverage.py --trials 200
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "analysis"))

from test_intervals import _audit  # noqa: E402

from pytest_swapkl.analysis import intervals, stats  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--trials", type=int, default=200)
parser.add_argument("--resamples", type=int, default=300)
args = parser.parse_args()
for truth_seed in (1, 11):
    n_pairs = 12
    mu_r = np.linspace(1, 2.2, n_pairs)
    mu_i = mu_r * np.exp(np.random.default_rng(truth_seed).normal(0, 0.15, n_pairs))
    pairs = [(n, n + 1) for n in range(n_pairs)]
    truths = {"spearman": stats.spearman(mu_r, mu_i), "kendall": stats.kendall(mu_r, mu_i),
              "median I/R d=1": float(np.median(mu_i / mu_r))}
    covered = dict.fromkeys(truths, 0)
    rng = np.random.default_rng(100 + truth_seed)
    for trial in range(args.trials):
        r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, own=0.1, resamples=args.resamples, seed=trial)
        found = intervals.suite_intervals(pairs, r_samples, i_samples, r.mean(1), i.mean(1), [])
        ratio = found.ratio_by_distance[0]
        for name, (low, high) in (("spearman", found.spearman), ("kendall", found.kendall),
                                  ("median I/R d=1", (ratio.low, ratio.high))):
            covered[name] += low <= truths[name] <= high
    print(f"truth seed {truth_seed}: " + ", ".join(
        f"{name} (true {truths[name]:.3f}) {100 * covered[name] / args.trials:.1f}%" for name in truths))
