"""The plain Hugging Face sliding-window loop and a really pruned copy of a model: the references the sliding-window
evaluator is checked against, by its unit tests and by the audit's and the plugin's windowed removal costs."""

import copy

import numpy as np
import torch

from pytest_swapkl.engine.adapters import find_layer_list


def pruned_copy(model, layers):
    pruned = copy.deepcopy(model)
    owner, attr = find_layer_list(pruned)
    kept = [m for i, m in enumerate(getattr(owner, attr)) if i not in layers]
    setattr(owner, attr, torch.nn.ModuleList(kept))
    owner.config.num_hidden_layers = len(kept)
    for i, layer in enumerate(kept):  # cache indices, as a real pruned checkpoint has them
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = i
    return pruned


def reference_loop(model, stream, window, stride, base=None):
    """The plain HF loop: forward on each window, labels -100 on the context; per window summed NLL over the
    scored tokens (and summed KL to ``base`` at the same positions), float32 model, float64 sums."""
    nll, kl, prev_end, n = [], [], 0, len(stream)
    with torch.no_grad():
        for begin in range(0, n, stride):
            end = min(begin + window, n)
            chunk = stream[begin:end][None]
            labels = chunk.clone()
            if end - prev_end < chunk.shape[1]:
                labels[:, :-(end - prev_end)] = -100
            out = model(chunk, labels=labels, use_cache=False)
            count = int((labels[:, 1:] != -100).sum())
            nll.append(out.loss.double().item() * count)
            if base is not None:
                scored = slice(chunk.shape[1] - 1 - count, chunk.shape[1] - 1)
                p = torch.log_softmax(base(chunk, use_cache=False).logits[0, scored].double(), -1)
                q = torch.log_softmax(out.logits[0, scored].double(), -1)
                kl.append((p.exp() * (p - q)).sum().item())
            prev_end = end
            if end == n:
                break
    return np.array(nll), np.array(kl)
