#!/usr/bin/env bash
# QEMU end-to-end tests (see tests/qemu/README.md). Every boot uses QEMU 11 from get-qemu.sh.
#
# Cases (CASES="..." runs a subset, in the order given):
#   igb-sysfs, igb-vfio  QEMU's own igb (82576) on a UDP netdev: platform-linux takes it over
#                        through sysfs and through VFIO (a device nobody here wrote).
#   linux-ixgbe          ixgbe-sim (the simulated 82599, served over vfio-user) with the guest's
#                        unmodified ixgbe.ko: link, MSI-X, ping, UDP both ways, RSS, ethtool -S,
#                        unbind/rebind, against a host peer (tests/src/bin/sim_peer.rs).
#   linux-then-ours      ixgbe.ko probes and is unbound; ixgbe-fwd takes the ports via sysfs.
#   fwd-sysfs, fwd-vfio  ixgbe-fwd between two ixgbe-sim ports, through sysfs and through VFIO.
#   fwd-irq              ixgbe-fwd --interrupts hybrid through VFIO, 4 queues on 4 MSI-X vectors
#                        per port: asleep on a low-rate stream, polling on a flood.
#   apps-sysfs           ixgbe-pktgen on port 0 (frames checked by the peer), ixgbe-pcap on port 1
#                        (the capture of frames the peer injected read back in the guest).
#   baremetal            no Linux: tests/baremetal (ixgbe-core on a bare-metal Platform) booted by
#                        QEMU itself forwards FWD_FRAMES frames port 0 -> port 1 of ixgbe-sim.
#   dpdk-testpmd         Debian trixie's dpdk-testpmd with DPDK's ixgbe PMD (get-dpdk.sh), io
#                        forwarding between the two ports through VFIO (DPDK_FRAMES, 1000).
#   echo-sysfs           ixgbe-echo (smoltcp) on port 0 through sysfs; the host's smoltcp client on
#                        the wire pings it, and gets UDP datagrams and ECHO_BYTES of TCP back exact.
#   echo-sockets         ixgbe-echo the same, and the host's own kernel TCP/IP stack talks to it:
#                        sock_peer bridges the port's wire to a TAP device in a private network
#                        namespace, where ordinary sockets ping it, get UDP datagrams and
#                        SOCKETS_BYTES (10 MB) of TCP back byte-exact.
#
# Run as root on Debian bookworm:  bash tests/qemu/run.sh
# Environment: ACCEL=tcg|kvm (default tcg), CARGO_TARGET_DIR, QEMU_CACHE (default
# <target>/qemu-cache), BOOT_TIMEOUT seconds per boot (default 240), FRAMES per direction on igb
# (64), SIM_FRAMES per direction in linux-ixgbe, SIM_FLOWS (16), SIM_WINDOW (64), PINGS (100),
# FWD_FRAMES (forwarded in the fwd cases), ECHO_BYTES (TCP bytes echoed in echo-sysfs, 1000000),
# SOCKETS_BYTES (in echo-sockets, 10000000), CASES, QEMU_E2E_NO_FWD=1 (no ixgbe-fwd at all),
# KEEP_WORK=1 (keep the temporary directory with consoles and logs).
set -euo pipefail

T_START=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CACHE=${QEMU_CACHE:-$TARGET_DIR/qemu-cache}
ACCEL=${ACCEL:-tcg}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
FRAMES=${FRAMES:-64}
SIM_FRAMES=${SIM_FRAMES:-10000}
SIM_FLOWS=${SIM_FLOWS:-16}
SIM_WINDOW=${SIM_WINDOW:-64}
PINGS=${PINGS:-100}
FWD_FRAMES=${FWD_FRAMES:-1000}
FWD_SECONDS=${FWD_SECONDS:-30}
FWD_WINDOW=${FWD_WINDOW:-32}
# fwd-irq: the low-rate stream (frames, frames/s) and the flood after it.
IRQ_RATE=${IRQ_RATE:-1000}
IRQ_FRAMES=${IRQ_FRAMES:-4000}
IRQ_FLOOD=${IRQ_FLOOD:-3000}
# ... and the CPU share (percent of wall time) the forwarder may use while the rate is low:
# 10 % with KVM; under TCG every guest wake-up and every MMIO exit to ixgbe-sim costs about
# 0.1 ms of guest time, so 1000 wake-ups/s alone use about 10 % there (measured: 17-33 %).
if [ "$ACCEL" = kvm ]; then IRQ_CPU_MAX=${IRQ_CPU_MAX:-10}; else IRQ_CPU_MAX=${IRQ_CPU_MAX:-50}; fi
ECHO_BYTES=${ECHO_BYTES:-1000000}
ECHO_SECONDS=${ECHO_SECONDS:-150}
SOCKETS_BYTES=${SOCKETS_BYTES:-10000000}
TRIPLE=x86_64-unknown-linux-gnu
GUEST_MAC=52:54:00:12:34:56
# PCI slots of the igb device under test and of the second one in boot 1 (addresses in the guest).
# Apart on purpose: QEMU reserves devfn + 0x80 + 2n (n < 8) of each igb for its SR-IOV VFs.
DEV_SLOT=0x3
DEV_ADDR=0000:00:03.0
DEV2_SLOT=0x6
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qemu-e2e.XXXXXX")
declare -a STARTED_PIDS=()
# The board ixgbe-sim simulates per case (ixgbe-sim --board; default x520-da, a direct-attach
# cable). linux-then-ours uses SR optics: Linux's ixgbe turns their laser off when it lets the
# port go, and our driver must turn it back on to get link.
declare -A CASE_BOARD=([linux-then-ours]=x520-sr)

log() { printf '[qemu-e2e] %s\n' "$*" >&2; }
die() {
    printf '[qemu-e2e] ERROR: %s\n' "$*" >&2
    exit 1
}
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; else log "work dir kept: $WORK"; fi
}
trap cleanup EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else die "need root to run: $*"; fi
}

# ---------------------------------------------------------------------------------------------
# Host tools
# ---------------------------------------------------------------------------------------------

# QEMU 11 (vfio-user-pci client; also has igb), unpacked from trixie-backports by get-qemu.sh
# into the cache: the host's apt sources and packages are not touched.
ensure_qemu() {
    local dir="$CACHE/qemu11" out
    if ! out=$(bash "$HERE/get-qemu.sh" "$dir" 2>"$WORK/get-qemu.log"); then
        cat "$WORK/get-qemu.log" >&2
        die "could not get QEMU 11 into $dir (download from the Debian mirror failed? see above)"
    fi
    QEMU=$(printf '%s\n' "$out" | tail -n1)
    [ -x "$QEMU" ] || die "get-qemu.sh printed no QEMU wrapper (got '$QEMU')"
    log "QEMU: $("$QEMU" --version | head -n1)"
}

