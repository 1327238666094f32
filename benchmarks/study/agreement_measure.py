"""Measure one audit and keep its per-sequence probe numbers, so the agreement rules can be studied offline.

The audit JSON keeps distances and intervals, not the per-sequence KLs the paired bootstrap needs;
this script saves them (one .npz per model) for `benchmarks/study/agreement_tolerances.py`, which re-judges
the audit under any tolerance without measuring again.

    python benchmarks/study/agreement_measure.py --model demo --pairs all \
        --out benchmarks/results/agreement/demo_all.npz
    python benchmarks/study/agreement_measure.py --model smollm2-135m --pairs window:2 --tokens 2048 \
        --out benchmarks/results/agreement/smollm2_window2_cpu.npz
    # --json PATH also keeps the audit document (with --prune-k: the pruning verdicts on held-out text)
    # on a GPU (all pairs, the default 8192 tokens):
    python benchmarks/study/agreement_measure.py --model gemma3-270m --pairs all --device cuda --out $OUT/gemma3_all.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl import options as swapkl_options  # noqa: E402
from pytest_swapkl.audit.results import write_json  # noqa: E402
from pytest_swapkl.audit.runner import run_audit  # noqa: E402
from pytest_swapkl.console import quiet  # noqa: E402
from pytest_swapkl.engine.probes import interchange, removal, replacement  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--out", required=True, help=".npz path to write")
    swapkl_options.add_to_argparse(parser)
    options = parser.parse_args()
    options.no_resume, options.precision = True, "exact"
    started = time.perf_counter()
    document, audit, _ = run_audit(options, notice=quiet)
    measurement, n_layers = audit.measurement, document["model"]["n_layers"]
    pairs = [(p.i, p.j) for p in audit.pairs]

    def per_seq(probe) -> np.ndarray:
        return measurement[probe].kl_per_seq

    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        options.out, pairs=np.asarray(pairs, dtype=np.int64).reshape(-1, 2), n_layers=n_layers,
        replacement_ij=np.stack([per_seq(replacement(i, j, n_layers)) for i, j in pairs]),
        replacement_ji=np.stack([per_seq(replacement(j, i, n_layers)) for i, j in pairs]),
        interchange=np.stack([per_seq(interchange(i, j, n_layers)) for i, j in pairs]),
        removal=np.stack([per_seq(removal([layer], n_layers)) for layer in range(n_layers)]),
        noise_floor=measurement.noise_floor or 0.0, model=options.model, pairs_spec=options.pairs,
        tokens=options.tokens, seq_len=options.seq_len, dtype=document["model"]["dtype"],
        device=document["model"]["device"])
    if options.json:  # the audit document too (pruning verdicts, intervals), as `swapkl audit --json` writes it
        write_json(document, options.json)
    print(f"{options.model}: {len(pairs)} pairs, {measurement.n_sequences} sequences x {measurement.seq_len} tokens, "
          f"{time.perf_counter() - started:.0f} s -> {options.out}")


if __name__ == "__main__":
    main()
