#!/usr/bin/env bash
# Instructions per forwarded packet of `ixgbe-fwd sim sim`, measured with valgrind's callgrind,
# split into the driver's parts (RX, TX, mempool), the forwarder, and the simulator.
#
# Usage: scripts/bench-fwd.sh [--batches "1 2 4 ..."] [--n1 N] [--n2 N] [--tsv FILE] [--keep DIR]
#                             [--cache]
#
# Prints a readable line and a machine-readable one per batch size:
#   batch=32 instructions/packet=101.4 rx=41.8 tx=29.8 mempool=19.3 fwd=10.4 sim=2329.1
# With --cache, callgrind also simulates the caches (--cache-sim=yes: its L1 and last-level
# model of the host, about twice as slow) and each line adds L1 and last-level misses per packet
# (instruction plus data, reads plus writes) in our code and in the simulator. The simulator
# runs in the same process, so its work evicts our lines too: our miss counts are an upper
# bound for a real NIC, whose descriptor and packet writes land in the host's caches (DDIO).
#
# Method (docs/benchmarks.md has the long version):
# - Build `ixgbe-fwd` in release (the workspace profile keeps line tables, so inlined code keeps
#   its source location) and run `ixgbe-fwd sim sim --sim-clock virtual --packets N --batch B`
#   under `valgrind --tool=callgrind --dump-instr=yes --collect-jumps=no` twice, with N1 and N2
#   forwarded packets (both directions together). With a virtual clock the run is
#   deterministic, so start-up (pool and ring set-up, link wait) and tear-down cost exactly the
#   same in both runs: every figure below is (cost at N2 - cost at N1) / (N2 - N1).
# - Simulator: the inclusive cost of every call from our code into a `platform_mock` function
#   (SimPlatform::read32/write32/delay, Sim::advance, ...; they are #[inline(never)]).
# - Ours: the self cost of every instruction in a function of ours (symbols of ixgbe_core, ixgbe_tools
#   and the ixgbe-fwd binary) plus calls from our code into libraries (none per packet so far).
#   Each instruction is attributed by its chain of inlined frames (llvm-symbolizer or GNU
#   addr2line -i), innermost first: the first frame in ixgbe-core/src/mempool.rs, rx.rs or
#   tx.rs decides mempool, RX or TX; descriptors.rs, regs.rs, platform.rs and library code
#   (core, heapless, spin) count for whoever inlined them; otherwise it is the forwarder's
#   (apps/: the loop, the byte touched per packet, the pacer's arithmetic).
# - Other: total minus ours minus simulator (work outside both, e.g. libc called by neither;
#   about zero per packet).
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES="1 2 4 8 16 32 64 128 256"
N1=20000
N2=100000
TSV=""
KEEP=""
CACHE=no
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batches) BATCHES="$2"; shift 2 ;;
    --n1) N1="$2"; shift 2 ;;
    --n2) N2="$2"; shift 2 ;;
    --tsv) TSV="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    --cache) CACHE=yes; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "bench-fwd: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
(( N2 > N1 )) || { echo "bench-fwd: --n2 must be larger than --n1" >&2; exit 2; }

