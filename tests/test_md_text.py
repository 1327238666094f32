"""Untrusted text in Markdown (reports, job summaries) never becomes a link, GitHub's bare autolinks included."""

import re

from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl.report import md_text

# GitHub's extended autolinks (GFM spec, section 6.9): www., http(s)://, ftp:// and e-mail addresses, matched on the
# rendered text (a backslash escape renders as the character itself).
AUTOLINKS = re.compile(r"(?i)(?:www\.|https?://|ftp://|mailto:|xmpp:)|[A-Za-z0-9._+-]@[A-Za-z0-9_-]")
PIECES = st.sampled_from(["https://", "http://", "HTTPS://", "www.", "WWW.", "ftp://", "mailto:", "@", "a@b.com",
                          "evil.example", " ", "(", "*", "_", "~", "x", "\\", "[", "]", "|", ":", "."])


def rendered(markdown: str) -> str:
    """The text a reader sees: backslash escapes resolved."""
    return re.sub(r"\\(.)", r"\1", markdown)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_no_autolink_survives(text):
    assert not AUTOLINKS.search(rendered(md_text.plain(text)))


def test_a_model_name_with_a_url_reads_the_same():
    shown = md_text.plain("org/model (see https://example.org, ask a@b.com)")
    assert shown.replace(md_text.WORD_JOINER, "") == r"org/model (see https://example.org, ask a\@b.com)"
