#!/usr/bin/env bash
# e2e_anomaly_brownout: a brownout caught by the anomaly score (issue 5), live.
#   One clinical HTTP service on the virtual address 198.18.0.100:8080 with
#   three primaries (.10 .11 .12, each answering after 20 ms), shhimd with
#   the shipped model (the score acts by default), and one long
#   load-generator run through the VIP (new connection per request, ~150
#   requests/s) from before the warm-up to after the death:
#   1. warm-up: healthy traffic until every backend's baseline holds enough
#      samples (a condition with a deadline); no backend may leave healthy.
#   2. brownout: .10's latency climbs geometrically from 20 ms to 800 ms in
#      1 s steps over 30 s (testsvc control API), then its server is killed.
#   Asserts: .10 is ejected by the engine with an "anomalous" reason that
#   names p99 latency BEFORE it dies; `shhimctl explain` printed "p99
#   latency ... vs baseline ..." during the climb; no request that started
#   after the death failed (and the total is reported, ideally 0 too); the
#   other backends took every connection after the ejection; no other
#   backend was ejected. Prints the timeline and the score at every step.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly PORT=8080
readonly VIP=198.18.0.100
readonly CTL_PORT=9999
readonly GOOD_PATH=/fhir/Patient/example
readonly SERVICE=charts
readonly BASE_MS=20          # every backend's latency when healthy
readonly PEAK_MS=800         # the browned-out backend's latency just before it dies
readonly CLIMB_STEPS=30      # one per second
readonly RATE=150            # requests/s through the VIP, all backends together
# Baseline samples (ticks of 100 ms learnt as normal, plus the prior's 10)
# every backend must hold before the brownout: about a minute of traffic.
readonly WARMUP_SAMPLES=600
readonly WARMUP_DEADLINE_S=180
readonly TAIL_S=5            # traffic after the death
# The load generator's planned length covers the longest warm-up; it is
# stopped (SIGTERM, which still writes the report) after the tail.
readonly LOAD_S=$((WARMUP_DEADLINE_S + CLIMB_STEPS + TAIL_S + 60))

tb_init e2e_anomaly_brownout
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_LOADGEN" "$TB_TESTSVC"
command -v jq >/dev/null || tb_die "jq is needed"
command -v curl >/dev/null || tb_die "curl is needed"
tb_create_netns
tb_create_cgroup

victim="$TB_SVC_IP1:$PORT"
others=("$TB_SVC_IP2:$PORT" "$TB_SVC_IP3:$PORT")
all=("$victim" "${others[@]}")

policy="$TB_DIR/policy.yaml"
# ejection_ms 60 s: no probe reaches the ejected backend inside the measured
# run, so its connection counters after the ejection are the load
# generator's alone (and a probe cannot restore it while still slow).
cat >"$policy" <<YAML
schema_version: 1
name: e2e-anomaly-brownout
services:
  - name: $SERVICE
    address: $VIP:$PORT
    protocol: http
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$PORT, $TB_SVC_IP2:$PORT, $TB_SVC_IP3:$PORT]
    thresholds:
      ejection_ms: 60000
    probe:
      http_path: $GOOD_PATH
      interval_ms: 200
      timeout_ms: 300
      successes: 3
YAML

start_backend() {   # NAME IP
  tb_start_testsvc "$1" --http "$2:$PORT" --control "$2:$CTL_PORT" --latency-ms "$BASE_MS"
}
start_backend a "$TB_SVC_IP1"
pid_victim="$TB_LAST_PID"
start_backend b "$TB_SVC_IP2"
start_backend c "$TB_SVC_IP3"

tb_start_shhimd --policy "$policy" --tick-ms 100 --anomaly-model "$TB_REPO_ROOT/models/default.model"

