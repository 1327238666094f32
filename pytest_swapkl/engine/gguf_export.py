"""A (compressed) model written as a GGUF file with the gguf package's own writer, for llama.cpp and transformers.

    write_gguf(model, "pruned.gguf")   # llama, qwen2 and gemma3_text; any other family: GgufExportError, one line

Tensor names come from gguf's own convert tables (``gguf.get_tensor_name_map``: ``model.layers.3.self_attn.q_proj``
-> ``blk.3.attn_q``), the reverse of what transformers' GGUF loader maps back. Llama's query and key rows are
permuted as llama.cpp's convert_hf_to_gguf.py does (transformers' ``LlamaTensorProcessor`` undoes it). Tensors are
written in the model's own dtype (float32 or float16; bfloat16 widened to float32, exactly), so reading the file back
with ``from_pretrained(folder, gguf_file=...)`` gives the same weights and the same numbers. Only what transformers'
loader reads back is written: a config it would not reproduce (sliding-window layers, rope scaling, attention or MLP
biases on llama) is refused rather than silently changed. No tokenizer goes into the file (``tokenizer.ggml.*``);
the saved folder beside it has one. The file is written beside the target and renamed into place.

Gemma 3 (text). The keys of llama.cpp's convert_hf_to_gguf.py (key/value length, sliding window, the full
layers' rope base) and, for readers that read them, the per-layer sliding pattern (``attention.
sliding_window_pattern``, true = sliding) and the sliding layers' rope base (``rope.freq_base_swa``). Norm weights
are written as GGUF Gemma files hold them, ``1 + w`` (Gemma's RMSNorm multiplies by ``1 + w``; transformers'
``Gemma2TensorProcessor`` subtracts the 1), in float32 even in a float16 file (as llama.cpp keeps 1-D tensors), so
``(1 + w) - 1 == w`` for every weight a bfloat16 or float16 checkpoint holds above 2**-16 in magnitude. transformers'
reader maps only the keys above into ``Gemma3TextConfig`` and takes every other setting from its defaults: the layer
pattern rebuilt from the block count (every sixth layer full), the sliding layers' rope base 10000,
``query_pre_attn_scalar`` 256, no soft-capping. So the model's config is compared with the config that reader
rebuilds, and any difference (e.g. a removal that moves a full-attention layer off every sixth slot) is refused
in one line naming the setting: a GGUF that reads back as another model is never written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..safe_files import umask

SUPPORTED = ("llama", "qwen2", "gemma3_text")
# settings that do not change the numbers, or that a GGUF states elsewhere (token ids live in tokenizer.ggml.*)
_NOT_COMPARED = frozenset({"dtype", "torch_dtype", "architectures", "_name_or_path", "transformers_version",
                           "bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "output_attentions",
                           "output_hidden_states", "return_dict"})


class GgufExportError(InputError):
    pass


def gguf_export_problem(config: Any) -> str | None:
    """Why ``config``'s model cannot be written as a GGUF that transformers reads back unchanged, or None."""
    family = getattr(config, "model_type", None)
    if family not in SUPPORTED:
        return (f"GGUF export supports {', '.join(SUPPORTED)}, not {family}; save a folder instead (a --save-pruned "
                "path without .gguf)")
    if family == "gemma3_text":
        return _gemma3_problem(config)
    types = getattr(config, "layer_types", None) or []
    if getattr(config, "use_sliding_window", False) or any(kind != "full_attention" for kind in types):
        return f"this {family} model has sliding-window layers, which a {family} GGUF cannot state; save a folder"
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return f"this {family} model scales its rotary embedding, which the GGUF reader would drop; save a folder"
    if family == "llama" and (getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False)):
        return "this llama model has attention or MLP biases, which the GGUF reader would drop; save a folder"
    return None


def _gemma3_reread(config: Any) -> Any:
    """The Gemma3TextConfig transformers' GGUF reader builds from the keys this writer puts in the file."""
    return type(config)(
        max_position_embeddings=config.max_position_embeddings, num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size, hidden_size=config.hidden_size,
        rope_theta=_rope_bases(config)[0], head_dim=config.head_dim, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads, rms_norm_eps=config.rms_norm_eps,
        sliding_window=config.sliding_window, vocab_size=config.vocab_size,
        tie_word_embeddings=config.tie_word_embeddings)


