"""The one line the terminal summaries write about a reduced dtype's offset against float32, from the audit JSON's
``dtype_offset`` record (analysis/dtype_offset.py). Plain Python: the plugin's summary imports it without torch."""

from __future__ import annotations

from typing import Any, Optional


def offset_line(record: Optional[dict[str, Any]]) -> Optional[str]:
    """One line for the terminal summaries from the JSON's ``dtype_offset`` record; None for a float32 audit (or a
    file from before it) that has nothing to say."""
    if not record or (record.get("relative") == 0.0 and not record.get("carried")):
        return None
    dtype, reference = record.get("audit_dtype"), record.get("reference_dtype") or "float32"
    if record.get("relative") is None or not record.get("carried"):
        return (f"{dtype} vs {reference}: offset not measured ({record.get('what', '')}); KL intervals hold the "
                f"{dtype} means only")
    low, high = record["ci"]
    return (f"{dtype} vs {reference}: systematic offset {record['relative']:+.2%} [95% CI {low:+.2%}, {high:+.2%}] "
            f"over {len(record.get('probes') or ())} probes; KL intervals carried to cover the {reference} mean: "
            f"[low / (1 {high:+.4f}), high / (1 {low:+.4f})]")
