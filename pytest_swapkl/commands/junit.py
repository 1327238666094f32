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
bare `<testsuite>`. Errors
are `JunitError` (an `InputError`): one line, exit 2 in the CLI. No torch, no numpy.
"""

from __future__ import annotations

import ast
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from .. import cases as catalogue
from ..errors import InputError
from ..limits import MAX_LAYERS
from ..safe_files import UnreadableFile, decode_text, read_input
from ..safe_json import MAX_BYTES  # one size cap for every untrusted input file

CLASSNAME = catalogue.CLASSNAME


class JunitError(InputError):
    """A junit file that cannot be read as a swapkl audit."""


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
class Pair:
    i: int
    j: int
    replacement_ij: Optional[float]
    replacement_ji: Optional[float]
    interchange: Optional[float]
    replacement: Optional[float]
    ratio: Optional[float]
    log_ratio: Optional[float]
    rank_replacement: Optional[float]
    rank_interchange: Optional[float]
    rank_gap: Optional[float]
    rank_tolerance: Optional[float]
    verdict: str
    ci: dict  # protocol name -> (low, high)
    outcome: str
    message: str
    rank_intervals: dict = field(default_factory=dict)  # protocol -> (low, high) ranks the verdict is taken on

    @property
    def label(self) -> str:
        return catalogue.pair_label(self.i, self.j)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class Removal:
    layer: int
    kl: Optional[float]


@dataclass(frozen=True)
class PruneCost:
    """A prune[method-kK] case: one method's set removed for real, its cost on held-out text with the interval."""

    method: str
    k: int
    layers: Optional[list]
    heldout_kl: Optional[float]
    heldout_kl_ci: tuple  # (low, high)
    heldout_ppl: Optional[float]
    heldout_ppl_ci: tuple
    heldout_base_ppl: Optional[float]
    outcome: str


@dataclass(frozen=True)
class PruneGap:
    """A prune_gap[kK] case: the paired test of the two protocols' held-out costs and the ratio R/I's interval."""

    k: int
    paired_verdict: Optional[str]
    cost_ratio: Optional[float]
    cost_ratio_ci: tuple
    outcome: str


@dataclass(frozen=True)
class TopK:
    k: int
    jaccard: Optional[float]
    replacement_layers: Optional[list]
    interchange_layers: Optional[list]
    outcome: str
    jaccard_ci: tuple = (None, None)
    stability: dict = field(default_factory=dict)  # protocol -> share of resamples reproducing its set


@dataclass(frozen=True)
class SuiteStats:
    name: str
    tests: int
    failures: int
    errors: int
    skipped: int
    time: float


@dataclass
class JunitAudit:
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
    pairs: list = field(default_factory=list)  # [Pair], by (i, j)
    removals: list = field(default_factory=list)  # [Removal], by layer
    topk: list = field(default_factory=list)  # [TopK], by k
    prune_costs: list = field(default_factory=list)  # [PruneCost], by (k, method)
    prune_gaps: list = field(default_factory=list)  # [PruneGap], by k
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


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _int(value) -> Optional[int]:
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) else None


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
            name=suite.get("name") or "", tests=_int(parse_value(suite.get("tests"))) or 0,
            failures=_int(parse_value(suite.get("failures"))) or 0, errors=_int(parse_value(suite.get("errors"))) or 0,
            skipped=_int(parse_value(suite.get("skipped") or suite.get("skips"))) or 0,
            time=_number(parse_value(suite.get("time"))) or 0.0))
        in_suite = _suite_numbers(suite)
        for testcase in suite.findall("testcase"):
            if not _is_swapkl(testcase):
                continue
            outcome, message = _outcome(testcase)
            name = testcase.get("name") or ""
            cases.append(Case(name=name, outcome=outcome, message=message,
                              properties={**in_suite.get(name, {}), **_properties(testcase)},
                              time=_number(parse_value(testcase.get("time"))) or 0.0))
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


