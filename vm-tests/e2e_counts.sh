#!/usr/bin/env bash
# e2e_counts: the kernel counts exactly what the client did.
#   N HTTP requests with a chosen 200/404/503 mix to one backend and M MLLP
#   messages with a chosen AA/AE/AR mix to another: `shhimctl backends -o json`
#   reports exactly those counts per backend, one http_5xx event per 503 and
#   one mllp_nack event per AE/AR. The server adds 40 ms: the p50 response
#   latency the agent derives from the kernel histogram is within 5% of the
#   p50 the client measured itself. A small IPv6 run checks the v6 path.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly HTTP_200=60 HTTP_404=25 HTTP_503=15
readonly MLLP_AA=40 MLLP_AE=6 MLLP_AR=4
readonly HTTP_N=$((HTTP_200 + HTTP_404 + HTTP_503))
readonly MLLP_N=$((MLLP_AA + MLLP_AE + MLLP_AR))
readonly V6_N=20
readonly ADDED_LATENCY_MS=40
readonly HTTP_PORT=8080 MLLP_PORT=2575

tb_init e2e_counts
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup

# Services first, then the agent: no readiness probe ever touches a backend,
# so every byte the agent sees comes from the load generator.
tb_start_testsvc http --http "$TB_SVC_IP1:$HTTP_PORT" --http "[$TB_SVC_IP6_1]:$HTTP_PORT" \
  --latency-ms "$ADDED_LATENCY_MS"
tb_start_testsvc mllp --mllp "$TB_SVC_IP2:$MLLP_PORT"
# shellcheck disable=SC2119  # no extra shhimd flags
tb_start_shhimd

http_report="$TB_DIR/http-report.json"
mllp_report="$TB_DIR/mllp-report.json"
v6_report="$TB_DIR/v6-report.json"

tb_log "sending $HTTP_N HTTP requests (200:$HTTP_200 404:$HTTP_404 503:$HTTP_503)"
tb_check "loadgen http exits 0" tb_loadgen --http "$TB_SVC_IP1:$HTTP_PORT" --count "$HTTP_N" \
  --concurrency 4 --connection keepalive \
  --status-mix "200:$HTTP_200,404:$HTTP_404,503:$HTTP_503" --report "$http_report"
tb_log "sending $MLLP_N MLLP messages (AA:$MLLP_AA AE:$MLLP_AE AR:$MLLP_AR)"
tb_check "loadgen mllp exits 0" tb_loadgen --mllp "$TB_SVC_IP2:$MLLP_PORT" --count "$MLLP_N" \
  --concurrency 2 --connection keepalive \
  --ack-mix "AA:$MLLP_AA,AE:$MLLP_AE,AR:$MLLP_AR" --report "$mllp_report"
tb_log "sending $V6_N HTTP requests over IPv6"
tb_check "loadgen http over IPv6 exits 0" tb_loadgen --http "[$TB_SVC_IP6_1]:$HTTP_PORT" \
  --count "$V6_N" --connection new --report "$v6_report"

# The agent reads the maps on request; wait until the last responses are in
# and two consecutive snapshots agree, then assert on that snapshot.
responses_reached() {
  local json
  json="$(tb_backends_json)" || return 1
  (($(tb_backend_field "$json" "$TB_SVC_IP1" "$HTTP_PORT" .responses) >= HTTP_N)) &&
    (($(tb_backend_field "$json" "$TB_SVC_IP2" "$MLLP_PORT" .responses) >= MLLP_N)) &&
    (($(tb_backend_field "$json" "$TB_SVC_IP6_1" "$HTTP_PORT" .responses) >= V6_N))
}
stable_snapshot() {
  local a b
  a="$(tb_backends_json)" || return 1
  sleep 0.3
  b="$(tb_backends_json)" || return 1
  [[ "$(jq -S 'del(.backends[]?.request_rate_per_second, .backends[]?.error_rate_per_second)' <<<"$a")" == \
    "$(jq -S 'del(.backends[]?.request_rate_per_second, .backends[]?.error_rate_per_second)' <<<"$b")" ]]
}
tb_wait_for "all responses counted" 15 responses_reached || true
tb_wait_for "backend counters stable" 10 stable_snapshot || true
backends="$(tb_backends_json)"
printf '%s\n' "$backends" >"$TB_DIR/backends.json"

field() { tb_backend_field "$backends" "$1" "$2" "$3"; }
h="$TB_SVC_IP1:$HTTP_PORT"
m="$TB_SVC_IP2:$MLLP_PORT"
tb_expect_eq "$h requests" "$HTTP_N" "$(field "$TB_SVC_IP1" $HTTP_PORT .requests)"
tb_expect_eq "$h responses" "$HTTP_N" "$(field "$TB_SVC_IP1" $HTTP_PORT .responses)"
tb_expect_eq "$h http 2xx" "$HTTP_200" "$(field "$TB_SVC_IP1" $HTTP_PORT .http.status_2xx)"
tb_expect_eq "$h http 4xx" "$HTTP_404" "$(field "$TB_SVC_IP1" $HTTP_PORT .http.status_4xx)"
tb_expect_eq "$h http 5xx" "$HTTP_503" "$(field "$TB_SVC_IP1" $HTTP_PORT .http.status_5xx)"
tb_expect_eq "$h http 1xx+3xx" 0 "$(($(field "$TB_SVC_IP1" $HTTP_PORT .http.status_1xx) + $(field "$TB_SVC_IP1" $HTTP_PORT .http.status_3xx)))"
tb_expect_eq "$h mllp acks" 0 "$(field "$TB_SVC_IP1" $HTTP_PORT '[.mllp // {} | .[] | tonumber] | add')"
tb_expect_eq "$h unparsed responses" 0 "$(field "$TB_SVC_IP1" $HTTP_PORT .app_unparsed)"
tb_expect_eq "$h protocol" tcp "$(jq -r --arg a "$TB_SVC_IP1" '.backends[] | select(.endpoint.address == $a) | .protocol' <<<"$backends")"

