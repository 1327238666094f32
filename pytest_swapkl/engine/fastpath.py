"""The fast path: one hooked base pass, then probes as a trie of layer replays.

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
  4. Head and KL run in vocabulary chunks in float32 (``divergence``), only on the positions the position
     contract reads (``reading``: under ``last`` a few per prompt); padded prompts' attention mask is given
     to the base pass, so every recorded layer call, and every replay of it, carries it.
  5. Stacked (``stack`` > 1): the probes are taken in groups of ``stack`` leaves of the trie,
     and each group is walked slot by slot: every state in the group that runs the same module
     in the same slot is concatenated along the batch dimension and sent through one layer
     call, and every probe that ends there shares one head + KL pass. A small model's layer on
     one batch is a matrix product far too small to fill a GPU; stacked, it is ``stack`` times
     taller. Depth-first (``stack`` 1) keeps one state per slot alive and suits the CPU.
  6. On the CPU with N > 1 torch threads, the subtrees below the roots are walked by N Python threads with
     one intra-op thread each (``cpu_walk``): a small model's operations are too small to split in two.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from ..errors import InputError
from .adapters import Adapter
from .cpu_walk import subtree_workers, walk_subtrees
from .divergence import BaseDistribution, Head, NonFiniteLogits, base_distribution, chunk_step, kl_and_nll, kl_full
from .paths import Finish
from .placed import Placement
from .probes import Probe
from .reading import Positions, Reading
from .recipes import DerivedModules
from .reference import model_log_probs
from .slots import Slot, anchor, sort_key


class FastPathError(InputError):
    """The model does not behave as its adapter says (e.g. a layer never ran in the base pass)."""


def _call_layer(layer: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    out = layer(*args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


@dataclass
class Kernels:
    """The two hot functions of the fast path, eager or compiled."""

    step: Callable = chunk_step  # one vocabulary chunk of head + KL
    layer_call: Callable = _call_layer  # one layer on one hidden state


def kernels(device: torch.device, mode: str, notice: Callable[[str], None]) -> Kernels:
    """auto: compile on CUDA, eager elsewhere; on: compile on any device; off: eager.

    Compiled, the head + KL step reads each chunk once instead of a dozen float32 passes, and each
    layer's norms, rotary embedding and gated activation fuse around the matrix products. On an H100
    with the Llama-3.1-8B shape this took the fast path from 408 to 606 TFLOP/s (docs/benchmarks.md).
    On CPU the gain does not pay for the compile time of a short audit.
    """
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return Kernels()
    if device.type not in _COMPILED:
        _COMPILED[device.type] = Kernels(
            _Compiled(torch.compile(chunk_step), chunk_step, "the head + KL step", notice),
            _Compiled(torch.compile(_call_layer), _call_layer, "layer calls", notice))
    compiled = _COMPILED[device.type]
    compiled.step.notice = compiled.layer_call.notice = notice  # this audit's notices, not the first one's
    return compiled


_COMPILED: dict[str, Kernels] = {}  # compiled once per process: recompiling costs seconds


class _Compiled:
    """A torch.compile'd function that falls back to its eager twin, once and with a notice, if compiling fails."""

    def __init__(self, compiled: Callable, eager: Callable, what: str, notice: Callable[[str], None]):
        self.compiled, self.eager, self.what, self.notice = compiled, eager, what, notice

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as error:  # compiler or toolchain missing, unsupported op: eager is always right
                self.notice(f"torch.compile of {self.what} failed ({type(error).__name__}): running it eagerly")
                self.compiled = None
        return self.eager(*args, **kwargs)


@dataclass
class BasePass:
    """What one hooked forward of the unchanged model leaves behind for a batch."""

    calls: list[tuple[tuple, dict]] = field(default_factory=list)  # per module: its recorded (args, kwargs)
    entering: list[torch.Tensor] = field(default_factory=list)  # hidden state entering each slot, then the last output
    uses_kwarg_hidden: bool = False  # whether layers take hidden states as a keyword


