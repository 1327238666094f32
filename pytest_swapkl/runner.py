"""Load, measure, summarize: one audit from options, shared by `swapkl audit` and the plugin."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from . import engine
from .audit import Audit, summarize
from .data import load_calibration
from .loading import LoadedModel, load_model
from .probes import audit_probes, parse_pairs
from .results import audit_document


def run_audit(options: Any, progress: Optional[Callable[[int, int], None]] = None,
              loaded: Optional[LoadedModel] = None) -> tuple[dict, Audit, Optional[Any]]:
    """`options` has the attributes of `swapkl audit`'s arguments (model, data, pairs, tokens, ...)."""
    started = time.perf_counter()
    if loaded is None:
        loaded = load_model(options.model, revision=options.revision, dtype=options.dtype, device=options.device,
                            allow_pickle=options.allow_pickle, trust_remote_code=options.trust_remote_code)
    calibration = load_calibration_for(options, loaded)
    pairs = parse_pairs(options.pairs, loaded.n_layers)
    measurement = engine.measure(loaded.model, calibration.input_ids, audit_probes(pairs, loaded.n_layers),
                                 path=options.path, batch_size=options.batch_size, progress=progress)
    audit = summarize(measurement, pairs, loaded.n_layers, options.replacement_reduce, options.bootstrap,
                      options.seed)
    settings = {"pairs": options.pairs, "tokens": options.tokens, "seq_len": options.seq_len, "seed": options.seed,
                "bootstrap": options.bootstrap}
    pruning = None
    if options.prune_k:
        from .pruning import validate_pruning

        pruning = validate_pruning(loaded.model, calibration.input_ids, audit,
                                   max_k=min(options.prune_k, loaded.n_layers - 1),
                                   methods=options.prune_methods, batch_size=options.batch_size)
        settings["prune_k"], settings["prune_methods"] = options.prune_k, list(options.prune_methods)
    document = audit_document(audit, model_record(loaded), data_record(options.data, calibration), settings,
                              time.perf_counter() - started)
    if pruning is not None:
        document.update(pruning.to_json())
    return document, audit, pruning


def load_calibration_for(options: Any, loaded: LoadedModel):
    return load_calibration(options.data, loaded.tokenizer, tokens=options.tokens, seq_len=options.seq_len,
                            seed=options.seed, vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)


def model_record(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "revision": loaded.revision, "commit": loaded.commit,
            "architecture": loaded.architecture, "n_layers": loaded.n_layers, "dtype": loaded.dtype,
            "device": loaded.device, "path": loaded.path}


def data_record(source: str, calibration) -> dict[str, Any]:
    return {"source": source, "n_sequences": calibration.n_sequences, "seq_len": calibration.seq_len,
            "n_tokens": calibration.n_tokens, "sha256": calibration.sha256}
