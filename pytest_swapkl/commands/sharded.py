"""`swapkl audit` as one worker of many: under torchrun (every rank a worker, rank 0 merges) or `--shard I/N`.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; the ranks meet through torch.distributed on the gloo
backend, which only carries the shard documents to rank 0 (`gather_object`): the numbers never need
a GPU collective, and gloo works across nodes, on CPUs and next to any GPU. Each rank takes the GPU
of its LOCAL_RANK unless --device says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta

from ..errors import InputError

# A rank waits at the gather for the slowest one: as long as the largest audit may take.
GATHER_TIMEOUT = timedelta(hours=48)


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ


def sharded_audit(args: argparse.Namespace) -> int:
    from ..audit.sharding import check_shardable
    from ..engine.manifest import parse_shard

    check_shardable(args)
    if under_torchrun():
        if args.shard:
            raise InputError("--shard and torchrun both split the audit: drop --shard under torchrun")
        return _torchrun_audit(args)
    rank, world = parse_shard(args.shard)
    if not args.json:
        raise InputError("--shard I/N needs --json SHARD.json: where this shard's numbers go for swapkl merge")
    from ..audit.results import write_json
    from ..audit.sharding import run_shard
    from ..progress import Progress

    progress = Progress.for_stderr()
    try:
        shard = run_shard(args, rank, world, progress=progress)
    finally:
        progress.close()
    print(f"shard {rank}/{world} written to {write_json(shard, args.json)}: merge every shard with "
          f"swapkl merge SHARD... --json OUT")
    return 0


def _torchrun_audit(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from ..audit.sharding import merge_shards, run_shard

    started = time.perf_counter()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if torch.cuda.is_available() and getattr(args, "device_map", None) and not getattr(args, "device_memory", None):
        args.device_memory = _gpus_of_this_rank(torch)
    elif args.device == "auto" and torch.cuda.is_available() and not getattr(args, "device_map", None):
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)
    here: dict = {}  # this rank's loaded model and calibration: rank 0 measures the noise floor with them
    try:
        progress = _rank_progress(rank)
        try:
            shard = run_shard(args, rank, world, progress=progress, loaded_out=here)
        finally:
            if progress is not None:
                progress.close()
        gathered = [None] * world if rank == 0 else None
        dist.gather_object(shard, gathered, dst=0)
        if rank != 0:
            return 0
        from ..audit.runner import noise_floor_for

        document, audit = merge_shards(
            [(f"rank {n}", item) for n, item in enumerate(gathered)], seconds=time.perf_counter() - started,
            noise_for=lambda measurement: noise_floor_for(args, here["loaded"], here["calibration"], measurement))
    finally:
        dist.destroy_process_group()
    from .table import render_audit

    print(render_audit(document, audit))
    if args.json:
        from ..audit.results import write_json

        print(f"\naudit JSON written to {write_json(document, args.json)}")
    sys.stdout.flush()
    return 0


def _gpus_of_this_rank(torch) -> str:
    """--device-memory for a model placed across this rank's share of the host's GPUs (8 GPUs, 4 ranks: GPUs 2k and
    2k+1 for local rank k), 90% of each; the CPU gets nothing, so nothing is offloaded by surprise."""
    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    per_rank = max(1, torch.cuda.device_count() // local_world)
    first = (local_rank * per_rank) % torch.cuda.device_count()
    sizes = [f"{gpu}={int(torch.cuda.mem_get_info(gpu)[1] * 0.9)}" for gpu in range(first, first + per_rank)]
    return ",".join([*sizes, "cpu=0"])


def _rank_progress(rank: int):
    """Rank 0 shows its share's progress; the other ranks' bars would only interleave with it."""
    if rank != 0:
        return None
    from ..progress import Progress

    return Progress.for_stderr()
