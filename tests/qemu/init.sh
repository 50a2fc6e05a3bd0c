#!/bin/sh
# /init of the QEMU test guest (busybox sh). Built into the initramfs by tests/qemu/run.sh.
#
# Kernel command line: qtest.mode=MODE plus the mode's parameters (qtest.addr, qtest.frames, ...).
# igb modes (QEMU's 82576):
#   sysfs: the igb kernel driver binds the device; the ixgbe path must refuse it and leave it bound
#          (qemu_refuse, and ixgbe-fwd when present); then qemu_guest takes it over through sysfs.
#   vfio:  the device is moved from igb to vfio-pci (driver_override + drivers_probe) and
#          qemu_guest takes it over through VFIO and the emulated IOMMU.
# ixgbe-sim modes (the simulated 82599 over vfio-user, 8086:10fb at qtest.addr / qtest.addr2):
#   linux-ixgbe: the kernel's ixgbe.ko binds it; link, MSI-X, ping, sim_guest's UDP exchange,
#          RSS spread, ethtool counters, unbind and rebind.
# Every result is one console line "QTEST: PASS <name>" or "QTEST: FAIL <name>: <why>"; the host
# decides pass/fail from these lines and from what its peer saw on the wire.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "QTEST: $*"; }
pass() { say "PASS $*"; }
fail() { say "FAIL $*"; }
finish() {
    say "DONE"
    sync
    poweroff -f
    sleep 5
}

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
MODE=$(arg qtest.mode)
FRAMES=$(arg qtest.frames)
[ -n "$FRAMES" ] || FRAMES=64
say "guest up: kernel $(cat /proc/sys/kernel/osrelease), mode=$MODE, frames=$FRAMES"
say "hugepages: $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) x 2 MiB"

load_modules() {
    for m in $(cat "/modules/load-$1"); do
        insmod "/modules/$m.ko" || fail "insmod-$m: insmod failed"
    done
}

driver_of() {
    if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
        basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
    else
        echo none
    fi
}

command_reg() { dd if="/sys/bus/pci/devices/$1/config" bs=1 skip=4 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n'; }

igb_main() {
load_modules igb

# The device under test (its netdev is the host peer's socket) and any other 82576.
ADDR=$(arg qtest.addr)
OTHERS=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x8086 ] && [ "$(cat "$d/device")" = 0x10c9 ] && [ "${d##*/}" != "$ADDR" ]; then
        OTHERS="$OTHERS ${d##*/}"
    fi
done
if [ -z "$ADDR" ] || [ ! -e "/sys/bus/pci/devices/$ADDR" ]; then
    fail "find-device: device under test '$ADDR' not on the PCI bus"
    finish
fi
[ "$(cat "/sys/bus/pci/devices/$ADDR/device")" = 0x10c9 ] || fail "find-device: $ADDR is not 8086:10c9"
for a in $ADDR $OTHERS; do
    say "igb device at $a, driver $(driver_of "$a")"
    if [ "$(driver_of "$a")" != igb ]; then
        fail "igb-bound: the kernel igb driver did not bind $a"
        finish
    fi
done

case "$MODE" in
sysfs)
    # 1. Refusal by the ixgbe path: error, nothing written, kernel driver still bound.
    before=$(command_reg "$ADDR")
    /bin/qemu_refuse "$ADDR"
    rc=$?
    [ $rc -eq 0 ] || fail "refuse-run: qemu_refuse exited $rc"
    drv=$(driver_of "$ADDR")
    if [ "$drv" = igb ]; then pass "refuse-still-bound (driver igb)"; else fail "refuse-still-bound: driver is $drv"; fi
    after=$(command_reg "$ADDR")
    if [ "$before" = "$after" ]; then
        pass "refuse-config-unchanged (command register bytes $after)"
    else
        fail "refuse-config-unchanged: command register $before -> $after"
    fi
    if [ -x /bin/ixgbe-fwd ]; then
        ADDR2=${OTHERS# }
        ADDR2=${ADDR2%% *}
        [ -n "$ADDR2" ] || fail "fwd-refuse: no second 8086:10c9 for ixgbe-fwd"
        out=$(/bin/ixgbe-fwd "$ADDR" "$ADDR2" --seconds 1 2>&1)
        rc=$?
        echo "$out" | sed 's/^/  ixgbe-fwd: /'
        if [ $rc -ne 0 ] && echo "$out" | grep -qiE 'unsupported|not a supported device' &&
            echo "$out" | grep -qi '8086:10c9'; then
            pass "fwd-refuse (exit $rc, unsupported-device error naming 8086:10c9)"
        else
            fail "fwd-refuse: exit $rc, expected non-zero and an unsupported-device message naming 8086:10c9"
        fi
        drv="$(driver_of "$ADDR") $(driver_of "$ADDR2")"
        if [ "$drv" = "igb igb" ]; then
            pass "fwd-still-bound (both devices: driver igb)"
        else
            fail "fwd-still-bound: drivers are $drv"
        fi
    fi
    # 2. Take-over through sysfs and the frame exchange.
    /bin/qemu_guest "$ADDR" sysfs "$FRAMES" || fail "guest-exit: qemu_guest exited $?"
    say "after the take-over the device's driver is $(driver_of "$ADDR")"
    ;;
vfio)
    load_modules vfio
    echo vfio-pci >"/sys/bus/pci/devices/$ADDR/driver_override"
    echo "$ADDR" >"/sys/bus/pci/devices/$ADDR/driver/unbind"
    echo "$ADDR" >/sys/bus/pci/drivers_probe
    drv=$(driver_of "$ADDR")
    if [ "$drv" = vfio-pci ]; then pass "vfio-bind (driver vfio-pci)"; else fail "vfio-bind: driver is $drv"; fi
    if [ -e "/sys/bus/pci/devices/$ADDR/iommu_group" ]; then
        group=$(basename "$(readlink "/sys/bus/pci/devices/$ADDR/iommu_group")")
        if [ -e "/dev/vfio/$group" ]; then
            pass "vfio-group (IOMMU group $group, /dev/vfio/$group)"
        else
            fail "vfio-group: /dev/vfio/$group missing"
        fi
    else
        fail "vfio-group: no iommu_group (is the emulated IOMMU on?)"
    fi
    /bin/qemu_guest "$ADDR" vfio "$FRAMES" || fail "guest-exit: qemu_guest exited $?"
    ;;