tb_expect_eq "$m requests" "$MLLP_N" "$(field "$TB_SVC_IP2" $MLLP_PORT .requests)"
tb_expect_eq "$m responses" "$MLLP_N" "$(field "$TB_SVC_IP2" $MLLP_PORT .responses)"
tb_expect_eq "$m mllp AA" "$MLLP_AA" "$(field "$TB_SVC_IP2" $MLLP_PORT .mllp.aa)"
tb_expect_eq "$m mllp AE" "$MLLP_AE" "$(field "$TB_SVC_IP2" $MLLP_PORT .mllp.ae)"
tb_expect_eq "$m mllp AR" "$MLLP_AR" "$(field "$TB_SVC_IP2" $MLLP_PORT .mllp.ar)"
tb_expect_eq "$m http statuses" 0 "$(field "$TB_SVC_IP2" $MLLP_PORT '[.http // {} | .[] | tonumber] | add')"
tb_expect_eq "$m unparsed responses" 0 "$(field "$TB_SVC_IP2" $MLLP_PORT .app_unparsed)"

v="[$TB_SVC_IP6_1]:$HTTP_PORT"
tb_expect_eq "$v requests" "$V6_N" "$(field "$TB_SVC_IP6_1" $HTTP_PORT .requests)"
tb_expect_eq "$v responses" "$V6_N" "$(field "$TB_SVC_IP6_1" $HTTP_PORT .responses)"
tb_expect_eq "$v http 2xx" "$V6_N" "$(field "$TB_SVC_IP6_1" $HTTP_PORT .http.status_2xx)"
tb_expect_eq "$v connections established" "$V6_N" "$(field "$TB_SVC_IP6_1" $HTTP_PORT .conn_established)"

# No connection failed anywhere in this run.
for ep in "$TB_SVC_IP1 $HTTP_PORT" "$TB_SVC_IP2 $MLLP_PORT" "$TB_SVC_IP6_1 $HTTP_PORT"; do
  read -r a p <<<"$ep"
  tb_expect_eq "$a:$p refused+syn_timeouts+resets" 0 \
    "$(($(field "$a" "$p" .refused) + $(field "$a" "$p" .syn_timeouts) + $(field "$a" "$p" .resets)))"
done

# Failure events: one per 503, one per AE/AR.
events="$(tb_ctl events --last 0 -o json)"
printf '%s\n' "$events" >"$TB_DIR/events.json"
count_events() {   # KIND ADDRESS PORT
  jq -r --arg k "$1" --arg a "$2" --argjson p "$3" \
    '[.events[]? | select(.kind == $k and .server.address == $a and ((.server.port // 0) | tonumber) == $p)] | length' \
    <<<"$events"
}
tb_expect_eq "$h http_5xx events" "$HTTP_503" "$(count_events http_5xx "$TB_SVC_IP1" $HTTP_PORT)"
tb_expect_eq "$m mllp_nack events" "$((MLLP_AE + MLLP_AR))" "$(count_events mllp_nack "$TB_SVC_IP2" $MLLP_PORT)"

# What the client saw: every request got the response it asked for.
report_outcome() {   # REPORT JQ
  jq -r "$2 // 0 | tonumber" "$1"
}
tb_expect_eq "loadgen http requests completed" "$HTTP_N" "$(report_outcome "$http_report" '.completed')"
tb_expect_eq "loadgen http errors" 0 "$(report_outcome "$http_report" '.errors')"
tb_expect_eq "loadgen http got 200/404/503" "$HTTP_200/$HTTP_404/$HTTP_503" \
  "$(jq -r '.outcomes.http_status | "\(."200" // 0)/\(."404" // 0)/\(."503" // 0)"' "$http_report")"
tb_expect_eq "loadgen mllp messages completed" "$MLLP_N" "$(report_outcome "$mllp_report" '.completed')"
tb_expect_eq "loadgen mllp errors" 0 "$(report_outcome "$mllp_report" '.errors')"
tb_expect_eq "loadgen mllp got AA/AE/AR" "$MLLP_AA/$MLLP_AE/$MLLP_AR" \
  "$(jq -r '.outcomes.mllp_ack | "\(.AA // 0)/\(.AE // 0)/\(.AR // 0)"' "$mllp_report")"
tb_expect_eq "loadgen http over IPv6 completed" "$V6_N" "$(report_outcome "$v6_report" '.completed')"

# p50: agent (kernel histogram, bucket midpoint) vs client (exact).
agent_p50="$(field "$TB_SVC_IP1" $HTTP_PORT .response.p50_seconds)"
client_p50="$(jq -r '.latency.p50_seconds' "$http_report")"
within_5pct() {
  awk -v a="$agent_p50" -v c="$client_p50" 'BEGIN {
    d = a - c; if (d < 0) d = -d
    printf "agent p50 %.3f ms, loadgen p50 %.3f ms, difference %.2f%%\n", a * 1000, c * 1000, (c > 0 ? 100 * d / c : 100)
    exit !(c > 0 && d <= 0.05 * c)
  }'
}
tb_check "p50 response latency within 5% of the client's" within_5pct
above_added_latency() { awk -v c="$client_p50" -v l="$ADDED_LATENCY_MS" 'BEGIN { exit !(c * 1000 >= l) }'; }
tb_check "client p50 ($client_p50 s) includes the server's added ${ADDED_LATENCY_MS} ms" above_added_latency

tb_finish
