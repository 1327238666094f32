#!/usr/bin/env bash
# Terminal captures of the progress line, for docs/captures/: `swapkl audit` and the pytest plugin, each on a
# real terminal (a tmux pane, captured while the bar is drawn and again at the end) and in a pipe (a CI log).
#
#   . .venv/bin/activate && scripts/capture_progress.sh [OUT_DIR]     (default docs/captures)
#
# Small budgets (all pairs of the demo model on 2048 tokens), so each run takes tens of seconds on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/captures}"
mkdir -p "$out"
work="$(mktemp -d)"
export XDG_CACHE_HOME="$work/cache"  # no resume journal from an earlier run: the bar starts at 0
socket="swapkl-capture-$$"  # a tmux server of our own, whatever other tmux servers run on the machine
tmux() { command tmux -L "$socket" "$@"; }
trap 'tmux kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

cli=(swapkl audit demo --pairs all --tokens 2048 --seq-len 128 --device cpu)
plugin=(pytest --swapkl-model=demo --swapkl-pairs=all --swapkl-tokens=2048 --swapkl-seq-len=128 --swapkl-device=cpu
        -p no:cacheprovider)

# One command in a 120x45 tmux pane: the screen once the bar has been drawn for a few seconds, and at the end.
on_a_terminal() {
    local name="$1"; shift
    tmux kill-session -t swapkl-capture 2>/dev/null || true
    tmux new-session -d -s swapkl-capture -x 120 -y 45 -c "$work" \
        "export PATH=$(printf '%q' "$PATH") XDG_CACHE_HOME=$(printf '%q' "$XDG_CACHE_HOME"); unset SWAPKL_PROGRESS; \
         $(printf '%q ' "$@"); echo; echo '[exit code' \$?']'; sleep 600"
    for _ in $(seq 1 600); do
        if tmux capture-pane -p -t swapkl-capture | grep -q 'probe-sequences.* left'; then break; fi
        sleep 0.5
    done
    sleep 5
    { echo "\$ $*"; echo "(tmux capture-pane while the audit runs)"; tmux capture-pane -p -t swapkl-capture; } \
        | sed -e 's/[[:space:]]*$//' | cat -s > "$out/$name-terminal-running.txt"
    for _ in $(seq 1 1200); do
        if tmux capture-pane -p -t swapkl-capture -S -200 | grep -q '^\[exit code'; then break; fi
        sleep 0.5
    done
    { echo "\$ $*"; echo "(tmux capture-pane at the end, with the scrollback)"; tmux capture-pane -p -t swapkl-capture -S -200; } \
        | sed -e 's/[[:space:]]*$//' | cat -s > "$out/$name-terminal-end.txt"
    tmux kill-session -t swapkl-capture
}

in_a_pipe() {
    local name="$1"; shift
    # A failing audit is a capture too (failed cases exit 1): record the exit code instead of stopping here.
    local rc=0
    { echo "\$ $* 2>&1 | cat"; (cd "$work" && "$@" 2>&1 | cat) || rc=$?; echo "[exit code $rc]"; } > "$out/$name-pipe.txt"
}

on_a_terminal cli "${cli[@]}"
in_a_pipe cli "${cli[@]}"
on_a_terminal plugin "${plugin[@]}"
in_a_pipe plugin "${plugin[@]}"
ls -l "$out"