ensure_host_tools() {
    local missing=()
    command -v cpio >/dev/null 2>&1 || missing+=(cpio)
    command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
    command -v zstd >/dev/null 2>&1 || missing+=(zstd)
    command -v gzip >/dev/null 2>&1 || missing+=(gzip)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt_lists_ready
        DEBIAN_FRONTEND=noninteractive as_root apt-get -q -y --no-install-recommends install "${missing[@]}" \
            >"$WORK/apt-tools.log" 2>&1 || { tail -n 20 "$WORK/apt-tools.log" >&2; die "apt-get install ${missing[*]} failed"; }
    fi
}

APT_UPDATED=
apt_lists_ready() {
    [ -n "$APT_UPDATED" ] && return
    if ! apt-cache show busybox-static >/dev/null 2>&1; then
        log "apt-get update (package lists missing)"
        as_root apt-get -q update >"$WORK/apt-update-sys.log" 2>&1 ||
            { tail -n 20 "$WORK/apt-update-sys.log" >&2; die "apt-get update failed"; }
    fi
    APT_UPDATED=1
}

# ---------------------------------------------------------------------------------------------
# Guest kernel, modules and busybox (Debian packages, cached)
# ---------------------------------------------------------------------------------------------

# Modules the guest loads, by mode; each list is expanded with its dependencies (in load order)
# on its own, so a mode loads exactly its list.
IGB_MODS=(igb)
VFIO_MODS=(vfio_iommu_type1 vfio_pci)
IXGBE_MODS=(ixgbe)
# Bump when the module lists change: a cached kernel tree without this stamp is re-extracted.
MODSET_STAMP=".complete-igb-vfio-ixgbe"

download_deb() { # name destdir
    local name=$1 dest=$2
    (cd "$dest" && apt-get -q download "$name" >"$WORK/download-$name.log" 2>&1) || {
        cat "$WORK/download-$name.log" >&2
        die "apt-get download $name failed (is the machine's apt configured and the mirror reachable?)"
    }
}

# Resolves `depends=` of a module from its .modinfo section (no kmod/depmod needed).
mod_depends() {
    local ko=$1
    case "$ko" in
    *.ko.xz) xz -dc "$ko" ;;
    *.ko.zst) zstd -qdc "$ko" ;;
    *.ko.gz) gzip -dc "$ko" ;;
    *) cat "$ko" ;;
    esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

declare -A MOD_PATH=()
declare -a MOD_ORDER=()
declare -A MOD_SEEN=()
resolve_module() { # name: appends deps first, then itself, to MOD_ORDER
    local name=${1//-/_}
    [ -n "${MOD_SEEN[$name]:-}" ] && return
    MOD_SEEN[$name]=1
    local ko=${MOD_PATH[$name]:-}
    if [ -z "$ko" ]; then
        # Built into the kernel: nothing to load.
        grep -q "/${name}.ko\$\|/${1}.ko\$" "$KROOT/lib/modules/$KVER/modules.builtin" 2>/dev/null ||
            die "module $name not found in $KPKG"
        return
    fi
    local dep
    for dep in $(mod_depends "$ko"); do resolve_module "$dep"; done
    MOD_ORDER+=("$name")
}

# resolve_list <out-file> <module...>: the load order of these modules and their dependencies.
resolve_list() {
    local out=$1 m
    shift
    MOD_ORDER=()
    MOD_SEEN=()
    for m in "$@"; do resolve_module "$m"; done
    printf '%s\n' "${MOD_ORDER[@]}" >"$out"
}

prepare_guest_kernel() {
    mkdir -p "$CACHE"
    apt_lists_ready
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1)
    if [ -z "$KPKG" ]; then
        # No apt metadata: fall back to what an earlier run cached.
        KPKG=$(cat "$CACHE/kernel.current" 2>/dev/null || true)
        [ -n "$KPKG" ] || die "cannot resolve the kernel package of linux-image-amd64 (run apt-get update?)"
        log "apt metadata unavailable; using cached $KPKG"
    fi
    local kdir="$CACHE/$KPKG"
    if [ ! -f "$kdir/$MODSET_STAMP" ]; then
        log "fetching $KPKG"
        rm -rf "$kdir" "$CACHE/deb-tmp"
        mkdir -p "$kdir/modules" "$CACHE/deb-tmp"
        download_deb "$KPKG" "$CACHE/deb-tmp"
        local unpack="$CACHE/deb-tmp/unpack"
        dpkg-deb -x "$CACHE"/deb-tmp/"$KPKG"_*.deb "$unpack" || die "dpkg-deb -x of $KPKG failed"
        KROOT=$unpack
        KVER=$(ls "$unpack/lib/modules" | head -n1)
        cp "$unpack/boot/vmlinuz-$KVER" "$kdir/vmlinuz"
        local ko base
        while IFS= read -r ko; do
            base=${ko##*/}
            base=${base%%.ko*}
            MOD_PATH[${base//-/_}]=$ko
        done < <(find "$unpack/lib/modules/$KVER/kernel" -name '*.ko*')
        resolve_list "$kdir/modules/load-igb" "${IGB_MODS[@]}"
        resolve_list "$kdir/modules/load-vfio" "${VFIO_MODS[@]}"
        resolve_list "$kdir/modules/load-ixgbe" "${IXGBE_MODS[@]}"
        local m
        for m in $(sort -u "$kdir"/modules/load-*); do
            ko=${MOD_PATH[$m]}
            case "$ko" in
            *.ko.xz) xz -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *.ko.zst) zstd -qdc "$ko" >"$kdir/modules/$m.ko" ;;
            *.ko.gz) gzip -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *) cp "$ko" "$kdir/modules/$m.ko" ;;
            esac
        done
        echo "$KVER" >"$kdir/kver"
        rm -rf "$CACHE/deb-tmp"
        touch "$kdir/$MODSET_STAMP"
    fi
    echo "$KPKG" >"$CACHE/kernel.current"
    KDIR=$kdir
    KVER=$(cat "$kdir/kver")
    local l
    for l in igb vfio ixgbe; do
        log "guest kernel $KVER; $l modules: $(tr '\n' ' ' <"$kdir/modules/load-$l")"
    done

    BUSYBOX="$CACHE/busybox"
    if [ ! -x "$BUSYBOX" ]; then
        log "fetching busybox-static"
        rm -rf "$CACHE/bb-tmp"
        mkdir -p "$CACHE/bb-tmp"
        download_deb busybox-static "$CACHE/bb-tmp"
        dpkg-deb -x "$CACHE"/bb-tmp/busybox-static_*.deb "$CACHE/bb-tmp/unpack" || die "dpkg-deb -x of busybox-static failed"
        cp "$CACHE/bb-tmp/unpack/bin/busybox" "$BUSYBOX"
        rm -rf "$CACHE/bb-tmp"
    fi

    # Debian's ethtool (dynamically linked): the binary, libmnl from its own package, and the
    # C library and loader of this (same-release) host; run.sh copies them into the initramfs.
    ETHTOOL_DIR="$CACHE/ethtool"
    if [ ! -f "$ETHTOOL_DIR/.complete" ]; then
        log "fetching ethtool and libmnl0"
        rm -rf "$ETHTOOL_DIR" "$CACHE/et-tmp"
        mkdir -p "$ETHTOOL_DIR" "$CACHE/et-tmp"
        download_deb ethtool "$CACHE/et-tmp"
        download_deb libmnl0 "$CACHE/et-tmp"
        local deb
        for deb in "$CACHE"/et-tmp/*.deb; do
            dpkg-deb -x "$deb" "$ETHTOOL_DIR/root" || die "dpkg-deb -x of $deb failed"
        done
        rm -rf "$CACHE/et-tmp"
        local bin
        bin=$(find "$ETHTOOL_DIR/root" -type f -name ethtool -path '*sbin*' | head -n1)
        [ -n "$bin" ] || die "no ethtool binary in the ethtool package"
        cp "$bin" "$ETHTOOL_DIR/ethtool"
        touch "$ETHTOOL_DIR/.complete"
    fi
}

# Copies a dynamically linked host binary's shared libraries (and the loader) into an initramfs
# at the paths the binary asks for. Libraries found in $ETHTOOL_DIR/root win over the host's.
copy_libs() { # binary initramfs-root
    local bin=$1 root=$2 lib dest
    local libpath
    libpath=$(find "$ETHTOOL_DIR/root" -name 'lib*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
    local lines
    lines=$(LD_LIBRARY_PATH="$libpath" ldd "$bin") || die "ldd $bin failed"
    if grep -q 'not found' <<<"$lines"; then
        die "libraries of $bin missing on this host: $(grep 'not found' <<<"$lines" | tr -s ' \t\n' ' ')"
    fi
    while read -r lib; do
        [ -n "$lib" ] || continue
        case "$lib" in
        "$ETHTOOL_DIR"/*) dest="$root/lib/x86_64-linux-gnu/${lib##*/}" ;;
        *) dest="$root$lib" ;;
        esac
        mkdir -p "$(dirname "$dest")"
        cp -L "$lib" "$dest"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$lines")
}

