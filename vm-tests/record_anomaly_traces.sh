#!/usr/bin/env bash
# record_anomaly_traces: records the labelled telemetry traces of
# tests/data/anomaly/traces (issue 5) from the netns testbed. Run by hand
# (as root, after scripts/build.sh); it is not part of scripts/test.sh.
#
# Usage: sudo vm-tests/record_anomaly_traces.sh [--out DIR] [--batch N]
#   --out DIR   where NAME.jsonl.gz go (default tests/data/anomaly/traces)
#   --batch N   only batch N (1, 2 or 3); default: all three, one testbed each
#   --batch train  not a trace batch: 6 min of normal traffic of 8 other
#               services, the whole recording gzip'd to DIR/testbed-normal.jsonl.gz
#               and DIR/README.md (default DIR models/training), for shhim-train
#        vm-tests/record_anomaly_traces.sh --check [DIR]
#   a table of every trace in DIR: ticks, and the subject backend's rates
#   in the 60 s before the fault and while it lasts (no root needed)
#
# One batch = one testbed: shhimd --policy P --record FILE (default flags
# otherwise) and, per traced service, two shhim-testsvc backends (subject
# "a", the one faulted, and a peer "b"), each with its own --control port,
# base latency 20 ms (http) or 15 ms (mllp). Per backend one load generator
# sends DIRECTLY to the backend (not the service address), a new connection
# per request, 40 requests/s unless the trace says otherwise.
# Timeline: 90 s normal (the baseline learns), then every trace's fault or
# surge at t=90 s (each stamped with the epoch ms at which it took effect);
# surges last 60 s, faults to the end unless stated; 30 s tail. Batch 1
# (ramps of 120 s) lasts 240 s, batches 2 and 3 180 s.
# Each trace file: line 1 the shhim.v1.TraceLabel, then the RecordedTick
# lines of [start of load, end of load] filtered to that service, gzip'd.
# tests/data/anomaly/README.md lists the traces.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"
# shellcheck source=vm-tests/lib/packet_loss.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/packet_loss.sh"

readonly BASE_RATE=40          # requests/s per backend
readonly LOW_RATE=10
readonly HTTP_LATENCY_MS=20
readonly MLLP_LATENCY_MS=15
readonly WARMUP_S=90
readonly SURGE_S=60
readonly TAIL_S=30
readonly RAMP_STEP_S=5
readonly RAMP_LEG_S=60         # 1x -> 3x (or back) in RAMP_LEG_S / RAMP_STEP_S steps
readonly RAMP_PEAK=3
readonly CLIENT_ERRORS_S=30
readonly BROWNOUT_STEPS=30     # one step a second, then refuse
readonly BROWNOUT_FACTOR=40    # 20 ms -> 800 ms (http), 15 -> 600 (mllp)
readonly LOADGEN_ARGS=(--connection new --concurrency 128 --timeout-ms 2000 --no-per-request)

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

out_dir=""
batch=""
check=0
command_line="vm-tests/record_anomaly_traces.sh $*"
while (($#)); do
  case "$1" in
    --check) check=1; [[ -n "${2:-}" ]] && { out_dir="$2"; shift; }; shift ;;
    --out) out_dir="${2:?--out needs a directory}"; shift 2 ;;
    --batch) batch="${2:?--batch needs 1, 2, 3 or train}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [[ -z "$out_dir" && "$batch" == train ]]; then
  out_dir="$TB_REPO_ROOT/models/training"
elif [[ -z "$out_dir" ]]; then
  out_dir="$TB_REPO_ROOT/tests/data/anomaly/traces"
fi

