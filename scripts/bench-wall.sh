#!/usr/bin/env bash
# Wall-clock rate of `ixgbe-fwd sim sim` on this machine: Mpps by batch size (one core), and
# one against two queues/cores with their ratio. The simulator does about 95 % of the work per packet (see
# scripts/bench-fwd.sh), so these figures measure the simulator far more than the driver.
#
# Usage: scripts/bench-wall.sh [--batches "1 2 4 ..."] [--runs R] [--packets N] [--seconds S]
#                              [--tsv FILE] [--bin PATH] [--no-queues] [--queues-only]
#                              [--peer-gbps G]
#
# Batch sweep: `--sim-clock virtual --packets N` (deterministic work: the peer offers one batch
# per port per loop iteration), timed from outside; start-up (pool and ring set-up, the virtual
# link wait) is measured with a 1000-packet run and subtracted. Each of R runs gives
# Mpps = (N - 1000) / (t_run - median t_startup); min / median / max are printed.
# Queues: `--sim-clock wall --seconds S --queues Q --json` for Q = 1 and 2, interleaved (1, 2,
# 1, 2, ...: the machine's speed drifts), R runs each; Mpps = packets sent by both ports /
# seconds, the peer offering G Gbit/s per port (`--sim-peer-gbps`, default 40: at 10, the
# wire's rate, both ports carry at most 29.8 Mpps of 64-byte frames, which caps the 2-queue
# run below twice the 1-queue one). With 2 queues each worker thread drives its own lane of
# the simulator (one model instance per queue, docs/benchmarks.md "Multi-core scaling"). The ratio is 2 queues over 1
# queue of each consecutive pair; min / median / max of each and of the ratio are printed,
# with the load average before and after (other work on the machine skews both), and the CPU
# time per packet (the process's, from its `[cpu]` line), which other work skews far less.
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES="1 2 4 8 16 32 64 128 256"
RUNS=5
PACKETS=2000000
SECONDS_Q=2
TSV=""
BIN=""
QUEUES="1 2"
PEER_GBPS=40
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batches) BATCHES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --packets) PACKETS="$2"; shift 2 ;;
    --seconds) SECONDS_Q="$2"; shift 2 ;;
    --tsv) TSV="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;  # an ixgbe-fwd built elsewhere (e.g. an older commit)
    --no-queues) QUEUES=""; shift ;;
    --queues-only) BATCHES=""; shift ;;
    --peer-gbps) PEER_GBPS="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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
ERR=$(mktemp)
trap 'rm -f "$OUT" "$ERR"' EXIT
for b in $BATCHES; do
  starts=()
  runs=()
  for _ in $(seq "$RUNS"); do
    starts+=("$(timed "$BIN" sim sim --sim-clock virtual --batch "$b" --packets 1000)")
    runs+=("$(timed "$BIN" sim sim --sim-clock virtual --batch "$b" --packets "$PACKETS")")
  done
  echo "batch $b ${starts[*]} | ${runs[*]}" >>"$OUT"
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ -n "$QUEUES" ]]; then
  for i in $(seq "$RUNS"); do
    for q in $QUEUES; do
      json=$("$BIN" sim sim --sim-clock wall --seconds "$SECONDS_Q" --queues "$q" \
        --sim-peer-gbps "$PEER_GBPS" --json 2>"$ERR" | tail -n 1)
      # The process's CPU time (all threads), from the human summary on stderr.
      cpu=$(sed -n 's/^\[cpu\] \([0-9.]*\) s CPU.*/\1/p' "$ERR" | tail -n 1)
      echo "queues $q $i ${cpu:-0} $json" >>"$OUT"
    done
  done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
[[ -n "$QUEUES" ]] && echo "queues: the peer offers $PEER_GBPS Gbit/s per port (--sim-peer-gbps)"

