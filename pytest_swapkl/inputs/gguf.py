"""GGUF checkpoints (llama.cpp's one-file format) as ordinary Hugging Face folders, dequantized once and cached.

    path = find_gguf("models/")                   # the .gguf file itself, or a folder holding one
    gguf_metadata(path)                           # {'architecture': 'llama', 'quantization': 'Q4_1', 'n_layers': 30}
    folder = dequantized_folder(path)             # config.json, model.safetensors (float32), tokenizer, manifest
    AutoModelForCausalLM.from_pretrained(folder)  # what every other MODEL spec goes through

Why float32: the blocks of the quantization types in the files we ship (Q4_1, Q4_K, Q5_0, Q6_K, Q8_0) hold small
integers times fp16 scales (plus fp16 offsets); dequantized they have at most 23 significant bits and float32 holds
all of them exactly (checked value by value against a float64 dequantization, see
benchmarks/models/gguf_load.py), so the cached folder is the GGUF's own model, with no rounding of its own.
bfloat16 or float16 would round them.

The cache root is $SWAPKL_CACHE_DIR, else $XDG_CACHE_HOME/swapkl/gguf, else ~/.cache/swapkl/gguf:

    <root>/<gguf sha256>/           one entry per GGUF file content (what from_pretrained gets)
    <root>/<gguf sha256>.lock       held while the entry is built: two processes never build it twice
    <root>/file-memo.json           sha256 and metadata per (path, size, mtime_ns), so a 250 MB file is hashed once
    <root>/assembled/<sha256>.gguf  GGUF files that named models assemble from chunk packages (named_models.py)

An entry is built in a temporary folder beside it and renamed into place, so a reader sees a whole entry or none.
Every use checks it against its manifest (swapkl-gguf.json: the GGUF's sha256, the written safetensors' sha256);
a damaged entry is rebuilt after a one-line notice. Importing this module imports neither torch nor gguf.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator, Optional

from ..console import Notice, first_line, print_notice
from ..errors import InputError
from ..limits import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH
from ..safe_files import disk_failure, write_text
from ..safe_json import read_json

ENTRY_FORMAT = 1  # what an entry holds; an entry of another format is rebuilt
MANIFEST = "swapkl-gguf.json"
WEIGHTS = "model.safetensors"
MEMO = "file-memo.json"
INSTALL_GGUF = "pip install 'pytest-swapkl[gguf]'"
MIN_GGUF_VERSION = (0, 10)  # what transformers' GGUF loader asks for
_MAGIC = b"GGUF"
_HASH_BLOCK = 1 << 20
_SIZES_CHECKED = 1  # memo records of metadata read before the size checks existed are read again
# Metadata keys (after "<architecture>.") that size the model transformers builds from a GGUF: (cap, what, lowest).
# A hybrid model gives 0 key/value heads to its layers without attention, and a dense one 0 experts.
_SIZE_FIELDS = {
    "block_count": (MAX_LAYERS, "layers", 1),
    "context_length": (MAX_POSITIONS, "positions", 1),
    "vocab_size": (MAX_VOCAB, "vocabulary rows", 1),
    "expert_count": (MAX_HEADS, "experts", 0),
    "attention.head_count": (MAX_HEADS, "attention heads", 1),
    "attention.head_count_kv": (MAX_HEADS, "attention heads", 0),
    **{key: (MAX_WIDTH, "a width", 1) for key in (
        "embedding_length", "feed_forward_length", "expert_feed_forward_length", "attention.key_length",
        "attention.value_length", "rope.dimension_count")},
}
_LOCK_SECONDS = 30.0  # for the memo file only; a build lock is waited for as long as the build takes


# --- where things are ------------------------------------------------------------------------------------

def default_cache_root() -> Path:
    """$SWAPKL_CACHE_DIR, else $XDG_CACHE_HOME/swapkl/gguf, else ~/.cache/swapkl/gguf."""
    explicit = os.environ.get("SWAPKL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "gguf"


def resolve_cache_root(root: str | os.PathLike | None = None) -> Path:
    """The cache root to use (created when missing); a one-line InputError when it cannot be made."""
    folder = Path(root).expanduser() if root is not None else default_cache_root()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the GGUF cache folder {folder} ({error.strerror or error}): set "
                         "SWAPKL_CACHE_DIR to a writable folder") from None
    return folder


def find_gguf(path: str | os.PathLike, gguf_file: Optional[str] = None) -> Path:
    """The .gguf file that `path` names: the file itself, or the one in a folder (`gguf_file` picks among several)."""
    given = Path(os.path.expanduser(os.fspath(path)))
    try:
        is_dir, exists = given.is_dir(), given.exists()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InputError(f"{given} is not a usable path ({error.strerror or error}): check the path") from None
    if is_dir:
        return _check_magic(_pick_in_folder(given, gguf_file))
    if not exists:
        raise InputError(f"no such file or folder: {given}: pass a .gguf file or a folder that holds one")
    if given.suffix.lower() != ".gguf":
        raise InputError(f"{given} is not a .gguf file: pass a .gguf file or a folder that holds one")
    if gguf_file is not None and gguf_file != given.name:
        raise InputError(f"{given} is a file, so gguf_file={gguf_file!r} cannot pick another: pass the folder "
                         "instead, or leave gguf_file out")
    return _check_magic(given.resolve())


def _pick_in_folder(folder: Path, gguf_file: Optional[str]) -> Path:
    candidates = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    listed = ", ".join(candidates) if candidates else "no .gguf file"
    if gguf_file is not None:
        chosen = folder / gguf_file
        if Path(gguf_file).name != gguf_file or not chosen.is_file():
            raise InputError(f"no file {gguf_file!r} in {folder} (it holds {listed}): pick one of those")
        return chosen.resolve()
    if not candidates:
        raise InputError(f"no .gguf file in {folder}: pass the .gguf file itself, or a folder that holds one")
    if len(candidates) > 1:
        raise InputError(f"{folder} holds several .gguf files ({listed}): pass the one you mean, or choose it "
                         "with gguf_file")
    return (folder / candidates[0]).resolve()


def _check_magic(file: Path) -> Path:
    """A file that does not start with b'GGUF' (e.g. a git-lfs pointer, or an HTML error page) fails here,
    with its name, instead of deep inside the reader."""
    try:
        with file.open("rb") as stream:
            head = stream.read(len(_MAGIC))
    except OSError as error:
        raise InputError(f"cannot read {file} ({error.strerror or error}): check its permissions") from None
    if head != _MAGIC:
        raise InputError(f"{file} is not a GGUF file (it does not start with b'GGUF'; a git-lfs pointer or a "
                         "partial download?): fetch the real file again")
    return file


# --- hashing and metadata, memoized per (path, size, mtime_ns) -------------------------------------------------

def file_sha256(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> str:
    """The sha256 (hex) of a file; remembered in the cache root, so an unchanged file is hashed only once."""
    file = Path(path).resolve()
    root = resolve_cache_root(cache_root)
    try:
        stat = file.stat()
        remembered = _memo_record(root, file, stat).get("sha256")
        if remembered:
            return remembered
        digest = hash_file(file)
    except OSError as error:
        raise InputError(f"cannot read {file} ({error.strerror or error}): check that it exists and is "
                         "readable") from None
    remember(root, file, sha256=digest)
    return digest


def hash_file(file: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (never the whole file at once)."""
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def remember(root: Path, file: Path, **facts: Any) -> None:
    """Record facts (sha256, metadata) about `file` as it is now, in the memo of the cache root."""
    remember_all(root, {file: facts})


