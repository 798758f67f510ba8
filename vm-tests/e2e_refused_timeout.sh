#!/usr/bin/env bash
# e2e_refused_timeout: connection failures, exactly.
#   K connects to a closed port of a live host: refused == K, each reported
#   once (backend counter and one "refused" event per connect), none
#   established. One connect into 198.18.1.0/24, which the services
#   namespace drops silently: the SYN is retransmitted past the agent's SYN
#   timeout, so that backend shows syn_timeouts >= 1 and a "syn_timeout"
#   event, and nothing was refused there.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly REFUSED_K=7
readonly CLOSED_PORT=9      # nothing listens there: the kernel answers RST
readonly DROPPED_PORT=8080
readonly SYN_TIMEOUT_MS=500 # the first SYN retransmission comes after ~1 s

tb_init e2e_refused_timeout
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup
tb_start_shhimd --syn-timeout-ms "$SYN_TIMEOUT_MS"

tb_log "$REFUSED_K connects to closed port $TB_SVC_IP1:$CLOSED_PORT"
refused_report="$TB_DIR/refused-report.json"
tb_loadgen --http "$TB_SVC_IP1:$CLOSED_PORT" --connect-only --count "$REFUSED_K" \
  --connection new --concurrency 1 --timeout-ms 2000 --report "$refused_report" ||
  tb_log "loadgen exited $? (failed connects are expected here)"

# Long enough for the 1 s SYN retransmission; shorter than the 3 s one is
# not required: the timeout is reported once per flow either way.
tb_log "one connect into the dropped range $TB_DROP_IP:$DROPPED_PORT"
timeout_report="$TB_DIR/timeout-report.json"
tb_loadgen --http "$TB_DROP_IP:$DROPPED_PORT" --connect-only --count 1 \
  --connection new --timeout-ms 2500 --report "$timeout_report" ||
  tb_log "loadgen exited $? (a timed-out connect is expected here)"

counted() {
  local json
  json="$(tb_backends_json)" || return 1
  (($(tb_backend_field "$json" "$TB_SVC_IP1" "$CLOSED_PORT" .refused) >= REFUSED_K)) &&
    (($(tb_backend_field "$json" "$TB_DROP_IP" "$DROPPED_PORT" .syn_timeouts) >= 1))
}
tb_wait_for "refused and SYN timeout counted" 10 counted || true
# Late duplicates would show up as a change between two snapshots.
stable() {
  local a b
  a="$(tb_ctl backends -o json | jq -S '[.backends[]? | del(.request_rate_per_second, .error_rate_per_second)]')" || return 1
  sleep 0.3
  b="$(tb_ctl backends -o json | jq -S '[.backends[]? | del(.request_rate_per_second, .error_rate_per_second)]')" || return 1
  [[ "$a" == "$b" ]]
}
tb_wait_for "backend counters stable" 10 stable || true

backends="$(tb_backends_json)"
events="$(tb_ctl events --last 0 -o json)"
printf '%s\n' "$backends" >"$TB_DIR/backends.json"
printf '%s\n' "$events" >"$TB_DIR/events.json"

field() { tb_backend_field "$backends" "$1" "$2" "$3"; }
count_events() {   # KIND ADDRESS PORT
  jq -r --arg k "$1" --arg a "$2" --argjson p "$3" \
    '[.events[]? | select(.kind == $k and .server.address == $a and ((.server.port // 0) | tonumber) == $p)] | length' \
    <<<"$events"
}

c="$TB_SVC_IP1:$CLOSED_PORT"
tb_expect_eq "loadgen: connects refused" "$REFUSED_K" \
  "$(jq -r '.outcomes.refused // 0' "$refused_report")"
tb_expect_eq "$c connection attempts" "$REFUSED_K" "$(field "$TB_SVC_IP1" $CLOSED_PORT .conn_attempts)"
tb_expect_eq "$c refused" "$REFUSED_K" "$(field "$TB_SVC_IP1" $CLOSED_PORT .refused)"
tb_expect_eq "$c established" 0 "$(field "$TB_SVC_IP1" $CLOSED_PORT .conn_established)"
tb_expect_eq "$c syn_timeouts" 0 "$(field "$TB_SVC_IP1" $CLOSED_PORT .syn_timeouts)"
tb_expect_eq "$c refused events" "$REFUSED_K" "$(count_events refused "$TB_SVC_IP1" $CLOSED_PORT)"
tb_expect_eq "$c other events" 0 \
  "$(jq -r --arg a "$TB_SVC_IP1" '[.events[]? | select(.server.address == $a and .kind != "refused")] | length' <<<"$events")"

d="$TB_DROP_IP:$DROPPED_PORT"
tb_expect_eq "loadgen: connect into the dropped range timed out" 1 "$(jq -r '.outcomes.timeout // 0' "$timeout_report")"
tb_expect_ge "$d syn_timeouts" 1 "$(field "$TB_DROP_IP" $DROPPED_PORT .syn_timeouts)"
tb_expect_eq "$d syn_timeouts (one connect, reported once)" 1 "$(field "$TB_DROP_IP" $DROPPED_PORT .syn_timeouts)"
tb_expect_eq "$d refused" 0 "$(field "$TB_DROP_IP" $DROPPED_PORT .refused)"
tb_expect_eq "$d established" 0 "$(field "$TB_DROP_IP" $DROPPED_PORT .conn_established)"
tb_expect_ge "$d syn_timeout events" 1 "$(count_events syn_timeout "$TB_DROP_IP" $DROPPED_PORT)"

tb_finish
