#!/usr/bin/env bash
# e2e_prometheus: a real Prometheus server scrapes shhimd.
#   Debian's prometheus, started by this test in the client namespace on
#   loopback, scrapes shhimd's /metrics every second. After a known mix of
#   traffic (HTTP 200/404/503, MLLP AA/AE/AR, connects to a closed port),
#   the backend request, response, status and error counters Prometheus
#   stored equal what `shhimctl backends -o json` reports (and what the
#   client sent); the latency histogram's count and p50 bucket agree; the
#   exposition passes `promtool check metrics`; every query of the Grafana
#   dashboard (scripts/deploy/grafana/shhim.json) parses in this Prometheus
#   and those over backend metrics find series; the listener is bound to
#   127.0.0.1 and read-only; no series carries a client address. With a
#   policy routing both servers: one 0/1 shhim_backend_state per state, the
#   current one at 1; no fallback pool active; `shhimctl drain` shows as
#   state "drained" and one shhim_routing_changes_total{action="drain"}.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"
# shellcheck source=vm-tests/lib/observe.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/observe.sh"

readonly HTTP_200=40 HTTP_404=10 HTTP_503=10
readonly MLLP_AA=24 MLLP_AE=4 MLLP_AR=2
readonly HTTP_N=$((HTTP_200 + HTTP_404 + HTTP_503))
readonly MLLP_N=$((MLLP_AA + MLLP_AE + MLLP_AR))
readonly REFUSED_N=3
readonly ADDED_LATENCY_MS=40
readonly HTTP_PORT=8080 MLLP_PORT=2575 CLOSED_PORT=8080

tb_init e2e_prometheus
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
obs_require_commands prometheus promtool curl jq ss
tb_create_netns
tb_create_cgroup

# Both servers routed, so that the routing families have series. No
# breaker trips and no judged error rate: the only routing change is the
# test's own drain (a change of the series set between the last scrape and
# the exposition compared below would fail the sample count).
policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: e2e-prometheus
services:
  - name: ehr
    address: $TB_SVC_IP1:$HTTP_PORT
    protocol: http
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$HTTP_PORT]
    thresholds: {consecutive_failures: 1000, error_rate: 1}
  - name: lab
    address: $TB_SVC_IP2:$MLLP_PORT
    protocol: mllp
    class: clinical
    backends:
      primary: [$TB_SVC_IP2:$MLLP_PORT]
    thresholds: {consecutive_failures: 1000, error_rate: 1}
YAML

tb_start_testsvc http --http "$TB_SVC_IP1:$HTTP_PORT" --latency-ms "$ADDED_LATENCY_MS"
tb_start_testsvc mllp --mllp "$TB_SVC_IP2:$MLLP_PORT"
tb_start_shhimd --http-listen "127.0.0.1:$OBS_HTTP_PORT" --policy "$policy"

# ---- the listener: loopback only, read-only ----
listeners="$(tb_in_client ss -Hltn "sport = :$OBS_HTTP_PORT" | awk '{print $4}' | sort -u | paste -sd' ')"
tb_expect_eq "HTTP listener bound to" "127.0.0.1:$OBS_HTTP_PORT" "$listeners"
agent="$(obs_agent_url)"
tb_expect_eq "POST /metrics" 405 "$(obs_curl -o /dev/null -w '%{http_code}' -X POST "$agent/metrics")"
tb_expect_eq "DELETE /" 405 "$(obs_curl -o /dev/null -w '%{http_code}' -X DELETE "$agent/")"
tb_expect_eq "GET /metrics with a foreign Host (DNS rebinding)" 421 \
  "$(obs_curl -o /dev/null -w '%{http_code}' -H 'Host: shhim.example:9464' "$agent/metrics")"
tb_expect_eq "GET /metrics content type" "text/plain; version=0.0.4; charset=utf-8" \
  "$(obs_curl -o /dev/null -w '%{content_type}' "$agent/metrics")"

obs_start_prometheus
up_is_1() { [[ "$(obs_prom_value 'up{job="shhimd"}')" == 1 ]]; }
tb_check "prometheus scrapes shhimd (up == 1)" tb_wait_for "up{job=shhimd} == 1" 20 up_is_1

# ---- traffic with known outcomes ----
tb_log "sending $HTTP_N HTTP requests (200:$HTTP_200 404:$HTTP_404 503:$HTTP_503), $MLLP_N MLLP messages, $REFUSED_N connects to a closed port"
tb_check "loadgen http exits 0" tb_loadgen --http "$TB_SVC_IP1:$HTTP_PORT" --count "$HTTP_N" \
  --concurrency 4 --connection keepalive --status-mix "200:$HTTP_200,404:$HTTP_404,503:$HTTP_503" \
  --report "$TB_DIR/http-report.json"
