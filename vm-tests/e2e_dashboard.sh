#!/usr/bin/env bash
# e2e_dashboard: the dashboard page in a real browser.
#   Debian's Chromium, headless, driven by playwright-core
#   (vm-tests/browser/dashboard.test.mjs), loads shhimd's dashboard while
#   the test bed carries traffic to a policy's services: services, backends
#   (with pool and routing state) and flows render with live numbers, the
#   1 s history charts draw, the event feed shows the policy load. The
#   service fhir has two primary backends; one's server process is killed
#   while traffic to its own address runs: its refusals trip the kernel
#   breaker on XDP ingress (threshold 1), and within 2 s of the kill the page
#   shows it "ejected" and the reroute timeline shows the audit record
#   (EXPECT_EJECTION=0 turns that check into a SKIP). No console errors, no
#   request leaves the agent's origin; a full-page screenshot is kept as a
#   test artifact. /api/v1/services then agrees with `shhimctl services`.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"
# shellcheck source=vm-tests/lib/observe.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/observe.sh"

readonly BROWSER_DIR="$TB_REPO_ROOT/vm-tests/browser"
readonly ARTIFACTS="${SHHIM_ARTIFACTS_DIR:-$TB_BUILD/test-artifacts}"
readonly HTTP_PORT=8080 MLLP_PORT=2575
readonly TRAFFIC_SECONDS=90   # longer than the browser test needs; cleanup stops it
readonly FHIR_VIP=198.18.0.100

tb_init e2e_dashboard
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
obs_require_commands node npm curl jq
[[ -x /usr/bin/chromium ]] || tb_die "missing /usr/bin/chromium (run scripts/setup-deps.sh)"

# playwright-core from the committed lock file (it downloads no browser).
if [[ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]]; then
  tb_log "installing playwright-core (npm ci in $BROWSER_DIR)"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund) >"$TB_DIR/npm.log" 2>&1 ||
    { cat "$TB_DIR/npm.log" >&2; tb_die "npm ci failed"; }
fi

tb_create_netns
tb_create_cgroup

# fhir: a virtual address nothing answers on and two primary backends, .10
# and .11 (separate processes, so one can be killed alone); one hard
# failure trips the breaker. lab-hl7 on .12: its NACKs are errors the
# engine judges by rate, never enough in a row to trip its breaker.
policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: e2e-dashboard
services:
  - name: fhir
    address: $FHIR_VIP:$HTTP_PORT
    protocol: http
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$HTTP_PORT, $TB_SVC_IP2:$HTTP_PORT]
    thresholds:
      consecutive_failures: 1
      ejection_ms: 120000     # ejected (not yet probing) for the whole test
  - name: lab-hl7
    address: $TB_SVC_IP3:$MLLP_PORT
    protocol: mllp
    class: clinical
    backends:
      primary: [$TB_SVC_IP3:$MLLP_PORT]
    thresholds:
      error_rate: 0.02
      consecutive_failures: 1000
YAML

tb_start_testsvc fhir-a --http "$TB_SVC_IP1:$HTTP_PORT" --latency-ms 5
victim_pid="$TB_LAST_PID"
tb_start_testsvc fhir-b --http "$TB_SVC_IP2:$HTTP_PORT" --latency-ms 20 \
  --mllp "$TB_SVC_IP3:$MLLP_PORT"
# A trail of this run's own: the shared default would bring other runs'
# states back at start (restart reconstruction) and into the timeline.
tb_start_shhimd --http-listen "127.0.0.1:$OBS_HTTP_PORT" --policy "$policy"

# Steady traffic for the page to show, to each backend's own address. New
# connections to the victim, so that after the kill every request is a
# refused connect. No 5xx towards fhir: with its threshold of 1, one would
# trip the survivor's breaker too.
tb_loadgen_bg load-a --http "$TB_SVC_IP1:$HTTP_PORT" --rate 20 --duration "$TRAFFIC_SECONDS" \
  --connection new --concurrency 4 --timeout-ms 1000 --no-per-request --report /dev/null
tb_loadgen_bg load-b --http "$TB_SVC_IP2:$HTTP_PORT" --rate 20 --duration "$TRAFFIC_SECONDS" \
  --connection keepalive --concurrency 2 --status-mix 200:9,404:1 --no-per-request --report /dev/null
