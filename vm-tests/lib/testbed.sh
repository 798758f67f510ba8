# shellcheck shell=bash
# shellcheck disable=SC2034  # the TB_* settings are for the scripts that source this
# vm-tests/lib/testbed.sh - the network-namespace test bed shared by the
# end-to-end tests and scripts/demo.sh. Source it, then call tb_init.
#
#   client netns  shhim-$$-client   shhim-$$-c  198.18.0.1/24   2001:2::1/64
#        |  veth (shhimd attaches XDP ingress + TC egress on the client side)
#   svc netns     shhim-$$-svc      shhim-$$-s  198.18.0.10/24 .11 .12
#                                               2001:2::10/64 ::11 ::12
#
# The client routes 198.18.1.0/24 (TB_DROP_NET) through the services side,
# which has forwarding off and a blackhole route for it: SYNs there are
# dropped without an answer, so the client sees a SYN timeout.
# Addresses come only from 198.18.0.0/15 (RFC 2544) and 2001:2::/48
# (RFC 5180), the benchmarking ranges. Every name includes the PID of the
# sourcing shell so parallel runs cannot collide. tb_cleanup (trapped on
# EXIT, INT and TERM) kills only the processes started here, detaches
# shhimd from its private pin root and removes namespaces and cgroup.
#
# Callers use `set -euo pipefail`.

TB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TB_BUILD="${SHHIM_BUILD_DIR:-$TB_REPO_ROOT/build}"
TB_SHHIMD="$TB_BUILD/userspace/agent/shhimd"
TB_SHHIMCTL="$TB_BUILD/userspace/cli/shhimctl"
TB_TESTSVC="$TB_BUILD/tools/testsvc/shhim-testsvc"
TB_LOADGEN="$TB_BUILD/tools/loadgen/shhim-loadgen"

TB_CLIENT_IP=198.18.0.1
TB_SVC_IP1=198.18.0.10
TB_SVC_IP2=198.18.0.11
TB_SVC_IP3=198.18.0.12
TB_DROP_NET=198.18.1.0/24
TB_DROP_IP=198.18.1.1
TB_CLIENT_IP6=2001:2::1
TB_SVC_IP6_1=2001:2::10
TB_SVC_IP6_2=2001:2::11
TB_SVC_IP6_3=2001:2::12

TB_PIDS=()          # every background process this library started
TB_FAILURES=0
TB_CHECKS=0
TB_CLEANED=0

tb_log() { printf '[%s] %s\n' "${TB_NAME:-testbed}" "$*" >&2; }
tb_die() { tb_log "ERROR: $*"; exit 1; }

