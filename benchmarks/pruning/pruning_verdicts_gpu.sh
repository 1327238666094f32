#!/usr/bin/env bash
# Pruning verdicts after issue 15 on one H200: held-out costs, paired verdicts, the measured bfloat16 noise floor.
# From the repository root, with the two GGUF files beside it as smol.gguf and gemma.gguf (as in docs/benchmarks.md):
#     bash benchmarks/pruning/pruning_verdicts_gpu.sh "$OUT"
# Each audit: all pairs, 32 x 256 calibration tokens of the bundled corpus and 32 x 256 held-out ones, pruning at
# k = 1..4 by all six methods; then the before/after verdict table (before: recomputed from the calibration costs
# by the old rule). About 2-4 minutes per model on an H200.
set -euo pipefail
out=${1:?usage: pruning_verdicts_gpu.sh OUT_FOLDER}
for spec in smollm2-135m=smol.gguf gemma3-270m=gemma.gguf; do
    name=${spec%%=*}; gguf=${spec#*=}
    python -m pytest_swapkl audit "$gguf" --device cuda --dtype bfloat16 --pairs all --tokens 8192 --seq-len 256 \
        --prune-k 4 --prune-methods replacement,interchange,removal,block_influence,angular,sleb --no-resume \
        --json "$out/after_$name.json" > "$out/after_$name.txt" 2> "$out/after_$name.err"
done
python benchmarks/pruning/pruning_verdicts.py "$out"/after_smollm2-135m.json "$out"/after_gemma3-270m.json > "$out/verdicts.txt"
cat "$out/verdicts.txt"
