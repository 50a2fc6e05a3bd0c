//! QEMU end-to-end test, guest side: platform-linux drives QEMU's igb (82576) device.
//!
//! Usage: `qemu_guest <pci-address> <sysfs|vfio> <frames>` (run by tests/qemu/init.sh as root).
//!
//! Opens the device with `LinuxPlatform::open_with` (accepting 8086:10c9), checks the access
//! path is the expected one, brings up the TEST FIXTURE ring (`igb_fixture.rs`) over the
//! `ixgbe_core::Platform` trait, sends `frames` frames the host peer checks byte by byte,
//! receives `frames` frames the peer injects and checks them here, then sends a report frame.
//! Each step prints `QTEST: PASS <name> ...` or `QTEST: FAIL <name>: ...` on the console.

#[path = "../igb_fixture.rs"]
mod igb_fixture;
#[path = "../igb_proto.rs"]
mod igb_proto;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use igb_fixture::Igb;
use igb_proto::{Dir, Report, PEER_MAC};
use platform_linux::{AccessPath, LinuxPlatform, OpenOptions, PciAddress, PciIdentity};

/// How long the guest waits for the peer's frames (TCG is slow; the peer injects only after it
/// has seen all of the guest's frames).
const RX_WAIT: Duration = Duration::from_secs(40);

