#!/usr/bin/env bash
# One H200: the GPU tests, then the SmolLM2-135M all-pairs audit from the CLI, whole process, twice (the second with
# warm caches: the dequantized GGUF, inductor's). Issue 21's closing measurement (docs/benchmarks.md).
# The GGUF travels in parts (.smol/smol.part0N, earlier calls copy them to /tmp/smol/), the transformers 5.24 and
# gguf wheels in .whl. Usage there: OUT=/some/folder bash benchmarks/gpu/smollm2_cli_cold_warm.sh
set -uo pipefail
OUT=${OUT:-/tmp/swapkl-gpu}
mkdir -p "$OUT" /tmp/smol
cp .smol/smol.part0* /tmp/smol/ 2>/dev/null
cat /tmp/smol/smol.part00 /tmp/smol/smol.part01 /tmp/smol/smol.part02 > /tmp/smol.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /tmp/smol.gguf" | sha256sum -c - || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
unset PYTHONDONTWRITEBYTECODE  # the image sets it: every process would compile torch's sources again
started=$(date +%s)
python3 -m compileall -q -j 16 /tmp/site "$PWD/pytest_swapkl" "$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')" > /dev/null
echo "compileall $(( $(date +%s) - started )) s" | tee "$OUT/smol_cli_final.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/smol_cli_final.txt"
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, 'triton', triton.__version__)" | tee -a "$OUT/smol_cli_final.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/engine/test_gpu.py tests/engine/test_placement.py 2>&1 \
    | grep -v '^\[transformers\]' > "$OUT/gpu_tests_final.log"
tail -3 "$OUT/gpu_tests_final.log"
for try in 1 2; do
    started=$(date +%s.%N)
    python3 -m pytest_swapkl audit /tmp/smol.gguf --pairs all --tokens 32768 --seq-len 512 --dtype bfloat16 \
        --device cuda --no-resume --json "/tmp/smol_try$try.json" > "/tmp/smol_try$try.txt" 2>&1 || { tail -5 "/tmp/smol_try$try.txt"; exit 1; }
    whole=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
    python3 - "$try" "$whole" "/tmp/smol_try$try.json" <<'PY' | tee -a "$OUT/smol_cli_final.txt"
import json, sys
try_, whole, path = sys.argv[1:]
audit = json.load(open(path))
engine = audit.get("engine", {})
print(f"try {try_} whole {whole} s; run_audit {audit['seconds']} probes {audit['measure_seconds']}; "
      f"plan {json.dumps(engine.get('plan'))}; peak GiB {(engine.get('peak_memory') or 0) / 2**30:.1f}")
PY
done
cp /tmp/smol_try2.json "$OUT/smol_cli_final.json"
