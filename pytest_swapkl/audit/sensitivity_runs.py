"""The audit's sensitivity section (``--sensitivity``), with the measurements its dtype and seq-len factors ask for.

analysis/sensitivity.py holds the factors and loads no model; this module gives them ``remeasure``: the same probes
on the same model, loaded again in the other dtype, or on the calibration sequences cut in halves.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Optional

from .. import engine
from ..analysis.agreement import Tolerances
from ..analysis.audit import Audit
from ..analysis.sensitivity import Context, Remeasure, sensitivity_section
from ..console import Notice
from ..inputs.data import Calibration
from ..inputs.loading import LoadedModel
from ..settings import AuditSettings

Load = Callable[[AuditSettings], LoadedModel]  # settings -> the model they name (the runner's model_from_options)


def sensitivity_record(settings: AuditSettings, audit: Audit, pairs: list, loaded: LoadedModel,
                       calibration: Calibration, probes: list, tolerances: Optional[Tolerances],
                       notice: Notice, load: Load) -> dict[str, Any]:
    """The JSON's ``sensitivity`` record for ``settings.sensitivity``'s factors; ``load`` loads the model again
    (in the other dtype)."""
    statistics = settings.statistics
    context = Context(audit, pairs, loaded.n_layers, tolerances or Tolerances(), statistics.bootstrap,
                      statistics.seed, dtype=str(loaded.dtype), seq_len=calibration.seq_len,
                      remeasure=remeasurer(settings, loaded, calibration, probes, notice, load),
                      prune_budget=tuple(settings.pruning.prune_budget))
    started = time.perf_counter()
    section = sensitivity_section(context, settings.sensitivity)
    return {**section, "seconds": round(time.perf_counter() - started, 3)}  # measuring again included


def remeasurer(settings: AuditSettings, loaded: LoadedModel, calibration: Calibration, probes: list,
               notice: Notice, load: Load) -> Remeasure:
    """``remeasure("dtype", "bfloat16")`` or ``remeasure("seq_len", 64)``: the audit's probes measured again with
    that one setting changed (None where it cannot be: padded prompts, whose shape is the data's)."""
    engine_options = {**settings.engine.measure_kwargs(), "notice": notice}

    def remeasure(what: str, value: Any):
        if calibration.attention_mask is not None:
            return None
        if what == "dtype":
            notice(f"sensitivity: loading the model again in {value} and measuring the audit's probes")
            other = replace(settings, inputs=replace(settings.inputs, dtype=value))
            model = load(other).model
            try:
                return engine.measure(model, calibration.input_ids, probes, **engine_options)
            finally:
                del model
        if what == "seq_len":  # the same tokens: each sequence cut into pieces of `value` (an odd tail dropped)
            notice(f"sensitivity: measuring the audit's probes on the same text cut at --seq-len {value}")
            ids = calibration.input_ids
            shorter = ids[:, :ids.shape[1] // value * value].reshape(-1, value)
            return engine.measure(loaded.model, shorter, probes, **engine_options)
        raise ValueError(f"cannot measure again with {what} changed")

    return remeasure
