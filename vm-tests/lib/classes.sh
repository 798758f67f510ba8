# shellcheck shell=bash
# vm-tests/lib/classes.sh - helpers for the priority-class end-to-end tests
# (e2e_congestion.sh, e2e_policy_reload.sh, e2e_stress_auto.sh). Source
# after testbed.sh and tb_init.
#
# The tests drive the product as an operator does: a policy YAML file given
# to `shhimd --policy`, `shhimctl policy apply`, SIGHUP, `shhimctl stress`;
# what the kernel did is read back with `shhimctl classes -o json`.

# cl_quiet COMMAND...: runs it with its output in $TB_DIR/quiet.log.
cl_quiet() { "$@" >>"$TB_DIR/quiet.log" 2>&1; }

# cl_service_yaml NAME ADDR:PORT CLASS: one HTTP service (its only backend
# is its own address) as an item of a policy's `services:` list.
cl_service_yaml() {
  printf '  - name: %s\n    address: %s\n    protocol: http\n    class: %s\n' "$1" "$2" "$3"
  printf '    backends:\n      primary:\n        - %s\n' "$2"
}

# cl_policy_version_of FILE: the short version (12 hex digits) `shhimctl
# policy check` gives the file; empty when it is invalid.
cl_policy_version_of() {
  "$TB_SHHIMCTL" policy check "$1" 2>/dev/null | sed -n 's/.*(version \([0-9a-f]*\))$/\1/p'
}

# cl_policy_version: the full version of the policy shhimd runs ("" for none).
cl_policy_version() { tb_ctl policy show -o json | jq -r 'if .applied then .version else "" end'; }

# cl_policy_is SHORT_VERSION: shhimd runs that policy.
cl_policy_is() {
  local v
  v="$(cl_policy_version)"
  [[ -n "$1" && "$v" == "$1"* ]]
}

# cl_generation: the kernel's policy generation.
cl_generation() { tb_ctl classes -o json | jq -r .policy_generation; }

# cl_stress_active true|false: the kernel sheds (or not) right now.
cl_stress_active() { [[ "$(tb_ctl classes -o json | jq -r .stress.active)" == "$1" ]]; }

# cl_feed_count TYPE [JQ_FILTER]: kept event-feed entries of a type (and a filter).
cl_feed_count() {
  tb_ctl observe --type "$1" -o json | jq -s "[.[] | select(${2:-true})] | length"
}

# cl_permille NUM DEN: NUM/DEN in permille (0 when DEN is 0).
cl_permille() { if (($2 > 0)); then echo $(($1 * 1000 / $2)); else echo 0; fi; }
# cl_ratio NUM DEN: NUM/DEN with two decimals.
cl_ratio() { if (($2 > 0)); then awk -v n="$1" -v d="$2" 'BEGIN { printf "%.2f", n / d }'; else echo "-"; fi; }

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