faults() {   # IP JSON: POST the knobs to that backend's control endpoint
  tb_fault "$1:$CTL_PORT" "$2"
}
now_ns() { date +%s%N; }
sleep_until_ns() {   # UNIX_NS: pacing of the scenario (not a wait for a condition)
  local left=$(($1 - $(now_ns)))
  ((left <= 0)) || sleep "$(awk -v ns="$left" 'BEGIN { printf "%.3f", ns / 1e9 }')"
}
explain_json() { tb_ctl explain "$SERVICE" "$1" -o json; }
baseline_samples() { explain_json "$1" | jq -r '(.baseline_samples // 0) | floor'; }
all_scored() {
  local b
  for b in "${all[@]}"; do explain_json "$b" >/dev/null || return 1; done
}
score_acts() { explain_json "$victim" | jq -e '.acting == true' >/dev/null; }
baselines_ready() {
  local b
  for b in "${all[@]}"; do
    (($(baseline_samples "$b" 2>/dev/null || echo 0) >= WARMUP_SAMPLES)) || return 1
  done
}
state_of() {   # BACKEND: the engine's state
  tb_ctl services "$SERVICE" -o json | jq -r --arg b "$1" '.services[0].backends[] | select(.backend == $b) | .state'
}
audit_json() { tb_ctl audit tail -n 1000 -o json | jq -s .; }
# Backend state changes after the policy added them (the adds have no "before").
changes_of() {   # AUDIT_JSON BACKEND
  jq -c --arg b "$2" '[.[] | select(.backend == $b and .before != "")]' <<<"$1"
}
counter() {   # BACKENDS_JSON BACKEND FIELD
  tb_backend_field "$1" "${2%:*}" "$PORT" ".$3"
}

# ---- 1. warm-up -------------------------------------------------------------
report="$TB_DIR/load.json"
tb_loadgen_bg load --http "$VIP:$PORT" --rate "$RATE" --duration "$LOAD_S" --connection new \
  --concurrency 128 --timeout-ms 3000 --report "$report"
load_pid="$TB_LAST_PID"
load_start=$SECONDS
load_start_ns="$(now_ns)"
tb_check "warm-up: every backend scored by the anomaly engine" \
  tb_wait_for "an anomaly score for every backend" 30 all_scored
tb_check "the score acts (shhimd's default; --anomaly-shadow would not)" score_acts
tb_check "warm-up: every baseline holds >= $WARMUP_SAMPLES samples" \
  tb_wait_for "baselines of >= $WARMUP_SAMPLES samples" "$WARMUP_DEADLINE_S" baselines_ready
warmup_end_ns="$(now_ns)"
warmup_s=$((SECONDS - load_start))
tb_check "warm-up: the load generator still runs" tb_running "$load_pid"
audit_warm="$(audit_json)"
for b in "${all[@]}"; do
  tb_expect_eq "warm-up: state changes of $b" "[]" "$(changes_of "$audit_warm" "$b")"
done
tb_log "warm-up done after ${warmup_s}s; baseline of $victim:"
tb_ctl explain "$SERVICE" "$victim" | sed 's/^/    /' >&2

