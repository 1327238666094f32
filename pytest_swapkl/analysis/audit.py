"""An audit: both protocols and removal on a set of layer pairs, with their statistics.

This is what `swapkl audit` prints and what the pytest plugin asserts on. The
numbers come from one ``engine.measure`` call; everything after that is numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import numerics
from ..engine.measurement import Measurement, ProbeStats
from ..engine.probes import interchange, removal, replacement
from . import stats
from .agreement import paired_order, tie_counts
from .intervals import SuiteIntervals, add_reliability, suite_intervals
from .pair_rules import SetRule
from .simultaneous_ranks import joint_rank_intervals, layer_confidence_sets

TOP_K = (1, 2, 3, 4)


@dataclass(frozen=True)
class Estimate:
    """A distance with its 95% bootstrap interval over sequences."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class PairResult:
    i: int
    j: int
    replacement_ij: Estimate
    replacement_ji: Estimate
    interchange: Estimate
    replacement: Estimate  # R: both directions reduced (mean/max/min)
    rank_replacement: float  # 1 = most redundant pair under R
    rank_interchange: float
    # Simultaneous rank intervals, jointly 95% over every pair and both protocols (simultaneous_ranks.py)
    rank_interval_replacement: tuple[int, int] = (0, 0)
    rank_interval_interchange: tuple[int, int] = (0, 0)

    @property
    def ratio(self) -> Optional[float]:
        """I / R; None where R is 0 (or below by rounding) or I/R overflows (numerics.py)."""
        return numerics.ratio(self.interchange.value, self.replacement.value)

    @property
    def log_ratio(self) -> Optional[float]:
        """ln(I/R) as ln I - ln R; None where I or R is 0 (or below by rounding)."""
        return numerics.log_ratio(self.interchange.value, self.replacement.value)


@dataclass(frozen=True)
class RemovalResult:
    layer: int
    kl: Estimate
    ppl: float


@dataclass(frozen=True)
class TopK:
    k: int
    replacement_layers: list[int]
    interchange_layers: list[int]

    @property
    def jaccard(self) -> float:
        return stats.jaccard(set(self.replacement_layers), set(self.interchange_layers))


@dataclass
class Audit:
    measurement: Measurement
    pairs: list[PairResult]
    removals: list[RemovalResult]
    replacement_reduce: str
    spearman: Optional[float]
    kendall: Optional[float]
    top_k: list[TopK] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line per numeric edge met (numerics.Notes)
    intervals: SuiteIntervals = field(default_factory=SuiteIntervals)  # paired-bootstrap intervals (intervals.py)
    ties: dict[str, dict[str, int]] = field(default_factory=dict)  # per protocol: agreement.tie_counts
    # per protocol: agreement.paired_order of the pairs (what the rank intervals are read from; adaptive mode's
    # certify reads the rule's relations from it). Not in the JSON.
    orders: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    pair_rule: SetRule = field(default_factory=SetRule)  # the rule every top-k set was read by
    # per protocol, per k: the layers that may be among the k of lowest min-partner score, jointly 95% (tau-best)
    topk_confidence: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    @property
    def base_ppl(self) -> float:
        return self.measurement.base_ppl


