#!/usr/bin/env bash
# bench_reroute: how fast a failing backend leaves the kernel's table, and
# what that costs in failed requests (issue 4's benchmark; scripts/bench.sh
# runs it, the test suite does not).
#   - kernel breaker: the kernel takes the backend out in the XDP run that
#     sees the refusal; reported from the kernel's own stamps (the trip and
#     the refusal it acted on).
#   - userspace path (shhimd --no-kernel-breaker): from the kernel's stamp of
#     the refusal, through the ring buffer and the decision engine, to the
#     backend health written; shhimd logs each one.
#   - the crash scenario (2,000 new connections/s for 10 s, one primary
#     killed after 3 s), once per path: failed requests side by side.
# Environment: SHHIM_REROUTE_SAMPLES (default 40).
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly PORT=8080
readonly VIP=198.18.0.100
readonly CTL_PORT=9999
readonly SAMPLES=${SHHIM_REROUTE_SAMPLES:-40}

tb_init bench_reroute
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
tb_create_netns
tb_create_cgroup
policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: bench-reroute
services:
  - name: alarms
    address: $VIP:$PORT
    protocol: http
    class: emergency
    backends:
      primary: [$TB_SVC_IP1:$PORT, $TB_SVC_IP2:$PORT]
      fallback: [$TB_SVC_IP3:$PORT]
    thresholds:
      ejection_ms: 60000
YAML
tb_start_testsvc a --http "$TB_SVC_IP1:$PORT" --control "$TB_SVC_IP1:$CTL_PORT"
victim_pid="$TB_LAST_PID"
tb_start_testsvc b --http "$TB_SVC_IP2:$PORT"
tb_start_testsvc c --http "$TB_SVC_IP3:$PORT"

faults() { tb_fault "$TB_SVC_IP1:$CTL_PORT" "$1"; }
routable() {
  tb_ctl services alarms -o json |
    jq -r --arg b "$TB_SVC_IP1:$PORT" '.services[0].backends[] | select(.backend == $b) | .routable'
}
is_out() { [[ "$(routable)" == "false" ]]; }
refuse_once() {
  tb_loadgen --http "$TB_SVC_IP1:$PORT" --count 1 --connection new --timeout-ms 1000 --no-per-request \
    --report "$TB_DIR/one.json" >/dev/null 2>&1 || true
}
# Repeats: restore by hand, one refused connect, wait until the backend is out.
trips() {
  local i
  faults '{"refuse": true}'
  for ((i = 0; i < SAMPLES; i++)); do
    tb_ctl restore alarms "$TB_SVC_IP1:$PORT" --reason "bench: next sample" >/dev/null
    refuse_once
    tb_wait_for "sample $i out of the table" 5 is_out >/dev/null 2>&1 || tb_die "sample $i: backend not taken out"
  done
  faults '{"reset": true}'
}
summary() {   # LABEL: microsecond samples on stdin -> "LABEL  n  p50  p99  max"
  sort -n | awk -v label="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { printf "%-34s %5s\n", label, "none"; exit }
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
    printf "%-34s %5d %10.1f %10.1f %10.1f\n", label, NR, p50, p99, v[NR] }'
}
crash_failures() {   # the crash scenario with the agent as it runs now: failed requests into CRASH_FAILED
  local report="$TB_DIR/crash-$1.json" victim="$victim_pid"
  tb_ctl restore alarms "$TB_SVC_IP1:$PORT" --reason "bench: crash run" >/dev/null
  tb_loadgen_bg "crash-$1" --http "$VIP:$PORT" --rate 2000 --duration 10 --connection new --concurrency 256 \
    --timeout-ms 2000 --no-per-request --report "$report"
  local load="$TB_LAST_PID"
  sleep 3   # a point inside the run
  kill -KILL "$victim"
  tb_wait_pid "$victim" || true
  tb_wait_pid "$load" || true
  # The next run's victim, on the same address.
  tb_start_testsvc "victim-after-$1" --http "$TB_SVC_IP1:$PORT" --control "$TB_SVC_IP1:$CTL_PORT" >&2
  victim_pid="$TB_LAST_PID"
  CRASH_FAILED="$(jq -r '(.outcomes | del(.http_status, .mllp_ack) | [.[]] | add) +
    ([.outcomes.http_status | to_entries[] | select(.key != "200") | .value] | add // 0)' "$report")"
}

# ---- kernel breaker -----------------------------------------------------------
tb_start_shhimd --policy "$policy"
trips
kernel_us="$TB_DIR/kernel-us.txt"
# Each trip's BACKEND_DOWN against the refusal event of the same connection
# stamped by the same XDP run (other hooks report it later, from the socket).
tb_ctl events --last 0 -o json | jq -r --arg s "$TB_SVC_IP1" '
  [.events[] | select(.server.address == $s)] as $e
  | $e[] | select(.kind == "backend_down") as $down
  | [$e[] | select(.kind == "refused" and .client.port == $down.client.port and .hook == $down.hook)
          | (($down.kernel_ts_ns | tonumber) - (.kernel_ts_ns | tonumber)) | if . < 0 then -. else . end]
  | select(length > 0) | min / 1000' >"$kernel_us"
crash_failures kernel
crash_kernel="$CRASH_FAILED"
tb_kill_shhimd TERM

# ---- userspace path -------------------------------------------------------------
tb_start_shhimd --policy "$policy" --no-kernel-breaker
mark="$(wc -l <"$TB_DIR/shhimd.log")"
trips
user_us="$TB_DIR/user-us.txt"
tail -n +"$((mark + 1))" "$TB_DIR/shhimd.log" | sed -n 's/.*userspace path took \([0-9]*\) us.*/\1/p' >"$user_us"
crash_failures user
crash_user="$CRASH_FAILED"

echo
echo "time from the kernel's stamp of the first hard evidence to the backend out of the kernel table (us):"
printf "%-34s %5s %10s %10s %10s\n" "path" "n" "p50" "p99" "max"
summary "kernel breaker (same XDP run)" <"$kernel_us"
summary "userspace path (ring + engine)" <"$user_us"
echo
echo "crash scenario, 2,000 new connections/s for 10 s, one primary killed after 3 s:"
printf "  failed requests: kernel breaker %s, userspace path only %s\n" "$crash_kernel" "$crash_user"
p99_user="$(sort -n "$user_us" | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR - 1) * 0.99) + 1]; else print 999999 }')"
tb_expect_ge "userspace path p99 within 1 ms (1000 us minus p99)" 0 "$((1000 - ${p99_user%.*}))"
tb_finish
