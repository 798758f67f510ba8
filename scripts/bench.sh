#!/usr/bin/env bash
# scripts/bench.sh - per-packet cost of shhim's XDP ingress and TC egress
# programs on an established-flow TCP packet, measured with BPF_PROG_TEST_RUN
# (repeat >= 1,000,000) side by side with an empty XDP program, with ratios.
# The bar: XDP ingress <= 4x the empty program.
# Needs root (BPF). Extra arguments go to shhim-bench-bpf.
#   SHHIM_SKIP_BUILD=1  use build/ as is
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo_root/build/tests/bpf/shhim-bench-bpf"

if [[ -z "${SHHIM_SKIP_BUILD:-}" ]]; then
  bash "$repo_root/scripts/setup-deps.sh" </dev/null
  bash "$repo_root/scripts/build.sh" --target shhim-bench-bpf </dev/null
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
exit "$bench_rc"
