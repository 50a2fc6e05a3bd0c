//! QEMU end-to-end test against `ixgbe-sim`, host side, with the host kernel's own TCP/IP stack:
//! ordinary sockets (`TcpStream`, `UdpSocket`, an ICMP ping socket) talk to the guest's
//! `ixgbe-echo` through the simulated 82599.
//!
//! Usage: `sock_peer --ports-file F [--bytes N] [--pings N] [--timeout SECONDS]`
//!
//! 1. Binds the wire socket (UDP on 127.0.0.1, in this machine's namespace) and writes
//!    "<peer-port> <sim-port>" to F, as `sim_peer` does (run.sh hands them to ixgbe-sim).
//! 2. Moves into a private network namespace of its own (`unshare(CLONE_NEWNET)`), checks that
//!    it differs from the one it started in, and creates the TAP device `ixecho0` there
//!    (MAC 02:00:00:00:00:fe, 10.0.0.1/24, IPv6 off); the namespace then holds `lo` and
//!    `ixecho0` and nothing else (checked). The wire socket stays in the machine's namespace,
//!    so the bridge (two threads) moves frames between the TAP device and ixgbe-sim's port.
//! 3. As a client in that namespace: pings 10.0.0.2 until the guest answers (it boots first),
//!    then `--pings` more (each reply's payload checked); sends 16 UDP datagrams of 1 to 1472
//!    bytes to port 7 and checks each echo; streams `--bytes` of TCP to port 7, reading the
//!    echo at the same time and comparing every byte, until the echo closes its side.
//!
//! Prints `PEER: PASS <check>` / `PEER: FAIL <check>: why` lines, `PEER: STATS ...`, and at the
//! end `PEER: PASS` (exit 0) or `PEER: FAIL ...` (exit 1). Needs root (the namespace and the
//! TAP device); nothing outside its own namespace is changed, and the namespace and the device
//! go away with the process.

mod bridge;
mod checks;
mod netns;
#[path = "../../udp_wire.rs"]
mod udp_wire;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The TAP device's name, MAC (locally administered) and address.
const TAP: &str = "ixecho0";
const TAP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The guest's `ixgbe-echo --ip 10.0.0.2/24` and its port.
const GUEST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);

