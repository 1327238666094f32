"""Coverage of the 95% cost intervals and error rate of the paired verdict, by simulation (issue 15).

Synthetic per-sequence held-out KLs with a known mean: shared sequence difficulty (gamma, shape 4, mean 0.1)
times independent mean-1 lognormal noise (sigma 0.2) per pruned model, the spread of the demo model's
removal sets' per-sequence KLs (coefficient of variation 0.24-0.66 measured). Prints, per number of held-out
sequences and seed, the share of 2000 simulated audits whose interval held the truth: the plain percentile
interval, the expanded one (analysis/mean_interval.py), the ratio's interval (paired.compare_costs), and how often
two equal costs were called different.

    python benchmarks/statistics/cost_interval_coverage.py
"""

import numpy as np

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.mean_interval import expanded_interval
from pytest_swapkl.analysis.paired import compare_costs

SHAPE, SCALE, SPREAD, SIMULATIONS, RESAMPLES = 4.0, 0.025, 0.2, 2000, 500


def costs(rng, n, ratio):
    difficulty = rng.gamma(SHAPE, SCALE, size=n)
    noise = rng.lognormal(-SPREAD ** 2 / 2, SPREAD, size=(2, n))
    return ratio * difficulty * noise[0], difficulty * noise[1]


print(f"{'n':>3} {'seed':>4} {'plain':>7} {'expanded':>9} {'ratio':>7} {'false calls':>12}")
for n in (32, 64):
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        plain = expanded = ratio = false = 0
        for _ in range(SIMULATIONS):
            a, b = costs(rng, n, 1.0)
            indices = stats.bootstrap_indices(n, RESAMPLES, int(rng.integers(2**31)))
            means = stats.bootstrap_means(a, indices)
            low, high = stats.interval(means)
            plain += low <= SHAPE * SCALE <= high
            low, high = expanded_interval(means, n)
            expanded += low <= SHAPE * SCALE <= high
            comparison = compare_costs(a, b, indices)
            ratio += comparison.ratio_low <= 1.0 <= comparison.ratio_high
            false += comparison.verdict in ("A cheaper", "B cheaper")  # a direction where the costs are equal
        print(f"{n:>3} {seed:>4} {plain / SIMULATIONS:>7.4f} {expanded / SIMULATIONS:>9.4f} "
              f"{ratio / SIMULATIONS:>7.4f} {false / SIMULATIONS:>12.4f}")
