//! QEMU end-to-end test against `ixgbe-sim`, guest side: runs on the guest's own network stack
//! (Linux's ixgbe.ko drives the simulated port) with plain UDP sockets.
//!
//! Usage:
//! - `sim_guest exchange IFACE TX_FRAMES RX_FRAMES FLOWS WINDOW`: guest → host frames (checked
//!   by the peer), host → guest frames from FLOWS flows (checked here byte by byte; the peer
//!   keeps at most WINDOW unacknowledged), then the spread over RX queues and the interface's
//!   `ethtool -S` counters, which the peer compares with what it counted on the wire.
//! - `sim_guest bye`: tells the peer the guest is done.
//! - `sim_guest bar0-read ADDR OFFSET`: prints the 32-bit register at hex OFFSET of BAR0 of PCI
//!   function ADDR (through sysfs `resource0`, which works while a driver is bound).
//! - `sim_guest bar0-cost ADDR OFFSET N`: reads that register N times and prints what one read
//!   costs in wall time and in the process's CPU time (getrusage): a BAR access exits the guest.
//! - `sim_guest wake-cost N`: sleeps on a 1 ms periodic timerfd N times and prints the process's
//!   CPU time as a share of wall time: the floor of any program woken 1000 times a second.
//!
//! Prints `QTEST: PASS <name> (...)` / `QTEST: FAIL <name>: why` lines for the init script.

#[path = "../sim_proto.rs"]
mod sim_proto;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use sim_proto::*;

fn pass(name: &str, detail: String) {
    println!("QTEST: PASS {name} ({detail})");
}

fn fail(name: &str, why: String) {
    println!("QTEST: FAIL {name}: {why}");
}

fn check(ok: bool, name: &str, detail: String) -> bool {
    if ok {
        pass(name, detail)
    } else {
        fail(name, detail)
    }
    ok
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("exchange") if args.len() == 6 => {
            let num = |i: usize| {
                args[i]
                    .parse::<u32>()
                    .map_err(|e| format!("{}: {e}", args[i]))
            };
            (|| exchange(&args[1], num(2)?, num(3)?, num(4)?, num(5)?))()
        }
        Some("bye") => Ctrl::open().and_then(|c| c.send("BYE")),
        Some("pcap-check") if args.len() == 5 => (|| {
            let num = |i: usize| {
                args[i]
                    .parse::<u32>()
                    .map_err(|e| format!("{}: {e}", args[i]))
            };
            let dst = parse_mac(&args[4]).ok_or(format!("bad MAC {}", args[4]))?;
            pcap_check(&args[1], num(2)?, num(3)?, dst)
        })(),
        Some("bar0-read") if args.len() == 3 => (|| {
            let off = u32::from_str_radix(args[2].trim_start_matches("0x"), 16)
                .map_err(|e| format!("{}: {e}", args[2]))?;
            println!("{:#010x}", bar0_read(&args[1], off)?);
            Ok(())
        })(),
        Some("bar0-cost") if args.len() == 4 => (|| {
            let off = u32::from_str_radix(args[2].trim_start_matches("0x"), 16)
                .map_err(|e| format!("{}: {e}", args[2]))?;
            let n: u32 = args[3].parse().map_err(|e| format!("{}: {e}", args[3]))?;
            bar0_cost(&args[1], off, n)
        })(),
        Some("wake-cost") if args.len() == 2 => (|| {
            let n: u32 = args[1].parse().map_err(|e| format!("{}: {e}", args[1]))?;
            wake_cost(n)
        })(),
        _ => Err(
            "usage: sim_guest exchange IFACE TX RX FLOWS WINDOW | sim_guest bye | \
             sim_guest pcap-check FILE RECORDS COUNT DST_MAC | sim_guest bar0-read ADDR OFFSET | \
             sim_guest bar0-cost ADDR OFFSET N | sim_guest wake-cost N"
                .into(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fail("sim-guest", e);
            ExitCode::FAILURE
        }
    }
}

