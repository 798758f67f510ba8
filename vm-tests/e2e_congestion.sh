#!/usr/bin/env bash
# e2e_congestion: priority under congestion (issue 3), driven the way an
# operator drives shhim: `shhimd --policy FILE` and `shhimctl stress on`.
#   Seven HTTP services, one per priority class, behind the client's link.
#   The link's capacity is 40% of the load offered to it: life-critical and
#   emergency send light request streams (alarms, orders), the five other
#   classes heavy uploads. The policy names the link's capacity, so shhimd
#   installs its HTB tree on the link (the queue forms where the class marks
#   decide who goes first); `shhimctl stress on` holds the shed classes to
#   their token buckets in TC egress.
#   A control run first, without shhim: the same load through a plain FIFO
#   shaper at the same capacity (no shhimd running). Then shhimd starts with
#   the policy; the light streams alone give the unloaded p99 (their
#   services take SERVICE_MS to answer, as a real service would: with
#   answers in tens of microseconds, the p99 of two shared CPUs' scheduling
#   noise would be measured instead of the network). Then all seven run at
#   once for DURATION seconds in stress mode. Asserted (shhim figures only):
#   life-critical and emergency >= 99.9% of requests answered 200, p99 <= 2x
#   the unloaded p99, never a shed packet, never held back by HTB; the shed
#   classes absorb the loss. The control figures are printed beside them
#   (and the control must show that the load does congest the link).
#
# Environment:
#   SHHIM_CONGESTION_SECONDS  congested run, default 22 (at least 20)
#   SHHIM_CONGESTION_RESULTS  if set, a file to write the side-by-side
#                             figures to (scripts/bench.sh prints them)
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly DURATION=${SHHIM_CONGESTION_SECONDS:-22}
readonly BASELINE_SECONDS=12
readonly CONTROL_SECONDS=12
readonly LIGHT_RATE=50                 # requests/s of life-critical and of emergency
# Uploads/s of each of the five other classes. The link is slow rather than
# the load large: what matters is the ratio, and a small absolute load keeps
# the two shared CPUs from adding scheduling delay to every latency.
readonly HEAVY_RATE=10
readonly CAPACITY_MBPS=3               # the policy's unit is Mbit/s
readonly BASE_PORT=8001                # class id c listens on BASE_PORT + c
readonly SERVICE_MS=2                  # answer time of the life-critical and emergency services

tb_init e2e_congestion
# shellcheck source=vm-tests/lib/classes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/classes.sh"
((DURATION >= 20)) || tb_die "SHHIM_CONGESTION_SECONDS must be at least 20"
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup

# Offered load = capacity / 40%. A light request is well under 300 bytes on
# the wire; an upload carries its body plus ~400 bytes of headers.
capacity_bps=$((CAPACITY_MBPS * 1000000))
offered_bps=$((capacity_bps * 100 / 40))
heavy_body_bytes=$(((offered_bps / 8 - 2 * LIGHT_RATE * 300) / (5 * HEAVY_RATE) - 400))
tb_log "offered ~$((offered_bps / 1000)) kbit/s (uploads of $heavy_body_bytes bytes);" \
  "link capacity $((capacity_bps / 1000)) kbit/s (40%)"

# Two server processes, as two hosts would be: the alarm and order services
# do not wait behind the upload services' reads.
urgent=()
others=()
for c in "${!CL_CLASSES[@]}"; do
  if ((c < 2)); then urgent+=(--http "$TB_SVC_IP1:$((BASE_PORT + c))"); else others+=(--http "$TB_SVC_IP1:$((BASE_PORT + c))"); fi
done
tb_start_testsvc urgent "${urgent[@]}" --latency-ms "$SERVICE_MS"
tb_start_testsvc uploads "${others[@]}"

# The policy: one service per class, the link with its capacity; stress
# mode stays off until the operator turns it on.
policy="$TB_DIR/congestion.yaml"
{
  printf 'schema_version: 1\nname: e2e-congestion\nservices:\n'
  for c in "${!CL_CLASSES[@]}"; do
    cl_service_yaml "svc-${CL_CLASSES[$c]}" "$TB_SVC_IP1:$((BASE_PORT + c))" "${CL_CLASSES[$c]}"
  done
  printf 'interfaces:\n  - name: %s\n    role: clients\n    capacity_mbps: %s\n' "$TB_IF_CLIENT" "$CAPACITY_MBPS"
} >"$policy"
tb_check "policy file is valid (shhimctl policy check)" cl_quiet "$TB_SHHIMCTL" policy check "$policy"

