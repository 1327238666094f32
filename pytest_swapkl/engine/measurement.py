"""What a probe run returns: per-sequence numbers, so statistics can resample sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..numerics import perplexity
from .probes import Probe


@dataclass
class ProbeStats:
    probe: Probe
    kl_per_seq: np.ndarray  # mean KL(base || probe) over each sequence's positions, nats
    nll_per_seq: np.ndarray  # mean next-token NLL over each sequence's positions 0..L-2, nats

    @property
    def kl(self) -> float:
        # Every sequence has the same length, so the mean of means is the mean over all positions.
        return float(self.kl_per_seq.mean())

    @property
    def ppl(self) -> float:
        return perplexity(float(self.nll_per_seq.mean()))  # infinite where exp overflows


@dataclass
class Measurement:
    path: str  # "fast" or "reference"
    n_sequences: int
    seq_len: int
    base_nll_per_seq: np.ndarray
    probes: dict[Probe, ProbeStats] = field(default_factory=dict)
    seconds: float = 0.0
    # KL between two computations of the unchanged model (the path's own base vs the model's forward):
    # differences below this are rounding, not redundancy.
    noise_floor: float = 0.0
    plan: dict = field(default_factory=dict)  # the batch plan it ran with (plan.BatchPlan.to_json())
    peak_memory: Optional[int] = None  # bytes, CUDA only: the allocator's peak during the measurement

    @property
    def base_ppl(self) -> float:
        return perplexity(float(self.base_nll_per_seq.mean()))

    def __getitem__(self, probe: Probe) -> ProbeStats:
        return self.probes[probe]

    def kl(self, probe: Probe) -> float:
        return self.probes[probe].kl


class Accumulator:
    """Collects per-batch numbers in sequence order and assembles a Measurement."""

    def __init__(self, probes: list[Probe]):
        self.probes = list(dict.fromkeys(probes))
        self.base_nll: list[np.ndarray] = []
        self.kl: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}
        self.nll: dict[Probe, list[np.ndarray]] = {p: [] for p in self.probes}

    def add(self, probe: Probe, kl, nll) -> None:
        self.kl[probe].append(np.asarray(kl, dtype=np.float64))
        self.nll[probe].append(np.asarray(nll, dtype=np.float64))

    def finish(self, path: str, n_sequences: int, seq_len: int, seconds: float) -> Measurement:
        stats = {
            p: ProbeStats(p, np.concatenate(self.kl[p]), np.concatenate(self.nll[p])) for p in self.probes
        }
        return Measurement(path, n_sequences, seq_len, np.concatenate(self.base_nll), stats, seconds)
