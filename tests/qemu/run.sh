#!/usr/bin/env bash
# QEMU end-to-end tests of platform-linux (see tests/qemu/README.md).
#
# Boots a Debian kernel under QEMU with an emulated Intel 82576 (`-device igb`, 8086:10c9) whose
# network backend is a UDP socket on 127.0.0.1, and proves from inside a real kernel that
# platform-linux takes the device over, maps BAR0 and hands it DMA addresses that are right:
#   boot 1 (q35, no IOMMU): refusal by the ixgbe path, then the sysfs path (pagemap addresses);
#   boot 2 (q35 + intel-iommu): the VFIO path (IOVAs mapped through the emulated IOMMU).
# A host-side peer (tests/src/bin/qemu_peer.rs) checks every frame the guest sends byte by byte
# and injects frames that the guest checks.
#
# Run as root on Debian bookworm (installs qemu-system-x86 >= 8.0 from bookworm-backports when
# needed):  bash tests/qemu/run.sh
# Environment: ACCEL=tcg|kvm (default tcg), CARGO_TARGET_DIR, QEMU_CACHE (default
# <target>/qemu-cache), BOOT_TIMEOUT seconds per boot (default 150), FRAMES per direction (64),
# QEMU_E2E_NO_FWD=1 (skip the ixgbe-fwd refusal check even when apps declares that binary),
# KEEP_WORK=1 (keep the temporary directory with consoles and logs).
set -euo pipefail

T_START=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CACHE=${QEMU_CACHE:-$TARGET_DIR/qemu-cache}
ACCEL=${ACCEL:-tcg}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-150}
FRAMES=${FRAMES:-64}
TRIPLE=x86_64-unknown-linux-gnu
GUEST_MAC=52:54:00:12:34:56
# PCI slots of the igb device under test and of the second one in boot 1 (addresses in the guest).
# Apart on purpose: QEMU reserves devfn + 0x80 + 2n (n < 8) of each igb for its SR-IOV VFs.
DEV_SLOT=0x3
DEV_ADDR=0000:00:03.0
DEV2_SLOT=0x6
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qemu-e2e.XXXXXX")
declare -a STARTED_PIDS=()

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

qemu_major() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || {
        echo 0
        return
    }
    qemu-system-x86_64 --version | head -n1 | sed -n 's/.*version \([0-9]\+\)\..*/\1/p'
}

# Writes a one-line-style apt sources list holding every Debian suite already configured on this
# machine plus <codename>-backports, built from the URIs found in the machine's own apt
# configuration (nothing is hard-coded, /etc is not changed).
write_backports_sources() {
    local out=$1 codename=$2
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || die "no apt sources found in /etc/apt"
    : >"$out"
    for f in "${files[@]}"; do
        case "$f" in
        *.sources)
            # deb822: blank-line separated stanzas with Types/URIs/Suites/Components/Signed-By.
            awk -v codename="$codename" '
                function flush(   i, j, nu, ns, u, s, opt) {
                    if (types ~ /(^| )deb( |$)/ && uris != "" && enabled != "no") {
                        nu = split(uris, u, " "); ns = split(suites, s, " ")
                        opt = (signed != "") ? "[signed-by=" signed "] " : ""
                        for (i = 1; i <= nu; i++) {
                            for (j = 1; j <= ns; j++) print "deb " opt u[i] " " s[j] " " comps
                            if (index(suites, codename) && u[i] !~ /security/)
                                print "deb " opt u[i] " " codename "-backports " comps
                        }
                    }
                    types = uris = suites = comps = signed = enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                {
                    key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
                    if (key == "types") types = $0
                    else if (key == "uris") uris = $0
                    else if (key == "suites") suites = $0
                    else if (key == "components") comps = $0
                    else if (key == "signed-by") signed = $0
                    else if (key == "enabled") enabled = tolower($0)
                }
                END { flush() }
            ' "$f" >>"$out"
            ;;
        *)
            # One-line style: deb [opts] uri suite comps...
            awk -v codename="$codename" '
                $1 == "deb" {
                    print
                    line = $0; opt = ""
                    if ($2 ~ /^\[/) { match(line, /\[[^]]*\]/); opt = substr(line, RSTART, RLENGTH) " "
                                      sub(/\[[^]]*\] */, "", line) }
                    n = split(line, w, /[ \t]+/)
                    uri = w[2]; suite = w[3]; comps = ""
                    for (i = 4; i <= n; i++) comps = comps " " w[i]
                    if (suite == codename && uri !~ /security/)
                        print "deb " opt uri " " codename "-backports" comps
                }
            ' "$f" >>"$out"
            ;;
        esac
    done
    sort -u -o "$out" "$out"
    grep -q -- "-backports" "$out" || die "could not derive a ${codename}-backports source from /etc/apt"
}