esac
}

# ------------------------------------------------------------------------------------------
# ixgbe-sim modes
# ------------------------------------------------------------------------------------------

# wait_for <seconds> <shell condition>: polls every 0.2 s; bounded.
wait_for() {
    n=$(($1 * 5))
    shift
    while [ $n -gt 0 ]; do
        eval "$1" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    return 1
}

netdev_of() { ls "/sys/bus/pci/devices/$1/net" 2>/dev/null | head -n1; }

# ixgbe_up <addr> <label>: waits for the netdev of <addr>, brings it up with 10.0.0.2/24 and waits
# for carrier at 10000 Mb/s. Sets IFACE. Emits PASS/FAIL <label>.
ixgbe_up() {
    IFACE=
    UPADDR=$1
    if ! wait_for 20 '[ -n "$(netdev_of "$UPADDR")" ]'; then
        fail "$2: no network interface appeared for $1"
        return 1
    fi
    IFACE=$(netdev_of "$1")
    ip link set "$IFACE" up
    # Debugging knob (GUEST_CMDLINE=qtest.txcsum=off): no TX checksum offload, so the driver
    # sends no context descriptors. CI does not set it.
    if [ "$(arg qtest.txcsum)" = off ]; then ethtool -K "$IFACE" tx off >/dev/null && say "TX checksum offload off (qtest.txcsum=off)"; fi
    ip addr add 10.0.0.2/24 dev "$IFACE"
    t0=$(cut -d' ' -f1 /proc/uptime)
    if ! wait_for 60 '[ "$(cat /sys/class/net/$IFACE/carrier 2>/dev/null)" = 1 ]'; then
        fail "$2: no carrier on $IFACE within 60 s (operstate $(cat /sys/class/net/$IFACE/operstate))"
        ethtool "$IFACE" | sed 's/^/  ethtool: /'
        return 1
    fi
    t1=$(cut -d' ' -f1 /proc/uptime)
    speed=$(cat "/sys/class/net/$IFACE/speed")
    et=$(ethtool "$IFACE")
    echo "$et" | sed 's/^/  ethtool: /'
    if [ "$speed" = 10000 ] && echo "$et" | grep -q 'Speed: 10000Mb/s' && echo "$et" | grep -q 'Link detected: yes'; then
        pass "$2 ($IFACE carrier up at $speed Mb/s, ifup at ${t0}s, link at ${t1}s of guest uptime)"
    else
        fail "$2: $IFACE speed is '$speed' Mb/s, expected 10000"
        return 1
    fi
}

# ping_peer <count> <label>: busybox ping of the host peer; all replies expected.
ping_peer() {
    out=$(ping -c "$1" -i 0.02 -W 5 -w $(($1 / 5 + 30)) 10.0.0.1 2>&1)
    echo "$out" | tail -n 3 | sed 's/^/  ping: /'
    got=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    if [ "$got" = "$1" ]; then pass "$2 ($got of $1 echo replies)"; else fail "$2: ${got:-0} of $1 echo replies"; fi
}

dump_ixgbe_state() {
    say "interrupts of $IFACE:"
    grep -E "$IFACE|CPU" /proc/interrupts | sed 's/^/  /'
    say "kernel messages of ixgbe:"
    dmesg | grep -iE 'ixgbe|vfio' | sed 's/^/  dmesg: /'
}

# Counts of the TxRx vectors of $IFACE in /proc/interrupts, one line per vector: "<name> <total>".
vector_counts() {
    grep -E "$IFACE-TxRx-[0-9]+" /proc/interrupts |
        awk -v n="$(nproc)" '{ s = 0; for (i = 2; i <= n + 1; i++) s += $i; print $NF, s }'
}

