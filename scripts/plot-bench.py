#!/usr/bin/env python3
"""Plots the batch-size sweep: instructions per forwarded packet (scripts/bench-fwd.sh) and Mpps
(scripts/bench-wall.sh) against batch size, beside the published ixy (C) and ixy.rs figures.

Usage: scripts/plot-bench.py [--dir docs/bench] [--out docs/bench/batch-sweep.png]

Reads DIR/instructions.tsv, DIR/wall.tsv and, if present, DIR/instructions-baseline.tsv and
DIR/wall-baseline.tsv (the same measurements of an older build).
Needs matplotlib: installs it with pip when it is missing, or says how to.
"""
import argparse
import csv
import os
import subprocess
import sys

# Published figures: ixy-languages README (github.com/ixy-languages/ixy-languages) (Xeon E3-1230 v2 at
# 3.3 GHz, 64-byte packets, bidirectional forwarding, one core) and its
# Rust-vs-C-performance.md (batch 8 and 32, measured at 1.6 GHz).
PUBLISHED_MPPS = {
    "ixy (C)": {1: 8.3, 2: 14.3, 4: 20.9, 8: 26.0, 16: 27.4, 32: 27.4, 256: 27.4},
    "ixy.rs": {1: 5.9, 2: 10.6, 4: 16.7, 8: 23.4, 16: 26.4, 32: 27.6, 256: 27.4},
}
PUBLISHED_INSTRUCTIONS = {"ixy (C)": {8: 139, 32: 127}, "ixy.rs": {8: 232, 32: 209}}
LINE_RATE_MPPS = 29.76
TARGET = 100


def need_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot-bench: matplotlib is missing; installing it with pip ...", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"])
        if r.returncode != 0:
            sys.exit("plot-bench: could not install matplotlib: run "
                     "`python3 -m pip install matplotlib` (or apt-get install python3-matplotlib)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_tsv(path):
    with open(path) as f:
        lines = [line for line in f if not line.startswith("#")]
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(lines, delimiter="\t")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="docs/bench")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or os.path.join(args.dir, "batch-sweep.png")
    instr_path = os.path.join(args.dir, "instructions.tsv")
    wall_path = os.path.join(args.dir, "wall.tsv")
    base_path = os.path.join(args.dir, "instructions-baseline.tsv")
    for p in (instr_path, wall_path):
        if not os.path.exists(p):
            sys.exit(f"plot-bench: {p} not found: run scripts/bench-fwd.sh --tsv {instr_path} "
                     f"and scripts/bench-wall.sh --tsv {wall_path} first")
    plt = need_matplotlib()
    instr = read_tsv(instr_path)
    wall = read_tsv(wall_path)
    base = read_tsv(base_path) if os.path.exists(base_path) else None
    wall_base_path = os.path.join(args.dir, "wall-baseline.tsv")
    wall_base = read_tsv(wall_base_path) if os.path.exists(wall_base_path) else None

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    b = [r["batch"] for r in instr]
    ax1.plot(b, [r["ours"] for r in instr], "o-", color="tab:green", lw=2.2,
             label="ours: driver + forwarder")
    for key, name, color in (("rx", "ours: RX", "tab:olive"), ("tx", "ours: TX", "tab:cyan"),
                             ("mempool", "ours: mempool", "tab:purple"),
                             ("fwd", "ours: forwarder loop", "tab:brown")):
        ax1.plot(b, [r[key] for r in instr], ".-", color=color, alpha=0.7, lw=1, ms=4,
                 label=name)
    if base:
        ax1.plot([r["batch"] for r in base], [r["ours"] for r in base], "o--", color="tab:gray",
                 label="ours before optimisation")
    for (name, pts), color in zip(PUBLISHED_INSTRUCTIONS.items(), ("tab:blue", "tab:orange")):
        ax1.plot(list(pts), list(pts.values()), "s", ms=9, color=color,
                 label=f"{name} (published)")
    ax1.axhline(TARGET, color="tab:red", lw=0.8, ls="--", label=f"target: {TARGET}")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(b, [str(int(x)) for x in b])
    ax1.set_ylim(0, max(r["ours"] for r in (base or instr)) * 1.05)
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("instructions per forwarded packet")
    ax1.set_title("Instructions per packet (callgrind, simulator excluded)")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)

    wb = [r["batch"] for r in wall]
    med = [r["median"] for r in wall]
    err = [[m - r["min"] for m, r in zip(med, wall)], [r["max"] - m for m, r in zip(med, wall)]]
    ax2.errorbar(wb, med, yerr=err, fmt="o-", color="tab:green", capsize=3,
                 label="ours, in the simulator (this machine; simulator-bound)")
    if wall_base:
        ax2.plot([r["batch"] for r in wall_base], [r["median"] for r in wall_base], "o--",
                 color="tab:gray", label="ours before optimisation, in the simulator (median)")
    for (name, pts), color in zip(PUBLISHED_MPPS.items(), ("tab:blue", "tab:orange")):
        ax2.plot(list(pts), list(pts.values()), "s--", color=color,
                 label=f"{name}, real 82599 at 3.3 GHz (published)")
    ax2.axhline(LINE_RATE_MPPS, color="gray", lw=0.8, ls=":", label="2 x 10 GbE line rate")
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(wb, [str(int(x)) for x in wb])
    ax2.set_ylim(0, 32)
    ax2.set_xlabel("batch size")
    ax2.set_ylabel("Mpps (both directions)")
    ax2.set_title("Forwarding rate, one core")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="center right")
    fig.suptitle("ixgbe-fwd, 64-byte packets, bidirectional forwarding")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
