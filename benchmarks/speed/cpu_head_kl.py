"""The head + KL step at SmolLM2-135M's shape (49,152 x 576 head, 4 x 256 rows, random weights), 1 thread.

    python benchmarks/speed/cpu_head_kl.py 16384          # the head's vocabulary chunk
    python benchmarks/speed/cpu_head_kl.py 16384 keep     # with engine/memory.py's keep_freed_memory first

Prints user and system CPU seconds of 6 probes' kl_and_nll, the minor page faults, the peak RSS and the first
probe's KLs (equal across settings to float32 rounding). Run it at a commit before issue 36's change (the
chunk used as given) and after it (the CPU caps the chunk: ``Head.cpu_width``) to compare.
"""

import resource
import sys
import time

import torch

from pytest_swapkl.engine.divergence import Head, base_distribution, kl_and_nll


def main() -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    if "keep" in sys.argv:
        from pytest_swapkl.engine.memory import keep_freed_memory

        print("keep_freed_memory:", keep_freed_memory())
    chunk = int(sys.argv[1])
    torch.manual_seed(0)
    vocab, hidden, batch, seq = 49152, 576, 4, 256
    head = Head([torch.nn.LayerNorm(hidden)], torch.randn(vocab, hidden) * 0.05, None, None, chunk)
    base = base_distribution(head, torch.randn(batch, seq, hidden))
    labels = torch.randint(0, vocab, (batch, seq - 1))
    states = [torch.randn(batch, seq, hidden) for _ in range(3)]
    kl_and_nll(head, base, states[0], labels)  # warm-up
    before, cpu = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    out = [kl_and_nll(head, base, state, labels) for state in states * 2]
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print(f"chunk {chunk}: user {user:.2f} s, sys {system:.2f} s, "
          f"{after.ru_minflt - before.ru_minflt} minor faults, CPU per probe {(time.process_time() - cpu) / 6:.3f} s, "
          f"peak RSS {after.ru_maxrss >> 10} MiB, KL {out[0][0].tolist()}")


if __name__ == "__main__":
    main()
