"""Load, measure, summarize: one audit from its settings, shared by `swapkl audit`, `swapkl trajectory` and the plugin.

Every function takes the audit's typed settings (`settings.AuditSettings`; parsed options are turned into
them once, by `AuditSettings.of`, which returns settings as they are). Each input is located and read once:
`locate` gives the checkpoint and the tokenized calibration data, which a cache key needs, and
`run_audit` reuses them instead of locating and tokenizing again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .. import engine
from ..analysis.adaptive import Tests, measure_adaptive
from ..analysis.agreement import Tolerances
from ..analysis.audit import Audit, summarize
from ..analysis.dtype_offset import REDUCED, carried_audit, measure_dtype_offset, without_measurement
from ..analysis.pair_rules import SetRule
from ..console import Notice, print_notice
from ..contracts import check_data_fits
from ..engine.compile_cache import use_compile_cache
from ..engine.head_spec import check_heads_against_config
from ..engine.journal import Journal
from ..engine.probes import audit_probes, parse_pairs
from ..engine.threads import cpu_threads
from ..errors import InputError
from ..inputs.data import Calibration, DataError, check_fits, document_record, load_calibration, load_heldout
from ..inputs.loading import Checkpoint, LoadedModel, load_model, locate_checkpoint
from ..limits import MAX_RESAMPLED_VALUES
from ..settings import AuditSettings, content_identity
from .probe_tables import record as record_tables
from .probe_tables import tables_for
from .results import audit_document, json_ready, library_versions


@dataclass
class Located:
    """An audit's inputs found and read, before any weights are loaded."""

    checkpoint: Checkpoint
    calibration: Calibration
    # where a cost is reported (settings.pruning.reports_costs), else None: a Calibration, or a WindowedHeldout
    heldout: Optional[Any] = None


def locate(settings: AuditSettings, notice: Notice = print_notice) -> Located:
    """The checkpoint's files and tokenizer, and the calibration data tokenized with it."""
    settings = AuditSettings.of(settings)
    inputs = settings.inputs
    inputs.heldout_evaluator()  # window options that contradict each other fail before anything loads
    check_data_fits(settings.contract, inputs.data)
    checkpoint = locate_checkpoint(inputs.model, revision=inputs.revision, allow_pickle=inputs.allow_pickle,
                                   trust_remote_code=inputs.trust_remote_code, notice=notice,
                                   gguf_file=inputs.gguf_file)
    check_heads_against_config(settings.heads, checkpoint.config)  # a head out of range fails before any weights
    calibration = load_calibration(inputs.data, checkpoint.tokenizer, tokens=inputs.tokens,
                                   seq_len=inputs.seq_len, seed=inputs.seed, vocab_size=checkpoint.vocab_size,
                                   max_positions=checkpoint.max_positions, notice=notice,
                                   pad_to_seq_len=settings.engine.pads == "in")
    heldout = None
    if settings.pruning.reports_costs:
        heldout = heldout_for(settings, calibration, checkpoint.tokenizer, checkpoint.vocab_size,
                              checkpoint.max_positions, notice)
    return Located(checkpoint, calibration, heldout)


def heldout_for(settings: AuditSettings, calibration: Calibration, tokenizer: Any, vocab_size: Optional[int],
                max_positions: Optional[int], notice: Notice = print_notice) -> Any:
    """The held-out text the settings name: ids cut like `calibration` (a `Calibration`; ``--heldout SOURCE``,
    default the calibration source's chunks the calibration did not use, and ``--heldout-tokens``, default
    ``--tokens``), or under ``--heldout-window`` one stream with its window plan (`sliding_window.WindowedHeldout`:
    the --heldout text cut to ``--heldout-words`` and ``--heldout-tokens``; without a text of its own, those unused
    chunks joined in order).

    The one settings-to-held-out step, for every command and fixture that reports a cost. A source that cannot
    be used is a one-line error that names --heldout."""
    inputs = AuditSettings.of(settings).inputs
    evaluator = inputs.heldout_evaluator()
    own_text = inputs.heldout is not None and str(inputs.heldout) != calibration.source
    try:
        if evaluator["evaluator"] == "sliding-window":
            return _windowed_heldout(inputs, evaluator, calibration, tokenizer, vocab_size, max_positions, notice,
                                     own_text)
        return load_heldout(inputs.heldout, calibration, tokenizer, tokens=inputs.heldout_tokens or inputs.tokens,
                            seed=inputs.seed, vocab_size=vocab_size, max_positions=max_positions, notice=notice)
    except DataError as error:
        message = str(error)
        if inputs.heldout is not None:  # the loader names every source "calibration data"
            message = message.replace("calibration data ", "held-out data ", 1)
        raise DataError(message if "--heldout" in message else f"--heldout: {message}") from None


