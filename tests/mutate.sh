#!/usr/bin/env bash
# One module's mutation check with a narrow test selection (tests/README.md, "Mutation check"):
#   tests/mutate.sh relay/providers/coerce.py tests/unit/providers/test_coerce.py tests/unit/providers/test_chatwoot.py
# Works in a copy of the committed checkout (/tmp/relay-mutate/<module>) whose [tool.mutmut]
# mutates only that module and runs only the given tests, so mutmut generates and checks
# that module's mutants alone. Results stay there: `cd` to it and `mutmut results`.
set -euo pipefail
module=$1
shift
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=/tmp/relay-mutate/$(echo "$module" | tr / _)
rm -rf "$dir" && mkdir -p "$dir"
git -C "$root" archive HEAD | tar -x -C "$dir"
python3 - "$dir/pyproject.toml" "$module" "$@" <<'PY'
import re, sys
path, module, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
text = re.sub(r"only_mutate = \[[^]]*\]", f'only_mutate = ["{module}"]', text)
selection = ", ".join(f'"{t}"' for t in tests)
text = re.sub(r"pytest_add_cli_args_test_selection = \[[^]]*\]",
              f"pytest_add_cli_args_test_selection = [{selection}]", text)
open(path, "w").write(text)
PY
# the checkout's .venv, else $MUTMUT or the mutmut on PATH (a git worktree has no .venv)
mutmut=${MUTMUT:-$root/.venv/bin/mutmut}
[ -x "$mutmut" ] || mutmut=$(command -v mutmut) || { echo "mutate.sh: no mutmut (pip install -e '.[mutation]')" >&2; exit 2; }
cd "$dir"
children=${MUTATE_CHILDREN:-2}
if [ "${MUTATE_SAMPLE:-1}" -gt 1 ]; then
  # A fixed sample: the mutants whose name hashes to 0 mod MUTATE_SAMPLE (the same ones on
  # every run of the same code), listed in sample.txt; the others are left unchecked.
  # a run for a name that matches nothing makes the mutants (and stops there)
  "$mutmut" run "relay.__no_such_mutant__" > /dev/null 2>&1 || true
  "$mutmut" results --all true 2>/dev/null | sed 's/: [^:]*$//' | grep '__mutmut_' |
    python3 -c 'import hashlib, sys
n = int(sys.argv[1])
for name in sorted(set(sys.stdin.read().split())):
    if int(hashlib.sha256(name.encode()).hexdigest(), 16) % n == 0:
        print(name)' "$MUTATE_SAMPLE" > sample.txt
  [ -s sample.txt ] || { echo "mutate.sh: no mutant in the sample" >&2; exit 0; }
  # shellcheck disable=SC2046  # one argument a mutant name
  nice -n 19 "$mutmut" run --max-children "$children" $(cat sample.txt)
else
  nice -n 19 "$mutmut" run --max-children "$children"
fi
"$mutmut" results
