"""A checkpoint folder's files, checked before transformers reads them, and its weights checked against its config.

- Every file in the folder is a regular file: a FIFO, or a link to /dev/zero, named like a tokenizer or
  weights file would hang transformers or feed it without end.
- config.json is read by the guarded JSON reader, and every number in it that sizes the model (layers,
  widths, heads, vocabulary, positions) is a whole number from 1 to its cap in `limits`.
- model.safetensors.index.json names only files inside the checkpoint folder: no `../`, no absolute path.
- Each .safetensors header is at most 100 MB (safetensors' own limit) and every tensor's shape and byte
  range agree with its dtype and with the file's size; the headers give the names and shapes the files hold.
- Before loading: the model config.json describes, built on the meta device (nothing allocated), must not
  need far more numbers than the files hold, nor buffers (causal masks, position tables, sized by the position
  count) over MAX_BUFFER_BYTES, so no config makes `from_pretrained` allocate what is not there.
- Tokenizer files are read by `tokenizers` and transformers, so each is capped in size before they open it, and
  tokenizer_config.json is read by the guarded JSON reader (`check_tokenizer_files`).
- After loading: missing, unexpected and mis-shaped tensors are one-line errors naming the first few
  (a config.json that says 2 layers next to weights of 4 fails here).
- transformers' multi-line load report is caught (`transformers_log`) and condensed into one notice.

Imports no torch at module level.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
import struct
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional

from ..errors import InputError
from ..limits import (
    MAX_BUFFER_BYTES,
    MAX_HEADS,
    MAX_JSON_BYTES,
    MAX_LAYERS,
    MAX_POSITIONS,
    MAX_SAFETENSORS_HEADER,
    MAX_SHARDS,
    MAX_TOKENIZER_BYTES,
    MAX_VOCAB,
    MAX_WIDTH,
)
from ..safe_files import UnreadableFile, file_kind, open_input
from ..safe_json import JsonError, parse_json, read_json

Inventory = dict[str, tuple[int, ...]]  # tensor name -> shape, as the weights files' headers state them

# config.json keys that size the model, and their caps. None is allowed where transformers takes it as "derived".
SIZE_KEYS = {
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "n_layers"), (MAX_LAYERS, "layers")),
    **dict.fromkeys(("hidden_size", "n_embd", "d_model", "intermediate_size", "ffn_dim", "n_inner", "head_dim",
                     "word_embed_proj_dim"), (MAX_WIDTH, "a width")),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_key_value_heads"), (MAX_HEADS, "attention heads")),
    "vocab_size": (MAX_VOCAB, "vocabulary rows"),
    **dict.fromkeys(("max_position_embeddings", "n_positions"), (MAX_POSITIONS, "positions")),
}
EXTRA_NUMBERS = 1 << 24  # the meta model may need this many numbers more than the files hold (then: named below)
SHOWN = 3  # tensors named in a message
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
                "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h|layer|blocks)\.(\d{1,6})\.")


class LoadError(InputError):
    """A checkpoint that cannot be loaded. The message is one line: the problem, then the fix."""

    def __init__(self, message: str):
        super().__init__(re.sub(r"\s*[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*", " ", str(message)).strip())


# --- the folder's files ----------------------------------------------------------------------------------

def check_files(folder: Path, label: str) -> None:
    """Every file in the checkpoint folder (links followed: hub snapshots are links) is a regular file."""
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        raise LoadError(f"cannot list {label} ({error.strerror or error}): check its permissions") from None
    for entry in entries:
        try:
            mode = os.stat(entry.path).st_mode
        except OSError:
            continue  # a dangling link: the file it should be is reported missing where it is needed
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise LoadError(f"{Path(label) / entry.name} is {file_kind(mode)}, not a regular file (reading it would "
                            "block or never end): replace it with the real file")


def check_config(folder: Path, label: str) -> dict:
    """config.json, read safely, with every number that sizes the model checked against its cap."""
    path = folder / "config.json"
    fix = "fix config.json, or re-save the checkpoint with save_pretrained"
    try:
        config = read_json(path, what="config.json", max_bytes=MAX_JSON_BYTES, fix=fix)
        with open_input(path, what="config.json", max_bytes=MAX_JSON_BYTES, fix=fix) as stream:
            bom = stream.read(3) == b"\xef\xbb\xbf"
    except (JsonError, UnreadableFile) as error:
        raise LoadError(str(error)) from None
    if bom:  # our JSON readers take it; transformers' does not
        raise LoadError(f"{path}: config.json starts with a UTF-8 byte-order mark, which transformers cannot read; "
                        "save it without one (or re-save the checkpoint with save_pretrained)")
    if not isinstance(config, dict):
        raise LoadError(f"{path}: config.json holds a {type(config).__name__}, not an object; {fix}")
    _check_sizes(config, path, fix)
    _check_rope(config, path, fix)
    return config


# Rotary-embedding numbers that must be positive where given (a base, a scaling factor, a frequency bound); transformers
# takes any of them and ends in NaN logits or "math domain error", naming no key.
ROPE_POSITIVE = ("rope_theta", "rope_local_base_freq", "factor", "original_max_position_embeddings",
                 "beta_fast", "beta_slow", "low_freq_factor", "high_freq_factor", "attention_factor", "base")


def _check_rope(config: dict, path: Path, fix: str, depth: int = 0) -> None:
    """Rotary parameters (top level, `rope_scaling`/`rope_parameters`, per attention type inside them, in nested
    *_config objects) finite, positive where they must be, and partial_rotary_factor in (0, 1]."""
    for key, value in config.items():
        if isinstance(value, dict) and depth < 4 and (key.endswith("_config") or key.startswith("rope")
                                                      or depth > 0 and key.endswith("attention")):
            _check_rope(value, path, fix, depth + 1)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        positive = key in ROPE_POSITIVE and (key.startswith("rope") or depth > 0)
        fraction = key == "partial_rotary_factor"
        if (positive or fraction) and not (math.isfinite(value) and value > 0 and (not fraction or value <= 1)):
            need = "a number in (0, 1]" if fraction else "a finite number above 0"
            raise LoadError(f"{path}: {key}={value!r} must be {need} (a rotary-embedding parameter); {fix}")


def _check_sizes(config: dict, path: Path, fix: str, depth: int = 0) -> None:
    for key, value in config.items():
        if isinstance(value, dict) and key.endswith("_config") and depth < 4:  # text_config, vision_config, ...
            _check_sizes(value, path, fix, depth + 1)
        if key not in SIZE_KEYS or value is None:
            continue
        cap, what = SIZE_KEYS[key]
        for item in value if isinstance(value, list) else [value]:  # a few configs give one value per layer
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= cap:
                shown = repr(item) if len(repr(item)) <= 40 else repr(item)[:30] + "..."
                raise LoadError(f"{path}: {key}={shown} is not a whole number of {what} from 1 to {cap}; {fix}")


# Tokenizer files that tokenizers/transformers read whole; the JSON ones among them go through our reader first.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "spiece.model",
                   "sentencepiece.bpe.model", "sentencepiece.model", "vocab.model", "tekken.json",
                   "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.json")
SMALL_TOKENIZER_JSON = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.json")


def check_tokenizer_files(folder: Path, label: str) -> Optional[dict]:
    """Every tokenizer file present is a regular file within MAX_TOKENIZER_BYTES (tokenizers reads it whole), and
    the small JSON ones parse with the guarded reader (size, depth, UTF-8). Returns tokenizer_config.json's object
    (or None when there is none)."""
    fix = "re-download or re-save the tokenizer"
    found = [folder / name for name in TOKENIZER_FILES] + sorted(folder.glob("*.tiktoken"))
    config = None
    for path in (path for path in found if os.path.lexists(path)):
        where = Path(label) / path.name
        try:
            with open_input(path, what="tokenizer file", max_bytes=MAX_TOKENIZER_BYTES, fix=fix):
                pass
            if path.name in SMALL_TOKENIZER_JSON:
                value = read_json(path, what=path.name, max_bytes=MAX_JSON_BYTES, fix=fix)
                config = value if path.name == "tokenizer_config.json" and isinstance(value, dict) else config
        except (UnreadableFile, JsonError) as error:
            raise LoadError(str(error).replace(str(path), str(where), 1)) from None
    return config


def shard_names(folder: Path, label: str, complete: bool = True) -> list[str]:
    """The checkpoint's .safetensors files that are present (those named by the index, when sharded). Index
    entries must stay inside the folder. `complete`: every shard must be there (a hub snapshot fetches later)."""
    if (folder / "model.safetensors").is_file():
        return ["model.safetensors"]
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return []
    shards = _index_shards(index)
    missing = [name for name in shards if not (folder / name).is_file()]
    if missing and complete:
        raise LoadError(f"{folder / missing[0]} is missing (model.safetensors.index.json names it): re-download "
                        "or re-save the checkpoint")
    return [name for name in shards if (folder / name).is_file()]


def _index_shards(index: Path) -> list[str]:
    """The files a shard index names, each a path inside the checkpoint folder."""
    fix = "re-download or re-save it"
    try:
        weight_map = read_json(index, what="shard index", max_bytes=MAX_JSON_BYTES, fix=fix)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (JsonError, KeyError, TypeError, AttributeError):
        raise LoadError(f"{index} is truncated or corrupt: {fix}") from None
    if not all(isinstance(name, str) for name in shards) or len(shards) > MAX_SHARDS:
        raise LoadError(f"{index} is truncated or corrupt: {fix}")
    for name in shards:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not parts or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise LoadError(f"{index} names the weights file {name!r}, outside the checkpoint folder: refused (a "
                            "checkpoint reads only its own files); re-download or re-save the checkpoint")
    return shards


def read_header(path: Path, label: str) -> Inventory:
    """The tensors a .safetensors file holds (name -> shape): an 8-byte header length, a JSON header of at most
    100 MB, then exactly the bytes the header names, each tensor's range matching its dtype and shape."""
    corrupt = LoadError(f"{label} is truncated or corrupt: re-download or re-save it")
    try:
        with open_input(path, what="weights file", max_bytes=1 << 62, fix="re-download or re-save it") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            header_len = struct.unpack("<Q", head)[0] if len(head) == 8 else size
            if header_len > min(size - 8, MAX_SAFETENSORS_HEADER):
                raise corrupt
            header = parse_json(handle.read(header_len).decode("utf-8"), str(path))
    except UnreadableFile as error:
        raise LoadError(str(error)) from None
    except (OSError, ValueError, UnicodeDecodeError, InputError):
        raise corrupt from None
    if not isinstance(header, dict):
        raise corrupt
    inventory, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (start, stop) = tuple(entry["shape"]), entry["data_offsets"]
            width = _DTYPE_BYTES.get(entry["dtype"])
            valid = all(type(n) is int and n >= 0 for n in (*shape, start, stop)) and start <= stop
        except (KeyError, TypeError, ValueError):
            raise corrupt from None
        if not valid or (width is not None and (stop - start) != math.prod(shape) * width):
            raise corrupt
        inventory[name] = shape
        end = max(end, stop)
    if 8 + header_len + end != size:
        raise corrupt
    return inventory


