#!/usr/bin/env bash
# bench_agent_cpu: shhimd's CPU while the kernel follows ~10,000 new TCP
# connections per second (issue 5's benchmark; scripts/bench.sh runs it, the
# test suite does not). Bar: the agent at most 2% of one core at 10,000 flows/s.
#   - a policy of two services (http and mllp, three backends each), so the
#     rate, scoring and routing work runs on every tick;
#   - shhim-loadgen processes opening a new connection per request through
#     both service addresses (the connect hook spreads them over the backends);
#   - shhimd's CPU is utime+stime from /proc/PID/stat over a window inside the
#     load, as a share of one core; the flows are the kernel's own count
#     (the increase of every backend's conn_attempts over the same window);
#   - the same agent idle (no load) over a window of the same length, and the
#     pair again with --flow-log, side by side.
# When the rig cannot reach 9,000 flows/s on this box the bar is checked on the
# CPU scaled to 10,000 flows/s: the idle share plus the load's extra share
# times 10,000 / the rate reached.
# Environment:
#   SHHIM_CPU_RATE=N        flows/s offered in total (default 10000)
#   SHHIM_CPU_WINDOW=S      seconds measured (default 10; the load runs S + 4)
#   SHHIM_CPU_LOAD=MODE     connect (connect and close, default) or http/mllp
#                           requests on each new connection (request)
#   SHHIM_CPU_NO_FLOW_LOG=1 skip the --flow-log pair
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly HTTP_PORT=8080 MLLP_PORT=2575
readonly HTTP_VIP=198.18.0.100 MLLP_VIP=198.18.0.101
readonly RATE=${SHHIM_CPU_RATE:-10000}
readonly WINDOW=${SHHIM_CPU_WINDOW:-10}
readonly LOAD_MODE=${SHHIM_CPU_LOAD:-connect}
readonly GENERATORS=4          # two per service; one process cannot open 10k connections/s alone
readonly LEAD_IN=2             # seconds of load before the window opens (and after it closes)
readonly BAR_CENTI_PERCENT=200 # 2.00% of one core
readonly MIN_RATE=9000         # below this the bar is judged on the scaled CPU
CLK_TCK="$(getconf CLK_TCK)"
readonly CLK_TCK

[[ "$LOAD_MODE" == connect || "$LOAD_MODE" == request ]] ||
  { echo "bench_agent_cpu: SHHIM_CPU_LOAD must be connect or request, not '$LOAD_MODE'" >&2; exit 2; }

tb_init bench_agent_cpu
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
tb_create_netns
tb_create_cgroup

# 10,000 connections/s from one client address to six server endpoints would
# run the client out of ephemeral ports (TIME_WAIT lasts 60 s). Both settings
# belong to the client namespace this run created, nothing else sees them.
tb_in_client sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
# Room for the accept queues of the services at this connection rate.
tb_in_svc sysctl -q -w net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096

policy="$TB_DIR/policy.yaml"
cat >"$policy" <<YAML
schema_version: 1
name: bench-agent-cpu
services:
  - name: orders
    address: $HTTP_VIP:$HTTP_PORT
    protocol: http
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$HTTP_PORT, $TB_SVC_IP2:$HTTP_PORT, $TB_SVC_IP3:$HTTP_PORT]
  - name: lab
    address: $MLLP_VIP:$MLLP_PORT
    protocol: mllp
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$MLLP_PORT, $TB_SVC_IP2:$MLLP_PORT]
      fallback: [$TB_SVC_IP3:$MLLP_PORT]
YAML
for ip in "$TB_SVC_IP1" "$TB_SVC_IP2" "$TB_SVC_IP3"; do
  tb_start_testsvc "svc-$ip" --http "$ip:$HTTP_PORT" --mllp "$ip:$MLLP_PORT" --max-connections 16384
done

