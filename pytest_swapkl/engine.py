"""The probe engine: runs probes on a loaded causal LM and measures KL(base || probe).

Fast path (models with an adapter):
  1. One base pass with hooks records, for every layer module, the exact arguments it
     was called with (masks, rotary embeddings, positions) and the hidden state entering
     every slot.
  2. Probes become paths in a trie keyed by (first changed slot, modules run from there).
     A depth-first walk runs each trie edge once, so probes share both the base prefix
     and any leading run of modules (replacement(j->i) and interchange(i,j) both run
     j, i+1, ..., j-1 from slot i).
  3. A moved module is replayed with its *own* recorded arguments, so it keeps its own
     attention type (sliding/full mask, local/global rotary) wherever it runs; this is
     what permuting the layer list together with `config.layer_types` means.
  4. Head and KL run in vocabulary chunks in float32 (``divergence``).

Models without an adapter fall back to the reference path (``reference``).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from .adapters import Adapter, adapter_for, find_layer_list
from .divergence import BaseDistribution, Head, base_distribution, kl_and_nll, kl_full, nll_from_log_probs
from .errors import InputError
from .measurement import Accumulator, Measurement
from .probes import Probe
from .reference import measure_reference, model_log_probs

DEFAULT_VOCAB_CHUNK = 16384
PATHS = ("auto", "fast", "reference")


class EngineError(InputError):
    pass


def _stderr_notice(message: str) -> None:
    print(f"swapkl: {message}", file=sys.stderr)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off and no autograd for the duration; the caller's training flag comes back."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def measure(
    model: nn.Module,
    input_ids: torch.Tensor,
    probes: Sequence[Probe],
    *,
    path: str = "auto",
    batch_size: Optional[int] = None,
    memory_budget: Optional[int] = None,
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
    progress: Optional[Callable[[int, int], None]] = None,
    notice: Callable[[str], None] = _stderr_notice,
) -> Measurement:
    """KL(base || probe) and NLL of every probe on ``input_ids`` [n_sequences, seq_len].

    ``path``: "fast" needs an adapter; "reference" is the definition; "auto" takes the
    fast path when an adapter exists and says so when it has to fall back.
    """
    if path not in PATHS:
        raise EngineError(f"unknown path {path!r}: use one of {', '.join(PATHS)}")
    if input_ids.ndim != 2 or input_ids.shape[1] < 2:
        raise EngineError(f"input_ids must be [n_sequences, seq_len >= 2], got shape {tuple(input_ids.shape)}")
    depth = len(getattr(*find_layer_list(model)))  # also fails with how-to-register when no layer list is found
    wrong = [p.name for p in probes if p.n_layers != depth]
    if wrong:
        raise EngineError(f"probe {wrong[0]} was built for a different depth: this model has {depth} layers")
    adapter = adapter_for(model)
    if path == "fast" and adapter is None:
        raise EngineError(f"no adapter for model_type {model.config.model_type!r}: use path='reference'")
    if path == "auto" and adapter is None:
        notice(f"no adapter for model_type {model.config.model_type!r}: using the slow reference path")
    use_fast = adapter is not None and path != "reference"
    input_ids = input_ids.to(_model_device(model))
    if batch_size is None:
        batch_size = plan_batch_size(model, input_ids.shape[1], memory_budget, vocab_chunk)
    started = time.perf_counter()
    with eval_mode(model):
        if use_fast:
            result = FastPath(model, adapter, vocab_chunk).measure(input_ids, probes, batch_size, progress)
        else:
            result = measure_reference(model, input_ids, probes, batch_size, progress)
    if input_ids.is_cuda:
        torch.cuda.synchronize(input_ids.device)
    result.seconds = time.perf_counter() - started
    return result


def layer_inputs(model: nn.Module, input_ids: torch.Tensor, batch_size: Optional[int] = None) -> list[torch.Tensor]:
    """Hidden states entering every slot, then the last layer's output: N+1 tensors [n_sequences, seq_len, hidden]
    on the model's device, from the same hooked base pass as the fast path (for layer-similarity baselines)."""
    adapter = adapter_for(model)
    if adapter is None:
        raise EngineError(f"no adapter for model_type {model.config.model_type!r}: hidden states need the fast path")
    input_ids = input_ids.to(_model_device(model))
    batch_size = batch_size or plan_batch_size(model, input_ids.shape[1], None)
    fast = FastPath(model, adapter, DEFAULT_VOCAB_CHUNK)
    with eval_mode(model):
        batches = [fast.base_pass(batch).entering for batch in input_ids.split(batch_size)]
    return [torch.cat([states[slot] for states in batches]) for slot in range(len(batches[0]))]


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def plan_batch_size(
    model: nn.Module, seq_len: int, memory_budget: Optional[int], vocab_chunk: int = DEFAULT_VOCAB_CHUNK
) -> int:
    """Sequences per batch so that cached hidden states, base log-probs and one layer's activations fit.

    The default budget is half of the free memory on CUDA and 192 MiB on CPU, where larger batches
    gain no matmul efficiency but pay page faults on every large allocation (docs/decisions.md).
    """
    config = model.config
    device = _model_device(model)
    if memory_budget is None:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            memory_budget = free // 2
        else:
            memory_budget = 192 << 20
    hidden = config.hidden_size
    n_layers = config.num_hidden_layers
    vocab = config.vocab_size
    heads = getattr(config, "num_attention_heads", 1)
    ffn = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", None) or 4 * hidden
    width = next(model.parameters()).element_size()
    per_sequence = seq_len * (
        (2 * n_layers + 2) * hidden * width  # base states entering each slot + the walk's stack
        + 3 * vocab * 4  # base log-probs and probabilities, and one reference-sized logits buffer, float32
        + 3 * min(vocab, vocab_chunk) * 4  # one probe chunk and its temporaries
        + 4 * ffn * width  # one layer's MLP activations
        + heads * seq_len * 4  # attention scores (eager attention)
    )
    return max(1, int(memory_budget // per_sequence))


@dataclass
class BasePass:
    """What one hooked forward of the unchanged model leaves behind for a batch."""

    calls: list[tuple[tuple, dict]] = field(default_factory=list)  # per module: its recorded (args, kwargs)
    entering: list[torch.Tensor] = field(default_factory=list)  # hidden state entering each slot, then the last output
    uses_kwarg_hidden: bool = False  # whether layers take hidden states as a keyword


class _Trie:
    """Probes keyed by their first changed slot and the modules they run from there."""

    def __init__(self) -> None:
        self.children: dict[int, _Trie] = {}
        self.ending: list[Probe] = []

    @classmethod
    def roots(cls, probes: Sequence[Probe]) -> dict[int, "_Trie"]:
        roots: dict[int, _Trie] = {}
        for probe in probes:
            start = probe.first_changed_slot()
            if start is None:
                continue
            node = roots.setdefault(start, cls())
            for module in probe.order[start:]:
                node = node.children.setdefault(module, cls())
            node.ending.append(probe)
        return roots


class FastPath:
    def __init__(self, model: nn.Module, adapter: Adapter, vocab_chunk: int):
        self.model = model
        self.owner, attr = adapter.layer_list(model)
        self.layers: nn.ModuleList = getattr(self.owner, attr)
        output = model.get_output_embeddings()
        self.head = Head(
            final=adapter.final_modules(model),
            weight=output.weight,
            bias=getattr(output, "bias", None),
            transform=adapter.logit_transform(model.config),
            chunk=max(1, vocab_chunk),
        )

    def measure(
        self,
        input_ids: torch.Tensor,
        probes: Sequence[Probe],
        batch_size: int,
        progress: Optional[Callable[[int, int], None]],
    ) -> Measurement:
        acc = Accumulator(list(probes))
        roots = _Trie.roots(acc.probes)
        total, done = len(acc.probes) * input_ids.shape[0], 0
        noise_floor = 0.0
        for number, batch in enumerate(input_ids.split(batch_size)):
            labels = batch[:, 1:]
            base_pass = self.base_pass(batch)
            base = base_distribution(self.head, base_pass.entering[-1])
            if number == 0:
                noise_floor = self._noise_floor(batch, base)
            base_nll = nll_from_log_probs(base.log_probs, labels).cpu()
            acc.base_nll.append(base_nll.numpy())
            for probe in acc.probes:
                if probe.first_changed_slot() is None:  # identity: the base itself, exactly
                    acc.add(probe, torch.zeros_like(base_nll), base_nll)

            def finish(probes_here: list[Probe], hidden: torch.Tensor) -> None:
                nonlocal done
                kl, nll = kl_and_nll(self.head, base, hidden, labels)
                for probe in probes_here:
                    acc.add(probe, kl.cpu(), nll.cpu())
                    done += batch.shape[0]
                    if progress:
                        progress(done, total)

            for start, root in roots.items():
                self._walk(root, base_pass.entering[start], base_pass, base, finish)
        result = acc.finish("fast", input_ids.shape[0], input_ids.shape[1], 0.0)
        result.noise_floor = noise_floor
        return result

    def _noise_floor(self, batch: torch.Tensor, base: BaseDistribution) -> float:
        """KL between two computations of the unchanged model that differ only in rounding: the first
        sequence alone through the model's own forward vs. inside its batch on this path. Kernels choose
        other tilings for other batch shapes, so this is the rounding level of this dtype and device
        (0 in float32 on CPU; with a batch of one sequence the two are the same computation)."""
        alone = model_log_probs(self.model, batch[:1])
        return max(0.0, float(kl_full(base.log_probs[:1], alone).mean()))

    def _walk(
        self,
        node: _Trie,
        hidden: torch.Tensor,
        base_pass: BasePass,
        base: BaseDistribution,
        finish: Callable[[list[Probe], torch.Tensor], None],
    ) -> None:
        if node.ending:
            finish(node.ending, hidden)
        for module, child in node.children.items():
            self._walk(child, self._replay(module, hidden, base_pass), base_pass, base, finish)

    def _replay(self, module: int, hidden: torch.Tensor, base_pass: BasePass) -> torch.Tensor:
        """Run layer `module` on `hidden` with the arguments it received in the base pass."""
        args, kwargs = base_pass.calls[module]
        if base_pass.uses_kwarg_hidden:
            out = self.layers[module](*args, **{**kwargs, "hidden_states": hidden})
        else:
            out = self.layers[module](hidden, *args[1:], **kwargs)
        return out[0] if isinstance(out, tuple) else out

    def base_pass(self, batch: torch.Tensor) -> BasePass:
        record = BasePass(calls=[None] * len(self.layers), entering=[None] * (len(self.layers) + 1))

        def make_pre_hook(index: int):
            def pre_hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]):
                if args:
                    hidden = args[0]
                else:
                    hidden = kwargs["hidden_states"]
                    record.uses_kwarg_hidden = True
                record.calls[index] = (args, kwargs)
                record.entering[index] = hidden

            return pre_hook

        def last_hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], out: Any) -> None:
            record.entering[-1] = out[0] if isinstance(out, tuple) else out

        handles = [
            layer.register_forward_pre_hook(make_pre_hook(index), with_kwargs=True)
            for index, layer in enumerate(self.layers)
        ]
        handles.append(self.layers[-1].register_forward_hook(last_hook, with_kwargs=True))
        try:
            # The module that owns the layer list stops before the head: no full-vocabulary logits here.
            self.owner(input_ids=batch, use_cache=False)
        finally:
            for handle in handles:
                handle.remove()
        if any(call is None for call in record.calls):
            raise EngineError(
                f"{type(self.model).__name__}: not every layer ran in the base pass; its adapter's layer path is wrong"
            )
        return record
