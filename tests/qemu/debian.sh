# Sourced by get-qemu.sh and get-dpdk.sh, which unpack packages of a newer Debian suite into a
# directory of their own with mmdebstrap, never touching the host's apt sources. The sourcing
# script defines log and die first.

# Installs mmdebstrap from the host's own suite when it is missing; `tag` names the logs.
ensure_mmdebstrap() {
    local tag=$1
    command -v mmdebstrap >/dev/null 2>&1 && return 0
    log "installing mmdebstrap (host suite)"
    if ! apt-cache show mmdebstrap >/dev/null 2>&1; then
        apt-get -q update >"/tmp/$tag-apt-update.log" 2>&1 ||
            { tail -n 20 "/tmp/$tag-apt-update.log" >&2; die "apt-get update failed (is the Debian mirror reachable?)"; }
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install mmdebstrap \
        >"/tmp/$tag-apt.log" 2>&1 ||
        { tail -n 20 "/tmp/$tag-apt.log" >&2; die "apt-get install mmdebstrap failed (download failed?)"; }
}

# Sets MIRROR (the first Debian URI of the machine's own apt configuration, or deb.debian.org)
# and KEYRING (Debian's archive keys, which sign every suite).
find_debian_mirror() {
    MIRROR=$(grep -hs -v '^[[:space:]]*#' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null | grep -o 'https\?://[^ ]*' | grep -v security | head -n1 || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"
}
