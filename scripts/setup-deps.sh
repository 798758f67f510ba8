#!/usr/bin/env bash
# Installs the Debian 12 packages shhim needs to build, test and run, and
# mounts bpffs. Idempotent: it only runs apt-get when a package is missing,
# and only mounts what is not mounted. Needs no standard input.
set -euo pipefail

# The exact package list (Debian 12 "bookworm" names).
readonly PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang llvm
  # BPF: libbpf, bpftool (skeletons, vmlinux.h), libxdp and xdp-tools
  libbpf-dev bpftool libxdp-dev xdp-tools libelf-dev zlib1g-dev
  # API: protobuf + gRPC
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  # C++ libraries
  libeigen3-dev libcli11-dev doctest-dev libyaml-cpp-dev libspdlog-dev
  libcpp-httplib-dev libssl-dev
  # test bed and scripts: ip/netns, jq, nsenter (util-linux), curl, timeout (coreutils)
  iproute2 jq util-linux curl coreutils procps
  # observability tests: Prometheus + promtool, headless Chromium (+ Node.js for playwright-core)
  prometheus chromium nodejs
  # kernel matrix (vm-tests/kernels.sh): Debian LTS kernels booted under qemu
  qemu-system-x86 busybox-static xz-utils zstd bc binutils
  # packet capture test (vm-tests/e2e_capture.sh) reads pcaps back with tshark
  tshark
)

log() { printf 'setup-deps: %s\n' "$*" >&2; }

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages present"
else
  if ((EUID != 0)); then
    log "missing packages: ${missing[*]}; run as root to install them"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture: no (shhim's
  # tests only read pcap files, as root).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  # Packages like prometheus start a daemon on install; the tests start their own
  # on loopback, so forbid service starts while installing (policy-rc.d exit 101).
  guard=/usr/sbin/policy-rc.d
  if [[ ! -e "$guard" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get update -q </dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# npm for the browser test's playwright-core: Debian's npm package, unless an
# npm already came with the machine's Node.js.
if ! command -v npm >/dev/null 2>&1; then
  log "installing npm"
  apt-get update -q </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm </dev/null
fi

# bpffs: the agent pins its maps, programs and links here.
if ! mountpoint -q /sys/fs/bpf; then
  if ((EUID != 0)); then
    log "/sys/fs/bpf is not mounted; run as root to mount bpffs"
    exit 1
  fi
  log "mounting bpffs at /sys/fs/bpf"
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf
fi
