"""Tiny random causal LMs of every supported family, built from configs (no downloads), float32."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM

VOCAB = 97  # prime, so vocabulary chunks of most sizes leave a ragged last chunk

ADAPTED_FAMILIES = ["gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "opt"]
FALLBACK_FAMILIES = ["olmo2", "granite"]
SPECIAL_TOKENS = dict(bos_token_id=0, eos_token_id=0, pad_token_id=1)  # the families' defaults lie outside VOCAB


def family_config(model_type: str, n_layers: int = 4, hidden: int = 32, heads: int = 4, kv_heads: int = 2,
                  max_positions: int = 64):
    """A config of `model_type` at toy size; layer types alternate where the family has them."""
    common = dict(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=heads,
                  intermediate_size=2 * hidden, max_position_embeddings=max_positions, tie_word_embeddings=False,
                  **SPECIAL_TOKENS)
    if model_type == "gpt2":
        return AutoConfig.for_model("gpt2", vocab_size=VOCAB, n_embd=hidden, n_layer=n_layers, n_head=heads,
                                    n_positions=max_positions, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    **SPECIAL_TOKENS)
    if model_type == "opt":
        return AutoConfig.for_model("opt", vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=n_layers,
                                    num_attention_heads=heads, ffn_dim=2 * hidden, word_embed_proj_dim=hidden,
                                    max_position_embeddings=max_positions, dropout=0.0, **SPECIAL_TOKENS)
    if model_type == "gpt_neox":
        return AutoConfig.for_model("gpt_neox", rotary_pct=0.5, **common)
    if model_type in ("gemma2", "gemma3_text"):
        types = ["sliding_attention" if k % 2 == 0 else "full_attention" for k in range(n_layers)]
        extra = dict(num_key_value_heads=kv_heads, head_dim=hidden // heads, sliding_window=5, layer_types=types,
                     final_logit_softcapping=3.0, attn_logit_softcapping=5.0, query_pre_attn_scalar=hidden // heads)
        if model_type == "gemma3_text":
            extra.update(rope_local_base_freq=100.0)
        return AutoConfig.for_model(model_type, **common, **extra)
    if model_type in ("qwen2", "qwen3"):
        types = ["sliding_attention" if k % 2 == 0 else "full_attention" for k in range(n_layers)]
        return AutoConfig.for_model(model_type, num_key_value_heads=kv_heads, use_sliding_window=True,
                                    sliding_window=5, max_window_layers=0, layer_types=types, **common)
    if model_type == "mistral":
        return AutoConfig.for_model("mistral", num_key_value_heads=kv_heads, sliding_window=5, **common)
    if model_type == "granite":
        return AutoConfig.for_model("granite", num_key_value_heads=kv_heads, embedding_multiplier=2.0,
                                    logits_scaling=4.0, residual_multiplier=0.5, attention_multiplier=0.2, **common)
    return AutoConfig.for_model(model_type, num_key_value_heads=kv_heads, **common)


def tiny_model(model_type: str, seed: int = 0, **sizes) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = family_config(model_type, **sizes)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    _spread_weights(model, seed)
    return model.eval()


def _spread_weights(model: torch.nn.Module, seed: int) -> None:
    """Default inits are so small that every layer is nearly the identity; widen them so probes differ."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2:
                param.normal_(0.0, 0.15, generator=generator)
            elif "norm" in name or "ln" in name:
                param.normal_(1.0, 0.1, generator=generator)
            else:
                param.normal_(0.0, 0.05, generator=generator)


def random_ids(n_sequences: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(2, VOCAB, (n_sequences, seq_len), generator=generator)
