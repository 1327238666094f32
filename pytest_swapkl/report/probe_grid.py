"""The optional probe tables as rows, for the plugin's terminal summary and job summary (numbers from the JSON).

    headers, rows = head_grid(document["heads"])       # one row per head, one column per pair i<-j
    headers, rows = merge_rows(document["pairs"], results)

A head not measured for a pair (``--heads 3-4:0+5``) shows as n/a.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..cases import layer_label, merge_case, pair_label


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _interval(value: Optional[float], bounds: Any) -> str:
    if not bounds or bounds[0] is None:
        return _number(value)
    return f"{_number(value)} [{_number(bounds[0])}, {_number(bounds[1])}]"


def head_grid(heads: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """KL of head(i<-j, h): rows are heads, columns the pairs of --heads."""
    pairs = list(dict.fromkeys((row["i"], row["j"]) for row in heads))
    kl = {(row["i"], row["j"], row["head"]): row.get("kl") for row in heads}
    measured = sorted({row["head"] for row in heads})
    return (["head", *(f"{i}<-{j}" for i, j in pairs)],
            [[str(h), *(_number(kl[(i, j, h)]) if (i, j, h) in kl else "n/a" for i, j in pairs)] for h in measured])


def merge_rows(pairs: Sequence[dict], results: dict) -> tuple[list[str], list[list[str]]]:
    """Per averaged pair: averaging KL, the cheaper layer's removal KL, their paired ratio, and the merge case."""
    rows = []
    for pair in pairs:
        if "averaging" not in pair:
            continue
        comparison = pair.get("merge_vs_removal") or {}
        removed = comparison.get("removed_layer")
        rows.append([pair_label(pair["i"], pair["j"]), _interval(pair["averaging"], pair.get("averaging_ci")),
                     "n/a" if removed is None else f"{layer_label(removed)}: {_number(comparison.get('b'))}",
                     _interval(comparison.get("ratio"), (comparison.get("ratio_low"), comparison.get("ratio_high"))),
                     results.get(merge_case(pair["i"], pair["j"]), "")])
    return ["pair", "averaging KL [95% CI]", "removing instead", "ratio [95% CI]", "merge case"], rows
