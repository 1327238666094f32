"""Variable-length prompts: ``prompts:FILE`` reads one prompt per line of a text file, per record of a
``.jsonl`` file (``text`` or ``input_ids``), or per row of a ``.npy``/``.pt`` id array right-padded with the
tokenizer's pad id (else its eos, else 0), each kept whole (no chunking) and cut to ``--seq-len`` tokens, as
the paper's scripts truncate; the prompts are right-padded to the longest with an attention mask (to ``--seq-len``
under ``--pads in``, where the pads are read and their number matters, as the paper's ``padding="max_length"``).

Right padding, not left: with a causal mask a real token never sees a later pad, and its position ids stay
0..L-1 as when the prompt runs alone, so every real position's distribution is the unpadded prompt's
(tests/engine/test_positions.py). The last real token is found from the mask (``engine/reading.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError

PREFIX = "prompts:"


class PromptError(InputError):
    """A prompts file that gives no usable prompts."""


def is_prompts(source: str) -> bool:
    return str(source).startswith(PREFIX)


def prompt_documents(path: Path, source: str, budget: Any, jsonl_documents: Any) -> Iterator[Any]:
    """One document per prompt: a line of a .txt file (blank lines skipped), a record of a .jsonl file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return jsonl_documents(path, budget)
    if suffix == ".txt":
        return iter([line for line in budget.read_text(path).splitlines() if line.strip()])
    raise PromptError(f"{source}: prompts come from a .txt file (one per line), a .jsonl file (one per record) or a "
                      f".npy/.pt array (one right-padded row each), not '{path.suffix}'")


def unpadded_rows(array: np.ndarray, pad_id: int) -> list[np.ndarray]:
    """The prompts of a right-padded id array: each row without its trailing run of ``pad_id`` (a prompt that
    itself ends in the pad id, e.g. an eos used as pad, loses that token: give such prompts as .jsonl)."""
    rows = []
    for row in np.asarray(array, dtype=np.int64):
        real = np.flatnonzero(row != pad_id)
        rows.append(row[:real[-1] + 1] if len(real) else row[:0])
    return rows


def padded(prompts: list[np.ndarray], seq_len: int, pad_id: int, source: str,
           to_seq_len: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The prompts cut to ``seq_len`` and right-padded with ``pad_id`` to the longest (to ``seq_len`` with
    ``to_seq_len``): (ids, mask)."""
    prompts = [ids[:seq_len] for ids in prompts]
    if not prompts:
        raise PromptError(f"{source} holds no prompts")
    short = [k for k, ids in enumerate(prompts) if len(ids) < 2]
    if short:
        raise PromptError(f"{source}: prompt {short[0]} has {len(prompts[short[0]])} token(s); every prompt needs "
                        "at least 2")
    width = seq_len if to_seq_len else max(len(ids) for ids in prompts)
    ids = np.full((len(prompts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, :len(prompt)] = prompt
        mask[row, :len(prompt)] = 1
    return ids, mask
