"""The paper's own forward and KL code (Gpgabriel25/ProtocolGapDiagnostic), imported unchanged from a checkout.

What had to change to run it here, and nothing else:
- weight loading is pointed at a local checkpoint folder: the modules' `hf_hub_download` / `snapshot_download`
  names are replaced by functions that return the folder's files (no hub);
- `scaling_bisimulation.round` is the identity, so the six-decimal rounding of the reported means does not hide
  differences below 1e-6 (the script rounds for its Markdown report);
- `scaling_bisimulation.get_layers` cannot find a Llama model's layers; `compute_pair_distance` takes the layer
  list as an argument, so it is passed `model.model.layers` (the function itself is unchanged);
- the JAX scripts' TPU environment variables are set by the scripts with setdefault and are harmless on CPU.

Each function returns, per pair (i, j), the KL of: interchange (the JAX scripts), slot i running layer j ("ji", the
paper's replacement a <- b) and slot j running layer i ("ij"): per prompt as float64 arrays from the JAX scripts, the
script's own means from the torch script (it measures no interchange).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def load_script(paper: Path, name: str) -> Any:
    """Import one of the paper's scripts as a module, unchanged."""
    spec = importlib.util.spec_from_file_location(f"paper_{name}", paper / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def local_downloads(folder: Path):
    """`hf_hub_download` / `snapshot_download` stand-ins that answer from a local folder."""
    def hf_hub_download(repo_id: str = "", filename: str = "", **_: Any) -> str:
        path = folder / filename
        if not path.exists():
            raise FileNotFoundError(path)
        return str(path)

    def snapshot_download(*_: Any, **__: Any) -> str:
        return str(folder)

    return hf_hub_download, snapshot_download


# ---------------------------------------------------------------------------------------------- last token (torch)

def last_token(paper: Path, folder: Path, prompts_ids: list[list[int]], pairs: list[tuple[int, int]]) -> dict:
    """scaling_bisimulation.py: each prompt unpadded, the last position's next-token KL, both replacement
    directions. Its functions take text; here each "prompt" is handed over as ids through a tokenizer stand-in
    that returns the ids the tool reads, so both sides see the same tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    script = load_script(paper, "scaling_bisimulation")
    script.DEVICE = "cpu"
    script.round = lambda value, digits=None: value  # keep every digit (see the module docstring)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    layers = _layer_list(model)
    tokenizer = _IdsTokenizer(prompts_ids)
    keys = list(range(len(prompts_ids)))
    log = _quiet_log()
    baselines = script.compute_baseline_logits(model, tokenizer, keys, 10**9, log)
    found = {}
    for i, j in pairs:
        result = script.compute_pair_distance(model, tokenizer, i, j, keys, baselines, layers, 10**9)
        # dir0 overwrites slot i with layer j (the paper's a <- b), dir1 slot j with layer i; mean_kl their max
        found[(i, j)] = {"ji": result["dir0"]["mean_kl"], "ij": result["dir1"]["mean_kl"], "max": result["mean_kl"]}
    return found


class _IdsTokenizer:
    """Answers `tokenizer(prompt, return_tensors="pt", ...)` with the ids of prompt number `prompt`."""

    def __init__(self, prompts_ids: list[list[int]]):
        self.prompts_ids = prompts_ids

    def __call__(self, key: int, return_tensors: str = "pt", **_: Any) -> "_Batch":
        import torch

        ids = torch.tensor([self.prompts_ids[key]])
        return _Batch(input_ids=ids, attention_mask=torch.ones_like(ids))


class _Batch(dict):
    def to(self, device: str) -> "_Batch":
        return self


def _layer_list(model: Any) -> Any:
    if hasattr(model, "gpt_neox"):
        return model.gpt_neox.layers
    return model.model.layers


def _quiet_log() -> Any:
    import logging

    log = logging.getLogger("paper")
    log.setLevel(logging.WARNING)
    return log


# ------------------------------------------------------------------------------------ JAX forwards, padded prompts

def jax_forward(paper: Path, folder: Path, model_type: str, seq_len: int):
    """The paper's JAX forward for the model type: GPT-NeoX from the trajectory script, Llama from the Llama script.
    Returns ``run(ids, order)``: float32 logits of the padded batch ``ids`` with slot s running layer order[s]."""
    import jax.numpy as jnp

    hub, snapshot = local_downloads(folder)
    if model_type == "gpt_neox":
        script = load_script(paper, "tpu_pythia_protocol_gap_trajectory")
        script.hf_hub_download = hub
        arch, weights, wte, ln_f_w, ln_f_b, lm_head, lm_head_b = script.load_pythia_weights(
            str(folder), None, jnp.float32, None)
        forward = script.build_forward(arch)
        cos, sin = script.precompute_rope(seq_len, int(arch["rotary_ndims"]), jnp.float32)
        n_layers = int(arch["n_layers"])

        def run(ids: np.ndarray, order: list[int]) -> Any:
            # the script's modes cover the base (0), an interchange (1) and slot a running layer b (2)
            a, b, mode = _mode_of(order, n_layers)
            return forward(jnp.asarray(ids, dtype=jnp.int32), weights, wte, ln_f_w, ln_f_b, lm_head, lm_head_b,
                           cos, sin, jnp.int32(a), jnp.int32(b), jnp.int32(mode))
        return run, script
    if model_type == "llama":
        script = load_script(paper, "tpu_llama_bisimulation")
        script.snapshot_download = snapshot
        lw, embed, final_norm, lm_head, _ = script.load_and_stack(str(folder), dtype=jnp.float32)
        _, _, forward_swap = script.build_model(script._ARCH, seq_len)
        cos, sin = script.precompute_rope(seq_len, script._ARCH["head_dim"], script._ARCH["rope_theta"], jnp.float32)

        def run(ids: np.ndarray, order: list[int]) -> Any:
            return forward_swap(jnp.asarray(ids, dtype=jnp.int32), lw, embed, final_norm, lm_head, cos, sin,
                                jnp.asarray(order, dtype=jnp.int32))
        return run, script
    raise SystemExit(f"no paper JAX forward for model type {model_type!r} (gpt_neox and llama have one)")


def _mode_of(order: list[int], n_layers: int) -> tuple[int, int, int]:
    moved = [slot for slot in range(n_layers) if order[slot] != slot]
    if not moved:
        return 0, 0, 0
    if len(moved) == 2 and order[moved[0]] == moved[1] and order[moved[1]] == moved[0]:
        return moved[0], moved[1], 1
    if len(moved) == 1:
        return moved[0], order[moved[0]], 2
    raise ValueError(f"the trajectory script's forward has no mode for order {order}")


def orders(n_layers: int, i: int, j: int) -> dict[str, list[int]]:
    base = list(range(n_layers))
    interchange = base.copy()
    interchange[i], interchange[j] = j, i
    ji, ij = base.copy(), base.copy()
    ji[i] = j  # slot i runs layer j: the paper's replacement a <- b
    ij[j] = i
    return {"interchange": interchange, "ji": ji, "ij": ij}


def masked_mean(paper: Path, run: Any, ids: np.ndarray, mask: np.ndarray, n_layers: int,
                pairs: list[tuple[int, int]]) -> dict:
    """qwen3_8b_tpu.py's `kl_per_prompt`: KL averaged over each prompt's real tokens (its mask)."""
    import jax.numpy as jnp

    kl = load_script(paper, "qwen3_8b_tpu").kl_per_prompt
    base = run(ids, list(range(n_layers)))
    found = {}
    for i, j in pairs:
        found[(i, j)] = {name: np.asarray(kl(base, run(ids, order), jnp.asarray(mask)), dtype=np.float64)
                         for name, order in orders(n_layers, i, j).items()}
    return found


def every_position(script: Any, run: Any, ids: np.ndarray, n_layers: int, pairs: list[tuple[int, int]]) -> dict:
    """The trajectory script's `kl_per_prompt` (every position, pads included) where the script has one; the
    Llama script's `_batched_kl` (one mean over every token of the batch) otherwise, as one value per batch."""
    import jax
    import jax.numpy as jnp

    base = run(ids, list(range(n_layers)))
    found = {}
    for i, j in pairs:
        found[(i, j)] = {}
        for name, order in orders(n_layers, i, j).items():
            if hasattr(script, "kl_per_prompt"):
                value = script.kl_per_prompt(base, run(ids, order))
            else:
                base_lp = jax.nn.log_softmax(base.astype(jnp.float32), axis=-1)
                value = [script._batched_kl(lambda batch, *_: run(np.asarray(batch), order), [ids], (),
                                            [base_lp], [jnp.exp(base_lp)])]
            found[(i, j)][name] = np.asarray(value, dtype=np.float64)
    return found


os.environ.setdefault("JAX_PLATFORMS", "cpu")
