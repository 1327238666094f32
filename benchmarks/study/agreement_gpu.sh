#!/usr/bin/env bash
# Issue 15 part A on a GPU: all pairs of each real model measured once (per-sequence KLs kept), then the verdict
# tables before/after, the suite intervals and the nulls, all from the kept numbers.
# Usage: OUT=/folder bash benchmarks/study/agreement_gpu.sh MODEL [MODEL ...]
#   MODEL: smollm2-135m, gemma3-270m (named, from the cache) or a .gguf path / checkpoint folder
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-agreement}
mkdir -p "$OUT"
[ $# -eq 0 ] && set -- smollm2-135m gemma3-270m
for model in "$@"; do
  name=$(basename "$model" | sed 's/\.gguf$//')
  python3 benchmarks/study/agreement_measure.py --model "$model" --pairs all --device cuda --dtype float32 \
      --out "$OUT/${name}_all.npz" 2>&1 | tail -2
done
python3 benchmarks/study/agreement_tolerances.py "$OUT"/*_all.npz > "$OUT/tolerances_real_all.txt" 2>&1
for file in "$OUT"/*_all.npz; do
  python3 benchmarks/study/agreement_nulls.py "$file" --trials 10 --resamples 400 > "${file%.npz}_nulls.txt" 2>&1
done
cat "$OUT/tolerances_real_all.txt" "$OUT"/*_nulls.txt