def _pair(case: Case, name: catalogue.CaseName) -> Pair:
    p = case.properties
    ci = {}
    for quantity in catalogue.ci_names(p):
        low, high = catalogue.ci_keys(quantity)
        ci[quantity] = (_number(p.get(low)), _number(p.get(high)))
    for key, from_name in (("i", name.i), ("j", name.j)):
        if key in p and p[key] is not None and _int(p[key]) != from_name:
            raise _altered(f"case {case.name} has the property {key}={_shown(p[key])}, but its name says {from_name}")
    return Pair(
        i=name.i, j=name.j,
        replacement_ij=_number(p.get("replacement_ij")), replacement_ji=_number(p.get("replacement_ji")),
        interchange=_number(p.get("interchange")), replacement=_number(p.get("replacement")),
        ratio=_number(p.get("ratio")), log_ratio=_number(p.get("log_ratio")),
        rank_replacement=_number(p.get("rank_replacement")), rank_interchange=_number(p.get("rank_interchange")),
        rank_gap=_number(p.get("rank_gap")), rank_tolerance=_number(p.get("rank_tolerance")),
        verdict=str(p.get("verdict") or ""), ci=ci, outcome=case.outcome, message=case.message,
        rank_intervals={protocol: (_number(p.get(f"rank_{protocol}_interval_low")),
                                   _number(p.get(f"rank_{protocol}_interval_high")))
                        for protocol in ("replacement", "interchange") if f"rank_{protocol}_interval_low" in p})


