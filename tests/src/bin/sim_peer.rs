//! QEMU end-to-end test against `ixgbe-sim`, host side: the far end of the simulated ports'
//! UDP wires (one datagram per Ethernet frame, 127.0.0.1 only).
//!
//! Usage: `sim_peer --ports-file F --mode linux|fwd|io|apps [--wires 1|2] [--frames N] [--pings N]
//! [--window W] [--rate FPS:COUNT] [--timeout SECONDS]`
//!
//! For every wire it binds a UDP socket on 127.0.0.1, picks a free port for ixgbe-sim's side and
//! writes one line "<peer-port> <sim-port>" per wire to F (run.sh hands them to ixgbe-sim).
//!
//! `linux` (wire 0; the guest's own ixgbe.ko and `sim_guest`): answers ARP and ICMP echo for
//! 10.0.0.1, checks every guest → host UDP frame as a whole frame (addresses, TTL, IP and UDP
//! checksums, payload byte by byte), sends host → guest UDP frames from many flows with a window
//! the guest's ACKs open, and compares the guest's `ethtool -S` counters with its own.
//!
//! `fwd` (two wires; the guest's `ixgbe-fwd` between the two ports): injects N frames on wire 0
//! (first as a probe until one comes back, then with at most W in flight) and checks that each
//! comes out of wire 1 byte-exact with byte 1 incremented. It stops after `--fwd-target`
//! frames came back (the forwarder's `--packets`), sending fillers if probes were forwarded
//! twice, so the guest's forwarder exits on its own. With `--rate FPS:COUNT` the first COUNT
//! frames go out at FPS frames per second (a low-rate stream for the forwarder's interrupts),
//! the rest as fast as the window allows (a flood).
//!
//! `io` (two wires; DPDK's `dpdk-testpmd --forward-mode=io` in the guest): as `fwd`, but the
//! forwarder sends every frame on unchanged, so each must come back exactly as injected.
//!
//! `echo` (wire 0; the guest's `ixgbe-echo` at 10.0.0.2): a smoltcp client at 10.0.0.1 on the
//! wire pings it (until the guest is up), sends UDP datagrams and streams `--bytes` of TCP
//! through its echo, each byte checked (the same client as `ixgbe-echo sim`).
//!
//! Prints `PEER: PASS <check>` / `PEER: FAIL <check>: why` lines, `PEER: STATS ...`, and at the
//! end `PEER: PASS` (exit 0) or `PEER: FAIL ...` (exit 1).

#[path = "../sim_proto.rs"]
mod sim_proto;
#[path = "../udp_wire.rs"]
mod udp_wire;

use std::io::ErrorKind;
use std::net::{SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sim_proto::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Linux,
    Fwd,
    /// `fwd` for a forwarder that changes no byte (testpmd's io mode).
    Io,
    Apps,
    Echo,
}