def _tiled(value: Any, batch: int, copies: int) -> Any:
    """A recorded layer argument for ``copies`` stacked batches: tensors whose first axis is the batch
    (masks, rotary tables, position ids) are repeated along it; anything else (a shared cache position, a
    rotary table broadcast over the batch, a flag) is passed as it is. Tuples and lists are tiled inside."""
    if isinstance(value, torch.Tensor):
        if value.ndim >= 2 and value.shape[0] == batch:
            return value.repeat(copies, *([1] * (value.ndim - 1)))
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_tiled(item, batch, copies) for item in value)
    return value


def _groups(probes: Sequence[Probe], size: int) -> list[list[Probe]]:
    """Probes in trie order (by first changed slot, then modules run), cut into groups of ``size``: probes
    that share a prefix of modules land in the same group, so stacking loses little of the trie's sharing."""
    changed = [p for p in probes if p.first_changed_slot() is not None]
    ordered = sorted(changed, key=lambda p: (p.first_changed_slot(),
                                             tuple(map(sort_key, p.order[p.first_changed_slot():]))))
    return [ordered[k:k + size] for k in range(0, len(ordered), size)]


class _Trie:
    """Probes keyed by their first changed slot and the modules they run from there."""

    def __init__(self) -> None:
        self.children: dict[Slot, _Trie] = {}
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

    def nodes(self) -> Iterator["_Trie"]:
        yield self
        for child in self.children.values():
            yield from child.nodes()

    def size(self) -> int:
        """Layer calls below this node: the work of walking it."""
        return sum(1 + child.size() for child in self.children.values())