# tb_init NAME [KIND]: sets every per-run name and the cleanup trap.
# KIND is "test" (default) or "demo": it goes into the pin root, socket
# and cgroup names (/sys/fs/bpf/shhim-test-$$ ...).
tb_init() {
  TB_NAME="$1"
  local kind="${2:-test}"
  ((EUID == 0)) || tb_die "must run as root (network namespaces, BPF)"

  TB_TAG="shhim-$$"
  TB_NS_CLIENT="$TB_TAG-client"
  TB_NS_SVC="$TB_TAG-svc"
  TB_IF_CLIENT="$TB_TAG-c"      # at most 15 characters even with a 7-digit PID
  TB_IF_SVC="$TB_TAG-s"
  TB_PIN_ROOT="/sys/fs/bpf/shhim-$kind-$$"
  TB_RUN_DIR="/run/shhim-$kind-$$"
  TB_SOCKET="$TB_RUN_DIR/shhimd.sock"
  TB_CGROUP_ROOT="$(tb_cgroup2_mount)"
  TB_CGROUP="$TB_CGROUP_ROOT/shhim-$kind-$$"
  TB_DIR="$(mktemp -d "/tmp/shhim-$kind-$$-XXXXXX")"
  TB_SHHIMD_ARGS=()
  TB_SHHIMD_PID=""

  trap tb_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The cgroup v2 mount: /sys/fs/cgroup/unified on hybrid hosts (this one),
# /sys/fs/cgroup on pure v2 hosts.
tb_cgroup2_mount() {
  local mnt
  mnt="$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n1 || true)"
  [[ -n "$mnt" ]] || tb_die "no cgroup v2 hierarchy mounted"
  printf '%s\n' "$mnt"
}

tb_require_binaries() {
  local b
  for b in "$@"; do
    [[ -x "$b" ]] || tb_die "missing binary $b (run scripts/build.sh)"
  done
}

# Runs a command in a namespace's network stack only. nsenter keeps the
# host's mount namespace, so /sys/fs/bpf and the cgroup fs stay visible
# (`ip netns exec` remounts /sys and hides both).
tb_in_client() { nsenter --net="/run/netns/$TB_NS_CLIENT" -- "$@"; }
tb_in_svc() { nsenter --net="/run/netns/$TB_NS_SVC" -- "$@"; }

tb_create_netns() {
  ip netns add "$TB_NS_CLIENT"
  ip netns add "$TB_NS_SVC"
  ip link add "$TB_IF_CLIENT" netns "$TB_NS_CLIENT" type veth \
    peer name "$TB_IF_SVC" netns "$TB_NS_SVC"

  ip -n "$TB_NS_CLIENT" link set lo up
  ip -n "$TB_NS_CLIENT" addr add "$TB_CLIENT_IP/24" dev "$TB_IF_CLIENT"
  ip -n "$TB_NS_CLIENT" -6 addr add "$TB_CLIENT_IP6/64" dev "$TB_IF_CLIENT" nodad
  ip -n "$TB_NS_CLIENT" link set "$TB_IF_CLIENT" up
  ip -n "$TB_NS_CLIENT" route add "$TB_DROP_NET" via "$TB_SVC_IP1" dev "$TB_IF_CLIENT"

  ip -n "$TB_NS_SVC" link set lo up
  local a
  for a in "$TB_SVC_IP1" "$TB_SVC_IP2" "$TB_SVC_IP3"; do
    ip -n "$TB_NS_SVC" addr add "$a/24" dev "$TB_IF_SVC"
  done
  for a in "$TB_SVC_IP6_1" "$TB_SVC_IP6_2" "$TB_SVC_IP6_3"; do
    ip -n "$TB_NS_SVC" -6 addr add "$a/64" dev "$TB_IF_SVC" nodad
  done
  ip -n "$TB_NS_SVC" link set "$TB_IF_SVC" up
  # Forwarding is off in a new namespace; the blackhole makes the drop of
  # TB_DROP_NET explicit and silent (no ICMP back to the client).
  ip -n "$TB_NS_SVC" route add blackhole "$TB_DROP_NET"

  # Permanent neighbour entries both ways: no ARP/NDP round trip (or a
  # dropped first SYN while DAD is still running, which would look like a
  # SYN timeout) can blur what the tests count.
  local mac_client mac_svc
  mac_client="$(ip -n "$TB_NS_CLIENT" -j link show dev "$TB_IF_CLIENT" | jq -r '.[0].address')"
  mac_svc="$(ip -n "$TB_NS_SVC" -j link show dev "$TB_IF_SVC" | jq -r '.[0].address')"
  for a in "$TB_SVC_IP1" "$TB_SVC_IP2" "$TB_SVC_IP3" "$TB_SVC_IP6_1" "$TB_SVC_IP6_2" "$TB_SVC_IP6_3"; do
    ip -n "$TB_NS_CLIENT" neigh replace "$a" lladdr "$mac_svc" dev "$TB_IF_CLIENT" nud permanent
  done
  for a in "$TB_CLIENT_IP" "$TB_CLIENT_IP6"; do
    ip -n "$TB_NS_SVC" neigh replace "$a" lladdr "$mac_client" dev "$TB_IF_SVC" nud permanent
  done
  tb_log "netns $TB_NS_CLIENT ($TB_IF_CLIENT $TB_CLIENT_IP) <-> $TB_NS_SVC ($TB_IF_SVC $TB_SVC_IP1 $TB_SVC_IP2 $TB_SVC_IP3)"
}

tb_create_cgroup() {
  mkdir "$TB_CGROUP"
  tb_log "cgroup $TB_CGROUP"
}

tb_track_pid() { TB_PIDS+=("$1"); }

tb_forget_pid() {
  local keep=() p
  for p in "${TB_PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  TB_PIDS=("${keep[@]}")
}

# tb_wait_pid PID: waits for a process this shell started, forgets it and
# returns its exit status.
tb_wait_pid() {
  local rc=0
  wait "$1" || rc=$?
  tb_forget_pid "$1"
  return "$rc"
}

# True only while PID is still a child of this shell: a PID we started that
# has exited may be reused by an unrelated process, which we must not signal.
tb__is_our_child() {
  local ppid stat
  read -r ppid stat < <(ps -o ppid=,stat= -p "$1" 2>/dev/null || true) || return 1
  [[ "$ppid" == "$$" && "$stat" != Z* ]]
}

# tb_running PID: the process this run started is still running.
tb_running() { tb__is_our_child "$1"; }

# tb_wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND every
# 100 ms until it succeeds; fails (returns 1) at the deadline.
tb_wait_for() {
  local what="$1" timeout_s="$2"
  shift 2
  local deadline=$((SECONDS + timeout_s))
  while true; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      tb_log "timed out after ${timeout_s}s waiting for: $what"
      return 1
    fi
    sleep 0.1
  done
}

# tb_start_testsvc NAME ARGS...: starts shhim-testsvc in the services
# namespace, output in $TB_DIR/NAME.log, and waits for one "ready" line per
# listener (--http, --mllp, --control). Sets TB_LAST_PID.
tb_start_testsvc() {
  local name="$1"
  shift
  local listeners=0 arg
  for arg in "$@"; do
    case "$arg" in
      --http | --mllp | --control | --http=* | --mllp=* | --control=*) listeners=$((listeners + 1)) ;;
    esac
  done
  local log="$TB_DIR/$name.log"
  # A simple command (not a function) in the background: $! is the
  # service itself, since nsenter execs it.
  nsenter --net="/run/netns/$TB_NS_SVC" -- "$TB_TESTSVC" "$@" >"$log" 2>&1 </dev/null &
  TB_LAST_PID=$!
  tb_track_pid "$TB_LAST_PID"
  local pid="$TB_LAST_PID"
  tb_wait_for "testsvc $name ready ($listeners listeners)" 15 \
    tb__ready_lines "$log" "$listeners" "$pid" ||
    { cat "$log" >&2; tb_die "testsvc $name did not start"; }
  tb_log "testsvc $name pid $pid: $*"
}

