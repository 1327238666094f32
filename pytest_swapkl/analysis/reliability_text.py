"""The split-half reliability line every face prints beside a rank correlation, and its floor. Pure Python: the
terminal tables, the summary and the report import it without numpy (the help and listing commands stay light)."""

from __future__ import annotations

from typing import Optional

RELIABILITY_FLOOR = 0.99  # below this a protocol's ranking is noisy enough to attenuate rho visibly: flagged


def reliability_text(summary: dict) -> str:
    """'; split-half reliability R 0.9996, I 0.9998, disattenuated Spearman 0.962' from a JSON summary, with a
    warning where either is below the floor; '' where the summary has none (older documents)."""
    record = summary.get("reliability") or {}
    r, i = record.get("replacement"), record.get("interchange")
    if r is None and i is None:
        return ""
    text = f"; split-half reliability R {_four(r)}, I {_four(i)}"
    if summary.get("spearman_disattenuated") is not None:
        text += f", disattenuated Spearman {summary['spearman_disattenuated']:.3f}"
    if record.get("below_floor"):
        text += f" (reliability below {record.get('floor', RELIABILITY_FLOOR):g}: rho is attenuated by noise)"
    return text


def _four(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.4f}"
