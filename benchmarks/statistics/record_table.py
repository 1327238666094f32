"""Measure every audit probe of a model on every calibration sequence once (an exact audit) and keep the
per-sequence table, so that adaptive mode can be replayed on it many times (benchmarks/statistics/adaptive_replay.py).

    python benchmarks/statistics/record_table.py demo --pairs all --device cpu \\
        --out benchmarks/results/adaptive/demo_all.npz
    python benchmarks/statistics/record_table.py smollm2-135m --pairs window:2 --tokens 1024 --seq-len 32 \\
        --device cpu --out benchmarks/results/adaptive/smollm2_window2.npz
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl import engine, options  # noqa: E402
from pytest_swapkl.audit import runner  # noqa: E402
from pytest_swapkl.engine.probes import audit_probes, parse_pairs  # noqa: E402
from pytest_swapkl.safe_files import check_outputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    options.add_to_argparse(parser)
    parser.add_argument("--out", type=Path, required=True, help="the .npz table to write")
    args = parser.parse_args()
    check_outputs([("--out", str(args.out))], options.audit_inputs(args), make_parents=True)
    located = runner.locate(args)
    loaded = runner.model_from_options(args, located.checkpoint)
    pairs = parse_pairs(args.pairs, loaded.n_layers)
    probes = audit_probes(pairs, loaded.n_layers)
    started = time.perf_counter()
    measurement = engine.measure(loaded.model, located.calibration.input_ids, probes, path=args.path,
                                 batch_size=args.batch_size, compile=args.compile,
                                 attention_type=args.attention_type)
    seconds = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, kl=np.stack([measurement[p].kl_per_seq for p in probes]),
                        nll=np.stack([measurement[p].nll_per_seq for p in probes]),
                        base_nll=measurement.base_nll_per_seq,
                        info=json.dumps({"model": args.model, "pairs": [list(p) for p in pairs],
                                         "n_layers": loaded.n_layers, "probes": [p.name for p in probes],
                                         "tokens": args.tokens, "seq_len": args.seq_len, "seed": args.seed,
                                         "device": args.device, "dtype": str(loaded.dtype),
                                         "noise_floor": measurement.noise_floor, "seconds": seconds}))
    print(f"{len(probes)} probes x {measurement.n_sequences} sequences in {seconds:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
