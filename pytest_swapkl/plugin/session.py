"""The plugin's state for one pytest run: audits by option set, cached, and the model for fixtures.

Lives in `config.stash`; the hooks in `plugin.py` only call into it. The model is
loaded lazily: a cache hit never loads the weights, and a fixture that needs the
model (removal costs, arbitrary probes) loads it once per option set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..analysis.agreement import tolerances_from  # noqa: F401  (the hooks import it from here)
from ..console import first_line
from ..errors import InputError
from ..options import from_pytest
from .cache import AuditCache, key_for, shared_directory


@dataclass
class AuditRecord:
    document: dict
    cache_hit: bool
    seconds: float  # wall time to obtain the document (compute, or read the cache)
    origin: str = "this process"  # or "xdist controller" on a worker


@dataclass
class SwapklSession:
    config: Any
    cache_dir: Optional[Path]
    audits: dict[str, AuditRecord] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    cleared: bool = False  # --swapkl-cache-clear empties the cache once, not before every audit of the run
    notices: list[str] = field(default_factory=list)  # one line each, shown in the terminal summary

    def options(self, overrides: Optional[dict] = None) -> argparse.Namespace:
        return from_pytest(self.config, overrides)

    def audit(self, options: argparse.Namespace) -> AuditRecord:
        label = _label(options)
        if label not in self.audits:
            self.audits[label] = self._obtain(options)
        return self.audits[label]

    def planned_cases(self, options: argparse.Namespace) -> list[str]:
        """The case names of `options`' audit, from the checkpoint's config and the options, measuring nothing
        and loading no weights (what --collect-only lists)."""
        from .. import cases
        from ..engine.probes import parse_pairs
        from ..inputs.loading import locate_checkpoint

        checkpoint = locate_checkpoint(options.model, revision=options.revision, allow_pickle=options.allow_pickle,
                                       trust_remote_code=options.trust_remote_code, notice=self.notice,
                                       gguf_file=options.gguf_file)
        n_layers = checkpoint.n_layers
        if n_layers is None:
            raise InputError(f"the config of {options.model} does not say its number of layers "
                             "(num_hidden_layers): run without --collect-only to list its cases")
        from ..analysis.budgets import parse_budget

        budgets = range(1, min(options.prune_k, n_layers - 1) + 1) if options.prune_k else ()
        pairs = parse_pairs(options.pairs, n_layers)
        return cases.planned_cases(pairs, cases.budgets_within(options.jaccard_k, n_layers), budgets,
                                   options.prune_guides, baseline=options.compare,
                                   budget_labels=[parse_budget(text).label for text in options.prune_budget],
                                   merge_pairs=pairs if options.averaging else ())

    def loaded_model(self, options: argparse.Namespace, checkpoint: Any = None):
        """The model of `options`, loaded once per (model, revision, dtype, device) in this run."""
        from ..audit.runner import model_from_options

        label = json.dumps([options.model, options.revision, options.dtype, options.device])
        if label not in self.models:
            self.models[label] = model_from_options(options, checkpoint)
        return self.models[label]

    def _obtain(self, options: argparse.Namespace) -> AuditRecord:
        started = time.perf_counter()
        located = self._locate(options)  # once: for the key and, on a miss, for the audit
        if self.cache_dir is None or options.no_cache:
            return AuditRecord(self._compute(options, None, located), False, time.perf_counter() - started)
        cache = AuditCache(self.cache_dir, notice=self.notice)
        key = self._key(options, cache, located)
        with cache.lock(key):  # "look up, compute, write" as one step across processes
            if options.cache_clear and not self.cleared:
                cache.clear()
                self.cleared = True
            else:
                document = cache.get(key) or self._written_by_swapkl_audit(key)
                if document is not None:
                    return AuditRecord(document, True, time.perf_counter() - started)
            document = self._compute(options, key, located)
            try:
                cache.put(key, document)
            except (InputError, OSError) as error:  # a full or read-only disk costs the cache, not the audit
                self.notice(f"swapkl: cache entry {key} not written ({first_line(error)}): the audit is not cached")
        return AuditRecord(document, False, time.perf_counter() - started)

    def _locate(self, options: argparse.Namespace) -> Any:
        from ..audit.runner import locate

        return locate(options, notice=self.notice)

    def _compute(self, options: argparse.Namespace, key: Optional[str], located: Any) -> dict:
        from ..audit.runner import run_audit
        from .terminal import progress_for

        journal_dir = self.cache_dir / "journal" if self.cache_dir is not None else None
        progress = progress_for(self.config)
        progress.note(f"computing the audit of {options.model} ({options.pairs} pairs, "
                      f"{located.calibration.n_sequences} x {located.calibration.seq_len} tokens)")
        try:
            document, _, _ = run_audit(options, loaded=self.loaded_model(options, located.checkpoint),
                                       journal_dir=journal_dir, notice=self.notice,
                                       tolerances=tolerances_from(options), located=located, progress=progress)
        finally:
            progress.close()
        document["cache_key"] = key
        return document

    def notice(self, line: str) -> None:
        """A one-line report (e.g. a damaged cache entry): on stderr now, and in the terminal summary."""
        line = line if line.startswith("swapkl: ") else f"swapkl: {line}"
        if line not in self.notices:
            self.notices.append(line)
            print(line, file=sys.stderr, flush=True)

    def _key(self, options: argparse.Namespace, cache: AuditCache, located: Any) -> str:
        return key_for(options, located, cache)

    def _written_by_swapkl_audit(self, key: str) -> Optional[dict]:
        """The audit `swapkl audit` computed with these exact inputs and settings (same key), or None; checked
        as strictly as an entry of our own (checksum, fields)."""
        folder = shared_directory()
        if folder is None:
            return None
        try:
            document = AuditCache(folder, notice=self.notice).get(key)
        except OSError:  # an unreadable home cache is a miss
            return None
        if document is not None:
            self.notice(f"swapkl: audit {key} taken from the one swapkl audit computed ({folder}): "
                        "same checkpoint, tokens, settings and versions")
            document["cache_key"] = key
        return document


def _label(options: argparse.Namespace) -> str:
    return json.dumps(vars(options), sort_keys=True, default=str)
