"""The generated test cases: one per pair, the rank correlation, top-k Jaccard, and numerical sanity.

Each case evaluates a rule of `agreement` on the audit document and carries its
numbers as `user_properties`, which junit XML writes as <property> entries.
"""

from __future__ import annotations

import math
from typing import Callable

import pytest

from .agreement import (
    Tolerances,
    failure_message,
    jaccard_passes,
    pair_verdicts,
    prune_gap_passes,
    prune_passes,
    spearman_passes,
)

Check = Callable[[], tuple[bool, str]]


class SwapklFailure(AssertionError):
    pass


class SwapklItem(pytest.Item):
    def __init__(self, *, check: Check, properties: list[tuple[str, object]], **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.user_properties.extend(properties)

    def runtest(self) -> None:
        passed, message = self.check()
        if passed is None:  # nothing to judge (e.g. a rule that names no set at this budget)
            pytest.skip(message)
        if not passed:
            raise SwapklFailure(message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SwapklFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return "swapkl", None, self.nodeid


class SwapklCollector(pytest.Collector):
    def collect(self):  # items are built from the audit document, not collected from files
        return []


def _flat_pair(pair: dict) -> list[tuple[str, object]]:
    properties = [(key, pair[key]) for key in ("i", "j", "replacement_ij", "replacement_ji", "interchange",
                                               "replacement", "ratio", "log_ratio", "rank_replacement",
                                               "rank_interchange")]
    for name, (low, high) in pair["ci"].items():
        properties += [(f"{name}_ci_low", low), (f"{name}_ci_high", high)]
    return properties


def _context(document: dict) -> list[tuple[str, object]]:
    return [("model", document["model"]["name"]), ("data_sha256", document["data"]["sha256"]),
            ("dtype", document["model"]["dtype"]), ("device", document["model"]["device"])]


def build_items(parent: SwapklCollector, record, tolerances: Tolerances) -> list[SwapklItem]:
    document = record.document
    audit_properties = _context(document) + [
        ("base_ppl", document["base"]["ppl"]), ("noise_floor", document["noise_floor"]),
        ("audit_computed_in", record.origin), ("audit_cache_hit", record.cache_hit),
    ] + [(f"removal_L{r['layer']:02d}_kl", r["kl"]) for r in document["removal"]]
    items = [SwapklItem.from_parent(parent, name="audit", check=lambda: _sane(document), properties=audit_properties)]
    n_pairs = len(document["pairs"])
    for pair, verdict in zip(document["pairs"], pair_verdicts(document, tolerances)):
        def check(pair=pair, verdict=verdict) -> tuple[bool, str]:
            return verdict.passed, failure_message(pair, verdict, n_pairs)

        items.append(SwapklItem.from_parent(
            parent, name=f"pair[L{pair['i']:02d}-L{pair['j']:02d}]", check=check,
            properties=_flat_pair(pair) + [("rank_gap", verdict.rank_gap), ("rank_tolerance", verdict.allowed_gap),
                                           ("verdict", verdict.reason)]))
    summary = document["summary"]
    items.append(SwapklItem.from_parent(
        parent, name="rank_correlation", check=lambda: spearman_passes(document, tolerances),
        properties=_context(document) + [("spearman", summary["spearman"]), ("kendall", summary["kendall"]),
                                         ("n_pairs", n_pairs), ("min_spearman", tolerances.min_spearman)]
        + _top_k_sets(summary)))
    for k in tolerances.jaccard_k:
        entry = next((t for t in summary["topk"] if t["k"] == k), {})
        items.append(SwapklItem.from_parent(
            parent, name=f"topk_jaccard[k={k}]", check=lambda k=k: jaccard_passes(document, k, tolerances),
            properties=[("k", k), ("jaccard", entry.get("jaccard")),
                        ("replacement_layers", entry.get("replacement_layers")),
                        ("interchange_layers", entry.get("interchange_layers")),
                        ("min_jaccard", tolerances.min_jaccard)]))
    if "pruning" in document:
        items += _prune_items(parent, document, tolerances)
    return items


def _prune_items(parent: SwapklCollector, document: dict, tolerances: Tolerances) -> list[SwapklItem]:
    pruning, items = document["pruning"], []
    for budget in pruning["budgets"]:
        k = budget["k"]
        for method in pruning["methods"]:
            items.append(SwapklItem.from_parent(
                parent, name=f"prune[{method}-k{k}]",
                check=lambda method=method, k=k: prune_passes(document, method, k, tolerances),
                properties=[("method", method), ("k", k), ("layers", budget["sets"].get(method)),
                            ("kl", budget["kl"].get(method)), ("ppl", budget["ppl"].get(method)),
                            ("base_ppl", pruning["base_ppl"]), ("max_ppl_increase", tolerances.max_ppl_increase)]))
        if {"replacement", "interchange"} <= set(pruning["methods"]):
            items.append(SwapklItem.from_parent(
                parent, name=f"prune_gap[k{k}]", check=lambda k=k: prune_gap_passes(document, k, tolerances),
                properties=[("k", k), ("replacement_kl", budget["kl"].get("replacement")),
                            ("interchange_kl", budget["kl"].get("interchange")),
                            ("max_cost_factor", tolerances.max_cost_factor)]))
    return items


def _top_k_sets(summary: dict) -> list[tuple[str, object]]:
    """Every budget's removal sets (k = 1..4), so a report can show them whatever --swapkl-jaccard-k was."""
    properties: list[tuple[str, object]] = []
    for entry in summary["topk"]:
        k = entry["k"]
        properties += [(f"top{k}_replacement_layers", entry["replacement_layers"]),
                       (f"top{k}_interchange_layers", entry["interchange_layers"]),
                       (f"top{k}_jaccard", entry["jaccard"])]
    return properties


def _sane(document: dict) -> tuple[bool, str]:
    """Every distance finite and not below minus the noise floor: a NaN must never pass as 'agreement'."""
    floor = (document.get("noise_floor") or 0.0) + 1e-6
    values = [(f"pair {p['i']}-{p['j']} {key}", p[key]) for p in document["pairs"]
              for key in ("replacement_ij", "replacement_ji", "interchange")]
    values += [(f"removal of layer {r['layer']}", r["kl"]) for r in document["removal"]]
    values.append(("base perplexity", document["base"]["ppl"]))
    bad = [name for name, value in values if value is None or not math.isfinite(value) or value < -floor]
    if bad:
        return False, (f"{len(bad)} distance(s) are NaN, infinite or negative, e.g. {bad[0]}: "
                       "try --swapkl-dtype bfloat16 or float32")
    return True, "all distances finite"
