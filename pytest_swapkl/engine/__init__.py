"""All numerical work: probes, the batch loop, the fast and reference paths, KL, journals, adapters.

    from pytest_swapkl import engine, probes as P
    result = engine.measure(model, input_ids, P.audit_probes(P.parse_pairs("all", n), n))

No pytest here, and nothing from the plugin or the commands. Importing the package is cheap:
the names below load their module (and torch) on first use, so `engine.probes` works without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# public name -> the module of this package that defines it
_EXPORTS = {
    "measure": "loop", "plan_batch_size": "loop", "layer_inputs": "loop", "eval_mode": "loop",
    "EngineError": "loop", "ProbeFailed": "loop", "DEFAULT_VOCAB_CHUNK": "loop", "PATHS": "loop",
    "COMPILE_MODES": "loop", "FastPath": "fastpath", "ReferencePath": "reference", "MeasuringPath": "paths",
    "Measurement": "measurement", "ProbeStats": "measurement",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value
