"""Load a causal LM and its tokenizer from `demo`, a local checkpoint folder or a hub id (see docs/loading.md).

Safe by default: safetensors weights only (pickle weights need ``allow_pickle``) and no code from the
checkpoint's repository (that needs ``trust_remote_code``). Every failure is a :class:`LoadError` whose
message is one line naming the problem and the fix. Importing this module does not import torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..console import first_line as _first_line
from ..console import print_notice
from .weights import (
    LoadError,
    check_config,
    check_files,
    check_loaded,
    check_size,
    check_tokenizer_files,
    condensed,
    inventory,
    read_header,
    shard_names,
    transformers_log,
)

if TYPE_CHECKING:
    import torch

DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "data" / "demo_model"

SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")  # the pickle names transformers loads
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt", "rng_state")
VOCAB_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "spiece.model",
               "sentencepiece.bpe.model", "sentencepiece.model", "vocab.model", "tekken.json")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
# Encoder families that transformers' causal-LM auto mapping also covers; they are causal only with is_decoder=True.
ENCODER_ONLY_TYPES = frozenset({
    "bert", "bert-generation", "big_bird", "camembert", "data2vec-text", "electra", "ernie", "mega",
    "megatron-bert", "nezha", "qdqbert", "rembert", "roberta", "roberta-prelayernorm", "roc_bert", "roformer",
    "xlm-roberta", "xlm-roberta-xl", "xmod",
})
_OFFLINE_ERRORS = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectError",
                   "ConnectTimeout", "Timeout", "TimeoutException", "ProxyError"}
_OFFLINE_TEXT = ("outgoing traffic has been disabled", "couldn't connect to", "cannot find the requested files",
                 "offline mode")
_COMMIT = re.compile(r"snapshots/([0-9a-f]{40})(?:/|$)")


@dataclass
class LoadedModel:
    model: "torch.nn.Module"  # eval mode, on `device`, in `dtype`
    tokenizer: object | None  # None (after a notice) when the checkpoint has none
    name: str  # the MODEL spec as given
    path: str  # local folder the files were read from
    revision: str | None  # the revision asked for (hub), None for local folders
    commit: str | None  # resolved commit of a hub checkpoint, when known
    architecture: str  # model class name, e.g. 'GPTNeoXForCausalLM'
    n_layers: int  # length of the decoder layer list
    dtype: str  # 'float32' | 'bfloat16' | 'float16'
    device: str  # 'cpu', 'cuda:0', ...
    max_positions: int | None  # max_position_embeddings / n_positions
    vocab_size: int  # output embedding rows
    weights: dict = field(default_factory=dict)  # where the weights came from: {"format": "gguf", "quantization": ...}
    dtype_from: str = "--dtype"  # how `dtype` was chosen: "--dtype" (given) or devices.AUTO_DTYPE_RULE


@dataclass
class _Source:
    spec: str  # as given
    label: str  # how messages name the checkpoint
    where: str  # what from_pretrained gets: a folder or a hub id
    folder: Path  # where the files are (a hub snapshot folder for hub ids)
    hub: bool
    revision: Optional[str] = None  # asked for
    commit: Optional[str] = None  # resolved
    gguf: Optional[dict] = None  # for weights dequantized from a GGUF file: file, sha256, quantization, ...


def load_model(spec: str, *, revision: str | None = None, dtype: str = "auto", device: str = "auto",
               allow_pickle: bool = False, trust_remote_code: bool = False,
               notice: Callable[[str], None] = print_notice, checkpoint: Optional["Checkpoint"] = None,
               gguf_file: Optional[str] = None, device_map: Optional[str] = None,
               device_memory: Optional[str] = None) -> LoadedModel:
    """Load MODEL (`demo`, a checkpoint folder or a hub id `owner/name`) for an audit; see docs/loading.md.

    ``checkpoint``, from `locate_checkpoint` of the same spec and options, is reused: its files are not located
    or checked again, and its config and tokenizer are not read again. ``device_map``/``device_memory``: the model
    placed across devices by accelerate (`inputs/placement.py`) instead of moved to ``device``.
    """
    from .placement import placement_kwargs

    spec = os.fspath(spec)
    placement = placement_kwargs(device_map, device_memory, device)
    torch_device, torch_dtype = _resolve_device_and_dtype(device, dtype)
    source = checkpoint.source if checkpoint is not None else _locate(spec, revision, gguf_file, notice)
    if not source.hub and revision is not None:
        notice(f"--revision {revision} ignored: {source.label} is a local folder")
    located = checkpoint is not None and checkpoint.config is not None
    use_safetensors, held = checkpoint.weights_check if located else _check_weights(source, allow_pickle)
    pinned = source.commit or source.revision  # config, weights and tokenizer all come from one commit
    if located:
        config = checkpoint.config
    else:
        config = _guarded(source, allow_pickle, lambda: _load_config(source, pinned, trust_remote_code))
        _check_causal(config, source.label)
    _guarded(source, allow_pickle, lambda: check_size(config, held, source.label, trust_remote_code))
    model = _guarded(source, allow_pickle, lambda: _load_weights(
        source, pinned, config, torch_dtype, use_safetensors, trust_remote_code, held, notice, placement))
    n_layers = _count_layers(model)
    model = (model if placement else _to_device(model, torch_device, source.label)).eval()
    tokenizer = (checkpoint.tokenizer if checkpoint is not None
                 else _load_tokenizer(source, pinned, trust_remote_code, allow_pickle, notice))
    vocab_size = _vocab_size(model)
    if tokenizer is not None and len(tokenizer) > vocab_size:
        notice(f"the tokenizer of {source.label} has {len(tokenizer)} tokens but the model only {vocab_size} "
               "output rows: text may give token ids the model cannot embed")
    return LoadedModel(
        model=model, tokenizer=tokenizer, name=spec, path=str(source.folder), revision=source.revision,
        commit=source.commit, architecture=type(model).__name__, n_layers=n_layers,
        dtype=str(torch_dtype).removeprefix("torch."), device=_placed(model) if placement else str(torch_device),
        max_positions=_max_positions(model.config), vocab_size=vocab_size,
        weights=dict(source.gguf) if source.gguf else _weights_origin(use_safetensors),
        dtype_from=_dtype_from(dtype),
    )


def _dtype_from(spec: str) -> str:
    from .devices import AUTO_DTYPE_RULE

    return AUTO_DTYPE_RULE if str(spec).strip().lower() == "auto" else "--dtype"


def _weights_origin(use_safetensors: Optional[bool]) -> dict:
    return {"format": "pickle" if use_safetensors is False else "safetensors"}


@dataclass(frozen=True)
class Checkpoint:
    """Where a MODEL's files are, its tokenizer and its limits, without loading the weights (for cache keys)."""

    folder: Path
    commit: Optional[str]
    tokenizer: object | None
    vocab_size: Optional[int]  # from the config; the loaded model's output rows are checked again
    max_positions: Optional[int]
    source: _Source
    n_layers: Optional[int] = None  # num_hidden_layers of the config: what --collect-only names the cases by
    config: object = None  # the config read here, reused by load_model
    weights_check: Optional[tuple] = None  # _check_weights' answer, reused by load_model

    @property
    def fingerprint(self) -> Optional[str]:
        """What identifies the weights when hashing the folder would miss it: the GGUF file's own sha256."""
        return f"gguf:{self.source.gguf['sha256']}" if self.source.gguf else None