/// Reads back a capture of `ixgbe-pcap`: a pcap file (microsecond or nanosecond, either byte
/// order) of exactly `records` frames, each one of the `count` frames the peer injected
/// (`fwd_frame`), byte for byte, in increasing sequence.
fn pcap_check(path: &str, records: u32, count: u32, dst: [u8; 6]) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
    if data.len() < 24 {
        return Err(format!("{path}: {} bytes, no pcap header", data.len()));
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => return Err(format!("{path}: magic {m:#x} is not pcap")),
    };
    let u32_at = |o: usize| {
        let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let (mut at, mut n, mut last) = (24usize, 0u32, None::<u32>);
    while at < data.len() {
        if at + 16 > data.len() {
            return Err(format!("record {n}: truncated header"));
        }
        let (incl, orig) = (u32_at(at + 8) as usize, u32_at(at + 12) as usize);
        let frame = data
            .get(at + 16..at + 16 + incl)
            .ok_or(format!("record {n}: truncated frame"))?;
        if incl != orig {
            return Err(format!("record {n}: {incl} of {orig} bytes captured"));
        }
        let seq =
            check_injected_frame(frame, count, dst).map_err(|e| format!("record {n}: {e}"))?;
        if last.is_some_and(|l| seq <= l) {
            return Err(format!("record {n}: seq {seq} after {}", last.unwrap_or(0)));
        }
        last = Some(seq);
        n += 1;
        at += 16 + incl;
    }
    if n != records {
        return Err(format!("{n} records, expected {records}"));
    }
    pass(
        "pcap-readback",
        format!(
            "{n} frames read back from {path}, byte-exact, in order (seq up to {})",
            last.unwrap_or(0)
        ),
    );
    Ok(())
}

fn peer(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(PEER_IP), port)
}

/// The control channel to the peer (ASCII lines over UDP).
struct Ctrl {
    sock: UdpSocket,
}

impl Ctrl {
    fn open() -> Result<Self, String> {
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, GUEST_CTRL_PORT))
            .map_err(|e| format!("bind control port: {e}"))?;
        Ok(Ctrl { sock })
    }

    fn send(&self, msg: &str) -> Result<(), String> {
        send_retrying(&self.sock, msg.as_bytes(), peer(PEER_CTRL_PORT))
    }

    /// Waits up to `timeout` for a reply line starting with `word`.
    fn wait(&self, word: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no {word} from the peer within {timeout:?}"));
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                    if line.split_whitespace().next() == Some(word) {
                        return Ok(line);
                    }
                    println!("sim_guest: ignoring control line {line:?}");
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(format!("control recv: {e}")),
            }
        }
    }
}

/// `send_to`, retrying while the stack is out of buffers (ENOBUFS on a full queue).
fn send_retrying(sock: &UdpSocket, data: &[u8], to: SocketAddrV4) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sock.send_to(data, to) {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(105) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(format!("send to {to}: {e}")),
        }
    }
}

/// `ethtool -S IFACE` as a map.
fn ethtool_stats(iface: &str) -> Result<BTreeMap<String, u64>, String> {
    let out = Command::new("ethtool")
        .args(["-S", iface])
        .output()
        .map_err(|e| format!("running ethtool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ethtool -S {iface}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.trim().split_once(':') {
            if let Ok(v) = v.trim().parse() {
                m.insert(k.trim().to_string(), v);
            }
        }
    }
    Ok(m)
}

