"""The batch loop: `measure` runs probes on a loaded causal LM and returns KL(base || probe) and NLL.

Both measuring paths plug in here: the fast path (``fastpath``, models with an adapter)
and the reference path (``reference``, the definition and the fallback for any causal LM).
The loop owns what is common to them: batch planning, journal look-ups for resumed
audits, out-of-memory halving, and accumulation in a fixed order.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..console import Notice, print_notice
from ..errors import InputError
from .adapters import adapter_for, find_layer_list
from .divergence import NonFiniteLogits
from .fastpath import FastPath, Kernels, kernels
from .journal import Journal
from .measurement import Accumulator, Measurement
from .memory import keep_freed_memory
from .paths import MeasuringPath
from .plan import plan_batches
from .probes import Probe
from .reading import Positions, check_mask
from .reference import ATTENTION_TYPES, ReferencePath

DEFAULT_VOCAB_CHUNK = 16384
PATHS = ("auto", "fast", "reference")
COMPILE_MODES = ("auto", "on", "off")
BASE_RECORD = "base"  # journal names of the unchanged model's NLL and of the noise floor
NOISE_RECORD = "noise-floor"


class EngineError(InputError):
    pass


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
    compile: str = "auto",
    progress: Optional[Callable[[int, int], None]] = None,
    notice: Notice = print_notice,
    journal: Optional[Journal] = None,
    first_sequence: int = 0,
    attention_type: str = "layer",
    stack: Optional[int] = None,
    attention_mask: Optional[torch.Tensor] = None,
    positions: str = "all",
    pads: str = "out",
) -> Measurement:
    """KL(base || probe) and NLL of every probe on ``input_ids`` [n_sequences, seq_len].

    ``path``: "fast" needs an adapter; "reference" is the definition; "auto" takes the
    fast path when an adapter exists and says so when it has to fall back.
    ``compile``: "auto" compiles the head + KL step and the layer calls with torch.compile
    on CUDA (eager elsewhere); "on" compiles on any device; "off" runs everything eagerly.
    ``journal``: finished (probe, batch) results are appended to it and taken from it
    instead of being measured again; ``first_sequence`` is the index of ``input_ids[0]``
    in the audit's calibration set, which is what the journal's ranges count.
    ``attention_type``: a moved layer keeps its own attention type ("layer", the default: its own sliding or
    full mask and rotary embedding) or takes the type of the slot it runs in ("slot").
    ``batch_size`` / ``stack`` (probes per layer call on the fast path) / ``memory_budget`` (bytes): the batch
    plan (``plan``); what is not given is planned from the device's memory, and the result records the plan.
    On CUDA out-of-memory the stack, then the batch, is halved and retried, with a notice.
    ``attention_mask`` [n_sequences, seq_len]: 1 for the real tokens of right-padded prompts, 0 for pads.
    ``positions`` ("all", "last", "last:K") and ``pads`` ("out", "in"): the positions each sequence's mean KL and
    NLL read (``reading``; docs/contracts.md). The defaults on unpadded ids read every position, as always.
    """
    if attention_type not in ATTENTION_TYPES:
        raise EngineError(f"unknown attention type {attention_type!r}: use one of {', '.join(ATTENTION_TYPES)}")
    if path not in PATHS:
        raise EngineError(f"unknown path {path!r}: use one of {', '.join(PATHS)}")
    if compile not in COMPILE_MODES:
        raise EngineError(f"unknown compile mode {compile!r}: use one of {', '.join(COMPILE_MODES)}")
    if input_ids.ndim != 2 or input_ids.shape[1] < 2:
        raise EngineError(f"input_ids must be [n_sequences, seq_len >= 2], got shape {tuple(input_ids.shape)}")
    contract = Positions(positions, pads)
    check_mask(input_ids, attention_mask, positions)
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
    if attention_mask is not None:
        attention_mask = attention_mask.to(input_ids.device)
    keep_freed_memory()  # once per process: the head + KL temporaries reused, not faulted in (memory.py)
    if stack is not None and stack < 1:
        raise EngineError(f"stack must be at least 1, got {stack}")
    plan = plan_batches(model, input_ids.shape[1], input_ids.shape[0], memory_budget, vocab_chunk,
                        "fast" if use_fast else "reference", stack if use_fast else 1)
    if batch_size is not None:
        plan = replace(plan, batch_size=batch_size, budget_source=f"{plan.budget_source}; --batch-size given")
    if input_ids.is_cuda:
        torch.cuda.reset_peak_memory_stats(input_ids.device)
    started = time.perf_counter()
    with eval_mode(model):
        runner = (FastPath(model, adapter, vocab_chunk, kernels(input_ids.device, compile, notice), attention_type,
                           plan.stack, contract)
                  if use_fast else ReferencePath(model, attention_type, contract))
        batches = _Batches(runner, list(probes), journal, first_sequence, notice)
        result = batches.run(input_ids, plan.batch_size, progress, attention_mask)
    if input_ids.is_cuda:
        torch.cuda.synchronize(input_ids.device)
        result.peak_memory = int(torch.cuda.max_memory_allocated(input_ids.device))
    result.seconds = time.perf_counter() - started
    result.plan = {**plan.to_json(), "batch_size": batches.batch_size, "stack": getattr(runner, "stack", 1),
                   "threads": torch.get_num_threads()}
    return result


class _Batches:
    """The batch loop shared by both paths: journal look-ups, out-of-memory retries, accumulation in order."""

    def __init__(self, runner: MeasuringPath, probes: list[Probe], journal: Optional[Journal], first_sequence: int,
                 notice: Callable[[str], None]):
        self.runner = runner
        self.acc = Accumulator(probes)
        self.journal = journal
        self.first_sequence = first_sequence
        self.notice = notice

    def run(self, input_ids: torch.Tensor, batch_size: int, progress: Optional[Callable[[int, int], None]],
            mask: Optional[torch.Tensor] = None) -> Measurement:
        n_sequences = input_ids.shape[0]
        total = len(self.acc.probes) * n_sequences
        self.batch_size = batch_size  # what the loop ended up running: the plan, after any out-of-memory halving
        start = 0
        while start < n_sequences:
            stop = min(start + self.batch_size, n_sequences)
            try:
                base_nll, numbers = self._batch(input_ids[start:stop], start, total, progress,
                                                None if mask is None else mask[start:stop])
            except torch.cuda.OutOfMemoryError:
                base_nll = None  # the handler below runs outside the except block, so the batch's tensors are freed
            if base_nll is None:
                self._smaller(input_ids)
                continue
            self.acc.base_nll.append(base_nll)
            for probe in self.acc.probes:
                self.acc.add(probe, *numbers[probe])
            start = stop
        result = self.acc.finish(self.runner.name, n_sequences, input_ids.shape[1], 0.0)
        result.noise_floor = self._noise_floor()
        return result

    def _smaller(self, input_ids: torch.Tensor) -> None:
        torch.cuda.empty_cache()
        stack = getattr(self.runner, "stack", 1)
        if stack > 1:
            self.notice(f"CUDA out of memory with {stack} probes per layer call: retrying with {stack // 2}")
            self.runner.stack = stack // 2
            return
        if self.batch_size == 1:
            raise EngineError(
                f"CUDA out of memory with one sequence of {input_ids.shape[1]} tokens per batch: lower --seq-len, "
                "choose --dtype bfloat16, or free GPU memory")
        self.notice(f"CUDA out of memory at --batch-size {self.batch_size}: retrying with {self.batch_size // 2}")
        self.batch_size //= 2

    def _batch(self, batch: torch.Tensor, offset: int, total: int, progress: Optional[Callable[[int, int], None]],
               mask: Optional[torch.Tensor] = None) -> tuple[np.ndarray, dict]:
        start = self.first_sequence + offset
        stop = start + batch.shape[0]
        numbers: dict[Probe, tuple[np.ndarray, np.ndarray]] = {}
        if self.journal is not None:
            for probe in self.acc.probes:
                found = self.journal.get(probe.name, start, stop)
                if found is not None:
                    numbers[probe] = found
        base_nll = self.journal.get(BASE_RECORD, start, stop) if self.journal is not None else None
        missing = [p for p in self.acc.probes if p not in numbers]
        if missing or base_nll is None:
            done = offset * len(self.acc.probes) + len(numbers) * batch.shape[0]

            def finish(probe: Probe, kl: torch.Tensor, nll: torch.Tensor) -> None:
                nonlocal done
                numbers[probe] = kl.cpu().numpy(), nll.cpu().numpy()
                if self.journal is not None:
                    self.journal.record(probe.name, start, stop, *numbers[probe])
                done += batch.shape[0]
                if progress:
                    progress(done, total)

            try:
                nll = self.runner.run_batch(batch, missing, finish, mask).cpu().numpy()
            except NonFiniteLogits as failure:
                raise ProbeFailed(str(failure), self.runner.dtype, _non_finite_weight(self.runner.model)) from None
            if self.journal is not None:
                self.journal.record(BASE_RECORD, start, stop, np.zeros_like(nll), nll)
            base_nll = (np.zeros_like(nll), nll)
        return base_nll[1], numbers

    def _noise_floor(self) -> float:
        floor = self.runner.noise_floor
        if self.journal is None:
            return floor or 0.0
        if floor is None:  # the first batch came from the journal
            found = self.journal.get(NOISE_RECORD, 0, 1)
            return float(found[0][0]) if found is not None else 0.0
        if self.first_sequence == 0:
            self.journal.record(NOISE_RECORD, 0, 1, [floor], [0.0])
        return floor


class ProbeFailed(EngineError):
    """NaN or infinite logits: the probe fails, its numbers are never averaged in. The hint follows the cause:
    weights that are already NaN or infinite, float16's narrow range, or values beyond even float32's."""

    def __init__(self, which: str, dtype: torch.dtype, broken_weight: Optional[str] = None):
        name = str(dtype).removeprefix("torch.")
        if broken_weight is not None:
            hint = f"the weights hold NaN or infinite values (e.g. {broken_weight}): fix or re-save the checkpoint"
        elif dtype == torch.float16:
            hint = "float16's range overflows easily: use --dtype bfloat16 or float32"
        elif dtype == torch.bfloat16:
            hint = "the model runs in bfloat16: try --dtype float32, and check the weights"
        else:  # float32 (or wider): another dtype cannot help
            hint = (f"the model runs in {name} and still overflows: its weights or activations are far outside any "
                    "usual range; check the weights")
        subject = which if which == "the unchanged model" else f"probe {which}"
        super().__init__(f"{subject} produced NaN or infinite logits: {hint}")


def _non_finite_weight(model: nn.Module) -> Optional[str]:
    """The name of the first weight holding NaN or infinity (checked only once a probe failed; buffers such as
    masks may hold -inf on purpose)."""
    for name, tensor in model.named_parameters():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def layer_inputs(model: nn.Module, input_ids: torch.Tensor, batch_size: Optional[int] = None) -> list[torch.Tensor]:
    """Hidden states entering every slot, then the last layer's output: N+1 tensors [n_sequences, seq_len, hidden]
    on the model's device, from the same hooked base pass as the fast path (for layer-similarity baselines)."""
    adapter = adapter_for(model)
    if adapter is None:
        raise EngineError(f"no adapter for model_type {model.config.model_type!r}: hidden states need the fast path")
    input_ids = input_ids.to(_model_device(model))
    batch_size = batch_size or plan_batch_size(model, input_ids.shape[1], None)
    fast = FastPath(model, adapter, DEFAULT_VOCAB_CHUNK, Kernels())
    with eval_mode(model):
        batches = [fast.base_pass(batch).entering for batch in input_ids.split(batch_size)]
    return [torch.cat([states[slot] for states in batches]) for slot in range(len(batches[0]))]


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def plan_batch_size(
    model: nn.Module, seq_len: int, memory_budget: Optional[int], vocab_chunk: int = DEFAULT_VOCAB_CHUNK,
    path: str = "fast",
) -> int:
    """Sequences per batch the plan (``plan.plan_batches``) gives one probe per layer call, for any number of
    sequences: what the similarity baselines' base passes use."""
    return plan_batches(model, seq_len, 1 << 30, memory_budget, vocab_chunk, path, stack=1).batch_size
