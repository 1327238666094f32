"""A reduced-dtype audit's systematic offset against float32, measured and carried into its KL intervals.

A bfloat16 (or float16) audit's KLs are not float32's plus noise: on the study models bfloat16 minus float32 was
positive on every probe, 0.4-1.8% of the KL, as large as the per-pair sampling error (issue 34), and the bootstrap
intervals hold the bfloat16 means only. So the offset is measured, not assumed:
  * ``n_probes`` probes at evenly spaced ranks of the audit's KLs (the identity never), so the whole range is
    represented, are measured again on ``n_sequences`` seeded calibration rows by a float32 copy of the model on
    the audit's own path (what a float32 audit would report). The copy holds the audit's weights, so the offset
    is the arithmetic's; a checkpoint stored wider also loses weight precision when loaded in bfloat16, which
    only loading it again shows (``--sensitivity dtype``);
  * per probe the relative offset mean(audit) / mean(float32) - 1 over those rows; the systematic offset delta is
    their mean, with a 95% percentile bootstrap interval that resamples the rows (shared by every probe) and the
    probes, since both were sampled.
And carried (``RULE``): a float32 mean is the audit's mean / (1 + delta), so every KL interval [L, U] of the audit
(each pair's R in both directions and reduced, I, each layer's removal) becomes [L / (1 + delta_high),
U / (1 + delta_low)]. It holds the float32 mean whenever the audit's interval holds its own mean and delta lies in
its interval. The rank correlations, top-k Jaccards and stabilities and the I/R ratios are left as they are: a
common relative offset changes no order and cancels in a ratio. The probe-to-probe scatter around delta is what the
noise floor bounds (analysis/noise.py), not this. A float32 or float64 audit is its own reference: offset 0,
intervals unchanged.

Calls `engine.measure` as a user would; the model is copied, never cast in place.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import numpy as np
import torch

from .. import engine
from ..engine.measurement import Measurement
from ..engine.probes import Probe
from . import stats
from .audit import Audit, Estimate
from .noise import audit_side, quiet, sampled_rows

REDUCED = (torch.bfloat16, torch.float16)  # the dtypes whose audits are carried to float32
REDUCED_NAMES = tuple(str(dtype).replace("torch.", "") for dtype in REDUCED)
DEFAULT_PROBES = 16
DEFAULT_SEQUENCES = 8
RULE = ("each KL interval [low, high] of a pair or removal becomes [low / (1 + offset_high), "
        "high / (1 + offset_low)] (the float32 mean is the audit's / (1 + offset)); rank correlations, Jaccards, "
        "stabilities and I/R ratios unchanged (a common relative offset cancels in them)")


@dataclass
class DtypeOffset:
    """The systematic relative offset of the audit's dtype against float32: 0 for a float32 audit, None where it
    could not be measured (then nothing is carried)."""

    audit_dtype: str
    reference_dtype: Optional[str]
    relative: Optional[float]  # mean over probes of mean(audit) / mean(float32) - 1
    low: Optional[float]  # its 95% interval
    high: Optional[float]
    probes: list[dict[str, Any]] = field(default_factory=list)  # {probe, audit, reference, relative}
    sequences: list[int] = field(default_factory=list)  # calibration rows measured again
    seconds: float = 0.0
    what: str = ""  # how it was measured, or why not

    @property
    def carried(self) -> bool:
        """Whether the audit's intervals were moved by it (a measured, non-zero offset)."""
        return self.low is not None and self.high is not None and (self.low, self.high) != (0.0, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {"audit_dtype": self.audit_dtype, "reference_dtype": self.reference_dtype, "relative": self.relative,
                "ci": [self.low, self.high], "carried": self.carried,
                "rule": RULE if self.carried else "none: intervals as measured", "what": self.what,
                "sequences": self.sequences, "probes": self.probes, "seconds": round(self.seconds, 3)}



def without_measurement(dtype: str, why: str) -> DtypeOffset:
    """The record of an audit that measured no offset: a float32 (or wider) audit is its own reference, offset 0;
    a reduced one says why nothing was carried (``why``)."""
    if dtype not in REDUCED_NAMES:
        return DtypeOffset(dtype, dtype, 0.0, 0.0, 0.0, what=f"a {dtype} audit is its own reference: no offset")
    return DtypeOffset(dtype, "float32", None, None, None, what=f"not measured: {why}")

def spread_probes(measurement: Measurement, n_probes: int) -> list[Probe]:
    """``n_probes`` non-identity probes at evenly spaced ranks of the audit's KL, smallest to largest."""
    candidates = sorted((p for p in measurement.probes if p.first_changed_slot() is not None),
                        key=lambda p: (measurement.kl(p), p.name))
    if len(candidates) <= n_probes:
        return candidates
    return [candidates[k] for k in np.unique(np.linspace(0, len(candidates) - 1, n_probes).round().astype(int))]


def offset_interval(audit: np.ndarray, reference: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float, np.ndarray]:
    """(delta, low, high, per-probe offsets) from [probes, sequences] tables of the same rows in both dtypes.

    Probes whose reference mean is 0 have no relative offset and are left out."""
    audit, reference = np.asarray(audit, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    keep = reference.mean(1) > 0
    audit, reference = audit[keep], reference[keep]
    per_probe = audit.mean(1) / reference.mean(1) - 1
    rows = stats.bootstrap_indices(audit.shape[1], n_resamples, seed)  # [resamples, sequences], shared by probes
    picks = np.random.default_rng(seed + 1).integers(0, len(per_probe), (n_resamples, len(per_probe)))
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = audit[:, rows].mean(-1) / reference[:, rows].mean(-1) - 1  # [probes, resamples]
    drawn = np.take_along_axis(resampled.T, picks, axis=1).mean(1)
    drawn = drawn[np.isfinite(drawn)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(drawn, [tail, 100 - tail])
    return float(per_probe.mean()), float(low), float(high), per_probe


def carry_interval(low: Optional[float], high: Optional[float], offset_low: float,
                   offset_high: float) -> tuple[Optional[float], Optional[float]]:
    """``RULE`` on one interval: [low / (1 + offset_high), high / (1 + offset_low)]; missing ends stay missing."""
    return (None if low is None else low / (1 + offset_high), None if high is None else high / (1 + offset_low))


def carried_audit(audit: Audit, offset: DtypeOffset) -> Audit:
    """``audit`` with every pair's and removal's KL interval carried by ``offset`` (the estimates themselves, the
    audit's numbers, unchanged); ``audit`` itself where nothing is carried."""
    if not offset.carried:
        return audit

    def moved(estimate: Estimate) -> Estimate:
        low, high = carry_interval(estimate.low, estimate.high, offset.low, offset.high)
        return replace(estimate, low=low, high=high)

    pairs = [replace(p, replacement_ij=moved(p.replacement_ij), replacement_ji=moved(p.replacement_ji),
                     interchange=moved(p.interchange), replacement=moved(p.replacement)) for p in audit.pairs]
    removals = [replace(r, kl=moved(r.kl)) for r in audit.removals]
    return replace(audit, pairs=pairs, removals=removals)


def measure_dtype_offset(model: torch.nn.Module, input_ids: torch.Tensor, measurement: Measurement, *,
                         n_probes: int = DEFAULT_PROBES, n_sequences: int = DEFAULT_SEQUENCES, seed: int = 0,
                         n_resamples: int = 1000, engine_options: Optional[dict[str, Any]] = None,
                         progress: Optional[Callable[[int, int], None]] = None) -> DtypeOffset:
    """The offset of ``measurement`` (the audit of ``model`` on ``input_ids``) against a float32 copy of ``model``,
    on ``n_probes`` probes (`spread_probes`) and ``n_sequences`` rows drawn with ``seed``."""
    started = time.perf_counter()
    dtype = next(model.parameters()).dtype
    name = str(dtype).replace("torch.", "")
    if dtype not in REDUCED:
        return without_measurement(name, "")
    probes = spread_probes(measurement, n_probes)
    if not probes:
        return without_measurement(name, "no probe other than the identity to measure")
    rows, sample = sampled_rows(input_ids, n_sequences, seed)
    options = quiet(engine_options or {})
    side = audit_side(model, sample, rows, probes, measurement, options)  # measured again after adaptive mode
    ours = np.stack([side[p] for p in probes])
    wide = copy.deepcopy(model).to(torch.float32)
    try:
        theirs = engine.measure(wide, sample, probes, **{**options, "compile": "off"}, progress=progress)
    finally:
        del wide
    reference = np.stack([theirs[p].kl_per_seq for p in probes])
    if not (reference.mean(1) > 0).any():
        return without_measurement(name, "every float32 KL measured is 0")
    delta, low, high, per_probe = offset_interval(ours, reference, n_resamples, seed)
    kept = [p for p, positive in zip(probes, reference.mean(1) > 0) if positive]
    entries = [{"probe": p.name, "audit": float(ours[probes.index(p)].mean()),
                "reference": float(reference[probes.index(p)].mean()), "relative": float(r)}
               for p, r in zip(kept, per_probe)]
    return DtypeOffset(name, "float32", delta, low, high, entries, rows.tolist(), time.perf_counter() - started,
                       f"mean of mean(KL {name}) / mean(KL float32) - 1 over {len(kept)} probes at evenly spaced "
                       f"KL ranks on {len(rows)} sequences, the audit's path; 95% bootstrap over rows and probes")

