#!/usr/bin/env bash
# e2e_reroute_scenarios: self-healing reroute under real failures (issue 4).
#   One emergency-class service on the virtual address 198.18.0.100:8080,
#   primaries .10 and .11, fallback .12, served through the cgroup connect
#   hooks to the load generator in the test cgroup. In order:
#   1. crash: 2,000 new connections/s for 10 s; primary .10's server is
#      killed after 3 s. Every failed request started before the kernel
#      tripped its breaker; the backend is ejected by the kernel, the
#      agent's audit record follows, the survivor takes the traffic; an
#      `observe -o json --follow` started before sees the failure and the
#      reroute entries in order, each a parseable FeedEvent.
#   2. restore: .10's server comes back; active probes (never patient
#      traffic) restore it and it takes traffic again.
#   3. 503 storm: .11 answers 503 to everything: ejected; probes (which get
#      503 too) keep it out; healed, it comes back.
#   4. hang: SYNs to .11 go unanswered (routed into a blackhole): the SYN
#      timeouts eject it through the userspace path.
#   5. fallback: both primaries refuse: the service moves to the fallback
#      pool and every request succeeds there; when they recover and pass
#      their probes it moves back after the policy's hold.
#   6. restart: kill -9 of shhimd while a backend is drained and another
#      ejected, under traffic: routing goes on (fail-open), and the restarted
#      agent shows the same states, rebuilt from the pinned maps and the
#      audit trail, whose chain stays intact.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly PORT=8080
readonly VIP=198.18.0.100
readonly CTL_PORT=9999
readonly GOOD_PATH=/fhir/Patient/example

tb_init e2e_reroute_scenarios
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
command -v jq >/dev/null || tb_die "jq is needed"
tb_create_netns
tb_create_cgroup

policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: e2e-reroute-scenarios
services:
  - name: alarms
    address: $VIP:$PORT
    protocol: http
    class: emergency
    backends:
      primary: [$TB_SVC_IP1:$PORT, $TB_SVC_IP2:$PORT]
      fallback: [$TB_SVC_IP3:$PORT]
    thresholds:
      ejection_ms: 1000
      fallback_hold_ms: 2000
    probe:
      http_path: $GOOD_PATH
      interval_ms: 200
      timeout_ms: 300
      successes: 3
YAML

start_backend() {   # NAME IP
  tb_start_testsvc "$1" --http "$2:$PORT" --control "$2:$CTL_PORT"
}
start_backend a "$TB_SVC_IP1"
pid_a="$TB_LAST_PID"
start_backend b "$TB_SVC_IP2"
start_backend c "$TB_SVC_IP3"
tb_start_shhimd --policy "$policy" --tick-ms 100

faults() {   # IP JSON: POST the knobs to that backend's control endpoint
  tb_fault "$1:$CTL_PORT" "$2"
}
services_json() { tb_ctl services alarms -o json; }
state_of() {   # BACKEND_IP: the engine's state, "drained" when drained
  services_json | jq -r --arg b "$1:$PORT" '.services[0].backends[] | select(.backend == $b) |
    if .drained then "drained" else .state end'
}
state_is() { [[ "$(state_of "$1")" == "$2" ]]; }
pool_is() { [[ "$(services_json | jq -r '.services[0].active_pool')" == "$1" ]]; }
outcome() { jq -r --arg o "$2" '.outcomes[$o] // .outcomes.http_status[$o] // 0' "$1"; }
audit_has() {   # ACTION BACKEND_IP ACTOR
  tb_ctl audit tail -n 200 -o json |
    jq -se --arg a "$1" --arg b "$2:$PORT" --arg who "$3" 'any(.[]; .action == $a and .backend == $b and .actor == $who)' >/dev/null
}
established() { tb_backend_field "$(tb_backends_json)" "$1" "$PORT" .conn_established; }
requests_ok() {   # COUNT NAME: COUNT requests through the VIP, all answered 200
  local report="$TB_DIR/$2.json"
  tb_loadgen --http "$VIP:$PORT" --count "$1" --connection new --concurrency 4 --timeout-ms 2000 \
    --no-per-request --report "$report" >/dev/null 2>&1 || true
  tb_expect_eq "$2: $1 requests through $VIP answered 200" "$1" "$(outcome "$report" 200)"
}

tb_check "all six connect/sendmsg/recvmsg hooks attached" \
  bash -c "'$TB_SHHIMCTL' --socket '$TB_SOCKET' status -o json | jq -e '[.attachments[]? | select(.hook | startswith(\"cgroup/\"))] | length >= 6' >/dev/null"
requests_ok 100 warmup
tb_check "explain: the anomaly engine scores a primary that had traffic" \
  tb_wait_for "an anomaly score for $TB_SVC_IP1" 10 \
  bash -c "'$TB_SHHIMCTL' --socket '$TB_SOCKET' explain alarms '$TB_SVC_IP1:$PORT' | grep -q 'score .* (normal\|score .* (degraded'"

