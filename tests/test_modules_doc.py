"""docs/modules.md stays true: every module of the package has exactly one row in its tables, and every row
names a file or folder that exists (a folder row, such as `engine/adapters/`, covers the modules inside)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_swapkl"


def table_entries() -> Counter:
    """The backticked paths in the first column of every table row of docs/modules.md."""
    entries: Counter = Counter()
    for line in (ROOT / "docs" / "modules.md").read_text().splitlines():
        if line.startswith("| `"):
            entries.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return entries


def test_every_module_has_exactly_one_row():
    entries = table_entries()
    folders = [entry for entry in entries if entry.endswith("/")]
    modules = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")
    missing = [m for m in modules if m not in entries and not any(m.startswith(folder) for folder in folders)]
    twice = sorted(entry for entry, count in entries.items() if count > 1)
    gone = sorted(entry for entry in entries if not (PACKAGE / entry).exists() and not (ROOT / entry).exists())
    assert (missing, twice, gone) == ([], [], []), "docs/modules.md: (missing, listed twice, not a file)"
