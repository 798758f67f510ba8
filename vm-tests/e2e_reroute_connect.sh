#!/usr/bin/env bash
# e2e_reroute_connect: socket-level reroute and the kernel circuit breaker.
#   A service on the virtual address 198.18.0.100:PORT (nothing has that
#   address) with primaries .10 and .11 and fallback .12. From the test
#   cgroup, every connect to the VIP is rewritten by cgroup/connect4 to a
#   primary: all requests succeed and both primaries get a share, the
#   fallback none. Then one primary's server is killed: the first connects
#   to it are refused, the kernel breaker (threshold 1: class emergency)
#   marks it DOWN_KERNEL in the pinned health map, the agent reports a
#   backend_down event, and every later connect succeeds on the survivor.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly PORT=8080
readonly VIP=198.18.0.100
readonly WARM=200          # requests before the kill
readonly AFTER=300         # requests after the kill
readonly CONCURRENCY=4     # at most this many connects can be in flight at the trip

tb_init e2e_reroute_connect
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
command -v bpftool >/dev/null || tb_die "bpftool is needed to read the pinned health map"
tb_create_netns
tb_create_cgroup

policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: e2e-reroute
services:
  - name: alarms
    address: $VIP:$PORT
    protocol: http
    class: emergency
    backends:
      primary: [$TB_SVC_IP1:$PORT, $TB_SVC_IP2:$PORT]
      fallback: [$TB_SVC_IP3:$PORT]
YAML

tb_start_testsvc a --http "$TB_SVC_IP1:$PORT"
pid_a="$TB_LAST_PID"
tb_start_testsvc b --http "$TB_SVC_IP2:$PORT"
tb_start_testsvc c --http "$TB_SVC_IP3:$PORT"
tb_start_shhimd --policy "$policy"

tb_check "cgroup/connect4 is attached" \
  bash -c "'$TB_SHHIMCTL' --socket '$TB_SOCKET' status -o json | jq -e '[.attachments[]? | select(.hook == \"cgroup/connect4\")] | length == 1' >/dev/null"

established() {   # ADDRESS: connections the XDP hook saw completed to ADDRESS:PORT
  tb_backend_field "$(tb_backends_json)" "$1" "$PORT" .conn_established
}
# outcome REPORT NAME: count of an outcome (connect_refused, ...) or HTTP status (200, ...)
outcome() { jq -r --arg o "$2" '.outcomes.http_status[$o] // .outcomes[$o] // 0 | numbers' "$1"; }