light() {   # light NAME CLASS_ID SECONDS
  tb_loadgen_bg "$1" --http "$TB_SVC_IP1:$((BASE_PORT + $2))" --rate "$LIGHT_RATE" --duration "$3" \
    --concurrency 8 --connection keepalive --timeout-ms 5000 --report "$TB_DIR/$1.json" --no-per-request
}
heavy() {   # heavy NAME CLASS_ID SECONDS
  tb_loadgen_bg "$1" --http "$TB_SVC_IP1:$((BASE_PORT + $2))" --rate "$HEAVY_RATE" --duration "$3" \
    --concurrency 8 --connection keepalive --timeout-ms 10000 --method POST --path /fhir/Observation \
    --body "$body" --report "$TB_DIR/$1.json" --no-per-request
}
body="$(head -c "$heavy_body_bytes" /dev/zero | tr '\0' 'x')"

all_seven() {   # all_seven PREFIX SECONDS: every class at once, waits for all
  local pids=() c
  light "$1-0" 0 "$2"
  pids+=("$TB_LAST_PID")
  light "$1-1" 1 "$2"
  pids+=("$TB_LAST_PID")
  for c in 2 3 4 5 6; do
    heavy "$1-$c" "$c" "$2"
    pids+=("$TB_LAST_PID")
  done
  for c in "${pids[@]}"; do tb_wait_pid "$c" || true; done
}

# --- 0. control: no shhim, the link as a plain FIFO shaper ------------------
tb_in_client tc qdisc replace dev "$TB_IF_CLIENT" root tbf rate "${capacity_bps}bit" burst 4kb latency 400ms
tb_log "control (no shhimd): all seven classes for ${CONTROL_SECONDS}s through a FIFO shaper at the same capacity"
all_seven control "$CONTROL_SECONDS"

# --- 1. shhimd with the policy: HTB replaces the shaper -----------------------
tb_start_shhimd --policy "$policy"
tb_check "shhimd runs the policy given with --policy" cl_policy_is "$(cl_policy_version_of "$policy")"
root_qdisc="$(tb_in_client tc qdisc show dev "$TB_IF_CLIENT" root)"
tb_check "root qdisc of $TB_IF_CLIENT is shhim's HTB ($root_qdisc)" grep -q "htb 5348: root" <<<"$root_qdisc"
tb_expect_eq "stress mode after start (the policy leaves it off)" off "$(tb_ctl classes -o json | jq -r .stress.mode)"

# --- 2. unloaded: the light streams alone ------------------------------------
tb_log "baseline: life-critical and emergency alone for ${BASELINE_SECONDS}s"
light base-0 0 "$BASELINE_SECONDS"
pid_lc=$TB_LAST_PID
light base-1 1 "$BASELINE_SECONDS"
pid_em=$TB_LAST_PID
tb_wait_pid "$pid_lc" || true
tb_wait_pid "$pid_em" || true
for c in 0 1; do
  tb_expect_ge "baseline ${CL_CLASSES[$c]} answered" "$(cl_planned "$TB_DIR/base-$c.json")" \
    "$(cl_ok "$TB_DIR/base-$c.json")"
done
base_p99_lc=$(cl_p99_us "$TB_DIR/base-0.json")
control_p99_lc=$(cl_p99_us "$TB_DIR/control-0.json")
TB_CHECKS=$((TB_CHECKS + 1))
if ((control_p99_lc > 2 * base_p99_lc)); then
  printf 'ok    without shhim the link congests: control life-critical p99 %s us > 2x unloaded %s us\n' \
    "$control_p99_lc" "$base_p99_lc"
else
  printf 'FAIL  control life-critical p99 %s us is within 2x %s us: the load does not congest the link\n' \
    "$control_p99_lc" "$base_p99_lc"
  TB_FAILURES=$((TB_FAILURES + 1))
fi

# --- 3. congestion, stress mode on (shhimctl stress on) ---------------------
retrans_before=$(cl_tcp_retrans)
tb_check "shhimctl stress on" cl_quiet tb_ctl stress on
tb_wait_for "the kernel sheds (stress active)" 10 cl_stress_active true ||
  tb_die "stress mode did not become active after shhimctl stress on"
tb_expect_eq "feed: stress entered by the operator" 1 \
  "$(cl_feed_count stress '.stress.action == "entered" and .stress.cause == "manual" and (.stress.actor | startswith("uid "))')"