def locate_checkpoint(spec: str, *, revision: str | None = None, allow_pickle: bool = False,
                      trust_remote_code: bool = False, notice: Callable[[str], None] = print_notice,
                      gguf_file: Optional[str] = None) -> Checkpoint:
    """Find MODEL's files and read its config and tokenizer: what a cache key and the data need."""
    source = _locate(os.fspath(spec), revision, gguf_file, notice)
    weights_check = _check_weights(source, allow_pickle)  # the model's own problems are named before the data's
    pinned = source.commit or source.revision
    config = _guarded(source, allow_pickle, lambda: _load_config(source, pinned, trust_remote_code))
    _check_causal(config, source.label)
    vocab_size = getattr(_text_config(config), "vocab_size", None)
    tokenizer = _load_tokenizer(source, pinned, trust_remote_code, allow_pickle, notice)
    n_layers = getattr(_text_config(config), "num_hidden_layers", None)
    return Checkpoint(source.folder, source.commit, tokenizer, vocab_size if isinstance(vocab_size, int) else None,
                      _max_positions(config), source, n_layers if isinstance(n_layers, int) else None, config,
                      weights_check)


# --- where the files are ---------------------------------------------------------------------------------

def _resolve_device_and_dtype(device: str, dtype: str):
    from .devices import DeviceError, resolve_device, resolve_dtype

    try:
        torch_device = resolve_device(device)
        return torch_device, resolve_dtype(dtype, torch_device)
    except DeviceError as exc:
        raise LoadError(str(exc)) from exc


