#!/usr/bin/env bash
# bench/compare_quick.sh BASE NEW [ROUNDS]: `bench/run.py --quick` in two checkouts (each with
# its own .venv), alternating, the order flipped every round; prints each row's median rate in
# both and their ratio. Why: a refactor must not make the copy slower, and on a shared machine
# only arms run back to back, compared by medians, say so.
set -euo pipefail
base=$1 new=$2 rounds=${3:-3}
out=$(mktemp -d)
for r in $(seq "$rounds"); do
  arms="base new"; [ $((r % 2)) -eq 0 ] && arms="new base"
  for arm in $arms; do
    dir=$base; [ "$arm" = new ] && dir=$new
    (cd "$dir" && . .venv/bin/activate && python bench/run.py --quick >"$out/${arm}_$r.log" 2>&1)
  done
done
python3 - "$out" <<'PY'
import glob, re, statistics, sys
rows = {}
for f in sorted(glob.glob(f"{sys.argv[1]}/*.log")):
    arm = f.rsplit("/", 1)[1].split("_")[0]
    for line in open(f):
        m = re.match(r"-> (.*?) \.\.\. ([\d,]+) rec/s", line)
        if m and "turn" not in m.group(1):
            rows.setdefault(m.group(1), {}).setdefault(arm, []).append(int(m.group(2).replace(",", "")))
print("| row | base rec/s | new rec/s | new / base |\n|---|---:|---:|---:|")
for name, arms in rows.items():
    b, n = statistics.median(arms["base"]), statistics.median(arms["new"])
    print(f"| {name} | {b:,.0f} | {n:,.0f} | {n / b:.2f} |")
PY
