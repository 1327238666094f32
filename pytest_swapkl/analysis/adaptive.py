"""Adaptive precision: measure every probe on a first slice of the calibration sequences, then keep
sampling only the probes that some generated test's verdict still depends on.

Each round ends with two judgements of the same tests:
  * *now*: the verdicts of the audit as it stands (what would be reported if sampling stopped);
  * *exact, simulated*: the verdicts an exact audit would reach, in SIMULATIONS plausible completions
    of the data. A probe measured on n_p of n sequences gets its unseen n - n_p sequences drawn from
    its own observed values (the same draws for every probe at that n_p, so probes stay correlated
    the way sequences make them), with the deviation widened by INFLATE because a handful of
    sequences understates the spread, plus an independent normal term per probe (a handful of
    sequences can all happen to order two nearly tied probes the same way); its exact interval is
    taken as mean +- 1.96 sd / sqrt(n) of the completed data, not widened (wider intervals make
    ties, and so passing pairs, likelier than the exact audit will find them).
A test is settled when every simulation agrees with *now*. Sampling continues, on twice as many
sequences per round, for the probes an unsettled test depends on: the pair's own three probes and
the probes of pairs whose intervals overlap its intervals (they decide its rank interval); for the
rank correlation, every probe whose rank is uncertain; for a top-k or pruning set, the probes of
pairs near the set's boundary. It stops when every test is settled or the data is used up, where
a probe's numbers are exactly the exact audit's.

The rule is a heuristic with a safety margin, not a guarantee: tests/test_adaptive.py and
docs/benchmarks.md compare its verdicts with exact audits.
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
from . import stats
from .agreement import Tolerances, pair_outcomes
from .audit import TOP_K, Audit, Estimate, summarize

FIRST_SLICE_MIN = 4  # sequences: fewer give bootstrap intervals too coarse to settle anything
SIMULATIONS = 100
INFLATE = 1.5
Z95 = 1.96


def schedule(n_sequences: int) -> list[int]:
    """Sequence counts after each round: a sixteenth of the data (at least FIRST_SLICE_MIN), doubling."""
    target = min(n_sequences, max(FIRST_SLICE_MIN, math.ceil(n_sequences / 16)))
    steps = [target]
    while target < n_sequences:
        target = min(n_sequences, 2 * target)
        steps.append(target)
    return steps


@dataclass
class PairProbes:
    i: int
    j: int
    ij: Probe
    ji: Probe
    swap: Probe


@dataclass
class Tests:
    """Which generated tests an adaptive audit must settle (the plugin's, from its options)."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    replacement_reduce: str = "mean"
    prune_k: int = 0
    prune_methods: tuple[str, ...] = ("replacement", "interchange")


@dataclass
class AdaptiveResult:
    measurement: Measurement  # per-probe arrays cover the sequences each probe was measured on
    sequences: dict[Probe, int]
    rounds: list[dict[str, Any]]

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


def measure_adaptive(model: torch.nn.Module, input_ids: torch.Tensor, pairs: Sequence[tuple[int, int]],
                     n_layers: int, tests: Tests, *, n_resamples: int = 1000, seed: int = 0,
                     progress: Optional[Callable[[int, int], None]] = None,
                     notice: Notice = print_notice, **measure_options) -> AdaptiveResult:
    """The adaptive audit's Measurement; ``measure_options`` go to ``engine.measure`` (path, batch_size, journal...)."""

    def measure_slice(probes: list[Probe], start: int, stop: int, slice_progress) -> Measurement:
        return engine.measure(model, input_ids[start:stop], probes, first_sequence=start, progress=slice_progress,
                              notice=notice, **measure_options)

    return sample_adaptively(measure_slice, input_ids.shape[0], input_ids.shape[1], pairs, n_layers, tests,
                             n_resamples=n_resamples, seed=seed, progress=progress)


def sample_adaptively(measure_slice: Callable[..., Measurement], n_sequences: int, seq_len: int,
                      pairs: Sequence[tuple[int, int]], n_layers: int, tests: Tests, *, n_resamples: int = 1000,
                      seed: int = 0, progress: Optional[Callable[[int, int], None]] = None) -> AdaptiveResult:
    """The sampling loop, on any ``measure_slice(probes, start, stop, progress) -> Measurement`` of sequences
    [start, stop): the engine in an audit, a synthetic table in tests."""
    sampler = _Sampler(measure_slice, n_sequences, seq_len, audit_probes(pairs, n_layers), progress)
    pair_probes = [PairProbes(i, j, replacement(i, j, n_layers), replacement(j, i, n_layers),
                              interchange(i, j, n_layers)) for i, j in pairs]
    removals = [removal([layer], n_layers) for layer in range(n_layers)]
    rng = np.random.default_rng(seed)
    rounds: list[dict[str, Any]] = []
    active = set(sampler.probes)
    for target in schedule(n_sequences):
        sampler.extend(active, target)
        measurement = sampler.measurement()
        audit = summarize(measurement, list(pairs), n_layers, tests.replacement_reduce, n_resamples, seed)
        judge = _Judge(pair_probes, removals, measurement, audit, tests, n_layers)
        now = judge.outcomes_now()
        unsettled = judge.unsettled(now, rng)
        active = {p for p in judge.depends_on(unsettled) if sampler.counts[p] < n_sequences}
        rounds.append({"sequences": target, "measured_probes": sum(1 for c in sampler.counts.values() if c >= target),
                       "unsettled_tests": sorted(unsettled), "continuing_probes": len(active)})
        if not active:
            break
    return AdaptiveResult(sampler.measurement(complete_base=True), dict(sampler.counts), rounds)


class _Sampler:
    """Per-probe prefixes of the calibration sequences, extended on demand through ``engine.measure``."""

    def __init__(self, measure_slice, n_sequences: int, seq_len: int, probes: list[Probe], progress):
        self.measure_slice = measure_slice
        self.n, self.seq_len = n_sequences, seq_len
        self.probes = list(dict.fromkeys(probes))
        self.counts = {p: 0 for p in self.probes}
        self.kl: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}
        self.nll: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}
        self.base_nll = np.full(self.n, np.nan)
        self.noise_floor = 0.0
        self.path = "fast"
        self.progress = progress
        self.done, self.total = 0, 0

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
        if complete_base:  # the base perplexity is over all sequences: one unchanged forward for the rest
            missing = np.flatnonzero(np.isnan(self.base_nll))
            if len(missing):
                first = int(missing[0])
                base = self.measure_slice([identity(self.probes[0].n_layers)], first, self.n, None)
                self.base_nll[first:] = base.base_nll_per_seq
        probes = {p: ProbeStats(p, np.concatenate(self.kl[p]), np.concatenate(self.nll[p])) for p in self.probes}
        measured = self.base_nll[~np.isnan(self.base_nll)]
        result = Measurement(self.path, self.n, self.seq_len, measured, probes)
        result.noise_floor = self.noise_floor
        return result