def inventory(folder: Path, label: str, hub: bool) -> Optional[Inventory]:
    """Name -> shape of every tensor in the checkpoint's safetensors files; None when some are not at hand."""
    names = shard_names(folder, label, complete=not hub)
    found: Inventory = {}
    for name in names:
        found.update(read_header(folder / name, f"{label}: {name}" if hub else str(Path(label) / name)))
    index = folder / "model.safetensors.index.json"
    if hub and index.is_file() and not (folder / "model.safetensors").is_file() and names != _index_shards(index):
        return None  # some shards are not fetched yet
    return found if names else None


# --- the weights against the config ----------------------------------------------------------------------

def check_size(config: Any, held: Optional[Inventory], label: str, trust_remote_code: bool,
               described_by: str = "config.json",
               fix: str = "use the config.json saved with them, or re-save the checkpoint") -> None:
    """Before loading: the model config.json describes, built on the meta device (nothing allocated), must need at
    most what the files hold (plus a little, which the check after loading names tensor by tensor), and its buffers
    (causal masks, position tables: never in the files, sized by the position count) at most MAX_BUFFER_BYTES."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=bool(trust_remote_code))
    buffers = sum(buffer.numel() * buffer.element_size() for buffer in model.buffers())
    if buffers > MAX_BUFFER_BYTES:
        positions = _max_positions_said(config)
        raise LoadError(f"{label}: {described_by} describes a {type(model).__name__} whose buffers (causal masks, "
                        f"position tables) alone take {buffers:,} bytes, over the {MAX_BUFFER_BYTES:,} byte limit"
                        f"{positions}: lower the position count in {described_by}")
    if held is None:
        return
    needed = sum(parameter.numel() for parameter in model.parameters())
    stored = sum(math.prod(shape) for shape in held.values())
    if needed > 2 * stored + EXTRA_NUMBERS:
        raise LoadError(f"{label}: {described_by} describes a {type(model).__name__} of {needed:,} weights, but the "
                        f"weights files hold only {stored:,} numbers{_layer_hint(config, held)}: {described_by} does "
                        f"not belong to these weights; {fix}")


def _max_positions_said(config: Any) -> str:
    """' (max_position_embeddings=67108864)', or '' when the config names no position count."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("n_positions", "max_position_embeddings", "seq_length"):
        if isinstance(getattr(text, key, None), int):
            return f" ({key}={getattr(text, key)})"
    return ""


