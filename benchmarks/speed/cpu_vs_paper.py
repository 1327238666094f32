"""This tool's audit, its reference path and the paper's own JAX forward on the same CPU work, in one process.

    python benchmarks/speed/cpu_vs_paper.py                      # demo model, all pairs, 8 x 128 tokens
    python benchmarks/speed/cpu_vs_paper.py --model demo,smollm2-135m --smol-tokens 256 --reference-sample 8
        # both in one process: SmolLM2-135M on adjacent pairs, 256-token sequences, fewer tokens (--smol-tokens);
        # no paper row for it: the paper's protocol-gap forward is GPT-NeoX only

Prints one table per model: CPU time (every thread of this process; its system share in the note), wall
time and the load average around each row,
the counted matrix FLOPs, and the achieved fraction of this machine's float32 matrix-multiply rate measured
here (GFLOP per CPU second of a 1024 x 1024 product on one thread, so the fraction does not depend on how
busy the shared machine was). The paper's code is /work/paper/tpu_pythia_protocol_gap_trajectory.py
(Gpgabriel25/ProtocolGapDiagnostic), imported unchanged; only its hub download is pointed at the local
checkpoint folder. Without jax its row is skipped with a notice.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

PAPER = Path(os.environ.get("SWAPKL_PAPER_CODE", "/work/paper/tpu_pythia_protocol_gap_trajectory.py"))


class Clock:
    """CPU and wall seconds of a block, and the 1-minute load average before and after it."""

    def __enter__(self) -> "Clock":
        self.load_before = os.getloadavg()[0]
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        self.sys = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall
        self.sys = resource.getrusage(resource.RUSAGE_SELF).ru_stime - self.sys
        self.load = f"{self.load_before:.1f}-{os.getloadavg()[0]:.1f}"


def matmul_rate() -> float:
    """float32 GFLOP per CPU second of one thread's 1024 x 1024 products (the best of three 1 s runs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = 0.0
    for _ in range(3):
        cpu, count = time.process_time(), 0
        while time.process_time() - cpu < 1.0:
            a @ b
            count += 1
        best = max(best, 2 * 1024 ** 3 * count / (time.process_time() - cpu) / 1e9)
    torch.set_num_threads(before)
    return best


def counted_flop(config, seq_len: int, tokens: int, layer_passes: int, heads: int) -> float:
    from pytest_swapkl.engine.plan import layer_flop_per_token

    head = 2.0 * config.hidden_size * config.vocab_size
    return tokens * (layer_passes * layer_flop_per_token(config, seq_len) + heads * head)


