"""Coverage of a held-out mean's 95% interval when sequences come in documents: i.i.d. bootstrap against the
bootstrap by document (``stats.bootstrap_indices(..., groups=)``), by simulation (issue 34).

Synthetic per-sequence held-out costs with a known mean 0.1: a per-document factor (mean-1 lognormal, sigma
``tau``: how much a removal set suits one work more than another) times per-sequence gamma noise (shape 4, mean
0.1). Documents have the sizes of the default demo held-out text (64 chunks of ``demo-heldout`` in 21 works:
14, 10, 6, 4, 4, 3, 3, 3, 2, 2, 2, 2 and nine of 1) or 8 documents of 8. Prints the share of simulated audits
whose interval held the truth: plain percentile and expanded intervals (analysis/mean_interval.py) over i.i.d.
resamples with n = sequences, and over resamples by document with n = documents.

    OMP_NUM_THREADS=1 python benchmarks/statistics/cluster_bootstrap_coverage.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import stats  # noqa: E402
from pytest_swapkl.analysis.mean_interval import expanded_interval  # noqa: E402

SHAPE, SCALE, SIMULATIONS, RESAMPLES = 4.0, 0.025, 1000, 500
LAYOUTS = {"demo-heldout 21 works": [14, 10, 6, 4, 4, 3, 3, 3, 2, 2, 2, 2] + [1] * 9, "8 works of 8": [8] * 8}


def costs(rng, sizes, tau):
    factor = rng.lognormal(-tau ** 2 / 2, tau, size=len(sizes)) if tau else np.ones(len(sizes))
    return np.repeat(factor, sizes) * rng.gamma(SHAPE, SCALE, size=sum(sizes))


def covered(interval):
    return interval[0] <= SHAPE * SCALE <= interval[1]


print(f"{'documents':<22} {'tau':>4} {'iid plain':>10} {'iid expanded':>13} {'doc plain':>10} {'doc expanded':>13}")
for name, sizes in LAYOUTS.items():
    groups = np.repeat(np.arange(len(sizes)), sizes)
    n, n_documents = len(groups), len(sizes)
    for tau in (0.0, 0.2, 0.5):
        rng = np.random.default_rng(1)
        hits = np.zeros(4)
        for _ in range(SIMULATIONS):
            values = costs(rng, sizes, tau)
            seed = int(rng.integers(2 ** 31))
            iid = stats.bootstrap_means(values, stats.bootstrap_indices(n, RESAMPLES, seed))
            by_document = stats.bootstrap_means(values, stats.bootstrap_indices(n, RESAMPLES, seed, groups=groups))
            hits += [covered(stats.interval(iid)), covered(expanded_interval(iid, n)),
                     covered(stats.interval(by_document)), covered(expanded_interval(by_document, n_documents))]
        share = hits / SIMULATIONS
        print(f"{name:<22} {tau:>4.1f} {share[0]:>10.3f} {share[1]:>13.3f} {share[2]:>10.3f} {share[3]:>13.3f}")
