"""Plain-text tables of an audit for the terminal (tabulate)."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ..analysis.audit import Audit, Estimate


def _distance(estimate: Estimate) -> str:
    return f"{estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]"


def _optional(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def render_audit(document: dict[str, Any], audit: Audit) -> str:
    model, data = document["model"], document["data"]
    header = (
        f"model  {model['name']} ({model['architecture']}, {model['n_layers']} layers, {model['dtype']}, "
        f"{model['device']})\n"
        f"data   {data['source']}: {data['n_sequences']} x {data['seq_len']} tokens, sha256 {data['sha256'][:12]}\n"
        f"base perplexity {audit.base_ppl:.3f}; {audit.measurement.path} path; {document['seconds']:.1f} s"
    )
    pairs = tabulate(
        [
            [f"L{p.i:02d}-L{p.j:02d}", _distance(p.replacement), _distance(p.interchange), _optional(p.ratio, ".2f"),
             f"{p.rank_replacement:g}", f"{p.rank_interchange:g}"]
            for p in audit.pairs
        ],
        headers=[
            "pair",
            f"R = {audit.replacement_reduce} replacement KL [95% CI]",
            "I = interchange KL [95% CI]",
            "I/R",
            "rank R",
            "rank I",
        ],
    )
    removal = tabulate(
        [[f"L{r.layer:02d}", _distance(r.kl), f"{r.ppl:.3f}"] for r in audit.removals],
        headers=["removed layer", "KL [95% CI]", "perplexity"],
    )
    top_k = tabulate(
        [[t.k, _layers(t.replacement_layers), _layers(t.interchange_layers), f"{t.jaccard:.2f}"] for t in audit.top_k],
        headers=["k", "replacement removes", "interchange removes", "Jaccard"],
    )
    summary = f"Spearman(R, I) = {_optional(audit.spearman)}   Kendall(R, I) = {_optional(audit.kendall)}"
    return "\n\n".join([header, pairs, removal, summary, top_k])


def _layers(layers: list[int]) -> str:
    return "{" + ", ".join(f"L{layer:02d}" for layer in layers) + "}"
