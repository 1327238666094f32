"""Adaptive precision: every probe on a random first slice of the calibration sequences (the pilot), then
more sequences only for the probes that some unsettled population verdict rests on.

The sequences are taken in the order of one permutation drawn with the seed. The verdicts adaptive mode
settles are about the text population the calibration sequences are drawn from (i.i.d.), not the finite sample,
and only those pruning reads (analysis/population.py): each protocol's top-k removal set (R and I under the
audit's pair rule, the k cheapest single-layer removals) for k in TOP_K and 1..prune_k, and the Spearman
threshold verdict. With probability tending to 1 - alpha (asymptotic anytime-valid confidence sequences on
paired differences, Bonferroni over the comparisons used), every verdict reported as settled is the
population's. Verdicts the data cannot settle (true near-ties) have every probe they rest on measured on
every sequence and are reported as the sample's, marked unsettled. Per-pair rank cases are read from what was
measured: they are not certified (docs/decisions.md, "Adaptive mode, redefined").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .. import engine
from ..console import Notice, print_notice
from ..engine.measurement import Measurement, ProbeStats
from ..engine.probes import Probe, audit_probes, identity, interchange, removal, replacement
from . import population
from .agreement import Tolerances
from .audit import TOP_K, Audit, Estimate
from .pair_rules import SetRule

PILOT = 8  # sequences every probe is measured on
GROWTH = 1.5  # each later round measures the open probes on this many times as many sequences
DEFAULT_ALPHA = 0.05


def schedule(n_sequences: int) -> list[int]:
    """Sequence counts after each round: the pilot, then growing by GROWTH to every sequence."""
    return population.schedule(n_sequences, PILOT, GROWTH)


def permutation(n_sequences: int, seed: int) -> np.ndarray:
    """The order in which an adaptive audit draws the calibration sequences."""
    return np.random.default_rng([seed, 0x5EED]).permutation(n_sequences)


@dataclass
class Tests:
    """Which verdicts an adaptive audit must settle (the plugin's, from its options), and at what error."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    replacement_reduce: str = "max"
    prune_k: int = 0
    prune_methods: tuple[str, ...] = ("replacement", "interchange")
    alpha: float = DEFAULT_ALPHA  # chance that any verdict reported as settled is not the population's
    rule: SetRule = field(default_factory=SetRule)  # how pair distances become the removal sets (the audit's)

    def decisions(self, pairs: Sequence[tuple[int, int]], n_layers: int) -> population.Decisions:
        ks = sorted({k for k in (*TOP_K, *range(1, self.prune_k + 1)) if k < n_layers})
        return population.Decisions(population.ProbeRows(list(pairs), n_layers), self.rule, tuple(ks),
                                    self.tolerances.min_spearman, self.alpha, reduce=self.replacement_reduce)


@dataclass
class AdaptiveResult:
    measurement: Measurement  # per-probe arrays cover the sequences each probe was measured on
    sequences: dict[Probe, int]
    rounds: list[dict[str, Any]]
    alpha: float = DEFAULT_ALPHA
    settled: dict[str, bool] = field(default_factory=dict)  # population verdict -> settled
    verdicts: dict[str, Any] = field(default_factory=dict)  # population verdict -> its value (sets, Spearman)

    def to_json(self, audit: Audit) -> dict[str, Any]:
        """Which probes stopped early, on how many sequences, their interval widths, and the population verdicts."""
        n = self.measurement.n_sequences
        estimates = _probe_estimates(audit)
        probes = {probe.name: {"sequences": count, "stopped_early": count < n,
                               "interval_width": estimates[probe].high - estimates[probe].low}
                  for probe, count in self.sequences.items() if probe in estimates}
        measured = sum(self.sequences.values())
        verdicts = {name: {"value": list(value) if isinstance(value, tuple) else value,
                           "settled": self.settled.get(name, False)} for name, value in self.verdicts.items()}
        return {"precision": "adaptive", "n_sequences": n, "probe_sequences": measured,
                "exact_probe_sequences": n * len(self.sequences),
                "stopped_early": sum(1 for count in self.sequences.values() if count < n),
                "alpha": self.alpha,
                "guarantee": (f"with probability tending to at least {1 - self.alpha:g}, every population verdict "
                              "marked settled (top-k sets, the Spearman threshold) is the text population's; "
                              "unsettled ones are the sample's, their probes measured on every sequence; per-pair "
                              "cases are not certified"),
                "population_verdicts": verdicts, "rounds": self.rounds, "probes": probes}


def _probe_estimates(audit: Audit) -> dict[Probe, Estimate]:
    """Each audit probe's own distance and interval."""
    n = len(audit.removals)
    estimates = {}
    for p in audit.pairs:
        estimates[replacement(p.i, p.j, n)] = p.replacement_ij
        estimates[replacement(p.j, p.i, n)] = p.replacement_ji
        estimates[interchange(p.i, p.j, n)] = p.interchange
    for r in audit.removals:
        estimates[removal([r.layer], n)] = r.kl
    return estimates


def row_probes(pairs: Sequence[tuple[int, int]], n_layers: int) -> list[Probe]:
    """The probe of each row of population.ProbeRows."""
    return ([replacement(i, j, n_layers) for i, j in pairs] + [replacement(j, i, n_layers) for i, j in pairs]
            + [interchange(i, j, n_layers) for i, j in pairs] + [removal([layer], n_layers)
                                                                  for layer in range(n_layers)])


class _PermutedJournal:
    """The resume journal under names of their own: journal ranges count positions in the permuted order."""

    def __init__(self, journal, seed: int):
        self.journal, self.prefix = journal, f"adaptive-order-{seed}/"

    def get(self, name: str, start: int, stop: int):
        return self.journal.get(self.prefix + name, start, stop)

    def record(self, name: str, start: int, stop: int, kl, nll) -> None:
        self.journal.record(self.prefix + name, start, stop, kl, nll)


def measure_adaptive(model: torch.nn.Module, input_ids: torch.Tensor, pairs: Sequence[tuple[int, int]],
                     n_layers: int, tests: Tests, *, n_resamples: int = 1000, seed: int = 0,
                     progress: Optional[Callable[[int, int], None]] = None,
                     notice: Notice = print_notice, **measure_options) -> AdaptiveResult:
    """The adaptive audit's Measurement; ``measure_options`` go to ``engine.measure`` (path, batch_size, journal...)."""
    order = torch.as_tensor(permutation(input_ids.shape[0], seed), device=input_ids.device)
    shuffled = input_ids[order]
    if measure_options.get("journal") is not None:
        measure_options = {**measure_options, "journal": _PermutedJournal(measure_options["journal"], seed)}

    def measure_slice(probes: list[Probe], start: int, stop: int, slice_progress) -> Measurement:
        return engine.measure(model, shuffled[start:stop], probes, first_sequence=start, progress=slice_progress,
                              notice=notice, **measure_options)

    return sample_adaptively(measure_slice, input_ids.shape[0], input_ids.shape[1], pairs, n_layers, tests,
                             n_resamples=n_resamples, seed=seed, progress=progress)


def sample_adaptively(measure_slice: Callable[..., Measurement], n_sequences: int, seq_len: int,
                      pairs: Sequence[tuple[int, int]], n_layers: int, tests: Tests, *, n_resamples: int = 1000,
                      seed: int = 0, progress: Optional[Callable[[int, int], None]] = None) -> AdaptiveResult:
    """The sampling loop, on any ``measure_slice(probes, start, stop, progress) -> Measurement`` of positions
    [start, stop) of the permuted calibration set (``permutation(n_sequences, seed)``): the engine in an audit,
    a synthetic table in tests. ``n_resamples`` is the audit's and unused here (kept for the callers)."""
    order = permutation(n_sequences, seed)
    sampler = _Sampler(measure_slice, n_sequences, seq_len, audit_probes(pairs, n_layers), order, progress)
    rows = row_probes(pairs, n_layers)
    decisions = tests.decisions(pairs, n_layers)
    rounds: list[dict[str, Any]] = []
    active = set(sampler.probes)
    judgement = None
    for target in schedule(n_sequences):
        sampler.extend(active, target)
        values = np.zeros((len(rows), n_sequences))
        counts = np.array([sampler.counts[p] for p in rows], dtype=np.int64)
        for row, probe in enumerate(rows):
            values[row, :counts[row]] = sampler.drawn(probe)
        judgement = decisions.judge(values, counts)
        active = {rows[row] for row in judgement.open_probes}
        rounds.append({"sequences": target, "measured_probes": sum(1 for c in sampler.counts.values() if c >= target),
                       "unsettled": sorted(name for name, ok in judgement.settled.items() if not ok),
                       "comparisons": judgement.n_tests, "continuing_probes": len(active)})
        if not active:
            break
    return AdaptiveResult(sampler.measurement(complete_base=True), dict(sampler.counts), rounds, tests.alpha,
                          judgement.settled, judgement.estimates)


class _Sampler:
    """Per-probe prefixes of the permuted calibration sequences, extended on demand through ``measure_slice``."""

    def __init__(self, measure_slice, n_sequences: int, seq_len: int, probes: list[Probe], order: np.ndarray,
                 progress):
        self.measure_slice = measure_slice
        self.n, self.seq_len, self.order = n_sequences, seq_len, order
        self.probes = list(dict.fromkeys(probes))
        self.counts = {p: 0 for p in self.probes}
        self.kl: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}
        self.nll: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}
        self.base_nll = np.full(self.n, np.nan)  # by position in the permuted order
        self.noise_floor = 0.0
        self.path = "fast"
        self.progress = progress
        self.done, self.total = 0, 0

    def drawn(self, probe: Probe) -> np.ndarray:
        """The probe's per-sequence KLs in the order drawn."""
        return np.concatenate(self.kl[probe]) if self.kl[probe] else np.zeros(0)

    def extend(self, probes: set[Probe], target: int) -> None:
        by_start: dict[int, list[Probe]] = {}
        for probe in self.probes:
            if probe in probes and self.counts[probe] < target:
                by_start.setdefault(self.counts[probe], []).append(probe)
        self.total = self.done + sum((target - start) * len(group) for start, group in by_start.items())
        for start, group in sorted(by_start.items()):
            self._measure(group, start, target)

    def _measure(self, probes: list[Probe], start: int, stop: int) -> None:
        done_before = self.done

        def progress(done: int, _total: int) -> None:
            self.done = done_before + done
            if self.progress:
                self.progress(self.done, self.total)

        result = self.measure_slice(probes, start, stop, progress)
        self.path = result.path
        if start == 0:
            self.noise_floor = result.noise_floor
        self.base_nll[start:stop] = result.base_nll_per_seq
        for probe in probes:
            self.kl[probe].append(result[probe].kl_per_seq)
            self.nll[probe].append(result[probe].nll_per_seq)
            self.counts[probe] = stop
        self.done = done_before + len(probes) * (stop - start)

    def measurement(self, complete_base: bool = False) -> Measurement:
        """Probes measured on every sequence come back in the calibration set's own order, so that their
        numbers (and bootstrap intervals) are exactly the exact audit's; the others in the order drawn."""
        if complete_base:  # the base perplexity is over all sequences: one unchanged forward for the rest
            missing = np.flatnonzero(np.isnan(self.base_nll))
            if len(missing):
                first = int(missing[0])
                base = self.measure_slice([identity(self.probes[0].n_layers)], first, self.n, None)
                self.base_nll[first:] = base.base_nll_per_seq
        probes = {p: ProbeStats(p, self._in_order(np.concatenate(self.kl[p])),
                                self._in_order(np.concatenate(self.nll[p]))) for p in self.probes}
        measured = self._in_order(self.base_nll[~np.isnan(self.base_nll)])
        result = Measurement(self.path, self.n, self.seq_len, measured, probes)
        result.noise_floor = self.noise_floor
        return result

    def _in_order(self, drawn: np.ndarray) -> np.ndarray:
        if len(drawn) < self.n:
            return drawn
        original = np.empty_like(drawn)
        original[self.order] = drawn
        return original
