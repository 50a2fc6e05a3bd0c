#!/usr/bin/env bash
# Reads ixgbe-pcap's stream and ixgbe-pktgen's frames with tshark, IPv4 and UDP checksums
# validated (apps/tests/tshark.rs, ignored by a plain `cargo test` because it needs tshark).
# Installs tshark from the distribution's packages if it is missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tshark >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq tshark >/dev/null
fi
cargo test -p apps --test tshark -- --ignored