struct Args {
    ports_file: String,
    mode: Mode,
    wires: usize,
    frames: u32,
    pings: u64,
    window: u32,
    fwd_target: Option<u64>,
    fwd_dst: [u8; 6],
    /// Frames per second and how many frames are paced so (fwd mode).
    rate: Option<(u64, u32)>,
    timeout: Duration,
    bytes: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ports_file: String::new(),
        mode: Mode::Linux,
        wires: 1,
        frames: 1000,
        pings: 100,
        window: 128,
        fwd_target: None,
        fwd_dst: [0x02, 0, 0, 0, 0, 0x01],
        rate: None,
        timeout: Duration::from_secs(300),
        bytes: 1_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--ports-file" => a.ports_file = value()?,
            "--mode" => {
                a.mode = match value()?.as_str() {
                    "linux" => Mode::Linux,
                    "fwd" => Mode::Fwd,
                    "io" => Mode::Io,
                    "apps" => Mode::Apps,
                    "echo" => Mode::Echo,
                    m => return Err(format!("unknown mode {m}")),
                }
            }
            "--wires" => a.wires = num(value()?)? as usize,
            "--frames" => a.frames = num(value()?)? as u32,
            "--pings" => a.pings = num(value()?)?,
            "--window" => a.window = num(value()?)?.max(1) as u32,
            "--fwd-target" => a.fwd_target = Some(num(value()?)?),
            "--fwd-dst" => {
                let v = value()?;
                a.fwd_dst = parse_mac(&v).ok_or(format!("bad MAC {v}"))?;
            }
            "--rate" => {
                let v = value()?;
                let (fps, count) = v
                    .split_once(':')
                    .ok_or(format!("--rate takes FPS:COUNT, not {v}"))?;
                let fps = num(fps.into())?;
                if fps == 0 {
                    return Err("--rate: FPS must be > 0".into());
                }
                a.rate = Some((fps, num(count.into())? as u32));
            }
            "--timeout" => a.timeout = Duration::from_secs(num(value()?)?),
            "--bytes" => a.bytes = num(value()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.ports_file.is_empty() {
        return Err("--ports-file is required".into());
    }
    let one_wire = matches!(a.mode, Mode::Linux | Mode::Echo);
    if !(1..=2).contains(&a.wires) || (!one_wire && a.wires != 2) {
        return Err("--wires is 1 or 2 (fwd and apps need 2)".into());
    }
    if a.frames == 0 {
        return Err("--frames must be > 0".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sim_peer: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("PEER: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}

struct Wire {
    sock: UdpSocket,
    sim: SocketAddrV4,
    rx_frames: u64,
    rx_bytes: u64,
    tx_frames: u64,
    tx_bytes: u64,
}

impl Wire {
    fn send(&mut self, f: &[u8]) -> Result<(), String> {
        // Non-blocking socket: a full send buffer on loopback is transient, so retry briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.sock.send_to(f, self.sim) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(100))
                }
                // Nothing listens yet (ixgbe-sim still starting): the frame is lost on the wire,
                // as on a cable with nobody at the other end.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                Err(e) => return Err(format!("send to {}: {e}", self.sim)),
            }
        }
        self.tx_frames += 1;
        self.tx_bytes += f.len() as u64;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, String> {
        match self.sock.recv_from(buf) {
            Ok((n, _)) => {
                self.rx_frames += 1;
                self.rx_bytes += n as u64;
                Ok(Some(n))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                Ok(None)
            }
            // ICMP port unreachable from an earlier send: not a frame.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(None),
            Err(e) => Err(format!("recv: {e}")),
        }
    }
}

fn open_wires(args: &Args) -> Result<Vec<Wire>, String> {
    let mut wires = Vec::new();
    for (sock, sim) in udp_wire::bind_wires(args.wires, &args.ports_file)? {
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        wires.push(Wire {
            sock,
            sim,
            rx_frames: 0,
            rx_bytes: 0,
            tx_frames: 0,
            tx_bytes: 0,
        });
    }
    Ok(wires)
}

fn run(args: &Args) -> Result<bool, String> {
    let mut wires = open_wires(args)?;
    let mut out = Verdicts::default();
    match args.mode {
        Mode::Linux => Linux::new(args).run(&mut wires[0], args, &mut out)?,
        Mode::Fwd => run_fwd(&mut wires, args, 1, &mut out)?,
        Mode::Io => run_fwd(&mut wires, args, 0, &mut out)?,
        Mode::Apps => run_apps(&mut wires, args, &mut out)?,
        Mode::Echo => run_echo(&mut wires[0], args, &mut out)?,
    }
    for (i, w) in wires.iter().enumerate() {
        println!(
            "PEER: STATS wire{i} rx_frames={} rx_bytes={} tx_frames={} tx_bytes={}",
            w.rx_frames, w.rx_bytes, w.tx_frames, w.tx_bytes
        );
    }
    Ok(out.finish())
}

#[derive(Default)]
struct Verdicts {
    failed: Vec<String>,
    passed: Vec<String>,
}

impl Verdicts {
    fn pass(&mut self, name: &str, detail: String) {
        println!("PEER: PASS {name} ({detail})");
        self.passed.push(name.into());
    }
    fn fail(&mut self, name: &str, why: String) {
        println!("PEER: FAIL {name}: {why}");
        self.failed.push(name.into());
    }
    fn check(&mut self, ok: bool, name: &str, detail: String) {
        if ok {
            self.pass(name, detail)
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

/// The wire as a smoltcp device: one datagram per frame (copied: this is the host side).
struct WireDevice<'w> {
    wire: &'w mut Wire,
    buf: Vec<u8>,
    error: Option<String>,
}

struct WireRx(Vec<u8>);

struct WireTx<'t, 'w> {
    dev: &'t mut WireDevice<'w>,
}

impl smoltcp::phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for WireTx<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame[..len]);
        // What a NIC's padding does (HLREG0.TXPADEN): the wire takes no frame under 60 bytes.
        frame.resize(len.max(60), 0);
        if let Err(e) = self.dev.wire.send(&frame) {
            self.dev.error.get_or_insert(e);
        }
        r
    }
}

impl<'w> smoltcp::phy::Device for WireDevice<'w> {
    type RxToken<'t>
        = WireRx
    where
        Self: 't;
    type TxToken<'t>
        = WireTx<'t, 'w>
    where
        Self: 't;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let n = match self.wire.recv(&mut self.buf) {
            Ok(Some(n)) => n,
            Ok(None) => return None,
            Err(e) => {
                self.error.get_or_insert(e);
                return None;
            }
        };
        let frame = self.buf[..n].to_vec();
        Some((WireRx(frame), WireTx { dev: self }))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(WireTx { dev: self })
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut caps = smoltcp::phy::DeviceCapabilities::default();
        caps.medium = smoltcp::phy::Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// `echo`: apps' echo client against the guest's `ixgbe-echo`, over the wire.
fn run_echo(wire: &mut Wire, args: &Args, out: &mut Verdicts) -> Result<(), String> {
    use ixgbe_tools::echo::{Client, Plan};
    use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
    let start = Instant::now();
    let now = || smoltcp::time::Instant::from_micros(start.elapsed().as_micros() as i64);
    let mut dev = WireDevice {
        wire,
        buf: vec![0; 16384],
        error: None,
    };
    // The guest boots for a while before ixgbe-echo answers: ping for up to the timeout.
    let plan = Plan {
        pings: 10,
        ping_tries: (args.timeout.as_millis() / 100) as u32,
        udp_datagrams: 16,
        udp_len: 1000,
        tcp_bytes: args.bytes,
    };
    let mut client = Client::new(
        &mut dev,
        [0x02, 0, 0, 0, 0, 0xfe],
        Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 1), 24),
        (Ipv4Address::new(10, 0, 0, 2), 7),
        plan,
        now(),
    );
    let deadline = start + args.timeout;
    while !client.done() && Instant::now() < deadline {
        if !client.poll(now(), &mut dev) {
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Some(e) = dev.error.take() {
            return Err(e);
        }
    }
    // Let the last ACK of the close go out.
    for _ in 0..50 {
        client.poll(now(), &mut dev);
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = client.report();
    out.check(
        r.ping_replies == plan.pings,
        "echo-ping",
        format!("{}/{} echo requests answered", r.ping_replies, plan.pings),
    );
    out.check(
        r.udp_echoed == plan.udp_datagrams && r.udp_bad == 0,
        "echo-udp",
        format!(
            "{}/{} datagrams echoed intact, {} bad or lost",
            r.udp_echoed, plan.udp_datagrams, r.udp_bad
        ),
    );
    let secs = match (r.tcp_started, r.tcp_finished) {
        (Some(s), Some(f)) => (f - s).total_micros() as f64 / 1e6,
        _ => 0.0,
    };
    let at = r.tcp_started.map_or(0.0, |s| s.total_micros() as f64 / 1e6);
    out.check(
        r.tcp_received == plan.tcp_bytes && r.tcp_first_mismatch.is_none() && !r.tcp_failed,
        "echo-tcp",
        format!(
            "{} of {} bytes back, first difference {:?}, failed {}, {:.2} s ({:.2} MB/s) from {:.1} s on",
            r.tcp_received,
            plan.tcp_bytes,
            r.tcp_first_mismatch,
            r.tcp_failed,
            secs,
            plan.tcp_bytes as f64 / 1e6 / secs.max(1e-9),
            at
        ),
    );
    Ok(())
}

/// Seen/unseen bookkeeping of one direction's sequence numbers.
struct SeqSet {
    seen: Vec<bool>,
    good: u64,
    bad: u64,
    dup: u64,
    first_bad: Option<String>,
}

impl SeqSet {
    fn new(n: u32) -> Self {
        SeqSet {
            seen: vec![false; n as usize],
            good: 0,
            bad: 0,
            dup: 0,
            first_bad: None,
        }
    }
    fn bad(&mut self, why: String) {
        self.bad += 1;
        if self.first_bad.is_none() {
            println!("PEER: first bad frame: {why}");
            self.first_bad = Some(why);
        }
    }
    fn good(&mut self, seq: u32) {
        if std::mem::replace(&mut self.seen[seq as usize], true) {
            self.dup += 1;
        } else {
            self.good += 1;
        }
    }
    fn missing(&self) -> u64 {
        self.seen.len() as u64 - self.good
    }
    fn describe(&self) -> String {
        format!(
            "good={} bad={} dup={} missing={}",
            self.good,
            self.bad,
            self.dup,
            self.missing()
        )
    }
}

/// What the peer does for the guest's own ixgbe.ko.
struct Linux {
    guest_mac: Option<[u8; 6]>,
    arp_replies: u64,
    echo_replies: u64,
    other: u64,
    g2h: Option<SeqSet>,
    txdone: Option<(u32, Instant)>,
    h2g: Option<HostToGuest>,
    ip_id: u16,
    done: bool,
    last_rx: Instant,
}

struct HostToGuest {
    count: u32,
    flows: u32,
    window: u32,
    next: u32,
    acked: u32,
    last_progress: Instant,
    stalls: u32,
    started: Instant,
}

impl Linux {
    fn new(_args: &Args) -> Self {
        Linux {
            guest_mac: None,
            arp_replies: 0,
            echo_replies: 0,
            other: 0,
            g2h: None,
            txdone: None,
            h2g: None,
            ip_id: 1,
            done: false,
            last_rx: Instant::now(),
        }
    }

    fn run(&mut self, w: &mut Wire, args: &Args, out: &mut Verdicts) -> Result<(), String> {
        let deadline = Instant::now() + args.timeout;
        let mut buf = vec![0u8; 16384];
        while !self.done {
            if Instant::now() > deadline {
                out.fail(
                    "timeout",
                    format!("no BYE from the guest within {:?}", args.timeout),
                );
                break;
            }
            let mut busy = false;
            while let Some(n) = w.recv(&mut buf)? {
                busy = true;
                self.last_rx = Instant::now();
                let frame = buf[..n].to_vec();
                self.on_frame(w, &frame, out)?;
                if self.done {
                    break;
                }
            }
            busy |= self.pump(w)?;
            self.check_txdone(w, out)?;
            if !busy {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        println!(
            "PEER: STATS arp_replies={} echo_replies={} other_frames={}",
            self.arp_replies, self.echo_replies, self.other
        );
        out.check(
            self.arp_replies >= 1,
            "arp",
            format!("{} ARP requests answered", self.arp_replies),
        );
        out.check(
            self.echo_replies >= args.pings,
            "icmp-echo",
            format!(
                "{} echo requests answered, at least {} expected",
                self.echo_replies, args.pings
            ),
        );
        for needed in ["guest-to-host", "host-to-guest", "stats-agree"] {
            if !out.passed.iter().chain(&out.failed).any(|n| n == needed) {
                out.fail(needed, "the guest never got to this step".into());
            }
        }
        Ok(())
    }

    fn send_ctrl(&mut self, w: &mut Wire, msg: &str) -> Result<(), String> {
        let Some(mac) = self.guest_mac else {
            return Err("control reply before the guest's MAC is known".into());
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let f = udp_frame(
            mac,
            PEER_MAC,
            PEER_IP,
            GUEST_IP,
            PEER_CTRL_PORT,
            GUEST_CTRL_PORT,
            self.ip_id,
            msg.as_bytes(),
        );
        w.send(&f)
    }

    fn on_frame(&mut self, w: &mut Wire, f: &[u8], out: &mut Verdicts) -> Result<(), String> {
        match parse(f) {
            Parsed::Arp(a) => {
                if a.op == 1 && a.tpa == PEER_IP {
                    if a.spa == GUEST_IP {
                        self.guest_mac = Some(a.sha);
                    }
                    w.send(&arp_reply(&a, PEER_MAC, PEER_IP))?;
                    self.arp_replies += 1;
                } else {
                    self.other += 1;
                }
            }
            Parsed::Ipv4(ip) => {
                if ip.dst != PEER_IP || ip.dst_mac != PEER_MAC {
                    self.other += 1;
                    return Ok(());
                }
                if ip.src == GUEST_IP && self.guest_mac.is_none() {
                    self.guest_mac = Some(ip.src_mac);
                }
                match ip.proto {
                    1 => match icmp_echo_reply(&ip, PEER_MAC) {
                        Some(r) => {
                            w.send(&r)?;
                            self.echo_replies += 1;
                        }
                        None => self.other += 1,
                    },
                    17 => self.on_udp(w, f, &ip, out)?,
                    _ => self.other += 1,
                }
            }
            Parsed::Other(et, why) => {
                self.other += 1;
                if self.other <= 5 {
                    println!(
                        "PEER: ignoring a {}-byte frame, EtherType {et:#06x}: {why}",
                        f.len()
                    );
                }
            }
        }
        Ok(())
    }

    fn on_udp(
        &mut self,
        w: &mut Wire,
        f: &[u8],
        ip: &Ipv4<'_>,
        out: &mut Verdicts,
    ) -> Result<(), String> {
        let (sport, dport, data) = match parse_udp(ip) {
            Ok(u) => u,
            Err(e) => {
                if let Some(s) = self.g2h.as_mut() {
                    s.bad(format!("{}-byte frame: {e}", f.len()));
                } else {
                    println!("PEER: bad UDP frame: {e}");
                    self.other += 1;
                }
                return Ok(());
            }
        };
        match dport {
            PEER_DATA_PORT => self.on_data(f, ip, sport, data),
            PEER_CTRL_PORT => {
                let line = String::from_utf8_lossy(data).trim().to_string();
                self.on_ctrl(w, &line, out)
            }
            _ => {
                self.other += 1;
                Ok(())
            }
        }
    }

    fn on_data(&mut self, f: &[u8], ip: &Ipv4<'_>, sport: u16, data: &[u8]) -> Result<(), String> {
        let count = if data.len() >= 12 {
            u32::from_be_bytes([data[8], data[9], data[10], data[11]])
        } else {
            0
        };
        if self.g2h.is_none() {
            if count == 0 || count > 10_000_000 {
                println!("PEER: a guest data frame with an implausible count {count}");
                self.other += 1;
                return Ok(());
            }
            self.g2h = Some(SeqSet::new(count));
        }
        let set = self.g2h.as_mut().expect("just set");
        let n = set.seen.len() as u32;
        let mut errs = Vec::new();
        if Some(ip.src_mac) != self.guest_mac {
            errs.push(format!("source MAC {}", fmt_mac(&ip.src_mac)));
        }
        if ip.src != GUEST_IP || ip.ttl != 64 || sport != GUEST_DATA_PORT {
            errs.push(format!("from {}:{sport} TTL {}", fmt_ip(&ip.src), ip.ttl));
        }
        match check_payload(Dir::GuestToHost, data, n) {
            Ok((seq, _)) if errs.is_empty() => set.good(seq),
            Ok((seq, _)) => set.bad(format!(
                "seq {seq} ({} bytes): {}",
                f.len(),
                errs.join(", ")
            )),
            Err(e) => set.bad(format!("{}-byte frame: {e}", f.len())),
        }
        Ok(())
    }

    fn on_ctrl(&mut self, w: &mut Wire, line: &str, out: &mut Verdicts) -> Result<(), String> {
        println!("PEER: guest says: {line}");
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "HELLO" => self.send_ctrl(w, "HELLO peer")?,
            "TXDONE" => {
                let n = field(line, "n").unwrap_or(0) as u32;
                self.txdone = Some((n, Instant::now()));
                self.check_txdone(w, out)?;
            }
            "RXGO" => {
                let count = field(line, "n").unwrap_or(0) as u32;
                let flows = (field(line, "flows").unwrap_or(16) as u32).clamp(1, MAX_FLOWS);
                let window = field(line, "window").unwrap_or(128).max(1) as u32;
                println!("PEER: sending {count} frames in {flows} flows, window {window}");
                self.h2g = Some(HostToGuest {
                    count,
                    flows,
                    window,
                    next: 0,
                    acked: 0,
                    last_progress: Instant::now(),
                    stalls: 0,
                    started: Instant::now(),
                });
            }
            "ACK" => {
                if let Some(h) = self.h2g.as_mut() {
                    let k = field(line, "got").unwrap_or(0) as u32;
                    if k > h.acked {
                        h.acked = k;
                        h.last_progress = Instant::now();
                    }
                }
            }
            "RXDONE" => {
                let (ok, detail) = match self.h2g.as_ref() {
                    None => (false, "RXDONE without RXGO".to_string()),
                    Some(h) => {
                        let good = field(line, "good").unwrap_or(u64::MAX);
                        let bad = field(line, "bad").unwrap_or(u64::MAX);
                        let digest = field(line, "digest").unwrap_or(u64::MAX);
                        let want = expected_rx_digest(h.count, h.flows) as u64;
                        let secs = h.started.elapsed().as_secs_f64();
                        (
                            good == h.count as u64 && bad == 0 && digest == want && h.next == h.count,
                            format!(
                                "sent {} of {}, guest got good={good} bad={bad}, digest {digest:#x} (expected {want:#x}), {} stalls, {secs:.1} s",
                                h.next, h.count, h.stalls
                            ),
                        )
                    }
                };
                out.check(ok, "host-to-guest", detail.clone());
                self.send_ctrl(w, &format!("RXRESULT ok={} {detail}", ok as u8))?;
            }
            "REPORT" => {
                // Everything the guest sent before this frame, everything we sent to it.
                let rx_before = w.rx_frames - 1;
                let checks = [
                    ("tx_packets", rx_before),
                    ("tx_pkts_nic", rx_before),
                    ("rx_packets", w.tx_frames),
                    ("rx_pkts_nic", w.tx_frames),
                    ("rx_bytes", w.tx_bytes),
                ];
                let mut bad = Vec::new();
                let mut all = Vec::new();
                for (key, want) in checks {
                    let got = field(line, key);
                    all.push(format!(
                        "{key}={} (peer {want})",
                        got.map_or("?".into(), |v| v.to_string())
                    ));
                    if got != Some(want) {
                        bad.push(key);
                    }
                }
                let detail = all.join(" ");
                out.check(bad.is_empty(), "stats-agree", detail.clone());
                self.send_ctrl(
                    w,
                    &format!("REPORTRESULT ok={} {detail}", bad.is_empty() as u8),
                )?;
            }
            "BYE" => self.done = true,
            _ => println!("PEER: unknown control message"),
        }
        Ok(())
    }

    /// Answers TXDONE once every frame is in, or 5 s after the last frame arrived.
    fn check_txdone(&mut self, w: &mut Wire, out: &mut Verdicts) -> Result<(), String> {
        let Some((n, since)) = self.txdone else {
            return Ok(());
        };
        let complete = self
            .g2h
            .as_ref()
            .is_some_and(|s| s.good == n as u64 && s.seen.len() == n as usize);
        let idle = self.last_rx.elapsed() > Duration::from_secs(5)
            && since.elapsed() > Duration::from_secs(5);
        if !complete && !idle {
            return Ok(());
        }
        self.txdone = None;
        let (ok, detail) = match self.g2h.as_ref() {
            None => (false, format!("TXDONE n={n} but no data frame arrived")),
            Some(s) => (
                complete && s.bad == 0 && s.dup == 0,
                format!("expected {n}: {}", s.describe()),
            ),
        };
        out.check(ok, "guest-to-host", detail.clone());
        self.send_ctrl(w, &format!("TXRESULT ok={} {detail}", ok as u8))
    }

    /// Sends host → guest frames while the window allows. Returns whether it sent any.
    fn pump(&mut self, w: &mut Wire) -> Result<bool, String> {
        let Some(mac) = self.guest_mac else {
            return Ok(false);
        };
        let Some(h) = self.h2g.as_mut() else {
            return Ok(false);
        };
        if h.next < h.count
            && h.next - h.acked >= h.window
            && h.last_progress.elapsed() > Duration::from_secs(3)
        {
            // No ACK for 3 s with a full window: the guest lost frames or ACKs. Open the window
            // again so the run ends; the guest's count will tell what was lost.
            h.stalls += 1;
            println!(
                "PEER: stalled at {} sent, {} acked: reopening the window",
                h.next, h.acked
            );
            h.acked = h.next;
            h.last_progress = Instant::now();
        }
        let mut sent = false;
        let mut frames = Vec::new();
        while h.next < h.count && h.next - h.acked < h.window && frames.len() < 64 {
            let seq = h.next;
            let flow = flow_of(seq, h.flows);
            let (src, sport) = flow_source(flow);
            let data = payload(Dir::HostToGuest, seq, h.count, flow);
            frames.push(udp_frame(
                mac,
                PEER_MAC,
                src,
                GUEST_IP,
                sport,
                GUEST_DATA_PORT,
                seq as u16,
                &data,
            ));
            h.next += 1;
        }
        for f in frames {
            w.send(&f)?;
            sent = true;
        }
        Ok(sent)
    }
}

/// The forwarding cases: inject on wire 0, expect everything back on wire 1.
/// `apps`: the guest's `ixgbe-pktgen` sends on port 0, its `ixgbe-pcap` captures on port 1.
/// Checks that `--frames` generated frames arrive on wire 0, each a valid UDP/IPv4 test frame
/// (both checksums, apps' payload format) with a sequence number above the one before; then
/// injects `--fwd-target` frames (`fwd_frame`, to `--fwd-dst`) on wire 1, 1 ms apart, for the
/// capture, which the guest reads back.
fn run_apps(wires: &mut [Wire], args: &Args, out: &mut Verdicts) -> Result<(), String> {
    let deadline = Instant::now() + args.timeout;
    let mut buf = vec![0u8; 16384];
    let (w0, w1) = wires.split_at_mut(1);
    let (w0, w1) = (&mut w0[0], &mut w1[0]);
    let (mut good, mut bad, mut regress) = (0u32, 0u32, 0u32);
    let mut last: Option<u64> = None;
    let mut first_bad = String::new();
    while good + bad < args.frames && Instant::now() < deadline {
        let Some(len) = w0.recv(&mut buf)? else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        match ixgbe_tools::frame::parse_udp_frame(&buf[..len]) {
            Ok(f) => {
                if last.is_some_and(|l| f.seq <= l) {
                    regress += 1;
                }
                last = Some(f.seq);
                good += 1;
            }
            Err(e) => {
                if bad == 0 {
                    first_bad = format!("{len}-byte frame: {e:?}");
                }
                bad += 1;
            }
        }
    }
    out.check(
        good == args.frames && bad == 0 && regress == 0,
        "pktgen-frames",
        format!("{good} valid of {} generated frames on wire 0, {bad} bad {first_bad}, {regress} out of order", args.frames),
    );
    let n = args.fwd_target.unwrap_or(u64::from(args.frames)) as u32;
    for seq in 0..n {
        w1.send(&fwd_frame(seq, n, args.fwd_dst))?;
        std::thread::sleep(Duration::from_millis(1));
        while w1.recv(&mut buf)?.is_some() {}
    }
    out.pass("pcap-injected", format!("{n} frames injected on wire 1"));
    Ok(())
}

/// `bump`: what the forwarder adds to byte 1 of every frame (1 for ours, 0 for testpmd's io mode).
fn run_fwd(wires: &mut [Wire], args: &Args, bump: u8, out: &mut Verdicts) -> Result<(), String> {
    let n = args.frames;
    let target = args.fwd_target.unwrap_or(n as u64);
    let dst = args.fwd_dst;
    let deadline = Instant::now() + args.timeout;
    let mut set = SeqSet::new(n);
    let mut buf = vec![0u8; 16384];
    let (w0, w1) = wires.split_at_mut(1);
    let (w0, w1) = (&mut w0[0], &mut w1[0]);
    let mut next: u32 = 0;
    let mut back: u64 = 0;
    let mut fillers: u64 = 0;
    let mut last_probe: Option<Instant> = None;
    let mut started: Option<Instant> = None;
    let mut last_progress = Instant::now();
    let mut stray0 = 0u64;
    // Probes the port dropped before the forwarder enabled it: never coming back.
    let mut lost_probes = 0u64;
    while back < target {
        let now = Instant::now();
        if now > deadline {
            out.fail(
                "fwd-timeout",
                format!("{back} of {target} frames back within {:?}", args.timeout),
            );
            break;
        }
        let mut busy = false;
        while let Some(len) = w1.recv(&mut buf)? {
            busy = true;
            back += 1;
            last_progress = Instant::now();
            match check_sfwd(&buf[..len], n, dst, bump) {
                Ok(seq) => {
                    if started.is_none() {
                        started = Some(Instant::now());
                        lost_probes = w0.tx_frames.saturating_sub(1);
                        println!("PEER: the forwarder is up (probe came back)");
                    }
                    set.good(seq);
                }
                Err(e) if buf[..len].get(14..18) == Some(b"FILL") => {
                    let _ = e;
                }
                Err(e) => {
                    let head: Vec<String> = buf[..len.min(32)]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    set.bad(format!("{e}; first bytes {}", head.join(" ")))
                }
            }
        }
        // Nothing should come out of wire 0: the forwarder's port 0 only sends what port 1 got.
        while w0.recv(&mut buf)?.is_some() {
            stray0 += 1;
        }
        if started.is_none() {
            // Probe with frame 0 every second until the forwarder sends it back.
            if last_probe.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                w0.send(&fwd_frame(0, n, dst))?;
                last_probe = Some(Instant::now());
                next = 1;
            }
        } else {
            let in_flight = w0.tx_frames.saturating_sub(lost_probes + back);
            // Paced: frame `next` is due `next / fps` seconds after the forwarder came up.
            let paced_wait = match (args.rate, started) {
                (Some((fps, count)), Some(t0)) if next < count => {
                    Instant::now() < t0 + Duration::from_secs_f64(f64::from(next) / fps as f64)
                }
                _ => false,
            };
            if paced_wait {
                // Not yet: nothing to send this round.
            } else if next < n && in_flight < args.window as u64 {
                w0.send(&fwd_frame(next, n, dst))?;
                next += 1;
                busy = true;
            } else if next >= n && set.missing() == 0 && back + in_flight < target {
                // Probes forwarded twice: top up with fillers so the forwarder reaches its count.
                let mut f = fwd_frame(0, n, dst);
                f[14..18].copy_from_slice(b"FILL");
                w0.send(&f)?;
                fillers += 1;
            } else if last_progress.elapsed() > Duration::from_secs(5) {
                out.fail(
                    "fwd-stalled",
                    format!("nothing came back for 5 s: {}", set.describe()),
                );
                break;
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let secs = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    println!(
        "PEER: STATS fwd sent={} back={back} fillers={fillers} {} in {secs:.1} s",
        w0.tx_frames,
        set.describe()
    );
    out.check(
        set.good == n as u64 && set.bad == 0,
        "fwd",
        format!("{n} frames injected on port 0, {}", set.describe()),
    );
    out.check(
        stray0 == 0,
        "fwd-no-stray",
        format!("{stray0} frames came out of port 0"),
    );
    Ok(())
}
