#!/usr/bin/env bash
# e2e_capture: `shhimctl capture` of a known exchange, read back with tshark.
#   1. capture --count 20 --port P, armed before 5 HTTP requests (one
#      connection each): exactly 20 frames, all between the client and the
#      service on port P, the first connection's SYN, SYN-ACK and FINs among
#      them, and every frame cut at the end of its TCP header (captured
#      length = Ethernet + IP header + TCP header with options): no payload.
#   2. capture --count 1000 --host IP2 (IPv4) stopped by SIGINT after 5
#      requests: it says how many it wrote, and that is exactly the number of
#      packets the kernel counted on those flows (shhimctl flows); 5 SYNs, 5
#      SYN-ACKs. A second capture meanwhile is refused (one at a time).
#   3. The same over IPv6 (--host), count 12.
#   4. --service fhir (a policy applied with shhimctl): only packets to its
#      address and backends, all of them.
#   5. Bad filters print the usage and exit 2.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly HTTP_PORT=8080 PORT2=8081 REQUESTS=5

tb_init e2e_capture
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
command -v tshark >/dev/null || tb_die "tshark is missing (scripts/setup-deps.sh installs it)"
tb_create_netns
tb_create_cgroup
tb_start_testsvc http --http "$TB_SVC_IP1:$HTTP_PORT" --http "$TB_SVC_IP2:$PORT2" \
  --http "[$TB_SVC_IP6_1]:$HTTP_PORT"
# shellcheck disable=SC2119  # no extra shhimd flags
tb_start_shhimd

# tshark as root refuses nothing here, but warns; keep its output to fields.
tshark_fields() { tshark -r "$1" -T fields -E separator=' ' "${@:2}" 2>/dev/null; }

# capture_started N: the agent logged its Nth "capture ... started" line.
capture_started() { (($(grep -c 'capture [0-9]* started' "$TB_DIR/shhimd.log" || true) >= $1)); }
capture_ended() { (($(grep -c 'capture [0-9]* ended' "$TB_DIR/shhimd.log" || true) >= $1)); }

# every_frame_cut_at_l4 PCAP: captured length = 14 + IP header + TCP header on every frame.
every_frame_cut_at_l4() {
  # IPv6 here carries no extension headers: its header is 40 bytes.
  tshark -r "$1" -T fields -E separator=, -e frame.cap_len -e ip.hdr_len -e ipv6.version -e tcp.hdr_len 2>/dev/null |
    awk -F, '{ cap = $1; ip = ($3 == 6) ? 40 : $2; tcp = $4
               if (tcp == "" || cap != 14 + ip + tcp) { print "frame " NR ": cap_len " cap " != 14+" ip "+" tcp; bad = 1 } }
             END { exit bad || NR == 0 }'
}
# some_frame_had_payload PCAP: at least one frame was longer on the wire than captured.
some_frame_had_payload() {
  tshark_fields "$1" -e frame.len -e frame.cap_len | awk '$1 > $2 { found = 1 } END { exit !found }'
}
# only_between PCAP CLIENT SERVER PORT: every frame is CLIENT:* <-> SERVER:PORT.
only_between() {
  local field=ip
  [[ "$2" == *:* ]] && field=ipv6
  tshark_fields "$1" -e "$field.src" -e "$field.dst" -e tcp.srcport -e tcp.dstport |
    awk -v c="$2" -v s="$3" -v p="$4" '
      !(($1 == c && $2 == s && $4 == p) || ($1 == s && $2 == c && $3 == p)) { print "unexpected: " $0; bad = 1 }
      END { exit bad || NR == 0 }'
}
# flag_count PCAP FLAGS: frames whose TCP flags are exactly FLAGS (tshark's 0x... form).
flag_count() { tshark_fields "$1" -e tcp.flags | grep -c "^$2\$" || true; }
fin_count() {
  tshark_fields "$1" -e tcp.flags.fin | grep -c '^\(1\|True\)$' || true
}
frame_count() { tshark_fields "$1" -e frame.number | grep -c '' || true; }

