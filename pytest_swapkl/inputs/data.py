"""Calibration data: the token ids every probe of an audit is measured on.

``load_calibration(SOURCE, tokenizer)`` turns a source spec into a
``Calibration``: an int64 ``[n_sequences, seq_len]`` tensor plus the sha256 of
those ids, so that two audits can tell whether they saw the same data.

Every source except a pre-tokenized array becomes one token stream (documents
joined by the tokenizer's eos token), cut into contiguous non-overlapping
``seq_len`` chunks; ``tokens // seq_len`` of them are kept, in stream order.
The table of sources and error messages is in ``docs/data.md``.

Every problem the user can fix raises ``DataError`` with a one-line message
that names the problem and the fix; no traceback reaches the user for them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from ..console import print_notice
from ..errors import InputError
from ..limits import MAX_ARRAY_BYTES, MAX_TEXT_BYTES, MAX_TOKEN_ID, MAX_TOKEN_IDS
from ..safe_files import UnreadableFile, decode_text, file_kind, open_input
from . import prompts

DEMO_CORPUS_DIR = Path(__file__).resolve().parent.parent / "data" / "corpus"
DEMO_HELDOUT = DEMO_CORPUS_DIR / "heldout.txt.gz"
# Works that neither the demo model nor the demo calibration read (scripts/build_heldout_works.py): the default
# held-out text of a `demo` calibration, so held-out costs come from other works than the calibration's.
DEMO_HELDOUT_WORKS = DEMO_CORPUS_DIR / "heldout_works.txt.gz"
DEMO_HELDOUT_SOURCE = "demo-heldout"
_DEMO_FILES = {"demo": DEMO_HELDOUT, DEMO_HELDOUT_SOURCE: DEMO_HELDOUT_WORKS}
_DEMO_WORK_SEPARATOR = "\n\n\n"  # written by scripts/build_demo_corpus.py between works

SOURCE_HELP = "a .txt file or folder, .jsonl, .npy, .pt, hf:NAME[:CONFIG][:SPLIT], a save_to_disk folder, or demo"
_DATASET_DICT_SPLITS = ("validation", "test", "train")  # taken from a DatasetDict, first present wins
_BATCH = 1000  # documents per tokenizer call: batched calls are much faster for fast tokenizers
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines() splits at

Notice = Callable[[str], None]


class DataError(InputError):
    """Calibration data that cannot be used; the one-line message names the problem and the fix."""

    def __init__(self, message: str):
        # One line even where the source spec holds a line break: it is shown escaped.
        super().__init__(_LINE_BREAK.sub(lambda match: repr(match.group())[1:-1], message))


@dataclass(frozen=True)
class Calibration:
    """The token ids an audit runs on, with where they came from and their fingerprint."""

    input_ids: torch.Tensor  # int64 [n_sequences, seq_len], contiguous, on CPU
    source: str  # the source spec as the user gave it
    sha256: str  # token_sha256(input_ids), and of the mask where there is one
    attention_mask: Optional[torch.Tensor] = None  # int64 [n_sequences, seq_len]: 1 = real token, 0 = pad
    # Per row, the index of the document (work) it was cut from, and the documents' names: what a bootstrap by
    # document resamples. None where the source has no documents (a .npy/.pt array, prompts).
    documents: Optional[tuple[int, ...]] = None
    works: Optional[tuple[str, ...]] = None

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_tokens(self) -> int:
        """Real tokens (pads are not counted)."""
        if self.attention_mask is not None:
            return int(self.attention_mask.sum())
        return self.n_sequences * self.seq_len


def token_sha256(input_ids: torch.Tensor) -> str:
    """Hex sha256 of the ids as little-endian int64 in C order: independent of dtype and layout."""
    array = input_ids.detach().cpu().numpy().astype("<i8")
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def load_calibration(
    source: str,
    tokenizer: Any = None,
    *,
    tokens: int = 8192,
    seq_len: int = 256,
    seed: int = 0,
    vocab_size: int | None = None,
    max_positions: int | None = None,
    notice: Notice | None = None,
    pad_to_seq_len: bool = False,
) -> Calibration:
    """Load ``source`` as ``[n_sequences, seq_len]`` token ids.

    Text sources (``demo``, ``.txt`` files or folders, ``.jsonl``, ``hf:...``,
    ``save_to_disk`` folders) are tokenized with
    ``tokenizer(text, add_special_tokens=False)["input_ids"]`` and joined with
    the tokenizer's ``eos_token_id`` between documents; ``input_ids`` documents
    are used as given. The stream is cut into contiguous ``seq_len`` chunks (the
    ragged tail dropped, never padded) and ``tokens // seq_len`` chunks are kept:
    all of them when there are no more, else a random subset drawn with
    ``numpy.random.default_rng(seed)``, kept in stream order. When there are
    fewer, all are used and ``notice`` (default: a 'swapkl: ' line on stderr)
    says so.

    A jsonl line or dataset row with both fields uses ``input_ids``. Of a
    ``DatasetDict.save_to_disk`` folder the ``validation`` split is used, else
    ``test``, else ``train``.

    A pre-tokenized ``.npy`` / ``.pt`` array ``[n_sequences, seq_len]`` is used
    exactly as given: ``tokens``, ``seq_len`` and ``seed`` are ignored for it.

    ``prompts:FILE`` (``inputs/prompts.py``): one prompt per line of a .txt file or per record of a .jsonl file (or
    per row of a .npy/.pt id array right-padded with the pad id below: each prompt ends before its trailing pads),
    each cut to ``seq_len`` tokens (BOS first where the tokenizer leads with it), right-padded with the
    tokenizer's pad id (else its eos, else 0) into an attention mask; ``tokens`` and ``seed`` are ignored. They are
    padded to the longest prompt, or to ``seq_len`` with ``pad_to_seq_len`` (``--pads in``: the pads are read, so
    their number is part of the contract, as with the paper's ``padding="max_length"``).

    ``vocab_size`` and ``max_positions``, when given, are the model's limits;
    ids outside the vocabulary or sequences longer than the model allows raise
    ``DataError``.
    """
    source = str(source)
    if prompts.is_prompts(source):
        return _prompt_calibration(source, tokenizer, seq_len, vocab_size, max_positions, pad_to_seq_len)
    path = _local_path(source)
    if path is not None and path.suffix.lower() in (".npy", ".pt") and path.is_file():
        ids = _load_array(path, source)
        _check_array_seq_len(ids, source, max_positions)
        _check_vocabulary(ids, vocab_size, source)
    else:
        _check_chunking(tokens, seq_len, max_positions)
        stream, owners = _token_stream_with_documents(_documents(source, path), tokenizer, source)
        # The whole stream is checked, so a wrong tokenizer is caught whatever chunks the seed picks.
        _check_vocabulary(stream, vocab_size, source)
        bos = _leading_bos(tokenizer)
        # A tokenizer that starts every text with BOS (Gemma's) has a model that expects it: each sequence is
        # BOS + seq_len - 1 text tokens, as that model saw in training. Without it Gemma-3-270M's held-out
        # perplexity is about 100x higher (measured: docs/data.md).
        text_len = seq_len - (bos is not None)
        chosen = _chunks(stream, text_len, (tokens // seq_len) * text_len, seed, source, notice or print_notice)
        ids = _with_bos(stream[: (len(stream) // text_len) * text_len].reshape(-1, text_len)[chosen], bos)
        return _calibration(ids, source, _chunk_documents(owners, text_len, chosen), work_names(source))
    return _calibration(ids, source)


def load_heldout(
    source: str | None,
    calibration: Calibration,
    tokenizer: Any = None,
    *,
    tokens: int = 8192,
    seed: int = 0,
    vocab_size: int | None = None,
    max_positions: int | None = None,
    notice: Notice | None = None,
) -> Calibration:
    """Held-out ids for measuring costs: text the calibration never saw, cut like the calibration.

    ``source`` None (or the calibration's own source) takes the chunks of the calibration's own token
    stream that ``load_calibration`` did not keep (a seeded subset of ``tokens // seq_len`` of them):
    for ``demo`` that is the rest of the bundled held-out works. Any other source is loaded as
    calibration data is. Either way the held-out sequences share no chunk with the calibration; a
    source whose ids equal the calibration's is refused.
    """
    seq_len = calibration.seq_len
    if source is None and calibration.source == "demo":
        source = DEMO_HELDOUT_SOURCE  # other works than the calibration's; `--heldout demo` keeps its own chunks
    if source is not None and str(source) != calibration.source:
        heldout = load_calibration(str(source), tokenizer, tokens=tokens, seq_len=seq_len, seed=seed,
                                   vocab_size=vocab_size, max_positions=max_positions, notice=notice)
        if heldout.sha256 == calibration.sha256:
            raise DataError(f"held-out data {source} is the calibration data itself: pass other text with "
                            "--heldout, or omit --heldout to hold out unused chunks of the calibration source")
        return heldout
    own = calibration.source
    path = _local_path(own)
    if path is not None and path.suffix.lower() in (".npy", ".pt") and path.is_file():
        raise DataError(f"calibration data {own} is pre-tokenized and used whole, so none of it is held out: "
                        "pass held-out text with --heldout")
    stream, owners = _token_stream_with_documents(_documents(own, path), tokenizer, own)
    bos = _leading_bos(tokenizer)
    text_len = seq_len - (bos is not None)
    chunks = stream[: (len(stream) // text_len) * text_len].reshape(-1, text_len)
    used = _chosen_chunks(len(chunks), calibration.n_sequences, seed)
    unused = np.setdiff1d(np.arange(len(chunks)), used)
    if len(unused) == 0:
        raise DataError(f"calibration data {own} is used whole ({len(chunks)} sequences of {seq_len} tokens), so "
                        "none of it is held out: pass held-out text with --heldout, or lower --tokens")
    wanted = tokens // seq_len
    if len(unused) < wanted:
        (notice or print_notice)(f"{own} holds out {len(unused)} sequences of {seq_len} tokens, fewer than the "
                                 f"{wanted} asked for: using all of them")
    else:
        # Another stream than the calibration's draw (seed + 1), so the two subsets are independent draws.
        unused = np.sort(np.random.default_rng(seed + 1).choice(unused, size=wanted, replace=False))
    return _calibration(_with_bos(chunks[unused], bos), f"{own} (held-out part)",
                        _chunk_documents(owners, text_len, unused), work_names(own))


def _with_bos(ids: np.ndarray, bos: int | None) -> np.ndarray:
    if bos is None:
        return ids
    return np.concatenate([np.full((len(ids), 1), bos, dtype=ids.dtype), ids], axis=1)


def _prompt_calibration(source: str, tokenizer: Any, seq_len: int, vocab_size: int | None,
                        max_positions: int | None, pad_to_seq_len: bool) -> Calibration:
    path = _local_path(source[len(prompts.PREFIX):])
    if path is None or not path.is_file():
        raise DataError(f"{source}: prompts: names a .txt, .jsonl, .npy or .pt file")
    _check_chunking(seq_len, seq_len, max_positions)
    pad = next((int(value) for value in (getattr(tokenizer, "pad_token_id", None), _eos_id(tokenizer))
                if value is not None), 0)
    if path.suffix.lower() in (".npy", ".pt"):  # token ids as given, right-padded with the pad id
        found = prompts.unpadded_rows(_load_array(path, source), pad)
    else:
        budget = _TextBudget(source)
        bos = _leading_bos(tokenizer)
        found = [_with_bos(ids[None, :seq_len - (bos is not None)], bos)[0] for ids, _ in
                 _tokenized(prompts.prompt_documents(path, source, budget, _jsonl_documents), tokenizer, source)]
    ids, mask = prompts.padded(found, seq_len, pad, source, to_seq_len=pad_to_seq_len)
    _check_vocabulary(ids, vocab_size, source)
    input_ids = torch.from_numpy(ids)
    mask_tensor = torch.from_numpy(mask)
    digest = hashlib.sha256((token_sha256(input_ids) + token_sha256(mask_tensor)).encode()).hexdigest()
    return Calibration(input_ids=input_ids, source=source, sha256=digest, attention_mask=mask_tensor)


def _calibration(ids: np.ndarray, source: str, documents: Optional[tuple[int, ...]] = None,
                 works: Optional[tuple[str, ...]] = None) -> Calibration:
    input_ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
    return Calibration(input_ids=input_ids, source=source, sha256=token_sha256(input_ids), documents=documents,
                       works=works)


def _chunk_documents(owners: np.ndarray, text_len: int, chosen: np.ndarray) -> tuple[int, ...]:
    """The document of each chosen chunk: the one its middle token belongs to (a chunk that straddles two
    documents counts for the one holding its middle)."""
    return tuple(int(owners[int(c) * text_len + text_len // 2]) for c in chosen)


def work_names(source: str) -> Optional[tuple[str, ...]]:
    """The names of the bundled works of ``demo`` and ``demo-heldout`` (data/corpus/works.json), in file order;
    None for other sources, whose documents are numbered."""
    if source not in _DEMO_FILES:
        return None
    manifest = json.loads((DEMO_CORPUS_DIR / "works.json").read_text(encoding="utf-8"))
    return tuple(manifest[_DEMO_FILES[source].name])


def document_record(calibration: Calibration) -> dict[str, Any]:
    """For the JSON: which documents (works) the rows came from, and so what a bootstrap by document resamples."""
    if calibration.documents is None:
        return {"bootstrap_unit": "sequence", "documents": None,
                "why_sequences": "the source has no documents (pre-tokenized ids or prompts): sequences are "
                                 "resampled as if independent"}
    used = sorted(set(calibration.documents))
    names = [calibration.works[d] if calibration.works else f"document {d}" for d in used]
    return {"bootstrap_unit": "document", "n_documents": len(used), "documents": names}


# --- source specs -> documents ----------------------------------------------------------------


def _local_path(source: str) -> Path | None:
    """The filesystem path a spec names; None for ``demo``, ``demo-heldout`` and ``hf:`` specs."""
    if source in _DEMO_FILES or source.startswith("hf:"):
        return None
    if not source.strip():  # Path("") is the working directory
        raise DataError(f"the calibration data spec is empty: use {SOURCE_HELP}")
    try:
        path = Path(source).expanduser()
        exists = path.exists()
    except (OSError, RuntimeError) as error:  # a name too long for the file system, an unknown ~user
        reason = getattr(error, "strerror", None) or str(error)
        raise DataError(f"calibration data {source} is not a usable path ({reason}): check the path, "
                        f"or use {SOURCE_HELP}") from None
    if not exists:
        raise DataError(f"calibration data {source} does not exist: check the path, or use {SOURCE_HELP}")
    mode = path.stat().st_mode  # of what a link points to: a FIFO or /dev/zero behind a .txt name is no file
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise DataError(f"calibration data {source} is {file_kind(mode)}, not a regular file or folder (it would "
                        f"block or never end): pass a file or a folder, or use {SOURCE_HELP}")
    return path


def documents(source: str) -> Iterator[Any]:
    """The documents of a SOURCE spec (text, or token ids), each checked as calibration data is."""
    return _documents(source, _local_path(source))


def _documents(source: str, path: Path | None) -> Iterator[Any]:
    if source in _DEMO_FILES:
        return _demo_documents(_DEMO_FILES[source])
    if source.startswith("hf:"):
        return _hub_documents(source)
    assert path is not None
    budget = _TextBudget(source)
    if path.is_dir():
        return _folder_documents(path, source, budget)
    if path.suffix.lower() == ".txt":
        return iter([budget.read_text(path)])
    if path.suffix.lower() == ".jsonl":
        return _jsonl_documents(path, budget)
    raise DataError(
        f"calibration file {source} has an unknown extension '{path.suffix}': use .txt, .jsonl, .npy or .pt, "
        "a folder of .txt files, a save_to_disk folder, hf:NAME or demo"
    )


def _demo_documents(path: Path = DEMO_HELDOUT) -> Iterator[str]:
    """A bundled corpus file's works, one document each (as the demo model was trained)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return iter(f.read().rstrip("\n").split(_DEMO_WORK_SEPARATOR))


class _TextBudget:
    """The bytes of text one source may have read, across all its files: text is tokenized in memory."""

    def __init__(self, source: str, limit: Optional[int] = None):
        limit = MAX_TEXT_BYTES if limit is None else limit
        self.source, self.left, self.limit = source, limit, limit

    def read(self, path: Path) -> bytes:
        fix = "pass a regular file of text"
        try:
            with open_input(path, what="calibration file", max_bytes=self.limit, fix=fix) as stream:
                data = stream.read(self.left + 1)
        except UnreadableFile as error:
            raise DataError(_over(self.source, self.limit) if "byte limit" in error.reason else str(error)) from None
        except OSError as error:
            raise DataError(f"cannot read {path} ({error.strerror or error}): check that it is readable") from None
        if len(data) > self.left:
            raise DataError(_over(self.source, self.limit))
        self.left -= len(data)
        return data

    def read_text(self, path: Path) -> str:
        return _decoded(self.read(path), path)


def _over(source: str, limit: int) -> str:
    return (f"calibration data {source} is over the {limit >> 20} MiB of text one audit reads: pass a smaller file or "
            "folder (an audit needs only --tokens tokens), or pre-tokenize it to .npy")


def _decoded(data: bytes, path: Path, offset: int = 0, what: str = "the file") -> str:
    try:
        return decode_text(data, str(path), what=what, fix="save it as UTF-8", offset=offset)
    except UnreadableFile as error:
        raise DataError(str(error)) from None


def _folder_documents(folder: Path, source: str, budget: _TextBudget) -> Iterator[Any]:
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return _saved_dataset_documents(folder, source)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
    if not files:
        raise DataError(
            f"folder {source} has no .txt files: put .txt files in it (one document each) or give a file instead"
        )
    return (budget.read_text(p) for p in files)


def _jsonl_documents(path: Path, budget: _TextBudget) -> Iterator[Any]:
    """One document per non-blank line; each line decoded on its own, so an error names its line and byte."""
    data, offset = budget.read(path), 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = _decoded(raw, path, offset, what=f"line {number}")
        offset += len(raw) + 1
        if line.strip():
            yield _jsonl_document(line, path, number)


def _jsonl_document(line: str, path: Path, number: int) -> Any:
    where = f"{path} line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where} is not JSON ({error.msg}): write one JSON object per line") from None
    except (RecursionError, ValueError) as error:  # nested thousands deep, or a number too long to read
        raise DataError(f"{where} cannot be read ({type(error).__name__}): write one flat JSON object a line") from None
    if not isinstance(record, dict) or ("text" not in record and "input_ids" not in record):
        raise DataError(f"{where} has no 'text' or 'input_ids' field: give every line one of them")
    # Ids already tokenized for the model are preferred over re-tokenizing the text.
    if "input_ids" in record:
        return _checked_ids(record["input_ids"], where)
    if not isinstance(record["text"], str):
        raise DataError(f"{where} has a 'text' field that is not a string: make it a string")
    return record["text"]


def _checked_ids(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        raise DataError(f"{where} has an 'input_ids' field that is not a list of integers: make it one")
    _check_id_range(value, where)
    return value


def _check_id_range(ids: Iterable[int], where: str) -> None:
    """Token ids must fit int64 before they become one: 2**63 would wrap to a negative id and be misreported."""
    bad = next((x for x in ids if not 0 <= x <= MAX_TOKEN_ID), None)
    if bad is not None and bad >= 0:
        raise DataError(f"token id {bad} in {where} is outside any model's vocabulary (ids are below 2**63): "
                        "these are not token ids; tokenize the text with the model's tokenizer")


# --- datasets -------------------------------------------------------------------------------


def _parse_hub_spec(source: str) -> tuple[str, str | None, str]:
    """``hf:NAME[:CONFIG][:SPLIT]``; an empty CONFIG (``hf:NAME::SPLIT``) means none."""
    parts = source[len("hf:") :].split(":")
    if not parts[0] or len(parts) > 3:
        raise DataError(f"{source} is not a datasets spec: write hf:NAME, hf:NAME:CONFIG or hf:NAME:CONFIG:SPLIT")
    name = parts[0]
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    return name, config, split


def _hub_documents(source: str) -> Iterator[Any]:
    name, config, split = _parse_hub_spec(source)
    import datasets  # slow to import; only hf: sources need it

    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # any failure (offline, missing split, bad files) is the user's to fix
        raise DataError(
            f"could not load {source} ({_one_line(error)}): use a local folder of data files (hf:/path/to/folder) "
            "or load it once with network access so that it is in the datasets cache"
        ) from None
    return _dataset_documents(dataset, source)


def _saved_dataset_documents(folder: Path, source: str) -> Iterator[Any]:
    import datasets  # slow to import; only save_to_disk folders need it

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as error:
        raise DataError(
            f"could not load the save_to_disk folder {source} ({_one_line(error)}): save it again with save_to_disk"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _pick_split(loaded, source)
    return _dataset_documents(loaded, source)


def _pick_split(dataset_dict: Any, source: str) -> Any:
    for split in _DATASET_DICT_SPLITS:
        if split in dataset_dict:
            return dataset_dict[split]
    raise DataError(
        f"{source} has splits {', '.join(dataset_dict)} but none of {', '.join(_DATASET_DICT_SPLITS)}: "
        "save the split you want with Dataset.save_to_disk"
    )


def _dataset_documents(dataset: Any, source: str) -> Iterator[Any]:
    column = _document_column(dataset, source)
    for batch in dataset.select_columns([column]).iter(batch_size=_BATCH):
        for value in batch[column]:
            yield "" if value is None else value


def _document_column(dataset: Any, source: str) -> str:
    # As for jsonl, ids already tokenized for the model win over the text.
    for column in ("input_ids", "text"):
        if column in dataset.column_names:
            return column
    raise DataError(
        f"{source} has no 'text' or 'input_ids' column (columns: {', '.join(dataset.column_names)}): "
        "rename the column with the documents to 'text'"
    )


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0][:300] if lines else ""  # some reasons embed whole file listings
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


# --- documents -> token stream ----------------------------------------------------------------


def _token_stream(documents: Iterable[Any], tokenizer: Any, source: str) -> np.ndarray:
    """All documents as one int64 stream; eos goes between two adjacent text documents."""
    return _token_stream_with_documents(documents, tokenizer, source)[0]


def _token_stream_with_documents(documents: Iterable[Any], tokenizer: Any,
                                 source: str) -> tuple[np.ndarray, np.ndarray]:
    """The stream and, per token, the index of its document in the source's order (an eos separator counts for
    the document after it)."""
    eos = _eos_id(tokenizer)
    pieces: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    previous_was_text = False
    for index, (document, is_text) in enumerate(_tokenized(documents, tokenizer, source)):
        if len(document) == 0:  # an empty document adds nothing, not even a separator
            continue
        separated = eos is not None and is_text and previous_was_text
        if separated:
            pieces.append(np.array([eos], dtype=np.int64))
        pieces.append(document)
        owners.append(np.full(len(document) + separated, index, dtype=np.int32))
        previous_was_text = is_text
    if not pieces:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    return np.concatenate(pieces), np.concatenate(owners)


def leading_bos(tokenizer: Any) -> int | None:
    """The BOS id a text source's sequences start with for this tokenizer (None: no BOS)."""
    return _leading_bos(tokenizer)


def _leading_bos(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer puts it in front of every text by default, else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None or tokenizer is None:
        return None
    try:
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        without = tokenizer("a", add_special_tokens=False)["input_ids"]
    except Exception:  # a tokenizer that cannot encode a plain letter adds nothing we could rely on
        return None
    added = with_special[0] == bos and (not without or without[0] != bos)
    return int(bos) if added else None


def _eos_id(tokenizer: Any) -> int | None:
    eos = getattr(tokenizer, "eos_token_id", None)
    return int(eos) if eos is not None else None


def _tokenized(documents: Iterable[Any], tokenizer: Any, source: str) -> Iterator[tuple[np.ndarray, bool]]:
    """(ids, came_from_text) per document; text is tokenized in batches, order kept."""
    texts: list[str] = []
    for document in documents:
        if isinstance(document, str):
            texts.append(document)
            if len(texts) == _BATCH:
                yield from _encode(texts, tokenizer, source)
                texts = []
            continue
        yield from _encode(texts, tokenizer, source)
        texts = []
        yield _as_ids(document, source), False
    yield from _encode(texts, tokenizer, source)


def _encode(texts: list[str], tokenizer: Any, source: str) -> Iterator[tuple[np.ndarray, bool]]:
    if not texts:
        return
    if tokenizer is None:
        raise DataError(
            f"calibration data {source} is text and needs a tokenizer: pass the model's tokenizer "
            "or pre-tokenize it to .npy/.pt"
        )
    try:
        if _is_hf_tokenizer(tokenizer):
            # verbose=False: calibration documents are routinely longer than model_max_length; we cut them.
            encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        else:  # any other callable with the same signature may only take one string
            encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    except Exception as error:  # a damaged tokenizer file (tokenizer_config.json values of the wrong type, say)
        raise DataError(f"the tokenizer failed on {source} ({type(error).__name__}: {_one_line(error)}): its files "
                        "(tokenizer.json, tokenizer_config.json) may be damaged; re-save the tokenizer") from None
    for ids in encoded:
        yield np.asarray(ids, dtype=np.int64).reshape(-1), True


def _is_hf_tokenizer(tokenizer: Any) -> bool:
    from transformers import PreTrainedTokenizerBase

    return isinstance(tokenizer, PreTrainedTokenizerBase)


def _as_ids(document: Any, source: str) -> np.ndarray:
    if isinstance(document, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in document):
        _check_id_range(document, source)  # Python ints of any size, checked before numpy sees them
    try:
        ids = np.asarray(document)
    except (TypeError, ValueError, OverflowError):
        ids = np.asarray([], dtype=object)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise DataError(
            f"{source} has an 'input_ids' value that is not a list of integers: make every one a list of ints"
        )
    _check_array_range(ids, source)
    return ids.astype(np.int64)


# --- token stream -> chunks -------------------------------------------------------------------


def _check_chunking(tokens: int, seq_len: int, max_positions: int | None) -> None:
    if seq_len < 2:
        raise DataError(
            f"--seq-len {seq_len} is too short: next-token measurements need at least 2 tokens, use --seq-len 2 or more"
        )
    if tokens < seq_len:
        raise DataError(
            f"--tokens {tokens} is fewer than --seq-len {seq_len}: ask for at least {seq_len} tokens "
            "or use a smaller --seq-len"
        )
    if max_positions is not None and seq_len > max_positions:
        raise DataError(
            f"--seq-len {seq_len} exceeds the model's maximum of {max_positions} positions: "
            f"use --seq-len {max_positions} or less"
        )


def _chunks(stream: np.ndarray, seq_len: int, tokens: int, seed: int, source: str, notice: Notice) -> np.ndarray:
    """The indices of the contiguous ``seq_len`` slices of the stream kept: a seeded subset when there are more
    than wanted."""
    available = len(stream) // seq_len
    wanted = tokens // seq_len
    if available == 0:
        raise DataError(
            f"{source} has {len(stream)} tokens, fewer than --seq-len {seq_len}: "
            "use a longer file or a smaller --seq-len"
        )
    if available < wanted:
        notice(
            f"{source} has {available} sequences of {seq_len} tokens ({available * seq_len} tokens), "
            f"fewer than the {tokens} asked for: using all of them"
        )
    return _chosen_chunks(available, wanted, seed)


def _chosen_chunks(available: int, wanted: int, seed: int) -> np.ndarray:
    """Indices of the chunks a calibration keeps: all when there are no more than wanted, else a seeded subset."""
    if available <= wanted:
        return np.arange(available)
    return np.sort(np.random.default_rng(seed).choice(available, size=wanted, replace=False))


# --- pre-tokenized arrays ---------------------------------------------------------------------


def _load_array(path: Path, source: str) -> np.ndarray:
    """A ``.npy``/``.pt`` 2-D integer array, validated and used exactly as stored."""
    array = _read_array(path, source)
    if array.ndim != 2:
        raise DataError(
            f"{source} holds an array of shape {tuple(array.shape)}, not [n_sequences, seq_len]: save a 2-D array"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{source} holds {array.dtype} values, not token ids: save an integer array")
    if array.shape[0] == 0:
        raise DataError(f"{source} holds no sequences: save at least one row of token ids")
    if array.shape[1] < 2:
        raise DataError(
            f"{source} has sequences of {array.shape[1]} tokens: next-token measurements need at least 2, "
            "save longer rows"
        )
    return array


def _read_array(path: Path, source: str) -> np.ndarray:
    fix = "save the array with numpy.save or torch.save"
    try:
        with open_input(path, what="token array", max_bytes=MAX_ARRAY_BYTES, fix=fix) as stream:
            if path.suffix.lower() == ".npy":
                _check_npy_header(stream, source)
                loaded = np.load(stream, allow_pickle=False)
            else:
                _check_pt_expansion(stream, source)
                loaded = torch.load(stream, map_location="cpu", weights_only=True)
                _check_elements(getattr(loaded, "shape", ()), source)
    except (DataError, UnreadableFile) as error:
        raise DataError(str(error)) from None
    except Exception as error:  # corrupt files, pickled objects: the file is the user's to fix
        raise DataError(f"could not read {source} ({_one_line(error)}): {fix}") from None
    if isinstance(loaded, torch.Tensor):
        loaded = loaded.detach().cpu().numpy()
    if isinstance(loaded, np.ndarray):
        if np.issubdtype(loaded.dtype, np.integer):
            _check_array_range(loaded, source)
        return loaded
    raise DataError(f"{source} holds a {type(loaded).__name__}, not an array: save a single tensor of token ids")


def _check_npy_header(stream, source: str) -> None:
    """The shape an .npy header claims must be what the file holds, before numpy allocates for it."""
    from numpy.lib import format as npy

    fix = "save the array with numpy.save or torch.save"
    size = os.fstat(stream.fileno()).st_size
    try:
        version = npy.read_magic(stream)
        shape, fortran, dtype = (npy.read_array_header_1_0(stream) if version == (1, 0)
                                 else npy.read_array_header_2_0(stream))
    except Exception as error:  # numpy raises ValueError and friends for every kind of bad header
        raise DataError(f"could not read {source} ({_one_line(error)}): {fix}") from None
    if dtype.hasobject:
        raise DataError(f"could not read {source} (it holds Python objects, which would need pickle): {fix}")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != size - stream.tell():
        raise DataError(f"{source} is truncated or corrupt (its header claims shape {shape}, {claimed} bytes of "
                        f"data, but the file holds {size - stream.tell()}): {fix}")
    _check_elements(shape, source)
    stream.seek(0)


def _check_elements(shape: tuple, source: str) -> None:
    """A cap on ids, not on bytes on disk: 2 GiB of uint8 ids would become 16 GiB as int64."""
    count = math.prod(int(n) for n in shape)
    if count > MAX_TOKEN_IDS:
        raise DataError(f"{source} holds {count} token ids (shape {tuple(int(n) for n in shape)}), over the "
                        f"{MAX_TOKEN_IDS} one audit reads (they become int64): save fewer sequences")


def _check_pt_expansion(stream, source: str) -> None:
    """A torch.save file is a zip archive whose members may be deflated (a 9 KB file can hold 8 MB of ids, and so
    on): what its members decompress to is capped like the bytes of an uncompressed file, before torch reads it."""
    import zipfile

    if not zipfile.is_zipfile(stream):
        stream.seek(0)
        return  # torch's legacy format: stored, not compressed, so the file's size is what it holds
    try:
        members = zipfile.ZipFile(stream).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise DataError(f"could not read {source} ({_one_line(error)}): save the array with numpy.save or "
                        "torch.save") from None
    expanded = sum(member.file_size for member in members)
    if expanded > MAX_ARRAY_BYTES:
        raise DataError(f"{source} decompresses to {expanded} bytes, over the {MAX_ARRAY_BYTES} byte limit on one "
                        "token array: save fewer sequences")
    stream.seek(0)


def _check_array_range(ids: np.ndarray, source: str) -> None:
    """Unsigned ids of 2**63 and above would wrap to negative int64: named as they are."""
    if ids.dtype.kind == "u" and ids.size and ids.max() > MAX_TOKEN_ID:
        _check_id_range((int(x) for x in ids.reshape(-1)), source)


def check_fits(calibration: Calibration, vocab_size: int | None, max_positions: int | None) -> None:
    """Token ids read before the model was loaded, checked against the loaded model's own limits."""
    ids = calibration.input_ids.numpy()
    _check_array_seq_len(ids, calibration.source, max_positions)
    _check_vocabulary(ids, vocab_size, calibration.source)


def _check_array_seq_len(ids: np.ndarray, source: str, max_positions: int | None) -> None:
    seq_len = ids.shape[1]
    if max_positions is not None and seq_len > max_positions:
        raise DataError(
            f"the sequences of {source} have {seq_len} tokens, which exceeds the model's maximum of "
            f"{max_positions} positions: save rows of at most {max_positions} tokens"
        )


def _check_vocabulary(ids: np.ndarray, vocab_size: int | None, source: str) -> None:
    if vocab_size is None:
        return
    outside = (ids < 0) | (ids >= vocab_size)
    if outside.any():
        first = int(ids.reshape(-1)[np.flatnonzero(outside.reshape(-1))[0]])
        raise DataError(
            f"token id {first} in {source} is outside the model's vocabulary of {vocab_size}: "
            "the data was tokenized for another model; tokenize it with this model's tokenizer"
        )