tb_check "loadgen mllp exits 0" tb_loadgen --mllp "$TB_SVC_IP2:$MLLP_PORT" --count "$MLLP_N" \
  --concurrency 2 --connection keepalive --ack-mix "AA:$MLLP_AA,AE:$MLLP_AE,AR:$MLLP_AR" \
  --report "$TB_DIR/mllp-report.json"
tb_check "loadgen connect-only exits 0" tb_loadgen --http "$TB_SVC_IP3:$CLOSED_PORT" --connect-only \
  --count "$REFUSED_N" --timeout-ms 2000 --report "$TB_DIR/refused-report.json"

# Until the agent has counted everything and its answer stops changing.
counted() {
  local json
  json="$(tb_backends_json)" || return 1
  (($(tb_backend_field "$json" "$TB_SVC_IP1" $HTTP_PORT .responses) >= HTTP_N)) &&
    (($(tb_backend_field "$json" "$TB_SVC_IP2" $MLLP_PORT .responses) >= MLLP_N)) &&
    (($(tb_backend_field "$json" "$TB_SVC_IP3" $CLOSED_PORT .refused) >= REFUSED_N))
}
strip_rates() { jq -S 'del(.backends[]?.request_rate_per_second, .backends[]?.error_rate_per_second)'; }
stable() {
  local a b
  a="$(tb_backends_json | strip_rates)" || return 1
  sleep 0.3
  b="$(tb_backends_json | strip_rates)" || return 1
  [[ "$a" == "$b" ]]
}
tb_wait_for "all outcomes counted" 15 counted || true
tb_wait_for "backend counters stable" 10 stable || true
backends="$(tb_backends_json)"
printf '%s\n' "$backends" >"$TB_DIR/backends.json"
stable_at="$(date +%s.%N)"

# A scrape strictly after the counters settled: every sample Prometheus
# returns from here on was taken from the settled state.
scraped_after() {
  local ts
  ts="$(obs_prom_value 'timestamp(up{job="shhimd"})')"
  [[ "$ts" != none ]] && awk -v t="$ts" -v s="$stable_at" 'BEGIN { exit !(t > s + 0.05) }'
}
tb_check "prometheus scraped after the counters settled" tb_wait_for "a scrape after $stable_at" 15 scraped_after

# ---- Prometheus == shhimctl, per backend and counter ----
field() { tb_backend_field "$backends" "$1" "$2" "$3"; }
prom() {   # METRIC BACKEND [EXTRA_MATCHERS]
  local v
  v="$(obs_prom_value "$1{job=\"shhimd\",backend=\"$2\"${3:+,$3}}")"
  [[ "$v" == none ]] && { echo none; return; }
  printf '%s\n' "$v"
}
compare() {   # DESCRIPTION SHHIMCTL_VALUE PROMETHEUS_VALUE
  tb_expect_eq "$1: prometheus == shhimctl ($2)" "$2" "$3"
}

h="$TB_SVC_IP1:$HTTP_PORT" m="$TB_SVC_IP2:$MLLP_PORT" r="$TB_SVC_IP3:$CLOSED_PORT"
for ep in "$TB_SVC_IP1 $HTTP_PORT" "$TB_SVC_IP2 $MLLP_PORT" "$TB_SVC_IP3 $CLOSED_PORT"; do
  read -r a p <<<"$ep"
  b="$a:$p"
  compare "$b requests_total" "$(field "$a" "$p" .requests)" "$(prom shhim_backend_requests_total "$b")"
  compare "$b responses_total" "$(field "$a" "$p" .responses)" "$(prom shhim_backend_responses_total "$b")"
  compare "$b connection_attempts_total" "$(field "$a" "$p" .conn_attempts)" \
    "$(prom shhim_backend_connection_attempts_total "$b")"
  compare "$b errors_total{kind=refused}" "$(field "$a" "$p" .refused)" \
    "$(prom shhim_backend_errors_total "$b" 'kind="refused"')"
  compare "$b errors_total{kind=syn_timeout}" "$(field "$a" "$p" .syn_timeouts)" \
    "$(prom shhim_backend_errors_total "$b" 'kind="syn_timeout"')"
  compare "$b errors_total{kind=reset}" "$(field "$a" "$p" .resets)" \
    "$(prom shhim_backend_errors_total "$b" 'kind="reset"')"
  compare "$b errors_total{kind=http_5xx}" "$(field "$a" "$p" .http.status_5xx)" \
    "$(prom shhim_backend_errors_total "$b" 'kind="http_5xx"')"
  compare "$b errors_total{kind=mllp_nack}" \
    "$(($(field "$a" "$p" .mllp.ae) + $(field "$a" "$p" .mllp.ar) + $(field "$a" "$p" .mllp.ce) + $(field "$a" "$p" .mllp.cr)))" \
    "$(prom shhim_backend_errors_total "$b" 'kind="mllp_nack"')"
  compare "$b sum of errors_total" \
    "$(($(field "$a" "$p" .refused) + $(field "$a" "$p" .syn_timeouts) + $(field "$a" "$p" .resets) + $(field "$a" "$p" .icmp_errors) + $(field "$a" "$p" .http.status_5xx) + $(field "$a" "$p" .mllp.ae) + $(field "$a" "$p" .mllp.ar) + $(field "$a" "$p" .mllp.ce) + $(field "$a" "$p" .mllp.cr)))" \
    "$(obs_prom_value "sum(shhim_backend_errors_total{job=\"shhimd\",backend=\"$b\"})")"
done
compare "$h http_responses_total{code=2xx}" "$(field "$TB_SVC_IP1" $HTTP_PORT .http.status_2xx)" \
  "$(prom shhim_backend_http_responses_total "$h" 'code="2xx"')"
compare "$h http_responses_total{code=4xx}" "$(field "$TB_SVC_IP1" $HTTP_PORT .http.status_4xx)" \
  "$(prom shhim_backend_http_responses_total "$h" 'code="4xx"')"
for ack in AA AE AR; do
  lower="$(tr '[:upper:]' '[:lower:]' <<<"$ack")"
  compare "$m mllp_acks_total{ack=$ack}" "$(field "$TB_SVC_IP2" $MLLP_PORT ".mllp.$lower")" \
    "$(prom shhim_backend_mllp_acks_total "$m" "ack=\"$ack\"")"