# ---- 1. crash ---------------------------------------------------------------
observe_log="$TB_DIR/observe.jsonl"
tb_ctl_bg "$observe_log" "$TB_DIR/observe.err" observe --follow -o json --type failure --type reroute
observe_pid="$TB_LAST_PID"
crash="$TB_DIR/crash.json"
tb_loadgen_bg crash --http "$VIP:$PORT" --rate 2000 --duration 10 --connection new --concurrency 256 \
  --timeout-ms 2000 --report "$crash"
crash_pid="$TB_LAST_PID"
sleep 3   # a point in the middle of the run (not a wait for a condition)
tb_log "killing primary $TB_SVC_IP1 (testsvc pid $pid_a)"
kill -KILL "$pid_a"
tb_wait_pid "$pid_a" || true
tb_wait_pid "$crash_pid" || tb_log "loadgen exited non-zero (some requests failed, as expected)"

tb_wait_for "kernel breaker trip of $TB_SVC_IP1 reported" 10 \
  bash -c "'$TB_SHHIMCTL' --socket '$TB_SOCKET' events --last 0 -o json | jq -e --arg s '$TB_SVC_IP1' 'any(.events[]?; .kind == \"backend_down\" and .server.address == \$s)' >/dev/null"
trip_ns="$(tb_ctl events --last 0 -o json | jq -r --arg s "$TB_SVC_IP1" \
  '[.events[] | select(.kind == "backend_down" and .server.address == $s) | .time_unix_ns | tonumber] | min')"
total="$(jq '.requests | length' "$crash")"
failed="$(jq '[.requests[] | select(.outcome != "200")] | length' "$crash")"
late="$(jq --argjson t "$trip_ns" '[.requests[] | select(.outcome != "200" and (.start_unix_ns | tonumber) > $t)] | length' "$crash")"
tb_log "crash: $total requests, $failed failed, trip at $trip_ns"
tb_expect_ge "crash: at least 20,000 requests in 10 s" 19000 "$total"
tb_expect_eq "crash: failed requests that started after the kernel's trip" 0 "$late"
tb_check "crash: $TB_SVC_IP1 ejected" state_is "$TB_SVC_IP1" ejected
tb_check "crash: the audit record names the kernel as the actor" audit_has eject "$TB_SVC_IP1" kernel
after_trip_ok="$(jq --argjson t "$trip_ns" '[.requests[] | select((.start_unix_ns | tonumber) > $t and .outcome == "200")] | length' "$crash")"
tb_expect_ge "crash: requests after the trip answered (rebalanced on $TB_SVC_IP2)" 10000 "$after_trip_ok"

tb_wait_for "observe saw the reroute" 10 grep -q '"type":"reroute"' "$observe_log" || true
kill "$observe_pid" 2>/dev/null || true
tb_wait_pid "$observe_pid" || true
tb_check "observe: every line is a JSON FeedEvent" \
  bash -c "jq -e -s 'length > 0 and all(.[]; has(\"seq\") and (.type == \"failure\" or .type == \"reroute\"))' '$observe_log' >/dev/null"
