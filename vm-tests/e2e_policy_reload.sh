#!/usr/bin/env bash
# e2e_policy_reload: policies applied live, under traffic (issue 3), the
# ways an operator applies them: `shhimd --policy FILE` at start, then 100
# applies, mostly `shhimctl policy apply FILE`, every fifth one by rewriting
# the --policy file and sending shhimd SIGHUP.
#   Three request streams run to services of three classes (two named as
#   services, one matched by a rule) while the applies rotate: policy B (an
#   extra rule, another default class, another imaging DSCP), policy A (the
#   one shhimd started with), and an invalid one, alternately of two kinds:
#   one that validation refuses (a service in a class that does not exist)
#   and one that passes validation but cannot be applied to the kernel (the
#   services moved to bulk and an interface that does not exist), so the
#   agent must refuse it half-way without leaving anything of it behind.
#   After every apply, `shhimctl policy show` gives the version expected
#   (the invalid ones leave the previous one) and `shhimctl classes` the
#   generation (one more per valid policy, none for an invalid one). Every
#   request is answered, no TCP segment is retransmitted (no packet lost),
#   and every packet of every stream, both directions, is counted in its own
#   class: the class counters equal the flows' own packet counts exactly, so
#   no packet was classified by a half-written policy, by an invalid one, or
#   by default.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly APPLIES=100
readonly SIGHUP_EVERY=5                # every fifth apply goes through SIGHUP
readonly RATE=100                      # requests/s per stream
readonly SECONDS_OF_TRAFFIC=40         # longer than the applies take; checked below
readonly PORT_EMERGENCY=8101 PORT_CLINICAL=8102 PORT_IMAGING=8103

tb_init e2e_policy_reload
# shellcheck source=vm-tests/lib/classes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/classes.sh"
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup

tb_start_testsvc services --http "$TB_SVC_IP1:$PORT_EMERGENCY" --http "$TB_SVC_IP1:$PORT_CLINICAL" \
  --http "$TB_SVC_IP2:$PORT_IMAGING"

# policy_yaml NAME EMERGENCY_CLASS CLINICAL_CLASS IFACE [EXTRA_RULES [TAIL]]
policy_yaml() {
  printf 'schema_version: 1\nname: %s\nservices:\n' "$1"
  cl_service_yaml orders "$TB_SVC_IP1:$PORT_EMERGENCY" "$2"
  cl_service_yaml fhir "$TB_SVC_IP1:$PORT_CLINICAL" "$3"
  printf 'rules:\n  - name: imaging-ports\n    cidrs:\n      - 198.18.0.0/24\n'
  printf '    ports:\n      first: 8100\n      last: 8199\n    protocol: tcp\n    class: imaging\n'
  printf '%s' "${5:-}"
  printf 'interfaces:\n  - name: %s\n    role: clients\n    capacity_mbps: 1000\n' "$4"
  printf '%s' "${6:-}"
}
policy_a="$TB_DIR/policy-a.yaml"
policy_b="$TB_DIR/policy-b.yaml"
invalid_check="$TB_DIR/invalid-check.yaml"   # refused by validation
invalid_apply="$TB_DIR/invalid-apply.yaml"   # valid, refused by the kernel apply
policy_yaml reload-a emergency clinical "$TB_IF_CLIENT" >"$policy_a"
# B: an extra rule (UDP syslog to the services' subnet: no traffic of this
# test), bulk as the default class, imaging marked AF12 instead of AF11.
policy_yaml reload-b emergency clinical "$TB_IF_CLIENT" \
  $'  - name: syslog\n    cidrs:\n      - 198.18.0.0/24\n    ports:\n      first: 514\n    protocol: udp\n    class: administrative\n' \
  $'default_class: bulk\nclasses:\n  - name: imaging\n    dscp: 12\n' >"$policy_b"
policy_yaml reload-invalid emergency no-such-class "$TB_IF_CLIENT" >"$invalid_check"
policy_yaml reload-unappliable bulk bulk "shhim$$-none" >"$invalid_apply"

version_a=$(cl_policy_version_of "$policy_a")
version_b=$(cl_policy_version_of "$policy_b")
[[ -n "$version_a" && -n "$version_b" && "$version_a" != "$version_b" ]] ||
  tb_die "policies A and B must be valid and differ (A '$version_a', B '$version_b')"
[[ -z "$(cl_policy_version_of "$invalid_check")" ]] || tb_die "$invalid_check should fail validation"
[[ -n "$(cl_policy_version_of "$invalid_apply")" ]] ||
  tb_die "$invalid_apply should pass validation (it fails only when applied)"

live="$TB_DIR/live.yaml"                     # the file shhimd --policy reads again on SIGHUP
cp "$policy_a" "$live"
tb_start_shhimd --policy "$live"
tb_check "shhimd started with policy A" cl_policy_is "$version_a"

retrans_before=$(cl_tcp_retrans)
pids=()
for target in "$TB_SVC_IP1:$PORT_EMERGENCY" "$TB_SVC_IP1:$PORT_CLINICAL" "$TB_SVC_IP2:$PORT_IMAGING"; do
  tb_loadgen_bg "load-${target##*:}" --http "$target" --rate "$RATE" --duration "$SECONDS_OF_TRAFFIC" \
    --concurrency 4 --connection keepalive --report "$TB_DIR/load-${target##*:}.json" --no-per-request
  pids+=("$TB_LAST_PID")
done

policy_notices() { cl_feed_count policy; }
notices_above() { (($(policy_notices) > $1)); }

