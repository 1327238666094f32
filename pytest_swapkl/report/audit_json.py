"""An audit JSON document (schema ``swapkl/1``, what `swapkl audit --json` and `--swapkl-json` write) as the cases
`swapkl report` reads from junit XML.

    cases = audit_cases(document, Tolerances())     # [junit.Case], as `pytest --swapkl-audit-json=FILE` writes them

The document is judged with the plugin's own rules and tolerances (`analysis.judged`), and every property
value takes the round trip it takes through a junit file (pytest writes ``str(value)``, `junit.parse_value`
reads it back), so `junit.audit_from_cases` builds the same audit from either file. What the JSON cannot
give: the case times and the <testsuite> counts (the report shows neither), and a failure's message is the
whole text pytest would write (the junit file holds a shortened first part before it).
"""

from __future__ import annotations

from ..analysis.agreement import Tolerances
from ..analysis.judged import judged_cases
from ..audit.results import SCHEMA, document_problem
from .case_text import failure_text
from .junit import AuditReading, Case, JunitError, audit_from_cases, parse_value

FIX = "pass a file written by swapkl audit --json, --swapkl-json or swapkl merge"


def check_document(document: dict, path: str) -> None:
    """A one-line `JunitError` when `document` is not an audit document the cases can be built from."""
    problem = document_problem(document)
    if problem is not None:
        raise JunitError(f"{path}: not a complete {SCHEMA} audit document ({problem}); {FIX}")


def audit_cases(document: dict, tolerances: Tolerances, origin: str) -> list[Case]:
    """The generated cases of `document` with their outcomes under `tolerances`; `origin` is where it came from."""
    found = []
    for case in judged_cases(document, tolerances, origin=origin, cache_hit=True):
        passed, message = case.check()
        properties = {key: parse_value(str(value)) for key, value in case.properties}
        if passed is None:
            outcome = "skipped"
        elif passed:
            outcome, message = "passed", ""
        else:
            outcome, message = "failed", failure_text(message, case.properties)
        found.append(Case(name=case.name, outcome=outcome, message=message, properties=properties))
    return found


def read_document(document: dict, tolerances: Tolerances, source: str) -> AuditReading:
    """An audit JSON as the one read model of an audit: the same `AuditReading` the junit reader gives for the
    junit file of the same audit (its cases judged under `tolerances`). The report, the plugin's baseline case and
    `swapkl report --baseline` compare audits through it."""
    reading = audit_from_cases([source], [audit_cases(document, tolerances, origin=source)], [])
    add_probe_tables(reading, document)
    return reading


def add_probe_tables(reading: AuditReading, document: dict) -> None:
    """The optional probe tables (audit/probe_tables.py), which travel in the JSON only, not as cases."""
    known = {(i, j) for i, j, *_ in reading.averaging}  # the merge cases read them already
    reading.averaging += [(row["i"], row["j"], row["averaging"], row.get("averaging_ci"))
                          for row in document.get("pairs", []) if isinstance(row, dict) and "averaging" in row
                          and (row.get("i"), row.get("j")) not in known]
    reading.heads += [row for row in document.get("heads") or [] if isinstance(row, dict)]
    if isinstance(document.get("sensitivity"), dict):  # optional: older documents have none
        reading.sensitivity = document["sensitivity"]
