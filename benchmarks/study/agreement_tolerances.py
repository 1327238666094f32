"""Verdict tables of the agreement rules, before (marginal overlap + own-interval pass) and after (paired
rank intervals), at a sweep of rank tolerances, with every suite statistic's paired-bootstrap interval.

Reads the .npz files `benchmarks/study/agreement_measure.py` writes; measures nothing.

    python benchmarks/study/agreement_tolerances.py benchmarks/results/agreement/*.npz
"""

from __future__ import annotations

import argparse
import math

from agreement_common import judge, load
from tabulate import tabulate

TOLERANCES = ("0", "1", "2", "3", "5%", "10%", "25%")


def slots(tolerance: str, n_pairs: int) -> int:
    if tolerance.endswith("%"):
        return int(math.floor(float(tolerance[:-1]) / 100 * n_pairs + 0.5))
    return int(tolerance)


def fmt(interval) -> str:
    return "n/a" if interval[0] is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    for path in args.files:
        pairs, r, i, record = load(path)
        judged = judge(pairs, r, i, args.resamples)
        print(f"\n## {record['model']} ({record['pairs_spec']}: {len(pairs)} pairs, {r.shape[1]} sequences x "
              f"{record['seq_len']} tokens, {record['dtype']} on {record['device']})\n")
        rows = []
        for tolerance in TOLERANCES:
            allowed = slots(tolerance, len(pairs))
            old_fail = int(((judged.marginal_gap > allowed) & ~judged.own_overlap).sum())
            old_fail_no_overlap = int((judged.marginal_gap > allowed).sum())
            new_fail = int((judged.paired_gap > allowed).sum())
            rows.append([tolerance, allowed, old_fail, old_fail_no_overlap, new_fail])
        print(tabulate(rows, headers=["rank tolerance", "ranks", "pairs failing: before (marginal + own overlap)",
                                      "marginal, no own-overlap pass", "after (paired)"], tablefmt="github"))
        rescued = judged.own_overlap & (judged.marginal_gap > 0)
        print(f"\nown-interval pass: {int(judged.own_overlap.sum())} of {len(pairs)} pairs have overlapping R and I "
              f"intervals; among them the paired rank-interval gaps are "
              f"{sorted(int(g) for g in judged.paired_gap[judged.own_overlap])} "
              f"({int(rescued.sum())} with a marginal gap above 0)\n")
        ties = judged.ties
        print(tabulate([[name, t["comparisons"], t["overlap_tied"], t["overlap_tied_paired_separable"],
                         t["paired_tied"]] for name, t in ties.items()],
                       headers=["protocol", "comparisons", "tied by marginal overlap", "of those, paired separable",
                                "tied by paired bootstrap"], tablefmt="github"))
        suite = [["Spearman", f"{judged.spearman:.3f}", fmt(judged.spearman_ci), ""],
                 ["Kendall", f"{judged.kendall:.3f}", fmt(judged.kendall_ci), ""]]
        for k, (value, entry) in judged.sets.items():
            suite.append([f"top-{k} Jaccard", f"{value:.3f}", fmt((entry.jaccard_low, entry.jaccard_high)),
                          f"sets recur: R {100 * entry.stability_replacement:.0f}%, "
                          f"I {100 * entry.stability_interchange:.0f}%"])
        print()
        print(tabulate(suite, headers=["statistic", "estimate", "95% paired CI", "stability"], tablefmt="github"))


if __name__ == "__main__":
    main()
