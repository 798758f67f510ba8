#!/usr/bin/env bash
# scripts/demo.sh - shhim watching a small simulated hospital network.
#
# Builds shhim, creates a network-namespace test bed (a client namespace and
# a "clinical services" namespace, addresses in 198.18.0.0/15 only), starts
#   fhir     an EHR/FHIR HTTP API on two backends  198.18.0.10:8080, 198.18.0.11:8080
#   lab-hl7  a lab HL7 v2 MLLP listener            198.18.0.12:2575
# starts shhimd on the client side with policy/demo.yaml, and drives mixed
# traffic in rounds, now and then injecting a fault (5xx burst, NACKs, extra
# latency, a refused connect, an unanswered SYN) so failure events show up.
# It prints the shhimctl commands to try. Ctrl-C (or the end of
# DEMO_DURATION) removes every namespace, program, pin and cgroup it made.
#
# Usage: sudo scripts/demo.sh
#   DEMO_DURATION=SECONDS  how long to drive traffic (default 3600)
#   DEMO_ROUND_SECONDS=S   length of one traffic round (default 10); a fault
#                          story plays over six rounds
#   DEMO_SKIP_BUILD=1      do not run setup-deps.sh and build.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=vm-tests/lib/testbed.sh
source "$repo_root/vm-tests/lib/testbed.sh"

duration="${DEMO_DURATION:-3600}"
[[ "$duration" =~ ^[0-9]+$ ]] || { echo "DEMO_DURATION must be a number of seconds" >&2; exit 2; }
round_s="${DEMO_ROUND_SECONDS:-10}"
[[ "$round_s" =~ ^[1-9][0-9]*$ ]] || { echo "DEMO_ROUND_SECONDS must be a positive number" >&2; exit 2; }

if [[ -z "${DEMO_SKIP_BUILD:-}" ]]; then
  bash "$repo_root/scripts/setup-deps.sh" </dev/null
  bash "$repo_root/scripts/build.sh" </dev/null
fi

tb_init demo demo
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
command -v curl >/dev/null || tb_die "curl missing (scripts/setup-deps.sh)"
tb_create_netns
tb_create_cgroup

# Control endpoints live on the services namespace's loopback: fault
# injection never crosses the monitored link.
readonly FHIR_A="$TB_SVC_IP1:8080" FHIR_B="$TB_SVC_IP2:8080" LAB="$TB_SVC_IP3:2575"
readonly CTL_FHIR_A=127.0.0.1:9101 CTL_FHIR_B=127.0.0.1:9102 CTL_LAB=127.0.0.1:9103
tb_start_testsvc fhir-a --http "$FHIR_A" --control "$CTL_FHIR_A" --latency-ms 12
tb_start_testsvc fhir-b --http "$FHIR_B" --control "$CTL_FHIR_B" --latency-ms 20
tb_start_testsvc lab-hl7 --mllp "$LAB" --control "$CTL_LAB" --latency-ms 8
tb_start_shhimd --policy "$repo_root/policy/demo.yaml" --anomaly-model "$repo_root/models/default.model"

ctl="$TB_SHHIMCTL --socket $TB_SOCKET"
cat <<EOF

shhim demo is running (pid $$; up to ${duration}s; Ctrl-C stops it and removes everything).
  fhir     http  $FHIR_A  $FHIR_B
  lab-hl7  mllp  $LAB
  shhimd   client namespace $TB_NS_CLIENT, interface $TB_IF_CLIENT, pins $TB_PIN_ROOT
  socket   $TB_SOCKET

Try, in another terminal (as root):
  $ctl status
  $ctl backends
  $ctl flows --top 10 --sort latency
  $ctl events --last 20
  $ctl services                      # pools, backend states, since when and why
  $ctl observe --follow              # failures and reroutes as they happen
  $ctl audit tail -n 20              # every routing change, SHA-256 chained
  $ctl drain fhir $FHIR_B --reason "demo maintenance" --for 1m
  $ctl backends -o json | jq .
  dashboard: nsenter --net=/run/netns/$TB_NS_CLIENT curl -s http://127.0.0.1:9464/ (or forward the port)

EOF

