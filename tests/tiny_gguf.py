"""A tiny llama GGUF written with gguf's GGUFWriter (2 layers, hidden 64, a 262-token byte-level BPE vocabulary,
Q8_0 matrices, tied output head): the GGUF tests and the file fuzzer write it, no download needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]




def byte_level_tokens() -> list[str]:
    """GPT-2's printable spelling of the 256 bytes, in byte order (what a byte-level BPE vocabulary starts with)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    spelled, extra = {b: chr(b) for b in printable}, 0
    for byte in range(256):
        if byte not in spelled:
            spelled[byte], extra = chr(256 + extra), extra + 1
    return [spelled[byte] for byte in range(256)]


def permute_for_gguf(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q/k projections (transformers' GGUF loader undoes it)."""
    grouped = weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
    return grouped.swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(path: Path, *, n_layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                    ffn: int = 128, quantized: bool = True, seed: int = 0, claims: dict | None = None) -> Path:
    """A random llama GGUF that transformers loads: the config keys its GGUF loader maps, a byte-level BPE
    tokenizer in the metadata (the loader requires one), no output.weight (so the head is tied).
    `claims`: metadata numbers that lie about the tensors (block_count, context_length, embedding_length,
    feed_forward_length, head_count), as a crafted file would."""
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType
    from gguf.quants import quantize

    rng = np.random.default_rng(seed)
    tokens = byte_level_tokens() + [merge.replace(" ", "") for merge in MERGES] + ["<|endoftext|>"]
    head_dim = hidden // heads
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama")
    said = {"block_count": n_layers, "context_length": 64, "embedding_length": hidden, "feed_forward_length": ffn,
            "head_count": heads, **(claims or {})}
    writer.add_block_count(said["block_count"])
    writer.add_context_length(said["context_length"])
    writer.add_embedding_length(said["embedding_length"])
    writer.add_feed_forward_length(said["feed_forward_length"])
    writer.add_head_count(said["head_count"])
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(LlamaFileType.MOSTLY_Q8_0 if quantized else LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_merges(MERGES)
    writer.add_token_types([TokenType.NORMAL] * (len(tokens) - 1) + [TokenType.CONTROL])
    writer.add_bos_token_id(len(tokens) - 1)
    writer.add_eos_token_id(len(tokens) - 1)

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (0.1 * rng.standard_normal((rows, cols))).astype(np.float32)

    def norm() -> np.ndarray:
        return (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)

    def add(name: str, array: np.ndarray) -> None:
        if quantized and array.ndim == 2:
            writer.add_tensor(name, quantize(array, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array)

    add("token_embd.weight", matrix(len(tokens), hidden))
    for layer in range(n_layers):
        add(f"blk.{layer}.attn_norm.weight", norm())
        add(f"blk.{layer}.attn_q.weight", permute_for_gguf(matrix(hidden, hidden), heads))
        add(f"blk.{layer}.attn_k.weight", permute_for_gguf(matrix(kv_heads * head_dim, hidden), kv_heads))
        add(f"blk.{layer}.attn_v.weight", matrix(kv_heads * head_dim, hidden))
        add(f"blk.{layer}.attn_output.weight", matrix(hidden, hidden))
        add(f"blk.{layer}.ffn_norm.weight", norm())
        add(f"blk.{layer}.ffn_gate.weight", matrix(ffn, hidden))
        add(f"blk.{layer}.ffn_up.weight", matrix(ffn, hidden))
        add(f"blk.{layer}.ffn_down.weight", matrix(hidden, ffn))
    add("output_norm.weight", norm())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
