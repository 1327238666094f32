"""What a new user meets first: --collect-only lists the cases without measuring, long audits show progress
(also under xdist), and the last line says how long the audit took, which pytest's own time leaves out."""

import xml.etree.ElementTree as ET

import pytest

SMALL = ["--swapkl-tokens=1024", "--swapkl-seq-len=128", "--swapkl-device=cpu"]
# Every kind of case, pair spec and budget that --collect-only has to predict from the config and the options:
WIDE = ["--swapkl-pairs=window:2", "--swapkl-jaccard-k=1,3", "--swapkl-prune-k=2",
        "--swapkl-prune-guides=interchange,removal,replacement"]


def listed(result) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("swapkl::")]


@pytest.mark.parametrize("flag", ["--co", "--collect-only"])
def test_collect_only_lists_the_cases_without_measuring(pytester, flag):
    result = pytester.runpytest_subprocess("--swapkl-model=demo", flag, "-q", *WIDE, *SMALL)
    assert result.ret == 0, result.stdout.str()
    names = listed(result)
    assert names[:3] == ["swapkl::audit", "swapkl::pair[L00-L01]", "swapkl::pair[L00-L02]"]
    assert len(names) == 1 + 13 + 1 + 2 + 2 * 4  # audit, 13 window:2 pairs of 8 layers, rank, 2 Jaccard, 2 x (3+gap)
    result.stdout.fnmatch_lines([f"{len(names)} tests collected in *"])
    output = result.stdout.str() + result.stderr.str()
    assert "computing the audit" not in output and "probe-sequences" not in output
    swapkl_cache = pytester.path / ".pytest_cache" / "d" / "swapkl"
    assert not [path for path in swapkl_cache.rglob("*") if path.is_file()], "nothing measured, nothing cached"


def test_collect_only_names_equal_the_measured_run(pytester):
    planned = listed(pytester.runpytest_subprocess("--swapkl-model=demo", "--co", "-q", *WIDE, *SMALL))
    measured = pytester.runpytest_subprocess("--swapkl-model=demo", "--junitxml=audit.xml", *WIDE, *SMALL)
    assert measured.ret in (0, 1), measured.stdout.str()
    root = ET.parse(pytester.path / "audit.xml").getroot()
    assert planned == [f"swapkl::{case.get('name')}" for case in root.iter("testcase")]


def test_collect_only_still_checks_the_options(pytester):
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "--co", "--swapkl-pairs=0-99")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: swapkl: pair '0-99': layer 99 is out of range*"])


def progress_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("swapkl: ") and "probe-sequences" in line]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_log_shows_progress_and_the_last_line_the_audit_time(pytester, monkeypatch, workers):
    if workers:
        pytest.importorskip("xdist")
    monkeypatch.setenv("SWAPKL_PROGRESS_SECONDS", "0")  # a line at every tenth of the work, from the start
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "-p", "no:cacheprovider", *workers, *SMALL)
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "swapkl: computing the audit of demo (adjacent pairs, 8 x 128 tokens)" in out
    lines = progress_lines(out)
    assert len(lines) >= 5, out  # the terminal reporter wrote them, on the controller under xdist
    result.stdout.fnmatch_lines(["swapkl: */232 probe-sequences, * s elapsed, ~* s left",
                                 "swapkl: 232/232 probe-sequences in * s"])
    result.stdout.fnmatch_lines(["time   audit computed in * s, before the tests (pytest's time below leaves it out)"])
    last = [line for line in result.stdout.lines if line.strip()][-1]
    assert "swapkl audit computed in " in last and "s before the tests, not in pytest's time above;" in last, last
    summary = [line for line in result.stdout.lines if " passed in " in line]
    assert summary and result.stdout.lines.index(summary[-1]) < result.stdout.lines.index(last)


def test_a_cache_hit_says_so_in_the_last_line(pytester):
    pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL)
    again = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL)
    last = [line for line in again.stdout.lines if line.strip()][-1]
    assert "swapkl audit read from the cache: cache hit in " in last, last
    assert not progress_lines(again.stdout.str())


def test_quiet_runs_keep_the_last_line_short_and_silent_ones_drop_it(pytester):
    quiet = pytester.runpytest_subprocess("--swapkl-model=demo", "-q", "-p", "no:cacheprovider", *SMALL)
    last = [line for line in quiet.stdout.lines if line.strip()][-1]
    assert last.startswith("swapkl audit computed in ")  # -q: no "=" separators, as pytest's own line
    silent = pytester.runpytest_subprocess("--swapkl-model=demo", "-qq", "-p", "no:cacheprovider", *SMALL)
    assert "before the tests, not in pytest's time" not in silent.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_node_id_that_collect_only_prints_selects_exactly_that_case(pytester, workers):
    listed_ids = listed(pytester.runpytest_subprocess("--swapkl-model=demo", "--co", "-q", *SMALL))
    chosen = [nodeid for nodeid in listed_ids if nodeid.startswith("swapkl::pair[")][1]
    result = pytester.runpytest_subprocess("--swapkl-model=demo", "-q", *workers, *SMALL, chosen,
                                           "swapkl::rank_correlation")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 passed*"])
    typo = pytester.runpytest_subprocess("--swapkl-model=demo", "-q", *SMALL, chosen.replace("[L0", "[L"))
    assert typo.ret == 4
    assert f"is not a case of this audit: did you mean {chosen}" in typo.stderr.str()  # [..] is no glob here


def test_swapkl_options_without_a_model_say_so(pytester):
    """Issue 37: `pytest --swapkl-pairs=all` alone ran no test (exit 5) and said nothing about why."""
    result = pytester.runpytest_subprocess("--swapkl-pairs=all", "--swapkl-tokens=512", "-q")
    assert result.ret == 5
    result.stdout.fnmatch_lines(["swapkl: --swapkl-pairs, --swapkl-tokens given but no --swapkl-model: no audit ran*"])


def test_no_saved_baseline_is_an_answer_not_an_error(tmp_path, capsys):
    from pytest_swapkl.commands.cli import main

    assert main(["baselines", "--cache-dir", str(tmp_path / "nothing")]) == 0
    assert capsys.readouterr().out.startswith("no saved baselines in ")
