#!/usr/bin/env bash
# The whole loop in a real terminal, keys only (tmux send-keys), as a person does it:
#   ferry demo → run dialog (m, Enter) → pause (p) → resume (p) → complete → the demo's app
#   writes 5 changes → full validation (4, f) → the differences → repair (R) → delete the
#   extra (x, typed) → clean (f) → Cutover (5): the app's name becomes the alias of its
#   validated copy (c, typed) → switch-the-app lines read through the alias (s) → roll back
#   (r, typed) → q.
# Each step waits for what the screen says (tmux capture-pane), with a deadline; on a miss it
# prints the screen and exits 1. Uses its own config, journal and demo data (a temp dir).
#   scripts/tmux_loop.sh [COLSxROWS]   (default 80x24; needs tmux; PYTHON: .venv or python3)
set -euo pipefail
SIZE="${1:-80x24}"
COLS="${SIZE%x*}" ROWS="${SIZE#*x}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || command -v python3 )}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-loop-XXXXXX")"
SESSION="ferry-loop-$$"
export FERRY_CONFIG="$WORK/config/profiles.toml" FERRY_STATE="$WORK/state/journal.sqlite3"
export ANONYMIZED_TELEMETRY=False PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Its own tmux server (-L): nobody else's tmux, or `tmux kill-server`, can end this one.
tm() { tmux -L "$SESSION" "$@"; }
cleanup() { tm kill-server 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

screen() { tm capture-pane -p -t "$SESSION"; }
keys() { tm send-keys -t "$SESSION" "$@"; }
typed() { tm send-keys -t "$SESSION" -l "$1"; }

# wait_for TEXT [SECONDS]: until TEXT is on screen. Ferry exiting first is a failure at once,
# with the screen it left (its last output, and its exit status).
wait_for() {
  local text="$1" deadline=$((SECONDS + ${2:-60})) shown
  until shown="$(screen 2>/dev/null)" && grep -qF -- "$text" <<<"$shown"; do
    if [[ "$text" != FERRY-EXITED* ]] && grep -qF "FERRY-EXITED" <<<"$shown"; then
      echo "tmux_loop: ferry exited while waiting for: $text" >&2
      echo "$shown" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      echo "tmux_loop: not on screen within ${2:-60}s: $text" >&2
      echo "${shown:-(no screen: $(screen 2>&1 | head -n 1))}" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "ok: $text"
}

tm new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
  "cd '$ROOT' && TERM=xterm-256color '$PYTHON' -m ferry.cli demo --dir '$WORK/demo' --records 300 --rate 60; echo FERRY-EXITED \$?; sleep 30"

wait_for "press m to" 180                  # demo built, Inventory, all selected
keys m
wait_for "enter starts"                      # the run dialog: plan + options
keys Enter
wait_for "run running" 60                    # detached run, followed on the Monitor
keys p
wait_for "p or r resumes" 30                 # paused: nothing moves
keys p
wait_for "run completed 100%" 120            # resumed from its watermark, to the end
wait_for "demo app" 60                       # the demo's application changed its source

keys 4                                       # Validation: a full record-by-record check
wait_for "recall@k"
keys f
wait_for "missing 3 · extra 1" 180                   # exactly what the app changed
keys R                                       # repair: re-copied, read back
wait_for "verified" 120
keys x                                       # the record the app deleted: typed to delete
wait_for "to confirm"
typed "stdlib-classes_v1"; keys Enter
wait_for "Deleted 1" 60
keys f
wait_for "everything matches" 180

keys 5                                       # Cutover: the app's name → its validated copy
wait_for "stdlib-classes_v1" 30
keys c
wait_for "Type stdlib-classes to confirm"
typed "stdlib-classes"; keys Enter
wait_for "cutover done" 60

keys s                                       # what the app changes: it reads the alias
wait_for 'query_points("stdlib-classes"' 30
keys Escape
wait_for "cutover done"

keys r                                       # roll back: the alias goes again
wait_for "Type stdlib-classes to confirm"
typed "stdlib-classes"; keys Enter
wait_for "rollback done" 60

keys q                                       # no run going: q quits at once
wait_for "FERRY-EXITED 0" 30
echo "tmux_loop: the whole loop ran with keys only at ${COLS}x${ROWS}"