# ---- 2. brownout and death --------------------------------------------------
steps_ns=()
steps_ms=()
timeline="$TB_DIR/timeline.txt"
eject_seen_ns=""
at_eject=""
# `shhimctl explain` of the victim every 200 ms through the climb, each
# answer under a "--- UNIX_NS" line: once ejected it carries no traffic and
# its explanation is empty, so the one that led to the ejection must be
# caught while it happens. Bounded: it ends at the stop file or after 60 s.
explain_log="$TB_DIR/explain.log"
explain_stop="$TB_DIR/explain.stop"
poll_explain() {
  local k
  for ((k = 0; k < 300; k++)); do
    [[ -e "$explain_stop" ]] && return 0
    printf -- '--- %s\n' "$(now_ns)"
    tb_ctl explain "$SERVICE" "$victim" 2>&1 || true
    sleep 0.2
  done
}
poll_explain >"$explain_log" &
poller_pid=$!
tb_track_pid "$poller_pid"
climb_start_ns="$(now_ns)"
for ((i = 1; i <= CLIMB_STEPS; i++)); do
  ms="$(awk -v b="$BASE_MS" -v p="$PEAK_MS" -v i="$i" -v n="$CLIMB_STEPS" 'BEGIN { printf "%d", b * (p / b) ^ (i / n) + 0.5 }')"
  sleep_until_ns $((climb_start_ns + (i - 1) * 1000000000))
  faults "$TB_SVC_IP1" "{\"latency_ms\": $ms}"
  steps_ns+=("$(now_ns)")
  steps_ms+=("$ms")
  # What the engine sees one step later is the previous latency's ticks; read
  # it at the end of the step, just before the next change.
  sleep_until_ns $((climb_start_ns + i * 1000000000 - 150000000))
  json="$(explain_json "$victim" 2>/dev/null || echo '{}')"
  state="$(state_of "$victim")"
  printf 't=%2ds latency %4d ms  %s  %s\n' "$((i - 1))" "$ms" \
    "$(jq -r '"score \(.score // 0 | . * 100 | round / 100) (mahalanobis \(.mahalanobis_score // 0 | . * 100 | round / 100), trend \(.trend_score // 0 | . * 100 | round / 100))  \(.drivers[0].text // "-")"' <<<"$json")" \
    "$state" | tee -a "$timeline" >&2
  if [[ -z "$eject_seen_ns" && "$state" == ejected ]]; then
    eject_seen_ns="$(now_ns)"
    at_eject="$(tb_backends_json)"
    touch "$explain_stop"   # nothing left to explain: it carries no traffic now
  fi
done
sleep_until_ns $((climb_start_ns + CLIMB_STEPS * 1000000000))
touch "$explain_stop"
tb_wait_pid "$poller_pid" || true
at_death="$(tb_backends_json)"
death_ns="$(now_ns)"
tb_log "killing $victim (testsvc pid $pid_victim) at ${steps_ms[-1]} ms"
kill -KILL "$pid_victim"
tb_wait_pid "$pid_victim" || true
sleep_until_ns $((death_ns + TAIL_S * 1000000000))
kill -TERM "$load_pid"
# Stopped before its planned end, it exits non-zero ("not all sent") by design;
# the report is what counts.
load_rc=0
tb_wait_pid "$load_pid" || load_rc=$?
tb_log "loadgen stopped (exit status $load_rc): $(tail -n 1 "$TB_DIR/load.log")"
report_written() { jq -e '.interrupted == true and (.requests | length > 0)' "$report" >/dev/null; }
tb_check "the load generator wrote its report" report_written
at_end="$(tb_backends_json)"

# ---- 3. verdict -------------------------------------------------------------
audit_all="$(audit_json)"
eject="$(jq -c --arg b "$victim" '[.[] | select(.backend == $b and .action == "eject")][0] // {}' <<<"$audit_all")"
eject_ns="$(jq -r '.time_unix_ns // 0' <<<"$eject")"
tb_check "the browned-out backend was ejected" test "$eject_ns" -gt 0
tb_expect_eq "ejected by" engine "$(jq -r '.actor // ""' <<<"$eject")"
reason_has() { jq -r '.reason // ""' <<<"$eject" | grep -qE "$1"; }
tb_check "the ejection's reason is the anomaly score" reason_has '^anomalous for [0-9]+ ticks in a row'
tb_check "the ejection's reason names p99 latency" reason_has 'p99 latency ([0-9.]+ ms vs baseline|climbing)'
tb_check "ejected before it died" test "$eject_ns" -gt 0 -a "$eject_ns" -lt "$death_ns"
# Every explanation before the ejection (without one: before the death) that
# scored the victim degraded, each under its "--- UNIX_NS" line.
degraded="$TB_DIR/explain-degraded.log"
awk -v until="$((eject_ns > 0 ? eject_ns : death_ns))" '
  function flush() { if (keep) printf "%s", block }
  /^--- [0-9]+$/ { flush(); t = $2; block = $0 "\n"; keep = 0; next }
  { block = block $0 "\n"; if (t <= until && / score [0-9.]+ \(degraded/) keep = 1 }
  END { flush() }' "$explain_log" >"$degraded"
last_degraded="$(awk '/^--- / { block = ""; next } { block = block $0 "\n" } END { printf "%s", block }' "$degraded")"
degraded_names_p99() { grep -qE '^ +p99 latency [0-9.]+ ms vs baseline [0-9.]+ ms' "$degraded"; }
tb_check "explain of the degraded backend printed 'p99 latency ... vs baseline ...'" degraded_names_p99
for b in "${others[@]}"; do
  tb_expect_eq "state changes of $b (it only took more traffic)" "[]" "$(changes_of "$audit_all" "$b")"
done

# The latency in effect when the engine ejected it.
eject_ms=""
for i in "${!steps_ns[@]}"; do
  ((steps_ns[i] <= eject_ns)) && eject_ms="${steps_ms[i]}"
done
[[ -n "$eject_ms" ]] || eject_ms=$BASE_MS
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e9 }'; }
since_load() { secs $(($1 - load_start_ns)); }

# Requests: failed = sent and not answered 200 (slow answers are not failures).
read -r sent failed failed_after_death failed_after_eject after_death after_eject < <(
  jq -r --argjson d "$death_ns" --argjson e "$eject_ns" '
    [.requests[] | select(.outcome != "not_sent") | {t: (.start_unix_ns | tonumber), ok: (.outcome == "200")}] as $r |
    [($r | length), ([$r[] | select(.ok | not)] | length),
     ([$r[] | select(.t >= $d and (.ok | not))] | length), ([$r[] | select($e > 0 and .t >= $e and (.ok | not))] | length),
     ([$r[] | select(.t >= $d)] | length), ([$r[] | select($e > 0 and .t >= $e)] | length)] | @tsv' "$report")
tb_expect_ge "requests sent" $((RATE * (warmup_s + CLIMB_STEPS) * 9 / 10)) "$sent"
tb_expect_ge "requests started after the death" $((RATE * TAIL_S * 8 / 10)) "$after_death"
tb_expect_eq "failed requests started after the death" 0 "$failed_after_death"
tb_expect_eq "failed requests started after the ejection" 0 "$failed_after_eject"

# Connections after the death: none tried the dead backend, the others took them all.
victim_tries="$(($(counter "$at_end" "$victim" conn_attempts) - $(counter "$at_death" "$victim" conn_attempts)))"
others_took=0
for b in "${others[@]}"; do
  others_took=$((others_took + $(counter "$at_end" "$b" conn_established) - $(counter "$at_death" "$b" conn_established)))
done
tb_expect_eq "connection attempts to $victim after its death" 0 "$victim_tries"
tb_expect_ge "connections the other backends took after the death" $((after_death * 95 / 100)) "$others_took"
if [[ -n "$at_eject" ]]; then
  tb_expect_eq "connection attempts to $victim between its ejection and its death" 0 \
    "$(($(counter "$at_death" "$victim" conn_attempts) - $(counter "$at_eject" "$victim" conn_attempts)))"
fi

printf '\ntimeline (seconds from the start of the load):\n'
printf '  warm-up end      %6s s  (baselines >= %d samples)\n' "$(since_load "$warmup_end_ns")" "$WARMUP_SAMPLES"
printf '  brownout start   %6s s  (%d -> %d ms in %d steps of 1 s)\n' \
  "$(since_load "$climb_start_ns")" "$BASE_MS" "$PEAK_MS" "$CLIMB_STEPS"
if ((eject_ns > 0)); then
  printf '  ejection         %6s s  = %s s into the climb, latency then %s ms\n' \
    "$(since_load "$eject_ns")" "$(secs $((eject_ns - climb_start_ns)))" "$eject_ms"
  printf '    reason: %s\n' "$(jq -r .reason <<<"$eject")"
  printf '    the last degraded explanation before it:\n'
  printf '%s\n' "$last_degraded" | sed 's/^/      /'
else
  printf '  ejection         none\n'
fi
printf '  death            %6s s  = %s s into the climb\n' \
  "$(since_load "$death_ns")" "$(secs $((death_ns - climb_start_ns)))"
printf 'requests: %d sent, %d failed in total, %d failed after the ejection (of %d), %d after the death (of %d)\n' \
  "$sent" "$failed" "$failed_after_eject" "$after_eject" "$failed_after_death" "$after_death"
printf 'loadgen: %s\n' "$(jq -c '{outcomes, latency: {p50: .latency.p50_seconds, p99: .latency.p99_seconds, max: .latency.max_seconds}}' "$report")"

tb_finish