# Background captures go through tb_ctl_bg: the PID is shhimctl's own, so
# SIGINT reaches it.

# ---- 1. exactly N packets, then the capture ends by itself ----
pcap1="$TB_DIR/port.pcap"
tb_ctl_bg "$TB_DIR/capture1.out" "$TB_DIR/capture1.out" capture --count 20 --port "$HTTP_PORT" -w "$pcap1"
cap1="$TB_LAST_PID"
tb_wait_for "capture 1 armed" 10 capture_started 1 || tb_die "capture 1 was not armed"
tb_check "loadgen: $REQUESTS HTTP requests, one connection each" tb_loadgen --http "$TB_SVC_IP1:$HTTP_PORT" \
  --count "$REQUESTS" --connection new --report "$TB_DIR/load1.json"
rc=0
tb_wait_for "capture 1 to exit" 15 tb__not_alive "$cap1" || true
tb_wait_pid "$cap1" || rc=$?
tb_expect_eq "capture --count 20 exit status" 0 "$rc"
says_20() { grep -q 'wrote 20 packets' "$TB_DIR/capture1.out"; }
tb_check "capture says it wrote 20 packets [$(cat "$TB_DIR/capture1.out")]" says_20
tb_expect_eq "tshark reads frames from the capture" 20 "$(frame_count "$pcap1")"
tb_check "every frame is $TB_CLIENT_IP:* <-> $TB_SVC_IP1:$HTTP_PORT" only_between "$pcap1" "$TB_CLIENT_IP" "$TB_SVC_IP1" "$HTTP_PORT"
first_syn="$(tshark_fields "$pcap1" -e tcp.flags | head -n1)"
tb_expect_eq "the first frame is the first connection's SYN" "0x0002" "$first_syn"
tb_expect_ge "SYN-ACKs captured" 1 "$(flag_count "$pcap1" 0x0012)"
tb_expect_ge "FINs captured (both sides of the first connection)" 2 "$(fin_count "$pcap1")"
tb_check "every frame ends at its TCP header (no payload byte)" every_frame_cut_at_l4 "$pcap1"
tb_check "requests and responses were longer on the wire than captured" some_frame_had_payload "$pcap1"
directions_ok() {
  # Timestamps are wall clock (within a minute of now) and never go backwards.
  tshark_fields "$pcap1" -e frame.time_epoch |
    awk -v now="$(date +%s)" '{ if ($1 < now - 60 || $1 > now + 5 || $1 < last) bad = 1; last = $1 } END { exit bad }'
}
tb_check "timestamps are wall-clock time, in order" directions_ok

# ---- 2. Ctrl-C: the capture keeps what it has and says so ----
pcap2="$TB_DIR/host.pcap"
tb_ctl_bg "$TB_DIR/capture2.out" "$TB_DIR/capture2.out" capture --count 1000 --host "$TB_SVC_IP2" -w "$pcap2"
cap2="$TB_LAST_PID"
tb_wait_for "capture 2 armed" 10 capture_started 2 || tb_die "capture 2 was not armed"
rc=0
tb_ctl capture --count 1 --port 9 -w "$TB_DIR/second.pcap" >"$TB_DIR/second.out" 2>&1 || rc=$?
tb_expect_eq "a second capture meanwhile: exit status" 1 "$rc"
refused_one_at_a_time() { grep -q 'another capture is running' "$TB_DIR/second.out"; }
tb_check "a second capture is refused: $(head -n1 "$TB_DIR/second.out")" refused_one_at_a_time
tb_check "loadgen: $REQUESTS requests to $TB_SVC_IP2:$PORT2" tb_loadgen --http "$TB_SVC_IP2:$PORT2" \
  --count "$REQUESTS" --connection new --report "$TB_DIR/load2.json"
