"""The sliding-window perplexity evaluator: the paper's removal costs on one long text stream.

The standard Hugging Face recipe, which the paper's ``wikitext_ppl.py`` follows: windows of ``window`` tokens
start every ``stride`` tokens; each window runs the model on its own tokens only (no state carried over) and
scores only the tokens that the previous window did not score (labels -100 on the overlap), so every token
after the first is scored exactly once, with at least ``window - stride`` tokens of context after the first
window. The paper used window 1024 / stride 512 on GPT-2 and 512 / 256 on the 8B models, over the first 5,000
or 20,000 words of WikiText-2 test (``inputs/heldout_stream.py``).

``WindowedEvaluator`` measures layer sets on those windows with the same interface as
``objectives.Evaluator`` (costs, units, base cost, spend), so searches, held-out costs and the paired bootstrap
verdicts take either. A window is its own resampling unit. Windows score different numbers of tokens (the first
``window - 1``, the last what is left), so a window's unit is its summed NLL (or KL) times
``n_windows / scored tokens``: the mean of the units is then exactly the token-weighted mean, and a bootstrap
draw of windows sums its windows' numbers over the stream's token count.

Each set runs through the reference semantics (``engine.reference.permuted_layers``, the model's own forward,
float64 log-probabilities), one window per forward: overlapping windows share no prefix the fast path could
reuse, and the mask of scored positions is the evaluator's own, so the engine's batch loop is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import InputError
from .objectives import Evaluator, LayerSet, Objective

if TYPE_CHECKING:
    import numpy as np
    import torch


class WindowError(InputError):
    pass


@dataclass(frozen=True)
class Window:
    begin: int  # first token the model reads
    end: int  # one past the last
    scored_from: int  # first token scored (predicted from the tokens before it inside the window)

    @property
    def scored(self) -> int:
        return self.end - self.scored_from


def plan_windows(n_tokens: int, window: int, stride: int) -> list[Window]:
    """The windows of the Hugging Face sliding-window recipe over ``n_tokens`` tokens."""
    if window < 2 or stride < 1 or stride > window:
        raise WindowError(f"--heldout-window {window} --heldout-stride {stride}: the window needs at least 2 tokens "
                          "and the stride 1..window (a larger stride would leave tokens unscored)")
    if n_tokens < 2:
        raise WindowError(f"the held-out stream has {n_tokens} token(s): sliding windows need at least 2")
    windows, scored_until = [], 1  # token 0 has no prediction
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        windows.append(Window(begin, end, max(scored_until, begin + 1)))
        scored_until = end
        if end == n_tokens:
            break
    return windows


def window_sums(model: torch.nn.Module, stream: torch.Tensor, windows: Sequence[Window],
                sets: Sequence[LayerSet], n_layers: int, attention_type: str = "layer"
                ) -> tuple[np.ndarray, dict[LayerSet, tuple[np.ndarray, np.ndarray]]]:
    """Per window: the full model's summed NLL over its scored tokens, and per set the summed KL(full || pruned)
    and NLL of the pruned model over the same tokens (float64)."""
    import numpy as np
    import torch

    from ..engine.loop import eval_mode
    from ..engine.probes import removal
    from ..engine.reference import model_log_probs, permuted_layers

    device = next(model.parameters()).device
    base_nll = np.zeros(len(windows))
    per_set = {s: (np.zeros(len(windows)), np.zeros(len(windows))) for s in sets}
    with eval_mode(model):
        for w, win in enumerate(windows):
            ids = stream[win.begin:win.end].to(device)[None]
            start = win.scored_from - win.begin - 1  # logits at position p predict token p + 1
            targets = ids[0, start + 1:, None]
            base = _scored_log_probs(model_log_probs(model, ids), start)
            base_nll[w] = -base.gather(-1, targets).sum().item()
            p = base.exp()
            for layers in sets:
                with permuted_layers(model, removal(layers, n_layers).order, attention_type):
                    pruned = _scored_log_probs(model_log_probs(model, ids), start)
                kl = torch.where(p > 0, p * (base - pruned), 0).sum()
                per_set[layers][0][w] = kl.item()
                per_set[layers][1][w] = -pruned.gather(-1, targets).sum().item()
    return base_nll, per_set


def _scored_log_probs(log_probs: torch.Tensor, start: int) -> torch.Tensor:
    return log_probs[0, start:-1]


class WindowedEvaluator(Evaluator):
    """``objectives.Evaluator`` on sliding windows of one token stream (kl and ppl objectives)."""

    def __init__(self, model: torch.nn.Module, stream: torch.Tensor, objective: Objective, n_layers: int,
                 window: int, stride: int, attention_type: str = "layer"):
        if objective.kind.reads != "text":
            raise WindowError(f"the sliding-window evaluator measures text objectives, not {objective.name}")
        super().__init__(model, stream, objective, n_layers)
        self.windows = plan_windows(len(stream), window, stride)
        self.window, self.stride, self.attention_type = window, stride, attention_type
        import numpy as np

        counts = np.array([w.scored for w in self.windows], dtype=np.float64)
        self.unit_scale = len(self.windows) / counts.sum()  # units' mean = token-weighted mean

    @property
    def n_units(self) -> int:
        return len(self.windows)

    @property
    def scored_tokens(self) -> int:
        return sum(w.scored for w in self.windows)

    def _measure(self, missing: list[LayerSet]) -> None:
        base_nll, per_set = window_sums(self.model, self.input_ids, self.windows, missing, self.n_layers,
                                        self.attention_type)
        self.base_nll = base_nll * self.unit_scale
        for layers, (kl, nll) in per_set.items():
            self.measured[layers] = (kl * self.unit_scale, nll * self.unit_scale)

    def describe(self) -> dict:
        return {"evaluator": "sliding-window", "window": self.window, "stride": self.stride,
                "windows": len(self.windows), "scored_tokens": self.scored_tokens}


def sliding_window_ppl(model: torch.nn.Module, stream: torch.Tensor, window: int, stride: int) -> float:
    """The full model's sliding-window perplexity of ``stream`` (what ``wikitext_ppl.py`` reports)."""
    import math

    windows = plan_windows(len(stream), window, stride)
    base_nll, _ = window_sums(model, stream, windows, [], 0)
    return math.exp(base_nll.sum() / sum(w.scored for w in windows))
