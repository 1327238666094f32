"""The README's first hour, as written, in a fresh virtual environment: command 1 (install without extras,
then `swapkl audit demo --pairs all`) and the plugin line `pytest --swapkl-model=demo --junitxml=audit.xml`
in an empty folder, then `swapkl report --html` on its junit file (matplotlib comes with the package).

Slow (a new venv, torch and the package's dependencies, two audits at the default budget: minutes on a
2-core machine). The commands are read from README.md, so the test breaks when the README does.
The package index settings (PIP_* variables, pip.conf) are the machine's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MINUTES = 60

pytestmark = pytest.mark.slow


def readme_command_1() -> str:
    lines = README.read_text().splitlines()
    marker = next(n for n, line in enumerate(lines) if line.startswith("# 1."))
    return lines[marker + 1].strip()


def readme_plugin_line() -> str:
    return next(line.split("#")[0].strip() for line in README.read_text().splitlines()
                if line.startswith("pytest --swapkl-model=demo --junitxml=audit.xml"))


def clean_environment() -> dict[str, str]:
    """This test run's environment without its virtual environment: the commands must stand on their own."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")
           and not key.startswith(("PYTEST_", "SWAPKL_"))}
    ours = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p not in ours)
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    env["PIP_NO_INPUT"] = "1"
    return env


def copy_of_the_repository(target: Path) -> Path:
    """The files a fresh clone has (tracked, or new and not ignored): no .venv, no build output."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def bash(command: str, cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (f"`{command}` ended with {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
                                    f"\n--- stderr\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """README command 1, as written, in a copy of the repository: (the copy, its output, the environment)."""
    if shutil.which("git") is None or shutil.which("bash") is None:
        pytest.skip("needs git and bash")
    clone = copy_of_the_repository(tmp_path_factory.mktemp("clone"))
    env = clean_environment()
    return clone, bash(readme_command_1(), clone, env, timeout=40 * MINUTES), env


def test_readme_command_1_installs_without_extras_and_audits(fresh):
    clone, result, env = fresh
    assert readme_command_1().endswith("pip install -e . && swapkl audit demo --pairs all")
    for text in ("L00-L01", "L06-L07", "Spearman(R, I)", "interchange removes"):
        assert text in result.stdout
    assert "probe-sequences" in result.stderr  # stderr is a pipe here: progress as plain lines
    listed = bash(". .venv/bin/activate && pip list --format=json", clone, env, timeout=5 * MINUTES).stdout
    installed = {package["name"].lower() for package in json.loads(listed)}
    assert {"pytest", "matplotlib", "pytest-swapkl"} <= installed
    assert not {"pytest-xdist", "hypothesis"} & installed, "command 1 installs no extras"


def test_readme_plugin_line_works_right_after_command_1(fresh, tmp_path):
    clone, _, env = fresh
    line = readme_plugin_line()
    assert line == "pytest --swapkl-model=demo --junitxml=audit.xml"
    empty = tmp_path / "empty"
    empty.mkdir()
    activate = f". {clone / '.venv' / 'bin' / 'activate'}"
    result = bash(f"{activate} && {line}", empty, env, timeout=20 * MINUTES)
    assert "collected 11 items" in result.stdout and "11 passed" in result.stdout
    last = [text for text in result.stdout.splitlines() if text.strip()][-1]
    assert "swapkl audit computed in" in last, last
    names = [case.get("name") for case in ET.parse(empty / "audit.xml").getroot().iter("testcase")]
    assert names[:2] == ["audit", "pair[L00-L01]"] and len(names) == 11
    report = bash(f"{activate} && swapkl report audit.xml --html report.html", empty, env, timeout=5 * MINUTES)
    assert (empty / "report.html").stat().st_size > 10_000 and "needs matplotlib" not in report.stderr
