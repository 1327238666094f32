"""What `swapkl report` was given, told apart by content (not by the file's extension).

    given = read_inputs(["audit.xml", "audit.json", "guided.json"], Tolerances())
    given.audit      # AuditReading of every junit file and audit JSON, merged as parts of one audit (or None)
    given.studies    # [GuidedStudy]: guided-removal studies, one report section each

A file whose text starts with ``{`` or ``[`` is JSON: an audit document (``schema: swapkl/1``) becomes the cases its
junit file would hold (`audit_json`), a study with a ``prune`` object is a guided-removal study (`guided`),
anything else is refused. Everything else is read as junit XML. Errors are one-line `JunitError`s that name
the file, the problem and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..analysis.agreement import Tolerances
from ..audit.results import SCHEMA
from ..safe_files import UnreadableFile, decode_text, read_input
from ..safe_json import MAX_BYTES, JsonError, parse_json
from .audit_json import add_probe_tables, audit_cases, check_document
from .guided import is_study, read_study
from .junit import AuditReading, JunitError, audit_from_cases, read_cases

FIX = ("pass junit XML (pytest --junitxml), an audit JSON (swapkl audit --json) or a guided-removal JSON "
       "(swapkl prune --json)")


@dataclass
class Inputs:
    audit: Optional[AuditReading] = None
    studies: list = field(default_factory=list)  # [GuidedStudy]


def _text(path: str) -> str:
    what = "JSON file" if path.lower().endswith(".json") else "junit file"  # only to name it in an error
    try:
        return decode_text(read_input(path, what=what, max_bytes=MAX_BYTES, fix=FIX), path, what=what, fix=FIX)
    except UnreadableFile as error:
        raise JunitError(str(error)) from None


def _json(text: str, path: str):
    try:
        return parse_json(text, path, what="JSON report input", fix=FIX)
    except JsonError as error:
        raise JunitError(str(error)) from None


def read_inputs(paths: Sequence, tolerances: Tolerances) -> Inputs:
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise JunitError(f"no input file given; {FIX}")
    sources, per_source, suites, studies, documents = [], [], [], [], []
    for path in paths:
        text = _text(path)
        if not text.lstrip().startswith(("{", "[")):  # no XML document starts with either
            stats, cases = read_cases(path)
            sources.append(path)
            per_source.append(cases)
            suites += stats
            continue
        document = _json(text, path)
        if isinstance(document, dict) and document.get("schema") == SCHEMA:
            check_document(document, path)
            sources.append(path)
            per_source.append(audit_cases(document, tolerances, origin=path))
            documents.append(document)
        elif is_study(document):
            studies.append(read_study(document, path))
        else:
            schema = document.get("schema") if isinstance(document, dict) else None
            named = f"a JSON document of schema {schema!r}" if schema else "a JSON document without a schema"
            raise JunitError(f"{path}: {named} is neither an audit ({SCHEMA}) nor a guided-removal study (an object "
                             f"with 'prune'); {FIX}")
    audit = audit_from_cases(sources, per_source, suites) if sources else None
    for document in documents:
        add_probe_tables(audit, document)
    return Inputs(audit=audit, studies=studies)