# The kernel's own count of those flows' packets, once it is stable.
kernel_packets() {
  tb_ctl flows --top 0 -o json | jq --arg s "$TB_SVC_IP2" \
    '[.flows[]? | select(.server.address == $s) | ((.packets_to_server // 0 | tonumber) + (.packets_to_client // 0 | tonumber))] | add // 0'
}
pcap_caught_up() { [[ "$(frame_count "$pcap2")" == "$(kernel_packets)" ]]; }
tb_wait_for "the pcap to hold every packet the kernel counted" 10 pcap_caught_up || true
kill -INT "$cap2"
rc=0
tb_wait_for "capture 2 to exit after SIGINT" 10 tb__not_alive "$cap2" || true
tb_wait_pid "$cap2" || rc=$?
tb_expect_eq "capture stopped by SIGINT: exit status" 0 "$rc"
expected="$(kernel_packets)"
tb_expect_eq "frames in the pcap = packets the kernel counted on those flows" "$expected" "$(frame_count "$pcap2")"
says_n() { grep -q "wrote $expected packets.*interrupted" "$TB_DIR/capture2.out"; }
tb_check "capture says it wrote $expected packets (interrupted) [$(cat "$TB_DIR/capture2.out")]" says_n
tb_expect_eq "SYNs (one per connection)" "$REQUESTS" "$(flag_count "$pcap2" 0x0002)"
tb_expect_eq "SYN-ACKs (one per connection)" "$REQUESTS" "$(flag_count "$pcap2" 0x0012)"
tb_expect_ge "FINs" "$((2 * REQUESTS))" "$(fin_count "$pcap2")"
tb_check "every frame is $TB_CLIENT_IP:* <-> $TB_SVC_IP2:$PORT2" only_between "$pcap2" "$TB_CLIENT_IP" "$TB_SVC_IP2" "$PORT2"
tb_check "every frame ends at its TCP header (no payload byte)" every_frame_cut_at_l4 "$pcap2"
tb_wait_for "capture 2 disarmed" 10 capture_ended 2 || true

# ---- 3. IPv6 ----
pcap3="$TB_DIR/v6.pcap"
tb_ctl_bg "$TB_DIR/capture3.out" "$TB_DIR/capture3.out" capture --count 12 --host "$TB_SVC_IP6_1" --iface "$TB_IF_CLIENT" -w "$pcap3"
cap3="$TB_LAST_PID"
tb_wait_for "capture 3 armed" 10 capture_started 3 || tb_die "capture 3 was not armed"
tb_check "loadgen: $REQUESTS requests over IPv6" tb_loadgen --http "[$TB_SVC_IP6_1]:$HTTP_PORT" \
  --count "$REQUESTS" --connection new --report "$TB_DIR/load3.json"
rc=0
tb_wait_for "capture 3 to exit" 15 tb__not_alive "$cap3" || true
tb_wait_pid "$cap3" || rc=$?
tb_expect_eq "IPv6 capture exit status" 0 "$rc"
tb_expect_eq "IPv6 frames" 12 "$(frame_count "$pcap3")"
tb_check "every IPv6 frame is [$TB_CLIENT_IP6]:* <-> [$TB_SVC_IP6_1]:$HTTP_PORT" \
  only_between "$pcap3" "$TB_CLIENT_IP6" "$TB_SVC_IP6_1" "$HTTP_PORT"
tb_check "every IPv6 frame ends at its TCP header" every_frame_cut_at_l4 "$pcap3"

# ---- 4. --service: the service's address and every backend, from the applied policy ----
cat >"$TB_DIR/policy.yaml" <<YAML
schema_version: 1
name: e2e-capture
services:
  - name: fhir
    address: $TB_SVC_IP1:$HTTP_PORT
    protocol: http
    class: clinical
    backends:
      primary: [$TB_SVC_IP1:$HTTP_PORT]
      fallback: [$TB_SVC_IP2:$PORT2]
