"""One held-out text stream for the sliding-window evaluator, read as the paper's scripts read WikiText-2.

The paper (``wikitext_ppl.py``, ``matched_eval_*.py``): ``load_dataset("wikitext", "wikitext-2-raw-v1",
split="test")``, the non-blank rows joined by a blank line, cut to the first N whitespace-separated words
(re-joined by single spaces), tokenized once with the tokenizer's own special tokens. Here the source is any
SOURCE ``--data`` takes; ``hf:wikitext:wikitext-2-raw-v1:test`` is the paper's, and a ``save_to_disk`` folder
of it reads the same rows offline. Sources of token ids are concatenated as they are (no words to cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .data import DataError, _check_vocabulary, documents, token_sha256

# What the paper's two evaluators read: 20,000 words (wikitext_ppl.py) and 5,000 (the matched 8B runs).
PAPER_SOURCE = "hf:wikitext:wikitext-2-raw-v1:test"


@dataclass(frozen=True)
class HeldoutStream:
    input_ids: Any  # torch int64 [n_tokens]
    source: str
    words: Optional[int]  # the word cut asked for (None: the whole text)
    sha256: str
    tokens: Optional[int] = None  # the token cut asked for (None: every token of the text)

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    def record(self) -> dict:
        return {"source": self.source, "words": self.words, "tokens": self.tokens, "n_tokens": self.n_tokens,
                "sha256": self.sha256}


def paper_text(rows: list[str], words: Optional[int]) -> str:
    """The paper's text: non-blank rows joined by a blank line, then the first ``words`` words."""
    text = "\n\n".join(row for row in rows if row.strip())
    if words is not None:
        split = text.split()
        if len(split) > words:
            text = " ".join(split[:words])
    return text


def load_heldout_stream(source: str, tokenizer: Any, *, words: Optional[int] = None,
                        tokens: Optional[int] = None, vocab_size: Optional[int] = None) -> HeldoutStream:
    """The stream of ``source``: its text cut to ``words`` words, tokenized, then cut to ``tokens`` tokens."""
    import numpy as np
    import torch

    rows, ids = [], []
    for document in documents(str(source)):
        (rows if isinstance(document, str) else ids).append(document)
    if rows and ids:
        raise DataError(f"held-out stream {source} mixes text and token ids: give one or the other")
    if ids:
        if words is not None:
            raise DataError(f"held-out stream {source} holds token ids, which have no words: use --heldout-tokens "
                            "instead of --heldout-words")
        stream = np.concatenate([np.asarray(d, dtype=np.int64).reshape(-1) for d in ids])
    else:
        if tokenizer is None:
            raise DataError(f"held-out stream {source} is text and needs the model's tokenizer")
        stream = np.asarray(tokenizer(paper_text(rows, words), verbose=False)["input_ids"], dtype=np.int64)
    if tokens is not None:
        stream = stream[:tokens]
    _check_vocabulary(stream, vocab_size, str(source))
    input_ids = torch.from_numpy(np.ascontiguousarray(stream))
    return HeldoutStream(input_ids, str(source), words, token_sha256(input_ids[None]), tokens)


def joined_chunks(input_ids: Any, source: str, tokens: Optional[int]) -> HeldoutStream:
    """One stream of held-out chunks ``[n, seq_len]`` joined in their order: the calibration source's unused
    chunks (``data.load_heldout``), when the sliding windows have no held-out text of their own."""
    stream = input_ids.reshape(-1).contiguous()
    return HeldoutStream(stream, source, None, token_sha256(stream[None]), tokens)