# ---------------------------------------------------------------------------------------------
# Test programs and initramfs
# ---------------------------------------------------------------------------------------------

# The quick release profile of every build here: the workspace's release profile uses fat LTO
# with one codegen unit, which these test programs do not need; these overrides (for these
# builds only) keep the build time down on 2 cores and the binaries small.
quick_release() {
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" \
        CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
        cargo build -q --release -j2 "$@")
}

build_programs() {
    GUEST_BIN_DIR="$TARGET_DIR/$TRIPLE/release"
    local pkgs=(-p tests --bin qemu_guest --bin qemu_refuse --bin sim_guest)
    FWD_BIN=
    if [ -n "${QEMU_E2E_NO_FWD:-}" ]; then
        log "QEMU_E2E_NO_FWD set: refusal is checked with qemu_refuse only, no ixgbe-fwd cases"
    elif [ -f "$REPO/apps/src/bin/ixgbe-fwd.rs" ] || grep -q '"ixgbe-fwd"' "$REPO/apps/Cargo.toml" 2>/dev/null; then
        pkgs+=(-p ixgbe-tools --bin ixgbe-fwd --bin ixgbe-pktgen --bin ixgbe-pcap --bin ixgbe-echo)
        FWD_BIN="$GUEST_BIN_DIR/ixgbe-fwd"
    else
        log "apps has no ixgbe-fwd yet: refusal is checked with qemu_refuse only"
    fi
    # Statically linked so they run on a bare busybox initramfs.
    log "building static guest programs (release, $TRIPLE, crt-static): ${pkgs[*]}"
    RUSTFLAGS="-C target-feature=+crt-static" quick_release --target "$TRIPLE" "${pkgs[@]}" ||
        die "building the guest programs failed"
    # The peers check a few thousand frames: a debug build is plenty (and CI has the deps built).
    log "building the host peers"
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build -q -j2 -p tests --bin qemu_peer --bin sim_peer --bin sock_peer) ||
        die "building qemu_peer/sim_peer/sock_peer failed"
    PEER_BIN="$TARGET_DIR/debug/qemu_peer"
    SIM_PEER_BIN="$TARGET_DIR/debug/sim_peer"
    SOCK_PEER_BIN="$TARGET_DIR/debug/sock_peer"
    # The vfio-user server, for the host (release: it sits on every one of the guest's MMIO
    # accesses and moves every frame).
    SIM_BIN=
    if grep -q '"ixgbe-sim"' "$REPO/platform-mock/Cargo.toml" 2>/dev/null || [ -f "$REPO/platform-mock/src/bin/ixgbe-sim.rs" ]; then
        log "building ixgbe-sim (release, host)"
        quick_release -p platform-mock --bin ixgbe-sim || die "building ixgbe-sim failed"
        SIM_BIN="$TARGET_DIR/release/ixgbe-sim"
    else
        log "platform-mock has no ixgbe-sim binary: the ixgbe-sim cases will fail"
    fi
}

