#!/usr/bin/env bash
# e2e_policy_reload: class policies applied live, under traffic (issue 3).
#   Three request streams run to services of three classes (two named as
#   services, one matched by a rule) while 100 policies are applied in
#   rotation: the policy, an alternative (an extra rule, another default
#   class, another imaging DSCP) and an invalid one (the same services moved
#   to bulk, plus an interface that does not exist). Every request is
#   answered, no TCP segment is retransmitted (no packet lost), every
#   invalid policy is refused without a new generation, and every packet of
#   every stream, both directions, is counted in its own class: the class
#   counters equal the flows' own packet counts exactly, so no packet was
#   classified by a half-written policy, by the invalid one, or by default.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly APPLIES=100
readonly INTERVAL_MS=100
readonly RATE=100                      # requests/s per stream
readonly SECONDS_OF_TRAFFIC=20
readonly PORT_EMERGENCY=8101 PORT_CLINICAL=8102 PORT_IMAGING=8103

tb_init e2e_policy_reload
# shellcheck source=vm-tests/lib/classes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/classes.sh"
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN" "$CL_TOOL"
tb_create_netns
tb_create_cgroup

tb_start_testsvc services --http "$TB_SVC_IP1:$PORT_EMERGENCY" --http "$TB_SVC_IP1:$PORT_CLINICAL" \
  --http "$TB_SVC_IP2:$PORT_IMAGING"
# shellcheck disable=SC2119  # no extra shhimd flags
tb_start_shhimd

policy=(--service "$TB_SVC_IP1:$PORT_EMERGENCY=emergency" --service "$TB_SVC_IP1:$PORT_CLINICAL=clinical"
  --rule "198.18.0.0/24:8100-8199/tcp=imaging" --remark "$TB_IF_CLIENT")
tb_check "first policy applied" cl_tool "${policy[@]}"

retrans_before=$(cl_tcp_retrans)
pids=()
for target in "$TB_SVC_IP1:$PORT_EMERGENCY" "$TB_SVC_IP1:$PORT_CLINICAL" "$TB_SVC_IP2:$PORT_IMAGING"; do
  tb_loadgen_bg "load-${target##*:}" --http "$target" --rate "$RATE" --duration "$SECONDS_OF_TRAFFIC" \
    --concurrency 4 --connection keepalive --report "$TB_DIR/load-${target##*:}.json" --no-per-request
  pids+=("$TB_LAST_PID")
done

tb_log "applying $APPLIES policies in rotation (valid, valid, invalid) every ${INTERVAL_MS} ms under traffic"
summary="$(cl_tool "${policy[@]}" --reload "$APPLIES" --reload-interval-ms "$INTERVAL_MS")"
tb_log "reload: $summary"
for p in "${pids[@]}"; do tb_wait_pid "$p" || true; done
retrans=$(($(cl_tcp_retrans) - retrans_before))

valid=$((APPLIES - APPLIES / 3))
tb_expect_eq "valid policies applied" "$valid" "$(jq -r .applied <<<"$summary")"
tb_expect_eq "invalid policies refused" $((APPLIES / 3)) "$(jq -r .refused <<<"$summary")"
tb_expect_eq "applies with an unexpected outcome" 0 "$(jq -r .unexpected <<<"$summary")"
# One generation per valid policy, plus the final re-apply of the first; none for a refused one.
tb_expect_eq "generations published" $((valid + 1)) \
  $(($(jq -r .generation_after <<<"$summary") - $(jq -r .generation_before <<<"$summary")))

for port in "$PORT_EMERGENCY" "$PORT_CLINICAL" "$PORT_IMAGING"; do
  r="$TB_DIR/load-$port.json"
  tb_expect_eq "requests to :$port answered 200" "$(cl_planned "$r")" "$(cl_ok "$r")"
done
tb_expect_eq "TCP segments retransmitted by the client (packets lost)" 0 "$retrans"

# Counters settle once the last responses are in; then classes vs flows.
cl_tool "${policy[@]}" --report "$TB_DIR/classes.json" >/dev/null
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
# (Bulk, the invalid policy's class, is also the alternative's default class:
# packets that are not part of a flow, such as IPv6 neighbour discovery, may
# count there while it is current. The equalities above are the check.)
tb_log "bulk egress packets (non-flow traffic under the alternative's default): $(cl_counter \
  "$TB_DIR/classes.json" "$TB_IF_CLIENT" bulk egress_packets)"

tb_finish
