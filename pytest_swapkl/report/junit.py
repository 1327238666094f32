"""Read the junit XML of a swapkl audit back into typed records.

    audit = read_junit(["audit.xml"])            # or several shards of one audit
    audit.pairs[0].interchange, audit.spearman, audit.removals

Safe on untrusted files: the file is read through the guarded opener (a regular file, size
capped), the text must be UTF-8, and it is parsed by defusedxml with DTDs forbidden, so
entity-expansion bombs ("billion laughs") and external entities are refused, not expanded.
Every number that could size something later (layer indices, budgets, counts) is checked
against the layer count the file itself states (its audit case lists one removal per layer)
and against `limits.MAX_LAYERS` before anyone uses it: a report never allocates an n x n
grid from an untrusted j. Reads pytest's `junit_family=xunit1` and `xunit2` (numbers inside
each <testcase>, or the suite's `swapkl::CASE::KEY` properties), a `<testsuites>` root or a
bare `<testsuite>`. Each case's properties are read by its kind's reader (`cases`, in the registry
`case_kinds.CASE_KINDS`) into the records of `case_records`. Errors are `JunitError` (an `InputError`):
one line, exit 2 in the CLI. No torch, no numpy.
"""

from __future__ import annotations

import ast
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from .. import cases as catalogue
from ..case_kinds import CASE_KINDS
from ..case_records import NOT_JUDGED, JunitError, Pair, altered, integer, number, shown
from ..limits import MAX_LAYERS
from ..safe_files import UnreadableFile, decode_text, read_input
from ..safe_json import MAX_BYTES  # one size cap for every untrusted input file

CLASSNAME = catalogue.CLASSNAME


@dataclass(frozen=True)
class Case:
    """One generated test case: `name` as in `swapkl::name`."""

    name: str
    outcome: str  # passed | failed | error | skipped
    message: str  # the failure, error or skip message; "" when passed
    properties: dict
    time: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class SuiteStats:
    name: str
    tests: int
    failures: int
    errors: int
    skipped: int
    time: float


@dataclass
class AuditReading:
    sources: list
    model: Optional[str] = None
    data_sha256: Optional[str] = None
    dtype: Optional[str] = None
    device: Optional[str] = None
    base_ppl: Optional[float] = None
    noise_floor: Optional[float] = None
    noise_floor_measured_as: Optional[str] = None  # how it was measured, or why it was not
    heldout_source: Optional[str] = None  # the text every pruning cost was measured on
    heldout_sha256: Optional[str] = None
    spearman: Optional[float] = None
    kendall: Optional[float] = None
    spearman_ci: tuple = (None, None)
    kendall_ci: tuple = (None, None)
    n_pairs: Optional[int] = None
    replacement_reduce: Optional[str] = None  # how R combined the two directions (max: Definition 1)
    pair_rule: Optional[str] = None  # the rule that read every top-k set, in words ("min-partner (spacing 1)")
    pairs: list = field(default_factory=list)  # [Pair], by (i, j)
    removals: list = field(default_factory=list)  # [Removal], by layer
    topk: list = field(default_factory=list)  # [TopK], by k
    prune_costs: list = field(default_factory=list)  # [PruneCost], by (k, method)
    prune_gaps: list = field(default_factory=list)  # [PruneGap], by k
    readings: dict = field(default_factory=dict)  # kind -> what a kind registered outside this package read
    merges: list = field(default_factory=list)  # [Merge], the merge[Li-Lj] cases (--averaging), by (i, j)
    averaging: list = field(default_factory=list)  # an audit JSON's pairs' averaging: [(i, j, kl, ci)]
    heads: list = field(default_factory=list)  # an audit JSON's heads: [{i, j, head, kl, ci}]
    sensitivity: Optional[dict] = None  # an audit JSON's sensitivity section (report/sensitivity.py), if any
    cases: list = field(default_factory=list)  # [Case], every swapkl case, by name
    suites: list = field(default_factory=list)  # [SuiteStats], one per <testsuite> read

    def counts(self) -> dict:
        """Outcomes of the swapkl cases: {'passed': n, 'failed': n, 'error': n, 'skipped': n}."""
        counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for case in self.cases:
            counts[case.outcome] = counts.get(case.outcome, 0) + 1
        return counts

    def case(self, name: str) -> Optional[Case]:
        return next((c for c in self.cases if c.name == name), None)

    def pair(self, i: int, j: int) -> Optional[Pair]:
        return next((p for p in self.pairs if (p.i, p.j) == (i, j)), None)

    @property
    def n_layers(self) -> int:
        layers = [r.layer for r in self.removals] + [p.j for p in self.pairs]
        return max(layers) + 1 if layers else 0