def read_junit(paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> JunitAudit:
    """Read one junit file, or several shards of one audit, into a `JunitAudit`."""
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


def audit_from_cases(sources: Sequence[str], per_source: list, suites: list) -> JunitAudit:
    """The audit of these cases (one list per source, merged as shards of one audit): what `read_junit` builds
    from junit files and `audit_json.read_audit` from audit JSON documents, so both report alike."""
    _check_context(sources, per_source)
    cases = sorted(_merge_cases(sources, per_source), key=lambda c: c.name)
    audit = JunitAudit(sources=list(sources), cases=cases, suites=suites)
    budgets_from_correlation: list[TopK] = []
    for case in cases:
        p = case.properties
        for key in catalogue.CONTEXT_KEYS:
            if key in p and getattr(audit, key) is None:
                setattr(audit, key, None if p[key] is None else str(p[key]))
        name = catalogue.parse_case(case.name)
        kind = name.kind if name is not None else None
        if kind == catalogue.AUDIT:
            audit.base_ppl = _number(p.get("base_ppl"))
            audit.noise_floor = _number(p.get("noise_floor"))
            audit.noise_floor_measured_as = _text(p.get("noise_floor_measured_as"))
            for key, value in p.items():
                layer = catalogue.parse_removal_key(key)
                if layer is not None:
                    audit.removals.append(Removal(layer=layer, kl=_number(value)))
        elif kind == catalogue.RANK_CORRELATION:
            audit.spearman = _number(p.get("spearman"))
            audit.kendall = _number(p.get("kendall"))
            audit.spearman_ci, audit.kendall_ci = (tuple(_number(p.get(key)) for key in catalogue.ci_keys(name))
                                                   for name in ("spearman", "kendall"))
            audit.n_pairs = _int(p.get("n_pairs"))
            budgets_from_correlation = _budgets(p)
        elif kind == "topk_jaccard":
            layers = lambda v: list(v) if isinstance(v, (list, tuple)) else None  # noqa: E731
            audit.topk.append(TopK(k=_int(p.get("k")) or 0, jaccard=_number(p.get("jaccard")),
                                   replacement_layers=layers(p.get("replacement_layers")),
                                   interchange_layers=layers(p.get("interchange_layers")), outcome=case.outcome,
                                   jaccard_ci=tuple(_number(p.get(key)) for key in catalogue.ci_keys("jaccard")),
                                   stability={protocol: _number(p[f"{protocol}_set_stability"])
                                              for protocol in ("replacement", "interchange")
                                              if f"{protocol}_set_stability" in p}))
        elif kind == "pair":
            audit.pairs.append(_pair(case, name))
        elif kind == "prune":
            audit.prune_costs.append(PruneCost(
                method=name.method, k=name.k, layers=_int_layers(p.get("layers")),
                heldout_kl=_number(p.get("heldout_kl")), heldout_kl_ci=_ci(p, "heldout_kl"),
                heldout_ppl=_number(p.get("heldout_ppl")), heldout_ppl_ci=_ci(p, "heldout_ppl"),
                heldout_base_ppl=_number(p.get("heldout_base_ppl")), outcome=case.outcome))
        elif kind == "prune_gap":
            audit.prune_gaps.append(PruneGap(k=name.k, paired_verdict=_text(p.get("paired_verdict")),
                                             cost_ratio=_number(p.get("cost_ratio")),
                                             cost_ratio_ci=_ci(p, "cost_ratio"), outcome=case.outcome))
        if kind in ("prune", "prune_gap", catalogue.AUDIT) and audit.heldout_source is None:
            audit.heldout_source = _text(p.get("heldout_source"))
            audit.heldout_sha256 = _text(p.get("heldout_sha256"))
    audit.prune_costs.sort(key=lambda c: (c.k, c.method))
    audit.prune_gaps.sort(key=lambda g: g.k)
    audit.pairs.sort(key=lambda p: (p.i, p.j))
    audit.removals.sort(key=lambda r: r.layer)
    # Budgets without their own topk_jaccard case come from the rank_correlation case's properties.
    judged = {t.k for t in audit.topk}
    audit.topk += [t for t in budgets_from_correlation if t.k not in judged]
    audit.topk.sort(key=lambda t: t.k)
    _check_numbers(audit)
    return audit


# ---------------------------------------------------------------- numbers that size things

def _altered(problem: str) -> JunitError:
    return JunitError(f"{problem}: the junit file was altered or not written by swapkl; regenerate it with "
                      "pytest --swapkl-model=... --junitxml=PATH")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + "..."


def _check_numbers(audit: JunitAudit) -> None:
    """Layer indices, budgets and counts against the layer count the file states and against the caps, before
    anything (a heatmap, a list of ticks) is sized by them. The audit case lists one removal per layer; without
    it (a shard) the layers the pairs name, up to `MAX_LAYERS`."""
    where = ", ".join(audit.sources)
    layers = [r.layer for r in audit.removals]
    if layers:
        if sorted(layers) != list(range(len(layers))):
            raise _altered(f"{where}: the audit case lists removals of layers {_shown(sorted(layers))}, not of "
                           f"layers 0..{len(layers) - 1} once each")
        n, stated = len(layers), f"the {len(layers)} layers (0..{len(layers) - 1}) its audit case lists"
    else:
        n, stated = max((p.j + 1 for p in audit.pairs), default=0), f"the limit of {MAX_LAYERS} layers"
    if n > MAX_LAYERS:
        raise _altered(f"{where}: {n} layers is over the limit of {MAX_LAYERS}")
    for pair in audit.pairs:
        if not pair.i < pair.j:
            raise _altered(f"{where}: pair[{pair.label}] names its layers in the wrong order (pairs are i < j)")
        if not 0 <= pair.i < pair.j < max(n, 1):
            raise _altered(f"{where}: pair[{pair.label}] is outside {stated} (pairs are 0 <= i < j < {n})")
    for budget in audit.topk:
        if not 1 <= budget.k <= max(n - 1, 1):
            raise _altered(f"{where}: top-k budget k={budget.k} is outside 1..{max(n - 1, 1)} for {stated}")
        for chosen in (budget.replacement_layers, budget.interchange_layers):
            if chosen is not None and (len(chosen) > budget.k or not all(
                    isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n for x in chosen)):
                raise _altered(f"{where}: the top-{budget.k} layer set {_shown(chosen)} is not at most {budget.k} "
                               f"of {stated}")
    if audit.n_pairs is not None and not 0 <= audit.n_pairs <= n * (n - 1) // 2:
        raise _altered(f"{where}: n_pairs={audit.n_pairs} is more than {n} layers have")


def _int_layers(value) -> Optional[list]:
    """A list of layer indices, or None for anything else (what a table shows as n/a)."""
    layers = _layer_list(value)
    if layers is None or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < MAX_LAYERS
                                 for x in layers):
        return None
    return layers


def _text(value) -> Optional[str]:
    return None if value is None else str(value)


def _ci(properties: dict, name: str) -> tuple:
    low, high = catalogue.ci_keys(name)
    return _number(properties.get(low)), _number(properties.get(high))


def _layer_list(value) -> Optional[list]:
    return list(value) if isinstance(value, (list, tuple)) else None


def _budgets(properties: dict) -> list[TopK]:
    budgets = []
    for key in properties:
        k = catalogue.parse_topk_key(key)
        if k is not None:
            keys = catalogue.topk_keys(k)
            budgets.append(TopK(k=k, jaccard=_number(properties[key]),
                                replacement_layers=_layer_list(properties.get(keys["replacement_layers"])),
                                interchange_layers=_layer_list(properties.get(keys["interchange_layers"])),
                                outcome="not judged"))
    return budgets