# shhimd's user+system CPU so far, in clock ticks (fields 14 and 15 of
# /proc/PID/stat; the name in field 2 may hold spaces, so cut after its ')').
agent_ticks() {
  local stat fields
  stat="$(<"/proc/$TB_SHHIMD_PID/stat")"
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}
# First SYNs the kernel saw towards any backend, summed.
kernel_flows() {
  tb_ctl backends -o json | jq -r '[.backends[]? | (.conn_attempts // 0 | tonumber)] | add // 0'
}
now_us() { echo "${EPOCHREALTIME/./}"; }
# SAMPLE_* = time (us), agent ticks, kernel flows.
sample() {
  SAMPLE_US="$(now_us)"
  SAMPLE_TICKS="$(agent_ticks)"
  SAMPLE_FLOWS="$(kernel_flows)"
}

LOAD_PIDS=()
start_load() {   # NAME: GENERATORS loadgens, half per service, RATE in total
  local name="$1" i target
  local -a mode=(--connection new)
  [[ "$LOAD_MODE" == connect ]] && mode+=(--connect-only)
  LOAD_PIDS=()
  for ((i = 0; i < GENERATORS; i++)); do
    if ((i % 2 == 0)); then target=(--http "$HTTP_VIP:$HTTP_PORT"); else target=(--mllp "$MLLP_VIP:$MLLP_PORT"); fi
    tb_loadgen_bg "$name-$i" "${target[@]}" "${mode[@]}" --rate "$((RATE / GENERATORS))" \
      --duration "$((WINDOW + 2 * LEAD_IN))" --concurrency 64 --timeout-ms 2000 --no-per-request \
      --report "$TB_DIR/$name-$i.json"
    LOAD_PIDS+=("$TB_LAST_PID")
  done
}
load_running() {
  local pid
  for pid in "${LOAD_PIDS[@]}"; do tb_running "$pid" || return 1; done
}
# "opened N, errors N" over the generators' whole run (their own counts).
load_summary() {
  local i
  for ((i = 0; i < GENERATORS; i++)); do jq -r '"\(.connections_opened) \(.errors)"' "$TB_DIR/$1-$i.json"; done |
    awk '{ n += $1; e += $2 } END { printf "opened %d connections, %d errors", n, e }'
}

# RESULT_<name> = "flows_per_s centi_percent"; measure NAME load|idle.
declare -A RESULT=()
measure() {
  local name="$1" kind="$2" t0 c0 f0 pid rc=0
  if [[ "$kind" == load ]]; then
    start_load "$name"
    sleep "$LEAD_IN"   # past the generators' start-up, into the steady rate
  fi
  sample
  t0="$SAMPLE_US" c0="$SAMPLE_TICKS" f0="$SAMPLE_FLOWS"
  sleep "$WINDOW"
  sample
  if [[ "$kind" == load ]]; then
    load_running || tb_log "$name: a load generator ended inside the window (see $TB_DIR/$name-*.log)"
    for pid in "${LOAD_PIDS[@]}"; do tb_wait_pid "$pid" || rc=1; done
    ((rc == 0)) || tb_log "$name: a load generator could not keep its rate (see $TB_DIR/$name-*.log)"
    tb_log "$name: in $((WINDOW + 2 * LEAD_IN)) s the generators $(load_summary "$name")"
    tb_log "$name: first SYNs per backend so far: $(tb_ctl backends -o json |
      jq -r '[.backends[]? | "\(.endpoint.address):\(.endpoint.port) \(.conn_attempts // 0)"] | join(", ")')"
  fi
  # flows/s and CPU in hundredths of a percent of one core, both over the window.
  RESULT[$name]="$(awk -v us="$((SAMPLE_US - t0))" -v ticks="$((SAMPLE_TICKS - c0))" \
    -v flows="$((SAMPLE_FLOWS - f0))" -v hz="$CLK_TCK" \
    'BEGIN { s = us / 1e6; printf "%d %d\n", flows / s + 0.5, ticks / hz / s * 10000 + 0.5 }')"
  tb_log "$name: ${RESULT[$name]% *} flows/s, agent $(centi "${RESULT[$name]#* }")% of one core"
}
centi() { printf '%d.%02d' "$(($1 / 100))" "$(($1 % 100))"; }

