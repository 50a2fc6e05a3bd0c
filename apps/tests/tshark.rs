//! The pcap stream and the generator's frames read by an independent decoder: tshark, with
//! IPv4 and UDP checksum validation on. Needs tshark (`scripts/tshark-check.sh` installs it and
//! runs these tests; CI calls that script).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");
const PCAP: &str = env!("CARGO_BIN_EXE_ixgbe-pcap");

/// tshark arguments: validate both checksums, print frame number and both checksum statuses
/// (Wireshark's status values: 0 bad, 1 good, 2 unverified).
const FIELDS: &[&str] = &[
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-T",
    "fields",
    "-e",
    "frame.number",
    "-e",
    "ip.checksum.status",
    "-e",
    "udp.checksum.status",
];

/// Checks tshark's field lines: `n` frames, every checksum good.
fn all_good(lines: &[String], n: usize) {
    assert_eq!(lines.len(), n, "{lines:?}");
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line, &format!("{}\t1\t1", k + 1), "frame {}", k + 1);
    }
}

/// `ixgbe-pcap sim - | tshark -i -`: tshark reads the stream live (flushed per batch), stops
/// after 200 frames, and the capture then ends by itself on the closed pipe.
#[test]
#[ignore = "needs tshark"]
fn tshark_reads_the_stream_live_with_valid_checksums() {
    let mut pcap = Command::new(PCAP)
        .args(["sim", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tshark = Command::new("tshark")
        .args(["-i", "-", "-c", "200"])
        .args(FIELDS)
        .stdin(pcap.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark not found: run scripts/tshark-check.sh");
    let mut tshark = tshark;
    let lines: Vec<String> = BufReader::new(tshark.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(tshark.wait().unwrap().success());
    all_good(&lines, 200);
    let out = pcap.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("captured "), "{stderr}");
}

/// The generator's frames (flows, IMIX) as they reached the simulated wire, with checksums
/// computed by the generator and by the (simulated) device (`--offload-checksums`).
#[test]
#[ignore = "needs tshark"]
fn tshark_validates_the_generators_frames() {
    for offload in [false, true] {
        validate_generated(offload);
    }
}

fn validate_generated(offload: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.pcap");
    let out = Command::new(PKTGEN)
        .args(["sim", "--imix", "--flows", "5", "--packets", "300"])
        .args(offload.then_some("--offload-checksums"))
        .args(["--sim-clock", "virtual", "--sim-peer-pcap"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(FIELDS)
        .stderr(Stdio::null())
        .output()
        .expect("tshark not found: run scripts/tshark-check.sh");
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    all_good(&lines, 300);
}
