"""The plugin's state for one pytest run: audits by option set, cached, and the model for fixtures.

Lives in `config.stash`; the hooks in `plugin.py` only call into it. The model is
loaded lazily: a cache hit never loads the weights, and a fixture that needs the
model (removal costs, arbitrary probes) loads it once per option set.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .agreement import Tolerances
from .cache import AuditCache, audit_key, checkpoint_fingerprint
from .options import from_pytest


@dataclass
class AuditRecord:
    document: dict
    cache_hit: bool
    seconds: float  # wall time to obtain the document (compute, or read the cache)
    origin: str = "this process"  # or "xdist controller" on a worker


def tolerances_from(options: argparse.Namespace) -> Tolerances:
    rank, rank_is_fraction = options.rank_tolerance
    return Tolerances(rank=rank, rank_is_fraction=rank_is_fraction, log_ratio=options.log_ratio_tolerance,
                      min_spearman=options.min_spearman, min_jaccard=options.min_jaccard,
                      jaccard_k=tuple(options.jaccard_k), max_ppl_increase=options.max_ppl_increase,
                      max_cost_factor=options.max_cost_factor)


@dataclass
class SwapklSession:
    config: Any
    cache_dir: Optional[Path]
    audits: dict[str, AuditRecord] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    cleared: bool = False  # --swapkl-cache-clear empties the cache once, not before every audit of the run

    def options(self, overrides: Optional[dict] = None) -> argparse.Namespace:
        return from_pytest(self.config, overrides)

    def audit(self, options: argparse.Namespace) -> AuditRecord:
        label = _label(options)
        if label not in self.audits:
            self.audits[label] = self._obtain(options)
        return self.audits[label]

    def loaded_model(self, options: argparse.Namespace):
        from .loading import load_model

        label = json.dumps([options.model, options.revision, options.dtype, options.device])
        if label not in self.models:
            self.models[label] = load_model(options.model, revision=options.revision, dtype=options.dtype,
                                            device=options.device, allow_pickle=options.allow_pickle,
                                            trust_remote_code=options.trust_remote_code)
        return self.models[label]

    def _obtain(self, options: argparse.Namespace) -> AuditRecord:
        started = time.perf_counter()
        use_cache = self.cache_dir is not None and not options.no_cache
        cache = AuditCache(self.cache_dir) if use_cache else None
        key = self._key(options, cache) if cache else None
        if cache and options.cache_clear and not self.cleared:
            cache.clear()
            self.cleared = True
        elif cache:
            document = cache.get(key)
            if document is not None:
                return AuditRecord(document, True, time.perf_counter() - started)
        from .runner import run_audit

        loaded = self.loaded_model(options)
        document, _, _ = run_audit(options, loaded=loaded)
        document["cache_key"] = key
        if cache:
            cache.put(key, document)
        return AuditRecord(document, False, time.perf_counter() - started)

    def _key(self, options: argparse.Namespace, cache: AuditCache) -> str:
        from .data import load_calibration
        from .devices import resolve_device, resolve_dtype
        from .loading import locate_checkpoint
        from .results import library_versions

        checkpoint = locate_checkpoint(options.model, revision=options.revision,
                                       trust_remote_code=options.trust_remote_code)
        calibration = load_calibration(options.data, checkpoint.tokenizer, tokens=options.tokens,
                                       seq_len=options.seq_len, seed=options.seed, notice=lambda _: None)
        device = resolve_device(options.device)
        memo = cache.load_memo()
        fingerprint = checkpoint_fingerprint(checkpoint.folder, memo)
        cache.save_memo(memo)
        return audit_key(fingerprint, calibration.sha256, options, str(resolve_dtype(options.dtype, device)),
                         device.type, library_versions())


def _label(options: argparse.Namespace) -> str:
    return json.dumps(vars(options), sort_keys=True, default=str)
