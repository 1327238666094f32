"""The model families with a fast path, named without importing torch (what `swapkl families` prints).

The built-in list is kept equal to the adapter registry (`engine/adapters/`) by a test
(tests/engine/test_adapters_and_startup.py); families from other packages are their entry
points in the group below, listed by name and package and not loaded: loading one imports
torch and that package.
"""

from __future__ import annotations

from importlib import metadata

ENTRY_POINT_GROUP = "pytest_swapkl.adapters"

BUILT_IN_MODEL_TYPES = ("gemma2", "gemma3_text", "gpt2", "gpt_neox", "llama", "mistral", "opt", "phi3", "qwen2",
                        "qwen3")


def installed_entry_points() -> list[tuple[str, str]]:
    """(entry point name, package) of every adapter entry point installed, none of them loaded."""
    found = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value
        found.append((entry_point.name, package))
    return sorted(found)