# fault KNOB VALUE CONTROL_ADDR: sets a testsvc fault knob at runtime.
fault() {
  local knob="$1" value="$2" control="$3"
  tb_in_svc curl -fsS --max-time 2 -X POST "http://$control/faults" \
    -H 'Content-Type: application/json' -d "{\"$knob\": $value}" >/dev/null 2>&1 ||
    tb_log "fault injection $knob=$value on $control failed"
}
reset_faults() {
  local c
  for c in "$CTL_FHIR_A" "$CTL_FHIR_B" "$CTL_LAB"; do
    tb_in_svc curl -fsS --max-time 2 -X POST "http://$c/faults/reset" >/dev/null 2>&1 || true
  done
}

summary() {
  local json
  json="$(tb_ctl backends -o json 2>/dev/null)" || { echo "  (agent not answering)"; return 0; }
  jq -r --arg a "$FHIR_A" --arg b "$FHIR_B" --arg l "$LAB" '
    def n: (. // 0) | tonumber;
    def ms: ((. // 0) * 10000 | round) / 10;
    ({($a): "fhir-a", ($b): "fhir-b", ($l): "lab-hl7"}) as $names
    | .backends // [] | sort_by(.endpoint.address, .endpoint.port)[]
    | "\(.endpoint.address):\(.endpoint.port)" as $ep
    | "  \($names[$ep] // "-")\t\($ep)\treq \(.requests | n) (\((.request_rate_per_second // 0) * 10 | round / 10)/s)\t5xx \(.http.status_5xx | n)\tAE+AR \((.mllp.ae | n) + (.mllp.ar | n))\trefused \(.refused | n)\tsyn-timeout \(.syn_timeouts | n)\tp50 \(.response.p50_seconds | ms) ms\tp99 \(.response.p99_seconds | ms) ms"' \
    <<<"$json" | awk -F'\t' '{ printf "%-9s %-18s %-20s %-9s %-9s %-11s %-15s %-14s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'

}

deadline=$((SECONDS + duration))
round=0
while ((SECONDS < deadline)); do
  round=$((round + 1))
  left=$((deadline - SECONDS))
  d=$((left < round_s ? left : round_s))
  ((d >= 1)) || break

  # A fault story over six rounds, then everything is healthy again.
  case $((round % 6)) in
    2) tb_log "round $round: fhir-b starts answering 503 to a third of requests"
       fault status_mix '"200:2,503:1"' "$CTL_FHIR_B" ;;
    3) tb_log "round $round: fhir-b recovers; lab-hl7 rejects some messages (AE/AR)"
       reset_faults
       fault ack_mix '"AA:6,AE:2,AR:1"' "$CTL_LAB" ;;
    4) tb_log "round $round: fhir-a slows down (+150 ms)"
       reset_faults
       fault latency_ms 150 "$CTL_FHIR_A" ;;
    5) tb_log "round $round: all healthy again"
       reset_faults ;;
    0) tb_log "round $round: fhir-b crashes (refuses connections): the kernel takes it out of fhir's rotation"
       fault refuse true "$CTL_FHIR_B" ;;
    1) tb_log "round $round: fhir-b is back; the agent's probes restore it"
       reset_faults ;;
    *) tb_log "round $round: steady traffic" ;;
  esac

  pids=()
  tb_loadgen_bg "fhir-a" --http "$FHIR_A" --rate 20 --duration "$d" --connection keepalive --concurrency 2
  pids+=("$TB_LAST_PID")
  tb_loadgen_bg "fhir-b" --http "$FHIR_B" --rate 10 --duration "$d" --connection new --concurrency 2
  pids+=("$TB_LAST_PID")
  tb_loadgen_bg "lab-hl7" --mllp "$LAB" --rate 4 --duration "$d" --connection keepalive
  pids+=("$TB_LAST_PID")
  if ((round % 3 == 0)); then
    # A connect to a port where nothing listens, and one into the dropped range.
    tb_loadgen_bg "refused" --http "$TB_SVC_IP1:9" --connect-only --count 1 --timeout-ms 1000
    pids+=("$TB_LAST_PID")
    tb_loadgen_bg "syn-timeout" --http "$TB_DROP_IP:8080" --connect-only --count 1 --timeout-ms 2500
    pids+=("$TB_LAST_PID")
  fi
  # `wait` returns at once when Ctrl-C arrives, so cleanup starts right away.
  for pid in "${pids[@]}"; do
    tb_wait_pid "$pid" || true
  done
  printf 'after round %d (%ds):\n' "$round" $((duration - (deadline - SECONDS)))
  summary
  tb_ctl services 2>/dev/null | sed 's/^/  /' || true
done

tb_log "demo time (${duration}s) is up; cleaning up"
