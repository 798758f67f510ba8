# shellcheck shell=bash
# vm-tests/lib/packet_loss.sh - random loss of one backend's TCP packets in
# the testbed (this kernel has no netem). Source it after testbed.sh and
# after tb_init and tb_create_netns, then:
#   pl_attach              load tests/rig/packet_loss.bpf.o under a private
#                          pin root and attach it to both directions of the
#                          services-side veth ($TB_IF_SVC, in $TB_NS_SVC)
#   pl_set SLOT PORT SHARE drop SHARE (0..1, e.g. 0.02) of the TCP packets to
#                          and from PORT; SLOT 0..7 (one slot per backend)
#   pl_clear SLOT          stop that slot's loss
#   pl_stats SLOT          prints "MATCHED DROPPED" packets of that slot
#   pl_detach              remove the filters and the pins (idempotent)
# pl_attach wraps the testbed's EXIT trap so that pl_detach runs before
# tb_cleanup (which deletes the namespaces, and with them the filters).
# Callers use `set -euo pipefail`.

PL_OBJ="$TB_BUILD/tests/rig/packet_loss.bpf.o"
PL_SLOTS=8
PL_PIN_ROOT=""
PL_ATTACHED=0

pl_attach() {
  [[ -r "$PL_OBJ" ]] || tb_die "missing $PL_OBJ (run scripts/build.sh)"
  command -v bpftool >/dev/null || tb_die "bpftool is needed for the packet-loss rig"
  PL_PIN_ROOT="/sys/fs/bpf/shhim-rig-$$"
  mkdir "$PL_PIN_ROOT"
  trap pl__exit_trap EXIT
  bpftool prog loadall "$PL_OBJ" "$PL_PIN_ROOT/progs" type classifier pinmaps "$PL_PIN_ROOT/maps" ||
    tb_die "could not load $PL_OBJ"
  # The services namespace has no clsact of its own: shhimd attaches only
  # on the client side.
  tb_in_svc tc qdisc add dev "$TB_IF_SVC" clsact
  PL_ATTACHED=1
  tb_in_svc tc filter add dev "$TB_IF_SVC" ingress prio 1 handle 1 bpf direct-action \
    object-pinned "$PL_PIN_ROOT/progs/loss_ingress"
  tb_in_svc tc filter add dev "$TB_IF_SVC" egress prio 1 handle 1 bpf direct-action \
    object-pinned "$PL_PIN_ROOT/progs/loss_egress"
  tb_log "packet-loss rig on $TB_IF_SVC (ingress and egress), pins in $PL_PIN_ROOT"
}

# Little-endian bytes of a number, as bpftool takes them: pl__le BYTES VALUE.
pl__le() {
  local n="$1" v="$2" i bytes=()
  for ((i = 0; i < n; i++)); do
    bytes+=("$(printf '0x%02x' $(((v >> (8 * i)) & 0xff)))")
  done
  printf '%s\n' "${bytes[*]}"
}

pl__check_slot() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 >= PL_SLOTS)); then
    tb_die "packet-loss slot '$1' is not 0..$((PL_SLOTS - 1))"
  fi
  [[ -n "$PL_PIN_ROOT" ]] || tb_die "pl_attach first"
}

pl__write() {   # SLOT PORT PPM
  # shellcheck disable=SC2046  # the byte lists are meant to split
  bpftool map update pinned "$PL_PIN_ROOT/maps/loss_rules" key $(pl__le 4 "$1") \
    value $(pl__le 2 "$2") 0 0 $(pl__le 4 "$3")
}

pl_set() {   # SLOT PORT SHARE
  local slot="$1" port="$2" share="$3" ppm
  pl__check_slot "$slot"
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    tb_die "packet-loss port '$port' is not 1..65535"
  fi
  ppm="$(awk -v s="$share" 'BEGIN { if (s < 0 || s > 1) exit 1; printf "%d", s * 1000000 + 0.5 }')" ||
    tb_die "packet-loss share '$share' is not 0..1"
  pl__write "$slot" "$port" "$ppm"
  tb_log "packet loss: port $port drops $ppm per million (slot $slot)"
}

pl_clear() {   # SLOT
  pl__check_slot "$1"
  pl__write "$1" 0 0
  tb_log "packet loss: slot $1 cleared"
}

pl_stats() {   # SLOT: "MATCHED DROPPED"
  pl__check_slot "$1"
  # shellcheck disable=SC2046
  bpftool -j map lookup pinned "$PL_PIN_ROOT/maps/loss_stats" key $(pl__le 4 "$1") |
    jq -r '"\(.formatted.value.matched) \(.formatted.value.dropped)"'
}

pl_detach() {
  if ((PL_ATTACHED)) && [[ -e "/run/netns/$TB_NS_SVC" ]]; then
    tb_in_svc tc qdisc del dev "$TB_IF_SVC" clsact 2>/dev/null || true
  fi
  PL_ATTACHED=0
  if [[ -n "$PL_PIN_ROOT" && -d "$PL_PIN_ROOT" ]]; then
    rm -rf --one-file-system "$PL_PIN_ROOT"
  fi
  PL_PIN_ROOT=""
}

# The EXIT trap after pl_attach: detach, then the testbed's cleanup with
# the script's exit status.
pl__exit_trap() {
  local rc=$?
  # errexit off first: `(exit rc)` must not end the trap before tb_cleanup.
  set +e
  pl_detach
  (exit "$rc")
  tb_cleanup
}