def remember_all(root: Path, facts_by_file: dict[Path, dict]) -> None:
    """Record facts about several files at once. The memo is only a shortcut: when it cannot be written, or two
    processes race and one update is lost, the facts are computed again next time."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(root / f"{MEMO}.lock"), timeout=_LOCK_SECONDS):
            memo = {path: record for path, record in _read_memo(root).items() if Path(path).exists()}
            for file, facts in facts_by_file.items():
                stat = file.stat()
                record = _memo_record_from(memo, file, stat)
                memo[str(file)] = {**record, **facts, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            write_text(root / MEMO, json.dumps(memo, indent=1, sort_keys=True) + "\n")
    except (OSError, Timeout, InputError):
        pass


def _memo_record(root: Path, file: Path, stat: os.stat_result) -> dict:
    return _memo_record_from(_read_memo(root), file, stat)


def _memo_record_from(memo: dict, file: Path, stat: os.stat_result) -> dict:
    """The facts recorded for this file, or {} when the file changed since (another size or mtime)."""
    record = memo.get(str(file))
    if not isinstance(record, dict) or record.get("size") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
        return {}
    return record


def _read_memo(root: Path) -> dict:
    if not (root / MEMO).exists():
        return {}
    try:
        memo = read_json(root / MEMO, what="GGUF file memo")
    except InputError:  # damaged: it only costs a re-hash
        return {}
    return memo if isinstance(memo, dict) else {}


def gguf_metadata(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> dict:
    """What the GGUF header says, without dequantizing: architecture, quantization (e.g. 'Q4_K_M'), n_layers,
    n_tensors, tensor_types (count per block type), name and size. Read with gguf's GGUFReader, which parses
    every token string (seconds for a 262k vocabulary), so the answer is memoized like the sha256."""
    file = find_gguf(path)
    root = resolve_cache_root(cache_root)
    record = _memo_record(root, file, file.stat())
    if isinstance(record.get("metadata"), dict) and record.get("sizes_checked") == _SIZES_CHECKED:
        return record["metadata"]
    metadata = _read_metadata(file)
    remember(root, file, metadata=metadata, sizes_checked=_SIZES_CHECKED)
    return metadata


def _read_metadata(file: Path) -> dict:
    require_gguf()
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(file))
    except Exception as error:  # the reader's errors are ValueErrors and struct errors of every kind
        raise InputError(f"cannot read the GGUF header of {file} ({first_line(error)}): the file is damaged or "
                         "incomplete; fetch it again") from error
    architecture = _field(reader, "general.architecture")
    if not isinstance(architecture, str):
        raise InputError(f"{file} names no general.architecture: it is not a model GGUF; pass a model file")
    _check_sizes(reader, architecture, file)
    _check_against_model(reader, file)
    tensor_types = dict(Counter(tensor.tensor_type.name for tensor in reader.tensors).most_common())
    layers = _field(reader, f"{architecture}.block_count")
    return {
        "file": file.name, "size_bytes": file.stat().st_size, "architecture": architecture,
        "name": _field(reader, "general.name"),
        "quantization": _quantization_name(_field(reader, "general.file_type"), tensor_types),
        "n_layers": int(layers) if layers is not None else None, "n_tensors": len(reader.tensors),
        "tensor_types": tensor_types,
    }


def _check_sizes(reader, architecture: str, file: Path) -> None:
    """Every metadata number that sizes the model a whole number within its cap, and the numbers that the tensors
    also state (blocks, embedding width, vocabulary, feed-forward width) equal to theirs: checked before transformers
    builds (and allocates) the model the metadata describes, which a 171 KB file could make gigabytes."""
    fix = "the file is damaged or crafted; fetch it again"
    values = {}
    for key, (cap, what, lowest) in _SIZE_FIELDS.items():
        value = _field(reader, f"{architecture}.{key}")
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:  # some give one value per layer
            if isinstance(item, bool) or not isinstance(item, int) or not lowest <= item <= cap:
                shown = repr(item) if len(repr(item)) <= 40 else repr(item)[:30] + "..."
                raise InputError(f"{file}: GGUF metadata {architecture}.{key}={shown} is not a whole number of "
                                 f"{what} from {lowest} to {cap}: {fix}")
        values[key] = value
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is not None and len(tokens.data) > MAX_VOCAB:
        raise InputError(f"{file}: GGUF metadata tokenizer.ggml.tokens lists {len(tokens.data)} tokens, over the "
                         f"{MAX_VOCAB} a vocabulary may have: {fix}")
    shapes = {tensor.name: [int(n) for n in tensor.shape] for tensor in reader.tensors}
    _check_against_tensors(values, shapes, architecture, file, fix)


def _check_against_tensors(values: dict, shapes: dict, architecture: str, file: Path, fix: str) -> None:
    """The metadata's sizes against the shapes of the tensors that carry them (GGUF shapes list the row length
    first: token_embd.weight is [embedding_length, vocabulary])."""
    def refuse(key: str, value: Any, holds: str) -> InputError:
        return InputError(f"{file}: GGUF metadata {architecture}.{key}={value}, but {holds}: the metadata does not "
                          f"describe the file's tensors; {fix}")

    blocks = {int(name.split(".")[1]) for name in shapes if name.startswith("blk.") and name.split(".")[1].isdigit()}
    if blocks and "block_count" in values and values["block_count"] > max(blocks) + 1:
        raise refuse("block_count", values["block_count"], f"its tensors hold blocks 0 to {max(blocks)} only")
    embedding = shapes.get("token_embd.weight")
    if embedding is not None and len(embedding) == 2:
        if "embedding_length" in values and values["embedding_length"] != embedding[0]:
            raise refuse("embedding_length", values["embedding_length"], f"token_embd.weight is {embedding}")
        if "vocab_size" in values and values["vocab_size"] != embedding[1]:
            raise refuse("vocab_size", values["vocab_size"], f"token_embd.weight is {embedding}")
    widths = values.get("feed_forward_length")
    for block in sorted(blocks):
        width = widths[block] if isinstance(widths, list) and block < len(widths) else widths
        up = shapes.get(f"blk.{block}.ffn_up.weight")
        if isinstance(width, int) and width and up is not None and len(up) == 2 and width != up[1]:
            raise refuse("feed_forward_length", width, f"blk.{block}.ffn_up.weight is {up}")


def _check_against_model(reader, file: Path) -> None:
    """The model transformers would build from the metadata, built on the meta device (nothing allocated): it must
    need no more numbers than the tensors hold, and no buffers past the cap (weights.check_size). A GGUF whose
    metadata transformers cannot turn into a config is left to the build, which names the problem."""
    try:
        from transformers import AutoConfig

        from .weights import LoadError, check_size, transformers_log

        with transformers_log():
            config = AutoConfig.from_pretrained(str(file.parent), gguf_file=file.name)
    except Exception:
        return
    held = {tensor.name: tuple(int(n) for n in tensor.shape) for tensor in reader.tensors}
    try:
        with transformers_log():
            check_size(config, held, str(file), trust_remote_code=False, described_by="its GGUF metadata",
                       fix="the file is damaged or crafted; fetch it again")
    except LoadError:
        raise
    except Exception:  # transformers cannot build it: the build says why, in one line
        return


def _field(reader, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _quantization_name(file_type: Any, tensor_types: dict) -> str:
    """'Q4_K_M' from general.file_type (llama.cpp's LlamaFileType); without it, the most common block type."""
    from gguf import LlamaFileType

    try:
        name = LlamaFileType(int(file_type)).name
    except (TypeError, ValueError):
        name = "GUESSED"
    if name != "GUESSED":
        return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    quantized = [kind for kind in tensor_types if kind not in ("F32", "F16", "BF16")]
    return quantized[0] if quantized else next(iter(tensor_types), "unknown")


def require_gguf() -> None:
    """A one-line InputError naming the install command when the gguf package is missing or too old."""
    if find_spec("gguf") is None:
        raise InputError(f"reading GGUF files needs the gguf package, which is not installed: {INSTALL_GGUF}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(part) for part in version("gguf").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return  # a source checkout without metadata: let it try
    if release < MIN_GGUF_VERSION:
        raise InputError(f"gguf {version('gguf')} is too old to read GGUF checkpoints (needs >= 0.10): "
                         f"{INSTALL_GGUF} --upgrade")


# --- the dequantized cache entry ---------------------------------------------------------------------------------

def dequantized_folder(gguf_path: str | os.PathLike, cache_root: str | os.PathLike | None = None,
                       notice: Notice = print_notice) -> Path:
    """The Hugging Face folder of a GGUF checkpoint, dequantized to float32: built once per GGUF content and
    reused; an entry that fails its manifest check is rebuilt after a one-line notice."""
    require_gguf()
    source = find_gguf(gguf_path)
    root = resolve_cache_root(cache_root)
    gguf_metadata(source, root)  # its sizes checked before anything is hashed, built or written in the cache
    digest = file_sha256(source, root)
    entry = root / entry_name(digest)
    if entry.exists() and entry_problem(entry, digest, root) is None:
        return entry
    with _build_lock(root, digest, source, notice):
        if not entry.exists():
            metadata = gguf_metadata(source, root)
            notice(f"dequantizing {source.name} ({metadata['quantization']}, {metadata['architecture']}) to float32 "
                   f"once, into {entry}; later runs load it from there")
            _build_entry(source, digest, entry, root, metadata, notice)
        elif (problem := entry_problem(entry, digest, root)) is not None:  # another process may have fixed it
            notice(f"the cached dequantized model {entry} is unusable ({problem}): rebuilding it from {source.name}")
            _build_entry(source, digest, entry, root, gguf_metadata(source, root), notice)
    return entry


def entry_name(digest: str) -> str:
    """The cache folder of one GGUF content as dequantized by this transformers release. The conversion is
    transformers' code and has changed between releases: Gemma-3-270M converted by transformers 5.17 scores a
    perplexity of 33678 on a sentence that it scores 23.6 once converted by 5.24 (benchmarks/results/
    real_models_gpu.md), so an entry is never reused by another release."""
    return f"{digest}-transformers-{_version('transformers')}"


def entry_problem(entry: Path, digest: str, root: Path) -> Optional[str]:
    """Why a cache entry cannot be used (a short phrase), or None when it is whole: its manifest names this GGUF,
    and every file it lists (the weights, config, tokenizer) is there with the sha256 it records."""
    try:
        manifest = read_json(entry / MANIFEST, what="GGUF cache manifest")
    except InputError:
        return f"{MANIFEST} is missing or unreadable"
    if not isinstance(manifest, dict) or manifest.get("format") != ENTRY_FORMAT:
        return f"{MANIFEST} is of another format"
    if manifest.get("gguf_sha256") != digest:
        return f"{MANIFEST} names another GGUF file"
    files = manifest.get("files")
    if not isinstance(files, dict) or files.get(WEIGHTS) != manifest.get("safetensors_sha256") or \
            "config.json" not in files:
        return f"{MANIFEST} lists no weights or config"
    for name, recorded in files.items():
        file = entry / name
        if Path(name).name != name or not file.is_file():
            return f"{name} is missing"
        if file_sha256(file, root) != recorded:
            return f"{name} does not match the sha256 its manifest records (truncated or altered)"
    return None


class _build_lock:
    """The entry's file lock; says so (once) when another process holds it, then waits for it."""

    def __init__(self, root: Path, digest: str, source: Path, notice: Notice):
        from filelock import FileLock

        self.lock = FileLock(str(root / f"{digest}.lock"))
        self.source, self.notice = source, notice

    def __enter__(self) -> "_build_lock":
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            self.notice(f"waiting for another process that is dequantizing {self.source.name}")
            self.lock.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.lock.release()


def _build_entry(source: Path, digest: str, entry: Path, root: Path, metadata: dict, notice: Notice) -> None:
    """Write the entry in a temporary folder beside it, then rename it into place (called under the lock)."""
    _remove_leftovers(root, digest)
    started = time.perf_counter()
    building = None
    try:
        building = Path(tempfile.mkdtemp(prefix=f".build-{digest[:16]}-", dir=root))
        with _no_transformers_bars():
            tokenizer = _write_dequantized(source, building, notice)
        files = {file.name: hash_file(file) for file in sorted(building.iterdir()) if file.is_file()}
        manifest = {
            "format": ENTRY_FORMAT, "gguf_sha256": digest, "gguf_file": source.name,
            "gguf_size_bytes": source.stat().st_size, "quantization": metadata["quantization"],
            "architecture": metadata["architecture"], "n_layers": metadata["n_layers"], "dtype": "float32",
            "safetensors_sha256": files[WEIGHTS], "tokenizer": tokenizer, "files": files,
            "versions": _versions(), "build_seconds": round(time.perf_counter() - started, 1),
        }
        write_text(building / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        make_readable(building)
        _move_into_place(building, entry, root, digest)
    except Exception as error:  # a full or read-only cache costs this run its model, in one line
        reason = disk_failure(error)
        if reason is None:
            raise
        raise InputError(f"cannot write the dequantized model of {source.name} into {entry}: {reason}; free space "
                         "there, or set SWAPKL_CACHE_DIR to another folder") from None
    finally:
        if building is not None:
            shutil.rmtree(building, ignore_errors=True)
    # The rename kept sizes and mtimes: the first use finds every sha256 in the memo and hashes nothing.
    remember_all(root, {entry / name: {"sha256": file_digest} for name, file_digest in files.items()})


def make_readable(path: Path) -> None:
    """mkdtemp and mkstemp make private paths (0700, 0600); a cache entry gets the modes of any file the user
    writes (the umask's), so other accounts sharing the cache can read it where the umask allows."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _remove_leftovers(root: Path, digest: str) -> None:
    """Folders of builds that were killed: nobody else builds this digest while we hold its lock."""
    for stale in root.glob(f".build-{digest[:16]}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in root.glob(f".trash-{digest[:16]}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _move_into_place(building: Path, entry: Path, root: Path, digest: str) -> None:
    """os.replace cannot put a folder over a non-empty one, so a damaged entry is first renamed aside."""
    trash = None
    if entry.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{digest[:16]}-", dir=root))
        os.replace(entry, trash / "entry")
    os.replace(building, entry)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def _no_transformers_bars() -> Iterator[None]:
    """transformers' own bars (converting, loading, writing shards) off while the entry is built: swapkl's notice
    says what happens, and three bars of carriage returns in a CI log say nothing more."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _write_dequantized(source: Path, folder: Path, notice: Notice) -> bool:
    """Load the GGUF with transformers (dequantizing in float32), save it as a plain checkpoint, and check that
    the saved folder loads back to the same tensors. Returns whether a tokenizer was written."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {_dtype_keyword(): torch.float32, "gguf_file": source.name}
    dequantize = _dequantizing_config()
    if dequantize is not None:
        kwargs["quantization_config"] = dequantize
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), **kwargs)
    except Exception as error:  # unsupported architecture, damaged tensors, missing kernels: all one line
        raise InputError(f"transformers {_version('transformers')} cannot load {source.name} "
                         f"({first_line(error)}): use a GGUF of a supported architecture, or upgrade "
                         "transformers") from error
    _forget_gguf_quantization(model)
    model.save_pretrained(str(folder), max_shard_size="1000GB")  # one model.safetensors, which the manifest hashes
    _check_reloads_identically(model, folder, source)
    return _write_tokenizer(source, folder, notice)


def _dequantizing_config():
    """GgufConfig(dequantize=True) where transformers has it (5.x): with the `kernels` package installed it
    would otherwise keep the weights packed in GGUF blocks, which cannot be saved. Older releases always
    dequantize."""
    try:
        from transformers.utils.quantization_config import GgufConfig
    except ImportError:
        return None
    try:
        return GgufConfig(dequantize=True)
    except TypeError:
        return None


def _forget_gguf_quantization(model) -> None:
    """The weights are plain float32 tensors now, but transformers 5 keeps the GGUF quantizer on the model and
    save_pretrained refuses any model whose quantizer is not serializable. Dropping it (and the config's
    quantization_config, which would send a later from_pretrained back to the GGUF loader) saves a plain model."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attribute, plain in (("is_quantized", False), ("quantization_method", None)):
        if hasattr(model, attribute):
            setattr(model, attribute, plain)
    if "quantization_config" in vars(model.config):
        delattr(model.config, "quantization_config")


def _check_reloads_identically(model, folder: Path, source: Path) -> None:
    """Reload the folder just written and compare every tensor bit for bit (and the tying of the output head):
    the cache must be the GGUF's model, whatever save_pretrained does in this transformers release."""
    import torch
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(str(folder), **{_dtype_keyword(): torch.float32})
    expected, found = model.state_dict(), reloaded.state_dict()
    different = sorted(set(expected) ^ set(found)) or [
        name for name in expected if not torch.equal(expected[name], found[name])]
    tied = _is_tied(model)
    if different or _is_tied(reloaded) != tied:
        what = f"tensor {different[0]}" if different else "the tying of the output head"
        raise InputError(f"transformers {_version('transformers')} saved {source.name} in a form that does not "
                         f"load back the same ({what} differs): report it; try another transformers release")


def _is_tied(model) -> bool:
    output, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    return output is not None and output.weight.data_ptr() == embedding.weight.data_ptr()


def _write_tokenizer(source: Path, folder: Path, notice: Notice) -> bool:
    """The tokenizer transformers builds from the GGUF's metadata, saved as tokenizer.json and friends."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    except Exception as error:  # e.g. no tokenizer metadata, or a tokenizer type transformers cannot build
        notice(f"transformers cannot build a tokenizer from {source.name} ({first_line(error)}): the cached "
               "folder has none; text inputs will need another tokenizer")
        return False
    tokenizer.save_pretrained(str(folder))
    return True


def _dtype_keyword() -> str:
    from packaging.version import Version

    return "torch_dtype" if Version(_version("transformers")).release < (4, 56) else "dtype"  # `dtype` is new in 4.56


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _versions() -> dict:
    return {package: _version(package) for package in ("transformers", "torch", "gguf", "safetensors")}
