"""Load, measure, summarize: one audit from options, shared by `swapkl audit`, `swapkl trajectory` and the plugin.

`options` is any object with the attributes of `swapkl audit`'s arguments (model, data, pairs,
tokens, ...), as `options.py` declares them for both faces. Each input is located and read once:
`locate` gives the checkpoint and the tokenized calibration data, which a cache key needs, and
`run_audit` reuses them instead of locating and tokenizing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import engine
from .analysis.adaptive import Tests, measure_adaptive
from .analysis.agreement import Tolerances
from .analysis.audit import Audit, summarize
from .console import Notice, print_notice
from .engine.compile_cache import use_compile_cache
from .engine.journal import Journal
from .engine.probes import audit_probes, parse_pairs
from .errors import InputError
from .inputs.data import Calibration, DataError, check_fits, load_calibration, load_heldout
from .inputs.loading import Checkpoint, LoadedModel, load_model, locate_checkpoint
from .results import audit_document, json_ready, library_versions


@dataclass
class Located:
    """An audit's inputs found and read, before any weights are loaded."""

    checkpoint: Checkpoint
    calibration: Calibration
    heldout: Optional[Calibration] = None  # where a cost is reported (needs_heldout), else None


def locate(options: Any, notice: Notice = print_notice) -> Located:
    """The checkpoint's files and tokenizer, and the calibration data tokenized with it."""
    checkpoint = locate_checkpoint(options.model, revision=options.revision, allow_pickle=options.allow_pickle,
                                   trust_remote_code=options.trust_remote_code, notice=notice,
                                   gguf_file=options.gguf_file)
    calibration = load_calibration(options.data, checkpoint.tokenizer, tokens=options.tokens,
                                   seq_len=options.seq_len, seed=options.seed, vocab_size=checkpoint.vocab_size,
                                   max_positions=checkpoint.max_positions, notice=notice)
    heldout = None
    if needs_heldout(options):
        heldout = heldout_for(options, calibration, checkpoint.tokenizer, checkpoint.vocab_size,
                              checkpoint.max_positions, notice)
    return Located(checkpoint, calibration, heldout)


def needs_heldout(options: Any) -> bool:
    """Whether this audit reports a cost (the pruning validation, the prune budgets), which is measured on
    held-out text."""
    return bool(getattr(options, "prune_k", 0) or getattr(options, "prune_budget", ()))


def heldout_for(options: Any, calibration: Calibration, tokenizer: Any, vocab_size: Optional[int],
                max_positions: Optional[int], notice: Notice = print_notice) -> Calibration:
    """The held-out ids `options` name, cut like `calibration`: ``--heldout SOURCE`` (default: the calibration
    source's chunks the calibration did not use) and ``--heldout-tokens`` (default: ``--tokens``).

    The one options-to-held-out step, for every command and fixture that reports a cost. A source that cannot
    be used is a one-line error that names --heldout."""
    tokens = getattr(options, "heldout_tokens", None) or options.tokens
    try:
        return load_heldout(getattr(options, "heldout", None), calibration, tokenizer, tokens=tokens,
                            seed=options.seed, vocab_size=vocab_size, max_positions=max_positions, notice=notice)
    except DataError as error:
        message = str(error)
        if getattr(options, "heldout", None) is not None:  # the loader names every source "calibration data"
            message = message.replace("calibration data ", "held-out data ", 1)
        raise DataError(message if "--heldout" in message else f"--heldout: {message}") from None


def heldout_record(heldout: Optional[Calibration]) -> Optional[dict[str, Any]]:
    """Which held-out text the costs were measured on (the JSON's ``heldout``), or None without costs."""
    if heldout is None:
        return None
    return {"source": heldout.source, "n_sequences": heldout.n_sequences, "seq_len": heldout.seq_len,
            "n_tokens": heldout.n_tokens, "sha256": heldout.sha256}