tb_loadgen_bg load-mllp --mllp "$TB_SVC_IP3:$MLLP_PORT" --rate 5 --duration "$TRAFFIC_SECONDS" \
  --connection keepalive --ack-mix AA:4,AE:1 --no-per-request --report /dev/null

agent="$(obs_agent_url)"
requests_of() {   # ADDRESS: requests the agent counted for ADDRESS:HTTP_PORT
  obs_curl -f "$agent/api/v1/dashboard" |
    jq -r --arg a "$1" '[.services[].backends[] | select(.backend.endpoint.address == $a) | .backend.requests | tonumber][0] // 0'
}
traffic_flowing() { (($(requests_of "$TB_SVC_IP1") > 0 && $(requests_of "$TB_SVC_IP2") > 0)); }
tb_check "agent counts traffic to both fhir backends" tb_wait_for "traffic counted" 15 traffic_flowing

mkdir -p "$ARTIFACTS"
screenshot="$ARTIFACTS/dashboard.png"
rm -f "$screenshot"
profile="$TB_DIR/chromium-profile"
mkdir -p "$profile"
tb_log "browser test: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright-core $(jq -r .version "$BROWSER_DIR/node_modules/playwright-core/package.json")"
browser_test() {
  DASHBOARD_URL="$agent/" \
    LIVE_BACKEND="$TB_SVC_IP2:$HTTP_PORT/tcp" \
    KILL_BACKEND="$TB_SVC_IP1:$HTTP_PORT/tcp" \
    KILL_PID="$victim_pid" \
    EXPECT_SERVICES="fhir,lab-hl7" \
    SCREENSHOT="$screenshot" \
    USER_DATA_DIR="$profile" \
    EXPECT_EJECTION="${EXPECT_EJECTION:-1}" \
    HOME="$TB_DIR" \
    tb_in_client timeout 120 node "$BROWSER_DIR/dashboard.test.mjs"
}
tb_check "browser test (checks above)" browser_test
tb_check "screenshot artifact written ($screenshot)" test -s "$screenshot"
tb_forget_pid "$victim_pid"   # killed by the browser test; reaped here
wait "$victim_pid" 2>/dev/null || true

# The kill as the agent saw it: refused connects to the victim.
refused_events() {
  (($(tb_ctl observe --type failure --backend "$TB_SVC_IP1:$HTTP_PORT" -o json | jq -s '[.[] | select(.failure.kind == "refused")] | length') > 0))
}
tb_check "shhimctl observe shows refused events for the killed backend" refused_events

# The page's routing view is the API's: /api/v1/services is the protobuf
# JSON of the same ServiceList `shhimctl services -o json` prints.
# (Two reads: retried until no window of the engine fell between them.)
states_of() { jq -c '[.services[] | {name, active_pool, backends: [.backends[] | {backend, pool, state, drained}]}]'; }
api_states="" ctl_states=""
same_states() {
  api_states="$(obs_curl -f "$agent/api/v1/services" | states_of)" &&
    ctl_states="$(tb_ctl services -o json | states_of)" &&
    [[ -n "$api_states" && "$api_states" == "$ctl_states" ]]
}
tb_wait_for "/api/v1/services == shhimctl services" 5 same_states || true
tb_expect_eq "/api/v1/services states == shhimctl services states" "$ctl_states" "$api_states"
victim_state() {
  jq -r --arg b "$TB_SVC_IP1:$HTTP_PORT" '.[] | select(.name == "fhir") | .backends[] | select(.backend == $b) | .state' <<<"$api_states"
}
tb_expect_eq "/api/v1/services?service=nope" 404 \
  "$(obs_curl -o /dev/null -w '%{http_code}' "$agent/api/v1/services?service=nope")"
metrics_show_ejected() {
  local metrics
  metrics="$(obs_curl -f "$agent/metrics")" &&
    grep -qxF "shhim_backend_state{service=\"fhir\",class=\"clinical\",backend=\"$TB_SVC_IP1:$HTTP_PORT\",state=\"ejected\"} 1" <<<"$metrics"
}
if [[ "${EXPECT_EJECTION:-1}" == 1 ]]; then
  tb_expect_eq "/api/v1/services: killed backend $TB_SVC_IP1:$HTTP_PORT" ejected "$(victim_state)"
  tb_check "/metrics: shhim_backend_state of the killed backend is ejected" metrics_show_ejected
fi

tb_finish
