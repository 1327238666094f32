"""Adaptive precision: every probe on a random first slice of the calibration sequences (the pilot), then
more sequences only for the probes that some generated test's exact verdict still depends on.

The sequences are taken in the order of one permutation drawn with the seed, so every probe's sequences
are a uniform random sample, without replacement, of the calibration set. What is guaranteed
(docs/decisions.md has the derivation): with probability at least 1 - alpha over that permutation, every
verdict adaptive mode reports (pair cases, the rank correlation, the top-k Jaccard cases, the layer sets
the pruning cases remove) equals the verdict an exact audit gives on the whole calibration set, provided
every probe's per-sequence KL outside its pilot is at most ``bound_factor`` times its largest on the pilot.
A probe seen breaking that bound is measured on every sequence (its numbers become exact ones).

How: after each round, every mean the tests use (each probe's, each pair's R, each difference of two
items of a protocol) gets an anytime-valid confidence sequence for sampling without replacement
(analysis/confidence.py) at alpha / (number of sequences of numbers used), a union bound; what those
intervals surely say about the exact means goes to analysis/certify.py, which tells which tests' exact
verdicts are already decided. A test is settled when its exact verdict is decided and the audit as it
stands reports that verdict. Sampling continues, on twice as many sequences per round, for the probes an
unsettled test depends on; it stops when every test is settled or the data is used up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .. import cases, engine
from ..console import Notice, print_notice
from ..engine.measurement import Measurement, ProbeStats
from ..engine.probes import Probe, audit_probes, identity, interchange, removal, replacement
from . import certify, confidence, stats
from .agreement import Tolerances, pair_outcomes
from .audit import TOP_K, Audit, Estimate, summarize
from .pair_rules import SetRule

FIRST_SLICE_MIN = 4  # sequences: the pilot, which sets each probe's bound
DEFAULT_ALPHA = 0.05
DEFAULT_BOUND_FACTOR = 4.0


def schedule(n_sequences: int) -> list[int]:
    """Sequence counts after each round: a sixteenth of the data (at least FIRST_SLICE_MIN), doubling."""
    target = min(n_sequences, max(FIRST_SLICE_MIN, math.ceil(n_sequences / 16)))
    steps = [target]
    while target < n_sequences:
        target = min(n_sequences, 2 * target)
        steps.append(target)
    return steps


def series_count(n_probes: int, n_pairs: int, n_layers: int, mean_r: bool) -> int:
    """How many sequences of numbers share alpha (the union bound): every probe's KLs, every pair's R when R is
    the mean of both directions, and the difference of every two items of one protocol (R, I, removal)."""
    differences = n_pairs * (n_pairs - 1) // 2 * (2 if mean_r else 1) + n_layers * (n_layers - 1) // 2
    return n_probes + (n_pairs if mean_r else 0) + differences


def permutation(n_sequences: int, seed: int) -> np.ndarray:
    """The order in which an adaptive audit draws the calibration sequences."""
    return np.random.default_rng([seed, 0x5EED]).permutation(n_sequences)


@dataclass
class PairProbes:
    i: int
    j: int
    ij: Probe
    ji: Probe
    swap: Probe


@dataclass
class Tests:
    """Which generated tests an adaptive audit must settle (the plugin's, from its options), and at what error."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    replacement_reduce: str = "max"
    prune_k: int = 0
    prune_methods: tuple[str, ...] = ("replacement", "interchange")
    alpha: float = DEFAULT_ALPHA  # chance that any reported verdict differs from the exact audit's
    bound_factor: float = DEFAULT_BOUND_FACTOR  # per-sequence KLs assumed at most this x the pilot's largest
    rule: SetRule = field(default_factory=SetRule)  # how pair distances become the removal sets (the audit's)


@dataclass
class AdaptiveResult:
    measurement: Measurement  # per-probe arrays cover the sequences each probe was measured on
    sequences: dict[Probe, int]
    rounds: list[dict[str, Any]]
    alpha: float = DEFAULT_ALPHA
    bound_factor: float = DEFAULT_BOUND_FACTOR
    beyond_bound: list[str] = field(default_factory=list)  # probes seen above their bound: measured in full

    def to_json(self, audit: Audit) -> dict[str, Any]:
        """Which probes stopped early, on how many sequences, and their interval widths."""
        n = self.measurement.n_sequences
        estimates = _probe_estimates(audit)
        probes = {probe.name: {"sequences": count, "stopped_early": count < n,
                               "interval_width": estimates[probe].high - estimates[probe].low}
                  for probe, count in self.sequences.items() if probe in estimates}
        measured = sum(self.sequences.values())
        return {"precision": "adaptive", "n_sequences": n, "probe_sequences": measured,
                "exact_probe_sequences": n * len(self.sequences),
                "stopped_early": sum(1 for count in self.sequences.values() if count < n),
                "alpha": self.alpha, "bound_factor": self.bound_factor, "beyond_bound": self.beyond_bound,
                "guarantee": (f"with probability at least {1 - self.alpha:g} over the seeded order of the sequences, "
                              "every case verdict equals the exact audit's, if every probe's per-sequence KL stays "
                              f"within {self.bound_factor:g}x its largest on the first slice"),
                "rounds": self.rounds, "probes": probes}


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


def verdicts(measurement: Measurement, pairs: Sequence[tuple[int, int]], n_layers: int, tests: Tests,
             n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every generated test's verdict (and the layer sets the pruning cases remove) on this measurement, as
    the plugin judges it: what adaptive and exact audits are compared on."""
    audit = summarize(measurement, list(pairs), n_layers, tests.replacement_reduce, n_resamples, seed, tests.rule)
    pair_probes = [PairProbes(i, j, replacement(i, j, n_layers), replacement(j, i, n_layers),
                              interchange(i, j, n_layers)) for i, j in pairs]
    return _Judge(pair_probes, [removal([layer], n_layers) for layer in range(n_layers)], measurement, audit,
                  tests, n_layers).outcomes_now()


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
    a synthetic table in tests."""
    order = permutation(n_sequences, seed)
    sampler = _Sampler(measure_slice, n_sequences, seq_len, audit_probes(pairs, n_layers), order, progress)
    pair_probes = [PairProbes(i, j, replacement(i, j, n_layers), replacement(j, i, n_layers),
                              interchange(i, j, n_layers)) for i, j in pairs]
    removals = [removal([layer], n_layers) for layer in range(n_layers)]
    steps = schedule(n_sequences)
    evidence = _Evidence(sampler, pair_probes, removals, tests, pilot=steps[0])
    rounds: list[dict[str, Any]] = []
    active = set(sampler.probes)
    for target in steps:
        sampler.extend(active, target)
        evidence.note_bounds()
        measurement = sampler.measurement()
        audit = summarize(measurement, list(pairs), n_layers, tests.replacement_reduce, n_resamples, seed, tests.rule)
        judge = _Judge(pair_probes, removals, measurement, audit, tests, n_layers, evidence)
        unsettled = judge.unsettled()
        active = {p for p in judge.depends_on(unsettled) if sampler.counts[p] < n_sequences}
        rounds.append({"sequences": target, "measured_probes": sum(1 for c in sampler.counts.values() if c >= target),
                       "unsettled_tests": sorted(unsettled), "continuing_probes": len(active)})
        if not active:
            break
    return AdaptiveResult(sampler.measurement(complete_base=True), dict(sampler.counts), rounds, tests.alpha,
                          tests.bound_factor, sorted(p.name for p in evidence.beyond))


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


class _Evidence:
    """Confidence sequences on the sampler's draws, and what they surely say about each protocol's items.

    Every sequence of numbers it looks at (a probe's KLs, a pair's R, the difference of two items of one
    protocol) is drawn without replacement in the one seeded order; after the pilot (the first slice, which
    every probe is measured on) the rest are a uniform random order of the remaining sequences, whatever the
    pilot showed, so bounds set from the pilot are fixed in advance for the rest. Each sequence gets
    alpha / (their number): by the union bound every interval holds at every round with probability 1 - alpha.
    """

    def __init__(self, sampler: _Sampler, pair_probes: list[PairProbes], removals: list[Probe], tests: Tests,
                 pilot: int):
        self.sampler, self.pair_probes, self.removals = sampler, pair_probes, removals
        self.tests, self.pilot = tests, pilot
        self.mean_r = tests.replacement_reduce == "mean"
        self.n_series = series_count(len(sampler.probes), len(pair_probes), len(removals), self.mean_r)
        self.alpha_each = tests.alpha / max(self.n_series, 1)
        self.bounds: dict[Probe, float] = {}
        self.beyond: set[Probe] = set()

    def note_bounds(self) -> None:
        """Each probe's bound from its pilot; a probe seen above it loses its intervals until it is full."""
        for probe in self.sampler.probes:
            drawn = self.sampler.drawn(probe)
            if probe not in self.bounds and len(drawn) >= self.pilot:
                self.bounds[probe] = self.tests.bound_factor * float(drawn[:self.pilot].max(initial=0.0))
            if probe in self.bounds and len(drawn) and drawn.max() > self.bounds[probe]:
                self.beyond.add(probe)

    def _series(self, probes: Sequence[Probe], weights: Sequence[float]) -> tuple[np.ndarray, float, bool]:
        """The weighted sum of some probes' KLs on the sequences all of them have, its upper bound, and
        whether it is within its bounds (a probe above its bound, or without one, makes it unusable)."""
        length = min(self.sampler.counts[p] for p in probes)
        values = sum(w * self.sampler.drawn(p)[:length] for p, w in zip(probes, weights))
        usable = all(p in self.bounds and p not in self.beyond for p in probes)
        bound = sum(w * self.bounds.get(p, math.inf) for p, w in zip(probes, weights))
        return np.asarray(values, dtype=np.float64), bound, usable

    def mean_interval(self, values: np.ndarray, low_bound: float, high_bound: float,
                      usable: bool) -> tuple[float, float]:
        """An interval that surely holds the mean over all sequences of numbers assumed in [low_bound,
        high_bound] outside the pilot, from the first len(values) of them in the order drawn."""
        n, t, m = self.sampler.n, len(values), self.pilot
        if t >= n:
            return float(values.mean()), float(values.mean())
        if not usable or t < m:
            return -math.inf, math.inf
        pilot_sum, rest = float(values[:m].sum()), values[m:]
        width = high_bound - low_bound
        if width <= 0:  # every number outside the pilot is low_bound (= high_bound)
            value = (pilot_sum + (n - m) * low_bound) / n
            return value, value
        low, high = confidence.mean_interval((rest - low_bound) / width, n - m, self.alpha_each)
        return ((pilot_sum + (n - m) * (low_bound + float(low[0]) * width)) / n,
                (pilot_sum + (n - m) * (low_bound + float(high[0]) * width)) / n)

    def knowledge(self, items: list[list[Probe]], weights: list[float], values: np.ndarray,
                  rule: tuple[np.ndarray, np.ndarray], paired: bool) -> certify.Knowledge:
        """``items``: each item's probes, summed with ``weights`` (R under "mean": both directions, halved).
        ``paired``: order items by a confidence sequence on their per-sequence difference; otherwise by
        disjoint intervals (R under max or min, which is no mean of per-sequence numbers)."""
        n_items = len(items)
        full = np.array([all(self.sampler.counts[p] >= self.sampler.n for p in probes) for probes in items])
        low, high = np.array(values, dtype=np.float64), np.array(values, dtype=np.float64)
        for a, probes in enumerate(items):
            if not full[a]:
                if paired:
                    series, bound, usable = self._series(probes, weights)
                    low[a], high[a] = self.mean_interval(series, 0.0, bound, usable)
                else:  # a reduction of the probes' own intervals (mean, max and min are monotone)
                    ends = [self.mean_interval(*self._bounded(p)) for p in probes]
                    reduce = stats.REDUCERS[self.tests.replacement_reduce]
                    low[a] = float(reduce(np.float64(ends[0][0]), np.float64(ends[-1][0])))
                    high[a] = float(reduce(np.float64(ends[0][1]), np.float64(ends[-1][1])))
        if paired:
            below = self._paired_order(items, weights, full, np.asarray(values, dtype=np.float64))
        else:
            below = (high[None, :] < low[:, None]) & ~np.eye(n_items, dtype=bool)
            exact = full[:, None] & full[None, :]
            below[exact] = (np.asarray(values)[None, :] < np.asarray(values)[:, None])[exact]
        return certify.Knowledge(np.asarray(values, dtype=np.float64), low, high, below, full, *rule)

    def _bounded(self, probe: Probe) -> tuple[np.ndarray, float, float, bool]:
        series, bound, usable = self._series([probe], [1.0])
        return series, 0.0, bound, usable

    def _paired_order(self, items: list[list[Probe]], weights: list[float], full: np.ndarray,
                      values: np.ndarray) -> np.ndarray:
        """[a, b]: b's exact mean surely below a's, from the confidence sequence of the per-sequence difference
        a - b on the sequences both have (bounded by [-bound_b, bound_a]); exact where both are full."""
        n_items, n, m = len(items), self.sampler.n, self.pilot
        series = [self._series(probes, weights) for probes in items]
        lengths = np.array([len(x) for x, _, _ in series])
        bounds = np.array([b for _, b, _ in series])
        usable = np.array([u for _, _, u in series])
        below = np.zeros((n_items, n_items), dtype=bool)
        first, second = np.triu_indices(n_items, k=1)
        common = np.minimum(lengths[first], lengths[second])
        both_full = full[first] & full[second]
        below[first[both_full], second[both_full]] = values[second[both_full]] < values[first[both_full]]
        below[second[both_full], first[both_full]] = values[first[both_full]] < values[second[both_full]]
        open_ = ~both_full & usable[first] & usable[second] & (common > m) & (common < n)
        for t in np.unique(common[open_]):
            chosen = open_ & (common == t)
            a, b = first[chosen], second[chosen]
            stacked = np.stack([x[:t] if len(x) >= t else np.zeros(t) for x, _, _ in series])  # [items, t]
            low_bound, width = -bounds[b], bounds[a] + bounds[b]
            differences = stacked[a] - stacked[b]  # [chosen, t]
            pilot_sum = differences[:, :m].sum(1)
            rest = ((differences[:, m:] - low_bound[:, None]) / np.where(width > 0, width, 1)[:, None]).T
            low, high = confidence.mean_interval(rest, n - m, self.alpha_each)
            low_mean = (pilot_sum + (n - m) * (low_bound + low * width)) / n
            high_mean = (pilot_sum + (n - m) * (low_bound + high * width)) / n
            below[a, b], below[b, a] = low_mean > 0, high_mean < 0
        return below


class _Judge:
    """The tests' outcomes on the audit as it stands, and which of them the exact audit surely shares."""

    def __init__(self, pair_probes: list[PairProbes], removals: list[Probe], measurement: Measurement, audit: Audit,
                 tests: Tests, n_layers: int, evidence: Optional[_Evidence] = None):
        self.pair_probes, self.removals = pair_probes, removals
        self.measurement, self.audit, self.tests = measurement, audit, tests
        self.n_layers = n_layers
        self.pairs = [(p.i, p.j) for p in pair_probes]
        self.floor = measurement.noise_floor or 0.0
        self.r_now = _arrays([p.replacement for p in audit.pairs])
        self.i_now = _arrays([p.interchange for p in audit.pairs])
        # the rank intervals the plugin's pair cases are judged on (paired bootstrap), and the orders behind them
        self.orders = audit.orders
        self.rank_r = np.array([p.rank_interval_replacement for p in audit.pairs]) if audit.orders else None
        self.rank_i = np.array([p.rank_interval_interchange for p in audit.pairs]) if audit.orders else None
        self.removal_now = _arrays([r.kl for r in audit.removals])
        self.evidence = evidence
        self.meaning: dict[str, tuple] = {}  # test name -> (kind, method or pair row, k)

    def outcomes_now(self) -> dict[str, Any]:
        return self._outcomes(self.r_now, self.i_now, self.removal_now)

    def _outcomes(self, r: tuple, i: tuple, removal_values: tuple) -> dict[str, Any]:
        """Every generated test's verdict, and the layer sets the pruning cases will remove."""
        tolerances = self.tests.tolerances
        outcomes: dict[str, Any] = {}
        if self.pairs:
            passed, _, _ = pair_outcomes(r, i, self.floor, tolerances, rank_r=self.rank_r, rank_i=self.rank_i)
            for row, ((a, b), ok) in enumerate(zip(self.pairs, passed)):
                outcomes[cases.pair_case(a, b)] = bool(ok)
                self.meaning[cases.pair_case(a, b)] = ("pair", row, 0)
        rho = stats.spearman(r[0], i[0])
        outcomes[cases.RANK_CORRELATION] = rho is None or rho >= tolerances.min_spearman
        self.meaning[cases.RANK_CORRELATION] = ("rank", None, 0)
        for k in tolerances.jaccard_k:
            if k in TOP_K and k < self.n_layers:
                rule = self.tests.rule
                overlap = stats.jaccard(set(rule.choose(self.pairs, r[0], k, self.n_layers)),
                                        set(rule.choose(self.pairs, i[0], k, self.n_layers)))
                outcomes[cases.topk_case(k)] = overlap >= tolerances.min_jaccard
                self.meaning[cases.topk_case(k)] = ("set", "both", k)
        for k in range(1, self.tests.prune_k + 1):
            for method, values in (("replacement", r[0]), ("interchange", i[0])):
                if method in self.tests.prune_methods:
                    outcomes[cases.prune_case(method, k)] = tuple(self.tests.rule.choose(self.pairs, values, k,
                                                                                         self.n_layers))
                    self.meaning[cases.prune_case(method, k)] = ("set", method, k)
            if "removal" in self.tests.prune_methods:
                cheapest = np.argsort(removal_values[0], kind="stable")[:k]
                outcomes[cases.prune_case("removal", k)] = tuple(sorted(cheapest))
                self.meaning[cases.prune_case("removal", k)] = ("set", "removal", k)
        return outcomes

    def knowledge(self) -> tuple[certify.Knowledge, certify.Knowledge, certify.Knowledge]:
        """What is surely known about R, I and removal (certify.Knowledge each)."""
        evidence = self.evidence
        r_items = [[p.ij, p.ji] for p in self.pair_probes]
        # The pair cases' ranks come from the paired order (the audit's); removal sets only from the means.
        r_rule = certify.rule_relations(*self.r_now, self.floor, self.orders.get("replacement"))
        i_rule = certify.rule_relations(*self.i_now, self.floor, self.orders.get("interchange"))
        removal_rule = certify.rule_relations(*self.removal_now, self.floor)
        r = evidence.knowledge(r_items, [0.5, 0.5], self.r_now[0], r_rule, paired=evidence.mean_r)
        i = evidence.knowledge([[p.swap] for p in self.pair_probes], [1.0], self.i_now[0], i_rule, paired=True)
        removal_items = [[p] for p in self.removals]
        gone = evidence.knowledge(removal_items, [1.0], self.removal_now[0], removal_rule, paired=True)
        return r, i, gone

    def unsettled(self) -> set[str]:
        """The tests whose exact verdict is not decided yet, or is decided but not what the audit reports now."""
        now = self.outcomes_now()
        self.r_known, self.i_known, self.removal_known = self.knowledge()
        self.open_items: dict[str, tuple[list[int], list[int], list[int]]] = {}  # test -> (R, I, removal) items
        unsettled = set()
        if self.pairs:
            verdicts = certify.pair_verdicts(self.r_known, self.i_known, self.floor,
                                             self.tests.tolerances.rank_slots(len(self.pairs)),
                                             self.tests.tolerances.log_ratio)
            for row, (a, b) in enumerate(self.pairs):
                name = cases.pair_case(a, b)
                if not (verdicts.decided[row] and verdicts.value[row] == now[name]):
                    unsettled.add(name)
                    self.open_items[name] = (self._undecided(self.r_known, row), self._undecided(self.i_known, row),
                                             [])
        rank = certify.rank_correlation_passes(self.r_known, self.i_known, self.tests.tolerances.min_spearman,
                                               stats.spearman(self.r_now[0], self.i_now[0]))
        if not (rank.decided[0] and rank.value[0] == now[cases.RANK_CORRELATION]):
            unsettled.add(cases.RANK_CORRELATION)
            self.open_items[cases.RANK_CORRELATION] = (self._undecided(self.r_known), self._undecided(self.i_known),
                                                       [])
        for name, (kind, which, k) in self.meaning.items():
            if kind != "set":
                continue
            open_r, open_i, open_removal = [], [], []
            decided = True
            if which in ("replacement", "both"):
                ok, open_r = certify.set_decided(self.tests.rule, self.pairs, self.r_known, k, self.n_layers)
                decided &= ok
            if which in ("interchange", "both"):
                ok, open_i = certify.set_decided(self.tests.rule, self.pairs, self.i_known, k, self.n_layers)
                decided &= ok
            if which == "removal":
                decided, open_removal = certify.cheapest_decided(self.removal_known, k)
            if not decided:
                unsettled.add(name)
                self.open_items[name] = (open_r, open_i, open_removal)
        return unsettled

    @staticmethod
    def _undecided(known: certify.Knowledge, row: Optional[int] = None) -> list[int]:
        """Items in an undecided order with the row's item (or with any item); if every order is decided,
        the row's item and every item not yet full (the rule's ties are only known on full items)."""
        open_pairs = ~(known.below | known.below.T)
        np.fill_diagonal(open_pairs, False)
        rows = open_pairs if row is None else open_pairs[row:row + 1]
        items = set(np.flatnonzero(rows.any(0)))
        if row is not None:
            items.add(row)
        if not items or items == {row}:
            items |= set(np.flatnonzero(~known.full))
        return sorted(int(m) for m in items)

    def depends_on(self, unsettled: set[str]) -> set[Probe]:
        """The probes whose further sampling can settle these tests."""
        probes: set[Probe] = set()
        for name in unsettled:
            open_r, open_i, open_removal = self.open_items[name]
            if not (open_r or open_i or open_removal):  # nothing named: everything not yet full
                open_r = list(np.flatnonzero(~self.r_known.full))
                open_i = list(np.flatnonzero(~self.i_known.full))
                open_removal = list(np.flatnonzero(~self.removal_known.full))
            probes.update(probe for m in open_r for probe in (self.pair_probes[m].ij, self.pair_probes[m].ji))
            probes.update(self.pair_probes[m].swap for m in open_i)
            probes.update(self.removals[m] for m in open_removal)
        return probes


def _arrays(estimates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([e.value for e in estimates]), np.array([e.low for e in estimates]),
            np.array([e.high for e in estimates]))