# ---- --check: what each trace shows --------------------------------------------
# Per trace: its ticks, then the subject's per-second rates and median p99
# over the 60 s before the fault ("before") and from 2 s after its start to
# its end, at most 60 s ("during"); brownouts: during the climb, then in
# the 28 s after the hard failure.
# Normal traces compare the minute before t=90 s with the one after.
check_traces() {
  local f
  printf '%-18s %-13s %5s | %-28s | %s\n' trace kind ticks "before: req/s resp/s p99ms" \
    "during: req/s resp/s refused syn_to resets 5xx nack 4xx retrans p99ms"
  for f in "$1"/*.jsonl.gz; do
    zcat "$f" | jq -rs '
      def n: if . == null then 0 else tonumber end;
      def r1: (. * 10 | round) / 10;
      def median: sort | if length == 0 then null else .[length / 2 | floor] | r1 end;
      .[0] as $l | .[1:] as $ticks
      | ($ticks[0].unix_ms | n) as $t0
      | (($l.fault_start_unix_ms | n) | if . > 0 then . else $t0 + 90000 end) as $s
      | (($l.fault_end_unix_ms | n) | if . > 0 then . else $s + 60000 end) as $e0
      | ($l.hard_failure_unix_ms | n) as $h
      | ([$e0, $s + 60000] + (if $h > 0 then [$h] else [] end) | min) as $e
      | (if ($l.backend // "") != "" then $l.backend else $ticks[0].backends[0].backend end) as $b
      | def win($from; $to): [$ticks[] | select((.unix_ms | n) >= $from and (.unix_ms | n) < $to)
          | [.backends[] | select(.backend == $b)][0] // {}];
      def rate($w; $k): (($w | map(.[$k] | n) | add // 0) / (($w | length) * 0.1 + 1e-9)) | r1;
      def row($w): "\(rate($w; "requests")) \(rate($w; "responses")) \(rate($w; "refused")) \(rate($w; "syn_timeouts")) \(rate($w; "resets")) \(rate($w; "server_errors")) \(rate($w; "nacks")) \(rate($w; "client_errors")) \(rate($w; "retransmits")) \($w | map(.p99_ms // empty) | median)";
      win($s - 60000; $s) as $before | win($s + 2000; $e) as $during
      | "\($l.name)\t\($l.kind)\t\($ticks | length)\t\(rate($before; "requests")) \(rate($before; "responses")) \($before | map(.p99_ms // empty) | median)\t\(row($during))"
        + (if $h > 0 then "\n  then refusing\t\t\t\t\(row(win($h + 2000; $h + 30000)))" else "" end)' |
      awk -F'\t' '{ printf "%-18s %-13s %5s | %-28s | %s\n", $1, $2, $3, $4, $5 }'
  done
}
if ((check)); then
  check_traces "$out_dir"
  exit 0
fi

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

# All batches: one process (and testbed) each, so nothing of one batch
# (sockets in TIME_WAIT, agent state, baselines) leaks into the next.
if [[ -z "$batch" ]]; then
  for b in 1 2 3; do
    "${BASH_SOURCE[0]}" --out "$out_dir" --batch "$b"
  done
  exit 0
fi

# ---- the traces: name -> protocol, kind, failure, factor, description --------
declare -A PROTO KIND FAILURE FACTOR DESC
trace() {   # NAME PROTO KIND FAILURE FACTOR DESCRIPTION
  PROTO[$1]="$2" KIND[$1]="$3" FAILURE[$1]="$4" FACTOR[$1]="$5" DESC[$1]="$6"
}
trace normal-http       http normal false 0 "normal traffic, 40 req/s per backend, nothing changed"
trace normal-mllp       mllp normal false 0 "normal MLLP traffic, 40 req/s per backend, nothing changed"
trace normal-low-rate   http normal false 0 "normal traffic at a low rate, 10 req/s per backend"
trace surge-x2          http surge false 2 "the whole service's load doubled (both backends) for 60 s"
trace surge-x4.4        http surge false 4.4 "the whole service's load x4.4 (both backends) for 60 s"
trace surge-x4.4-mllp   mllp surge false 4.4 "the whole MLLP service's load x4.4 (both backends) for 60 s"
trace surge-x2-mllp     mllp surge false 2 "the whole MLLP service's load doubled (both backends) for 60 s"
trace ramp-up-down      http ramp false 3 "load climbs linearly to 3x over 60 s in 5 s steps, back to 1x over 60 s (both backends)"
trace ramp-down-up      http ramp false 3 "load at 3x from the start, down to 1x over 60 s in 5 s steps, back to 3x over 60 s (both backends)"
trace client-errors-4xx http client_errors false 0 "the subject answers 30% 404 (client errors, not a failure) for 30 s, then cleared"
trace crash             http crash true 0 "the subject refuses connections (nothing listens: RST) to the end"
trace hang              http hang true 0 "the subject accepts and reads requests but never answers, to the end"
trace server-errors-503 http server_errors true 0 "the subject answers every request 503, to the end"
trace nack-storm-mllp   mllp nack_storm true 0 "the subject acknowledges every message AE, to the end"
trace latency-x3        http latency true 3 "the subject's latency 20 -> 60 ms, to the end"
trace latency-x10-a     http latency true 10 "the subject's latency 20 -> 200 ms, to the end"
trace latency-x10-b     http latency true 10 "the subject's latency 20 -> 200 ms, to the end (a second service)"
trace brownout-http     http brownout true 40 "the subject's latency climbs geometrically 20 -> 800 ms over 30 s in 1 s steps, then it refuses connections"
trace latency-x10-c     http latency true 10 "the subject's latency 20 -> 200 ms, to the end (a third service)"
trace latency-x10-mllp  mllp latency true 10 "the subject's MLLP latency 15 -> 150 ms, to the end"
trace packet-loss-2pct  http packet_loss true 0.02 "2% of the subject's TCP packets dropped, both directions, to the end"
trace packet-loss-10pct http packet_loss true 0.1 "10% of the subject's TCP packets dropped, both directions, to the end"
trace brownout-mllp     mllp brownout true 40 "the subject's MLLP latency climbs geometrically 15 -> 600 ms over 30 s in 1 s steps, then it refuses connections"
trace crash-mllp        mllp crash true 0 "the MLLP subject refuses connections (nothing listens: RST) to the end"
trace hang-mllp         mllp hang true 0 "the MLLP subject accepts and reads messages but never acknowledges, to the end"

# ---- the training batch: normal traffic of services unlike the traces' -------
# The default model must not learn from the traffic it is evaluated on, so
# these differ on purpose: other names, rates (per backend) from 10 to
# 150 req/s, latencies from 5 to 50 ms, three classes. Their normal
# variation is planned in plan_train. No trace files: one recording.
declare -A TRAIN_RATE LATENCY CLASS
train_service() {   # NAME PROTO CLASS RATE LATENCY_MS DESCRIPTION
  trace "$1" "$2" normal false 0 "$6"
  CLASS[$1]="$3" TRAIN_RATE[$1]="$4" LATENCY[$1]="$5"
}
train_service emr-api       http clinical       150 12 "FHIR API of the EMR, the busiest service"
train_service lab-orders    mllp clinical       100 25 "HL7 lab orders and results"
train_service adt-feed      mllp clinical        60  8 "HL7 ADT feed; surges x2 for 60 s"
train_service pharmacy      http clinical        20 35 "pharmacy API; ramps x1 -> x3 -> x1"
train_service radiology     http clinical        10 50 "radiology worklist, slow and quiet"
train_service er-triage     http emergency       80  5 "emergency department triage board"
train_service vitals-feed   mllp clinical        40 18 "HL7 bedside vitals; ramps x1 -> x3 -> x1"
train_service billing       http administrative  30 42 "billing API; a 30 s burst of 404s"
readonly TRAIN_DURATION_S=360
readonly TRAIN_404_MIX="200:8,404:2"   # both backends, 20% not found

case "$batch" in
  1) TRACES=(normal-http normal-mllp normal-low-rate surge-x2 surge-x4.4 surge-x4.4-mllp surge-x2-mllp
       ramp-up-down ramp-down-up client-errors-4xx)
     DURATION_S=$((WARMUP_S + 2 * RAMP_LEG_S + TAIL_S)) ;;
  2) TRACES=(crash hang server-errors-503 nack-storm-mllp latency-x3 latency-x10-a latency-x10-b brownout-http)
     DURATION_S=$((WARMUP_S + SURGE_S + TAIL_S)) ;;
  3) TRACES=(latency-x10-c latency-x10-mllp packet-loss-2pct packet-loss-10pct brownout-mllp crash-mllp hang-mllp)
     DURATION_S=$((WARMUP_S + SURGE_S + TAIL_S)) ;;
  train) TRACES=(emr-api lab-orders adt-feed pharmacy radiology er-triage vitals-feed billing)
     DURATION_S=$TRAIN_DURATION_S ;;
  *) tb_die "--batch '$batch': 1, 2, 3 or train" ;;
esac

tb_init "record_anomaly_traces-$batch"
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
command -v jq >/dev/null || tb_die "jq is needed"
command -v curl >/dev/null || tb_die "curl is needed"
tb_create_netns
tb_create_cgroup

# ---- addresses: trace i of the batch --------------------------------------
# Every backend has a port of its own (subject 8100+i / 2600+i, peer
# 8200+i / 2700+i), so the packet-loss rig, which matches ports only, can
# never touch a peer. Subject and peer sit on different service IPs.
SVC_IPS=("$TB_SVC_IP1" "$TB_SVC_IP2" "$TB_SVC_IP3")
declare -A SERVICE SUBJECT PEER SUBJECT_CTL PEER_CTL VIP RATE SLOT
declare -A T_START T_END T_HARD     # epoch ms, set when it happens
i=0
for t in "${TRACES[@]}"; do
  subject_ip="${SVC_IPS[$((i % 3))]}" peer_ip="${SVC_IPS[$(((i + 1) % 3))]}"
  if [[ "${PROTO[$t]}" == http ]]; then sp=$((8100 + i)) pp=$((8200 + i)); else sp=$((2600 + i)) pp=$((2700 + i)); fi
  SERVICE[$t]="${t//./-}"        # a DNS label: no dots
  SUBJECT[$t]="$subject_ip:$sp"
  PEER[$t]="$peer_ip:$pp"
  SUBJECT_CTL[$t]="$subject_ip:$((9100 + i))"
  PEER_CTL[$t]="$peer_ip:$((9200 + i))"
  VIP[$t]="198.18.0.$((100 + i)):$sp"
  RATE[$t]="${TRAIN_RATE[$t]:-$BASE_RATE}"
  SLOT[$t]=$i
  T_START[$t]=0 T_END[$t]=0 T_HARD[$t]=0
  i=$((i + 1))
done
if [[ -n "${RATE[normal-low-rate]:-}" ]]; then RATE[normal-low-rate]=$LOW_RATE; fi

policy="$TB_DIR/policy.yaml"
{
  printf 'schema_version: 1\nname: anomaly-traces-batch-%s\nservices:\n' "$batch"
  for t in "${TRACES[@]}"; do
    cat <<YAML
  - name: ${SERVICE[$t]}
    address: ${VIP[$t]}
    protocol: ${PROTO[$t]}
    class: ${CLASS[$t]:-clinical}
    backends:
      primary: [${SUBJECT[$t]}, ${PEER[$t]}]
YAML
  done
} >"$policy"

for t in "${TRACES[@]}"; do
  lat=$HTTP_LATENCY_MS
  [[ "${PROTO[$t]}" == mllp ]] && lat=$MLLP_LATENCY_MS
  lat="${LATENCY[$t]:-$lat}"
  tb_start_testsvc "$t-a" "--${PROTO[$t]}" "${SUBJECT[$t]}" --control "${SUBJECT_CTL[$t]}" --latency-ms "$lat"
  tb_start_testsvc "$t-b" "--${PROTO[$t]}" "${PEER[$t]}" --control "${PEER_CTL[$t]}" --latency-ms "$lat"
done
for t in "${TRACES[@]}"; do
  if [[ "${KIND[$t]}" == packet_loss ]]; then
    pl_attach
    break
  fi
done

record="$TB_DIR/record.jsonl"
tb_start_shhimd --policy "$policy" --record "$record"

# ---- actions -----------------------------------------------------------------
# Epoch milliseconds without a fork (EPOCHREALTIME has 6 decimals).
now_ms() { local t="${EPOCHREALTIME/[.,]/}"; printf '%s\n' "$((t / 1000))"; }

faults() {   # TRACE ROLE(a|b) JSON: POST the knobs to that backend's control endpoint
  local ctl="${SUBJECT_CTL[$1]}"
  [[ "$2" == b ]] && ctl="${PEER_CTL[$1]}"
  tb_in_svc curl -sS -f -m 5 -X POST "http://$ctl/faults" -d "$3" >/dev/null ||
    tb_die "$1: POST $3 to $ctl failed"
}

LOADGEN_PIDS=()
loadgen() {   # TRACE TARGET RATE SECONDS NAME: one load generator, report in $TB_DIR/NAME.json
  tb_loadgen_bg "$5" "--${PROTO[$1]}" "$2" --rate "$3" --duration "$4" "${LOADGEN_ARGS[@]}" \
    --report "$TB_DIR/$5.json"
  LOADGEN_PIDS+=("$TB_LAST_PID")
}

load() {   # TRACE RATE SECONDS NAME: RATE req/s more on each backend for SECONDS
  local target
  for target in "${SUBJECT[$1]}" "${PEER[$1]}"; do
    loadgen "$1" "$target" "$2" "$3" "$4-${target//[:.]/_}"
  done
}

loadgens_done() {
  local p
  for p in "${LOADGEN_PIDS[@]}"; do
    if tb_running "$p"; then return 1; fi
  done
}

# The event list: "OFFSET_MS TRACE MARK COMMAND...", MARK one of start, end,
# hard or -, run in time order; a mark stamps the trace's label with the
# epoch ms at which the command returned (the change was in effect).
EVENTS=()
at() { EVENTS+=("$(printf '%09d' "$1") $2 $3 ${*:4}"); }
s_ms() { printf '%s\n' "$(($1 * 1000))"; }

ramp_steps() {   # TRACE FROM_MULT TO_MULT START_S: one leg of a ramp, extra load per step
  local t="$1" from="$2" to="$3" start_s="$4" steps=$((RAMP_LEG_S / RAMP_STEP_S)) k extra
  for ((k = 1; k <= steps; k++)); do
    # The multiple reached at the end of step k, held during the step.
    extra="$(awk -v f="$from" -v g="$to" -v k="$k" -v n="$steps" -v r="${RATE[$t]}" \
      'BEGIN { printf "%.2f", (f + (g - f) * k / n - 1) * r }')"
    if awk -v e="$extra" 'BEGIN { exit !(e > 0) }'; then
      at "$(s_ms $((start_s + (k - 1) * RAMP_STEP_S)))" "$t" - load "$t" "$extra" "$RAMP_STEP_S" "$t-step-$start_s-$k"
    fi
  done
}

plan_trace() {   # TRACE: its events
  local t="$1" w=$WARMUP_S extra k lat base_lat
  base_lat=$HTTP_LATENCY_MS
  [[ "${PROTO[$t]}" == mllp ]] && base_lat=$MLLP_LATENCY_MS
  case "${KIND[$t]}" in
    normal) ;;
    surge)
      extra="$(awk -v f="${FACTOR[$t]}" -v r="${RATE[$t]}" 'BEGIN { printf "%.2f", (f - 1) * r }')"
      at "$(s_ms $w)" "$t" start load "$t" "$extra" "$SURGE_S" "$t-surge"
      at "$(s_ms $((w + SURGE_S)))" "$t" end true ;;
    ramp)
      if [[ "$t" == ramp-up-down ]]; then
        at "$(s_ms $w)" "$t" start true
        ramp_steps "$t" 1 "$RAMP_PEAK" "$w"
        ramp_steps "$t" "$RAMP_PEAK" 1 $((w + RAMP_LEG_S))
      else
        # 3x from the start: the extra load of the warm-up, then down and up.
        at 0 "$t" - load "$t" $(((RAMP_PEAK - 1) * BASE_RATE)) "$w" "$t-warmup"
        at "$(s_ms $w)" "$t" start true
        ramp_steps "$t" "$RAMP_PEAK" 1 "$w"
        ramp_steps "$t" 1 "$RAMP_PEAK" $((w + RAMP_LEG_S))
        at "$(s_ms $((w + 2 * RAMP_LEG_S)))" "$t" - load "$t" $(((RAMP_PEAK - 1) * BASE_RATE)) "$TAIL_S" "$t-tail"
      fi
      at "$(s_ms $((w + 2 * RAMP_LEG_S)))" "$t" end true ;;
    client_errors)
      at "$(s_ms $w)" "$t" start faults "$t" a '{"status_mix":"200:7,404:3"}'
      at "$(s_ms $((w + CLIENT_ERRORS_S)))" "$t" end faults "$t" a '{"status_mix":""}' ;;
    crash) at "$(s_ms $w)" "$t" start faults "$t" a '{"refuse":true}' ;;
    hang) at "$(s_ms $w)" "$t" start faults "$t" a '{"hang":true}' ;;
    server_errors) at "$(s_ms $w)" "$t" start faults "$t" a '{"status_mix":"503:1"}' ;;
    nack_storm) at "$(s_ms $w)" "$t" start faults "$t" a '{"ack_mix":"AE:1"}' ;;
    latency)
      lat="$(awk -v f="${FACTOR[$t]}" -v b="$base_lat" 'BEGIN { printf "%d", f * b + 0.5 }')"
      at "$(s_ms $w)" "$t" start faults "$t" a "{\"latency_ms\":$lat}" ;;
    packet_loss) at "$(s_ms $w)" "$t" start pl_set "${SLOT[$t]}" "${SUBJECT[$t]##*:}" "${FACTOR[$t]}" ;;
    brownout)
      for ((k = 1; k <= BROWNOUT_STEPS; k++)); do
        lat="$(awk -v b="$base_lat" -v f="$BROWNOUT_FACTOR" -v k="$k" -v n="$BROWNOUT_STEPS" \
          'BEGIN { printf "%d", b * f ^ (k / n) + 0.5 }')"
        local mark=-
        ((k == 1)) && mark=start
        at $(((w + k - 1) * 1000)) "$t" "$mark" faults "$t" a "{\"latency_ms\":$lat}"
      done
      at "$(s_ms $((w + BROWNOUT_STEPS)))" "$t" hard faults "$t" a '{"refuse":true}' ;;
    *) tb_die "$t: unknown kind ${KIND[$t]}" ;;
  esac
}

# The training batch's variation, at times of its own (the base load of
# every service runs throughout): two slow ramps at different times, a
# surge, a burst of client errors on both backends. Nothing fails.
plan_train() {
  local surge_extra
  at "$(s_ms 60)" pharmacy start true
  ramp_steps pharmacy 1 "$RAMP_PEAK" 60
  ramp_steps pharmacy "$RAMP_PEAK" 1 $((60 + RAMP_LEG_S))
  at "$(s_ms $((60 + 2 * RAMP_LEG_S)))" pharmacy end true
  at "$(s_ms 130)" billing start faults billing a "{\"status_mix\":\"$TRAIN_404_MIX\"}"
  at "$(s_ms 130)" billing - faults billing b "{\"status_mix\":\"$TRAIN_404_MIX\"}"
  at "$(s_ms $((130 + CLIENT_ERRORS_S)))" billing - faults billing a '{"status_mix":""}'
  at "$(s_ms $((130 + CLIENT_ERRORS_S)))" billing end faults billing b '{"status_mix":""}'
  at "$(s_ms 200)" vitals-feed start true
  ramp_steps vitals-feed 1 "$RAMP_PEAK" 200
  ramp_steps vitals-feed "$RAMP_PEAK" 1 $((200 + RAMP_LEG_S))
  at "$(s_ms $((200 + 2 * RAMP_LEG_S)))" vitals-feed end true
  surge_extra="${RATE[adt-feed]}"   # x2: as much again
  at "$(s_ms 240)" adt-feed start load adt-feed "$surge_extra" "$SURGE_S" adt-feed-surge
  at "$(s_ms $((240 + SURGE_S)))" adt-feed end true
}

for t in "${TRACES[@]}"; do plan_trace "$t"; done
if [[ "$batch" == train ]]; then plan_train; fi
mapfile -t EVENTS < <(printf '%s\n' "${EVENTS[@]}" | sort -n)

sleep_until_ms() {   # EPOCH_MS
  local left=$(($1 - $(now_ms)))
  ((left > 0)) || return 0
  sleep "$(awk -v l="$left" 'BEGIN { printf "%.3f", l / 1000 }')"
}

# ---- the run -------------------------------------------------------------------
t0="$(now_ms)"
tb_log "batch $batch: ${#TRACES[@]} traces, ${DURATION_S}s from $t0; ${#EVENTS[@]} timed events"
for t in "${TRACES[@]}"; do load "$t" "${RATE[$t]}" "$DURATION_S" "$t-base"; done

for ev in "${EVENTS[@]}"; do
  read -r off t mark cmd <<<"$ev"
  read -r -a argv <<<"$cmd"
  # JSON knobs contain no spaces, so the command splits back into its words.
  sleep_until_ms $((t0 + 10#$off))
  "${argv[@]}"
  case "$mark" in
    start) T_START[$t]="$(now_ms)" ;;
    end) T_END[$t]="$(now_ms)" ;;
    hard) T_HARD[$t]="$(now_ms)" ;;
  esac
  [[ "$mark" == - ]] || tb_log "t=$((($(now_ms) - t0) / 1000))s $t: $mark ($cmd)"
done

t_end=$((t0 + DURATION_S * 1000))
sleep_until_ms "$t_end"
# The load generators end on their own (duration, then in-flight requests
# time out within 2 s); wait for them with a deadline.
tb_wait_for "load generators to finish" 30 loadgens_done ||
  tb_log "some load generators still run; the cleanup stops them"
if ((PL_ATTACHED)); then
  for t in "${TRACES[@]}"; do
    [[ "${KIND[$t]}" == packet_loss ]] || continue
    read -r matched dropped <<<"$(pl_stats "${SLOT[$t]}")"
    tb_log "$t: the rig matched $matched packets of ${SUBJECT[$t]} and dropped $dropped"
  done
fi
tb_kill_shhimd TERM
[[ -s "$record" ]] || tb_die "shhimd wrote no record to $record"
tb_log "record: $(wc -l <"$record") ticks"

# ---- the trace files -------------------------------------------------------
# Label times are epoch ms; a trace holds the ticks from the start of the
# load to its end, of its own service only.
write_trace() {   # TRACE
  local t="$1" file="$out_dir/$1.jsonl.gz" backend=""
  [[ "${KIND[$t]}" == normal ]] || backend="${SUBJECT[$t]}"
  {
    jq -cn --arg name "$t" --arg description "${DESC[$t]}" --arg kind "${KIND[$t]}" \
      --argjson failure "${FAILURE[$t]}" --arg service "${SERVICE[$t]}" --arg backend "$backend" \
      --argjson factor "${FACTOR[$t]}" --arg fstart "${T_START[$t]}" --arg fend "${T_END[$t]}" \
      --arg fhard "${T_HARD[$t]}" '
      # proto3 JSON: int64 as strings, zero and empty fields left out.
      {name: $name, description: $description, kind: $kind, failure: $failure, service: $service,
       backend: $backend, factor: $factor, fault_start_unix_ms: $fstart, fault_end_unix_ms: $fend,
       hard_failure_unix_ms: $fhard}
      | with_entries(select(.value != false and .value != "" and .value != 0 and .value != "0"))'
    jq -c --arg s "${SERVICE[$t]}" --argjson from "$t0" --argjson to "$t_end" '
      select((.unix_ms | tonumber) >= $from and (.unix_ms | tonumber) <= $to)
      | .backends |= map(select(.service == $s)) | select(.backends | length > 0)' "$record"
  } | gzip -9 -n >"$file"
  tb_log "$file: $(($(zcat "$file" | wc -l) - 1)) ticks"
}

# ---- the training recording ----------------------------------------------------
# What every load generator of the run saw, summed: {codes: {"200": N,
# "AA": N, ...}, errors: {"timeout": N, ...}} (request errors with N > 0).
load_outcomes() {
  jq -cs '
    def total: group_by(.key) | map({key: .[0].key, value: (map(.value) | add)}) | from_entries;
    [.[].outcomes] as $o
    | {codes: ([$o[] | ((.http_status // {}) + (.mllp_ack // {})) | to_entries[]] | total),
       errors: ([$o[] | to_entries[] | select((.value | type) == "number" and .value > 0)] | total)}' \
    "$TB_DIR"/*.json
}

# A training recording holds normal traffic only: every request answered
# 200, 404 (the billing burst) or AA, and the agent changed no routing.
# Anything else and the run is not written (its logs stay in $TB_DIR).
check_training_run() {   # OUTCOMES_JSON
  local bad actions
  bad="$(jq -r '[(.codes | to_entries[] | select(.key != "200" and .key != "404" and .key != "AA")),
    (.errors | to_entries[])] | map("\(.key): \(.value)") | join(", ")' <<<"$1")"
  actions=""
  if [[ -s "$TB_DIR/audit.jsonl" ]]; then
    actions="$(jq -r '.action' "$TB_DIR/audit.jsonl" | sort | uniq -c | tr -s ' \n' ' ')"
  fi
  [[ -z "$bad" ]] || tb_die "not normal traffic: requests failed ($bad); record again"
  [[ -z "$actions" ]] || tb_die "not normal traffic: the agent acted ($actions); record again"
}

# The whole recording, as shhimd wrote it (nothing dropped), and its card.
write_training() {
  local file="$out_dir/testbed-normal.jsonl.gz" outcomes ticks first last
  outcomes="$(load_outcomes)"
  check_training_run "$outcomes"
  gzip -9 -n <"$record" >"$file"
  ticks="$(wc -l <"$record")"
  first="$(head -n1 "$record" | jq -r '.unix_ms')"
  last="$(tail -n1 "$record" | jq -r '.unix_ms')"
  tb_log "$file: $ticks ticks, $(stat -c %s "$file") bytes"
  write_training_readme "$outcomes" "$ticks" "$first" "$last" >"$out_dir/README.md"
  tb_log "$out_dir/README.md written"
}

offset_s() { awk -v a="$1" -v b="$t0" 'BEGIN { printf "%.1f", (a - b) / 1000 }'; }   # EPOCH_MS

write_training_readme() {   # OUTCOMES TICKS FIRST_MS LAST_MS
  local t size
  size="$(stat -c %s "$out_dir/testbed-normal.jsonl.gz")"
  cat <<MD
# Training recording: testbed-normal.jsonl.gz

Normal traffic for \`shhim-train\` (the default model, \`models/default.model\`).
It is NOT the traffic of the labelled evaluation traces
(\`tests/data/anomaly/traces\`): other services, rates, latencies and
classes, and variation at other times, so the evaluation never scores the
model on its own training data. Written by the script that recorded it.

- Recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -sr), $(nproc) cores (shared with other work),
  by \`sudo $command_line\` after \`scripts/build.sh\`.
- Load for $DURATION_S s; the recording has $2 ticks (100 ms), unix ms $3 to $4
  (shhimd runs a little before and after the load: those ticks are idle).
- The file is the raw \`shhimd --record\` output, one \`shhim.v1.RecordedTick\`
  per line (proto3 JSON), \`gzip -9 -n\`: $size bytes. No label line, nothing dropped.

## The testbed

\`vm-tests/lib/testbed.sh\`: a client and a services network namespace joined
by a veth, addresses from 198.18.0.0/15. \`shhimd --policy P --record FILE\`,
otherwise default flags. Per service two primary backends (\`shhim-testsvc\`
with the latency below, on different service IPs, each on a port of its
own); per backend one \`shhim-loadgen\` sending directly to it at a fixed
rate, a new connection per request (\`${LOADGEN_ARGS[*]}\`), in the test cgroup.

| service | protocol | class | req/s per backend | latency | backends | |
|---|---|---|---|---|---|---|
MD
  for t in "${TRACES[@]}"; do
    printf '| %s | %s | %s | %s | %s ms | %s, %s | %s |\n' "${SERVICE[$t]}" "${PROTO[$t]}" "${CLASS[$t]}" \
      "${RATE[$t]}" "${LATENCY[$t]}" "${SUBJECT[$t]}" "${PEER[$t]}" "${DESC[$t]}"
  done
  cat <<MD

## Variation (seconds from the start of the load)

Every service keeps its base load for the whole $DURATION_S s. On top of it,
on both backends of the service:

- pharmacy and vitals-feed, at different times: a ramp x1 -> x$RAMP_PEAK over
  $RAMP_LEG_S s and back to x1 over $RAMP_LEG_S s, in $RAMP_STEP_S s steps (extra load generators).
- billing: \`status_mix $TRAIN_404_MIX\` (20% 404) for $CLIENT_ERRORS_S s, then all 200 again.
- adt-feed: x2 (as much load again) for $SURGE_S s.

| service | from | to |
|---|---|---|
MD
  for t in "${TRACES[@]}"; do
    ((T_START[$t] > 0)) || continue
    printf '| %s | %s | %s |\n' "${SERVICE[$t]}" "$(offset_s "${T_START[$t]}")" "$(offset_s "${T_END[$t]}")"
  done | sort -t '|' -k3,3n
  cat <<MD

No failures: every request of every load generator was answered 200, 404
(billing's burst only) or AA, and the audit log has no entry (the script
refuses to write the recording otherwise). Outcomes summed over all load
generators: \`$1\`.

## Use

    build/tools/shhim-train/shhim-train -o models/default.model models/training/testbed-normal.jsonl.gz
    build/tools/shhim-eval/shhim-eval --model models/default.model --check tests/data/anomaly/traces

Re-record (as root, about 7 minutes; timing and the machine's load make
every recording differ):

    sudo vm-tests/record_anomaly_traces.sh --batch train
MD
}

# The backend names of the records must be the policy's strings, which the
# labels use.
for t in "${TRACES[@]}"; do
  names="$(jq -r --arg s "${SERVICE[$t]}" '.backends[]? | select(.service == $s) | .backend' "$record" | sort -u | tr '\n' ' ')"
  [[ "$names" == *"${SUBJECT[$t]} "* ]] ||
    tb_die "$t: the records name the backends '$names', not ${SUBJECT[$t]}"
done
if [[ "$batch" == train ]]; then
  write_training
else
  for t in "${TRACES[@]}"; do write_trace "$t"; done
fi

# What each base load generator saw, for the log.
for t in "${TRACES[@]}"; do
  for target in "${SUBJECT[$t]}" "${PEER[$t]}"; do
    rep="$TB_DIR/$t-base-${target//[:.]/_}.json"
    [[ -s "$rep" ]] && tb_log "$t $target: $(jq -c '.outcomes' "$rep")"
  done
done
tb_log "batch $batch done"
