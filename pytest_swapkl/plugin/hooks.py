"""pytest glue only: options, the audit's generated tests, fixtures, the terminal summary.

Loaded in every pytest run of the environment, so it imports nothing heavy at start-up
(no torch, no numpy): without --swapkl-model the plugin declares its options and stays
inert. The work lives in `session` (audits, cache, model) and `items` (generated cases).
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

import pytest

from ..errors import InputError
from ..options import add_to_pytest

SESSION = pytest.StashKey[Any]()  # SwapklSession
MAIN_AUDIT = pytest.StashKey[Any]()  # AuditRecord of the command-line options
OUTCOMES = pytest.StashKey[Any]()  # CaseOutcomes: each generated case's outcome, where the run is reported
STARTED = pytest.StashKey[float]()  # time.monotonic() when the plugin's session start began
WORKER_DOCUMENT = "swapkl_document"  # key in xdist's workerinput: the controller's audit, as a file path
SELECTED = pytest.StashKey[list]()  # node ids of generated cases given as arguments (swapkl::pair[L03-L04])
WORKER_SELECTED = "swapkl_selected"  # key in xdist's workerinput: those node ids
NODE_PREFIX = "swapkl::"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_to_pytest(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "swapkl(model=..., data=..., pairs=..., ...): audit options for this test's swapkl_audit fixture")
    _take_selected_cases(config)
    if hasattr(config, "workerinput"):
        return
    if getattr(config.option, "xmlpath", None):  # where the junit file is written
        from .junit_output import CaseWriter

        config.pluginmanager.register(CaseWriter(config), "swapkl-junit")
    if _model_requested(config):
        from .outcomes import CaseOutcomes

        config.stash[OUTCOMES] = CaseOutcomes()
        config.pluginmanager.register(config.stash[OUTCOMES], "swapkl-outcomes")


def _take_selected_cases(config: pytest.Config) -> None:
    """Node ids of generated cases (what --co prints) are not files: take them out of the paths pytest collects
    and keep them as a selection of the generated cases (on xdist workers, as the controller handed them over)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None and WORKER_SELECTED in worker:
        config.stash[SELECTED] = list(worker[WORKER_SELECTED])
    selected = [arg for arg in config.args if arg.startswith(NODE_PREFIX)]
    if selected:
        config.args[:] = [arg for arg in config.args if not arg.startswith(NODE_PREFIX)]
        config.stash[SELECTED] = config.stash.get(SELECTED, []) + selected