def check_loaded(info: dict, model: Any, label: str, held: Optional[Inventory]) -> None:
    """After loading: no tensor missing, none left over, none of another shape than the model has."""
    kind = type(model).__name__
    missing = sorted(str(key) for key in info.get("missing_keys") or ())
    unexpected = sorted(str(key) for key in info.get("unexpected_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda item: str(item[0]))
    hint = _layer_hint(model.config, held) or ""
    fix = "the weights do not match config.json; use the config.json saved with them, or re-save the checkpoint"
    if missing:
        raise LoadError(f"{label} lacks weights for {len(missing)} tensor(s) of {kind} (e.g. {_first(missing)})"
                        f"{hint}: {fix}")
    if unexpected:
        raise LoadError(f"{label} holds {len(unexpected)} tensor(s) that config.json's {kind} has no place for "
                        f"(e.g. {_first(unexpected)}){hint}: {fix}")
    if mismatched:
        shown = ", ".join(f"{name}: {list(found)} in the file, {list(wanted)} in the model"
                          for name, found, wanted in (_triple(item) for item in mismatched[:SHOWN]))
        raise LoadError(f"{label} holds {len(mismatched)} tensor(s) of another shape than config.json gives "
                        f"{kind} ({shown}): {fix}")


def _triple(item: Any) -> tuple[str, Any, Any]:
    name, *shapes = item if isinstance(item, (tuple, list)) else (item,)
    found, wanted = (shapes + ["?", "?"])[:2]
    return str(name), found, wanted


def _first(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f", and {more} more" if more > 0 else "")


def _layer_hint(config: Any, held: Optional[Inventory]) -> str:
    """', config.json says 2 layers but the weights have 4' where the two disagree."""
    if not held:
        return ""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    said = next((getattr(text, key) for key in ("num_hidden_layers", "n_layer", "num_layers")
                 if isinstance(getattr(text, key, None), int)), None)
    indices = [int(match.group(1)) for name in held if (match := _LAYER_INDEX.search(name))]
    found = max(indices) + 1 if indices else None
    if said is None or found is None or said == found:
        return ""
    return f" (config.json says {said} layers, the weights have {found})"


# --- transformers' own log --------------------------------------------------------------------------------

class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.into.append(record.getMessage())
        except Exception:  # a record that cannot even format itself is not worth a crash
            self.into.append(str(record.msg))


@contextmanager
def transformers_log() -> Iterator[list[str]]:
    """Collect what transformers logs (its multi-line load report among it) instead of printing it."""
    root = logging.getLogger("transformers")
    collected: list[str] = []
    handlers, propagate = root.handlers[:], root.propagate
    root.handlers, root.propagate = [_Collect(collected)], False
    try:
        yield collected
    finally:
        root.handlers, root.propagate = handlers, propagate


def condensed(messages: list[str], label: str) -> Optional[str]:
    """One notice for all transformers said while loading `label`, or None when it said nothing."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for message in messages for line in message.splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("-+| ")]
    if not lines:
        return None
    more = f" (+{len(lines) - 1} more line(s))" if len(lines) > 1 else ""
    first = lines[0] if len(lines[0]) <= 200 else lines[0][:197] + "..."
    return f"transformers, loading {label}: {first}{more}"