build_initramfs() {
    local root="$WORK/initramfs"
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules}
    cp "$BUSYBOX" "$root/bin/busybox"
    local applet
    for applet in $("$BUSYBOX" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    cp "$ETHTOOL_DIR/ethtool" "$root/bin/ethtool"
    copy_libs "$ETHTOOL_DIR/ethtool" "$root"
    cp "$KDIR"/modules/*.ko "$KDIR"/modules/load-* "$root/modules/"
    cp "$GUEST_BIN_DIR/qemu_guest" "$GUEST_BIN_DIR/qemu_refuse" "$GUEST_BIN_DIR/sim_guest" "$root/bin/"
    if [ -n "$FWD_BIN" ]; then
        cp "$FWD_BIN" "$root/bin/ixgbe-fwd"
        cp "$GUEST_BIN_DIR/ixgbe-pktgen" "$GUEST_BIN_DIR/ixgbe-pcap" "$GUEST_BIN_DIR/ixgbe-echo" "$root/bin/"
    fi
    cp "$HERE/init.sh" "$root/init"
    chmod 755 "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc | gzip -1 >"$WORK/initramfs.gz") ||
        die "building the initramfs failed"
    INITRD="$WORK/initramfs.gz"
    log "initramfs $(du -h "$INITRD" | cut -f1)"
}

# ---------------------------------------------------------------------------------------------
# Boots
# ---------------------------------------------------------------------------------------------

declare -A RESULT=() WHY=() BOOT_SECS=() INFO=() VIOLATIONS=()
declare -a CASE_ORDER=()

# record <case> PASS|FAIL [why]: one line per case, as it ends.
record() {
    local name=$1 verdict=$2 why=${3:-}
    CASE_ORDER+=("$name")
    RESULT[$name]=$verdict
    WHY[$name]=$why
    if [ "$verdict" = PASS ]; then
        echo "PASS $name"
    else
        echo "FAIL $name: $why"
    fi
}

# guest_verdict <case> <console> <markers...>: sets VERDICT_WHY to the first problem, or "".
guest_verdict() {
    local name=$1 console=$2
    shift 2
    VERDICT_WHY=
    if grep -q 'QTEST: FAIL' "$console"; then
        log "case '$name': guest reported failures:"
        grep 'QTEST: FAIL' "$console" | tr -d '\r' >&2
        VERDICT_WHY=$(grep -m1 'QTEST: FAIL' "$console" | tr -d '\r' | sed 's/.*QTEST: FAIL //')
    fi
    local want
    for want in "$@"; do
        if ! grep -q "QTEST: PASS $want\\b" "$console"; then
            log "case '$name': missing PASS marker '$want'"
            VERDICT_WHY=${VERDICT_WHY:-"guest never passed '$want'"}
        fi
    done
    if ! grep -q 'QTEST: DONE' "$console"; then
        log "case '$name': guest never reached DONE"
        VERDICT_WHY=${VERDICT_WHY:-"guest never reached DONE"}
    fi
}

qemu_rc_why() { # rc
    case $1 in
    0) ;;
    124 | 137) echo "timeout after ${BOOT_TIMEOUT}s (guest hung)" ;;
    *) echo "qemu exited with $1" ;;
    esac
}

# run_igb_boot <case> <mode> <machine args...>: the boots against QEMU's own igb device.
run_igb_boot() {
    local name=$1 mode=$2
    shift 2
    local console="$WORK/$name.console" peerlog="$WORK/$name.peer" ports="$WORK/$name.ports"
    log "case '$name': starting peer"
    "$PEER_BIN" --ports-file "$ports" --guest-mac "$GUEST_MAC" --frames "$FRAMES" \
        --timeout "$BOOT_TIMEOUT" >"$peerlog" 2>&1 &
    local peer_pid=$!
    STARTED_PIDS+=("$peer_pid")
    for _ in $(seq 1 100); do
        [ -s "$ports" ] && break
        sleep 0.1
    done
    [ -s "$ports" ] || die "peer did not start: $(cat "$peerlog")"
    local peer_port qemu_port
    read -r peer_port qemu_port <"$ports"

    local cmdline="console=ttyS0 quiet loglevel=3 panic=-1 hugepages=16 qtest.mode=$mode qtest.frames=$FRAMES qtest.addr=$DEV_ADDR"
    [ "$mode" = vfio ] && cmdline="$cmdline intel_iommu=on"
    log "case '$name': qemu ($ACCEL) netdev dgram 127.0.0.1:$qemu_port <-> peer 127.0.0.1:$peer_port"
    local t0 rc=0
    t0=$(date +%s)
    timeout --kill-after=5 "$BOOT_TIMEOUT" "$QEMU" \
        -accel "$ACCEL" "$@" -m 512M -smp 1 \
        -kernel "$KDIR/vmlinuz" -initrd "$INITRD" -append "$cmdline" \
        -display none -monitor none -serial "file:$console" -no-reboot \
        -nodefaults \
        -netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$qemu_port,remote.type=inet,remote.host=127.0.0.1,remote.port=$peer_port" \
        -device "igb,netdev=n0,mac=$GUEST_MAC,romfile=,addr=$DEV_SLOT" \
        </dev/null >"$WORK/$name.qemu" 2>&1 || rc=$?
    BOOT_SECS[$name]=$(($(date +%s) - t0))
    # Give the peer a moment to read the last frames, then stop it.
    for _ in $(seq 1 30); do
        kill -0 "$peer_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$peer_pid" 2>/dev/null || true
    local peer_rc=0
    wait "$peer_pid" || peer_rc=$?

    echo "----- $name: guest console -----"
    tr -d '\r' <"$console" | grep -v '^$' || true
    echo "----- $name: host peer -----"
    cat "$peerlog"
    if [ -s "$WORK/$name.qemu" ]; then
        echo "----- $name: qemu -----"
        cat "$WORK/$name.qemu"
    fi

    local why
    why=$(qemu_rc_why $rc)
    guest_verdict "$name" "$console" $(igb_markers "$mode")
    why=${why:-$VERDICT_WHY}
    if [ -z "$why" ] && { [ $peer_rc -ne 0 ] || ! grep -q '^PEER: PASS' "$peerlog"; }; then
        why="host peer did not pass (exit $peer_rc): $(grep -m1 '^PEER: FAIL' "$peerlog" || echo 'no verdict')"
    fi
    local tx rx
    tx=$(sed -n 's/^PEER: STATS guest_to_host=\([0-9]*\) host_to_guest=.*/\1/p' "$peerlog" | tail -n1)
    rx=$(sed -n 's/^PEER: STATS guest_to_host=[0-9]* host_to_guest=\([0-9]*\).*/\1/p' "$peerlog" | tail -n1)
    INFO[$name]="frames guest->host ${tx:-0}, host->guest ${rx:-0}"
    VIOLATIONS[$name]=-
    if [ -z "$why" ]; then record "$name" PASS; else record "$name" FAIL "$why"; fi
}

igb_markers() {
    case "$1" in
    sysfs)
        echo "refuse-error refuse-still-bound refuse-config-unchanged"
        [ -n "$FWD_BIN" ] && echo "fwd-refuse fwd-still-bound"
        echo "guest-open guest-path guest-tx guest-rx guest-loopback guest-negative-control guest-done"
        ;;
    vfio)
        echo "vfio-bind vfio-group guest-open guest-path guest-tx guest-rx guest-loopback guest-negative-control guest-done"
        ;;
    esac
}

sim_markers() {
    case "$1" in
    linux-ixgbe)
        echo "ixgbe-bound link-up msix-vectors ping guest-to-host host-to-guest-bytes host-to-guest"
        echo "rss-spread nic-error-counters stats-agree queue-interrupts unbind rebind rebind-link rebind-ping"
        ;;
    linux-then-ours) echo "ixgbe-bound link-up laser-off fwd-run taken-over" ;;
    fwd-sysfs) echo "fwd-run fwd-sigterm" ;;
    fwd-vfio) echo "vfio-bind vfio-group unprivileged fwd-run" ;;
    fwd-irq) echo "vfio-bind vfio-group fwd-run msix-vectors irq-cpu irq-polling poll-cpu idle-cpu bar0-cost wake-cost" ;;
    apps-sysfs) echo "pcap-started pktgen-run pcap-run pcap-readback" ;;
    dpdk-testpmd) echo "vfio-bind testpmd-probe testpmd-started testpmd-fwd testpmd-stats testpmd-exit" ;;
    echo-sysfs | echo-sockets) echo "echo-run" ;;
    esac
}