done

# ... and both equal what the client sent.
tb_expect_eq "$h requests_total (client sent)" "$HTTP_N" "$(prom shhim_backend_requests_total "$h")"
tb_expect_eq "$h errors_total{kind=http_5xx} (client asked)" "$HTTP_503" "$(prom shhim_backend_errors_total "$h" 'kind="http_5xx"')"
tb_expect_eq "$m mllp_acks_total{ack=AE} (client asked)" "$MLLP_AE" "$(prom shhim_backend_mllp_acks_total "$m" 'ack="AE"')"
tb_expect_eq "$r errors_total{kind=refused} (client connects)" "$REFUSED_N" "$(prom shhim_backend_errors_total "$r" 'kind="refused"')"
tb_expect_eq "events_total{kind=http_5xx}" "$HTTP_503" "$(obs_prom_value 'shhim_events_total{job="shhimd",kind="http_5xx"}')"
tb_expect_eq "events_total{kind=mllp_nack}" "$((MLLP_AE + MLLP_AR))" "$(obs_prom_value 'shhim_events_total{job="shhimd",kind="mllp_nack"}')"
tb_expect_eq "events_total{kind=refused}" "$REFUSED_N" "$(obs_prom_value 'shhim_events_total{job="shhimd",kind="refused"}')"
tb_expect_eq "events_lost_total" 0 "$(obs_prom_value 'shhim_events_lost_total{job="shhimd"}')"

# ---- histograms ----
tb_expect_eq "$h response histogram _count == responses" "$(field "$TB_SVC_IP1" $HTTP_PORT .responses)" \
  "$(prom shhim_backend_response_duration_seconds_count "$h")"
tb_expect_eq "$h handshake histogram _count == connections established" \
  "$(field "$TB_SVC_IP1" $HTTP_PORT .conn_established)" "$(prom shhim_backend_handshake_duration_seconds_count "$h")"
