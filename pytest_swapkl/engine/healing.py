"""Healing a compressed model: LoRA adapters on its attention projections, trained, then merged into its weights.

    recipe = Recipe(steps=200)                           # the paper's: rank 16, alpha 32, AdamW lr 2e-4, wd 0.01
    healed, losses = heal(model, train_ids, recipe, seed=0, progress=progress)

The recipe is the public code's (tpu_lora_recovery.py, tpu_lora_control.py): rank-16 adapters with alpha 32 on the
query, key, value and output projections of every decoder layer, no dropout, AdamW (lr 2e-4, weight decay 0.01,
betas 0.9/0.999), each step one batch of ``batch_size`` training sequences drawn at random with replacement
(seeded), the mean next-token NLL as the loss. peft is an optional dependency (the ``heal`` extra), imported only
here and only when a model is healed; ``heal`` never changes ``model`` and returns a plain model of the same class
(``merge_and_unload``), so a saved healed model loads with ``from_pretrained`` and no peft.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .adapters import find_layer_list


class HealingError(InputError):
    """Healing cannot run as asked (peft missing, no projection to adapt): one line."""


@dataclass(frozen=True)
class Recipe:
    """The fine-tuning recipe; the defaults are the paper's."""

    rank: int = 16
    alpha: float = 32.0
    lr: float = 2e-4
    weight_decay: float = 0.01
    steps: int = 200
    batch_size: int = 1
    targets: Optional[tuple[str, ...]] = None  # module names as peft matches them; None: attention projections

    def record(self) -> dict:
        return {"rank": self.rank, "alpha": self.alpha, "lr": self.lr, "weight_decay": self.weight_decay,
                "steps": self.steps, "batch_size": self.batch_size, "dropout": 0.0, "optimizer": "AdamW"}


def load_peft():
    """peft, or a one-line error saying how to install it."""
    try:
        import peft
    except ImportError:
        raise HealingError("healing needs peft: pip install 'pytest-swapkl[heal]' (or pip install peft)") from None
    return peft


def attention_projections(model: nn.Module) -> list[str]:
    """The linear modules inside the attention block of the decoder layers, as their names within a layer:
    q_proj, k_proj, v_proj, o_proj for Llama-like families; query_key_value and dense for GPT-NeoX; c_attn and
    c_proj (attn.c_proj, not the MLP's) for GPT-2. Found by where they sit, so a family needs no table."""
    owner, attribute = find_layer_list(model)
    found: list[str] = []
    for layer in getattr(owner, attribute):
        for name, module in layer.named_modules():
            parent = name.rpartition(".")[0].lower()
            linear = isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"
            if linear and ("attn" in parent or "attention" in parent) and name not in found:
                found.append(name)
    return found


def target_modules(model: nn.Module, targets: Optional[Sequence[str]]) -> list[str]:
    """The full names of the modules the adapters go on: every layer's attention projections, or the modules
    whose name is or ends in one of ``targets``."""
    owner, attribute = find_layer_list(model)
    layers = {id(layer) for layer in getattr(owner, attribute)}
    wanted = list(targets) if targets else attention_projections(model)
    names = []
    for prefix, layer in model.named_modules():
        if id(layer) not in layers:
            continue
        for relative, _ in layer.named_modules():
            if relative and any(relative == want or relative.endswith("." + want) for want in wanted):
                names.append(f"{prefix}.{relative}")
    if not names:
        what = f"--targets {','.join(targets)}" if targets else "the attention projections"
        raise HealingError(f"no module of the model matches {what}: name its projections with --targets "
                           "(e.g. q_proj,k_proj,v_proj,o_proj)")
    return names


def heal(model: nn.Module, train_ids: torch.Tensor, recipe: Recipe, *, seed: int = 0,
         progress: Optional[Callable[[int, int], None]] = None) -> tuple[nn.Module, list[float]]:
    """A healed copy of ``model`` (adapters trained on ``train_ids``, [n, seq_len], and merged) and the loss of each
    step. The same ``seed`` gives the same adapter initialization and the same batches, whatever the model: the
    control and the pruned model see the same training sequences in the same order."""
    peft = load_peft()
    targets = target_modules(model, recipe.targets)
    work = copy.deepcopy(model)
    torch.manual_seed(seed)  # the adapters' A matrices (B starts at zero, so step 0 is the model itself)
    config = peft.LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0, bias="none",
                             target_modules=targets)
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
        warnings.filterwarnings("ignore", category=FutureWarning)
        wrapped = peft.get_peft_model(work, config)
    wrapped.eval()  # no dropout anywhere: the paper's JAX forward has none
    trainable = [parameter for parameter in wrapped.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=recipe.weight_decay)
    device = next(work.parameters()).device
    draws = np.random.RandomState(seed)
    losses = []
    for step in range(recipe.steps):
        rows = draws.randint(0, len(train_ids), size=recipe.batch_size)
        batch = train_ids[torch.as_tensor(rows)].to(device)
        with torch.enable_grad():
            loss = wrapped(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, recipe.steps)
    healed = wrapped.merge_and_unload()
    healed.eval()
    healed.requires_grad_(False)
    return healed, losses
