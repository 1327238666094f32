"""How every part talks to a person: one-line notices on stderr and one-line error texts.

A notice is a `Notice` callable; the default prints ``swapkl: <line>`` on stderr. The plugin
passes its own, which also keeps the line for the terminal summary.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Callable, Optional

Notice = Callable[[str], None]

_LINE_BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def print_notice(message: str) -> None:
    """The default notice: one line on stderr, prefixed so it is clear which tool speaks."""
    print(f"swapkl: {message}", file=sys.stderr, flush=True)


def quiet(_: str) -> None:
    """A notice that says nothing (e.g. a cache look-up whose own notices would repeat the audit's)."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-blank line of an exception's message (its type name when it has none), at most `limit` long."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def one_line(message: str) -> str:
    """The message on one line whatever it quotes: line breaks inside it are printed escaped."""
    return _LINE_BREAKS.sub(lambda match: repr(match.group())[1:-1], message)


def number(value: Optional[float], digits: int = 3) -> str:
    """``digits`` significant digits in plain notation, trailing zeros kept, so a column's numbers read alike:
    1.56, 1.80, 0.200, 0.0523, 15.3, 153. The decimals follow the magnitude (at most 8)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    decimals = min(8, max(0, digits - 1 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}"
    if decimals and float(text) and len(text.lstrip("-").replace(".", "").lstrip("0")) > digits:
        text = f"{value:.{decimals - 1}f}"  # rounding up crossed a power of ten: 0.0999 -> 0.100, not 0.1000
    return text


def interval(value: Optional[float], low: Optional[float], high: Optional[float], digits: int = 3) -> str:
    """'value [low, high]', the one way every table and message writes an estimate with its interval: with as many
    significant digits (from ``digits``, at most 8) as it takes for the two ends to read apart, so an interval never
    looks like a point ('0.9286 [0.929, 0.929]'); where every resample gave one number, '[same in every resample]'."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return number(value, digits)
    if low == high:
        shown = number(value, digits)
        return f"{shown} [same in every resample]" if value == low else \
            f"{shown} [{number(low, digits)} in every resample]"
    while digits < 8 and number(low, digits) == number(high, digits):
        digits += 1
    return f"{number(value, digits)} [{number(low, digits)}, {number(high, digits)}]"


def signed(value: Optional[float], digits: int = 3) -> str:
    """A change or a log-ratio with its sign always written: +0.433, -0.12, 0."""
    if value is None:
        return "n/a"
    text = number(value, digits)
    return text if text.startswith("-") or text == "0" else "+" + text


def rank(value: Optional[float]) -> str:
    """A rank as people write it: 3, or 2.5 for a tie averaged over two places."""
    if value is None:
        return "n/a"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