def model_from_options(options: Any, checkpoint: Optional[Checkpoint] = None,
                       notice: Notice = print_notice) -> LoadedModel:
    """The one place that turns options into a loaded model (reusing an already located checkpoint)."""
    return load_model(options.model, revision=options.revision, dtype=options.dtype, device=options.device,
                      allow_pickle=options.allow_pickle, trust_remote_code=options.trust_remote_code,
                      checkpoint=checkpoint, notice=notice, gguf_file=options.gguf_file,
                      device_map=getattr(options, "device_map", None),
                      device_memory=getattr(options, "device_memory", None))


def run_audit(options: Any, progress: Optional[Callable[[int, int], None]] = None,
              loaded: Optional[LoadedModel] = None, journal_dir: Optional[Path] = None,
              notice: Notice = print_notice, tolerances: Optional[Tolerances] = None,
              located: Optional[Located] = None) -> tuple[dict, Audit, Optional[Any]]:
    """The audit document, the summarized audit and, with ``options.prune_k``, the pruning validation.

    ``tolerances`` are the plugin's (adaptive mode settles the tests they define); `swapkl audit` has no
    tolerance flags and settles the default tests. ``located`` and ``loaded`` are reused when given.
    Finished probes go to a journal under ``journal_dir`` (default: the user's cache folder) unless
    ``options.no_resume``; a rerun of the same audit after a kill takes them from there.
    """
    started = time.perf_counter()
    if located is None:
        located = locate(options, notice)
    if loaded is None:
        loaded = model_from_options(options, located.checkpoint, notice)
    calibration = located.calibration
    check_fits(calibration, loaded.vocab_size, loaded.max_positions)
    specs = budget_specs(options, loaded)
    heldout = located.heldout
    if heldout is None and needs_heldout(options):
        heldout = heldout_for(options, calibration, loaded.tokenizer, loaded.vocab_size, loaded.max_positions,
                              notice)
    if heldout is not None:
        check_fits(heldout, loaded.vocab_size, loaded.max_positions)
    pairs = parse_pairs(options.pairs, loaded.n_layers)
    probes = audit_probes(pairs, loaded.n_layers)
    journal = None if options.no_resume else open_journal(options, loaded, calibration, probes, journal_dir, notice,
                                                          heldout)
    use_compile_cache(journal_dir.parent / "compile" if journal_dir is not None else None)
    measure_started = time.perf_counter()
    stages = _Stages(progress)
    try:
        measurement, adaptive_result = _measure(options, loaded, calibration, pairs, probes, tolerances,
                                                {"journal": journal, "notice": notice, "progress": stages.first})
    finally:
        if journal is not None:
            journal.close(finished=False)
    measure_seconds = time.perf_counter() - measure_started
    noise = noise_floor_for(options, loaded, calibration, measurement, notice)
    measurement.noise_floor = noise["floor"]  # what the agreement rules read: measured, or None
    audit = summarize(measurement, pairs, loaded.n_layers, options.replacement_reduce, options.bootstrap,
                      options.seed)
    for line in audit.notes:  # numbers at their edges (numerics.py): clipped or undefined, said once each
        notice(line)
    settings = {"pairs": options.pairs, "tokens": options.tokens, "seq_len": options.seq_len, "seed": options.seed,
                "bootstrap": options.bootstrap, "precision": options.precision,
                "attention_type": options.attention_type}
    pruning = None
    if options.prune_k:
        from .analysis.pruning import validate_pruning

        pruning = validate_pruning(loaded.model, calibration.input_ids, audit,
                                   max_k=min(options.prune_k, loaded.n_layers - 1),
                                   methods=options.prune_methods, heldout_ids=heldout.input_ids,
                                   batch_size=options.batch_size, n_resamples=options.bootstrap, seed=options.seed,
                                   progress=stages.then)
        settings["prune_k"], settings["prune_methods"] = options.prune_k, list(options.prune_methods)
    budgets = prune_budgets(specs, options, loaded, calibration, heldout)
    if budgets is not None:
        settings["prune_budget"] = list(options.prune_budget)
    document = audit_document(audit, model_record(loaded), data_record(options.data, calibration), settings,
                              time.perf_counter() - started)
    document["heldout"] = heldout_record(heldout)
    document["noise"] = json_ready(noise)
    if pruning is not None:
        document.update(json_ready(pruning.to_json()))
    if budgets is not None:
        document["prune_budgets"] = json_ready(budgets)
    document["measure_seconds"] = round(measure_seconds, 3)  # the probes alone: what precision changes
    if adaptive_result is not None:
        document["adaptive"] = adaptive_result.to_json(audit)
    if journal is not None:
        journal.close(finished=True)  # the numbers now live in the document
    return document, audit, pruning