def summarize(
    measurement: Measurement,
    pairs: list[tuple[int, int]],
    n_layers: int,
    replacement_reduce: str = stats.DEFAULT_REDUCE,
    n_resamples: int = 1000,
    seed: int = 0,
    rule: SetRule = SetRule(),
) -> Audit:
    """Turn per-sequence probe numbers into pair distances, intervals, ranks and the protocol statistics;
    ``rule`` reads the top-k removal sets from the pair distances (default: the paper's min-partner)."""
    if replacement_reduce not in stats.REDUCERS:
        raise ValueError(f"unknown replacement reduction {replacement_reduce!r}: use {', '.join(stats.REDUCERS)}")
    reduce = stats.REDUCERS[replacement_reduce]
    triples = [(measurement[replacement(i, j, n_layers)], measurement[replacement(j, i, n_layers)],
                measurement[interchange(i, j, n_layers)]) for i, j in pairs]
    removed = [measurement[removal([layer], n_layers)] for layer in range(n_layers)]
    boot = _bootstrap_means([result for triple in triples for result in triple] + removed, n_resamples, seed)

    r_samples, i_samples, columns = [], [], []
    for ij, ji, swap in triples:
        r_boot, i_boot = reduce(boot[ij.probe], boot[ji.probe]), boot[swap.probe]
        r_samples.append(r_boot)
        i_samples.append(i_boot)
        columns += [boot[ij.probe], boot[ji.probe], i_boot, r_boot]
    columns += [boot[result.probe] for result in removed]
    # Every interval of the audit in one np.percentile call over a [n_resamples, n] stack: the same numbers as
    # one call per column (the same order statistics, the same interpolation), without ~2000 calls' overhead.
    lows, highs = stats.intervals(np.stack(columns, axis=1)) if columns else ([], [])
    values = [x for ij, ji, swap in triples
              for x in (ij.kl, ji.kl, swap.kl, float(reduce(np.float64(ij.kl), np.float64(ji.kl))))]
    values += [result.kl for result in removed]
    estimates = [Estimate(float(value), float(low), float(high)) for value, low, high in zip(values, lows, highs)]
    rows = [(i, j, *estimates[4 * n:4 * n + 4]) for n, (i, j) in enumerate(pairs)]  # ij, ji, I, R
    r_values = np.array([row[5].value for row in rows])
    i_values = np.array([row[4].value for row in rows])
    r_samples_arr = np.stack(r_samples, axis=1) if rows else np.empty((n_resamples, 0))
    i_samples_arr = np.stack(i_samples, axis=1) if rows else np.empty((n_resamples, 0))
    floor = measurement.noise_floor or 0.0
    # The paired order of every two pairs (the costly part: n^2 percentiles over the resamples), once per protocol.
    orders = {"replacement": paired_order(r_samples_arr, r_values, floor),
              "interchange": paired_order(i_samples_arr, i_values, floor)} if rows else {}
    # The rank intervals the pair cases judge: simultaneous over every pair and both protocols (one max-|t| quantile)
    interval_r, interval_i = joint_rank_intervals([r_samples_arr, i_samples_arr], [r_values, i_values], floor) \
        if rows else (np.empty((0, 2)), np.empty((0, 2)))
    rank_r, rank_i = stats.average_ranks(r_values), stats.average_ranks(i_values)
    results = [
        PairResult(i, j, ij, ji, swap, r, float(rank_r[n]), float(rank_i[n]),
                   (int(interval_r[n, 0]), int(interval_r[n, 1])), (int(interval_i[n, 0]), int(interval_i[n, 1])))
        for n, (i, j, ij, ji, swap, r) in enumerate(rows)
    ]
    ties = {}
    if rows:
        for name, samples, values, column in (("replacement", r_samples_arr, r_values, 5),
                                              ("interchange", i_samples_arr, i_values, 4)):
            ties[name] = tie_counts(samples, values, [row[column].low for row in rows],
                                    [row[column].high for row in rows], floor, order=orders[name])
    removals = [RemovalResult(layer, estimates[4 * len(pairs) + layer], result.ppl)
                for layer, result in enumerate(removed)]
    ks = [k for k in TOP_K if k < n_layers]
    top_k = [TopK(k, rule.choose(pairs, list(r_values), k, n_layers), rule.choose(pairs, list(i_values), k, n_layers))
             for k in ks]
    intervals = suite_intervals(pairs, r_samples_arr, i_samples_arr, r_values, i_values, ks, rule=rule,
                                n_layers=n_layers)
    spearman = stats.spearman(r_values, i_values)
    if rows and len({len(probe.kl_per_seq) for triple in triples for probe in triple}) == 1:
        # Adaptive audits measure some probes on fewer sequences: no common halves, no reliability
        ij_table, ji_table, i_table = (np.stack([triple[n].kl_per_seq for triple in triples]) for n in range(3))
        add_reliability(intervals, [ij_table, ji_table], i_table, reduce, spearman)
    eligible = range(rule.keep_boundary, n_layers - rule.keep_boundary)
    confidence = dict(zip(("replacement", "interchange"), layer_confidence_sets(
        pairs, [r_samples_arr, i_samples_arr], [r_values, i_values], ks, floor, eligible))) if rows and ks else {}
    return Audit(measurement, results, removals, replacement_reduce, spearman,
                 stats.kendall(r_values, i_values), top_k, _notes(measurement, results), intervals, ties, orders,
                 rule, confidence)


def _bootstrap_means(results: list[ProbeStats], n_resamples: int, seed: int) -> dict:
    """Each probe's bootstrap means of its per-sequence KL, computed once per probe (probe -> [n_resamples]).
    One probe at a time: its few per-sequence numbers stay in cache while the draws gather them, which is
    faster than one gather over all probes.

    Adaptive audits measure some probes on fewer sequences: each length gets its own draws (the same draws for
    every probe of that length, so intervals of probes measured alike stay paired)."""
    indices: dict[int, np.ndarray] = {}
    means = {}
    for result in results:
        length = len(result.kl_per_seq)
        if length not in indices:
            indices[length] = stats.bootstrap_indices(length, n_resamples, seed)
        if result.probe not in means:
            means[result.probe] = stats.bootstrap_means(result.kl_per_seq, indices[length])
    return means


def _notes(measurement: Measurement, pairs: list[PairResult]) -> list[str]:
    """The numeric edges this audit met (numerics.py), as notices: distances clipped for I/R, perplexities that
    overflow, ratios beyond the float range."""
    notes = numerics.Notes()
    for result in measurement.probes.values():
        notes.perplexity(result.probe.name, float(result.nll_per_seq.mean()))
    notes.perplexity("the unchanged model", float(measurement.base_nll_per_seq.mean()))
    for pair in pairs:
        label = f"L{pair.i:02d}-L{pair.j:02d}"
        notes.kl(f"R of {label}", pair.replacement.value)
        notes.kl(f"I of {label}", pair.interchange.value)
        notes.ratio(label, pair.interchange.value, pair.replacement.value)
    return notes.lines()