# True once the flow log has not grown for 3 s (called by tb_wait_for, in this shell).
FLOW_LOG_SIZE=-1 FLOW_LOG_SINCE=$SECONDS
flow_log_quiet() {
  local size
  size="$(stat -c %s "$TB_DIR"/flows.jsonl* 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')"
  if ((size != FLOW_LOG_SIZE)); then
    FLOW_LOG_SIZE=$size FLOW_LOG_SINCE=$SECONDS
    return 1
  fi
  ((SECONDS - FLOW_LOG_SINCE >= 3))
}

# Waits until the agent has applied the policy and ticked a few times.
both_services() { tb_ctl services -o json | jq -e '.services | length == 2' >/dev/null; }
settle() {
  tb_wait_for "policy applied" 15 both_services || tb_die "shhimd did not apply the policy"
  sleep 1   # a few ticks: the idle window starts with the engines running
}

tb_start_shhimd --policy "$policy"
settle
measure idle idle
measure load load
runs=(idle load)
if [[ -z "${SHHIM_CPU_NO_FLOW_LOG:-}" ]]; then
  tb_kill_shhimd TERM
  tb_start_shhimd --policy "$policy" --flow-log "$TB_DIR/flows.jsonl" --flow-log-max-size 50 --flow-log-keep 1
  settle
  # The kernel's flow table still holds the first load's flows: the new agent
  # writes them first. Its idle window starts once that is done.
  tb_wait_for "the flow log to catch up with the table" 90 flow_log_quiet ||
    tb_log "the flow log was still growing; its idle window includes that"
  measure idle-flowlog idle
  measure load-flowlog load
  runs+=(idle-flowlog load-flowlog)
fi

# FLOWS CPU IDLE_CPU -> the CPU at 10,000 flows/s: the idle share, plus the
# share the flows added, scaled from the rate reached.
scaled() {
  awk -v f="$1" -v c="$2" -v i="$3" 'BEGIN { extra = c > i ? c - i : 0
    printf "%d\n", i + (f > 0 ? extra * 10000 / f : 0) + 0.5 }'
}
echo
echo "agent CPU following new TCP connections ($LOAD_MODE load, ${WINDOW} s windows, bar: <= 2% of one core at 10,000 flows/s):"
printf "%-28s %10s %12s %22s\n" "run" "flows/s" "agent CPU" "scaled to 10k flows/s"
for name in "${runs[@]}"; do
  read -r flows cpu <<<"${RESULT[$name]}"
  read -r _ idle_cpu <<<"${RESULT[${name/load/idle}]}"
  case "$name" in
    idle) label="idle (policy, no load)" ;;
    load) label="load" ;;
    idle-flowlog) label="idle, --flow-log" ;;
    load-flowlog) label="load, --flow-log" ;;
  esac
  if [[ "$name" == load* ]]; then
    printf "%-28s %10d %11s%% %21s%%\n" "$label" "$flows" "$(centi "$cpu")" "$(centi "$(scaled "$flows" "$cpu" "$idle_cpu")")"
  else
    printf "%-28s %10d %11s%% %22s\n" "$label" "$flows" "$(centi "$cpu")" "-"
  fi
done

read -r flows cpu <<<"${RESULT[load]}"
read -r _ idle_cpu <<<"${RESULT[idle]}"
if ((flows >= MIN_RATE)); then
  judged="$cpu"
  what="agent CPU at $flows flows/s (hundredths of a percent)"
else
  judged="$(scaled "$flows" "$cpu" "$idle_cpu")"
  what="agent CPU scaled from $flows to 10,000 flows/s (hundredths of a percent; rig below $MIN_RATE flows/s)"
  echo "note: the rig reached $flows flows/s, not $MIN_RATE, on this box now: the bar is judged on the scaled CPU"
fi
tb_expect_ge "some flows followed in the load window (flows/s)" 1 "$flows"
tb_expect_ge "$what within the bar (200 minus it)" 0 "$((BAR_CENTI_PERCENT - judged))"
tb_finish
