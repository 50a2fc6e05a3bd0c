#!/bin/sh
# /init of the QEMU test guest (busybox sh). Built into the initramfs by tests/qemu/run.sh.
#
# Kernel command line: qtest.mode=sysfs|vfio qtest.frames=N
#   sysfs: the igb kernel driver binds the device; the ixgbe path must refuse it and leave it bound
#          (qemu_refuse, and ixgbe-fwd when present); then qemu_guest takes it over through sysfs.
#   vfio:  the device is moved from igb to vfio-pci (driver_override + drivers_probe) and
#          qemu_guest takes it over through VFIO and the emulated IOMMU.
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
*)
    fail "mode: unknown qtest.mode '$MODE'"
    ;;
esac
finish
