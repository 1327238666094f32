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
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..errors import InputError
from .objectives import Evaluator, LayerSet, Objective

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..engine.measurement import Measurement
    from ..engine.probes import Probe


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


def window_measurement(model: torch.nn.Module, stream: torch.Tensor, windows: Sequence[Window],
                       probes: Sequence[Probe], attention_type: str = "layer",
                       progress: Optional[Callable[[int, int], None]] = None) -> Measurement:
    """``probes`` on the windows of ``stream`` as an ``engine.Measurement`` whose units are the windows: per window
    the full model's NLL and per probe the KL(full || probe) and NLL, each summed over the window's scored tokens
    and scaled by ``n_windows / scored tokens`` (so a unit's mean is the token-weighted mean: ``ProbeStats.kl`` and
    ``.ppl`` are the stream's). Windows of one length and one scored offset run together, a few per forward."""
    import time

    import numpy as np
    import torch

    from ..engine.loop import eval_mode
    from ..engine.measurement import Measurement, ProbeStats
    from ..engine.reference import model_log_probs, permuted_layers

    started = time.perf_counter()
    probes = list(dict.fromkeys(probes))
    device = next(model.parameters()).device
    base_nll = np.zeros(len(windows))
    kl = {probe: np.zeros(len(windows)) for probe in probes}
    nll = {probe: np.zeros(len(windows)) for probe in probes}
    groups = _batches(windows, _vocabulary(model))
    with eval_mode(model), torch.no_grad():
        for done, group in enumerate(groups):
            first = windows[group[0]]
            ids = torch.stack([stream[windows[w].begin:windows[w].end] for w in group]).to(device)
            start = first.scored_from - first.begin - 1  # logits at position p predict token p + 1
            targets = ids[:, start + 1:, None]
            base = model_log_probs(model, ids)[:, start:-1]
            base_nll[group] = -base.gather(-1, targets).sum((1, 2)).cpu().numpy()
            p = base.exp()
            for probe in probes:
                with permuted_layers(model, probe.order, attention_type):
                    pruned = model_log_probs(model, ids)[:, start:-1]
                kl[probe][group] = torch.where(p > 0, p * (base - pruned), 0).sum((1, 2)).cpu().numpy()
                nll[probe][group] = -pruned.gather(-1, targets).sum((1, 2)).cpu().numpy()
            if progress is not None:
                progress(done + 1, len(groups))
    scale = len(windows) / sum(w.scored for w in windows)  # units' mean = token-weighted mean
    stats = {probe: ProbeStats(probe, kl[probe] * scale, nll[probe] * scale) for probe in probes}
    return Measurement("sliding-window", len(windows), max(w.end - w.begin for w in windows), base_nll * scale,
                       stats, time.perf_counter() - started)


# float64 log-probabilities of one forward, at most: two such tensors (full and pruned) and their product live at
# once, so a group of windows stays near 1 GiB however large the vocabulary
_MAX_LOG_PROB_VALUES = 1 << 25


def _vocabulary(model: torch.nn.Module) -> int:
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(size) if size else 1 << 17


def _batches(windows: Sequence[Window], vocabulary: int) -> list[list[int]]:
    """Consecutive windows of one length and one scored offset, as many per group as the memory cap allows."""
    groups: list[list[int]] = []
    for w, win in enumerate(windows):
        shape = (win.end - win.begin, win.scored_from - win.begin)
        if groups:
            last = windows[groups[-1][0]]
            fits = (len(groups[-1]) + 1) * shape[0] * vocabulary <= _MAX_LOG_PROB_VALUES
            if (last.end - last.begin, last.scored_from - last.begin) == shape and fits:
                groups[-1].append(w)
                continue
        groups.append([w])
    return groups


