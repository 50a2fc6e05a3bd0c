//! The three programs on the simulator: counts agree with what the simulated peer offered and
//! received, nothing is corrupted, JSON and pcap output parse.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_json, sum, u};
use ixgbe_tools::frame::parse_udp_frame;
use ixgbe_tools::pcap::{Reader, LINKTYPE_ETHERNET};
use ixgbe_tools::sim::mix_frame;
use ixgbe_tools::sim_mac;

const FWD: &str = env!("CARGO_BIN_EXE_ixgbe-fwd");
const PKTGEN: &str = env!("CARGO_BIN_EXE_ixgbe-pktgen");
const PCAP: &str = env!("CARGO_BIN_EXE_ixgbe-pcap");

#[test]
fn fwd_forwards_exactly_n_packets_intact() {
    let v = run_json(
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
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["name"], "sim0");
    assert_eq!(devices[1]["name"], "sim1");
    assert_eq!(sum(&v, "tx_packets"), 20_000);
    // Both directions carry traffic.
    assert!(u(&devices[0], "tx_packets") > 5_000, "{v}");
    assert!(u(&devices[1], "tx_packets") > 5_000, "{v}");
    assert_eq!(sum(&v, "rx_dropped"), 0, "{v}");
    // What one port sent, the other received (and may hold more not yet forwarded).
    assert!(u(&devices[0], "rx_packets") >= u(&devices[1], "tx_packets"));
    assert!(u(&devices[1], "rx_packets") >= u(&devices[0], "tx_packets"));
    // 64-byte frames on the wire (60 + FCS).
    assert_eq!(sum(&v, "tx_bytes"), 20_000 * 64);
    let peer = &v["peer"];
    assert_eq!(u(peer, "received"), 20_000, "{v}");
    assert_eq!(u(peer, "corrupted"), 0, "{v}");
    assert_eq!(u(peer, "lost"), 0, "{v}");
    assert!(u(peer, "sent") >= 20_000);
    assert!(u(peer, "sent") <= sum(&v, "rx_packets"));
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn fwd_forwards_jumbo_frames_intact() {
    let v = run_json(
        FWD,
        &[
            "sim",
            "sim",
            "--max-frame",
            "9728",
            "--frame-size",
            "9000",
            "--packets",
            "500",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    assert_eq!(sum(&v, "tx_packets"), 500, "{v}");
    assert_eq!(sum(&v, "rx_dropped"), 0, "{v}");
    // 9004-byte frames on the wire (9000 + FCS), each from five 2 KB buffers.
    assert_eq!(sum(&v, "tx_bytes"), 500 * 9004, "{v}");
    let peer = &v["peer"];
    assert_eq!(u(peer, "received"), 500, "{v}");
    assert_eq!(u(peer, "corrupted"), 0, "{v}");
    assert_eq!(u(peer, "lost"), 0, "{v}");
}

#[test]
fn fwd_without_jumbo_frames_forwards_no_frame_beyond_1518() {
    let v = run_json(
        FWD,
        &[
            "sim",
            "sim",
            "--frame-size",
            "1515",
            "--seconds",
            "0.001",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    let peer = &v["peer"];
    assert!(u(peer, "sent") > 0, "{v}");
    assert_eq!(u(peer, "received"), 0, "{v}");
    assert_eq!(sum(&v, "rx_packets"), 0, "{v}");
}

#[test]
fn fwd_with_virtual_clock_is_deterministic() {
    let args = [
        "sim",
        "sim",
        "--packets",
        "3000",
        "--batch",
        "64",
        "--sim-clock",
        "virtual",
        "--json",
    ];
    let a = run_json(FWD, &args);
    let b = run_json(FWD, &args);
    assert_eq!(a, b);
    assert_eq!(sum(&a, "tx_packets"), 3000);
}

#[test]
fn fwd_multi_queue_threads_spread_and_stay_intact() {
    let v = run_json(
        FWD,
        &[
            "sim",
            "sim",
            "--queues",
            "2",
            "--packets",
            "5000",
            "--seconds",
            "60",
            "--json",
        ],
    );
    assert_eq!(sum(&v, "tx_packets"), 5000, "{v}");
    let peer = &v["peer"];
    assert_eq!(u(peer, "received"), 5000, "{v}");
    assert_eq!(u(peer, "corrupted"), 0, "{v}");
}

/// `--interrupts`: every queue of both ports on its own thread and vector; the frames arrive
/// intact, the summary counts the interrupts, and no violation is logged (run_json checks).
#[test]
fn fwd_with_interrupts_forwards_intact_and_counts_them() {
    for mode in ["hybrid", "always"] {
        let args = [
            "sim",
            "sim",
            "--interrupts",
            mode,
            "--queues",
            "2",
            "--packets",
            "3000",
            "--seconds",
            "60",
            "--json",
        ];
        let v = run_json(FWD, &args);
        assert_eq!(sum(&v, "tx_packets"), 3000, "{mode}: {v}");
        assert_eq!(u(&v["peer"], "corrupted"), 0, "{mode}: {v}");
        let out = common::run(FWD, &args);
        // With --json stdout holds JSON Lines only; the human lines are on stderr.
        let stdout = String::from_utf8_lossy(&out.stderr);
        let total = stdout
            .lines()
            .find(|l| l.starts_with("[irq] total: "))
            .unwrap_or_else(|| panic!("{mode}: no interrupt summary in\n{stdout}"));
        let numbers: Vec<u64> = total
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let [interrupts, _wake_ups, _sleeps, _timeouts, to_polling, _to_interrupts] = numbers[..]
        else {
            panic!("{mode}: {total}");
        };
        if mode == "always" {
            assert!(interrupts >= 1, "{mode}: {total}");
        } else {
            // The peer floods at line rate: full batches make every queue poll.
            assert!(to_polling >= 1, "{mode}: {total}");
        }
        assert!(stdout.contains("[cpu] "), "{stdout}");
    }
}

#[test]
fn fwd_stops_after_seconds_with_wall_clock() {
    let start = Instant::now();
    let v = run_json(FWD, &["sim", "sim", "--seconds", "0.3", "--json"]);
    let secs = v["seconds"].as_f64().unwrap();
    assert!((0.3..5.0).contains(&secs), "{secs}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(sum(&v, "tx_packets") > 0, "{v}");
    assert_eq!(u(&v["peer"], "corrupted"), 0, "{v}");
    // Everything forwarded reached the peer.
    assert_eq!(u(&v["peer"], "received"), sum(&v, "tx_packets"), "{v}");
}

/// SIGINT, SIGTERM (what `timeout`, systemd and container runtimes send) and SIGHUP all end
/// the run the same way: devices stopped, summary printed, exit code 0.
#[test]
fn fwd_signals_end_with_summary() {
    for signal in ["INT", "TERM", "HUP"] {
        let child = Command::new(FWD)
            .args(["sim", "sim", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "SIG{signal}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(last["devices"].as_array().unwrap().len(), 2, "SIG{signal}");
        assert_eq!(u(&last["peer"], "corrupted"), 0, "SIG{signal}");
    }
}

#[test]
fn pktgen_frames_are_valid_udp_with_increasing_sequence() {
    let v = run_json(
        PKTGEN,
        &[
            "sim",
            "--packets",
            "1000",
            "--json",
            "--sim-clock",
            "virtual",
        ],
    );
    assert_eq!(sum(&v, "tx_packets"), 1000, "{v}");
    assert_eq!(sum(&v, "tx_bytes"), 1000 * 64, "{v}");
    let peer = &v["peer"];
    // The peer parses every frame (IPv4 header checksum, UDP length, payload) and checks that
    // sequence numbers go 0, 1, 2, ... without gaps or steps back.
    assert_eq!(u(peer, "received"), 1000, "{v}");
    assert_eq!(u(peer, "corrupted"), 0, "{v}");
    assert_eq!(u(peer, "lost"), 0, "{v}");
    assert_eq!(u(peer, "sent"), 0, "{v}");
}

#[test]
fn pktgen_large_frames_and_odd_batch() {
    let v = run_json(
        PKTGEN,
        &[
            "sim",
            "--size",
            "1514",
            "--batch",
            "7",
            "--packets",
            "500",
            "--json",
            "--sim-clock",
            "virtual",
        ],
    );
    assert_eq!(sum(&v, "tx_packets"), 500, "{v}");
    assert_eq!(sum(&v, "tx_bytes"), 500 * 1518, "{v}");
    assert_eq!(u(&v["peer"], "received"), 500, "{v}");
    assert_eq!(u(&v["peer"], "corrupted"), 0, "{v}");
    assert_eq!(u(&v["peer"], "lost"), 0, "{v}");
}

#[test]
fn pktgen_multi_queue() {
    let v = run_json(
        PKTGEN,
        &[
            "sim",
            "--queues",
            "3",
            "--packets",
            "3000",
            "--seconds",
            "60",
            "--json",
        ],
    );
    assert_eq!(sum(&v, "tx_packets"), 3000, "{v}");
    assert_eq!(u(&v["peer"], "received"), 3000, "{v}");
    assert_eq!(u(&v["peer"], "corrupted"), 0, "{v}");
    assert_eq!(u(&v["peer"], "lost"), 0, "{v}");
}

#[test]
fn pcap_file_matches_offered_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.pcap");
    let v = run_json(
        PCAP,
        &[
            "sim",
            path.to_str().unwrap(),
            "--count",
            "500",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    let offered = u(&v["peer"], "sent");
    assert!(offered >= 500, "{v}");
    assert!(sum(&v, "rx_packets") >= 500, "{v}");
    let mut reader = Reader::new(File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.linktype, LINKTYPE_ETHERNET);
    let mut n = 0u64;
    let mut bytes = 0u64;
    let mut last_ts = Duration::ZERO;
    while let Some(packet) = reader.next_record().unwrap() {
        let want = mix_frame(n, sim_mac(0));
        assert_eq!(packet.data, want, "frame {n}");
        assert_eq!(packet.orig_len as usize, want.len());
        assert!(packet.ts >= last_ts);
        last_ts = packet.ts;
        assert_eq!(parse_udp_frame(&packet.data).unwrap().seq, n);
        bytes += want.len() as u64;
        n += 1;
    }
    assert_eq!(n, 500);
    // The device's byte count covers at least the captured frames (it may hold more).
    assert!(sum(&v, "rx_bytes") >= bytes);
}

#[test]
fn pcap_packets_option_and_multi_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.pcap");
    let v = run_json(
        PCAP,
        &[
            "sim",
            path.to_str().unwrap(),
            "--packets",
            "300",
            "--queues",
            "4",
            "--sim-clock",
            "virtual",
            "--json",
        ],
    );
    let mut reader = Reader::new(File::open(&path).unwrap()).unwrap();
    let mut seqs = Vec::new();
    while let Some(packet) = reader.next_record().unwrap() {
        seqs.push(parse_udp_frame(&packet.data).unwrap().seq);
    }
    assert_eq!(seqs.len(), 300, "{v}");
    // With RSS frames may be captured queue by queue, but each is there once.
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 300);
}

/// A closed stdout (`| head`) ends an unlimited run like a signal: no panic, exit code 0, the
/// summary on stderr.
#[test]
fn closed_stdout_ends_the_run_with_summary_on_stderr() {
    for (bin, args) in [(FWD, &["sim", "sim"][..]), (PKTGEN, &["sim"][..])] {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // like `| head -0`
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{bin}: {:?}: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("total:"),
            "{bin}: no summary on stderr: {stderr}"
        );
    }
}
