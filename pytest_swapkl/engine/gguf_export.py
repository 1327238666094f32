"""A (compressed) model written as a GGUF file with the gguf package's own writer, for llama.cpp and transformers.

    write_gguf(model, "pruned.gguf")   # llama and qwen2; any other family: GgufExportError, one line

Tensor names come from gguf's own convert tables (``gguf.get_tensor_name_map``: ``model.layers.3.self_attn.q_proj``
-> ``blk.3.attn_q``), the reverse of what transformers' GGUF loader maps back. Llama's query and key rows are
permuted as llama.cpp's convert_hf_to_gguf.py does (transformers' ``LlamaTensorProcessor`` undoes it). Tensors are
written in the model's own dtype (float32 or float16; bfloat16 widened to float32, exactly), so reading the file back
with ``from_pretrained(folder, gguf_file=...)`` gives the same weights and the same numbers. Only what transformers'
loader reads back is written: a config it would not reproduce (sliding-window layers, rope scaling, attention or MLP
biases on llama) is refused rather than silently changed. No tokenizer goes into the file (``tokenizer.ggml.*``);
the saved folder beside it has one. The file is written beside the target and renamed into place.
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

SUPPORTED = ("llama", "qwen2")


class GgufExportError(InputError):
    pass


def gguf_export_problem(config: Any) -> str | None:
    """Why ``config``'s model cannot be written as a GGUF that transformers reads back unchanged, or None."""
    family = getattr(config, "model_type", None)
    if family not in SUPPORTED:
        return (f"GGUF export supports {', '.join(SUPPORTED)}, not {family}; save a folder instead (a --save-pruned "
                "path without .gguf)")
    types = getattr(config, "layer_types", None) or []
    if getattr(config, "use_sliding_window", False) or any(kind != "full_attention" for kind in types):
        return f"this {family} model has sliding-window layers, which a {family} GGUF cannot state; save a folder"
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return f"this {family} model scales its rotary embedding, which the GGUF reader would drop; save a folder"
    if family == "llama" and (getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False)):
        return "this llama model has attention or MLP biases, which the GGUF reader would drop; save a folder"
    return None


def write_gguf(model: nn.Module, path: str | Path) -> Path:
    """``model`` as the GGUF file ``path`` (temporary file beside it, renamed into place)."""
    import gguf

    config = model.config
    problem = gguf_export_problem(config)
    if problem:
        raise GgufExportError(problem)
    path = Path(path)
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[config.model_type]
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
            writer.add_tensor(target, _as_array(_llama_permuted(config, name, tensor)))
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
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_vocab_size(config.vocab_size)
    if config.model_type == "llama":
        writer.add_rope_dimension_count(head_dim)



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
