"""Reading crafted JSON and writing outputs: one-line errors, nothing half-written, nothing outside the named path."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from pytest_swapkl import safe_json
from pytest_swapkl.audit.results import write_json
from pytest_swapkl.commands import trajectory
from pytest_swapkl.commands.report import main_report
from pytest_swapkl.errors import InputError
from pytest_swapkl.report import junit
from pytest_swapkl.safe_files import OutputError, atomic_output, write_text
from pytest_swapkl.safe_json import JsonError, read_json

X1 = Path(__file__).resolve().parent / "fixtures" / "junit" / "xunit1.xml"


def tree(folder: Path) -> set[str]:
    """Every file and folder under `folder`, relative."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text and text
    return text


# ---------------------------------------------------------------- reading

def test_reads_json_and_shares_the_junit_size_cap(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('{"a": [1, 2.5, null]}')
    assert read_json(path) == {"a": [1, 2.5, None]}
    assert junit.MAX_BYTES == safe_json.MAX_BYTES == 64 * 1024 * 1024


@pytest.mark.parametrize("content, limit, expected", [
    (b'{"a": 1}' + b" " * 100, 50, "baseline of 108 bytes is over the 50 byte limit"),
    (b'{"a": "\xff\xfe"}', None, "baseline is not UTF-8 text (invalid start byte at byte 7)"),
    (b'{"pairs": [1, 2', None, "truncated JSON in baseline (Expecting ',' delimiter at line 1 column 16)"),
    (b'{"a": 1} trailing', None, "malformed JSON in baseline (Extra data at line 1 column 10)"),
    (b'{"a": "unterminated', None, "truncated JSON in baseline (Unterminated string starting at line 1 column 7)"),
    (b"[" * 100_000 + b"]" * 100_000, None, "baseline is nested too deeply to read"),
    (b"1" * 5000, None, "unreadable JSON in baseline (Exceeds the limit (4300 digits)"),
])
def test_bad_json_is_one_line_naming_file_and_fix(tmp_path, content, limit, expected):
    path = tmp_path / "old.json"
    path.write_bytes(content)
    started = time.monotonic()
    with pytest.raises(JsonError) as error:
        read_json(path, what="baseline", max_bytes=limit or safe_json.MAX_BYTES,
                  fix="pass the JSON written by `swapkl report --json`")
    text = one_line(error)
    assert text.startswith(f"{path}: {expected}"), text
    assert text.endswith("; pass the JSON written by `swapkl report --json`")
    assert isinstance(error.value, InputError) and time.monotonic() - started < 5


def test_parse_json_for_text_read_elsewhere():
    with pytest.raises(JsonError) as error:
        safe_json.parse_json("[" * 100_000 + "]" * 100_000, "ids.jsonl line 3", what="JSON line",
                             fix="write one JSON object per line")
    assert one_line(error) == "ids.jsonl line 3: JSON line is nested too deeply to read; write one JSON object per line"


def test_missing_folder_and_fifo_are_refused_without_blocking(tmp_path):
    with pytest.raises(JsonError, match=r"no such JSON file; pass a complete JSON file written by swapkl$"):
        read_json(tmp_path / "absent.json")
    with pytest.raises(JsonError, match="is not a regular file"):
        read_json(tmp_path)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    outcome: list = []
    reader = threading.Thread(target=lambda: outcome.append(pytest.raises(JsonError, read_json, fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert outcome and "not a regular file" in str(outcome[0].value)  # no writer needed: it did not block


# ---------------------------------------------------------------- writing

def test_a_folder_as_target_is_a_one_line_error(tmp_path):
    (tmp_path / "out").mkdir()
    for write in (lambda p: write_text(p, "x"), lambda p: write_json({"a": 1}, p)):
        with pytest.raises(OutputError) as error:
            write(tmp_path / "out")
        assert one_line(error) == f"cannot write {tmp_path / 'out'}: it is a folder; name a file inside it, " \
                                  f"e.g. {tmp_path / 'out' / 'out.json'}"
        assert isinstance(error.value, InputError) and isinstance(error.value, OSError)
    assert tree(tmp_path) == {"out"}


def test_missing_folder_is_an_error_unless_asked_to_create_it(tmp_path):
    with pytest.raises(OutputError) as error:
        write_text(tmp_path / "no" / "such" / "r.md", "x")
    assert one_line(error).endswith(f"folder {tmp_path / 'no' / 'such'} does not exist (create it first)")
    assert tree(tmp_path) == set()
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a folder"):
        write_json({}, tmp_path / "file" / "sub" / "a.json")
    assert tree(tmp_path) == {"file"}
    assert write_json({"a": 1}, tmp_path / "made" / "a.json").read_text() == '{\n  "a": 1\n}\n'  # the JSON outputs
    assert tree(tmp_path) == {"file", "made", "made/a.json"}


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_a_failure_mid_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch, failing):
    target = tmp_path / "report.md"
    target.write_text("previous\n")

    def broken(*_, **__):
        raise OSError(5, "Input/output error")

    if failing == "write":
        with pytest.raises(OutputError) as error, atomic_output(target) as stream:
            stream.write("half of the new ")
            broken()
    else:
        monkeypatch.setattr(os, failing, broken)
        with pytest.raises(OutputError) as error:
            write_text(target, "new\n")
        monkeypatch.undo()
    assert one_line(error) == f"cannot write {target}: Input/output error"
    assert target.read_text() == "previous\n" and tree(tmp_path) == {"report.md"}


def test_an_exception_while_writing_discards_the_new_content_and_created_folders(tmp_path):
    target = tmp_path / "a" / "b" / "audit.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_output(target, make_parents=True) as stream:
            stream.write('{"half": ')
            raise RuntimeError("interrupted")
    assert tree(tmp_path) == set()  # neither the temporary file nor the folders made for it
    with pytest.raises(ValueError):  # NaN cannot be JSON: refused before any file or folder exists
        write_json({"x": float("nan")}, target)
    assert tree(tmp_path) == set()


def test_folders_race_and_failures(tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def another_run_was_first(self, *args, **kwargs):  # the folder appears between our check and our mkdir
        real_mkdir(self, *args, **kwargs)
        raise FileExistsError(17, "File exists")

    monkeypatch.setattr(Path, "mkdir", another_run_was_first)
    assert write_json({"a": 1}, tmp_path / "shared" / "a.json").exists()
    monkeypatch.undo()

    def no_space(*_, **__):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    with pytest.raises(OutputError, match=r"cannot write .*b\.json: No space left on device$"):
        write_json({"a": 1}, tmp_path / "new" / "deeper" / "b.json")
    assert tree(tmp_path) == {"shared", "shared/a.json"}  # the folders made for b.json are gone again


def test_temporary_file_is_made_exclusively_in_the_targets_folder(tmp_path, monkeypatch):
    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        made.append(kwargs["dir"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    write_json({"a": 1}, tmp_path / "x" / "a.json")
    assert made == [tmp_path / "x"]


def test_symlinks_are_replaced_never_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.md").symlink_to(outside)
    write_text(work / "report.md", "report\n")
    assert outside.read_text() == "keep me\n"
    assert not (work / "report.md").is_symlink() and (work / "report.md").read_text() == "report\n"


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = write_text(tmp_path / "r.md", "x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------- swapkl report

def _crafted_junit(path: Path) -> Path:
    """xunit1.xml with a model and test names that look like paths out of the folder."""
    text = X1.read_text()
    text = text.replace('name="pair[L00-L01]"', 'name="../../escaped-pair"')
    text = text.replace('name="model" value="demo"', 'name="model" value="../../escaped-model"')
    text = text.replace('classname="swapkl" name="rank_correlation"',
                        'classname="../../escaped.swapkl" name="rank_correlation"')
    path.write_text(text)
    return path


def test_names_from_the_junit_never_become_files(tmp_path, capsys):
    work = tmp_path / "a" / "b"
    (work / "out").mkdir(parents=True)
    source = _crafted_junit(work / "audit.xml")
    before = tree(tmp_path)
    outputs = [work / "out" / name for name in ("r.md", "r.html", "r.json")]
    assert main_report([str(source), "--markdown", str(outputs[0]), "--html", str(outputs[1]),
                        "--json", str(outputs[2])]) == 0
    capsys.readouterr()
    assert tree(tmp_path) - before == {"a/b/out/r.md", "a/b/out/r.html", "a/b/out/r.json"}
    assert "../../escaped-model" in outputs[0].read_text()  # the names are content, and only content
    assert not list(tmp_path.parent.glob("escaped*"))


@pytest.mark.parametrize("flag_paths, expected", [
    ({"--markdown": "r.md", "--html": "folder"}, "it is a folder"),
    ({"--markdown": "r.md", "--json": "missing/r.json"}, "does not exist (create it first)"),
    ({"--markdown": "r.md", "--html": "r.md"}, "--html and --markdown both write"),
    ({"--markdown": "audit.xml"}, "is a report input, an input of this run: refusing to overwrite it"),
])
def test_bad_report_outputs_fail_in_one_line_before_writing(tmp_path, capsys, flag_paths, expected):
    (tmp_path / "folder").mkdir()
    source = tmp_path / "audit.xml"
    source.write_bytes(X1.read_bytes())
    before = tree(tmp_path)
    argv = [str(source)] + [item for flag, name in flag_paths.items() for item in (flag, str(tmp_path / name))]
    assert main_report(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swapkl: error: ") and expected in err and "\n" not in err, err
    assert tree(tmp_path) == before and source.read_bytes() == X1.read_bytes()  # not even r.md was written


def test_report_write_failure_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    target = tmp_path / "r.md"
    target.write_text("previous report\n")

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    assert main_report([str(X1), "--markdown", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"swapkl: error: cannot write {target}: No space left on device"
    assert target.read_text() == "previous report\n" and tree(tmp_path) == {"r.md"}


# ---------------------------------------------------------------- swapkl trajectory

def _rows(labels):
    document = {"base": {"ppl": 3.0}, "summary": {"spearman": 0.5, "kendall": 0.4, "topk": [{"k": 2, "jaccard": 0.5}]},
                "pairs": [{"i": 0, "j": 1, "interchange": 0.2, "replacement": 0.1}]}
    return [{"label": label, "model": label, "revision": None, "statistics": trajectory.gap_statistics(document),
             "document": document} for label in labels]


def test_trajectory_labels_never_become_files_and_a_failed_plot_keeps_the_old_one(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    work = tmp_path / "w"
    target = trajectory.plot_trajectory(_rows(["../../escaped", "/tmp/escaped", "ok"]), work / "plots" / "t.png")
    assert tree(tmp_path) == {"w", "w/plots", "w/plots/t.png"}
    png = target.read_bytes()
    assert png.startswith(b"\x89PNG")
    # a planted symlink at the name the plot's temporary file used to have is ignored
    (work / "plots" / ".t.png.tmp.png").symlink_to(tmp_path / "victim.png")

    def half_then_fail(self, stream, **_):
        stream.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(OutputError, match="No space left on device"):
        trajectory.plot_trajectory(_rows(["a", "b"]), target)
    assert target.read_bytes() == png and not (tmp_path / "victim.png").exists()
    assert tree(tmp_path) == {"w", "w/plots", "w/plots/t.png", "w/plots/.t.png.tmp.png"}


@pytest.mark.parametrize("extra, expected", [
    (["--json", "{folder}"], "it is a folder"),
    (["--json", "{folder}/t.json", "--plot", "{folder}/t.json"], "--json and --plot both write"),
])
def test_trajectory_outputs_are_checked_before_any_audit(tmp_path, capsys, extra, expected):
    (tmp_path / "out").mkdir()
    started = time.monotonic()
    argv = ["demo"] + [item.format(folder=tmp_path / "out") for item in extra]
    assert trajectory.main_trajectory(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swapkl: error: ") and expected in err and "\n" not in err, err
    assert time.monotonic() - started < 5  # no model was loaded
    assert tree(tmp_path) == {"out"}


def test_a_jsonl_line_nested_thousands_deep_is_a_one_line_data_error(tmp_path):
    from pytest_swapkl.inputs.data import DataError, _jsonl_document

    with pytest.raises(DataError, match="line 3 cannot be read") as failure:
        _jsonl_document("[" * 100_000 + "]" * 100_000, tmp_path / "ids.jsonl", 3)
    assert "\n" not in str(failure.value)
