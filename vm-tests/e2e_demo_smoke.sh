#!/usr/bin/env bash
# e2e_demo_smoke: scripts/demo.sh works and cleans up after itself.
#   Runs the demo (build skipped: scripts/test.sh built already; 3 s rounds),
#   waits until shhimctl shows traffic on both FHIR backends and the lab HL7
#   backend and the injected faults show up as events, then presses Ctrl-C (SIGINT to the demo's process group, as a terminal
#   would) and checks that no namespace, pin, link, program, cgroup or socket
#   of the demo is left.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly DEMO_BOUND_S=90   # DEMO_DURATION: the demo ends by itself even if Ctrl-C is lost

tb_init e2e_demo_smoke
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
demo_log="$TB_DIR/demo.log"

# Job control puts the demo in its own process group, where SIGINT is not
# ignored (it is for plain background jobs of a script).
set -m
DEMO_DURATION="$DEMO_BOUND_S" DEMO_ROUND_SECONDS=3 DEMO_SKIP_BUILD=1 \
  bash "$TB_REPO_ROOT/scripts/demo.sh" >"$demo_log" 2>&1 </dev/null &
demo_pid=$!
set +m
tb_track_pid "$demo_pid"

# The demo's names derive from its PID (see testbed.sh tb_init).
demo_socket="/run/shhim-demo-$demo_pid/shhimd.sock"
demo_pins="/sys/fs/bpf/shhim-demo-$demo_pid"
demo_cgroup="$TB_CGROUP_ROOT/shhim-demo-$demo_pid"
demo_netns=("shhim-$demo_pid-client" "shhim-$demo_pid-svc")
demo_ctl() { "$TB_SHHIMCTL" --socket "$demo_socket" "$@"; }

prints_socket() { grep -qF "$demo_socket" "$demo_log"; }
tb_check "demo prints the shhimctl commands with its socket" tb_wait_for "demo banner" 60 prints_socket

backend_requests() { tb_backend_field "$(demo_ctl backends -o json)" "$1" "$2" .responses; }
traffic_everywhere() {
  (($(backend_requests "$TB_SVC_IP1" 8080) > 0)) &&
    (($(backend_requests "$TB_SVC_IP2" 8080) > 0)) &&
    (($(backend_requests "$TB_SVC_IP3" 2575) > 0))
}
tb_wait_for "traffic on fhir-a, fhir-b and lab-hl7" 45 traffic_everywhere || true
backends="$(demo_ctl backends -o json || echo '{}')"
for ep in "$TB_SVC_IP1 8080 fhir-a" "$TB_SVC_IP2 8080 fhir-b" "$TB_SVC_IP3 2575 lab-hl7"; do
  read -r a p name <<<"$ep"
  tb_expect_ge "$name $a:$p responses seen by shhimd" 1 "$(tb_backend_field "$backends" "$a" "$p" .responses)"
done

# The injected faults (round 2: fhir-b 503s, round 3: lab NACKs, a refused
# connect and an unanswered SYN) reach the event list.
event_kinds() { demo_ctl events --last 0 -o json | jq -r '[.events[]?.kind] | unique | join(" ")'; }
all_fault_kinds() {
  local kinds
  kinds="$(event_kinds)" || return 1
  [[ " $kinds " == *" http_5xx "* && " $kinds " == *" mllp_nack "* &&
    " $kinds " == *" refused "* && " $kinds " == *" syn_timeout "* ]]
}
tb_wait_for "events from the injected faults" 40 all_fault_kinds || true
tb_check "events show http_5xx, mllp_nack, refused and syn_timeout [$(event_kinds || true)]" all_fault_kinds

# Our objects, by id, to look for after the demo is gone.
link_ids="$(for f in "$demo_pins"/links/*; do [[ -e "$f" ]] && bpftool link show pinned "$f" -j | jq -r .id; done | sort -u || true)"
prog_ids="$(for f in "$demo_pins"/progs/*; do [[ -e "$f" ]] && bpftool prog show pinned "$f" -j | jq -r .id; done | sort -u || true)"
tb_expect_ge "demo pinned programs" 3 "$(grep -c . <<<"$prog_ids" || true)"

tb_log "Ctrl-C to the demo (process group $demo_pid)"
kill -INT -- "-$demo_pid" 2>/dev/null || true
demo_gone() { ! tb_running "$demo_pid"; }
tb_check "demo exits within 30 s of Ctrl-C" tb_wait_for "demo to exit" 30 demo_gone
demo_rc=0
tb_wait_pid "$demo_pid" || demo_rc=$?
exited_cleanly() { ((demo_rc == 0 || demo_rc == 130)); }
tb_check "demo exit status $demo_rc is 0 or 130 (interrupted)" exited_cleanly

tb_check "no pin root $demo_pins" test ! -e "$demo_pins"
tb_check "no socket directory $(dirname "$demo_socket")" test ! -e "$(dirname "$demo_socket")"
tb_check "no cgroup $demo_cgroup" test ! -e "$demo_cgroup"
for ns in "${demo_netns[@]}"; do
  tb_check "no network namespace $ns" test ! -e "/run/netns/$ns"
done
left_over() {   # KIND IDS -> ids bpftool still lists
  comm -12 <(bpftool "$1" show -j | jq -r '.[].id' | sort -u) <(printf '%s\n' "$2" | sed '/^$/d')
}
no_links() { [[ -z "$(left_over link "$link_ids")" ]]; }
no_progs() { [[ -z "$(left_over prog "$prog_ids")" ]]; }
tb_wait_for "demo programs to be freed" 10 no_progs || true
tb_check "none of the demo's links remain (had: $(tr '\n' ' ' <<<"$link_ids"))" no_links
tb_check "none of the demo's programs remain (had: $(tr '\n' ' ' <<<"$prog_ids"))" no_progs
no_demo_processes() { ! pgrep -g "$demo_pid" >/dev/null 2>&1; }
tb_check "no process of the demo's process group is left" no_demo_processes

if ((TB_FAILURES > 0)); then
  echo "--- demo output (last 60 lines)"
  tail -n 60 "$demo_log"
fi
tb_finish
