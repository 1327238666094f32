"""Plain-text tables of an audit for the terminal (tabulate)."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from ..analysis.audit import Audit, Estimate
from ..analysis.dtype_offset_text import offset_line
from ..analysis.reliability_text import reliability_text
from ..cases import layer_label, layer_set_label, pair_label
from ..console import interval, number, rank


def _distance(estimate: Estimate) -> str:
    return interval(estimate.value, estimate.low, estimate.high, 4)


def _optional(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _noise_line(noise: dict[str, Any]) -> str:
    if noise.get("floor") is None:
        return f"noise floor {noise.get('what', 'not measured')}"
    return f"noise floor {noise['floor']:.2e} nats: {noise['what']}"


def _heldout_line(heldout: dict[str, Any]) -> str:
    if heldout.get("evaluator") == "sliding-window":
        size = (f"{heldout['n_tokens']} tokens in {heldout['windows']} sliding windows of {heldout['window']} "
                f"(stride {heldout['stride']})")
    else:
        size = f"{heldout['n_sequences']} x {heldout['seq_len']} tokens"
    return f"costs on {heldout['source']}: {size}, sha256 {heldout['sha256'][:12]}"


def render_audit(document: dict[str, Any], audit: Audit) -> str:
    model, data = document["model"], document["data"]
    header = (
        f"model  {model['name']} ({model['architecture']}, {model['n_layers']} layers, {model['dtype']}, "
        f"{model['device']})\n"
        f"data   {data['source']}: {data['n_sequences']} x {data['seq_len']} tokens, sha256 {data['sha256'][:12]}\n"
        f"base perplexity {audit.base_ppl:.3f}; {audit.measurement.path} path; {document['seconds']:.1f} s\n"
        f"{_noise_line(document.get('noise') or {})}"
        + "".join(f"\n{line}" for line in [offset_line(document.get("dtype_offset"))] if line)
        + ("" if not document.get("heldout") else f"\n{_heldout_line(document['heldout'])}")
    )
    pairs = tabulate(
        [
            [pair_label(p.i, p.j), _distance(p.replacement), _distance(p.interchange), number(p.ratio),
             rank(p.rank_replacement), rank(p.rank_interchange)]
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
        disable_numparse=True,  # the text as formatted here: tabulate would drop trailing zeros (1.80 -> 1.8)
        colalign=("left", "left", "left", "decimal", "decimal", "decimal"),
    )
    removal = tabulate(
        [[layer_label(r.layer), _distance(r.kl), f"{r.ppl:.3f}"] for r in audit.removals],
        headers=["removed layer", "KL [95% CI]", "perplexity"], disable_numparse=True,
        colalign=("left", "left", "right"),
    )
    top_k = tabulate(
        [[t.k, layer_set_label(t.replacement_layers), layer_set_label(t.interchange_layers), f"{t.jaccard:.2f}"]
         for t in audit.top_k],
        headers=["k", "replacement removes", "interchange removes", "Jaccard"], disable_numparse=True,
        colalign=("right", "left", "left", "right"),
    )
    tables = [header, pairs, removal, *_probe_tables(document)]
    summary = (f"Spearman(R, I) = {_optional(audit.spearman)}   Kendall(R, I) = {_optional(audit.kendall)}"
               f"{reliability_text(document['summary'])}\n"
               f"removal sets below: the {audit.pair_rule.label} rule")
    return "\n\n".join([*tables, summary, top_k, *_sensitivity_tables(document)])


def _sensitivity_tables(document: dict[str, Any]) -> list[str]:
    """``--sensitivity``'s tables (report/sensitivity.py), where the audit has the section."""
    from ..report.sensitivity import sensitivity_tables

    out = []
    for table in sensitivity_tables(document.get("sensitivity")):
        text = tabulate(table.rows, headers=table.header, disable_numparse=True)
        out.append(f"{table.title}\n{text}" + (f"\n({table.note})" if table.note else ""))
    return out



def _estimate(kl: float | None, ci) -> str:
    return interval(kl, ci[0], ci[1], 4) if kl is not None and ci else _optional(kl, ".4g")


def _probe_tables(document: dict[str, Any]) -> list[str]:
    """``--averaging``'s column per pair and ``--heads``' table, where the audit measured them."""
    out = []
    averaged = [row for row in document["pairs"] if "averaging" in row]
    if averaged:
        out.append(tabulate([[pair_label(row["i"], row["j"]), _estimate(row["averaging"], row.get("averaging_ci"))]
                             for row in averaged], headers=["pair", "averaging KL [95% CI]"],
                            disable_numparse=True, colalign=("left", "left")))
    if document.get("heads"):
        out.append(tabulate([[f"head({row['i']}<-{row['j']},{row['head']})", _estimate(row["kl"], row["ci"])]
                             for row in document["heads"]], headers=["head probe", "KL [95% CI]"],
                            disable_numparse=True, colalign=("left", "left")))
    return out
