"""A swapkl junit file's numbers as raw strings, wherever the junit family put them.

xunit1: <property> entries inside each <testcase>; xunit2: the suite's <properties>, named `swapkl::CASE::KEY`.
"""

import xml.etree.ElementTree as ET
from pathlib import Path


def case_properties(junit: Path) -> dict[str, dict[str, str]]:
    """name -> properties of every test case in a junit file, in the order they were written."""
    root = ET.parse(junit).getroot()
    found = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in root.iter("testcase")}
    for suite in root.iter("testsuite"):
        for prop in suite.findall("properties/property"):
            parts = (prop.get("name") or "").split("::")
            if len(parts) == 3 and parts[0] == "swapkl" and parts[1] in found:
                found[parts[1]][parts[2]] = prop.get("value")
    return found