def _windowed_heldout(inputs: Any, evaluator: dict, calibration: Calibration, tokenizer: Any,
                      vocab_size: Optional[int], max_positions: Optional[int], notice: Notice, own_text: bool) -> Any:
    from ..analysis.sliding_window import WindowedHeldout
    from ..inputs.heldout_stream import joined_chunks, load_heldout_stream

    window = evaluator["window"]
    if max_positions is not None and window > max_positions:
        raise DataError(f"--heldout-window {window}: the model reads at most {max_positions} positions")
    if own_text:
        stream = load_heldout_stream(inputs.heldout, tokenizer, words=inputs.heldout_words,
                                     tokens=inputs.heldout_tokens, vocab_size=vocab_size)
    else:
        if inputs.heldout_words is not None:
            raise DataError("--heldout-words cuts a held-out text of its own, and the held-out part of the "
                            "calibration source is already cut into chunks: name the text with --heldout")
        # None: for demo the held-out works (demo-heldout), else the unused chunks; the calibration's own source
        # (--heldout demo): its unused chunks.
        chunks = load_heldout(inputs.heldout, calibration, tokenizer, tokens=inputs.heldout_tokens or inputs.tokens,
                              seed=inputs.seed, vocab_size=vocab_size, max_positions=max_positions, notice=notice)
        stream = joined_chunks(chunks.input_ids, chunks.source, inputs.heldout_tokens)
    return WindowedHeldout.of(stream, window, evaluator["stride"])


def heldout_record(heldout: Optional[Any]) -> Optional[dict[str, Any]]:
    """Which held-out text the costs were measured on, and by which evaluator (the JSON's ``heldout``), or None
    without costs."""
    if heldout is None:
        return None
    if not isinstance(heldout, Calibration):
        return heldout.record()
    return {"source": heldout.source, "n_sequences": heldout.n_sequences, "seq_len": heldout.seq_len,
            "n_tokens": heldout.n_tokens, "sha256": heldout.sha256, "evaluator": "chunks",
            **document_record(heldout)}


def model_from_options(settings: AuditSettings, checkpoint: Optional[Checkpoint] = None,
                       notice: Notice = print_notice) -> LoadedModel:
    """The one place that turns settings into a loaded model (reusing an already located checkpoint)."""
    inputs = AuditSettings.of(settings).inputs
    return load_model(inputs.model, revision=inputs.revision, dtype=inputs.dtype, device=inputs.device,
                      allow_pickle=inputs.allow_pickle, trust_remote_code=inputs.trust_remote_code,
                      checkpoint=checkpoint, notice=notice, gguf_file=inputs.gguf_file,
                      device_map=inputs.device_map, device_memory=inputs.device_memory)