die() { echo "bench-fwd: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
if command -v llvm-symbolizer >/dev/null; then
  SYMBOLIZER=llvm-symbolizer
elif command -v addr2line >/dev/null; then
  SYMBOLIZER=addr2line
else
  die "need llvm-symbolizer (apt-get install llvm) or addr2line (apt-get install binutils)"
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "building ixgbe-fwd (release, line tables) in $TARGET_DIR ..." >&2
cargo build -q -j2 --release -p ixgbe-tools --bin ixgbe-fwd
BIN="$TARGET_DIR/release/ixgbe-fwd"
[[ -x "$BIN" ]] || die "$BIN was not built"

WORK="${KEEP:-$(mktemp -d)}"
mkdir -p "$WORK"
[[ -n "$KEEP" ]] || trap 'rm -rf "$WORK"' EXIT

run_cg() { # batch packets
  # With --keep DIR, a profile newer than the binary is reused.
  if [[ -n "$KEEP" && "$WORK/cg.b$1.n$2" -nt "$BIN" && -s "$WORK/out.b$1.n$2" ]] &&
    { [[ $CACHE == no ]] || grep -q '^events:.*D1mr' "$WORK/cg.b$1.n$2"; }; then return 0; fi
  valgrind --tool=callgrind --dump-instr=yes --collect-jumps=no --cache-sim="$CACHE" \
    --callgrind-out-file="$WORK/cg.b$1.n$2" \
    "$BIN" sim sim --sim-clock virtual --batch "$1" --packets "$2" \
    >"$WORK/out.b$1.n$2" 2>"$WORK/err.b$1.n$2" \
    || { cat "$WORK/err.b$1.n$2" >&2; die "callgrind run (batch $1, $2 packets) failed"; }
  grep -q "received $2, corrupted 0, lost 0" "$WORK/out.b$1.n$2" \
    || { cat "$WORK/out.b$1.n$2" >&2; die "batch $1: the peer did not get $2 intact packets"; }
}

for b in $BATCHES; do
  echo "callgrind: batch $b, $N1 and $N2 packets ..." >&2
  run_cg "$b" "$N1" &
  p1=$!
  run_cg "$b" "$N2"
  wait "$p1"
done

read -ra BATCH_LIST <<<"$BATCHES"
python3 - "$BIN" "$WORK" "$N1" "$N2" "$SYMBOLIZER" "$TSV" "${BATCH_LIST[@]}" <<'PY'
import collections, json, re, subprocess, sys

binary, work, n1, n2, symbolizer, tsv = sys.argv[1:7]
n1, n2 = int(n1), int(n2)
batches = [int(b) for b in sys.argv[7:]]

def parse(path):
    """Self cost per (function, instruction address) and call cost per (caller, call-site
    address, callee) of a callgrind file written with --dump-instr=yes."""
    names = {"fl": {}, "fn": {}, "ob": {}}
    table_of = {"fl": "fl", "fi": "fl", "fe": "fl", "cfl": "fl", "cfi": "fl",
                "fn": "fn", "cfn": "fn", "ob": "ob", "cob": "ob"}
    global events
    selfc, calls = collections.defaultdict(Cost), collections.defaultdict(Cost)
    fn = cfn = None
    in_call = False
    positions, last, total = ["line"], [0], None
    name_re = re.compile(r"(cfn|cfl|cfi|cob|fn|fl|fi|fe|ob)=\((\d+)\)(?: (.*))?$")
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                toks = line.split()
                for i in range(len(positions)):
                    t = toks[i]
                    if t == "*":
                        pass
                    elif t[0] in "+-":
                        last[i] += int(t, 0)
                    else:
                        last[i] = int(t, 0)
                cost = Cost([int(t) for t in toks[len(positions):]])
                addr = last[0] if positions[0] == "instr" else 0
                if in_call:
                    calls[(fn, addr, cfn)] += cost
                    in_call = False
                else:
                    selfc[(fn, addr)] += cost
                continue
            if line.startswith("positions:"):
                positions = line.split()[1:]
                last = [0] * len(positions)
                if positions[0] != "instr":
                    sys.exit("bench-fwd: callgrind file without instruction addresses")
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = Cost([int(t) for t in line.split()[1:]])
            else:
                m = name_re.match(line)
                if m:
                    key, idx, name = m.groups()
                    table = names[table_of[key]]
                    if name is not None:
                        table[idx] = name
                    if key == "fn":
                        fn = table[idx]
                    elif key == "cfn":
                        cfn = table[idx]
    return selfc, calls, total

events = ["Ir"]

class Cost(list):
    """One count per callgrind event (Ir first; with --cache-sim also I1mr, ILmr, Dr, D1mr,
    DLmr, Dw, D1mw, DLmw), added up element-wise."""
    def __iadd__(self, other):
        if len(self) < len(other):
            self.extend([0] * (len(other) - len(self)))
        for i, v in enumerate(other):
            self[i] += v
        return self

    def get(self, name):
        i = events.index(name) if name in events else -1
        return self[i] if 0 <= i < len(self) else 0

    def misses(self, level):
        names = ("I1mr", "D1mr", "D1mw") if level == "L1" else ("ILmr", "DLmr", "DLmw")
        return sum(self.get(n) for n in names)

def is_sim(fn):
    return fn.startswith("platform_mock::") or fn.startswith("<platform_mock::")

OURS = ("ixgbe_core::", "ixgbe_tools::", "ixgbe_fwd::", "<ixgbe_core::", "<ixgbe_tools::", "<ixgbe_fwd::")
def is_ours(fn):
    return fn.startswith(OURS) and not is_sim(fn)

def symbolize(addrs):
    """Inline chain (innermost first) of source files for each address."""
    addrs = sorted(addrs)
    if not addrs:
        return {}
    text = "\n".join(hex(a) for a in addrs) + "\n"
    chains = {}
    if symbolizer == "llvm-symbolizer":
        out = subprocess.run(["llvm-symbolizer", "--obj=" + binary, "--inlines",
                              "--output-style=JSON"], input=text, capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            chains[int(rec["Address"], 16)] = [s["FileName"] for s in rec["Symbol"]]
    else:
        out = subprocess.run(["addr2line", "-e", binary, "-i", "-a"], input=text,
                             capture_output=True, text=True, check=True).stdout
        cur = None
        for line in out.splitlines():
            if line.startswith("0x"):
                cur = int(line, 16)
                chains[cur] = []
            elif cur is not None:
                chains[cur].append(line.rsplit(":", 1)[0])
    return chains

def classify(chain):
    if any("/platform-mock/" in f for f in chain):
        return "sim"
    for f in chain:
        if f.endswith("ixgbe-core/src/mempool.rs"):
            return "mempool"
        if f.endswith("ixgbe-core/src/rx.rs"):
            return "rx"
        if f.endswith("ixgbe-core/src/tx.rs"):
            return "tx"
        if "/apps/" in f:
            return "fwd"
    return "fwd"  # our function, only library or descriptor code on the chain

def nm_addresses():
    out = subprocess.run(["nm", "-C", binary], capture_output=True, text=True).stdout
    syms = collections.defaultdict(set)
    for line in out.splitlines():
        m = re.match(r"([0-9a-f]+) \w (.*)$", line)
        if m:
            syms[m.group(2)].add(int(m.group(1), 16))
    return syms

def measure(batch):
    runs = {}
    for n in (n1, n2):
        runs[n] = parse(f"{work}/cg.b{batch}.n{n}")
    # Our functions' instructions, symbolized once.
    addrs = set()
    for selfc, calls, _ in runs.values():
        addrs |= {a for (fn, a) in selfc if is_ours(fn)}
        addrs |= {a for (fn, a, _) in calls if is_ours(fn)}
    chains = symbolize(addrs)
    cats = {}
    for n, (selfc, calls, total) in runs.items():
        c = collections.defaultdict(Cost)
        c["total"] += total
        for (fn, a), cost in selfc.items():
            if is_ours(fn):
                c[classify(chains.get(a, []))] += cost
        for (fn, a, callee), cost in calls.items():
            if not is_ours(fn) or is_ours(callee):
                continue  # our callees' own cost is counted as their self cost
            if is_sim(callee):
                c["sim"] += cost
            else:
                k = classify(chains.get(a, []))
                c[k] += cost
                c["lib:" + callee] += cost
        runs[n] = (selfc, calls, total, c)
    # Per packet: instructions (d) and, with --cache, L1 and last-level misses (m[level]).
    def per_packet(value):
        return {k: (value(runs[n2][3][k]) - value(runs[n1][3][k])) / (n2 - n1)
                for k in set(runs[n1][3]) | set(runs[n2][3])}
    def with_sums(d):
        d["ours"] = d.get("rx", 0) + d.get("tx", 0) + d.get("mempool", 0) + d.get("fwd", 0)
        d["other"] = d["total"] - d["ours"] - d.get("sim", 0)
        return d
    d = with_sums(per_packet(lambda c: c.get("Ir")))
    m = {lv: with_sums(per_packet(lambda c, lv=lv: c.misses(lv))) for lv in ("L1", "LL")}
    return d, m

# Check that callgrind's addresses are the binary's own (no load offset): the lowest executed
# address of a function of ours is its entry point.
syms = nm_addresses()
selfc, _, _ = parse(f"{work}/cg.b{batches[0]}.n{n1}")
lows = collections.defaultdict(lambda: 1 << 64)
for (fn, a), cost in selfc.items():
    if is_ours(fn):
        lows[fn] = min(lows[fn], a)
bad = [fn for fn, a in lows.items() if fn in syms and a not in syms[fn]]
if bad:
    sys.exit(f"bench-fwd: callgrind addresses do not match the symbol table ({bad[0]})")

cols = ["batch", "total", "ours", "rx", "tx", "mempool", "fwd", "sim", "other"]
rows = []
for b in batches:
    d, m = measure(b)
    rows.append([b] + [d.get(k, 0.0) for k in cols[1:]])
    print(f"batch {b:3}: instructions/packet: {d['ours']:.1f}  "
          f"(RX {d.get('rx', 0):.1f}, TX {d.get('tx', 0):.1f}, mempool {d.get('mempool', 0):.1f}, "
          f"forwarder {d.get('fwd', 0):.1f})  simulator {d.get('sim', 0):.1f}  "
          f"other {d['other']:.1f}  total {d['total']:.1f}")
    libs = {k[4:]: v for k, v in d.items() if k.startswith("lib:") and abs(v) >= 0.5}
    for name, v in sorted(libs.items(), key=lambda kv: -kv[1]):
        print(f"           (of which in library calls from our code: {name}: {v:.1f})")
    cache = ""
    if "D1mr" in events:
        print(f"           misses/packet: L1 {m['L1']['ours']:.2f} ours, {m['L1'].get('sim', 0):.1f} "
              f"simulator; last level {m['LL']['ours']:.3f} ours, {m['LL'].get('sim', 0):.2f} simulator")
        cache = (f" l1_misses/packet={m['L1']['ours']:.3f} ll_misses/packet={m['LL']['ours']:.4f}"
                 f" sim_l1_misses/packet={m['L1'].get('sim', 0):.2f}"
                 f" sim_ll_misses/packet={m['LL'].get('sim', 0):.3f}")
    print(f"batch={b} instructions/packet={d['ours']:.1f} rx={d.get('rx', 0):.1f} "
          f"tx={d.get('tx', 0):.1f} mempool={d.get('mempool', 0):.1f} fwd={d.get('fwd', 0):.1f} "
          f"sim={d.get('sim', 0):.1f}{cache}")
if tsv:
    with open(tsv, "w") as f:
        f.write("# instructions per forwarded packet, ixgbe-fwd sim sim --sim-clock virtual; "
                f"callgrind, packets {n2} - {n1}; see docs/benchmarks.md\n")
        f.write("\t".join(cols) + "\n")
        for r in rows:
            f.write("\t".join([str(r[0])] + [f"{v:.2f}" for v in r[1:]]) + "\n")
    print(f"written: {tsv}")
PY
