"""How far a long run is: probe-sequences done, time elapsed, an estimate of the time left.

The engine's batch loop calls ``progress(done, total)``, counting probe-sequences (one probe on
one calibration sequence). A `Progress` turns those calls into text on a `Display`:

    bar     a terminal: tqdm's bar, one line redrawn in place, from the first second on
            swapkl:  30%|█████████                     | 400/1335 probe-sequences [00:14 elapsed, ~00:33 left]
    lines   anything else (a CI log, a pipe): a plain line every SECONDS and at every tenth of the work,
            from two seconds on, and one line when the run ends
            swapkl: 400/1335 probe-sequences, 14 s elapsed, ~33 s left

SWAPKL_PROGRESS (auto | bar | lines | off; auto: bar on a terminal, lines elsewhere) and
SWAPKL_PROGRESS_SECONDS (default 10) choose. The estimate is the rate since the first finished
batch applied to what is left, so finished work taken from a resume journal does not make it
optimistic. No torch: the plugin imports this.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from .errors import InputError

MODES = ("auto", "bar", "lines", "off")
DEFAULT_SECONDS = 10.0
BAR_AFTER = 1.0  # seconds before a bar appears: quick runs stay silent
BAR_REDRAW = 0.2  # seconds between redraws
LINES_AFTER = 2.0  # seconds before the first plain line
BAR_WIDTH = 30
UNIT = "probe-sequences"


@dataclass(frozen=True)
class Display:
    """Where progress text goes: `redraw` replaces the current line of a terminal, `line` writes a whole line,
    `end` finishes a redrawn line."""

    redraw: Callable[[str], None]
    line: Callable[[str], None]
    end: Callable[[], None]


def stderr_display() -> Display:
    def redraw(text: str) -> None:
        sys.stderr.write("\r" + text)
        sys.stderr.flush()

    def line(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    return Display(redraw, line, lambda: line(""))


def choose_mode(isatty: bool, environ: Optional[Mapping[str, str]] = None) -> str:
    """bar, lines or off, from SWAPKL_PROGRESS and whether the output is a terminal."""
    environ = os.environ if environ is None else environ
    mode = environ.get("SWAPKL_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise InputError(f"SWAPKL_PROGRESS must be one of {', '.join(MODES)}, got {mode[:40]!r}")
    if mode == "auto":
        return "bar" if isatty else "lines"
    return mode


def seconds_between_lines(environ: Optional[Mapping[str, str]] = None) -> float:
    """SWAPKL_PROGRESS_SECONDS: seconds between plain lines (0: only at every tenth of the work)."""
    environ = os.environ if environ is None else environ
    text = environ.get("SWAPKL_PROGRESS_SECONDS", "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"SWAPKL_PROGRESS_SECONDS must be a number of seconds >= 0, got {text[:40]!r}")
    return value


def duration(seconds: float) -> str:
    """14 s, 2 min 05 s, 1 h 03 min: whole units, the way a person reads a clock."""
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """One measuring run's progress (see the module docstring); call it as ``progress(done, total)``."""

    def __init__(self, display: Display, mode: str, *, every: float = DEFAULT_SECONDS, label: str = "",
                 clock: Callable[[], float] = time.monotonic, unit: str = UNIT):
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"mode must be bar, lines or off, got {mode!r}")
        self.display, self.mode, self.every, self.clock, self.unit = display, mode, every, clock, unit
        self.label = label
        self.prefix = f"swapkl: {label}: " if label else "swapkl: "
        self.started = clock()
        self.first: Optional[tuple[float, int]] = None  # (time, done) of the first call: the rate starts there
        self.last: tuple[int, int] = (0, 0)
        self.shown_at: Optional[float] = None
        self.tenth = 0
        self.open_bar = False
        self.drawn = 0  # length of the longest bar line drawn

    @classmethod
    def for_stderr(cls, label: str = "", unit: str = UNIT) -> "Progress":
        """The command line's: a bar on a terminal's stderr, plain lines elsewhere (SWAPKL_PROGRESS overrides)."""
        return cls(stderr_display(), choose_mode(sys.stderr.isatty()), every=seconds_between_lines(), label=label,
                   unit=unit)

    def stage(self, label: str, unit: str = UNIT) -> "Progress":
        """A fresh count for the run's next phase (e.g. the noise floor after the probes), on the same display
        and in the same mode, so each phase has its own estimate; this one is closed first. A labelled run's
        phases keep its label in front ("step1000: noise floor")."""
        self.close()
        label = f"{self.label}: {label}" if self.label else label
        return Progress(self.display, self.mode, every=self.every, label=label, clock=self.clock, unit=unit)

    def note(self, text: str) -> None:
        """A line about what the run does now (e.g. loading the model), unless progress is off."""
        if self.mode != "off":
            self._finish_bar()
            self.display.line(self.prefix + text)

    def __call__(self, done: int, total: int) -> None:
        if self.mode == "off" or total <= 0:
            return
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
        self.last = (done, total)
        elapsed = now - self.started
        if self.mode == "bar":
            since = math.inf if self.shown_at is None else now - self.shown_at
            if elapsed >= BAR_AFTER and (since >= BAR_REDRAW or done >= total):
                text = self.bar(done, total, now)
                self.drawn = max(self.drawn, len(text))
                self.display.redraw(text.ljust(self.drawn))  # spaces over a longer line drawn before
                self.shown_at, self.open_bar = now, True
            return
        tenth = min(10, int(10 * done / total))
        due = self.every > 0 and self.shown_at is not None and now - self.shown_at >= self.every
        new_tenth = self.tenth < tenth < 10  # the whole of it is the closing line's
        if elapsed >= min(LINES_AFTER, self.every) and (new_tenth or due or self.shown_at is None):
            self.display.line(self.prefix + self.status(done, total, now))
            self.shown_at = now
        self.tenth = max(self.tenth, tenth)

    def close(self) -> None:
        """End of the run: the bar's line is finished; in lines mode one last line, if any was written."""
        if self.mode == "lines" and self.shown_at is not None:
            done, total = self.last
            self.display.line(f"{self.prefix}{done}/{total} {self.unit} in {duration(self.clock() - self.started)}")
            self.shown_at = None
        self._finish_bar()

    def _finish_bar(self) -> None:
        if self.open_bar:
            self.display.end()
            self.open_bar = False

    def status(self, done: int, total: int, now: float) -> str:
        text = f"{done}/{total} {self.unit}, {duration(now - self.started)} elapsed"
        left = self.seconds_left(done, total, now)
        return text if left is None else f"{text}, ~{duration(left)} left"

    def bar(self, done: int, total: int, now: float) -> str:
        """tqdm's bar, the one users know, drawn by tqdm's own formatter; the rate is this run's (work taken from
        a journal does not count), and the line goes through `Display`, which under pytest writes past capture."""
        from tqdm import tqdm

        rate = None
        if self.first is not None and now > self.first[0] and done > self.first[1]:
            rate = (done - self.first[1]) / (now - self.first[0])
        return tqdm.format_meter(min(done, total), total, now - self.started, prefix=self.prefix.rstrip(": "),
                                 unit=self.unit, rate=rate, initial=self.first[1] if self.first else 0,
                                 bar_format="{l_bar}{bar:" + str(BAR_WIDTH) + "}| {n_fmt}/{total_fmt} {unit} "
                                            "[{elapsed} elapsed, ~{remaining} left]")

    def seconds_left(self, done: int, total: int, now: float) -> Optional[float]:
        """The rate since the first call, applied to what is left; None until there is a rate."""
        if done >= total:
            return 0.0
        if self.first is None:
            return None
        since, done_then = now - self.first[0], done - self.first[1]
        if since <= 0 or done_then <= 0:
            return None
        return (total - done) * since / done_then