tb__ready_lines() {
  local log="$1" want="$2" pid="$3" have
  tb__is_our_child "$pid" || return 1
  have="$(grep -ci 'ready' "$log" || true)"
  ((have >= want))
}

# tb_start_shhimd ARGS...: starts shhimd in the client namespace on the
# client veth and the test cgroup, with the private pin root and socket.
# Extra ARGS are appended (e.g. --policy FILE). Waits until it answers.
tb_start_shhimd() {
  mkdir -p "$TB_RUN_DIR"
  # The audit trail per run: agents rebuild routing states from it, so a shared
  # /var/lib/shhim/audit.jsonl would carry one run's ejections into the next.
  TB_SHHIMD_ARGS=(--iface "$TB_IF_CLIENT" --cgroup "$TB_CGROUP"
    --pin-root "$TB_PIN_ROOT" --socket "$TB_SOCKET" --audit-log "$TB_DIR/audit.jsonl" "$@")
  tb__launch_shhimd
}

# Starts shhimd again with exactly the flags of the last tb_start_shhimd.
tb_restart_shhimd() { tb__launch_shhimd; }

tb__launch_shhimd() {
  local log="$TB_DIR/shhimd.log"
  printf -- '--- start %s\n' "$(date +%T.%N)" >>"$log"
  nsenter --net="/run/netns/$TB_NS_CLIENT" -- "$TB_SHHIMD" "${TB_SHHIMD_ARGS[@]}" >>"$log" 2>&1 </dev/null &
  TB_SHHIMD_PID=$!
  tb_track_pid "$TB_SHHIMD_PID"
  if ! tb_wait_for "shhimd answering on $TB_SOCKET" 30 tb__shhimd_up; then
    tail -n 40 "$log" >&2
    tb_die "shhimd did not come up"
  fi
  tb_log "shhimd pid $TB_SHHIMD_PID: ${TB_SHHIMD_ARGS[*]}"
}

tb__shhimd_up() {
  tb__is_our_child "$TB_SHHIMD_PID" && tb_ctl status >/dev/null 2>&1
}