ensure_qemu() {
    local major
    major=$(qemu_major)
    if [ "${major:-0}" -ge 8 ]; then
        log "qemu-system-x86_64 $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}') present"
        return
    fi
    log "qemu-system-x86_64 >= 8.0 needed (igb device); installing from backports"
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell the Debian codename from /etc/os-release"
    if grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
        log "${codename}-backports is configured on this machine: using it"
        as_root apt-get -q update >"$WORK/apt-update.log" 2>&1 ||
            { tail -n 20 "$WORK/apt-update.log" >&2; die "apt-get update failed"; }
        DEBIAN_FRONTEND=noninteractive as_root apt-get -q -y --no-install-recommends \
            install -t "${codename}-backports" qemu-system-x86 >"$WORK/apt-install.log" 2>&1 ||
            { tail -n 30 "$WORK/apt-install.log" >&2; die "installing qemu-system-x86 from ${codename}-backports failed"; }
        major=$(qemu_major)
        [ "${major:-0}" -ge 8 ] || die "qemu-system-x86_64 is still older than 8.0 after the install"
        log "installed $(qemu-system-x86_64 --version | head -n1)"
        return
    fi
    local aptdir="$CACHE/apt"
    mkdir -p "$aptdir/lists/partial"
    write_backports_sources "$aptdir/sources.list" "$codename"
    log "temporary apt sources: $aptdir/sources.list ($(wc -l <"$aptdir/sources.list") lines)"
    local opts=(-o "Dir::Etc::sourcelist=$aptdir/sources.list" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$aptdir/lists" -o "APT::Sandbox::User=root")
    as_root apt-get "${opts[@]}" -q update >"$WORK/apt-update.log" 2>&1 ||
        { cat "$WORK/apt-update.log" >&2; die "apt-get update with backports failed"; }
    DEBIAN_FRONTEND=noninteractive as_root apt-get "${opts[@]}" -q -y --no-install-recommends \
        install -t "${codename}-backports" qemu-system-x86 >"$WORK/apt-install.log" 2>&1 ||
        { tail -n 30 "$WORK/apt-install.log" >&2; die "installing qemu-system-x86 from ${codename}-backports failed"; }
    major=$(qemu_major)
    [ "${major:-0}" -ge 8 ] || die "qemu-system-x86_64 is still older than 8.0 after the install"
    log "installed $(qemu-system-x86_64 --version | head -n1)"
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

# Modules the guest loads, in dependency order, by mode.
IGB_MODS=(igb)
VFIO_MODS=(vfio_iommu_type1 vfio_pci)

download_deb() { # name destdir
    local name=$1 dest=$2
    (cd "$dest" && apt-get -q download "$name" >"$WORK/download-$name.log" 2>&1) || {
        cat "$WORK/download-$name.log" >&2
        die "apt-get download $name failed (is the machine's apt configured and reachable?)"
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
    if [ ! -f "$kdir/.complete" ]; then
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
        local m
        for m in "${IGB_MODS[@]}"; do resolve_module "$m"; done
        local igb_order=("${MOD_ORDER[@]}")
        for m in "${VFIO_MODS[@]}"; do resolve_module "$m"; done
        local vfio_order=("${MOD_ORDER[@]:${#igb_order[@]}}")
        for m in "${MOD_ORDER[@]}"; do
            ko=${MOD_PATH[$m]}
            case "$ko" in
            *.ko.xz) xz -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *.ko.zst) zstd -qdc "$ko" >"$kdir/modules/$m.ko" ;;
            *.ko.gz) gzip -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *) cp "$ko" "$kdir/modules/$m.ko" ;;
            esac
        done
        printf '%s\n' "${igb_order[@]}" >"$kdir/modules/load-igb"
        printf '%s\n' "${vfio_order[@]}" >"$kdir/modules/load-vfio"
        echo "$KVER" >"$kdir/kver"
        rm -rf "$CACHE/deb-tmp"
        touch "$kdir/.complete"
    fi
    echo "$KPKG" >"$CACHE/kernel.current"
    KDIR=$kdir
    KVER=$(cat "$kdir/kver")
    log "guest kernel $KVER; modules: igb path [$(tr '\n' ' ' <"$kdir/modules/load-igb")] vfio path [$(tr '\n' ' ' <"$kdir/modules/load-vfio")]"

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
}

