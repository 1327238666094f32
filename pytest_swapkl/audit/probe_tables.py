"""The audit's optional probe tables: averaging per pair (``--averaging``) and heads per chosen pair (``--heads``).

`tables_for` turns the settings into probes (checked against the loaded model before anything is measured);
`record` writes their numbers into the audit document: ``pairs[].averaging`` with its interval, and ``heads``,
one row per head(i<-j, h) for each head h that ``--heads`` chooses for the pair i-j (every head of layer i
unless the pair names some: ``3-4:0+5``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..analysis.stats import bootstrap_indices, bootstrap_means, interval
from ..engine.head_spec import parse_head_spec
from ..engine.probes import Probe, averaging, head, removal
from ..numerics import finite_or_none
from .results import json_ready


@dataclass
class ProbeTables:
    averaging: dict[tuple[int, int], Probe] = field(default_factory=dict)
    heads: dict[tuple[int, int, int], Probe] = field(default_factory=dict)

    @property
    def probes(self) -> list[Probe]:
        return [*self.averaging.values(), *self.heads.values()]


def tables_for(with_averaging: bool, heads_spec: Optional[str], pairs: Sequence[tuple[int, int]],
               model: Any, n_layers: int) -> ProbeTables:
    """The probes of the two tables; a head probe this model cannot run is a one-line error here."""
    tables = ProbeTables()
    if with_averaging:
        tables.averaging = {(i, j): averaging(i, j, n_layers) for i, j in pairs}
    if heads_spec:
        from ..engine.adapters import find_layer_list
        from ..engine.heads import check_head, head_count

        layers = getattr(*find_layer_list(model))
        for choice in parse_head_spec(heads_spec, n_layers):
            chosen = choice.heads if choice.heads is not None else range(head_count(layers[choice.i]))
            for h in chosen:
                check_head(layers, choice.i, choice.j, h)  # the loaded layers' own count, in one line
                tables.heads[(choice.i, choice.j, h)] = head(choice.i, choice.j, h, n_layers)
    return tables


def _estimate(measurement: Any, probe: Probe, indices) -> dict[str, Any]:
    per_sequence = measurement[probe].kl_per_seq
    low, high = interval(bootstrap_means(per_sequence, indices))
    return {"kl": finite_or_none(float(per_sequence.mean())), "ci": [finite_or_none(low), finite_or_none(high)]}


def _merge_comparison(measurement: Any, probe: Probe, i: int, j: int, indices) -> Optional[dict]:
    """The merge case's comparison (analysis/merge_rule.py), where both layers' removals were measured alongside."""
    from ..analysis.merge_rule import cheaper_layer, merge_comparison

    n_layers = probe.n_layers
    try:
        removals = {layer: measurement[removal([layer], n_layers)] for layer in (i, j)}
    except KeyError:  # adaptive mode measures the tables apart from the removals
        return None
    layer = cheaper_layer({layer: float(stats.kl_per_seq.mean()) for layer, stats in removals.items()}, i, j)
    return json_ready(merge_comparison(measurement[probe].kl_per_seq, removals[layer].kl_per_seq, layer, indices))


def record(document: dict[str, Any], tables: ProbeTables, measurement: Any, bootstrap: int, seed: int) -> None:
    """The tables' numbers into the audit document (KL in nats, paired-bootstrap 95% intervals over sequences)."""
    if not tables.probes:
        return
    indices = bootstrap_indices(measurement.n_sequences, bootstrap, seed)
    for row in document["pairs"]:
        probe = tables.averaging.get((row["i"], row["j"]))
        if probe is not None:
            estimate = _estimate(measurement, probe, indices)
            row["averaging"], row["averaging_ci"] = estimate["kl"], estimate["ci"]
            comparison = _merge_comparison(measurement, probe, row["i"], row["j"], indices)
            if comparison is not None:
                row["merge_vs_removal"] = comparison
    if tables.heads:
        document["heads"] = [{"i": i, "j": j, "head": h, **_estimate(measurement, probe, indices)}
                             for (i, j, h), probe in tables.heads.items()]
