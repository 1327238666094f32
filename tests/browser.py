"""Headless Chromium for the tests that look at a page as a reader would (Debian's `chromium`, installed by
.ci/run; the tests skip without it). Screenshots go to test-artifacts/ (or $SWAPKL_ARTIFACTS)."""

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("SWAPKL_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
# Appended before </body>: the page's images, and how many decoded, as an attribute --dump-dom shows.
CHECK_IMAGES = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const images = [...document.images];
  const decoded = images.filter(image => image.complete && image.naturalWidth > 0).length;
  document.body.setAttribute("data-images", images.length + "/" + decoded);
}, 500));
</script></body>"""


# Headless Chromium lays a window out at least 500 px wide whatever --window-size says, so a phone's width is an
# iframe of that width: the page inside reports how far it is wider than its viewport to the page around it.
REPORT_OVERFLOW = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const root = document.documentElement;
  parent.postMessage({overflow: root.scrollWidth - root.clientWidth, width: root.clientWidth}, "*");
}, 300));
</script></body>"""
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="border:0;width:{width}px;height:900px"></iframe><script>
window.addEventListener("message", event => {{
  document.body.setAttribute("data-overflow", event.data.overflow + "/" + event.data.width);
}});
</script></body></html>"""


def chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *arguments], capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("rror" in line or "Uncaught" in line)]


def images_decoded(dom: str) -> tuple[int, int]:
    """(images, decoded) from a page probed with CHECK_IMAGES."""
    marker = dom.split('data-images="')[1].split('"')[0]
    total, decoded = map(int, marker.split("/"))
    return total, decoded


def overflow(tmp_path: Path, page: Path, width: int) -> tuple[int, int]:
    """(pixels the page is wider than a viewport `width` px wide, that viewport's width) in headless Chromium."""
    probe = tmp_path / f"overflow-{page.stem}.html"
    probe.write_text(page.read_text().replace("</body>", REPORT_OVERFLOW))
    frame = tmp_path / f"frame-{page.stem}-{width}.html"
    frame.write_text(FRAME.format(src=probe.name, width=width))
    dom = chromium(tmp_path, "--dump-dom", "--window-size=1400,1000", frame.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    wider, seen = dom.stdout.split('data-overflow="')[1].split('"')[0].split("/")
    return int(wider), int(seen)


def screenshot(tmp_path: Path, url: str, name: str, width: int, height: int) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    shot = chromium(tmp_path, f"--screenshot={path}", f"--window-size={width},{height}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_errors(shot.stderr) == []
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


# Appended before </body>: a JS expression's value, posted to the frame around the page (`evaluated`).
REPORT_VALUE = """<script>
window.addEventListener("load", () => setTimeout(() => {{
  parent.postMessage({{overflow: String({expression}), width: document.documentElement.clientWidth}}, "*");
}}, 300));
</script></body>"""


def evaluated(tmp_path: Path, page: Path, width: int, expression: str) -> str:
    """A JS expression's value inside `page` laid out `width` px wide (in a frame, as `overflow` does)."""
    probe = tmp_path / f"value-{page.stem}-{width}.html"
    probe.write_text(page.read_text().replace("</body>", REPORT_VALUE.format(expression=expression)))
    frame = tmp_path / f"value-frame-{page.stem}-{width}.html"
    frame.write_text(FRAME.format(src=probe.name, width=width))
    dom = chromium(tmp_path, "--dump-dom", "--window-size=1400,1000", frame.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    value, _ = dom.stdout.split('data-overflow="')[1].split('"')[0].rsplit("/", 1)
    return value


def framed_screenshot(tmp_path: Path, page: Path, name: str, width: int, height: int) -> Path:
    """A screenshot of `page` laid out `width` px wide (in a frame: headless Chromium lays a window out at least
    500 px wide), the frame's box only."""
    frame = tmp_path / f"shot-frame-{page.stem}-{width}.html"
    frame.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe src="{page.name}" '
                     f'style="border:0;width:{width}px;height:{height}px"></iframe></body></html>')
    return screenshot(tmp_path, frame.as_uri(), name, max(width, 500), height)
