"""Markdown that shows values as plain text: the one escaper for `swapkl report` and `--swapkl-summary`.

Values come from junit files and audit documents that anyone could have written (a model name,
a failure message), and the Markdown is posted to merge requests and job summaries, so no value
may open a link (autolinks included), an image, raw HTML or a table cell. No torch: the plugin imports this.
"""

from __future__ import annotations

import re
from typing import Sequence

# Every ASCII punctuation mark that opens Markdown or HTML syntax inline (emphasis, code, links and images (their
# "(" needs the "]" before it), raw HTML, entities, table cells, strikethrough, headings, mentions, math); CommonMark
# lets a backslash make any of them a plain character.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&!~#@$])")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


# GitHub's autolinks need no punctuation: a bare https://..., www.... or name@host becomes a link. A word joiner
# (U+2060, invisible and zero-width) after the scheme, the "www" or the "@" breaks the pattern and changes no glyph.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|xmpp|www)(?=[:.])")
WORD_JOINER = "\u2060"


def plain(text) -> str:
    """A value on one line of Markdown, as plain text: no syntax, and no autolink."""
    escaped = _MD_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))
    return _AUTOLINK.sub(rf"\1{WORD_JOINER}", escaped).replace("\\@", f"\\@{WORD_JOINER}")


def code_block(text: str) -> list:
    """A fenced block that no backtick run inside `text` can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def table(header: Sequence[str], rows: Sequence[Sequence]) -> list:
    """A pipe table; every cell through `plain` (the header is this program's own text, escaped too)."""
    lines = ["| " + " | ".join(plain(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(plain(cell) for cell in row) + " |" for row in rows]
    return lines
