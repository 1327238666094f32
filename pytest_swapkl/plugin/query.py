"""`swapkl_audit`, the fixture object for custom redundancy assertions in ordinary test files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from ..analysis import stats
from ..analysis.mean_interval import expanded_interval
from ..analysis.pair_rules import SetRule
from ..cases import pair_label
from ..settings import AuditSettings

PROTOCOLS = ("replacement", "interchange", "replacement_ij", "replacement_ji")


@dataclass(frozen=True)
class RemovalCost:
    layers: tuple[int, ...]
    kl: float  # KL(full model || model without these layers), nats, on the audit's held-out tokens
    ppl: float
    base_ppl: float  # the full model on the same held-out tokens
    kl_low: Optional[float] = None  # 95% bootstrap interval of kl over the held-out sequences (or windows)
    kl_high: Optional[float] = None
    heldout_source: str = ""  # which held-out text (--swapkl-heldout; default: unused calibration chunks)

    @property
    def ppl_increase(self) -> float:
        """Relative perplexity increase, e.g. 0.05 for +5%."""
        return self.ppl / self.base_ppl - 1


class AuditView:
    def __init__(self, document: dict, session, options):
        self.document = document
        self._session = session
        self._options = options
        self._pairs = {(p["i"], p["j"]): p for p in document["pairs"]}
        self._heldout_ids = None  # removal_cost's held-out text, read on first use

    def __repr__(self) -> str:
        return f"<swapkl audit of {self.document['model']['name']}: {len(self._pairs)} pairs>"

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(self._pairs)

    @property
    def n_layers(self) -> int:
        return self.document["model"]["n_layers"]

    @property
    def base_ppl(self) -> float:
        return self.document["base"]["ppl"]

    def _pair(self, i: int, j: int) -> dict:
        key = (min(i, j), max(i, j))
        if key not in self._pairs:
            raise KeyError(f"pair {pair_label(*key)} is not in this audit (pairs: {self._options.pairs}); "
                           "widen --swapkl-pairs")
        return self._pairs[key]

    def distance(self, i: int, j: int, protocol: str = "replacement") -> float:
        """R ("replacement"), I ("interchange") or one replacement direction, in nats."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        if protocol.startswith("replacement_") and i > j:
            protocol = "replacement_ji" if protocol == "replacement_ij" else "replacement_ij"
        return self._pair(i, j)[protocol]

    def interval(self, i: int, j: int, protocol: str = "replacement") -> tuple[float, float]:
        low, high = self._pair(i, j)["ci"][protocol]
        return low, high

    def ranking(self, protocol: str = "replacement") -> list[tuple[int, int]]:
        """Pairs from most to least redundant under a protocol."""
        return sorted(self._pairs, key=lambda pair: (self._pairs[pair][protocol], pair))

    @property
    def spearman(self) -> Optional[float]:
        return self.document["summary"]["spearman"]

    @property
    def kendall(self) -> Optional[float]:
        return self.document["summary"]["kendall"]

    @property
    def pair_rule(self) -> SetRule:
        """The rule the audit reads its removal sets by (--swapkl-pair-rule, --swapkl-spacing,
        --swapkl-keep-boundary; an audit that recorded none used min-partner's defaults)."""
        record = self.document["settings"].get("pair_rule")
        if isinstance(record, dict):
            return SetRule(record["name"], record["spacing"], record["keep_boundary"])
        return SetRule()

    def removal_set(self, protocol: str, k: int, rule: Optional[str] = None) -> list[int]:
        """The k layers a protocol would remove, by the audit's pair rule (or the registered rule named ``rule``,
        e.g. "later")."""
        pairs = list(self._pairs)
        chosen = self.pair_rule if rule is None else SetRule.of(rule)
        return chosen.choose(pairs, [self._pairs[p][protocol] for p in pairs], k, self.n_layers)

    def jaccard(self, k: int) -> float:
        return stats.jaccard(set(self.removal_set("replacement", k)), set(self.removal_set("interchange", k)))

    def removal_kl(self, layer: int) -> float:
        return next(r["kl"] for r in self.document["removal"] if r["layer"] == layer)

    def removal_cost(self, layers: Iterable[int]) -> RemovalCost:
        """Remove these layers for real and measure KL and perplexity on held-out tokens (--swapkl-heldout; by the
        sliding windows under --swapkl-heldout-window), with the KL's 95% bootstrap interval: a cost, so never on
        the text the audit ranked the layers on."""
        from ..analysis.sliding_window import WindowedHeldout
        from ..engine.probes import removal

        layers = tuple(sorted(set(layers)))
        heldout = self._heldout()
        probes = [removal(layers, self.n_layers)]
        if isinstance(heldout, WindowedHeldout):  # --swapkl-heldout-window: the sliding windows, resampled
            measurement = heldout.measure(self._session.loaded_model(self._options).model, probes,
                                          AuditSettings.of(self._options).engine.attention_type)
        else:
            measurement = self._measure(probes, heldout.input_ids)
        probe_stats = next(iter(measurement.probes.values()))
        indices = stats.bootstrap_indices(len(probe_stats.kl_per_seq), self._options.bootstrap, self._options.seed)
        low, high = expanded_interval(stats.bootstrap_means(probe_stats.kl_per_seq, indices), len(indices[0]))
        return RemovalCost(layers, probe_stats.kl, probe_stats.ppl, measurement.base_ppl, low, high, heldout.source)

    def _heldout(self):
        """The held-out ids of this audit's options, read once per view."""
        from ..audit.runner import heldout_for, load_calibration_for

        if self._heldout_ids is None:
            loaded = self._session.loaded_model(self._options)
            calibration = load_calibration_for(self._options, loaded)
            self._heldout_ids = heldout_for(self._options, calibration, loaded.tokenizer, loaded.vocab_size,
                                            loaded.max_positions, self._session.notice)
        return self._heldout_ids

    def prune(self, guide: str = "interchange", search: str = "beam", objective: str = "ppl",
              max_cost: str = "10%", beam_width: int = 4, max_evaluations: Optional[int] = None,
              heldout: Optional[str] = None):
        """Run one pruning search under a cost ceiling on the audit's model and data (held-out: ``heldout``, or
        the data source's unused chunks; under --swapkl-heldout-window the audit's sliding windows, over ``heldout``
        where given) and return its ``analysis.budgets.PruneOutcome``, whose
        ``require(min_layers=...)`` asserts the budget with the held-out intervals in its message."""
        from ..audit.runner import budget_outcome, load_calibration_for
        from ..inputs.data import load_heldout

        loaded = self._session.loaded_model(self._options)
        calibration = load_calibration_for(self._options, loaded)
        if AuditSettings.of(self._options).inputs.heldout_window is not None:  # the audit's sliding windows
            held = self._heldout() if heldout is None else self._windowed_heldout_of(heldout, calibration, loaded)
            groups = None
        else:
            chunks = load_heldout(heldout, calibration, loaded.tokenizer, tokens=self._options.tokens,
                                  seed=self._options.seed, vocab_size=loaded.vocab_size,
                                  max_positions=loaded.max_positions)
            held, groups = chunks.input_ids, chunks.documents
        return budget_outcome(loaded, calibration.input_ids, held, guide=guide, search=search,
                              objective=objective, max_cost=str(max_cost), seed=self._options.seed,
                              batch_size=self._options.batch_size, beam_width=beam_width,
                              max_evaluations=max_evaluations, heldout_groups=groups,
                              engine_options=AuditSettings.of(self._options).engine.measure_kwargs(batch_size=False))

    def _windowed_heldout_of(self, source: str, calibration, loaded):
        """The windows of the audit's --swapkl-heldout-window over another held-out text."""
        from dataclasses import replace

        from ..audit.runner import heldout_for

        settings = AuditSettings.of(self._options)
        settings = replace(settings, inputs=replace(settings.inputs, heldout=source))
        return heldout_for(settings, calibration, loaded.tokenizer, loaded.vocab_size, loaded.max_positions,
                           self._session.notice)

    def probe(self, order: Sequence[int]) -> float:
        """KL(base || model run with this layer order), e.g. probe([0, 1, 1, 3]) repeats layer 1, skips 2."""
        from ..engine.probes import layer_order

        measurement = self._measure([layer_order(order, self.n_layers)])
        return next(iter(measurement.probes.values())).kl

    def _measure(self, probes, input_ids=None):
        """The probes on `input_ids`, by default the audit's calibration tokens."""
        from .. import engine
        from ..audit.runner import load_calibration_for

        loaded = self._session.loaded_model(self._options)
        if input_ids is None:
            input_ids = load_calibration_for(self._options, loaded).input_ids
        result = engine.measure(loaded.model, input_ids, probes,
                                **AuditSettings.of(self._options).engine.measure_kwargs())
        if not all(math.isfinite(p.kl) for p in result.probes.values()):
            raise ValueError("a probe gave NaN or infinite KL: try --swapkl-dtype bfloat16 or float32")
        return result