def run_audit(settings: AuditSettings, progress: Optional[Callable[[int, int], None]] = None,
              loaded: Optional[LoadedModel] = None, journal_dir: Optional[Path] = None,
              notice: Notice = print_notice, tolerances: Optional[Tolerances] = None,
              located: Optional[Located] = None,
              kept_journals: Optional[list] = None) -> tuple[dict, Audit, Optional[Any]]:
    """The audit document, the summarized audit and, with ``--prune-k``, the pruning validation.

    ``tolerances`` are the plugin's (adaptive mode settles the tests they define); `swapkl audit` has no
    tolerance flags and settles the default tests. ``located`` and ``loaded`` are reused when given.
    Finished probes go to a journal under ``journal_dir`` (default: the user's cache folder) unless
    ``no_resume``; a rerun of the same audit after a kill takes them from there. ``kept_journals``: the finished
    journal's path is appended there instead of removing it, for a caller that removes it once its outputs are
    written (a full disk then costs the output, not the measurement).
    """
    settings = AuditSettings.of(settings)
    stages = _Stages(progress)
    with cpu_threads(settings.engine.threads):  # the JSON's engine.plan records the count
        try:
            return _run_audit(settings, stages, loaded, journal_dir, notice, tolerances, located, kept_journals)
        finally:
            stages.done()


def _run_audit(settings: AuditSettings, stages: "_Stages",
               loaded: Optional[LoadedModel], journal_dir: Optional[Path], notice: Notice,
               tolerances: Optional[Tolerances], located: Optional[Located],
               kept_journals: Optional[list] = None) -> tuple[dict, Audit, Optional[Any]]:
    started = time.perf_counter()
    statistics, pruning_settings = settings.statistics, settings.pruning
    if located is None:
        located = locate(settings, notice)
    if loaded is None:
        loaded = model_from_options(settings, located.checkpoint, notice)
    calibration = located.calibration
    check_fits(calibration, loaded.vocab_size, loaded.max_positions)
    specs = budget_specs(settings, loaded)
    heldout = located.heldout
    if heldout is None and pruning_settings.reports_costs:
        heldout = heldout_for(settings, calibration, loaded.tokenizer, loaded.vocab_size, loaded.max_positions,
                              notice)
    if isinstance(heldout, Calibration):  # a windowed stream was checked as it was read
        check_fits(heldout, loaded.vocab_size, loaded.max_positions)
    pairs = parse_pairs(settings.pairs, loaded.n_layers)
    tables = tables_for(settings.averaging, settings.heads, pairs, loaded.model, loaded.n_layers)
    probes = audit_probes(pairs, loaded.n_layers) + tables.probes
    check_resampling(statistics.bootstrap, max(calibration.n_sequences, len(probes),
                                               heldout.n_sequences if heldout is not None else 0))
    journal = None if settings.no_resume else open_journal(settings, loaded, calibration, probes, journal_dir,
                                                           notice, heldout)
    use_compile_cache(journal_dir.parent / "compile" if journal_dir is not None else None)
    measure_started = time.perf_counter()
    try:
        measurement, adaptive_result = _measure(settings, loaded, calibration, pairs, probes, tolerances,
                                                {"journal": journal, "notice": notice, "progress": stages.first})
        tables_measured = measurement
        if adaptive_result is not None and tables.probes:  # adaptive mode measures the pair probes alone
            tables_measured = engine.measure(loaded.model, calibration.input_ids, tables.probes,
                                             **settings.engine.measure_kwargs(), notice=notice)
    finally:
        if journal is not None:
            journal.close(finished=False)
    measure_seconds = time.perf_counter() - measure_started
    noise_probes = statistics.noise_probes
    noise = noise_floor_for(settings, loaded, calibration, measurement, notice, stages.phase(
        "noise floor", f"the {noise_probes} smallest-KL probes again in a wider dtype" if noise_probes else ""))
    measurement.noise_floor = noise["floor"]  # what the agreement rules read: measured, or None
    offset = dtype_offset_for(settings, loaded, calibration, measurement, notice, stages.phase(
        "dtype offset", "probes again in float32: the offset carried into the KL intervals")
        if noise_probes and offset_measured(loaded) else None)
    stages.phase("statistics", f"{statistics.bootstrap} bootstrap resamples of {len(probes)} probes, paired ranks "
                 f"of {len(pairs)} pairs")
    audit = summarize(measurement, pairs, loaded.n_layers, statistics.replacement_reduce, statistics.bootstrap,
                      statistics.seed, SetRule.of(statistics))
    audit = carried_audit(audit, offset)  # a reduced dtype's intervals moved to hold float32's means too
    for line in audit.notes:  # numbers at their edges (numerics.py): clipped or undefined, said once each
        notice(line)
    recorded = document_settings(settings)
    pruning = _pruning_costs(settings, loaded, calibration, audit, heldout, stages) if pruning_settings.prune_k \
        else None
    if pruning is not None:
        recorded["prune_k"], recorded["prune_methods"] = pruning_settings.prune_k, list(pruning_settings.prune_methods)
    if specs:
        stages.phase("prune budgets", f"{len(specs)} guided searches, costs on held-out text")
    budgets = prune_budgets(specs, settings, loaded, calibration, heldout)
    if budgets is not None:
        recorded["prune_budget"] = list(pruning_settings.prune_budget)
    document = audit_document(audit, model_record(loaded), data_record(settings.inputs.data, calibration), recorded,
                              time.perf_counter() - started)
    record_tables(document, tables, tables_measured, statistics.bootstrap, statistics.seed)
    document["heldout"] = heldout_record(heldout)
    document["noise"] = json_ready(noise)
    document["dtype_offset"] = json_ready(offset.to_json())
    if pruning is not None:
        document.update(json_ready(pruning.to_json()))
    if budgets is not None:
        document["prune_budgets"] = json_ready(budgets)
    document["measure_seconds"] = round(measure_seconds, 3)  # the probes alone: what precision changes
    if adaptive_result is not None:
        document["adaptive"] = adaptive_result.to_json(audit)
    if settings.sensitivity:
        document["sensitivity"] = _sensitivity_section(settings, audit, pairs, loaded, calibration, probes,
                                                       tolerances, notice, stages)
        document["settings"]["sensitivity"] = list(settings.sensitivity)
    if journal is not None and kept_journals is not None:
        kept_journals.append(journal.path)
    elif journal is not None:
        journal.close(finished=True)  # the numbers now live in the document
    return document, audit, pruning