def budget_specs(options: Any, loaded: LoadedModel) -> list:
    """The ``--swapkl-prune-budget`` specs, each checked against the model before anything is measured."""
    from .analysis.budgets import parse_budget

    specs = [parse_budget(text) for text in getattr(options, "prune_budget", ())]
    for spec in specs:
        if spec.min_layers > loaded.n_layers - 1:
            raise InputError(f"--swapkl-prune-budget {spec}: {loaded.name} has {loaded.n_layers} layers and one must "
                             f"stay, so at most {loaded.n_layers - 1} can be removed: ask for fewer")
    return specs


def prune_budgets(specs: list, options: Any, loaded: LoadedModel, calibration: Calibration,
                  heldout: Optional[Calibration]) -> Optional[list[dict]]:
    """One guided search per budget (the fixture's ``prune(...)``), costs on the held-out ids, as the JSON's
    ``prune_budgets`` records; None without budgets."""
    if not specs:
        return None
    from .analysis.budgets import outcome_record

    engine_options = {"path": options.path, "attention_type": options.attention_type}
    searched: dict = {}  # budgets that differ only in min_layers or strict share one search
    for spec in specs:
        key = (spec.guide_name, spec.search, spec.objective, spec.max_cost)
        if key not in searched:
            searched[key] = budget_outcome(loaded, calibration.input_ids, heldout.input_ids, guide=spec.guide_name,
                                           search=spec.search, objective=spec.objective, max_cost=spec.max_cost,
                                           seed=options.seed, batch_size=options.batch_size,
                                           engine_options=engine_options)
    return [outcome_record(spec, searched[(spec.guide_name, spec.search, spec.objective, spec.max_cost)])
            for spec in specs]


def budget_outcome(loaded: LoadedModel, calibration_ids, heldout_ids, *, guide: str, search: str, objective: str,
                   max_cost: str, seed: int, batch_size: Optional[int], engine_options: dict, beam_width: int = 4,
                   max_evaluations: Optional[int] = None):
    """`budgets.prune_outcome` on a loaded model (its tokenizer gives the bundled task for ``accuracy``): the one
    path of the fixture's ``swapkl_audit.prune(...)`` and of the audit's ``--swapkl-prune-budget`` searches."""
    from .analysis.budgets import prune_outcome
    from .inputs.tasks import bundled_task

    task = bundled_task(loaded.tokenizer, seed=seed) if objective == "accuracy" else None
    return prune_outcome(loaded.model, loaded.n_layers, calibration_ids, heldout_ids, task, guide=guide,
                         search=search, objective=objective, max_cost=str(max_cost), beam_width=beam_width,
                         max_evaluations=max_evaluations, seed=seed, batch_size=batch_size,
                         engine_options=engine_options)


def noise_floor_for(options: Any, loaded: LoadedModel, calibration: Calibration, measurement: Any,
                    notice: Notice = print_notice) -> dict[str, Any]:
    """The audit's noise floor, measured (analysis/noise.py), as the JSON's ``noise`` record; its ``floor`` is
    None where it was not measured (``--noise-probes 0``, or the wider computation failed: then a notice)."""
    n_probes = getattr(options, "noise_probes", 8)
    dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")
    if not n_probes:
        return {"floor": None, "what": "not measured (--noise-probes 0)", "audit_dtype": dtype}
    from .analysis.noise import measure_noise_floor

    engine_options = {"path": options.path, "batch_size": options.batch_size, "compile": options.compile,
                      "attention_type": options.attention_type, "notice": notice}
    try:
        return measure_noise_floor(loaded.model, calibration.input_ids, measurement, n_probes=n_probes,
                                   seed=options.seed, engine_options=engine_options).to_json()
    except (RuntimeError, MemoryError) as error:  # e.g. a wider copy that does not fit: the audit stands
        notice(f"noise floor not measured ({str(error).splitlines()[0][:200]}): it is null, so no pair passes "
               "by it; --noise-probes 0 skips the attempt")
        return {"floor": None, "what": f"not measured: {type(error).__name__}", "audit_dtype": dtype}


