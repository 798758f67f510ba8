#!/usr/bin/env bash
# e2e_flowlog: shhimd --flow-log FILE --flow-log-max-size 0.01 --flow-log-keep 3
#   1. 60 HTTP requests, one connection each: their end records fill and
#      rotate the log; afterwards there are FILE, FILE.1, FILE.2, FILE.3 and
#      no FILE.4, each at most 10,000 bytes and ending in a newline, and every
#      line parses as a shhim.v1.Flow (`shhimctl flowlog check`, which uses
#      JsonStringToMessage with unknown fields refused).
#   2. A kept-alive connection open ~6 s with --flow-log-interval 1: at least
#      three periodic records of it while it runs, then its end record.
#   3. The newest records of step 1 name the service as server, the client
#      as client, with the request counted.
set -euo pipefail
# shellcheck source=vm-tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"

readonly HTTP_PORT=8080 CONNECTIONS=60 MAX_BYTES=10000 KEEP=3

tb_init e2e_flowlog
tb_require_binaries "$TB_SHHIMD" "$TB_SHHIMCTL" "$TB_TESTSVC" "$TB_LOADGEN"
tb_create_netns
tb_create_cgroup
tb_start_testsvc http --http "$TB_SVC_IP1:$HTTP_PORT"
log="$TB_DIR/flows.jsonl"
tb_start_shhimd --flow-log "$log" --flow-log-max-size 0.01 --flow-log-keep "$KEEP" --flow-log-interval 1

# Every record of every log file, oldest file first.
all_records() {
  local n
  for ((n = KEEP; n >= 1; n--)); do [[ -f "$log.$n" ]] && cat "$log.$n"; done
  [[ -f "$log" ]] && cat "$log"
  return 0
}
record_count() { all_records | grep -c '' || true; }

# ---- 1. rotation ----
tb_check "loadgen: $CONNECTIONS requests, one connection each" tb_loadgen --http "$TB_SVC_IP1:$HTTP_PORT" \
  --count "$CONNECTIONS" --connection new --report "$TB_DIR/load1.json"
rotated_fully() { [[ -f "$log.$KEEP" ]] && (($(record_count) >= 3 * 10)); }
tb_wait_for "the log to rotate $KEEP times" 20 rotated_fully || true
files=("$log"*)
tb_expect_eq "log files (FILE and FILE.1..FILE.$KEEP)" "$((KEEP + 1))" "${#files[@]}"
no_extra() { [[ ! -e "$log.$((KEEP + 1))" ]]; }
tb_check "no FILE.$((KEEP + 1)): older files were removed" no_extra
within_size() {
  local f size rc=0
  for f in "$log"*; do
    size="$(stat -c %s "$f")"
    if ((size > MAX_BYTES)); then
      echo "$f: $size bytes > $MAX_BYTES" >&2
      rc=1
    fi
  done
  return "$rc"
}
tb_check "every file is at most $MAX_BYTES bytes" within_size
full_lines() {
  local f
  for f in "$log"*; do [[ ! -s "$f" || "$(tail -c1 "$f" | od -An -c | tr -d ' ')" == '\n' ]] || return 1; done
}
tb_check "every file ends with a whole line" full_lines
tb_check "every line parses as shhim.v1.Flow (shhimctl flowlog check)" \
  "$TB_SHHIMCTL" flowlog check "$log"*
names_exchange() {
  all_records | jq -se --arg c "$TB_CLIENT_IP" --arg s "$TB_SVC_IP1" --argjson p "$HTTP_PORT" \
    '[.[] | select(.client.address == $c and .server.address == $s and .server.port == $p
                   and .requests == 1 and .protocol == "tcp")] | length >= 10' >/dev/null
}
tb_check "records name client, service and one request per connection" names_exchange
ended_state() { all_records | jq -se '[.[] | select(.tcp_state == "closing" or .tcp_state == "closed")] | length >= 10' >/dev/null; }
tb_check "end records carry the closing state" ended_state

# ---- 2. periodic records of a long flow ----
tb_loadgen_bg long --http "$TB_SVC_IP1:$HTTP_PORT" --rate 4 --duration 6 --connection keepalive \
  --report "$TB_DIR/long.json"
long_pid="$TB_LAST_PID"
# The long flow: the client port with the most records; running ones are "established".
periodic_records() {
  all_records | jq -s '[.[] | select(.tcp_state == "established" and .requests > 0)] | group_by(.client.port)
                       | map(length) | max // 0'
}
three_periodic() { (($(periodic_records) >= 3)); }
tb_wait_for "three periodic records of the long flow" 20 three_periodic || true
tb_expect_ge "periodic records of one long flow (interval 1 s, ~6 s flow)" 3 "$(periodic_records)"
rc=0
tb_wait_pid "$long_pid" || rc=$?
tb_expect_eq "long loadgen exit status" 0 "$rc"
tb_check "still every line a shhim.v1.Flow" "$TB_SHHIMCTL" flowlog check "$log"*
tb_check "still every file at most $MAX_BYTES bytes" within_size

# ---- bad flags ----
rc=0
"$TB_SHHIMD" --flow-log-max-size 5 >"$TB_DIR/bad.out" 2>&1 || rc=$?
tb_expect_eq "shhimd --flow-log-max-size without --flow-log: exit status" 2 "$rc"
rc=0
"$TB_SHHIMD" --flow-log "$TB_DIR/x" --flow-log-max-size 0 >"$TB_DIR/bad.out" 2>&1 || rc=$?
tb_expect_eq "shhimd --flow-log-max-size 0: exit status" 2 "$rc"

tb_finish