# Stops a process this script started: TERM, a bounded wait, then KILL.
stop_pid() { # pid seconds
    local pid=$1 secs=$2
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}

# run_sim_boot <case> <guest-mode> <ports> <smp> <peer-mode> <procs> <machine> [qemu args...]: a boot
# whose PCI devices are ixgbe-sim's ports over vfio-user (slots 0x4 and 0x5).
run_sim_boot() {
    local name=$1 mode=$2 nports=$3 smp=$4 peer_mode=$5 procs=$6 machine=$7
    shift 7
    VIOLATIONS[$name]=?
    INFO[$name]=
    if [ -z "$SIM_BIN" ]; then
        BOOT_SECS[$name]=0
        record "$name" FAIL "ixgbe-sim is not built (platform-mock has no such binary)"
        return
    fi
    local console="$WORK/$name.console" peerlog="$WORK/$name.peer" ports="$WORK/$name.ports"
    local fwd_packets=$FWD_FRAMES
    log "case '$name': starting sim_peer ($peer_mode, $nports wire(s))"
    # apps: pktgen sends FWD_FRAMES on port 0; the peer then injects 1.5 times as many on
    # port 1 (to its MAC), of which pcap captures the first FWD_FRAMES.
    local peer_frames=$SIM_FRAMES fwd_target=$fwd_packets extra=()
    case "$peer_mode" in
    fwd) peer_frames=$FWD_FRAMES ;;
    apps)
        peer_frames=$FWD_FRAMES
        fwd_target=$((FWD_FRAMES * 3 / 2))
        extra=(--fwd-dst 02:00:00:00:00:02)
        ;;
    echo) extra=(--bytes "$ECHO_BYTES") ;;
    esac
    if [ "$peer_mode" = sockets ]; then
        # The host kernel's own stack on a TAP device in sock_peer's private namespace.
        "$SOCK_PEER_BIN" --ports-file "$ports" --bytes "$ECHO_BYTES" --pings 10 \
            --timeout "$BOOT_TIMEOUT" >"$peerlog" 2>&1 &
    else
        # shellcheck disable=SC2086 # PEER_EXTRA is a list of options (or empty)
        "$SIM_PEER_BIN" --ports-file "$ports" --mode "$peer_mode" --wires "$nports" \
            --frames "$peer_frames" --fwd-target "$fwd_target" "${extra[@]}" --pings "$PINGS" \
            --window "$([ "$peer_mode" = fwd ] && echo "$FWD_WINDOW" || echo "$SIM_WINDOW")" \
            ${PEER_EXTRA:-} --timeout "$BOOT_TIMEOUT" >"$peerlog" 2>&1 &
    fi
    local peer_pid=$!
    STARTED_PIDS+=("$peer_pid")
    for _ in $(seq 1 100); do
        [ "$(cat "$ports" 2>/dev/null | wc -l)" -ge "$nports" ] && break
        sleep 0.1
    done
    [ "$(cat "$ports" 2>/dev/null | wc -l)" -ge "$nports" ] || die "sim_peer did not start: $(cat "$peerlog")"

    # One ixgbe-sim for all ports (a dual-port 82599), or one per port (procs=per-port): the
    # model has a single bus address space per process, while under an IOMMU every port has
    # its own IOVA space (its own VFIO container in the guest, its own DMA_MAPs from QEMU).
    local dev_args=() i=0 peer_port sim_port slots=(0x4 0x5)
    local -a sim_cmd=() sim_pids=()
    while read -r peer_port sim_port; do
        rm -f "$WORK/$name.sock$i"
        local wire=$i
        if [ "$procs" = per-port ]; then
            wire=0
            sim_cmd+=("--socket $WORK/$name.sock$i --mac 0=02:00:00:00:00:0$((i + 1)) --wire 0=udp:127.0.0.1:$peer_port,listen=$sim_port")
        else
            sim_cmd[0]="${sim_cmd[0]:-} --socket $WORK/$name.sock$i --wire $wire=udp:127.0.0.1:$peer_port,listen=$sim_port"
        fi
        dev_args+=(-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$WORK/$name.sock$i\",\"type\":\"unix\"},\"addr\":\"${slots[$i]}\"}")
        i=$((i + 1))
    done <"$ports"
    local p
    for p in "${!sim_cmd[@]}"; do
        sim_cmd[$p]="${sim_cmd[$p]} --board ${CASE_BOARD[$name]:-x520-da}"
        log "case '$name': ixgbe-sim ${sim_cmd[$p]# }"
        # shellcheck disable=SC2086 # the arguments are built above without spaces inside
        "$SIM_BIN" ${sim_cmd[$p]} >"$WORK/$name.sim$p.out" 2>"$WORK/$name.sim$p.log" &
        sim_pids+=($!)
        STARTED_PIDS+=($!)
    done
    local up=0
    for _ in $(seq 1 100); do
        up=1
        for ((i = 0; i < nports; i++)); do [ -S "$WORK/$name.sock$i" ] || up=0; done
        for p in "${sim_pids[@]}"; do kill -0 "$p" 2>/dev/null || up=0; done
        [ $up -eq 1 ] && break
        sleep 0.1
    done
    if [ $up -ne 1 ]; then
        cat "$WORK/$name".sim*.log >&2
        kill "$peer_pid" "${sim_pids[@]}" 2>/dev/null || true
        BOOT_SECS[$name]=0
        record "$name" FAIL "ixgbe-sim did not come up (no socket)"
        return
    fi

    local cmdline="console=ttyS0 quiet loglevel=3 panic=-1 hugepages=64 ipv6.disable=1"
    # iomem=relaxed: Debian's kernel has IO_STRICT_DEVMEM, which forbids mapping a BAR that a
    # driver claimed; linux-then-ours reads ESDP while ixgbe.ko still holds the port.
    [ "$name" = linux-then-ours ] && cmdline="$cmdline iomem=relaxed"
    cmdline="$cmdline qtest.mode=$mode qtest.addr=0000:00:04.0 qtest.addr2=0000:00:05.0"
    cmdline="$cmdline qtest.txf=$SIM_FRAMES qtest.rxf=$SIM_FRAMES qtest.flows=$SIM_FLOWS qtest.window=$SIM_WINDOW"
    cmdline="$cmdline qtest.pings=$PINGS qtest.fwdpackets=$fwd_packets qtest.fwdsecs=$FWD_SECONDS"
    cmdline="$cmdline qtest.inject=$((FWD_FRAMES * 3 / 2))"
    cmdline="$cmdline qtest.echobytes=$ECHO_BYTES qtest.echosecs=$ECHO_SECONDS"
    case "$machine" in *kernel-irqchip=split*) cmdline="$cmdline intel_iommu=on" ;; esac
    [ "$mode" = fwd-noiommu ] && cmdline="$cmdline vfio.enable_unsafe_noiommu_mode=1"
    cmdline="$cmdline ${GUEST_CMDLINE:-}"
    log "case '$name': qemu ($ACCEL, -smp $smp, $nports vfio-user port(s))"
    local t0 rc=0
    t0=$(date +%s)
    timeout --kill-after=5 "$BOOT_TIMEOUT" "$QEMU" \
        -accel "$ACCEL" -machine "$machine" "$@" \
        -object memory-backend-memfd,id=mem,size=512M,share=on -m 512M -smp "$smp" \
        -kernel "$KDIR/vmlinuz" -initrd "$INITRD" -append "$cmdline" \
        -display none -monitor none -serial "file:$console" -no-reboot -nodefaults \
        "${dev_args[@]}" </dev/null >"$WORK/$name.qemu" 2>&1 || rc=$?
    BOOT_SECS[$name]=$(($(date +%s) - t0))
    local peer_rc=0 sim_rc=()
    stop_pid "$peer_pid" 5 || peer_rc=$?
    # ixgbe-sim ends when its client (QEMU) has gone; it prints its summary on the way out.
    for p in "${!sim_pids[@]}"; do
        sim_rc[$p]=0
        stop_pid "${sim_pids[$p]}" 5 || sim_rc[$p]=$?
    done

    echo "----- $name: guest console -----"
    tr -d '\r' <"$console" | grep -v '^$' || true
    echo "----- $name: host peer -----"
    cat "$peerlog"
    for p in "${!sim_pids[@]}"; do
        echo "----- $name: ixgbe-sim #$p log (stderr, exit ${sim_rc[$p]}) -----"
        cat "$WORK/$name.sim$p.log"
        cat "$WORK/$name.sim$p.out"
    done
    if [ -s "$WORK/$name.qemu" ]; then
        echo "----- $name: qemu -----"
        cat "$WORK/$name.qemu"
    fi

    # The model's violations: every line ixgbe-sim logs about one, and its exit summary.
    cat "$WORK/$name".sim*.log | grep ': violation: ' >"$WORK/$name.violations" || true
    VIOLATIONS[$name]=$(sim_violation_count "$WORK/$name" "${#sim_pids[@]}")

    local why
    why=$(qemu_rc_why $rc)
    # shellcheck disable=SC2046
    guest_verdict "$name" "$console" $(sim_markers "$name")
    why=${why:-$VERDICT_WHY}
    if [ -z "$why" ] && { [ $peer_rc -ne 0 ] || ! grep -q '^PEER: PASS' "$peerlog"; }; then
        why="host peer did not pass (exit $peer_rc): $(grep -m1 '^PEER: FAIL' "$peerlog" | sed 's/^PEER: FAIL //' || echo 'no verdict')"
    fi
    INFO[$name]=$(sed -n 's/^PEER: STATS wire\([0-9]\) rx_frames=\([0-9]*\) rx_bytes=[0-9]* tx_frames=\([0-9]*\).*/wire\1 rx \2 tx \3/p' "$peerlog" | tr '\n' ' ')
    # The echo cases: the TCP echo's rate as the host measured it.
    INFO[$name]="${INFO[$name]}$(sed -n 's/^PEER: PASS echo-tcp .* (\([0-9.]* MB\/s\)).*$/tcp \1/p' "$peerlog")"
    if [ -z "$why" ]; then record "$name" PASS; else record "$name" FAIL "$why"; fi
}

