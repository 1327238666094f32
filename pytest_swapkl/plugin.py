"""pytest glue. Loaded in every pytest run of the environment, so it imports no torch.

This first version only declares the option group; the audit's generated tests
arrive with the plugin issue.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("swapkl", "layer-redundancy audit (pytest-swapkl)")
    group.addoption("--swapkl-model", dest="swapkl_model", default=None,
                    help="checkpoint folder, hub id or 'demo' to audit (not yet wired: see the plugin issue)")
    parser.addini("swapkl_model", "default for --swapkl-model", default=None)
