"""The HTML report in a real headless Chromium: no console errors, every image decoded, a screenshot kept.

Chromium comes from Debian's `chromium` package (installed by .ci/run); without it the test skips.
The screenshot lands in test-artifacts/ (or $SWAPKL_ARTIFACTS) for a person to look at.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_swapkl.commands.report import main_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "junit"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(image => image.complete && image.naturalWidth > 0).length;
  document.body.setAttribute("data-images", images.length + "/" + decoded);
});
</script></body>"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")


def chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *arguments], capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("rror" in line or "Uncaught" in line)]


def test_report_renders_in_chromium(tmp_path):
    page = tmp_path / "report.html"
    assert main_report([str(FIXTURES / "xunit1.xml"), "--html", str(page)]) == 0
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK_IMAGES))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    marker = dom.stdout.split('data-images="')[1].split('"')[0]
    total, decoded = map(int, marker.split("/"))
    assert total >= 5 and decoded == total, f"{decoded} of {total} images decoded"

    artifacts = Path(os.environ.get("SWAPKL_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "report-screenshot.png"
    shot = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1366,2400", page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_errors(shot.stderr) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
