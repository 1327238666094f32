#!/usr/bin/env bash
# Healing on the two real models, on one GPU (issue 33): each model pruned by one guide at k layers (the paper's
# fine-tuning section removes 1 and 3 interchange-guided layers; the replacement-guided 3 beside them), saved with
# --save-pruned, then healed with the paper's LoRA recipe (rank 16, alpha 32, q/k/v/o, AdamW 2e-4, wd 0.01,
# 200 steps of one 128-token sequence) against the same recipe on the unpruned model; net recovery with paired
# intervals over held-out sequences. float32 throughout.
# usage: OUT=DIR STORE=DIR [RUNS="guide:k ..."] bash benchmarks/gpu/heal_real.sh smollm2|gemma3
#   STORE holds the two GGUF files cut by `benchmarks/gpu/real_contracts_and_probes.sh setup`.
set -u
export PYTHONPATH=$PWD SWAPKL_CACHE_DIR=$STORE/cache SWAPKL_PROGRESS=off HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0
name=$1
case $name in
  smollm2) gguf=$STORE/smollm2-135m.gguf ;;
  gemma3) gguf=$STORE/gemma3-270m.gguf ;;
esac
for run in ${RUNS:-interchange:1 interchange:3 replacement:3}; do
    guide=${run%:*} k=${run#*:} tag=${name}_${guide}_k${run#*:}
    rm -rf "$STORE/pruned_$tag"
    python -m pytest_swapkl prune "$gguf" --guide $guide --search one-shot --budgets $k --tokens 16384 \
      --seq-len 256 --dtype float32 --save-pruned "$STORE/pruned_$tag" --json "$OUT/prune_$tag.json" \
      > "$OUT/prune_$tag.txt" 2>&1
    echo "$tag prune: exit $?"
    python -m pytest_swapkl heal "$STORE/pruned_$tag" --data demo --heldout demo --tokens 65536 --seq-len 128 \
      --heldout-tokens 16384 --steps 200 --dtype float32 --json "$OUT/heal_$tag.json" > "$OUT/heal_$tag.txt" 2>&1
    echo "$tag heal: exit $?"
    tail -4 "$OUT/heal_$tag.txt"
done
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/gpu_name.txt"