p50="$(obs_prom_value "histogram_quantile(0.5, shhim_backend_response_duration_seconds_bucket{job=\"shhimd\",backend=\"$h\"})")"
agent_p50="$(field "$TB_SVC_IP1" $HTTP_PORT .response.p50_seconds)"
p50_in_bucket() { awk -v q="$p50" -v a="$agent_p50" 'BEGIN { exit !(q > 0.025 && q <= 0.05 && a > 0.025 && a <= 0.05) }'; }
tb_check "p50 from the le buckets ($p50 s) and the agent's p50 ($agent_p50 s) both in (0.025, 0.05] (server adds ${ADDED_LATENCY_MS} ms)" p50_in_bucket
inf="$(prom shhim_backend_response_duration_seconds_bucket "$h" 'le="+Inf"')"
tb_expect_eq "$h le=+Inf bucket == _count" "$(prom shhim_backend_response_duration_seconds_count "$h")" "$inf"
tb_expect_eq "$h le=0.025 bucket (nothing faster than the added ${ADDED_LATENCY_MS} ms)" 0 \
  "$(prom shhim_backend_response_duration_seconds_bucket "$h" 'le="0.025"')"

# ---- routing: backend states, pools, routing changes ----
for b in "$h" "$m"; do
  tb_expect_eq "$b shhim_backend_state{state=healthy}" 1 "$(prom shhim_backend_state "$b" 'state="healthy"')"
  tb_expect_eq "$b shhim_backend_state series (one per state)" 5 \
    "$(obs_prom_value "count(shhim_backend_state{job=\"shhimd\",backend=\"$b\"})")"
  tb_expect_eq "$b shhim_backend_state summed over states" 1 \
    "$(obs_prom_value "sum(shhim_backend_state{job=\"shhimd\",backend=\"$b\"})")"
done
tb_expect_eq "shhim_service_fallback_active{service=ehr}" 0 \
  "$(obs_prom_value 'shhim_service_fallback_active{job="shhimd",service="ehr"}')"
tb_check "shhimctl drain ehr $h" tb_ctl drain ehr "$h" --reason "e2e_prometheus: routing metrics"
drained_scraped() {
  [[ "$(prom shhim_backend_state "$h" 'state="drained"')" == 1 ]] &&
    [[ "$(obs_prom_value 'shhim_routing_changes_total{job="shhimd",service="ehr",action="drain"}')" == 1 ]]
}
tb_check "prometheus scrapes the drain: state drained, one routing change" \
  tb_wait_for "drain scraped" 10 drained_scraped
tb_expect_eq "$h shhim_backend_state{state=healthy} after the drain" 0 "$(prom shhim_backend_state "$h" 'state="healthy"')"
tb_expect_eq "drain counted with the caller as actor" 1 \
  "$(obs_prom_value 'shhim_routing_changes_total{job="shhimd",service="ehr",action="drain",actor="uid:0"}')"
tb_expect_eq "$m untouched by the drain (state healthy)" 1 "$(prom shhim_backend_state "$m" 'state="healthy"')"

# ---- the Grafana dashboard queries these metrics: every query parses, and
# every one over backend metrics finds series ----
grafana="$TB_REPO_ROOT/scripts/deploy/grafana/shhim.json"
dashboard_queries=0 bad_queries=()
while IFS= read -r expr; do
  dashboard_queries=$((dashboard_queries + 1))
  # shellcheck disable=SC2016  # Grafana's $variables, literally
  q="$(sed -e 's/\$__rate_interval/10s/g' -e 's/\$__range/5m/g' \
    -e 's/"\$service"/".*"/g' -e 's/"\$class"/".*"/g' -e 's/"\$backend"/".*"/g' <<<"$expr")"
  answer="$(obs_curl -G "$(obs_prom_url)/api/v1/query" --data-urlencode "query=$q" || true)"
  if [[ "$(jq -r .status <<<"$answer" 2>/dev/null)" != success ]]; then
    bad_queries+=("does not parse: $expr")
  elif [[ "$expr" == *shhim_backend_* ]] && (($(jq '.data.result | length' <<<"$answer") == 0)); then
    bad_queries+=("no series: $expr")
  fi
done < <(jq -r '.. | objects | select(has("expr")) | .expr' "$grafana")
tb_expect_ge "Grafana dashboard queries checked" 20 "$dashboard_queries"
tb_expect_eq "Grafana queries that fail or find nothing" "" "$(printf '%s\n' "${bad_queries[@]}" | sed '/^$/d')"

# ---- the exposition itself ----
obs_curl -f "$agent/metrics" >"$TB_DIR/metrics.txt"
promtool_out="$(promtool check metrics <"$TB_DIR/metrics.txt" 2>&1)" && promtool_rc=0 || promtool_rc=$?
printf '%s\n' "$promtool_out" >"$TB_DIR/promtool.txt"
tb_expect_eq "promtool check metrics exit status" 0 "$promtool_rc"
tb_expect_eq "promtool check metrics findings" "" "$promtool_out"
tb_expect_eq "series naming the client's address (per-flow series)" 0 \
  "$(grep -cE "${TB_CLIENT_IP//./\\.}([^0-9]|\$)" "$TB_DIR/metrics.txt" || true)"
tb_expect_eq "backends in the exposition" 3 \
  "$(grep -o 'backend="[^"]*"' "$TB_DIR/metrics.txt" | sort -u | wc -l)"
samples="$(grep -vc '^#' "$TB_DIR/metrics.txt")"
tb_expect_eq "samples Prometheus scraped == samples exposed" "$samples" \
  "$(obs_prom_value 'scrape_samples_scraped{job="shhimd"}')"
tb_expect_eq "shhim_build_info" 1 "$(obs_prom_value 'shhim_build_info{job="shhimd"}')"

tb_finish
