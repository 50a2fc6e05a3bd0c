#!/usr/bin/env bash
# Wall-clock rate of `ixgbe-fwd sim sim` on this machine: Mpps by batch size (one core), and
# one against two queues/cores. The simulator does about 95 % of the work per packet (see
# scripts/bench-fwd.sh), so these figures measure the simulator far more than the driver.
#
# Usage: scripts/bench-wall.sh [--batches "1 2 4 ..."] [--runs R] [--packets N] [--seconds S]
#                              [--tsv FILE] [--bin PATH] [--no-queues]
#
# Batch sweep: `--sim-clock virtual --packets N` (deterministic work: the peer offers one batch
# per port per loop iteration), timed from outside; start-up (pool and ring set-up, the virtual
# link wait) is measured with a 1000-packet run and subtracted. Each of R runs gives
# Mpps = (N - 1000) / (t_run - median t_startup); min / median / max are printed.
# Queues: `--sim-clock wall --seconds S --queues Q --json` for Q = 1 and 2 (one thread per
# queue, the main thread pumps the simulator); Mpps = packets sent by both ports / seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES="1 2 4 8 16 32 64 128 256"
RUNS=5
PACKETS=2000000
SECONDS_Q=2
TSV=""
BIN=""
QUEUES="1 2"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batches) BATCHES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --packets) PACKETS="$2"; shift 2 ;;
    --seconds) SECONDS_Q="$2"; shift 2 ;;
    --tsv) TSV="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;  # an ixgbe-fwd built elsewhere (e.g. an older commit)
    --no-queues) QUEUES=""; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-wall: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "bench-wall: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
(( PACKETS > 1000 )) || die "--packets must be more than 1000"

if [[ -z "$BIN" ]]; then
  TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
  echo "building ixgbe-fwd (release) in $TARGET_DIR ..." >&2
  cargo build -q -j2 --release -p ixgbe-tools --bin ixgbe-fwd
  BIN="$TARGET_DIR/release/ixgbe-fwd"
fi
[[ -x "$BIN" ]] || die "$BIN is not an executable"

# Seconds (with ns resolution) one run takes.
timed() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null || die "run failed: $*"
  t1=$(date +%s%N)
  echo "$(( t1 - t0 ))"
}

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for b in $BATCHES; do
  starts=()
  runs=()
  for _ in $(seq "$RUNS"); do
    starts+=("$(timed "$BIN" sim sim --sim-clock virtual --batch "$b" --packets 1000)")
    runs+=("$(timed "$BIN" sim sim --sim-clock virtual --batch "$b" --packets "$PACKETS")")
  done
  echo "batch $b ${starts[*]} | ${runs[*]}" >>"$OUT"
done
for q in $QUEUES; do
  for _ in $(seq "$RUNS"); do
    json=$("$BIN" sim sim --sim-clock wall --seconds "$SECONDS_Q" --queues "$q" --json | tail -n 1)
    echo "queues $q $json" >>"$OUT"
  done
done

python3 - "$OUT" "$PACKETS" "$TSV" "$(nproc)" <<'PY'
import json, statistics, sys
path, packets, tsv, cpus = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows, queues = [], {}
for line in open(path):
    kind, rest = line.split(" ", 1)
    if kind == "batch":
        b, rest = rest.split(" ", 1)
        starts, runs = rest.split("|")
        start = statistics.median(int(x) for x in starts.split()) / 1e9
        mpps = sorted((packets - 1000) / (int(x) / 1e9 - start) / 1e6 for x in runs.split())
        rows.append((int(b), mpps[0], statistics.median(mpps), mpps[-1], start))
    else:
        q, js = rest.split(" ", 1)
        d = json.loads(js)
        sent = sum(dev["tx_packets"] for dev in d["devices"])
        queues.setdefault(int(q), []).append(sent / d["seconds"] / 1e6)
print(f"ixgbe-fwd sim sim, one core, --sim-clock virtual, {packets} packets, {cpus} CPUs:")
print("batch  Mpps min  median    max   (start-up s)")
for b, lo, med, hi, start in rows:
    print(f"{b:5}  {lo:8.2f} {med:7.2f} {hi:6.2f}   ({start:.3f})")
print("queues (--sim-clock wall): Mpps forwarded, both ports")
for q, v in sorted(queues.items()):
    v.sort()
    print(f"  {q} queue(s): min {v[0]:.2f}  median {statistics.median(v):.2f}  max {v[-1]:.2f}")
if tsv:
    with open(tsv, "w") as f:
        f.write(f"# Mpps of ixgbe-fwd sim sim on this machine ({cpus} CPUs); scripts/bench-wall.sh\n")
        f.write("batch\tmin\tmedian\tmax\n")
        for b, lo, med, hi, _ in rows:
            f.write(f"{b}\t{lo:.3f}\t{med:.3f}\t{hi:.3f}\n")
        for q, v in sorted(queues.items()):
            f.write(f"# queues {q} (wall clock, batch 32): min {v[0]:.3f} median "
                    f"{statistics.median(v):.3f} max {v[-1]:.3f}\n")
    print(f"written: {tsv}")
PY