# The number of violations: from the exit summaries of the case's ixgbe-sim processes ("N
# violation(s) logged, M suppressed"), else the number of violation lines they logged.
sim_violation_count() { # work-prefix processes
    local p line n=0 m=0 missing=0
    for ((p = 0; p < $2; p++)); do
        line=$(grep -m1 '^ixgbe-sim summary:' "$1.sim$p.out" 2>/dev/null || true)
        if [ -z "$line" ]; then
            missing=1
            continue
        fi
        n=$((n + $(echo "$line" | sed -n 's/.* \([0-9]\+\) violation(s) logged.*/\1/p')))
        m=$((m + $(echo "$line" | sed -n 's/.* \([0-9]\+\) suppressed.*/\1/p')))
    done
    if [ $missing -eq 0 ]; then
        echo "$n (+$m suppressed)"
    else
        echo "$(grep -c . "$1.violations" || true) (summary missing)"
    fi
}

# ---------------------------------------------------------------------------------------------
# baremetal: ixgbe-core with no Linux at all (tests/baremetal, see docs/porting.md)
# ---------------------------------------------------------------------------------------------

# The fixture is its own package (outside the workspace, like fuzz/), built here for
# x86_64-unknown-none; the target is added with rustup when missing. Sets BAREMETAL_ELF, or
# BAREMETAL_WHY and returns 1.
build_baremetal() {
    BAREMETAL_ELF=
    BAREMETAL_WHY=
    if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
        log "adding the Rust target x86_64-unknown-none"
        if ! rustup target add x86_64-unknown-none >"$WORK/rustup-target.log" 2>&1; then
            cat "$WORK/rustup-target.log" >&2
            BAREMETAL_WHY="'rustup target add x86_64-unknown-none' failed (is rustup installed and static.rust-lang.org reachable?)"
            return 1
        fi
    fi
    local dir="$TARGET_DIR/baremetal"
    log "building tests/baremetal (release, x86_64-unknown-none)"
    if ! (cd "$REPO/tests/baremetal" && CARGO_TARGET_DIR="$dir" \
        cargo build -q --release --locked -j2 --target x86_64-unknown-none) >"$WORK/baremetal-build.log" 2>&1; then
        cat "$WORK/baremetal-build.log" >&2
        BAREMETAL_WHY="building tests/baremetal for x86_64-unknown-none failed (see above)"
        return 1
    fi
    BAREMETAL_ELF="$dir/x86_64-unknown-none/release/ixgbe-baremetal"
}

