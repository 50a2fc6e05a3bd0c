#!/usr/bin/env bash
# Hand a PCI device to vfio-pci so platform-linux can drive it through VFIO (without root).
#
# Usage: scripts/bind-vfio.sh <pci-address> [user]     (as root)
#
#   1. modprobe vfio-pci
#   2. unbind the device from its current driver
#   3. bind it to vfio-pci through driver_override
#   4. chown /dev/vfio/<group> to <user>, who can then open the device without root
#
# Needs an IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line). Every device in
# the same IOMMU group must be bound to vfio-pci or to no driver, or VFIO refuses the group.
# The device stops being a kernel network interface: never run this on the NIC you are logged
# in through. Refuses a device that carries the default route unless FORCE=1.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 <pci-address> [user]   e.g. $0 0000:03:00.0 alice" >&2
    exit 2
fi
addr="$1"
user="${2:-}"
if [[ "$addr" =~ ^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
    addr="0000:$addr"
fi
if ! [[ "$addr" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$ ]]; then
    echo "error: '$1' is not a PCI address like 0000:03:00.0" >&2
    exit 2
fi
addr="${addr,,}"
dev="/sys/bus/pci/devices/$addr"
if [[ ! -d "$dev" ]]; then
    echo "error: no PCI device $addr (see lspci -D)" >&2
    exit 1
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "error: must run as root" >&2
    exit 1
fi
if [[ -n "$user" ]] && ! id "$user" >/dev/null 2>&1; then
    echo "error: no such user '$user'" >&2
    exit 1
fi
if [[ ! -e "$dev/iommu_group" ]]; then
    echo "error: $addr has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on)" \
         "or run platform-linux as root without VFIO" >&2
    exit 1
fi
group="$(basename "$(readlink "$dev/iommu_group")")"

# Refuse to take away the interface this machine is reached through.
if [[ -d "$dev/net" && "${FORCE:-0}" != 1 ]]; then
    for netdev in "$dev"/net/*; do
        name="$(basename "$netdev")"
        if ip route show default 2>/dev/null | grep -qw "dev $name"; then
            echo "error: $addr is $name, which carries the default route; set FORCE=1 to" \
                 "unbind it anyway" >&2
            exit 1
        fi
    done
fi

echo "$addr: $(cat "$dev/vendor") $(cat "$dev/device") class $(cat "$dev/class"), IOMMU group $group"
modprobe vfio-pci

current=""
if [[ -e "$dev/driver" ]]; then
    current="$(basename "$(readlink "$dev/driver")")"
fi
if [[ "$current" != vfio-pci ]]; then
    if [[ -n "$current" ]]; then
        echo "unbinding from $current"
        echo "$addr" > "$dev/driver/unbind"
    fi
    echo vfio-pci > "$dev/driver_override"
    echo "$addr" > /sys/bus/pci/drivers_probe
fi
if [[ "$(basename "$(readlink "$dev/driver" 2>/dev/null || echo none)")" != vfio-pci ]]; then
    echo "error: binding $addr to vfio-pci failed (see dmesg)" >&2
    exit 1
fi
echo "bound to vfio-pci"

for _ in $(seq 50); do
    [[ -e "/dev/vfio/$group" ]] && break
    sleep 0.1
done
if [[ ! -e "/dev/vfio/$group" ]]; then
    echo "error: /dev/vfio/$group did not appear" >&2
    exit 1
fi
if [[ -n "$user" ]]; then
    chown "$user" "/dev/vfio/$group"
    echo "/dev/vfio/$group now belongs to $user"
fi

others=""
for other in /sys/kernel/iommu_groups/"$group"/devices/*; do
    o="$(basename "$other")"
    [[ "$o" == "$addr" ]] && continue
    drv="none"
    [[ -e "$other/driver" ]] && drv="$(basename "$(readlink "$other/driver")")"
    [[ "$drv" != vfio-pci && "$drv" != none && "$drv" != pcieport ]] && others+=" $o($drv)"
done
if [[ -n "$others" ]]; then
    echo "warning: IOMMU group $group also holds devices bound to host drivers:$others;" \
         "bind them too or the group is not viable"
fi
echo "note: DMA memory is pinned and counted against the locked-memory limit: raise it for" \
     "${user:-the user} (ulimit -l, or memlock in /etc/security/limits.conf)"
