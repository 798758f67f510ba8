#!/usr/bin/env bash
# e2e_stress_auto: automatic stress mode (issue 3 item 5), end to end.
#   shhimd starts with a policy that names the client link's capacity and
#   the stress thresholds (enter at ENTER of the capacity, leave below EXIT,
#   each held for HOLD_MS); the operator turns on `shhimctl stress auto`.
#   With only a trickle of traffic the kernel does not shed. A bulk upload
#   stream offering about twice the capacity then passes the threshold:
#   within a deadline the agent enters stress mode (the kernel sheds; bulk
#   packets are dropped by its token bucket). When the uploads stop, the
#   load falls below EXIT and, after the hysteresis, the agent leaves stress
#   mode (the kernel sheds nothing). Both transitions are checked with
#   deadlines, as events in the agent's feed (type "stress", with the
#   utilisation and threshold as the reason) and as lines in shhimd's log.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly CAPACITY_MBPS=2
readonly ENTER=0.6 EXIT=0.3 HOLD_MS=300
readonly UPLOAD_RATE=30                # uploads/s of 16 kB: ~3.9 Mbit/s offered, about 2x capacity
readonly UPLOAD_BODY_BYTES=16000
readonly UPLOAD_SECONDS=10
readonly PORT_BULK=8201 PORT_ALARM=8202

tb_init e2e_stress_auto
# shellcheck source=vm-tests/lib/classes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/classes.sh"
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup
tb_start_testsvc services --http "$TB_SVC_IP1:$PORT_BULK" --http "$TB_SVC_IP1:$PORT_ALARM"

policy="$TB_DIR/stress-auto.yaml"
{
  printf 'schema_version: 1\nname: e2e-stress-auto\nservices:\n'
  cl_service_yaml backups "$TB_SVC_IP1:$PORT_BULK" bulk
  cl_service_yaml alarms "$TB_SVC_IP1:$PORT_ALARM" life-critical
  # Bulk keeps half the link while shed: TCP held to a bucket of 1% (the
  # default) backs off so far that the load it still offers falls below
  # exit_utilization, and auto mode would leave and enter again and again.
  printf 'classes:\n  - name: bulk\n    stress_share: 0.5\n'
  printf 'interfaces:\n  - name: %s\n    role: clients\n    capacity_mbps: %s\n' "$TB_IF_CLIENT" "$CAPACITY_MBPS"
  # enabled: false: auto stress is the operator's choice here (shhimctl stress auto).
  printf 'stress:\n  enabled: false\n  enter_utilization: %s\n  exit_utilization: %s\n  hold_ms: %s\n' \
    "$ENTER" "$EXIT" "$HOLD_MS"
} >"$policy"
tb_start_shhimd --policy "$policy"
tb_check "shhimd runs the policy" cl_policy_is "$(cl_policy_version_of "$policy")"

tb_check "shhimctl stress auto" cl_quiet tb_ctl stress auto
status="$(tb_ctl classes -o json)"
tb_expect_eq "stress mode" auto "$(jq -r .stress.mode <<<"$status")"
tb_expect_eq "auto threshold shown (the policy's enter_utilization)" "$ENTER" "$(jq -r .stress.threshold <<<"$status")"

# A trickle (alarms, 20/s) for a few hold periods: far below the threshold.
tb_loadgen --http "$TB_SVC_IP1:$PORT_ALARM" --rate 20 --duration 2 --concurrency 2 \
  --report "$TB_DIR/trickle.json" --no-per-request 2>>"$TB_DIR/loadgen.log" || true
tb_expect_eq "stress active under a trickle of traffic" false "$(tb_ctl classes -o json | jq -r .stress.active)"
tb_expect_eq "stress events before any load" 0 "$(cl_feed_count stress)"

# Uploads at about twice the link's capacity.
body="$(head -c "$UPLOAD_BODY_BYTES" /dev/zero | tr '\0' 'x')"
tb_loadgen_bg uploads --http "$TB_SVC_IP1:$PORT_BULK" --rate "$UPLOAD_RATE" --duration "$UPLOAD_SECONDS" \
  --concurrency 8 --connection keepalive --timeout-ms 10000 --method POST --path /fhir/Binary \
  --body "$body" --report "$TB_DIR/uploads.json" --no-per-request
uploads=$TB_LAST_PID
load_start=$SECONDS
if tb_wait_for "auto stress to start shedding under load" 6 cl_stress_active true; then
  tb_log "stress mode entered $((SECONDS - load_start))s after the load started"
  tb_check "stress mode entered while the load runs" tb_running "$uploads"
else
  tb_check "stress mode entered within 6 s of a load at ~2x capacity" false
fi
status="$(tb_ctl classes -o json)"
tb_log "under load: level $(jq -r .stress.level <<<"$status"), utilisation $(jq -r .stress.utilisation <<<"$status")"
tb_expect_ge "stress level under load" 1 "$(jq -r .stress.level <<<"$status")"
entered='.stress.action == "entered" and .stress.cause == "auto"'
tb_expect_eq "feed: stress entered (auto)" 1 "$(cl_feed_count stress "$entered")"
notice="$(tb_ctl observe --type stress -o json | jq -c "select($entered)" | head -n1)"
[[ -n "$notice" ]] || notice='{}'
tb_expect_eq "feed: threshold in the enter notice" "$ENTER" "$(jq -r .stress.threshold <<<"$notice")"
tb_check "feed: utilisation in the enter notice >= threshold ($(jq -r .stress.utilisation <<<"$notice"))" \
  awk -v u="$(jq -r '.stress.utilisation // 0' <<<"$notice")" -v t="$ENTER" 'BEGIN { exit !(u >= t) }'
tb_check "shhimd log: stress mode entered, with the reason" \
  grep -q "stress mode entered (level 0 -> 1): auto: egress at [0-9]*% of capacity >= enter_utilization 60%" \
  "$TB_DIR/shhimd.log"
tb_wait_pid "$uploads" || true
tb_expect_ge "bulk packets shed while stress mode was on" 1 \
  "$(cl_counter <(tb_ctl classes -o json) "$TB_IF_CLIENT" bulk egress_drops)"

load_end=$SECONDS
if tb_wait_for "auto stress to stop shedding once the load is gone" 10 cl_stress_active false; then
  tb_log "stress mode left $((SECONDS - load_end))s after the load ended"
  tb_check "stress mode left after the load ended" true
else
  tb_check "stress mode left within 10 s of the load ending" false
fi
tb_expect_eq "feed: stress left (auto)" 1 \
  "$(cl_feed_count stress '.stress.action == "left" and .stress.cause == "auto" and .stress.threshold == '"$EXIT")"
tb_check "shhimd log: stress mode left, with the reason" \
  grep -q "stress mode left (level [0-9]* -> 0): auto: offered load at [0-9]*% of capacity < exit_utilization 30%" \
  "$TB_DIR/shhimd.log"
tb_expect_eq "stress mode after leaving (still auto)" auto "$(tb_ctl classes -o json | jq -r .stress.mode)"
tb_expect_eq "life-critical packets shed" 0 \
  "$(cl_counter <(tb_ctl classes -o json) "$TB_IF_CLIENT" life-critical egress_drops)"

tb_finish