# tb_kill_shhimd SIGNAL: signals shhimd and waits for it to exit.
tb_kill_shhimd() {
  local sig="${1:-TERM}" pid="$TB_SHHIMD_PID"
  [[ -n "$pid" ]] || return 0
  tb__is_our_child "$pid" && kill "-$sig" "$pid" 2>/dev/null
  tb_wait_for "shhimd pid $pid to exit" 15 tb__not_alive "$pid" || {
    tb__is_our_child "$pid" && kill -KILL "$pid" 2>/dev/null
  }
  tb_wait_pid "$pid" 2>/dev/null || true
  TB_SHHIMD_PID=""
}

tb__not_alive() { ! tb__is_our_child "$1"; }

# tb_detach: `shhimd --detach` for this run's pin root (in the client
# namespace, where the interfaces it attached to live).
tb_detach() {
  tb_in_client "$TB_SHHIMD" --detach --pin-root "$TB_PIN_ROOT" \
    --iface "$TB_IF_CLIENT" --cgroup "$TB_CGROUP" >>"$TB_DIR/shhimd.log" 2>&1
}

tb_ctl() { "$TB_SHHIMCTL" --socket "$TB_SOCKET" "$@"; }

# tb_ctl_bg OUT ERR ARGS...: shhimctl in the background, stdout to OUT and
# stderr to ERR (the same file: both into it); sets TB_LAST_PID. A simple
# command, not the tb_ctl function, so that $! is shhimctl itself and a
# signal sent to it by PID reaches it.
tb_ctl_bg() {
  local out="$1" err="$2"
  shift 2
  if [[ "$out" == "$err" ]]; then
    "$TB_SHHIMCTL" --socket "$TB_SOCKET" "$@" >"$out" 2>&1 </dev/null &
  else
    "$TB_SHHIMCTL" --socket "$TB_SOCKET" "$@" >"$out" 2>"$err" </dev/null &
  fi
  TB_LAST_PID=$!
  tb_track_pid "$TB_LAST_PID"
}

# tb_fault CONTROL_ADDR:PORT JSON: changes a testsvc's fault knobs through
# its control API (shhim-testsvc --help); a refused knob stops the test
# rather than letting it run without its fault.
tb_fault() {
  tb_in_svc curl -sS -f -m 5 -X POST "http://$1/faults" -d "$2" >/dev/null ||
    tb_die "testsvc at $1 refused the fault $2"
}

# The inner shell moves itself into the test cgroup (so sockops sees the
# load generator's sockets), then execs into the client namespace: one PID
# from start to end.
# shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner shell
TB__IN_CGROUP_AND_CLIENT='cg="$0" ns="$1"; shift
  echo $$ >"$cg/cgroup.procs" && exec nsenter --net="$ns" -- "$@"'

# tb_loadgen ARGS...: runs shhim-loadgen in the client namespace inside the
# test cgroup; returns its exit status.
tb_loadgen() {
  sh -c "$TB__IN_CGROUP_AND_CLIENT" "$TB_CGROUP" "/run/netns/$TB_NS_CLIENT" \
    "$TB_LOADGEN" "$@" </dev/null
}

# tb_loadgen_bg LOGNAME ARGS...: same, in the background, output in
# $TB_DIR/LOGNAME.log; sets TB_LAST_PID (the load generator's own PID).
tb_loadgen_bg() {
  local name="$1"
  shift
  sh -c "$TB__IN_CGROUP_AND_CLIENT" "$TB_CGROUP" "/run/netns/$TB_NS_CLIENT" \
    "$TB_LOADGEN" "$@" >"$TB_DIR/$name.log" 2>&1 </dev/null &
  TB_LAST_PID=$!
  tb_track_pid "$TB_LAST_PID"
}

# ---- JSON helpers (protobuf JSON: uint64 are strings, zeros omitted) ----

# tb_backend_field JSON ADDRESS PORT JQ_PATH: prints the number at JQ_PATH
# (e.g. .http.status_2xx) of that backend, 0 when absent.
tb_backend_field() {
  jq -r --arg a "$2" --argjson p "$3" \
    "[.backends[]? | select(.endpoint.address == \$a and ((.endpoint.port // 0) | tonumber) == \$p)][0] | ($4) // 0 | tonumber" \
    <<<"$1"
}

# Exact-JSON snapshot of the backend list, for waiting until it is stable.
tb_backends_json() { tb_ctl backends -o json; }

# ---- assertions ----