struct Args {
    ports_file: String,
    bytes: u64,
    pings: u16,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ports_file: String::new(),
        bytes: 10_000_000,
        pings: 10,
        timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--ports-file" => a.ports_file = value()?,
            "--bytes" => a.bytes = num(value()?)?,
            "--pings" => {
                a.pings = u16::try_from(num(value()?)?).map_err(|_| "--pings: at most 65535")?
            }
            "--timeout" => a.timeout = Duration::from_secs(num(value()?)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.ports_file.is_empty() {
        return Err("--ports-file is required".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sock_peer: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = Verdicts::default();
    match run(&args, &mut out) {
        Ok(()) => {}
        Err(e) => out.fail("setup", e),
    }
    if out.finish() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(args: &Args, out: &mut Verdicts) -> Result<(), String> {
    let start = Instant::now();
    let deadline = start + args.timeout;
    let (wire, sim) = udp_wire::bind_wires(1, &args.ports_file)?
        .pop()
        .ok_or("no wire")?;

    // Everything from here on lives in a namespace of its own.
    let machine = netns::current()?;
    netns::enter_private()?;
    let private = netns::current()?;
    if private == machine {
        return Err(format!("still in the machine's namespace {machine}"));
    }
    // Our own namespace's ping sockets: root's group may open them (the default "1 0" allows
    // nobody). The machine's setting is a different file and stays as it is.
    netns::sysctl("ipv4/ping_group_range", "0 0")?;
    let tap = netns::Tap::create(TAP)?;
    // No IPv6 on the cable: the guest's ixgbe-echo speaks IPv4 only, and router solicitations
    // would only be noise on the wire (missing when the kernel has no IPv6: nothing to stop).
    let _ = netns::sysctl(&format!("ipv6/conf/{TAP}/disable_ipv6"), "1");
    tap.configure(TAP_MAC, HOST_IP, 24)?;
    let ifaces = netns::interfaces()?;
    let mut sorted = ifaces.clone();
    sorted.sort();
    out.check(
        sorted == ["ixecho0", "lo"],
        "netns-private",
        format!(
            "namespace {private} (the machine's: {machine}) holds {}",
            ifaces.join(", ")
        ),
    );
    let counters = bridge::start(tap.file, wire, sim)?;

    // The guest boots, loads and starts ixgbe-echo: ping until it answers.
    let pinger = checks::Pinger::new(*GUEST.ip())?;
    let mut seq = 0u16;
    let mut up = false;
    while Instant::now() < deadline {
        seq = seq.wrapping_add(1);
        if pinger.ping(seq, Duration::from_millis(250))? {
            up = true;
            break;
        }
    }
    if !up {
        out.fail(
            "echo-up",
            format!(
                "no echo reply from {} within {:?}",
                GUEST.ip(),
                args.timeout
            ),
        );
        return Ok(());
    }
    println!(
        "PEER: {} answered ping {seq} after {:.1} s",
        GUEST.ip(),
        start.elapsed().as_secs_f64()
    );

    let mut answered = 0;
    let t = Instant::now();
    for i in 0..args.pings {
        if pinger.ping(1000 + i, Duration::from_secs(1))? {
            answered += 1;
        }
    }
    out.check(
        answered == args.pings,
        "echo-ping",
        format!(
            "{answered}/{} echo requests answered with their payload, {:.1} ms each",
            args.pings,
            t.elapsed().as_secs_f64() * 1e3 / f64::from(args.pings.max(1))
        ),
    );

    let (good, bad) = checks::udp_echo(GUEST, Duration::from_secs(5))?;
    let n = checks::UDP_LENGTHS.len();
    out.check(
        good == n && bad == 0,
        "echo-udp",
        format!("{good}/{n} datagrams of 1 to 1472 bytes echoed intact, {bad} bad"),
    );

    let r = checks::tcp_echo(GUEST, args.bytes, Duration::from_secs(30))?;
    let secs = r.elapsed.as_secs_f64();
    out.check(
        r.sent == args.bytes
            && r.received == args.bytes
            && r.first_mismatch.is_none()
            && r.error.is_none(),
        "echo-tcp",
        format!(
            "{} of {} bytes sent, {} back, first difference {:?}, error {:?}, {secs:.2} s ({:.2} MB/s)",
            r.sent,
            args.bytes,
            r.received,
            r.first_mismatch,
            r.error,
            r.received as f64 / 1e6 / secs.max(1e-9)
        ),
    );
    // Let the last ACK of the close cross the bridge before the process (and the bridge) ends.
    std::thread::sleep(Duration::from_millis(200));
    let c = &*counters;
    println!(
        "PEER: STATS wire0 rx_frames={} rx_bytes={} tx_frames={} tx_bytes={} dropped={}",
        c.rx_frames.load(Ordering::Relaxed),
        c.rx_bytes.load(Ordering::Relaxed),
        c.tx_frames.load(Ordering::Relaxed),
        c.tx_bytes.load(Ordering::Relaxed),
        c.dropped.load(Ordering::Relaxed),
    );
    Ok(())
}

#[derive(Default)]
struct Verdicts {
    failed: Vec<String>,
    passed: Vec<String>,
}

impl Verdicts {
    fn fail(&mut self, name: &str, why: String) {
        println!("PEER: FAIL {name}: {why}");
        self.failed.push(name.into());
    }
    fn check(&mut self, ok: bool, name: &str, detail: String) {
        if ok {
            println!("PEER: PASS {name} ({detail})");
            self.passed.push(name.into());
        } else {
            self.fail(name, detail)
        }
    }
    fn finish(&self) -> bool {
        if self.failed.is_empty() {
            println!(
                "PEER: PASS ({} checks: {})",
                self.passed.len(),
                self.passed.join(" ")
            );
            true
        } else {
            println!("PEER: FAIL {}", self.failed.join(" "));
            false
        }
    }
}
