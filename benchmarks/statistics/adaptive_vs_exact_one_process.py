"""Adaptive vs exact precision in one process on one named model: the model loaded once, the same calibration
data, each audit timed (wall clock), and a table: time, probe-sequences measured, and the population verdicts
adaptive mode settled next to the exact audit's sample verdicts (top-k sets of R, I and removal, the Spearman
threshold). Runs exact, adaptive, then (``--repeats 2``) both again, so that first-call costs (compiling, caches)
show up as the difference between a mode's two runs.

    python benchmarks/statistics/adaptive_vs_exact_one_process.py demo --device cpu --tokens 2048 --seq-len 64
    python benchmarks/statistics/adaptive_vs_exact_one_process.py smollm2-135m --device cuda --tokens 32768 \
        --seq-len 512 --repeats 2

Any further flags are `swapkl audit`'s (--pairs, --prune-k, --seed, --adaptive-alpha, ...).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import adaptive  # noqa: E402
from pytest_swapkl.audit.runner import locate, model_from_options, run_audit  # noqa: E402
from pytest_swapkl.commands.cli import build_parser  # noqa: E402
from pytest_swapkl.engine.probes import parse_pairs  # noqa: E402


def sample_verdicts(audit, tests: adaptive.Tests, pairs, n_layers: int) -> dict:
    """The verdicts adaptive mode settles, read from an audit's own means (what exact mode reports)."""
    assert [(p.i, p.j) for p in audit.pairs] == list(pairs), "the audit's pairs in another order"
    values = ([p.replacement_ij.value for p in audit.pairs] + [p.replacement_ji.value for p in audit.pairs]
              + [p.interchange.value for p in audit.pairs] + [r.kl.value for r in audit.removals])
    table = np.array(values, dtype=np.float64)[:, None]
    return tests.decisions(pairs, n_layers).estimates(table, np.ones(len(values), dtype=np.int64))


def main() -> None:
    argv = sys.argv[1:]
    repeats = 1
    if "--repeats" in argv:
        at = argv.index("--repeats")
        repeats = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    rows, verdict_rows = [], []
    with tempfile.TemporaryDirectory() as journals:
        base = build_parser().parse_args(["audit", *argv, "--no-resume"])
        located = locate(base)
        loaded = model_from_options(base, located.checkpoint)
        n_layers = loaded.n_layers
        pairs = parse_pairs(base.pairs, n_layers)
        results = {}
        for round_ in range(repeats):
            for precision in ("exact", "adaptive"):
                args = build_parser().parse_args(["audit", *argv, "--no-resume", "--precision", precision])
                started = time.perf_counter()
                document, audit, _ = run_audit(args, loaded=loaded, located=located, journal_dir=Path(journals))
                wall = time.perf_counter() - started
                info = document.get("adaptive") or {}
                n_probes = 3 * len(pairs) + n_layers
                measured = info.get("probe_sequences", n_probes * located.calibration.input_ids.shape[0])
                exact_count = n_probes * located.calibration.input_ids.shape[0]
                rows.append([precision, round_ + 1, f"{wall:.1f}", measured, exact_count,
                             f"{exact_count / measured:.2f}"])
                results[precision] = (audit, info)
        tests = adaptive.Tests(prune_k=base.prune_k, alpha=base.adaptive_alpha,
                               replacement_reduce=base.replacement_reduce)
        exact_verdicts = sample_verdicts(results["exact"][0], tests, pairs, n_layers)
        population = results["adaptive"][1].get("population_verdicts", {})
        for name, value in exact_verdicts.items():
            entry = population.get(name, {})
            got = entry.get("value")
            verdict_rows.append([name, value, tuple(got) if isinstance(got, list) else got, entry.get("settled")])
    print(f"{base.model}: {len(pairs)} pairs, {n_layers} layers, "
          f"{located.calibration.input_ids.shape[0]} sequences x {located.calibration.input_ids.shape[1]} tokens")
    print(tabulate(rows, headers=["precision", "run", "wall s", "probe-sequences", "exact probe-sequences",
                                  "fewer"]))
    print()
    print(tabulate(verdict_rows, headers=["verdict", "exact (sample)", "adaptive (population)", "settled"]))


if __name__ == "__main__":
    main()