def _locate(spec: str, revision: Optional[str], gguf_file: Optional[str] = None,
            notice: Callable[[str], None] = print_notice) -> _Source:
    text = spec.strip()
    if not text:
        raise LoadError("empty model spec: pass demo, a checkpoint folder or a hub id owner/name")
    gguf = _gguf_file(text, gguf_file)
    if gguf is not None:
        return _locate_gguf(spec, gguf, notice)
    if gguf_file is not None:
        raise LoadError(f"--gguf-file {gguf_file} given, but {text} is not a folder of GGUF files: "
                        "pass the folder that holds it, or drop --gguf-file")
    if text == "demo":
        if not (DEMO_MODEL_DIR / "config.json").is_file():
            raise LoadError(f"the bundled demo model is missing ({DEMO_MODEL_DIR}): reinstall pytest-swapkl, "
                            "or pass a checkpoint folder or a hub id")
        return _Source(spec, str(DEMO_MODEL_DIR), str(DEMO_MODEL_DIR), DEMO_MODEL_DIR, hub=False)
    local = Path(os.path.expanduser(text))
    try:
        is_dir, exists = local.is_dir(), local.exists()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise LoadError(f"{text} is not a usable path ({error.strerror}): check the path "
                        "(a hub id is written owner/name)") from None
    if is_dir:
        folder = local.resolve()
        return _Source(spec, text, str(folder), folder, hub=False)
    if exists:
        raise LoadError(f"{text} is a file, not a checkpoint folder: pass the folder that holds config.json "
                        "and the weights")
    if _looks_like_path(text):
        raise LoadError(f"no such folder: {text}{_closest_paths(local)}: check the path (a hub id is written "
                        "owner/name)")
    _refuse_misspelled_name(text)
    return _locate_hub(spec, text, revision)


def _refuse_misspelled_name(text: str) -> None:
    """A bare word close to a named model (or demo) is a typo, said at once: a hub look-up would spend its
    retries and then suggest a download."""
    from difflib import get_close_matches

    from .named_models import NAMED_MODELS

    if "/" in text:
        return  # owner/name: a hub id
    names = [*NAMED_MODELS, "demo"]
    close = get_close_matches(text.lower(), names, n=2, cutoff=0.6)
    if not close and (len(text) < 4 or not any(text.lower() in name for name in names)):
        return  # another bare word (e.g. gpt2) may be a hub id
    close = close or [name for name in names if text.lower() in name][:2]
    raise LoadError(f"unknown model {text!r}: did you mean {' or '.join(close)}? (named models: "
                    f"{', '.join(names)}; `swapkl models` lists them; a hub id is owner/name)")


def _closest_paths(missing: Path) -> str:
    """', did you mean ./ckpt-1?' from the entries of the nearest folder that exists, or nothing."""
    from difflib import get_close_matches

    parent = missing.parent
    try:
        if not parent.is_dir():
            return ""
        entries = [entry.name for _, entry in zip(range(10_000), parent.iterdir())]  # a huge folder: a sample
    except OSError:
        return ""
    close = get_close_matches(missing.name, entries, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(str(parent / name) for name in close)}?)" if close else ""


def _gguf_file(text: str, gguf_file: Optional[str]) -> Optional[Path]:
    """The GGUF file a spec names: a named real model, a .gguf file, or a folder of them without config.json."""
    from . import named_models

    if named_models.is_named(text):
        return named_models.resolve_named(text)
    local = Path(os.path.expanduser(text))
    try:
        is_gguf_file = local.is_file() and local.suffix.lower() == ".gguf"
        is_gguf_folder = local.is_dir() and not (local / "config.json").exists() and any(local.glob("*.gguf"))
    except OSError:
        return None  # _locate names the unusable path
    if not (is_gguf_file or is_gguf_folder):
        return None
    from .gguf import find_gguf

    return find_gguf(local, gguf_file)


def _locate_gguf(spec: str, file: Path, notice: Callable[[str], None]) -> _Source:
    """A GGUF checkpoint is read through its dequantized folder in the user cache (built once)."""
    from .gguf import dequantized_folder, file_sha256, gguf_metadata

    folder = dequantized_folder(file, notice=notice)
    metadata = gguf_metadata(file)
    origin = {"format": "gguf", "file": file.name, "sha256": file_sha256(file),
              "quantization": metadata["quantization"], "architecture": metadata["architecture"],
              "dequantized_to": "float32", "dequantized_folder": str(folder)}
    return _Source(spec, f"{spec} (GGUF {file.name})", str(folder), folder, hub=False, gguf=origin)


