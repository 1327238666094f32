"""1 against 2 torch threads on 2 cores while another process keeps one of them busy a given share of the time.

    taskset -c 0,1 python benchmarks/speed/cpu_threads_load.py 0,0.5,0.7,1.0

SmolLM2-135M's shape (gpu_scale.CONFIGS, random weights, float32), 2 x 256 random ids, its first 6 adjacent-pair
probes on the fast path (layer replays and the head + KL step, as the audit runs them). For each duty d a burner
process pinned to core 1 spins d of every 100 ms (an average load of about d); the probes run with 1 thread, then
2, then 1, then 2 (OMP_WAIT_POLICY=PASSIVE, as the CLI sets it). Prints CPU and wall seconds of each run and the
1-minute load average. Where the machine has other jobs the duty is not the whole load: run it on idle cores.
"""
import multiprocessing
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "gpu"))

import torch  # noqa: E402
from gpu_scale import CONFIGS  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

from pytest_swapkl import engine  # noqa: E402
from pytest_swapkl import probes as P  # noqa: E402


def burn(duty: float, stop) -> None:
    os.sched_setaffinity(0, {1})
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < 0.1 * duty:
            pass
        time.sleep(0.1 * (1 - duty))


def main() -> None:
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    model = LlamaForCausalLM(CONFIGS["smollm2-135m"]()).eval()
    n = model.config.num_hidden_layers
    probes = P.audit_probes(P.parse_pairs("adjacent", n), n)[:6]
    ids = torch.randint(0, model.config.vocab_size, (2, 256))
    for duty in [float(d) for d in sys.argv[1].split(",")]:
        stop = multiprocessing.Event()
        burner = multiprocessing.Process(target=burn, args=(duty, stop)) if duty > 0 else None
        if burner:
            burner.start()
        time.sleep(2)
        for threads in (1, 2, 1, 2):
            torch.set_num_threads(threads)
            cpu, wall = time.process_time(), time.perf_counter()
            engine.measure(model, ids, probes, path="fast", progress=None, notice=lambda s: None)
            print(f"duty {duty:.1f} threads {threads}: {time.process_time() - cpu:.1f} CPU s, "
                  f"{time.perf_counter() - wall:.1f} wall s, load {os.getloadavg()[0]:.2f}", flush=True)
        if burner:
            stop.set()
            burner.join()


if __name__ == "__main__":
    main()