# apply_one FILE: applies FILE (shhimctl, or SIGHUP when $via is sighup);
# prints "ok" or "refused".
apply_one() {
  if [[ $via == sighup ]]; then
    local before
    before=$(policy_notices)
    cp "$1" "$live"
    tb__is_our_child "$TB_SHHIMD_PID" && kill -HUP "$TB_SHHIMD_PID"
    # Every SIGHUP with a changed file ends in exactly one policy notice.
    tb_wait_for "shhimd to answer SIGHUP" 10 notices_above "$before" || { echo timeout; return; }
    if tb_ctl observe --type policy -o json | tail -n1 | jq -e '.policy.action == "reloaded"' >/dev/null; then
      echo ok
    else
      echo refused
    fi
  elif tb_ctl policy apply "$1" >>"$TB_DIR/applies.log" 2>&1; then
    echo ok
  else
    echo refused
  fi
}

tb_log "applying $APPLIES policies in rotation (B, A, invalid) under traffic; every ${SIGHUP_EVERY}th by SIGHUP"
applied=0 refused=0 unexpected=0 sighups=0
expected_version=$version_a
generation=$(cl_generation)
generation_start=$generation
for ((i = 0; i < APPLIES; i++)); do
  via=rpc
  ((i % SIGHUP_EVERY == SIGHUP_EVERY - 1)) && via=sighup && sighups=$((sighups + 1))
  case $((i % 3)) in
    0) file=$policy_b want=ok version=$version_b ;;
    1) file=$policy_a want=ok version=$version_a ;;
    *) if (((i / 3) % 2 == 0)); then file=$invalid_check; else file=$invalid_apply; fi
       want=refused version=$expected_version ;;
  esac
  outcome=$(apply_one "$file")
  [[ $outcome == ok ]] && applied=$((applied + 1))
  [[ $outcome == refused ]] && refused=$((refused + 1))
  now_generation=$(cl_generation)
  want_generation=$generation
  [[ $want == ok ]] && want_generation=$((generation + 1))
  if [[ $outcome != "$want" ]] || ! cl_policy_is "$version" || ((now_generation != want_generation)); then
    unexpected=$((unexpected + 1))
    tb_log "apply $i ($via, $(basename "$file")): outcome $outcome (want $want), version $(cl_policy_version | head -c12)" \
      "(want $version), generation $now_generation (want $want_generation)"
  fi
  expected_version=$version
  generation=$now_generation
done
still_running=0
for p in "${pids[@]}"; do tb_running "$p" && still_running=$((still_running + 1)); done
tb_expect_eq "request streams still running when the last apply was done (applies under traffic)" 3 "$still_running"
for p in "${pids[@]}"; do tb_wait_pid "$p" || true; done
retrans=$(($(cl_tcp_retrans) - retrans_before))

valid=$((APPLIES - APPLIES / 3))
tb_expect_eq "valid policies applied" "$valid" "$applied"
tb_expect_eq "invalid policies refused" $((APPLIES / 3)) "$refused"
tb_expect_eq "applies through SIGHUP" $((APPLIES / SIGHUP_EVERY)) "$sighups"
tb_expect_eq "applies with an unexpected outcome, version or generation" 0 "$unexpected"
tb_expect_eq "generations published (one per valid policy)" "$valid" $((generation - generation_start))
tb_expect_eq "policy notices \"loaded\" (shhimd --policy at start)" 1 \
  "$(cl_feed_count policy '.policy.action == "loaded"')"
tb_expect_eq "rejected policy notices (every invalid one, both ways in)" $((APPLIES / 3)) \
  "$(cl_feed_count policy '.policy.action == "rejected"')"

for port in "$PORT_EMERGENCY" "$PORT_CLINICAL" "$PORT_IMAGING"; do
  r="$TB_DIR/load-$port.json"
  tb_expect_eq "requests to :$port answered 200" "$(cl_planned "$r")" "$(cl_ok "$r")"
done
tb_expect_eq "TCP segments retransmitted by the client (packets lost)" 0 "$retrans"

# Counters settle once the last responses are in; then classes vs flows.
tb_ctl classes -o json >"$TB_DIR/classes.json"
flows="$(tb_ctl flows -o json)"
flow_packets() {   # flow_packets PORT FIELD: summed over the streams' flows to that server port
  jq -r --argjson p "$1" "[.flows[]? | select(((.server.port // 0) | tonumber) == \$p) | (.$2 // 0 | tonumber)] | add // 0" <<<"$flows"
}
for pair in "$PORT_EMERGENCY:emergency" "$PORT_CLINICAL:clinical" "$PORT_IMAGING:imaging"; do
  port=${pair%%:*}
  class=${pair#*:}
  tb_expect_eq "$class egress packets = packets the :$port flows sent" \
    "$(flow_packets "$port" packets_to_server)" "$(cl_counter "$TB_DIR/classes.json" "$TB_IF_CLIENT" "$class" egress_packets)"
  tb_expect_eq "$class ingress packets = packets the :$port flows received" \
    "$(flow_packets "$port" packets_to_client)" "$(cl_counter "$TB_DIR/classes.json" "$TB_IF_CLIENT" "$class" ingress_packets)"
done
# (Bulk, the invalid policy's class, is also B's default class: packets that
# are not part of a flow, such as IPv6 neighbour discovery, may count there
# while B is current. The equalities above are the check.)
tb_log "bulk egress packets (non-flow traffic under B's default): $(cl_counter \
  "$TB_DIR/classes.json" "$TB_IF_CLIENT" bulk egress_packets)"

tb_finish
