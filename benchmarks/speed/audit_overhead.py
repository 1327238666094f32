"""Where the time of one `swapkl audit` goes besides the probes: a table of phase timings.

    python benchmarks/speed/audit_overhead.py --json-out /tmp/before.json
    python benchmarks/speed/audit_overhead.py --compare-json /tmp/before.json

Runs the CLI's own audit path (``commands.cli.main(["audit", ...])``, in this process) on a config-built tiny
30-layer Llama (random weights, saved once under --models-dir as safetensors) with all 435 pairs, on pre-tokenized
random ids (64 sequences by default: the statistics' cost depends on the sequences, resamples and pairs, not on
the sequence length). Each phase is timed from outside: the functions the audit path calls (runner, analysis,
results) are wrapped with a perf_counter timer for the run; nothing inside the package knows it is timed. Nested
phases are indented (". ") under their caller; "other" is the whole call less its timed phases.

--reuse-probes PATH keeps the probes' measurement in a pickle and, when the file exists, takes it from there
instead of measuring (the "probes" phase is then the pickle's load): the rest of the audit, which is what this
benchmark is about, runs for real on the same numbers, in seconds instead of minutes on a CPU.

--checkpoint PATH audits a real model instead (a GGUF file, a checkpoint folder; --device, --dtype, --tokens, the
bundled corpus as data, no pruning unless --prune-k is given), and --cache DIR keeps the user cache folder (the
dequantized GGUF, the compile cache) between runs instead of an empty one per run: on the H200 (issue 21)

    python3 benchmarks/speed/audit_overhead.py --checkpoint smol.gguf --device cuda --dtype bfloat16 --tokens 32768 \
        --seq-len 512 --cache /tmp/swapkl-cache          # twice: the first fills the cache

--json-out keeps the audit JSON; --compare-json checks that this run's JSON equals an earlier run's except the
fields listed in VARYING (wall-clock seconds and the CUDA memory peak: they change from run to run by nature).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# Fields of the audit JSON that differ between identical runs: wall-clock seconds (whole audit, probes, pruning)
# and the allocator's peak (null on CPU, but a property of the run, not of the numbers).
VARYING = (("seconds",), ("measure_seconds",), ("pruning", "seconds"), ("engine", "peak_memory"))

# (module, function, label): what the audit path calls, in the order it calls them. Wrapped at the module
# attribute the caller looks the name up in, so the real call goes through the timer. A name the code under test
# does not have (an older or newer version of it) is left out.
PHASES = (
    ("pytest_swapkl.audit.runner", "locate", "locate checkpoint + read data"),
    ("pytest_swapkl.audit.runner", "model_from_options", "load model"),
    ("pytest_swapkl.audit.runner", "open_journal", "open resume journal"),
    ("pytest_swapkl.audit.runner", "_measure", "probes"),
    ("pytest_swapkl.audit.runner", "noise_floor_for", "noise floor"),
    ("pytest_swapkl.audit.runner", "summarize", "summarize"),
    ("pytest_swapkl.analysis.stats", "bootstrap_means", "bootstrap means"),
    ("pytest_swapkl.analysis.stats", "interval", "percentile intervals"),
    ("pytest_swapkl.analysis.stats", "intervals", "percentile intervals"),
    ("pytest_swapkl.analysis.audit", "paired_order", "paired order"),
    ("pytest_swapkl.analysis.audit", "ranks_from_order", "rank intervals"),
    ("pytest_swapkl.analysis.audit", "tie_counts", "tie counts"),
    ("pytest_swapkl.analysis.audit", "_notes", "numeric-edge notes"),
    ("pytest_swapkl.analysis.audit", "suite_intervals", "suite intervals"),
    ("pytest_swapkl.analysis.intervals", "spearman_rows", "spearman rows"),
    ("pytest_swapkl.analysis.intervals", "kendall_rows", "kendall rows"),
    ("pytest_swapkl.analysis.intervals", "set_intervals", "set intervals"),
    ("pytest_swapkl.analysis.intervals", "ratio_by_distance", "ratio by distance"),
    ("pytest_swapkl.analysis.pruning", "validate_pruning", "pruning validation"),
    ("pytest_swapkl.analysis.pruning", "choose_sets", "choose sets"),
    ("pytest_swapkl.analysis.pruning", "_measure_sets", "measure pruned models"),
    ("pytest_swapkl.audit.runner", "audit_document", "audit document"),
    ("pytest_swapkl.commands.table", "render_audit", "render table"),
    ("pytest_swapkl.audit.results", "write_json", "write JSON"),
)


class PhaseTimer:
    """Wall seconds, CPU seconds (every thread of the process: on a shared machine the steadier of the two) and
    calls per phase, keyed by the path of enclosing phases (a phase called inside another nests)."""

    def __init__(self):
        self.seconds, self.calls, self.stack, self.order = defaultdict(float), defaultdict(int), [], []
        self.cpu = defaultdict(float)

    def wrap(self, function, label):
        def timed(*args, **kwargs):
            key = (*self.stack, label)
            if key not in self.seconds:
                self.order.append(key)
            self.stack.append(label)
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.cpu[key] += time.process_time() - cpu
                self.calls[key] += 1
                self.stack.pop()

        return timed

    def rows(self, whole: float, whole_cpu: float):
        rows = []
        for key in self.order:
            rows.append([". " * (len(key) - 1) + key[-1], self.calls[key], round(self.seconds[key], 3),
                         round(self.cpu[key], 3), f"{100 * self.seconds[key] / whole:.1f}%"])
        top = sum(seconds for key, seconds in self.seconds.items() if len(key) == 1)
        top_cpu = sum(seconds for key, seconds in self.cpu.items() if len(key) == 1)
        rows.append(["other (CLI, imports inside the call)", "", round(whole - top, 3), round(whole_cpu - top_cpu, 3),
                     f"{100 * (whole - top) / whole:.1f}%"])
        rows.append(["whole audit call", 1, round(whole, 3), round(whole_cpu, 3), "100.0%"])
        return rows


def install(timer: PhaseTimer) -> None:
    for module_name, function_name, label in PHASES:
        module = importlib.import_module(module_name)
        if not hasattr(module, function_name):
            continue
        setattr(module, function_name, timer.wrap(getattr(module, function_name), label))


def reuse_probes(path: Path) -> None:
    """The probes' measurement from `path` when it exists, else measured and saved there."""
    import pickle

    from pytest_swapkl.audit import runner

    measure = runner._measure

    def measured_once(*args, **kwargs):
        if path.exists():
            return pickle.loads(path.read_bytes())
        result = measure(*args, **kwargs)
        path.write_bytes(pickle.dumps(result))
        return result

    runner._measure = measured_once


