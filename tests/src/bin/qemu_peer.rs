//! QEMU end-to-end test, host side: the other end of the guest's emulated NIC.
//!
//! Usage: `qemu_peer --ports-file F --guest-mac MAC --frames N --timeout SECONDS`
//!
//! Binds a UDP socket on 127.0.0.1 (only), picks a free port for QEMU's `-netdev dgram` and
//! writes "<peer-port> <qemu-port>" to F. Every datagram QEMU sends is one Ethernet frame the
//! guest transmitted. The peer
//! 1. checks the guest's N `PLTX` frames one by one, byte by byte, in order;
//! 2. once all N arrived intact, injects N `PLRX` frames towards the guest;
//! 3. waits for the guest's `PLOK` report and checks it (N good, 0 bad, hash of the exact bytes).
//!
//! Prints `PEER: STATS guest_to_host=<verified> host_to_guest=<injected> ...` and
//! `PEER: PASS ...` (exit 0) or `PEER: FAIL ...` (exit 1). Sends nothing beyond 127.0.0.1.

#[path = "../igb_proto.rs"]
mod igb_proto;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use igb_proto::{Dir, PEER_MAC};

struct Args {
    ports_file: String,
    guest_mac: [u8; 6],
    frames: u32,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut ports_file = None;
    let mut guest_mac = None;
    let mut frames = 64u32;
    let mut timeout = Duration::from_secs(150);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ports-file" => ports_file = Some(value()?),
            "--guest-mac" => {
                let v = value()?;
                guest_mac = Some(igb_proto::parse_mac(&v).ok_or(format!("bad MAC {v}"))?);
            }
            "--frames" => frames = value()?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--timeout" => {
                timeout =
                    Duration::from_secs(value()?.parse().map_err(|e| format!("--timeout: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if frames == 0 {
        return Err("--frames must be > 0".into());
    }
    Ok(Args {
        ports_file: ports_file.ok_or("--ports-file is required")?,
        guest_mac: guest_mac.ok_or("--guest-mac is required")?,
        frames,
        timeout,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("qemu_peer: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("PEER: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let lo = Ipv4Addr::LOCALHOST;
    let sock = UdpSocket::bind(SocketAddrV4::new(lo, 0)).map_err(|e| format!("bind: {e}"))?;
    let peer_port = sock.local_addr().map_err(|e| e.to_string())?.port();
    // A free port for QEMU's end: bind, note, release (QEMU binds it right after).
    let qemu_port = {
        let probe = UdpSocket::bind(SocketAddrV4::new(lo, 0)).map_err(|e| format!("bind: {e}"))?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let qemu = SocketAddrV4::new(lo, qemu_port);
    let tmp = format!("{}.tmp", args.ports_file);
    std::fs::write(&tmp, format!("{peer_port} {qemu_port}\n"))
        .map_err(|e| format!("{tmp}: {e}"))?;
    std::fs::rename(&tmp, &args.ports_file).map_err(|e| format!("{}: {e}", args.ports_file))?;
    println!(
        "PEER: listening on 127.0.0.1:{peer_port}, QEMU at 127.0.0.1:{qemu_port}, guest MAC {}, {} frames each way",
        igb_proto::fmt_mac(&args.guest_mac),
        args.frames
    );
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .map_err(|e| e.to_string())?;

    let n = args.frames;
    let guest = args.guest_mac;
    let start = Instant::now();
    let deadline = start + args.timeout;
    let mut next_tx = 0u32; // next guest -> host sequence number expected
    let mut verified = 0u32;
    let mut errors: Vec<String> = Vec::new();
    let mut injected = 0u32;
    let mut other = 0u32;
    let mut first_frame_at = None;
    let mut buf = vec![0u8; 65536];
    let report = loop {
        if Instant::now() > deadline {
            let what = if verified < n {
                format!("{verified}/{n} guest frames verified")
            } else {
                "no report from the guest".to_string()
            };
            println!("PEER: STATS guest_to_host={verified} host_to_guest={injected} other={other}");
            return Err(format!("timed out after {:?}: {what}", args.timeout));
        }
        let (len, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("recv: {e}")),
        };
        if from.ip() != std::net::IpAddr::V4(lo) || from.port() != qemu_port {
            other += 1;
            continue;
        }
        let frame = &buf[..len];
        first_frame_at.get_or_insert_with(Instant::now);
        if let Some(r) = igb_proto::parse_report(frame) {
            break r;
        }
        let Some(seq) = igb_proto::data_seq(Dir::GuestToHost, frame) else {
            other += 1;
            println!("PEER: ignoring a non-test frame of {len} bytes");
            continue;
        };
        let problem = if seq != next_tx {
            Some(format!("frame {seq} arrived where {next_tx} was expected"))
        } else {
            igb_proto::check_data_frame(Dir::GuestToHost, seq, n, PEER_MAC, guest, frame)
        };
        next_tx = seq.wrapping_add(1);
        match problem {
            None => verified += 1,
            Some(p) => {
                println!("PEER: guest frame error: {p}");
                errors.push(p);
            }
        }
        if verified == n && errors.is_empty() && injected == 0 {
            println!(
                "PEER: all {n} guest frames verified byte by byte ({} ms after the first); injecting {n} frames",
                first_frame_at.map_or(0, |t| t.elapsed().as_millis())
            );
            for seq in 0..n {
                let f = igb_proto::data_frame(Dir::HostToGuest, seq, n, guest, PEER_MAC);
                sock.send_to(&f, qemu).map_err(|e| format!("send: {e}"))?;
                injected += 1;
                // Pace a little so QEMU's socket buffer never overflows.
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    };
    println!("PEER: STATS guest_to_host={verified} host_to_guest={injected} other={other}");
    println!(
        "PEER: guest report: {} good, {} bad, hash {:#010x}",
        report.good, report.bad, report.hash
    );
    if verified != n || !errors.is_empty() {
        return Err(format!(
            "{verified}/{n} guest frames verified, {} errors",
            errors.len()
        ));
    }
    let want_hash = igb_proto::expected_rx_hash(n, guest);
    if report.good != n || report.bad != 0 || report.hash != want_hash {
        return Err(format!(
            "guest received {} good / {} bad of {n} injected, hash {:#010x} (want {want_hash:#010x})",
            report.good, report.bad, report.hash
        ));
    }
    println!(
        "PEER: PASS {n} guest->host frames byte-exact, {n} host->guest frames confirmed by the guest (hash {want_hash:#010x}), {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
