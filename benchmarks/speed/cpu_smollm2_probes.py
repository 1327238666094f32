"""SmolLM2-135M's fast path, 4 x 256 tokens, the first 12 adjacent-pair probes, 1 thread: user and system CPU.

    PYTHONPATH=/tmp/before python benchmarks/speed/cpu_smollm2_probes.py before   # an older commit's package
    PYTHONPATH=. python benchmarks/speed/cpu_smollm2_probes.py after

(the older package exported with ``git archive COMMIT pytest_swapkl | tar -x -C /tmp/before``); run both in one
shell line so that they see the same load. Prints the first three KLs to compare the numbers as well.
"""
import resource
import sys
import time

import torch

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

torch.set_num_threads(1)

torch.set_num_threads(1)
m = load_model("smollm2-135m", dtype="float32", device="cpu")
cal = load_calibration("demo", m.tokenizer, tokens=1024, seq_len=256, vocab_size=m.vocab_size,
                       max_positions=m.max_positions)
ids = cal.input_ids[:4]
n = m.n_layers
probes = P.audit_probes(P.parse_pairs("adjacent", n), n)[:12]
r0, w = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
out = engine.measure(m.model, ids, probes, path="fast", progress=None, notice=lambda s: None)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(sys.argv[1], f"4 x 256 tokens, {len(probes)} probes: user {r1.ru_utime - r0.ru_utime:.1f} "
      f"sys {r1.ru_stime - r0.ru_stime:.1f} wall {time.perf_counter() - w:.1f} faults {r1.ru_minflt - r0.ru_minflt} "
      f"kl {[round(out.kl(p), 7) for p in probes[:3]]}", flush=True)
