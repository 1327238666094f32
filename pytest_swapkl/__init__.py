"""pytest-swapkl: replacement vs interchange swap-KL layer-redundancy audits for transformers.

Importing the package is cheap (no torch). The layout follows the layers of the work:

    engine/    all numerical work (probes, batch loop, fast and reference paths, adapters)
    inputs/    models, calibration data, devices
    analysis/  statistics, agreement rules, adaptive sampling, pruning
    plugin/    pytest glue: hooks, session, generated cases, fixtures, cache
    commands/  the `swapkl` command: audit table, report, trajectory, junit reader

and at the top what they all share: errors, console output, options, the case catalogue,
safe file I/O, the audit runner and the result document.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Short public paths kept from the flat layout: `from pytest_swapkl import probes`.
_ALIASES = {"probes": "pytest_swapkl.engine.probes"}


def __getattr__(name: str) -> Any:
    if name not in _ALIASES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return import_module(_ALIASES[name])
