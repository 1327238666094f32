"""Peak memory of the worst case of each sizing class (issue 35): for every kind of number read from a file that could
size an allocation, the largest lie a small crafted file can tell, fed to the real command in a subprocess under an
address-space limit (RLIMIT_AS). Prints one row per case: the file's size on disk, what it would have allocated, the
exit code, the peak resident memory of the process (ru_maxrss from wait4) and the last stderr line.

    PYTHONPATH=$PWD python benchmarks/reliability/peak_memory.py [--limit-gib 3]

A whole audit of the tiny model is the first row: every refusal should peak at or below it (the refusals happen
before anything is sized from the file; what remains is torch and transformers being imported).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models, tiny_gguf: the files the tests write

GIB = 1 << 30


def run(argv: list[str], cwd: Path, limit: int) -> tuple[int, float, str]:
    """Exit code, peak RSS in MiB and the last stderr line of `python -m pytest_swapkl ARGV` under RLIMIT_AS."""
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cwd / "xdg"),
           "SWAPKL_CACHE_DIR": str(cwd / "xdg" / "gguf"), "HF_HUB_OFFLINE": "1"}
    with open(cwd / "stderr.txt", "w") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "pytest_swapkl", *argv], cwd=cwd, env=env,
                                 stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=limits)
        _, status, usage = os.wait4(child.pid, 0)
    lines = [line for line in (cwd / "stderr.txt").read_text().splitlines() if line.strip()]
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, (lines[-1] if lines else "")


def make_cases(work: Path) -> list[tuple[str, str, list[str], Path]]:
    """(class, what the file claims, argv, the crafted file) per case."""
    import numpy as np
    from tiny_gguf import write_tiny_gguf
    from tiny_models import random_ids, tiny_model
    from transformers import AutoConfig, AutoModelForCausalLM

    tiny_model("llama", n_layers=2).save_pretrained(work / "tiny")
    np.save(work / "ids.npy", random_ids(4, 16).numpy())
    audit = ["--data", "ids.npy", "--bootstrap", "10", "--device", "cpu", "--no-resume"]
    cases = [("(reference) a whole audit", "2-layer tiny llama, 4 x 16 ids", ["audit", "tiny", *audit],
              work / "ids.npy")]

    gguf = write_tiny_gguf(work / "ffn.gguf", claims={"feed_forward_length": 200_000})
    cases.append(("GGUF metadata", "feed_forward_length 200000 next to tensors of 128", ["audit", "ffn.gguf", *audit],
                  gguf))
    gguf = write_tiny_gguf(work / "blocks.gguf", claims={"block_count": 1000})
    cases.append(("GGUF metadata", "block_count 1000 next to 2 blocks", ["audit", "blocks.gguf", *audit], gguf))

    big = work / "big-config"
    tiny_model("llama", n_layers=2).save_pretrained(big)
    config = json.loads((big / "config.json").read_text())
    config.update(hidden_size=65536, intermediate_size=200000, vocab_size=1 << 20)
    (big / "config.json").write_text(json.dumps(config))
    cases.append(("config.json sizes", "about 20 TB of weights, each size under its cap", ["audit", "big-config",
                                                                                          *audit], big / "config.json"))

    positions = work / "gptj"
    AutoModelForCausalLM.from_config(AutoConfig.for_model("gptj", n_layer=1, n_embd=64, n_head=1, rotary_dim=64,
                                                          vocab_size=256, n_positions=64)).save_pretrained(positions)
    config = json.loads((positions / "config.json").read_text())
    config["n_positions"] = 1 << 26
    (positions / "config.json").write_text(json.dumps(config))
    cases.append(("config.json positions", "n_positions 2**26: a 16 GiB sin/cos buffer", ["audit", "gptj", *audit],
                  positions / "config.json"))

    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 16), }"
    header += " " * (117 - len(header)) + "\n"
    lies = work / "lies.npy"
    lies.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64)
    cases.append((".npy header", "shape (10**12, 16): 128 TB", ["audit", "tiny", "--data", "lies.npy",
                                                 *audit[2:]], lies))

    small = work / "uint8.npy"  # 2**30 uint8 ids: 1 GiB on disk (sparse here), 8 GiB once int64
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (32768, 32768), }"
    header += " " * (117 - len(header)) + "\n"
    with open(small, "wb") as stream:
        stream.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        stream.truncate(128 + (1 << 30))
    cases.append((".npy small dtype", "2**30 uint8 ids (1 GiB on disk): 8 GiB as int64",
                  ["audit", "tiny", "--data", "uint8.npy", *audit[2:]], small))

    deflated = work / "deflated.pt"  # one zip member of 2 GiB + 1 MiB of zeros, deflated to about 2 MB
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(2049):
                member.write(block)
    cases.append((".pt deflated", "a member that decompresses to 2 GiB + 1 MiB",
                  ["audit", "tiny", "--data", "deflated.pt", *audit[2:]], deflated))

    with_tokenizer = work / "big-tokenizer"
    tiny_model("llama", n_layers=2).save_pretrained(with_tokenizer)
    with open(with_tokenizer / "tokenizer.json", "wb") as stream:
        stream.truncate(600 << 20)  # sparse: 600 MB of zeros, over the 512 MiB cap
    cases.append(("tokenizer file", "tokenizer.json of 600 MB", ["audit", "big-tokenizer", *audit],
                  with_tokenizer / "tokenizer.json"))

    junit = work / "grid.xml"
    junit.write_text('<?xml version="1.0"?><testsuite name="pytest"><testcase classname="swapkl" '
                     'name="pair[L00-L01]"><properties><property name="i" value="0"/><property name="j" '
                     'value="100000"/><property name="interchange" value="0.1"/></properties></testcase></testsuite>')
    cases.append(("junit indices", "j=100000: an 80 GB heatmap grid", ["report", "grid.xml", "--html", "r.html"],
                  junit))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=3.0, help="RLIMIT_AS of each run (default 3 GiB)")
    limit = int(parser.parse_args().limit_gib * GIB)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rows = []
        for kind, claim, argv, file in make_cases(work):
            code, peak, last = run(argv, work, limit)
            on_disk = file.stat().st_blocks * 512  # what the file takes (sparse files: the blocks written)
            rows.append((kind, claim, f"{on_disk / 1024:,.0f} KiB", str(code), f"{peak:,.0f}", last[:110]))
    print(f"limit: RLIMIT_AS {limit / GIB:g} GiB per run; peak = ru_maxrss of the process (MiB)\n")
    print("| class | the file claims | on disk | exit | peak MiB | last stderr line |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")


if __name__ == "__main__":
    main()
