"""The HTML report in a real headless Chromium: no console errors, every image decoded, the verdict before any
table, and screenshots at 1366 px and at a phone's width kept in test-artifacts/ for a person to look at."""

from pathlib import Path

import pytest
from browser import CHECK_IMAGES, CHROMIUM, chromium, console_errors, images_decoded, screenshot

from pytest_swapkl.commands.report import main_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "junit"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")


@pytest.mark.parametrize("fixture, figures", [("xunit1.xml", 4), ("failing.xml", 4)])
def test_report_renders_in_chromium(tmp_path, fixture, figures):
    page = tmp_path / "report.html"
    assert main_report([str(FIXTURES / fixture), "--html", str(page)]) == 0
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK_IMAGES))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    assert images_decoded(dom.stdout) == (figures, figures)
    body = dom.stdout[dom.stdout.index("<body"):]
    assert body.index('class="verdict"') < body.index("<table") and body.index("<figcaption") < body.index("<table")

    stem = Path(fixture).stem
    screenshot(tmp_path, page.as_uri(), f"report-{stem}-1366.png", 1366, 2400)
    screenshot(tmp_path, page.as_uri(), f"report-{stem}-phone.png", 390, 2400)
