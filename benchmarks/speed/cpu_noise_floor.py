"""The noise floor's cost and value on SmolLM2-135M, the earlier design against the current one, in one process.

    PYTHONPATH=. python benchmarks/speed/cpu_noise_floor.py [threads]

Measures the first 12 adjacent-pair probes on 4 x 256 tokens of the bundled text (the fast path, float32), then
the floor of their 8 smallest twice: 4 whole sequences (the design before issue 36) and the default sample
(``noise.DEFAULT_SEQUENCES`` sequences cut to ``noise.DEFAULT_TOKENS`` tokens). Prints CPU and wall seconds, the
floor and each probe's audit and float64 reference KL.
"""
import os
import sys
import time

import torch

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.analysis import noise
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
m = load_model("smollm2-135m", dtype="float32", device="cpu")
cal = load_calibration("demo", m.tokenizer, tokens=1024, seq_len=256, vocab_size=m.vocab_size,
                       max_positions=m.max_positions)
ids, n = cal.input_ids[:4], m.n_layers
probes = P.audit_probes(P.parse_pairs("adjacent", n), n)[:12]
measurement = engine.measure(m.model, ids, probes, path="fast", progress=None, notice=lambda s: None)
options = {"path": "fast", "notice": lambda s: None}
for name, kwargs in (("before: 4 x 256", {"n_sequences": 4, "n_tokens": None}), ("after: default", {})):
    cpu, wall = time.process_time(), time.perf_counter()
    floor = noise.measure_noise_floor(m.model, ids, measurement, engine_options=options, **kwargs)
    print(f"{name}: {time.process_time() - cpu:.1f} CPU s, {time.perf_counter() - wall:.1f} wall s, load "
          f"{os.getloadavg()[0]:.1f}, floor {floor.floor:.3g}, max rel {floor.max_rel_diff:.3g}, {floor.reason}",
          flush=True)
    for entry in floor.probes:
        print(f"  {entry['probe']}: audit {entry['audit']:.9g} reference {entry['reference']:.9g} "
              f"diff {entry['abs_diff']:.3g}", flush=True)
