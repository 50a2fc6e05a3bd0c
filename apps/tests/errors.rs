//! Bad arguments and missing devices end with one clear sentence and a non-zero exit, never a
//! panic. None of these touch a real device: the PCI addresses used do not exist.

mod common;

use common::run;

const FWD: &str = env!("CARGO_BIN_EXE_ixgbe-fwd");
const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");
const PCAP: &str = env!("CARGO_BIN_EXE_ixgbe-pcap");

/// Runs and checks: failed with `code`, stderr mentions `needle`, no panic, nothing on stdout.
fn fails(bin: &str, args: &[&str], code: i32, needle: &str) -> String {
    let out = run(bin, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr {stderr}");
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: expected {needle:?} in stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    stderr
}

#[test]
fn bad_pci_address_is_a_usage_error() {
    fails(PKTGEN, &["0000:zz:00.0"], 2, "PCI address");
    fails(PKTGEN, &["03:20.0"], 2, "device must be below");
    fails(FWD, &["sim", "eth0"], 2, "PCI address");
}

#[test]
fn missing_device_is_one_clear_sentence() {
    let stderr = fails(
        PKTGEN,
        &["0000:ff:1f.7", "--packets", "1"],
        1,
        "no PCI device",
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    fails(
        FWD,
        &["0000:ff:1f.6", "0000:ff:1f.7"],
        1,
        "no PCI device 0000:ff:1f.6",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.pcap");
    fails(
        PCAP,
        &["ff:1f.7", file.to_str().unwrap()],
        1,
        "no PCI device",
    );
}

#[test]
fn out_of_range_options_are_rejected() {
    fails(PKTGEN, &["sim", "--size", "10"], 2, "60 to 1514");
    fails(PKTGEN, &["sim", "--size", "1515"], 2, "60 to 1514");
    fails(PKTGEN, &["sim", "--batch", "0"], 2, "batch size");
    fails(FWD, &["sim", "sim", "--batch", "257"], 2, "batch size");
    fails(FWD, &["sim", "sim", "--queues", "0"], 2, "queues");
    fails(FWD, &["sim", "sim", "--queues", "17"], 2, "queues");
    fails(FWD, &["sim", "sim", "--seconds", "0"], 2, "seconds");
    fails(FWD, &["sim", "sim", "--seconds=-1"], 2, "seconds");
    fails(FWD, &["sim", "sim", "--packets", "0"], 2, "packets");
    fails(PKTGEN, &["sim", "--dst-mac", "01:02"], 2, "MAC");
    fails(FWD, &["sim"], 2, "DEV2");
}

#[test]
fn mixing_sim_and_pci_or_repeating_a_device_is_refused() {
    fails(FWD, &["sim", "0000:ff:1f.7"], 1, "cannot mix");
    fails(FWD, &["0000:ff:1f.7", "ff:1f.7"], 1, "same device");
}

#[test]
fn unwritable_pcap_file_is_refused_before_opening_the_device() {
    fails(
        PCAP,
        &["0000:ff:1f.7", "/nonexistent-dir/x.pcap"],
        1,
        "cannot create /nonexistent-dir/x.pcap",
    );
}
