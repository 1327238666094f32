#!/usr/bin/env bash
# Issue 34: adaptive vs exact in one process on one GPU (benchmarks/statistics/adaptive_vs_exact_one_process.py):
# the model loaded once, exact then adaptive then both again (--repeats 2: the second pair is the one to quote,
# the first pays compiling), a table of wall times, probe-sequences and the population verdicts.
# Usage on the GPU machine, from the repo root: OUT=/some/folder bash benchmarks/statistics/adaptive_vs_exact_gpu.sh STAGE
#   STAGE demo:    demo, 8192 tokens (32 sequences x 256); also runs on CPU with DEVICE=cpu
#   STAGE smollm2: smollm2-135m, all pairs, 32768 tokens (64 sequences x 512, as the study tables)
#   STAGE gemma3:  gemma3-270m, all pairs, 32768 tokens (64 sequences x 512)
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-gpu}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
run() {  # NAME MODEL TOKENS SEQ_LEN
    python3 benchmarks/statistics/adaptive_vs_exact_one_process.py "$2" --pairs all --device "$DEVICE" \
        --tokens "$3" --seq-len "$4" --repeats 2 > "$OUT/$1.txt" 2> "$OUT/$1.log"
    cat "$OUT/$1.txt"
}
case "${1:-demo}" in
    demo) run demo_8192 demo 8192 256 ;;
    smollm2) run smollm2_64x512 smollm2-135m 32768 512 ;;
    gemma3) run gemma3_64x512 gemma3-270m 32768 512 ;;
esac