def paper_module():
    """The paper's script as a module, unchanged, or None (with the reason) where jax or the file is missing."""
    if importlib.util.find_spec("jax") is None:
        return None, "jax is not installed (pip install jax)"
    if not PAPER.is_file():
        return None, f"{PAPER} not found (SWAPKL_PAPER_CODE names it)"
    spec = importlib.util.spec_from_file_location("paper_protocol_gap", PAPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, ""


def paper_run(module, folder: str, ids, seq_len: int) -> dict:
    """run_model_checkpoint on the local folder: weights loading, one jit compile, base + 2 forwards per pair."""
    import jax.numpy as jnp

    def local(model_name, filename, revision, token):  # the only change: the hub download reads the folder
        path = Path(model_name) / filename
        return str(path) if path.is_file() else None

    module._download_if_exists = local
    return module.run_model_checkpoint(model_name=folder, checkpoint="main", dtype=jnp.float32, token=None,
                                       input_ids=jnp.asarray(ids.numpy()), max_length=seq_len, all_pairs=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo", help="one model, or several separated by commas")
    parser.add_argument("--pairs", default="all", help="the demo model's pairs (SmolLM2-135M: adjacent)")
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--smol-tokens", type=int, default=256, help="tokens for a model other than demo")
    parser.add_argument("--smol-seq-len", type=int, default=256)
    parser.add_argument("--reference-sample", type=int, default=0,
                        help="time the reference path on this many probes and extrapolate (0: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the audit and the fast path (default: the audit's own, from the load)")
    args = parser.parse_args()

    from pytest_swapkl.engine.threads import wait_passively  # no torch: engine's imports are lazy

    wait_passively()  # before torch starts, as the command does: else the audit row ran with spinning threads
    with Clock() as clock:
        import torch  # noqa: F401  (timed: the imports a first audit pays)
        import transformers  # noqa: F401

        import pytest_swapkl.commands.cli  # noqa: F401
    imports = ["imports: torch, transformers, pytest_swapkl", clock, None, ""]
    rate = matmul_rate()
    for number, model in enumerate(args.model.split(",")):
        demo = model == "demo"
        pairs = args.pairs if demo else "adjacent"
        tokens, seq_len = (args.tokens, args.seq_len) if demo else (args.smol_tokens, args.smol_seq_len)
        rows, paper_seconds, header = compare(model, pairs, tokens, seq_len, args.reference_sample, args.threads)
        print_table(header, rate, ([imports] if number == 0 else []) + rows, paper_seconds)


def compare(model: str, pairs: str, tokens: int, seq_len: int, reference_sample: int, threads: int | None):
    """The rows of one model: the whole audit command, the fast path alone, the reference path, the paper."""
    from pytest_swapkl import engine
    from pytest_swapkl.commands import cli
    from pytest_swapkl.engine import probes as P
    from pytest_swapkl.engine.threads import cpu_threads
    from pytest_swapkl.inputs.data import load_calibration
    from pytest_swapkl.inputs.loading import load_model

    rows = []
    with Clock() as clock, tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        cli.main(["audit", model, "--pairs", pairs, "--tokens", str(tokens), "--seq-len",
                  str(seq_len), "--device", "cpu", "--no-resume", "--json", str(Path(tmp) / "audit.json")]
                 + ([] if threads is None else ["--threads", str(threads)]))
    loaded = load_model(model, dtype="float32", device="cpu")
    n, config = loaded.n_layers, loaded.model.config
    calibration = load_calibration("demo", loaded.tokenizer, tokens=tokens, seq_len=seq_len,
                                   vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
    ids = calibration.input_ids
    count = ids.numel()
    probes = P.audit_probes(P.parse_pairs(pairs, n), n)
    reference_passes, fast_passes = P.count_layer_passes(probes, n)
    rows.append([f"swapkl audit {model} (whole command: load, probes, noise floor, statistics)", clock,
                 counted_flop(config, seq_len, count, fast_passes, len(probes) + 1),
                 f"{len(probes)} probes + base"])

    quiet = {"progress": None, "notice": lambda line: None}
    with cpu_threads(threads) as (threads, _):
        with Clock() as clock:
            fast = engine.measure(loaded.model, ids, probes, path="fast", **quiet)
        rows.append(["fast path alone (engine.measure)", clock,
                     counted_flop(config, seq_len, count, fast_passes, len(probes) + 1), f"{threads} threads"])
        sample = probes if reference_sample <= 0 else probes[:: max(1, len(probes) // reference_sample)]
        with Clock() as clock:
            reference = engine.measure(loaded.model, ids, sample, path="reference", **quiet)
        scale = (len(probes) + 1) / (len(sample) + 1)  # every reference probe is the same full forward
        clock.cpu, clock.wall, clock.sys = clock.cpu * scale, clock.wall * scale, clock.sys * scale
        note = "" if len(sample) == len(probes) else f"extrapolated from {len(sample)} probes"
        rows.append(["reference path (a full forward per probe)", clock,
                     counted_flop(config, seq_len, count, reference_passes, len(probes) + 1), note])
        worst = max(abs(fast.kl(p) - reference.kl(p)) for p in sample)

    paper_seconds = None
    if config.model_type != "gpt_neox":
        print(f"{model}: paper row skipped: its protocol-gap forward is GPT-NeoX only, {model} is {config.model_type}")
    else:
        with Clock() as clock:
            module, why = paper_module()
        if module is None:
            print(f"paper row skipped: {why}")
        else:
            rows.append(["imports: jax and the paper's script", clock, None, ""])
            n_pairs = n * (n - 1) // 2 if pairs == "all" else n - 1
            with Clock() as clock:
                result = paper_run(module, loaded.path, ids, seq_len)
            paper_seconds = clock.cpu
            rows.append(["paper's JAX forward (load, jit, base + 2 forwards per pair, KL)", clock,
                         counted_flop(config, seq_len, count, (2 * n_pairs + 1) * n, 2 * n_pairs + 1),
                         f"{2 * n_pairs + 1} forwards; its own wall_time_s {result['wall_time_s']}"])
    header = (f"{model}: {config.model_type}, {n} layers, {pairs} pairs, {ids.shape[0]} x {seq_len} tokens, "
              f"float32, {os.cpu_count()} CPUs; fast vs reference max |dKL| {worst:.1e}")
    return rows, paper_seconds, header


def print_table(header: str, rate: float, rows: list, paper_seconds) -> None:
    print(f"{header}; float32 matmul rate {rate:.1f} GFLOP per CPU second (1 thread, 1024 x 1024)")
    print(f"{'row':<78} {'CPU s':>8} {'wall s':>8} {'load':>9} {'GFLOP':>8} {'of rate':>7}  note")
    for name, clock, flop, note in rows:
        share = f"{flop / 1e9 / clock.cpu / rate:.0%}" if flop else ""
        gflop = f"{flop / 1e9:.0f}" if flop else ""
        note = f"sys {clock.sys:.1f} s" + (f"; {note}" if note else "")
        print(f"{name:<78} {clock.cpu:8.1f} {clock.wall:8.1f} {clock.load:>9} {gflop:>8} {share:>7}  {note}")
    if paper_seconds:
        audit = next(clock.cpu for name, clock, _, _ in rows if name.startswith("swapkl audit"))
        print(f"whole swapkl audit vs the paper's JAX forward, CPU time: {paper_seconds / audit:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
