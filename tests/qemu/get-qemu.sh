#!/usr/bin/env bash
# Unpacks QEMU 11 (qemu-system-x86 from Debian trixie-backports) into a directory of its own,
# without touching the host's apt sources or installed packages, and prints the path of a
# wrapper script that runs it through trixie's own dynamic loader.
#
#   bash tests/qemu/get-qemu.sh DIR      # prints DIR/qemu-system-x86_64
#
# QEMU's vfio-user client (-device vfio-user-pci) first shipped in QEMU 10.1; Debian bookworm
# has 7.2 (10.0 in bookworm-backports). Needs root (mmdebstrap --mode=root) and mmdebstrap, which
# is installed from the host's own Debian suite when missing.
set -euo pipefail

DIR=${1:?usage: get-qemu.sh DIR}
log() { printf '[get-qemu] %s\n' "$*" >&2; }
die() {
    printf '[get-qemu] ERROR: %s\n' "$*" >&2
    exit 1
}

WRAPPER="$DIR/qemu-system-x86_64"
if [ -x "$WRAPPER" ] && "$WRAPPER" --version 2>/dev/null | grep -q 'version 1[1-9]\.'; then
    echo "$WRAPPER"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root unpacks as root)"

# shellcheck source=debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian.sh"
ensure_mmdebstrap get-qemu
find_debian_mirror

ROOT="$DIR/root"
rm -rf "$ROOT"
mkdir -p "$DIR"
log "unpacking qemu-system-x86 from trixie-backports ($MIRROR) into $ROOT"
if ! mmdebstrap --mode=root --variant=extract --quiet \
    --aptopt='APT::Default-Release "trixie-backports"' \
    --include=qemu-system-x86 trixie "$ROOT" \
    "deb [signed-by=$KEYRING] $MIRROR trixie main" \
    "deb [signed-by=$KEYRING] $MIRROR trixie-backports main" >"$DIR/mmdebstrap.log" 2>&1; then
    tail -n 30 "$DIR/mmdebstrap.log" >&2
    die "mmdebstrap of qemu-system-x86 (trixie-backports) failed: download from $MIRROR failed?"
fi
LIB="$ROOT/usr/lib/x86_64-linux-gnu"
cat >"$WRAPPER" <<WRAP
#!/bin/sh
exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB" "$ROOT/usr/bin/qemu-system-x86_64" \\
    -L "$ROOT/usr/share/qemu" -L "$ROOT/usr/share/seabios" "\$@"
WRAP
chmod 755 "$WRAPPER"
"$WRAPPER" --version | head -n1 | grep -q 'version 1[1-9]\.' ||
    die "unpacked QEMU does not report version >= 11: $("$WRAPPER" --version 2>&1 | head -n2)"
log "$("$WRAPPER" --version | head -n1)"
echo "$WRAPPER"