def _select(config: pytest.Config, generated: list) -> list:
    """The generated cases named on the command line, or all of them when none was; a name that is no case of
    this audit is a usage error with the closest names."""
    selected = config.stash.get(SELECTED, None)
    if not selected:
        return generated
    by_id = {item.nodeid: item for item in generated}
    unknown = [nodeid for nodeid in selected if nodeid not in by_id]
    if unknown:
        from difflib import get_close_matches

        close = get_close_matches(unknown[0], list(by_id), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise pytest.UsageError(f"swapkl: {unknown[0]} is not a case of this audit: {hint}"
                                "`pytest --swapkl-model=... --co -q` lists them")
    kept = [item for item in generated if item.nodeid in selected]
    config.hook.pytest_deselected(items=[item for item in generated if item.nodeid not in selected])
    return kept


def _session(config: pytest.Config):
    if SESSION not in config.stash:
        from .session import SwapklSession

        problems: list[str] = []
        session = SwapklSession(config, _cache_folder(config, problems))
        for line in problems:
            session.notice(line)
        config.stash[SESSION] = session
    return config.stash[SESSION]


def _cache_folder(config: pytest.Config, problems: list[str]):
    """pytest's cache folder for swapkl (None under -p no:cacheprovider). A full or read-only disk costs the cache,
    not the run (a line in `problems`); anything else in the folder's place is a one-line InputError."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    where = os.path.join(getattr(cache, "_cachedir", None) or "the pytest cache folder", "d", "swapkl")
    try:
        return cache.mkdir("swapkl")
    except OSError as error:
        from ..safe_files import disk_failure

        reason = disk_failure(error)
        if reason is not None:
            problems.append(f"cannot use {where} as swapkl's cache folder ({reason}): the audit runs without the "
                            "cache (free space there, or give pytest another -o cache_dir)")
            return None
        raise InputError(f"cannot use {getattr(error, 'filename', None) or where} as swapkl's cache folder "
                         f"({error.strerror or error}): remove or rename what is in its place, or run with "
                         "-p no:cacheprovider") from None


def _model_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("swapkl_model") or config.getini("swapkl_model") or _given_audit(config))


def _options_without_a_model(config: pytest.Config) -> list[str]:
    """The --swapkl-* flags given on a command line that names no model (they do nothing: say so)."""
    if _model_requested(config):
        return []
    from ..options import OPTIONS

    return [f"--swapkl-{option.name.replace('_', '-')}" for option in OPTIONS
            if config.getoption(f"swapkl_{option.name}", None) not in (None, [])]


def _given_audit(config: pytest.Config) -> Optional[str]:
    """--swapkl-audit-json: an audit computed elsewhere (shards merged by swapkl merge, a torchrun audit)."""
    return config.getoption("swapkl_audit_json") or config.getini("swapkl_audit_json") or None


def _collect_only(config: pytest.Config) -> bool:
    return bool(config.getoption("collectonly", False))


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers, which then reuse this audit
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    config.stash[STARTED] = time.monotonic()
    if not _model_requested(config) or _collect_only(config):  # --collect-only names the cases, measuring nothing
        return
    from .session import AuditRecord

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and WORKER_DOCUMENT in workerinput:
        from ..audit.results import document_problem
        from ..safe_json import read_json

        document = read_json(workerinput[WORKER_DOCUMENT], what="the controller's audit")
        problem = document_problem(document)
        if problem is not None:  # its fields, as strictly as the cache checks an entry's
            raise pytest.UsageError(f"swapkl: the controller's audit {workerinput[WORKER_DOCUMENT]} is not usable "
                                    f"({problem}): rerun without -n, or with --swapkl-cache-clear")
        config.stash[MAIN_AUDIT] = AuditRecord(document, cache_hit=True, seconds=0.0, origin="xdist controller")
        return
    if _given_audit(config):
        try:
            _check_outputs(config, _session(config).options(), _given_audit(config))
        except InputError as error:
            raise pytest.UsageError(f"swapkl: {error}") from None
        config.stash[MAIN_AUDIT] = _read_given_audit(_given_audit(config))
        return
    from ..interrupts import sigterm_as_interrupt

    try:
        state = _session(config)
        options = state.options()
        _check_outputs(config, options)
        if options.compare:  # before the audit: a missing baseline is a usage error, not minutes later
            from ..audit.baselines import load

            load(state.cache_dir, options.compare)
        with sigterm_as_interrupt():  # SIGTERM ends the audit as Ctrl-C does: every finally runs
            record = state.audit(options)
        if options.json:
            from ..audit.results import write_json

            write_json(record.document, options.json)
    except InputError as error:
        raise pytest.UsageError(f"swapkl: {error}") from None
    config.stash[MAIN_AUDIT] = record


def _read_given_audit(path: str):
    """The audit document of --swapkl-audit-json, its fields checked as strictly as a cache entry's."""
    from ..audit.results import document_problem
    from ..safe_json import JsonError, read_json
    from .session import AuditRecord

    try:
        document = read_json(path, what="audit JSON", fix="pass a file written by swapkl audit --json or swapkl merge")
    except JsonError as error:
        raise pytest.UsageError(f"swapkl: {error}") from None
    problem = document_problem(document)
    if problem is not None:
        raise pytest.UsageError(f"swapkl: --swapkl-audit-json {path} is not an audit document ({problem}): pass a "
                                "file written by swapkl audit --json or swapkl merge")
    return AuditRecord(document, cache_hit=True, seconds=0.0, origin=path)


def _check_outputs(config: pytest.Config, options: Any, given_audit: Optional[str] = None) -> None:
    """Every file this run writes (--swapkl-json, --swapkl-summary and pytest's own --junitxml), before any work:
    the check every swapkl command runs, against every input of the run (model, data, a given audit JSON)."""
    from ..options import audit_inputs
    from ..safe_files import check_outputs

    inputs = [("--swapkl-audit-json", given_audit)] if given_audit else audit_inputs(options)
    outputs = [("--junitxml", getattr(config.option, "xmlpath", None)), ("--swapkl-json", options.json),
               ("--swapkl-summary", options.summary)]
    check_outputs(outputs, inputs, make_parents=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand each worker the audit it computed instead of letting every worker compute it."""
    record = node.config.stash.get(MAIN_AUDIT, None)
    if record is None:
        return
    from ..audit.results import write_json

    state = _session(node.config)
    folder = state.cache_dir or node.config.rootpath / ".swapkl"
    # One file per controller process: two concurrent `-n` runs sharing a cache folder must not swap audits.
    path = write_json(record.document, folder / f"for-workers-{os.getpid()}.json")
    node.workerinput[WORKER_DOCUMENT] = str(path)
    node.workerinput[WORKER_SELECTED] = node.config.stash.get(SELECTED, [])


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so they select generated cases too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    record = config.stash.get(MAIN_AUDIT, None)
    planned = _model_requested(config) and _collect_only(config)
    if record is None and not planned:
        return
    from .items import SwapklCollector, build_items, planned_items
    from .session import tolerances_from

    state = _session(config)
    collector = SwapklCollector.from_parent(session, name="swapkl", nodeid="swapkl")
    try:
        options = state.options()
        if record is None:
            generated = planned_items(collector, state.planned_cases(options))
        else:
            baseline = None
            if options.compare:
                from ..audit.baselines import load

                baseline = load(state.cache_dir, options.compare)
            generated = build_items(collector, record, tolerances_from(options), baseline,
                                    options.regression_tolerance)
    except InputError as error:
        raise pytest.UsageError(f"swapkl: {error}") from None
    generated = _select(config, generated)
    items.extend(generated)
    # As a collector's report, so that "collected N items" and --collect-only's count include the cases.
    config.hook.pytest_collectreport(report=pytest.CollectReport("swapkl", "passed", None, generated))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if getattr(item, "swapkl_properties", None) is not None:  # a generated case
        from . import junit_output

        if call.when == "teardown":
            junit_output.label_report(item, report)
        elif call.when == "call" and item.swapkl_figures is not None:  # set only with pytest-html active
            from .html_extras import attach

            attach(item, report)
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    given = _options_without_a_model(config)
    if given and not hasattr(config, "workerinput"):
        terminalreporter.write_line(f"swapkl: {', '.join(given)} given but no --swapkl-model: no audit ran and no "
                                    "swapkl case was generated; add --swapkl-model=MODEL (or swapkl_model in the ini)")
    state = config.stash.get(SESSION, None)
    if state is not None and state.notices and not hasattr(config, "workerinput"):
        terminalreporter.write_sep("=", "swapkl notices")
        for line in state.notices:  # e.g. a damaged cache entry that was recomputed
            terminalreporter.write_line(line)
    record = config.stash.get(MAIN_AUDIT, None)
    if record is None or hasattr(config, "workerinput"):
        return
    from .session import tolerances_from
    from .summary import summary_lines

    terminalreporter.write_sep("=", "swapkl audit")
    for line in summary_lines(record, tolerances_from(_session(config).options())):
        terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside the terminal reporter's: after pytest's final line
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    config = session.config
    _after_the_cases(config)  # every case has run; pytest's terminal summary (with the notices) is still to come
    result = yield
    started = config.stash.get(STARTED, None)
    if started is not None:
        from .terminal import write_closing_line

        write_closing_line(config, config.stash.get(MAIN_AUDIT, None), time.monotonic() - started)
    return result


def _after_the_cases(config: pytest.Config) -> None:
    """The run's summary and the saved baseline, where the run is reported (the controller under xdist)."""
    record, outcomes = config.stash.get(MAIN_AUDIT, None), config.stash.get(OUTCOMES, None)
    if record is None or outcomes is None:
        return
    state = _session(config)
    options = state.options()
    if options.summary:
        from . import job_summary
        from .session import tolerances_from

        try:
            job_summary.write(options.summary, job_summary.render(record.document, tolerances_from(options),
                                                                  outcomes.results))
        except (InputError, OSError) as error:  # checked before the audit; a disk that filled up since: a notice
            state.notices.append(f"swapkl: the summary was not written to {options.summary} ({error}); the file "
                                 "is as it was")
    if options.save:
        from ..audit.baselines import save

        try:
            path = save(state.cache_dir, options.save, record.document, config.rootpath)
        except InputError as error:
            state.notices.append(f"swapkl: the baseline was not saved: {error}")
        else:
            state.notices.append(f"swapkl: saved this audit as baseline {options.save} ({path})")


@pytest.fixture(scope="session")
def swapkl_model(request: pytest.FixtureRequest):
    """The model of --swapkl-model (a LoadedModel: .model, .tokenizer, .n_layers, ...), loaded once."""
    state = _or_fail(lambda: _session(request.config))
    options = _options_or_fail(state, {})
    return _or_fail(lambda: state.loaded_model(options))


@pytest.fixture
def swapkl_audit(request: pytest.FixtureRequest):
    """The audit (an AuditView) for --swapkl-* options, or for a @pytest.mark.swapkl(...) override.

    Each distinct option set is computed once per session (and cached across sessions).
    """
    from .query import AuditView

    marker = request.node.get_closest_marker("swapkl")
    state = _or_fail(lambda: _session(request.config))
    options = _options_or_fail(state, dict(marker.kwargs) if marker else {})
    record = _or_fail(lambda: state.audit(options))
    return AuditView(record.document, state, options)


@pytest.fixture
def swapkl_audit_for(request: pytest.FixtureRequest):
    """A factory: `swapkl_audit_for(model=..., data=..., pairs=...)` audits another option set (e.g. another
    checkpoint) in the same test; unnamed options come from the command line, ini and marker as usual."""
    from .query import AuditView

    state = _or_fail(lambda: _session(request.config))
    marker = request.node.get_closest_marker("swapkl")
    base = dict(marker.kwargs) if marker else {}

    def audit_for(**overrides: Any) -> AuditView:
        options = _options_or_fail(state, {**base, **overrides})
        return AuditView(_or_fail(lambda: state.audit(options)).document, state, options)

    return audit_for


def _options_or_fail(state: Any, overrides: dict) -> Any:
    options = _or_fail(lambda: state.options(overrides))
    if not options.model:
        pytest.fail("no model to audit: pass --swapkl-model (or ini swapkl_model), "
                    "or mark the test with @pytest.mark.swapkl(model=...)", pytrace=False)
    return options


def _or_fail(step: Any) -> Optional[Any]:
    try:
        return step()
    except InputError as error:
        pytest.fail(f"swapkl: {error}", pytrace=False)
