#!/usr/bin/env bash
# Reads ixgbe-pcap's stream and ixgbe-pktgen's frames with tshark, IPv4 and UDP checksums
# validated (apps/tests/tshark.rs, ignored by a plain `cargo test` because it needs tshark).
# Installs tshark from the distribution's packages if it is missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tshark >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null \
    || { echo "tshark-check: apt-get update failed (is the Debian mirror reachable?)" >&2; exit 1; }
  apt-get install -y -qq tshark >/dev/null \
    || { echo "tshark-check: apt-get install tshark failed (is the Debian mirror reachable?)" >&2; exit 1; }
fi
cargo test -p ixgbe-tools --test tshark -- --ignored
