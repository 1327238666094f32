"""The agreement rules against nulls with a known truth: how often identical rankings pass and reversed or
shuffled rankings fail, at each candidate tolerance.

Each trial draws a fresh calibration set (the audit's sequences resampled with replacement) from a measured
audit's per-sequence R, and builds I from it under one truth:
  identical  I of each pair is that pair's R, times the measured per-sequence noise of ln(I/R) (the audit's
             own spread of ln(I_s/R_s) about each pair's mean): same true ranking, realistic measurement;
  reversed   I of the pair ranked r under R is the R of the pair ranked n+1-r, with the same noise;
  shuffled   I of each pair is the R of a random other pair, with the same noise.
Then every rule is judged as the plugin judges it (paired rank intervals, Spearman and Jaccard estimates).

    python benchmarks/study/agreement_nulls.py benchmarks/results/agreement/demo_all.npz --trials 200
"""

from __future__ import annotations

import argparse

import numpy as np
from agreement_common import judge, load
from tabulate import tabulate

RANK_TOLERANCES = ("1", "2", "3", "10%", "25%")
MIN_SPEARMAN = (0.5, 0.7, 0.8)
MIN_JACCARD = (0.33, 0.5)


def slots(tolerance: str, n_pairs: int) -> int:
    if tolerance.endswith("%"):
        return int(np.floor(float(tolerance[:-1]) / 100 * n_pairs + 0.5))
    return int(tolerance)


def noise_residuals(r: np.ndarray, i: np.ndarray) -> np.ndarray:
    """ln(I_s/R_s) about each pair's own mean, where both are positive: the audit's measurement noise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where((r > 0) & (i > 0), np.log(i) - np.log(r), np.nan)
    return (logs - np.nanmean(logs, axis=1, keepdims=True))[np.isfinite(logs)].ravel()


def truth(kind: str, r_values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which pair's R becomes each pair's I."""
    n = len(r_values)
    if kind == "identical":
        return np.arange(n)
    if kind == "reversed":
        order = np.argsort(r_values, kind="stable")
        source = np.empty(n, dtype=np.int64)
        source[order] = order[::-1]
        return source
    return rng.permutation(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pairs, r, i, record = load(args.file)
    residuals = noise_residuals(r, i)
    rng = np.random.default_rng(args.seed)
    n_pairs, n_seq = r.shape
    print(f"# nulls from {record['model']} ({record['pairs_spec']}: {n_pairs} pairs, {n_seq} sequences), "
          f"{args.trials} trials each, {args.resamples} resamples; noise sd of ln(I/R) per sequence "
          f"{residuals.std():.3f}\n")
    table = []
    for kind in ("identical", "reversed", "shuffled"):
        audit_pass = {t: 0 for t in RANK_TOLERANCES}
        pair_fail = {t: 0 for t in RANK_TOLERANCES}
        spearman_pass = {m: 0 for m in MIN_SPEARMAN}
        jaccard_pass = {(k, m): 0 for k in (2, 4) for m in MIN_JACCARD}
        for trial in range(args.trials):
            sequences = rng.integers(0, n_seq, n_seq)
            r_trial = r[:, sequences]
            source = truth(kind, r_trial.mean(1), rng)
            i_trial = r_trial[source] * np.exp(rng.choice(residuals, size=r_trial.shape))
            judged = judge(pairs, r_trial, i_trial, args.resamples, seed=trial, ties=False)
            for t in RANK_TOLERANCES:
                failing = int((judged.paired_gap > slots(t, n_pairs)).sum())
                audit_pass[t] += failing == 0
                pair_fail[t] += failing
            for m in MIN_SPEARMAN:
                spearman_pass[m] += judged.spearman >= m
            for k, (value, _) in judged.sets.items():
                for m in MIN_JACCARD:
                    jaccard_pass[(k, m)] += value >= m
        trials = args.trials
        row = [kind]
        row += [f"{100 * audit_pass[t] / trials:.0f}% ({100 * pair_fail[t] / trials / n_pairs:.0f}%)"
                for t in RANK_TOLERANCES]
        row += [f"{100 * spearman_pass[m] / trials:.0f}%" for m in MIN_SPEARMAN]
        row += [f"{100 * jaccard_pass[key] / trials:.0f}%" for key in jaccard_pass]
        table.append(row)
    headers = (["truth"] + [f"all pairs pass, tol {t} ({slots(t, n_pairs)}) (pairs failing)" for t in RANK_TOLERANCES]
               + [f"Spearman >= {m}" for m in MIN_SPEARMAN]
               + [f"top-{k} Jaccard >= {m}" for k, m in jaccard_pass])
    print(tabulate(table, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
