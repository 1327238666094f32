"""How the audit's verdicts move with its conventions: the sensitivity section (`swapkl audit --sensitivity`).

    section = sensitivity_section(Context(audit, pairs, n_layers, Tolerances()), ("rules", "draws", "size"))

Each factor is one entry of ``FACTORS`` (a name, a one-line summary, a function of the `Context` returning its JSON
record); a new factor is one more ``@_factor`` function. The cheap factors (pair rules, calibration draws and sizes)
reuse the measured per-sequence table: numpy only, no new forwards. The factors that measure again (dtype, sequence
length) ask ``Context.remeasure`` for a new table; the audit runner supplies it (audit/sensitivity_runs.py), since
analysis loads no model. Those are opt-in by name (``measures=True``).

A *verdict* here is what the audit states: each protocol's top-k removal set, the top-k Jaccard verdict at the
tolerance's budgets, the Spearman verdict (rho >= the minimum) and the set of divergent pairs (the per-pair rank
cases that fail). docs/sensitivity.md says what each factor varies and how the records read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..cases import pair_label
from ..engine.measurement import Measurement, ProbeStats
from ..registry import Registry
from . import stats
from .agreement import Tolerances, pair_outcomes
from .audit import Audit, summarize
from .pair_rules import MIN_PARTNER, PAIR_RULES, SetRule

Remeasure = Callable[[str, Any], Optional[Measurement]]  # ("dtype", "bfloat16") -> a table of the same probes


@dataclass(frozen=True)
class Factor:
    compute: Callable[["Context"], dict]
    measures: bool  # needs new forwards: run only when named


FACTORS: Registry[Factor] = Registry("sensitivity factor")
SPACINGS = (0, 1, 2)  # min-partner's spacing values the rules factor tries
N_DRAWS = 8  # replicated calibration draws: 4 seeded splits into two halves each
SIZES = (0.25, 0.5, 1.0)  # shares of the calibration sequences the size factor keeps


def free_factors() -> tuple[str, ...]:
    """The factors that measure nothing, in registry order: what a bare --sensitivity asks for."""
    return tuple(name for name in FACTORS if not FACTORS.get(name).measures)


def parse_factors(text: str) -> tuple[str, ...]:
    """'rules,draws' -> ('rules', 'draws'); an unknown name is a one-line ValueError naming the known ones."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    if not names:
        raise ValueError(f"must name factors, comma-separated, from {', '.join(FACTORS)}")
    unknown = [name for name in names if name not in FACTORS]
    if unknown:
        raise ValueError(f"unknown sensitivity factor {unknown[0]!r}: use {', '.join(FACTORS)} (comma-separated)")
    return names


@dataclass
class Context:
    """What the factors read: the full-size audit and how it was summarized, and a way to measure again."""

    audit: Audit
    pairs: list[tuple[int, int]]
    n_layers: int
    tolerances: Tolerances = field(default_factory=Tolerances)
    n_resamples: int = 1000
    seed: int = 0
    dtype: str = "float32"
    seq_len: int = 0
    remeasure: Optional[Remeasure] = None
    prune_budget: tuple[str, ...] = ()  # the audit's --prune-budget specs (their searches may run a beam)

    def summarize(self, measurement: Measurement) -> Audit:
        """``measurement`` summarized exactly as the audit was (rule, reduction, resamples, seed)."""
        audit = self.audit
        return summarize(measurement, self.pairs, self.n_layers, audit.replacement_reduce, self.n_resamples,
                         self.seed, audit.pair_rule)


def _factor(name: str, summary: str, measures: bool = False) -> Callable:
    def register(function: Callable[[Context], dict]) -> Callable[[Context], dict]:
        FACTORS.register(name, Factor(function, measures), summary, __name__)
        return function
    return register


def sensitivity_section(context: Context, names: Sequence[str]) -> dict[str, Any]:
    """The JSON's ``sensitivity`` record: the reference verdicts and one record per factor named."""
    section: dict[str, Any] = {"factors": list(names), "verdicts": verdict_items(verdicts(context.audit,
                                                                                          context.tolerances))}
    uneven = _uneven(context.audit.measurement)
    for name in names:
        if uneven and name in TABLE_FACTORS:
            section[name] = {"skipped": uneven}
        else:
            section[name] = FACTORS.get(name).compute(context)
    return section


