"""The noise floor, measured: how far the audit's own arithmetic moves a KL near zero.

The audit computes every KL in its dtype (bfloat16 on CUDA, float32 on CPU) on its path (the fast path
folds the head and KL in vocabulary chunks). A pair whose R and I are both smaller than the error of that
arithmetic cannot be ranked. So the floor is measured, not assumed: the audit's smallest-KL probes are
measured again on a sample of its sequences by the reference semantics (full forward, float64
log-probabilities) on a copy of the model in a wider dtype (float32 for a bfloat16 or float16 audit,
float64 for a float32 one), and the floor is the largest |KL(audit) - KL(wider reference)| over those
probes. The smallest probes are the ones chosen because a floor only decides for distances near it.

Its cost is full forwards in the wider dtype (float64 on the CPU: about twice float32's), one per probe and
sampled sequence plus the base's, so the sample is small: one sequence, cut to its first ``DEFAULT_TOKENS``
tokens (a causal model's prefix is a sequence of its own), where the audit's side is then measured again on
the same prefix. On SmolLM2-135M that is 9 float64 forwards of 128 tokens instead of 36 of 256 (41 s quiet,
issue 36); what this buys in precision is measured in docs/decisions.md, "The noise floor".

Calls `engine.measure` as a user would; the model is copied, never cast in place.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .. import engine
from ..engine.measurement import Measurement
from ..engine.probes import Probe

WIDER = {torch.bfloat16: torch.float32, torch.float16: torch.float32, torch.float32: torch.float64}
DEFAULT_PROBES = 8
DEFAULT_SEQUENCES = 1
DEFAULT_TOKENS = 128  # of each sampled sequence (its prefix); None: whole sequences


@dataclass
class NoiseFloor:
    """What the floor was measured on and what it is: None where it could not be measured."""

    floor: Optional[float]  # max |KL audit - KL wider reference| over the probes, nats; None: not measured
    audit_dtype: str
    reference_dtype: Optional[str]
    sequences: list[int] = field(default_factory=list)  # calibration rows re-measured
    probes: list[dict[str, Any]] = field(default_factory=list)  # {probe, audit, reference, abs_diff}
    max_rel_diff: Optional[float] = None  # max |diff| / reference KL over the probes with a KL > 0
    seconds: float = 0.0
    reason: str = ""  # why it is None, or how it was measured

    def to_json(self) -> dict[str, Any]:
        return {"floor": self.floor, "what": self.reason, "audit_dtype": self.audit_dtype,
                "reference_dtype": self.reference_dtype, "reference_path": "reference", "sequences": self.sequences,
                "probes": self.probes, "max_rel_diff": self.max_rel_diff}  # its seconds are in the audit's


def smallest_probes(measurement: Measurement, n_probes: int) -> list[Probe]:
    """The n non-identity probes with the smallest audit KL (ties by name): where a floor decides."""
    candidates = [p for p in measurement.probes if p.first_changed_slot() is not None]
    return sorted(candidates, key=lambda p: (measurement.kl(p), p.name))[:n_probes]


def measure_noise_floor(model: torch.nn.Module, input_ids: torch.Tensor, measurement: Measurement, *,
                        n_probes: int = DEFAULT_PROBES, n_sequences: int = DEFAULT_SEQUENCES,
                        n_tokens: Optional[int] = DEFAULT_TOKENS, seed: int = 0,
                        engine_options: Optional[dict[str, Any]] = None,
                        progress: Optional[Callable[[int, int], None]] = None) -> NoiseFloor:
    """The floor of ``measurement`` (the audit of ``model`` on ``input_ids``): ``n_probes`` of its smallest probes
    on ``n_sequences`` rows drawn with ``seed`` (their first ``n_tokens`` tokens), audit arithmetic against the
    wider reference.

    The audit's side is the audit's own per-sequence numbers where it measured every row whole (exact mode), else
    those probes measured again on the sample with ``engine_options`` (the audit's path and settings).
    ``progress(done, total)`` counts the wider reference's probe-sequences, the slow part."""
    started = time.perf_counter()
    dtype = next(model.parameters()).dtype
    audit_dtype = str(dtype).replace("torch.", "")
    wider = WIDER.get(dtype)
    if wider is None:
        return NoiseFloor(None, audit_dtype, None, reason=f"no wider dtype than {audit_dtype} to compare with")
    probes = smallest_probes(measurement, n_probes)
    if not probes:
        return NoiseFloor(None, audit_dtype, str(wider).replace("torch.", ""),
                          reason="no probe other than the identity to measure")
    rows, sample = sampled_rows(input_ids, n_sequences, seed)
    cut = n_tokens is not None and sample.shape[1] > n_tokens
    sample = sample[:, :n_tokens] if cut else sample
    ours_per_seq = audit_side(model, sample, rows, probes, measurement, engine_options or {}, cut)
    reference = _wider_reference(model, sample, probes, wider, engine_options or {}, progress)
    entries, relative = [], []
    for probe in probes:
        ours, theirs = float(ours_per_seq[probe].mean()), float(reference[probe].kl_per_seq.mean())
        entries.append({"probe": probe.name, "audit": ours, "reference": theirs, "abs_diff": abs(ours - theirs)})
        if theirs > 0:
            relative.append(abs(ours - theirs) / theirs)
    return NoiseFloor(max(e["abs_diff"] for e in entries), audit_dtype, str(wider).replace("torch.", ""),
                      rows.tolist(), entries, max(relative) if relative else None, time.perf_counter() - started,
                      f"max |KL(audit, {audit_dtype}) - KL(reference, {str(wider).replace('torch.', '')})| over the "
                      f"{len(probes)} smallest-KL probes on {len(rows)} x {sample.shape[1]} tokens")


def sampled_rows(input_ids: torch.Tensor, n_sequences: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """``n_sequences`` calibration rows drawn with ``seed`` (sorted) and those rows' ids."""
    rows = np.sort(np.random.default_rng(seed).choice(input_ids.shape[0], size=min(n_sequences, input_ids.shape[0]),
                                                      replace=False))
    return rows, input_ids[torch.from_numpy(rows)]


def audit_side(model: torch.nn.Module, sample: torch.Tensor, rows: np.ndarray, probes: Sequence[Probe],
               measurement: Measurement, engine_options: dict[str, Any], cut: bool = False) -> dict[Probe, np.ndarray]:
    """The audit's own per-sequence KLs of ``probes`` on ``rows`` where it measured every row whole (exact mode),
    else the probes measured again on ``sample`` (its first tokens where ``cut``) on the audit's path."""
    if not cut and all(len(measurement[p].kl_per_seq) == measurement.n_sequences for p in probes) \
            and measurement.n_sequences > int(rows.max()):
        return {p: measurement[p].kl_per_seq[rows] for p in probes}
    again = engine.measure(model, sample, list(probes), **quiet(engine_options))
    return {p: again[p].kl_per_seq for p in probes}


def _wider_reference(model: torch.nn.Module, sample: torch.Tensor, probes: Sequence[Probe], wider: torch.dtype,
                     engine_options: dict[str, Any],
                     progress: Optional[Callable[[int, int], None]] = None) -> Measurement:
    """The probes by the reference semantics on a copy of the model in ``wider``; one sequence per batch, since
    full float64 log-probabilities of a large vocabulary are the biggest tensors here."""
    wide = copy.deepcopy(model).to(wider)
    try:
        options = {key: value for key, value in quiet(engine_options).items()
                   if key in ("attention_type", "positions", "pads")}
        return engine.measure(wide, sample, list(probes), path="reference", batch_size=1, compile="off",
                              progress=progress, **options)
    finally:
        del wide
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def quiet(engine_options: dict[str, Any]) -> dict[str, Any]:
    """The audit's engine settings without its journal and progress: this run is not the audit's."""
    return {key: value for key, value in engine_options.items() if key not in ("journal", "progress")}