tb_check "observe: the failure comes before the reroute, in order" \
  bash -c "jq -e -s --arg s '$TB_SVC_IP1' '([.[] | .seq | tonumber] | . == sort) and
    ([.[] | select(.backend.address == \$s)] | (map(.type) | index(\"failure\")) < (map(.type) | index(\"reroute\")))' '$observe_log' >/dev/null"

# ---- 2. restore by probes ---------------------------------------------------
start_backend a2 "$TB_SVC_IP1"
tb_check "restore: $TB_SVC_IP1 healthy again after its probes" tb_wait_for "$TB_SVC_IP1 healthy" 15 state_is "$TB_SVC_IP1" healthy
tb_check "restore: the engine restored it after probes" audit_has restore "$TB_SVC_IP1" engine
a_before="$(established "$TB_SVC_IP1")"
requests_ok 200 restored
tb_expect_ge "restore: $TB_SVC_IP1 takes connections again" $((a_before + 20)) "$(established "$TB_SVC_IP1")"

# ---- 3. 503 storm -----------------------------------------------------------
faults "$TB_SVC_IP2" '{"status_mix": "503:1"}'
tb_loadgen --http "$TB_SVC_IP2:$PORT" --count 3 --connection new --no-per-request --report "$TB_DIR/storm.json" >/dev/null 2>&1 || true
tb_check "503: $TB_SVC_IP2 ejected" tb_wait_for "$TB_SVC_IP2 out" 10 bash -c "[[ \$('$TB_SHHIMCTL' --socket '$TB_SOCKET' services alarms -o json | jq -r '.services[0].backends[] | select(.backend == \"$TB_SVC_IP2:$PORT\") | .routable') == false ]]"
requests_ok 200 storm-rerouted
faults "$TB_SVC_IP2" '{"reset": true}'
tb_check "503: healed, $TB_SVC_IP2 restored by probes" tb_wait_for "$TB_SVC_IP2 healthy" 20 state_is "$TB_SVC_IP2" healthy

# ---- 4. hang: SYNs unanswered -----------------------------------------------
tb_in_svc ip addr del "$TB_SVC_IP2/24" dev "$TB_IF_SVC"
tb_in_svc ip route add blackhole "$TB_SVC_IP2/32"
tb_in_client ip route add "$TB_SVC_IP2/32" via "$TB_SVC_IP1"
tb_loadgen --http "$TB_SVC_IP2:$PORT" --count 2 --connection new --concurrency 2 --timeout-ms 1500 \
  --no-per-request --report "$TB_DIR/hang.json" >/dev/null 2>&1 || true
tb_check "hang: $TB_SVC_IP2 ejected on SYN timeouts" tb_wait_for "$TB_SVC_IP2 ejected" 10 state_is "$TB_SVC_IP2" ejected
requests_ok 200 hang-rerouted
tb_in_client ip route del "$TB_SVC_IP2/32"
tb_in_svc ip route del blackhole "$TB_SVC_IP2/32"
tb_in_svc ip addr add "$TB_SVC_IP2/24" dev "$TB_IF_SVC"
tb_check "hang: answering again, $TB_SVC_IP2 restored" tb_wait_for "$TB_SVC_IP2 healthy" 20 state_is "$TB_SVC_IP2" healthy

# ---- 5. fallback and back ---------------------------------------------------
faults "$TB_SVC_IP1" '{"refuse": true}'
faults "$TB_SVC_IP2" '{"refuse": true}'
for ip in "$TB_SVC_IP1" "$TB_SVC_IP2"; do
  tb_loadgen --http "$ip:$PORT" --count 1 --connection new --timeout-ms 1000 --no-per-request \
    --report "$TB_DIR/refuse.json" >/dev/null 2>&1 || true
done
tb_check "fallback: both primaries out, the service on its fallback pool" tb_wait_for "fallback pool" 10 pool_is fallback
c_before="$(established "$TB_SVC_IP3")"
requests_ok 200 on-fallback
tb_expect_ge "fallback: $TB_SVC_IP3 served them" $((c_before + 200)) "$(established "$TB_SVC_IP3")"
faults "$TB_SVC_IP1" '{"reset": true}'
faults "$TB_SVC_IP2" '{"reset": true}'
tb_check "fallback: primaries recovered, back on the primary pool" tb_wait_for "primary pool" 30 pool_is primary
tb_check "fallback: the move back is recorded" \
  bash -c "'$TB_SHHIMCTL' --socket '$TB_SOCKET' audit tail -n 200 -o json | jq -se 'any(.[]; .backend == \"\" and .after == \"primary\" and .before == \"fallback\")' >/dev/null"
requests_ok 100 back-on-primary

# ---- 6. restart: kill -9 during an ejection and a drain ---------------------
tb_ctl drain alarms "$TB_SVC_IP2:$PORT" --reason "e2e: maintenance" >/dev/null
faults "$TB_SVC_IP1" '{"refuse": true}'
tb_loadgen --http "$TB_SVC_IP1:$PORT" --count 1 --connection new --timeout-ms 1000 --no-per-request \
  --report "$TB_DIR/refuse2.json" >/dev/null 2>&1 || true
tb_check "restart: $TB_SVC_IP1 ejected before the kill" tb_wait_for "$TB_SVC_IP1 out" 10 state_is "$TB_SVC_IP1" ejected
before="$TB_DIR/services-before.json"
services_json | jq -S '[.services[] | {active_pool, backends: [.backends[] | {backend, drained, routable, kernel_state}]}]' >"$before"
tb_loadgen_bg restart --http "$VIP:$PORT" --rate 200 --duration 6 --connection new --concurrency 32 \
  --timeout-ms 2000 --no-per-request --report "$TB_DIR/restart.json"
restart_pid="$TB_LAST_PID"
sleep 1   # a point inside the run
tb_kill_shhimd KILL
sleep 1   # traffic without any agent (fail-open: the kernel keeps routing)
tb_restart_shhimd
tb_wait_pid "$restart_pid" || true
tb_expect_eq "restart: every request during the kill and restart answered (on the fallback)" \
  1200 "$(outcome "$TB_DIR/restart.json" 200)"
after="$TB_DIR/services-after.json"
services_json | jq -S '[.services[] | {active_pool, backends: [.backends[] | {backend, drained, routable, kernel_state}]}]' >"$after"
tb_check "restart: the same routing states after the restart" diff -u "$before" "$after"
tb_check "restart: the audit trail's chain is intact" "$TB_SHHIMCTL" audit verify "$TB_DIR/audit.jsonl"

tb_finish