# ---------------------------------------------------------------------------------------------
# Test programs and initramfs
# ---------------------------------------------------------------------------------------------

build_programs() {
    GUEST_BIN_DIR="$TARGET_DIR/$TRIPLE/release"
    local pkgs=(-p tests --bin qemu_guest --bin qemu_refuse)
    FWD_BIN=
    if [ -n "${QEMU_E2E_NO_FWD:-}" ]; then
        log "QEMU_E2E_NO_FWD set: refusal is checked with qemu_refuse only"
    elif [ -f "$REPO/apps/src/bin/ixgbe-fwd.rs" ] || grep -q '"ixgbe-fwd"' "$REPO/apps/Cargo.toml" 2>/dev/null; then
        pkgs+=(-p apps --bin ixgbe-fwd)
        FWD_BIN="$GUEST_BIN_DIR/ixgbe-fwd"
    else
        log "apps has no ixgbe-fwd yet: refusal is checked with qemu_refuse only"
    fi
    # Statically linked so they run on a bare busybox initramfs. The workspace's release profile
    # uses fat LTO with one codegen unit; these test programs do not need that, and the
    # overrides below (for this build only) keep the build time down on 2 cores and the
    # initramfs small (no debug info, symbols stripped).
    log "building static guest programs (release, $TRIPLE, crt-static): ${pkgs[*]}"
    (cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$TARGET_DIR" \
        CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
        cargo build -q --release --target "$TRIPLE" -j2 "${pkgs[@]}") ||
        die "building the guest programs failed"
    # The peer checks a few hundred frames: a debug build is plenty (and CI has the deps built).
    log "building the host peer"
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build -q -j2 -p tests --bin qemu_peer) ||
        die "building qemu_peer failed"
    PEER_BIN="$TARGET_DIR/debug/qemu_peer"
}

