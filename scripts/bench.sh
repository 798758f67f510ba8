#!/usr/bin/env bash
# scripts/bench.sh - per-packet cost of shhim's XDP ingress and TC egress
# programs on an established-flow TCP packet, measured with BPF_PROG_TEST_RUN
# (repeat >= 1,000,000) side by side with an empty XDP program, with ratios.
# The bar: XDP ingress <= 4x the empty program.
# Then the congestion table (issue 3): vm-tests/e2e_congestion.sh runs once
# and its critical classes' success and p99 with shhim (stress on) and
# without (a FIFO shaper at the same capacity) are printed side by side.
# Needs root (BPF, network namespaces). Extra arguments go to shhim-bench-bpf.
#   SHHIM_SKIP_BUILD=1            use build/ as is
#   SHHIM_CONGESTION_SECONDS=N    the congested run's length (default 22, at least 20)
#   SHHIM_BENCH_NO_CONGESTION=1   skip the congestion table
#   SHHIM_BENCH_NO_REROUTE=1      skip the reroute timings (vm-tests/bench_reroute.sh)
#   SHHIM_BENCH_NO_AGENT_CPU=1    skip shhimd's CPU at 10,000 flows/s (vm-tests/bench_agent_cpu.sh,
#                                 which reads SHHIM_CPU_* settings of its own)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo_root/build/tests/bpf/shhim-bench-bpf"

if [[ -z "${SHHIM_SKIP_BUILD:-}" ]]; then
  bash "$repo_root/scripts/setup-deps.sh" </dev/null
  bash "$repo_root/scripts/build.sh" --target shhim-bench-bpf shhimd shhimctl shhim-testsvc shhim-loadgen </dev/null
fi
[[ -x "$bench" ]] || { echo "bench.sh: $bench was not built" >&2; exit 1; }
((EUID == 0)) || { echo "bench.sh: run as root (BPF_PROG_TEST_RUN needs CAP_BPF)" >&2; exit 1; }

echo "shhim BPF benchmark on $(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ)"
bench_rc=0
"$bench" "$@" || bench_rc=$?
# Verifier complexity per program and kernel, so growth shows from one change to the next.
echo
echo "verified instructions per program and kernel (vm-tests/kernels.sh --insns):"
bash "$repo_root/vm-tests/kernels.sh" --insns || echo "bench.sh: kernel matrix did not complete" >&2

if [[ -z "${SHHIM_BENCH_NO_CONGESTION:-}" ]]; then
  echo
  echo "critical classes under congestion (link at 40% of the offered load, vm-tests/e2e_congestion.sh):"
  results="$(mktemp /tmp/shhim-bench-congestion-XXXXXX.tsv)"
  trap 'rm -f "$results"' EXIT
  congestion_rc=0
  SHHIM_CONGESTION_RESULTS="$results" bash "$repo_root/vm-tests/e2e_congestion.sh" >"$results.log" 2>&1 ||
    congestion_rc=$?
  if [[ -s "$results" ]]; then
    # class, unloaded p99, then with shhim and without: answered (percent), p99 (ms and x unloaded).
    awk -F '\t' 'NR == 1 {
        printf "%-14s %12s | %-30s | %-30s\n", "class", "unloaded p99", "with shhim (stress on)", "without shhim (FIFO shaper)"
        next }
      { printf "%-14s %9.2f ms | %6.1f%% ok, p99 %8.2f ms %5sx | %6.1f%% ok, p99 %8.2f ms %5sx\n",
               $1, $2 / 1000, $3 / 10, $4 / 1000, $5, $6 / 10, $7 / 1000, $8 }' "$results"
  else
    echo "bench.sh: e2e_congestion.sh wrote no results (exit $congestion_rc); its output:" >&2
    tail -n 30 "$results.log" >&2
  fi
  tail -n 1 "$results.log"
  rm -f "$results.log"
  ((congestion_rc == 0)) || bench_rc=$congestion_rc
fi

if [[ -z "${SHHIM_BENCH_NO_REROUTE:-}" ]]; then
  # Issue 4: evidence-to-table time for the kernel breaker and the userspace
  # path, and the crash scenario's failed requests with each (bar: userspace p99 <= 1 ms).
  echo
  reroute_rc=0
  bash "$repo_root/vm-tests/bench_reroute.sh" 2>&1 | grep -v '^\[bench_reroute\]' || reroute_rc=$?
  ((reroute_rc == 0)) || bench_rc=$reroute_rc
fi

if [[ -z "${SHHIM_BENCH_NO_AGENT_CPU:-}" ]]; then
  # Issue 5: shhimd's CPU while the kernel follows ~10,000 new TCP connections
  # per second, beside the same agent idle, with and without --flow-log
  # (bar: <= 2% of one core).
  echo
  agent_cpu_rc=0
  bash "$repo_root/vm-tests/bench_agent_cpu.sh" 2>&1 | grep -v '^\[bench_agent_cpu\]' || agent_cpu_rc=$?
  ((agent_cpu_rc == 0)) || bench_rc=$agent_cpu_rc
fi

# Anomaly scoring throughput (issue 5): pure userspace, one core.
# Bar: Mahalanobis with its probability >= 1,000,000 vectors/s. The forest
# is the shipped default model's.
echo
[[ -n "${SHHIM_SKIP_BUILD:-}" ]] || bash "$repo_root/scripts/build.sh" --target shhim-bench-anomaly </dev/null >/dev/null
"$repo_root/build/tests/bench/shhim-bench-anomaly" --model "$repo_root/models/default.model" || bench_rc=1
exit "$bench_rc"