def _windowed(heldout: Any) -> bool:
    return heldout is not None and not isinstance(heldout, Calibration)


def _pruning_costs(settings: AuditSettings, loaded: LoadedModel, calibration: Calibration, audit: Audit,
                   heldout: Any, stages: "_Stages") -> Any:
    """--prune-k: each protocol's sets removed for real and costed on the held-out text (analysis/pruning.py)."""
    from ..analysis.pruning import validate_pruning

    statistics, pruning_settings = settings.statistics, settings.pruning
    windowed = _windowed(heldout)
    return validate_pruning(loaded.model, calibration.input_ids, audit,
                            max_k=min(pruning_settings.prune_k, loaded.n_layers - 1),
                            methods=pruning_settings.prune_methods,
                            heldout_ids=heldout if windowed else heldout.input_ids,
                            batch_size=settings.engine.batch_size,
                            attention_type=settings.engine.attention_type, n_resamples=statistics.bootstrap,
                            seed=statistics.seed, progress=stages.phase("pruning costs"),
                            equivalence_margin=statistics.equivalence_margin, multiplicity=statistics.multiplicity,
                            heldout_groups=None if windowed else heldout.documents)


def _sensitivity_section(settings: AuditSettings, audit: Audit, pairs: list, loaded: LoadedModel,
                         calibration: Calibration, probes: list, tolerances: Optional[Tolerances], notice: Notice,
                         stages: "_Stages") -> dict:
    """--sensitivity: the verdicts under other conventions (audit/sensitivity_runs.py), as the JSON's section."""
    from .sensitivity_runs import sensitivity_record

    stages.phase("sensitivity", f"verdicts under {', '.join(settings.sensitivity)}")
    record = sensitivity_record(settings, audit, pairs, loaded, calibration, probes, tolerances, notice,
                                load=lambda other: model_from_options(other, notice=notice))
    return json_ready(record)