def tiny_checkpoint(folder: Path, n_layers: int, seed: int) -> Path:
    """A random-weight Llama of n_layers, built from its config and saved (safetensors): a checkpoint folder."""
    path = folder / f"llama-{n_layers}-layers-seed{seed}"
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model("llama", vocab_size=97, hidden_size=32, num_hidden_layers=n_layers,
                                  num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                                  max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=0,
                                  eos_token_id=0, pad_token_id=1)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # default inits leave every layer near the identity: widen them so probes differ
        for name, param in model.named_parameters():
            param.normal_(1.0 if "norm" in name else 0.0, 0.1 if "norm" in name else 0.15)
    model.save_pretrained(path)
    return path


def random_ids(folder: Path, n_sequences: int, seq_len: int, vocab: int = 97) -> Path:
    """Pre-tokenized ids (a config-built model has no tokenizer), used by the audit exactly as given."""
    import numpy as np

    path = folder / f"ids_{n_sequences}x{seq_len}.npy"
    if not path.exists():
        np.save(path, np.random.default_rng(0).integers(2, vocab, (n_sequences, seq_len)).astype(np.int64))
    return path


def without(document: dict, paths) -> dict:
    document = json.loads(json.dumps(document))
    for path in paths:
        parent = document
        for key in path[:-1]:
            parent = parent.get(key, {}) if isinstance(parent, dict) else {}
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return document


