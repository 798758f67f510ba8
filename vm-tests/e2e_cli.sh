#!/usr/bin/env bash
# e2e_cli: the command-line contract of shhimctl and shhimd.
#   - shhimctl with no agent: one line saying so, exit 1;
#   - --help on shhimctl and every subcommand: exit 0, explains with an Example;
#   - a bad argument: non-zero exit and the usage;
#   - shhimd --preflight: exit 0 on this machine, and it reports every
#     feature issue 2 lists (BTF, XDP native/generic, TC clsact, cgroup v2,
#     sockops, tp_btf, ring buffer, libxdp multi-program or fallback, lockdown).
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

tb_init e2e_cli
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL"

# run_cli OUTFILE COMMAND...: stdout+stderr to OUTFILE, prints the exit status.
run_cli() {
  local out="$1" rc=0
  shift
  "$@" >"$out" 2>&1 </dev/null || rc=$?
  printf '%s\n' "$rc"
}
out="$TB_DIR/out.txt"
rc=0
nonzero() { ((rc != 0)); }

# ---- no agent ----
mkdir -p "$TB_RUN_DIR"
for sock in "$TB_RUN_DIR/absent.sock" "$TB_RUN_DIR/stale.sock"; do
  # stale.sock: a socket file nobody listens on, as a crashed agent leaves.
  if [[ "$sock" == *stale.sock ]]; then
    python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock" 2>/dev/null ||
      : >"$sock"
  fi
  for sub in status flows backends events; do
    rc="$(run_cli "$out" "$TB_SHHIMCTL" --socket "$sock" "$sub")"
    lines="$(grep -c '' "$out" || true)"
    tb_expect_eq "shhimctl $sub, no agent ($(basename "$sock")): exit status" 1 "$rc"
    tb_expect_eq "shhimctl $sub, no agent ($(basename "$sock")): output lines [$(head -n1 "$out")]" 1 "$lines"
  done
done
says_no_agent() { grep -qi 'no agent' "$out"; }
tb_check "the line says no agent is running" says_no_agent

# ---- --help everywhere ----
has_example() { grep -q 'Example' "$out"; }
rc="$(run_cli "$out" "$TB_SHHIMCTL" --help)"
tb_expect_eq "shhimctl --help exit status" 0 "$rc"
tb_check "shhimctl --help contains Example" has_example
for sub in status flows backends events; do
  rc="$(run_cli "$out" "$TB_SHHIMCTL" "$sub" --help)"
  tb_expect_eq "shhimctl $sub --help exit status" 0 "$rc"
  tb_check "shhimctl $sub --help contains Example" has_example
done
# Every flag of flows is explained.
rc="$(run_cli "$out" "$TB_SHHIMCTL" flows --help)"
explains_flows_flags() { grep -q -- '--top' "$out" && grep -q -- '--sort' "$out" && grep -q -- '--output' "$out"; }
tb_check "shhimctl flows --help explains --top, --sort and --output" explains_flows_flags
rc="$(run_cli "$out" "$TB_SHHIMD" --help)"
tb_expect_eq "shhimd --help exit status" 0 "$rc"
explains_shhimd_flags() {
  local f
  for f in --iface --cgroup --policy --preflight --detach; do grep -q -- "$f" "$out" || return 1; done
}
tb_check "shhimd --help explains --iface --cgroup --policy --preflight --detach" explains_shhimd_flags

# ---- bad arguments ----
shows_usage() { grep -qi 'usage' "$out"; }
bad_args=(
  "flows --sort nonsense"
  "backends -o xml"
  "flows --top minus-one"
  "no-such-command"
  "--no-such-flag status"
  ""
)
for args in "${bad_args[@]}"; do
  read -r -a argv <<<"$args"
  rc="$(run_cli "$out" "$TB_SHHIMCTL" --socket "$TB_RUN_DIR/absent.sock" "${argv[@]}")"
  tb_check "shhimctl ${args:-(no arguments)}: exits non-zero (rc=$rc)" nonzero
  tb_check "shhimctl ${args:-(no arguments)}: prints the usage" shows_usage
done
rc="$(run_cli "$out" "$TB_SHHIMD" --no-such-flag)"
tb_check "shhimd --no-such-flag: exits non-zero (rc=$rc)" nonzero

# ---- preflight ----
rc="$(run_cli "$out" "$TB_SHHIMD" --preflight)"
printf -- '--- shhimd --preflight (exit %s)\n' "$rc"
sed 's/^/    /' "$out"
tb_expect_eq "shhimd --preflight exit status" 0 "$rc"
mentions() { grep -Eqi -- "$1" "$out"; }
declare -A features=(
  [BTF]='btf'
  [XDP native]='xdp.*native|native.*xdp'
  [XDP generic]='xdp.*(generic|skb)|generic.*xdp'
  [TC clsact]='clsact'
  [cgroup v2 path]='cgroup.?v?2'
  [sockops]='sock_?ops'
  [tp_btf]='tp_btf|btf.tracepoint|tracepoint.*btf'
  [ring buffer]='ring.?buf'
  [libxdp multi-program or fallback]='libxdp|multi.?prog|dispatcher'
  [lockdown]='lockdown'
)
for feature in "BTF" "XDP native" "XDP generic" "TC clsact" "cgroup v2 path" "sockops" "tp_btf" \
  "ring buffer" "libxdp multi-program or fallback" "lockdown"; do
  tb_check "preflight reports $feature" mentions "${features[$feature]}"
done
# The cgroup it checked is the one on this host.
tb_check "preflight names the cgroup v2 path $TB_CGROUP_ROOT" mentions "$TB_CGROUP_ROOT"

# A cgroup path that is not cgroup v2 is named as what is missing.
bogus_cgroup="$TB_DIR/not-a-cgroup"
mkdir -p "$bogus_cgroup"
rc="$(run_cli "$out" "$TB_SHHIMD" --preflight --cgroup "$bogus_cgroup")"
tb_check "shhimd --preflight --cgroup <not cgroup v2>: exits non-zero (rc=$rc)" nonzero
names_bad_cgroup() { grep -i 'cgroup' "$out" | grep -qvi '^ok'; }
tb_check "... and names the cgroup as the problem [$(grep -i cgroup "$out" | head -n1)]" names_bad_cgroup

tb_finish
