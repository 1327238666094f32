"""The audit JSON (schema ``swapkl/1``) and its atomic writing.

Field names are a contract (GUIDE section 2): add fields freely, never rename.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .analysis.audit import Audit, Estimate
from .numerics import finite_or_none
from .safe_files import write_text

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
        "settings": {**settings, "replacement_reduce": audit.replacement_reduce, "path": audit.measurement.path},
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
                "rank_replacement": p.rank_replacement,
                "rank_interchange": p.rank_interchange,
                "ci": {
                    "replacement_ij": _interval(p.replacement_ij),
                    "replacement_ji": _interval(p.replacement_ji),
                    "interchange": _interval(p.interchange),
                    "replacement": _interval(p.replacement),
                },
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
            "topk": [
                {"k": t.k, "jaccard": t.jaccard, "replacement_layers": t.replacement_layers,
                 "interchange_layers": t.interchange_layers}
                for t in audit.top_k
            ],
        },
        "versions": library_versions(),
        "seconds": round(seconds, 3),
    }


def write_json(document: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (temp file beside the target, fsync, rename): a reader or a killed run never sees half a
    file, and a failure leaves the previous file as it was. Missing folders of the path are created (and removed
    again if the write fails); a path that is a folder, or an unwritable one, is a one-line `OutputError`."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"  # a value JSON cannot hold fails before any file
    return write_text(path, text, make_parents=True)
