"""Each generated case's outcome in this run, for the job summary: registered where the run is reported
(the controller under xdist), so it sees every worker's reports. No torch, no numpy."""

from __future__ import annotations

from typing import Any

from .. import cases


class CaseOutcomes:
    """Each generated case's outcome in this run (passed, failed, error, skipped), from the reports."""

    def __init__(self) -> None:
        self.results: dict = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        prefix = cases.CLASSNAME + "::"
        if not report.nodeid.startswith(prefix):
            return
        name = report.nodeid[len(prefix):]
        if report.failed:
            self.results[name] = "failed" if report.when == "call" else "error"
        elif report.skipped:
            self.results[name] = "skipped"
        elif report.when == "call":
            self.results.setdefault(name, "passed")