def _looks_like_path(text: str) -> bool:
    if text.startswith(("/", "./", "../", "~", ".\\", "..\\")) or text in (".", "..") or "\\" in text:
        return True
    if re.match(r"^[A-Za-z]:", text):  # a Windows drive
        return True
    parts = text.split("/")
    if len(parts) > 2 or "" in parts:  # hub ids have exactly one slash
        return True
    try:
        return len(parts) == 2 and Path(parts[0]).is_dir()  # the path exists partially
    except OSError:  # a name too long to be a folder
        return False


def _locate_hub(spec: str, repo_id: str, revision: Optional[str]) -> _Source:
    from huggingface_hub import hf_hub_download

    source = _Source(spec, repo_id, repo_id, Path(), hub=True, revision=revision)
    try:
        config_file = hf_hub_download(repo_id, "config.json", revision=revision)
    except Exception as exc:
        raise _hub_error(source, exc) from exc
    source.folder = Path(os.path.abspath(os.path.dirname(config_file)))
    match = _COMMIT.search(Path(config_file).as_posix())
    source.commit = match.group(1) if match else None
    return source


def _hub_error(source: _Source, exc: BaseException) -> LoadError:
    repo, revision, names = source.where, source.revision, _exception_names(exc)
    if "GatedRepoError" in names:
        return LoadError(f"{repo} is a gated repository: accept its terms on https://huggingface.co/{repo} and "
                         "log in with `hf auth login`")
    if "RepositoryNotFoundError" in names:
        return LoadError(f"{repo} is not a model repository on the Hugging Face hub (or it is private): check the "
                         "id, log in with `hf auth login`, or pass a local folder")
    if "RevisionNotFoundError" in names:
        return LoadError(f"revision {revision} of {repo} does not exist: pass a branch, tag or commit of it")
    if "HFValidationError" in names:
        return LoadError(f"{repo} is neither a local folder nor a valid hub id: pass a checkpoint folder or a hub "
                         "id owner/name")
    if _is_offline(exc):
        return _not_cached(source)
    if "EntryNotFoundError" in names:
        return LoadError(f"{repo} has no config.json: it is not a transformers checkpoint; pass one that is")
    return LoadError(f"cannot fetch {repo} from the Hugging Face hub: {_first_line(exc)}: check the id and the "
                     "network, or pass a local folder")


def _not_cached(source: _Source) -> LoadError:
    offline = os.environ.get("HF_HUB_OFFLINE", "unset")
    command = f"hf download {source.where}" + (f" --revision {source.revision}" if source.revision else "")
    return LoadError(f"{source.where} is not in the local Hugging Face cache and the hub cannot be reached "
                     f"(HF_HUB_OFFLINE={offline}): download it once with `{command}` or pass a local folder")


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or flag


def _is_offline(exc: BaseException) -> bool:
    text = " ".join(str(e).lower() for e in _exception_chain(exc))
    return bool(_exception_names(exc) & _OFFLINE_ERRORS) or any(t in text for t in _OFFLINE_TEXT)


# --- what the folder holds ---------------------------------------------------------------------------------

def _check_weights(source: _Source, allow_pickle: bool) -> tuple[Optional[bool], Optional[dict]]:
    """The `use_safetensors` argument for from_pretrained, after checking the files we can see, and the tensors
    (name -> shape) the safetensors files hold (None when they are not all at hand, or the weights are pickle).

    A hub snapshot holds only what is cached; online, from_pretrained fetches the rest."""
    folder, label, hub = source.folder, source.label, source.hub
    if os.path.lexists(folder / "config.json"):
        check_files(folder, label)  # a FIFO, a device or a link to one anywhere in a checkpoint folder
    if not hub and not (folder / "config.json").is_file():
        nested = sorted(p.parent.name for p in folder.glob("*/config.json"))
        hint = f" (found one in {Path(label) / nested[0]})" if len(nested) == 1 else ""
        raise LoadError(f"{label} is not a checkpoint folder (no config.json){hint}: pass the folder that holds "
                        "config.json and the weights")
    names = {p.name for p in folder.iterdir() if p.is_file()}
    if any(name in names for name in SAFE_WEIGHTS):
        return (None if allow_pickle else True), inventory(folder, label, hub)
    if hub and not _hub_offline():
        return (None if allow_pickle else True), None
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES) and not n.startswith(NOT_WEIGHTS))
    if pickles and not allow_pickle:
        raise LoadError(f"{label} holds only pickle weights ({', '.join(pickles)}): pass --allow-pickle if you "
                        "trust them, or convert them to safetensors")
    if allow_pickle and any(name in names for name in PICKLE_WEIGHTS):
        return None, None
    if hub:
        raise _not_cached(source)
    found = sorted(n for n in names if n.endswith(".safetensors")) + pickles
    wanted = "model.safetensors" + (" or pytorch_model.bin" if allow_pickle else "")
    listing = f", only {', '.join(found)}" if found else ""
    raise LoadError(f"{label} has config.json but no model weights (no {wanted}{listing}): save the model there "
                    "with save_pretrained, or download its weights")


