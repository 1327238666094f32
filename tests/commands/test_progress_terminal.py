"""The progress line on a real terminal (a pty): `swapkl audit` redraws a bar on stderr, the plugin redraws
it through pytest's terminal reporter, and both end it before the next output.

Each run's raw terminal stream lands in test-artifacts/progress/ (or $SWAPKL_ARTIFACTS/progress/) for a
person to look at; docs/captures/ holds screens captured with tmux (scripts/capture_progress.sh).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--tokens", "1024", "--seq-len", "128", "--device", "cpu"]


def in_a_terminal(argv: list[str], cwd: Path, columns: int = 160, timeout: float = 300) -> tuple[int, str]:
    """Run argv with stdin, stdout and stderr on one pty of `columns` columns: (exit code, everything it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    env.pop("SWAPKL_PROGRESS", None)
    process = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


def keep(name: str, text: str) -> None:
    folder = Path(os.environ.get("SWAPKL_ARTIFACTS", ROOT / "test-artifacts")) / "progress"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def redraws(stream: str) -> list[str]:
    """The probes' bar as drawn each time (the text after each carriage return, up to the next one or a newline);
    the later phases' bars carry their label (``swapkl: noise floor: ...``) and are left out."""
    return [part.split("\n")[0].strip() for part in stream.split("\r")[1:]
            if part.startswith("swapkl: ") and "%|" in part.split("\n")[0] and "probe-sequences" in part
            and not part.startswith("swapkl: noise floor")]


def test_swapkl_audit_redraws_a_bar_on_a_terminal(tmp_path):
    code, stream = in_a_terminal([sys.executable, "-m", "pytest_swapkl", "audit", "demo", *SMALL], tmp_path)
    keep("cli-terminal.txt", stream)
    assert code == 0, stream[-3000:]
    bars = redraws(stream)
    assert len(bars) >= 2, stream[-3000:]
    assert bars[-1].startswith("swapkl: 100%|" + "█" * 30 + "| 232/232 probe-sequences [")  # tqdm's bar
    assert "\nmodel  demo" in stream.replace("\r\n", "\n")  # the table starts on a line of its own


def test_the_plugin_redraws_the_bar_through_pytests_terminal_reporter(tmp_path):
    argv = [sys.executable, "-m", "pytest", "--swapkl-model=demo", "-p", "no:cacheprovider", "--swapkl-tokens=1024",
            "--swapkl-seq-len=128", "--swapkl-device=cpu"]
    code, stream = in_a_terminal(argv, tmp_path)
    keep("plugin-terminal.txt", stream)
    assert code in (0, 1), stream[-3000:]  # 1: a demo case fails at this size under Definition 1
    text = stream.replace("\r\n", "\n")
    assert "swapkl: computing the audit of demo (adjacent pairs, 8 x 128 tokens)" in text
    bars = redraws(stream)
    assert len(bars) >= 2 and "232/232 probe-sequences" in bars[-1], stream[-3000:]
    assert text.index("232/232 probe-sequences") < text.index("test session starts")
    assert "swapkl audit computed in" in text.strip().splitlines()[-1]


@pytest.mark.parametrize("where", ["cli", "plugin"])
def test_a_pipe_gets_plain_lines_and_no_carriage_returns(tmp_path, where):
    env = {**os.environ, "SWAPKL_PROGRESS_SECONDS": "0"}
    if where == "cli":
        argv = [sys.executable, "-m", "pytest_swapkl", "audit", "demo", *SMALL]
    else:
        argv = [sys.executable, "-m", "pytest", "--swapkl-model=demo", "-p", "no:cacheprovider",
                "--swapkl-tokens=1024", "--swapkl-seq-len=128", "--swapkl-device=cpu"]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: a demo case fails (plugin), not an error
    progress = result.stderr if where == "cli" else result.stdout
    keep(f"{where}-pipe.txt", progress)
    lines = [line for line in progress.splitlines() if "probe-sequences" in line and "noise floor" not in line]
    assert len(lines) >= 5 and "\r" not in progress
    assert lines[-1].startswith("swapkl: 232/232 probe-sequences in ")
