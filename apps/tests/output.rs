//! Output of the programs: JSON Lines, the last interval, counters on one basis, the pcap
//! stream on stdout and its errors.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{run, run_json_lines};
use ixgbe_tools::frame::parse_udp_frame;
use ixgbe_tools::pcap::Reader;
use ixgbe_tools::sim::mix_frame;
use ixgbe_tools::sim_mac;
use serde_json::Value;

const FWD: &str = env!("CARGO_BIN_EXE_ixgbe-fwd");
const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");
const PCAP: &str = env!("CARGO_BIN_EXE_ixgbe-pcap");

/// Every line of stdout parsed as JSON (the test fails on any line that is not).
fn json_lines(bin: &str, args: &[&str]) -> Vec<Value> {
    run_json_lines(bin, args).0
}

#[test]
fn json_lines_one_object_per_second_then_the_summary() {
    // A low rate keeps the packet count (and the debug build's run time) low.
    let lines = json_lines(
        PKTGEN,
        &[
            "sim",
            "--rate",
            "20Mbit",
            "--seconds",
            "2",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    assert_eq!(lines.len(), 3, "two intervals and the summary: {lines:?}");
    for (k, v) in lines.iter().enumerate() {
        assert_eq!(v["schema"], 1);
        assert_eq!(v["program"], "ixgbe-pktgen");
        let want = if k < 2 { "interval" } else { "summary" };
        assert_eq!(v["type"], want, "{v}");
        let d = &v["devices"][0];
        for key in [
            "rx_packets",
            "rx_bytes",
            "tx_packets",
            "tx_bytes",
            "rx_missed",
            "rx_dropped",
            "rx_crc_errors",
        ] {
            assert!(d[key].is_u64(), "{key} in {v}");
        }
        let mbit = d["tx_mbit_s"].as_f64().unwrap();
        assert!((mbit - 20.0).abs() < 0.2, "{v}");
        assert!(v["app"]["generated"].is_u64(), "{v}");
    }
    let t: Vec<f64> = lines[..2]
        .iter()
        .map(|v| v["t"].as_f64().unwrap())
        .collect();
    assert!(
        (t[0] - 1.0).abs() < 0.01 && (t[1] - 2.0).abs() < 0.01,
        "{t:?}"
    );
    let total = lines[2]["devices"][0]["tx_packets"].as_u64().unwrap();
    assert_eq!(
        lines[1]["devices"][0]["tx_packets"].as_u64().unwrap(),
        total
    );
    assert_eq!(lines[2]["peer"]["received"].as_u64().unwrap(), total);
}

#[test]
fn seconds_n_prints_n_interval_lines() {
    let out = run(
        PKTGEN,
        &[
            "sim",
            "--rate",
            "10000",
            "--seconds",
            "3",
            "--sim-clock",
            "virtual",
        ],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rates = stdout.lines().filter(|l| l.contains("TX:")).count();
    assert_eq!(rates, 3, "{stdout}");
}

#[test]
fn forwarder_rx_and_tx_bytes_agree() {
    let lines = json_lines(
        FWD,
        &[
            "sim",
            "sim",
            "--packets",
            "20000",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    let v = lines.last().unwrap();
    let d = v["devices"].as_array().unwrap();
    // What sim0 sent, sim1 received and vice versa (both count 64 bytes per frame); a port
    // may hold a batch received but not forwarded yet.
    for (a, b) in [(0, 1), (1, 0)] {
        let tx = d[a]["tx_bytes"].as_u64().unwrap();
        let rx = d[b]["rx_bytes"].as_u64().unwrap();
        let rxp = d[b]["rx_packets"].as_u64().unwrap();
        assert_eq!(rx, rxp * 64, "{v}");
        assert!(rx >= tx && rx - tx <= 64 * 64, "{v}");
    }
}

#[test]
fn pcap_streams_to_stdout_with_human_lines_on_stderr() {
    let out = run(
        PCAP,
        &["sim", "-", "--count", "300", "--sim-clock", "virtual"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !std::path::Path::new("-").exists(),
        "a file named - was made"
    );
    assert!(
        stderr.contains("captured 300 frames, "),
        "no capture line on stderr: {stderr}"
    );
    let mut reader = Reader::new(&out.stdout[..]).unwrap();
    let mut n = 0u64;
    let mut bytes = 0;
    while let Some(r) = reader.next_record().unwrap() {
        assert_eq!(r.data, mix_frame(n, sim_mac(0)), "frame {n}");
        bytes += r.data.len();
        n += 1;
    }
    assert_eq!(n, 300);
    assert!(
        stderr.contains(&format!("captured 300 frames, {bytes} bytes")),
        "{stderr}"
    );
}

#[test]
fn pcap_snaplen_and_nanoseconds() {
    let out = run(
        PCAP,
        &[
            "sim",
            "-",
            "--count",
            "40",
            "--snaplen",
            "100",
            "--nanoseconds",
            "--sim-clock",
            "virtual",
        ],
    );
    assert!(out.status.success());
    let mut reader = Reader::new(&out.stdout[..]).unwrap();
    assert!(reader.nanos);
    assert_eq!(reader.snaplen, 100);
    let mut n = 0u64;
    let mut cut = 0;
    while let Some(r) = reader.next_record().unwrap() {
        let want = mix_frame(n, sim_mac(0));
        assert_eq!(r.orig_len as usize, want.len());
        assert_eq!(r.data, want[..want.len().min(100)]);
        if want.len() > 100 {
            cut += 1;
        }
        n += 1;
    }
    assert_eq!(n, 40);
    assert!(cut > 10, "the mix has long frames: {cut}");
}

#[test]
fn pcap_disk_full_reports_the_cause() {
    let out = run(PCAP, &["sim", "/dev/full", "--sim-clock", "virtual"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing /dev/full: No space left on device"),
        "{stderr}"
    );
    // The device was stopped and the totals printed all the same.
    assert!(stderr.contains("total:") || String::from_utf8_lossy(&out.stdout).contains("total:"));
}

#[test]
fn pcap_stream_to_a_closed_pipe_ends_the_run() {
    let mut child = Command::new(PCAP)
        .args(["sim", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the header and a few records, then go away like `head -c`.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("captured "), "{stderr}");
    assert!(stderr.contains("total:"), "{stderr}");
    let mut reader = Reader::new(&first[..]).unwrap();
    let r = reader.next_record().unwrap().unwrap();
    assert_eq!(parse_udp_frame(&r.data).unwrap().seq, 0);
}

#[test]
fn pcap_json_with_stdout_stream_is_refused() {
    let out = run(PCAP, &["sim", "-", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json needs stdout"));
}