TABLE_FACTORS = ("draws", "size", "dtype")  # they read every probe on every sequence


def _uneven(measurement: Measurement) -> str:
    """Why the table has no full rows (adaptive mode measures some probes on fewer sequences), or ''."""
    if any(len(result.kl_per_seq) != measurement.n_sequences for result in measurement.probes.values()):
        return "an adaptive audit measures some probes on fewer sequences: no row holds every probe"
    return ""


# ---------------------------------------------------------------- verdicts

def verdicts(audit: Audit, tolerances: Tolerances) -> dict[str, Any]:
    """What an audit states: top-k sets per protocol, the Jaccard and Spearman verdicts, the divergent pairs."""
    return {"topk": {t.k: (t.replacement_layers, t.interchange_layers) for t in audit.top_k},
            "jaccard": {t.k: bool(t.jaccard >= tolerances.min_jaccard) for t in audit.top_k
                        if t.k in tolerances.jaccard_k},
            "spearman": None if audit.spearman is None else bool(audit.spearman >= tolerances.min_spearman),
            "divergent": divergent_pairs(audit, tolerances)}


def divergent_pairs(audit: Audit, tolerances: Tolerances) -> list[str]:
    """The pairs whose per-pair rank case fails (`agreement.pair_outcomes` on the paired rank intervals)."""
    if not audit.pairs:
        return []
    r = tuple(np.array([getattr(p.replacement, key) for p in audit.pairs]) for key in ("value", "low", "high"))
    i = tuple(np.array([getattr(p.interchange, key) for p in audit.pairs]) for key in ("value", "low", "high"))
    rank_r = np.array([p.rank_interval_replacement for p in audit.pairs], dtype=np.float64)
    rank_i = np.array([p.rank_interval_interchange for p in audit.pairs], dtype=np.float64)
    log_ratios = np.array([np.nan if p.log_ratio is None else p.log_ratio for p in audit.pairs])
    passed, _, _ = pair_outcomes(r, i, audit.measurement.noise_floor or 0.0, tolerances, log_ratios, rank_r, rank_i)
    return [pair_label(p.i, p.j) for p, ok in zip(audit.pairs, passed) if not ok]


def verdict_items(found: dict[str, Any]) -> dict[str, Any]:
    """The verdicts flattened to named items, the keys every factor's 'stays' shares use."""
    items: dict[str, Any] = {}
    for k, (replacement, interchange) in found["topk"].items():
        items[f"top-{k} R"] = list(replacement)
        items[f"top-{k} I"] = list(interchange)
    for k, agrees in found["jaccard"].items():
        items[f"Jaccard top-{k}"] = agrees
    items["Spearman"] = found["spearman"]
    items["divergent pairs"] = list(found["divergent"])
    return items


def _stay_shares(reference: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, float]:
    """Per verdict item: the share of ``others`` (flattened verdicts) that state it as ``reference`` does."""
    return {key: float(np.mean([other.get(key) == value for other in others])) for key, value in reference.items()}


# ---------------------------------------------------------------- pair rules and beam

def rule_variants(audit_rule: SetRule) -> list[SetRule]:
    """Every registered pair rule; min-partner at each of ``SPACINGS`` (keeping the audit's kept boundary)."""
    variants = [SetRule(MIN_PARTNER, spacing, audit_rule.keep_boundary) for spacing in SPACINGS]
    return variants + [SetRule(name) for name in PAIR_RULES if name != MIN_PARTNER]


@_factor("rules", "every pair-to-set rule (min-partner at spacing 0/1/2): each protocol's removal set at each k and "
         "whether the Jaccard verdict flips")
