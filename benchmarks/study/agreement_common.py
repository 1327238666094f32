"""Shared by the agreement benchmarks: an audit's rules re-judged from per-sequence probe numbers.

`judge` takes per-sequence KLs of R and I ([n_pairs, n_sequences] each, the same sequences) and returns
the numbers every rule decides on, old and new, so a benchmark can sweep tolerances without measuring.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import agreement, intervals, stats  # noqa: E402


@dataclass
class Judged:
    n_pairs: int
    paired_gap: np.ndarray  # per pair: distance between the paired rank intervals of R and I
    marginal_gap: np.ndarray  # per pair: the old rule's distance (marginal-overlap rank intervals)
    own_overlap: np.ndarray  # per pair: its own R and I intervals overlap (the old rule's extra pass)
    spearman: float
    spearman_ci: tuple
    kendall: float
    kendall_ci: tuple
    sets: dict  # k -> (jaccard, SetInterval)
    ties: dict  # protocol -> agreement.tie_counts


def judge(pairs: list[tuple[int, int]], r_per_seq: np.ndarray, i_per_seq: np.ndarray, n_resamples: int = 1000,
          seed: int = 0, ks: tuple[int, ...] = (2, 4), suite: bool = True, ties: bool = True) -> Judged:
    indices = stats.bootstrap_indices(r_per_seq.shape[1], n_resamples, seed)
    r_samples, i_samples = r_per_seq[:, indices].mean(-1).T, i_per_seq[:, indices].mean(-1).T
    r_values, i_values = r_per_seq.mean(1), i_per_seq.mean(1)
    (r_low, r_high), (i_low, i_high) = (np.percentile(s, [2.5, 97.5], axis=0) for s in (r_samples, i_samples))
    paired_gap = agreement.interval_gaps(agreement.paired_rank_intervals(r_samples, r_values),
                                         agreement.paired_rank_intervals(i_samples, i_values))
    marginal_gap = agreement.rank_gaps((r_values, r_low, r_high), (i_values, i_low, i_high), 0.0)
    own_overlap = (r_low <= i_high) & (i_low <= r_high)
    sets, spearman_ci, kendall_ci, kendall = {}, (None, None), (None, None), None
    if suite:
        found = intervals.suite_intervals(pairs, r_samples, i_samples, r_values, i_values, ks)
        spearman_ci, kendall_ci = found.spearman, found.kendall
        kendall = stats.kendall(r_values, i_values)
        for k, entry in zip(ks, found.sets):
            sets[k] = (stats.jaccard(set(stats.removal_set(pairs, list(r_values), k)),
                                     set(stats.removal_set(pairs, list(i_values), k))), entry)
    tie_table = {}
    if suite and ties:
        tie_table = {"replacement": agreement.tie_counts(r_samples, r_values, r_low, r_high),
                "interchange": agreement.tie_counts(i_samples, i_values, i_low, i_high)}
    return Judged(len(pairs), paired_gap, marginal_gap, own_overlap, stats.spearman(r_values, i_values) or np.nan,
                  spearman_ci, kendall if kendall is not None else np.nan, kendall_ci, sets, tie_table)


def load(path: str, reduce: str = "mean") -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray, dict]:
    """pairs, R per sequence, I per sequence and the run's record from an agreement_measure.py .npz."""
    data = np.load(path)
    pairs = [tuple(int(x) for x in p) for p in data["pairs"]]
    r = stats.REDUCERS[reduce](data["replacement_ij"], data["replacement_ji"])
    record = {key: data[key].item() for key in ("model", "pairs_spec", "tokens", "seq_len", "dtype", "device")}
    return pairs, r, data["interchange"], record
