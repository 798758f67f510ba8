#!/usr/bin/env bash
# scripts/test.sh - installs dependencies, builds, and runs every test:
#   unit (doctest), BPF golden packets + fuzz (doctest, BPF_PROG_TEST_RUN),
#   end-to-end netns tests (vm-tests/e2e_*.sh) and the kernel matrix
#   (vm-tests/kernels.sh, when present).
# Each suite's output goes to the console under a header. The last line is
# exactly "N passed, N failed"; the exit status is non-zero if anything
# failed or nothing ran. doctest suites add their own test-case counts; every
# other suite counts as one test.
#
# Usage: sudo scripts/test.sh [NAME...]   only suites whose name contains NAME
#   SHHIM_SKIP_BUILD=1      skip setup-deps.sh and build.sh (use build/ as is)
#   SHHIM_SUITE_TIMEOUT=S   per-suite time limit in seconds (default 600)
#   SHHIM_KERNELS_TIMEOUT=S time limit of vm-tests/kernels.sh (default 1800)
# Runs as root (namespaces, BPF), with CI=true and no standard input.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build="$repo_root/build"
suite_timeout="${SHHIM_SUITE_TIMEOUT:-600}"
kernels_timeout="${SHHIM_KERNELS_TIMEOUT:-1800}"
filters=("$@")

passed=0
failed=0
summary=()
log_dir="$(mktemp -d /tmp/shhim-test-logs-XXXXXX)"
trap 'rm -rf "$log_dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

header() { printf '\n==================== %s ====================\n' "$*"; }

selected() {   # NAME: true when no filter is given or one matches
  local f
  ((${#filters[@]} == 0)) && return 0
  for f in "${filters[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
  return 1
}

# run_logged NAME TIMEOUT COMMAND...: runs COMMAND with its output on the
# console and in $log_dir/NAME.log, no stdin, under a time limit; sets
# last_rc and last_secs. --foreground keeps the suite in our process group
# (Ctrl-C reaches it) and lets a timed-out e2e script run its cleanup trap.
run_logged() {
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS
  last_rc=0
  # tee ignores Ctrl-C so that a suite's cleanup output still has a reader.
  timeout --foreground -k 30 "$limit" "$@" </dev/null 2>&1 |
    (trap '' INT && exec tee "$log_dir/$name.log") ||
    last_rc="${PIPESTATUS[0]}"
  last_secs=$((SECONDS - start))
  if ((last_rc == 124)); then
    printf '%s: timed out after %ss\n' "$name" "$limit"
  fi
}

record() {   # NAME PASSED FAILED NOTE
  passed=$((passed + $2))
  failed=$((failed + $3))
  summary+=("$(printf '%-24s %4d passed %4d failed  %5ss  %s' "$1" "$2" "$3" "$last_secs" "$4")")
}

# One test: exit status 0 passes.
run_single() {   # NAME TIMEOUT COMMAND...
  local name="$1"
  selected "$name" || return 0
  header "$name"
  run_logged "$@"
  if ((last_rc == 0)); then
    record "$name" 1 0 "ok"
  else
    record "$name" 0 1 "exit status $last_rc"
  fi
}

# A doctest binary: its "test cases: X | Y passed | Z failed" line counts.
run_doctest() {   # NAME BINARY
  local name="$1" binary="$2"
  selected "$name" || return 0
  header "$name ($binary)"
  last_secs=0
  if [[ ! -x "$binary" ]]; then
    printf '%s: %s was not built\n' "$name" "$binary"
    record "$name" 0 1 "not built"
    return 0
  fi
  run_logged "$name" "$suite_timeout" "$binary"
  local counts p=0 f=0
  counts="$(sed 's/\x1b\[[0-9;]*m//g' "$log_dir/$name.log" |
    sed -nE 's/.*test cases:[[:space:]]*([0-9]+)[[:space:]]*\|[[:space:]]*([0-9]+) passed[[:space:]]*\|[[:space:]]*([0-9]+) failed.*/\2 \3/p' |
    tail -n1)"
  if [[ -z "$counts" ]]; then
    record "$name" 0 1 "no doctest summary (exit status $last_rc)"
    return 0
  fi
  read -r p f <<<"$counts"
  ((last_rc == 0 || f > 0)) || f=1   # crashed or failed outside a test case
  record "$name" "$p" "$f" "exit status $last_rc"
}

# ---- dependencies and build (failures count, then the tests still run) ----
if [[ -z "${SHHIM_SKIP_BUILD:-}" ]]; then
  header "setup-deps"
  last_secs=0
  if ! bash scripts/setup-deps.sh </dev/null; then
    record "setup-deps" 0 1 "scripts/setup-deps.sh failed"
  fi
  header "build"
  build_start=$SECONDS
  if ! bash scripts/build.sh </dev/null; then
    last_secs=$((SECONDS - build_start))
    record "build" 0 1 "scripts/build.sh failed (see above)"
  fi
fi

# ---- unit and BPF tests ----
run_doctest unit "$build/tests/unit/shhim_unit_tests"
run_doctest bpf "$build/tests/bpf/shhim_bpf_tests"

# ---- anomaly scenario suite: recorded traces replayed through the engines ----
run_single anomaly_eval "$suite_timeout" bash tests/anomaly/eval_suite.sh

# ---- end to end ----
for t in vm-tests/e2e_*.sh; do
  [[ -e "$t" ]] || continue
  run_single "$(basename "$t" .sh)" "$suite_timeout" bash "$t"
done

# ---- kernel matrix ----
if [[ -f vm-tests/kernels.sh ]]; then
  run_single kernels "$kernels_timeout" bash vm-tests/kernels.sh
  # The harness must be able to fail: a build without one bounds check is refused everywhere.
  run_single kernels-unsafe "$kernels_timeout" bash vm-tests/kernels.sh --unsafe --expect-refused
fi

header "summary"
printf '%s\n' "${summary[@]}"
if ((passed + failed == 0)); then
  echo "nothing ran"
  echo "0 passed, 0 failed"
  exit 1
fi
echo "$passed passed, $failed failed"
((failed == 0))