# connect_from_cgroup MARK: one TCP connect to the VIP from the test cgroup with
# SO_MARK = MARK (0: none); prints "connected <peer address>" or "failed <why>".
connect_from_cgroup() {
  sh -c "$TB__IN_CGROUP_AND_CLIENT" "$TB_CGROUP" "/run/netns/$TB_NS_CLIENT" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
mark = int(sys.argv[3], 0)
if mark:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
s.settimeout(1.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected", s.getpeername()[0])
except OSError as e:
    print("failed", type(e).__name__)
' "$VIP" "$PORT" "$1" </dev/null
}
# SHHIM_PROBE_MARK, from the one header that defines it
probe_mark="$(sed -n 's/^#define SHHIM_PROBE_MARK \(0x[0-9a-fA-F]*\).*/\1/p' "$TB_REPO_ROOT/bpf/shhim_abi.h")"
[ -n "$probe_mark" ] || tb_die "SHHIM_PROBE_MARK not found in bpf/shhim_abi.h"

# ---- 1. both primaries serve the VIP --------------------------------------
warm="$TB_DIR/warm.json"
tb_loadgen --http "$VIP:$PORT" --count "$WARM" --connection new --concurrency "$CONCURRENCY" \
  --timeout-ms 2000 --no-per-request --report "$warm" || tb_log "loadgen exited $?"
tb_expect_eq "warm-up: requests answered 200 through the VIP" "$WARM" "$(outcome "$warm" 200)"
all_counted() { (($(established "$TB_SVC_IP1") + $(established "$TB_SVC_IP2") >= WARM)); }
tb_wait_for "warm-up connections counted" 10 all_counted || true
a_before="$(established "$TB_SVC_IP1")"
b_before="$(established "$TB_SVC_IP2")"
tb_log "warm-up share: $TB_SVC_IP1 $a_before, $TB_SVC_IP2 $b_before"
tb_expect_ge "primary $TB_SVC_IP1 share of $WARM" $((WARM / 5)) "$a_before"
tb_expect_ge "primary $TB_SVC_IP2 share of $WARM" $((WARM / 5)) "$b_before"
tb_expect_eq "fallback $TB_SVC_IP3 unused while the primaries are up" 0 "$(established "$TB_SVC_IP3")"

# ---- 1b. shhimd's probes (SO_MARK = SHHIM_PROBE_MARK) are not steered -------
plain="$(connect_from_cgroup 0)"
tb_log "unmarked connect to the VIP: $plain"
tb_check "an unmarked connect to the VIP lands on a primary" \
  grep -Eq "^connected ($TB_SVC_IP1|$TB_SVC_IP2)\$" <<<"$plain"
marked="$(connect_from_cgroup "$probe_mark")"
tb_log "connect to the VIP with SO_MARK $probe_mark: $marked"
tb_check "a probe-marked connect to the VIP is left alone (nothing has the VIP: it fails)" \
  grep -Eq "^failed " <<<"$marked"

# ---- 2. kill primary a: the kernel breaker takes it out --------------------
tb_log "killing testsvc a (pid $pid_a)"
kill -KILL "$pid_a"
tb_wait_pid "$pid_a" || true

after="$TB_DIR/after.json"
tb_loadgen --http "$VIP:$PORT" --count "$AFTER" --connection new --concurrency "$CONCURRENCY" \
  --timeout-ms 2000 --no-per-request --report "$after" || tb_log "loadgen exited $? (a few refusals are expected)"
refused="$(outcome "$after" connect_refused)"
ok_after="$(outcome "$after" 200)"
tb_log "after the kill: $ok_after answered, $refused refused"
tb_expect_ge "refusals: at least the one that tripped the breaker" 1 "$refused"
tb_check "refusals: only connects in flight at the trip (<= $CONCURRENCY)" test "$refused" -le "$CONCURRENCY"
tb_expect_eq "after the kill: every other request answered" "$AFTER" "$((ok_after + refused))"

# The pinned health map: exactly one backend DOWN_KERNEL (state 1), and it is .10.
health="$TB_DIR/health.json"
bpftool -j map dump pinned "$TB_PIN_ROOT/shhim_backend_health" >"$health"
down="$(jq -c '[.[] | .formatted.value | select(.endpoint.family != 0 and .state != 0)]' "$health")"
printf '%s\n' "$down" >"$TB_DIR/down.json"
tb_expect_eq "backends not UP in the kernel" 1 "$(jq length <<<"$down")"
tb_expect_eq "the one down is $TB_SVC_IP1 (last address byte)" 10 "$(jq -r '.[0].endpoint.addr[15] // -1' <<<"$down")"
tb_expect_eq "its state is DOWN_KERNEL" 1 "$(jq -r '.[0].state // -1' <<<"$down")"
tb_expect_eq "tripped by a refusal" 1 "$(jq -r '.[0].trip_kind // -1' <<<"$down")"

backend_down_event() {
  tb_ctl events --last 0 -o json |
    jq -e --arg a "$TB_SVC_IP1" '[.events[]? | select(.kind == "backend_down" and .server.address == $a)] | length == 1' >/dev/null
}
tb_check "the agent reports one backend_down event for $TB_SVC_IP1" tb_wait_for "backend_down event" 10 backend_down_event

# ---- 3. from now on everything goes to the survivor ------------------------
b_mid="$(established "$TB_SVC_IP2")"
steady="$TB_DIR/steady.json"
tb_loadgen --http "$VIP:$PORT" --count "$AFTER" --connection new --concurrency "$CONCURRENCY" \
  --timeout-ms 2000 --no-per-request --report "$steady" || tb_log "loadgen exited $?"
tb_expect_eq "after the trip: all requests answered 200" "$AFTER" "$(outcome "$steady" 200)"
tb_expect_eq "after the trip: none refused" 0 "$(outcome "$steady" connect_refused)"
survivor_counted() { (($(established "$TB_SVC_IP2") - b_mid >= AFTER)); }
tb_check "survivor $TB_SVC_IP2 took all $AFTER" tb_wait_for "survivor counted" 10 survivor_counted
tb_expect_eq "fallback $TB_SVC_IP3 still unused (a primary is up)" 0 "$(established "$TB_SVC_IP3")"

tb_finish