def _has_vocab_files(folder: Path) -> bool:
    if any((folder / name).is_file() for name in VOCAB_FILES) or any(folder.glob("*.tiktoken")):
        return True
    try:  # a tokenizer that comes with its own code names its files itself
        return "auto_map" in (check_tokenizer_files(folder, str(folder)) or {})
    except LoadError:
        return False  # the checked load below names the problem


# --- transformers --------------------------------------------------------------------------------------

def _load_config(source: _Source, revision: Optional[str], trust_remote_code: bool):
    """config.json, its sizes checked (weights.check_config) before transformers builds anything from it."""
    from transformers import AutoConfig

    if (source.folder / "config.json").is_file():
        check_config(source.folder, source.label)
    return AutoConfig.from_pretrained(source.where, revision=revision, trust_remote_code=bool(trust_remote_code))


def _check_causal(config, label: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", "")
    architectures = list(getattr(config, "architectures", None) or [])
    mapped = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
    mapped = mapped if isinstance(mapped, (list, tuple)) else (mapped,)
    remote_causal = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    what = architectures[0] if architectures else f"{model_type or type(config).__name__} model"

    def refuse(kind: str) -> LoadError:
        return LoadError(f"{label} is a {kind}, not a decoder-only causal language model: swapkl audits causal LMs")

    if getattr(config, "is_encoder_decoder", False):
        raise refuse(what)
    if architectures and not any(a.endswith(CAUSAL_SUFFIXES) or a in mapped for a in architectures):
        raise refuse(what)
    if model_type in ENCODER_ONLY_TYPES and not getattr(config, "is_decoder", False):
        raise refuse(what if architectures else f"{model_type} encoder (is_decoder is false)")
    if mapped == (None,) and not remote_causal:
        raise refuse(what)


def _load_weights(source: _Source, revision, config, torch_dtype, use_safetensors, trust_remote_code,
                  held: Optional[dict], notice: Callable[[str], None], placement: Optional[dict] = None):
    """from_pretrained, its load report caught: a mismatch of weights and config is a one-line LoadError
    (weights.check_loaded), anything else transformers says while loading is one notice."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    # The audit has its own progress bar; transformers' per-checkpoint bar would interleave with the table.
    transformers_logging.disable_progress_bar()
    kwargs = dict(config=config, revision=revision, use_safetensors=use_safetensors,
                  trust_remote_code=bool(trust_remote_code), output_loading_info=True,
                  ignore_mismatched_sizes=True)  # mis-shaped tensors are named by check_loaded, not by a report
    kwargs[_dtype_keyword()] = torch_dtype
    if _transformers_older_than(5) and _has_accelerate():
        kwargs["low_cpu_mem_usage"] = True  # the default from transformers 5 on
    if placement:
        from .placement import pinned_device_map

        kwargs["device_map"] = pinned_device_map(config, torch_dtype, placement["device_map"],
                                                 placement["max_memory"])
    with transformers_log() as said:
        model, info = AutoModelForCausalLM.from_pretrained(source.where, **kwargs)
    check_loaded(info, model, source.label, held)
    line = condensed(said, source.label)
    if line is not None:
        notice(line)
    return model


def _placed(model) -> str:
    from .placement import describe

    return describe(model)


def _to_device(model, device, label: str):
    try:
        return model.to(device)
    except RuntimeError as exc:  # torch.OutOfMemoryError is one
        if "out of memory" not in str(exc).lower():
            raise LoadError(f"cannot move {label} to {device}: {_first_line(exc)}: check the device, or pass "
                            "--device cpu") from exc
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        raise LoadError(f"{label} does not fit on {device} in {dtype} ({_first_line(exc)}): pass a smaller dtype, "
                        "another --device, or a smaller model") from exc


def _dtype_keyword() -> str:
    return "torch_dtype" if _transformers_older_than(4, 56) else "dtype"  # `dtype` is new in 4.56


def _transformers_older_than(*release: int) -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__).release < release


def _has_accelerate() -> bool:
    from importlib.util import find_spec

    return find_spec("accelerate") is not None


def _count_layers(model) -> int:
    from ..engine.adapters import NoLayerListError, find_layer_list

    try:
        owner, attr = find_layer_list(model)
    except NoLayerListError as exc:
        raise LoadError(str(exc)) from exc
    return len(getattr(owner, attr))


def _load_tokenizer(source: _Source, revision, trust_remote_code: bool, allow_pickle: bool, notice):
    from transformers import AutoTokenizer

    none = (f"{source.label} has no tokenizer (no tokenizer.json, tokenizer.model or vocab files): "
            "text data needs one, pre-tokenized .npy/.pt data works without")
    if not source.hub and not _has_vocab_files(source.folder):  # transformers 5 would build an empty one
        notice(none)
        return None
    if source.folder.is_dir():  # a hub snapshot holds what is cached; the hub client fetches the rest
        check_tokenizer_files(source.folder, source.label)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.where, revision=revision,
                                                  trust_remote_code=bool(trust_remote_code))
    except Exception as exc:
        if source.hub and not _has_vocab_files(source.folder):
            notice(none)
            return None
        raise _explain(source, exc, allow_pickle, what="the tokenizer of ") from exc
    if source.hub and not _has_vocab_files(source.folder):  # the hub had none to fetch
        notice(none)
        return None
    return tokenizer


def _vocab_size(model) -> int:
    embeddings = model.get_output_embeddings()
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return int(embeddings.weight.shape[0])
    return int(_text_config(model.config).vocab_size)


def _max_positions(config) -> Optional[int]:
    for cfg in (_text_config(config), config):
        for key in ("max_position_embeddings", "n_positions"):
            value = getattr(cfg, key, None)
            if isinstance(value, int):
                return value
    return None


def _text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


# --- errors --------------------------------------------------------------------------------------------

def _guarded(source: _Source, allow_pickle: bool, step):
    try:
        return step()
    except LoadError:
        raise
    except Exception as exc:
        raise _explain(source, exc, allow_pickle) from exc


def _explain(source: _Source, exc: BaseException, allow_pickle: bool, what: str = "") -> LoadError:
    """One line for an exception from transformers: the problem, then the fix."""
    names, text = _exception_names(exc), " ".join(str(e) for e in _exception_chain(exc))
    if "SafetensorError" in names or "deserializing header" in text:
        files = shard_names(source.folder, source.label, complete=False)
        bad = next((name for name in files if _is_corrupt(source.folder / name)), None)
        where = f"{source.label}: {bad}" if bad else f"a .safetensors file of {source.label}"
        return LoadError(f"{where} is truncated or corrupt: re-download or re-save it")
    if "trust_remote_code" in text:
        return LoadError(f"{source.label} needs code from its repository (auto_map in its config): pass "
                         "--trust-remote-code if you trust the repository")
    if source.hub and (_is_offline(exc) or (_hub_offline() and "does not appear to have a file named" in text)):
        return _not_cached(source)  # offline, transformers says "no such file" for files that are just not cached
    if source.hub and not allow_pickle and "cannot be loaded with `safetensors`" in text:
        return LoadError(f"{source.label} has no safetensors weights (model.safetensors): pass --allow-pickle if "
                         "you trust its pickle weights, or pick a revision with safetensors")
    if "for this kind of AutoModel: AutoModelForCausalLM" in text:
        return LoadError(f"{source.label} is not a decoder-only causal language model ({_first_line(exc)}): "
                         "swapkl audits causal LMs")
    import transformers

    return LoadError(f"cannot load {what}{source.spec}: {_first_line(exc)} ({type(exc).__name__}): check that "
                     f"the checkpoint is complete and that transformers {transformers.__version__} supports it")


def _is_corrupt(path: Path) -> bool:
    try:
        read_header(path, str(path))
    except LoadError:
        return True
    return False


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain and len(chain) < 16:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _exception_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for e in _exception_chain(exc) for cls in type(e).__mro__}