class _Stages:
    """One progress count over the measurement and the pruning validation after it: the second stage's
    probe-sequences are added to the first's, so the bar does not start over."""

    def __init__(self, progress: Optional[Callable[[int, int], None]]):
        self.progress, self.total = progress, 0

    def first(self, done: int, total: int) -> None:
        self.total = total
        if self.progress:
            self.progress(done, total)

    def then(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(self.total + done, self.total + total)


def _measure(options: Any, loaded: LoadedModel, calibration: Calibration, pairs: list, probes: list,
             tolerances: Optional[Tolerances], run: dict) -> tuple[Any, Optional[Any]]:
    """The measurement, exact or adaptive (then also the adaptive record)."""
    engine_options = {"path": options.path, "batch_size": options.batch_size, "compile": options.compile,
                      "attention_type": options.attention_type, "memory_budget": options.max_memory,
                      "stack": options.stack, **run}
    if options.precision != "adaptive":
        return engine.measure(loaded.model, calibration.input_ids, probes, **engine_options), None
    tests = Tests(tolerances or Tolerances(), options.replacement_reduce, options.prune_k,
                  tuple(options.prune_methods), options.adaptive_alpha, options.adaptive_bound)
    adaptive = measure_adaptive(loaded.model, calibration.input_ids, pairs, loaded.n_layers, tests,
                                n_resamples=options.bootstrap, seed=options.seed, **engine_options)
    return adaptive.measurement, adaptive


def default_journal_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "journal"


def open_journal(options: Any, loaded: LoadedModel, calibration, probes, journal_dir: Optional[Path],
                 notice: Callable[[str], None], heldout: Optional[Calibration] = None) -> Optional[Journal]:
    """The journal of exactly this audit: same checkpoint files (names, sizes, mtimes), tokens (calibration and
    held-out), probes, dtype, device, engine settings and library versions; any other audit gets another file."""
    identity = {
        "model": model_record(loaded),
        "checkpoint": _stat_fingerprint(Path(loaded.path)),
        "tokens_sha256": calibration.sha256,
        "heldout_sha256": None if heldout is None else heldout.sha256,
        "probes": hashlib.sha256("\n".join(p.name for p in probes).encode()).hexdigest(),
        "settings": {"path": options.path, "compile": options.compile, "batch_size": options.batch_size,
                     "attention_type": options.attention_type},
        "versions": library_versions(),
    }
    name = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]
    path = (journal_dir or default_journal_dir()) / f"{name}.jsonl"
    try:
        journal = Journal.open(path, identity)
    except OSError as error:
        notice(f"cannot keep a resume journal at {path} ({error.strerror or error}): a killed audit will start over")
        return None
    if journal.resumed:
        notice(f"resuming: {journal.resumed} finished results taken from {path}")
    return journal


def _stat_fingerprint(folder: Path) -> list:
    """Names, sizes and modification times of the checkpoint's files: cheap, and changes when a file does."""
    if not folder.is_dir():
        return []
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())


def load_calibration_for(options: Any, loaded: LoadedModel) -> Calibration:
    """The calibration data of `options`, tokenized with an already loaded model's tokenizer and checked against it."""
    return load_calibration(options.data, loaded.tokenizer, tokens=options.tokens, seq_len=options.seq_len,
                            seed=options.seed, vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)


def model_record(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "revision": loaded.revision, "commit": loaded.commit,
            "architecture": loaded.architecture, "n_layers": loaded.n_layers, "dtype": loaded.dtype,
            "device": loaded.device, "path": loaded.path, "weights": loaded.weights}


def data_record(source: str, calibration) -> dict[str, Any]:
    return {"source": source, "n_sequences": calibration.n_sequences, "seq_len": calibration.seq_len,
            "n_tokens": calibration.n_tokens, "sha256": calibration.sha256}
