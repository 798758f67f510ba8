#!/usr/bin/env bash
# tests/anomaly/eval_suite.sh - the anomaly engine's scenario suite (issue 5):
# the labelled traces recorded from the netns testbed (tests/data/anomaly)
# replayed through the engines by shhim-eval, with the shipped model and with
# one trained here by shhim-train. Asserted by `shhim-eval --check`: every
# fault detected, no reroute on a normal, surge, ramp or 4xx trace, every
# brownout drained before it died, latency x10 detected in <= 3 ticks
# (median); and here: at least 20 traces covering every kind the issue names.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${SHHIM_BUILD_DIR:-$repo_root/build}"
eval_bin="$build/tools/shhim-eval/shhim-eval"
train_bin="$build/tools/shhim-train/shhim-train"
traces="$repo_root/tests/data/anomaly/traces"
model="$repo_root/models/default.model"
work="$(mktemp -d /tmp/shhim-anomaly-eval-XXXXXX)"
trap 'rm -rf "$work"' EXIT

checks=0
failures=0
check() {   # DESCRIPTION COMMAND...
  local what="$1"
  shift
  checks=$((checks + 1))
  if "$@"; then
    echo "ok   $what"
  else
    echo "FAIL $what"
    failures=$((failures + 1))
  fi
}

for b in "$eval_bin" "$train_bin"; do [[ -x "$b" ]] || { echo "missing $b (run scripts/build.sh)"; exit 1; }; done
command -v jq >/dev/null || { echo "jq is needed"; exit 1; }

echo "== the shipped model: $model"
check "shhim-eval --check passes with the shipped model" "$eval_bin" --model "$model" --check "$traces"
"$eval_bin" --model "$model" -o json "$traces" >"$work/shipped.json"

count="$(jq '.traces | length' "$work/shipped.json")"
check "at least 20 labelled traces ($count)" test "$count" -ge 20
has_trace() {   # KIND [MIN_FACTOR [MAX_FACTOR]]
  jq -e --arg k "$1" --argjson lo "${2:-0}" --argjson hi "${3:-1e9}" \
    '[.traces[] | select(.kind == $k and .factor >= $lo and .factor <= $hi)] | length > 0' "$work/shipped.json" >/dev/null
}
for kind in normal ramp client_errors crash hang server_errors nack_storm brownout; do
  check "a $kind trace" has_trace "$kind"
done
check "a surge to x2" has_trace surge 1.9 2.1
check "a surge to x4.4" has_trace surge 4.3 4.5
check "latency x3" has_trace latency 2.9 3.1
check "latency x10" has_trace latency 9.9 10.1
check "packet loss 2%" has_trace packet_loss 0.019 0.021
check "packet loss 10%" has_trace packet_loss 0.099 0.101
check "recall is 1" jq -e '.totals.recall == 1' "$work/shipped.json"
check "no false reroute" jq -e '.totals.false_reroutes == 0' "$work/shipped.json"
jq -r '.totals | "totals: \(.traces) traces, \(.hours) h simulated, recall \(.recall), precision \(.precision), false reroutes/h \(.false_reroutes_per_hour), median ticks latency x10 \(.median_ticks_latency_x10)"' "$work/shipped.json"

echo "== a model trained here from the training recording (models/training), another seed"
check "shhim-train writes a model with its summary" \
  bash -c '"$0" --trees 50 --seed 7 --version suite -o "$1/trained.model" "$2" >"$1/train.out" 2>"$1/train.err"' \
  "$train_bin" "$work" "$repo_root/models/training/testbed-normal.jsonl.gz"
cat "$work/train.out"
check "the summary reports the held-out score distribution" grep -q 'held-out .*p99' "$work/train.out"
check "the progress reached every tree" grep -q 'trees 50/50' "$work/train.err"
check "shhim-eval --check passes with the trained model" "$eval_bin" --model "$work/trained.model" --check "$traces"

echo "== bad input is named, nothing is written"
exits_2_saying() {   # TEXT COMMAND...: exit status 2 and TEXT on stderr
  local text="$1" rc=0 err
  shift
  err="$("$@" 2>&1 >/dev/null)" || rc=$?
  [[ "$rc" == 2 && "$err" == *"$text"* ]]
}
check "a missing trace exits 2 naming it" \
  exits_2_saying "/nonexistent/trace.jsonl: no such file" "$eval_bin" /nonexistent/trace.jsonl
printf '{"name":"bad","kind":"crash","failure":true}\n' >"$work/bad.jsonl"
check "a failure label without its backend exits 2 naming the line" \
  exits_2_saying "bad.jsonl:1: a failure trace needs" "$eval_bin" "$work/bad.jsonl"
check "shhim-train without -o prints usage and writes nothing" \
  bash -c '! "$0" "$1" >/dev/null 2>&1 && ! ls "$2"/*.model.tmp >/dev/null 2>&1' "$train_bin" "$traces" "$work"

echo "$checks checks, $failures failed"
((failures == 0))
