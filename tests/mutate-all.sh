#!/usr/bin/env bash
# The whole mutation check, module by module (tests/README.md, "Mutation check"):
#   tests/mutate-all.sh                 # every line of tests/mutation-modules.txt
#   tests/mutate-all.sh 'delivery/|spool'   # only the modules whose path matches (grep -E)
#   MUTATE_SAMPLE=8 tests/mutate-all.sh      # a fixed 1-in-8 sample of every module's mutants
#   MUTATE_CHILDREN=4 tests/mutate-all.sh    # mutants at once (default 2; the broker and
#                                            # timer tests mostly wait, so 4 fit 2 cores)
# Each module runs through tests/mutate.sh (its own copy, its own narrow test selection).
# Prints one Markdown row a module as it ends, and the total, to stdout and to
# /tmp/relay-mutate/summary.md; survivors stay in each module's copy (`mutmut results`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
mutmut=${MUTMUT:-$root/.venv/bin/mutmut}
[ -x "$mutmut" ] || mutmut=$(command -v mutmut) || { echo "mutate-all.sh: no mutmut (pip install -e '.[mutation]')" >&2; exit 2; }
filter=${1:-}
mkdir -p /tmp/relay-mutate
summary=/tmp/relay-mutate/summary.md
{ echo "| module | mutants | killed | timeouts | survived | score | seconds |"
  echo "|---|---:|---:|---:|---:|---:|---:|"; } | tee "$summary"
start=$SECONDS
total=0 dead=0
while read -r module tests; do
  case $module in ''|'#'*) continue ;; esac
  [[ -n $filter ]] && ! grep -qE -- "$filter" <<<"$module" && continue
  t0=$SECONDS
  # shellcheck disable=SC2086  # the tests are pytest arguments, split on purpose
  MUTMUT=$mutmut "$here/mutate.sh" "$module" $tests > "/tmp/relay-mutate/$(echo "$module" | tr / _).log" 2>&1 || true
  dir=/tmp/relay-mutate/$(echo "$module" | tr / _)
  row=$(cd "$dir" 2>/dev/null && "$mutmut" results --all true 2>/dev/null |
    python3 -c '
import collections, os, sys
module, seconds = sys.argv[1], sys.argv[2]
sample = set(open("sample.txt").read().split()) if os.path.exists("sample.txt") else None
status = {}
for line in sys.stdin:
    name, _, word = line.strip().rpartition(": ")
    if name and (sample is None or name in sample):
        status[name] = word
count = collections.Counter(status.values())
total = len(status) - count["skipped"] - count["not checked"]
if sample is not None and not sample:
    print(f"| `{module}` | none in the sample | | | | | {seconds} |")
    sys.exit()
if not total:
    print(f"| `{module}` | run failed: see its log | | | | | {seconds} |")
    sys.exit()
killed = count["killed"] + count["timeout"] + count["segfault"]
left = count["survived"] + count["no tests"] + count["suspicious"]
plain, timeouts = count["killed"], count["timeout"]
print(f"| `{module}` | {total} | {plain} | {timeouts} | {left} | {100 * killed / total:.0f} % | {seconds} |")
' "$module" $((SECONDS - t0)))
  echo "$row" | tee -a "$summary"
  read -r n k <<<"$(echo "$row" | awk -F'|' '{gsub(/ /,""); print $3, $4+$5}')"
  [[ $n =~ ^[0-9]+$ ]] && total=$((total + n)) dead=$((dead + k))
done < "$here/mutation-modules.txt"
echo "| **all** | $total | $dead | | | $( [ "$total" -gt 0 ] && echo "$((100 * dead / total)) %" ) | $((SECONDS - start)) |" | tee -a "$summary"
