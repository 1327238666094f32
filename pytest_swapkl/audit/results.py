"""The audit JSON (schema ``swapkl/1``) and its atomic writing.

Field names are a contract (GUIDE section 2): add fields freely, never rename.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from ..analysis.audit import Audit, Estimate
from ..analysis.budgets import BudgetError, parse_budget
from ..analysis.intervals import reliability_record
from ..cases import whole
from ..limits import MAX_LAYERS
from ..numerics import finite_or_none
from ..safe_files import write_text

SCHEMA = "swapkl/1"


_number = finite_or_none  # JSON has no NaN or infinity: undefined statistics become null


def json_ready(value: Any) -> Any:
    """`value` with every float that is not finite (an overflowed perplexity, say) as null, at any depth."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def _interval(estimate: Estimate) -> list[Optional[float]]:
    return [_number(estimate.low), _number(estimate.high)]


def _set_interval(audit: Audit, k: int) -> dict[str, Any]:
    """The paired-bootstrap interval of a top-k Jaccard and the share of resamples reproducing each set."""
    found = next((s for s in audit.intervals.sets if s.k == k), None)
    if found is None:
        return {}
    return {"jaccard_ci": [_number(found.jaccard_low), _number(found.jaccard_high)],
            "stability": {"replacement": found.stability_replacement, "interchange": found.stability_interchange}}


def _reliability(audit: Audit) -> dict[str, Any]:
    """Split-half reliability of each protocol's ranking and the disattenuated Spearman (intervals.py)."""
    record = reliability_record(audit.intervals)
    record["reliability"].update({key: _number(record["reliability"][key]) for key in ("replacement", "interchange")})
    return {**record, "spearman_disattenuated": _number(record["spearman_disattenuated"])}


def _confidence_sets(audit: Audit, k: int) -> dict[str, Any]:
    """Each protocol's tau-best set at k: the layers that may be among its k lowest-scoring, jointly 95%."""
    if not audit.topk_confidence:
        return {}
    return {"confidence_set": {protocol: sets.get(k, []) for protocol, sets in audit.topk_confidence.items()}}


def library_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"swapkl": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def audit_document(audit: Audit, model: dict[str, Any], data: dict[str, Any], settings: dict[str, Any],
                   seconds: float) -> dict[str, Any]:
    """The whole audit as JSON-ready data. `model`, `data` and `settings` are recorded as given."""
    return {
        "schema": SCHEMA,
        "model": model,
        "data": data,
        "settings": {**settings, "replacement_reduce": audit.replacement_reduce, "pair_rule": audit.pair_rule.record(),
                     "path": audit.measurement.path},
        "base": {"ppl": _number(audit.base_ppl)},
        "noise_floor": _number(audit.measurement.noise_floor),
        "pairs": [
            {
                "i": p.i,
                "j": p.j,
                "replacement_ij": _number(p.replacement_ij.value),
                "replacement_ji": _number(p.replacement_ji.value),
                "interchange": _number(p.interchange.value),
                "replacement": _number(p.replacement.value),
                "ratio": _number(p.ratio),
                "log_ratio": _number(p.log_ratio),
                "rank_replacement": whole(p.rank_replacement),  # 3, or 2.5 for an averaged tie
                "rank_interchange": whole(p.rank_interchange),
                "ci": {
                    "replacement_ij": _interval(p.replacement_ij),
                    "replacement_ji": _interval(p.replacement_ji),
                    "interchange": _interval(p.interchange),
                    "replacement": _interval(p.replacement),
                },
                # simultaneous rank intervals: jointly 95% over every pair and both protocols (simultaneous_ranks.py)
                "rank_interval": {"replacement": list(p.rank_interval_replacement),
                                  "interchange": list(p.rank_interval_interchange)},
            }
            for p in audit.pairs
        ],
        "removal": [
            {"layer": r.layer, "kl": _number(r.kl.value), "ppl": _number(r.ppl), "ci": _interval(r.kl)}
            for r in audit.removals
        ],
        "summary": {
            "spearman": _number(audit.spearman),
            "kendall": _number(audit.kendall),
            "spearman_ci": [_number(x) for x in audit.intervals.spearman],
            "kendall_ci": [_number(x) for x in audit.intervals.kendall],
            **_reliability(audit),
            "topk": [
                {"k": t.k, "jaccard": t.jaccard, "replacement_layers": t.replacement_layers,
                 "interchange_layers": t.interchange_layers, "rule": audit.pair_rule.label,
                 **_set_interval(audit, t.k), **_confidence_sets(audit, t.k)}
                for t in audit.top_k
            ],
            "ratio_by_distance": [
                {"distance": d.distance, "n_pairs": d.n_pairs, "median_ratio": _number(d.median),
                 "ci": [_number(d.low), _number(d.high)], "share_interchange_below": _number(d.share_below_one)}
                for d in audit.intervals.ratio_by_distance
            ],
            "ties": audit.ties,
        },
        # How the probes ran: the batch plan (sequences per batch, probes per layer call, the memory budget and
        # where it came from) and the allocator's peak on CUDA (null elsewhere). Their seconds: measure_seconds.
        "engine": {"plan": audit.measurement.plan, "peak_memory": audit.measurement.peak_memory},
        "versions": library_versions(),
        "seconds": round(seconds, 3),
    }


