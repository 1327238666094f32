#!/usr/bin/env bash
# The reproduction study's report pages (issue 17), from what it wrote under benchmarks/results/study: one HTML
# page and its Markdown per audit JSON (SmolLM2-135M, Gemma-3-270M, Gemma-3 with the slot's attention type) and
# per guided-removal JSON, rendered by `swapkl report`; with Chromium (Debian's `chromium`) also a screenshot of
# the top of each page at 1366 px, palette PNG (the ones in docs/figures/study-*.png). CPU only, about a minute.
#
#   OUT=/tmp/study-pages scripts/study_report.sh          # PYTHON=.venv/bin/python to pick the interpreter
#
# STUDY=folder renders another run of scripts/paper_study.sh instead (its OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the pages}
STUDY=${STUDY:-benchmarks/results/study}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
report() { "$PYTHON" -m pytest_swapkl report "$@"; }

pages=()
for name in smollm2-135m gemma3-270m gemma3-270m-slot; do
    report "$STUDY/${name}_audit.json" --html "$OUT/$name.html" --markdown "$OUT/$name.md"
    pages+=("$name")
done
for name in gemma3-270m smollm2-135m smollm2-135m-k4; do
    [ -s "$STUDY/guided_$name.json" ] || continue
    report "$STUDY/guided_$name.json" --html "$OUT/guided-$name.html" --markdown "$OUT/guided-$name.md"
    pages+=("guided-$name")
done

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "no chromium: pages written to $OUT, no screenshots (apt-get install chromium)"
    exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for name in "${pages[@]}"; do
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-sync \
        --disable-background-networking --disable-component-update --user-data-dir="$profile" \
        --virtual-time-budget=5000 --window-size=1366,2000 --screenshot="$OUT/$name.png" \
        "file://$OUT/$name.html" 2>/dev/null
done
# 256 colours: text and flat plots lose nothing a reader sees, and each PNG stays a few hundred KB at most.
"$PYTHON" - "$OUT" "${pages[@]}" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

out = Path(sys.argv[1])
for name in sys.argv[2:]:
    path = out / f"{name}.png"
    Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KB)")
EOF
