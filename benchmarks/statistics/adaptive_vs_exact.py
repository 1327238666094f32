"""Adaptive vs exact precision: the real generated tests, side by side, and the time each took.

For each model, runs the pytest plugin twice in a fresh directory (no cache), once with
--swapkl-precision exact and once adaptive, reads both junit XML files and prints one table
per model (every generated case: exact verdict, adaptive verdict) plus a summary table
(probe time, probe-sequences measured, speed-up, verdicts that differ).

    python benchmarks/statistics/adaptive_vs_exact.py --models demo --device cpu
    python benchmarks/statistics/adaptive_vs_exact.py --models demo,runs/repro/step-2000 --device cuda --prune-k 4
    python benchmarks/statistics/adaptive_vs_exact.py --models smollm2-135m --pairs window:2 --tokens 512 --seq-len 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]


def _load_plugin() -> list[str]:
    """`-p pytest_swapkl.plugin.hooks` where the package is on PYTHONPATH but not installed (a GPU image)."""
    installed = any(entry.name == "swapkl" for entry in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "pytest_swapkl.plugin.hooks"]


def run_plugin(model: str, precision: str, args: argparse.Namespace, folder: Path) -> dict:
    junit, audit = folder / f"{precision}.xml", folder / f"{precision}.json"
    command = [sys.executable, "-m", "pytest", *_load_plugin(), "-p", "no:cacheprovider", "-q",
               f"--swapkl-model={model}", f"--swapkl-pairs={args.pairs}", f"--swapkl-device={args.device}",
               f"--swapkl-precision={precision}", f"--swapkl-prune-k={args.prune_k}", "--swapkl-no-cache",
               f"--swapkl-tokens={args.tokens}", f"--swapkl-seq-len={args.seq_len}",
               f"--swapkl-adaptive-alpha={args.alpha}",
               f"--swapkl-compile={args.compile}",
               "--swapkl-no-resume", f"--swapkl-json={audit}", f"--junitxml={junit}"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    document = json.loads(audit.read_text())
    cases = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        cases[case.get("name")] = outcome
    return {"wall": wall, "document": document, "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo", help="comma-separated model specs")
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prune-k", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--alpha", type=float, default=0.05, help="--swapkl-adaptive-alpha")
    parser.add_argument("--compile", default="auto", help="--swapkl-compile (off: no recompile per slice size)")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables and raw numbers here")
    args = parser.parse_args()
    summary, tables = [], []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as folder:
            exact = run_plugin(model, "exact", args, Path(folder))
            adaptive = run_plugin(model, "adaptive", args, Path(folder))
        names = sorted(set(exact["cases"]) | set(adaptive["cases"]))
        rows = [[name, exact["cases"].get(name, "-"), adaptive["cases"].get(name, "-"),
                 "yes" if exact["cases"].get(name) == adaptive["cases"].get(name) else "NO"] for name in names]
        tables.append(f"{model} ({args.pairs} pairs, {args.tokens} tokens / {args.seq_len}, {args.device}, alpha "
                      f"{args.alpha:g}):\n"
                      + tabulate(rows, headers=["generated test", "exact", "adaptive", "same"]))
        info = adaptive["document"]["adaptive"]
        e_seconds, a_seconds = exact["document"]["measure_seconds"], adaptive["document"]["measure_seconds"]
        summary.append([model, len(names), sum(1 for row in rows if row[3] == "NO"), f"{e_seconds:.2f}",
                        f"{a_seconds:.2f}", f"{e_seconds / a_seconds:.2f}",
                        f"{info['probe_sequences']} / {info['exact_probe_sequences']}",
                        f"{info['stopped_early']} of {len(info['probes'])}",
                        f"{exact['wall']:.1f} / {adaptive['wall']:.1f}"])
    text = "\n\n".join(tables) + "\n\n" + tabulate(summary, headers=[
        "model", "tests", "verdicts differing", "exact probe s", "adaptive probe s", "speed-up",
        "probe-sequences adaptive / exact", "probes stopped early", "pytest wall s exact / adaptive"])
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "adaptive_vs_exact.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