fn fail(step: &str, why: impl std::fmt::Display) -> ExitCode {
    println!("QTEST: FAIL {step}: {why}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 || !matches!(args[2].as_str(), "sysfs" | "vfio") {
        eprintln!("usage: qemu_guest <pci-address> <sysfs|vfio> <frames>");
        return ExitCode::from(2);
    }
    let addr: PciAddress = match args[1].parse() {
        Ok(a) => a,
        Err(e) => return fail("guest-open", format!("bad address {}: {e}", args[1])),
    };
    let expect_vfio = args[2] == "vfio";
    let count: u32 = match args[3].parse() {
        Ok(n) if n > 0 => n,
        _ => return fail("guest-args", format!("bad frame count {}", args[3])),
    };

    // 1. Take the device over, exactly as the apps do with an 82599, but accepting the 82576.
    let accept = |id: &PciIdentity| id.vendor == 0x8086 && id.device == 0x10c9;
    let plat = match LinuxPlatform::open_with(
        &addr,
        &OpenOptions::default(),
        &accept,
        "8086:10c9 (82576 as emulated by QEMU's igb; test fixture only)",
    ) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                "guest-open",
                format!("LinuxPlatform::open_with({addr}): {e}"),
            )
        }
    };
    println!(
        "QTEST: PASS guest-open ({} at {}, BAR0 {} KiB)",
        plat.identity(),
        plat.address(),
        plat.bar0_len() / 1024
    );
    let path = plat.access_path();
    println!("  access path: {path}");
    match (expect_vfio, path) {
        (false, AccessPath::Sysfs) | (true, AccessPath::Vfio { .. }) => {
            println!("QTEST: PASS guest-path {path}")
        }
        _ => return fail("guest-path", format!("expected {}, got {path}", args[2])),
    }

    // 2. Bring the fixture ring up over the Platform trait.
    let mut igb = match Igb::init(plat.clone()) {
        Ok(i) => i,
        Err(e) => return fail("guest-init", e),
    };
    let info = igb.info().clone();
    let mac = info.mac;
    println!(
        "  link up after {} ms; MAC {}; RX ring bus {:#x}, TX ring bus {:#x}, buffer pages bus {:#x} / {:#x}",
        info.link_ms,
        igb_proto::fmt_mac(&mac),
        info.rx_ring_bus,
        info.tx_ring_bus,
        info.buf_page_bus[0],
        info.buf_page_bus[1]
    );

    // 3. Transmit: odd frames are spread over two descriptors (two buffers in different
    //    hugepages), even frames use one.
    let t0 = Instant::now();
    for seq in 0..count {
        let frame = igb_proto::data_frame(Dir::GuestToHost, seq, count, PEER_MAC, mac);
        let result = if seq % 2 == 1 {
            let (a, b) = frame.split_at(frame.len() / 2);
            igb.send(&[a, b])
        } else {
            igb.send(&[&frame])
        };
        if let Err(e) = result {
            return fail("guest-tx", format!("frame {seq}: {e}"));
        }
    }
    println!(
        "QTEST: PASS guest-tx {count} frames handed to the device and completed (DD) in {} ms",
        t0.elapsed().as_millis()
    );

    // 4. Receive the peer's frames and check every byte.
    let mut report = Report {
        good: 0,
        bad: 0,
        hash: igb_proto::FNV_INIT,
    };
    let mut seen = vec![false; count as usize];
    let mut next = 0u32;
    let deadline = Instant::now() + RX_WAIT;
    let t1 = Instant::now();
    while report.good < count && Instant::now() < deadline {
        let frame = match igb.recv(Duration::from_millis(200)) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => return fail("guest-rx", e),
        };
        let Some(seq) = igb_proto::data_seq(Dir::HostToGuest, &frame) else {
            println!("  ignoring a non-test frame of {} bytes", frame.len());
            continue;
        };
        report.hash = igb_proto::fnv1a(report.hash, &frame);
        let problem = if seq >= count {
            Some(format!("sequence number {seq} out of range"))
        } else if seq != next {
            Some(format!("frame {seq} arrived where {next} was expected"))
        } else if seen[seq as usize] {
            Some(format!("frame {seq} received twice"))
        } else {
            igb_proto::check_data_frame(Dir::HostToGuest, seq, count, mac, PEER_MAC, &frame)
        };
        match problem {
            None => {
                seen[seq as usize] = true;
                report.good += 1;
            }
            Some(p) => {
                println!("  RX error: {p}");
                report.bad += 1;
            }
        }
        next = seq.wrapping_add(1);
    }
    let rx_ms = t1.elapsed().as_millis();

    // 5. Report to the peer, whatever happened.
    let report_frame = igb_proto::report_frame(&report, PEER_MAC, mac);
    if let Err(e) = igb.send(&[&report_frame]) {
        return fail("guest-report", e);
    }
    let (gprc, gptc) = igb.counters();
    println!("  device counters: GPRC {gprc} (good received), GPTC {gptc} (good transmitted)");

    let mut ok = true;
    if report.good == count && report.bad == 0 {
        println!("QTEST: PASS guest-rx {count}/{count} frames received byte-exact in {rx_ms} ms");
    } else {
        ok = false;
        println!(
            "QTEST: FAIL guest-rx: {} good, {} bad of {count} expected (waited {rx_ms} ms)",
            report.good, report.bad
        );
    }
    if gptc != count + 1 || gprc < report.good {
        ok = false;
        println!(
            "QTEST: FAIL guest-counters: GPTC {gptc} (want {}), GPRC {gprc} (want >= {})",
            count + 1,
            report.good
        );
    }
    drop(igb);

    // 6. Controls in MAC loopback (nothing reaches the wire): the same round trip with the true
    //    bus addresses must be byte-exact; with RX or TX buffer addresses 256 bytes off it must
    //    not be, which shows the byte checks above catch a wrong translation.
    let probe = igb_proto::data_frame(Dir::GuestToHost, 5, 8, mac, mac);
    match loopback_roundtrip(&plat, &probe, 0, 0) {
        Ok(None) => println!(
            "QTEST: PASS guest-loopback ({}-byte frame byte-exact through MAC loopback)",
            probe.len()
        ),
        Ok(Some(diff)) => ok = fail_line("guest-loopback", diff),
        Err(e) => ok = fail_line("guest-loopback", e),
    }
    let mut caught = Vec::new();
    for (name, rx_skew, tx_skew) in [("RX", 256, 0), ("TX", 0, 256)] {
        match loopback_roundtrip(&plat, &probe, rx_skew, tx_skew) {
            Ok(Some(diff)) => caught.push(format!("{name} buffers 256 bytes off: {diff}")),
            Ok(None) => {
                ok = fail_line(
                    "guest-negative-control",
                    format!("{name} buffer addresses 256 bytes off still gave the exact bytes"),
                )
            }
            Err(e) => ok = fail_line("guest-negative-control", e),
        }
    }
    if caught.len() == 2 {
        println!(
            "QTEST: PASS guest-negative-control (caught: {})",
            caught.join("; ")
        );
    }

    if ok {
        println!("QTEST: PASS guest-done (path {path}, {count} frames each way)");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a FAIL line and returns `false` (for `ok = fail_line(..)`).
fn fail_line(step: &str, why: impl std::fmt::Display) -> bool {
    println!("QTEST: FAIL {step}: {why}");
    false
}

/// One frame through MAC loopback with buffer bus addresses skewed by the given bytes: `Ok(None)`
/// when the frame came back byte-exact, `Ok(Some(what differs))` otherwise.
fn loopback_roundtrip(
    plat: &LinuxPlatform,
    frame: &[u8],
    rx_skew: u64,
    tx_skew: u64,
) -> Result<Option<String>, String> {
    let opts = igb_fixture::Options {
        loopback: true,
        rx_buffer_bus_skew: rx_skew,
        tx_buffer_bus_skew: tx_skew,
    };
    let mut igb = Igb::init_with(plat.clone(), opts)?;
    igb.send(&[frame])?;
    let got = igb.recv(Duration::from_secs(3))?;
    let Some(got) = got else {
        return Ok(Some("no frame came back".into()));
    };
    let mac = igb.mac();
    Ok(igb_proto::check_data_frame(
        Dir::GuestToHost,
        5,
        8,
        mac,
        mac,
        &got,
    ))
}