def rules_factor(context: Context) -> dict[str, Any]:
    audit, tolerances = context.audit, context.tolerances
    r_values = [p.replacement.value for p in audit.pairs]
    i_values = [p.interchange.value for p in audit.pairs]
    reference = {t.k: t.jaccard >= tolerances.min_jaccard for t in audit.top_k}
    rows = []
    for rule in rule_variants(audit.pair_rule):
        for t in audit.top_k:
            replacement = rule.choose(context.pairs, r_values, t.k, context.n_layers)
            interchange = rule.choose(context.pairs, i_values, t.k, context.n_layers)
            jaccard = stats.jaccard(set(replacement), set(interchange))
            agrees = bool(jaccard >= tolerances.min_jaccard)
            rows.append({"rule": rule.record(), "label": rule.label, "k": t.k, "replacement_layers": replacement,
                         "interchange_layers": interchange, "jaccard": jaccard, "agrees": agrees,
                         "audit_rule": rule == audit.pair_rule, "flips": agrees != reference[t.k],
                         "replacement_changed": replacement != t.replacement_layers,
                         "interchange_changed": interchange != t.interchange_layers})
    return {"min_jaccard": tolerances.min_jaccard, "rows": rows}


@_factor("beam", "beam width 1/2/4/8 where a beam decides something in the audit (the audit's sets come from a "
         "pair rule: then it says so)")
def beam_factor(context: Context) -> dict[str, Any]:
    beams = [spec for spec in context.prune_budget if spec.split(":")[1:2] in (["beam"], ["paper-beam"])]
    if not beams:
        return {"uses_beam": False, "note": "this audit runs no beam search: its sets come from the pair rule; "
                                            "beam widths are swapkl prune --beam-width's"}
    return {"uses_beam": True, "budgets": beams,
            "note": "the --prune-budget searches run a width-4 beam; they are not rerun here: compare widths with "
                    "swapkl prune --beam-width W, one run for each W of 1, 2, 4, 8"}


# ---------------------------------------------------------------- calibration draws and size

def subset(measurement: Measurement, rows: np.ndarray) -> Measurement:
    """The measurement restricted to the sequences ``rows`` (no new forwards)."""
    probes = {probe: ProbeStats(probe, result.kl_per_seq[rows], result.nll_per_seq[rows])
              for probe, result in measurement.probes.items()}
    return Measurement(measurement.path, len(rows), measurement.seq_len, measurement.base_nll_per_seq[rows], probes,
                       noise_floor=measurement.noise_floor)


def draw_rows(n_sequences: int, size: int, draw: int, seed: int) -> np.ndarray:
    """The sequences of one seeded draw of ``size`` without replacement (sorted)."""
    generator = np.random.default_rng([seed, draw, size, 34])
    return np.sort(generator.permutation(n_sequences)[:size])