def window_sums(model: torch.nn.Module, stream: torch.Tensor, windows: Sequence[Window],
                sets: Sequence[LayerSet], n_layers: int, attention_type: str = "layer"
                ) -> tuple[np.ndarray, dict[LayerSet, tuple[np.ndarray, np.ndarray]]]:
    """Per window: the full model's summed NLL over its scored tokens, and per set the summed KL(full || pruned)
    and NLL of the pruned model over the same tokens (float64)."""
    from ..engine.probes import removal

    probes = {layers: removal(layers, n_layers) for layers in sets}
    measured = window_measurement(model, stream, windows, list(probes.values()), attention_type)
    unscale = sum(w.scored for w in windows) / len(windows)
    return (measured.base_nll_per_seq * unscale,
            {layers: (measured[probe].kl_per_seq * unscale, measured[probe].nll_per_seq * unscale)
             for layers, probe in probes.items()})


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
        from ..engine.probes import removal

        probes = [removal(layers, self.n_layers) for layers in missing]
        measured = window_measurement(self.model, self.input_ids, self.windows, probes, self.attention_type)
        self.base_nll = measured.base_nll_per_seq
        for layers, probe in zip(missing, probes):
            self.measured[layers] = (measured[probe].kl_per_seq, measured[probe].nll_per_seq)

    def describe(self) -> dict:
        return {"evaluator": "sliding-window", "window": self.window, "stride": self.stride,
                "windows": len(self.windows), "scored_tokens": self.scored_tokens}


def sliding_window_ppl(model: torch.nn.Module, stream: torch.Tensor, window: int, stride: int) -> float:
    """The full model's sliding-window perplexity of ``stream`` (what ``wikitext_ppl.py`` reports)."""
    import math

    windows = plan_windows(len(stream), window, stride)
    base_nll, _ = window_sums(model, stream, windows, [], 0)
    return math.exp(base_nll.sum() / sum(w.scored for w in windows))


@dataclass(frozen=True)
class WindowedHeldout:
    """A held-out stream with its window plan: what the audit's removal costs, the plugin's prune cases and the
    fixture's ``removal_cost`` measure on under ``--heldout-window`` (``audit.runner.heldout_for`` builds it).
    Its units, for the intervals and the paired verdicts, are the windows."""

    stream: Any  # an inputs.heldout_stream.HeldoutStream (analysis/ reads no input itself)
    window: int
    stride: int
    windows: tuple[Window, ...]

    @classmethod
    def of(cls, stream: Any, window: int, stride: int) -> "WindowedHeldout":
        return cls(stream, window, stride, tuple(plan_windows(stream.n_tokens, window, stride)))

    @property
    def input_ids(self) -> torch.Tensor:
        return self.stream.input_ids

    @property
    def source(self) -> str:
        return self.stream.source

    @property
    def sha256(self) -> str:
        return self.stream.sha256

    @property
    def n_sequences(self) -> int:
        """The resampling units: windows (named as the chunked held-out set's sequences are)."""
        return len(self.windows)

    @property
    def scored_tokens(self) -> int:
        return sum(w.scored for w in self.windows)

    def measure(self, model: torch.nn.Module, probes: Sequence[Probe], attention_type: str = "layer",
                progress: Optional[Callable[[int, int], None]] = None) -> Measurement:
        return window_measurement(model, self.input_ids, self.windows, probes, attention_type, progress)

    def evaluator(self, model: torch.nn.Module, objective: Objective, n_layers: int,
                  attention_type: str = "layer") -> WindowedEvaluator:
        return WindowedEvaluator(model, self.input_ids, objective, n_layers, self.window, self.stride,
                                 attention_type)

    def record(self) -> dict[str, Any]:
        """The audit JSON's ``heldout``: the stream and the evaluator that measured on it. ``n_sequences`` and
        ``seq_len`` say, as for the chunked held-out set, how many units the intervals resample and how long each
        one reads: the windows."""
        return {**self.stream.record(), "evaluator": "sliding-window", "window": self.window, "stride": self.stride,
                "windows": len(self.windows), "scored_tokens": self.scored_tokens, "n_sequences": len(self.windows),
                "seq_len": self.window}
