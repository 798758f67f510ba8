#!/bin/bash
# vm-tests/kernels.sh - the kernel matrix: does every shhim BPF program load,
# attach and count on the LTS kernels hospitals run?
#
# Usage: vm-tests/kernels.sh [options] [KERNEL_PACKAGE... | host]
#   KERNEL_PACKAGE  a Debian kernel image package, e.g. linux-image-6.1.0-56-cloud-amd64
#                   or linux-image-6.12.117+deb12-cloud-amd64; `host` = the running kernel.
#                   Default: Debian's current 6.1 and 6.12 cloud kernels (resolved from the
#                   package index now, so the list never goes stale) and the host kernel.
#   --unsafe          build the BPF objects a second time with -DSHHIM_TEST_UNSAFE_BOUNDS (a
#                     bounds check removed) and run those instead: the verifier must refuse them.
#   --expect-refused  with --unsafe: succeed only if, on every kernel, at least one program is
#                     refused and the verifier's last lines say why (an out-of-bounds packet
#                     access): the harness self-test.
#   --insns           print only the table of verified instruction counts per program and
#                     kernel (for scripts/bench.sh); runs and exits exactly as without it.
#   --list            print the kernels that would be tested and exit.
# Environment:
#   SHHIM_BUILD_DIR     CMake build tree (default <repo>/build; configured if missing)
#   SHHIM_KERNEL_CACHE  downloaded and extracted kernels (default /var/cache/shhim-kernels)
#   SHHIM_VM_TIMEOUT    seconds one guest may take, boot to power-off (default 60)
#   SHHIM_VM_ACCEL      kvm|tcg|auto (default auto: kvm only with kvm_intel/kvm_amd loaded;
#                       this machine's /dev/kvm is paravirtual and cannot boot stock kernels)
#   SHHIM_VM_LOCKDOWN   guest lockdown mode, integrity (default, as on Secure Boot servers) or none
#   SHHIM_KTEST_VERBOSE=1  copy libbpf's and the datapath's log into the console log
#
# Per kernel it boots the kernel under qemu (no NIC, nothing leaves the guest) with an
# initramfs holding busybox, iproute2's ip, the veth/sch_ingress/cls_bpf modules and
# shhim-ktest: a static binary linked against shhim_datapath (the loader shhimd uses), which
# loads every program, attaches it on a veth pair and a child cgroup, drives traffic and
# checks the counters. The host kernel gets the same binary, run inside a fresh network
# namespace, a child cgroup and a private pin root. One line per kernel and program:
#   kernel  program  loaded|refused  verified-insns  pass|fail  time  detail
# Exit status: 0 when every program on every kernel loaded and passed its smoke test.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SHHIM_BUILD_DIR:-$REPO/build}
CACHE=${SHHIM_KERNEL_CACHE:-/var/cache/shhim-kernels}
VM_TIMEOUT=${SHHIM_VM_TIMEOUT:-60}
ACCEL=${SHHIM_VM_ACCEL:-auto}
LOCKDOWN=${SHHIM_VM_LOCKDOWN:-integrity}
VERBOSE=${SHHIM_KTEST_VERBOSE:-0}

UNSAFE=0
EXPECT_REFUSED=0
LIST_ONLY=0
INSNS_ONLY=0
KERNELS=()
while [ $# -gt 0 ]; do
	case $1 in
	--unsafe) UNSAFE=1 ;;
	--expect-refused) EXPECT_REFUSED=1 ;;
	--list) LIST_ONLY=1 ;;
	--insns) INSNS_ONLY=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "kernels.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) KERNELS+=("$1") ;;
	esac
	shift
done
if [ "$EXPECT_REFUSED" = 1 ] && [ "$UNSAFE" = 0 ]; then
	echo "kernels.sh: --expect-refused only makes sense with --unsafe" >&2
	exit 2
fi

T0=$(date +%s.%N)
log() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
secs_since() { printf '%.1f' "$(echo "$(date +%s.%N) - $1" | bc)"; }

# --- host packages (idempotent; scripts/setup-deps.sh installs the same list) -----------
HOST_PACKAGES="qemu-system-x86 busybox-static iproute2 util-linux coreutils bc binutils xz-utils
	zstd cmake g++ clang bpftool libbpf-dev libelf-dev zlib1g-dev"
ensure_packages() {
	local missing=() p
	for p in $HOST_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
		apt-get -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1
		apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null
	}
}