build_initramfs() {
    local root="$WORK/initramfs"
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules}
    cp "$BUSYBOX" "$root/bin/busybox"
    local applet
    for applet in sh mount umount cat echo ls readlink basename sleep grep sed dd od tr insmod poweroff sync head tail wc mkdir cut; do
        ln -s busybox "$root/bin/$applet"
    done
    cp "$KDIR"/modules/*.ko "$KDIR"/modules/load-* "$root/modules/"
    cp "$GUEST_BIN_DIR/qemu_guest" "$GUEST_BIN_DIR/qemu_refuse" "$root/bin/"
    [ -n "$FWD_BIN" ] && cp "$FWD_BIN" "$root/bin/ixgbe-fwd"
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

declare -A FRAMES_TX=() FRAMES_RX=() BOOT_SECS=() RESULT=()
FAILURES=0

# run_boot <name> <mode> <machine args...>
run_boot() {
    local name=$1 mode=$2
    shift 2
    local console="$WORK/$name.console" peerlog="$WORK/$name.peer" ports="$WORK/$name.ports"
    log "boot '$name': starting peer"
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

    local accel_args=(-accel "$ACCEL")
    local cmdline="console=ttyS0 quiet loglevel=3 panic=-1 hugepages=16 qtest.mode=$mode qtest.frames=$FRAMES qtest.addr=$DEV_ADDR"
    [ "$mode" = vfio ] && cmdline="$cmdline intel_iommu=on"
    log "boot '$name': qemu ($ACCEL) netdev dgram 127.0.0.1:$qemu_port <-> peer 127.0.0.1:$peer_port"
    local t0 rc=0
    t0=$(date +%s)
    timeout --kill-after=5 "$BOOT_TIMEOUT" qemu-system-x86_64 \
        "${accel_args[@]}" "$@" -m 512M -smp 1 \
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

    local ok=1
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        log "boot '$name': TIMEOUT after ${BOOT_TIMEOUT}s (guest hung)"
        ok=0
    elif [ $rc -ne 0 ]; then
        log "boot '$name': qemu exited with $rc"
        ok=0
    fi
    grep -q 'QTEST: DONE' "$console" || { log "boot '$name': guest never reached DONE"; ok=0; }
    if grep -q 'QTEST: FAIL' "$console"; then
        log "boot '$name': guest reported failures:"
        grep 'QTEST: FAIL' "$console" | tr -d '\r' >&2
        ok=0
    fi
    local want
    for want in $(expected_markers "$mode"); do
        grep -q "QTEST: PASS $want\\b" "$console" || { log "boot '$name': missing PASS marker '$want'"; ok=0; }
    done
    if [ $peer_rc -ne 0 ] || ! grep -q '^PEER: PASS' "$peerlog"; then
        log "boot '$name': host peer did not pass (exit $peer_rc)"
        ok=0
    fi
    FRAMES_TX[$name]=$(sed -n 's/^PEER: STATS guest_to_host=\([0-9]*\) host_to_guest=.*/\1/p' "$peerlog" | tail -n1)
    FRAMES_RX[$name]=$(sed -n 's/^PEER: STATS guest_to_host=[0-9]* host_to_guest=\([0-9]*\).*/\1/p' "$peerlog" | tail -n1)
    if [ $ok -eq 1 ]; then
        RESULT[$name]=PASS
    else
        RESULT[$name]=FAIL
        FAILURES=$((FAILURES + 1))
    fi
}

expected_markers() {
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

main() {
    [ "$(uname -m)" = x86_64 ] || die "needs an x86_64 host"
    ensure_host_tools
    ensure_qemu
    prepare_guest_kernel
    build_programs
    build_initramfs
    local t_setup=$(($(date +%s) - T_START))

    # Boot 1 has a second igb (on an otherwise empty hub: it reaches no network) so that
    # ixgbe-fwd gets two different devices to refuse.
    run_boot sysfs sysfs -machine q35 \
        -netdev hubport,id=n1,hubid=1 -device "igb,netdev=n1,mac=52:54:00:12:34:57,romfile=,addr=$DEV2_SLOT"
    run_boot vfio vfio -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on

    local total=$(($(date +%s) - T_START))
    echo
    echo "================ QEMU end-to-end summary ================"
    printf '%-8s %-6s %-22s %-22s %s\n' path result "guest->host frames" "host->guest frames" "boot time"
    local n
    for n in sysfs vfio; do
        printf '%-8s %-6s %-22s %-22s %ss\n' "$n" "${RESULT[$n]:-FAIL}" "${FRAMES_TX[$n]:-0}" "${FRAMES_RX[$n]:-0}" "${BOOT_SECS[$n]:-?}"
    done
    echo "setup (tools, kernel, build, initramfs): ${t_setup}s; total: ${total}s (accel $ACCEL)"
    local passed=$((2 - FAILURES))
    echo "qemu-e2e: $passed passed, $FAILURES failed"
    [ $FAILURES -eq 0 ]
}

# QEMU_E2E_LIB=1 only defines the functions (for debugging single steps).
if [ -z "${QEMU_E2E_LIB:-}" ]; then main "$@"; fi
