"""The bundled offline multiple-choice task: pick a passage's true continuation among spans of the same work.

How an item is built (``continuation_task``), from the documents of a text source (``bundled_task``: the
bundled held-out works of ``demo-heldout``, which neither the demo model nor the demo calibration read, one
document per work), with the model's own tokenizer:

- every work is tokenized once; an item takes ``context`` tokens at a seeded random position of one work,
  its true continuation is the next ``continuation`` tokens, and ``choices - 1`` distractors are spans of
  the same length drawn (seeded) from elsewhere in the *same* work, none overlapping the item's window;
- the choices are shuffled (seeded), so the true one is not always first;
- every choice becomes one sequence ``context + choice`` of ``context + continuation`` tokens (BOS first
  where the tokenizer starts texts with it), so an item is ``choices`` consecutive rows of ``input_ids``.

A model answers with the choice whose sequence has the lowest mean next-token NLL. The context tokens are
the same in every choice of an item and a causal model sees them before the choice, so their NLL is the
same in every row: comparing the rows' means compares the choices' own NLL (the usual "loglikelihood of
the continuation" of lm-evaluation-harness). Chance level: 1 / ``choices`` (25% with four).

Items alternate between a calibration half (even items) and a held-out half (odd items): the search
chooses sets on one half and the costs are reported on the other. Every item knows the work it came from
(``documents``), so its per-item results can be resampled by work (``stats.bootstrap_indices(groups=)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np
import torch

from ..errors import InputError


class TaskError(InputError):
    pass


@dataclass(frozen=True)
class ChoiceTask:
    """``input_ids`` [n_items * choices, context + continuation]; ``answers[n]`` is item n's true choice."""

    input_ids: torch.Tensor
    answers: np.ndarray
    choices: int
    context: int
    continuation: int
    source: str
    documents: Optional[np.ndarray] = None  # per item, the index of its work among the source's documents
    works: Optional[tuple[str, ...]] = None  # the works' names, where the source names them

    @property
    def n_items(self) -> int:
        return len(self.answers)

    @property
    def chance(self) -> float:
        return 1.0 / self.choices

    def half(self, parity: int) -> "ChoiceTask":
        """Items 0, 2, 4, ... (parity 0: calibration) or 1, 3, 5, ... (parity 1: held-out)."""
        items = np.arange(parity, self.n_items, 2)
        rows = (items[:, None] * self.choices + np.arange(self.choices)).reshape(-1)
        suffix = "calibration items" if parity == 0 else "held-out items"
        documents = None if self.documents is None else self.documents[items]
        return ChoiceTask(self.input_ids[torch.from_numpy(rows)], self.answers[items], self.choices, self.context,
                          self.continuation, f"{self.source} ({suffix})", documents, self.works)

    def record(self) -> dict:
        """For the JSON: the items, and the works they were drawn from."""
        used = sorted(set(self.documents.tolist())) if self.documents is not None else []
        return {"source": self.source, "items": self.n_items, "choices": self.choices,
                "works": [self.works[d] if self.works else f"document {d}" for d in used]}

    def correct(self, nll_per_seq: np.ndarray) -> np.ndarray:
        """Per item, 1.0 where the true choice has the lowest NLL (ties count against the model), else 0.0."""
        nll = np.asarray(nll_per_seq, dtype=np.float64).reshape(self.n_items, self.choices)
        true = nll[np.arange(self.n_items), self.answers]
        others = nll.copy()
        others[np.arange(self.n_items), self.answers] = np.inf
        return (true < others.min(axis=1)).astype(np.float64)


def continuation_task(documents: Iterable[str], tokenizer: Any, *, items: int = 128, choices: int = 4,
                      context: int = 48, continuation: int = 16, seed: int = 0, bos: int | None = None,
                      source: str = "demo", works: Optional[tuple[str, ...]] = None) -> ChoiceTask:
    """``items`` items spread over the works in proportion to their length (see the module docstring)."""
    if choices < 2:
        raise TaskError(f"a multiple-choice task needs at least 2 choices, got {choices}")
    window = context + continuation
    tokenized = [np.asarray(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)
                 for text in documents]
    # A work needs room for the item's window and choices - 1 disjoint spans outside it.
    kept = [n for n, ids in enumerate(tokenized) if len(ids) >= window + (choices + 1) * continuation]
    works_ids = [tokenized[n] for n in kept]
    if not works_ids:
        raise TaskError(f"{source} has no text long enough for items of {window} tokens and {choices} choices: "
                        "pass longer documents or lower the context")
    rng = np.random.default_rng(seed)
    lengths = np.array([len(ids) for ids in works_ids], dtype=np.float64)
    picks = rng.choice(len(works_ids), size=items, p=lengths / lengths.sum())
    rows, answers = [], []
    for work in picks:
        ids = works_ids[work]
        start = int(rng.integers(0, len(ids) - window + 1))
        prefix, true = ids[start:start + context], ids[start + context:start + window]
        distractors = _spans_outside(ids, start, window, continuation, choices - 1, rng)
        order = rng.permutation(choices)  # order[c] = which candidate sits at choice c; candidate 0 is the true one
        candidates = [true] + distractors
        rows += [np.concatenate([prefix, candidates[c]]) for c in order]
        answers.append(int(np.flatnonzero(order == 0)[0]))
    ids = np.stack(rows)
    if bos is not None:
        ids = np.concatenate([np.full((len(ids), 1), bos, dtype=np.int64), ids], axis=1)
    return ChoiceTask(torch.from_numpy(ids), np.array(answers), choices, context + (bos is not None),
                      continuation, source, np.asarray(kept)[picks], works)


def _spans_outside(ids: np.ndarray, start: int, window: int, length: int, count: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` spans of ``length`` tokens of the same work, disjoint from [start, start + window) and each other."""
    taken = [(start, start + window)]
    spans = []
    for _ in range(1000 * count):
        if len(spans) == count:
            break
        begin = int(rng.integers(0, len(ids) - length + 1))
        if all(begin + length <= low or begin >= high for low, high in taken):
            taken.append((begin, begin + length))
            spans.append(ids[begin:begin + length])
    if len(spans) < count:
        raise TaskError(f"a work of {len(ids)} tokens has no room for {count} distractors of {length} tokens")
    return spans


BUNDLED_ITEMS = 2048  # 1024 items in each half: the held-out error rate of one set is read on 1024 items


def bundled_task(tokenizer: Any, *, items: int = BUNDLED_ITEMS, choices: int = 4, context: int = 48,
                 continuation: int = 16, seed: int = 0, source: str = "demo-heldout") -> ChoiceTask:
    """The task built from the bundled works of ``source``: by default the held-out works (``demo-heldout``),
    none of which the demo calibration (``demo``) or the demo model read; ``source="demo"`` gives the old task
    over the calibration's works."""
    from .data import documents, leading_bos, work_names  # the bundled corpus, and the BOS rule of its texts

    return continuation_task(documents(source), tokenizer, items=items, choices=choices, context=context,
                             continuation=continuation, seed=seed, bos=leading_bos(tokenizer), source=source,
                             works=work_names(source))