# --- which kernels -------------------------------------------------------------------------
# Debian's meta-packages say which ABI is current: linux-image-cloud-amd64 (bookworm: 6.1)
# and linux-image-6.12-cloud-amd64 (6.12 LTS in bookworm). If a meta-package is missing we
# take the highest version the index lists for that series.
resolve_series() { # $1 meta-package, $2 extended regex of the image package names
	local meta=$1 re=$2 pkg
	pkg=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: //p' | grep -E "^$re\$" | head -1 || true)
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache search --names-only "^$re\$" 2>/dev/null | cut -d' ' -f1 | sort -V | tail -1 || true)
	fi
	echo "$pkg"
}
default_kernels() {
	local k61 k612
	k61=$(resolve_series linux-image-cloud-amd64 'linux-image-6\.1\.0-[0-9]+-cloud-amd64')
	k612=$(resolve_series linux-image-6.12-cloud-amd64 'linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64')
	if [ -z "$k61" ] || [ -z "$k612" ]; then # an empty index: update once and retry
		apt-get -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1 || true
		k61=$(resolve_series linux-image-cloud-amd64 'linux-image-6\.1\.0-[0-9]+-cloud-amd64')
		k612=$(resolve_series linux-image-6.12-cloud-amd64 'linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64')
	fi
	[ -n "$k61" ] || die "no linux-image-6.1.0-*-cloud-amd64 in the package index"
	[ -n "$k612" ] || die "no linux-image-6.12.*+deb12-cloud-amd64 in the package index"
	echo "$k61 $k612 host"
}

