#!/usr/bin/env bash
# e2e_restart: the agent holds no state the kernel maps don't.
#   Under steady keep-alive traffic, kill -9 shhimd and start it again with
#   the same flags. Across the restart no counter of any backend or flow goes
#   backwards; the client sees every request answered (nothing lost while no
#   agent ran) and the kernel counted every one of them. Then
#   `shhimd --detach` leaves no pin, no link and no attached program.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly RATE=50 DURATION_S=10 HTTP_PORT=8080

tb_init e2e_restart
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
command -v bpftool >/dev/null || tb_die "bpftool missing (scripts/setup-deps.sh)"
tb_create_netns
tb_create_cgroup
tb_start_testsvc http --http "$TB_SVC_IP1:$HTTP_PORT" --latency-ms 5
# shellcheck disable=SC2119  # no extra shhimd flags
tb_start_shhimd

report="$TB_DIR/loadgen-report.json"
tb_loadgen_bg loadgen --http "$TB_SVC_IP1:$HTTP_PORT" --rate "$RATE" --duration "$DURATION_S" \
  --concurrency 2 --connection keepalive --report "$report"
loadgen_pid="$TB_LAST_PID"

# Counters as "path = value" lines, for every monotonic counter: uint64 and
# int64 fields arrive as JSON strings, uint32 flow counters as numbers.
# Rates, latencies, RTTs and wall-clock timestamps are not counters.
readonly FLOW_U32='["syn","synack","fin","rst","icmp_errors","errors","requests","responses","retransmits","rto_events"]'
counters() {
  jq -r --argjson u32 "$FLOW_U32" '
    def ep: "\(.address):\(.port // 0)";
    ((.backends // [])[] | {key: ("backend " + (.endpoint | ep)), v: .}),
    ((.flows // [])[] | {key: ("flow " + (.client | ep) + ">" + (.server | ep)), v: .})
    | .key as $k
    | .v | paths(scalars) as $p
    | getpath($p) as $x
    | ($p | map(tostring) | join(".")) as $name
    | select($name | test("unix_ns$") | not)
    | select(($x | type) == "string" and ($x | test("^[0-9]+$"))
             or (($x | type) == "number" and ($p | length) == 1 and ($u32 | index($p[0])) != null))
    | "\($k) \($name) \($x)"'
}
snapshot() {   # FILE: backends and flows as counter lines
  { tb_ctl backends -o json | counters; tb_ctl flows --top 0 -o json | counters; } >"$1"
}

backend_requests() {
  tb_backend_field "$(tb_backends_json)" "$TB_SVC_IP1" "$HTTP_PORT" .requests
}
traffic_flowing() { (($(backend_requests) >= RATE)); }
tb_wait_for "traffic counted before the restart" 15 traffic_flowing ||
  tb_die "no traffic counted (backend requests $(backend_requests || true))"

before="$TB_DIR/before.txt"
snapshot "$before"
tb_log "snapshot before: $(wc -l <"$before") counters, backend requests $(awk '$1 == "backend" && $3 == "requests" {print $4}' "$before")"

# The programs on the interface, by id: a restart of the same build reuses them.
attached_ids() {
  tb_in_client bpftool net show -j |
    jq -r '[.[] | (.xdp // [])[], (.tc // [])[] | .id] | sort | map(tostring) | join(" ")'
}
ids_before="$(attached_ids)"

tb_log "kill -9 shhimd (pid $TB_SHHIMD_PID) under traffic"
tb_kill_shhimd KILL
tb_check "loadgen still running while the agent is down" tb_running "$loadgen_pid"
tb_restart_shhimd

after="$TB_DIR/after.txt"
snapshot "$after"
tb_expect_eq "XDP/TC program ids on $TB_IF_CLIENT after restart (same programs, not reloaded)" "$ids_before" "$(attached_ids)"
tb_expect_eq "status.reused_pinned_state after restart" true "$(tb_ctl status -o json | jq -r '.reused_pinned_state // false')"

# Every counter in "before" exists in "after" with a value at least as big.
compare_counters() {
  awk '
    NR == FNR { before[$1 " " $2 " " $3] = $4; next }
    { after[$1 " " $2 " " $3] = $4 }
    END {
      n = 0; bad = 0
      for (k in before) {
        n++
        if (!(k in after)) { printf "  missing after restart: %s (was %s)\n", k, before[k]; bad++; continue }
        if (after[k] + 0 < before[k] + 0) { printf "  went backwards: %s %s -> %s\n", k, before[k], after[k]; bad++ }
      }
      printf "  compared %d counters across the restart, %d went backwards or vanished\n", n, bad
      exit bad != 0 || n == 0
    }' "$before" "$after"
}
tb_check "no backend or flow counter went backwards across kill -9 + restart" compare_counters

loadgen_done() { ! tb_running "$loadgen_pid"; }
tb_wait_for "loadgen to finish" $((DURATION_S + 20)) loadgen_done || true
loadgen_rc=0
tb_wait_pid "$loadgen_pid" || loadgen_rc=$?
tb_expect_eq "loadgen exit status" 0 "$loadgen_rc"

sent="$(jq -r '.completed // 0 | tonumber' "$report")"
errors="$(jq -r '.errors // 0 | tonumber' "$report")"
tb_expect_ge "loadgen requests completed" $((RATE * DURATION_S * 9 / 10)) "$sent"
tb_expect_eq "loadgen errors (requests lost or failed)" 0 "$errors"

all_counted() { (($(backend_requests) >= sent)); }
tb_wait_for "kernel to count every request" 10 all_counted || true
tb_expect_eq "backend requests counted by the kernel (incl. while the agent was down)" "$sent" "$(backend_requests)"
tb_expect_eq "backend responses" "$sent" "$(tb_backend_field "$(tb_backends_json)" "$TB_SVC_IP1" "$HTTP_PORT" .responses)"

# ---- detach: nothing of ours may remain ----
# Our objects, by id, before detaching: the pinned links and programs.
ids_of() {   # DIR KIND(link|prog) -> ids, one per line
  local f
  for f in "$1"/*; do
    [[ -e "$f" ]] || continue
    bpftool "$2" show pinned "$f" -j 2>/dev/null | jq -r '.id' || true
  done
}
our_links="$(ids_of "$TB_PIN_ROOT/links" link | sort -u)"
our_progs="$(ids_of "$TB_PIN_ROOT/progs" prog | sort -u)"
tb_expect_ge "pinned links before detach" 2 "$(grep -c . <<<"$our_links" || true)"
tb_expect_ge "pinned programs before detach" 3 "$(grep -c . <<<"$our_progs" || true)"

tb_kill_shhimd TERM
detach_rc=0
tb_detach || detach_rc=$?
tb_expect_eq "shhimd --detach exit status" 0 "$detach_rc"

pin_root_empty() { [[ ! -e "$TB_PIN_ROOT" ]] || [[ -z "$(find "$TB_PIN_ROOT" -mindepth 1 -print -quit)" ]]; }
tb_check "pin root $TB_PIN_ROOT empty or absent" pin_root_empty

net_show="$(tb_in_client bpftool net show -j)"
attached_on_ns() {
  jq -e '[.[] | (.xdp // []), (.tc // [])] | flatten | length == 0' <<<"$net_show" >/dev/null
}
tb_check "no XDP or TC program on the client namespace's interfaces ($(jq -c '[.[] | (.xdp // []) + (.tc // [])] | flatten' <<<"$net_show"))" attached_on_ns

still_there() {   # KIND IDS: prints the ids bpftool still lists
  local live
  live="$(bpftool "$1" show -j | jq -r '.[].id' | sort -u)"
  comm -12 <(printf '%s\n' "$live") <(printf '%s\n' "$2" | sed '/^$/d')
}
no_links_left() { [[ -z "$(still_there link "$our_links")" ]]; }
# A program is freed after its last reference goes, which can trail the
# detach by an RCU grace period: wait for it with a deadline.
no_progs_left() { [[ -z "$(still_there prog "$our_progs")" ]]; }
tb_wait_for "our links to go" 5 no_links_left || true
tb_wait_for "our programs to be freed" 10 no_progs_left || true
tb_check "bpftool link lists none of ours (had: $(tr '\n' ' ' <<<"$our_links"))" no_links_left
tb_check "bpftool prog lists none of ours (had: $(tr '\n' ' ' <<<"$our_progs"))" no_progs_left
cg_show="$(bpftool cgroup show "$TB_CGROUP" -j 2>/dev/null || echo '[]')"
tb_expect_eq "programs attached to $TB_CGROUP" 0 "$(jq 'length' <<<"${cg_show:-[]}")"

tb_finish
