"""The audit JSON's ``sensitivity`` section (analysis/sensitivity.py) as tables: one reader for the terminal
(commands/table.py), the Markdown and the HTML report (commands/report.py).

    for table in sensitivity_tables(document.get("sensitivity")): table.title, table.header, table.rows, table.note

Plain Python, no numpy: the report reads documents written by any version, so every key is optional here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..cases import layer_set_label


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list = field(default_factory=list)
    note: str = ""


def _verdict_text(value: Any) -> str:
    """A verdict item as a cell: a set of layers, pass/fail, or the divergent pairs."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if value is None:
        return "n/a"
    if isinstance(value, list) and all(isinstance(x, int) for x in value):
        return layer_set_label(value)
    if isinstance(value, list):
        return f"{len(value)}: {', '.join(map(str, value))}" if value else "none"
    return str(value)


def _share(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{100 * value:.0f}%"


def sensitivity_tables(section: Optional[dict]) -> list[Table]:
    """The tables of a sensitivity section, in the order the factors were named; [] for none."""
    if not isinstance(section, dict):
        return []
    tables = []
    rules = section.get("rules")
    if isinstance(rules, dict) and rules.get("rows"):
        tables.append(Table(
            "Sensitivity: pair-to-set rules", ("rule", "k", "R removes", "I removes", "Jaccard",
                                                f"Jaccard >= {rules.get('min_jaccard', 'min')}", "flips"),
            [(row.get("label", "?") + (" (audit)" if row.get("audit_rule") else ""), row.get("k"),
              layer_set_label(row.get("replacement_layers")), layer_set_label(row.get("interchange_layers")),
              f"{row['jaccard']:.2f}" if isinstance(row.get("jaccard"), (int, float)) else "n/a",
              "agree" if row.get("agrees") else "differ", "FLIPS" if row.get("flips") else "")
             for row in rules["rows"]],
            "sets of each protocol read by every rule from the same pair distances; 'flips': the Jaccard verdict "
            "differs from the audit's rule's"))
    tables += _draw_tables(section)
    measured = _measured_rows(section)
    if measured:
        tables.append(Table("Sensitivity: measured again", ("factor", "compared", "offset (bfloat16 - float32)",
                                                             "verdicts that flip"), measured))
    skipped = [(name, section[name]["skipped"]) for name in ("draws", "size")
               if isinstance(section.get(name), dict) and "skipped" in section[name]]
    if skipped:
        tables.append(Table("Sensitivity: not computed", ("factor", "why"), skipped))
    beam = section.get("beam")
    if isinstance(beam, dict) and beam.get("note"):
        tables.append(Table("Sensitivity: beam width", ("beam",), [(beam["note"],)]))
    return tables


def _draw_tables(section: dict) -> list[Table]:
    """How often each verdict stays as at full size: in seeded halves, and at each calibration size."""
    reference = section.get("verdicts") or {}
    draws, size = section.get("draws"), section.get("size")
    columns, shares = [], []
    if isinstance(draws, dict) and "stays" in draws:
        columns += [f"stays in {draws.get('draws')} halves", "two halves agree"]
        shares += [draws["stays"], draws.get("halves_agree") or {}]
    for row in (size or {}).get("rows", []) if isinstance(size, dict) else []:
        if "stays" in row:
            columns.append(f"stays at {row.get('sequences')} seq ({row.get('draws')} draws)")
            shares.append(row["stays"])
    if not columns or not reference:
        return []
    rows = [(key, _verdict_text(value), *(_share(share.get(key)) for share in shares))
            for key, value in reference.items()]
    return [Table("Sensitivity: calibration draws and size", ("verdict", "at full size", *columns), rows,
                  "seeded draws of the measured sequences, without replacement; no new forwards")]


def _measured_rows(section: dict) -> list:
    rows = []
    dtype = section.get("dtype")
    if isinstance(dtype, dict):
        if "skipped" in dtype:
            rows.append(("dtype", "skipped", "", dtype["skipped"]))
        else:
            rows.append(("dtype", f"{dtype.get('audit_dtype')} audit vs {dtype.get('other_dtype')}",
                         _offset_text(dtype.get("offset") or {}), ", ".join(dtype.get("flips") or []) or "none"))
    seq_len = section.get("seq-len")
    if isinstance(seq_len, dict):
        if "skipped" in seq_len:
            rows.append(("seq-len", "skipped", "", seq_len["skipped"]))
        else:
            rows.append(("seq-len", f"--seq-len {seq_len.get('audit_seq_len')} vs {seq_len.get('other_seq_len')} "
                         f"({seq_len.get('sequences')} sequences)", "",
                         ", ".join(seq_len.get("flips") or []) or "none"))
    return rows


def _offset_text(offset: dict) -> str:
    mean, ci = offset.get("mean_relative"), offset.get("ci") or [None, None]
    if not isinstance(mean, (int, float)):
        return "n/a"
    interval = "" if None in ci else f" [95% CI {100 * ci[0]:+.2f}%, {100 * ci[1]:+.2f}%]"
    return (f"{100 * mean:+.2f}%{interval} over {offset.get('probes')} probes; "
            f"{_share(offset.get('share_above'))} above; range {100 * offset.get('min_relative', 0):+.2f}% to "
            f"{100 * offset.get('max_relative', 0):+.2f}%")
