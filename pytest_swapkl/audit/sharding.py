"""Sharded audits: one worker's share of the static manifest, and the merge of every share into one audit JSON.

Shared by `torchrun -m pytest_swapkl audit` (each rank a worker, rank 0 merges), `swapkl audit --shard I/N`
(one worker of a job array; its share goes to a shard file) and `swapkl merge SHARD...`.

The audit's identity (`audit_identity`) is its content: the sha256 of the checkpoint's files, the sha256
of the token ids, the probes, dtype, device kind, engine settings and library versions. Units are keyed
by it (`engine/manifest.py`) and kept in a store shared by every run of the audit (`engine/shards.py`),
so a rerun with any number of workers measures only what no worker finished.

A shard document (schema ``swapkl-shard/1``) holds the numbers of its units plus what the merge needs
to write the audit without loading the model: the model and data records and the statistics settings.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..analysis.pair_rules import SetRule
from ..console import Notice, print_notice
from ..engine.compile_cache import use_compile_cache
from ..engine.manifest import DEFAULT_UNIT_SEQUENCES, assigned, build_manifest, manifest_id
from ..engine.probes import audit_probes, parse_pairs
from ..engine.shards import UnitStore, assemble, default_units_dir, unit_problem
from ..errors import InputError
from ..limits import MAX_JOURNAL_BYTES
from ..safe_json import read_json
from ..settings import AuditSettings, content_identity
from .fingerprint import fingerprint_with_memo

SHARD_SCHEMA = "swapkl-shard/1"


class ShardError(InputError):
    pass


def check_shardable(settings: AuditSettings) -> None:
    """What a sharded audit cannot do, said before any work."""
    settings = AuditSettings.of(settings)
    if settings.statistics.precision != "exact":
        raise ShardError("sharded audits (torchrun, --shard) measure every probe on every sequence: "
                         "use --precision exact")
    if settings.pruning.prune_k:
        raise ShardError("sharded audits do not run the pruning validation: drop --prune-k, or run it in one process")
    from ..inputs.prompts import is_prompts

    if is_prompts(settings.inputs.data):
        raise ShardError("sharded audits do not take padded prompts (prompts:FILE) yet: run it in one process")


def audit_identity(settings: AuditSettings, loaded: Any, located: Any, probes: list, fingerprint: str,
                   unit_sequences: int) -> dict[str, Any]:
    """What determines every unit's numbers, and nothing that depends on how many workers there are: the
    content identity (`settings.content_identity`, the shards' ``audit_id``) with the material behind it."""
    from .results import library_versions

    material = {
        "checkpoint": fingerprint,
        "tokens_sha256": located.calibration.sha256,
        "probes": probes,
        "dtype": loaded.dtype,
        "device_kind": next(loaded.model.parameters()).device.type,  # cuda:0 and cuda:3 give the same numbers
        "settings": {**settings.engine.identity(), "unit_sequences": unit_sequences},
        "versions": library_versions(),
    }
    audit_id = content_identity(checkpoint=material["checkpoint"], tokens_sha256=material["tokens_sha256"],
                                probes=probes, dtype=material["dtype"], device_kind=material["device_kind"],
                                settings=material["settings"], versions=material["versions"])
    return {**material, "probes": len(probes), "audit_id": audit_id}


def _unit_sequences(options: Any) -> int:
    return getattr(options, "unit_sequences", None) or DEFAULT_UNIT_SEQUENCES


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _fingerprint(located: Any, units_dir: Path) -> str:
    """The checkpoint's content fingerprint (its file digests memoized beside the units: a rerun reads no weights)."""
    return located.checkpoint.fingerprint or fingerprint_with_memo(Path(located.checkpoint.folder), units_dir)


def run_shard(options: Any, rank: int, world: int, *, progress: Optional[Callable[[int, int], None]] = None,
              notice: Notice = print_notice, units_dir: Optional[Path] = None,
              loaded_out: Optional[dict] = None) -> dict[str, Any]:
    """Measure worker `rank` of `world`'s units (those not finished already) and return its shard document.
    ``loaded_out``, when given, receives the loaded model and calibration (for the merging rank's noise floor)."""
    from ..engine.shards import measure_unit
    from ..inputs.data import check_fits
    from . import runner

    settings = AuditSettings.of(options)
    check_shardable(settings)
    started = time.perf_counter()
    units_dir = Path(units_dir) if units_dir is not None else default_units_dir()
    located = runner.locate(settings, notice)
    loaded = runner.model_from_options(settings, located.checkpoint, notice)
    calibration = located.calibration
    check_fits(calibration, loaded.vocab_size, loaded.max_positions)
    if loaded_out is not None:
        loaded_out.update(loaded=loaded, calibration=calibration)
    pairs = parse_pairs(settings.pairs, loaded.n_layers)
    probes = audit_probes(pairs, loaded.n_layers)
    identity = audit_identity(settings, loaded, located, probes, _fingerprint(located, units_dir),
                              _unit_sequences(options))
    audit_id = identity["audit_id"]
    units = build_manifest(probes, loaded.n_layers, calibration.n_sequences, _unit_sequences(options))
    store = UnitStore(units_dir / audit_id, audit_id)
    use_compile_cache(units_dir.parent / "compile")  # warm kernels for every worker of every run
    mine = assigned(units, rank, world)
    by_name = {p.name: p for p in probes}
    total = sum(len(u.probes) * (u.stop - u.start) for u in mine)
    done, computed, payloads = 0, 0, {}
    engine = {"plan": None, "peak_memory": None}  # the first measured unit's plan, the highest peak
    measure_started = time.perf_counter()
    for unit in mine:
        payload = None if settings.no_resume else store.get(unit)  # --no-resume: measure afresh, keep the new
        if payload is None:
            payload, measured = measure_unit(loaded.model, calibration.input_ids, unit, by_name, audit_id,
                                             notice=notice, progress=_offset(progress, done, total),
                                             **settings.engine.measure_kwargs())
            computed += 1
            engine["plan"] = engine["plan"] or measured.plan
            if measured.peak_memory is not None:
                engine["peak_memory"] = max(engine["peak_memory"] or 0, measured.peak_memory)
            try:
                store.put(payload)
            except (InputError, OSError) as error:  # a full disk costs the reuse, not the audit
                notice(f"work unit not kept in {store.folder} ({error}): a rerun measures it again")
        payloads[payload["unit"]] = payload
        done += len(unit.probes) * (unit.stop - unit.start)
        if progress:
            progress(done, total)
    notice(f"shard {rank}/{world}: {len(mine)} of {len(units)} work units, {computed} measured, "
           f"{len(mine) - computed} taken from {store.folder}")
    context = {"model": runner.model_record(loaded), "data": runner.data_record(settings.inputs.data, calibration),
               "settings": runner.document_settings(settings),
               "replacement_reduce": settings.statistics.replacement_reduce,
               "n_layers": loaded.n_layers, "n_sequences": calibration.n_sequences, "seq_len": calibration.seq_len,
               "unit_sequences": _unit_sequences(options)}
    return {"schema": SHARD_SCHEMA, "audit_id": audit_id, "merge_id": _hash([audit_id, context["settings"],
                                                                            context["replacement_reduce"]]),
            "manifest_id": manifest_id(audit_id, units), "identity": identity, "shard": [rank, world],
            "context": context, "units": payloads, "measured": computed, "engine": engine,
            "seconds": round(time.perf_counter() - started, 3),
            "measure_seconds": round(time.perf_counter() - measure_started, 3)}


def _offset(progress: Optional[Callable[[int, int], None]], done: int, total: int):
    if progress is None:
        return None
    return lambda unit_done, _unit_total: progress(done + unit_done, total)


def read_shard(path: str) -> dict[str, Any]:
    """A shard document from a file, every field that sizes or steers the merge checked (types, ranges, caps)
    before anything is allocated from it; the units' numbers are checked by the merge."""
    document = read_json(path, what="swapkl shard", max_bytes=MAX_JOURNAL_BYTES,
                         fix="pass shard files written by swapkl audit --shard I/N --json SHARD")
    fields = {"schema", "audit_id", "merge_id", "manifest_id", "context", "units", "shard"}
    if not isinstance(document, dict) or document.get("schema") != SHARD_SCHEMA or not fields <= set(document):
        raise ShardError(f"{path} is not a swapkl shard ({SHARD_SCHEMA}): pass files written by "
                         "swapkl audit --shard I/N --json SHARD")
    problem = _shard_problem(document)
    if problem is not None:
        raise ShardError(f"{path} is a damaged or altered swapkl shard ({problem}): rerun its worker with "
                         "swapkl audit --shard I/N --json SHARD")
    return document


def _choices(option: str) -> tuple:
    from ..options import OPTIONS

    return next(declared.choices for declared in OPTIONS if declared.name == option)


def _rule(record: Any) -> Optional[SetRule]:
    """The pair rule a shard's settings record (``SetRule.record``; none recorded: the default), None if bad."""
    if record is None:
        return SetRule()
    if not isinstance(record, dict) or not _whole(record.get("spacing"), 0, 1 << 31) or \
            not _whole(record.get("keep_boundary"), 0, 1 << 31):
        return None
    try:
        return SetRule(record.get("name"), record["spacing"], record["keep_boundary"])
    except ValueError:  # an unknown name (UnknownNameError)
        return None


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _shard_problem(document: dict) -> Optional[str]:
    """Why a shard's own fields cannot be used (a short phrase), or None."""
    from ..engine.reference import ATTENTION_TYPES
    from ..limits import MAX_LAYERS, MAX_POSITIONS, MAX_SHARDS

    for key in ("audit_id", "merge_id", "manifest_id"):
        if not (isinstance(document[key], str) and re.fullmatch(r"[0-9a-f]{16,64}", document[key])):
            return f"{key} is not a hex digest"
    shard = document["shard"]
    if not (isinstance(shard, list) and len(shard) == 2 and _whole(shard[1], 1, MAX_SHARDS)
            and _whole(shard[0], 0, shard[1] - 1)):
        return "shard is not [rank, world] with 0 <= rank < world"
    if not isinstance(document["units"], dict):
        return "units is not an object"
    for key in ("seconds", "measure_seconds"):  # timings: compared and copied by the merge
        value = document.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
            return f"{key} is not a number of seconds"
    engine = document.get("engine")
    if engine is not None and not (isinstance(engine, dict) and isinstance(engine.get("plan") or {}, dict)):
        return "engine is not an object with a plan"
    context = document["context"]
    if not isinstance(context, dict) or not isinstance(context.get("settings"), dict):
        return "context has no settings"
    settings = context["settings"]
    checks = {
        "n_layers": _whole(context.get("n_layers"), 2, MAX_LAYERS),
        "seq_len": _whole(context.get("seq_len"), 2, MAX_POSITIONS),
        "n_sequences": _whole(context.get("n_sequences"), 1, MAX_POSITIONS),
        "unit_sequences": _whole(context.get("unit_sequences"), 1, MAX_POSITIONS),
        "replacement_reduce": context.get("replacement_reduce") in _choices("replacement_reduce"),
        "settings.bootstrap": _whole(settings.get("bootstrap"), 1, 100_000),
        "settings.seed": _whole(settings.get("seed"), 0, 2**63 - 1),
        "settings.pair_rule": settings.get("pair_rule") is None or _rule(settings["pair_rule"]) is not None,
        "settings.pairs": isinstance(settings.get("pairs"), str) and len(settings["pairs"]) <= 100_000,
        "settings.attention_type": settings.get("attention_type") in ATTENTION_TYPES,
        "model": isinstance(context.get("model"), dict),
        "data": isinstance(context.get("data"), dict),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        return f"{wrong[0]} is missing, of the wrong type or out of range"
    return None


NO_MODEL_NOISE = ("not measured: swapkl merge has no model loaded (an audit under torchrun, or without --shard, "
                  "measures it)")


def merge_shards(shards: list[tuple[str, dict]], notice: Notice = print_notice,
                 seconds: Optional[float] = None,
                 noise_for: Optional[Callable[[Any], dict]] = None) -> tuple[dict, Any]:
    """The audit document and summarized audit of `shards` ((name, shard document) each), which must be of one
    audit and together hold every unit of its manifest. Timing: `seconds` if given, else the slowest shard's.
    ``noise_for(measurement)`` measures the noise floor as a single process does (runner.noise_floor_for), where
    a model is loaded (torchrun's rank 0); without it the floor is null and says why, never an unmeasured 0."""
    from ..analysis.audit import summarize
    from .results import audit_document

    first_name, first = min(shards, key=lambda item: tuple(item[1]["shard"]))
    for name, shard in shards:
        if shard["merge_id"] != first["merge_id"] or shard["manifest_id"] != first["manifest_id"]:
            raise ShardError(f"{name} and {first_name} are shards of different audits (model, data, probes, dtype "
                             "or settings differ): merge only the shards of one audit")
    context = first["context"]
    audit_id = first["audit_id"]
    settings = context["settings"]
    pairs = parse_pairs(settings["pairs"], context["n_layers"])
    probes = audit_probes(pairs, context["n_layers"])
    given = sum(len(shard["units"]) for _, shard in shards)
    ranges = -(-context["n_sequences"] // context["unit_sequences"])
    if ranges > given:  # every probe group has this many units: the shards cannot hold them all
        raise ShardError(f"{first_name} claims {context['n_sequences']} sequences in {ranges} ranges, but the shards "
                         f"given hold {given} work units in all: pass every shard of the audit, or rerun them")
    from .runner import check_resampling

    check_resampling(settings["bootstrap"], max(context["n_sequences"], len(probes)))
    units = build_manifest(probes, context["n_layers"], context["n_sequences"], context["unit_sequences"])
    if manifest_id(audit_id, units) != first["manifest_id"]:
        raise ShardError(f"{first_name}'s manifest does not match its settings: regenerate it with this swapkl")
    payloads: dict[str, dict] = {}
    came_from: dict[str, str] = {}
    for name, shard in shards:
        for key, payload in shard["units"].items():
            if key in payloads and payloads[key] != payload:  # which one would win depends on argument order
                raise ShardError(f"{came_from[key]} and {name} hold different numbers for one work unit ({key}): "
                                 "they are not shards of one run; rerun one of them, or merge only one run's shards")
            payloads.setdefault(key, payload)
            came_from.setdefault(key, name)
    missing = [unit for unit in units if unit.key(audit_id) not in payloads]
    if missing:
        world = first["shard"][1]
        raise ShardError(f"{len(missing)} of {len(units)} work units are in none of the shards given (e.g. sequences "
                         f"{missing[0].start}-{missing[0].stop - 1} of {missing[0].probes[0]}): pass every shard of "
                         f"the {world}, or rerun the missing ones")
    for unit in units:
        problem = unit_problem(payloads[unit.key(audit_id)], unit, audit_id)
        if problem is not None:
            raise ShardError(f"a work unit in the shards {problem}: rerun its shard")
    measurement = assemble(units, payloads, probes, audit_id, context["n_sequences"], context["seq_len"])
    engines = [shard.get("engine") or {} for _, shard in sorted(shards, key=lambda item: tuple(item[1]["shard"]))]
    measurement.plan = next((e["plan"] for e in engines if e.get("plan")), {})  # units of one audit: one plan
    peaks = [e["peak_memory"] for e in engines if isinstance(e.get("peak_memory"), int)]
    measurement.peak_memory = max(peaks) if peaks else None  # the highest of any worker
    measurement.seconds = max(shard.get("measure_seconds", 0.0) for _, shard in shards)
    noise = noise_for(measurement) if noise_for is not None else {"floor": None, "what": NO_MODEL_NOISE}
    measurement.noise_floor = noise["floor"]
    audit = summarize(measurement, pairs, context["n_layers"], context["replacement_reduce"],
                      settings["bootstrap"], settings["seed"], _rule(settings.get("pair_rule")))
    for line in audit.notes:
        notice(line)
    slowest = max(shards, key=lambda item: item[1].get("seconds", 0))[1]
    document = audit_document(audit, context["model"], context["data"], settings,
                              seconds if seconds is not None else slowest.get("seconds", 0.0))
    document["measure_seconds"] = max(shard.get("measure_seconds", 0.0) for _, shard in shards)
    document["noise"] = noise
    document["heldout"] = None  # sharded audits report no costs (--prune-k is refused), as a single one without it
    from ..analysis.dtype_offset import without_measurement  # torch: only when shards are merged

    document["dtype_offset"] = without_measurement(str(context["model"].get("dtype")),
                                                   "sharded audits (--shard, torchrun) do not measure it").to_json()
    return document, audit
