"""The one door for reading and the one check for writing (safe_files): what every command and the plugin use.

Outputs never destroy inputs, and no read blocks or runs without end (docs/reliability.md, "Outputs never
destroy inputs" and "Every read is bounded")."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_swapkl.safe_files import OutputError, UnreadableFile, check_outputs, decode_text, open_input, read_input

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert text and "\n" not in text
    return text


def finishes_quickly(step, seconds: float = 5.0):
    """Run `step` in a thread; it must return (or raise) within `seconds`: nothing may block on a FIFO."""
    outcome: list = []

    def run():
        try:
            outcome.append(("value", step()))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(("error", error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert outcome, f"blocked for more than {seconds} s"
    return outcome[0]


# ---------------------------------------------------------------- reading

@pytest.mark.parametrize("kind", ["fifo", "dev-zero link", "folder"])
def test_only_regular_files_are_read_and_nothing_blocks(tmp_path, kind):
    path = tmp_path / "data.txt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero link":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    expected = {"fifo": "a FIFO", "dev-zero link": "a character device", "folder": "a folder"}[kind]
    how, error = finishes_quickly(lambda: read_input(path, what="data", max_bytes=100, fix="pass a file"))
    assert how == "error" and isinstance(error, UnreadableFile)
    assert str(error) == f"{path}: data is not a regular file ({expected}); pass a file"


def test_the_cap_holds_before_and_during_the_read(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 101)
    with pytest.raises(UnreadableFile) as error:
        read_input(path, what="text", max_bytes=100, fix="use a smaller file")
    assert one_line(error) == f"{path}: text of 101 bytes is over the 100 byte limit; use a smaller file"
    with open_input(tmp_path / "big.txt", what="text", max_bytes=200, fix="-") as stream:
        assert stream.read() == b"x" * 101


def test_text_is_utf8_with_an_optional_bom_and_errors_name_the_byte():
    assert decode_text(b"\xef\xbb\xbfhello", "a.txt", what="text", fix="-") == "hello"
    with pytest.raises(UnreadableFile) as error:
        decode_text(b"ok \xff", "a.jsonl", what="line 2", fix="save it as UTF-8", offset=10)
    assert one_line(error) == "a.jsonl: line 2 is not UTF-8 text (invalid start byte at byte 13); save it as UTF-8"


# ---------------------------------------------------------------- the output check

@pytest.fixture
def run_inputs(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    data = tmp_path / "ids.npy"
    np.save(data, np.zeros((1, 4), dtype=np.int64))
    return [("the model (MODEL)", str(model)), ("the calibration data (--data)", str(data)),
            ("a hub id", "owner/name"), ("the demo", "demo")]


@pytest.mark.parametrize("name, expected", [
    ("ids.npy", "--json {tmp}/ids.npy is the calibration data (--data), an input of this run: refusing to "
                "overwrite it; write the output elsewhere"),
    ("model/config.json", "--json {tmp}/model/config.json is inside the model (MODEL) {tmp}/model, an input of "
                          "this run: writing there would change it; write the output elsewhere"),
    ("model/new.json", "--json {tmp}/model/new.json is inside the model (MODEL)"),
    ("link-to-ids.json", "--json {tmp}/link-to-ids.json is the calibration data (--data), an input"),
    ("model", "cannot write {tmp}/model: it is a folder"),
    ("fifo.json", "cannot write {tmp}/fifo.json: it is a FIFO, not a regular file; name a regular file"),
    ("missing/out.json", None),  # made on write: the JSON outputs create their folders
    ("out.json", None),
])
def test_outputs_are_checked_against_every_input(tmp_path, run_inputs, name, expected):
    (tmp_path / "link-to-ids.json").symlink_to(tmp_path / "ids.npy")
    os.mkfifo(tmp_path / "fifo.json")
    before = (tmp_path / "ids.npy").read_bytes()
    if expected is None:
        check_outputs([("--json", str(tmp_path / name))], run_inputs, make_parents=True)
        return
    how, error = finishes_quickly(lambda: check_outputs([("--json", str(tmp_path / name))], run_inputs,
                                                        make_parents=True))
    assert how == "error" and isinstance(error, OutputError), error
    message = str(error)
    assert "\n" not in message and message.startswith(expected.format(tmp=tmp_path)), message
    assert (tmp_path / "ids.npy").read_bytes() == before


def test_devices_two_outputs_on_one_file_and_unwritable_folders(tmp_path):
    with pytest.raises(OutputError, match=r"^cannot write /dev/null: it is a character device, not a regular file"):
        check_outputs([("--json", "/dev/null")])
    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    with pytest.raises(OutputError, match="it is a character device"):  # links are resolved
        check_outputs([("--markdown", str(link))])
    with pytest.raises(OutputError, match=r"^--html and --markdown both write"):
        check_outputs([("--markdown", str(tmp_path / "r.md")), ("--html", str(tmp_path / "." / "r.md"))])
    if not ROOT:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError, match="is not writable; write the file elsewhere"):
            check_outputs([("--json", str(locked / "a.json"))])


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest_swapkl", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("target", ["ids.npy", "tiny/config.json", "tiny/model.safetensors", "/dev/null", "out"])
def test_audit_refuses_to_overwrite_its_inputs_before_any_work(tmp_path, tiny_model, target):
    tiny_model("llama", n_layers=2).save_pretrained(tmp_path / "tiny")
    np.save(tmp_path / "ids.npy", np.arange(32).reshape(2, 16) % 90)
    (tmp_path / "out").mkdir()
    before = {p: p.read_bytes() for p in [tmp_path / "ids.npy", *sorted((tmp_path / "tiny").iterdir())]}
    started = time.monotonic()
    result = _cli("audit", "tiny", "--data", "ids.npy", "--json", target, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swapkl: error: ") and "Traceback" not in result.stderr, lines
    assert "no tokenizer" not in result.stderr  # refused before the model was even located
    assert time.monotonic() - started < 30
    assert {p: p.read_bytes() for p in before} == before


def test_trajectory_and_report_outputs_pass_the_same_check(tmp_path, tiny_model):
    tiny_model("llama", n_layers=2).save_pretrained(tmp_path / "tiny")
    np.save(tmp_path / "ids.npy", np.arange(32).reshape(2, 16) % 90)
    for argv in (["trajectory", "tiny", "--data", "ids.npy", "--json", "tiny/t.json"],
                 ["trajectory", "tiny", "--data", "ids.npy", "--plot", "ids.npy"],
                 ["report", "ids.npy", "--markdown", "ids.npy"]):
        result = _cli(*argv, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (argv, lines)
        assert "an input of this run" in lines[0], lines
    assert not (tmp_path / "tiny" / "t.json").exists()


def test_an_append_is_atomic(tmp_path, monkeypatch):
    """A full disk (or a kill) during an append leaves the old file whole, never a torn one (issue 35)."""
    from pytest_swapkl import safe_files

    summary = tmp_path / "summary.md"
    summary.write_text("step 1\n")
    safe_files.append_text(summary, "step 2\n", max_bytes=1 << 20)
    assert summary.read_text() == "step 1\nstep 2\n"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safe_files.os, "replace", full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        safe_files.append_text(summary, "step 3\n", max_bytes=1 << 20)
    assert summary.read_text() == "step 1\nstep 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"], "no temporary file left behind"
    with pytest.raises(UnreadableFile, match="summary.md"):
        safe_files.append_text(summary, "x", max_bytes=4)


@pytest.mark.parametrize("error, reason", [
    (OSError(28, "No space left on device"), "No space left on device"),
    (OSError(13, "Permission denied"), "Permission denied"),
    (OSError(30, "Read-only file system"), "Read-only file system"),
    (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),
     "No space left on device"),  # safetensors' SafetensorError wraps the OSError in its own type
    (OSError(2, "No such file or directory"), None),
    (ValueError("bad value"), None),
])
def test_disk_failures_are_recognized_whatever_wraps_them(error, reason):
    from pytest_swapkl.safe_files import disk_failure

    assert disk_failure(error) == reason


def test_an_atomic_folder_is_whole_or_absent(tmp_path):
    """A pruned model is written into a hidden folder beside its target and renamed: a full disk midway leaves
    neither the target nor the temporary folder, and names the target in one line (issue 35)."""
    from pytest_swapkl.safe_files import atomic_folder

    target = tmp_path / "pruned"
    with pytest.raises(OutputError) as failed:
        with atomic_folder(target, what="the pruned model") as building:
            (building / "config.json").write_text("{}")
            raise OSError(28, "No space left on device")
    assert str(failed.value) == (f"cannot write the pruned model {target}: No space left on device; free space "
                                 "there, or write it elsewhere")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):  # anything else is not the disk's fault: raised as it is, nothing left
        with atomic_folder(target, what="the pruned model"):
            raise ValueError("a bug")
    assert list(tmp_path.iterdir()) == []
    target.mkdir()  # an empty folder given as the target is replaced
    with atomic_folder(target, what="the pruned model") as building:
        (building / "config.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["pruned"] and (target / "config.json").read_text() == "{}"


def test_the_front_door_turns_any_disk_failure_into_one_line(capsys):
    """A writer that does not name its path itself (a library writing straight to a full disk) still ends in one
    line and exit 2, never a traceback."""
    import argparse

    from pytest_swapkl.commands.frontdoor import run_main

    def parser() -> argparse.ArgumentParser:
        built = argparse.ArgumentParser()

        def run(_args):
            raise OSError(28, "No space left on device", "/mnt/full/out.json")

        built.set_defaults(run=run)
        return built

    assert run_main(parser, []) == 2
    assert capsys.readouterr().err.strip() == ("swapkl: error: cannot write /mnt/full/out.json: No space left on "
                                               "device; free space there, or write it elsewhere")