class FastPath:
    name = "fast"

    def __init__(self, model: nn.Module, adapter: Adapter, vocab_chunk: int, kernels: "Kernels",
                 attention_type: str = "layer", stack: int = 1, positions: Positions = Positions()):
        self.model = model
        self.positions = positions
        self.attention_type = attention_type
        self.stack = max(1, int(stack))
        self.dtype = next(model.parameters()).dtype
        self.kernels = kernels
        self.owner, attr = adapter.layer_list(model)
        self.layers: nn.ModuleList = getattr(self.owner, attr)
        self.modules = DerivedModules(self.layers)  # a slot's module: a layer, or one derived from layers
        output = model.get_output_embeddings()
        self.head = Head(
            final=adapter.final_modules(model),
            weight=output.weight,
            bias=getattr(output, "bias", None),
            transform=adapter.logit_transform(model.config),
            chunk=max(1, vocab_chunk),
        )
        self.noise_floor: Optional[float] = None  # measured on the first batch this path runs
        self.placement = Placement(self.layers, output)  # layers and head on their own devices (--device-map)

    def run_batch(self, batch: torch.Tensor, probes: Sequence[Probe], finish: Finish,
                  mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Base NLL per sequence; calls finish(probe, kl, nll) as each probe completes. ``mask``: 1 for the real
        tokens of right-padded prompts."""
        labels = self.placement.to_head(batch[:, 1:])
        reading = self.positions.reading(batch, mask)
        model_mask = self.positions.model_mask(mask)
        if reading is not None:
            reading = reading.to(labels.device)
        base_pass = self.base_pass(batch, model_mask)

        def at_head(hidden: torch.Tensor) -> torch.Tensor:
            """The read positions of a last hidden state, on the head's device: the head runs there only."""
            hidden = self.placement.to_head(hidden)
            return hidden if reading is None else reading.take(hidden)

        base = base_distribution(self.head, at_head(base_pass.entering[-1]))
        if self.noise_floor is None:
            self.noise_floor = self._noise_floor(batch, base, model_mask, reading)
        base_nll = base.nll(labels) if reading is None else base.nll(reading.labels, reading.nll_weight)
        for probe in probes:
            if probe.first_changed_slot() is None:  # identity: the base itself, exactly
                finish(probe, torch.zeros_like(base_nll), base_nll)

        def finish_node(probes_here: list[Probe], hidden: torch.Tensor) -> None:
            try:
                kl, nll = kl_and_nll(self.head, base, at_head(hidden), labels, self.kernels.step, reading=reading)
            except NonFiniteLogits:
                raise NonFiniteLogits(probes_here[0].name) from None
            for probe in probes_here:
                finish(probe, kl, nll)

        def finish_stacked(ending: list[tuple[_Trie, torch.Tensor]]) -> None:
            if len(ending) == 1:
                return finish_node(ending[0][0].ending, ending[0][1])
            try:
                stacked = torch.stack([at_head(hidden) for _, hidden in ending])
                kl, nll = kl_and_nll(self.head, base, stacked, labels, self.kernels.step, reading=reading)
            except NonFiniteLogits:  # name the probe: the stacked rows are judged one by one
                for node, hidden in ending:
                    finish_node(node.ending, hidden)
                return
            for row, (node, _) in enumerate(ending):
                for probe in node.ending:
                    finish(probe, kl[row], nll[row])

        if self.stack == 1:
            self._walk_roots(_Trie.roots(probes), base_pass, base, finish_node, batch.device)
        else:
            for group in _groups(probes, self.stack):
                self._walk_stacked(_Trie.roots(group), base_pass, finish_stacked)
        return base_nll

    def _noise_floor(self, batch: torch.Tensor, base: BaseDistribution, model_mask: Optional[torch.Tensor],
                     reading: Optional[Reading]) -> float:
        """KL between two computations of the unchanged model that differ only in rounding: the first
        sequence alone through the model's own forward vs. inside its batch on this path. Kernels choose
        other tilings for other batch shapes, so this is the rounding level of this dtype and device
        (0 in float32 on CPU; with a batch of one sequence the two are the same computation)."""
        alone = model_log_probs(self.model, batch[:1], None if model_mask is None else model_mask[:1])
        if reading is None:
            return max(0.0, float(kl_full(base.log_probs(slice(0, 1)), alone).mean()))
        first = Reading(None if reading.columns is None else reading.columns[:1], reading.kl_weight[:1],
                        reading.labels[:1], reading.nll_weight[:1])
        alone = first.take(alone.to(base.logits.device))
        return max(0.0, float(kl_full(base.log_probs(slice(0, 1)), alone, first.kl_weight).mean()))

    def _walk_roots(self, roots: dict[int, _Trie], base_pass: BasePass, base: BaseDistribution,
                    finish: Callable[[list[Probe], torch.Tensor], None], device: torch.device) -> None:
        """Depth-first from every root; on the CPU, the subtrees below the roots on several threads at once
        (``cpu_walk``), the largest first."""
        subtrees = [(start, module, child) for start, root in roots.items() for module, child in root.children.items()]
        eager = self.kernels.layer_call is _call_layer and self.kernels.step is chunk_step  # compiled: one thread
        workers = subtree_workers(device, self.placement.spread or not eager, self.stack, len(subtrees))
        if workers == 1:
            for start, root in roots.items():
                self._walk(root, base_pass.entering[start], start, base_pass, base, finish)
            return
        lock = threading.Lock()

        def finish_locked(probes_here: list[Probe], hidden: torch.Tensor) -> None:
            with lock:  # the loop's callback (journal, progress) is not thread-safe; the head + KL ran already
                finish(probes_here, hidden)

        for start, root in roots.items():
            if root.ending:  # probes that end before any replay (a removed tail): the base state itself
                finish(root.ending, base_pass.entering[start])
            for node in root.nodes():
                for module in node.children:
                    self.modules(module)  # derived modules built once, here, not raced for by two workers

        def task(start: int, module: Slot, child: _Trie):
            return lambda check: self._walk(child, self._replay(module, start, base_pass.entering[start], base_pass),
                                            start + 1, base_pass, base, finish_locked, check)

        subtrees.sort(key=lambda item: -item[2].size())
        walk_subtrees([task(*item) for item in subtrees], workers)

    def _walk(
        self,
        node: _Trie,
        hidden: torch.Tensor,
        slot: int,
        base_pass: BasePass,
        base: BaseDistribution,
        finish: Callable[[list[Probe], torch.Tensor], None],
        check: Callable[[], None] = lambda: None,
    ) -> None:
        if node.ending:
            finish(node.ending, hidden)
        for module, child in node.children.items():
            check()  # on a worker thread: stops here once another subtree failed
            self._walk(child, self._replay(module, slot, hidden, base_pass), slot + 1, base_pass, base, finish, check)

    def _walk_stacked(self, roots: dict[int, _Trie], base_pass: BasePass,
                      finish: Callable[[list[tuple[_Trie, torch.Tensor]]], None]) -> None:
        """Slot by slot over one group of probes: states running the same module in a slot share one call."""
        entering: dict[int, list[tuple[_Trie, torch.Tensor]]] = {}
        slot, last_start = min(roots), max(roots)
        while entering or slot <= last_start:  # orders may be longer than the model (a layer run twice)
            states = entering.pop(slot, [])
            if slot in roots:
                states.append((roots[slot], base_pass.entering[slot]))
            ending = [(node, hidden) for node, hidden in states if node.ending]
            if ending:
                finish(ending)
            by_module: dict[Slot, list[tuple[_Trie, torch.Tensor]]] = {}
            for node, hidden in states:
                for module, child in node.children.items():
                    by_module.setdefault(module, []).append((child, hidden))
            for module, runs in by_module.items():
                outputs = self._replay_stacked(module, slot, [hidden for _, hidden in runs], base_pass)
                entering.setdefault(slot + 1, []).extend(zip([child for child, _ in runs], outputs))
            slot += 1

    def _replay_stacked(self, module: Slot, slot: int, hiddens: list[torch.Tensor],
                        base_pass: BasePass) -> Sequence[torch.Tensor]:
        """`module` in `slot` on several states of the same batch at once: concatenated along the batch, with
        every recorded argument that has the batch as its first axis tiled to match."""
        if len(hiddens) == 1:
            return [self._replay(module, slot, hiddens[0], base_pass)]
        batch = hiddens[0].shape[0]
        args, kwargs = base_pass.calls[anchor(module) if self.attention_type == "layer" else slot]
        tiled_args = tuple(_tiled(value, batch, len(hiddens)) for value in args)
        tiled_kwargs = {key: _tiled(value, batch, len(hiddens)) for key, value in kwargs.items()}
        stacked = BasePass([(tiled_args, tiled_kwargs)] * len(self.layers), [], base_pass.uses_kwarg_hidden)
        hiddens = [self.placement.to_layer(hidden, anchor(module)) for hidden in hiddens]  # from other devices
        return self._replay(module, slot, torch.cat(hiddens), stacked).split(batch)

    def _replay(self, module: Slot, slot: int, hidden: torch.Tensor, base_pass: BasePass) -> torch.Tensor:
        """Run `module` (a layer, or a module derived from layers) in `slot` on `hidden`, with the arguments the
        base pass gave the module itself, or a derived module's anchor layer (its own mask and rotary embedding:
        attention type "layer"), or the slot's original layer ("slot")."""
        layer = anchor(module)
        args, kwargs = self.placement.arguments(base_pass, layer if self.attention_type == "layer" else slot, layer)
        hidden = self.placement.to_layer(hidden, layer)
        if base_pass.uses_kwarg_hidden:
            args, kwargs = args, {**kwargs, "hidden_states": hidden}
        else:
            args = (hidden, *args[1:])
        return self.kernels.layer_call(self.modules(module), args, kwargs)

    def base_pass(self, batch: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> BasePass:
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
            given = {} if attention_mask is None else {"attention_mask": attention_mask}
            self.owner(input_ids=batch, use_cache=False, **given)
        finally:
            for handle in handles:
                handle.remove()
        if any(call is None for call in record.calls):
            raise FastPathError(
                f"{type(self.model).__name__}: not every layer ran in the base pass; its adapter's layer path is wrong"
            )
        return record
