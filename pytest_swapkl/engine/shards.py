"""Work units measured and kept on disk, one atomic file each, and a measurement assembled from them.

A unit file holds the journal's records (`engine/journal.py`: name, start, stop, per-sequence
KL and NLL, floats that round-trip float64 exactly) for the unit's probes and the base NLL, with
the journal's sha256 over the payload. It is written atomically (`safe_files.write_text`: temp
file, fsync, rename), so a worker killed with SIGKILL leaves finished units whole and nothing
else; a damaged, foreign or torn file is measured again, never mixed in.

The store is keyed by content (`WorkUnit.key`), not by worker: any worker of any run of the same
audit finds what any other finished.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..limits import MAX_JOURNAL_BYTES
from ..safe_files import write_text
from ..safe_json import JsonError, read_json
from .journal import _digest, _is_record
from .manifest import WorkUnit
from .measurement import Measurement, ProbeStats
from .probes import Probe

FORMAT = "swapkl-unit/1"
BASE_RECORD = "base"  # the unchanged model's NLL, as the journal names it
PAYLOAD_FIELDS = {"format", "audit", "unit", "start", "stop", "path", "noise_floor", "records"}


class UnitStore:
    """Finished units of one audit under `folder`, one `KEY.json` each."""

    def __init__(self, folder: Path, audit_id: str):
        self.folder = Path(folder)
        self.audit_id = audit_id

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, unit: WorkUnit) -> Optional[dict]:
        """The unit's payload if a whole, checked file of this audit holds it; else None (measure it)."""
        key = unit.key(self.audit_id)
        try:
            entry = read_json(self.path(key), what="work unit", max_bytes=MAX_JOURNAL_BYTES)
        except (JsonError, OSError):
            return None
        payload = entry.get("payload") if isinstance(entry, dict) else None
        if not isinstance(payload, dict) or entry.get("sha256") != _digest(payload):
            return None
        return payload if unit_problem(payload, unit, self.audit_id) is None else None

    def put(self, payload: dict) -> Path:
        return write_text(self.path(payload["unit"]), _entry_text(payload), make_parents=True)

    def finished(self) -> int:
        """Unit files present (whole or not): what a test counts after a kill."""
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0


def _entry_text(payload: dict) -> str:
    import json

    return json.dumps({"payload": payload, "sha256": _digest(payload)}) + "\n"


def unit_problem(payload: Any, unit: WorkUnit, audit_id: str) -> Optional[str]:
    """Why `payload` is not `unit`'s numbers for audit `audit_id` (a short phrase), or None."""
    if not isinstance(payload, dict) or set(payload) != PAYLOAD_FIELDS or payload["format"] != FORMAT:
        return "is not a work unit of this swapkl version"
    if payload["audit"] != audit_id or payload["unit"] != unit.key(audit_id):
        return "belongs to another audit"
    if (payload["start"], payload["stop"]) != (unit.start, unit.stop):
        return "covers other sequences than its key says"
    records = payload["records"]
    if not isinstance(records, list) or not all(_is_record(r) for r in records):
        return "holds a record with missing or non-finite fields"
    names = [r["name"] for r in records]
    if sorted(names) != sorted([*unit.probes, BASE_RECORD]):
        return "does not hold exactly its probes and the base"
    if any((r["start"], r["stop"]) != (unit.start, unit.stop) for r in records):
        return "holds a record of other sequences"
    floor = payload["noise_floor"]
    if floor is not None and not (type(floor) in (int, float) and np.isfinite(floor) and floor >= 0):
        return "has a noise floor that is not a finite number >= 0"
    return None


def measure_unit(model, input_ids, unit: WorkUnit, probes: dict[str, Probe], audit_id: str, *,
                 batch_size: Optional[int], progress: Optional[Callable[[int, int], None]] = None,
                 **engine_options) -> tuple[dict, Measurement]:
    """Measure one unit (its probes on its sequences): its payload, ready for `UnitStore.put`, and the measurement
    (for its batch plan and memory peak)."""
    from .loop import measure

    batch = input_ids[unit.start:unit.stop]
    # A batch never spans two units: the unit's numbers do not depend on which worker measured it, or when.
    size = min(batch_size or batch.shape[0], batch.shape[0])
    result = measure(model, batch, [probes[name] for name in unit.probes], batch_size=size, progress=progress,
                     first_sequence=unit.start, **engine_options)
    records = [_record(BASE_RECORD, unit, np.zeros_like(result.base_nll_per_seq), result.base_nll_per_seq)]
    records += [_record(name, unit, result[probes[name]].kl_per_seq, result[probes[name]].nll_per_seq)
                for name in unit.probes]
    return {"format": FORMAT, "audit": audit_id, "unit": unit.key(audit_id), "start": unit.start,
            "stop": unit.stop, "path": result.path, "records": records,
            # The noise floor is the first batch's: only the units that start at sequence 0 have the audit's.
            "noise_floor": float(result.noise_floor) if unit.start == 0 else None}, result


def _record(name: str, unit: WorkUnit, kl, nll) -> dict:
    return {"name": name, "start": unit.start, "stop": unit.stop,
            "kl": np.asarray(kl, dtype=np.float64).tolist(), "nll": np.asarray(nll, dtype=np.float64).tolist()}


def assemble(units: Sequence[WorkUnit], payloads: dict[str, dict], probes: Sequence[Probe], audit_id: str,
             n_sequences: int, seq_len: int) -> Measurement:
    """The audit's measurement from every unit's payload (keyed by unit key), sequences in order."""
    by_name = {p.name: p for p in probes}
    pieces: dict[str, dict[int, tuple[list, list]]] = {}
    first = units[0].group  # every group measures the base on its ranges; one group's copy is the audit's
    noise_floor = 0.0
    path = "fast"
    for unit in units:
        payload = payloads[unit.key(audit_id)]
        path = payload["path"]
        for record in payload["records"]:
            if record["name"] == BASE_RECORD and unit.group != first:
                continue
            pieces.setdefault(record["name"], {})[unit.start] = (record["kl"], record["nll"])
        if unit.group == first and unit.start == 0 and payload["noise_floor"] is not None:
            noise_floor = float(payload["noise_floor"])

    def joined(name: str, which: int) -> np.ndarray:
        ranges = pieces[name]
        return np.asarray([x for start in sorted(ranges) for x in ranges[start][which]], dtype=np.float64)

    stats = {by_name[name]: ProbeStats(by_name[name], joined(name, 0), joined(name, 1))
             for name in dict.fromkeys(p.name for p in probes)}
    measurement = Measurement(path, n_sequences, seq_len, joined(BASE_RECORD, 1), stats, 0.0)
    measurement.noise_floor = noise_floor
    return measurement


def default_units_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swapkl" / "units"