python3 - "$OUT" "$PACKETS" "$TSV" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$SECONDS_Q" <<'PY'
import json, statistics, sys
path, packets, tsv, cpus = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
load_before, load_after, seconds_q = sys.argv[5], sys.argv[6], sys.argv[7]
rows, queues, pairs, cpu_ns = [], {}, {}, {}
for line in open(path):
    kind, rest = line.split(" ", 1)
    if kind == "batch":
        b, rest = rest.split(" ", 1)
        starts, runs = rest.split("|")
        start = statistics.median(int(x) for x in starts.split()) / 1e9
        mpps = sorted((packets - 1000) / (int(x) / 1e9 - start) / 1e6 for x in runs.split())
        rows.append((int(b), mpps[0], statistics.median(mpps), mpps[-1], start))
    else:
        q, i, cpu, js = rest.split(" ", 3)
        d = json.loads(js)
        sent = sum(dev["tx_packets"] for dev in d["devices"])
        if float(cpu) > 0 and sent > 0:
            cpu_ns.setdefault(int(q), []).append(float(cpu) / sent * 1e9)
        peer = d.get("peer") or {}
        if peer.get("lost", 0) or peer.get("corrupted", 0):
            print(f"warning: queues {q} run {i}: the peer saw {peer}", file=sys.stderr)
        mpps = sent / d["seconds"] / 1e6
        queues.setdefault(int(q), []).append(mpps)
        pairs.setdefault(int(i), {})[int(q)] = mpps
if rows:
    print(f"ixgbe-fwd sim sim, one core, --sim-clock virtual, {packets} packets, {cpus} CPUs:")
    print("batch  Mpps min  median    max   (start-up s)")
for b, lo, med, hi, start in rows:
    print(f"{b:5}  {lo:8.2f} {med:7.2f} {hi:6.2f}   ({start:.3f})")
ratios = sorted(p[2] / p[1] for p in pairs.values() if 1 in p and 2 in p and p[1] > 0)
if queues:
    print(f"queues (--sim-clock wall, {seconds_q} s a run, interleaved, {cpus} CPUs): Mpps "
          f"forwarded, both ports; load average before {load_before}, after {load_after}")
for q, v in sorted(queues.items()):
    v.sort()
    print(f"  {q} queue(s): min {v[0]:.2f}  median {statistics.median(v):.2f}  max {v[-1]:.2f}")
if ratios:
    print(f"  ratio 2/1 (per pair of runs): min {ratios[0]:.2f}  median "
          f"{statistics.median(ratios):.2f}  max {ratios[-1]:.2f}")
# CPU time per packet does not depend on how much CPU other work leaves: if 2 queues cost
# what 1 costs, 2 free CPUs give twice the rate (the ratio is what they would give).
for q, v in sorted(cpu_ns.items()):
    v.sort()
    print(f"  {q} queue(s): CPU ns per packet (all threads): min {v[0]:.1f}  median "
          f"{statistics.median(v):.1f}  max {v[-1]:.1f}")
if 1 in cpu_ns and 2 in cpu_ns:
    print(f"  2 x CPU per packet of 1 queue / of 2 queues (the ratio on 2 free CPUs): "
          f"{2 * statistics.median(cpu_ns[1]) / statistics.median(cpu_ns[2]):.2f}")
if tsv:
    with open(tsv, "w") as f:
        f.write(f"# Mpps of ixgbe-fwd sim sim on this machine ({cpus} CPUs); scripts/bench-wall.sh\n")
        f.write("batch\tmin\tmedian\tmax\n")
        for b, lo, med, hi, _ in rows:
            f.write(f"{b}\t{lo:.3f}\t{med:.3f}\t{hi:.3f}\n")
        for q, v in sorted(queues.items()):
            f.write(f"# queues {q} (wall clock, batch 32): min {v[0]:.3f} median "
                    f"{statistics.median(v):.3f} max {v[-1]:.3f}\n")
        if ratios:
            f.write(f"# ratio 2/1 queues: min {ratios[0]:.3f} median "
                    f"{statistics.median(ratios):.3f} max {ratios[-1]:.3f}; load average "
                    f"{load_before} before, {load_after} after\n")
    print(f"written: {tsv}")
PY