linux_ixgbe_main() {
    ADDR=$(arg qtest.addr)
    TXF=$(arg qtest.txf)
    RXF=$(arg qtest.rxf)
    FLOWS=$(arg qtest.flows)
    WINDOW=$(arg qtest.window)
    PINGS=$(arg qtest.pings)
    say "cpus online: $(nproc)"
    load_modules ixgbe
    drv=$(driver_of "$ADDR")
    id="$(cat "/sys/bus/pci/devices/$ADDR/vendor" 2>/dev/null):$(cat "/sys/bus/pci/devices/$ADDR/device" 2>/dev/null)"
    if [ "$drv" = ixgbe ]; then pass "ixgbe-bound ($ADDR $id bound to ixgbe)"; else
        fail "ixgbe-bound: $ADDR ($id) has driver $drv"
        dump_ixgbe_state
        return
    fi
    ixgbe_up "$ADDR" link-up || { dump_ixgbe_state; return; }

    # MSI-X with a vector per queue (one queue per online CPU) plus the "other" vector.
    nvec=$(ls "/sys/bus/pci/devices/$ADDR/msi_irqs" | wc -l)
    modes=$(cat /sys/bus/pci/devices/$ADDR/msi_irqs/* | sort -u | tr '\n' ' ')
    nq=$(vector_counts | wc -l)
    if [ "$modes" = "msix " ] && [ "$nq" -ge 4 ] && [ "$nvec" -ge $((nq + 1)) ]; then
        pass "msix-vectors ($nvec MSI-X vectors, $nq TxRx queue vectors)"
    else
        fail "msix-vectors: msi_irqs has $nvec entries of mode '$modes', $nq TxRx vectors in /proc/interrupts (want msix, >= 4)"
    fi

    ping_peer "$PINGS" ping
    # From here on no ARP: the exchange counts every frame on both sides.
    arp -s 10.0.0.1 02:00:00:00:00:fe
    # Room for a window of host -> guest frames in the socket (each 2 KiB-buffer skb costs
    # ~2.3 KiB of the default 208 KiB): drops there would be the guest stack's, not the NIC's.
    sysctl -qw net.core.rmem_max=8388608 net.core.rmem_default=8388608
    before=$(vector_counts)
    /bin/sim_guest exchange "$IFACE" "$TXF" "$RXF" "$FLOWS" "$WINDOW" || fail "sim-guest-exit: sim_guest exited $?"
    after=$(vector_counts)
    fired=$(echo "$before
$after" | awk '{ if ($1 in a) { if ($2 > a[$1]) n++ } else a[$1] = $2 } END { print n + 0 }')
    if [ "$fired" -ge 3 ]; then pass "queue-interrupts ($fired TxRx vectors fired during the exchange)"; else
        fail "queue-interrupts: only $fired TxRx vectors fired during the exchange"
    fi
    dump_ixgbe_state

    echo "$ADDR" >/sys/bus/pci/drivers/ixgbe/unbind
    if [ "$(driver_of "$ADDR")" = none ] && [ -z "$(netdev_of "$ADDR")" ]; then pass "unbind (no driver, no netdev)"; else
        fail "unbind: driver $(driver_of "$ADDR"), netdev '$(netdev_of "$ADDR")'"
    fi
    echo "$ADDR" >/sys/bus/pci/drivers/ixgbe/bind
    if [ "$(driver_of "$ADDR")" = ixgbe ]; then pass "rebind (bound to ixgbe again)"; else
        fail "rebind: driver $(driver_of "$ADDR")"
    fi
    if ixgbe_up "$ADDR" rebind-link; then
        ping_peer 10 rebind-ping
    fi
    /bin/sim_guest bye || true
    say "after the rebind:"
    dump_ixgbe_state
}

# run_fwd <label>: our ixgbe-fwd between the two ports until it forwarded qtest.fwdpackets frames
# (the peer injects them on port 0 and checks them on port 1).
run_fwd() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    P=$(arg qtest.fwdpackets)
    S=$(arg qtest.fwdsecs)
    say "ixgbe-fwd $A1 $A2 --packets $P --seconds $S"
    t0=$(cut -d' ' -f1 /proc/uptime)
    # shellcheck disable=SC2086 # FWD_AS is a command prefix (setpriv ...) or empty
    out=$($FWD_AS /bin/ixgbe-fwd "$A1" "$A2" --packets "$P" --seconds "$S" --json 2>&1)
    rc=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "$out" | sed 's/^/  ixgbe-fwd: /'
    # The JSON summary (the last line): tx_packets of the second device (the last one in the
    # line) is what reached the peer's wire 1.
    tx2=$(echo "$out" | tail -n1 | grep -o '"tx_packets":[0-9]*' | tail -n1 | cut -d: -f2)
    if [ $rc -eq 0 ] && [ "${tx2:-0}" -ge "$P" ]; then
        pass "fwd-run ($1: ixgbe-fwd exit 0 after forwarding $tx2 frames to port 1, ${t0}s..${t1}s of guest uptime)"
    else
        fail "fwd-run: $1: ixgbe-fwd exit $rc, port 1 sent ${tx2:-?} of $P frames"
    fi
    say "drivers after ixgbe-fwd: $A1 $(driver_of "$A1"), $A2 $(driver_of "$A2")"
}

# Linux's ixgbe.ko probes both ports and brings their links up; then our forwarder takes them
# through sysfs (it unbinds the kernel driver itself).
linux_then_ours_main() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    load_modules ixgbe
    if [ "$(driver_of "$A1") $(driver_of "$A2")" = "ixgbe ixgbe" ]; then
        pass "ixgbe-bound (both ports bound to ixgbe)"
    else
        fail "ixgbe-bound: drivers $(driver_of "$A1") $(driver_of "$A2")"
    fi
    ok=1
    for a in $A1 $A2; do
        UPADDR=$a
        wait_for 20 '[ -n "$(netdev_of "$UPADDR")" ]' || { ok=0; continue; }
        ip link set "$(netdev_of "$a")" up
    done
    for a in $A1 $A2; do
        i=$(netdev_of "$a")
        if [ -z "$i" ] || ! wait_for 60 '[ "$(cat /sys/class/net/'"$i"'/carrier 2>/dev/null)" = 1 ]'; then
            ok=0
            continue
        fi
        say "$a: $i carrier up at $(cat "/sys/class/net/$i/speed") Mb/s"
        [ "$(cat "/sys/class/net/$i/speed")" = 10000 ] || ok=0
    done
    if [ $ok -eq 1 ]; then pass "link-up (both ports up at 10000 Mb/s under ixgbe.ko)"; else fail "link-up: not both ports up at 10000 Mb/s"; fi
    for a in $A1 $A2; do ip link set "$(netdev_of "$a")" down 2>/dev/null; done
    # ixgbe_down turned the SR modules' lasers off (ESDP.SDP3 = 1, kept across resets): the
    # next driver finds dark optics. Read ESDP (BAR0 + 0x20).
    dark=1
    for a in $A1 $A2; do
        esdp=$(/bin/sim_guest bar0-read "$a" 0x20 2>&1 | tail -n1)
        say "$a: ESDP after ixgbe.ko's down: $esdp"
        case "$esdp" in 0x*) [ $((esdp & 8)) -ne 0 ] || dark=0 ;; *) dark=0 ;; esac
    done
    if [ $dark -eq 1 ]; then pass "laser-off (ixgbe.ko left both lasers off: SDP3 = 1)"; else fail "laser-off: SDP3 not set on both ports after ixgbe.ko's down"; fi
    run_fwd "after ixgbe.ko"
    if [ "$(driver_of "$A1") $(driver_of "$A2")" = "none none" ]; then
        pass "taken-over (ixgbe.ko unbound from both ports)"
    else
        fail "taken-over: drivers $(driver_of "$A1") $(driver_of "$A2")"
    fi
}

# Runs its arguments (one shell command line) as the ordinary user fwd (uid 1000): busybox su
# as root asks no password and drops every capability with the uid; rlimits are kept.
as_fwd_user() { su -s /bin/sh fwd -c "$*"; }

# Bus Master Enable (bit 2 of the PCI command register) of device $1: 4 when on, 0 when off.
bus_master() { low=$(command_reg "$1" | cut -c1-2); echo $((0x${low:-00} & 4)); }

# SIGTERM (what timeout, systemd and container runtimes send) must end our forwarder through its
# normal exit: summary printed, exit 0, and both devices with Bus Master off (read back from
# config space) before their DMA memory went back to the kernel.
fwd_sigterm() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    /bin/ixgbe-fwd "$A1" "$A2" --seconds 300 >/tmp/sigterm.out 2>&1 &
    pid=$!
    SA1=$A1
    SA2=$A2
    if ! wait_for 60 '[ "$(bus_master "$SA1")" = 4 ] && [ "$(bus_master "$SA2")" = 4 ]'; then
        kill -KILL $pid 2>/dev/null
        fail "fwd-sigterm: the forwarder never enabled bus mastering on both ports"
        return
    fi
    sleep 2
    kill -TERM $pid
    wait $pid
    rc=$?
    sed 's/^/  ixgbe-fwd: /' /tmp/sigterm.out
    bm="$(bus_master "$A1")$(bus_master "$A2")"
    if [ $rc -eq 0 ] && grep -q 'total:' /tmp/sigterm.out && [ "$bm" = 00 ]; then
        pass "fwd-sigterm (SIGTERM: exit 0, summary printed, Bus Master off on both ports)"
    else
        fail "fwd-sigterm: exit $rc, bus master bits after exit '$bm' (want 00), summary $(grep -c 'total:' /tmp/sigterm.out)"
    fi
}

# Our generator on port 0 (the peer checks every frame) and our capture on port 1 (the file is
# read back here, every frame byte-exact against what the peer injected), through sysfs.
apps_main() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    P=$(arg qtest.fwdpackets)
    S=$(arg qtest.fwdsecs)
    N=$(arg qtest.inject)
    /bin/ixgbe-pcap "$A2" /tmp/cap.pcap --packets "$P" --seconds "$S" >/tmp/pcap.out 2>&1 &
    pcap_pid=$!
    SA2=$A2
    if wait_for 60 '[ "$(bus_master "$SA2")" = 4 ]'; then
        pass "pcap-started (ixgbe-pcap owns $A2)"
    else
        fail "pcap-started: ixgbe-pcap never enabled bus mastering on $A2"
    fi
    sleep 2
    out=$(/bin/ixgbe-pktgen "$A1" --packets "$P" --seconds "$S" --size 128 2>&1)
    rc=$?
    echo "$out" | sed 's/^/  ixgbe-pktgen: /'
    if [ $rc -eq 0 ]; then pass "pktgen-run (exit 0 after $P frames)"; else fail "pktgen-run: exit $rc"; fi
    wait $pcap_pid
    rc=$?
    sed 's/^/  ixgbe-pcap: /' /tmp/pcap.out
    if [ $rc -eq 0 ]; then pass "pcap-run (exit 0)"; else fail "pcap-run: exit $rc"; fi
    /bin/sim_guest pcap-check /tmp/cap.pcap "$P" "$N" 02:00:00:00:00:02
}

# Our ixgbe-echo (smoltcp) on port 0 at 10.0.0.2, through sysfs, until one TCP connection has
# ended: the host pings it and gets 16 UDP datagrams and qtest.echobytes of TCP back byte-exact
# (the peer checks every byte). echo-sysfs: the host's smoltcp client on the wire;
# echo-sockets: the host kernel's own sockets, through a TAP device bridged to the wire.
echo_main() {
    A1=$(arg qtest.addr)
    B=$(arg qtest.echobytes)
    S=$(arg qtest.echosecs)
    say "ixgbe-echo $A1 --ip 10.0.0.2/24 --connections 1 --seconds $S"
    t0=$(cut -d' ' -f1 /proc/uptime)
    out=$(/bin/ixgbe-echo "$A1" --ip 10.0.0.2/24 --connections 1 --seconds "$S" 2>&1)
    rc=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "$out" | sed 's/^/  ixgbe-echo: /'
    if [ $rc -eq 0 ] && echo "$out" | grep -q "^echoed: 1 TCP connections, $B TCP bytes, 16 UDP datagrams"; then
        pass "echo-run (ixgbe-echo exit 0 after echoing $B TCP bytes and 16 UDP datagrams, ${t0}s..${t1}s of guest uptime)"
    else
        fail "echo-run: ixgbe-echo exit $rc (${t0}s..${t1}s of guest uptime), $(echo "$out" | grep '^echoed:' || echo 'no summary')"
    fi
}

# Loads vfio and moves both ports ($A1, $A2) to vfio-pci (driver_override + drivers_probe);
# reports vfio-bind, and returns 1 unless both are bound.
bind_both_to_vfio() {
    load_modules vfio
    for a in $A1 $A2; do
        echo vfio-pci >"/sys/bus/pci/devices/$a/driver_override"
        echo "$a" >/sys/bus/pci/drivers_probe
    done
    if [ "$(driver_of "$A1") $(driver_of "$A2")" = "vfio-pci vfio-pci" ]; then
        pass "vfio-bind (both ports bound to vfio-pci)"
    else
        fail "vfio-bind: drivers $(driver_of "$A1") $(driver_of "$A2")"
        return 1
    fi
}

fwd_vfio_main() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    bind_both_to_vfio
    groups=
    for a in $A1 $A2; do
        g=$(basename "$(readlink "/sys/bus/pci/devices/$a/iommu_group" 2>/dev/null)")
        groups="$groups $g:$(ls /dev/vfio | tr '\n' ' ')"
        [ -e "/dev/vfio/$g" ] || { fail "vfio-group: $a: no /dev/vfio/$g (group '$g'; /dev/vfio has: $(ls /dev/vfio | tr '\n' ' '))"; return; }
    done
    pass "vfio-group (groups$groups)"
    # Least privilege: the groups go to an ordinary user (what scripts/bind-vfio.sh does), who
    # runs the forwarder with no capabilities; VFIO pins DMA memory against RLIMIT_MEMLOCK.
    for a in $A1 $A2; do
        chown 1000:1000 "/dev/vfio/$(basename "$(readlink "/sys/bus/pci/devices/$a/iommu_group")")"
    done
    ulimit -l unlimited
    mkdir -p /etc
    echo 'fwd:x:1000:1000:forwarder:/:/bin/sh' >>/etc/passwd
    echo 'fwd:x:1000:' >>/etc/group
    FWD_AS=as_fwd_user
    who=$(as_fwd_user 'id -u; grep CapEff /proc/self/status')
    if [ "$(echo "$who" | head -n1)" = 1000 ] && echo "$who" | grep -q 'CapEff:[[:space:]]*0000000000000000'; then
        pass "unprivileged (uid 1000, no capabilities)"
    else
        fail "unprivileged: setpriv gave '$who'"
    fi
    run_fwd "through VFIO as uid 1000"
    FWD_AS=
}

# ------------------------------------------------------------------------------------------
# dpdk-testpmd: DPDK's own ixgbe PMD, a second client of the model written by Intel and others
# ------------------------------------------------------------------------------------------

# testpmd's last "NIC statistics for port $2" value of counter $1 (e.g. TX-packets) in $3.
testpmd_stat() {
    awk -v want="$2" -v key="$1:" '
        /NIC statistics for port/ { for (i = 1; i <= NF; i++) if ($i == "port") p = $(i + 1) }
        /Forward statistics for port/ { p = "" }
        p == want { for (i = 1; i < NF; i++) if ($i == key) v = $(i + 1) }
        END { print v + 0 }' "$3"
}

# The value of $1 (RX-packets, TX-dropped, ...) in testpmd's closing "Forward statistics for
# port $2" block of $3.
testpmd_fwd_stat() {
    awk -v want="$2" -v key="$1:" '
        /Forward statistics for port/ { for (i = 1; i <= NF; i++) if ($i == "port") p = $(i + 1); next }
        /-----------------------------/ { p = "" }
        p == want { for (i = 1; i < NF; i++) if ($i == key) v = $(i + 1) }
        END { print v + 0 }' "$3"
}

# Debian trixie's dpdk-testpmd (the tree run.sh appended at /dpdk) with its ixgbe PMD on both
# ports through vfio-pci and the emulated IOMMU; io forwarding until port 1 has sent
# qtest.fwdpackets frames (the host peer injects them on port 0 and checks each on port 1).
dpdk_testpmd_main() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    P=$(arg qtest.fwdpackets)
    S=$(arg qtest.fwdsecs)
    if [ ! -x /dpdk/usr/bin/dpdk-testpmd ]; then
        fail "testpmd-present: no /dpdk/usr/bin/dpdk-testpmd in the initramfs"
        return
    fi
    bind_both_to_vfio || return
    # The chroot sees the guest's devices, sysfs, procfs and hugepages.
    for d in dev proc sys; do mount --bind "/$d" "/dpdk/$d"; done
    mount -t hugetlbfs nodev /dpdk/mnt/huge
    free_hp=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
    say "hugepages free: $free_hp x 2 MiB, vfio: $(ls /dev/vfio | tr '\n' ' ')"
    # Main lcore 0 (prints the stats each second), forwarding lcore 1 (polls both ports); a pool
    # of 4096 mbufs instead of testpmd's default of ~160 000 (which would not fit in 128 MiB).
    # Debugging knob (GUEST_CMDLINE=qtest.dpdklog=pmd.net.ixgbe.*:debug): EAL log levels.
    loglevel=
    [ -n "$(arg qtest.dpdklog)" ] && loglevel="--log-level=$(arg qtest.dpdklog)"
    t0=$(cut -d' ' -f1 /proc/uptime)
    # shellcheck disable=SC2086 # loglevel is one word or empty
    chroot /dpdk /usr/bin/dpdk-testpmd -l 0,1 -n 1 --in-memory --huge-dir /mnt/huge $loglevel \
        -a "$A1" -a "$A2" -- --forward-mode=io --nb-cores=1 --total-num-mbufs=4096 \
        --stats-period 1 </dev/null >/tmp/testpmd.raw 2>&1 &
    pid=$!
    # Done when port 1 has sent P frames (each one the peer checks); bounded by qtest.fwdsecs
    # after forwarding started and by 120 s for EAL, the probe and the links.
    n=0
    started=
    while kill -0 $pid 2>/dev/null; do
        tr -d '\033' </tmp/testpmd.raw >/tmp/testpmd.out
        if [ -z "$started" ] && grep -q 'io packet forwarding' /tmp/testpmd.out; then
            started=$(cut -d' ' -f1 /proc/uptime)
            n=0
        fi
        [ "$(testpmd_stat TX-packets 1 /tmp/testpmd.out)" -ge "$P" ] && break
        n=$((n + 1))
        if { [ -n "$started" ] && [ $n -gt $((S * 2)) ]; } || [ $n -gt 240 ]; then
            say "testpmd: bound reached (forwarding started at ${started:-never}), stopping it"
            break
        fi
        sleep 0.5
    done
    t1=$(cut -d' ' -f1 /proc/uptime)
    # SIGINT: testpmd stops forwarding, prints its forward statistics, closes both ports.
    kill -INT $pid 2>/dev/null
    n=0
    while kill -0 $pid 2>/dev/null && [ $n -lt 60 ]; do
        sleep 0.5
        n=$((n + 1))
    done
    kill -0 $pid 2>/dev/null && { say "testpmd did not exit within 30 s of SIGINT"; kill -KILL $pid; }
    wait $pid
    rc=$?
    tr -d '\033' </tmp/testpmd.raw >/tmp/testpmd.out
    # Everything but the periodic screens (their last one is kept).
    last=$(grep -n 'Port statistics ====' /tmp/testpmd.out | tail -n1 | cut -d: -f1)
    awk -v last="${last:-0}" '/Port statistics ====/ { skip = (NR != last) } /Stopping forwarding|Telling cores|Bye/ { skip = 0 } !skip' \
        /tmp/testpmd.out | sed 's/\[2J\[1;1H//; s/^/  testpmd: /'

    # ethdev prints "Port N: <MAC>" for each port the PMD probed and configured (the MAC it read
    # from RAR0, i.e. the EEPROM).
    macs=$(sed -n 's/^Port \([01]\): \(\([0-9A-Fa-f]\{2\}:\)\{5\}[0-9A-Fa-f]\{2\}\)$/\1=\2/p' /tmp/testpmd.out | tr '\n' ' ')
    if [ "$(echo "$macs" | wc -w)" -eq 2 ]; then pass "testpmd-probe (net_ixgbe probed both ports: $macs)"; else
        fail "testpmd-probe: net_ixgbe configured ports '$macs', want 0 and 1"
    fi
    if grep -q 'io packet forwarding' /tmp/testpmd.out; then
        pass "testpmd-started (io forwarding at ${started}s of guest uptime)"
    else
        fail "testpmd-started: testpmd never started forwarding"
    fi
    rx0=$(testpmd_fwd_stat RX-packets 0 /tmp/testpmd.out)
    tx1=$(testpmd_fwd_stat TX-packets 1 /tmp/testpmd.out)
    txd1=$(testpmd_fwd_stat TX-dropped 1 /tmp/testpmd.out)
    rxd0=$(testpmd_fwd_stat RX-dropped 0 /tmp/testpmd.out)
    if [ "$tx1" -ge "$P" ] && [ "$rx0" -ge "$P" ] && [ "$txd1" = 0 ] && [ "$rxd0" = 0 ]; then
        pass "testpmd-fwd (port 0 received $rx0, port 1 sent $tx1, none dropped; ${started}s..${t1}s)"
    else
        fail "testpmd-fwd: port 0 received $rx0 (dropped $rxd0), port 1 sent $tx1 (dropped $txd1), want $P"
    fi
    # The last statistics screen (the model's counters through DPDK's arithmetic: QBRC as is,
    # GOTC minus 4 bytes of CRC per frame): port 1 sent what port 0 received, except the
    # peer's probes (frame 0, 60 bytes) that arrived after the port started and before
    # forwarding did, which testpmd drains and frees (flush_fwd_rx_queues); no error, miss or
    # mbuf shortage on either port.
    st=/tmp/testpmd.out
    rxp=$(testpmd_stat RX-packets 0 $st)
    rxb=$(testpmd_stat RX-bytes 0 $st)
    txp=$(testpmd_stat TX-packets 1 $st)
    txb=$(testpmd_stat TX-bytes 1 $st)
    bad=0
    for port in 0 1; do
        for c in RX-missed RX-errors RX-nombuf TX-errors; do
            bad=$((bad + $(testpmd_stat "$c" "$port" $st)))
        done
    done
    flushed=$((rxp - txp))
    if [ "$txp" -ge "$P" ] && [ $flushed -ge 0 ] && [ $flushed -le 10 ] && [ $((rxb - txb)) -eq $((flushed * 60)) ] &&
        [ "$txb" -gt 0 ] && [ $bad -eq 0 ]; then
        pass "testpmd-stats (port 0 RX $rxp frames $rxb bytes, port 1 TX $txp frames $txb bytes, $flushed probe(s) flushed before forwarding; missed, errors, nombuf 0)"
    else
        fail "testpmd-stats: port 0 RX $rxp frames $rxb bytes, port 1 TX $txp frames $txb bytes, $bad missed/errors/nombuf"
    fi
    if [ $rc -eq 0 ] && grep -q 'Bye' /tmp/testpmd.out; then
        pass "testpmd-exit (exit 0 after SIGINT, both ports closed)"
    else
        fail "testpmd-exit: exit $rc, Bye $(grep -c Bye /tmp/testpmd.out)"
    fi
    for d in mnt/huge sys proc dev; do umount "/dpdk/$d"; done
    say "drivers after testpmd: $A1 $(driver_of "$A1"), $A2 $(driver_of "$A2")"
}

# fwd-irq: ixgbe-fwd --interrupts hybrid through VFIO (4 queues per port, each on its own MSI-X
# vector). The peer first sends a low-rate stream (run.sh: --rate), then floods: while the rate
# is low the forwarder must sleep (CPU under 10 % of wall time in at least two per-second
# lines), the flood must switch it to polling; the peer checks that no frame was lost. Then a
# polling run without traffic for the reference (about 100 % CPU).
fwd_irq_main() {
    A1=$(arg qtest.addr)
    A2=$(arg qtest.addr2)
    P=$(arg qtest.fwdpackets)
    S=$(arg qtest.fwdsecs)
    # One exit to ixgbe-sim (a BAR0 read of EEC, non-zero with EE_PRES; at a low rate the
    # forwarder writes TDT once per frame), measured while no driver holds the function.
    echo 1 > "/sys/bus/pci/devices/$A1/enable"
    /bin/sim_guest bar0-cost "$A1" 0x10010 2000
    echo 0 > "/sys/bus/pci/devices/$A1/enable"
    bind_both_to_vfio || return
    for a in $A1 $A2; do
        g=$(basename "$(readlink "/sys/bus/pci/devices/$a/iommu_group" 2>/dev/null)")
        [ -e "/dev/vfio/$g" ] || { fail "vfio-group: $a: no /dev/vfio/$g"; return; }
    done
    pass "vfio-group"
    ulimit -l unlimited
    say "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) (of $(cat /sys/devices/system/clocksource/clocksource0/available_clocksource))"
    say "ixgbe-fwd $A1 $A2 --interrupts hybrid --queues 4 --packets $P --seconds $S"
    out=$(/bin/ixgbe-fwd "$A1" "$A2" --interrupts hybrid --queues 4 --packets "$P" --seconds "$S" --json 2>&1)
    rc=$?
    echo "$out" | sed 's/^/  ixgbe-fwd: /'
    tx2=$(echo "$out" | tail -n1 | grep -o '"tx_packets":[0-9]*' | tail -n1 | cut -d: -f2)
    if [ $rc -eq 0 ] && [ "${tx2:-0}" -ge "$P" ]; then
        pass "fwd-run (ixgbe-fwd --interrupts hybrid exit 0 after forwarding $tx2 frames)"
    else
        fail "fwd-run: ixgbe-fwd exit $rc, port 1 sent ${tx2:-?} of $P frames"
    fi
    n=$(echo "$out" | grep -c 'MSI-X, 5 vectors')
    if [ "$n" -eq 2 ]; then pass "msix-vectors (5 per port: 4 queues, link)"; else
        fail "msix-vectors: $n of 2 ports report 'MSI-X, 5 vectors'"; fi
    # The seconds of the low-rate stream: every queue asleep ("0/8 queues polling") and at
    # least a quarter of the offered rate in interrupts (TCG on a loaded host falls behind);
    # their CPU shares must average under the bound.
    M=$(arg qtest.irqcpu)
    R=$(arg qtest.irqrate)
    low=$(echo "$out" | awk -v r="$R" '
        /^\[irq\] [0-9]+ interrupts\/s/ { ints = $2; asleep = ($0 ~ / 0\/8 queues polling/) }
        /^\[cpu\] .* % of wall time$/ { if (ints >= r / 4 && asleep) printf "%s ", $(NF-4) }')
    mean=$(echo "$low" | awk '{ for (i = 1; i <= NF; i++) s += $i; if (NF) printf "%.1f %d", s / NF, NF; else print "- 0" }')
    if [ "${mean#* }" -ge 2 ] && echo "${mean% *}" | awk -v m="$M" '{ exit !($1 < m) }'; then
        pass "irq-cpu (low-rate seconds: ${low}% CPU, mean ${mean% *} % < $M %)"
    else
        fail "irq-cpu: low-rate seconds: '${low}' (mean ${mean% *}, bound $M %), all: $(echo "$out" | sed -n 's/^\[cpu\] .*: \([0-9.]*\) % of wall time$/\1/p' | tr '\n' ' ')"
    fi
    to_polling=$(echo "$out" | sed -n 's/^\[irq\] total: .* switches to polling \([0-9]*\) .*/\1/p')
    if [ "${to_polling:-0}" -ge 1 ]; then
        pass "irq-polling (the flood switched queues to polling $to_polling times)"
    else
        fail "irq-polling: no switch to polling ($(echo "$out" | grep '^\[irq\] total'))"
    fi
    # The reference: polling without traffic burns the CPU.
    ref=$(/bin/ixgbe-fwd "$A1" "$A2" --seconds 3 2>&1 | sed -n 's/^\[cpu\] .*: \([0-9.]*\) % of wall time$/\1/p' | tail -n1)
    if echo "${ref:-0}" | awk '{ exit !($1 >= 50) }'; then
        pass "poll-cpu (polling without traffic: ${ref} % CPU)"
    else
        fail "poll-cpu: polling used ${ref:-?} % CPU"
    fi
    # The floor: sleeping on interrupts without traffic (wait timeouts, the per-second lines).
    idle=$(/bin/ixgbe-fwd "$A1" "$A2" --interrupts hybrid --queues 4 --seconds 3 2>&1 | sed -n 's/^\[cpu\] .*: \([0-9.]*\) % of wall time$/\1/p' | tail -n1)
    if echo "${idle:-100}" | awk -v m="$M" '{ exit !($1 < m) }'; then
        pass "idle-cpu (asleep without traffic: ${idle} % CPU)"
    else
        fail "idle-cpu: asleep without traffic used ${idle:-?} % CPU (bound $M %)"
    fi
    # What the emulation itself costs, for the figures above: the floor of a process woken 1000
    # times a second by the kernel (a 1 ms timerfd, no device involved); bar0-cost, before the
    # forwarder ran, measured one exit to ixgbe-sim.
    /bin/sim_guest wake-cost 2000
}

case "$MODE" in
sysfs | vfio) igb_main ;;
linux-ixgbe) linux_ixgbe_main ;;
linux-then-ours) linux_then_ours_main ;;
fwd-sysfs)
    run_fwd "through sysfs"
    fwd_sigterm
    ;;
fwd-vfio) fwd_vfio_main ;;
fwd-irq) fwd_irq_main ;;
apps-sysfs) apps_main ;;
dpdk-testpmd) dpdk_testpmd_main ;;
echo-sysfs | echo-sockets) echo_main ;;
*) fail "mode: unknown qtest.mode '$MODE'" ;;
esac
finish
