#!/usr/bin/env bash
# Issues 8 and 9 on a GPU, in one call: the out-of-memory tests, adaptive vs exact verdicts on the demo model
# and on the pruning study's trained model, and the run-to-run spread of an audit on CUDA.
# Usage on the GPU machine: OUT=/some/folder bash benchmarks/gpu_adaptive_check.sh
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-gpu}
mkdir -p "$OUT"
python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py -k "out_of_memory or budget" 2>&1 | tail -3 > "$OUT/gpu_oom_tests.log"
python3 scripts/reproduction_study.py --train-only --out /tmp/repro > "$OUT/train.log" 2>&1
final=$(grep -o '"final_checkpoint": "[^"]*"' "$OUT/train.log" | cut -d'"' -f4)
python3 benchmarks/adaptive_vs_exact.py --models "demo,$final" --pairs all --device cuda --prune-k 4 --out "$OUT" > /dev/null
python3 benchmarks/determinism.py --runs 3 -- demo --pairs all --device cuda > "$OUT/determinism_cuda.txt"
cat "$OUT/gpu_oom_tests.log" "$OUT/determinism_cuda.txt"; tail -6 "$OUT/adaptive_vs_exact.txt"
