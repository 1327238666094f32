#!/usr/bin/env bash
# The paper's selection rule and the new probes on the two real models, on one GPU (issues 32 and 33):
#   - the GPU tests of the position contracts and the averaging/head probes (and the engine's GPU tests);
#   - MODEL's audit over its adjacent pairs: R = max (Definition 1), removal sets by the min-partner rule at
#     k = 1..4, costed on held-out text by the sliding-window evaluator (window 512, stride 256), averaging;
#   - a head x pair table on the three pairs interchange finds most swap-similar.
# usage: OUT=DIR STORE=DIR bash benchmarks/gpu/real_contracts_and_probes.sh STEP
#   STEP: setup (wheels from $STORE, the two GGUF files cut from $STORE/bundle.*), tests, smollm2, gemma3
#   (as run on 2026-12-06: the wheels of huggingface_hub's dependencies were carried in a later call)
# STORE holds what earlier device calls carried (the GGUF files travel in parts: docs/benchmarks.md).
set -u
STEP=$1
# USE_HUB_KERNELS=0: transformers 5.25 on the device image otherwise stops at "Kernels are not available"
export PYTHONPATH=$PWD SWAPKL_CACHE_DIR=$STORE/cache SWAPKL_PROGRESS=off HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0
SMOL_BYTES=98362432  # SmolLM2-135M-Instruct Q4_1, first in the bundle; Gemma-3-270M Q4_K_M follows

audit() {  # NAME GGUF: the audit, then heads on interchange's three most swap-similar pairs
  local name=$1 gguf=$2
  python -m pytest_swapkl audit "$gguf" --pairs adjacent --tokens 32768 --seq-len 256 --prune-k 4 \
    --heldout demo --heldout-window 512 --heldout-stride 256 --heldout-tokens 16384 --averaging \
    --json "$OUT/$name.json" > "$OUT/$name.txt" 2> "$OUT/$name.err"
  echo "$name audit: exit $?"
  local pairs
  pairs=$(python -c "import json,sys; d=json.load(open(sys.argv[1])); p=sorted(d['pairs'], key=lambda p: p['interchange'])[:3]; print(','.join(f\"{x['i']}-{x['j']}\" for x in p))" "$OUT/$name.json")
  python -m pytest_swapkl audit "$gguf" --pairs "$pairs" --heads "$pairs" --tokens 8192 --seq-len 256 \
    --json "$OUT/$name-heads.json" > "$OUT/$name-heads.txt" 2> "$OUT/$name-heads.err"
  echo "$name heads on $pairs: exit $?"
}

case $STEP in
  setup)
    # transformers >= 5.24 (Gemma-3 GGUF), gguf, defusedxml, and huggingface_hub 2.4 with httpx2, httpcore2 and
    # truststore, all as wheels in $STORE (pip download); python -m pip: the interpreter the tests run on
    python -m pip install --no-deps -q "$STORE"/*.whl
    cat "$STORE"/bundle.* > "$STORE/bundle"
    head -c $SMOL_BYTES "$STORE/bundle" > "$STORE/smollm2-135m.gguf"
    tail -c +$((SMOL_BYTES + 1)) "$STORE/bundle" > "$STORE/gemma3-270m.gguf"
    sha256sum "$STORE"/*.gguf | tee "$OUT/gguf.sha256" ;;
  tests)
    python -m pytest -q -p no:cacheprovider tests/engine/test_gpu_contracts_and_probes.py tests/engine/test_gpu.py \
      > "$OUT/gpu_tests.txt" 2>&1
    tail -3 "$OUT/gpu_tests.txt" ;;
  smollm2) audit smollm2-135m "$STORE/smollm2-135m.gguf" ;;
  gemma3) audit gemma3-270m "$STORE/gemma3-270m.gguf" ;;
esac
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/gpu_name.txt"