tb_log "congestion: all seven classes for ${DURATION}s"
all_seven load "$DURATION"
report="$TB_DIR/classes.json"
tb_ctl classes -o json >"$report"
tb_expect_eq "stress mode still on at the end of the run" "on true" \
  "$(jq -r '"\(.stress.mode) \(.stress.active)"' "$report")"
tb_check "shhimctl stress off" cl_quiet tb_ctl stress off
tb_wait_for "shedding stops (stress inactive)" 10 cl_stress_active false ||
  tb_log "stress mode still active after shhimctl stress off"
tb_expect_eq "feed: stress left by the operator" 1 \
  "$(cl_feed_count stress '.stress.action == "left" and .stress.cause == "manual"')"
tb_expect_eq "stress active after shhimctl stress off" false "$(tb_ctl classes -o json | jq -r .stress.active)"

for c in 0 1; do
  name=${CL_CLASSES[$c]}
  r="$TB_DIR/load-$c.json"
  base=$(cl_p99_us "$TB_DIR/base-$c.json")
  cl_expect_ratio_ge "$name requests answered 200" "$(cl_ok "$r")" "$(cl_planned "$r")" 999
  cl_expect_le "$name p99 under congestion (us; unloaded $base)" $((2 * base)) "$(cl_p99_us "$r")"
  tb_expect_eq "$name packets shed" 0 "$(cl_counter "$report" "$TB_IF_CLIENT" "$name" egress_drops)"
done

shed_drops=0
for c in 2 3 4 5 6; do
  name=${CL_CLASSES[$c]}
  r="$TB_DIR/load-$c.json"
  drops=$(cl_counter "$report" "$TB_IF_CLIENT" "$name" egress_drops)
  shed_drops=$((shed_drops + drops))
  tb_log "$name: $(jq -r '.outcomes.http_status["201"] // 0' "$r")/$(cl_planned "$r") uploads answered," \
    "p99 $(cl_p99_us "$r") us, $drops packets shed"
done
tb_expect_ge "packets shed in the shed classes" 1 "$shed_drops"
for c in "${!CL_CLASSES[@]}"; do
  tb_expect_ge "${CL_CLASSES[$c]} egress packets counted" 1 \
    "$(cl_counter "$report" "$TB_IF_CLIENT" "${CL_CLASSES[$c]}" egress_packets)"
done
tb_log "TCP segments retransmitted by the client during the run: $(($(cl_tcp_retrans) - retrans_before))"
# HTB never held the top classes back: every packet of theirs left within their guaranteed rate.
htb="$(tb_in_client tc -s class show dev "$TB_IF_CLIENT")"
printf '%s\n' "$htb" >"$TB_DIR/htb-classes.txt"
for minor in 1 2; do
  borrowed=$(awk -v c="5348:$minor" '$1 == "class" { cur = $3 } cur == c && $1 == "lended:" { print $4 }' <<<"$htb")
  tb_expect_eq "HTB 5348:$minor (${CL_CLASSES[$((minor - 1))]}) packets that had to borrow" 0 "${borrowed:-missing}"
done

# --- 4. side by side: the critical classes with shhim and without -----------
table="$TB_DIR/congestion-results.tsv"
{
  printf 'class\tunloaded_p99_us\tshhim_ok_permille\tshhim_p99_us\tshhim_p99_ratio\tcontrol_ok_permille\tcontrol_p99_us\tcontrol_p99_ratio\n'
  for c in 0 1; do
    base=$(cl_p99_us "$TB_DIR/base-$c.json")
    with="$TB_DIR/load-$c.json"
    without="$TB_DIR/control-$c.json"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${CL_CLASSES[$c]}" "$base" \
      "$(cl_permille "$(cl_ok "$with")" "$(cl_planned "$with")")" "$(cl_p99_us "$with")" \
      "$(cl_ratio "$(cl_p99_us "$with")" "$base")" \
      "$(cl_permille "$(cl_ok "$without")" "$(cl_planned "$without")")" "$(cl_p99_us "$without")" \
      "$(cl_ratio "$(cl_p99_us "$without")" "$base")"
  done
} >"$table"
tb_log "critical classes, ${DURATION}s with shhim (stress on) vs ${CONTROL_SECONDS}s without (FIFO shaper):"
column -t -s $'\t' "$table" >&2
if [[ -n "${SHHIM_CONGESTION_RESULTS:-}" ]]; then
  cp "$table" "$SHHIM_CONGESTION_RESULTS"
fi

tb_finish
