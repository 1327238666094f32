"""How the package is shaped, for issue 31's before/after: the longest functions, and the files one option crosses.

    python scripts/code_shape.py [PACKAGE_DIR]        # default: pytest_swapkl next to this script

"Files an option crosses": package files that read the option by name off an options object, a namespace or
the typed settings (`options.pairs`, `args.pairs`, `getattr(options, "pairs")`, `settings.pairs`,
`settings.inputs.model`, ...). A file that only passes the whole object on is not counted.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HOLDERS = r"(?:options|args|opts|self\._options|settings(?:\.inputs|\.engine|\.statistics|\.pruning)?|inputs)"


def longest_functions(package: Path, count: int = 10) -> list[tuple[int, str]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(package.parent)}:{node.name}"))
    return sorted(found, reverse=True)[:count]


def files_reading(package: Path, option: str) -> list[str]:
    pattern = re.compile(rf"\b{HOLDERS}\.{option}\b|getattr\({HOLDERS}, \"{option}\"")
    return sorted(str(path.relative_to(package.parent)) for path in package.rglob("*.py")
                  if pattern.search(path.read_text()))


def main() -> None:
    package = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "pytest_swapkl"
    print(f"package {package}: {sum(1 for _ in package.rglob('*.py'))} modules")
    print("\nlongest functions (lines):")
    for lines, name in longest_functions(package):
        print(f"  {lines:4d}  {name}")
    for option in ("pairs", "model"):
        files = files_reading(package, option)
        print(f"\nfiles that read the option {option!r}: {len(files)}")
        for name in files:
            print(f"  {name}")


if __name__ == "__main__":
    main()