fn exchange(iface: &str, tx: u32, rx: u32, flows: u32, window: u32) -> Result<(), String> {
    if tx == 0 || rx == 0 || flows == 0 || flows > MAX_FLOWS {
        return Err(format!("bad counts tx={tx} rx={rx} flows={flows}"));
    }
    let before = ethtool_stats(iface)?;
    // Both sockets exist before the peer sends anything, so no frame meets a closed port.
    let data = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, GUEST_DATA_PORT))
        .map_err(|e| format!("bind data port: {e}"))?;
    let ctrl = Ctrl::open()?;

    // Who is there: also teaches the peer our MAC if no ARP did.
    let mut hello = Err(String::new());
    for _ in 0..10 {
        ctrl.send("HELLO")?;
        hello = ctrl.wait("HELLO", Duration::from_secs(1));
        if hello.is_ok() {
            break;
        }
    }
    hello.map_err(|e| format!("peer unreachable over UDP: {e}"))?;

    // Guest → host.
    let t0 = Instant::now();
    for seq in 0..tx {
        send_retrying(
            &data,
            &payload(Dir::GuestToHost, seq, tx, 0),
            peer(PEER_DATA_PORT),
        )?;
    }
    let send_secs = t0.elapsed().as_secs_f64();
    ctrl.send(&format!("TXDONE n={tx}"))?;
    let r = ctrl.wait("TXRESULT", Duration::from_secs(120))?;
    let secs = t0.elapsed().as_secs_f64();
    check(
        field(&r, "ok") == Some(1),
        "guest-to-host",
        format!(
            "{tx} frames sent in {send_secs:.1} s, {secs:.1} s until the peer confirmed; peer: {r}"
        ),
    );

    // Host → guest.
    let t0 = Instant::now();
    ctrl.send(&format!("RXGO n={rx} flows={flows} window={window}"))?;
    let mut seen = vec![false; rx as usize];
    let (mut good, mut bad, mut dup) = (0u64, 0u64, 0u64);
    let mut digest = 0u32;
    let mut first_bad: Option<String> = None;
    let mut last = Instant::now();
    let mut acked = 0u64;
    let mut buf = vec![0u8; 2048];
    data.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    while good < rx as u64 && last.elapsed() < Duration::from_secs(15) {
        let (n, from) = match data.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("data recv: {e}")),
        };
        last = Instant::now();
        let p = &buf[..n];
        let verdict = check_payload(Dir::HostToGuest, p, rx).and_then(|(seq, flow)| {
            let (ip, port) = flow_source(flow);
            let want = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            if flow != flow_of(seq, flows) {
                Err(format!("seq {seq} in flow {flow}"))
            } else if from != std::net::SocketAddr::V4(want) {
                Err(format!("seq {seq} from {from}, expected {want}"))
            } else {
                Ok(seq)
            }
        });
        match verdict {
            Ok(seq) if seen[seq as usize] => dup += 1,
            Ok(seq) => {
                seen[seq as usize] = true;
                good += 1;
                digest = digest_add(digest, p);
            }
            Err(e) => {
                bad += 1;
                first_bad.get_or_insert(e);
            }
        }
        if good - acked >= 32 || good == rx as u64 {
            ctrl.send(&format!("ACK got={good}"))?;
            acked = good;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let missing = rx as u64 - good;
    if missing > 0 {
        // Frames the NIC delivered but the stack dropped show up here.
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        for l in snmp.lines().filter(|l| l.starts_with("Udp:")) {
            println!("sim_guest: {l}");
        }
    }
    check(
        good == rx as u64 && bad == 0 && dup == 0,
        "host-to-guest-bytes",
        format!(
            "{good} of {rx} frames byte-exact in {secs:.1} s ({:.0}/s), bad={bad} dup={dup} missing={missing}{}",
            good as f64 / secs.max(1e-3),
            first_bad.map_or(String::new(), |e| format!(", first bad: {e}"))
        ),
    );
    ctrl.send(&format!(
        "RXDONE good={good} bad={bad} dup={dup} missing={missing} digest={digest}"
    ))?;
    let r = ctrl.wait("RXRESULT", Duration::from_secs(20))?;
    check(
        field(&r, "ok") == Some(1),
        "host-to-guest",
        format!("peer: {r}"),
    );

    // Let the last Tx completions be cleaned (tx_packets counts at clean time), then compare.
    std::thread::sleep(Duration::from_millis(500));
    let after = ethtool_stats(iface)?;
    let delta = |k: &str| {
        after
            .get(k)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(k).copied().unwrap_or(0))
    };
    // ethtool lists counters for every queue the driver could have; the real ones are in sysfs.
    let nq = std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(0);
    let queues: Vec<u64> = (0..nq)
        .map(|q| delta(&format!("rx_queue_{q}_packets")))
        .collect();
    let used = queues.iter().filter(|&&d| d > 0).count();
    let want_queues = if flows >= 16 { 3 } else { 1 };
    check(
        used >= want_queues,
        "rss-spread",
        format!(
            "{flows} flows over {used} of {} RX queues, frames per queue {queues:?}",
            queues.len()
        ),
    );
    let errors: Vec<String> = after
        .iter()
        .filter(|(k, &v)| {
            v > 0
                && (k.contains("error")
                    || k.contains("missed")
                    || k.contains("no_buffer")
                    || k.contains("no_dma"))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    check(
        errors.is_empty(),
        "nic-error-counters",
        if errors.is_empty() {
            "all ethtool error counters 0".into()
        } else {
            errors.join(" ")
        },
    );
    let get = |k: &str| after.get(k).map_or("?".to_string(), |v| v.to_string());
    let report = format!(
        "REPORT tx_packets={} rx_packets={} tx_pkts_nic={} rx_pkts_nic={} rx_bytes={} tx_bytes={}",
        get("tx_packets"),
        get("rx_packets"),
        get("tx_pkts_nic"),
        get("rx_pkts_nic"),
        get("rx_bytes"),
        get("tx_bytes")
    );
    println!("sim_guest: {report}");
    ctrl.send(&report)?;
    let r = ctrl.wait("REPORTRESULT", Duration::from_secs(20))?;
    check(
        field(&r, "ok") == Some(1),
        "stats-agree",
        format!("peer: {r}"),
    );
    Ok(())
}

/// One 32-bit read of BAR0 of `addr` at `off`, through a mapping of sysfs `resource0`.
/// One page of BAR0 of `addr`, mapped read-only through sysfs.
struct Bar0Page {
    map: *mut libc::c_void,
    page: usize,
}

impl Bar0Page {
    const LEN: usize = 4096;

    fn map(addr: &str, off: u32) -> Result<Self, String> {
        use std::os::fd::AsRawFd;
        let path = format!("/sys/bus/pci/devices/{addr}/resource0");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{path}: {e}"))?;
        let page = (off as usize) & !(Self::LEN - 1);
        // SAFETY: a fresh shared mapping of one page of the BAR file; nothing else refers to it.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(format!("mmap {path}: {}", std::io::Error::last_os_error()));
        }
        Ok(Bar0Page { map, page })
    }

    /// The register at `off` (inside the mapped page, 4-byte aligned).
    fn read(&self, off: u32) -> u32 {
        let at = (off as usize - self.page) & (Self::LEN - 4);
        // SAFETY: `at` lies inside the mapped page and is 4-byte aligned (a register); MMIO
        // needs a volatile access.
        unsafe { std::ptr::read_volatile(self.map.cast::<u8>().add(at).cast::<u32>()) }
    }
}

