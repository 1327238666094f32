#!/usr/bin/env bash
# Everything issue 3 asks of a real GPU, in one call: the GPU and equality tests, the engine benchmark
# (fp32 tiny and bf16 wider), and `swapkl audit demo` on CUDA (float32 compared with the CPU audit).
# Usage on the GPU machine: OUT=/some/folder bash benchmarks/gpu/gpu_check.sh
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/swapkl-gpu}
mkdir -p "$OUT"
AUDITS=$(mktemp -d)  # the audit JSONs stay on the machine: only 8 files come back from $OUT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
# Test files that need hypothesis (not installed on the GPU image) are left out; they exercise no GPU code.
python3 -m pytest -q -p no:cacheprovider -rs tests/engine/test_gpu.py tests/engine/test_engine.py tests/engine/test_reference.py \
    tests/commands/test_audit_cli.py tests/commands/test_cli_errors.py 2>&1 | grep -v '^\[transformers\]' > "$OUT/gpu_tests.log"
tail -3 "$OUT/gpu_tests.log"
python3 benchmarks/speed/engine_speed.py --device cuda 2>&1 | tee "$OUT/bench_cuda_fp32_tiny.txt"
python3 benchmarks/speed/engine_speed.py --device cuda --dtype bfloat16 --hidden 1024 --vocab 32000 --sequences 32 \
    --seq-len 512 --batch-size 8 2>&1 | tee "$OUT/bench_cuda_bf16_1024.txt"
python3 -m pytest_swapkl audit demo --pairs all --device cpu --json "$AUDITS/audit_cpu.json" > /dev/null
python3 -m pytest_swapkl audit demo --pairs all --device cuda --dtype float32 --json "$AUDITS/audit_cuda_fp32.json" > /dev/null
python3 -m pytest_swapkl audit demo --pairs all --device cuda --json "$AUDITS/audit_cuda_auto.json" > "$OUT/audit_cuda_auto.txt"
python3 - "$AUDITS" <<'PY' | tee "$OUT/audit_compare.txt"
import json, sys
audits = sys.argv[1]
cpu, fp32, auto = (json.load(open(f"{audits}/audit_{name}.json")) for name in ("cpu", "cuda_fp32", "cuda_auto"))
keys = ("replacement_ij", "replacement_ji", "interchange")
def worst(a, b, rel=False):
    return max(abs(x[k] - y[k]) / (y[k] if rel else 1) for x, y in zip(a["pairs"], b["pairs"]) for k in keys)
print(f"demo audit, all pairs: max |dKL| cuda float32 vs cpu = {worst(fp32, cpu):.2e}; "
      f"max relative dKL cuda {auto['model']['dtype']} vs cpu float32 = {worst(auto, cpu, rel=True):.3f}; "
      f"seconds cpu {cpu['seconds']}, cuda float32 {fp32['seconds']}, cuda {auto['model']['dtype']} {auto['seconds']}")
PY
# The plugin on CUDA (auto dtype: bfloat16), from an empty directory: generated cases, measured noise floor.
mkdir -p /tmp/swapkl-plugin-run
(cd /tmp/swapkl-plugin-run && python3 -m pytest -p pytest_swapkl.plugin.hooks -p no:cacheprovider -q \
    --swapkl-model=demo --swapkl-pairs=all --swapkl-json=/tmp/swapkl-plugin-run/audit.json 2>&1 | tail -25) \
    | tee "$OUT/plugin_cuda.txt"
python3 -c "import json; d = json.load(open('/tmp/swapkl-plugin-run/audit.json')); print('noise floor', d['noise_floor'], d['model']['dtype'], d['model']['device'])" | tee -a "$OUT/plugin_cuda.txt"
