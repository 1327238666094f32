"""Fast-path CPU and wall time of one model's probes at several thread counts, batch sizes and stacks.

    python benchmarks/speed/cpu_batch_size.py smollm2-135m 4 256 20-21,25-26,28-29 1,1,1 1,4,1 2,1,1 2,4,1

Arguments: MODEL SEQUENCES SEQ_LEN PAIRS, then THREADS,BATCH,STACK for each run (random ids, float32, the
audit's probes for PAIRS: swaps and every removal). CPU time counts every thread of the process: on a shared
machine it is the steadier number; the load average is printed after each run.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from pytest_swapkl import engine
from pytest_swapkl.engine import probes as P
from pytest_swapkl.inputs.loading import load_model


def main() -> None:
    name, sequences, seq_len, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    loaded = load_model(name, dtype="float32", device="cpu")
    n = loaded.n_layers
    probes = P.audit_probes(P.parse_pairs(pairs, n), n)
    ids = torch.randint(0, loaded.vocab_size, (sequences, seq_len), generator=torch.Generator().manual_seed(0))
    print(f"{name}: {len(probes)} probes, {sequences} x {seq_len} tokens, load {os.getloadavg()[0]:.1f}")
    for spec in sys.argv[5:]:
        threads, batch, stack = (int(x) for x in spec.split(","))
        torch.set_num_threads(threads)
        cpu, wall = time.process_time(), time.perf_counter()
        engine.measure(loaded.model, ids, probes, path="fast", batch_size=batch, stack=stack, progress=None,
                       notice=lambda line: None)
        print(f"threads {threads} batch {batch} stack {stack}: CPU {time.process_time() - cpu:.1f} s, "
              f"wall {time.perf_counter() - wall:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