YAML
tb_check "policy with service fhir applied" tb_ctl policy apply "$TB_DIR/policy.yaml"
# Packets the kernel counted so far on flows to either fhir endpoint.
fhir_packets() {
  tb_ctl flows --top 0 -o json | jq --arg a "$TB_SVC_IP1" --arg b "$TB_SVC_IP2" \
    '[.flows[]? | select(.server.address == $a or .server.address == $b)
      | ((.packets_to_server // 0 | tonumber) + (.packets_to_client // 0 | tonumber))] | add // 0'
}
before="$(fhir_packets)"
pcap4="$TB_DIR/service.pcap"
tb_ctl_bg "$TB_DIR/capture4.out" "$TB_DIR/capture4.out" capture --count 1000 --service fhir -w "$pcap4"
cap4="$TB_LAST_PID"
tb_wait_for "capture 4 armed" 10 capture_started 4 || tb_die "capture 4 was not armed"
tb_loadgen --http "$TB_SVC_IP1:$HTTP_PORT" --count 2 --connection new --report "$TB_DIR/load4a.json" >/dev/null
tb_loadgen --http "$TB_SVC_IP2:$PORT2" --count 2 --connection new --report "$TB_DIR/load4b.json" >/dev/null
tb_loadgen --http "[$TB_SVC_IP6_1]:$HTTP_PORT" --count 2 --connection new --report "$TB_DIR/load4c.json" >/dev/null
service_caught_up() { [[ "$(frame_count "$pcap4")" == "$(($(fhir_packets) - before))" ]]; }
tb_wait_for "the pcap to hold every fhir packet" 10 service_caught_up || true
kill -INT "$cap4"
tb_wait_for "capture 4 to exit" 10 tb__not_alive "$cap4" || true
tb_wait_pid "$cap4" || true
tb_expect_eq "frames of --service fhir = packets to its address and backends" "$(($(fhir_packets) - before))" \
  "$(frame_count "$pcap4")"
tb_expect_eq "SYNs: two connections to each fhir endpoint, none to others" 4 "$(flag_count "$pcap4" 0x0002)"
only_fhir() {
  tshark_fields "$pcap4" -e ip.src -e ip.dst -e ipv6.src |
    awk -v a="$TB_SVC_IP1" -v b="$TB_SVC_IP2" '$1 != a && $1 != b && $2 != a && $2 != b { bad = 1 } END { exit bad || NR == 0 }'
}
tb_check "every frame is to or from a fhir endpoint (no IPv6 traffic of another service)" only_fhir

# ---- 5. bad filters: usage, exit 2, nothing armed ----
bad_args=(
  "--count 5 --host not-an-address -w $TB_DIR/bad.pcap"
  "--count 5 --port 70000 -w $TB_DIR/bad.pcap"
  "--count 5 --host $TB_SVC_IP1 --port 80 -w $TB_DIR/bad.pcap"
  "--count 0 -w $TB_DIR/bad.pcap"
  "--port 80 -w $TB_DIR/bad.pcap"
)
for args in "${bad_args[@]}"; do
  read -r -a argv <<<"$args"
  rc=0
  tb_ctl capture "${argv[@]}" >"$TB_DIR/bad.out" 2>&1 || rc=$?
  shows_usage() { grep -qi 'usage' "$TB_DIR/bad.out"; }
  tb_expect_eq "capture ${args/$TB_DIR\//}: exit status" 2 "$rc"
  tb_check "capture ${args/$TB_DIR\//}: prints the usage" shows_usage
done
rc=0
tb_ctl capture --count 5 --service no-such-service -w "$TB_DIR/bad.pcap" >"$TB_DIR/bad.out" 2>&1 || rc=$?
tb_expect_eq "capture --service unknown: exit status" 2 "$rc"
names_service() { grep -q "no-such-service" "$TB_DIR/bad.out"; }
tb_check "the error names the service: $(head -n1 "$TB_DIR/bad.out")" names_service

tb_finish