# QEMU boots the fixture itself (-kernel with its PVH note; SeaBIOS assigns the BARs) with
# ixgbe-sim's two ports and sim_peer in fwd mode on their wires. The fixture forwards
# FWD_FRAMES frames port 0 -> port 1 and ends QEMU through isa-debug-exit: status 33 is its
# PASS, 35 its FAIL (a triple fault under -no-reboot would give 0).
run_baremetal() {
    local name=baremetal
    VIOLATIONS[$name]=?
    INFO[$name]=
    BOOT_SECS[$name]=0
    [ -n "$SIM_BIN" ] || { record $name FAIL "ixgbe-sim is not built"; return; }
    build_baremetal || { record $name FAIL "$BAREMETAL_WHY"; return; }
    local console="$WORK/$name.console" peerlog="$WORK/$name.peer" ports="$WORK/$name.ports"
    "$SIM_PEER_BIN" --ports-file "$ports" --mode fwd --wires 2 --frames "$FWD_FRAMES" \
        --fwd-target "$FWD_FRAMES" --window "$FWD_WINDOW" --timeout "$BOOT_TIMEOUT" >"$peerlog" 2>&1 &
    local peer_pid=$!
    STARTED_PIDS+=("$peer_pid")
    for _ in $(seq 1 100); do
        [ "$(wc -l <"$ports" 2>/dev/null || echo 0)" -ge 2 ] && break
        sleep 0.1
    done
    [ "$(wc -l <"$ports" 2>/dev/null || echo 0)" -ge 2 ] || die "sim_peer did not start: $(cat "$peerlog")"
    local sim_args=() dev_args=() i=0 slots=(0x4 0x5) peer_port sim_port
    while read -r peer_port sim_port; do
        rm -f "$WORK/$name.sock$i"
        sim_args+=(--socket "$WORK/$name.sock$i" --wire "$i=udp:127.0.0.1:$peer_port,listen=$sim_port")
        dev_args+=(-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$WORK/$name.sock$i\",\"type\":\"unix\"},\"addr\":\"${slots[$i]}\"}")
        i=$((i + 1))
    done <"$ports"
    log "case '$name': ixgbe-sim ${sim_args[*]} --board x520-da"
    "$SIM_BIN" "${sim_args[@]}" --board x520-da >"$WORK/$name.sim0.out" 2>"$WORK/$name.sim0.log" &
    local sim_pid=$!
    STARTED_PIDS+=("$sim_pid")
    for _ in $(seq 1 100); do
        [ -S "$WORK/$name.sock0" ] && [ -S "$WORK/$name.sock1" ] && break
        kill -0 "$sim_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! [ -S "$WORK/$name.sock1" ]; then
        cat "$WORK/$name.sim0.log" >&2
        kill "$peer_pid" "$sim_pid" 2>/dev/null || true
        record $name FAIL "ixgbe-sim did not come up (no socket)"
        return
    fi
    log "case '$name': qemu ($ACCEL) -kernel $BAREMETAL_ELF, 2 vfio-user ports"
    local t0 rc=0
    t0=$(date +%s)
    timeout --kill-after=5 "$BOOT_TIMEOUT" "$QEMU" \
        -accel "$ACCEL" -machine q35,memory-backend=mem \
        -object memory-backend-memfd,id=mem,size=512M,share=on -m 512M -smp 1 \
        -kernel "$BAREMETAL_ELF" -append "frames=$FWD_FRAMES seconds=$FWD_SECONDS" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -display none -monitor none -serial "file:$console" -no-reboot -nodefaults \
        "${dev_args[@]}" </dev/null >"$WORK/$name.qemu" 2>&1 || rc=$?
    BOOT_SECS[$name]=$(($(date +%s) - t0))
    local peer_rc=0 sim_rc=0
    stop_pid "$peer_pid" 5 || peer_rc=$?
    stop_pid "$sim_pid" 5 || sim_rc=$?

    echo "----- $name: guest console -----"
    tr -d '\r' <"$console" | grep -v '^$' || true
    echo "----- $name: host peer -----"
    cat "$peerlog"
    echo "----- $name: ixgbe-sim log (stderr, exit $sim_rc) -----"
    cat "$WORK/$name.sim0.log" "$WORK/$name.sim0.out"
    if [ -s "$WORK/$name.qemu" ]; then
        echo "----- $name: qemu -----"
        cat "$WORK/$name.qemu"
    fi
    grep ': violation: ' "$WORK/$name.sim0.log" >"$WORK/$name.violations" || true
    VIOLATIONS[$name]=$(sim_violation_count "$WORK/$name" 1)

    local why=
    case $rc in
    33) ;;
    35) why="the fixture failed: $(grep -m1 'BAREMETAL: FAIL' "$console" | tr -d '\r' | sed 's/.*BAREMETAL: FAIL //')" ;;
    124 | 137) why="timeout after ${BOOT_TIMEOUT}s (fixture hung)" ;;
    0) why="qemu exited with 0: the guest reset (triple fault?) instead of reporting through isa-debug-exit" ;;
    *) why="qemu exited with $rc (expected 33 from isa-debug-exit)" ;;
    esac
    if [ -z "$why" ] && ! grep -q 'BAREMETAL: PASS' "$console"; then
        why="exit status 33 but no 'BAREMETAL: PASS' on the console"
    fi
    if [ -z "$why" ] && { [ $peer_rc -ne 0 ] || ! grep -q '^PEER: PASS' "$peerlog"; }; then
        why="host peer did not pass (exit $peer_rc): $(grep -m1 '^PEER: FAIL' "$peerlog" | sed 's/^PEER: FAIL //' || echo 'no verdict')"
    fi
    local tx1
    tx1=$(tr -d '\r' <"$console" | sed -n 's/^BAREMETAL: STATS port 1 .*tx_packets=\([0-9]*\).*/\1/p')
    INFO[$name]="$(sed -n 's/^PEER: STATS wire\([0-9]\) rx_frames=\([0-9]*\) rx_bytes=[0-9]* tx_frames=\([0-9]*\).*/wire\1 rx \2 tx \3/p' "$peerlog" | tr '\n' ' ')port 1 tx_packets ${tx1:-?}"
    if [ -z "$why" ]; then record $name PASS; else record $name FAIL "$why"; fi
}

# ---------------------------------------------------------------------------------------------
# dpdk-testpmd: DPDK's ixgbe PMD (Debian trixie's dpdk-testpmd) as a second independent client
# ---------------------------------------------------------------------------------------------

DPDK_FRAMES=${DPDK_FRAMES:-1000}
DPDK_WINDOW=${DPDK_WINDOW:-32}

# The common initramfs followed by the DPDK tree (get-dpdk.sh, cached in <cache>/dpdk) as a
# second cpio archive, unpacked by the guest kernel at /dpdk. Sets DPDK_INITRD.
dpdk_initrd() {
    local out rc=0
    out=$(bash "$HERE/get-dpdk.sh" "$CACHE/dpdk" 2>"$WORK/get-dpdk.log") || rc=$?
    cat "$WORK/get-dpdk.log" >&2
    [ $rc -eq 0 ] || return 1
    DPDK_INITRD="$WORK/initramfs-dpdk.gz"
    cat "$INITRD" "$(tail -n1 <<<"$out")" >"$DPDK_INITRD"
    log "dpdk-testpmd initramfs $(du -h "$DPDK_INITRD" | cut -f1)"
}

