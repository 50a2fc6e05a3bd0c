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

if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap (host suite)"
    if ! apt-cache show mmdebstrap >/dev/null 2>&1; then
        apt-get -q update >/tmp/get-qemu-apt-update.log 2>&1 ||
            { tail -n 20 /tmp/get-qemu-apt-update.log >&2; die "apt-get update failed (is the Debian mirror reachable?)"; }
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install mmdebstrap \
        >/tmp/get-qemu-apt.log 2>&1 ||
        { tail -n 20 /tmp/get-qemu-apt.log >&2; die "apt-get install mmdebstrap failed (download failed?)"; }
fi

# The mirror: the first Debian URI of the machine's own apt configuration.
MIRROR=$(grep -hs -v '^[[:space:]]*#' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null | grep -o 'https\?://[^ ]*' | grep -v security | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"

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
