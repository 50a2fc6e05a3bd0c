#!/usr/bin/env bash
# Reserve 2 MiB hugepages for platform-linux's DMA memory.
#
# Usage: scripts/setup-hugepages.sh [count]      (as root; default 512 = 1 GiB)
#
# platform-linux maps hugepages anonymously (mmap MAP_HUGETLB | MAP_HUGE_2MB), so no hugetlbfs
# mount is needed: reserving pages in the kernel's pool is all there is to do. Counts above
# HUGEPAGES_MAX (default 512) are refused so a typo cannot pin most of the machine's memory.
set -euo pipefail

count="${1:-512}"
max="${HUGEPAGES_MAX:-512}"
pool=/sys/kernel/mm/hugepages/hugepages-2048kB

if ! [[ "$count" =~ ^[0-9]+$ ]]; then
    echo "error: count must be a non-negative integer, got '$count'" >&2
    exit 2
fi
if (( count > max )); then
    echo "error: $count hugepages ($(( count * 2 )) MiB) is more than the maximum of $max;" \
         "set HUGEPAGES_MAX to allow it" >&2
    exit 2
fi
if [[ ! -d "$pool" ]]; then
    echo "error: $pool is missing: this kernel has no 2 MiB hugepage support (CONFIG_HUGETLBFS)" >&2
    exit 1
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "error: must run as root (writes $pool/nr_hugepages)" >&2
    exit 1
fi

before="$(cat "$pool/nr_hugepages")"
echo "$count" > "$pool/nr_hugepages"
after="$(cat "$pool/nr_hugepages")"
free="$(cat "$pool/free_hugepages")"

echo "2 MiB hugepages: $before -> $after reserved ($(( after * 2 )) MiB), $free free"
if (( after < count )); then
    echo "warning: asked for $count but the kernel reserved only $after (memory is" \
         "fragmented or short); try again early after boot or add hugepages=$count to the" \
         "kernel command line" >&2
    exit 1
fi
echo "no hugetlbfs mount needed (platform-linux maps hugepages anonymously)"