# Both ports on vfio-pci under intel-iommu (one ixgbe-sim per port, as in fwd-vfio: each port
# has its own IOVA space), testpmd's io forwarding between them, checked by sim_peer's io mode.
# `-cpu max`: Debian builds DPDK for x86-64 with SSE4.2 (package sse4.2-support), which TCG's
# default qemu64 CPU lacks (testpmd dies of SIGILL).
run_dpdk_testpmd() {
    if ! dpdk_initrd; then
        BOOT_SECS[dpdk-testpmd]=0
        VIOLATIONS[dpdk-testpmd]=-
        record dpdk-testpmd FAIL "could not get DPDK from Debian trixie (download failed? see get-dpdk's messages above)"
        return
    fi
    # run_sim_boot reads these globals; bash's dynamic scope gives it this case's values.
    local INITRD=$DPDK_INITRD SIM_FRAMES=$DPDK_FRAMES SIM_WINDOW=$DPDK_WINDOW FWD_FRAMES=$DPDK_FRAMES
    run_sim_boot dpdk-testpmd dpdk-testpmd 2 2 io per-port q35,memory-backend=mem,kernel-irqchip=split \
        -device intel-iommu,intremap=on,caching-mode=on -cpu max
    # testpmd's own count next to the peer's in the summary table.
    local st
    st=$(tr -d '\r' <"$WORK/dpdk-testpmd.console" 2>/dev/null | sed -n 's/.*QTEST: PASS testpmd-stats (port 0 RX \([0-9]*\) frames.*port 1 TX \([0-9]*\) frames.*/testpmd rx0 \1 tx1 \2/p')
    INFO[dpdk-testpmd]="${INFO[dpdk-testpmd]:-}${st}"
}

run_case() {
    local c=$1
    case "$c" in
    igb-sysfs)
        # A second igb (on an otherwise empty hub: it reaches no network) so that ixgbe-fwd
        # gets two different devices to refuse.
        run_igb_boot igb-sysfs sysfs -machine q35 \
            -netdev hubport,id=n1,hubid=1 -device "igb,netdev=n1,mac=52:54:00:12:34:57,romfile=,addr=$DEV2_SLOT"
        ;;
    igb-vfio)
        run_igb_boot igb-vfio vfio -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on
        ;;
    linux-ixgbe)
        run_sim_boot linux-ixgbe linux-ixgbe 1 4 linux one q35,memory-backend=mem
        ;;
    linux-then-ours | fwd-sysfs)
        need_fwd "$c" || return 0
        run_sim_boot "$c" "$c" 2 1 fwd one q35,memory-backend=mem
        ;;
    apps-sysfs)
        need_fwd "$c" || return 0
        run_sim_boot apps-sysfs apps-sysfs 2 1 apps one q35,memory-backend=mem
        ;;
    echo-sysfs)
        need_fwd "$c" || return 0
        run_sim_boot echo-sysfs echo-sysfs 1 1 echo one q35,memory-backend=mem
        ;;
    echo-sockets)
        need_fwd "$c" || return 0
        ECHO_BYTES=$SOCKETS_BYTES run_sim_boot echo-sockets echo-sockets 1 1 sockets one q35,memory-backend=mem
        ;;
    fwd-vfio)
        need_fwd "$c" || return 0
        run_sim_boot fwd-vfio fwd-vfio 2 1 fwd per-port q35,memory-backend=mem,kernel-irqchip=split \
            -device intel-iommu,intremap=on,caching-mode=on
        ;;
    fwd-irq)
        # ixgbe-fwd --interrupts hybrid through VFIO: IRQ_FRAMES at IRQ_RATE frames/s, then
        # IRQ_FLOOD frames as fast as a window of 64 allows (more overflows ixgbe-sim's UDP
        # receive buffer on the host: frames lost before the device).
        need_fwd "$c" || return 0
        FWD_FRAMES=$((IRQ_FRAMES + IRQ_FLOOD)) FWD_SECONDS=$((IRQ_FRAMES / IRQ_RATE + 60)) \
            PEER_EXTRA="--rate $IRQ_RATE:$IRQ_FRAMES --window 64" \
            GUEST_CMDLINE="${GUEST_CMDLINE:-} qtest.irqrate=$IRQ_RATE qtest.irqcpu=$IRQ_CPU_MAX" \
            run_sim_boot fwd-irq fwd-irq 2 1 fwd per-port q35,memory-backend=mem,kernel-irqchip=split \
            -device intel-iommu,intremap=on,caching-mode=on
        ;;
    baremetal) run_baremetal ;;
    dpdk-testpmd) run_dpdk_testpmd ;;
    *) die "unknown case '$c' (known: $ALL_CASES)" ;;
    esac
}

# The forwarding cases need ixgbe-fwd in the guest.
need_fwd() {
    [ -n "$FWD_BIN" ] && return 0
    BOOT_SECS[$1]=0
    VIOLATIONS[$1]=-
    record "$1" FAIL "no ixgbe-fwd (QEMU_E2E_NO_FWD set or apps has no such binary)"
    return 1
}

ALL_CASES="igb-sysfs igb-vfio linux-ixgbe linux-then-ours fwd-sysfs fwd-vfio apps-sysfs baremetal dpdk-testpmd fwd-irq echo-sysfs echo-sockets"

main() {
    [ "$(uname -m)" = x86_64 ] || die "needs an x86_64 host"
    ensure_host_tools
    ensure_qemu
    prepare_guest_kernel
    build_programs
    build_initramfs
    local t_setup=$(($(date +%s) - T_START))

    local c
    for c in ${CASES:-$ALL_CASES}; do run_case "$c"; done

    local total=$(($(date +%s) - T_START))
    echo
    echo "================ QEMU end-to-end summary ================"
    printf '%-16s %-6s %-9s %-11s %s\n' case result boot violations details
    local n passed=0 failed=0
    for n in "${CASE_ORDER[@]}"; do
        printf '%-16s %-6s %-9s %-11s %s\n' "$n" "${RESULT[$n]}" "${BOOT_SECS[$n]:-?}s" "${VIOLATIONS[$n]:-?}" "${INFO[$n]:-}"
        if [ "${RESULT[$n]}" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
    for n in "${CASE_ORDER[@]}"; do
        if [ -s "$WORK/$n.violations" ]; then
            echo "violations logged by ixgbe-sim in $n:"
            sed 's/^ixgbe-sim: //; s/\[[0-9.]*s\] //; s/^/  /' "$WORK/$n.violations" | sort | uniq -c | sort -rn | head -n 40
        fi
        [ "${RESULT[$n]}" = FAIL ] && echo "FAIL $n: ${WHY[$n]}"
    done
    echo "setup (tools, QEMU, kernel, build, initramfs): ${t_setup}s; total: ${total}s (accel $ACCEL)"
    echo "qemu-e2e: $passed passed, $failed failed"
    [ $failed -eq 0 ]
}

# QEMU_E2E_LIB=1 only defines the functions (for debugging single steps).
if [ -z "${QEMU_E2E_LIB:-}" ]; then main "$@"; fi
