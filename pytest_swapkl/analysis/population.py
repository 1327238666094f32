"""Population verdicts for adaptive mode: which decisions that pruning reads are already settled about the text
population (not the finite calibration sample), and which probes the unsettled ones need more sequences of.

The decisions: each protocol's top-k removal set (R and I under the audit's pair rule, removal: the k cheapest
layers) for k in ``ks``, and the Spearman threshold verdict Spearman(R, I) >= min_spearman. Per-pair rank cases are
not among them: adaptive mode reports them from what was measured (docs/decisions.md, "Adaptive mode, redefined").

Evidence: asymptotic anytime-valid confidence sequences (confidence.asymptotic_half_width) on the paired
per-sequence differences a set rests on ("b below a" when the interval of b - a lies below 0), and on marginal
means for the Spearman verdict; alpha is split (Bonferroni) over the comparisons those decisions actually use in
the round (the walk of the current estimates names them). A set is settled when the rule's walk over the current
estimates is surely in order: each visited layer surely before the next, and the last surely before every layer
not visited (issue 15's layer-walk condition, with paired intervals).

Probes are rows of ``values`` [probes, sequences] in the order drawn; ``counts[p]``: how many of them are measured.
Row layout (``ProbeRows``): R i->j of each pair, R j->i, the interchange of each pair, then each layer's removal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import certify, confidence
from .pair_rules import MIN_PARTNER, SetRule, layer_min_scores, spaced_scan


@dataclass
class ProbeRows:
    pairs: list[tuple[int, int]]
    n_layers: int

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def n_probes(self) -> int:
        return 3 * self.n_pairs + self.n_layers

    def directions(self, pair: int) -> tuple[int, int]:
        return pair, self.n_pairs + pair

    def swap(self, pair: int) -> int:
        return 2 * self.n_pairs + pair

    def removal(self, layer: int) -> int:
        return 3 * self.n_pairs + layer


@dataclass
class Decisions:
    """What pruning reads, and at what error: the comparisons are chosen afresh every round."""

    rows: ProbeRows
    rule: SetRule = field(default_factory=SetRule)
    ks: tuple[int, ...] = (1, 2, 3, 4)
    min_spearman: float = 0.5
    alpha: float = 0.05
    planned: float = 16.0  # sequences at which the confidence sequences are tightest
    spearman_margin: float = 0.1  # the share of the threshold's allowance the chosen items must close
    reduce: str = "max"  # how R combines a pair's two directions (stats.REDUCERS' names)

    def estimates(self, values: np.ndarray, counts: np.ndarray) -> dict[str, object]:
        """Every decision read from the current means (the truth when ``values`` are the population's means)."""
        means = _prefix_means(values, counts)
        return self._read(means)

    def _read(self, means: np.ndarray) -> dict[str, object]:
        rows = self.rows
        r, i, gone = self._protocol_values(means)
        out: dict[str, object] = {}
        for k in self.ks:
            out[f"set_R_k{k}"] = tuple(sorted(self.rule.order(rows.pairs, r, k, rows.n_layers)))
            out[f"set_I_k{k}"] = tuple(sorted(self.rule.order(rows.pairs, i, k, rows.n_layers)))
            out[f"set_removal_k{k}"] = tuple(sorted(np.argsort(gone, kind="stable")[:k].tolist()))
        out["spearman"] = bool(_spearman(r, i) >= self.min_spearman)
        return out

    def _protocol_values(self, means: np.ndarray):
        rows = self.rows
        ij, ji = means[:rows.n_pairs], means[rows.n_pairs:2 * rows.n_pairs]
        reduced = {"max": np.maximum, "min": np.minimum}
        r = reduced[self.reduce](ij, ji) if self.reduce in reduced else (ij + ji) / 2
        return r, means[2 * rows.n_pairs:3 * rows.n_pairs], means[3 * rows.n_pairs:]

    def _targets(self, probes: tuple[int, ...], means: np.ndarray) -> tuple[int, ...]:
        """The probes of an item that another item must be surely below to be surely below it: under "max" its
        larger direction; otherwise both (max(p) < min(q) orders p below q under max, min and mean alike)."""
        return (max(probes, key=lambda p: means[p]),) if self.reduce == "max" or len(probes) == 1 else probes

    def judge(self, values: np.ndarray, counts: np.ndarray) -> "Judgement":
        """Which decisions are settled about the population, and the probes the others need."""
        rows, means = self.rows, _prefix_means(values, counts)
        r, i, gone = self._protocol_values(means)
        needs: dict[str, list[tuple[int, int]]] = {}  # decision -> probe differences (a, b): a surely below b
        everything = [(p, p) for p in range(3 * rows.n_pairs)]  # never sure: every pair probe to the end
        known_rule = self.rule.name in (MIN_PARTNER, "layer_min")
        walk_r = self._walk_needs(r, rows.directions, means) if known_rule else {}
        walk_i = self._walk_needs(i, lambda p: (rows.swap(p),), means) if known_rule else {}
        order = np.argsort(gone, kind="stable")
        for k in self.ks:
            needs[f"set_R_k{k}"] = walk_r.get(k, everything)
            needs[f"set_I_k{k}"] = walk_i.get(k, everything)
            needs[f"set_removal_k{k}"] = [(rows.removal(v), rows.removal(u)) for v in order[:k] for u in order[k:]]
        differences = sorted({d for pairs in needs.values() for d in pairs if d[0] != d[1]})
        n_tests = len(differences) + 3 * rows.n_pairs * (rows.n_pairs - 1) // 2  # and the Spearman verdict's
        alpha_each = self.alpha / n_tests
        sure = self._differences_below(values, counts, differences, alpha_each)
        settled, open_probes = {}, set()
        for name, pairs in needs.items():
            unsure = [d for d in pairs if not sure.get(d, False)]
            settled[name] = not unsure
            open_probes.update(p for d in unsure for p in d)
        settled["spearman"], spearman_probes = self._spearman_settled(values, counts, means, alpha_each)
        if not settled["spearman"]:
            open_probes.update(spearman_probes)
        full = counts >= values.shape[1]
        return Judgement(self._read(means), settled, sorted(p for p in open_probes if not full[p]), n_tests)

    def _walk_needs(self, scores_of_pairs: np.ndarray, probes_of, means) -> dict[int, list[tuple[int, int]]]:
        """Per k: the probe differences that make the rule's walk over these pair values sure (module docstring).
        The walks for every k share their steps, so each step's differences are listed once."""
        rows = self.rows
        spacing = self.rule.spacing if self.rule.name == MIN_PARTNER else 0
        keep = self.rule.keep_boundary if self.rule.name == MIN_PARTNER else 0
        scores = layer_min_scores(rows.pairs, scores_of_pairs)
        eligible = [layer for layer in sorted(scores, key=lambda layer: (scores[layer], layer))
                    if keep <= layer < rows.n_layers - keep]
        touching = self._touching()
        step_needs: dict[tuple[int, int], list[tuple[int, int]]] = {}

        def step(a: int, b: int) -> list[tuple[int, int]]:  # a surely before b: a's cheapest pair below b's pairs
            if (a, b) not in step_needs:
                cheapest = min(touching[a], key=lambda n: (scores_of_pairs[n], n))
                needs = []
                for q in touching[b]:
                    if q == cheapest:
                        if a > b:  # a tie the rule breaks by layer index, the wrong way: never sure
                            needs.append((probes_of(q)[0], probes_of(q)[0]))
                        continue
                    needs.extend((p, target) for p in probes_of(cheapest)
                                 for target in self._targets(probes_of(q), means))
                step_needs[(a, b)] = needs
            return step_needs[(a, b)]

        out = {}
        for k in self.ks:
            visited = spaced_scan(eligible, k, spacing)[0]
            rest = eligible[len(visited):]
            steps = list(zip(visited, visited[1:])) + [(visited[-1], b) for b in rest] if visited else []
            out[k] = [d for a, b in steps for d in step(a, b)]
        return out

    def _touching(self) -> dict[int, list[int]]:
        if not hasattr(self, "_touching_cache"):
            self._touching_cache = {layer: [n for n, pair in enumerate(self.rows.pairs) if layer in pair]
                                    for layer in range(self.rows.n_layers)}
        return self._touching_cache

    def _differences_below(self, values, counts, differences, alpha_each) -> dict[tuple[int, int], bool]:
        if not differences:
            return {}
        a, b = np.array(differences).T
        common = np.minimum(counts[a], counts[b])
        sure = np.zeros(len(a), dtype=bool)
        for t in np.unique(common):
            chosen = np.flatnonzero(common == t)
            if t < 2:
                continue
            gaps = values[a[chosen], :t] - values[b[chosen], :t]
            mean, std = gaps.mean(1), gaps.std(1, ddof=1)
            half = confidence.asymptotic_half_width(std, t, alpha_each, self.planned)
            sure[chosen] = (mean + half < 0) & (std > 0)
        return {d: bool(s) for d, s in zip(differences, sure)}

    def _spearman_settled(self, values, counts, means, alpha_each) -> tuple[bool, list[int]]:
        """Decided from the range of ranks each item can take (certify's bound), the ranks from paired intervals
        on every two items of a protocol (sequences are hard or easy for every probe at once, so a difference
        varies far less than either mean)."""
        n = self.rows.n_pairs
        directions = np.arange(2 * n)
        sure_dirs = _surely_below(values, counts, directions, alpha_each, self.planned)  # [d, e]: d below e
        ij, ji = means[:n], means[n:2 * n]
        if self.reduce == "max":
            larger = np.where(ij >= ji, np.arange(n), n + np.arange(n))  # each pair's larger direction
            r_below = (sure_dirs[:n][:, larger] & sure_dirs[n:][:, larger]).T  # [q, p]: p's R surely below q's
        else:  # both of p's directions below both of q's (see _targets)
            both = sure_dirs[:n] & sure_dirs[n:]
            r_below = (both[:, :n] & both[:, n:]).T
        i_below = _surely_below(values, counts, 2 * n + np.arange(n), alpha_each, self.planned).T
        r_values, i_values, _ = self._protocol_values(means)

        def known(values_, below):
            np.fill_diagonal(below, False)
            return certify.Knowledge(values_, below, np.zeros(n, dtype=bool))

        r_known, i_known = known(r_values, r_below), known(i_values, i_below)
        verdict = certify.rank_correlation_passes(r_known, i_known, self.min_spearman, None)
        estimate = _spearman(r_values, i_values) >= self.min_spearman
        settled = bool(verdict.decided[0] and verdict.value[0] == estimate)
        return settled, self._spearman_needs(r_known, i_known)

    def _spearman_needs(self, r: certify.Knowledge, i: certify.Knowledge) -> list[int]:
        """The items whose rank ranges cost the bound most, enough of them that the bound would pass if their
        ranges closed (which probes go on changes the cost, never the error)."""
        n = self.rows.n_pairs
        r_low, r_high = 1 + r.below.sum(1), n - r.below.sum(0)
        i_low, i_high = 1 + i.below.sum(1), n - i.below.sum(0)
        largest = np.maximum(np.abs(r_high - i_low), np.abs(i_high - r_low)).astype(np.float64) ** 2
        allowed = (1 - self.min_spearman) * n * (n * n - 1) / 6  # the sum of squared gaps the threshold allows
        order = np.argsort(-largest, kind="stable")
        excess = largest.sum() - np.concatenate([[0.0], np.cumsum(largest[order])])
        chosen = order[:int(np.argmax(excess <= allowed * self.spearman_margin))]  # a margin for the rest
        rows = self.rows
        return sorted(p for m in chosen for p in (*rows.directions(int(m)), rows.swap(int(m))))


@dataclass
class Judgement:
    estimates: dict[str, object]
    settled: dict[str, bool]
    open_probes: list[int]  # probes not yet full that an unsettled decision rests on
    n_tests: int  # the Bonferroni family of the round


def _surely_below(values: np.ndarray, counts: np.ndarray, items: np.ndarray, alpha_each: float,
                  planned: float) -> np.ndarray:
    """[a, b]: item a's mean surely below item b's, from the paired differences on the sequences both have."""
    n = len(items)
    below = np.zeros((n, n), dtype=bool)
    item_counts = counts[items]
    for t in np.unique(item_counts):
        if t < 2:
            continue
        wide = np.flatnonzero(item_counts >= t)
        x = values[items[wide], :t]
        sums, squares = x.sum(1), x @ x.T
        diag = np.diag(squares)
        mean = (sums[:, None] - sums[None, :]) / t
        variance = ((diag[:, None] + diag[None, :] - 2 * squares) - t * mean ** 2) / (t - 1)
        std = np.sqrt(np.maximum(variance, 0))
        half = confidence.asymptotic_half_width(std, t, alpha_each, planned)
        common = np.minimum(item_counts[wide][:, None], item_counts[wide][None, :]) == t
        sure = common & (mean + half < 0) & (std > 0)
        below[np.ix_(wide, wide)] |= sure
    return below


def _prefix_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    columns = np.arange(values.shape[1])[None, :]
    inside = columns < counts[:, None]
    return (values * inside).sum(1) / np.maximum(counts, 1)


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from .stats import spearman
    rho = spearman(np.asarray(a), np.asarray(b))
    return 1.0 if rho is None else float(rho)


def schedule(n_sequences: int, pilot: int, growth: float = 1.5) -> list[int]:
    """Sequence counts after each round: the pilot, then growing by ``growth`` up to every sequence."""
    steps = [min(pilot, n_sequences)]
    while steps[-1] < n_sequences:
        steps.append(min(n_sequences, max(steps[-1] + 1, round(growth * steps[-1]))))
    return steps


def run(decisions: Decisions, draw: np.ndarray, pilot: int = 8,
        growth: float = 1.5) -> tuple[Judgement, np.ndarray, list[dict]]:
    """Adaptive sampling on a table already drawn (``draw`` [probes, sequences] in the order drawn): every probe
    on the pilot, then only the open probes, growing by ``growth``, until every decision is settled or the data
    is used up. Returns the last judgement, the per-probe counts and one record per round."""
    n_probes, n_sequences = draw.shape
    counts = np.zeros(n_probes, dtype=np.int64)
    active = np.arange(n_probes)
    rounds = []
    for target in schedule(n_sequences, pilot, growth):
        counts[active] = np.maximum(counts[active], target)
        judgement = decisions.judge(draw, counts)
        rounds.append({"sequences": target, "open_probes": len(judgement.open_probes),
                       "unsettled": sorted(k for k, v in judgement.settled.items() if not v),
                       "tests": judgement.n_tests})
        active = np.array(judgement.open_probes, dtype=np.int64)
        if not len(active):
            break
    return judgement, counts, rounds
