"""Case kinds as registered definitions: a kind defined in this test alone is named, parsed and read back from
junit like the built-in ones, with no change to the catalogue or the junit reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Optional

import pytest

from pytest_swapkl import case_records, cases
from pytest_swapkl.case_kinds import CASE_KINDS, COUNT, WORD, CaseKind, CaseName, Param, parse_case, register_kind
from pytest_swapkl.registry import DuplicateNameError
from pytest_swapkl.report.junit import read_junit


@dataclass(frozen=True)
class ProbeCheck:
    """What the test kind reads back: one probe's distance at one budget."""

    probe: str
    k: int
    distance: Optional[float]
    layers: Optional[list]
    outcome: str


def probe_check_properties(probe: str, k: int, distance: float, layers: list) -> list:
    return [("probe", probe), ("k", k), ("distance", distance), ("layers", layers)]


def read_probe_check(audit, case, name: CaseName) -> None:
    p = case.properties
    audit.readings.setdefault("probe_check", []).append(ProbeCheck(
        probe=name.probe, k=name.k, distance=case_records.number(p.get("distance")),
        layers=case_records.layer_indices(p.get("layers")), outcome=case.outcome))


PROBE_CHECK = CaseKind("probe_check", "probe_check[{probe}-k{k}]", {"probe": WORD, "k": COUNT},
                       "does this probe keep its distance at budget k?", probe_check_properties, read_probe_check,
                       rule="pytest_swapkl.analysis.judged:sanity_passes")


@pytest.fixture
def probe_check_kind():
    register_kind(PROBE_CHECK, source=__name__)
    try:
        yield PROBE_CHECK
    finally:
        CASE_KINDS.unregister(PROBE_CHECK.name)


def _junit(path, testcases: list[tuple[str, list, Optional[str]]], family: str = "xunit1") -> None:
    """A junit file as pytest writes one: str() of each value, in each <testcase> (xunit1) or in the suite's
    `swapkl::CASE::KEY` properties (xunit2); a third item, when given, is the failure message."""
    suite = ET.Element("testsuite", name="pytest", tests=str(len(testcases)))
    if family == "xunit2":
        numbers = ET.SubElement(suite, "properties")
    for name, properties, failure in testcases:
        testcase = ET.SubElement(suite, "testcase", classname=cases.CLASSNAME, name=name, time="0.001")
        if family == "xunit1":
            numbers = ET.SubElement(testcase, "properties")
        for key, value in properties:
            key = key if family == "xunit1" else cases.suite_property(name, key)
            ET.SubElement(numbers, "property", name=key, value=str(value))
        if failure is not None:
            ET.SubElement(testcase, "failure", message=failure)
    path.write_bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def test_a_kind_registered_in_a_test_formats_and_parses(probe_check_kind):
    name = probe_check_kind.format(probe="mean_weights", k=2)
    assert name == "probe_check[mean_weights-k2]"
    parsed = parse_case(name)
    assert parsed == CaseName("probe_check", probe="mean_weights", k=2)
    assert (parsed.probe, parsed.k) == ("mean_weights", 2)
    assert str(parsed) == name and cases.parse_case(name) == parsed  # the catalogue's look-up is the registry's
    assert parse_case("probe_check[Mean-k2]") is None and parse_case("probe_check[mean-k]") is None


def test_a_name_is_a_case_only_while_its_kind_is_registered(probe_check_kind):
    CASE_KINDS.unregister("probe_check")
    assert parse_case("probe_check[mean-k2]") is None
    register_kind(probe_check_kind, source=__name__)
    assert parse_case("probe_check[mean-k2]") == CaseName("probe_check", probe="mean", k=2)


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_the_junit_reader_reads_a_test_kinds_properties_back(tmp_path, probe_check_kind, family):
    audit_case = ("audit", [("model", "m"), ("removal_L00_kl", 0.5), ("removal_L01_kl", 0.25),
                            ("removal_L02_kl", 0.125)], None)
    checks = [(probe_check_kind.format(probe="mean", k=1), probe_check_kind.properties("mean", 1, 0.03, [2]), None),
              (probe_check_kind.format(probe="head_swap", k=2),
               probe_check_kind.properties("head_swap", 2, float("nan"), [0, 2]), "distance is NaN")]
    _junit(tmp_path / "audit.xml", [audit_case, *checks], family)

    audit = read_junit(tmp_path / "audit.xml")
    read = sorted(audit.readings["probe_check"], key=lambda check: check.k)
    assert [(c.probe, c.k, c.layers, c.outcome) for c in read] == [("mean", 1, [2], "passed"),
                                                                   ("head_swap", 2, [0, 2], "failed")]
    assert read[0].distance == 0.03 and read[1].distance != read[1].distance  # NaN comes back as NaN
    assert audit.model == "m" and [r.layer for r in audit.removals] == [0, 1, 2]  # built-in kinds read as ever
    assert audit.case("probe_check[head_swap-k2]").message == "distance is NaN"


def test_without_its_kind_a_case_is_kept_but_nothing_more_is_read(tmp_path):
    _junit(tmp_path / "audit.xml", [("audit", [("model", "m"), ("removal_L00_kl", 0.5)], None),
                                    ("probe_check[mean-k1]", [("distance", 0.03)], None)])
    audit = read_junit(tmp_path / "audit.xml")
    assert audit.readings == {} and audit.case("probe_check[mean-k1]").properties == {"distance": 0.03}


def test_one_name_per_kind():
    pair = CASE_KINDS.get("pair")
    with pytest.raises(DuplicateNameError, match="case kind 'pair' is registered twice"):
        register_kind(CaseKind("pair", "pair[{i}]", {"i": COUNT}), source="a test")
    assert CASE_KINDS.get("pair") is pair


def test_a_template_must_match_its_kind_and_params():
    with pytest.raises(ValueError, match="must be 'check' or start 'check\\['"):
        CaseKind("check", "probe[{k}]", {"k": COUNT})
    with pytest.raises(ValueError, match="template fields"):
        CaseKind("check", "check[{k}]", {"k": COUNT, "probe": Param("[a-z]+")})


def test_every_built_in_kind_names_a_rule_that_exists_and_writes_properties():
    built_in = ["audit", "pair", "rank_correlation", "topk_jaccard", "prune", "prune_gap", "prune_budget", "baseline"]
    assert CASE_KINDS.names()[:len(built_in)] == built_in
    for name in built_in:
        kind = CASE_KINDS.get(name)
        assert callable(kind.rule_function()) and callable(kind.properties) and kind.summary, name