if [ ${#KERNELS[@]} -eq 0 ]; then
	read -r -a KERNELS <<<"$(default_kernels)"
fi
if [ "$LIST_ONLY" = 1 ]; then
	printf '%s\n' "${KERNELS[@]}"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root (qemu is fine without, but the host run loads BPF)"
ensure_packages

# --- build: BPF objects, shhim_datapath, the static guest binary ---------------------------
# The unsafe variant is a second build tree of the same sources with the test-only define, so
# its skeletons (embedded in shhim_datapath) carry the unverifiable programs.
if [ "$UNSAFE" = 1 ]; then
	VARIANT=unsafe
	TREE=$BUILD_DIR/vm-tests/unsafe-build
	EXTRA_CMAKE=(-DSHHIM_BPF_EXTRA_CFLAGS=-DSHHIM_TEST_UNSAFE_BOUNDS)
else
	VARIANT=safe
	TREE=$BUILD_DIR
	EXTRA_CMAKE=()
fi
WORK=$BUILD_DIR/vm-tests/kernels/$VARIANT
mkdir -p "$WORK" "$CACHE/debs"

build_all() {
	local t
	t=$(date +%s.%N)
	if [ ! -f "$TREE/CMakeCache.txt" ]; then
		cmake -S "$REPO" -B "$TREE" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${EXTRA_CMAKE[@]}" \
			>"$WORK/cmake-configure.log" 2>&1 || { cat "$WORK/cmake-configure.log" >&2; die "cmake configure failed"; }
	fi
	cmake --build "$TREE" -j2 --target shhim_bpf_objects shhim_datapath \
		>"$WORK/cmake-build.log" 2>&1 || { tail -40 "$WORK/cmake-build.log" >&2; die "building BPF objects / shhim_datapath failed"; }
	local lib
	lib=$(find "$TREE/userspace/datapath" -maxdepth 2 -name 'libshhim_datapath.a' | head -1)
	[ -n "$lib" ] || die "libshhim_datapath.a not found under $TREE/userspace/datapath"
	# Relinked only when a source, header, skeleton or the library is newer than it.
	if [ -x "$WORK/shhim-ktest" ] && [ -z "$(find "$REPO/vm-tests/kernels" "$REPO/userspace/datapath" \
		"$REPO/bpf" "$TREE/bpf" "$lib" -newer "$WORK/shhim-ktest" \( -name '*.cpp' -o -name '*.h' -o -name '*.a' \) \
		-print -quit)" ]; then
		log "BPF objects and shhim_datapath up to date, shhim-ktest too ($(secs_since "$t")s)"
		return 0
	fi
	# Static: the guest has no libc, and the host run must use the very same binary.
	# libbpf.a needs libelf.a and libz.a (Debian's libelf 0.188 is built without zstd).
	g++ -std=c++20 -O2 -g -Wall -Wextra -static -pthread \
		-I"$REPO/vm-tests/kernels" -I"$REPO/userspace/datapath" -I"$REPO/userspace" \
		-I"$REPO/bpf" -I"$TREE/bpf" \
		-o "$WORK/shhim-ktest" "$REPO"/vm-tests/kernels/*.cpp "$lib" \
		-lbpf -lelf -lz >"$WORK/gxx.log" 2>&1 ||
		{ grep -v 'statically linked applications' "$WORK/gxx.log" >&2; die "linking shhim-ktest failed"; }
	log "built $VARIANT BPF objects, shhim_datapath and static shhim-ktest in $(secs_since "$t")s"
}

# Program names in the built objects: every global function in a program section. The
# guest must report each of them, so a program added to bpf/ is never silently untested.
expected_programs() {
	local obj
	for obj in "$TREE"/bpf/*.bpf.o; do
		awk 'NR == FNR { section[$1] = $2; next }
		     $4 == "FUNC" && $5 == "GLOBAL" && section[$7] != "" && section[$7] != ".text" { print $8 }' \
			<(readelf -SW "$obj" | sed -n 's/^ *\[ *\([0-9]*\)\] \([^ ]*\).*/\1 \2/p') \
			<(readelf -sW "$obj")
	done | sort -u
}

# --- kernels: download, extract what the guest needs ----------------------------------------
# Modules the guest loads (=m in Debian's cloud config): veth for the pair, sch_ingress for the
# clsact qdisc and cls_bpf for the TC program. Dependencies come from each module's modinfo.
GUEST_MODULES="veth sch_ingress cls_bpf"

fetch_kernel() { # $1 package -> sets KDIR (extracted: vmlinuz, config, release, modules/*.ko)
	local pkg=$1 deb
	KDIR=$CACHE/$pkg
	[ -s "$KDIR/vmlinuz" ] && [ -s "$KDIR/release" ] && [ -f "$KDIR/modules.list" ] && return 0
	deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		log "apt-get download $pkg"
		(cd "$CACHE/debs" && apt-get download "$pkg" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' >&2 || true)
		deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
		if [ -z "$deb" ]; then # a stale index names a file the mirror no longer has
			log "download failed: apt-get update and retry"
			apt-get -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1 || true
			(cd "$CACHE/debs" && apt-get download "$pkg" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' >&2 || true)
			deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
		fi
		[ -n "$deb" ] || die "could not download $pkg (not in the package index any more? see --list)"
	fi
	rm -rf "$KDIR.tmp"
	mkdir -p "$KDIR.tmp/modules"
	dpkg-deb -c "$deb" | awk '{print $6}' >"$KDIR.tmp/contents"
	local vmlinuz release
	vmlinuz=$(grep -m1 '^\./boot/vmlinuz-' "$KDIR.tmp/contents") || die "$pkg has no /boot/vmlinuz"
	release=${vmlinuz#./boot/vmlinuz-}
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.tmp" "$vmlinuz" "./boot/config-$release"
	mv "$KDIR.tmp/boot/vmlinuz-$release" "$KDIR.tmp/vmlinuz"
	mv "$KDIR.tmp/boot/config-$release" "$KDIR.tmp/config"
	echo "$release" >"$KDIR.tmp/release"
	# Resolve modules and their dependencies, dependencies first (insmod order).
	local order=() todo=() seen=" " m path ko deps
	read -r -a todo <<<"$GUEST_MODULES"
	while [ ${#todo[@]} -gt 0 ]; do
		m=${todo[0]}
		todo=("${todo[@]:1}")
		case $seen in *" $m "*) continue ;; esac
		path=$(grep -E "/kernel/.*/${m//_/[-_]}\.ko(\.xz|\.zst|\.gz)?\$" "$KDIR.tmp/contents" | head -1 || true)
		if [ -z "$path" ]; then # built in (=y) or absent: nothing to load
			seen="$seen$m "
			continue
		fi
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$KDIR.tmp" "$path"
		ko=$KDIR.tmp/modules/$m.ko
		case $path in
		*.xz) xz -dc "$KDIR.tmp/$path" >"$ko" ;; # busybox insmod wants the raw ELF; the
		*.zst) zstd -dqc "$KDIR.tmp/$path" >"$ko" ;; # signature is inside, so it stays valid
		*.gz) gzip -dc "$KDIR.tmp/$path" >"$ko" ;;
		*) cp "$KDIR.tmp/$path" "$ko" ;;
		esac
		deps=$(tr '\0' '\n' <"$ko" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
		local d unmet=()
		for d in $deps; do case $seen in *" $d "*) ;; *) unmet+=("$d") ;; esac done
		if [ ${#unmet[@]} -gt 0 ]; then # load the dependencies first, then come back
			todo=("${unmet[@]}" "$m" "${todo[@]}")
			continue
		fi
		seen="$seen$m "
		order+=("$m")
	done
	printf '%s\n' "${order[@]}" >"$KDIR.tmp/modules.list"
	rm -rf "$KDIR.tmp/lib" "$KDIR.tmp/boot" "$KDIR.tmp/contents"
	rm -rf "$KDIR"
	mv "$KDIR.tmp" "$KDIR"
	log "extracted $pkg: kernel $release, modules: $(tr '\n' ' ' <"$KDIR/modules.list")"
}

# --- initramfs ---------------------------------------------------------------------------------
# The shared part (busybox, ip with its libraries, shhim-ktest) is built once per run; each
# kernel adds its modules and /init.
build_base_rootfs() {
	BASE=$WORK/rootfs-base
	rm -rf "$BASE"
	mkdir -p "$BASE"/{bin,dev,proc,sys,run,tmp,ktest,lib/modules,usr/sbin}
	cp /bin/busybox "$BASE/bin/busybox"
	cp "$WORK/shhim-ktest" "$BASE/ktest/shhim-ktest"
	local ipbin lib
	ipbin=$(command -v ip)
	cp "$ipbin" "$BASE/usr/sbin/ip" # busybox ip cannot create veth pairs
	for lib in $(ldd "$ipbin" | grep -o '/[^ ]*'); do
		mkdir -p "$BASE$(dirname "$lib")"
		cp -L "$lib" "$BASE$lib"
	done
}

write_init() { # $1 rootfs, $2 space-separated module list
	local extra=""
	[ "$VERBOSE" = 1 ] && extra="--verbose"
	cat >"$1/init" <<EOF
#!/bin/busybox sh
# PID 1 of the test guest: the initramfs is the whole root filesystem.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
export PATH=/usr/sbin:/bin
echo "@kinfo|userspace-up|\$(cut -d' ' -f1 /proc/uptime)"
for m in $2; do insmod /lib/modules/\$m.ko || echo "@kinfo|insmod-failed|\$m"; done
ip link set lo up
mkdir -p /sys/fs/cgroup/shhim-ktest
/ktest/shhim-ktest --cgroup /sys/fs/cgroup/shhim-ktest --pin-root /sys/fs/bpf/shhim $extra
echo "@exit|\$?|\$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
EOF
	chmod +x "$1/init"
}

build_initramfs() { # $1 kernel dir -> sets INITRD
	local kdir=$1 root=$WORK/rootfs mods
	rm -rf "$root"
	cp -a "$BASE" "$root"
	mods=$(tr '\n' ' ' <"$kdir/modules.list")
	local m
	for m in $mods; do cp "$kdir/modules/$m.ko" "$root/lib/modules/"; done
	write_init "$root" "$mods"
	INITRD=$WORK/initramfs.cpio.gz
	(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$INITRD"
}

# --- runners -------------------------------------------------------------------------------------
pick_accel() {
	if [ "$ACCEL" = auto ]; then
		if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
			ACCEL=kvm
		else
			ACCEL=tcg
		fi
	fi
	case $ACCEL in
	kvm) QACCEL=(-accel kvm -cpu host) ;;
	tcg) QACCEL=(-accel 'tcg,thread=multi' -cpu max) ;;
	*) die "SHHIM_VM_ACCEL must be kvm, tcg or auto" ;;
	esac
}

run_guest() { # $1 kernel dir, $2 console log
	local kdir=$1 out=$2 append
	append="console=ttyS0 panic=-1 rdinit=/init quiet loglevel=4"
	[ "$LOCKDOWN" = none ] || append="$append lockdown=$LOCKDOWN"
	# -nodefaults/-nic none: no devices but the serial console; the guest has no network.
	# -no-reboot with panic=-1: a panic ends qemu at once instead of waiting for the timeout.
	set +e
	timeout --kill-after=5 "$VM_TIMEOUT" nice -n 10 qemu-system-x86_64 "${QACCEL[@]}" \
		-m 512 -smp 2 -nodefaults -no-user-config -nic none -display none \
		-serial "file:$out.raw" -monitor none -no-reboot \
		-kernel "$kdir/vmlinuz" -initrd "$INITRD" -append "$append" </dev/null >"$out.qemu" 2>&1
	local rc=$?
	set -e
	tr -d '\r' <"$out.raw" >"$out"
	rm -f "$out.raw"
	return $rc
}

# The host kernel: the same static binary, inside a network namespace of its own (the veth
# pair and the server's namespace are created in there), a child cgroup and a private pin root.
run_host() { # $1 console log
	local out=$1 cg pins rc extra=""
	local cg2
	cg2=$(findmnt -n -t cgroup2 -o TARGET | head -1 || true) # /sys/fs/cgroup/unified on hybrid hosts
	[ -n "$cg2" ] || die "no cgroup v2 mount on the host: sockops cannot be tested there"
	cg=$cg2/shhim-ktest-$$
	pins=/sys/fs/bpf/shhim-ktest-$$
	[ "$VERBOSE" = 1 ] && extra="--verbose"
	mkdir "$cg"
	HOST_CLEANUP="rm -rf '$pins'; rmdir '$cg' 2>/dev/null"
	set +e
	timeout --kill-after=5 "$VM_TIMEOUT" unshare --net -- \
		"$WORK/shhim-ktest" --cgroup "$cg" --pin-root "$pins" $extra >"$out" 2>&1
	rc=$?
	set -e
	echo "@exit|$rc|-" >>"$out"
	eval "$HOST_CLEANUP"
	HOST_CLEANUP=""
	return 0
}
HOST_CLEANUP=""
trap 'eval "$HOST_CLEANUP"' EXIT
trap 'exit 130' INT TERM

# --- report ----------------------------------------------------------------------------------------
FAILURES=0
KERNELS_WITHOUT_REFUSAL=()
# What the verifier says when a packet access lacks its bounds check (the unsafe variant).
BOUNDS_REFUSAL='invalid access to packet|outside of the packet'

printf_row() { [ "$INSNS_ONLY" = 1 ] || printf '%-30s %-24s %-8s %6s  %-5s %6s  %s\n' "$@"; }
say() { [ "$INSNS_ONLY" = 1 ] || [ -z "$*" ] || echo "$@"; }

report_kernel() { # $1 kernel label, $2 console log, $3 wall seconds, $4 runner rc
	local label=$1 logf=$2 secs=$3 rrc=$4 name load insns smoke detail seen_refusal=0
	local got missing
	while IFS='|' read -r _ name load insns smoke detail; do
		printf_row "$label" "$name" "$load" "$insns" "$smoke" "${secs}s" "$detail"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$name" "$load" "$insns" "$smoke" "$secs" >>"$RESULTS"
		if [ "$load" = refused ]; then
			say "$(grep -a "^@vlog|$name|" "$logf" | cut -d'|' -f3- | sed 's/^/      verifier: /')"
			grep -a "^@vlog|$name|" "$logf" | grep -Eq "$BOUNDS_REFUSAL" && seen_refusal=1
		fi
		[ "$load" = loaded ] && [ "$smoke" = pass ] || FAILURES=$((FAILURES + 1))
	done < <(grep -a '^@ktest|' "$logf" || true)
	# shhimd --preflight's view of this kernel: a required check missing is a failure.
	local pf_total pf_ok pf_missing
	pf_total=$(grep -ac '^@preflight|' "$logf" || true)
	pf_ok=$(grep -ac '^@preflight|[^|]*|ok|' "$logf" || true)
	pf_missing=$(grep -a '^@preflight|' "$logf" | awk -F'|' '$3 != "ok" { printf "%s%s (%s)", sep, $2, $4; sep = ", " }' || true)
	if [ "$pf_total" -gt 0 ]; then
		say "      preflight: $pf_ok/$pf_total checks ok${pf_missing:+; missing: $pf_missing}"
		if grep -a '^@preflight|' "$logf" | grep -q '|missing|required|'; then
			printf_row "$label" "(preflight)" "-" "-" "fail" "${secs}s" "a required preflight check is missing"
			FAILURES=$((FAILURES + 1))
		fi
	fi
	local line
	while IFS= read -r line; do
		printf_row "$label" "(harness)" "-" "-" "fail" "${secs}s" "${line#@kinfo|}"
		FAILURES=$((FAILURES + 1))
	done < <(grep -a -E '^@kinfo\|(fatal|detach-problem|detach-failed|insmod-failed)\|' "$logf" || true)
	got=$(grep -a '^@ktest|' "$logf" | cut -d'|' -f2 | sort -u || true)
	missing=$(comm -23 <(echo "$EXPECTED") <(echo "$got") | tr '\n' ' ')
	if [ -n "${missing// /}" ]; then
		printf_row "$label" "(missing)" "-" "-" "fail" "${secs}s" "no result for: $missing"
		FAILURES=$((FAILURES + 1))
	fi
	if ! grep -aq '^@exit|' "$logf"; then
		local why="guest did not finish"
		[ "$rrc" = 124 ] || [ "$rrc" = 137 ] && why="timed out after ${VM_TIMEOUT}s"
		grep -aq 'Kernel panic' "$logf" && why="kernel panic"
		printf_row "$label" "(harness)" "-" "-" "fail" "${secs}s" "$why; console: $logf"
		say "$(grep -a -E 'Kernel panic|BUG|WARNING|Call Trace' "$logf" | head -5 | sed 's/^/      console: /')"
		FAILURES=$((FAILURES + 1))
	elif [ -z "$got" ]; then
		printf_row "$label" "(harness)" "-" "-" "fail" "${secs}s" "no results; console: $logf"
		say "$(grep -a -v '^@' "$logf" | tail -8 | sed 's/^/      console: /')"
		FAILURES=$((FAILURES + 1))
	fi
	[ "$seen_refusal" = 1 ] || KERNELS_WITHOUT_REFUSAL+=("$label")
}

# --- main ------------------------------------------------------------------------------------------
build_all
EXPECTED=$(expected_programs)
[ -n "$EXPECTED" ] || die "no BPF programs found in $TREE/bpf/*.bpf.o"
log "programs in bpf/: $(echo "$EXPECTED" | tr '\n' ' ')"
build_base_rootfs
pick_accel
mkdir -p "$WORK/logs"
RESULTS=$WORK/results.tsv # kernel, program, load, verified insns, smoke, seconds (for bench.sh)
: >"$RESULTS"
printf_row kernel program load insns smoke time detail
for k in "${KERNELS[@]}"; do
	if [ "$k" = host ]; then
		label="host $(uname -r)"
		logf=$WORK/logs/host.log
		tb=$(date +%s.%N)
		run_host "$logf"
		report_kernel "$label" "$logf" "$(secs_since "$tb")" 0
		continue
	fi
	tp=$(date +%s.%N)
	fetch_kernel "$k"
	build_initramfs "$KDIR"
	release=$(cat "$KDIR/release")
	logf=$WORK/logs/$release.log
	log "$release: prepared in $(secs_since "$tp")s, booting ($ACCEL, timeout ${VM_TIMEOUT}s)"
	tb=$(date +%s.%N)
	rc=0
	run_guest "$KDIR" "$logf" || rc=$?
	report_kernel "$release" "$logf" "$(secs_since "$tb")" "$rc"
done

# Verified instruction counts side by side: one row per program, one column per kernel.
print_insns_table() {
	echo
	echo "verified instructions per program and kernel (bpf_prog_info.verified_insns; - = not loaded):"
	awk -F'\t' '
		!($1 in kseen) { kseen[$1] = 1; kernels[++nk] = $1 }
		!($2 in pseen) { pseen[$2] = 1; progs[++np] = $2 }
		{ v[$2, $1] = $4 }
		END {
			printf "%-24s", "program"; for (k = 1; k <= nk; k++) printf " %28s", kernels[k]; printf "\n"
			for (p = 1; p <= np; p++) {
				printf "%-24s", progs[p]
				for (k = 1; k <= nk; k++) printf " %28s", ((progs[p], kernels[k]) in v) ? v[progs[p], kernels[k]] : "-"
				printf "\n"
			}
		}' "$RESULTS"
}
print_insns_table

if [ "$EXPECT_REFUSED" = 1 ]; then
	if [ ${#KERNELS_WITHOUT_REFUSAL[@]} -eq 0 ]; then
		echo "unsafe variant: refused by the verifier on every kernel, as expected (harness can fail)"
		exit 0
	fi
	echo "unsafe variant: no program refused with a packet-bounds verifier message on: ${KERNELS_WITHOUT_REFUSAL[*]}"
	exit 1
fi
if [ "$FAILURES" -gt 0 ]; then
	echo "kernel matrix: $FAILURES failure(s); console logs in $WORK/logs"
	exit 1
fi
echo "kernel matrix: every program loaded and passed on ${#KERNELS[@]} kernel(s)"