def _gemma3_problem(config: Any) -> str | None:
    mine, reread = config.to_dict(), _gemma3_reread(config).to_dict()
    # the config class's own settings (what the model reads); extra records such as swapkl_pruning are no setting
    differing = [key for key in sorted(reread) if key not in _NOT_COMPARED and mine.get(key) != reread[key]]
    if not differing:
        return None
    key = differing[0]
    if key == "layer_types":
        shown = "".join("S" if kind == "sliding_attention" else "F" for kind in mine[key])
        return (f"this gemma3 model's sliding (S) and full (F) layers are {shown}, not every sixth layer full, which "
                "is what GGUF readers rebuild from the block count; save a folder")
    return (f"this gemma3 model's {key} is {_short(mine.get(key))}, but the GGUF reader would set "
            f"{_short(reread.get(key))} (it reads no such key); save a folder")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _rope_bases(config: Any) -> tuple[float, float]:
    """The full and sliding layers' rope bases of a Gemma 3 config (transformers 5's rope_parameters per type)."""
    rope = getattr(config, "rope_parameters", None) or {}
    full = rope.get("full_attention", rope)
    sliding = rope.get("sliding_attention", {})
    return (float(full.get("rope_theta", 1_000_000.0)),
            float(sliding.get("rope_theta", getattr(config, "rope_local_base_freq", 10_000.0))))


def write_gguf(model: nn.Module, path: str | Path) -> Path:
    """``model`` as the GGUF file ``path`` (temporary file beside it, renamed into place)."""
    import gguf

    config = model.config
    problem = gguf_export_problem(config)
    if problem:
        raise GgufExportError(problem)
    path = Path(path)
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
            "gemma3_text": gguf.MODEL_ARCH.GEMMA3}[config.model_type]
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(staging, gguf.MODEL_ARCH_NAMES[arch])
        _write_metadata(writer, config)
        half = next(model.parameters()).dtype == torch.float16
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if half else gguf.LlamaFileType.ALL_F32)
        for name, tensor in model.state_dict().items():
            if name == "lm_head.weight" and config.tie_word_embeddings:
                continue  # tied: the reader ties again where output.weight is absent
            target = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if target is None:
                raise GgufExportError(f"GGUF export: no GGUF name for the tensor {name}; save a folder instead")
            writer.add_tensor(target, _as_array(_gemma_norm(config, name, _llama_permuted(config, name, tensor))))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(staging, 0o666 & ~umask())
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
    return path


def _write_metadata(writer: Any, config: Any) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_name("swapkl-compressed")  # transformers reads a name holding "mistral" as mistral: never that
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if config.model_type == "gemma3_text":
        full_base, sliding_base = _rope_bases(config)
        writer.add_rope_freq_base(full_base)
        writer.add_rope_freq_base_swa(sliding_base)
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        writer.add_sliding_window(config.sliding_window)
        writer.add_sliding_window_pattern([kind == "sliding_attention" for kind in config.layer_types])
        return
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    if config.model_type == "llama":
        writer.add_rope_dimension_count(head_dim)


def _gemma_norm(config: Any, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Gemma's norm weights as GGUF Gemma files hold them: 1 + w, in float32 (the reader subtracts the 1)."""
    if config.model_type != "gemma3_text" or not name.endswith("norm.weight"):
        return tensor
    return tensor.float() + 1.0


def _llama_permuted(config: Any, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """llama.cpp's row order of the query and key projections (convert_hf_to_gguf.py's ``permute``)."""
    if config.model_type != "llama" or not name.endswith(("q_proj.weight", "k_proj.weight")):
        return tensor
    heads = config.num_attention_heads if name.endswith("q_proj.weight") else \
        (getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    rows = tensor.shape[0]
    return tensor.reshape(heads, 2, rows // heads // 2, *tensor.shape[1:]).swapaxes(1, 2).reshape(tensor.shape)


def _as_array(tensor: torch.Tensor):
    tensor = tensor.detach().cpu()
    if tensor.dtype not in (torch.float32, torch.float16):
        tensor = tensor.float()  # bfloat16 widened exactly
    return tensor.contiguous().numpy()
