#!/usr/bin/env bash
# Unpacks DPDK's dpdk-testpmd and its ixgbe poll-mode driver from Debian trixie into a directory
# of its own (the host's apt sources and packages are not touched, as get-qemu.sh does for QEMU),
# keeps only testpmd, the shared libraries it needs and the mempool driver it loads, and packs
# them as a cpio archive rooted at /dpdk, to be appended to the guest's initramfs (Linux unpacks
# concatenated archives one after the other). Prints the path of that archive.
#
#   bash tests/qemu/get-dpdk.sh DIR      # prints DIR/dpdk.cpio.gz
#
# In trixie (DPDK 24.11) dpdk-testpmd ships in `dpdk-dev` (bookworm's `dpdk` has none), the
# ixgbe PMD in `librte-net-ixgbe25`; testpmd links the ixgbe PMD directly and loads mempool
# drivers from the plugin directory, so `librte-mempool-ring25` comes too. Needs root
# (mmdebstrap --mode=root) and mmdebstrap, which is installed from the host's suite when missing.
set -euo pipefail

DIR=${1:?usage: get-dpdk.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
log() { printf '[get-dpdk] %s\n' "$*" >&2; }
die() {
    printf '[get-dpdk] ERROR: %s\n' "$*" >&2
    exit 1
}

PKGS=dpdk-dev,librte-net-ixgbe25,librte-mempool-ring25
# Bump when what goes into the archive changes: a cache without this stamp is rebuilt.
STAMP="$DIR/.complete-1"
OUT="$DIR/dpdk.cpio.gz"
if [ -f "$STAMP" ] && [ -s "$OUT" ]; then
    echo "$OUT"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root unpacks as root)"
for tool in readelf cpio gzip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool missing on the host (binutils, cpio, gzip)"
done

# shellcheck source=debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
ensure_mmdebstrap get-dpdk
find_debian_mirror

ROOT="$DIR/root"
rm -rf "$ROOT" "$DIR/tree" "$OUT" "$STAMP"
log "unpacking $PKGS from trixie ($MIRROR) into $ROOT"
t0=$(date +%s)
if ! mmdebstrap --mode=root --variant=extract --quiet --skip=cleanup/apt/cache \
    --include="$PKGS" trixie "$ROOT" \
    "deb [signed-by=$KEYRING] $MIRROR trixie main" >"$DIR/mmdebstrap.log" 2>&1; then
    tail -n 30 "$DIR/mmdebstrap.log" >&2
    die "mmdebstrap of $PKGS (trixie) failed: download from $MIRROR failed?"
fi
debs=$(du -sm "$ROOT/var/cache/apt/archives" | cut -f1)
ndebs=$(find "$ROOT/var/cache/apt/archives" -name '*.deb' | wc -l)
log "downloaded $ndebs packages ($debs MiB) and unpacked them in $(($(date +%s) - t0)) s"

LIB=usr/lib/x86_64-linux-gnu
PMDS=$LIB/dpdk/pmds-25.0
[ -x "$ROOT/usr/bin/dpdk-testpmd" ] || die "no usr/bin/dpdk-testpmd in $PKGS (package layout changed?)"
[ -f "$ROOT/$PMDS/librte_mempool_ring.so.25.0" ] || die "no $PMDS/librte_mempool_ring.so.25.0 in $PKGS"

# testpmd and the mempool driver with every library they need (their DT_NEEDED, transitively),
# all in one flat library directory of the tree. Only the mempool driver sits in the plugin
# directory (EAL loads every *.so there): the ixgbe PMD comes in as testpmd's own dependency.
TREE="$DIR/tree/dpdk"
mkdir -p "$TREE/usr/bin" "$TREE/$LIB" "$TREE/$PMDS" "$TREE/usr/lib64"
install -m 755 "$ROOT/usr/bin/dpdk-testpmd" "$TREE/usr/bin/"
install -m 644 "$ROOT/$PMDS/librte_mempool_ring.so.25.0" "$TREE/$PMDS/"
declare -A seen=()
queue=("$ROOT/usr/bin/dpdk-testpmd" "$ROOT/$PMDS/librte_mempool_ring.so.25.0")
while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    for need in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -n "${seen[$need]:-}" ] && continue
        seen[$need]=1
        src=
        for d in "$ROOT/$LIB" "$ROOT/$PMDS"; do
            [ -e "$d/$need" ] && { src="$d/$need"; break; }
        done
        [ -n "$src" ] || die "library $need (needed by ${f#"$ROOT"/}) is in none of $PKGS' dependencies"
        cp -L "$src" "$TREE/$LIB/$need"
        queue+=("$src")
    done
done
cp -L "$ROOT/$LIB/ld-linux-x86-64.so.2" "$TREE/$LIB/"
# The loader where the ELF interpreter field says, and merged-/usr links for what else looks.
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$TREE/usr/lib64/ld-linux-x86-64.so.2"
ln -s usr/lib "$TREE/lib"
ln -s usr/lib64 "$TREE/lib64"
ln -s usr/bin "$TREE/bin"
mkdir -p "$TREE"/{dev,proc,sys,tmp,run,mnt/huge,var}
ln -s ../run "$TREE/var/run"
log "tree: ${#seen[@]} libraries, $(du -sm "$TREE" | cut -f1) MiB"
(cd "$DIR/tree" && find . | LC_ALL=C sort | cpio --quiet -o -H newc | gzip -1 >"$OUT.tmp") ||
    die "packing the DPDK tree failed"
mv "$OUT.tmp" "$OUT"
log "archive $OUT: $(du -h "$OUT" | cut -f1)"
# The unpacked packages are no longer needed (the tree and the archive are the cache).
rm -rf "$ROOT"
touch "$STAMP"
echo "$OUT"
