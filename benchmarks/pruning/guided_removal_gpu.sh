#!/usr/bin/env bash
# Guided removal on the real models, one H200: every search x guide for k = 1..K against exhaustive search.
# Usage (repository root, $OUT an empty folder, the GGUF files beside the checkout as for real_models_gpu.py):
#   OUT=... SMOL=smol.gguf bash benchmarks/pruning/guided_removal_gpu.sh smollm2-text      # kl + ppl, k <= 4
#   OUT=... SMOL=smol.gguf bash benchmarks/pruning/guided_removal_gpu.sh smollm2-accuracy  # accuracy, k <= 3
#   OUT=... GEMMA=gemma.gguf bash benchmarks/pruning/guided_removal_gpu.sh gemma3          # kl + ppl + accuracy, k <= 4
# Each part stops itself after 450 s (timeout), inside the 8-minute limit of one command.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-guided}
mkdir -p "$OUT"
COMMON=(--device cuda --tokens 4096 --seq-len 128 --items 128 --batch-size 64 --out "$OUT")
case "${1:-}" in
  smollm2-text)      timeout 450 python3 benchmarks/pruning/guided_removal.py --model "${SMOL:-smol.gguf}" --name smollm2-135m-text \
                       --objectives kl,ppl --max-k 4 "${COMMON[@]}" ;;
  smollm2-accuracy)  timeout 450 python3 benchmarks/pruning/guided_removal.py --model "${SMOL:-smol.gguf}" --name smollm2-135m-accuracy \
                       --objectives accuracy --max-k 3 "${COMMON[@]}" ;;
  gemma3)            timeout 450 python3 benchmarks/pruning/guided_removal.py --model "${GEMMA:-gemma.gguf}" --name gemma3-270m \
                       --objectives kl,ppl,accuracy --max-k 4 "${COMMON[@]}" ;;
  *) echo "usage: bash benchmarks/pruning/guided_removal_gpu.sh smollm2-text|smollm2-accuracy|gemma3" >&2; exit 2 ;;
esac
