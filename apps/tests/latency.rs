//! ixgbe-pktgen on the simulator: `--rate-limiter hw` (the 82599's per-queue rate scheduler)
//! keeps the rate within 1 % in virtual time; `--latency` measures a device under test of
//! known delay with hardware and software time stamps.

mod common;

use common::{run_json, run_json_lines};
use serde_json::Value;

const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");

/// The virtual-time step of `--latency` runs (100 ns), and the 82599 clock's period (6.4 ns).
const STEP_NS: u64 = 100;
const CLOCK_NS: u64 = 7;

fn app(v: &Value, key: &str) -> u64 {
    v["app"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The hardware rate limiter holds packet and bit rates within 1 % in every interval of
/// virtual time, and the device sends what the program generated.
#[test]
fn hardware_rate_limiter_keeps_the_rate_within_one_percent() {
    for (rate, size, key, want) in [
        ("0.05Mpps", "60", "tx_mpps", 0.05),
        ("500Mbit", "1514", "tx_mbit_s", 500.0),
    ] {
        let (lines, stderr) = run_json_lines(
            PKTGEN,
            &[
                "sim",
                "--rate",
                rate,
                "--rate-limiter",
                "hw",
                "--size",
                size,
                "--seconds",
                "2",
                "--sim-clock",
                "virtual",
                "--json",
            ],
        );
        assert!(stderr.contains("hardware rate limit"), "{stderr}");
        assert_eq!(lines.len(), 3, "{rate}: 2 intervals and the summary");
        for v in &lines {
            let got = v["devices"][0][key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= want * 0.01,
                "{rate}: {key} = {got} in {v}"
            );
        }
        let summary = &lines[2];
        assert_eq!(summary["peer"]["lost"], 0, "{stderr}");
        assert_eq!(summary["peer"]["corrupted"], 0, "{stderr}");
    }
}

/// Through a looped-back wire of known delay every probe comes back, and its round trip is
/// the delay to within the simulator's step (plus a period of the clock with hardware time
/// stamps); a longer wire gives a longer round trip.
#[test]
fn latency_of_a_wire_of_known_delay() {
    for (stamps, delay_us) in [("hw", 10u64), ("hw", 37), ("sw", 10)] {
        let delay = format!("{delay_us}us");
        let v = run_json(
            PKTGEN,
            &[
                "sim",
                "--latency",
                "--timestamps",
                stamps,
                "--sim-dut",
                "wire",
                "--sim-dut-delay",
                &delay,
                "--rate",
                "1Mpps",
                "--probe-rate",
                "10000",
                "--seconds",
                "0.005",
                "--sim-clock",
                "virtual",
                "--json",
            ],
        );
        let probes = app(&v, "latency_probes");
        assert!(
            (45..=50).contains(&probes),
            "{stamps} {delay}: {probes} probes in {v}"
        );
        assert_eq!(app(&v, "latency_lost"), 0, "{v}");
        let dev = &v["devices"][0];
        assert_eq!(
            dev["rx_packets"], dev["tx_packets"],
            "everything comes back: {v}"
        );
        let d = delay_us * 1000;
        let slack = STEP_NS + if stamps == "hw" { CLOCK_NS } else { 0 };
        for key in [
            "latency_min_ns",
            "latency_p50_ns",
            "latency_p99_ns",
            "latency_max_ns",
        ] {
            let ns = app(&v, key);
            assert!(
                (d - CLOCK_NS..=d + slack).contains(&ns),
                "{stamps} {delay}: {key} = {ns} ns"
            );
        }
    }
}

/// `--sim-dut fwd`: the probes cross the forwarder on two more simulated ports and all come
/// back, with every load frame.
#[test]
fn latency_through_the_forwarder() {
    let v = run_json(
        PKTGEN,
        &[
            "sim",
            "--latency",
            "--sim-dut",
            "fwd",
            "--rate",
            "1Mpps",
            "--probe-rate",
            "10000",
            "--seconds",
            "0.005",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    assert!(app(&v, "latency_probes") >= 45, "{v}");
    assert_eq!(app(&v, "latency_lost"), 0, "{v}");
    let p50 = app(&v, "latency_p50_ns");
    assert!(p50 > 0 && p50 < 10_000, "{v}");
    let dev = &v["devices"][0];
    assert_eq!(dev["rx_packets"], dev["tx_packets"], "{v}");
}
