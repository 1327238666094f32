"""The plugin's live output through pytest's terminal reporter: the audit's progress and its closing line.

The audit runs in the controller's `pytest_sessionstart`, before pytest's own session clock starts
(it must: xdist starts its workers right after, and they reuse the audit), so pytest's final
"N passed in X s" leaves the audit out. The plugin says so in one more line after it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from ..progress import Display, Progress, choose_mode, duration, seconds_between_lines


def _reporter(config: Any) -> Any:
    if hasattr(config, "workerinput"):  # an xdist worker's output never reaches the user's terminal
        return None
    return config.pluginmanager.get_plugin("terminalreporter")


def progress_for(config: Any) -> Progress:
    """Progress on pytest's terminal: a bar redrawn in place on a terminal, plain lines in a log."""
    reporter = _reporter(config)
    if reporter is None:
        return Progress(Display(_nothing, _nothing, lambda: None), "off")
    mode = choose_mode(bool(getattr(reporter, "isatty", False)))
    shown = _ReporterDisplay(reporter, config.get_terminal_writer(),
                             config.pluginmanager.get_plugin("capturemanager"))
    return Progress(Display(shown.redraw, shown.line, shown.end), mode, every=seconds_between_lines())


class _ReporterDisplay:
    """Writes through the terminal reporter, on a line of its own (an audit inside a test starts after the
    test's dot), past the test's output capture."""

    def __init__(self, reporter: Any, writer: Any, capture: Any):
        self.reporter, self.writer, self.capture = reporter, writer, capture
        self.drawing = False  # the current line is our bar

    def redraw(self, text: str) -> None:
        with self._uncaptured():
            if not self.drawing and self.writer.width_of_current_line:
                self.writer.line()
            self.reporter.rewrite(text)
            self.drawing = True

    def line(self, text: str) -> None:
        with self._uncaptured():
            if self.writer.width_of_current_line:
                self.writer.line()
            self.reporter.write_line(text)
            self.drawing = False

    def end(self) -> None:
        with self._uncaptured():
            self.writer.line()
            self.drawing = False

    def _uncaptured(self) -> Any:
        return self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()


def _nothing(_: str) -> None:
    pass


def write_closing_line(config: Any, record: Any, session_seconds: float) -> None:
    """After pytest's final line: how long the audit took, which that line does not count."""
    reporter = _reporter(config)
    if reporter is None or record is None or reporter.verbosity < -1:
        return
    text = (f"swapkl {audit_time(record)} before the tests, not in pytest's time above; "
            f"{duration(session_seconds)} in all")
    if reporter.verbosity < 0:
        reporter.write_line(text)
    else:
        reporter.write_sep("=", text)


def audit_time(record: Any) -> str:
    """audit computed in 16.9 s, or audit read from the cache: cache hit in 4.0 s."""
    if record.cache_hit:
        return f"audit read from the cache: cache hit in {record.seconds:.1f} s"
    return f"audit computed in {record.seconds:.1f} s"
