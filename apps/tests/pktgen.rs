//! ixgbe-pktgen on the simulator: rates in virtual time, flows, sizes, replay, a closed pipe.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, run_json_lines};
use ixgbe_tools::pcap::Reader;
use ixgbe_tools::sim::mix_frame;
use ixgbe_tools::sim_mac;
use serde_json::Value;

const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");
const PCAP: &str = env!("CARGO_BIN_EXE_ixgbe-pcap");

/// Runs pktgen with `args` and returns (every JSON line of stdout, stderr).
fn pktgen_json(args: &[&str]) -> (Vec<Value>, String) {
    run_json_lines(PKTGEN, args)
}

fn f(v: &Value, key: &str) -> f64 {
    v["devices"][0][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

/// `--rate` in packets/s and in bit/s: every whole interval within 1 % of the rate in virtual
/// time, nothing lost or corrupted.
#[test]
fn rate_is_kept_within_one_percent_in_virtual_time() {
    for (rate, key, want) in [
        ("20000", "tx_mpps", 0.02),
        ("0.5Mpps", "tx_mpps", 0.5),
        ("2Gbit", "tx_mbit_s", 2000.0),
        ("300Mbit/s", "tx_mbit_s", 300.0),
    ] {
        let size = if key == "tx_mbit_s" { "1514" } else { "60" };
        let (lines, stderr) = pktgen_json(&[
            "sim",
            "--rate",
            rate,
            "--size",
            size,
            "--seconds",
            "3",
            "--sim-clock",
            "virtual",
            "--json",
        ]);
        assert_eq!(lines.len(), 4, "{rate}: 3 intervals and the summary");
        for v in &lines {
            let got = f(v, key);
            assert!(
                (got - want).abs() <= want * 0.01,
                "{rate}: {key} = {got} in {v}"
            );
        }
        let summary = &lines[3];
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["peer"]["corrupted"], 0, "{stderr}");
        assert_eq!(summary["peer"]["lost"], 0, "{stderr}");
        assert_eq!(
            summary["peer"]["received"],
            summary["devices"][0]["tx_packets"]
        );
    }
}

/// `--flows` with ranges, a size sweep and IMIX: the peer sees every flow numbered without gaps
/// (valid IPv4 and UDP checksums) and the sizes in the asked proportions.
#[test]
fn flows_and_sizes_as_asked() {
    let (lines, stderr) = pktgen_json(&[
        "sim",
        "--flows",
        "8",
        "--src-ip",
        "10.0.0.1-10.0.0.4",
        "--dst-port",
        "5000-5001",
        "--size",
        "60-1514:200",
        "--packets",
        "1800",
        "--sim-clock",
        "virtual",
        "--json",
    ]);
    let v = lines.last().unwrap();
    assert_eq!(v["peer"]["received"], 1800, "{v}");
    assert_eq!(v["peer"]["corrupted"], 0, "{v}");
    assert_eq!(v["peer"]["lost"], 0, "{v}");
    let sizes = "60: 200, 260: 200, 460: 200, 660: 200, 860: 200, 1060: 200, 1260: 200, \
                 1460: 200, 1514: 200";
    assert!(
        stderr.contains(&format!("[peer] 8 flows; frames by size: {sizes}")),
        "{stderr}"
    );
    let (lines, stderr) = pktgen_json(&[
        "sim",
        "--imix",
        "--queues",
        "2",
        "--flows",
        "4",
        "--packets",
        "1200",
        "--seconds",
        "60",
        "--json",
    ]);
    let v = lines.last().unwrap();
    assert_eq!(v["peer"]["received"], 1200, "{v}");
    assert_eq!(v["peer"]["corrupted"], 0, "{v}");
    assert_eq!(v["peer"]["lost"], 0, "{v}");
    // Each queue cycles through the IMIX; the total is 7:4:1 within one cycle per queue.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("[peer] 4 flows; frames by size:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let list = line.split_once("size: ").unwrap().1;
    let count = |size: &str| -> i64 {
        list.split(", ")
            .find_map(|part| {
                let (s, n) = part.split_once(": ")?;
                (s == size).then(|| n.parse().unwrap())
            })
            .unwrap_or(0)
    };
    for (size, want) in [("60", 700), ("590", 400), ("1514", 100)] {
        assert!((count(size) - want).abs() <= 24, "{size}: {line}");
    }
}

/// `--pcap FILE --loop N`: the wire carries the file's frames, byte for byte, N times.
#[test]
fn pcap_replay_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let output = dir.path().join("out.pcap");
    let out = run(
        PCAP,
        &[
            "sim",
            input.to_str().unwrap(),
            "--count",
            "50",
            "--sim-clock",
            "virtual",
        ],
    );
    assert!(out.status.success());
    let (lines, _) = pktgen_json(&[
        "sim",
        "--pcap",
        input.to_str().unwrap(),
        "--loop",
        "3",
        "--sim-peer-pcap",
        output.to_str().unwrap(),
        "--sim-clock",
        "virtual",
        "--json",
    ]);
    let v = lines.last().unwrap();
    assert_eq!(v["devices"][0]["tx_packets"], 150, "{v}");
    let mut reader = Reader::new(std::fs::File::open(&output).unwrap()).unwrap();
    let mut n = 0u64;
    while let Some(r) = reader.next_record().unwrap() {
        assert_eq!(r.data, mix_frame(n % 50, sim_mac(0)), "frame {n}");
        n += 1;
    }
    assert_eq!(n, 150);
    // Without the recording the peer only counts: replayed frames are not the generator's.
    let (lines, _) = pktgen_json(&[
        "sim",
        "--pcap",
        input.to_str().unwrap(),
        "--sim-clock",
        "virtual",
        "--json",
    ]);
    let v = lines.last().unwrap();
    assert_eq!(v["peer"]["received"], 50, "{v}");
    assert_eq!(v["peer"]["corrupted"], 0, "{v}");
}

/// `ixgbe-pktgen sim | head -2`: the run ends by itself once the reader is gone, with the
/// summary on stderr.
#[test]
fn closed_pipe_after_two_lines_ends_the_run() {
    let mut child = Command::new(PKTGEN)
        .args(["sim"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        assert!(lines.next().unwrap().unwrap().contains("TX:"));
    }
    drop(lines);
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("total:"), "{stderr}");
}

/// `--offload-checksums`: the driver leaves 0 and the pseudo-header sum in the checksum fields,
/// the (simulated) device fills them in, and the peer, which checks both checksums of every
/// frame, finds none wrong (one size, and a sweep of sizes and flows).
#[test]
fn offloaded_checksums_reach_the_peer_right() {
    for extra in [
        &["--size", "60"][..],
        &["--size", "60-1514:97", "--flows", "7"][..],
    ] {
        let mut args = vec![
            "sim",
            "--packets",
            "2000",
            "--sim-clock",
            "virtual",
            "--json",
        ];
        args.extend_from_slice(extra);
        args.push("--offload-checksums");
        let (lines, stderr) = pktgen_json(&args);
        let summary = lines.last().expect("a summary");
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["peer"]["received"], 2000, "{stderr}");
        assert_eq!(summary["peer"]["corrupted"], 0, "{extra:?}: {stderr}");
        assert_eq!(summary["peer"]["lost"], 0, "{stderr}");
    }
}