def differences(a, b, where="") -> list[str]:
    """Where two JSON values differ (exactly: floats compared bit for bit through their JSON text)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}.{key}: only in one" for key in sorted(set(a) ^ set(b))]
        for key in sorted(set(a) & set(b)):
            found += differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [line for n, (x, y) in enumerate(zip(a, b)) for line in differences(x, y, f"{where}[{n}]")]
    return [] if json.dumps(a) == json.dumps(b) else [f"{where}: {a!r} vs {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--prune-k", type=int, default=None,
                        help="pruning validation budgets (0: none; default 4 on the tiny model, 0 with --checkpoint)")
    parser.add_argument("--checkpoint", default=None, help="a real model to audit instead of the tiny one")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="the audit's --dtype (default: its own)")
    parser.add_argument("--tokens", type=int, default=None, help="with --checkpoint (default: sequences x seq-len)")
    parser.add_argument("--cache", default=None, help="user cache folder kept between runs (default: a fresh one)")
    parser.add_argument("--models-dir", default=os.path.join(tempfile.gettempdir(), "swapkl-overhead-models"))
    parser.add_argument("--reuse-probes", default=None, metavar="PICKLE",
                        help="measure the probes once, keep them here, and take them from here on later runs")
    parser.add_argument("--json-out", default=None, help="keep this run's audit JSON here")
    parser.add_argument("--compare-json", default=None, help="an earlier run's audit JSON: must be equal")
    args = parser.parse_args()

    started = time.perf_counter()
    import torch  # noqa: F401  (timed apart: every audit pays it once)
    from tabulate import tabulate

    from pytest_swapkl.commands.cli import main as swapkl

    imports = time.perf_counter() - started
    folder = Path(args.models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    prune_k = args.prune_k if args.prune_k is not None else (0 if args.checkpoint else 4)
    tokens = args.tokens or args.sequences * args.seq_len
    if args.checkpoint:  # the bundled corpus is the data, and the held-out text is its own
        argv = ["audit", args.checkpoint, "--prune-k", str(prune_k)] if prune_k else ["audit", args.checkpoint]
    else:
        data = random_ids(folder, args.sequences, args.seq_len)
        argv = ["audit", str(tiny_checkpoint(folder, args.layers, seed=0)), "--data", str(data)]
        if prune_k:  # other ids: the pruning costs' held-out text
            argv += ["--prune-k", str(prune_k), "--heldout", str(random_ids(folder, args.sequences, args.seq_len + 1))]
    argv += ["--pairs", "all", "--device", args.device, "--tokens", str(tokens), "--seq-len", str(args.seq_len),
             "--bootstrap", str(args.bootstrap)] + (["--dtype", args.dtype] if args.dtype else [])
    argv += ["--no-resume"] if args.cache else []  # a kept cache holds the journal: the probes must run again
    if args.reuse_probes:
        reuse_probes(Path(args.reuse_probes))
    timer = PhaseTimer()
    install(timer)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_CACHE_HOME"] = args.cache or scratch  # default: no compile cache from an earlier run
        os.environ["SWAPKL_PROGRESS"] = "off"
        out = Path(args.json_out) if args.json_out else Path(scratch) / "audit.json"
        argv += ["--json", str(out)]
        call_started, call_cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # the audit's own table: not what this benchmark shows
        try:
            code = swapkl(argv)
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        whole, whole_cpu = time.perf_counter() - call_started, time.process_time() - call_cpu
        document = json.loads(out.read_text())
    if code != 0:
        print(f"swapkl audit exited {code}")
        return code
    print(f"swapkl {' '.join(argv[:-2])}; python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    print(f"imports before the call (torch, transformers, pytest_swapkl): {imports:.3f} s")
    print(f"load average (1 min) {load:.1f} before the call, {os.getloadavg()[0]:.1f} after")
    print(tabulate(timer.rows(whole, whole_cpu), headers=["phase", "calls", "seconds", "CPU s", "share"]))
    print(f"audit JSON: seconds {document['seconds']}, measure_seconds {document['measure_seconds']}")
    if args.compare_json:
        found = differences(without(json.loads(Path(args.compare_json).read_text()), VARYING),
                            without(document, VARYING))
        excluded = ", ".join(".".join(path) for path in VARYING)
        if found:
            print(f"audit JSON differs from {args.compare_json} ({len(found)} places; {excluded} excluded):")
            print("\n".join(found[:20]))
            return 1
        print(f"audit JSON equal to {args.compare_json} bit for bit, except {excluded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