def write_json(document: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (temp file beside the target, fsync, rename): a reader or a killed run never sees half a
    file, and a failure leaves the previous file as it was. Missing folders of the path are created (and removed
    again if the write fails); a path that is a folder, or an unwritable one, is a one-line `OutputError`."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"  # a value JSON cannot hold fails before any file
    return write_text(path, text, make_parents=True)


# ---------------------------------------------------------------- reading one back

def document_problem(document: Any) -> Optional[str]:
    """Why `document` is not an audit document every reader can use (a short phrase), or None when it is.

    A cache entry or a journal can have a valid checksum and still lack fields (another version wrote it, or
    someone planted it): its fields are checked as strictly as its checksum, so no reader meets a KeyError."""
    try:
        _check_document(document)
    except _Invalid as problem:
        return str(problem)
    return None


class _Invalid(ValueError):
    pass


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise _Invalid(what)


def _field(parent: Any, key: str, where: str, kinds: tuple, optional: bool = False) -> Any:
    _need(isinstance(parent, dict) and key in parent, f"{where} lacks {key}")
    value = parent[key]
    ok = (optional and value is None) or (isinstance(value, kinds) and not isinstance(value, bool))
    _need(ok, f"{where}.{key} is {type(value).__name__}, not {'/'.join(k.__name__ for k in kinds)}")
    return value


def _pair_of_numbers(parent: dict, key: str, where: str) -> None:
    value = _field(parent, key, where, (list,))
    _need(len(value) == 2 and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                                  for v in value), f"{where}.{key} is not [low, high]")


def _check_prune_budget(record: Any, where: str, n_layers: int) -> None:
    """One --swapkl-prune-budget record (`analysis.budgets.outcome_record`): what its case reads."""
    number = (int, float)
    try:
        parse_budget(_field(record, "spec", where, (str,)))
    except BudgetError as error:
        _need(False, f"{where}.spec is not a budget ({error})")
    _field(record, "min_layers", where, (int,))
    _need(isinstance(record.get("strict"), bool), f"{where}.strict is not true or false")
    outcome = _field(record, "outcome", where, (dict,))
    for key in ("search", "guide", "objective", "max_cost"):
        _field(outcome, key, f"{where}.outcome", (str,))
    layers = _field(outcome, "layers", f"{where}.outcome", (list,))
    _need(all(isinstance(x, int) and 0 <= x < n_layers for x in layers), f"{where}.outcome.layers is not layers")
    for key in ("ceiling", "calibration_cost", "heldout_base", "heldout_ceiling"):
        _field(outcome, key, f"{where}.outcome", number)
    for key, fields in (("heldout", ("cost", "low", "high")), ("versus_full", ("ratio", "ratio_low", "ratio_high"))):
        value = _field(outcome, key, f"{where}.outcome", (dict,), optional=True)
        for field in fields if value is not None else ():
            _field(value, field, f"{where}.outcome.{key}", number, optional=key == "versus_full")
    if outcome.get("heldout_units") is not None:  # the set's and the full model's per-unit costs (issue 34)
        units = _field(outcome, "heldout_units", f"{where}.outcome", (dict,))
        _check_units({"units": {"set": units.get("set"), "full": units.get("full")}}, "units",
                     f"{where}.outcome.heldout_units", len(units.get("full") or ()))


# a paired cost verdict: paired.COST_VERDICTS, and "indistinguishable" in files before the equivalence test
COST_VERDICTS = ("A cheaper", "B cheaper", "equivalent", "undecided", "indistinguishable")


def _check_verdicts(comparisons: dict, where: str) -> None:
    """Each comparison's verdicts known words, its p-values probabilities (absent in older files)."""
    for name, comparison in comparisons.items():
        _need(isinstance(comparison, dict) and comparison.get("verdict") in COST_VERDICTS
              and comparison.get("verdict_adjusted") in COST_VERDICTS + (None,), f"{where}[{name!r}] has no verdict")
        for key in ("p", "p_equivalent", "p_adjusted", "p_equivalent_adjusted"):
            value = comparison.get(key)
            _need(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and 0 <= value <= 1), f"{where}[{name!r}].{key} is not a probability")


def _check_units(parent: dict, key: str, where: str, n_units: Any) -> None:
    """Per method (or set), a list of per-unit costs: n_units numbers each."""
    per_method = _field(parent, key, where, (dict,))
    for method, values in per_method.items():
        _need(isinstance(values, list) and (not isinstance(n_units, int) or len(values) == n_units)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values),
              f"{where}.{key}[{method!r}] is not {n_units} numbers")