impl Drop for Bar0Page {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe { libc::munmap(self.map, Self::LEN) };
    }
}

fn bar0_read(addr: &str, off: u32) -> Result<u32, String> {
    Ok(Bar0Page::map(addr, off)?.read(off))
}

/// The process's CPU time (user + system) so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn bar0_cost(addr: &str, off: u32, n: u32) -> Result<(), String> {
    let bar = Bar0Page::map(addr, off)?;
    let first = bar.read(off);
    if first == 0 || first == u32::MAX {
        // A function whose memory decoding is off reads as nothing without reaching the device.
        return Err(format!(
            "{addr}: BAR0 {off:#x} reads {first:#x}: memory decoding off?"
        ));
    }
    let (t0, c0) = (Instant::now(), cpu_time());
    let mut changed = 0u32;
    for _ in 0..n {
        changed += u32::from(bar.read(off) != first);
    }
    let (wall, cpu) = (t0.elapsed(), cpu_time() - c0);
    let each = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n.max(1));
    pass(
        "bar0-cost",
        format!(
            "{n} reads of {off:#x} = {first:#010x} ({changed} differed): {:.1} us wall, {:.1} us CPU each",
            each(wall),
            each(cpu)
        ),
    );
    Ok(())
}

fn wake_cost(n: u32) -> Result<(), String> {
    // SAFETY: plain system calls on a timerfd this function owns and closes.
    unsafe {
        let fd = libc::timerfd_create(libc::CLOCK_MONOTONIC, 0);
        if fd < 0 {
            return Err(format!(
                "timerfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        let ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        let spec = libc::itimerspec {
            it_interval: ms,
            it_value: ms,
        };
        libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut());
        let (t0, c0) = (Instant::now(), cpu_time());
        let (mut wakes, mut ticks) = (0u32, 0u64);
        while wakes < n {
            let mut exp = 0u64;
            if libc::read(fd, (&mut exp as *mut u64).cast(), 8) == 8 {
                wakes += 1;
                ticks += exp;
            }
        }
        let (wall, cpu) = (t0.elapsed(), cpu_time() - c0);
        libc::close(fd);
        pass(
            "wake-cost",
            format!(
                "{wakes} wake-ups ({ticks} ticks of 1 ms) in {:.2} s: {:.1} % of wall time in CPU, {:.1} us CPU each",
                wall.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / f64::from(wakes.max(1))
            ),
        );
    }
    Ok(())
}