# ---------------------------------------------------------------- values

def parse_value(text: Optional[str]):
    """A property value back from its str(): None, bool, int, float (nan/inf too), list, else the string."""
    if text is None or text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text[:1] in "[(":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
    return text


# ---------------------------------------------------------------- parsing

def _load_root(path: str) -> ET.Element:
    try:
        data = read_input(path, what="junit file", max_bytes=MAX_BYTES,
                          fix="pass the file written by pytest --junitxml=PATH")
        text = decode_text(data, path, what="junit file", fix="junit files from pytest are UTF-8")
    except UnreadableFile as error:
        raise JunitError(str(error)) from None
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        raise JunitError(f"{path}: DOCTYPE/ENTITY declarations are not allowed in a junit file "
                         "(refused by defusedxml: entity expansion and external entities are unsafe)") from None
    except ET.ParseError as error:
        raise JunitError(f"{path}: malformed XML ({error}); is the file complete?") from None


def _outcome(element: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        child = element.find(tag)
        if child is not None:
            message = child.get("message") or ""
            body = (child.text or "").strip()
            if outcome != "skipped" and body and body not in message:
                message = f"{message}\n{body}" if message else body
            return outcome, message
    return "passed", ""


def _properties(element: ET.Element) -> dict:
    properties = {}
    for prop in element.iter("property"):
        name = prop.get("name")
        if name is not None:
            properties[name] = parse_value(prop.get("value"))
    return properties


def _suite_numbers(suite: ET.Element) -> dict:
    """Case name -> properties, from the suite's own <properties> (`swapkl::CASE::KEY`, junit_family=xunit2)."""
    found: dict = {}
    for properties in suite.findall("properties"):
        for prop in properties.findall("property"):
            parsed = catalogue.parse_suite_property(prop.get("name") or "")
            if parsed is not None:
                found.setdefault(parsed[0], {})[parsed[1]] = parse_value(prop.get("value"))
    return found


def _is_swapkl(testcase: ET.Element) -> bool:
    classname = testcase.get("classname") or ""
    return classname == CLASSNAME or classname.endswith("." + CLASSNAME)


def read_cases(path: str) -> tuple[list, list]:
    """([SuiteStats], [Case]) of one junit file: its swapkl cases, not yet merged or checked."""
    root = _load_root(path)
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = list(root.iter("testsuite"))
    else:
        raise JunitError(f"{path}: root element <{root.tag}> is not <testsuites> or <testsuite>; not a junit file")
    stats, cases = [], []
    for suite in suites:
        stats.append(SuiteStats(
            name=suite.get("name") or "", tests=integer(parse_value(suite.get("tests"))) or 0,
            failures=integer(parse_value(suite.get("failures"))) or 0,
            errors=integer(parse_value(suite.get("errors"))) or 0,
            skipped=integer(parse_value(suite.get("skipped") or suite.get("skips"))) or 0,
            time=number(parse_value(suite.get("time"))) or 0.0))
        in_suite = _suite_numbers(suite)
        for testcase in suite.findall("testcase"):
            if not _is_swapkl(testcase):
                continue
            outcome, message = _outcome(testcase)
            name = testcase.get("name") or ""
            cases.append(Case(name=name, outcome=outcome, message=message,
                              properties={**in_suite.get(name, {}), **_properties(testcase)},
                              time=number(parse_value(testcase.get("time"))) or 0.0))
    if not cases:
        raise JunitError(f"{path}: no swapkl test cases (classname 'swapkl'); "
                         "was pytest run with --swapkl-model=...?")
    return stats, cases


def _merge_cases(paths: Sequence[str], per_file: list) -> list:
    merged: dict[str, tuple[str, Case]] = {}
    for path, cases in zip(paths, per_file):
        for case in cases:
            if case.name in merged:
                other_path, other = merged[case.name]
                if _comparable(other.properties) != _comparable(case.properties):
                    if other_path == path:
                        raise JunitError(f"{path}: case {case.name!r} appears twice with different numbers; "
                                         "a junit file of one audit has each case once: regenerate it")
                    raise JunitError(f"{path} and {other_path}: case {case.name!r} has different numbers; "
                                     "these files are not shards of one audit")
                continue
            merged[case.name] = (path, case)
    return [case for _, case in merged.values()]


def _comparable(properties: dict) -> dict:
    return {k: v for k, v in properties.items() if not k.startswith("audit_")}


def _check_context(paths: Sequence[str], per_file: list) -> None:
    seen: dict[str, tuple[str, object]] = {}
    for path, cases in zip(paths, per_file):
        for case in cases:
            for key in ("model", "data_sha256"):
                if key not in case.properties:
                    continue
                value = case.properties[key]
                if key in seen and seen[key][1] != value:
                    raise JunitError(f"{path} and {seen[key][0]} are from different audits: {key} "
                                     f"{value!r} vs {seen[key][1]!r}; report them separately")
                seen.setdefault(key, (path, value))


def read_junit(paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> AuditReading:
    """Read one junit file, or several shards of one audit, into a `AuditReading`."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise JunitError("no junit file given")
    per_file, stats = [], []
    for path in paths:
        suite_stats, cases = read_cases(path)
        stats += suite_stats
        per_file.append(cases)
    return audit_from_cases(paths, per_file, stats)


def audit_from_cases(sources: Sequence[str], per_source: list, suites: list) -> AuditReading:
    """The audit of these cases (one list per source, merged as shards of one audit): what `read_junit` builds
    from junit files and `audit_json.read_audit` from audit JSON documents, so both report alike."""
    _check_context(sources, per_source)
    cases = sorted(_merge_cases(sources, per_source), key=lambda c: c.name)
    audit = AuditReading(sources=list(sources), cases=cases, suites=suites)
    for case in cases:
        for key in catalogue.CONTEXT_KEYS:
            if key in case.properties and getattr(audit, key) is None:
                value = case.properties[key]
                setattr(audit, key, None if value is None else str(value))
        name = catalogue.parse_case(case.name)
        kind = CASE_KINDS.get(name.kind) if name is not None else None
        if kind is not None and kind.read is not None:
            kind.read(audit, case, name)
    audit.prune_costs.sort(key=lambda c: (c.k, c.method))
    audit.prune_gaps.sort(key=lambda g: g.k)
    audit.pairs.sort(key=lambda p: (p.i, p.j))
    audit.removals.sort(key=lambda r: r.layer)
    # A budget with a topk_jaccard case of its own is read from that case, not from rank_correlation's listing.
    judged = {t.k for t in audit.topk if t.outcome != NOT_JUDGED}
    audit.topk = sorted((t for t in audit.topk if t.outcome != NOT_JUDGED or t.k not in judged), key=lambda t: t.k)
    _check_numbers(audit)
    return audit


# ---------------------------------------------------------------- numbers that size things

def _check_numbers(audit: AuditReading) -> None:
    """Layer indices, budgets and counts against the layer count the file states and against the caps, before
    anything (a heatmap, a list of ticks) is sized by them. The audit case lists one removal per layer; without
    it (a shard) the layers the pairs name, up to `MAX_LAYERS`."""
    where = ", ".join(audit.sources)
    layers = [r.layer for r in audit.removals]
    if layers:
        if sorted(layers) != list(range(len(layers))):
            raise altered(f"{where}: the audit case lists removals of layers {shown(sorted(layers))}, not of "
                           f"layers 0..{len(layers) - 1} once each")
        n, stated = len(layers), f"the {len(layers)} layers (0..{len(layers) - 1}) its audit case lists"
    else:
        n, stated = max((p.j + 1 for p in audit.pairs), default=0), f"the limit of {MAX_LAYERS} layers"
    if n > MAX_LAYERS:
        raise altered(f"{where}: {n} layers is over the limit of {MAX_LAYERS}")
    for pair in audit.pairs:
        if not pair.i < pair.j:
            raise altered(f"{where}: pair[{pair.label}] names its layers in the wrong order (pairs are i < j)")
        if not 0 <= pair.i < pair.j < max(n, 1):
            raise altered(f"{where}: pair[{pair.label}] is outside {stated} (pairs are 0 <= i < j < {n})")
    for budget in audit.topk:
        if not 1 <= budget.k <= max(n - 1, 1):
            raise altered(f"{where}: top-k budget k={budget.k} is outside 1..{max(n - 1, 1)} for {stated}")
        for chosen in (budget.replacement_layers, budget.interchange_layers):
            if chosen is not None and (len(chosen) > budget.k or not all(
                    isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n for x in chosen)):
                raise altered(f"{where}: the top-{budget.k} layer set {shown(chosen)} is not at most {budget.k} "
                               f"of {stated}")
    if audit.n_pairs is not None and not 0 <= audit.n_pairs <= n * (n - 1) // 2:
        raise altered(f"{where}: n_pairs={audit.n_pairs} is more than {n} layers have")
