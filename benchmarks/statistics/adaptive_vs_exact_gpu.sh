#!/usr/bin/env bash
# Issue 15 part C on one GPU: adaptive vs exact through the pytest plugin (fresh directory, no cache, no resume),
# all pairs, the demo model and both real models, verdict tables side by side.
# Usage on the GPU machine, from the repo root: OUT=/some/folder bash benchmarks/statistics/adaptive_vs_exact_gpu.sh STAGE
#   STAGE demo:    demo, 8192 tokens (32 sequences) and 262144 tokens (1024 sequences)
#   STAGE smollm2: smollm2-135m, 65536 tokens (256 sequences x 256)
#   STAGE gemma3:  gemma3-270m, 65536 tokens (256 sequences x 256)
# Each stage stays under 8 minutes on an H200 by the timings in benchmarks/results/real_models_gpu/.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-gpu}
mkdir -p "$OUT"
run() {  # NAME MODEL TOKENS
    python3 benchmarks/statistics/adaptive_vs_exact.py --models "$2" --pairs all --device cuda --tokens "$3" --seq-len 256 \
        --compile off --out "$OUT/$1" > "$OUT/$1.log" 2>&1
    tail -4 "$OUT/$1/adaptive_vs_exact.txt"
}
case "${1:-demo}" in
    demo) run demo_8192 demo 8192; run demo_262144 demo 262144 ;;
    smollm2) run smollm2_65536 smollm2-135m 65536 ;;
    gemma3) run gemma3_65536 gemma3-270m 65536 ;;
esac