class _Judge:
    """The tests' outcomes on the audit as it stands, and in simulated exact audits."""

    def __init__(self, pair_probes: list[PairProbes], removals: list[Probe], measurement: Measurement, audit: Audit,
                 tests: Tests, n_layers: int):
        self.pair_probes, self.removals = pair_probes, removals
        self.measurement, self.audit, self.tests = measurement, audit, tests
        self.n_layers = n_layers
        self.pairs = [(p.i, p.j) for p in pair_probes]
        self.floor = measurement.noise_floor or 0.0
        self.reduce = stats.REDUCERS[tests.replacement_reduce]
        self.r_now = _arrays([p.replacement for p in audit.pairs])
        self.i_now = _arrays([p.interchange for p in audit.pairs])
        self.removal_now = _arrays([r.kl for r in audit.removals])
        self.estimates = _probe_estimates(audit)

    def outcomes_now(self) -> dict[str, Any]:
        return self._outcomes(self.r_now, self.i_now, self.removal_now)

    def _outcomes(self, r: tuple, i: tuple, removal_values: tuple) -> dict[str, Any]:
        """Every generated test's verdict, and the layer sets the pruning cases will remove."""
        tolerances = self.tests.tolerances
        outcomes: dict[str, Any] = {}
        self.meaning: dict[str, tuple] = {}  # test name -> (kind, method or pair row, k)
        if self.pairs:
            passed, _, _ = pair_outcomes(r, i, self.floor, tolerances)
            for row, ((a, b), ok) in enumerate(zip(self.pairs, passed)):
                outcomes[cases.pair_case(a, b)] = bool(ok)
                self.meaning[cases.pair_case(a, b)] = ("pair", row, 0)
        rho = stats.spearman(r[0], i[0])
        outcomes[cases.RANK_CORRELATION] = rho is None or rho >= tolerances.min_spearman
        self.meaning[cases.RANK_CORRELATION] = ("rank", None, 0)
        for k in tolerances.jaccard_k:
            if k in TOP_K and k < self.n_layers:
                overlap = stats.jaccard(set(stats.removal_set(self.pairs, r[0], k)),
                                        set(stats.removal_set(self.pairs, i[0], k)))
                outcomes[cases.topk_case(k)] = overlap >= tolerances.min_jaccard
                self.meaning[cases.topk_case(k)] = ("set", "both", k)
        for k in range(1, self.tests.prune_k + 1):
            for method, values in (("replacement", r[0]), ("interchange", i[0])):
                if method in self.tests.prune_methods:
                    outcomes[cases.prune_case(method, k)] = tuple(stats.removal_set(self.pairs, values, k))
                    self.meaning[cases.prune_case(method, k)] = ("set", method, k)
            if "removal" in self.tests.prune_methods:
                cheapest = np.argsort(removal_values[0], kind="stable")[:k]
                outcomes[cases.prune_case("removal", k)] = tuple(sorted(cheapest))
                self.meaning[cases.prune_case("removal", k)] = ("set", "removal", k)
        return outcomes

    def unsettled(self, now: dict[str, Any], rng: np.random.Generator) -> set[str]:
        simulated = self._simulate(rng)
        unsettled = set()
        for s in range(SIMULATIONS):
            outcomes = self._outcomes(*(tuple(a[:, s] if a.ndim == 2 else a for a in arrays) for arrays in simulated))
            unsettled.update(name for name, value in outcomes.items() if value != now[name])
        return unsettled

    def _simulate(self, rng: np.random.Generator) -> tuple[tuple, tuple, tuple]:
        """(values, lows, highs) arrays [n_items, SIMULATIONS] of plausible exact audits."""
        n = self.measurement.n_sequences
        draws: dict[int, np.ndarray] = {}  # one draw per prefix length, shared by its probes
        simulated: dict[Probe, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for probe, result in self.measurement.probes.items():
            x = result.kl_per_seq
            if len(x) >= n:  # measured on everything: its numbers are the exact audit's
                estimate = self.estimates[probe]
                simulated[probe] = tuple(np.full(SIMULATIONS, v) for v in (estimate.value, estimate.low, estimate.high))
                continue
            if len(x) not in draws:
                draws[len(x)] = rng.integers(0, len(x), size=(SIMULATIONS, len(x)))
            mean = x.mean()
            spread = x.std(ddof=1) if len(x) > 1 else math.inf
            # Where the unseen sequences' mean may lie: the seen mean is itself uncertain (resampling the seen
            # sequences, with the same draws for every probe, keeps the probes' shared ups and downs), and the
            # unseen ones are a sample of their own. The independent normal term covers both, and lets two
            # probes whose seen differences all happen to point one way still swap in the rest.
            shared = x[draws[len(x)]].mean(-1) - mean
            independent = rng.standard_normal(SIMULATIONS) * spread * math.sqrt(1 / len(x) + 1 / (n - len(x)))
            rest = mean + INFLATE * (shared + independent)
            full_mean = (x.sum() + (n - len(x)) * rest) / n
            drawn_sq = (x ** 2)[draws[len(x)]].mean(-1) * (n - len(x))  # the rest's spread, as the seen one
            # The exact interval's width is that of the completed data, not widened: wider simulated intervals
            # would make ties, and so passing pairs, more likely than the exact audit will find them.
            second_moment = ((x ** 2).sum() + drawn_sq + (n - len(x)) * (rest ** 2 - mean ** 2)) / n
            full_spread = np.sqrt(np.maximum(second_moment - full_mean ** 2, 0) * n / (n - 1))
            half = Z95 * full_spread / math.sqrt(n)
            simulated[probe] = full_mean, full_mean - half, full_mean + half

        def stack(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple:
            return tuple(np.stack([row[k] for row in rows]) if rows else np.empty((0, SIMULATIONS)) for k in range(3))

        r_rows = []
        for row, p in enumerate(self.pair_probes):
            if len(self.measurement[p.ij].kl_per_seq) >= n and len(self.measurement[p.ji].kl_per_seq) >= n:
                r_rows.append(tuple(np.full(SIMULATIONS, a[row]) for a in self.r_now))  # the real R interval
            else:
                r_rows.append(tuple(self.reduce(a, b) for a, b in zip(simulated[p.ij], simulated[p.ji])))
        i_rows = [simulated[p.swap] for p in self.pair_probes]
        removal_rows = [simulated[p] for p in self.removals]
        return stack(r_rows), stack(i_rows), stack(removal_rows)

    def depends_on(self, unsettled: set[str]) -> set[Probe]:
        """The probes whose further sampling can settle these tests."""
        probes: set[Probe] = set()
        r_overlaps, i_overlaps = _overlaps(self.r_now), _overlaps(self.i_now)
        for name in unsettled:
            kind, which, k = self.meaning[name]
            if kind == "pair":
                probes.update(self._r_probes(np.flatnonzero(r_overlaps[which])))
                probes.update(self.pair_probes[m].swap for m in np.flatnonzero(i_overlaps[which]))
            elif kind == "rank":
                probes.update(self._r_probes(np.flatnonzero(r_overlaps.sum(1) > 1)))
                probes.update(self.pair_probes[m].swap for m in np.flatnonzero(i_overlaps.sum(1) > 1))
            elif which == "removal":
                probes.update(self.removals[m] for m in _near_boundary(self.removal_now, k))
            else:
                if which in ("replacement", "both"):
                    probes.update(self._r_probes(_near_set_boundary(self.pairs, self.r_now, k)))
                if which in ("interchange", "both"):
                    probes.update(self.pair_probes[m].swap for m in _near_set_boundary(self.pairs, self.i_now, k))
        return probes

    def _r_probes(self, rows: Sequence[int]) -> list[Probe]:
        return [probe for m in rows for probe in (self.pair_probes[m].ij, self.pair_probes[m].ji)]


def _arrays(estimates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([e.value for e in estimates]), np.array([e.low for e in estimates]),
            np.array([e.high for e in estimates]))


def _overlaps(arrays: tuple) -> np.ndarray:
    """[n, n]: whether the intervals of items a and b overlap (the diagonal included)."""
    _, lows, highs = arrays
    return (lows[:, None] <= highs[None, :]) & (lows[None, :] <= highs[:, None])


def _near_set_boundary(pairs: Sequence[tuple[int, int]], arrays: tuple, k: int) -> np.ndarray:
    """Pairs that could enter or leave the k-layer removal set: those whose interval reaches below the upper
    end of the intervals of the pairs the set's walk visits."""
    values, lows, highs = arrays
    order = sorted(range(len(pairs)), key=lambda n: (values[n], pairs[n]))
    removed: list[int] = []
    visited = []
    for n in order:
        if len(removed) == k:
            break
        visited.append(n)
        i, j = pairs[n]
        if j not in removed and i not in removed:
            removed.append(j)
    boundary = max((highs[n] for n in visited), default=-math.inf)
    return np.flatnonzero(lows <= boundary)


def _near_boundary(arrays: tuple, k: int) -> np.ndarray:
    values, lows, highs = arrays
    boundary = np.sort(highs[np.argsort(values, kind="stable")[:k]]).max() if k else -math.inf
    return np.flatnonzero(lows <= boundary)