def split_halves(n_sequences: int, split: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One seeded split of the sequences into two halves (the odd one out goes to the second)."""
    order = np.random.default_rng([seed, split, 34]).permutation(n_sequences)
    half = n_sequences // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _subset_items(context: Context, rows: np.ndarray) -> dict[str, Any]:
    return verdict_items(verdicts(context.summarize(subset(context.audit.measurement, rows)), context.tolerances))


@_factor("draws", "8 seeded random halves of the calibration sequences: how often each verdict stays as at full "
         "size, and how often two complementary halves agree")
def draws_factor(context: Context) -> dict[str, Any]:
    n = context.audit.measurement.n_sequences
    if n < 4:
        return {"skipped": f"{n} calibration sequences: halves need at least 4"}
    reference = verdict_items(verdicts(context.audit, context.tolerances))
    halves, agree = [], []
    for split in range(N_DRAWS // 2):
        first, second = (_subset_items(context, rows) for rows in split_halves(n, split, context.seed))
        halves += [first, second]
        agree.append({key: first.get(key) == second.get(key) for key in reference})
    return {"draws": len(halves), "sequences": n // 2, "stays": _stay_shares(reference, halves),
            "halves_agree": {key: float(np.mean([pair[key] for pair in agree])) for key in reference}}


@_factor("size", "1/4, 1/2 and all of the calibration sequences (8 seeded draws each below all): how often each "
         "verdict stays as at full size")
def size_factor(context: Context) -> dict[str, Any]:
    n = context.audit.measurement.n_sequences
    reference = verdict_items(verdicts(context.audit, context.tolerances))
    rows = []
    for share in SIZES:
        size = int(round(share * n))
        if size >= n:
            rows.append({"share": share, "sequences": n, "draws": 1, "stays": dict.fromkeys(reference, 1.0)})
            continue
        if size < 2:
            rows.append({"share": share, "sequences": size, "draws": 0, "skipped": "fewer than 2 sequences"})
            continue
        found = [_subset_items(context, draw_rows(n, size, draw, context.seed)) for draw in range(N_DRAWS)]
        rows.append({"share": share, "sequences": size, "draws": N_DRAWS, "stays": _stay_shares(reference, found)})
    return {"rows": rows}


# ---------------------------------------------------------------- measured again: dtype and sequence length

def relative_offset(low: Measurement, high: Measurement, n_resamples: int, seed: int) -> dict[str, Any]:
    """bfloat16 (``low``) minus float32 (``high``), per probe relative to float32, on the same sequences.

    The mean over probes of mean_low / mean_high - 1 with a 95% paired bootstrap interval (the same resampled
    sequences in both tables), the share of probes above float32 and the per-probe extremes. Probes whose float32
    mean is 0 have no relative offset and are left out."""
    probes = [probe for probe in high.probes if probe in low.probes and high[probe].kl > 0]
    if not probes:
        return {"probes": 0}
    a = np.stack([low[probe].kl_per_seq for probe in probes])  # [probes, sequences]
    b = np.stack([high[probe].kl_per_seq for probe in probes])
    per_probe = a.mean(1) / b.mean(1) - 1
    indices = stats.bootstrap_indices(a.shape[1], n_resamples, seed)  # [resamples, sequences]
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = (a[:, indices].mean(-1) / b[:, indices].mean(-1) - 1).mean(0)  # [resamples]
    low_end, high_end = stats.interval(resampled[np.isfinite(resampled)])
    return {"probes": len(probes), "mean_relative": float(per_probe.mean()), "ci": [low_end, high_end],
            "share_above": float((per_probe > 0).mean()), "min_relative": float(per_probe.min()),
            "max_relative": float(per_probe.max()),
            "mean_absolute": float((a.mean(1) - b.mean(1)).mean())}


def _flips(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    return [key for key, value in reference.items() if other.get(key) != value]


@_factor("dtype", "bfloat16 against float32 (measures again): the systematic offset per probe with a paired "
         "interval, and which verdicts flip", measures=True)
def dtype_factor(context: Context) -> dict[str, Any]:
    if context.dtype not in ("float32", "bfloat16"):
        return {"skipped": f"the audit ran in {context.dtype}: the comparison is bfloat16 against float32"}
    other = "bfloat16" if context.dtype == "float32" else "float32"
    measured = context.remeasure("dtype", other) if context.remeasure else None
    if measured is None:
        return {"skipped": "this audit cannot measure again (no model at hand)"}
    measured.noise_floor = context.audit.measurement.noise_floor  # the audit's floor, so only the dtype differs
    ours = context.audit.measurement
    low, high = (measured, ours) if other == "bfloat16" else (ours, measured)
    reference = verdict_items(verdicts(context.audit, context.tolerances))
    found = verdict_items(verdicts(context.summarize(measured), context.tolerances))
    return {"audit_dtype": context.dtype, "other_dtype": other,
            "offset": relative_offset(low, high, context.n_resamples, context.seed),
            "verdicts": found, "flips": _flips(reference, found)}


@_factor("seq-len", "half the --seq-len (measures again: each sequence cut in two, the same tokens): which verdicts "
         "flip", measures=True)
def seq_len_factor(context: Context) -> dict[str, Any]:
    half = context.seq_len // 2
    if half < 2:
        return {"skipped": f"--seq-len {context.seq_len} has no half of 2 tokens or more"}
    measured = context.remeasure("seq_len", half) if context.remeasure else None
    if measured is None:
        return {"skipped": "this audit cannot measure again (no model at hand, or a data source of fixed shape)"}
    measured.noise_floor = context.audit.measurement.noise_floor
    reference = verdict_items(verdicts(context.audit, context.tolerances))
    found = verdict_items(verdicts(context.summarize(measured), context.tolerances))
    return {"audit_seq_len": context.seq_len, "other_seq_len": half, "sequences": measured.n_sequences,
            "verdicts": found, "flips": _flips(reference, found)}
