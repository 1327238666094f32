"""The merge case's rule: does merging a pair (its averaging KL) cost no more than removing the cheaper layer?

    comparison = merge_comparison(averaging_per_seq, removal_per_seq, removed_layer, indices)  # into the JSON
    passed, message = merge_passes(pair_row)                                                   # the case

The averaging probe runs the mean of layers i and j at both slots (the paper's App. I), a merge that keeps the
depth; removing one of the two layers is the simpler compression beside it. So a merge earns its place only if it
costs no more than removing the cheaper of the two layers (by its removal KL on the same sequences). The two are
compared by `paired.compare_costs` (a paired bootstrap over sequences: averaging is A, removal is B), and the case
fails only when that comparison finds the removal cheaper: an interval that cannot tell them apart passes. The
verdict's words are `paired`'s, compared through its own table (`paired.VERDICTS`), never spelled here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import cases
from .paired import B_SMALLER, VERDICTS, compare_costs

RULE = ("a merge passes unless removing the cheaper of its two layers costs less, with the paired 95% interval of "
        "(averaging KL - removal KL) over sequences above 0")


def cheaper_layer(removal_kl: dict[int, float], i: int, j: int) -> int:
    """Of layers i and j, the one whose removal costs less (mean KL); i on a tie."""
    return j if removal_kl[j] < removal_kl[i] else i


def merge_comparison(averaging_per_seq: np.ndarray, removal_per_seq: np.ndarray, removed_layer: int,
                     indices: np.ndarray) -> dict:
    """The JSON record of one pair's merge case: the removed layer and the paired comparison (A: averaging)."""
    return {"removed_layer": int(removed_layer), **compare_costs(averaging_per_seq, removal_per_seq, indices).to_json()}


def _nats(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def merge_passes(pair: dict) -> tuple[Optional[bool], str]:
    """True, False, or None where the audit compared nothing for this pair; the message states the rule and numbers."""
    comparison = pair.get("merge_vs_removal")
    label = cases.pair_label(pair["i"], pair["j"])
    if not isinstance(comparison, dict):
        return None, f"merge {label}: no averaging and removal KLs on the same sequences to compare"
    removed = cases.layer_label(comparison["removed_layer"])
    ratio = comparison.get("ratio")
    interval = (f" [{_nats(comparison.get('ratio_low'))}, {_nats(comparison.get('ratio_high'))}]"
                if comparison.get("ratio_low") is not None else "")
    numbers = (f"averaging({pair['i']},{pair['j']}) KL {_nats(comparison['a'])} nats against removing {removed} "
               f"{_nats(comparison['b'])} nats (ratio {_nats(ratio)}{interval}; paired verdict, A averaging and "
               f"B removal: {comparison['verdict']})")
    if comparison["verdict"] == VERDICTS[B_SMALLER]:
        return False, (f"merging {label} costs more than removing {removed} alone: {numbers}. Rule: {RULE}; "
                       f"remove {removed} instead of merging the pair")
    return True, f"merging {label} costs no more than removing {removed}: {numbers}"
