#!/usr/bin/env bash
# `swapkl audit demo --pairs all` on CPU, whole process and probes alone: main at REV ("before") against the
# working tree's package ("after"), alternating before/after/after/before, each with an empty cache folder.
# Usage: bash benchmarks/speed/cpu_demo_ab.sh REV [PYTHON]     (issue 21: REV = ddfe424^, the last main before it)
set -euo pipefail
rev=${1:?give the revision to compare against, e.g. ddfe424^}
python=$(realpath -s "$(command -v "${2:-python3}")")  # absolute, the venv kept: the runs cd elsewhere
work=$(mktemp -d)
git archive "$rev" pytest_swapkl | (mkdir -p "$work/before" && tar -x -C "$work/before")
mkdir -p "$work/after" && cp -r pytest_swapkl "$work/after/"
echo "# bash benchmarks/speed/cpu_demo_ab.sh $rev: before = $(git rev-parse --short "$rev"), after = $(git rev-parse --short HEAD) + working tree; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in before after after before; do
    export XDG_CACHE_HOME="$work/cache-$RANDOM"
    started=$(date +%s.%N)
    (cd "$work" && PYTHONPATH="$work/$run" "$python" -m pytest_swapkl audit demo --pairs all --no-resume \
        --json "$work/$run.json" > "$work/$run.log" 2>&1)
    stopped=$(date +%s.%N)
    "$python" - "$run" "$started" "$stopped" "$work/$run.json" <<'PY'
import json, sys
run, started, stopped, path = sys.argv[1:]
print(f"{run:6} whole {float(stopped) - float(started):5.1f} s   probes {json.load(open(path))['measure_seconds']:5.1f} s")
PY
done
rm -rf "$work"