tb_check() {   # tb_check DESCRIPTION COMMAND...
  local what="$1"
  shift
  TB_CHECKS=$((TB_CHECKS + 1))
  if "$@"; then
    printf 'ok    %s\n' "$what"
  else
    printf 'FAIL  %s\n' "$what"
    TB_FAILURES=$((TB_FAILURES + 1))
  fi
}

tb_expect_eq() {   # tb_expect_eq DESCRIPTION EXPECTED ACTUAL
  TB_CHECKS=$((TB_CHECKS + 1))
  if [[ "$2" == "$3" ]]; then
    printf 'ok    %s = %s\n' "$1" "$3"
  else
    printf 'FAIL  %s = %s, expected %s\n' "$1" "$3" "$2"
    TB_FAILURES=$((TB_FAILURES + 1))
  fi
}

tb_expect_ge() {   # tb_expect_ge DESCRIPTION MINIMUM ACTUAL (integers)
  TB_CHECKS=$((TB_CHECKS + 1))
  if (($3 >= $2)); then
    printf 'ok    %s = %s (>= %s)\n' "$1" "$3" "$2"
  else
    printf 'FAIL  %s = %s, expected >= %s\n' "$1" "$3" "$2"
    TB_FAILURES=$((TB_FAILURES + 1))
  fi
}

# tb_finish: prints the verdict; the exit status is the caller's.
tb_finish() {
  if ((TB_CHECKS == 0)); then
    printf '%s: FAIL (no checks ran)\n' "$TB_NAME"
    return 1
  fi
  if ((TB_FAILURES > 0)); then
    printf '%s: FAIL (%d of %d checks failed)\n' "$TB_NAME" "$TB_FAILURES" "$TB_CHECKS"
    return 1
  fi
  printf '%s: PASS (%d checks)\n' "$TB_NAME" "$TB_CHECKS"
}

# ---- cleanup ----

tb_cleanup() {
  local rc=$?
  ((TB_CLEANED == 0)) || return "$rc"
  TB_CLEANED=1
  # Finish the cleanup whatever arrives now: a second Ctrl-C, a TERM from
  # a test runner's timeout, or a closed output pipe (tee killed by Ctrl-C).
  trap '' INT TERM PIPE
  set +e

  # 1. Only the processes this run started: TERM, bounded wait, KILL.
  local pid
  for pid in "${TB_PIDS[@]}"; do
    tb__is_our_child "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  local deadline=$((SECONDS + 5))
  for pid in "${TB_PIDS[@]}"; do
    while tb__is_our_child "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    tb__is_our_child "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done

  # 2. Programs, links and pins (needs the client namespace for TC filters).
  if [[ -n "${TB_PIN_ROOT:-}" && -e "$TB_PIN_ROOT" ]]; then
    if [[ -x "$TB_SHHIMD" && -e "/run/netns/$TB_NS_CLIENT" ]]; then
      tb_detach || tb_log "shhimd --detach failed (see $TB_DIR/shhimd.log)"
    fi
    # Whatever --detach left: unlinking the pins drops our references.
    [[ -e "$TB_PIN_ROOT" ]] && rm -rf --one-file-system "$TB_PIN_ROOT"
  fi

  # 3. Namespaces (deleting them removes the veth and anything on it).
  [[ -n "${TB_NS_CLIENT:-}" ]] && ip netns del "$TB_NS_CLIENT" 2>/dev/null
  [[ -n "${TB_NS_SVC:-}" ]] && ip netns del "$TB_NS_SVC" 2>/dev/null

  # 4. The cgroup (empty now that its processes are gone).
  if [[ -n "${TB_CGROUP:-}" && -d "$TB_CGROUP" ]]; then
    deadline=$((SECONDS + 5))
    until rmdir "$TB_CGROUP" 2>/dev/null || ((SECONDS >= deadline)); do sleep 0.1; done
    [[ -d "$TB_CGROUP" ]] && tb_log "could not remove $TB_CGROUP"
  fi

  [[ -n "${TB_RUN_DIR:-}" ]] && rm -rf "$TB_RUN_DIR"
  if [[ -n "${TB_DIR:-}" && -d "$TB_DIR" ]]; then
    # Keep them when something failed (130: interrupted is not a failure).
    if ((rc != 0 && rc != 130)) || [[ -n "${TB_KEEP_LOGS:-}" ]]; then
      tb_log "logs kept in $TB_DIR"
    else
      rm -rf "$TB_DIR"
    fi
  fi
  return "$rc"
}