def _check_document(document: Any) -> None:
    number = (int, float)
    _need(isinstance(document, dict), "is not an object")
    _need(document.get("schema") == SCHEMA, f"schema is not {SCHEMA}")
    model = _field(document, "model", "document", (dict,))
    n_layers = _field(model, "n_layers", "model", (int,))
    _need(1 <= n_layers <= MAX_LAYERS, f"model.n_layers is not between 1 and {MAX_LAYERS}")  # sizes figures
    for key in ("name", "architecture", "dtype", "device"):
        _field(model, key, "model", (str,))
    data = _field(document, "data", "document", (dict,))
    for key in ("n_sequences", "seq_len", "n_tokens"):
        _field(data, key, "data", (int,))
    _field(data, "source", "data", (str,))
    _field(data, "sha256", "data", (str,))
    _field(_field(document, "base", "document", (dict,)), "ppl", "base", number, optional=True)
    _field(document, "noise_floor", "document", number, optional=True)
    for n, pair in enumerate(_field(document, "pairs", "document", (list,))):
        where = f"pairs[{n}]"
        i, j = _field(pair, "i", where, (int,)), _field(pair, "j", where, (int,))
        _need(0 <= i < j < n_layers, f"{where} is not a pair of layers 0 <= i < j < {n_layers}")
        for key in ("replacement_ij", "replacement_ji", "interchange", "replacement", "ratio", "log_ratio"):
            _field(pair, key, where, number, optional=True)
        for key in ("rank_replacement", "rank_interchange"):
            _field(pair, key, where, number)
        ci = _field(pair, "ci", where, (dict,))
        for key in ("replacement_ij", "replacement_ji", "interchange", "replacement"):
            _pair_of_numbers(ci, key, f"{where}.ci")
    removal = _field(document, "removal", "document", (list,))
    _need(sorted(_field(r, "layer", "removal", (int,)) for r in removal) == list(range(n_layers)),
          f"removal does not list layers 0..{n_layers - 1} once each")
    for r in removal:
        _field(r, "kl", "removal", number, optional=True)
        _field(r, "ppl", "removal", number, optional=True)
        _pair_of_numbers(r, "ci", "removal")
    summary = _field(document, "summary", "document", (dict,))
    _field(summary, "spearman", "summary", number, optional=True)
    _field(summary, "kendall", "summary", number, optional=True)
    for entry in _field(summary, "topk", "summary", (list,)):
        _field(entry, "k", "summary.topk", (int,))
        _field(entry, "jaccard", "summary.topk", number)
        for key in ("replacement_layers", "interchange_layers"):
            layers = _field(entry, key, "summary.topk", (list,))
            _need(all(isinstance(x, int) and 0 <= x < n_layers for x in layers), f"summary.topk.{key} is not layers")
    _field(document, "settings", "document", (dict,))
    _field(document, "versions", "document", (dict,))
    heldout = document.get("heldout")
    if heldout is not None:
        _field(document, "heldout", "document", (dict,))
        for key in ("n_sequences", "seq_len", "n_tokens"):
            _field(heldout, key, "heldout", (int,))
        for key in ("source", "sha256"):
            _field(heldout, key, "heldout", (str,))
    if "pruning" in document:
        pruning = _field(document, "pruning", "document", (dict,))
        _field(pruning, "base_ppl", "pruning", number, optional=True)
        _field(pruning, "heldout_base_ppl", "pruning", number, optional=True)
        _field(pruning, "methods", "pruning", (list,))
        for budget in _field(pruning, "budgets", "pruning", (list,)):
            _field(budget, "k", "pruning.budgets", (int,))
            for key in ("sets", "kl", "ppl", "heldout_kl", "heldout_ppl", "heldout_kl_ci", "heldout_ppl_ci",
                        "comparisons"):
                _field(budget, key, "pruning.budgets", (dict,))
            _check_verdicts(budget["comparisons"], f"pruning.budgets[k={budget['k']}].comparisons")
            for key in ("heldout_kl_per_sequence", "heldout_nll_per_sequence"):  # absent in files before issue 34
                if key in budget:
                    _check_units(budget, key, f"pruning.budgets[k={budget['k']}]", pruning.get("n_heldout_sequences"))
        if "bootstrap" in pruning:  # the draws, margin and adjustment every comparison recomputes with
            draws = _field(pruning, "bootstrap", "pruning", (dict,))
            for key in ("n_resamples", "seed"):
                _field(draws, key, "pruning.bootstrap", (int,))
            _need((_field(pruning, "equivalence_margin", "pruning", number) or 0) > 0,
                  "pruning.equivalence_margin is not a positive number")
            _need(pruning.get("multiplicity") in ("holm", "bh", "none"), "pruning.multiplicity is not holm|bh|none")
    for n, record in enumerate(document.get("prune_budgets") or ()):
        _check_prune_budget(record, f"prune_budgets[{n}]", n_layers)
