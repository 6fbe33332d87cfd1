#!/usr/bin/env bash
# The whole loop in a real terminal at 80x24, keys only (tmux send-keys), as a person does it:
#   ferry demo → run dialog (m, Enter) → migrate → Validation (4, r) → Cutover (5: two
#   cutovers of alias "docs", each typed to confirm) → roll back (to the first) → q.
# Each step waits for what the screen says (tmux capture-pane), with a deadline; on a miss it
# prints the screen and exits 1. Uses its own config, journal and demo data (a temp dir).
#   scripts/tmux_loop.sh            (needs tmux; PYTHON defaults to .venv or python3)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || command -v python3 )}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-loop-XXXXXX")"
SESSION="ferry-loop-$$"
export FERRY_CONFIG="$WORK/config/profiles.toml" FERRY_STATE="$WORK/state/journal.sqlite3"
export ANONYMIZED_TELEMETRY=False PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

screen() { tmux capture-pane -p -t "$SESSION"; }
keys() { tmux send-keys -t "$SESSION" "$@"; }
typed() { tmux send-keys -t "$SESSION" -l "$1"; }

# wait_for TEXT [SECONDS]: until TEXT is on screen
wait_for() {
  local text="$1" deadline=$((SECONDS + ${2:-60}))
  until screen | grep -qF -- "$text"; do
    if ((SECONDS > deadline)); then
      echo "tmux_loop: not on screen within ${2:-60}s: $text" >&2
      screen >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "ok: $text"
}

tmux new-session -d -s "$SESSION" -x 80 -y 24 \
  "cd '$ROOT' && TERM=xterm-256color '$PYTHON' -m ferry.cli demo --dir '$WORK/demo' --records 300 --rate 0; echo FERRY-EXITED \$?; sleep 30"

wait_for "press m to migrate" 180            # demo built, Inventory, all selected
keys m
wait_for "enter starts"                      # the run dialog: plan + options
keys Enter
wait_for "run completed 100%" 120            # detached run, followed on the Monitor
keys l
wait_for "Run log"                           # the log view follows the run's log
keys Escape
wait_for "Overall"

keys 4                                       # Validation: check every collection
keys r
wait_for "Checks: ✔ everything matches" 180

keys 5                                       # Cutover: docs → stdlib-classes
wait_for "Cut over (c)"
keys Tab; typed "docs"; keys Tab; typed "stdlib-classes"
keys Tab Tab Tab Enter                       # force, reason, then the Cut over button
wait_for "Type docs to confirm"
typed "docs"; keys Enter
wait_for "cutover done: docs → stdlib-classes" 30

keys BTab BTab BTab C-u; typed "stdlib-functions"   # back to the collection field
keys Tab Tab Tab Enter
wait_for "Type docs to confirm"
typed "docs"; keys Enter
wait_for "cutover done: docs → stdlib-functions" 30

keys Tab Enter                               # Roll back: to stdlib-classes
wait_for "Type docs to confirm"
typed "docs"; keys Enter
wait_for "rollback done: docs → stdlib-classes" 30

keys q                                       # no run going: q quits at once
wait_for "FERRY-EXITED 0" 30
echo "tmux_loop: the whole loop ran with keys only at 80x24"
