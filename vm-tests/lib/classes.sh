# shellcheck shell=bash
# vm-tests/lib/classes.sh - helpers for the priority-class end-to-end tests
# (e2e_congestion.sh, e2e_policy_reload.sh). Source after testbed.sh and
# tb_init.
#
# Class policies are applied with shhim-class-tool (tests/bpf/class_tool.cpp):
# the agent's own ClassControl, run on the pins of the shhimd this test
# started, until shhimd applies class policies from its --policy file itself.
# It runs in the client namespace (where the interface is) and, with --hold,
# ticks like the agent: stress lease renewal, auto stress, rates.

CL_TOOL="$TB_BUILD/tests/bpf/shhim-class-tool"

# cl_tool ARGS...: one run of the class tool on this test's pin root and
# client interface; prints its JSON summary line.
cl_tool() {
  tb_in_client "$CL_TOOL" --pin-root "$TB_PIN_ROOT" --iface "$TB_IF_CLIENT" "$@" 2>>"$TB_DIR/class-tool.log"
}

# cl_tool_bg NAME ARGS...: the same in the background (output in
# $TB_DIR/NAME.out); sets TB_LAST_PID.
cl_tool_bg() {
  local name="$1"
  shift
  nsenter --net="/run/netns/$TB_NS_CLIENT" -- "$CL_TOOL" --pin-root "$TB_PIN_ROOT" \
    --iface "$TB_IF_CLIENT" "$@" >"$TB_DIR/$name.out" 2>>"$TB_DIR/class-tool.log" </dev/null &
  TB_LAST_PID=$!
  tb_track_pid "$TB_LAST_PID"
}

# The seven built-in classes, highest first (their ids are the index).
# shellcheck disable=SC2034  # used by the scripts that source this
CL_CLASSES=(life-critical emergency clinical-realtime clinical imaging administrative bulk)

# cl_counter REPORT_JSON INTERFACE CLASS FIELD: a class counter of an
# interface from a ClassReport JSON (proto field names, zeros included).
cl_counter() {
  jq -r --arg i "$2" --arg c "$3" \
    "[.interfaces[] | select(.interface == \$i) | .classes[] | select(.priority_class == \$c) | .$4][0] // 0 | tonumber" \
    "$1"
}

# cl_iface_field REPORT_JSON INTERFACE FIELD
cl_iface_field() {
  jq -r --arg i "$2" "[.interfaces[] | select(.interface == \$i) | .$3][0] // empty" "$1"
}

# ---- loadgen reports ----

# cl_ok REPORT: requests answered 200.
cl_ok() { jq -r '(.outcomes.http_status["200"] // 0)' "$1"; }
# cl_planned REPORT
cl_planned() { jq -r '.planned' "$1"; }
# cl_p99_us REPORT: p99 latency in whole microseconds (0 when no samples).
cl_p99_us() { jq -r '((.latency.p99_seconds // 0) * 1000000 | floor)' "$1"; }
cl_p50_us() { jq -r '((.latency.p50_seconds // 0) * 1000000 | floor)' "$1"; }

# cl_expect_ratio_ge DESCRIPTION NUM DEN MIN_PERMILLE: NUM/DEN >= MIN/1000.
cl_expect_ratio_ge() {
  TB_CHECKS=$((TB_CHECKS + 1))
  if (($3 > 0 && $2 * 1000 >= $3 * $4)); then
    printf 'ok    %s = %s/%s (>= %s permille)\n' "$1" "$2" "$3" "$4"
  else
    printf 'FAIL  %s = %s/%s, expected >= %s permille\n' "$1" "$2" "$3" "$4"
    TB_FAILURES=$((TB_FAILURES + 1))
  fi
}

# cl_expect_le DESCRIPTION MAXIMUM ACTUAL (integers)
cl_expect_le() {
  TB_CHECKS=$((TB_CHECKS + 1))
  if (($3 <= $2)); then
    printf 'ok    %s = %s (<= %s)\n' "$1" "$3" "$2"
  else
    printf 'FAIL  %s = %s, expected <= %s\n' "$1" "$3" "$2"
    TB_FAILURES=$((TB_FAILURES + 1))
  fi
}

# cl_tcp_retrans: the client namespace's TcpRetransSegs so far.
cl_tcp_retrans() {
  tb_in_client cat /proc/net/snmp | awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n["RetransSegs"] }'
}
