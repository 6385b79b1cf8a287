#!/usr/bin/env bash
# Commit a tuning study's --state folder after each trial it finishes, so a study longer
# than one sitting survives the machine (docs/architecture.md, "Tuning").
#
#   benchmarks/keep_state.sh LOG STATE [NOTE]
#
# LOG: the file the study's `benchmarks/tuned.py ... --state STATE` writes its output to;
# STATE: that folder (inside this repository); NOTE: added to each commit message (the
# code the study runs and the machine, say). Runs until stopped. Each time LOG shows a
# trial more finished or pruned, it waits for SQLite to be between transactions, commits
# STATE alone (nothing else staged goes with it), and checks that the committed
# studies.db opens and passes SQLite's integrity check.
#
# Never replace STATE's files while the study runs (git stash, checkout, reset): the study
# holds studies.db open, and its next write fails.
set -uo pipefail  # no -e: a failed commit is retried, the watch goes on
log=$1 state=$2 note=${3:-}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
python=$root/.venv/bin/python
db=$state/09_tuning/studies.db
finished() { grep -ac "Trial [0-9]* \(finished\|pruned\)" "$log" || true; }
seen=$(finished)
while true; do
  sleep 30
  now=$(finished)
  [ "$now" -gt "$seen" ] || continue
  seen=$now
  line=$(grep -ao "Trial [0-9]* \(finished\|pruned\).*" "$log" | tail -1 | cut -c1-100)
  # the study of that trial: the last "tuning <model>:" line before it (the next study
  # may have started by now)
  study=$(grep -ao "tuning [a-z_]*: [0-9]* of\|Trial [0-9]* \(finished\|pruned\)" "$log" \
    | awk '/^tuning/ {s = $1 " " $2} /^Trial/ {t = s} END {sub(":", "", t); print t}')
  for _ in $(seq 1 30); do [ -e "$db-journal" ] || break; sleep 1; done
  # another git command in the repository (index.lock) makes a try fail: try again
  for _ in $(seq 1 10); do
    git -C "$root" add -- "$state" && git -C "$root" commit -q -m "study state: $study, $line${note:+ ($note)}" -- "$state" && break
    sleep 5
  done
  git -C "$root" show "HEAD:$(realpath --relative-to="$root" "$db")" > "$root/.keep_state_check.db"
  "$python" - "$root/.keep_state_check.db" <<'EOF'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
print("integrity:", connection.execute("pragma integrity_check").fetchone()[0])
rows = connection.execute("select s.study_name, t.number, t.state, v.value from trials t join studies s "
                          "using(study_id) left join trial_values v using(trial_id) order by 1, 2").fetchall()
print("\n".join(f"{name} {number} {state} {value}" for name, number, state, value in rows[-3:]))
EOF
  rm -f "$root/.keep_state_check.db"
  git -C "$root" log --oneline -1
done
