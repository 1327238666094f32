"""Build the bundled held-out works: books of the King James Bible, none of which the demo model or the demo
calibration ever read.

The demo calibration (``--data demo``) draws its chunks from all seven works of ``heldout.txt.gz`` and the demo
model trained on the forty works of ``train.txt.gz``, so the corpus has no unread work left of its own. The text
of these books comes from Debian's ``bible-kjv`` package (``apt-get install bible-kjv``; its ``bible`` command
prints the Authorised Version of 1611, whose copyright has expired: the package's copyright file says so). This
script:

1. prints every book with ``bible -l10000 "BOOK 1:1-199:999"`` and drops the chapter headings and verse numbers
   (one verse a line, one blank line between chapters);
2. keeps a seeded subset of books (``sha256(f"{seed}:{book}")`` order, while the kept text stays under
   ``--chars``), so the bundle stays small;
3. writes ``heldout_works.txt.gz`` (works separated by two blank lines, gzip mtime=0: byte-reproducible) and
   ``works.json`` (the work ids of ``heldout.txt.gz`` and of ``heldout_works.txt.gz``, in file order).

Usage: python scripts/build_heldout_works.py [--seed 0] [--chars 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from pathlib import Path

from build_demo_corpus import DEFAULT_OUT, WORK_SEPARATOR, normalise, write_gzip

VERSE = re.compile(r"^\s+\d+ ")
# The 66 books in canonical order, as the bible command names them.
BOOKS = (
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth", "1 Samuel",
    "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
    "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah", "Jeremiah", "Lamentations", "Ezekiel",
    "Daniel", "Hosea", "Joel", "Amos", "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
    "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James", "1 Peter", "2 Peter",
    "1 John", "2 John", "3 John", "Jude", "Revelation",
)


def book_text(book: str) -> str:
    """The book's verses without chapter headings or verse numbers; chapters separated by a blank line."""
    printed = subprocess.run(["bible", "-l10000", f"{book} 1:1-199:999"], capture_output=True, text=True,
                             check=True).stdout
    chapters, verses = [], []
    for line in printed.split("\n"):
        if VERSE.match(line):
            verses.append(VERSE.sub("", line).strip())
        elif line.strip() and verses:  # the next chapter's heading
            chapters.append("\n".join(verses))
            verses = []
    chapters.append("\n".join(verses))
    return normalise("\n\n".join(chapter for chapter in chapters if chapter))


def work_id(book: str) -> str:
    return "kjv/" + book.lower().replace(" ", "_")


def chosen_books(texts: dict[str, str], seed: int, chars: int) -> list[str]:
    """Books visited in sha256(f"{seed}:{work_id}") order, kept while the total stays at or under ``chars``;
    returned in canonical order."""
    kept, used = set(), 0
    for book in sorted(texts, key=lambda b: hashlib.sha256(f"{seed}:{work_id(b)}".encode()).hexdigest()):
        if used + len(texts[book]) <= chars:
            kept.add(book)
            used += len(texts[book])
    return [book for book in BOOKS if book in kept]


def calibration_work_ids(sources: Path) -> list[str]:
    """The work ids of heldout.txt.gz, from the table build_demo_corpus.py wrote (its rows are in file order)."""
    section = sources.read_text().split("## heldout.txt.gz", 1)[1]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chars", type=int, default=1_000_000)
    args = parser.parse_args()
    texts = {book: book_text(book) for book in BOOKS}
    books = chosen_books(texts, args.seed, args.chars)
    write_gzip(args.out / "heldout_works.txt.gz", WORK_SEPARATOR.join(texts[b].rstrip("\n") for b in books) + "\n")
    manifest = {"heldout.txt.gz": calibration_work_ids(args.out / "SOURCES.md"),
                "heldout_works.txt.gz": [work_id(book) for book in books],
                "heldout_works_chars": {work_id(book): len(texts[book]) for book in books}}
    (args.out / "works.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(books)} books, {sum(len(texts[b]) for b in books):,} chars: {', '.join(books)}")


if __name__ == "__main__":
    main()
