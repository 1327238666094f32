"""``--heads SPEC``: which heads of which pairs the head table measures.

    parse_head_spec("3-4:0+5,7-8", n_layers=12)   # [HeadChoice(3, 4, (0, 5)), HeadChoice(7, 8, None)]

A spec is a pair spec (``adjacent``, ``all``, ``window:K`` or ``i-j,...``, as ``--pairs`` reads it) in which an
``i-j`` pair may end in ``:HEADS``: head numbers joined by ``+``, a run written ``a..b`` (both ends included),
e.g. ``3-4:0+5``, ``3-4:0..3+7``. Without ``:HEADS`` every head of layer i is measured (head(i<-j, h), i < j).
Commas stay the pair separator, so every ``--pairs`` spec is a valid ``--heads`` spec with the same meaning.

`check_heads_against_config` refuses, in one line and before any weights load, a head that the config says is
out of range and a head table on a model without attention heads; the loaded layers are checked again
(`heads.check_head`), for layouts the config does not describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .probes import PAIR_SPEC_HELP, SpecError, parse_pairs

HEAD_SPEC_HELP = f"{PAIR_SPEC_HELP}, each i-j optionally with :HEADS (e.g. 3-4:0+5,7-8; a run: 3-4:0..3)"
_ITEM = re.compile(r"\s*([0-9]+\s*-\s*[0-9]+)\s*(?::\s*([0-9.+\s]*))?\s*")
_HEAD = re.compile(r"\s*([0-9]{1,6})\s*(?:\.\.\s*([0-9]{1,6})\s*)?")


@dataclass(frozen=True)
class HeadChoice:
    i: int  # the layer whose head is replaced (the pair's lower layer)
    j: int  # the donor layer
    heads: Optional[tuple[int, ...]]  # None: every head of layer i

    @property
    def label(self) -> str:
        heads = "" if self.heads is None else ":" + "+".join(str(h) for h in self.heads)
        return f"{self.i}-{self.j}{heads}"


def _heads(text: str, spec: str) -> tuple[int, ...]:
    heads: list[int] = []
    for part in text.split("+"):
        match = _HEAD.fullmatch(part)
        if not match:
            raise SpecError(f"--heads {spec!r}: heads {text!r} are not understood: write head numbers joined by + "
                            "or a run a..b, e.g. 3-4:0+5 or 3-4:0..3")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise SpecError(f"--heads {spec!r}: the run {part.strip()!r} ends before it starts")
        heads += [h for h in range(first, last + 1) if h not in heads]
    return tuple(heads)


def parse_head_spec(spec: str, n_layers: Optional[int]) -> list[HeadChoice]:
    """The choices a spec names, pairs merged (a pair named twice measures the union of its heads).

    ``n_layers=None`` checks only the syntax, before a model is loaded, and returns no choices.
    """
    text = str(spec).strip()
    if ":" not in text or re.fullmatch(r"window:[0-9]+", text.lower()):
        return [HeadChoice(i, j, None) for i, j in parse_pairs(text, n_layers)]
    choices: dict[tuple[int, int], Optional[tuple[int, ...]]] = {}
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise SpecError(f"--heads {spec!r} is not understood: use {HEAD_SPEC_HELP}")
        pairs = parse_pairs(match.group(1), n_layers)
        heads = None if match.group(2) is None else _heads(match.group(2), spec)
        for pair in pairs:
            if pair in choices:
                known = choices[pair]
                heads = None if known is None or heads is None else known + tuple(h for h in heads if h not in known)
            choices[pair] = heads
    return [HeadChoice(i, j, heads) for (i, j), heads in choices.items()]


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def check_heads_against_config(spec: Optional[str], config: Any) -> None:
    """One-line SpecError, before any weights load, for a head the config says no layer has."""
    if not spec or config is None:
        return
    config = _text_config(config)
    n_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(n_layers, int):
        return
    counts = getattr(config, "num_attention_heads", None)
    if counts is None:
        family = getattr(config, "model_type", None) or type(config).__name__
        raise SpecError(f"--heads {spec}: this {family} model has no attention heads (its config names no "
                        "num_attention_heads), so there is no head to probe")
    for choice in parse_head_spec(spec, n_layers):
        count = counts[choice.i] if isinstance(counts, (list, tuple)) and len(counts) == n_layers else counts
        if not isinstance(count, int) or choice.heads is None:
            continue
        outside = [h for h in choice.heads if h >= count]
        if outside:
            raise SpecError(f"--heads {choice.label}: head {outside[0]} is out of range, layer {choice.i} has "
                            f"{count} attention heads (0..{count - 1})")