def check_resampling(bootstrap: int, rows: int) -> None:
    """Refuse, before anything is measured, a --bootstrap that the statistics could not hold in memory: every
    resample keeps a value per sequence and per probe (`limits.MAX_RESAMPLED_VALUES` of them per array)."""
    if bootstrap * rows > MAX_RESAMPLED_VALUES:
        fitting = max(1, MAX_RESAMPLED_VALUES // max(1, rows))
        raise InputError(f"--bootstrap {bootstrap} with {rows} sequences or probes needs {bootstrap * rows:.3g} "
                         f"resampled values per array, more than the {MAX_RESAMPLED_VALUES:.3g} an audit holds: "
                         f"use --bootstrap {fitting} or less, or fewer --tokens or pairs")


def document_settings(settings: AuditSettings) -> dict[str, Any]:
    """The ``settings`` of the audit JSON (the pruning validation adds its own when it runs)."""
    settings = AuditSettings.of(settings)
    inputs, statistics = settings.inputs, settings.statistics
    return {"pairs": settings.pairs, "averaging": settings.averaging, "heads": settings.heads,
            "tokens": inputs.tokens, "seq_len": inputs.seq_len, "seed": inputs.seed,
            "bootstrap": statistics.bootstrap, "precision": statistics.precision,
            "pair_rule": SetRule.of(statistics).record(),
            "attention_type": settings.engine.attention_type, "positions": settings.engine.positions,
            "pads": settings.engine.pads, "contract": settings.contract}


def budget_specs(settings: AuditSettings, loaded: LoadedModel) -> list:
    """The ``--swapkl-prune-budget`` specs, each checked against the model before anything is measured."""
    from ..analysis.budgets import parse_budget

    specs = [parse_budget(text) for text in AuditSettings.of(settings).pruning.prune_budget]
    for spec in specs:
        if spec.min_layers > loaded.n_layers - 1:
            raise InputError(f"--swapkl-prune-budget {spec}: {loaded.name} has {loaded.n_layers} layers and one must "
                             f"stay, so at most {loaded.n_layers - 1} can be removed: ask for fewer")
    return specs


def prune_budgets(specs: list, settings: AuditSettings, loaded: LoadedModel, calibration: Calibration,
                  heldout: Optional[Any]) -> Optional[list[dict]]:
    """One guided search per budget (the fixture's ``prune(...)``), costs on the held-out ids, as the JSON's
    ``prune_budgets`` records; None without budgets."""
    if not specs:
        return None
    from ..analysis.budgets import outcome_record

    settings = AuditSettings.of(settings)
    engine_options = settings.engine.measure_kwargs(batch_size=False)
    searched: dict = {}  # budgets that differ only in min_layers or strict share one search
    for spec in specs:
        key = (spec.guide_name, spec.search, spec.objective, spec.max_cost)
        if key not in searched:
            held = heldout if _windowed(heldout) else heldout.input_ids
            searched[key] = budget_outcome(loaded, calibration.input_ids, held, guide=spec.guide_name,
                                           search=spec.search, objective=spec.objective, max_cost=spec.max_cost,
                                           seed=settings.inputs.seed, batch_size=settings.engine.batch_size,
                                           engine_options=engine_options,
                                           heldout_groups=None if _windowed(heldout) else heldout.documents)
    return [outcome_record(spec, searched[(spec.guide_name, spec.search, spec.objective, spec.max_cost)])
            for spec in specs]


def budget_outcome(loaded: LoadedModel, calibration_ids, heldout_ids, *, guide: str, search: str, objective: str,
                   max_cost: str, seed: int, batch_size: Optional[int], engine_options: dict, beam_width: int = 4,
                   max_evaluations: Optional[int] = None, heldout_groups=None):
    """`budgets.prune_outcome` on a loaded model (its tokenizer gives the bundled task for ``accuracy``): the one
    path of the fixture's ``swapkl_audit.prune(...)`` and of the audit's ``--swapkl-prune-budget`` searches."""
    from ..analysis.budgets import prune_outcome
    from ..inputs.tasks import bundled_task

    task = bundled_task(loaded.tokenizer, seed=seed) if objective == "accuracy" else None
    return prune_outcome(loaded.model, loaded.n_layers, calibration_ids, heldout_ids, task, guide=guide,
                         search=search, objective=objective, max_cost=str(max_cost), beam_width=beam_width,
                         max_evaluations=max_evaluations, seed=seed, batch_size=batch_size,
                         engine_options=engine_options, heldout_groups=heldout_groups)


def noise_floor_for(settings: AuditSettings, loaded: LoadedModel, calibration: Calibration, measurement: Any,
                    notice: Notice = print_notice,
                    progress: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """The audit's noise floor, measured (analysis/noise.py), as the JSON's ``noise`` record; its ``floor`` is
    None where it was not measured (``--noise-probes 0``, or the wider computation failed: then a notice)."""
    settings = AuditSettings.of(settings)
    n_probes = settings.statistics.noise_probes
    dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")
    if not n_probes:
        return {"floor": None, "what": "not measured (--noise-probes 0)", "audit_dtype": dtype}
    if calibration.attention_mask is not None:
        return {"floor": None, "what": "not measured: padded prompts (the wider reference takes no mask yet)",
                "audit_dtype": dtype}
    from ..analysis.noise import measure_noise_floor

    engine_options = {**settings.engine.measure_kwargs(), "notice": notice}
    try:
        return measure_noise_floor(loaded.model, calibration.input_ids, measurement, n_probes=n_probes,
                                   seed=settings.inputs.seed, engine_options=engine_options,
                                   progress=progress).to_json()
    except (RuntimeError, MemoryError) as error:  # e.g. a wider copy that does not fit: the audit stands
        notice(f"noise floor not measured ({str(error).splitlines()[0][:200]}): it is null, so no pair passes "
               "by it; --noise-probes 0 skips the attempt")
        return {"floor": None, "what": f"not measured: {type(error).__name__}", "audit_dtype": dtype}


def offset_measured(loaded: LoadedModel) -> bool:
    """Whether the audit's dtype has a systematic offset to measure (bfloat16, float16)."""
    return next(loaded.model.parameters()).dtype in REDUCED


def dtype_offset_for(settings: AuditSettings, loaded: LoadedModel, calibration: Calibration, measurement: Any,
                     notice: Notice = print_notice, progress: Optional[Callable[[int, int], None]] = None) -> Any:
    """The audit dtype's systematic offset against float32 (analysis/dtype_offset.py): 0 for a float32 audit; not
    measured (nothing carried, a notice) with --noise-probes 0, padded prompts or a float32 copy that fails."""
    settings = AuditSettings.of(settings)
    dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")
    if not offset_measured(loaded):
        return without_measurement(dtype, "")
    why = ("--noise-probes 0" if not settings.statistics.noise_probes else
           "padded prompts" if calibration.attention_mask is not None else None)
    if why is None:
        try:
            return measure_dtype_offset(loaded.model, calibration.input_ids, measurement, seed=settings.inputs.seed,
                                        n_resamples=settings.statistics.bootstrap,
                                        engine_options={**settings.engine.measure_kwargs(), "notice": notice},
                                        progress=progress)
        except (RuntimeError, MemoryError) as error:  # e.g. a float32 copy that does not fit: the audit stands
            why = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    notice(f"{dtype} offset against float32 not measured ({why}): the KL intervals hold the {dtype} means only")
    return without_measurement(dtype, why)


class _Stages:
    """The audit's progress, phase by phase: the probes first, then each later phase (noise floor, statistics,
    pruning costs, prune budgets) as its own labelled count with its own estimate, where the caller's progress
    can start one (`progress.Progress.stage`); a plain ``(done, total)`` callable sees the probes only."""

    def __init__(self, progress: Optional[Callable[[int, int], None]]):
        self.progress = progress
        self.current: Optional[Callable[[int, int], None]] = progress

    def first(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(done, total)

    def phase(self, label: str, what: str = "") -> Optional[Callable[[int, int], None]]:
        """Start the phase ``label`` (a line saying ``what`` it does, when given); its count, or None."""
        stage = getattr(self.progress, "stage", None)
        if stage is None:
            return None
        self.done()
        self.current = stage(label)
        if what:
            self.current.note(what)
        return self.current

    def done(self) -> None:
        """Close the last phase's count (the caller closes the progress it passed)."""
        if self.current is not self.progress and self.current is not None:
            self.current.close()
            self.current = self.progress


def _measure(settings: AuditSettings, loaded: LoadedModel, calibration: Calibration, pairs: list, probes: list,
             tolerances: Optional[Tolerances], run: dict) -> tuple[Any, Optional[Any]]:
    """The measurement, exact or adaptive (then also the adaptive record)."""
    settings = AuditSettings.of(settings)
    statistics, pruning = settings.statistics, settings.pruning
    engine_options = {**settings.engine.measure_kwargs(), **run}
    if statistics.precision != "adaptive":
        return engine.measure(loaded.model, calibration.input_ids, probes, attention_mask=calibration.attention_mask,
                              **engine_options), None
    if calibration.attention_mask is not None:
        raise InputError(f"{calibration.source}: padded prompts are measured exactly only: leave out "
                         "--precision adaptive")
    tests = Tests(tolerances or Tolerances(), statistics.replacement_reduce, pruning.prune_k,
                  pruning.prune_methods, statistics.adaptive_alpha, rule=SetRule.of(statistics))
    adaptive = measure_adaptive(loaded.model, calibration.input_ids, pairs, loaded.n_layers, tests,
                                n_resamples=statistics.bootstrap, seed=statistics.seed, **engine_options)
    return adaptive.measurement, adaptive


def default_journal_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "journal"


def open_journal(settings: AuditSettings, loaded: LoadedModel, calibration, probes, journal_dir: Optional[Path],
                 notice: Callable[[str], None], heldout: Optional[Any] = None) -> Optional[Journal]:
    """The journal of exactly this audit (`settings.content_identity` of the checkpoint's files by name, size
    and mtime, the tokens, probes, dtype, device, engine settings and library versions): any other audit gets
    another file. The model record is kept beside it, for a reader of the journal."""
    model = model_record(loaded)
    name = content_identity(checkpoint=[model, _stat_fingerprint(Path(loaded.path))],
                            tokens_sha256=calibration.sha256, probes=probes,
                            heldout_sha256=None if heldout is None else heldout.sha256,
                            dtype=str(model.get("dtype")), device_kind=str(model.get("device", "")).split(":")[0],
                            settings=AuditSettings.of(settings).engine.identity(), versions=library_versions())
    identity = {"content": name, "model": model}
    path = (journal_dir or default_journal_dir()) / f"{name}.jsonl"
    try:
        journal = Journal.open(path, identity, notice)
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
                            seed=options.seed, vocab_size=loaded.vocab_size, max_positions=loaded.max_positions,
                            pad_to_seq_len=AuditSettings.of(options).engine.pads == "in")


def model_record(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "revision": loaded.revision, "commit": loaded.commit,
            "architecture": loaded.architecture, "n_layers": loaded.n_layers, "dtype": loaded.dtype,
            "dtype_from": getattr(loaded, "dtype_from", "--dtype"),  # auto's rule, or --dtype as given
            "device": loaded.device, "path": loaded.path, "weights": loaded.weights}


def data_record(source: str, calibration) -> dict[str, Any]:
    return {"source": source, "n_sequences": calibration.n_sequences, "seq_len": calibration.seq_len,
            "n_tokens": calibration.n_tokens, "sha256": calibration.sha256,
            **(document_record(calibration) if isinstance(calibration, Calibration) else {})}
