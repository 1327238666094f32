"""The adaptive guarantee, measured on synthetic per-sequence tables with a known truth (no model): over
random orders of the sequences, the share of adaptive audits with any verdict unlike the exact audit's,
and the probe-sequences measured, at several error levels.

    python benchmarks/statistics/adaptive_error_rate.py --runs 40 --sequences 256
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "analysis")]

from test_adaptive import RESAMPLES, bounded_table, exact_measurement, synthetic_slices  # noqa: E402

from pytest_swapkl.analysis import adaptive  # noqa: E402
from pytest_swapkl.analysis.agreement import Tolerances  # noqa: E402
from pytest_swapkl.engine.probes import parse_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--alphas", default="0.5,0.2,0.05")
    args = parser.parse_args()
    pairs = parse_pairs("all", args.layers)
    rows = []
    for alpha in (float(a) for a in args.alphas.split(",")):
        tests = adaptive.Tests(Tolerances(rank=1, rank_is_fraction=False, min_spearman=0.8, min_jaccard=0.5),
                               prune_k=2, prune_methods=("replacement", "interchange", "removal"), alpha=alpha)
        differing, measured, total = 0, 0, 0
        for run in range(args.runs):
            table = bounded_table(run % 6, args.layers, args.sequences)
            exact = adaptive.verdicts(exact_measurement(table, args.sequences), pairs, args.layers, tests,
                                      RESAMPLES, run)
            result = adaptive.sample_adaptively(synthetic_slices(table, args.sequences, run), args.sequences, 8,
                                                pairs, args.layers, tests, n_resamples=RESAMPLES, seed=run)
            differing += adaptive.verdicts(result.measurement, pairs, args.layers, tests, RESAMPLES, run) != exact
            measured += sum(result.sequences.values())
            total += args.sequences * len(result.sequences)
        rows.append([alpha, args.runs, differing, f"{differing / args.runs:.3f}", f"{total / measured:.2f}"])
    print(f"{args.layers} layers (all {len(pairs)} pairs), {args.sequences} sequences, 6 tables x orders")
    print(tabulate(rows, headers=["alpha", "runs", "runs with a verdict differing", "rate", "factor exact / adaptive"]))


if __name__ == "__main__":
    main()
